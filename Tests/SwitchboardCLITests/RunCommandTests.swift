import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

@Suite struct RunCommandTests {
    @Test func theSeedsUserRegistrationFlow() throws {
        let result = try switchboard("run", "--input", "config/registration.jsonl")
        #expect(result.status == 0, "\(result.errors)")
        let lines = result.output.split(separator: "\n").map(String.init)
        for service in ["Email Service: Sending welcome email to", "Analytics: Recording signup for",
                        "Notifications: Alerting team about new user"] {
            // Each service, in publish order within itself.
            #expect(lines.filter { $0.hasPrefix(service) } == ["alice", "bob", "charlie"].map { "\(service) \($0)@example.com" })
        }
        #expect(lines.count == 9)
        #expect(result.errors.contains("published 3, rejected 0"))
    }

    @Test func badLinesAreRejectedWithTheirNumberAndReadingGoesOn() throws {
        let folder = try PluginFolder(files: ["r.json": ""])
        let input = [
            #"{"topic": "user.created", "data": "a@x"}"#, "not json", "", #"{"topic": "user.*"}"#, "[1, 2]",
            #"{"data": 1}"#, #"{"topic": 5}"#, #"{"topic": "user.created", "headers": {"k": 1}}"#, "{} trailing",
            #"{"topic": "user.created", "data": "b@x"}"# + "\r", #"{"topic": "user.created", "data": "c@x", "headers": {"k": "v"}}"#,
        ].joined(separator: "\n")
        let result = try switchboard("run", "--input", "-", "--report", folder.path("r.json"), input: input)
        #expect(result.status == 0)
        for (line, reason) in [(2, "invalid literal"), (4, "invalid topic \"user.*\": wildcard '*'"), (5, "not a JSON object"), (6, "missing topic"),
                               (7, "the topic must be a string"), (8, "headers must be an object of strings"),
                               (9, "unexpected text after the JSON value")] {
            #expect(result.errors.contains("line \(line): \(reason)"), "line \(line)")
        }
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        #expect(report["published"] == 3)
        #expect(report["rejected"] == 7)
        for name in ["email", "analytics", "notifications"] {
            let counts = try #require(report["subscribers"]?[name])
            #expect(counts["received"] == 3 && counts["handled"] == 3)
            #expect(counts["received"] == .int([counts["handled"], counts["failed"], counts["dropped"], counts["abandoned"]]
                .reduce(0) { $0 + ($1?.intValue ?? 0) }))
        }
    }

    @Test func noInputRunsForTheDuration() throws {
        let start = Date()
        let result = try switchboard("run", "--input", "none", "--duration", "300ms")
        #expect(result.status == 0)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(result.errors.contains("published 0, rejected 0"))
    }

    @Test func badFlagsAndConfigurationsExitWithTwo() throws {
        #expect(try switchboard("run", "--duration", "soon").status == 2)
        let folder = try PluginFolder(files: ["c.yaml": "subscribers: []\nsurprise: 1\n"])
        let bad = try switchboard("run", "--config", folder.path("c.yaml"), "--input", "none")
        #expect(bad.status == 2)
        #expect(bad.errors.contains("unknown key 'surprise'"))
    }
}
