/// What a subscriber's full queue does with one more event.
public enum OverflowPolicy: Sendable, Hashable, CaseIterable {
    /// Refuse the new event and count a drop (the default, and the seed article's behaviour).
    case dropNewest
    /// Evict the oldest queued event, count it as dropped, and queue the new one.
    case dropOldest
    /// Make the publisher wait for room: lossless backpressure, for pipelines such as a file read from stdin.
    /// A publish from inside a subscriber waits only as long as it says (a Lua plugin: until
    /// shortly before its call's budget ends), then counts a drop, so subscribers cannot deadlock for long.
    case block
    /// Never drop and never make a publisher wait: the subscriber reads its events from the
    /// router's journal (``Router/spill(to:)``), in journal order, from its own durable
    /// position, and so catches up after a burst, or after a crash and a restart (at least
    /// once: an event handled just before a crash may be handled again).
    case spill
}

extension OverflowPolicy: CustomStringConvertible {
    /// How the configuration file spells it: `drop_newest`, `drop_oldest`, `block`, `spill`.
    public var description: String {
        switch self {
        case .dropNewest: "drop_newest"
        case .dropOldest: "drop_oldest"
        case .block: "block"
        case .spill: "spill"
        }
    }
}
