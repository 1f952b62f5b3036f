import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// SIGHUP reloads the configuration and the plugins of a running `switchboard run`.
@Suite struct ReloadTests {
    static let counter = """
        local n = 0
        return { handle = function(e) n = n + 1; print("count " .. n) end }
        """

    static func config(_ entries: [String]) -> String {
        "subscribers:\n" + entries.map { "  - { name: \($0), plugin: \($0).lua, topics: [e], queue: { capacity: 100000, overflow: block } }\n" }.joined()
    }

    static func event(_ n: Int) -> String { #"{"topic": "e", "data": \#(n)}"# }

    @Test func aChangedPluginHandlesTheNextEventWhileAnUnchangedOneKeepsItsState() async throws {
        let folder = try PluginFolder(files: [
            "echo.lua": #"return { handle = function(e) print("v1 " .. e.data) end, shutdown = function() print("v1 done") end }"#,
            "counter.lua": Self.counter,
            "c.yaml": Self.config(["echo", "counter"]),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        run.send([Self.event(1)])
        #expect(await eventually { run.output.contains("v1 1") && run.output.contains("count 1") })
        try folder.write("echo.lua", #"return { handle = function(e) print("v2 " .. e.data) end, shutdown = function() print("v2 done") end }"#)
        let before = run.errors
        run.signal(SIGHUP)
        #expect(await run.waitForErrors("reloaded", after: before))
        #expect(run.errors.contains("added none; changed echo; removed none; kept counter"))
        #expect(run.output.contains("v1 done") && !run.output.contains("v2 done"))  // the old state's shutdown ran
        run.send([Self.event(2)])
        #expect(await eventually { run.output.contains("v2 2") && run.output.contains("count 2") })
        #expect(await run.finish() == 0)
        #expect(!run.output.contains("v1 2") && !run.output.contains("count 1\ncount 1"))
        #expect(run.output.contains("v2 done"))  // and the new one's at exit
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        #expect(report["subscribers"]?["echo"]?["handled"] == 2)
    }

    @Test func aChangedRequiredModuleRebuildsItsPlugin() async throws {
        let folder = try PluginFolder(files: [
            "helper.lua": #"return function(x) return "one " .. x end"#,
            "echo.lua": #"local helper = require("helper"); return { handle = function(e) print(helper(e.data)) end }"#,
            "counter.lua": Self.counter,
            "c.yaml": Self.config(["echo", "counter"]),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml")], in: folder)
        try folder.write("helper.lua", #"return function(x) return "two " .. x end"#)
        run.signal(SIGHUP)
        #expect(await run.waitForErrors("reloaded"))
        #expect(run.errors.contains("changed echo; removed none; kept counter"))
        run.send([Self.event(7)])
        #expect(await eventually { run.output.contains("two 7") })
        #expect(await run.finish() == 0)
    }

    @Test(.exclusive) func addingAndRemovingMidStreamSwitchesEveryEventToExactlyOneSide() async throws {
        let folder = try PluginFolder(files: [
            "old.lua": "return { handle = function() end }",
            "new.lua": "return { handle = function() end }",
            "counter.lua": "return { handle = function() end }",
            "c.yaml": Self.config(["old", "counter"]),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        let total = 20_000
        let feeding = run.feed(count: total, pauseMicroseconds: 2000, line: Self.event)
        try await Task.sleep(for: .milliseconds(100))
        try folder.write("c.yaml", Self.config(["new", "counter"]))
        run.signal(SIGHUP)
        #expect(await run.waitForErrors("reloaded"))
        #expect(run.errors.contains("added new; changed none; removed old; kept counter"))
        await feeding.value
        #expect(await run.finish() == 0)
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        #expect(report["published"] == .int(Int64(total)))
        let counts = { (name: String, key: String) in report["subscribers"]?[name]?[key]?.intValue ?? -1 }
        #expect(counts("counter", "handled") == Int64(total))
        #expect(counts("old", "received") + counts("new", "received") == Int64(total))  // one switch: none missed, none twice
        #expect(counts("old", "received") > 0 && counts("new", "received") > 0)
        for name in ["old", "new", "counter"] {
            #expect(counts(name, "received") == counts(name, "handled"), "\(name)")
        }
    }

    @Test func aBrokenConfigurationOrPluginChangesNothing() async throws {
        let folder = try PluginFolder(files: [
            "echo.lua": #"return { handle = function(e) print("v1 " .. e.data) end }"#,
            "counter.lua": Self.counter,
            "c.yaml": Self.config(["echo", "counter"]),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml")], in: folder)
        try folder.write("c.yaml", Self.config(["echo", "counter"]).replacingOccurrences(of: "topics", with: "topcis"))
        var before = run.errors
        run.signal(SIGHUP)
        #expect(await run.waitForErrors("failed, nothing changed", after: before))
        #expect(run.errors.contains("unknown key 'topcis'"))
        try folder.write("c.yaml", Self.config(["echo", "counter"]))
        try folder.write("echo.lua", "return { handle = function(e) print('v2') end,\n  oops oops }")
        before = run.errors
        run.signal(SIGHUP)
        #expect(await run.waitForErrors("failed, nothing changed", after: before))
        #expect(run.errors.contains("subscriber 'echo'") && run.errors.contains("echo.lua:2:"))
        run.send([Self.event(3)])
        #expect(await eventually { run.output.contains("v1 3") && run.output.contains("count 1") })
        #expect(await run.finish() == 0)
    }

    @Test(.exclusive) func aBurstOfReloadsUnderLoadLosesNothing() async throws {
        let folder = try PluginFolder(files: [
            "echo.lua": "return { handle = function() end }",
            "counter.lua": "return { handle = function() end }",
            "c.yaml": Self.config(["echo", "counter"]),
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        let total = 20_000
        let feeding = run.feed(count: total, line: Self.event)
        for round in 0..<10 {
            try folder.write("echo.lua", "-- version \(round)\nreturn { handle = function() end }")
            let before = run.errors
            run.signal(SIGHUP)
            _ = await run.waitForErrors("reload", after: before)
        }
        await feeding.value
        #expect(await run.finish() == 0)
        #expect(run.errors.components(separatedBy: "changed echo").count - 1 >= 5)
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        #expect(report["published"] == .int(Int64(total)))
        for name in ["echo", "counter"] {
            #expect(report["subscribers"]?[name]?["received"] == .int(Int64(total)), "\(name)")
            #expect(report["subscribers"]?[name]?["handled"] == .int(Int64(total)), "\(name)")
        }
    }
}
