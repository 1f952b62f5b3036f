import Foundation
import Switchboard
import Synchronization

/// Benchmarks of Lua subscribers: the JSON-lines pipeline against hand-written Lua, and
/// the cost of many subscribers.
enum LuaBenchmarks {
    /// Events from a JSON-lines file through `switchboard run --config config/bench.yaml` (three
    /// Lua subscribers with lossless `block` queues), end to end, `runs` times. With a baseline
    /// script, runs it under lua5.4 and LuaJIT interleaved with those runs and compares the
    /// fastest run of each: on a shared, noisy machine the minimum is the steadiest estimate.
    static func pipeline(events path: String, baseline: String?, runs: Int) throws {
        let switchboard = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("switchboard").path
        guard FileManager.default.isExecutableFile(atPath: switchboard) else {
            print("\(switchboard) is missing: build every product first, `swift build -c release`")
            return
        }
        var best: [String: Double] = [:]
        for _ in 0..<runs {
            guard let ours = time(switchboard, ["run", "--config", "config/bench.yaml", "--input", path], input: nil)
            else {
                print("switchboard run failed")
                return
            }
            print("switchboard run: \(format(ours))s")
            best["switchboard"] = min(best["switchboard"] ?? .infinity, ours)
            guard let baseline else { continue }
            for interpreter in ["lua5.4", "luajit"] {
                guard let elapsed = time("/usr/bin/env", [interpreter, baseline], input: path) else { continue }
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

    /// The same pipeline with and without a journal (`fsync: interval`, in a temporary folder
    /// emptied before each run), `runs` times interleaved: the journal's share of the time.
    static func journalCost(events path: String, runs: Int) throws {
        let switchboard = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("switchboard").path
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-journal-bench").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let journaled = folder + "/bench.yaml"
        let plain = try String(contentsOfFile: "config/bench.yaml", encoding: .utf8)
        try ("journal: { path: \(folder)/journal, fsync: interval }\n"
            + plain.replacingOccurrences(of: "../plugins", with: pluginsFolder()))
            .write(toFile: journaled, atomically: true, encoding: .utf8)
        var times: [String: [Double]] = [:]
        for _ in 0..<runs {
            for (name, config) in [("without", "config/bench.yaml"), ("with", journaled)] {
                try? FileManager.default.removeItem(atPath: folder + "/journal")
                guard let elapsed = time(switchboard, ["run", "--config", config, "--input", path], input: nil) else {
                    print("switchboard run failed (\(name) the journal); build every product first, `swift build -c release`")
                    return
                }
                times[name, default: []].append(elapsed)
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let (without, with) = (times["without"]!, times["with"]!)
        print("journal cost over \(runs) interleaved runs: fastest \(format(without.min()!))s without, \(format(with.min()!))s with; "
            + "median \(format(median(without)))s without, \(format(median(with)))s with")
        print("  the journal takes \(format((1 - median(without) / median(with)) * 100))% of the throughput (median)")
    }

    /// Wall time of a command (its standard input from `input`, if given), or nil when it
    /// cannot start or fails.
    private static func time(_ executable: String, _ arguments: [String], input: String?) -> Double? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let input { process.standardInput = FileHandle(forReadingAtPath: input) }
        process.standardError = FileHandle.nullDevice
        let start = SystemClock.monotonicNanos()
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return Double(SystemClock.monotonicNanos() - start) / 1e9
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
        let start = SystemClock.monotonicNanos()
        let router = Router()
        let script = "\(pluginsFolder())/bench/all.lua"
        for index in 0..<count {
            try router.subscribe(lua: LuaSubscriberConfiguration(name: "s\(index)", script: script, topics: ["many.\(index)"]))
        }
        let started = SystemClock.monotonicNanos()
        for index in 0..<count { try router.publish("many.\(index)", data: ["n": .int(Int64(index))]) }
        await router.shutdown(drainTimeout: .seconds(30))
        let seconds = Double(SystemClock.monotonicNanos() - start) / 1e9
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

extension LuaBenchmarks {
    /// A CPU-bound plugin (`plugins/bench/cpu.lua`) over 200,000 events keyed over 1,000
    /// customers, with 1, 2 and 4 workers, each fastest of `runs`, the three interleaved so
    /// that a busy neighbour slows them alike: the events per second, and the speed-up over 1
    /// worker (target: 2 workers at least 1.7x on two cores).
    static func workers(iterations: Int, runs: Int) async throws {
        let events = 200_000
        let counts = [1, 2, 4]
        var best: [Int: Double] = [:]
        for _ in 0..<runs {
            for workers in counts {
                let router = Router()
                var configuration = LuaSubscriberConfiguration(
                    name: "cpu", script: "\(pluginsFolder())/bench/cpu.lua", topics: ["order.>"], capacity: 8192,
                    overflow: .block, settings: ["iterations": .int(Int64(iterations))])
                configuration.workers = workers
                configuration.key = .data(["customer"])
                try router.subscribe(lua: configuration)
                let start = SystemClock.monotonicNanos()
                for index in 0..<events {
                    try router.publish("order.created", data: ["customer": .int(Int64(index % 1000)), "n": .int(Int64(index))])
                }
                await router.shutdown(drainTimeout: .seconds(600))
                let seconds = Double(SystemClock.monotonicNanos() - start) / 1e9
                guard router.stats()["cpu"]?.handled == events else { throw BenchmarkError("\(workers) workers lost events") }
                best[workers] = max(best[workers] ?? 0, Double(events) / seconds)
            }
        }
        for workers in counts {
            let rate = best[workers]!
            let detail = workers == 1 ? "\(format(1e6 / rate)) µs of Lua per event" : "\(format(rate / best[1]!))x of 1 worker"
            print("\(workers) worker\(workers == 1 ? "" : "s"): \(Int(rate)) events/s, \(detail)")
        }
        print("target: 2 workers at least 1.7x of 1 on two cores: \(best[2]! / best[1]! >= 1.7 ? "met" : "missed")")
    }
}
