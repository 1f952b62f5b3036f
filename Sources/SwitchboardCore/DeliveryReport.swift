/// What one publish did.
public struct DeliveryReport: Sendable, Hashable {
    /// Subscribers whose patterns matched the topic.
    public var matched: Int
    /// Subscribers that queued the event.
    public var accepted: Int
    /// Subscribers whose full queue refused it. Evictions by `dropOldest` are counted in that subscriber's stats instead.
    public var dropped: Int

    /// Creates a report.
    public init(matched: Int = 0, accepted: Int = 0, dropped: Int = 0) {
        self.matched = matched
        self.accepted = accepted
        self.dropped = dropped
    }
}
