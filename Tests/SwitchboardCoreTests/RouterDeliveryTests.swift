import Foundation
import Switchboard
import Testing

@Suite struct RouterDeliveryTests {
    @Test func embeddedAPIExample() async throws {
        let router = Router()
        let seen = Recorder<String>()
        let email = try router.subscribe("user.*", name: "email", capacity: 1024, overflow: .dropNewest) { event in
            seen.append("\(event.topic) \(event.data["email"]?.stringValue ?? "")")
        }
        let report = try router.publish("user.created", data: ["email": "alice@example.com", "age": 31])
        #expect(report == DeliveryReport(matched: 1, accepted: 1, dropped: 0))
        #expect(try router.publish("order.created").matched == 0)
        #expect(await eventually { seen.count == 1 })
        #expect(seen.all == ["user.created alice@example.com"])
        router.unsubscribe(email)
        #expect(try router.publish("user.created").matched == 0)
        await router.shutdown(drainTimeout: .seconds(5))
        #expect(router.stats().published == 3)
    }

    @Test func eventCarriesIdTimeAndHeaders() async throws {
        let router = Router()
        let events = Recorder<Event>()
        try router.subscribe(">", name: "all") { events.append($0) }
        let before = Date().timeIntervalSince1970
        try router.publish("a.b", data: [1, 2], headers: ["trace": "t1"])
        try router.publish("a.c")
        await router.shutdown()
        let got = events.all
        #expect(got.count == 2)
        #expect(got[0].headers == ["trace": "t1"])
        #expect(got[0].data == [1, 2])
        #expect(got[1].data == .null)
        #expect(got[0].id != got[1].id)
        #expect(got[0].id.prefix == got[1].id.prefix)
        #expect(abs(got[0].time - before) < 60)
        #expect("\(got[0].id)".split(separator: "-").count == 2)
    }

    @Test func anEventIdIsWrittenAsSixteenHexDigitsADashAndTheCounterInHex() {
        #expect(EventID(prefix: 0x3f2a_9c1e_0b7d_4a58, sequence: 0x1a).description == "3f2a9c1e0b7d4a58-1a")
        #expect(EventID(prefix: 1, sequence: 0).description == "0000000000000001-0")
        #expect(EventID(prefix: .max, sequence: .max).description == "ffffffffffffffff-ffffffffffffffff")
    }

    @Test func invalidTopicsAndPatternsAreRefused() async throws {
        let router = Router()
        #expect(throws: RouterError.self) { try router.publish("user.*") }
        #expect { try router.publish("a..b") } throws: { "\($0)".contains("token 2 is empty") }
        #expect { try router.subscribe("a.>.b") { _ in } } throws: { "\($0)".contains("'>' (token 2) must be the last") }
        #expect { try router.subscribe("a", capacity: 0) { _ in } } throws: { "\($0)".contains("capacity") }
        await router.shutdown()
    }

    @Test func concurrentPublishersLoseNothingAndKeepPerPublisherOrder() async throws {
        let router = Router()
        let publishers = 4
        let perPublisher = 20_000
        let a = Recorder<Event>()
        let b = Recorder<Event>()
        try router.subscribe("load.>", name: "a", capacity: publishers * perPublisher) { a.append($0) }
        try router.subscribe(["load.*", "load.x.>"], name: "b", capacity: publishers * perPublisher) { b.append($0) }
        DispatchQueue.concurrentPerform(iterations: publishers) { publisher in
            for sequence in 0..<perPublisher {
                try! router.publish("load.p\(publisher)", data: .int(Int64(sequence)))
            }
        }
        await router.shutdown(drainTimeout: .seconds(30))
        for recorder in [a, b] {
            let events = recorder.all
            #expect(events.count == publishers * perPublisher)
            #expect(Set(events.map(\.id)).count == events.count)
            for publisher in 0..<publishers {
                let sequence = events.filter { $0.topic == "load.p\(publisher)" }.map { $0.data.intValue! }
                #expect(sequence == (0..<Int64(perPublisher)).map { $0 })
            }
        }
        #expect(router.stats().subscribers.allSatisfy { $0.addsUp && $0.handled == publishers * perPublisher })
    }

