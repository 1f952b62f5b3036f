import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One of a subscriber's workers: a bounded queue (its lane) with its own thread and its
/// own handler. A subscriber has one, or with `workers: N`, N of them.
final class Worker: Sendable {
    /// Its number among its subscriber's workers, from 1.
    let number: Int
    /// The subscriber it works for. Its thread keeps the subscriber alive while it runs.
    unowned let subscriber: Subscriber
    /// Work for the worker's own thread, run between two batches.
    private let controlRequests = Mutex<(pending: [ControlRequest], closed: Bool)>(([], false))
    let mailbox: Mailbox
    let context: SubscriberContext
    /// Signalled when its consumer has finished for good.
    let finished = Completion()
    private let thread = Mutex<pthread_t?>(nil)
    private let handler = Mutex<UncheckedTransfer<any EventHandler>?>(nil)
    private let deadLettered = Atomic<Int>(0)
    private let retried = Atomic<Int>(0)
    /// Events routed to its lane and not yet through its handler: which worker is free, for
    /// a subscriber with several workers and no key.
    let waiting = Atomic<Int>(0)
    /// Times its handler calls, when the router observes them.
    private let observer: (any HandlerObserver)?
    /// When the handler call in progress began (monotonic nanoseconds); 0 when idle. Kept only with an observer.
    private let busySince = Atomic<UInt64>(0)
    private let rebuilding = Atomic<Bool>(false)
    /// Set by ``interrupt()``, with `handler` locked: a handler set later is interrupted at once.
    private let interrupted = Atomic<Bool>(false)
    /// Taken once: by its thread, to stop the handler, or by ``end(grace:)``, giving up on that.
    private let stopClaimed = Atomic<Bool>(false)
    /// Set while its handler runs timer callbacks: a call that ``end(grace:)`` interrupts
    /// although the mailbox holds no event in hand.
    private let firingTimers = Atomic<Bool>(false)

    init(number: Int, of subscriber: Subscriber, mailbox: Mailbox, context: SubscriberContext, observer: (any HandlerObserver)?) {
        self.number = number
        self.subscriber = subscriber
        self.mailbox = mailbox
        self.context = context
        self.observer = observer
    }

    /// A snapshot of its counters.
    func stats() -> SubscriberStats {
        var stats = mailbox.stats(name: subscriber.name)
        stats.deadLettered = deadLettered.load(ordering: .relaxed)
        stats.restarts = context.restarts.load(ordering: .relaxed)
        stats.retries = retried.load(ordering: .relaxed)
        stats.published = context.published.load(ordering: .relaxed)
        stats.publishFailed = context.publishFailed.load(ordering: .relaxed)
        let since = busySince.load(ordering: .relaxed)
        if since != 0 { stats.busyFor = .nanoseconds(Int64(SystemClock.monotonicNanos() &- since)) }
        stats.isRebuilding = rebuilding.load(ordering: .relaxed)
        stats.memoryInUse = handler.withLock { $0?.value.memoryInUse }
        return stats
    }

    /// How long one call of its handler may take, if the handler says.
    var callBudget: Duration? { handler.withLock { $0?.value.callBudget } }

    /// True when called from this worker's own thread.
    var isOnOwnThread: Bool { OSThread.isCurrent(thread.withLock { $0 }) }

    /// Stops the handler's call in progress (the drain deadline has passed, or start-up is
    /// stopping), and that of a handler set after this.
    func interrupt() {
        handler.withLock { handler in
            interrupted.store(true, ordering: .relaxed)
            handler?.value.interrupt()
        }
    }

    /// Ends the subscriber at its drain deadline: seals its mailbox (what it holds counts as
    /// abandoned), interrupts a call in progress, and waits for its handler's `stop`, at most
    /// `grace`. What still runs then is left behind, with a log line: a call that has not
    /// ended (a long call in C) has the handler's `stop` skipped; a `stop` goes on, unwaited.
    func end(grace: Duration) async {
        // A call in progress: an event in hand, or timer callbacks (read after the seal, which
        // stops the run loop from firing more).
        if mailbox.seal() || firingTimers.load(ordering: .acquiring) { interrupt() }
        if await finished.wait(timeout: grace) { return }
        var logger = Logger(label: "switchboard")
        logger[metadataKey: "subscriber"] = .string(subscriber.name)
        if subscriber.workers.count > 1 { logger[metadataKey: "worker"] = .stringConvertible(number) }
        if claimStop() {
            logger.error("shutdown skipped: still in a call that cannot be interrupted, \(Quantities.duration(grace)) after the drain deadline")
        } else {
            logger.error("shutdown still running \(Quantities.duration(grace)) after the drain deadline: not waited for")
        }
    }

