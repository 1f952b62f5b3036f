import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Switchboard
import Synchronization

/// Benchmarks of the HTTP edges: ingest against the stdin feeder, and an http sink's batches.
enum HTTPBenchmarks {
    /// A configuration with one Lua subscriber that does nothing, on a lossless queue: what
    /// bounds the run is the input.
    private static func counterConfiguration(ingest: Bool) throws -> Configuration {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-ingest-bench")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "return { handle = function() end }".write(
            to: folder.appendingPathComponent("count.lua"), atomically: true, encoding: .utf8)
        let yaml = (ingest ? "ingest: { http: { listen: \"127.0.0.1:0\", max_body: 64MiB } }\n" : "") + """
            subscribers:
              - { name: count, plugin: count.lua, topics: [">"], queue: { capacity: 65536, overflow: block } }
            """
        let path = folder.appendingPathComponent(ingest ? "ingest.yaml" : "feeder.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try Configuration.load(path: path)
    }

    /// The events of `path` through the stdin feeder and through HTTP ingest (batches of 1,000
    /// lines, four keep-alive connections), `runs` times interleaved; the fastest of each.
    static func ingest(events path: String, runs: Int) async throws {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let batches = stride(from: 0, to: lines.count, by: 1000).map { lines[$0..<min($0 + 1000, lines.count)].joined(separator: "\n") }
        var best = (feeder: Double.infinity, ingest: Double.infinity)
        for _ in 0..<runs {
            var options = Runtime.Options()
            options.input = .file(path)
            let started = ContinuousClock.now
            let fed = try await Runtime(configuration: try counterConfiguration(ingest: false), options: options).run()
            let feeder = seconds(ContinuousClock.now - started)
            best.feeder = min(best.feeder, feeder)

            let port = Counter()
            let ready = Counter()
            let runtime = Runtime(configuration: try counterConfiguration(ingest: true)) { line in
                if let found = line.firstMatch(of: /HTTP ingest on port (\d+)/) { port.value.store(Int(found.1)!, ordering: .relaxed) }
                if line.hasSuffix(" running") { ready.value.store(1, ordering: .relaxed) }
            }
            let running = Task { try await runtime.run() }
            while ready.value.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let url = "http://127.0.0.1:\(port.value.load(ordering: .relaxed))/publish"
            let begin = ContinuousClock.now
            let next = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while true {
                            let index = next.value.wrappingAdd(1, ordering: .relaxed).oldValue
                            guard index < batches.count else { return }
                            var request = HTTPClientRequest(url: url)
                            request.method = .POST
                            request.body = .bytes(ByteBuffer(string: batches[index]))
                            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            guard response.status == .ok else { throw BenchmarkError("ingest answered \(response.status)") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            while (runtime.router.stats()["count"]?.handled ?? 0) < lines.count { try await Task.sleep(for: .milliseconds(1)) }
            let ingested = seconds(ContinuousClock.now - begin)
            best.ingest = min(best.ingest, ingested)
            await runtime.shutDown()
            let report = try await running.value
            print("feeder \(format(feeder))s (\(fed.stats.published) events), ingest \(format(ingested))s (\(report.stats.published) events)")
        }
        let count = Double(lines.count)
        print("ingest, fastest of \(runs): \(Int(count / best.ingest)) events/s over HTTP, \(Int(count / best.feeder)) from the feeder"
            + " → ingest is \(format(best.feeder / best.ingest))x the feeder's rate")
    }

    /// `events` events through an http sink in batches of 100 to a local server that answers
    /// 200 at once, on one keep-alive connection: the sink's rate, and its requests'.
    static func sink(events: Int = 200_000) async throws {
        let requests = Counter()
        let routes = Hummingbird.Router()
        routes.post("/") { request, _ -> Response in
            var request = request
            _ = try await request.collectBody(upTo: 64 << 20)
            requests.value.wrappingAdd(1, ordering: .relaxed)
            return Response(status: .ok)
        }
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let server = Application(
            router: routes, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { listening.yield($0.localAddress?.port ?? 0) })
        let serving = Task { try await server.run() }
        var port = 0
        for await bound in ports {
            port = bound
            break
        }
        var settings = Configuration.HTTPSink(url: "http://127.0.0.1:\(port)/")
        (settings.maxEvents, settings.maxWait) = (100, .milliseconds(10))
        let router = Router()
        try router.subscribe(
            ["order.>"], name: "sink", capacity: 10_000, overflow: .block, handler: HTTPSink(settings: settings, name: "sink"))
        let data: JSON = ["order": "ORD-123456", "total": 109.97, "items": [["sku": "PROD-A", "qty": 2]]]
        let started = ContinuousClock.now
        for _ in 0..<events { try router.publish("order.created", data: data) }
        while (router.stats()["sink"]?.handled ?? 0) < events { try await Task.sleep(for: .milliseconds(1)) }
        let elapsed = seconds(ContinuousClock.now - started)
        await router.shutdown()
        serving.cancel()
        _ = await serving.result
        let made = requests.value.load(ordering: .relaxed)
        print("http sink, batches of 100: \(Int(Double(events) / elapsed)) events/s, \(Int(Double(made) / elapsed)) requests/s"
            + " (\(format(elapsed * 1e6 / Double(made)))µs a request, \(made) requests)")
    }
}

/// A count that tasks and closures share.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

/// A benchmark that could not run.
struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
