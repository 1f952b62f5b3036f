import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

@Suite struct RunCommandTests {
    @Test func anInputThatCannotBeOpenedFailsBeforeAnythingStarts() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": #"return { init = function() print("started") end, handle = function() end }"#,
            "c.yaml": "subscribers: [{ name: p, plugin: p.lua, topics: [a] }]\n",
        ])
        let result = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", folder.path("nope.jsonl"))
        #expect(result.status == 2)
        #expect(result.output.isEmpty)  // no subscriber started
        #expect(result.errors.contains("--input '\(folder.path("nope.jsonl"))': cannot open it: No such file or directory"), "\(result.errors)")
    }

    @Test func aMissingDefaultConfigurationSaysItWasTheDefault() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("switchboard").path
        let folder = try PluginFolder()
        let result = try await runProgram("/bin/sh", ["-c", "cd '\(folder.url.path)' && exec '\(binary)' check 2>&1"])
        #expect(result.status == 2)
        #expect(result.output.contains("config/switchboard.yaml: cannot read the file\n(config/switchboard.yaml is the default configuration, looked for in \(folder.url.path); name one with --config PATH)"), "\(result.output)")
    }

    @Test func aBadLineOfAnInputFileNamesTheFileOnceWithItsLineAndColumn() async throws {
        let folder = try PluginFolder(files: [
            "events.jsonl": #"{"topic": "user.created", "data": "a@x"}"# + "\n" + #"{"topic": "user.created", "data": {"é": 1,}}"# + "\n",
        ])
        let result = try await switchboard("run", "--input", folder.path("events.jsonl"))
        #expect(result.status == 0)
        #expect(lines(of: result.errors, startingWith: folder.path("events.jsonl")) == [
            "\(folder.path("events.jsonl")): line 2: a trailing comma before '}': JSON allows none at column 43",
        ], "\(result.errors)")
        #expect(result.errors.contains("published 1, rejected 1"))
    }

    @Test func badLinesAreRejectedWithTheirNumberAndReadingGoesOn() async throws {
        let folder = try PluginFolder(files: ["r.json": ""])
        var input = Data([
            #"{"topic": "user.created", "data": "a@x"}"#, "not json", "", #"{"topic": "user.*"}"#, "[1, 2]",
            #"{"data": 1}"#, #"{"topic": 5}"#, #"{"topic": "user.created", "headers": {"k": 1}}"#, "{} trailing",
            #"{"topic": "user.created", "data": "b@x"}"# + "\r", #"{"topic": "user.created", "data": "c@x", "headers": {"k": "v"}}"#,
            ##"{"topic": "user.created", "data": "##  + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}",
            ##"{"topic": "user.created", "data": ""## + String(repeating: "x", count: 1 << 20) + ##""}"##,
            ##"{"topic": "user.created", "data": "bad:"##,
        ].joined(separator: "\n").utf8)
        input.append(contentsOf: [0xFF, 0x22, 0x7D, 0x0A])  // ...an invalid UTF-8 byte"}
        let result = try await switchboard(["run", "--input", "-", "--report", folder.path("r.json")], input: input)
        #expect(result.status == 0)
        for (line, reason) in [(2, "not a JSON object: a 'topic payload' line needs --format line"), (4, "invalid topic \"user.*\": wildcard '*'"), (5, "not a JSON object"),
                               (6, "missing topic"), (7, "the topic must be a string"), (8, "headers must be an object of strings"),
                               (9, "unexpected text after the JSON value"), (12, "nesting deeper than 128"),
                               (13, "longer than 1048576 bytes"), (14, "invalid UTF-8")] {
            #expect(result.errors.contains("line \(line): \(reason)"), "line \(line)")
        }
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        #expect(report["published"] == 3)
        #expect(report["rejected"] == 10)
        for name in ["email", "analytics", "notifications"] {
            let counts = try #require(report["subscribers"]?[name])
            #expect(counts["received"] == 3 && counts["handled"] == 3)
            #expect(counts["received"] == .int([counts["handled"], counts["failed"], counts["dropped"], counts["abandoned"]]
                .reduce(0) { $0 + ($1?.intValue ?? 0) }))
        }
    }

    @Test func anOversizedLineIsOneRejectionWhateverItsLength() async throws {
        let folder = try PluginFolder(files: ["r.json": ""])
        let input = [
            #"{"topic": "user.created", "data": "a@x"}"#, String(repeating: "x", count: 5 << 20), "not json",
            #"{"topic": "user.created", "data": "b@x"}"#,
        ].joined(separator: "\n")
        let result = try await switchboard(["run", "--report", folder.path("r.json")], input: Data(input.utf8))
        #expect(result.status == 0)
        let rejections = lines(of: result.errors, startingWith: "stdin: line ")
        #expect(rejections == [
            "stdin: line 2: longer than 1048576 bytes",
            "stdin: line 3: not a JSON object: a 'topic payload' line needs --format line",  // the line after it, read as usual
        ])
        let report = try JSON(parsing: String(contentsOfFile: folder.path("r.json"), encoding: .utf8))
        #expect(report["published"] == 2)
        #expect(report["rejected"] == 2)
    }

    @Test func noInputRunsForTheDuration() async throws {
        let start = Date()
        let result = try await switchboard("run", "--input", "none", "--duration", "300ms")
        #expect(result.status == 0)
        // Ends at its duration, not never; 12 s on CI while hostile plugins filled both cores.
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(result.errors.contains("published 0, rejected 0"))
    }

    @Test func badFlagsAndConfigurationsExitWithTwo() async throws {
        #expect(try await switchboard("run", "--duration", "soon").status == 2)
        let folder = try PluginFolder(files: ["c.yaml": "subscribers: []\nsurprise: 1\n"])
        let bad = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none")
        #expect(bad.status == 2)
        #expect(bad.errors.contains("unknown key 'surprise'"))
    }

    @Test func strictStopsAtTheFirstBadLineAndKeepsWhatCameBefore() async throws {
        let input = [#"{"topic": "user.created", "data": "a@x"}"#, "oops", #"{"topic": "user.created", "data": "b@x"}"#]
            .joined(separator: "\n")
        let result = try await switchboard("run", "--strict", input: input)
        #expect(result.status == 1)
        #expect(result.errors.contains("stdin: line 2: not a JSON object"))
        #expect(lines(of: result.output, startingWith: "Email Service") == ["Email Service: Sending welcome email to a@x"])
        #expect(result.errors.contains("published 1, rejected 1"))
    }

    @Test func lineFormatTakesTopicAndPayload() async throws {
        let folder = try PluginFolder(files: [
            "show.lua": """
                return { handle = function(e)
                  print(e.topic .. " " .. tostring(math.type(e.data)) .. "|" .. type(e.data) .. " " .. switchboard.json.encode(e.data))
                end }
                """,
            "c.yaml": "subscribers:\n  - { name: show, plugin: show.lua, topics: [\">\"] }\n",
        ])
        let input = "a.b 42\n\ta.c   plain words here \r\n\na.d {\"k\": [1]}\na.e\nbad.* 1\n"
        let result = try await switchboard("run", "--config", folder.path("c.yaml"), "--format", "line", input: input)
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.split(separator: "\n") == [
            "a.b integer|number 42", #"a.c nil|string "plain words here""#, #"a.d nil|table {"k":[1]}"#, "a.e nil|userdata null",
        ])
        #expect(result.errors.contains("stdin: line 6: invalid topic"))
        #expect(result.errors.contains("published 4, rejected 1"))
    }

    @Test(.exclusive) func theDrainTimeoutFlagOverridesTheConfiguration() async throws {
        let folder = try PluginFolder(files: [
            "slow.lua": "return { handle = function() local t = os.clock() while os.clock() - t < 0.15 do end end }",
            "c.yaml": "drain_timeout: 10s\nsubscribers:\n  - { name: slow, plugin: slow.lua, topics: [a], timeout: 1s }\n",
        ])
        let input = String(repeating: #"{"topic": "a"}"# + "\n", count: 10)
        let fromConfig = try await switchboard("run", "--config", folder.path("c.yaml"), input: input)
        #expect(fromConfig.errors.contains(#/slow\s+10\s+10\s+0\s+0\s+0\s+0\s+0\s+0\n/#))
        let fromFlag = try await switchboard("run", "--config", folder.path("c.yaml"), "--drain-timeout", "100ms", input: input)
        // Abandoned at the deadline: said when it passes, marked in the summary, and exit status 3.
        let abandoned = try #require(fromFlag.errors.firstMatch(of: #/slow\s+10\s+[0-2]\s+0\s+0\s+(8|9|10)\s+0\s+0\s+0  lost (\d+)\n/#))
        #expect(abandoned.1 == abandoned.2)
        #expect(fromFlag.errors.contains("the drain deadline passed after 100ms: abandoned \(abandoned.1) of slow"))
        #expect(fromFlag.errors.contains("events were lost (slow abandoned \(abandoned.1))"))
        #expect(fromFlag.status == 3)
    }

    @Test func aClosedStandardOutputEndsTheRunCleanly() async throws {
        let result = try await switchboard("run", "--config", "config/wildcard.yaml", "--input", "config/wildcard.jsonl", closedOutput: true)
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("published 5, rejected 0"))
    }
}
