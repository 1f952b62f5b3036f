import Foundation
import SwitchboardTestSupport
import Testing

/// Starts the built `switchboard` with `arguments`, its standard error in a file, and waits
/// until it reports its subscribers running.
func startSwitchboard(_ arguments: [String], errors: String) async throws -> Process {
    let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let process = Process()
    process.executableURL = build.appendingPathComponent("switchboard")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    _ = FileManager.default.createFile(atPath: errors, contents: nil)
    process.standardError = FileHandle(forWritingAtPath: errors)
    try process.run()
    _ = await eventually {
        ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").contains("subscribers running")
    }
    return process
}

/// Waits for `process` to exit, at most `seconds`; its status, or nil if it is still running.
func exitStatus(of process: Process, within seconds: Double) async -> Int32? {
    _ = await eventually(within: seconds) { !process.isRunning }
    return process.isRunning ? nil : process.terminationStatus
}

@Suite struct SignalTests {
    @Test func aSignalDrainsAndExitsCleanly() async throws {
        let folder = try PluginFolder()
        let process = try await startSwitchboard(["run", "--input", "none"], errors: folder.path("errors.txt"))
        process.terminate()  // SIGTERM
        let status = await exitStatus(of: process, within: 10)
        #expect(status == 0)
        let errors = try String(contentsOfFile: folder.path("errors.txt"), encoding: .utf8)
        #expect(errors.contains("signal 15, draining"))
        #expect(errors.contains("published 0, rejected 0"))
    }

    @Test func aSecondSignalExitsAtOnce() async throws {
        let folder = try PluginFolder(files: [
            "slow.lua": """
                return { handle = function() end,
                  shutdown = function() local stop = os.clock() + 20; while os.clock() < stop do end end }
                """,
            "c.yaml": "subscribers:\n  - { name: slow, plugin: slow.lua, topics: [a], timeout: 60s }\n",
        ])
        let process = try await startSwitchboard(
            ["run", "--config", folder.path("c.yaml"), "--input", "none", "--drain-timeout", "60s"],
            errors: folder.path("errors.txt"))
        let start = Date()
        kill(process.processIdentifier, SIGINT)  // drains, then the plugin's shutdown spins
        try await Task.sleep(for: .milliseconds(300))
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGINT)
        let status = await exitStatus(of: process, within: 10)
        #expect(status == 128 + SIGINT)
        #expect(Date().timeIntervalSince(start) < 10)
    }
}
