import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Switchboard
import SwitchboardTestSupport
import Testing

/// `switchboard tap` against a running instance: what it shows, what it misses, and that it
/// leaves nothing behind.
@Suite(.exclusive) struct TapTests {  // instances and taps under load: apart from the tests that time themselves
    static let counter = "local n = 0\nreturn { handle = function(e) n = n + 1 end }"

    static func config(metrics: String = "") -> String {
        """
        metrics: { listen: "127.0.0.1:0"\(metrics) }
        subscribers:
          - { name: count, plugin: count.lua, topics: [">"], queue: { capacity: 100000, overflow: block } }

        """
    }

    /// An instance with a counting subscriber on everything and its metrics listener.
    static func instance(_ folder: PluginFolder, metrics: String = "") async throws -> (run: LiveRun, url: String) {
        try folder.write("count.lua", counter)
        try folder.write("c.yaml", config(metrics: metrics))
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--report", folder.path("r.json")], in: folder)
        let port = try #require(run.errors.firstMatch(of: /metrics and health on port (\d+)/)?.1)
        return (run, "http://127.0.0.1:\(port)")
    }

    /// A `switchboard tap` process, its output in `name.out` and `name.err` in the folder.
    static func tap(
        _ arguments: [String], in folder: PluginFolder, name: String, environment: [String: String] = [:], output: Pipe? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("switchboard")
        process.arguments = ["tap"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        for suffix in ["out", "err"] { _ = FileManager.default.createFile(atPath: folder.path("\(name).\(suffix)"), contents: nil) }
        process.standardOutput = output ?? FileHandle(forWritingAtPath: folder.path("\(name).out"))
        process.standardError = FileHandle(forWritingAtPath: folder.path("\(name).err"))
        try process.run()
        return process
    }

    static func read(_ folder: PluginFolder, _ file: String) -> String {
        (try? String(contentsOfFile: folder.path(file), encoding: .utf8)) ?? ""
    }

    /// The value of a series on the run's `/metrics` page.
    static func metric(_ series: String, at url: String) async throws -> Double? {
        let (data, _) = try await URLSession.shared.data(from: URL(string: url + "/metrics")!)
        return ObservabilityTests.samples(String(decoding: data, as: UTF8.self))[series]
    }

    static func events(_ range: Range<Int>) -> [String] {
        range.map { n in #"{"topic": "\#(n % 2 == 0 ? "order" : "user").created", "data": {"n": \#(n)}}"# }
    }

    @Test func twoTapsSeeExactlyTheirEventsAndTheRunCountsNoTap() async throws {
        let folder = try PluginFolder()
        let (run, url) = try await Self.instance(folder)
        let orders = try Self.tap(["order.>", "--url", url, "--limit", "100"], in: folder, name: "orders")
        let users = try Self.tap(["user.*", "--url", url, "--limit", "100"], in: folder, name: "users")
        #expect(await run.waitForErrors("tap opened", count: 2))
        #expect(try await Self.metric("switchboard_taps", at: url) == 2)
        run.send(Self.events(0..<200))
        for (process, name, first) in [(orders, "orders", 0), (users, "users", 1)] {
            #expect(await eventually { !process.isRunning })
            #expect(process.terminationStatus == 0, "\(Self.read(folder, "\(name).err"))")
            let lines = try Self.read(folder, "\(name).out").split(separator: "\n").map { try JSON(parsing: String($0)) }
            #expect(lines.map { $0["data"]?["n"]?.intValue } == stride(from: first, to: 200, by: 2).map { Int64($0) })
            #expect(lines.allSatisfy { $0["id"]?.stringValue?.contains("-") == true && $0["headers"] == [:] })
        }
        #expect(await run.waitForErrors("tap closed", count: 2))
        #expect(try await Self.metric("switchboard_taps", at: url) == 0)
        #expect(await run.finish() == 0)
        #expect(!run.errors.contains("tap order") && !run.errors.contains("tap user"))  // not in the summary
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        guard case let .object(subscribers)? = report["subscribers"] else { throw TestFailure("no subscribers in the report") }
        #expect(Array(subscribers.keys) == ["count"])
        #expect(subscribers["count"]?["handled"] == 200)
    }

    @Test func aTapThatReadsSlowlyMissesEventsAndSaysSoWhileTheRouterCountsStayExact() async throws {
        let folder = try PluginFolder()
        let (run, url) = try await Self.instance(folder)
        // Its standard output is a pipe nobody reads until the feed is over: once the pipe is
        // full, the tap stops reading from the instance and falls behind.
        let output = Pipe()
        let tap = try Self.tap([">", "--url", url], in: folder, name: "tap", output: output)
        #expect(await run.waitForErrors("tap opened"))
        let padding = String(repeating: "p", count: 300)
        let count = 30_000
        run.send((0..<count).map { #"{"topic": "load.\#($0 % 7)", "data": {"n": \#($0), "pad": "\#(padding)"}}"# })
        #expect(await eventually {
            (try? await Self.metric(#"switchboard_subscriber_events_total{subscriber="count",outcome="handled"}"#, at: url)) == Double(count)
        })
        let shown = Task {  // read on a thread of its own: a blocking read must not hold one of the pool's
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: output.fileHandleForReading.readDataToEndOfFile()) }
            }
        }
        #expect(await eventually { Self.read(folder, "tap.err").contains("switchboard tap: missed") })
        let missed = Self.read(folder, "tap.err").firstMatch(of: /missed (\d+) events/).flatMap { Int($0.1) } ?? 0
        tap.interrupt()
        let lines = String(decoding: await shown.value, as: UTF8.self).split(separator: "\n").count
        #expect(missed > 0 && lines < count && lines + missed <= count, "missed \(missed), shown \(lines)")
        #expect(await run.waitForErrors("tap closed"))
        #expect(try await Self.metric(#"switchboard_subscriber_events_total{subscriber="count",outcome="dropped"}"#, at: url) == 0)
        #expect(await run.finish() == 0)  // what the tap missed sets no exit status
        #expect(run.errors.contains("published \(count), rejected 0"))
    }

    @Test func aTapClosedMidStreamLeavesNoSubscriberBehind() async throws {
        let folder = try PluginFolder()
        let (run, url) = try await Self.instance(folder)
        let tap = try Self.tap([">", "--url", url], in: folder, name: "tap")
        #expect(await run.waitForErrors("tap opened"))
        run.send(Self.events(0..<50))
        #expect(await eventually { Self.read(folder, "tap.out").split(separator: "\n").count == 50 })
        #expect(try await Self.metric("switchboard_taps", at: url) == 1)
        tap.interrupt()
        #expect(await eventually { !tap.isRunning })
        #expect(await run.waitForErrors("tap closed"))  // noticed on the idle tap by its keep-alive
        #expect(try await Self.metric("switchboard_taps", at: url) == 0)
        run.send(Self.events(50..<100))
        #expect(await eventually {
            (try? await Self.metric(#"switchboard_subscriber_events_total{subscriber="count",outcome="handled"}"#, at: url)) == 100
        })
        #expect(await run.finish() == 0)
    }

    @Test func aTokenGuardsTheTapAndOffLoopbackOneIsRequired() async throws {
        let folder = try PluginFolder()
        let (run, url) = try await Self.instance(folder, metrics: ", token: \(AdminTests.token)")
        let refused = try Self.tap([">", "--url", url, "--limit", "1"], in: folder, name: "refused")
        #expect(await eventually { !refused.isRunning })
        #expect(refused.terminationStatus == 1)
        #expect(Self.read(folder, "refused.err").contains("answered 401") && Self.read(folder, "refused.err").contains("SWITCHBOARD_TOKEN"))
        let allowed = try Self.tap([">", "--url", url, "--limit", "3"], in: folder, name: "allowed", environment: ["SWITCHBOARD_TOKEN": AdminTests.token])
        #expect(await run.waitForErrors("tap opened"))
        run.send(Self.events(0..<3))
        #expect(await eventually { !allowed.isRunning })
        #expect(allowed.terminationStatus == 0 && Self.read(folder, "allowed.out").split(separator: "\n").count == 3)
        #expect(await run.finish() == 0)

        // Off loopback without a token: no tap.
        let open = try PluginFolder()
        try open.write("count.lua", Self.counter)
        try open.write("c.yaml", Self.config().replacingOccurrences(of: "127.0.0.1:0", with: "0.0.0.0:0"))
        let exposed = try await LiveRun(["run", "--config", open.path("c.yaml")], in: open)
        let port = try #require(exposed.errors.firstMatch(of: /metrics and health on port (\d+)/)?.1)
        let tap = try Self.tap([">", "--url", "http://127.0.0.1:\(port)", "--limit", "1"], in: open, name: "tap")
        #expect(await eventually { !tap.isRunning })
        #expect(tap.terminationStatus == 1 && Self.read(open, "tap.err").contains("answered 403"), "\(Self.read(open, "tap.err"))")
        #expect(await exposed.finish() == 0)
    }
}

/// A test's failure with a reason.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
