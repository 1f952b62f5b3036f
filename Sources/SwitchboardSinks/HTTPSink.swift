import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import SwitchboardConfig
import SwitchboardCore

/// The handler of an `http:` sink: each event, or each batch of them, is one HTTP request,
/// on keep-alive connections with certificate verification, from the subscriber's own thread.
///
/// A 2xx response handles the events. 408, 429, 5xx, a refused or dropped connection and a
/// timeout throw an error the failure policy retries (after the response's `Retry-After`, when
/// it has one); any other status throws one that fails the events at once. A retry sends the
/// same bytes: every request carries `Idempotency-Key` (the id of its first event),
/// `Switchboard-Topic` and `Switchboard-Time`.
public final class HTTPSink: EventHandler {
    private let settings: Configuration.HTTPSink
    private let client: HTTPClient
    private let logger: Logger
    /// The URL without its user, password and query, for log lines: they may hold secrets.
    private let target: String
    private let inFlight = Mutex<HTTPClient.Task<Reply.Response>?>(nil)
    private let interrupted = Atomic<Bool>(false)
    private var failures = LogThrottle()

    /// A sink with `settings`; `name` is its subscriber's, for the log.
    public init(settings: Configuration.HTTPSink, name: String) {
        self.settings = settings
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = settings.caFile { tls.trustRoots = .file(ca) }
        let timeout = TimeAmount.nanoseconds(Int64(SystemClock.nanoseconds(settings.timeout)))
        client = HTTPClient(
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton),
            configuration: .init(
                tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: timeout, read: timeout),
                connectionPool: .init(idleTimeout: .seconds(60))))
        var logger = Logger(label: "switchboard")
        logger[metadataKey: "subscriber"] = .string(name)
        self.logger = logger
        target = settings.printableURL
    }

    public var batching: Batching? {
        settings.maxEvents > 1 ? Batching(maxEvents: settings.maxEvents, maxWait: settings.maxWait) : nil
    }

    public var callBudget: Duration? { settings.timeout }

    public func handle(_ event: Event) throws { try send([event]) }

    public func handle(batch: [Event]) throws { try send(batch) }

    public func interrupt() {
        interrupted.store(true, ordering: .relaxed)
        inFlight.withLock { $0?.cancel() }
    }

    public func stop() {
        failures.flush(to: logger)
        try? client.shutdown().wait()  // on the subscriber's thread, not an event loop: it may wait
    }

    /// The request for `events`: the same bytes every time for the same events.
    func request(for events: [Event]) throws -> HTTPClient.Request {
        var body: [UInt8] = []
        if batching != nil { body.append(UInt8(ascii: "[")) }
        for (index, event) in events.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            switch settings.body {
            case .data: event.tape.write(to: &body)
            case .event: event.writeJSON(to: &body)
            }
        }
        if batching != nil { body.append(UInt8(ascii: "]")) }
        var headers = HTTPHeaders()
        for (name, value) in settings.headers.sorted(by: { $0.key < $1.key }) { headers.add(name: name, value: value) }
        if !headers.contains(name: "Content-Type") { headers.add(name: "Content-Type", value: "application/json") }
        let first = events[0]
        headers.replaceOrAdd(name: "Idempotency-Key", value: first.id.description)
        headers.replaceOrAdd(name: "Switchboard-Topic", value: first.topic)
        headers.replaceOrAdd(name: "Switchboard-Time", value: String(first.time))
        return try HTTPClient.Request(
            url: settings.url, method: settings.method == .PUT ? .PUT : .POST, headers: headers, body: .bytes(body))
    }

    private func send(_ events: [Event]) throws {
        guard !interrupted.load(ordering: .relaxed) else { throw HTTPSinkError.transport("interrupted at shutdown") }
        let request: HTTPClient.Request
        do { request = try self.request(for: events) } catch {
            throw HTTPSinkError(status: nil, message: "cannot make a request to \(target): \(error)", isPermanent: true, retryAfter: nil)
        }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(SystemClock.nanoseconds(settings.timeout)))
        let task = client.execute(request: request, delegate: Reply(), deadline: deadline)
        inFlight.withLock { $0 = task }
        if interrupted.load(ordering: .relaxed) { task.cancel() }
        defer { inFlight.withLock { $0 = nil } }
        let failure: HTTPSinkError?
        do {
            let reply = try task.futureResult.wait()
            failure = HTTPSinkError.response(
                status: Int(reply.status.code), reason: reply.status.reasonPhrase, retryAfter: reply.retryAfter, body: reply.body)
        } catch {
            failure = HTTPSinkError.transport("\(target): \(Self.describe(error))")
        }
        if let failure {
            failures.log("request failed: \(failure)", level: .warning, to: logger)
            throw failure
        }
    }

    /// A transport error in words.
    private static func describe(_ error: any Error) -> String {
        switch error {
        case let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout:
            "no response within the timeout"
        case let error as HTTPClientError where error == .cancelled:
            "cancelled at shutdown"
        case let error as HTTPClientError where error == .remoteConnectionClosed:
            "the server closed the connection"
        case is NIOConnectionError, is ChannelError:
            "cannot connect (\(error))"
        default:
            "\(error)"
        }
    }
}

/// Collects a response: its status, its `Retry-After`, and the first 1 KiB of its body.
final class Reply: HTTPClientResponseDelegate, @unchecked Sendable {  // called on the task's event loop only
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var retryAfter: String?
        var body: [UInt8]
    }

    private var response = Response(status: .ok, body: [])

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        response.status = head.status
        response.retryAfter = head.headers.first(name: "Retry-After")
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let room = 1024 - response.body.count
        if room > 0 { response.body.append(contentsOf: buffer.readableBytesView.prefix(room)) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response { response }
}
