import Foundation
import Switchboard
import Synchronization

/// Benchmarks of Lua subscribers: the JSON-lines pipeline against hand-written Lua, and
/// the cost of many subscribers.
enum LuaBenchmarks {
    /// Events from a JSON-lines file through three Lua subscribers with lossless `block` queues,
    /// `runs` times. With a baseline script, runs it under lua5.4 and LuaJIT interleaved with
    /// those runs and compares the fastest run of each: on a shared, noisy machine the
    /// minimum is the steadiest estimate of what each costs.
    static func pipeline(events path: String, baseline: String?, runs: Int) async throws {
        var best: [String: Double] = [:]
        for _ in 0..<runs {
            let seconds = try await pipelineRun(events: path)
            best["switchboard"] = min(best["switchboard"] ?? .infinity, seconds)
            guard let baseline else { continue }
            for interpreter in ["lua5.4", "luajit"] {
                guard let elapsed = timeBaseline(interpreter, script: baseline, input: path) else { continue }
                best[interpreter] = min(best[interpreter] ?? .infinity, elapsed)
            }
        }
        let ours = best["switchboard"]!
        print("lua pipeline, fastest of \(runs): switchboard \(format(ours))s")
        for interpreter in ["lua5.4", "luajit"] {
            guard let theirs = best[interpreter] else { continue }
            print("  \(interpreter) baseline: \(format(theirs))s → switchboard is \(format(theirs / ours))x as fast")
        }
    }

    /// One run of the pipeline; returns its wall time in seconds.
    private static func pipelineRun(events path: String) async throws -> Double {
        let plugins = pluginsFolder()
        let router = Router()
        for (name, topics) in [("users", ["user.*"]), ("orders", ["order.>", "payment.>"]), ("all", [">"])] {
            try router.subscribe(lua: LuaSubscriberConfiguration(
                name: name, script: "\(plugins)/bench/\(name).lua", topics: topics, capacity: 1024, overflow: .block))
        }
        let start = Clock.monotonicNanos()
        var lines = 0
        try forEachLine(ofFile: path) { line in
            var topic = ""
            var payload: JSONTape?
            try JSONTape(parsing: line).forEachMember { key, value in
                if key == "topic" { topic = value.stringValue ?? "" }
                if key == "data" { payload = value }
            }
            try router.publish(topic, tape: payload!)
            lines += 1
        }
        await router.shutdown(drainTimeout: .seconds(600))
        let seconds = Double(Clock.monotonicNanos() - start) / 1e9
        let handled = router.stats().subscribers.map { "\($0.name)=\($0.handled)" }.joined(separator: " ")
        print("lua pipeline: \(lines) events in \(format(seconds))s (\(Int(Double(lines) / seconds)) events/s), \(handled)")
        return seconds
    }

    /// Calls `body` with each line of a file, read in 1 MiB chunks as a feeder reads stdin.
    private static func forEachLine(ofFile path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CocoaError(.fileReadNoSuchFile) }
        defer { close(descriptor) }
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        var filled = 0
        while true {
            let count = read(descriptor, buffer.baseAddress! + filled, capacity - filled)
            guard count > 0 else { break }
            filled += count
            var start = 0
            while let newline = memchr(buffer.baseAddress! + start, 0x0A, filled - start) {
                let end = buffer.baseAddress!.distance(to: newline)
                try body(UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
                start = end + 1
            }
            filled -= start
            if filled > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: filled) }
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

extension LuaBenchmarks {
    /// `count` Lua subscribers start, each handles one event, and all shut down: the time for
    /// all of it and the peak resident memory of the process.
    static func manySubscribers(count: Int = 1000) async throws {
        let before = residentBytes()
        let start = Clock.monotonicNanos()
        let router = Router()
        let script = "\(pluginsFolder())/bench/all.lua"
        for index in 0..<count {
            try router.subscribe(lua: LuaSubscriberConfiguration(name: "s\(index)", script: script, topics: ["many.\(index)"]))
        }
        let started = Clock.monotonicNanos()
        for index in 0..<count { try router.publish("many.\(index)", data: ["n": .int(Int64(index))]) }
        await router.shutdown(drainTimeout: .seconds(30))
        let seconds = Double(Clock.monotonicNanos() - start) / 1e9
        let handled = router.stats().subscribers.reduce(0) { $0 + $1.handled }
        print("\(count) Lua subscribers: started in \(format(Double(started - start) / 1e9))s, all done in \(format(seconds))s,"
            + " handled=\(handled), peak resident \(peakResidentBytes() / 1_048_576) MiB"
            + " (\(format(Double(peakResidentBytes() - before) / Double(count) / 1024)) KiB each)")
    }
}

/// The process's peak resident set size (VmHWM), from /proc/self/status.
func peakResidentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
}
