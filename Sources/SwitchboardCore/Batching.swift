/// How a handler takes events in batches (``EventHandler/batching``): up to `maxEvents` at a
/// time, waiting at most `maxWait` after the first one for the rest.
public struct Batching: Sendable, Hashable {
    /// The most events in one ``EventHandler/handle(batch:)`` call; at least 1.
    public var maxEvents: Int
    /// How long the first event of a batch waits for the batch to fill.
    public var maxWait: Duration

    /// A batching of at most `maxEvents` events, waiting `maxWait` for them.
    public init(maxEvents: Int, maxWait: Duration) {
        self.maxEvents = max(1, maxEvents)
        self.maxWait = maxWait
    }
}
