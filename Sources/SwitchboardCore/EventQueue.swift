import DequeModule

/// Where a subscriber's waiting events are kept.
///
/// The mailbox in front of a queue owns locking, capacity and overflow policy: every
/// method here is called with the mailbox's lock held, from publishers and the
/// subscriber's own context. ``MemoryQueue`` is the default; other kinds (a queue that
/// spills to disk, say) plug in here.
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

/// A bounded FIFO ring buffer in memory.
///
/// `capacity` bounds the events waiting; the consumer takes all of them at once, so with
/// the batch in its hands a subscriber holds at most twice its capacity.
public final class MemoryQueue: EventQueue {
    private var events: Deque<Event>
    /// The most events it holds.
    public let capacity: Int

    /// Creates an empty queue holding at most `capacity` events.
    public init(capacity: Int) {
        self.capacity = capacity
        events = Deque(minimumCapacity: min(capacity, 1024))
    }

    public var count: Int { events.count }
    public var hasRoom: Bool { events.count < capacity }
    public func append(_ event: Event) { events.append(event) }
    public func removeFirst() -> Event? { events.popFirst() }

    /// Swaps storage with the consumer's empty batch: O(1), no copies, no allocation.
    public func take(into batch: inout Deque<Event>) {
        swap(&events, &batch)
    }

    public func removeAll() -> Int {
        let n = events.count
        events.removeAll(keepingCapacity: true)
        return n
    }
}
