import Foundation
import Synchronization
import UnixSignals

/// The signals of `run`, through swift-service-lifecycle's `UnixSignalsSequence`: the first
/// SIGINT or SIGTERM ends the run gracefully (drain, plugin shutdown, summary), a second one
/// exits at once; SIGHUP asks for a reload. During start-up, the first one stops the run:
/// the start-up is interrupted and the process exits with 128 + the signal.
final class Signals: Sendable {
    /// Yields once, at the first SIGINT or SIGTERM after start-up.
    let first: AsyncStream<Int32>
    /// Yields at each SIGHUP (several in a burst may come as one).
    let hangups: AsyncStream<Void>
    /// How long a run stopped during start-up may take to unwind before it exits anyway.
    static let startUpGrace = Duration.seconds(2)

    private struct StartUp {
        var over = false
        var signal: Int32?
        var interrupt: (@Sendable () -> Void)?
    }

    private let startUp = Mutex(StartUp())

    /// Traps the signals; returns once they are trapped. Start-up begins.
    init() async {
        let (first, ending) = AsyncStream.makeStream(of: Int32.self)
        let (hangups, hangup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.first = first
        self.hangups = hangups
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm, .sighup)
        Task.detached { [self] in
            var endings = 0
            for await signal in signals {
                if signal == .sighup {
                    hangup.yield()
                    continue
                }
                endings += 1
                guard endings == 1 else { _exit(128 + signal.rawValue) }
                if stopStartUp(signal.rawValue) { continue }
                printDiagnostic("switchboard: signal \(signal.rawValue), draining (again to exit now)")
                ending.yield(signal.rawValue)
                ending.finish()
            }
        }
    }

    /// Names what a signal during start-up interrupts; if one came already, interrupts now.
    func interruptStartUp(with interrupt: @escaping @Sendable () -> Void) {
        let signalled = startUp.withLock { startUp in
            startUp.interrupt = interrupt
            return startUp.signal != nil
        }
        if signalled { interrupt() }
    }

    /// Ends start-up: from now on the first signal drains. The signal that came during
    /// start-up, if any: the run must then stop, with status 128 + it.
    func startedUp() -> Int32? {
        startUp.withLock { startUp in
            startUp.over = true
            return startUp.signal
        }
    }

    /// Waits for the first SIGINT or SIGTERM after start-up.
    func wait() async {
        for await _ in first { return }
    }

    /// At a first signal during start-up: interrupts it, and exits with 128 + `signal` if the
    /// run has not done so ``startUpGrace`` later. False once start-up is over.
    private func stopStartUp(_ signal: Int32) -> Bool {
        let (during, interrupt) = startUp.withLock { startUp in
            if !startUp.over { startUp.signal = signal }
            return (!startUp.over, startUp.interrupt)
        }
        guard during else { return false }
        printDiagnostic("switchboard: signal \(signal) during start-up, stopping")
        interrupt?()
        Task.detached {
            try? await Task.sleep(for: Self.startUpGrace)
            _exit(128 + signal)
        }
        return true
    }
}
