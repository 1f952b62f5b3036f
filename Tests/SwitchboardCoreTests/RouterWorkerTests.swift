import Foundation
import Switchboard
import Synchronization
import Testing

/// Subscribers with several workers: per-key order, lanes, and counts that add up.
@Suite struct RouterWorkerTests {
    /// What each key's handler calls saw: the last sequence number per key, order breaks, and
    /// which threads did the work.
    private final class KeyLog: Sendable {
        private let state = Mutex((last: [Int64: Int64](), handled: 0, outOfOrder: [String](), threads: Set<UInt>()))

        func record(key: Int64, sequence: Int64) {
            let thread = UInt(pthread_self())
            state.withLock { state in
                if let last = state.last[key], last >= sequence, state.outOfOrder.count < 5 {
                    state.outOfOrder.append("key \(key): \(sequence) after \(last)")
                }
                state.last[key] = sequence
                state.handled += 1
                state.threads.insert(thread)
            }
        }

        var handled: Int { state.withLock { $0.handled } }
        var outOfOrder: [String] { state.withLock { $0.outOfOrder } }
        var threads: Int { state.withLock { $0.threads.count } }
        var lastSequences: [Int64: Int64] { state.withLock { $0.last } }
    }

    @Test(.exclusive, .serialized, arguments: [(EventKey.data(["customer", "id"]), 200_000), (.header("customer"), 20_000)])
    func equalKeysStayInOrderAcrossFourWorkers(key: EventKey, events: Int) async throws {
        let router = Router()
        let log = KeyLog()
        try router.subscribe("order.>", name: "pricing", capacity: 4096, overflow: .block, workers: 4, key: key) { event in
            let sequence = event.data["seq"]!.intValue!
            let customer = Int64(event.headers["customer"]!)!
            var spin = 0
            for index in 0..<Int(customer % 7) * 50 { spin &+= index }  // uneven work: lanes run at different speeds
            if spin < 0 { Issue.record("unreachable") }
            log.record(key: customer, sequence: sequence)
        }
        let keys: Int64 = 1000
        for index in 0..<events {
            let customer = Int64(index) % keys
            try router.publish(
                "order.created", data: ["customer": ["id": .int(customer)], "seq": .int(Int64(index))],
                headers: ["customer": String(customer)])
        }
        await router.shutdown(drainTimeout: .seconds(120))
        #expect(log.outOfOrder == [])
        #expect(log.handled == events)
        #expect(log.lastSequences.count == Int(keys))
        #expect(log.lastSequences.allSatisfy { key, last in last == Int64(events) - keys + key })
        #expect(log.threads == 4)
        let stats = router.stats()["pricing"]!
        #expect((stats.received, stats.handled, stats.dropped, stats.abandoned) == (events, events, 0, 0))
        #expect(stats.addsUp)
        #expect(stats.perWorker.count == 4)
        #expect(stats.perWorker.map(\.handled).reduce(0, +) == events)
        #expect(stats.perWorker.allSatisfy { $0.handled > events / 10 })  // 1,000 keys spread over every lane
        #expect(stats.capacity == 4096)
    }

    @Test func eventsWithoutTheKeyShareOneWorker() async throws {
        let router = Router()
        let threads = Recorder<UInt>()
        try router.subscribe("t", capacity: 64, overflow: .block, workers: 3, key: .data(["id"])) { _ in
            threads.append(UInt(pthread_self()))
        }
        // A missing path, a null, an array and an object are all the null key; so is a path
        // through something that is not an object.
        for data: JSON in [["other": 1], ["id": .null], ["id": [1, 2]], ["id": ["a": 1]], 5, "text"] {
            for _ in 0..<20 { try router.publish("t", data: data) }
        }
        await router.shutdown()
        #expect(threads.all.count == 120)
        #expect(Set(threads.all).count == 1)
    }

