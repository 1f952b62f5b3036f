import Synchronization

/// The locked front of a subscriber's queue: capacity, overflow policy, wakeups and the
/// counters that make `received == handled + failed + dropped + abandoned` exact.
///
/// Publishers call ``offer(_:fromSubscriber:)``; the subscriber's own context takes all waiting
/// events at once and settles each one. A parked consumer is woken by the next event; one
/// that is lingering after a batch, only when its queue passes half full.
final class Mailbox: @unchecked Sendable {
    /// `draining`: shutdown began; only subscribers' own publishes are taken, timers stop, and
    /// the consumer waits for more until told to `finish`. `finishing`: it ends once empty.
    enum State { case open, draining, finishing, stopped }
    /// What became of an offered event. `evicted`: taken, but an event was lost for it (the
    /// oldest waiting one or, spilling, this one, which the journal failed to write).
    enum Offer { case accepted, evicted, dropped, closed }
    enum Take { case events, timedOut, finished, control }

    private static let workCondition = 0
    private static let roomCondition = 1
    private static let sealBit = 1 << 62

    private let lock = ConditionLock(conditions: 2)

    /// What `lock` guards. Reached through a pointer: a class's stored `var`s would cost a
    /// dynamic exclusivity check (with a thread-local lookup) on every access, several per offer.
    private struct Guarded: ~Copyable {
        var capacity: Int
        /// The waiting events.
        var events: EventRing
        var policy: OverflowPolicy
        /// The consumer is asked to run its subscriber's pending control requests.
        var controlPending = false
        var state = State.open
        var received = 0
        var dropped = 0
        var abandoned = 0
        var taken = 0
        var consumerSleeping = false  // parked: wake it for any event
        var consumerNapping = false  // lingering: wake it only when its queue fills up
        var blockedPublishers = 0
        /// A stream consumer waits in `next()`, its continuation in ``streamWaiter``.
        var hasStreamWaiter = false
        var settledAtSeal: Int?
    }

    private let guarded = UnsafeMutablePointer<Guarded>.allocate(capacity: 1)
    /// Also guarded by `lock`. Kept out of ``Guarded``: a continuation's layout is only known at
    /// run time, and would make every field access on the hot path look up its offset.
    private let streamWaiter = UnsafeMutablePointer<CheckedContinuation<Event?, Never>?>.allocate(capacity: 1)
    /// Called once, without the lock, when a stream consumer can never get another event.
    /// Set once, before the subscriber is registered, and only read after that.
    var onStreamEnd: (@Sendable () -> Void)?

    /// What the consumer writes without the lock, at least once a batch.
    private struct ConsumerCounts: ~Copyable {
        let settled = Atomic<Int>(0)  // taken events finished; `sealBit` once abandoned
        let failed = Atomic<Int>(0)
        let lagNanos = Atomic<Int>(0)
    }

    /// On cache lines of their own: next to the fields that every offer reads, the consumer's
    /// write per event made each offer wait for the line to come back from the consumer's core.
    private let consumer = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        .initializeMemory(as: ConsumerCounts.self, to: ConsumerCounts())
    private let draining = Atomic<Bool>(false)
    /// After draining its queue a consumer lingers this long before it parks. A lingering
    /// consumer is woken early only when its queue passes half full, so under load events are
    /// taken in batches and publishers rarely pay for a wakeup system call, while a `block`
    /// queue never waits on a napping consumer. A quiet subscriber parks after the linger and
    /// is woken at once by the next event.
    private static let lingerNanos: UInt64 = 1_000_000

    /// The journal a ``OverflowPolicy/spill`` mailbox's consumer reads; nil for the other policies.
    let spillSource: (any SpillSource)?

    /// Says when the queue loses events.
    let lossLog: LossLog

    /// A mailbox of `capacity` events for the subscriber `name`.
    init(capacity: Int, policy: OverflowPolicy, spillSource: (any SpillSource)? = nil, name: String) {
        lossLog = LossLog(subscriber: name)
        self.spillSource = policy == .spill ? spillSource : nil
        let events = EventRing(capacity: min(capacity, 1024))
        guarded.initialize(to: Guarded(capacity: capacity, events: events, policy: policy))
        streamWaiter.initialize(to: nil)
    }

