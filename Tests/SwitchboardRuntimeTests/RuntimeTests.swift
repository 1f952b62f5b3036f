import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Switchboard
import SwitchboardTestSupport
import Testing

/// A whole instance in process: start-up order, the report, `/metrics` and `/healthz`, reload
/// of the log level, and what a failed start leaves behind.
@Suite struct RuntimeTests {
    /// What a runtime said, in order.
    final class Said: Sendable {
        let lines = Recorder<String>()
        var text: String { lines.all.joined(separator: "\n") }
        /// The port of the metrics listener, once it said where it listens.
        var metricsPort: Int? { text.firstMatch(of: /metrics and health on port (\d+)/).flatMap { Int($0.1) } }
    }

    static func get(_ path: String, port: Int) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test func aRunOverAFileReportsEveryCount() async throws {
        let folder = try PluginFolder(files: [
            "ok.lua": "return { handle = function() end }",
            "fails.lua": "return { handle = function(e) error('no') end }",
            "c.yaml": """
                subscribers:
                  - { name: ok, plugin: ok.lua, topics: [">"] }
                  - { name: fails, plugin: fails.lua, topics: [f] }
                """,
            "in.jsonl": #"{"topic": "a"}"# + "\n" + #"{"topic": "f"}"# + "\nnot json\n" + #"{"topic": "f"}"# + "\n",
        ])
        var options = Runtime.Options()
        options.input = .file(folder.path("in.jsonl"))
        let rejected = Recorder<Feeder.Rejection>()
        let runtime = Runtime(
            configuration: try Configuration.load(path: folder.path("c.yaml")), options: options,
            onRejected: { rejected.append($0) })
        let report = try await runtime.run()  // ends at the end of the file
        #expect(rejected.all.map(\.line) == [3])
        #expect((report.stats.published, report.rejected, report.stoppedAtBadLine) == (3, 1, false))
        #expect(report.stats["ok"].map { [$0.received, $0.handled] } == [3, 3])
        #expect(report.stats["fails"].map { [$0.received, $0.failed] } == [2, 2])
        let document = report.document
        #expect(document["published"] == 3 && document["rejected"] == 1)
        #expect(document["subscribers"]?["fails"]?["failed"] == 2)
        #expect(document["subscribers"]?["ok"]?["handled"] == 3)
        #expect(document["nats"] == nil)
        let rows = report.summary.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first == [
            "subscriber", "received", "handled", "failed", "dropped", "abandoned", "pending", "published", "publish_failed",
        ])
        #expect(rows.contains(["fails", "2", "0", "2", "0", "0", "0", "0", "0"]))
        #expect(rows.last == ["published", "3,", "rejected", "1"])
    }

    @Test(.exclusive) func healthSaysStartingRunningAndDrainingAndMetricsCount() async throws {
        let folder = try PluginFolder(files: [
            // Starts slowly, so that /healthz is seen while the subscribers start; drains slowly.
            "slow.lua": """
                local function spin(s) local t = switchboard.now() + s; while switchboard.now() < t do end end
                return { init = function() spin(1) end, handle = function() spin(1) end }
                """,
            "c.yaml": """
                metrics: { listen: "127.0.0.1:0" }
                subscribers:
                  - { name: slow, plugin: slow.lua, topics: [s], timeout: 5s }
                """,
        ])
        let said = Said()
        let runtime = Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")), say: { said.lines.append($0) })
        let run = Task { try await runtime.run() }
        #expect(await eventually { said.metricsPort != nil })
        let port = try #require(said.metricsPort)
        let starting = try await Self.get("/healthz", port: port)
        #expect(starting.status == 503 && starting.body.contains(#""status": "starting""#), "\(starting)")
        #expect(await eventually { said.text.contains("1 subscriber running") })
        let running = try await Self.get("/healthz", port: port)
        #expect(running.status == 200 && running.body.contains(#""status": "running""#), "\(running)")
        try runtime.router.publish("s", data: 1)
        try runtime.router.publish("s", data: 2)
        let page = try await Self.get("/metrics", port: port).body
        #expect(page.contains("switchboard_events_published_total 2"), "\(page)")
        #expect(page.contains("switchboard_input_rejected_total 0"))
        await runtime.shutDown()
        var draining = running
        #expect(await eventually {
            draining = (try? await Self.get("/healthz", port: port)) ?? draining
            return draining.status == 503 && draining.body.contains(#""status": "draining""#)
        }, "\(draining)")
        let report = try await run.value
        #expect(report.stats["slow"]?.handled == 2)  // drained before the listener closed
        await #expect(throws: (any Error).self) { try await Self.get("/healthz", port: port) }
    }

    @Test func aPartThatFailsToStartStopsTheStartUpAndWhatStartedIsStopped() async throws {
        let folder = try PluginFolder(files: [
            "journal": "a file where the journal's folder should be",
            "p.lua": "return { init = function() error('must not start') end, handle = function() end }",
            "c.yaml": """
                journal: { path: journal }
                metrics: { listen: "127.0.0.1:0" }
                subscribers:
                  - { name: p, plugin: p.lua, topics: [a] }
                """,
        ])
        let said = Said()
        let runtime = Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")), say: { said.lines.append($0) })
        await #expect { try await runtime.run() } throws: { error in
            guard let error = error as? RuntimeError else { return false }
            return error.kind == .failed && error.message.contains("cannot open the journal at \(folder.path("journal"))")
        }
        #expect(said.metricsPort == nil)  // the listener comes after the journal: it never started
        #expect(runtime.router.stats().subscribers.isEmpty)  // nor did the plugin
    }

    @Test func aPluginThatFailsToInitIsAnInvalidConfigurationAndTheListenerCloses() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { init = function() error('no database') end, handle = function() end }",
            "c.yaml": "metrics: { listen: \"127.0.0.1:0\" }\nsubscribers:\n  - { name: p, plugin: p.lua, topics: [a] }\n",
        ])
        try folder.write("in.jsonl", #"{"topic": "a"}"# + "\n")
        var options = Runtime.Options()  // stages after the failing one: running, input, duration
        options.input = .file(folder.path("in.jsonl"))
        options.duration = .seconds(60)
        let said = Said()
        let runtime = Runtime(
            configuration: try Configuration.load(path: folder.path("c.yaml")), options: options, say: { said.lines.append($0) })
        await #expect { try await runtime.run() } throws: { error in
            guard let error = error as? RuntimeError else { return false }
            return error.kind == .invalid && error.message.contains("subscriber 'p'") && error.message.contains("no database")
        }
        let port = try #require(said.metricsPort)
        await #expect(throws: (any Error).self) { try await Self.get("/healthz", port: port) }
        #expect(!said.text.contains(" running"))
    }

    @Test func aReloadChangesTheLogLevelUnlessAFlagSetIt() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": "log: { level: warning }\nsubscribers:\n  - { name: p, plugin: p.lua, topics: [a] }\n",
        ])
        for override in [nil, Logger.Level.debug] {
            try folder.write("c.yaml", "log: { level: warning }\nsubscribers:\n  - { name: p, plugin: p.lua, topics: [a] }\n")
            var options = Runtime.Options()
            let level = LogLevelSetting(.trace)
            options.logLevel = level
            options.logLevelOverride = override
            let said = Said()
            let runtime = Runtime(
                configuration: try Configuration.load(path: folder.path("c.yaml")), options: options,
                say: { said.lines.append($0) })
            #expect(level.level == override ?? .warning)
            let run = Task { try await runtime.run() }
            #expect(await eventually { said.text.contains(" running") })
            try folder.write("c.yaml", "log: { level: error, format: json }\nsubscribers:\n  - { name: p, plugin: p.lua, topics: [a] }\n")
            let summary = try await runtime.reload()
            #expect(summary.needRestart == ["log.format"])
            #expect(level.level == override ?? .error)
            await runtime.shutDown()
            _ = try await run.value
        }
    }

    @Test(.exclusive) func aShutDownWhilePluginsStartStopsThemAndIsNoConfigurationError() async throws {
        let folder = try PluginFolder(files: [
            "slow.lua": "return { init = function() while true do end end, handle = function() end }",
            "c.yaml": "subscribers:\n  - { name: slow, plugin: slow.lua, topics: [a], timeout: 60s }\n",
        ])
        let said = Said()
        let runtime = Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")), say: { said.lines.append($0) })
        let run = Task { try await runtime.run() }
        #expect(await eventually { runtime.router.stats().subscribers.isEmpty && runtime.configuration.subscribers.count == 1 })
        try await Task.sleep(for: .milliseconds(100))  // let init begin; the shutdown must interrupt it either way
        await runtime.shutDown()
        let report = try await run.value  // an interrupted start-up is no error of the configuration
        #expect(report.stats.subscribers.isEmpty)
        #expect(!said.text.contains(" running"))
        await #expect(throws: RuntimeError.self) { try await runtime.run() }  // a runtime runs once
    }

    @Test func aShutDownBeforeTheRunStartsEndsItAtOnce() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": "subscribers:\n  - { name: p, plugin: p.lua, topics: [a] }\n",
        ])
        let runtime = Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")))
        await runtime.shutDown()
        let report = try await runtime.run()  // input none, no duration: only the shutdown ends it
        #expect(report.stats.published == 0)
    }
}
