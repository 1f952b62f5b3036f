import Hummingbird
import Logging

/// Serves `GET /metrics` (Prometheus text) and `GET /healthz` (JSON) over HTTP/1.1 with
/// Hummingbird. It has no authentication: keep it on loopback or behind a proxy.
public struct MetricsServer: Sendable {
    private let metrics: RouterMetrics
    private let health: Health
    private let host: String
    private let port: Int
    private let logger: Logger

    /// A server for `metrics` and `health` on `host:port` (port 0 picks a free one).
    public init(metrics: RouterMetrics, health: Health, host: String, port: Int, logger: Logger) {
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// Serves until the service group it runs in shuts down gracefully, or the task is
    /// cancelled; `onListening` gets the bound port once it listens.
    public func run(onListening: @escaping @Sendable (Int) async -> Void) async throws {
        let router = Hummingbird.Router()
        router.get("metrics") { [metrics] _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("healthz") { [health] _, _ in
            let (status, body) = health.report()
            return Response(
                status: .init(code: status), headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let application = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "switchboard"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) }, logger: logger)
        try await application.run()
    }
}
