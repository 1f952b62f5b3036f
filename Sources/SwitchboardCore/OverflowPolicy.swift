/// What a subscriber's full queue does with one more event.
public enum OverflowPolicy: Sendable, Hashable, CaseIterable {
    /// Refuse the new event and count a drop (the default, and the seed article's behaviour).
    case dropNewest
    /// Evict the oldest queued event, count it as dropped, and queue the new one.
    case dropOldest
    /// Make the publisher wait for room: lossless backpressure, for pipelines such as a file read from stdin.
    /// A publish from inside a subscriber never waits; it counts a drop instead, so subscribers cannot deadlock.
    case block
}
