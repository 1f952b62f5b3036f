import Foundation
import Switchboard

/// Benchmarks of the NATS bridge against a real `nats-server -js` on loopback: exports and
/// imports into a Lua subscriber, over core NATS (at most once) and JetStream (acknowledged).
enum NATSBenchmarks {
    private static let subjects = #"["user.>", "order.>", "payment.>", "api.>", "db.>", "system.>"]"#

    /// The events of `path` exported and imported each way, `runs` times; the fastest of each,
    /// in events per second, side by side.
    static func bridge(events path: String, runs: Int) async throws {
        let count = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-nats-bench")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "return { handle = function() end }".write(to: folder.appendingPathComponent("count.lua"), atomically: true, encoding: .utf8)
        var best = (coreExport: Double.infinity, jsExport: Double.infinity, coreImport: Double.infinity, jsImport: Double.infinity)
        for _ in 0..<runs {
            let server = try await Server(store: folder.appendingPathComponent("store").path)
            defer { server.stop() }
            let url = "nats://127.0.0.1:\(server.port)"
            let counter = #"[{ name: count, plugin: count.lua, topics: [">"], queue: { capacity: 65536, overflow: block } }]"#
            func configuration(_ name: String, _ text: String) throws -> Configuration {
                let file = folder.appendingPathComponent(name).path
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                return try Configuration.load(path: file)
            }
            // One process: each configuration names its instance, or the importer would take the
            // exports for its own and acknowledge them unrouted.
            let coreExporter = try configuration("core-export.yaml", """
                instance: exporter
                nats: { url: "\(url)", export: \(subjects), export_queue: \(count + 1) }
                subscribers: []
                """)
            let coreImporter = try configuration("core-import.yaml", """
                instance: importer
                nats: { url: "\(url)", import: \(subjects) }
                subscribers: \(counter)
                """)
            let jsExporter = try configuration("js-export.yaml", """
                instance: exporter
                nats:
                  url: "\(url)"
                  export_queue: \(count + 1)
                  jetstream: { stream: { name: BENCH, subjects: \(subjects), storage: memory, create: true }, export: \(subjects) }
                subscribers: []
                """)
            let jsImporter = try configuration("js-import.yaml", """
                instance: importer
                nats:
                  url: "\(url)"
                  jetstream: { stream: { name: BENCH, subjects: \(subjects), storage: memory, create: true }, import: { durable: bench } }
                subscribers: \(counter)
                """)

            // Core: an importer runs while the exporter sends the file; done when it has handled them all.
            let (importer, importing) = try await start(coreImporter)
            let coreStarted = ContinuousClock.now
            let exported = try await export(coreExporter, path)
            best.coreExport = min(best.coreExport, exported)
            let coreHandled = await handled(importer, count, stalledFor: .seconds(2))
            best.coreImport = min(best.coreImport, seconds(ContinuousClock.now - coreStarted) * Double(count) / Double(max(coreHandled, 1)))
            await importer.shutDown()
            _ = try await importing.value

            // JetStream: the stream is filled (each export acknowledged), then a consumer drains it.
            best.jsExport = min(best.jsExport, try await export(jsExporter, path))
            let jsStarted = ContinuousClock.now
            let (consumer, consuming) = try await start(jsImporter)
            let jsHandled = await handled(consumer, count, stalledFor: .seconds(10))
            best.jsImport = min(best.jsImport, seconds(ContinuousClock.now - jsStarted) * Double(count) / Double(max(jsHandled, 1)))
            await consumer.shutDown()
            _ = try await consuming.value
            print("core: exported in \(format(exported))s, \(coreHandled) imported; jetstream: \(jsHandled) imported")
        }
        func rate(_ seconds: Double) -> Int { Int(Double(count) / seconds) }
        print("nats bridge, fastest of \(runs), events/s: export core \(rate(best.coreExport)), jetstream \(rate(best.jsExport))"
            + " (at \(format(best.coreExport / best.jsExport))x the core rate); import into Lua core \(rate(best.coreImport)),"
            + " jetstream \(rate(best.jsImport)) (at \(format(best.coreImport / best.jsImport))x the core rate)")
    }

    /// Runs a configuration that exports the file; its duration, from start to the last export confirmed.
    private static func export(_ configuration: Configuration, _ path: String) async throws -> Double {
        var options = Runtime.Options()
        options.input = .file(path)
        let started = ContinuousClock.now
        _ = try await Runtime(configuration: configuration, options: options).run()
        return seconds(ContinuousClock.now - started)
    }

    /// Starts a configuration without input and returns once its subscribers run.
    private static func start(_ configuration: Configuration) async throws -> (Runtime, Task<RunReport, any Error>) {
        var options = Runtime.Options()
        options.input = .none
        let ready = Counter()
        let runtime = Runtime(configuration: configuration, options: options) { line in
            if line.hasSuffix(" running") { ready.value.store(1, ordering: .relaxed) }
        }
        let running = Task { try await runtime.run() }
        while ready.value.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        return (runtime, running)
    }

    /// Waits until the counter has handled `count` events, or has handled none more for `stall`; how many it handled.
    private static func handled(_ runtime: Runtime, _ count: Int, stalledFor stall: Duration) async -> Int {
        var last = (count: -1, at: ContinuousClock.now)
        while true {
            let handled = runtime.router.stats()["count"]?.handled ?? 0
            if handled >= count { return handled }
            if handled != last.count { last = (handled, ContinuousClock.now) }
            if ContinuousClock.now - last.at > stall { return handled }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// A `nats-server -js` on a free loopback port, its store in a fresh folder.
    private final class Server {
        let port: Int
        private let process = Process()

        init(store: String) async throws {
            try? FileManager.default.removeItem(atPath: store)
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
            }
            close(socket)
            port = Int(UInt16(bigEndian: address.sin_port))
            guard let executable = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].first(where: FileManager.default.isExecutableFile) else {
                throw BenchmarkError("nats-server is not installed: run ./setup.sh")
            }
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", store]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<500 {
                if accepts() { return }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw BenchmarkError("nats-server did not listen on port \(port)")
        }

        private func accepts() -> Bool {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(socket) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
