import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// Loss is never silent: what a full queue drops is logged and marked, and a run over a finite
/// input that lost events exits with status 3, unless `--fail-on` says otherwise.
@Suite struct LossTests {
    /// A subscriber whose handler takes about 1 ms, with the default queue: 3,000 lines overflow it.
    static func slowFolder() throws -> PluginFolder {
        try PluginFolder(files: [
            "slow.lua": """
                local function spin(s) local t = os.clock() + s; while os.clock() < t do end end
                return { handle = function() spin(0.001) end }
                """,
            "c.yaml": "subscribers:\n  - { name: slow, plugin: slow.lua, topics: [e] }\n",
            "in.jsonl": (0..<3000).map { #"{"topic": "e", "data": \#($0)}"# + "\n" }.joined(),
        ])
    }

    @Test(.exclusive) func aFileRunThatDropsSaysSoAndExitsWithThree() async throws {
        let folder = try Self.slowFolder()
        let result = try await switchboard(
            "run", "--config", folder.path("c.yaml"), "--input", folder.path("in.jsonl"), "--report", folder.path("r.json"))
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        let dropped = try #require(report["subscribers"]?["slow"]?["dropped"]?.intValue)
        try #require(dropped > 0, "the handler kept up: the test proves nothing")
        #expect(result.status == 3)
        // The first drop, once, with the queue and the fix; the rest summed, not one line each.
        let warnings = lines(of: result.errors, startingWith: "").filter { $0.contains("subscriber=slow dropped") }
        #expect(warnings.first?.contains(
            "dropped an event: its queue is full (capacity 1024, overflow drop_newest); raise queue.capacity, or use overflow: block or spill")
            == true, "\(warnings)")
        #expect(warnings.count <= 3, "\(warnings)")
        let summed = warnings.dropFirst().compactMap { $0.firstMatch(of: /dropped (\d+) more events/).flatMap { Int($0.1) } }
        #expect(1 + summed.reduce(0, +) == dropped)  // every drop is in a line
        #expect(result.errors.contains(#/slow\s+3000\s+\d+\s+0\s+\d+\s+0\s+0\s+0\s+0  lost \d+\n/#))
        #expect(result.errors.contains("events were lost (slow dropped \(dropped)): exit status 3"))
        #expect(report["subscribers"]?["slow"].map { $0["received"] == .int(3000) } == true)
    }

    @Test(.exclusive) func failOnNoneExitsZeroAndFailedCanCount() async throws {
        let folder = try Self.slowFolder()
        try folder.write("fails.lua", "return { handle = function() error('no') end }")
        try folder.write("f.yaml", "subscribers:\n  - { name: fails, plugin: fails.lua, topics: [e] }\n")
        let none = try await switchboard(
            "run", "--config", folder.path("c.yaml"), "--input", folder.path("in.jsonl"), "--fail-on", "none")
        #expect(none.status == 0)
        #expect(none.errors.contains("lost "))  // still marked
        let input = #"{"topic": "e"}"# + "\n"
        #expect(try await switchboard("run", "--config", folder.path("f.yaml"), input: input).status == 0)  // failed is not in the default
        let failed = try await switchboard("run", "--config", folder.path("f.yaml"), "--fail-on", "failed", input: input)
        #expect(failed.status == 3)
        #expect(failed.errors.contains("events were lost (fails failed 1)"))
        let bad = try await switchboard("run", "--config", folder.path("f.yaml"), "--fail-on", "dropped,lost", input: input)
        #expect(bad.status == 2)
        #expect(bad.errors.contains("--fail-on 'dropped,lost' is not a comma list of dropped, abandoned, failed, or none"))
        for spelling in ["dropped,", ",", "dropped,,failed", "Dropped", "none,dropped"] {  // no part may be empty or unknown
            #expect(try await switchboard("run", "--config", folder.path("f.yaml"), "--fail-on", spelling, input: input).status == 2,
                    "\(spelling)")
        }
    }

    @Test func aServiceRunFailsOnNothingByDefault() async throws {
        let folder = try PluginFolder(files: [
            "fast.lua": """
                local n = 0
                return { init = function() switchboard.every(0.001, function()
                           for i = 1, 50 do switchboard.publish("e", i) end end) end }
                """,
            "slow.lua": "return { handle = function() local t = os.clock() + 0.01; while os.clock() < t do end end }",
            "c.yaml": """
                subscribers:
                  - { name: fast, plugin: fast.lua }
                  - { name: slow, plugin: slow.lua, topics: [e], queue: { capacity: 2 } }
                """,
        ])
        let result = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none", "--duration", "300ms")
        #expect(result.errors.contains("subscriber=slow dropped an event"))
        #expect(result.status == 0)
    }

    /// A plugin that republishes each event to `next`, failing the event when the publish fails.
    static func forwarder(to next: String) -> String {
        "return { handle = function(e) local ok, err = switchboard.publish('\(next)', e.data); if not ok then error(err) end end }"
    }

    @Test(.exclusive) func aBlockChainOfPluginsAppliesBackpressureAllTheWayToTheInput() async throws {
        let folder = try PluginFolder(files: [
            "a.lua": Self.forwarder(to: "b"),
            "b.lua": Self.forwarder(to: "c"),
            "c.lua": """
                local function spin(s) local t = os.clock() + s; while os.clock() < t do end end
                return { handle = function() spin(0.00005) end }
                """,
            "c.yaml": """
                subscribers:
                  - { name: a, plugin: a.lua, topics: [a], queue: { capacity: 10, overflow: block } }
                  - { name: b, plugin: b.lua, topics: [b], queue: { capacity: 10, overflow: block } }
                  - { name: c, plugin: c.lua, topics: [c], queue: { capacity: 10, overflow: block } }
                """,
            "in.jsonl": (0..<20_000).map { #"{"topic": "a", "data": \#($0)}"# + "\n" }.joined(),
        ])
        let result = try await switchboard(
            "run", "--config", folder.path("c.yaml"), "--input", folder.path("in.jsonl"), "--report", folder.path("r.json"))
        #expect(result.status == 0, "\(result.errors)")
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        for name in ["a", "b", "c"] {
            #expect(report["subscribers"]?[name]?["received"] == 20_000)
            #expect(report["subscribers"]?[name]?["handled"] == 20_000, "\(name): \(report)")
        }
    }

    @Test(.exclusive) func aCycleOfBlockSubscribersEndsWithinItsBudgetsWithTheFailuresCounted() async throws {
        // Each event of x makes ten for y and each of y ten for x, three hops deep, into queues of
        // two: both end up waiting on each other's full queue, until shortly before their budget.
        func plugin(_ other: String) -> String {
            """
            return { handle = function(e)
              if e.data < 3 then
                for i = 1, 10 do local ok, err = switchboard.publish("\(other)", e.data + 1); if not ok then error(err) end end
              end
            end }
            """
        }
        let folder = try PluginFolder(files: [
            "x.lua": plugin("y"), "y.lua": plugin("x"),
            "c.yaml": """
                subscribers:
                  - { name: x, plugin: x.lua, topics: [x], timeout: 200ms, queue: { capacity: 2, overflow: block } }
                  - { name: y, plugin: y.lua, topics: [y], timeout: 200ms, queue: { capacity: 2, overflow: block } }
                """,
        ])
        let start = Date()
        let result = try await switchboard(
            "run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json"), input: #"{"topic": "x", "data": 0}"# + "\n")
        #expect(Date().timeIntervalSince(start) < 30)
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        let counts = ["x", "y"].compactMap { report["subscribers"]?[$0] }
        let failed = counts.reduce(0) { $0 + ($1["failed"]?.intValue ?? 0) }
        let dropped = counts.reduce(0) { $0 + ($1["dropped"]?.intValue ?? 0) }
        #expect(failed > 0 && dropped > 0, "\(report)")  // the deadlock broke, and said so
        #expect(result.errors.contains("queue full"))
        for subscriber in counts {
            let parts = ["handled", "failed", "dropped", "abandoned", "pending"].map { subscriber[$0]?.intValue ?? 0 }
            #expect(subscriber["received"]?.intValue == parts.reduce(0, +))
        }
        #expect(result.status == 3)
    }

    @Test func failedPublishesAreCountedAndLoggedOnceEach() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": """
                return { handle = function()
                  switchboard.publish("out.a b", 1)            -- an invalid topic
                  switchboard.publish("out.*", 1)              -- a wildcard
                  switchboard.publish("out.ok", function() end) -- data JSON cannot hold
                  switchboard.publish("out.ok", 1)             -- taken
                  switchboard.publish("nobody.listens", 1)     -- matches nothing: neither
                end }
                """,
            "sink.lua": "return { handle = function() end }",
            "c.yaml": """
                subscribers:
                  - { name: p, plugin: p.lua, topics: [in] }
                  - { name: sink, plugin: sink.lua, topics: ["out.>"] }
                """,
        ])
        let input = String(repeating: #"{"topic": "in"}"# + "\n", count: 5)
        let result = try await switchboard("run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json"), input: input)
        #expect(result.status == 0)
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        #expect(report["subscribers"]?["p"]?["published"] == 5)
        #expect(report["subscribers"]?["p"]?["publish_failed"] == 15)
        #expect(report["subscribers"]?["p"]?["handled"] == 5)  // the plugin did not check: its events still count as handled
        #expect(report["subscribers"]?["sink"]?["received"] == 5)
        for reason in ["to 'out.a b'", "to 'out.*'", "cannot encode"] {
            let lines = lines(of: result.errors, startingWith: "").filter { $0.contains("publish failed") && $0.contains(reason) }
            #expect((1...2).contains(lines.count), "\(reason): \(lines)")  // once, and the repeats at the end
        }
        #expect(result.errors.contains(#/p\s+5\s+5\s+0\s+0\s+0\s+0\s+5\s+15\n/#))
    }

    @Test(.exclusive) func whatPluginsPublishFromShutdownArrivesBeforeTheirSubscribersStop() async throws {
        // A chain that speaks only at shutdown: count sums what it saw and publishes it; relay
        // adds its own count of totals and passes it on; sink prints what reached it.
        let folder = try PluginFolder(files: [
            "count.lua": """
                local n = 0
                return { handle = function() n = n + 1 end,
                         shutdown = function() local ok, err = switchboard.publish("total", n); if not ok then print("lost " .. err) end end }
                """,
            "relay.lua": """
                local got = 0
                return { handle = function(e) got = got + e.data end,
                         shutdown = function() local ok, err = switchboard.publish("final", got); if not ok then print("lost " .. err) end end }
                """,
            "sink.lua": "local got\nreturn { handle = function(e) got = e.data end, shutdown = function() print('final ' .. tostring(got)) end }",
            // Listed sinks first: the order of the file must not matter.
            "c.yaml": """
                subscribers:
                  - { name: sink, plugin: sink.lua, topics: [final] }
                  - { name: relay, plugin: relay.lua, topics: [total] }
                  - { name: count, plugin: count.lua, topics: [e], queue: { overflow: block } }
                """,
            "in.jsonl": (0..<3000).map { #"{"topic": "e", "data": \#($0)}"# + "\n" }.joined(),
        ])
        for run in 1...20 {
            let result = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", folder.path("in.jsonl"))
            #expect(result.output == "final 3000\n", "run \(run): \(result.output) \(result.errors)")
            #expect(result.status == 0)
        }
    }
}