    /// True for the first caller only: the subscriber's thread before it stops the handler, or ``end(grace:)``.
    private func claimStop() -> Bool {
        stopClaimed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    /// Starts the consumer thread, runs the handler's `start` there and waits for it; the
    /// thread then waits until its subscriber is routed to before it takes events or fires timers.
    /// Returns the start error, if any; the thread has then already ended.
    func start(handler: any EventHandler) -> (any Error)? {
        let started = Completion()
        let startError = Mutex<(any Error)?>(nil)
        self.handler.withLock { current in
            current = UncheckedTransfer(handler)
            if interrupted.load(ordering: .relaxed) { handler.interrupt() }
        }
        let transfer = UncheckedTransfer(handler)
        // A spilling subscriber reads from here on: nothing after this can have been routed to it yet.
        let spillHead = mailbox.spillSource?.nextSequence
        OSThread.spawn { [self, subscriber] in  // the subscriber lives as long as its threads
            thread.withLock { $0 = pthread_self() }
            PublisherContext.current().pointee.isSubscriberThread = true
            PublisherContext.current().pointee.publisher = context
            var handler = transfer.value  // a reload may replace it
            do {
                try handler.start(context)
            } catch {
                startError.withLock { $0 = error }
                started.signal()
                finished.signal()
                return
            }
            started.signal()
            subscriber.routed.waitBlocking()
            if let source = mailbox.spillSource, let spillHead {
                spillLoop(&handler, source: source, head: spillHead)
            } else {
                runLoop(&handler)
            }
            let unrun = controlRequests.withLock { control in
                control.closed = true
                return control.pending
            }
            for request in unrun { request.done.signal() }  // never run: the subscriber has stopped
            if claimStop() { handler.stop() }
            self.handler.withLock { $0 = nil }
            mailbox.lossLog.flush()
            context.flushPublishFailures()
            finished.signal()
        }
        started.waitBlocking()
        return startError.withLock { $0 }
    }

    /// Takes events in batches and hands them to the handler, firing timers in between, until the mailbox finishes.
    private func runLoop(_ handler: inout any EventHandler) {
        let mailbox = self.mailbox  // one retain for the loop, not one per call: publishers retain it too
        var batch = EventRing()
        var consecutiveFailures = 0
        var gathered = Gathered()
        let balanced = subscriber.balancesLanes
        while true {
            var deadline = mailbox.isDraining ? nil : handler.nextTimerDeadline
            if !gathered.events.isEmpty { deadline = min(deadline ?? .max, gathered.due) }
            switch mailbox.take(into: &batch, until: deadline) {
            case .events:
                var unsettled = batch.count  // for `waiting`
                mailbox.recordStart(of: batch.first!)
                let tracking = DeliveryTracker.inUse.load(ordering: .relaxed)
                if let batching = handler.batching {
                    if !gather(&batch, into: &gathered, batching, for: handler, consecutiveFailures: &consecutiveFailures) {
                        Self.abandon(&gathered.events)  // sealed: counted as abandoned
                    }
                } else {
                    var timing = observer.map { _ in BatchClock() }
                    // Each event moves out of the batch: reading it in place would cost a retain and
                    // a release per event, on a count that the publisher's thread writes too.
                    while let event = batch.popFirst() {
                        let start = timing?.start(self)
                        let handled = deliver(event, to: handler, consecutiveFailures: &consecutiveFailures)
                        if let start { timing?.end(self, event: event, started: start) }
                        if tracking, handled { event.tracker?.finish(.done) }  // a failure's outcome is recover's
                        if balanced {  // before the settle that makes it count as handled
                            waiting.subtract(1, ordering: .relaxed)
                            unsettled -= 1
                        }
                        if !mailbox.settle(failed: !handled) { break }
                    }
                }
                Self.abandon(&batch)  // what a seal left: counted as abandoned
                if balanced { waiting.subtract(unsettled, ordering: .relaxed) }
                fireDueTimers(handler)
            case .timedOut:
                if !gathered.events.isEmpty, mailbox.isDraining || SystemClock.monotonicNanos() >= gathered.due {
                    _ = deliver(gathered: &gathered, to: handler, consecutiveFailures: &consecutiveFailures)
                }
                fireDueTimers(handler)
            case .control:
                runControlRequests(&handler)
            case .finished:
                Self.abandon(&gathered.events)  // anything gathered was sealed in hand: counted as abandoned
                return
            }
        }
    }

    /// Events taken for a batching handler but not yet handed to it, and when they are due.
    private struct Gathered {
        var events: [Event] = []
        /// When the first of them has waited its ``Batching/maxWait`` (monotonic nanoseconds).
        var due: UInt64 = 0
    }

    /// Moves the taken events into `gathered`, handing over every full batch, and the partial
    /// one as well once it is due or the subscriber drains. False once the mailbox was sealed.
    private func gather(
        _ batch: inout EventRing, into gathered: inout Gathered, _ batching: Batching, for handler: any EventHandler,
        consecutiveFailures: inout Int
    ) -> Bool {
        while let event = batch.popFirst() {
            if gathered.events.isEmpty { gathered.due = SystemClock.monotonicNanos() &+ SystemClock.nanoseconds(batching.maxWait) }
            gathered.events.append(event)
            if gathered.events.count >= batching.maxEvents {
                guard deliver(gathered: &gathered, to: handler, consecutiveFailures: &consecutiveFailures) else { return false }
            }
        }
        if !gathered.events.isEmpty, mailbox.isDraining || SystemClock.monotonicNanos() >= gathered.due {
            return deliver(gathered: &gathered, to: handler, consecutiveFailures: &consecutiveFailures)
        }
        return true
    }

    /// Hands the gathered events to the handler as one batch, applying the failure policy to
    /// the batch if it throws, and settles each; false once the mailbox was sealed.
    private func deliver(gathered: inout Gathered, to handler: any EventHandler, consecutiveFailures: inout Int) -> Bool {
        let events = gathered.events
        gathered.events.removeAll(keepingCapacity: true)
        let started = SystemClock.monotonicNanos()
        if observer != nil { busySince.store(started, ordering: .relaxed) }
        let handled: Bool
        do {
            try handler.handle(batch: events)
            consecutiveFailures = 0
            handled = true
        } catch {
            handled = recover(events, from: error, handler: handler, consecutiveFailures: &consecutiveFailures) {
                try handler.handle(batch: events)
            }
        }
        if let observer {
            busySince.store(0, ordering: .relaxed)
            let duration = Int64(SystemClock.monotonicNanos() &- started)
            let startedAt = SystemClock.unixSeconds() - Double(duration) / 1e9
            for event in events {
                observer.observe(lagNanoseconds: max(0, Int64((startedAt - event.time) * 1e9)), durationNanoseconds: duration)
            }
        }
        if handled { for event in events { event.finishTracking(.done) } }
        for _ in events where !mailbox.settle(failed: !handled) { return false }
        return true
    }

    /// Empties what a seal left in hand; tracked events are lost to their trackers.
    private static func abandon(_ events: inout EventRing) {
        while let event = events.popFirst() { event.finishTracking(.lost) }
    }

    private static func abandon(_ events: inout [Event]) {
        for event in events { event.finishTracking(.lost) }
        events.removeAll()
    }

    /// The consumer of a spilling subscriber: reads every accepted event from the journal,
    /// from its saved position (or from `head`, the journal's next number when it started, the
    /// first time), hands those its patterns match to the handler, and saves its position every
    /// 100 ms and at the end. Events before `head` are the backlog of an earlier run.
    private func spillLoop(_ handler: inout any EventHandler, source: any SpillSource, head: UInt64) {
        let name = subscriber.name
        var next = source.position(of: name).map { $0 + 1 } ?? head
        var saved = next
        var cursor = source.cursor(from: next)
        var consecutiveFailures = 0
        var lastSave = SystemClock.monotonicNanos()
        var patterns = subscriber.patterns
        var matching = PatternSet(patterns)

        func save() {
            guard next != saved else { return }
            source.savePosition(next - 1, of: name)
            saved = next
            lastSave = SystemClock.monotonicNanos()
        }
        /// Reads and handles what is written; false once the mailbox was sealed.
        func readAll() -> Bool {
            while !mailbox.isSealed, let (sequence, event) = cursor.next() {
                next = sequence + 1
                guard matching.matches(event.topic), event.topic != subscriber.deadLetterTopic else { continue }
                mailbox.takeSpilled(backlog: sequence < head)
                let handled = deliver(event, to: handler, consecutiveFailures: &consecutiveFailures)
                guard mailbox.settle(failed: !handled) else {
                    next = sequence  // sealed in hand: it counts as not handled, and comes again
                    return false
                }
                if SystemClock.monotonicNanos() &- lastSave >= 100_000_000 { save() }
                fireDueTimers(handler)
            }
            return !mailbox.isSealed
        }

        while true {
            guard readAll() else { return save() }
            save()
            if subscriber.patterns != patterns {  // a reload changed them
                patterns = subscriber.patterns
                matching = PatternSet(patterns)
            }
            let poll = SystemClock.monotonicNanos() + 5_000_000  // the journal writes every 5 ms
            let deadline = mailbox.isDraining ? poll : min(poll, handler.nextTimerDeadline ?? .max)
            switch mailbox.waitToSpill(until: deadline) {
            case .finished:
                // Everything accepted before now is the journal's, or soon will be: catch up to it.
                let target = source.nextSequence
                while next < target, !mailbox.isSealed {
                    guard readAll() else { return save() }
                    if next < target { usleep(1000) }
                }
                return save()
            case .control:
                runControlRequests(&handler)
            case .timedOut, .events:
                fireDueTimers(handler)
            }
        }
    }

    /// Hands one event to the handler, applying the failure policy if it throws; true when handled.
    /// The event is borrowed: passing it on with a retain would write to a cache line the
    /// publisher is writing.
    @inline(__always)
    private func deliver(_ event: borrowing Event, to handler: any EventHandler, consecutiveFailures: inout Int) -> Bool {
        do {
            try handler.handle(event)
            consecutiveFailures = 0
            return true
        } catch {
            let event = copy event
            return recover([event], from: error, handler: handler, consecutiveFailures: &consecutiveFailures) {
                try handler.handle(event)
            }
        }
    }

    /// Runs the handler's timers that are due, unless the subscriber is draining.
    private func fireDueTimers(_ handler: any EventHandler) {
        if let deadline = handler.nextTimerDeadline, !mailbox.isDraining, SystemClock.monotonicNanos() >= deadline {
            fireTimers(handler)
        }
    }

    /// Runs the handler's due timers, marked as a call that the drain deadline interrupts.
    private func fireTimers(_ handler: any EventHandler) {
        firingTimers.store(true, ordering: .releasing)
        handler.fireTimers()
        firingTimers.store(false, ordering: .releasing)
    }

    /// Runs the pending control requests with the handler (which they may replace).
    private func runControlRequests(_ handler: inout any EventHandler) {
        let requests = controlRequests.withLock { control in
            defer { control.pending = [] }
            return control.pending
        }
        for request in requests { request.run(&handler) }
        self.handler.withLock { [handler] in $0 = UncheckedTransfer(handler) }
    }

    /// Times the calls of one batch for the observer: one monotonic clock read per call (a
    /// call starts when the one before it ended), and one wall clock read per batch to turn
    /// them into lags.
    private struct BatchClock {
        let wallNanos = Int64(SystemClock.unixSeconds() * 1e9)
        let monotonicAtWall = SystemClock.monotonicNanos()
        private var last: UInt64

        init() { last = monotonicAtWall }

        func start(_ worker: Worker) -> UInt64 {
            worker.busySince.store(last, ordering: .relaxed)
            return last
        }

        mutating func end(_ worker: Worker, event: borrowing Event, started: UInt64) {
            last = SystemClock.monotonicNanos()
            worker.busySince.store(0, ordering: .relaxed)
            let startWall = wallNanos + Int64(bitPattern: started &- monotonicAtWall)
            worker.observer?.observe(
                lagNanoseconds: max(0, startWall - Int64(event.time * 1e9)), durationNanoseconds: Int64(last &- started))
        }
    }

    /// A piece of work for the worker's own thread, with its handler.
    private final class ControlRequest: @unchecked Sendable {  // `body` runs once, on the worker's thread
        let body: (inout any EventHandler) -> Void
        let done = Completion()
        let ran = Atomic<Bool>(false)
        init(_ body: @escaping (inout any EventHandler) -> Void) { self.body = body }
        func run(_ handler: inout any EventHandler) {
            body(&handler)
            ran.store(true, ordering: .releasing)
            done.signal()
        }
    }

    /// Runs `body` on the worker's own thread, between two batches, with its handler
    /// (which `body` may replace), and waits for it. False when the worker has stopped.
    private func onOwnThread(_ body: @escaping (inout any EventHandler) -> Void) -> Bool {
        let request = ControlRequest(body)
        let queued = controlRequests.withLock { control in
            if !control.closed { control.pending.append(request) }
            return !control.closed
        }
        guard queued else { return false }  // the thread has ended: nobody would run it
        mailbox.requestControl()
        request.done.waitBlocking()
        return request.ran.load(ordering: .acquiring)
    }

    /// Replaces the handler: `handler` starts on the worker's thread; if that works, the
    /// old handler is stopped and the new one takes the next event (the queue is untouched),
    /// otherwise the old one stays and this throws the start error.
    func replaceHandler(with handler: any EventHandler) throws {
        let failure = Mutex<(any Error)?>(nil)
        let transfer = UncheckedTransfer(handler)
        let context = self.context
        rebuilding.store(true, ordering: .relaxed)
        defer { rebuilding.store(false, ordering: .relaxed) }
        let ran = onOwnThread { current in
            do {
                try transfer.value.start(context)
            } catch {
                failure.withLock { $0 = error }
                return
            }
            current.stop()
            current = transfer.value
        }
        if let error = failure.withLock({ $0 }) { throw error }
        guard ran else { throw RouterError.shutDown }
    }

    /// Applies the failure policy to events whose first attempt threw `error` (one event, or a
    /// batch): retries them with `attempt` after a doubling backoff, or after the wait the
    /// error asks for (``RetryAdvice``), then dead letters and perhaps a restart. True when a
    /// retry worked.
    private func recover(
        _ events: [Event], from error: any Error, handler: any EventHandler, consecutiveFailures: inout Int,
        attempt: () throws -> Void
    ) -> Bool {
        let policy = subscriber.failurePolicy
        let longest = SystemClock.nanoseconds(policy.maxBackoff)
        var lastError = error
        var attempts = 1
        var backoff = min(SystemClock.nanoseconds(policy.backoff), longest)
        while attempts <= policy.retries {
            let advice = lastError as? any RetryAdvice
            if advice?.isPermanent == true { break }
            let asked = advice?.retryAfter.map { min(SystemClock.nanoseconds(max($0, .zero)), longest) }
            guard mailbox.pause(nanoseconds: asked ?? backoff) else { break }
            attempts += 1
            retried.wrappingAdd(1, ordering: .relaxed)
            do {
                try attempt()
                consecutiveFailures = 0
                return true
            } catch {
                lastError = error
                backoff = Self.doubled(backoff, atMost: longest)
            }
        }
        consecutiveFailures += 1
        let sealed = mailbox.isSealed  // the drain deadline cut it short: for its tracker, lost
        let failure = "\(lastError)"
        for event in events {
            let lettered = policy.deadLetters(event.topic) && sendDeadLetter(event, error: lastError, attempts: attempts)
            event.finishTracking(lettered ? .done : sealed ? .lost : .failed, failure: failure)
        }
        if consecutiveFailures >= policy.restartAfter {
            restart(handler)
            consecutiveFailures = 0
        }
        return false
    }

    /// The next backoff: twice the last, at most `longest`.
    private static func doubled(_ nanoseconds: UInt64, atMost longest: UInt64) -> UInt64 {
        nanoseconds >= longest / 2 ? longest : nanoseconds * 2
    }

    /// Publishes the dead letter of `event`; true when a subscriber took it.
    private func sendDeadLetter(_ event: Event, error: any Error, attempts: Int) -> Bool {
        let letter: JSON = [
            "event": event.json,
            "error": .string("\(error)"),
            "attempts": .int(Int64(attempts)),
        ]
        guard let report = try? context.router?.publish(subscriber.deadLetterTopic, data: letter, excluding: subscriber) else { return false }
        deadLettered.wrappingAdd(1, ordering: .relaxed)
        return report.accepted > 0
    }

    /// Rebuilds the handler, retrying with a doubling backoff until it works or the subscriber stops.
    private func restart(_ handler: any EventHandler) {
        rebuilding.store(true, ordering: .relaxed)
        defer { rebuilding.store(false, ordering: .relaxed) }
        let policy = subscriber.failurePolicy
        let longest = SystemClock.nanoseconds(policy.maxBackoff)
        var pause = min(SystemClock.nanoseconds(policy.backoff), longest)
        while !mailbox.isSealed {
            do {
                try handler.restart()
                context.recordRestart()
                return
            } catch {
                guard mailbox.pause(nanoseconds: pause) else { return }
                pause = Self.doubled(pause, atMost: longest)
            }
        }
    }
}

/// Moves a non-Sendable value to the one thread that will own it from then on.
struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
