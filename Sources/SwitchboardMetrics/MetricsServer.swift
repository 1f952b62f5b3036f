import Hummingbird
import Logging
import Synchronization
import SwitchboardCore

/// Serves `GET /metrics` (Prometheus text), `GET /healthz` (JSON) and `GET /tap` (the events
/// routed now, as JSON lines) over HTTP/1.1 with Hummingbird, and with ``Admin`` handlers
/// `POST /-/reload` and `POST /-/redrive`. With a token, all but `/healthz` need `Authorization: Bearer <token>`
/// (401 otherwise), so that probes need no secret. Without one it has no authentication: keep
/// it on loopback or behind a proxy; off loopback, `/tap` then answers 403.
public struct MetricsServer: Sendable {
    /// What the admin endpoints do, each answering with an HTTP status and a JSON body.
    public struct Admin: Sendable {
        /// `POST /-/reload`: reloads.
        public var reload: @Sendable () async -> (status: Int, body: String)
        /// `POST /-/redrive?subscriber=NAME&from=&to=&dry_run=`: sends dead letters again; gets the query's parameters.
        public var redrive: @Sendable (_ parameters: [String: String]) async -> (status: Int, body: String)

        /// The admin endpoints' handlers.
        public init(
            reload: @escaping @Sendable () async -> (status: Int, body: String),
            redrive: @escaping @Sendable (_ parameters: [String: String]) async -> (status: Int, body: String)
        ) {
            self.reload = reload
            self.redrive = redrive
        }
    }

    /// How many events a tap's queue holds before it misses some.
    public static let tapCapacity = 1024

    private let metrics: RouterMetrics
    private let health: Health
    private let host: String
    private let port: Int
    private let token: String?
    private let admin: Admin?
    private let allowsTap: Bool
    private let logger: Logger

    /// A server for `metrics` and `health` on `host:port` (port 0 picks a free one). With
    /// `admin`, it serves `POST /-/reload` and `POST /-/redrive` (404 without); with `token`,
    /// those, `/metrics` and `/tap` need it as a bearer token. Without `allowsTap`, `/tap` answers 403: for a
    /// listener off loopback without a token, where anyone could watch the traffic.
    public init(
        metrics: RouterMetrics, health: Health, host: String, port: Int, token: String? = nil, admin: Admin? = nil,
        allowsTap: Bool = true, logger: Logger
    ) {
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        self.token = token
        self.admin = admin
        self.allowsTap = allowsTap
        self.logger = logger
    }

