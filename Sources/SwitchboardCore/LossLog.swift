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
    private let logger: Logger

    /// The loss log of the subscriber `name`.
    init(subscriber name: String, interval: Duration = .seconds(10)) {
        self.interval = SystemClock.nanoseconds(interval)
        var logger = Logger(label: "switchboard")
        logger[metadataKey: "subscriber"] = .string(name)
        self.logger = logger
    }

    /// Counts one event lost by a queue of `capacity` under `policy` (on the publisher's thread,
    /// without the queue's lock: the rare path).
    func dropped(capacity: Int, policy: OverflowPolicy) {
        let now = SystemClock.monotonicNanos()
        let line: String? = state.withLock { state in
            if !state.warned {
                state.warned = true
                state.lastLine = now
                return "dropped an event: its queue is full (capacity \(capacity), overflow \(policy)); "
                    + "raise queue.capacity, or use overflow: block or spill"
            }
            state.unreported += 1
            guard now &- state.lastLine >= interval else { return nil }
            defer { (state.unreported, state.lastLine) = (0, now) }
            return "dropped \(state.unreported) more events in the last \(interval / 1_000_000_000)s"
        }
        if let line { logger.warning("\(line)") }
    }

    /// Logs the drops not yet reported (the subscriber ends).
    func flush() {
        let unreported = state.withLock { state in
            defer { state.unreported = 0 }
            return state.unreported
        }
        if unreported > 0 { logger.warning("dropped \(unreported) more events since the last report") }
    }
}
