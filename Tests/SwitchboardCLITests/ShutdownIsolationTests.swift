import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// A subscriber stuck in a call, at the drain deadline or in start-up, costs no other its
/// `shutdown` and does not hold the process.
@Suite struct ShutdownIsolationTests {
    @Test(.exclusive) func aCallStuckAtTheDrainDeadlineCostsNoOtherSubscriberItsShutdown() async throws {
        let folder = try PluginFolder(files: [
            "counter.lua": """
                local total = 0
                return { handle = function() total = total + 1 end,
                  shutdown = function() print("counter total " .. total) end }
                """,
            // Busy in Lua at the deadline: interrupted, then its shutdown runs under its own budget.
            "looper.lua": """
                return { handle = function() while true do end end,
                  shutdown = function() print("looper shut down") end }
                """,
            // Backtracking inside one C call, which nothing interrupts: hours at this length
            // (300 bytes and three `.-` take 1.8 s; the cost grows with the length to the fourth).
            "stuck.lua": """
                return { handle = function() return string.rep("a", 30000):find(".-.-.-.-.-.-.-.-.-b") end,
                  shutdown = function() print("stuck shut down") end }
                """,
            "c.yaml": """
                drain_timeout: 3s
                subscribers:
                  - { name: counter, plugin: counter.lua, topics: [work] }
                  - { name: looper, plugin: looper.lua, topics: [work], timeout: 60s }
                  - { name: stuck, plugin: stuck.lua, topics: [work], timeout: 100ms }
                """,
        ])
        let events = 20
        let input = String(repeating: #"{"topic": "work"}"# + "\n", count: events)
        let start = Date()
        let result = try await switchboard(
            ["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json"), "--fail-on", "none"],
            input: Data(input.utf8))
        #expect(result.status == 0, "\(result.errors)")
        #expect(Date().timeIntervalSince(start) < 30)  // before the looper's 60 s budget, on a host however busy
        let output = result.output.split(separator: "\n")
        #expect(output.contains("counter total \(events)"), "\(result.output)\n\(result.errors)")
        #expect(output.contains("looper shut down"), "\(result.output)\n\(result.errors)")
        #expect(!output.contains("stuck shut down"))
        #expect(!result.errors.contains("shutdown failed"), "\(result.errors)")
        #expect(result.errors.contains(#/subscriber=stuck .*shutdown skipped/#), "\(result.errors)")
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        for name in ["counter", "looper", "stuck"] {
            let counts = try #require(report["subscribers"]?[name])
            let outcomes = ["handled", "failed", "dropped", "abandoned", "pending"].map { counts[$0]?.intValue ?? -1 }
            #expect(counts["received"]?.intValue == Int64(events), "\(name)")
            #expect(outcomes.reduce(0, +) == Int64(events), "\(name): \(counts)")
        }
        #expect(report["subscribers"]?["counter"]?["handled"] == .int(Int64(events)))
        #expect(report["subscribers"]?["looper"]?["abandoned"] == .int(Int64(events)))  // the one in hand too
        #expect(report["subscribers"]?["stuck"]?["abandoned"] == .int(Int64(events)))
    }

    @Test func aSignalDuringStartUpInterruptsItAndExits() async throws {
        let folder = try PluginFolder(files: [
            "ok.lua": "return { handle = function() end }",
            "slow.lua": """
                return { init = function() switchboard.log.info("init begins") while true do end end,
                  handle = function() end }
                """,
            "c.yaml": """
                subscribers:
                  - { name: ok, plugin: ok.lua, topics: [a] }
                  - { name: slow, plugin: slow.lua, topics: [a], timeout: 60s }
                """,
        ])
        let run = try await LiveRun(
            ["run", "--config", folder.path("c.yaml"), "--input", "none"], in: folder, ready: "init begins")
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        #expect(run.errors.contains("init begins"))
        let start = Date()
        run.signal(SIGTERM)
        let status = await run.exitStatus(within: 30)
        #expect(status == 128 + SIGTERM, "\(run.errors)")
        #expect(Date().timeIntervalSince(start) < 30)  // well before the 60 s budget: interrupted, not waited for
        #expect(run.errors.contains("signal 15 during start-up"), "\(run.errors)")
        #expect(!run.errors.contains("draining"))
    }
}
