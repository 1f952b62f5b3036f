import Logging
import SwitchboardCore

/// One test of a Lua plugin, as `switchboard test` runs it: a fresh state with the
/// subscriber's settings and limits (sandbox, `timeout`, `memory`, `allow`), a virtual clock
/// that only ``advance(by:)`` moves, `math.random` seeded alike in every run, and what the
/// plugin publishes, prints and logs recorded instead of routed. Driven from one thread.
public final class LuaTestRun {
    /// One call of `switchboard.publish` that succeeded.
    public struct Publish: Sendable {
        public let topic: String
        public let data: JSON
        public let headers: [String: String]
    }

    /// One call of `switchboard.log.<level>`.
    public struct LogLine: Sendable {
        /// `debug`, `info`, `warn` or `error`, as the plugin API names them.
        public let level: String
        public let message: String
        /// The fields table; an empty object when none was given.
        public let fields: JSON
    }

    /// What happened during the run.
    public struct Record: Sendable {
        /// What the plugin published, in order: `publish` returned 1 for each.
        public var publishes: [Publish] = []
        /// The lines `print` wrote, each without its newline.
        public var prints: [String] = []
        /// The plugin's own log lines.
        public var logs: [LogLine] = []
        /// Events that failed after their retries, as a run's summary counts them.
        public var failures = 0
        /// The failure messages, without their tracebacks, in order: each failed event's last
        /// error, and any failed timer callback, `shutdown` or restart.
        public var errors: [String] = []
        /// The failed events that the subscriber's `on_failure` would send as dead letters.
        public var deadLetters = 0
        /// Switchboard's own lines about the plugin (a publish it refused, a restart): what a
        /// run would log, to explain a failure.
        public var notes: [String] = []
        /// Why the run was cut short, if it was: more than ``LuaTestRun/recordLimit`` entries of
        /// one kind or ``LuaTestRun/recordByteLimit`` bytes (the rest were not kept), more than
        /// ``LuaTestRun/timerCallLimit`` timer calls, or ``LuaTestRun/timerFailureLimit`` failed
        /// timer callbacks (the rest did not fire). A test with a reason here fails.
        public var cutOff: String?
    }

    /// The most entries of each kind a record keeps: a test is for a few events, and a plugin
    /// that prints in a loop until its budget ends must not fill the runner's memory.
    public static let recordLimit = 10_000

    /// The most bytes a record keeps, about: publishes, prints and logs of a few events.
    public static let recordByteLimit = 64 << 20

    /// The most timer callbacks a run makes: a timer that sets `after(0, ...)` again from its
    /// callback would otherwise keep the clock from ever moving on.
    public static let timerCallLimit = 1_000_000

    /// After this many failed timer callbacks no timer fires: a callback that loops until its
    /// budget ends, on an `every` timer, would otherwise cost the budget at every due time.
    public static let timerFailureLimit = 10

    private var timerCalls = 0

    private let bench: LuaTestBench
    private let handler: LuaHandler
    private let policy: FailurePolicy
    private var consecutiveFailures = 0
    private var finished = false

    /// Loads the plugin in a new state whose clock reads `start` (Unix seconds) and runs its
    /// `init`; throws as a subscriber would fail to start, with `file:line`.
    public init(_ configuration: LuaSubscriberConfiguration, startingAt start: Double, seed: Int64) throws {
        bench = LuaTestBench(startingAt: UInt64(max(0, start * 1e9).rounded()), seed: seed)
        policy = configuration.onFailure
        handler = LuaHandler(
            configuration: configuration, logger: bench.logger(label: "switchboard"), output: -1, bench: bench)
        try handler.start(.detached(name: configuration.name, workers: configuration.workers))
        fireDueTimers()
    }

    deinit { finish() }

    /// What happened so far.
    public var record: Record { bench.record }

    /// The virtual time, in Unix seconds.
    public var now: Double { bench.clock.pointee }

    /// Hands the event to `handle` under the subscriber's failure policy: a failure is tried
    /// again `retries` times at once (the virtual clock does not move), then counted, and
    /// after `restart_after` failed events in a row the plugin gets a fresh state and `init`
    /// again, as in a run. Timers that are due then fire.
    public func handle(_ event: Event) {
        var attempts = 0
        while true {
            do {
                try handler.handle(event)
                consecutiveFailures = 0
                break
            } catch {
                attempts += 1
                guard attempts > policy.retries else { continue }
                bench.record.failures += 1
                bench.append(Self.withoutTraceback("\(error)"), to: \.errors)
                if policy.deadLetters(event.topic) { bench.record.deadLetters += 1 }
                consecutiveFailures += 1
                if consecutiveFailures >= policy.restartAfter {
                    consecutiveFailures = 0
                    do { try handler.restart() } catch { bench.append("restart failed: \(Self.withoutTraceback("\(error)"))", to: \.errors) }
                }
                break
            }
        }
        fireDueTimers()
    }

    /// Moves the virtual clock by `duration`, firing every timer that falls due on the way, in
    /// time order, each with the clock at its own due time.
    public func advance(by duration: Duration) {
        let (sum, overflow) = bench.nanos.addingReportingOverflow(SystemClock.nanoseconds(duration))
        let target = overflow ? .max : sum
        fireTimers(upTo: target)
        bench.set(nanos: target)
    }

    /// Runs the plugin's `shutdown` and closes its state; once.
    public func finish() {
        guard !finished else { return }
        finished = true
        handler.stop()
    }

    /// Fires the timers due now (a delay of 0), as a run does after each event.
    private func fireDueTimers() { fireTimers(upTo: bench.nanos) }

    /// Fires the timers due up to `target` one at a time, earliest first, the clock at each
    /// one's due time, up to ``timerCallLimit`` in all. A timer held at the clock's end
    /// (about 584 years on) never fires.
    private func fireTimers(upTo target: UInt64) {
        while let due = handler.nextTimerDeadline, due <= target, due < .max {
            guard timerCalls < Self.timerCallLimit else {
                return bench.cutOff("its timers made more than \(Self.timerCallLimit) calls")
            }
            guard bench.timerFailures < Self.timerFailureLimit else {
                return bench.cutOff("\(Self.timerFailureLimit) timer callbacks failed; the other timers did not fire")
            }
            timerCalls += 1
            bench.set(nanos: max(due, bench.nanos))
            handler.fireTimers(atMost: 1)
        }
    }

    /// A Lua error message without the traceback the host appends.
    static func withoutTraceback(_ message: String) -> String {
        guard let range = message.range(of: "\nstack traceback:") else { return message }
        return String(message[..<range.lowerBound])
    }
}