    @Test func slowAndFailingSubscribersDelayNeitherOthersNorThePublisher() async throws {
        let router = Router()
        let fast = Recorder<Int64>()
        try router.subscribe("work.*", name: "sleepy", capacity: 1000) { _ in Thread.sleep(forTimeInterval: 1) }
        try router.subscribe("work.*", name: "thrower", capacity: 1000) { _ in throw Failure() }
        try router.subscribe("work.*", name: "fast", capacity: 1000) { fast.append($0.data.intValue!) }
        for index in 0..<100 { try router.publish("work.item", data: .int(Int64(index))) }
        // The publisher returned while the sleepy subscriber is still on its first event.
        #expect(router.stats()["sleepy"]!.handled == 0)
        #expect(await eventually { fast.count == 100 })
        #expect(fast.all == (0..<100).map { Int64($0) })
        #expect(router.stats()["sleepy"]!.handled < 10)  // a second each: far from done (10x margin for a loaded host)
        #expect(await eventually { router.stats()["thrower"]!.failed == 100 })
        await router.shutdown(drainTimeout: .milliseconds(100))
        let stats = router.stats()
        // Shutdown did not wait for it (a second an event): what it had not handled is abandoned,
        // none is left pending. On a busy machine the test's task may lag the shutdown by seconds.
        #expect(stats["sleepy"]!.abandoned >= 50 && stats["sleepy"]!.pending == 0, "\(stats["sleepy"]!)")
        #expect(stats.subscribers.allSatisfy { $0.addsUp })
    }

    @Test func shutdownDrainsChainsOfSubscribers() async throws {
        let router = Router()
        let last = Recorder<Int64>()
        // a -> b -> c: each republishes what it gets; shutdown begins while all of it is queued.
        try router.subscribe("a", name: "first", capacity: 10_000) { try router.publish("b", data: $0.data) }
        try router.subscribe("b", name: "second", capacity: 10_000) { event in
            usleep(50)
            try router.publish("c", data: event.data)
        }
        try router.subscribe("c", name: "third", capacity: 10_000) { last.append($0.data.intValue!) }
        for n in 0..<2000 { try router.publish("a", data: .int(Int64(n))) }
        await router.shutdown(drainTimeout: .seconds(30))
        #expect(last.all == (0..<2000).map { Int64($0) })
        #expect(throws: RouterError.shutDown) { try router.publish("a") }
        #expect(router.stats().subscribers.allSatisfy { $0.addsUp && $0.abandoned == 0 && $0.failed == 0 })
    }

    @Test func eventStreamDeliversInOrderAndEndsAtShutdown() async throws {
        let router = Router()
        let stream = try router.events(matching: "order.>", capacity: 256)
        let reader = Task {
            var topics: [String] = []
            for await event in stream { topics.append(event.topic) }
            return topics
        }
        try router.publish("order.created")
        try router.publish("user.created")
        try router.publish("order.shipped.late")
        #expect(await eventually { stream.subscriber.stats().handled == 2 })
        await router.shutdown(drainTimeout: .seconds(5))
        #expect(await reader.value == ["order.created", "order.shipped.late"])
    }

    @Test func acceptHookSeesEveryAcceptedEventOnce() async throws {
        let router = Router()
        let seen = Recorder<String>()
        router.addAcceptHook { seen.append($0.topic) }
        try router.subscribe("a.*") { _ in }
        try router.publish("a.x")
        try router.publish("nobody.listens")
        #expect(throws: RouterError.self) { try router.publish("bad..topic") }
        await router.shutdown()
        #expect(throws: RouterError.shutDown) { try router.publish("a.y") }
        #expect(seen.all == ["a.x", "nobody.listens"])
    }

    @Test func encodableValuesArePublishedAsJSON() async throws {
        struct Signup: Encodable { let email: String; let plan: String }
        let router = Router()
        let got = Recorder<JSON>()
        try router.subscribe("user.created") { got.append($0.data) }
        try router.publish("user.created", encoding: Signup(email: "a@b.c", plan: "pro"))
        await router.shutdown()
        #expect(got.all == [["email": "a@b.c", "plan": "pro"]])
    }

    /// A publisher remembers the subscribers of its last few topics: cycling through more of
    /// them than it remembers, and subscribing in the middle, must route each event as the trie would.
    @Test func aFeedCyclingThroughManyTopicsReachesExactlyTheMatchingSubscribers() async throws {
        let router = Router()
        let topics = (0..<12).map { "feed.\($0 % 3).t\($0)" }
        let all = Recorder<String>()
        let zero = Recorder<String>()
        let late = Recorder<String>()
        try router.subscribe("feed.>", capacity: 8192) { all.append($0.topic) }
        try router.subscribe("feed.0.*", capacity: 8192) { zero.append($0.topic) }
        for round in 0..<200 {
            if round == 100 { try router.subscribe("*.*.t7", capacity: 8192) { late.append($0.topic) } }
            for topic in topics.shuffled() + topics.prefix(round % 12) { try router.publish(topic) }
        }
        await router.shutdown()
        let published = 200 * 12 + (0..<200).reduce(0) { $0 + $1 % 12 }
        #expect(all.count == published)
        #expect(zero.all.allSatisfy { $0.hasPrefix("feed.0.") })
        #expect(zero.count == all.all.filter { $0.hasPrefix("feed.0.") }.count)
        #expect(late.count == 100 + (100..<200).filter { $0 % 12 > 7 }.count)
        #expect(late.all.allSatisfy { $0 == "feed.1.t7" })
    }
}
