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

@Suite struct RouterStartTogetherTests {
    @Test func aProducerStartedFirstActsOnlyOnceItsConsumersAreRouted() async throws {
        let router = Router()
        let ticks = Recorder<String>()
        let seen = Recorder<String>()
        try router.startTogether { () throws(RouterError) in
            try router.subscribe("early", name: "held") { seen.append($0.topic) }
            try router.subscribe([], name: "ticker", handler: Ticker())
            try router.publish("early")  // queued: the subscriber is routed to, but held
            usleep(50_000)  // time enough for an immediate timer, were it not held back
            try router.subscribe("tick", name: "consumer") { ticks.append($0.topic) }
            #expect(seen.count == 0)
        }
        #expect(await eventually { ticks.count == 1 && seen.count == 1 })
        await router.shutdown()
        #expect(ticks.all == ["tick"])
    }
}
