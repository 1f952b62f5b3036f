import Foundation
import Switchboard

/// Benchmarks of the router core: fan-out throughput, publish latency with a stuck
/// subscriber, and the cost of non-matching subscriptions.
enum CoreBenchmarks {
    /// 2,000,000 publishes to 3 subscribers with 65,536-slot queues, `runs` times: in this
    /// process, which links no allocator (as an embedder builds it), and in a copy of it with
    /// jemalloc preloaded (the allocator the server binary links). With the seed's Go program
    /// (built from shared/baselines/goseed), runs it in between; compares the fastest run of each.
    static func fanout(goBaseline: String?, runs: Int) async throws {
        var ours = 0.0
        var jemalloc = 0.0
        var theirs = 0.0
        for _ in 0..<runs {
            ours = max(ours, try await fanoutRun())
            if let rate = jemallocRate() { jemalloc = max(jemalloc, rate) }
            if let goBaseline, let rate = goRate(goBaseline) { theirs = max(theirs, rate) }
        }
        print("fanout, fastest of \(runs): \(Int(ours)) publishes/s with the system's malloc (as an embedder builds it)")
        if jemalloc > 0 { print("  with jemalloc (as the server binary links it): \(Int(jemalloc)) publishes/s") }
        guard theirs > 0 else { return }
        print("  Go seed PubSub: \(Int(theirs)) publishes/s → switchboard is \(format(ours / theirs))x as fast"
            + (jemalloc > 0 ? ", \(format(jemalloc / theirs))x with jemalloc" : ""))
    }

    /// One fan-out run, which prints its `rate=N`: what `fanout` runs in a copy of itself under jemalloc.
    static func fanoutOnce() async throws { _ = try await fanoutRun() }

    /// One fan-out run in a copy of this program with jemalloc preloaded; nil without Debian's libjemalloc2.
    private static func jemallocRate() -> Double? {
        let library = ["/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2"]
            .first { FileManager.default.fileExists(atPath: $0) }
        guard let library else { return nil }
        var environment = ProcessInfo.processInfo.environment
        environment["LD_PRELOAD"] = library
        return rate(of: CommandLine.arguments[0], ["fanout-once"], environment: environment)
    }

    /// One fan-out run; returns publishes per second.
    private static func fanoutRun(publishes: Int = 2_000_000, capacity: Int = 65_536) async throws -> Double {
        let router = Router()
        // Each subscriber counts what it handled in its own stats, as each of the Go seed's
        // goroutines counts in a local: one counter shared by the three handlers cost a sixth
        // of the rate in contention on its cache line.
        for index in 0..<3 { try router.subscribe("user.created", name: "s\(index)", capacity: capacity) { _ in } }
        let data: JSON = 42
        let start = SystemClock.monotonicNanos()
        for _ in 0..<publishes { try router.publish("user.created", data: data) }
        await router.shutdown(drainTimeout: .seconds(60))
        let seconds = Double(SystemClock.monotonicNanos() - start) / 1e9
        let stats = router.stats().subscribers
        let dropped = stats.reduce(0) { $0 + $1.dropped }
        print("fanout: published=\(publishes) delivered=\(stats.reduce(0) { $0 + $1.handled }) dropped=\(dropped)"
            + " elapsed=\(format(seconds))s rate=\(Int(Double(publishes) / seconds)) pub/s")
        return Double(publishes) / seconds
    }

    /// The publishes per second the Go seed program reports for the same workload.
    private static func goRate(_ binary: String) -> Double? { rate(of: binary, ["2000000", "65536"]) }

