import Foundation
import Switchboard
import Synchronization

/// Benchmarks of Lua subscribers: the JSON-lines pipeline against hand-written Lua, and
/// the cost of many subscribers.
enum LuaBenchmarks {
    /// Events from a JSON-lines file through three Lua subscribers with lossless `block` queues.
    /// With a baseline script, runs it under lua5.4 and LuaJIT in the same sitting and prints ratios.
    static func pipeline(events path: String, baseline: String?) async throws {
        let plugins = pluginsFolder()
        let router = Router()
        let only = ProcessInfo.processInfo.environment["SB_ONLY"].map { $0.split(separator: ",").map(String.init) }
        for (name, topics) in [("users", ["user.*"]), ("orders", ["order.>", "payment.>"]), ("all", [">"])]
        where only?.contains(name) ?? true {
            try router.subscribe(lua: LuaSubscriberConfiguration(
                name: name, script: "\(plugins)/bench/\(name).lua", topics: topics, capacity: 1024, overflow: .block))
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let start = Clock.monotonicNanos()
        var lines = 0
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var lineStart = 0
            while let newline = memchr(bytes.baseAddress! + lineStart, 0x0A, bytes.count - lineStart) {
                let index = bytes.baseAddress!.distance(to: UnsafeRawPointer(newline))
                let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index])
                lineStart = index + 1
                var topic = ""
                var payload: JSONTape?
                for member in try JSONTape(parsing: line).members {
                    if member.key == "topic" { topic = member.value.stringValue ?? "" }
                    if member.key == "data" { payload = member.value }
                }
                try router.publish(topic, tape: payload!)
                lines += 1
            }
        }
        await router.shutdown(drainTimeout: .seconds(600))
        let seconds = Double(Clock.monotonicNanos() - start) / 1e9
        let handled = router.stats().subscribers.map { "\($0.name)=\($0.handled)" }.joined(separator: " ")
        print("lua pipeline: \(lines) events in \(format(seconds))s (\(Int(Double(lines) / seconds)) events/s), \(handled)")
        guard let baseline else { return }
        for interpreter in ["lua5.4", "luajit"] {
            guard let elapsed = timeBaseline(interpreter, script: baseline, input: path) else {
                print("  \(interpreter): not installed")
                continue
            }
            print("  \(interpreter) \((baseline as NSString).lastPathComponent): \(format(elapsed))s"
                + " → switchboard is \(format(elapsed / seconds))x faster")
        }
    }

    /// Wall time of `interpreter script < input`, or nil when the interpreter is missing.
    private static func timeBaseline(_ interpreter: String, script: String, input: String) -> Double? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [interpreter, script]
        process.standardInput = FileHandle(forReadingAtPath: input)
        process.standardError = FileHandle.nullDevice
        let start = Clock.monotonicNanos()
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return Double(Clock.monotonicNanos() - start) / 1e9
    }

    /// The repository's plugins folder, found from the working directory.
    static func pluginsFolder() -> String {
        FileManager.default.currentDirectoryPath + "/plugins"
    }
}
