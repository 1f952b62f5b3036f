import DequeModule

/// Where a subscriber's waiting events are kept, when not in the built-in ring.
///
/// By default a subscriber keeps its waiting events in a ring in memory, bounded by its
/// `capacity`. Another kind of queue plugs in here, through the `queue` parameter of
/// ``Router/subscribe(_:name:capacity:overflow:failurePolicy:queue:handler:)``. The mailbox
/// in front of it still owns locking, overflow policy and wakeups, and calls every method
/// here with its lock held, from publishers and the subscriber's own context; the queue's
/// own ``hasRoom`` is its bound.
public protocol EventQueue: AnyObject {
    /// Events waiting now.
    var count: Int { get }
    /// False when one more event would exceed the queue's capacity.
    var hasRoom: Bool { get }
    /// Adds an event at the back; called only when ``hasRoom`` is true or the policy evicted one first.
    func append(_ event: Event)
    /// Removes and returns the front event, if any.
    func removeFirst() -> Event?
    /// Moves waiting events, in order, into the empty `batch`: all of them, or as many as
    /// the queue hands over at once. Runs under the mailbox's lock, so keep it O(1) if you can.
    func take(into batch: inout Deque<Event>)
    /// Removes every waiting event and returns how many there were.
    func removeAll() -> Int
}