    /// Changes the capacity and the overflow policy; what is queued stays. Lowering the
    /// capacity below what waits drops nothing: no more is taken until the queue is below it.
    func reconfigure(capacity: Int, policy: OverflowPolicy) {
        lock.lock()
        guarded.pointee.capacity = capacity
        guarded.pointee.policy = policy
        lock.unlock()
        lock.broadcast(Self.roomCondition)  // a blocked publisher may fit now
    }

    /// Wakes the consumer to run its subscriber's control requests before its next batch.
    func requestControl() {
        lock.lock()
        guarded.pointee.controlPending = true
        guarded.pointee.consumerSleeping = false
        guarded.pointee.consumerNapping = false
        lock.unlock()
        lock.signal(Self.workCondition)
    }

    deinit {
        guarded.deinitialize(count: 1)
        guarded.deallocate()
        streamWaiter.deinitialize(count: 1)
        streamWaiter.deallocate()
        consumer.deinitialize(count: 1)
        consumer.deallocate()
    }

    // MARK: The queue, with the lock held

    @inline(__always) private var queuedCount: Int { guarded.pointee.events.count }
    @inline(__always) private var hasRoom: Bool { guarded.pointee.events.count < guarded.pointee.capacity }
    @inline(__always) private func enqueue(_ event: consuming Event) { guarded.pointee.events.append(consume event) }
    private func dequeue() -> Event? { guarded.pointee.events.popFirst() }
    /// Moves the waiting events into the empty `batch`, swapping storage with it.
    @inline(__always) private func takeQueued(into batch: inout EventRing) { swap(&guarded.pointee.events, &batch) }
    /// Empties the queue; a tracked event's tracker learns it was lost.
    private func removeAllQueued() -> Int {
        let count = guarded.pointee.events.count
        while let event = dequeue() { event.finishTracking(.lost) }
        return count
    }

    /// Queues an event under the overflow policy. With `block`, waits for room: until `waitUntil`
    /// (monotonic nanoseconds) when given, else for as long as it takes, unless the publisher is
    /// a subscriber (then it never waits). While draining, only subscribers' events are taken.
    func offer(_ event: consuming Event, fromSubscriber: Bool, waitUntil: UInt64? = nil) -> Offer {
        lock.lock()
        let state = guarded.pointee.state
        guard state == .open || (state == .draining && fromSubscriber) else {
            lock.unlock()
            return .closed
        }
        // The rare cases live in functions of their own: a continuation in this frame would cost
        // a metadata lookup on every call.
        if spillSource != nil { return offerToSpill(event) }
        if !hasRoom { return offerToFullQueue(event, fromSubscriber: fromSubscriber, waitUntil: waitUntil) }
        return admit(event)
    }

    /// With the lock held, released here: takes an event there is room for.
    @inline(__always) private func admit(_ event: consuming Event) -> Offer {
        guarded.pointee.received += 1
        if guarded.pointee.hasStreamWaiter { return handToStream(event) }
        enqueue(consume event)
        let wake = guarded.pointee.consumerSleeping
            || (guarded.pointee.consumerNapping && queuedCount >= guarded.pointee.capacity / 2)
        if wake {
            guarded.pointee.consumerSleeping = false
            guarded.pointee.consumerNapping = false
        }
        lock.unlock()
        if wake { lock.signal(Self.workCondition) }
        return .accepted
    }

    /// With the lock held, released here: the queue is full, so the overflow policy decides.
    /// A lost event is noted in the loss log here, off the publish path's common case: a call
    /// in the router's delivery loop kept the compiler from inlining this offer into it.
    @inline(never) private func offerToFullQueue(_ event: consuming Event, fromSubscriber: Bool, waitUntil: UInt64?) -> Offer {
        let (capacity, policy) = (guarded.pointee.capacity, guarded.pointee.policy)
        switch makeRoom(fromSubscriber: fromSubscriber, waitUntil: waitUntil) {
        case nil: return admit(event)
        case .evicted?:
            _ = admit(event)
            lossLog.dropped(capacity: capacity, policy: policy)
            return .evicted
        case .dropped?:
            lossLog.dropped(capacity: capacity, policy: policy)
            return .dropped
        case let refused?: return refused
        }
    }

