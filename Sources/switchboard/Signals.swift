import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM for `run`: the first ends the run gracefully (drain, plugin shutdown,
/// summary), a second one exits at once. SIGHUP asks for a reload.
final class Signals: @unchecked Sendable {  // `sources` are only kept alive after init, never touched
    private let sources: [any DispatchSourceSignal]

    /// Signals received so far, shared with the handlers.
    private final class Count: Sendable {
        let value = Atomic<Int>(0)
    }
    /// Yields once, at the first signal.
    let first: AsyncStream<Int32>
    /// Yields at each SIGHUP (several in a burst may come as one).
    let hangups: AsyncStream<Void>

    init() {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        first = stream
        var sources: [any DispatchSourceSignal] = []
        let received = Count()
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)  // delivered to the dispatch source instead
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let count = received.value.wrappingAdd(1, ordering: .relaxed).newValue
                if count == 1 {
                    printDiagnostic("switchboard: signal \(number), draining (again to exit now)")
                    continuation.yield(number)
                    continuation.finish()
                } else {
                    _exit(128 + number)
                }
            }
            source.resume()
            sources.append(source)
        }
        let (hangups, hangup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.hangups = hangups
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        reload.setEventHandler { hangup.yield() }
        reload.resume()
        sources.append(reload)
        self.sources = sources
    }

    /// Waits for the first signal.
    func wait() async {
        for await _ in first { return }
    }
}
