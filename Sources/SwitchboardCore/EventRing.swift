/// A FIFO ring of events that grows by doubling: a subscriber's waiting events, and the
/// batch its consumer works through.
///
/// Unlike `Deque` it has no copy-on-write, so appending checks no reference count and is
/// inlined into the publisher's offer: the `Deque` calls were a twentieth of a fan-out publish.
struct EventRing: ~Copyable {
    private var slots: UnsafeMutablePointer<Event>
    private var mask: Int
    private var head = 0
    /// Events in the ring.
    private(set) var count = 0

    /// An empty ring with room for `capacity` events before it first grows.
    init(capacity: Int = 16) {
        let size = max(capacity, 16).nextPowerOfTwo
        slots = .allocate(capacity: size)
        mask = size - 1
    }

    deinit {
        deinitializeAll()
        slots.deallocate()
    }

    /// The event at the front, if any, left in place.
    var first: Event? { count > 0 ? slots[head] : nil }

    @inline(__always) mutating func append(_ event: consuming Event) {
        if count > mask { grow() }
        (slots + ((head &+ count) & mask)).initialize(to: consume event)
        count &+= 1
    }

    @inline(__always) mutating func popFirst() -> Event? {
        guard count > 0 else { return nil }
        defer {
            head = (head &+ 1) & mask
            count &-= 1
        }
        return (slots + head).move()
    }

    /// Releases every event; keeps the memory.
    mutating func removeAll() {
        deinitializeAll()
        head = 0
        count = 0
    }

    /// Releases every event, leaving `count` and `head` stale: for `removeAll` and `deinit`.
    private func deinitializeAll() {
        let firstRun = min(count, mask + 1 - head)
        (slots + head).deinitialize(count: firstRun)
        slots.deinitialize(count: count - firstRun)
    }

    /// Doubles the slots, moving the events to the front in order.
    private mutating func grow() {
        let size = (mask + 1) * 2
        let larger = UnsafeMutablePointer<Event>.allocate(capacity: size)
        let firstRun = min(count, mask + 1 - head)
        larger.moveInitialize(from: slots + head, count: firstRun)
        (larger + firstRun).moveInitialize(from: slots, count: count - firstRun)
        slots.deallocate()
        slots = larger
        mask = size - 1
        head = 0
    }
}

extension Int {
    /// The smallest power of two at least this large (for a positive value).
    fileprivate var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
