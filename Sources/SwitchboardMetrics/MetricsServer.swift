import Hummingbird
import Logging
import SwitchboardCore

/// Serves `GET /metrics` (Prometheus text) and `GET /healthz` (JSON) over HTTP/1.1 with
/// Hummingbird, and with an admin handler `POST /-/reload`. With a token, `/metrics` and
/// `/-/reload` need `Authorization: Bearer <token>` (401 otherwise); `/healthz` never does,
/// so that probes need no secret. Without one it has no authentication: keep it on loopback
/// or behind a proxy.
public struct MetricsServer: Sendable {
    /// What `POST /-/reload` does: reloads, and answers with an HTTP status and a JSON body.
    public typealias Reload = @Sendable () async -> (status: Int, body: String)

    private let metrics: RouterMetrics
    private let health: Health
    private let host: String
    private let port: Int
    private let token: String?
    private let reload: Reload?
    private let logger: Logger

    /// A server for `metrics` and `health` on `host:port` (port 0 picks a free one). With
    /// `reload`, it serves `POST /-/reload` (404 without); with `token`, that and `/metrics`
    /// need it as a bearer token.
    public init(
        metrics: RouterMetrics, health: Health, host: String, port: Int, token: String? = nil, reload: Reload? = nil,
        logger: Logger
    ) {
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        self.token = token
        self.reload = reload
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
        router.post("-/reload") { [reload, token] request, _ in
            guard let reload else {
                return Self.json(404, (["error": "not found: POST /-/reload is served with metrics.admin: true"] as JSON).serialized())
            }
            if let refusal = Self.refusal(request, token) { return refusal }
            let (status, body) = await reload()
            return Self.json(status, body)
        }
        let application = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "switchboard"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) }, logger: logger)
        try await application.run()
    }

    /// A 401 for a request without the token, when there is one; nil to go on.
    private static func refusal(_ request: Request, _ token: String?) -> Response? {
        guard let token, !BearerToken.authorizes(request.headers[.authorization], token: token) else { return nil }
        let body = (["error": "a bearer token is required: Authorization: Bearer <metrics.token>"] as JSON).serialized()
        return Response(
            status: .unauthorized, headers: [.contentType: "application/json", .wwwAuthenticate: "Bearer"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    private static func json(_ status: Int, _ body: String) -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
