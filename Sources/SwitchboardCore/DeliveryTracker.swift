import Synchronization

/// Learns when every subscriber an event was routed to is done with it, and how: a bridge
/// that must acknowledge a message to its source (JetStream) publishes it with one.
///
/// The publisher reports how many subscribers took the event (``routed(accepted:lost:)``), and
/// each of those reports once when it is done (``finish(_:)``), in any order: the count starts
/// at zero, finishes take it below, and the publisher's addition brings it back to zero only
/// once everything is in. The completion runs once, on the thread of the last report, which
/// may hold a queue's lock: it must only hand the outcome on. With the outcome it gets the
/// error of a subscriber that failed the event, if one did, even one that dead-lettered it
/// (the outcome is then `done`): a redrive tells a handled event from a dead-lettered one by it.
package final class DeliveryTracker: Sendable {
    /// What became of the event, the worst of every subscriber's.
    package enum Outcome: UInt8, Sendable {
        /// Handled by every subscriber, or failed and dead-lettered.
        case done = 0
        /// A subscriber failed it, without a dead letter: it should come again later.
        case failed = 1
        /// A subscriber's queue dropped it, or its drain abandoned it: another instance should have it.
        case lost = 2
    }

    /// True once the process made a tracker. Until then a subscriber's loop skips looking for
    /// one in each event: that read is a cache miss per event for a handler that never touches
    /// the event, which cost a fifth of the fan-out rate.
    static let inUse = Atomic<Bool>(false)

    private let remaining = Atomic<Int>(0)
    private let outcomes = Atomic<UInt8>(0)  // a bit per outcome seen
    private let failure = Mutex<String?>(nil)  // set only on the failure path
    private let completion: @Sendable (Outcome, _ failure: String?) -> Void

    /// A tracker that calls `completion` once, with the outcome and the last failure's error.
    package init(_ completion: @escaping @Sendable (Outcome, _ failure: String?) -> Void) {
        self.completion = completion
        if !Self.inUse.load(ordering: .relaxed) { Self.inUse.store(true, ordering: .relaxed) }  // seen by subscribers through their queue's lock
    }

    /// The publisher's report: `accepted` subscribers took the event, and one dropped it if `lost`.
    func routed(accepted: Int, lost: Bool) {
        if lost { outcomes.bitwiseOr(1 << Outcome.lost.rawValue, ordering: .relaxed) }
        if remaining.add(accepted, ordering: .acquiringAndReleasing).newValue == 0 { complete() }
    }

    /// One subscriber that took the event is done with it; `failure` is its error, if it failed it.
    func finish(_ outcome: Outcome, failure error: String? = nil) {
        if let error { failure.withLock { $0 = error } }
        if outcome != .done { outcomes.bitwiseOr(1 << outcome.rawValue, ordering: .relaxed) }
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { complete() }
    }

    private func complete() {
        let seen = outcomes.load(ordering: .relaxed)
        completion(seen & (1 << Outcome.lost.rawValue) != 0 ? .lost : seen != 0 ? .failed : .done, failure.withLock { $0 })
    }
}

extension Event {
    /// Tells the event's tracker, if it has one, that a subscriber is done with it (failed
    /// with `failure`, if given). The event is read only once the process has made a tracker
    /// (see ``DeliveryTracker/inUse``).
    @inline(__always)
    func finishTracking(_ outcome: DeliveryTracker.Outcome, failure: String? = nil) {
        guard DeliveryTracker.inUse.load(ordering: .relaxed) else { return }
        tracker?.finish(outcome, failure: failure)
    }
}
