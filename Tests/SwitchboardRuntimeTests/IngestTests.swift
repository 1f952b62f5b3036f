import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Switchboard
import SwitchboardTestSupport
import Testing

/// HTTP ingest through a real HTTP client on keep-alive connections, into a running instance.
@Suite struct IngestTests {
    /// A running instance of `yaml` with ingest; its ingest port once it listens.
    private final class Instance {
        let runtime: Runtime
        let run: Task<RunReport, any Error>
        private let said = Recorder<String>()
        let folder: PluginFolder

        /// `FOLDER` in `yaml` is the instance's folder.
        init(_ yaml: String, files: [String: String] = [:]) throws {
            folder = try PluginFolder(files: files)
            try folder.write("c.yaml", yaml.replacingOccurrences(of: "FOLDER", with: folder.url.path))
            let said = self.said
            runtime = Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")), say: { said.append($0) })
            let runtime = self.runtime
            run = Task { try await runtime.run() }
        }

        var port: Int? { said.all.lazy.compactMap { $0.firstMatch(of: /HTTP ingest on port (\d+)/).flatMap { Int($0.1) } }.first }

        /// The ingest port, once it listens.
        func listening() async throws -> Int {
            #expect(await eventually { self.port != nil })
            return try #require(port)
        }

        /// The ingest port, once every subscriber runs.
        func running() async throws -> Int {
            #expect(await eventually { self.said.all.contains { $0.hasSuffix(" running") } })
            return try await listening()
        }

        func stop() async throws -> RunReport {
            await runtime.shutDown()
            return try await run.value
        }
    }

