@testable import SwitchboardCore
import Synchronization
import Testing

/// A tracked publish learns, once, how every subscriber that took the event is done with it.
@Suite struct DeliveryTrackerTests {
    /// A tracker that records its outcomes.
    final class Outcomes: Sendable {
        let seen = Mutex<[(DeliveryTracker.Outcome, String?)]>([])
        var tracker: DeliveryTracker { DeliveryTracker { outcome, failure in self.seen.withLock { $0.append((outcome, failure)) } } }
        var all: [DeliveryTracker.Outcome] { seen.withLock { $0.map(\.0) } }
        var failures: [String?] { seen.withLock { $0.map(\.1) } }
    }

    final class Failing: EventHandler {
        struct Refusal: Error, CustomStringConvertible { var description: String { "refused" } }
        func handle(_ event: Event) throws { throw Refusal() }
    }

    static func publish(_ router: Router, _ topic: String, _ outcomes: Outcomes) throws {
        try router.publish(topic, tape: JSONTape(.int(1)), headers: [:], excluding: nil, tracker: outcomes.tracker)
    }

    @Test func handledByEverySubscriberIsDoneOnceAfterTheLast() async throws {
        let router = Router()
        let gate = Gate()
        _ = try router.subscribe("a", name: "fast") { _ in }
        _ = try router.subscribe("a", name: "slow") { _ in gate.pass() }
        let outcomes = Outcomes()
        try Self.publish(router, "a", outcomes)
        #expect(await eventually { gate.waiting == 1 })
        #expect(outcomes.all.isEmpty, "the slow one is not done")
        gate.open()
        #expect(await eventually { outcomes.all == [.done] })
        await router.shutdown(drainTimeout: .seconds(5))
        #expect(outcomes.all == [.done])
    }

    @Test func noSubscriberIsDoneAtOnce() throws {
        let router = Router()
        let outcomes = Outcomes()
        try Self.publish(router, "nobody.listens", outcomes)
        #expect(outcomes.all == [.done])
    }

    @Test func aFailureIsDoneOnlyOnceADeadLetterWasTaken() async throws {
        let router = Router()
        _ = try router.subscribe(["f"], name: "plain", handler: Failing())
        _ = try router.subscribe(["g"], name: "lettered", failurePolicy: FailurePolicy(deadLetter: true), handler: Failing())
        _ = try router.subscribe(["h"], name: "unread", failurePolicy: FailurePolicy(deadLetter: true), handler: Failing())
        _ = try router.subscribe("deadletter.lettered", name: "letters") { _ in }
        let (failed, lettered, unread) = (Outcomes(), Outcomes(), Outcomes())
        try Self.publish(router, "f", failed)
        try Self.publish(router, "g", lettered)
        try Self.publish(router, "h", unread)  // its dead letter reaches no subscriber: nothing holds the event
        #expect(await eventually { failed.all == [.failed] && lettered.all == [.done] && unread.all == [.failed] })
        // Each says why, the dead-lettered one too: only that tells it from a handled one.
        #expect(failed.failures == ["refused"] && lettered.failures == ["refused"] && unread.failures == ["refused"])
        let handled = Outcomes()
        _ = try router.subscribe("ok", name: "fine") { _ in }
        try Self.publish(router, "ok", handled)
        #expect(await eventually { handled.all == [.done] } && handled.failures == [nil])
        await router.shutdown(drainTimeout: .seconds(5))
    }

    @Test func aFailureCutShortByTheDrainDeadlineIsLost() async throws {
        let router = Router()
        _ = try router.subscribe(["r"], name: "retrying", failurePolicy: FailurePolicy(retries: 5, backoff: .seconds(30)), handler: Failing())
        let outcomes = Outcomes()
        try Self.publish(router, "r", outcomes)
        #expect(await eventually { router.stats()["retrying"]!.received == 1 })
        await router.shutdown(drainTimeout: .milliseconds(100))  // it waits in its backoff
        #expect(await eventually { outcomes.all == [.lost] }, "\(outcomes.all)")
    }

    @Test func aDropOrAnEvictionOrAnAbandonmentIsLost() async throws {
        let router = Router()
        let gate = Gate()
        _ = try router.subscribe("d", name: "newest", capacity: 1) { _ in gate.pass() }
        _ = try router.subscribe("e", name: "oldest", capacity: 1, overflow: .dropOldest) { _ in gate.pass() }
        let first = (Outcomes(), Outcomes())
        try Self.publish(router, "d", first.0)
        try Self.publish(router, "e", first.1)
        #expect(await eventually { gate.waiting == 2 })  // both handlers hold their first event
        let queued = (Outcomes(), Outcomes())
        try Self.publish(router, "d", queued.0)  // waits in the queue of one
        try Self.publish(router, "e", queued.1)
        let refused = Outcomes()
        try Self.publish(router, "d", refused)  // the queue is full: dropped
        #expect(refused.all == [.lost])
        let evicting = Outcomes()
        try Self.publish(router, "e", evicting)  // evicts the waiting one
        #expect(queued.1.all == [.lost])
        // The drain deadline passes with the handlers stuck: what waits is abandoned, lost.
        await router.shutdown(drainTimeout: .milliseconds(100))
        #expect(queued.0.all == [.lost] && evicting.all == [.lost], "\(queued.0.all) \(evicting.all)")
        gate.open()
        #expect(await eventually { first.0.all == [.done] && first.1.all == [.done] })
    }
}
