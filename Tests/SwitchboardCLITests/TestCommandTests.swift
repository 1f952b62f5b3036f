import Foundation
import SwitchboardTestSupport
import Testing

@Suite struct TestCommandTests {
    @Test func everyShippedPluginHasTestsAndTheyPass() async throws {
        let plugins = packageRoot.appendingPathComponent("plugins").path
        let files = FileManager.default.enumerator(atPath: plugins)?.allObjects as? [String] ?? []
        let tests = files.filter { $0.hasSuffix(".test.yaml") }
        // Each plugin file is the plugin of some test file's subscriber: the test files name
        // their subscribers, whose entries point at the plugins; checked through the names.
        for plugin in files where plugin.hasSuffix(".lua") && !plugin.hasSuffix(".meta.lua") {
            let test = String(plugin.dropLast(".lua".count)) + ".test.yaml"
            #expect(tests.contains(test), "\(plugin) has no \(test)")
        }
        let declared = try tests.reduce(0) { count, file in
            let text = try String(contentsOfFile: "\(plugins)/\(file)", encoding: .utf8)
            return count + text.components(separatedBy: "\n  - name: ").count - 1
        }
        let result = try await switchboard("test")
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        let outputLines = result.output.split(separator: "\n").map(String.init)
        #expect(outputLines.filter { $0.hasPrefix("ok - plugins/") }.count == declared)
        #expect(!result.output.contains("FAIL"))
        #expect(outputLines.last == "\(declared) passed, 0 failed")
        #expect(result.errors.isEmpty, "\(result.errors)")
    }

