import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// A real HTTP server on loopback, for sink tests: it records every request and answers each
/// as `respond` says, given the request and how many came before it.
public final class TestHTTPServer: Sendable {
    /// A request as it arrived.
    public struct Received: Sendable {
        public var method: String
        public var path: String
        /// By lower-case name.
        public var headers: [String: String]
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
        /// When it arrived.
        public var at: ContinuousClock.Instant
    }

    /// How to answer a request.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: String
        /// Waits this long before answering (a server that does not answer in time).
        public var delay: Duration?

        public init(status: Int = 200, headers: [String: String] = [:], body: String = "", delay: Duration? = nil) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
        }
    }

    private let received = Recorder<Received>()
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    /// The port it listens on.
    public let port: Int

    /// Starts a server on `port` (0: a free one) and returns once it listens.
    public init(port: Int = 0, respond: @escaping @Sendable (Received, Int) -> Answer = { _, _ in Answer() }) async throws {
        let received = self.received
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 64 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let arrived = Received(
                method: request.method.rawValue, path: request.uri.path, headers: headers, body: Array(buffer: body),
                at: .now)
            let index = received.append(counting: arrived)
            let answer = respond(arrived, index)
            if let delay = answer.delay { try await Task.sleep(for: delay) }
            var fields = HTTPFields()
            for (name, value) in answer.headers { fields[HTTPField.Name(name)!] = value }
            return Response(
                status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        for path in ["/", "**"] {
            router.post(RouterPath(path), use: handler)
            router.put(RouterPath(path), use: handler)
        }
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in listening.yield(channel.localAddress?.port ?? 0) })
        let running = Task { try await application.run() }
        var bound = 0
        for await port in ports {
            bound = port
            break
        }
        self.port = bound
        task.withLock { $0 = running }
    }

    /// The requests so far, in arrival order.
    public var requests: [Received] { received.all }

    /// Stops listening.
    public func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = await running?.result
    }

    /// A port nothing listens on now (one a server had, stopped).
    public static func freePort() async throws -> Int {
        let server = try await TestHTTPServer()
        await server.stop()
        return server.port
    }
}
