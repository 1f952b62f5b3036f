import Foundation
import Synchronization
import UnixSignals

/// The signals of a run, through swift-service-lifecycle's `UnixSignalsSequence`: the first
/// SIGINT or SIGTERM shuts the run's group down gracefully (drain, plugin shutdown, summary),
/// a second one exits at once with 128 + the signal; SIGHUP asks for a reload. During start-up,
/// the first one also interrupts the start-up, and the run ends with 128 + the signal.
final class Signals: Sendable {
    /// Yields at each SIGHUP (several in a burst may come as one).
    let hangups: AsyncStream<Void>
    /// How long a run stopped during start-up may take to unwind before it exits anyway.
    static let startUpGrace = Duration.seconds(2)

    private struct StartUp {
        var over = false
        var signal: Int32?
    }

    private let startUp = Mutex(StartUp())
    private let watching = Mutex<Task<Void, Never>?>(nil)

    /// Traps the signals; returns once they are trapped. Start-up begins. At the first SIGINT
    /// or SIGTERM, `stop` runs, told whether start-up was still under way.
    init(say: @escaping @Sendable (String) -> Void, stop: @escaping @Sendable (_ duringStartUp: Bool) async -> Void) async {
        let (hangups, hangup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.hangups = hangups
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm, .sighup)
        let task = Task.detached { [self] in
            var endings = 0
            for await signal in signals {
                if signal == .sighup {
                    hangup.yield()
                    continue
                }
                endings += 1
                guard endings == 1 else { _exit(128 + signal.rawValue) }
                let during = self.startUp.withLock { startUp in
                    if !startUp.over { startUp.signal = signal.rawValue }
                    return !startUp.over
                }
                if during {
                    say("switchboard: signal \(signal.rawValue) during start-up, stopping")
                    Task.detached {
                        try? await Task.sleep(for: Self.startUpGrace)
                        _exit(128 + signal.rawValue)
                    }
                }
                Task.detached {
                    await stop(during)  // the run says it drains (in /healthz) before the line does
                    if !during { say("switchboard: signal \(signal.rawValue), draining (again to exit now)") }
                }
            }
        }
        watching.withLock { $0 = task }
    }

    /// Stops watching (the run has ended).
    func stop() { watching.withLock { $0?.cancel() } }

    /// Ends start-up: from now on the first signal drains. The signal that came during
    /// start-up, if any: the run must then stop, with status 128 + it.
    func startedUp() -> Int32? {
        startUp.withLock { startUp in
            startUp.over = true
            return startUp.signal
        }
    }

    /// The signal that came during start-up, if any.
    var duringStartUp: Int32? { startUp.withLock { $0.signal } }
}
