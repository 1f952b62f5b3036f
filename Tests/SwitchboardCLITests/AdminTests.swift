import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Switchboard
import SwitchboardTestSupport
import Testing

/// `POST /-/reload`, `POST /-/redrive` and `metrics.token` on the metrics listener of the real binary.
@Suite struct AdminTests {
    static let token = "a-token-of-24-characters"

    /// A request to the run's metrics port with a real HTTP client: the status, the body and
    /// the `WWW-Authenticate` header.
    static func request(
        _ method: String, _ path: String, to run: LiveRun, authorization: String? = nil
    ) async throws -> (status: Int, body: String, authenticate: String?) {
        let port = try #require(run.errors.firstMatch(of: /metrics and health on port (\d+)/)?.1)
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), http?.value(forHTTPHeaderField: "WWW-Authenticate"))
    }

    static func config(metrics: String, _ entries: [String] = ["echo", "counter"]) -> String {
        "metrics: { listen: \"127.0.0.1:0\", \(metrics) }\n" + ReloadTests.config(entries)
    }

    static func start(_ folder: PluginFolder) async throws -> LiveRun {
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml")], in: folder)
        #expect(await eventually { run.errors.contains("metrics and health on port") })
        return run
    }

    @Test func aReloadOverHTTPAnswersWithWhatChangedOrWithTheProblems() async throws {
        let folder = try PluginFolder(files: [
            "echo.lua": #"return { handle = function(e) print("v1 " .. e.data) end }"#,
            "counter.lua": ReloadTests.counter,
            "c.yaml": Self.config(metrics: "admin: true"),
        ])
        let run = try await Self.start(folder)
        #expect(run.errors.contains("POST /-/reload"))
        run.send([ReloadTests.event(1)])
        #expect(await eventually { run.output.contains("v1 1") && run.output.contains("count 1") })

        try folder.write("echo.lua", #"return { handle = function(e) print("v2 " .. e.data) end }"#)
        try folder.write("c.yaml", Self.config(metrics: "admin: true", ["echo", "counter", "extra"]))
        try folder.write("extra.lua", "return { handle = function() end }")
        let good = try await Self.request("POST", "/-/reload", to: run)
        #expect(good.status == 200, "\(good)")
        let report = try JSON(parsing: good.body)
        #expect(report == ["added": ["extra"], "changed": ["echo"], "removed": [], "kept": ["counter"], "ignored": []])
        #expect(run.errors.contains("reloaded \(folder.path("c.yaml")) (POST /-/reload): added extra; changed echo"))
        run.send([ReloadTests.event(2)])
        #expect(await eventually { run.output.contains("v2 2") && run.output.contains("count 2") })

        try folder.write("c.yaml", Self.config(metrics: "admin: true").replacingOccurrences(of: "topics", with: "topcis"))
        let broken = try await Self.request("POST", "/-/reload", to: run)
        #expect(broken.status == 422, "\(broken)")
        guard case let .array(problems)? = try JSON(parsing: broken.body)["problems"] else {
            Issue.record("no problems in \(broken.body)")
            return
        }
        #expect(problems.contains { $0.stringValue?.contains("unknown key 'topcis'") == true }, "\(problems)")
        run.send([ReloadTests.event(3)])  // nothing changed: the three subscribers still run
        #expect(await eventually { run.output.contains("v2 3") && run.output.contains("count 3") })
        #expect(await run.finish() == 0)
    }

    @Test func theTokenGuardsMetricsAndReloadButNotHealth() async throws {
        let folder = try PluginFolder(files: [
            "echo.lua": "return { handle = function() end }", "counter.lua": ReloadTests.counter,
            "c.yaml": Self.config(metrics: "admin: true, token: \(Self.token)"),
        ])
        let run = try await Self.start(folder)
        #expect(await eventually { run.errors.contains(" running") })
        // What a caller without the token would try: none, a wrong one, the token with a byte
        // more or less, other spellings of the scheme, white space around it, another scheme.
        let attempts: [String?] = [
            nil, "", "Bearer", "Bearer ", "Bearer not-the-token-at-all-here", "Bearer \(Self.token)x",
            "Bearer \(String(Self.token.dropLast()))", Self.token, "bearer \(Self.token)", "Bearer  \(Self.token)",
            " Bearer \(Self.token)x", "Basic \(Data(":\(Self.token)".utf8).base64EncodedString())",
        ]
        let guarded = [("POST", "/-/reload"), ("POST", "/-/redrive?subscriber=echo"), ("GET", "/metrics"), ("HEAD", "/metrics"), ("GET", "/tap?pattern=%3E"), ("GET", "/metrics/")]
        for (method, path) in guarded {
            for authorization in attempts {
                let refused = try await Self.request(method, path, to: run, authorization: authorization)
                // HEAD has no route at all; everything else is refused before it is served.
                let expected = method == "HEAD" ? 404 : 401
                #expect(refused.status == expected, "\(method) \(path) with \(authorization ?? "nothing"): \(refused)")
                #expect(method == "HEAD" || refused.authenticate == "Bearer", "\(refused)")
                #expect(!refused.body.contains("switchboard_"), "\(refused)")
            }
        }
        #expect(try await Self.request("GET", "/-/reload?token=\(Self.token)", to: run).status != 200)  // the query carries no token
        for (method, path) in [("POST", "/-/reload"), ("GET", "/metrics")] {
            let allowed = try await Self.request(method, path, to: run, authorization: "Bearer \(Self.token)")
            #expect(allowed.status == 200, "\(method) \(path): \(allowed)")
        }
        #expect(try await Self.request("GET", "/healthz", to: run).status == 200)
        #expect(await run.finish() == 0)
    }

    @Test func withoutAdminThereIsNoReload() async throws {
        let folder = try PluginFolder(files: [
            "echo.lua": "return { handle = function() end }", "counter.lua": ReloadTests.counter,
            "c.yaml": Self.config(metrics: "admin: false"),
        ])
        let run = try await Self.start(folder)
        for path in ["/-/reload", "/-/redrive?subscriber=echo"] {
            let refused = try await Self.request("POST", path, to: run)
            #expect(refused.status == 404 && refused.body.contains("metrics.admin"), "\(refused)")
        }
        #expect(try await Self.request("GET", "/metrics", to: run).status == 200)  // no token, no authentication
        #expect(await run.finish() == 0)
    }

    @Test(.exclusive) func aSecondReloadWhileOneRunsIsRefusedWith409() async throws {  // a core busy for 1.5 s
        // The new plugin's init takes a second and a half, so the two requests overlap.
        let slow = "local t = os.clock(); while os.clock() - t < 1.5 do end"
        let folder = try PluginFolder(files: [
            "echo.lua": "return { handle = function() end }", "counter.lua": ReloadTests.counter,
            "c.yaml": Self.config(metrics: "admin: true"),
        ])
        let run = try await Self.start(folder)
        #expect(await eventually { run.errors.contains(" running") })
        try folder.write("c.yaml", Self.config(metrics: "admin: true").replacingOccurrences(of: "queue:", with: "timeout: 10s, queue:"))
        try folder.write("echo.lua", "return { init = function() \(slow) end, handle = function() end }")
        async let first = Self.request("POST", "/-/reload", to: run)
        async let second = Self.request("POST", "/-/reload", to: run)
        let answers = try await [first, second]
        #expect(answers.map(\.status).sorted() == [200, 409], "\(answers.map { ($0.status, $0.body) })")
        let refused = try #require(answers.first { $0.status == 409 })
        #expect(refused.body.contains("a reload is already under way"))
        #expect(await run.finish() == 0)
    }
}
