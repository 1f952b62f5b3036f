/// How a ``NATSBridge`` connects to NATS and which subjects it carries: the `nats` section of
/// a configuration file.
public struct NATSSettings: Sendable, Equatable {
    /// The server, or several separated by commas: `nats://127.0.0.1:4222`.
    public var url: String
    /// Local topics published to NATS under the same subject.
    public var export: [String] = []
    /// NATS subjects whose messages are published locally.
    public var `import`: [String] = []
    /// When set, each imported message goes to one instance of this queue group: shared work.
    public var queueGroup: String?
    /// The export queue's capacity: what waits while NATS is slow or away, before drops.
    public var exportCapacity = 65_536
    /// How often exports are confirmed by a round trip to the server (a flush).
    public var flushInterval: Duration = .milliseconds(100)
    /// How long the first connection, and each reconnection attempt, may take.
    public var connectTimeout: Duration = .seconds(2)
    /// The first pause between reconnection rounds; it doubles up to ``reconnectWaitMax``.
    public var reconnectWait: Duration = .milliseconds(250)
    /// The longest pause between reconnection rounds.
    public var reconnectWaitMax: Duration = .seconds(8)
    /// Reconnection rounds before giving up; nil: never give up.
    public var maxReconnects: Int?
    /// User and password, when the server asks for them.
    public var user: String?
    /// The password of ``user``.
    public var password: String?
    /// An authentication token.
    public var token: String?
    /// A `.creds` file (JWT and NKey seed), as `nsc` writes it.
    public var credentials: String?
    /// TLS, when the server requires or offers it.
    public var tls: TLS?
    /// At-least-once exports through JetStream; nil: none.
    public var jetStream: JetStreamSettings?

    /// The `tls` part of the section.
    public struct TLS: Sendable, Equatable {
        /// Certificate authorities to trust, PEM; nil: the system's.
        public var ca: String?
        /// The client's certificate chain, PEM, for servers that verify clients.
        public var certificate: String?
        /// The private key of ``certificate``, PEM.
        public var key: String?
        /// The host name the server's certificate must carry, when not the URL's.
        public var hostname: String?
        /// Accepts any server certificate: for testing only.
        public var skipVerify = false

        /// TLS with the system's trusted authorities and nothing else set.
        public init() {}
    }

    /// Settings for `url` with every other field at its default.
    public init(url: String) {
        self.url = url
    }
}