    /// With the lock held, released here: a spilling mailbox queues nothing (its consumer reads
    /// the journal), and counts what the journal failed to write as dropped.
    @inline(never) private func offerToSpill(_ event: borrowing Event) -> Offer {
        guarded.pointee.received += 1
        let writing = spillSource?.isWriting != false
        if !writing { guarded.pointee.dropped += 1 }
        let capacity = guarded.pointee.capacity
        lock.unlock()
        event.finishTracking(writing ? .done : .lost)  // the journal holds it: the subscriber reads it from there
        if !writing { lossLog.dropped(capacity: capacity, policy: .spill) }
        return writing ? .accepted : .evicted
    }

    /// With the lock held, the queue full: applies the overflow policy. Nil once there is room
    /// for the event, `evicted` once the oldest made room (the lock still held); otherwise the
    /// outcome, with the lock released.
    @inline(never) private func makeRoom(fromSubscriber: Bool, waitUntil: UInt64?) -> Offer? {
        switch guarded.pointee.policy {
        case .dropNewest,
             .block where fromSubscriber && waitUntil == nil:  // a subscriber waits only when it says how long
            return refuseFullQueue()
        case .dropOldest:
            if let evicted = dequeue() {
                evicted.finishTracking(.lost)
                guarded.pointee.dropped += 1
                return .evicted
            }
        case .spill:
            preconditionFailure("a spilling mailbox queues nothing")
        case .block:
            guarded.pointee.blockedPublishers += 1
            if guarded.pointee.consumerSleeping || guarded.pointee.consumerNapping { lock.signal(Self.workCondition) }
            func admits() -> Bool {
                guarded.pointee.state == .open || (guarded.pointee.state == .draining && fromSubscriber)
            }
            var inTime = true
            repeat {
                if let waitUntil { inTime = lock.wait(Self.roomCondition, untilMonotonic: waitUntil) } else { lock.wait(Self.roomCondition) }
            } while !hasRoom && admits() && inTime
            guarded.pointee.blockedPublishers -= 1
            guard admits() else {
                lock.unlock()
                return .closed
            }
            if !hasRoom { return refuseFullQueue() }
        }
        return nil
    }

    /// With the lock held, released here: counts the event as received and dropped.
    private func refuseFullQueue() -> Offer {
        guarded.pointee.received += 1
        guarded.pointee.dropped += 1
        lock.unlock()
        return .dropped
    }

    /// With the lock held, released here: hands the event straight to the stream consumer waiting for one.
    @inline(never) private func handToStream(_ event: Event) -> Offer {
        let waiter = takeStreamWaiter()
        guarded.pointee.taken += 1
        lock.unlock()
        _ = settle(failed: false)
        event.finishTracking(.done)  // a stream consumer's work is its own
        waiter?.resume(returning: event)
        return .accepted
    }

    /// Moves the waiting events into the empty `batch`, sleeping until one arrives or the
    /// monotonic `deadline` passes. `.finished` once stopped, or finishing with nothing left.
    func take(into batch: inout EventRing, until deadline: UInt64?) -> Take {
        lock.lock()
        defer { lock.unlock() }
        var lingered = false
        while true {
            if guarded.pointee.state == .stopped { return .finished }
            if guarded.pointee.controlPending {
                guarded.pointee.controlPending = false
                return .control
            }
            if queuedCount > 0 {
                takeQueued(into: &batch)
                guarded.pointee.taken += batch.count
                if guarded.pointee.blockedPublishers > 0 { lock.broadcast(Self.roomCondition) }
                return .events
            }
            if guarded.pointee.state == .finishing { return .finished }
            if guarded.pointee.state == .draining {  // more may come from other subscribers; no timers now
                // A deadline asked for before the drain (a timer, a batch that waits to fill) is
                // over: the consumer hands over what it gathered now.
                if deadline != nil { return .timedOut }
                guarded.pointee.consumerSleeping = true
                lock.wait(Self.workCondition)
                continue
            }
            if !lingered {
                lingered = true
                guarded.pointee.consumerNapping = true
                _ = lock.wait(Self.workCondition, untilMonotonic: min(deadline ?? .max, SystemClock.monotonicNanos() + Self.lingerNanos))
                guarded.pointee.consumerNapping = false
                continue
            }
            guarded.pointee.consumerSleeping = true
            if let deadline {
                if !lock.wait(Self.workCondition, untilMonotonic: deadline) {
                    guarded.pointee.consumerSleeping = false
                    return .timedOut
                }
            } else {
                lock.wait(Self.workCondition)
            }
        }
    }

