import Foundation
import Switchboard
import Testing

/// Publishes `tick` from a timer that is due the moment it starts.
private final class Ticker: EventHandler {
    private var context: SubscriberContext?
    private var fired = false
    func start(_ context: SubscriberContext) throws { self.context = context }
    func handle(_ event: Event) throws {}
    var nextTimerDeadline: UInt64? { fired ? nil : 0 }
    func fireTimers() {
        fired = true
        _ = try? context?.router?.publish("tick", data: 1)
    }
}

@Suite struct RouterCommitTests {
    @Test func aPreparedProducerActsOnlyOnceItsConsumersAreRouted() async throws {
        let router = Router()
        let ticks = Recorder<String>()
        let ticker = try router.prepare([], name: "ticker", handler: Ticker())
        usleep(50_000)  // time enough for an immediate timer, were it not held back
        let consumer = try router.prepare(["tick"], name: "consumer", handler: Ticks(ticks))
        #expect(try router.publish("tick").matched == 0)  // prepared is not routed to
        try router.commit(adding: [ticker, consumer])
        #expect(await eventually { ticks.count == 1 })
        await router.shutdown()
        #expect(ticks.all == ["tick"])
        #expect(router.stats()["consumer"]?.received == 1)
    }

    @Test func aCommitSwitchesRoutingAndRetiredSubscribersDrainAndStayCounted() async throws {
        let router = Router()
        let old = Recorder<Int64>()
        let new = Recorder<Int64>()
        let first = try router.subscribe("n", name: "old", capacity: 1 << 20) { old.append($0.data.intValue!) }
        let second = try router.prepare(["n"], name: "new", capacity: 1 << 20, handler: Ticks(Recorder<String>(), values: new))
        let total = 200_000
        let publisher = Task.detached {  // publishes right through the switch
            for n in 0..<total { try router.publish("n", data: .int(Int64(n))) }
        }
        #expect(await eventually { old.count > 1000 })
        try router.commit(adding: [second], removing: [first])
        try await publisher.value
        await router.retire([first], drainTimeout: .seconds(5))
        await router.shutdown()
        // Every event went to exactly one side, the old one first.
        #expect(old.all + new.all == (0..<total).map { Int64($0) })
        let stats = router.stats()
        #expect(stats["old"]!.handled + stats["new"]!.handled == total)
        #expect(stats.subscribers.allSatisfy { $0.addsUp })
    }

    @Test func anEventInFlightDuringACommitReachesTheReplacement() async throws {
        let router = Router()
        let old = Recorder<Int64>()
        let new = Recorder<Int64>()
        let first = try router.subscribe("n", name: "old") { old.append($0.data.intValue!) }
        let second = try router.prepare(["n"], name: "new", handler: Ticks(Recorder<String>(), values: new))
        // The hook runs after the publisher has read its routing table: the commit lands
        // between that read and the delivery, the narrowest window a switch has.
        router.addAcceptHook { event in
            if event.data.intValue == 1 { try? router.commit(adding: [second], removing: [first]) }
        }
        for n in 0..<3 { try router.publish("n", data: .int(Int64(n))) }
        await router.retire([first], drainTimeout: .seconds(5))
        await router.shutdown()
        #expect(old.all == [0])
        #expect(new.all == [1, 2])
    }

    @Test func aReplacedHandlerTakesTheQueueInOrder() async throws {
        let router = Router()
        let gate = Gate()
        let first = Recorder<Int64>()
        let second = Recorder<Int64>()
        let subscriber = try router.subscribe("n", name: "s") { event in
            gate.pass()
            first.append(event.data.intValue!)
        }
        for n in 0..<50 { try router.publish("n", data: .int(Int64(n))) }
        #expect(await eventually { gate.waiting == 1 })  // the first event is in hand, the rest queued
        let replacing = Task.detached {
            try router.replaceHandler(of: subscriber, with: Ticks(Recorder<String>(), values: second))
        }
        gate.open()
        try await replacing.value
        for n in 50..<60 { try router.publish("n", data: .int(Int64(n))) }
        await router.shutdown()
        #expect(first.all.count + second.all.count == 60)
        #expect(first.all + second.all == (0..<60).map { Int64($0) })  // nothing lost, none twice, in order
        #expect(!second.all.isEmpty)
    }
}

/// Records the topics (and integer payloads) it handles.
private final class Ticks: EventHandler {
    private let topics: Recorder<String>
    private let values: Recorder<Int64>?
    init(_ topics: Recorder<String>, values: Recorder<Int64>? = nil) {
        self.topics = topics
        self.values = values
    }
    func handle(_ event: Event) throws {
        topics.append(event.topic)
        if let value = event.data.intValue { values?.append(value) }
    }
}