    @Test func keysCompareByTheirJSONText() async throws {
        let router = Router()
        let seen = Recorder<(String, UInt)>()
        try router.subscribe("t", capacity: 8192, overflow: .block, workers: 8, key: .data(["id"])) { event in
            seen.append(("\(event.headers["as"]!) \(event.headers["n"]!)", UInt(pthread_self())))
        }
        for n in 0..<100 {
            for (name, value) in [("int", JSON.int(Int64(n))), ("double", .double(Double(n))), ("string", .string("\(n)"))] {
                try router.publish("t", data: ["id": value], headers: ["as": name, "n": "\(n)"])
            }
            // Parsed from text, `1` is the int key and `1.0` the double one.
            for (name, text) in [("int", #"{"id":\#(n)}"#), ("double", #"{"id":\#(n).0}"#)] {
                let tape = try Array(text.utf8).withUnsafeBytes { try JSONTape(parsing: $0) }
                try router.publish("t", tape: tape, headers: ["as": name, "n": "\(n)"])
            }
        }
        await router.shutdown()
        #expect(seen.all.count == 500)
        let workers = Dictionary(grouping: seen.all, by: \.0).mapValues { Set($0.map(\.1)) }
        #expect(workers.values.allSatisfy { $0.count == 1 })  // each key on one worker, however published
        // 1, 1.0 and "1" are three keys: were they one, each n would put all three on one worker.
        let apart = (0..<100).filter { n in Set(["int", "double", "string"].map { workers["\($0) \(n)"]! }).count > 1 }
        #expect(apart.count > 50)
    }

    @Test func withoutAKeyAnEventGoesToAFreeWorker() async throws {
        let router = Router()
        let gate = Gate()
        let handled = Atomic<Int>(0)
        try router.subscribe("t", name: "free", capacity: 100, workers: 2) { event in
            if event.data.intValue == 0 { gate.pass() } else { handled.add(1, ordering: .relaxed) }
        }
        try router.publish("t", data: 0)
        #expect(await eventually { gate.waiting == 1 })
        // One worker is held at the gate: the other, free, takes every later event.
        for index in 1...40 {
            try router.publish("t", data: .int(Int64(index)))
            #expect(await eventually { router.stats()["free"]!.handled == index })
        }
        #expect(handled.load(ordering: .relaxed) == 40)
        gate.open()
        await router.shutdown()
        let stats = router.stats()["free"]!
        #expect((stats.received, stats.handled) == (41, 41))
        #expect(stats.perWorker.map(\.handled).sorted() == [1, 40])
    }

    @Test func eachLaneHoldsItsShareAndDropsOnItsOwn() async throws {
        let router = Router()
        let gate = Gate()
        try router.subscribe("t", name: "lanes", capacity: 20, overflow: .dropOldest, workers: 2, key: .data(["k"])) { _ in
            gate.pass()
        }
        // Find two keys on different lanes: publish one of each and see where they wait.
        try router.publish("t", data: ["k": "a"])
        #expect(await eventually { gate.waiting == 1 })
        var other = 0
        while router.stats()["lanes"]!.perWorker.filter({ $0.received > 0 }).count < 2 {
            other += 1
            try router.publish("t", data: ["k": .string("b\(other)")])
        }
        #expect(await eventually { gate.waiting == 2 })
        let before = router.stats()["lanes"]!
        // 30 more of key a: its lane (capacity 10) keeps the newest 10, the other lane loses nothing.
        for _ in 0..<30 { try router.publish("t", data: ["k": "a"]) }
        let stats = router.stats()["lanes"]!
        let laneA = stats.perWorker.indices.first { stats.perWorker[$0].received > before.perWorker[$0].received }!
        let laneB = 1 - laneA
        #expect(stats.perWorker.map(\.capacity) == [10, 10])
        #expect(stats.perWorker[laneA].queueDepth == 10)
        #expect(stats.dropped - before.dropped == before.perWorker[laneA].queueDepth + 20)
        #expect(stats.perWorker[laneB].dropped == 0)
        #expect(stats.perWorker[laneB].queueDepth == before.perWorker[laneB].queueDepth)
        gate.open()
        await router.shutdown()
        #expect(router.stats()["lanes"]!.addsUp)
    }

    @Test func aSubscriberNeedsAWorkerAndRoomForAnEventInEach() async throws {
        let router = Router()
        #expect(throws: RouterError.invalidArgument("a subscriber needs at least 1 worker, not 0")) {
            try router.subscribe("t", workers: 0) { _ in }
        }
        let full = RouterError.invalidArgument(
            "queue capacity must be at least the 4 workers (each worker's queue holds capacity / workers), not 3")
        #expect(throws: full) { try router.subscribe("t", capacity: 3, workers: 4) { _ in } }
        let four = try router.subscribe("t", capacity: 8, workers: 4) { _ in }
        #expect(throws: full) {
            try router.reconfigure(four, patterns: ["t"], capacity: 3, overflow: .dropNewest, failurePolicy: FailurePolicy())
        }
        #expect(router.stats()["t"]?.capacity == 8)
        await router.shutdown()
    }

    @Test func eachWorkerStartsAndStopsItsOwnHandler() async throws {
        let router = Router()
        let started = Recorder<(Int, Int)>()
        let stopped = Recorder<Int>()
        let handlers = (1...3).map { _ in LifeCycleHandler(started: started, stopped: stopped) }
        let subscriber = try router.subscribe(["t"], name: "three", workers: 3, handlers: { handlers[$0 - 1] })
        #expect(subscriber.workerCount == 3)
        #expect(started.all.map(\.0).sorted() == [1, 2, 3])
        #expect(started.all.allSatisfy { $0.1 == 3 })
        await router.shutdown()
        #expect(stopped.all.sorted() == [1, 2, 3])
    }
}

private final class LifeCycleHandler: EventHandler {
    let started: Recorder<(Int, Int)>
    let stopped: Recorder<Int>
    var worker = 0
    init(started: Recorder<(Int, Int)>, stopped: Recorder<Int>) {
        self.started = started
        self.stopped = stopped
    }
    func start(_ context: SubscriberContext) throws {
        worker = context.worker
        started.append((context.worker, context.workers))
    }
    func handle(_ event: Event) throws {}
    func stop() { stopped.append(worker) }
}