    // MARK: Spilling

    /// The spilling consumer takes one event from the journal; `backlog` when it was accepted
    /// before this run (after a restart), so it counts as received now.
    func takeSpilled(backlog: Bool) {
        lock.withLock {
            guarded.pointee.taken += 1
            if backlog { guarded.pointee.received += 1 }
        }
    }

    /// Waits for the spilling consumer, until `deadline` (monotonic nanoseconds): `.finished`
    /// once finishing or stopped, `.control` for control requests, else `.timedOut`.
    func waitToSpill(until deadline: UInt64) -> Take {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if guarded.pointee.state == .stopped || guarded.pointee.state == .finishing { return .finished }
            if guarded.pointee.controlPending {
                guarded.pointee.controlPending = false
                return .control
            }
            guarded.pointee.consumerSleeping = true
            let woken = lock.wait(Self.workCondition, untilMonotonic: deadline)
            guarded.pointee.consumerSleeping = false
            if !woken { return .timedOut }
        }
    }

    /// The next event for a stream consumer, waiting for one; nil once the stream has ended.
    func next() async -> Event? {
        lock.lock()
        if let ready = takeForStream() { return deliverToStream(ready) }
        lock.unlock()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                lock.lock()
                // Re-check under the lock: an event or the end may have come meanwhile, and a task
                // cancelled before this point has already run its cancellation handler.
                if let ready = takeForStream() {
                    continuation.resume(returning: deliverToStream(ready))
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: nil)
                } else {
                    streamWaiter.pointee = continuation
                    guarded.pointee.hasStreamWaiter = true
                    lock.unlock()
                }
            }
        } onCancel: {
            resumeStreamWaiter()
        }
    }

    /// With the lock held: the next event and whether the stream ends after it, or `(nil, true)`
    /// when it has ended; nil when the consumer must wait.
    private func takeForStream() -> (event: Event?, ended: Bool)? {
        let state = guarded.pointee.state
        if state != .stopped, let event = dequeue() {
            guarded.pointee.taken += 1
            if guarded.pointee.blockedPublishers > 0 { lock.broadcast(Self.roomCondition) }
            return (event, state == .finishing && queuedCount == 0)
        }
        return state == .finishing || state == .stopped ? (nil, true) : nil
    }

    /// With the lock held on entry, released here: settles what `takeForStream` took.
    private func deliverToStream(_ ready: (event: Event?, ended: Bool)) -> Event? {
        lock.unlock()
        if let event = ready.event {
            settle(failed: false)
            event.finishTracking(.done)
        }
        if ready.ended { onStreamEnd?() }
        return ready.event
    }

    /// With the lock held: the waiting stream consumer, no longer waiting.
    @inline(__always) private func takeStreamWaiter() -> CheckedContinuation<Event?, Never>? {
        guard guarded.pointee.hasStreamWaiter else { return nil }
        guarded.pointee.hasStreamWaiter = false
        defer { streamWaiter.pointee = nil }
        return streamWaiter.pointee
    }

    private func resumeStreamWaiter() {
        lock.lock()
        let waiter = takeStreamWaiter()
        lock.unlock()
        waiter?.resume(returning: nil)
    }

    /// Counts a taken event as handled or failed: one atomic operation per event, so that
    /// sealing can tell exactly which taken events finished. False when the mailbox was
    /// sealed first (the event was already counted as abandoned): deliver no more.
    @discardableResult
    func settle(failed isFailure: Bool) -> Bool {
        let before = consumer.pointee.settled.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
        if before & Self.sealBit != 0 { return false }
        if isFailure { consumer.pointee.failed.wrappingAdd(1, ordering: .relaxed) }
        return true
    }

    /// True once ``seal()`` ran: deliver no more.
    var isSealed: Bool { consumer.pointee.settled.load(ordering: .relaxed) & Self.sealBit != 0 }

    /// Waits `nanoseconds` on the consumer's thread (a retry's backoff); false, at once, when
    /// the mailbox is or becomes sealed meanwhile.
    func pause(nanoseconds: UInt64) -> Bool {
        let end = SystemClock.monotonicNanos() &+ nanoseconds
        lock.lock()
        defer { lock.unlock() }
        while guarded.pointee.state != .stopped {
            if SystemClock.monotonicNanos() >= end { return true }
            _ = lock.wait(Self.roomCondition, untilMonotonic: end)
        }
        return false
    }

    /// Records the lag of the first event of a batch whose handling starts now: the oldest one waiting.
    func recordStart(of event: Event) {
        consumer.pointee.lagNanos.store(Int(max(0, SystemClock.unixSeconds() - event.time) * 1e9), ordering: .relaxed)
    }

    /// With the lock held: releases it, then wakes the consumer, every blocked publisher and a
    /// waiting stream consumer (which gets nil), so each of them sees the new state.
    private func unlockWakingEveryone() {
        let waiter = takeStreamWaiter()
        lock.unlock()
        lock.signal(Self.workCondition)
        lock.broadcast(Self.roomCondition)
        waiter?.resume(returning: nil)
    }

    /// Shutdown began: from now on only subscribers' own publishes are taken, so chains of
    /// subscribers drain completely; blocked publishers are released, timers stop.
    func beginDrain() {
        lock.lock()
        if guarded.pointee.state == .open { guarded.pointee.state = .draining }
        draining.store(true, ordering: .relaxed)
        lock.unlock()
        lock.signal(Self.workCondition)  // a napping consumer stops waiting for timers
        lock.broadcast(Self.roomCondition)  // blocked outside publishers give up
    }

    /// Everything drained: the consumer finishes once its queue is empty.
    func finish() {
        lock.lock()
        if guarded.pointee.state == .draining { guarded.pointee.state = .finishing }
        let ended = queuedCount == 0 && onStreamEnd != nil
        unlockWakingEveryone()
        if ended { onStreamEnd?() }
    }

    /// True from ``beginDrain()`` on: timers no longer fire.
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Events queued or in the consumer's hands, events ever routed here, and events the
    /// consumer finished: a snapshot for telling when a draining router has gone quiet, and
    /// which consumer is stuck in a call (its events in hand, `settled` not moving).
    func activity() -> (pending: Int, received: Int, settled: Int, inHand: Bool) {
        lock.withLock {
            let finished = consumer.pointee.settled.load(ordering: .relaxed) & ~Self.sealBit
            let inHand = guarded.pointee.taken > finished
            if spillSource != nil {  // offered but not yet read back from the journal, or in hand
                return (guarded.pointee.received - guarded.pointee.dropped - finished, guarded.pointee.received, finished, inHand)
            }
            return (queuedCount + guarded.pointee.taken - finished, guarded.pointee.received, finished, inHand)
        }
    }

    /// Stops everything now: what is queued or taken but unsettled counts as abandoned. True
    /// when the consumer had taken events it had not settled: a handler call under way, or
    /// about to begin.
    @discardableResult
    func seal() -> Bool {
        lock.lock()
        guard guarded.pointee.state != .stopped else {
            lock.unlock()
            return false
        }
        guarded.pointee.state = .stopped
        let settledBefore = consumer.pointee.settled.bitwiseOr(Self.sealBit, ordering: .acquiringAndReleasing).oldValue
        guarded.pointee.settledAtSeal = settledBefore
        let inHand = guarded.pointee.taken - settledBefore
        guarded.pointee.abandoned += removeAllQueued() + inHand
        unlockWakingEveryone()
        onStreamEnd?()
        return inHand > 0
    }

    /// A consistent snapshot of the counters.
    func stats(name: String) -> SubscriberStats {
        lock.withLock {
            let failures = consumer.pointee.failed.load(ordering: .relaxed)
            let finished = guarded.pointee.settledAtSeal ?? consumer.pointee.settled.load(ordering: .relaxed)
            let counts = (
                received: guarded.pointee.received, dropped: guarded.pointee.dropped,
                abandoned: guarded.pointee.abandoned, capacity: guarded.pointee.capacity)
            var stats = SubscriberStats(
                name: name, received: counts.received, handled: finished - failures, failed: failures,
                dropped: counts.dropped, abandoned: counts.abandoned, queueDepth: queuedCount, capacity: counts.capacity,
                lag: Double(consumer.pointee.lagNanos.load(ordering: .relaxed)) / 1e9, deadLettered: 0, restarts: 0)
            if spillSource != nil {  // still in the journal for it: it reads them after a restart
                stats.pending = max(0, counts.received - finished - counts.dropped - counts.abandoned)
            }
            return stats
        }
    }
}