    /// Runs `binary` and reads the `rate=N` field it prints.
    private static func rate(of binary: String, _ arguments: [String], environment: [String: String]? = nil) -> Double? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return nil }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let field = output.split(whereSeparator: { $0 == " " || $0 == "\n" }).last(where: { $0.hasPrefix("rate=") })
        else { return nil }
        return Double(field.dropFirst(5))
    }

    /// Publish latency percentiles while one subscriber is stuck forever and one keeps up.
    static func latency(publishes: Int = 200_000) async throws {
        let router = Router()
        try router.subscribe("metrics.>", name: "stuck", capacity: 1024) { _ in while true { sleep(3600) } }
        try router.subscribe("metrics.>", name: "healthy", capacity: 65_536) { _ in }
        var samples = [UInt64](repeating: 0, count: publishes)
        for index in 0..<publishes {
            let start = SystemClock.monotonicNanos()
            try router.publish("metrics.cpu", data: .int(Int64(index)))
            samples[index] = SystemClock.monotonicNanos() - start
            if index % 64 == 0 { spin(microseconds: 2) }  // an uneven feed, so the healthy subscriber sleeps and wakes
        }
        samples.sort()
        func percentile(_ p: Double) -> String { format(Double(samples[Int(Double(publishes - 1) * p)]) / 1000) + "µs" }
        let stuck = router.stats()["stuck"]!
        print("latency (one stuck subscriber): p50=\(percentile(0.5)) p99=\(percentile(0.99)) p99.9=\(percentile(0.999))"
            + " max=\(percentile(1)) stuck.dropped=\(stuck.dropped)")
    }

    /// Publish cost with 10 and with 10,000 subscribers that match nothing, a new topic per
    /// publish: both routers built first, then timed in alternating rounds, the fastest round
    /// of each compared (a noisy neighbour during one round would otherwise decide the ratio).
    static func nonMatching(publishes: Int = 1_000_000, rounds: Int = 5) async throws {
        let counts = [10, 10_000]
        var routers: [Router] = []
        for count in counts {
            let router = Router()
            for index in 0..<count {
                // Literal and wildcard patterns at several depths, none matching "orders.<n>".
                let pattern = switch index % 4 {
                case 0: "tenant\(index).>"
                case 1: "*.tenant\(index)"
                case 2: "svc.tenant\(index).*"
                default: "*.*.tenant\(index)"
                }
                try router.subscribe(pattern, name: "n\(index)", capacity: 16) { _ in }
            }
            routers.append(router)
        }
        var costs = [Double](repeating: .infinity, count: counts.count)
        let perRound = publishes / rounds
        for round in 0..<rounds {
            for (slot, router) in routers.enumerated() {
                let topics = (0..<perRound).map { "orders.\(round * perRound + $0)" }
                let start = SystemClock.monotonicNanos()
                for topic in topics { try router.publish(topic) }
                costs[slot] = min(costs[slot], Double(SystemClock.monotonicNanos() - start) / Double(perRound))
            }
        }
        for router in routers { await router.shutdown(drainTimeout: .seconds(1)) }
        print("non-matching, fastest of \(rounds) rounds: 10 subs=\(format(costs[0]))ns/publish"
            + " 10000 subs=\(format(costs[1]))ns/publish ratio=\(format(costs[1] / costs[0]))")
    }
}

/// A duration in seconds, with the fraction.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func format(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    return "\(scaled)"
}

func spin(microseconds: Int) {
    let end = SystemClock.monotonicNanos() + UInt64(microseconds) * 1000
    while SystemClock.monotonicNanos() < end {}
}

extension CoreBenchmarks {
    /// Resident memory and threads added by 10,000 idle subscribers.
    static func idleCost(count: Int = 10_000) async throws {
        let before = residentBytes()
        let router = Router()
        let start = SystemClock.monotonicNanos()
        for index in 0..<count { try router.subscribe("idle.\(index)", name: "i\(index)", capacity: 1024) { _ in } }
        let seconds = Double(SystemClock.monotonicNanos() - start) / 1e9
        try await Task.sleep(for: .milliseconds(500))  // let every consumer park
        let perSubscriber = Double(residentBytes() - before) / Double(count)
        print("idle subscribers: \(count) started in \(format(seconds))s, \(format(perSubscriber / 1024)) KiB resident each"
            + " (one parked thread, 1 MiB of stack reserved, touched pages only)")
        await router.shutdown(drainTimeout: .seconds(1))
    }
}

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * 4096
}
