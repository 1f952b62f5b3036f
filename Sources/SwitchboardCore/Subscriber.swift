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
    let mailbox: Mailbox
    /// Signalled when its consumer has finished for good.
    let finished = Completion()
    private let thread = Mutex<pthread_t?>(nil)

    init(name: String, patterns: [String], mailbox: Mailbox) {
        self.name = name
        self.patterns = patterns
        self.mailbox = mailbox
    }

    /// A snapshot of its counters.
    public func stats() -> SubscriberStats { mailbox.stats(name: name) }

    /// True when called from this subscriber's own thread.
    var isOnOwnThread: Bool { OSThread.isCurrent(thread.withLock { $0 }) }

    /// Starts the consumer thread, runs the handler's `start` there and waits for it.
    /// Returns the start error, if any; the thread has then already ended.
    func startWorker(handler: any EventHandler, context: SubscriberContext) -> (any Error)? {
        let started = Completion()
        let startError = Mutex<(any Error)?>(nil)
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
            runLoop(handler)
            handler.stop()
            finished.signal()
        }
        started.waitBlocking()
        return startError.withLock { $0 }
    }

    /// Takes events in batches and hands them to the handler, firing timers in between, until the mailbox finishes.
    private func runLoop(_ handler: any EventHandler) {
        let mailbox = self.mailbox  // one retain for the loop, not one per call: publishers retain it too
        var batch = Deque<Event>()
        while true {
            let deadline = handler.nextTimerDeadline
            switch mailbox.take(into: &batch, until: deadline) {
            case .events:
                mailbox.recordStart(of: batch[0])
                for index in batch.indices {
                    let failed: Bool
                    do {
                        try handler.handle(batch[index])
                        failed = false
                    } catch {
                        failed = true
                    }
                    if !mailbox.settle(failed: failed) { break }
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
}

/// Moves a non-Sendable value to the one thread that will own it from then on.
struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
