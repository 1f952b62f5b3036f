import Foundation
import SwitchboardTestSupport
import Testing

@Suite struct SignalTests {
    @Test func aSignalDrainsAndExitsCleanly() async throws {
        let run = try await LiveRun(["run", "--input", "none"], in: PluginFolder())
        run.signal(SIGTERM)
        let status = await run.exitStatus(within: 10)
        #expect(status == 0)
        let errors = run.errors
        #expect(errors.contains("signal 15, draining"))
        #expect(errors.contains("published 0, rejected 0"))
    }

    @Test func aSignalEndsARunWaitingOnAnIdleStandardInput() async throws {
        let run = try await LiveRun(["run"], in: PluginFolder())
        run.send([#"{"topic": "user.created", "data": "ann@example.com"}"#])
        #expect(await eventually { run.output.contains("ann@example.com") })
        run.signal(SIGINT)  // standard input stays open and quiet
        #expect(await run.exitStatus(within: 10) == 0)
        #expect(run.errors.contains("published 1, rejected 0"))
    }

    @Test func aSecondSignalExitsAtOnce() async throws {
        let folder = try PluginFolder(files: [
            "slow.lua": """
                return { handle = function() end,
                  shutdown = function() local stop = os.clock() + 20; while os.clock() < stop do end end }
                """,
            "c.yaml": "subscribers:\n  - { name: slow, plugin: slow.lua, topics: [a], timeout: 60s }\n",
        ])
        let run = try await LiveRun(
            ["run", "--config", folder.path("c.yaml"), "--input", "none", "--drain-timeout", "60s"], in: folder)
        let start = Date()
        run.signal(SIGINT)  // drains, then the plugin's shutdown spins
        try await Task.sleep(for: .milliseconds(300))
        #expect(run.process.isRunning)
        run.signal(SIGINT)
        let status = await run.exitStatus(within: 30)
        #expect(status == 128 + SIGINT)
        #expect(Date().timeIntervalSince(start) < 30)  // well before the 60 s drain and budget, on a host however busy
    }
}