    @Test func theReadmesFirstPluginWorksAsWritten() async throws {
        // The section's files are the fenced blocks after a line that ends with "`PATH`:"; its
        // commands are the console blocks, each a "$ " line and what it prints. A newcomer
        // writes the files in a fresh folder and types the commands there.
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n## ").first { $0.hasPrefix("Your first plugin") })
        let folder = try PluginFolder()
        var files: [String] = []
        var commands: [(command: String, output: String)] = []
        var lines = section.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)[...]
        var before = ""
        while let line = lines.popFirst() {
            guard line.hasPrefix("```") else {
                if !line.isEmpty { before = line }
                continue
            }
            let block = lines.prefix { !$0.hasPrefix("```") }
            lines = lines.dropFirst(block.count + 1)
            if line == "```console", let command = block.first, command.hasPrefix("$ ") {
                commands.append((String(command.dropFirst(2)), block.dropFirst().map { $0 + "\n" }.joined()))
            } else if before.hasSuffix("`:") {
                let path = String(before.dropLast(2).split(separator: "`").last!)
                try FileManager.default.createDirectory(
                    at: folder.url.appendingPathComponent(path).deletingLastPathComponent(), withIntermediateDirectories: true)
                _ = try folder.write(path, block.map { $0 + "\n" }.joined())
                files.append(path)
            }
        }
        #expect(files == ["hello/greet.lua", "hello/switchboard.yaml", "hello/greet.test.yaml"])
        #expect(commands.count == 2)
        let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for (command, output) in commands {
            let result = try await runProgram("/bin/sh", ["-c", "cd '\(folder.url.path)' && PATH='\(build)':\"$PATH\" && \(command) 2>/dev/null"])
            #expect(result.status == 0, "\(command)")
            #expect(result.output == output, "\(command)")
        }
    }

    @Test func aFailedTestIsReportedWithItsDifferenceAndExitsOne() async throws {
        let folder = try PluginFolder(files: [
            "greet.lua": """
                return { handle = function(event) print("Hello, " .. event.data.name) end }
                """,
            "greet.test.yaml": """
                plugin: greet.lua
                tests:
                  - name: greets ann
                    events: [{ topic: user.created, data: { name: ann } }]
                    expect: { prints: ["Hello, ann"] }
                  - name: greets bob
                    events: [{ topic: user.created, data: { name: bob } }]
                    expect: { prints: ["Hello, Bob"] }
                """,
        ])
        let result = try await switchboard("test", folder.path("greet.test.yaml"))
        #expect(result.status == 1)
        #expect(result.output == """
            ok - \(folder.path("greet.test.yaml")): greets ann
            FAIL - \(folder.path("greet.test.yaml")): greets bob
              prints: first difference at [0]: expected "Hello, Bob", got "Hello, bob"
                expected: ["Hello, Bob"]
                actual:   ["Hello, bob"]
            1 passed, 1 failed

            """)
    }

    @Test func anInvalidFileIsReportedWithFileAndLineAndExitsTwoWhileTheOthersRun() async throws {
        let folder = try PluginFolder(files: [
            "ok.lua": "return { handle = function(event) end }",
            "broken.lua": "return { handle = function(event) end",
            "c.yaml": "subscribers:\n  - { name: ok, plugin: ok.lua, topics: [a] }\n",
            "tests/a-good.test.yaml": """
                subscriber: ok
                tests: [{ name: fine, events: [{ topic: a }], expect: { failures: 0 } }]
                """,
            "tests/b-unknown-key.test.yaml": """
                plugin: ../ok.lua
                tests:
                  - name: one
                    expect: { failure: 1 }
                """,
            "tests/c-missing.test.yaml": "subscriber: nobody\ntests: [{ name: x, expect: { failures: 0 } }]\n",
            "tests/d-broken.test.yaml": "\nplugin: ../broken.lua\ntests: [{ name: x, expect: { failures: 0 } }]\n",
            "tests/notes.txt": "not a test file",
        ])
        let result = try await switchboard("test", folder.path("tests"), "--config", folder.path("c.yaml"))
        #expect(result.status == 2, "\(result.output)\(result.errors)")
        #expect(result.output == "ok - \(folder.path("tests/a-good.test.yaml")): fine\n1 passed, 0 failed\n")
        for expected in [
            "\(folder.path("tests/b-unknown-key.test.yaml")):4: unknown key 'failure' in test 'one' expect (known: publishes, prints, logs, failures, errors, dead_letters)",
            "\(folder.path("tests/c-missing.test.yaml")):1: no subscriber 'nobody' in \(folder.path("c.yaml")) (it has: ok)",
            "\(folder.path("tests/d-broken.test.yaml")):2: subscriber 'broken', test 'x': ",
            "broken.lua:1: '}' expected near <eof>",
        ] {
            #expect(result.errors.contains(expected), "missing \(expected) in\n\(result.errors)")
        }
        let missing = try await switchboard(
            "test", folder.path("nothing-here"), folder.path("tests/a-good.test.yaml"), "--config", folder.path("c.yaml"))
        #expect(missing.status == 2)
        #expect(missing.errors.contains("nothing-here: no such file or folder"))
        #expect(missing.output.hasSuffix("fine\n1 passed, 0 failed\n"))
    }

    @Test func osDateIsTheSameInEveryTimeZone() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": #"return { init = function() print(os.date("%Y-%m-%d %H:%M")) end }"#,
            "p.test.yaml": "plugin: p.lua\ntopics: []\ntests: [{ name: utc, expect: { prints: [\"2026-01-01 00:00\"] } }]\n",
        ])
        let result = try await switchboard("test", folder.path("p.test.yaml"), environment: ["TZ": "America/New_York"])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func junitOutputIsAcceptedByAJUnitParser() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": #"return { handle = function(event) print("got <" .. event.data .. "> & \"" .. event.data .. "\"\1") end }"#,
            "p.test.yaml": """
                plugin: p.lua
                tests:
                  - { name: "passes <here>\\x01", events: [{ topic: a, data: x }], expect: { failures: 0 } }
                  - { name: fails & says why, events: [{ topic: a, data: y }], expect: { prints: ["nothing"] } }
                """,
            "bad.test.yaml": "plugin: p.lua\ntests: []\n",
        ])
        let report = folder.path("report.xml")
        let result = try await switchboard("test", folder.path("p.test.yaml"), folder.path("bad.test.yaml"), "--junit", report)
        #expect(result.status == 2)
        // Debian's python3, which has python3-junitparser.
        let (status, text) = try await runProgram("/usr/bin/python3", ["-c", """
            import sys, junitparser
            xml = junitparser.JUnitXml.fromfile(sys.argv[1])
            for suite in xml:
                print("suite", suite.name, suite.tests, suite.failures, suite.errors)
                for case in suite:
                    print("case", case.name, [type(r).__name__ + ":" + (r.message or "") for r in case.result])
            """, report])
        #expect(status == 0)
        #expect(text == """
            suite \(folder.path("p.test.yaml")) 2 1 0
            case passes <here>\\u{1} []
            case fails & says why ['Failure:prints: first difference at [0]: expected "nothing", got "got <y> & \\\\"y\\\\"\\\\u0001"']
            suite \(folder.path("bad.test.yaml")) 1 0 1
            case the test file is valid ["Error:\(folder.path("bad.test.yaml")):2: 'tests' must be a list of at least one test"]

            """, "\(text)")
    }
}
