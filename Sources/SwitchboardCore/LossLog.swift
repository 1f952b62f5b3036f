import Logging
import Synchronization

/// Makes a subscriber's lost events loud without flooding the log: the first event its full
/// queue drops logs a warning at once, naming the queue and the fix; later drops are summed
/// into one line per interval, and what is left unreported is logged when the subscriber ends.
final class LossLog: Sendable {
    private struct State {
        var warned = false
        var unreported = 0
        var lastLine: UInt64 = 0
    }

    private let state = Mutex(State())
    private let interval: UInt64

    init(interval: Duration = .seconds(10)) { self.interval = SystemClock.nanoseconds(interval) }

    /// Counts one dropped event of `subscriber` (on the publisher's thread: the rare path).
    func dropped(by subscriber: Subscriber) {
        let now = SystemClock.monotonicNanos()
        let line: String? = state.withLock { state in
            if !state.warned {
                state.warned = true
                state.lastLine = now
                let stats = subscriber.mailbox.stats(name: subscriber.name)
                return "dropped an event: its queue is full (capacity \(stats.capacity), overflow \(subscriber.mailbox.policy)); "
                    + "raise queue.capacity, or use overflow: block or spill"
            }
            state.unreported += 1
            guard now &- state.lastLine >= interval else { return nil }
            defer { (state.unreported, state.lastLine) = (0, now) }
            return "dropped \(state.unreported) more events in the last \(interval / 1_000_000_000)s"
        }
        if let line { Self.logger(for: subscriber).warning("\(line)") }
    }

    /// Logs the drops not yet reported (the subscriber ends).
    func flush(for subscriber: Subscriber) {
        let unreported = state.withLock { state in
            defer { state.unreported = 0 }
            return state.unreported
        }
        if unreported > 0 { Self.logger(for: subscriber).warning("dropped \(unreported) more events since the last report") }
    }

    private static func logger(for subscriber: Subscriber) -> Logger {
        var logger = Logger(label: "switchboard")
        logger[metadataKey: "subscriber"] = .string(subscriber.name)
        return logger
    }
}
