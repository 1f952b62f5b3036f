import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Synchronization
import SwitchboardCore

/// HTTP ingest: events published over HTTP/1.1 with Hummingbird.
///
/// - `POST /publish`: the body is event lines, `{"topic", "data", "headers"}` as the stdin
///   feeder reads them. 200 with `{"accepted": N, "rejected": [{"line": 3, "error": "..."}]}`:
///   a bad line rejects that line only.
/// - `POST /publish/<topic>`: the body is one JSON value, the event's data; request headers
///   named `Switchboard-Header-<name>` become event headers named `<name>` in lower case.
///
/// With a token, every request needs `Authorization: Bearer <token>` (401 otherwise). A body
/// over the limit is 413 and publishes nothing; an invalid topic or a body that is not JSON is
/// 400; while the instance starts or drains, 503 with `Retry-After`. Publishes run on threads
/// of their own, so a full `block` queue makes the request wait: the producer's backpressure.
public struct HTTPIngest: Sendable {
    /// What a running ingest has counted.
    public final class Counts: Sendable {
        /// Events published.
        public let accepted = Atomic<Int>(0)
        /// Lines or bodies refused as invalid.
        public let rejected = Atomic<Int>(0)
        public init() {}
    }

    private let router: SwitchboardCore.Router
    private let host: String
    private let port: Int
    private let token: String?
    private let maxBody: Int
    private let isAccepting: @Sendable () -> Bool
    private let counts: Counts
    private let logger: Logger

    /// An ingest listener on `host:port` (port 0 picks a free one) that publishes on `router`
    /// while `isAccepting` says so.
    public init(
        router: SwitchboardCore.Router, host: String, port: Int, token: String?, maxBody: Int, counts: Counts = Counts(), logger: Logger,
        isAccepting: @escaping @Sendable () -> Bool
    ) {
        self.router = router
        self.host = host
        self.port = port
        self.token = token
        self.maxBody = maxBody
        self.counts = counts
        self.logger = logger
        self.isAccepting = isAccepting
    }

    /// Serves until the service group it runs in shuts down gracefully, or the task is
    /// cancelled; `onListening` gets the bound port once it listens.
    public func run(onListening: @escaping @Sendable (Int) async -> Void) async throws {
        // Publishes block on full `block` queues: never on an event loop.
        let publishers = NIOThreadPool(numberOfThreads: 8)
        publishers.start()
        defer { publishers.shutdownGracefully { _ in } }
        let routes = Hummingbird.Router()
        routes.post("publish") { request, _ in
            try await handle(request) { body in
                try await publishers.runIfActive { publishLines(body) }
            }
        }
        routes.post("publish/:topic") { request, context in
            let topic = context.parameters.get("topic") ?? ""
            return try await handle(request) { body in
                try await publishers.runIfActive { publishValue(body, topic: topic, headers: request.headers) }
            }
        }
        let application = Application(
            router: routes, configuration: .init(address: .hostname(host, port: port), serverName: "switchboard"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) }, logger: logger)
        try await application.run()
    }

    /// A status and a JSON body.
    typealias Answer = (status: HTTPResponse.Status, body: JSON)

    /// Checks the token, the phase and the size, then publishes the body with `publish`.
    private func handle(_ request: Request, _ publish: (ByteBuffer) async throws -> Answer) async throws -> Response {
        var request = request
        if let token, !BearerToken.authorizes(request.headers[.authorization], token: token) {
            return Self.response(.unauthorized, ["error": "a bearer token is required: Authorization: Bearer <token>"])
        }
        guard isAccepting() else { return Self.unavailable }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBody {
            return Self.tooLarge(maxBody)
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBody)
        } catch is NIOTooManyBytesError {
            return Self.tooLarge(maxBody)
        }
        let answer = try await publish(body)
        if answer.status == .serviceUnavailable { return Self.response(answer.status, answer.body, retryAfter: true) }
        return Self.response(answer.status, answer.body)
    }

    /// Publishes each line of `body`; a line that is not a valid event is rejected alone.
    private func publishLines(_ body: ByteBuffer) -> Answer {
        var accepted = 0
        var rejected: [JSON] = []
        var stoppedAt: Int?
        body.withUnsafeReadableBytes { bytes in
            var start = 0
            var number = 0
            while start < bytes.count {
                number += 1
                var end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
                let next = end + 1
                if end > start, bytes[end - 1] == 0x0D { end -= 1 }  // CRLF
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                start = next
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }  // blank
                do {
                    try router.publish(eventLine: line)
                    accepted += 1
                } catch RouterError.shutDown {
                    stoppedAt = number
                    return
                } catch {
                    rejected.append(["line": .int(Int64(number)), "error": .string("\(error)")])
                }
            }
        }
        counts.accepted.add(accepted, ordering: .relaxed)
        counts.rejected.add(rejected.count, ordering: .relaxed)
        guard let stoppedAt else { return (.ok, ["accepted": .int(Int64(accepted)), "rejected": .array(rejected)]) }
        return (.serviceUnavailable, [
            "accepted": .int(Int64(accepted)), "rejected": .array(rejected),
            "error": .string("shutting down: lines from \(stoppedAt) on were not published"),
        ])
    }

    /// Publishes `body`, one JSON value, to `topic`.
    private func publishValue(_ body: ByteBuffer, topic: String, headers: HTTPFields) -> Answer {
        var eventHeaders: [String: String] = [:]
        for field in headers where field.name.canonicalName.hasPrefix("switchboard-header-") {
            let name = String(field.name.canonicalName.dropFirst("switchboard-header-".count))
            if !name.isEmpty { eventHeaders[name] = field.value }
        }
        let tape: JSONTape
        do {
            tape = try body.withUnsafeReadableBytes { bytes throws(JSONError) in try JSONTape(parsing: bytes) }
        } catch {
            counts.rejected.add(1, ordering: .relaxed)
            return (.badRequest, ["error": .string("the body is not one JSON value: \(error)")])
        }
        do {
            try router.publish(topic, tape: tape, headers: eventHeaders)
        } catch RouterError.shutDown {
            return (.serviceUnavailable, ["accepted": 0, "error": "shutting down"])
        } catch {
            counts.rejected.add(1, ordering: .relaxed)
            return (.badRequest, ["error": .string("topic '\(topic)': \(error)")])
        }
        counts.accepted.add(1, ordering: .relaxed)
        return (.ok, ["accepted": 1, "rejected": []])
    }

    private static var unavailable: Response {
        response(.serviceUnavailable, ["error": "not accepting events: the instance is starting or draining"], retryAfter: true)
    }

    private static func tooLarge(_ limit: Int) -> Response {
        response(.contentTooLarge, ["error": .string("the body is over ingest.http.max_body (\(Quantities.size(limit)))")])
    }

    private static func response(_ status: HTTPResponse.Status, _ body: JSON, retryAfter: Bool = false) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if retryAfter { headers[.retryAfter] = "1" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.serialized() + "\n")))
    }
}
