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
    /// The events, behind a pointer: a class's stored `var` would cost a dynamic exclusivity
    /// check on every append. The mailbox's lock serializes all access.
    private let events = UnsafeMutablePointer<Deque<Event>>.allocate(capacity: 1)
    private let bound = UnsafeMutablePointer<Int>.allocate(capacity: 1)

    /// Creates an empty queue holding at most `capacity` events.
    public init(capacity: Int) {
        bound.initialize(to: capacity)
        events.initialize(to: Deque(minimumCapacity: min(capacity, 1024)))
    }

    deinit {
        events.deinitialize(count: 1)
        events.deallocate()
        bound.deallocate()
    }

    /// The most events it holds. Lowering it below ``count`` drops nothing: the queue just
    /// takes no more until it is below the new bound.
    public var capacity: Int {
        get { bound.pointee }
        set { bound.pointee = newValue }
    }

    public var count: Int { events.pointee.count }
    public var hasRoom: Bool { events.pointee.count < bound.pointee }
    public func append(_ event: Event) { events.pointee.append(event) }
    public func removeFirst() -> Event? { events.pointee.popFirst() }

    /// Swaps storage with the consumer's empty batch: O(1), no copies, no allocation.
    public func take(into batch: inout Deque<Event>) {
        swap(&events.pointee, &batch)
    }

    public func removeAll() -> Int {
        let n = events.pointee.count
        events.pointee.removeAll(keepingCapacity: true)
        return n
    }
}
