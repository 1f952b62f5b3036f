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
