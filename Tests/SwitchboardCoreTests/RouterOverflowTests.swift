import Foundation
import Switchboard
import Testing

/// Drop counts per policy: a subscriber held at a gate on its first event, capacity 10, 100 more events.
@Suite struct RouterOverflowTests {
    private func heldSubscriber(_ policy: OverflowPolicy) async throws -> (Router, Gate, Recorder<Int64>) {
        let router = Router()
        let gate = Gate()
        let handled = Recorder<Int64>()
        try router.subscribe("n", name: "held", capacity: 10, overflow: policy) { event in
            gate.pass()
            handled.append(event.data.intValue!)
        }
        try router.publish("n", data: 0)
        #expect(await eventually { gate.waiting == 1 })
        return (router, gate, handled)
    }

    @Test func dropNewestRefusesAndCounts() async throws {
        let (router, gate, handled) = try await heldSubscriber(.dropNewest)
        var refused = 0
        for index in 1...100 { refused += try router.publish("n", data: .int(Int64(index))).dropped }
        #expect(refused == 90)
        gate.open()
        await router.shutdown()
        #expect(handled.all == Array(0...10))
        let stats = router.stats()["held"]!
        #expect((stats.received, stats.handled, stats.dropped) == (101, 11, 90))
        #expect(stats.addsUp)
    }

    @Test func dropOldestEvictsAndCounts() async throws {
        let (router, gate, handled) = try await heldSubscriber(.dropOldest)
        for index in 1...100 { #expect(try router.publish("n", data: .int(Int64(index))).accepted == 1) }
        gate.open()
        await router.shutdown()
        #expect(handled.all == [0] + Array(91...100))
        let stats = router.stats()["held"]!
        #expect((stats.received, stats.handled, stats.dropped) == (101, 11, 90))
        #expect(stats.addsUp)
    }

    @Test func blockMakesThePublisherWaitAndLosesNothing() async throws {
        let (router, gate, handled) = try await heldSubscriber(.block)
        let published = Recorder<Int>()
        let publisher = Thread {
            for index in 1...100 {
                _ = try? router.publish("n", data: .int(Int64(index)))
                published.append(index)
            }
        }
        publisher.start()
        #expect(await eventually { published.count == 10 })
        try await Task.sleep(for: .seconds(0.2))
        #expect(published.count == 10)  // waiting for room for the eleventh
        gate.open()
        #expect(await eventually { published.count == 100 })
        await router.shutdown()
        #expect(handled.all == Array(0...100))
        let stats = router.stats()["held"]!
        #expect((stats.received, stats.handled, stats.dropped) == (101, 101, 0))
    }

    @Test func publishFromAHandlerNeverBlocks() async throws {
        let router = Router()
        let gate = Gate()
        try router.subscribe("sink", name: "sink", capacity: 1, overflow: .block) { _ in gate.pass() }
        let reports = Recorder<DeliveryReport>()
        try router.subscribe("trigger", name: "producer") { _ in
            for _ in 0..<5 { reports.append(try router.publish("sink")) }
        }
        try router.publish("trigger")
        #expect(await eventually { reports.count == 5 })
        #expect(reports.all.reduce(0) { $0 + $1.dropped } >= 3)
        gate.open()
        await router.shutdown()
    }

    @Test func aHandlerThatAsksWaitsForRoomUpToItsLimit() async throws {
        let router = Router()
        let gate = Gate()
        try router.subscribe("sink", name: "sink", capacity: 1, overflow: .block) { _ in gate.pass() }
        let reports = Recorder<DeliveryReport>()
        try router.subscribe("trigger", name: "producer") { event in
            let limit: Duration = event.data == "short" ? .milliseconds(50) : .seconds(60)
            for _ in 0..<3 { reports.append(try router.publish("sink", waitingForRoom: limit)) }
        }
        try router.publish("trigger", data: "short")
        // The sink holds one event in hand and one in its queue: the third publish waits 50 ms, then drops.
        #expect(await eventually { reports.count == 3 })
        #expect(reports.all.map(\.dropped) == [0, 0, 1])
        try router.publish("trigger", data: "long")
        // The producer has the second trigger in hand: its first publish finds the sink's queue still full.
        #expect(await eventually { router.stats()["producer"].map { $0.received == 2 && $0.queueDepth == 0 } == true })
        gate.open()  // room comes: every waiting publish is taken
        #expect(await eventually { reports.count == 6 })
        #expect(reports.all.suffix(3).map(\.accepted) == [1, 1, 1])
        await router.shutdown()
        #expect(router.stats()["sink"].map { [$0.received, $0.handled, $0.dropped] } == [6, 5, 1])
    }

    @Test func shutdownReleasesBlockedPublishersAndCountsAbandoned() async throws {
        let (router, gate, _) = try await heldSubscriber(.block)
        for index in 1...10 { try router.publish("n", data: .int(Int64(index))) }
        let outcome = Recorder<String>()
        let publisher = Thread {
            do {
                try router.publish("n", data: 11)
                outcome.append("published")
            } catch {
                outcome.append("\(error)")
            }
        }
        publisher.start()
        try await Task.sleep(for: .seconds(0.1))
        #expect(outcome.count == 0)
        await router.shutdown(drainTimeout: .milliseconds(200))
        #expect(await eventually { outcome.count == 1 })
        #expect(outcome.all == ["the router is shutting down"])
        let stats = router.stats()["held"]!
        #expect((stats.received, stats.handled, stats.abandoned) == (11, 0, 11))  // 10 queued + 1 in hand
        #expect(stats.addsUp)
        gate.open()
        try await Task.sleep(for: .seconds(0.05))
        #expect(router.stats()["held"]!.handled == 0)  // the late finish does not count twice
        #expect(router.stats()["held"]!.addsUp)
    }

    @Test func unsubscribeStopsDeliveryAndCountsQueuedAsAbandoned() async throws {
        let (router, gate, handled) = try await heldSubscriber(.dropNewest)
        for index in 1...5 { try router.publish("n", data: .int(Int64(index))) }
        let subscriber = router.stats()["held"]!
        #expect(subscriber.queueDepth == 5)
        let held = try #require(router.subscriber(named: "held"))
        let done = Recorder<Bool>()
        let unsubscriber = Thread {
            router.unsubscribe(held)
            done.append(true)
        }
        unsubscriber.start()
        try await Task.sleep(for: .seconds(0.05))
        gate.open()
        #expect(await eventually { done.count == 1 })
        #expect(handled.all == [0])
        let stats = held.stats()
        #expect((stats.received, stats.handled, stats.abandoned) == (6, 0, 6))
        #expect(stats.addsUp)
        await router.shutdown()
    }

    @Test func unsubscribeFromItsOwnHandler() async throws {
        let router = Router()
        let handled = Recorder<Int64>()
        let box = Recorder<Subscriber>()
        box.append(try router.subscribe("n", name: "once") { event in
            handled.append(event.data.intValue!)
            router.unsubscribe(box.all[0])
        })
        try router.publish("n", data: 1)
        #expect(await eventually { handled.count == 1 })
        #expect(try router.publish("n", data: 2).matched == 0)
        await router.shutdown()
        #expect(handled.all == [1])
    }
}

/// Runs a closure for each event.
private final class Handler: EventHandler, @unchecked Sendable {
    private let body: (Event) -> Void
    init(_ body: @escaping (Event) -> Void) { self.body = body }
    func handle(_ event: Event) { body(event) }
}
