import DequeModule
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A subscription: a name, its patterns, and a bounded queue with its own consumer.
///
/// Returned by ``Router/subscribe(_:name:capacity:overflow:handler:)``; pass it to
/// ``Router/unsubscribe(_:)`` to end it.
public final class Subscriber: Sendable {
    /// The subscriber's name, used in stats and logs.
    public let name: String
    /// The patterns it was subscribed with.
    public let patterns: [String]
    /// What it does when its handler fails.
    public let failurePolicy: FailurePolicy
    let mailbox: Mailbox
    let context: SubscriberContext
    /// Signalled when its consumer has finished for good.
    let finished = Completion()
    private let thread = Mutex<pthread_t?>(nil)
    private let handler = Mutex<UncheckedTransfer<any EventHandler>?>(nil)
    private let deadLettered = Atomic<Int>(0)

    init(name: String, patterns: [String], failurePolicy: FailurePolicy, mailbox: Mailbox, router: Router) {
        self.name = name
        self.patterns = patterns
        self.failurePolicy = failurePolicy
        self.mailbox = mailbox
        context = SubscriberContext(name: name, router: router)
    }

    /// A snapshot of its counters.
    public func stats() -> SubscriberStats {
        var stats = mailbox.stats(name: name)
        stats.deadLettered = deadLettered.load(ordering: .relaxed)
        stats.restarts = context.restarts.load(ordering: .relaxed)
        return stats
    }

    /// The dead-letter topic of this subscriber.
    var deadLetterTopic: String { "deadletter.\(name)" }

    /// True when called from this subscriber's own thread.
    var isOnOwnThread: Bool { OSThread.isCurrent(thread.withLock { $0 }) }

    /// Stops the handler's call in progress: the drain deadline has passed.
    func interrupt() {
        handler.withLock { $0?.value.interrupt() }
    }

    /// Starts the consumer thread, runs the handler's `start` there and waits for it; the
    /// thread then waits for `gate`, if any, before it takes events or fires timers.
    /// Returns the start error, if any; the thread has then already ended.
    func startWorker(handler: any EventHandler, gate: Completion?) -> (any Error)? {
        let started = Completion()
        let startError = Mutex<(any Error)?>(nil)
        self.handler.withLock { $0 = UncheckedTransfer(handler) }
        let transfer = UncheckedTransfer(handler)
        OSThread.spawn { [self] in
            thread.withLock { $0 = pthread_self() }
            PublisherContext.current.pointee.isSubscriberThread = true
            let handler = transfer.value
            do {
                try handler.start(context)
            } catch {
                startError.withLock { $0 = error }
                started.signal()
                finished.signal()
                return
            }
            started.signal()
            gate?.waitBlocking()
            runLoop(handler)
            handler.stop()
            self.handler.withLock { $0 = nil }
            finished.signal()
        }
        started.waitBlocking()
        return startError.withLock { $0 }
    }

    /// Takes events in batches and hands them to the handler, firing timers in between, until the mailbox finishes.
    private func runLoop(_ handler: any EventHandler) {
        let mailbox = self.mailbox  // one retain for the loop, not one per call: publishers retain it too
        var batch = Deque<Event>()
        var consecutiveFailures = 0
        while true {
            let deadline = mailbox.isDraining ? nil : handler.nextTimerDeadline
            switch mailbox.take(into: &batch, until: deadline) {
            case .events:
                mailbox.recordStart(of: batch[0])
                for index in batch.indices {
                    // The first attempt borrows the event from the batch: passing it on to a
                    // function would retain it, on a cache line the publisher is writing.
                    var handled = true
                    do {
                        try handler.handle(batch[index])
                        consecutiveFailures = 0
                    } catch {
                        handled = recover(batch[index], from: error, handler: handler, consecutiveFailures: &consecutiveFailures)
                    }
                    if !mailbox.settle(failed: !handled) { break }
                }
                batch.removeAll(keepingCapacity: true)
                if let deadline, Clock.monotonicNanos() >= deadline { handler.fireTimers() }
            case .timedOut:
                handler.fireTimers()
            case .finished:
                return
            }
        }
    }

    /// Applies the failure policy to an event whose first attempt threw `error`: retries with
    /// a doubling backoff, then a dead letter and perhaps a restart. True when a retry worked.
    private func recover(
        _ event: Event, from error: any Error, handler: any EventHandler, consecutiveFailures: inout Int
    ) -> Bool {
        var lastError = error
        var attempts = 1
        var pause = Clock.nanoseconds(failurePolicy.backoff)
        while attempts <= failurePolicy.retries, mailbox.pause(nanoseconds: pause) {
            attempts += 1
            do {
                try handler.handle(event)
                consecutiveFailures = 0
                return true
            } catch {
                lastError = error
                pause = Self.doubled(pause)
            }
        }
        consecutiveFailures += 1
        if failurePolicy.deadLetter, !event.topic.hasPrefix("deadletter.") {
            sendDeadLetter(event, error: lastError, attempts: attempts)
        }
        if consecutiveFailures >= failurePolicy.restartAfter {
            restart(handler)
            consecutiveFailures = 0
        }
        return false
    }

    /// The next backoff: twice the last, at most 30 s.
    private static func doubled(_ nanoseconds: UInt64) -> UInt64 { min(nanoseconds * 2, 30_000_000_000) }

    private func sendDeadLetter(_ event: Event, error: any Error, attempts: Int) {
        let letter: JSON = [
            "event": [
                "topic": .string(event.topic), "id": .string(event.id.description), "time": .double(event.time),
                "data": event.data, "headers": .object(.init(uniqueKeysWithValues: event.headers.map { ($0, .string($1)) })),
            ],
            "error": .string("\(error)"),
            "attempts": .int(Int64(attempts)),
        ]
        if (try? context.router?.publish(deadLetterTopic, data: letter, excluding: self)) != nil {
            deadLettered.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// Rebuilds the handler, retrying with a doubling backoff until it works or the subscriber stops.
    private func restart(_ handler: any EventHandler) {
        var pause = Clock.nanoseconds(failurePolicy.backoff)
        while !mailbox.isSealed {
            do {
                try handler.restart()
                context.recordRestart()
                return
            } catch {
                guard mailbox.pause(nanoseconds: pause) else { return }
                pause = Self.doubled(pause)
            }
        }
    }
}

/// Moves a non-Sendable value to the one thread that will own it from then on.
struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
