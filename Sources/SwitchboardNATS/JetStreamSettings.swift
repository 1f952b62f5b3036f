/// Exports stored in a JetStream stream, each confirmed by the server: the `jetstream` part
/// of a configuration's `nats` section.
public struct JetStreamSettings: Sendable, Equatable {
    /// Where a stream keeps its messages.
    public enum Storage: String, Sendable {
        case file, memory
    }

    /// The stream's name.
    public var stream: String
    /// What the stream stores; needed to create it.
    public var subjects: [String] = []
    /// Where it keeps messages.
    public var storage = Storage.file
    /// How long it keeps a message; nil: for as long as the stream exists.
    public var maxAge: Duration?
    /// How long the server remembers a `Nats-Msg-Id`: an export published again within it is stored once.
    public var duplicateWindow: Duration = .seconds(120)
    /// Creates the stream, or updates it to these settings, at start; otherwise a missing stream is an error.
    public var create = false
    /// Local topics stored in the stream.
    public var export: [String] = []
    /// The stream's messages published locally through a durable consumer; nil: none.
    public var `import`: Import?

    /// A durable consumer, shared by every instance that gives its name: each message goes to
    /// one of them, and is acknowledged once every local subscriber is done with it.
    public struct Import: Sendable, Equatable {
        /// The consumer's name.
        public var durable: String
        /// The subjects it takes from the stream; nil: all of them.
        public var filter: String?
        /// How long the server waits for an acknowledgement before it delivers again.
        public var ackWait: Duration = .seconds(30)
        /// Deliveries of one message before it is terminated.
        public var maxDeliver = 5
        /// Messages handed out and not yet acknowledged, across the instances.
        public var maxAckPending = 1000
        /// The delay before each redelivery after a failure; the last one repeats.
        public var backoff: [Duration] = [.seconds(1), .seconds(5), .seconds(30)]

        /// A consumer with every other field at its default.
        public init(durable: String, filter: String? = nil) {
            self.durable = durable
            self.filter = filter
        }
    }
    /// Exports that may await the server's acknowledgement at once; more wait in the export queue.
    public var ackWindow = 1024
    /// How long an export waits for its acknowledgement before it is published again.
    public var ackTimeout: Duration = .seconds(5)
    /// How many acknowledgement timeouts may pass from an export's first publish, while it is
    /// published again, before it counts as failed.
    public var attempts = 3

    /// Settings for a stream with every other field at its default.
    public init(stream: String) {
        self.stream = stream
    }
}
