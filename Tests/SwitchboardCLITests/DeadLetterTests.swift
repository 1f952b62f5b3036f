import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// `switchboard deadletters` and `switchboard redrive` through the binary, on the journal of a
/// run whose plugin failed some events.
@Suite(.exclusive) struct DeadLetterTests {  // three runs of the binary each: apart from the tests that time themselves
    static let broken = #"return { handle = function(e) if e.data.bad then error("v1 broken " .. e.data.n) end end }"#

    static func files(deadLetter: Bool = true) -> [String: String] {
        [
            "mail.lua": broken,
            "c.yaml": """
                journal: { path: data/journal }
                subscribers:
                  - { name: mail, plugin: mail.lua, topics: ["order.*"], on_failure: { retries: 1, dead_letter: \(deadLetter) } }
                  - { name: other, plugin: mail.lua, topics: ["other.*"] }
                """,
        ]
    }

    /// Twelve orders, every third one bad (3, 6, 9, 12), and an event for another subscriber.
    static let feed = (1...12).map { n in #"{"topic": "order.created", "data": {"n": \#(n), "bad": \#(n % 3 == 0)}}"# }.joined(separator: "\n")

    static func letters(_ folder: PluginFolder, _ flags: String...) async throws -> [JSON] {
        let result = try await switchboard(["deadletters", "--config", folder.path("c.yaml"), "--json"] + flags, input: Data())
        #expect(result.status == 0, "\(result.errors)")
        return try result.output.split(separator: "\n").map { try JSON(parsing: String($0)) }
    }

    @Test func deadLettersAreListedWithTheirErrorsAndARedriveHandlesThemOnceTheyAreFixed() async throws {
        let folder = try PluginFolder(files: Self.files())
        let run = try await switchboard("run", "--config", folder.path("c.yaml"), "--fail-on", "none", input: Self.feed)
        #expect(run.status == 0, "\(run.errors)")

        let listed = try await Self.letters(folder)
        #expect(listed.map { $0["subscriber"] } == Array(repeating: "mail", count: 4))
        #expect(listed.map { $0["attempts"] } == [2, 2, 2, 2])
        #expect(listed.map { $0["error"]?.stringValue?.contains("v1 broken") } == [true, true, true, true])
        #expect(listed.allSatisfy { $0["topic"] == "order.created" && $0["done"] == false && $0["redrives"] == 0 })
        let ids = listed.compactMap { $0["id"]?.stringValue }
        let text = try await switchboard("deadletters", "--config", folder.path("c.yaml"), "--subscriber", "mail")
        #expect(text.output.split(separator: "\n").count == 4 && text.output.contains("mail: order.created \(ids[0]) at "))
        #expect(text.output.contains("2 attempts: ") && text.output.contains("mail.lua:1: v1 broken 3\n"), "\(text.output)")
        #expect(!text.output.contains("stack traceback"))
        #expect(text.errors.contains("4 dead letters"))
        #expect(try await Self.letters(folder, "--subscriber", "other").isEmpty)

        // Still broken: each fails again, once, and stays listed with its new error.
        try folder.write("mail.lua", Self.broken.replacingOccurrences(of: "v1", with: "v2"))
        let dry = try await switchboard("redrive", "--config", folder.path("c.yaml"), "--subscriber", "mail", "--dry-run")
        #expect(dry.status == 0 && dry.errors.contains("would redrive 4 dead letters to mail"), "\(dry.errors)")
        #expect(try await Self.letters(folder).allSatisfy { $0["redrives"] == 0 })  // a dry run changes nothing
        let again = try await switchboard("redrive", "--config", folder.path("c.yaml"), "--subscriber", "mail")
        #expect(again.status == 0 && again.errors.contains("redrove 4 dead letters to mail: handled 0, dead-lettered again 4"), "\(again.errors)")
        let still = try await Self.letters(folder)
        #expect(still.map { $0["id"]?.stringValue } == ids)
        #expect(still.allSatisfy { $0["error"]?.stringValue?.contains("v2 broken") == true && $0["redrives"] == 1 && $0["done"] == false })

        // Fixed: each handled once, with its id and the number of its redrives; then done.
        try folder.write("mail.lua", #"return { handle = function(e) print(e.id .. " " .. e.headers["Switchboard-Redrive"] .. " " .. e.data.n) end }"#)
        let fixed = try await switchboard("redrive", "--config", folder.path("c.yaml"), "--subscriber", "mail")
        #expect(fixed.errors.contains("handled 4, dead-lettered again 0"), "\(fixed.errors)")
        #expect(fixed.output.split(separator: "\n").map(String.init).sorted() == zip(ids, [3, 6, 9, 12]).map { "\($0) 2 \($1)" }.sorted())
        #expect(try await Self.letters(folder).isEmpty)
        let all = try await Self.letters(folder, "--all")
        #expect(all.count == 4 && all.allSatisfy { $0["done"] == true && $0["redrives"] == 2 })
        let nothing = try await switchboard("redrive", "--config", folder.path("c.yaml"), "--subscriber", "mail")
        #expect(nothing.errors.contains("redrove 0 dead letters") && nothing.output.isEmpty)
    }

    @Test func aRedriveThroughARunningInstanceGoesToItsOwnSubscriberOnce() async throws {
        let folder = try PluginFolder(files: [
            "mail.lua": Self.broken, "quiet.lua": "return { handle = function() end }",
            "c.yaml": """
                journal: { path: data/journal }
                metrics: { listen: "127.0.0.1:0", admin: true, token: \(AdminTests.token) }
                subscribers:
                  - { name: mail, plugin: mail.lua, topics: ["order.*"], on_failure: { retries: 1, dead_letter: true } }
                  - { name: spilled, plugin: quiet.lua, topics: ["quiet.*"], queue: { overflow: spill } }
                """,
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml"), "--fail-on", "none"], in: folder)
        let port = try #require(run.errors.firstMatch(of: /metrics and health on port (\d+)/)?.1)
        let url = "http://127.0.0.1:\(port)"
        let token = ["SWITCHBOARD_TOKEN": AdminTests.token]
        func redrive(_ flags: String...) async throws -> RunResult {
            try await switchboard(["redrive", "--subscriber", "mail", "--url", url] + flags, input: Data(), environment: token)
        }
        func reload() async throws {
            let answer = try await AdminTests.request("POST", "/-/reload", to: run, authorization: "Bearer \(AdminTests.token)")
            #expect(answer.status == 200, "\(answer)")
        }
        run.send(Self.feed.split(separator: "\n").map(String.init))
        #expect(await eventually(pollingEvery: .milliseconds(200)) { (try? await Self.letters(folder))?.count == 4 })
        let ids = try await Self.letters(folder).compactMap { $0["id"]?.stringValue }

        // Refused: beside the running instance, a second instance on its journal, or a second plugin.
        let beside = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none", "--duration", "1s")
        #expect(beside.status == 1 && beside.errors.contains("in use by another instance (pid \(run.process.processIdentifier))"), "\(beside.errors)")
        let here = try await switchboard("redrive", "--config", folder.path("c.yaml"), "--subscriber", "mail")
        #expect(here.status == 2 && here.errors.contains("runs on the journal") && here.errors.contains("--url"), "\(here.errors)")
        #expect(try await switchboard("redrive", "--config", folder.path("c.yaml"), "--subscriber", "mail", "--dry-run").status == 0)
        // Refused: without the token, and for a subscriber that reads only the journal.
        let anonymous = try await switchboard(["redrive", "--subscriber", "mail", "--url", url], input: Data())
        #expect(anonymous.status == 1 && anonymous.errors.contains("answered 401") && anonymous.errors.contains("--token"), "\(anonymous.errors)")
        let spilled = try await switchboard(["redrive", "--subscriber", "spilled", "--url", url, "--token", AdminTests.token], input: Data())
        #expect(spilled.status == 2 && spilled.errors.contains("answered 422") && spilled.errors.contains("redrive without --url"), "\(spilled.errors)")
        let dry = try await redrive("--dry-run")
        #expect(dry.status == 0 && dry.errors.contains("would redrive 4 dead letters to mail"), "\(dry.errors)")
        #expect(dry.output.split(separator: "\n").count == 4 && dry.output.contains("mail: order.created \(ids[0]) at "), "\(dry.output)")

        // The running plugin, still broken after a reload: each fails in it again and is
        // dead-lettered again, listed once, with the new error.
        try folder.write("mail.lua", Self.broken.replacingOccurrences(of: "v1", with: "v2"))
        try await reload()
        let again = try await redrive()
        #expect(again.status == 0 && again.errors.contains("redrove 4 dead letters to mail: handled 0, dead-lettered again 4"), "\(again.errors)")
        #expect(run.errors.contains("redrove 4 dead letters to mail (POST /-/redrive)"))
        let still = try await Self.letters(folder)
        #expect(still.map { $0["id"]?.stringValue } == ids)
        #expect(still.allSatisfy { $0["error"]?.stringValue?.contains("v2 broken") == true && $0["redrives"] == 1 && $0["done"] == false }, "\(still)")

        // Fixed and reloaded, and slow (a third of a second an event), so that a second redrive
        // meanwhile is refused: the instance's own plugin handles each once, then they are done.
        try folder.write("mail.lua", """
            return { handle = function(e)
              local t = os.clock(); while os.clock() - t < 0.3 do end
              print(e.id .. " " .. e.headers["Switchboard-Redrive"] .. " " .. e.data.n)
            end }
            """)
        try await reload()
        let bearer = "Bearer \(AdminTests.token)"
        async let first = AdminTests.request("POST", "/-/redrive?subscriber=mail", to: run, authorization: bearer)
        async let second = AdminTests.request("POST", "/-/redrive?subscriber=mail", to: run, authorization: bearer)
        let answers = try await [first, second]
        #expect(answers.map(\.status).sorted() == [200, 409], "\(answers.map { ($0.status, $0.body) })")
        #expect(answers.contains { $0.status == 409 && $0.body.contains("a redrive is already under way") })
        let report = try JSON(parsing: try #require(answers.first { $0.status == 200 }).body)
        #expect(report["handled"] == 4 && report["failed"] == 0 && report["unsettled"] == 0, "\(report)")
        let expected = zip(ids, [3, 6, 9, 12]).map { "\($0) 2 \($1)" }.sorted()
        #expect(await eventually { run.output.split(separator: "\n").map(String.init).sorted() == expected }, "\(run.output)")
        #expect(try await Self.letters(folder).isEmpty)
        #expect(try await Self.letters(folder, "--all").allSatisfy { $0["done"] == true && $0["redrives"] == 2 })
        let nothing = try await redrive()
        #expect(nothing.status == 0 && nothing.errors.contains("redrove 0 dead letters"), "\(nothing.errors)")
        #expect(await run.finish() == 0, "\(run.errors)")
    }

    @Test func withoutAJournalThereAreNoDeadLettersAndTheCommandSaysWhy() async throws {
        let folder = try PluginFolder(files: [
            "mail.lua": Self.broken, "c.yaml": "subscribers:\n  - { name: mail, plugin: mail.lua, topics: [a] }\n",
        ])
        for command in [["deadletters"], ["redrive", "--subscriber", "mail"]] {
            let result = try await switchboard(command + ["--config", folder.path("c.yaml")], input: Data())
            #expect(result.status == 2 && result.errors.contains("dead letters are kept only with one"), "\(result.errors)")
        }
        let unknown = try await switchboard(
            ["redrive", "--config", "\(packageRoot.path)/config/bench.yaml", "--subscriber", "nobody"], input: Data())
        #expect(unknown.status == 2, "\(unknown.errors)")
    }
}
