import Foundation
import UnixSignals

/// The signals of `run`, through swift-service-lifecycle's `UnixSignalsSequence`: the first
/// SIGINT or SIGTERM ends the run gracefully (drain, plugin shutdown, summary), a second one
/// exits at once; SIGHUP asks for a reload.
final class Signals: Sendable {
    /// Yields once, at the first SIGINT or SIGTERM.
    let first: AsyncStream<Int32>
    /// Yields at each SIGHUP (several in a burst may come as one).
    let hangups: AsyncStream<Void>

    /// Traps the signals; returns once they are trapped.
    init() async {
        let (first, ending) = AsyncStream.makeStream(of: Int32.self)
        let (hangups, hangup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.first = first
        self.hangups = hangups
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm, .sighup)
        Task.detached {
            var endings = 0
            for await signal in signals {
                if signal == .sighup {
                    hangup.yield()
                    continue
                }
                endings += 1
                guard endings == 1 else { _exit(128 + signal.rawValue) }
                printDiagnostic("switchboard: signal \(signal.rawValue), draining (again to exit now)")
                ending.yield(signal.rawValue)
                ending.finish()
            }
        }
    }

    /// Waits for the first SIGINT or SIGTERM.
    func wait() async {
        for await _ in first { return }
    }
}
