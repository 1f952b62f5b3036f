import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Switchboard
import SwitchboardTestSupport
import Testing

/// `/metrics`, `/healthz`, log lines and the live progress line of the real binary.
@Suite struct ObservabilityTests {
    /// GETs `path` from the run's metrics port with a real HTTP client: the status and the body.
    static func get(_ path: String, from run: LiveRun) async throws -> (status: Int, body: String) {
        let port = try #require(run.errors.firstMatch(of: /metrics and health on port (\d+)/)?.1)
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// The samples of a Prometheus text page: `name{labels}` to value.
    static func samples(_ page: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in page.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[String(line[..<space])] = value
        }
        return result
    }

    @Test(.exclusive) func metricsCountAKnownRun() async throws {
        let folder = try PluginFolder(files: [
            "ok.lua": "return { handle = function() end }",
            "fails.lua": "return { handle = function(e) error('broken ' .. e.data) end }",
            "slow.lua": "return { handle = function() local t = switchboard.now() + 0.01; while switchboard.now() < t do end end }",
            "c.yaml": """
                metrics: { listen: "127.0.0.1:0" }
                subscribers:
                  - { name: ok, plugin: ok.lua, topics: [e] }
                  - { name: fails, plugin: fails.lua, topics: [e] }
                  - { name: slow, plugin: slow.lua, topics: [e], queue: { capacity: 2, overflow: drop_newest } }
                """,
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--fail-on", "none"], in: folder)
        let total = 200
        run.send((0..<total).map { #"{"topic": "e", "data": \#($0)}"# } + ["not json", #"{"topic": "e.*"}"#])
        var metrics: [String: Double] = [:]
        let settled = await eventually(within: 20) {
            metrics = (try? await Self.get("/metrics", from: run)).map { Self.samples($0.body) } ?? [:]
            let slow = ["handled", "dropped"].compactMap { metrics[#"switchboard_subscriber_events_total{subscriber="slow",outcome="\#($0)"}"#] }
            return slow.reduce(0, +) == Double(total) && metrics[#"switchboard_subscriber_events_total{subscriber="fails",outcome="failed"}"#] == Double(total)
        }
        #expect(settled)
        #expect(metrics["switchboard_events_published_total"] == Double(total))
        #expect(metrics["switchboard_input_rejected_total"] == 2)
        #expect(metrics[#"switchboard_subscriber_events_total{subscriber="ok",outcome="handled"}"#] == Double(total))
        #expect(metrics[#"switchboard_subscriber_events_total{subscriber="fails",outcome="handled"}"#] == 0)
        #expect((metrics[#"switchboard_subscriber_events_total{subscriber="slow",outcome="dropped"}"#] ?? 0) > 0)
        #expect(metrics[#"switchboard_subscriber_queue_capacity{subscriber="slow"}"#] == 2)
        #expect(metrics[#"switchboard_subscriber_lag_seconds_count{subscriber="ok"}"#] == Double(total))
        #expect(metrics[#"switchboard_handler_duration_seconds_count{subscriber="fails"}"#] == Double(total))
        // Every slow call takes 10 ms: none of them lands in the 5 ms bucket.
        #expect(metrics[#"switchboard_handler_duration_seconds_bucket{subscriber="slow",le="0.005"}"#] == 0)
        #expect((metrics[#"switchboard_lua_memory_bytes{subscriber="ok"}"#] ?? 0) > 10_000)
        #expect(metrics[#"switchboard_subscriber_restarts_total{subscriber="ok"}"#] == 0)
        #expect(metrics[#"switchboard_subscriber_published_total{subscriber="ok"}"#] == 0)
        #expect(metrics[#"switchboard_subscriber_publish_failed_total{subscriber="fails"}"#] == 0)
        #expect(await run.finish() == 0)
    }

    @Test(.exclusive) func healthFollowsStartRunStuckAndDrain() async throws {
        let folder = try PluginFolder(files: [
            "starts.lua": """
                return { init = function() local t = os.clock() + 1.5; while os.clock() < t do end end,
                         handle = function() end }
                """,
            // Backtracking inside one C call: no hook can stop it, so it overruns its budget.
            "stuck.lua": """
                return { handle = function() return string.rep("a", 40):find(string.rep("a*", 6) .. "b") end }
                """,
            "c.yaml": """
                subscribers:
                  - { name: starts, plugin: starts.lua, topics: [s], timeout: 5s }
                  - { name: stuck, plugin: stuck.lua, topics: [x], timeout: 50ms }
                """,
        ])
        let run = try await LiveRun(
            // Exit 0 says the shutdown was clean: whether the drain catches the second stuck call
            // depends on the machine's load, so abandonment does not set the status here.
            ["run", "--config", folder.path("c.yaml"), "--metrics-listen", "127.0.0.1:0", "--drain-timeout", "1s", "--fail-on", "none"],
            in: folder, ready: "metrics and health on port")
        let starting = try await Self.get("/healthz", from: run)
        #expect(starting.status == 503 && starting.body.contains(#""status": "starting""#), "\(starting)")
        #expect(await eventually { run.errors.contains(" running") })
        let running = try await Self.get("/healthz", from: run)
        #expect(running.status == 200 && running.body.contains(#""stuck": []"#), "\(running)")
        run.send([#"{"topic": "x"}"#, #"{"topic": "x"}"#])
        var stuck = running
        #expect(await eventually {
            stuck = (try? await Self.get("/healthz", from: run)) ?? stuck
            return stuck.body.contains(#""stuck": ["stuck"]"#)
        }, "\(stuck)")
        #expect(stuck.status == 200)
        run.signal(SIGTERM)
        #expect(await eventually { run.errors.contains("draining") })
        let draining = try await Self.get("/healthz", from: run)
        #expect(draining.status == 503 && draining.body.contains(#""status": "draining""#), "\(draining)")
        #expect(await run.exitStatus(within: 20) == 0)
    }

    @Test func jsonLogLinesCarryTheirEventAndARepeatedErrorIsLoggedOnce() async throws {
        let folder = try PluginFolder(files: [
            "fails.lua": "return { handle = function(e) error('broken ' .. e.data) end }",
            "c.yaml": "subscribers:\n  - { name: fails, plugin: fails.lua, topics: [e] }\n",
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--log-format", "json"], in: folder)
        run.send((0..<100).map { #"{"topic": "e", "data": \#($0)}"# })
        #expect(await run.finish() == 0)
        let lines = run.errors.split(separator: "\n").compactMap { try? JSON(parsing: String($0)) }
        let failures = lines.filter { $0["message"]?.stringValue?.hasPrefix("handle failed") == true }
        #expect(failures.count == 2, "\(failures)")  // the first, then the repeats counted at shutdown
        #expect(failures.first?["subscriber"] == "fails" && failures.first?["topic"] == "e")
        #expect(failures.first?["event"]?.stringValue?.contains("-") == true)
        #expect(failures.first?["level"] == "error")
        #expect(failures.last?["repeated"] == "99")
        // The repeats' line is the first repeat as it was written, not a masked pattern.
        #expect(failures.last?["message"]?.stringValue?.contains("fails.lua:1: broken 1") == true, "\(failures)")
        // Twenty restarts (one per five failures) are one warning, then one count.
        let restarts = lines.filter { $0["message"]?.stringValue?.hasPrefix("restarting") == true }
        #expect(restarts.map { $0["repeated"]?.stringValue } == [nil, "19"], "\(restarts)")
        #expect(restarts.allSatisfy { $0["level"] == "warning" })
    }

    @Test func aCleanShutdownWithTheListenersOnLogsNoError() async throws {
        for _ in 0..<3 {  // the error once seen came from the HTTP server's accept loop at shutdown
            let result = try await switchboard(
                "run", "--input", "config/registration.jsonl", "--metrics-listen", "127.0.0.1:0", "--ingest-listen", "127.0.0.1:0",
                "--log-format", "json")
            #expect(result.status == 0, "\(result.errors)")
            let levels = result.errors.split(separator: "\n").compactMap { try? JSON(parsing: String($0)) }.compactMap { $0["level"]?.stringValue }
            #expect(levels.count >= 3 && levels.allSatisfy { $0 == "info" }, "\(result.errors)")
        }
    }

    @Test func underJSONLogsEveryLineIsJSONAndPluginFieldsKeepTheirTypes() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": #"return { handle = function(e) switchboard.log.info("got", { n = 3, x = 1.5, s = "a", list = { 1, true } }) end }"#,
            "c.yaml": "subscribers:\n  - { name: p, plugin: p.lua, topics: [a] }\n",
        ])
        let result = try await switchboard(
            "run", "--config", folder.path("c.yaml"), "--log-format", "json", input: "{\"topic\": \"a\"}\nnot json\n")
        #expect(result.status == 0, "\(result.errors)")
        // Everything before the summary table is one JSON object per line.
        let lines = result.errors.split(separator: "\n").map(String.init)
        let logLines = lines.prefix { !$0.hasPrefix("subscriber ") }
        #expect(logLines.count >= 3 && logLines.count < lines.count, "\(result.errors)")
        let parsed = logLines.map { try? JSON(parsing: $0) }
        #expect(parsed.allSatisfy { $0 != nil }, "\(result.errors)")
        #expect(parsed.contains { $0?["message"] == "1 subscriber running" })
        #expect(parsed.contains { $0?["message"] == "stdin: line 2: not a JSON object: a 'topic payload' line needs --format line" && $0?["level"] == "warning" })
        let got = try #require(parsed.first { $0?["message"] == "got" } ?? nil)
        #expect(got["n"] == 3 && got["x"] == .double(1.5) && got["s"] == "a" && got["list"] == [1, true], "\(got)")
    }

    @Test func theLiveLineAppearsOnATerminalOnly() async throws {
        let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("switchboard")
        let command = "\(build.path) run --input none --duration 2500ms"
        // script(1) runs the command on a pseudo-terminal and copies what it wrote.
        let onTerminal = try await runProgram("/usr/bin/script", ["-qfec", command, "/dev/null"]).output
        #expect(onTerminal.contains("in 0/s  out 0/s  queued 0  dropped 0  failed 0"))
        #expect(onTerminal.contains("\r\u{1B}[2K"))
        let offTerminal = try await switchboard("run", "--input", "none", "--duration", "2500ms")
        #expect(!offTerminal.errors.contains("queued") && !offTerminal.errors.contains("\u{1B}"))
        #expect(offTerminal.errors.contains("published 0, rejected 0"))
    }
}