    /// Serves until the service group it runs in shuts down gracefully, or the task is
    /// cancelled; `onListening` gets the bound port once it listens.
    public func run(onListening: @escaping @Sendable (Int) async -> Void) async throws {
        let router = Hummingbird.Router()
        router.get("metrics") { [metrics, token] request, _ in
            if let refusal = Self.refusal(request, token) { return refusal }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("healthz") { [health] _, _ in
            let (status, body) = health.report()
            return Self.json(status, body)
        }
        router.get("tap") { [metrics, token, allowsTap, logger] request, _ in
            if let refusal = Self.refusal(request, token) { return refusal }
            guard allowsTap else {
                return Self.json(403, (["error": "a tap off a loopback address needs metrics.token"] as JSON).serialized())
            }
            guard let pattern = request.uri.queryParameters.get("pattern") else {
                return Self.json(400, (["error": "missing pattern: GET /tap?pattern=order.>"] as JSON).serialized())
            }
            let stream: EventStream
            do {
                stream = try metrics.router.tap(matching: pattern, capacity: Self.tapCapacity)
            } catch {
                return Self.json(400, (["error": .string("\(error)")] as JSON).serialized())
            }
            logger.info("tap opened", metadata: ["pattern": .string(pattern)])
            return Response(
                status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody { writer in
                    let (sent, missed) = await Self.stream(stream, to: &writer)
                    logger.info("tap closed", metadata: ["pattern": .string(pattern), "sent": "\(sent)", "missed": "\(missed)"])
                })
        }
        router.post("-/reload") { [admin, token] request, _ in
            guard let admin else { return Self.notServed("POST /-/reload") }
            if let refusal = Self.refusal(request, token) { return refusal }
            let (status, body) = await admin.reload()
            return Self.json(status, body)
        }
        router.post("-/redrive") { [admin, token] request, _ in
            guard let admin else { return Self.notServed("POST /-/redrive") }
            if let refusal = Self.refusal(request, token) { return refusal }
            var parameters: [String: String] = [:]
            for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
            let (status, body) = await admin.redrive(parameters)
            return Self.json(status, body)
        }
        let application = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "switchboard"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) }, logger: logger)
        try await application.run()
    }

    /// Writes the tap's events as JSON lines (`{"id", "time", "topic", "data", "headers"}`),
    /// and each second `{"missed": N}` when the count of events it could not keep up with
    /// grew, or else an empty line, by which a client that went away is noticed on an idle
    /// tap too: the tap then ends, and its subscriber with it. Returns how many events it sent
    /// and missed, once the client went away or the instance shut down.
    private static func stream(_ stream: EventStream, to writer: inout any ResponseBodyWriter) async -> (sent: Int, missed: Int) {
        // Lines wait here for the connection; past 256, they count as missed too.
        let (lines, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(256))
        let counts = TapCounts()
        do {
            try await write(stream, through: continuation, counting: counts, lines: lines, to: &writer)
            try await writer.finish(nil)
        } catch {
            // The client went away: the tap ends here, its subscriber with it.
        }
        return (counts.sent.load(ordering: .relaxed), counts.missed(by: stream))
    }

    private static func write(
        _ stream: EventStream, through continuation: AsyncStream<ByteBuffer>.Continuation,
        counting counts: TapCounts, lines: AsyncStream<ByteBuffer>, to writer: inout any ResponseBodyWriter
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var line: [UInt8] = []
                for await event in stream {
                    line.removeAll(keepingCapacity: true)
                    event.writeJSON(to: &line)
                    line.append(UInt8(ascii: "\n"))
                    if case .dropped = continuation.yield(ByteBuffer(bytes: line)) {
                        counts.unsent.wrappingAdd(1, ordering: .relaxed)
                    } else {
                        counts.sent.wrappingAdd(1, ordering: .relaxed)
                    }
                }
                continuation.finish()
            }
            group.addTask {  // each second: the count of missed events if it grew, else an empty line
                var reported = 0
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    let missed = counts.missed(by: stream)
                    guard missed > reported else {
                        continuation.yield(ByteBuffer(string: "\n"))
                        continue
                    }
                    if case .enqueued = continuation.yield(ByteBuffer(string: #"{"missed":\#(missed)}"# + "\n")) { reported = missed }
                }
            }
            defer { group.cancelAll() }
            try await writer.write(lines)
        }
    }

    /// A 401 for a request without the token, when there is one; nil to go on.
    private static func refusal(_ request: Request, _ token: String?) -> Response? {
        guard let token, !BearerToken.authorizes(request.headers[.authorization], token: token) else { return nil }
        let body = (["error": "a bearer token is required: Authorization: Bearer <metrics.token>"] as JSON).serialized()
        return Response(
            status: .unauthorized, headers: [.contentType: "application/json", .wwwAuthenticate: "Bearer"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// The 404 of an admin endpoint without `metrics.admin`.
    private static func notServed(_ endpoint: String) -> Response {
        json(404, (["error": .string("not found: \(endpoint) is served with metrics.admin: true")] as JSON).serialized())
    }

    private static func json(_ status: Int, _ body: String) -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// What a tap handed to its connection, and what it could not: its queue's drops are the rest.
private final class TapCounts: Sendable {
    let sent = Atomic<Int>(0)
    let unsent = Atomic<Int>(0)

    /// The events `stream` missed: dropped by its queue, or by the lines waiting for the connection.
    func missed(by stream: EventStream) -> Int { stream.subscriber.stats().dropped + unsent.load(ordering: .relaxed) }
}
