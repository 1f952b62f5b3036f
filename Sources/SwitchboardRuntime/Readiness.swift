import Synchronization
import SwitchboardCore

/// Says once whether a start-up step got ready: the next step waits for it before it starts.
final class Readiness: Sendable {
    private static let ready = 1, failed = 2
    private let outcome = Atomic<Int>(0)
    private let settled = Completion()

    /// Marks it ready; the first of ``ready()`` and ``failed()`` counts.
    func ready() { settle(Self.ready) }
    /// Marks it as never to be ready: it failed or stopped before it was.
    func failed() { settle(Self.failed) }

    private func settle(_ value: Int) {
        guard outcome.compareExchange(expected: 0, desired: value, ordering: .acquiringAndReleasing).exchanged else { return }
        settled.signal()
    }

    /// Waits until it is settled; true if ready. False, at once, when the task is cancelled.
    func wait() async -> Bool {
        await settled.wait()
        return outcome.load(ordering: .acquiring) == Self.ready
    }
}