    private struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: JSON?
    }

    private static func post(
        _ path: String, port: Int, body: String, headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: try? JSON(parsing: String(buffer: bytes)))
    }

    private static let recorder = """
        local seen = {}
        return {
          handle = function(event) seen[#seen + 1] = event.topic .. " " .. switchboard.json.encode(event.data) .. " " .. (event.headers.trace or "") end,
          shutdown = function() local f = io.open(switchboard.settings.out, "w"); f:write(table.concat(seen, "\\n")); f:close() end,
        }
        """

    @Test func linesAreRejectedByNumberAndTheRestPublishedIntoAPlugin() async throws {
        let instance = try Instance("""
            ingest: { http: { listen: "127.0.0.1:0" } }
            subscribers:
              - { name: rec, plugin: rec.lua, topics: [">"], allow: [io], settings: { out: FOLDER/seen.txt } }
            """, files: ["rec.lua": Self.recorder])
        let port = try await instance.running()
        let reply = try await Self.post("/publish", port: port, body: """
            {"topic": "a.b", "data": {"x": 1}}
            not json

            {"topic": "c", "data": [1, 2], "headers": {"trace": "t1"}}\r
            {"data": 1}
            {"topic": "bad..topic"}
            """)
        #expect(reply.status == 200)
        #expect(reply.body?["accepted"] == 2)
        let rejected = reply.body?["rejected"]
        #expect(rejected?[0]?["line"] == 2 && rejected?[1]?["line"] == 5 && rejected?[2]?["line"] == 6)
        #expect(rejected?[1]?["error"] == "missing topic")
        #expect(rejected?[2]?["error"]?.stringValue?.contains("bad..topic") == true, "the feeder's message: \(String(describing: rejected))")
        let one = try await Self.post("/publish/user.created", port: port, body: #"{"email": "ann@example.com"}"#,
                                      headers: [("Switchboard-Header-Trace", "t2")])
        #expect(one.status == 200 && one.body?["accepted"] == 1)
        let report = try await instance.stop()
        let seen = try String(contentsOfFile: instance.folder.path("seen.txt"), encoding: .utf8).split(separator: "\n")
        #expect(seen == [#"a.b {"x":1} "#, "c [1,2] t1", #"user.created {"email":"ann@example.com"} t2"#])
        #expect(report.stats.published == 3 && report.stats["rec"]?.handled == 3)
    }

    @Test func aTokenIsRequiredAndBadBodiesAreRefusedWithoutPublishing() async throws {
        let token = "0123456789abcdef-secret"
        let instance = try Instance("""
            ingest: { http: { listen: "127.0.0.1:0", token: "\(token)", max_body: 1KiB } }
            subscribers:
              - { name: rec, plugin: rec.lua, topics: [">"], allow: [io], settings: { out: FOLDER/seen.txt } }
            """, files: ["rec.lua": Self.recorder])
        let port = try await instance.running()
        let good = [("Authorization", "Bearer \(token)")]
        #expect(try await Self.post("/publish/a", port: port, body: "1").status == 401)
        #expect(try await Self.post("/publish/a", port: port, body: "1", headers: [("Authorization", "Bearer \(token)x")]).status == 401)
        #expect(try await Self.post("/publish/a", port: port, body: "1", headers: [("Authorization", "Basic \(token)")]).status == 401)
        let large = String(repeating: #"{"topic": "a"}"# + "\n", count: 100)
        #expect(try await Self.post("/publish", port: port, body: large, headers: good).status == 413)
        #expect(try await Self.post("/publish/bad..topic", port: port, body: "1", headers: good).status == 400)
        #expect(try await Self.post("/publish/a", port: port, body: "not json", headers: good).status == 400)
        #expect(try await Self.post("/publish/a", port: port, body: "", headers: good).status == 400)
        #expect(try await Self.post("/publish/a", port: port, body: "[1]", headers: good).status == 200)
        let report = try await instance.stop()
        #expect(report.stats.published == 1, "only the authorized, valid request published")
    }

    @Test(.exclusive) func startingAndDrainingAre503WithRetryAfter() async throws {
        let instance = try Instance("""
            ingest: { http: { listen: "127.0.0.1:0" } }
            drain_timeout: 30s
            subscribers:
              - { name: slow, plugin: slow.lua, topics: [">"], timeout: 10s }
            """, files: [
                "slow.lua": """
                    local function spin(s) local t = switchboard.now() + s; while switchboard.now() < t do end end
                    return { init = function() spin(1) end, handle = function() spin(1) end }
                    """,
            ])
        let port = try await instance.listening()
        let starting = try await Self.post("/publish/a", port: port, body: "1")
        #expect(starting.status == 503 && starting.headers.first(name: "Retry-After") != nil, "while init runs")
        #expect(await eventually { (try? await Self.post("/publish/a", port: port, body: "1").status) == 200 })
        _ = try await Self.post("/publish/a", port: port, body: "2")  // keeps it draining for a second or two
        let stopping = Task { try await instance.stop() }
        #expect(await eventually {
            let reply = try? await Self.post("/publish/a", port: port, body: "3")
            return reply?.status == 503 && reply?.headers.first(name: "Retry-After") != nil
        })
        let report = try await stopping.value
        #expect(report.stats["slow"].map { $0.handled == $0.received && $0.addsUp } == true)
    }

    @Test func aFullBlockQueueMakesTheRequestWaitAndLosesNothing() async throws {
        let instance = try Instance("""
            ingest: { http: { listen: "127.0.0.1:0" } }
            subscribers:
              - name: slow
                plugin: slow.lua
                topics: [">"]
                queue: { capacity: 5, overflow: block }
            """, files: [
                "slow.lua": """
                    local function spin(s) local t = switchboard.now() + s; while switchboard.now() < t do end end
                    return { handle = function() spin(0.002) end }
                    """,
            ])
        let port = try await instance.running()
        let reply = try await Self.post("/publish", port: port, body: (0..<300).map { #"{"topic": "a", "data": \#($0)}"# }.joined(separator: "\n"))
        #expect(reply.status == 200 && reply.body?["accepted"] == 300)
        let report = try await instance.stop()
        #expect(report.stats["slow"].map { [$0.received, $0.handled, $0.dropped] } == [300, 300, 0])
    }

    @Test func countsAreExactEndToEndOverKeepAliveBatches() async throws {
        let instance = try Instance("""
            ingest: { http: { listen: "127.0.0.1:0" } }
            subscribers:
              - name: count
                plugin: count.lua
                topics: ["order.>"]
                queue: { capacity: 100000 }
            """, files: ["count.lua": "local n = 0; return { handle = function() n = n + 1 end }"])
        let port = try await instance.running()
        var accepted = 0
        for batch in 0..<10 {
            let body = (0..<1000).map { #"{"topic": "order.\#(batch)", "data": {"n": \#($0)}}"# }.joined(separator: "\n")
            let reply = try await Self.post("/publish", port: port, body: body)
            if case .int(let count)? = reply.body?["accepted"] { accepted += Int(count) }
        }
        let report = try await instance.stop()
        #expect(accepted == 10_000)
        #expect(report.stats.published == 10_000 && report.stats["count"]?.handled == 10_000)
    }

    @Test func aListenerOffLoopbackNeedsAToken() async throws {
        let folder = try PluginFolder(files: ["p.lua": "return { handle = function() end }", "c.yaml": """
            ingest: { http: { listen: "0.0.0.0:8080", token: "short" } }
            subscribers:
              - { name: p, plugin: p.lua, topics: [a] }
            """])
        let error = #expect(throws: ConfigurationError.self) { try Configuration.load(path: folder.path("c.yaml")) }
        #expect(error?.problems.map(\.message) == ["ingest http token must be at least 16 characters (it has 5)"])
        try folder.write("c.yaml", """
            ingest: { http: { listen: "0.0.0.0:8080" } }
            subscribers:
              - { name: p, plugin: p.lua, topics: [a] }
            """)
        let open = #expect(throws: ConfigurationError.self) { try Configuration.load(path: folder.path("c.yaml")) }
        #expect(open?.problems.first?.message.contains("set ingest.http.token") == true)
        #expect(open?.problems.first?.line == 1)
    }
}
