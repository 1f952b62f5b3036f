import Foundation
import SwitchboardConfig
import SwitchboardCore
import SwitchboardMetrics
import SwitchboardRuntime
import SwitchboardTestSupport
import Synchronization
import Testing

/// Plugins with `workers`: a Lua state per worker, hostile workers, and reloads that change the count.
@Suite struct WorkerDeploymentTests {
    @Test func eachWorkerHasItsOwnStateAndKnowsItsNumber() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": """
                local handled = 0
                return {
                  init = function() switchboard.publish("ready", { worker = switchboard.worker, workers = switchboard.workers }) end,
                  handle = function() handled = handled + 1 end,
                  shutdown = function() switchboard.publish("bye", { worker = switchboard.worker, handled = handled }) end,
                }
                """,
            "c.yaml": "subscribers:\n  - { name: p, plugin: p.lua, topics: [t], workers: 3, key: data.k }\n",
        ])
        let router = Router()
        let ready = Recorder<JSON>(), bye = Recorder<JSON>()
        try router.subscribe("ready") { ready.append($0.data) }
        try router.subscribe("bye") { bye.append($0.data) }
        _ = try Deployment(router: router, configuration: Configuration.load(path: folder.path("c.yaml")))
        for index in 0..<300 { try router.publish("t", data: ["k": .int(Int64(index))]) }
        await router.shutdown()
        #expect(ready.all.map { $0["worker"]!.intValue! }.sorted() == [1, 2, 3])
        #expect(ready.all.allSatisfy { $0["workers"] == 3 })
        #expect(bye.all.map { $0["worker"]!.intValue! }.sorted() == [1, 2, 3])
        // Each state counted only its own events: three counts that add up to all of them.
        #expect(bye.all.map { $0["handled"]!.intValue! }.reduce(0, +) == 300)
        #expect(bye.all.allSatisfy { $0["handled"]!.intValue! > 0 && $0["handled"]!.intValue! < 300 })
        let stats = router.stats()["p"]!
        #expect(stats.handled == 300 && stats.perWorker.count == 3)
    }

    @Test func aHostileWorkerIsStoppedAndRebuiltWhileItsSiblingsGoOn() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": """
                return { handle = function(event)
                  if event.data.bomb == "loop" then while true do end end
                  if event.data.bomb == "memory" then local t = {} while true do t[#t + 1] = string.rep("x", 4096) .. #t end end
                  switchboard.publish("done", { k = event.data.k, worker = switchboard.worker })
                end }
                """,
            "c.yaml": """
                subscribers:
                  - name: p
                    plugin: p.lua
                    topics: [t]
                    workers: 2
                    key: data.k
                    timeout: 200ms
                    memory: 4MiB
                    queue: { capacity: 2000, overflow: block }
                    on_failure: { restart_after: 1 }
                """,
        ])
        let router = Router()
        let done = Recorder<JSON>()
        try router.subscribe("done", capacity: 10_000) { done.append($0.data) }
        _ = try Deployment(router: router, configuration: Configuration.load(path: folder.path("c.yaml")))
        try router.publish("t", data: ["k": "hostile", "bomb": "loop"])
        try router.publish("t", data: ["k": "hostile", "bomb": "memory"])
        for index in 0..<400 { try router.publish("t", data: ["k": .string(index % 4 == 0 ? "hostile" : "k\(index)")]) }
        #expect(await eventually { done.all.count == 400 })
        let stats = router.stats()["p"]!
        #expect(stats.failed == 2 && stats.handled == 400)
        #expect(stats.restarts >= 1)
        // The hostile key's worker took up its events again after its rebuild, and the other worker never stopped.
        #expect(done.all.filter { $0["k"] == "hostile" }.count == 100)
        #expect(Set(done.all.map { $0["worker"]!.intValue! }) == [1, 2])
        await router.shutdown()
    }

    @Test(.exclusive) func aReloadFromTwoToFourWorkersAndBackKeepsEveryKeyInOrder() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function(event) switchboard.publish(\"seen\", event.data) end }",
            "c.yaml": Self.config(workers: 2),
        ])
        let router = Router()
        let order = Mutex((last: [Int64: Int64](), seen: 0, broken: [String]()))
        try router.subscribe("seen", capacity: 1_000_000) { event in
            let (key, sequence) = (event.data["k"]!.intValue!, event.data["seq"]!.intValue!)
            order.withLock { state in
                if let last = state.last[key], last >= sequence { state.broken.append("key \(key): \(sequence) after \(last)") }
                state.last[key] = sequence
                state.seen += 1
            }
        }
        let deployment = try Deployment(router: router, configuration: Configuration.load(path: folder.path("c.yaml")))
        // A steady feed from a thread of its own (a full `block` queue blocks it).
        let published = Atomic<Int>(0), stop = Atomic<Bool>(false)
        let feeder = Thread {
            var sequence: Int64 = 0
            while !stop.load(ordering: .relaxed) {
                _ = try? router.publish("t", data: ["k": .int(sequence % 40), "seq": .int(sequence)])
                sequence += 1
                published.add(1, ordering: .relaxed)
                if sequence % 64 == 0 { usleep(200) }
            }
        }
        feeder.start()
        for workers in [4, 2, 3, 2] {  // without the hold, one switch in two or so let a key's event overtake another
            let before = published.load(ordering: .relaxed)
            #expect(await eventually { published.load(ordering: .relaxed) > before + 2000 })
            try folder.write("c.yaml", Self.config(workers: workers))
            let summary = try await deployment.reload()
            #expect(summary.changed == ["p"])
            #expect(router.subscriber(named: "p")?.workerCount == workers)
        }
        let after = published.load(ordering: .relaxed)
        #expect(await eventually { published.load(ordering: .relaxed) > after + 2000 })
        stop.store(true, ordering: .relaxed)
        #expect(await eventually { feeder.isFinished })
        let total = published.load(ordering: .relaxed)
        #expect(await eventually { order.withLock { $0.seen } == total })
        await router.shutdown()
        #expect(order.withLock { $0.broken }.prefix(5) == [])
        let stats = router.stats().byName.first { $0.name == "p" }!
        #expect((stats.received, stats.handled, stats.dropped, stats.abandoned) == (total, total, 0, 0))
    }

    @Test func metricsLabelEachWorkersSeries() async throws {
        let router = Router()
        let metrics = RouterMetrics(router: router)
        try router.subscribe("t", name: "two", workers: 2, key: .data(["k"])) { _ in }
        try router.subscribe("t", name: "one") { _ in }
        for index in 0..<100 { try router.publish("t", data: ["k": .int(Int64(index))]) }
        #expect(await eventually { router.stats()["two"]!.handled == 100 && router.stats()["one"]!.handled == 100 })
        let text = metrics.render()
        for worker in [1, 2] {
            #expect(text.contains(#"switchboard_subscriber_queue_depth{subscriber="two",worker="\#(worker)"} 0"#), "\(text)")
            #expect(text.contains(#"switchboard_subscriber_restarts_total{subscriber="two",worker="\#(worker)"}"#))
            #expect(text.contains(#"switchboard_handler_duration_seconds_count{subscriber="two",worker="\#(worker)"}"#))
        }
        let counts = [1, 2].map { worker in
            text.split(separator: "\n").first { $0.hasPrefix(#"switchboard_handler_duration_seconds_count{subscriber="two",worker="\#(worker)"}"#) }
                .flatMap { Int($0.split(separator: " ").last!) } ?? -1
        }
        #expect(counts.reduce(0, +) == 100)
        #expect(text.contains(#"switchboard_subscriber_events_total{subscriber="two",outcome="handled"} 100"#))
        #expect(text.contains(#"switchboard_subscriber_queue_depth{subscriber="one"} 0"#))  // one worker: no label
        #expect(!text.contains(#"subscriber="one",worker"#))
        await router.shutdown()
    }

    private static func config(workers: Int) -> String {
        "subscribers:\n  - { name: p, plugin: p.lua, topics: [t], workers: \(workers), key: data.k, queue: { capacity: 4096, overflow: block } }\n"
    }
}
