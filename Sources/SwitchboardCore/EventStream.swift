/// Events matching a pattern, as an `AsyncSequence` (from ``Router/events(matching:capacity:overflow:)``).
public struct EventStream: AsyncSequence, Sendable {
    public typealias Element = Event
    public typealias Failure = Never

    let subscription: StreamSubscription

    /// The subscriber behind the stream, for its stats.
    public var subscriber: Subscriber { subscription.subscriber }

    public func makeAsyncIterator() -> Iterator { Iterator(subscription: subscription) }

    /// Waits for the next event; nil after shutdown or cancellation.
    public struct Iterator: AsyncIteratorProtocol {
        let subscription: StreamSubscription
        public mutating func next() async -> Event? { await subscription.subscriber.mailbox.next() }
    }
}

/// Ends the stream's subscription when the last copy of the stream or an iterator goes away.
final class StreamSubscription: Sendable {
    let subscriber: Subscriber
    private weak let router: Router?

    init(router: Router, subscriber: Subscriber) {
        self.router = router
        self.subscriber = subscriber
    }

    deinit { router?.unsubscribe(subscriber) }
}
