import Foundation
import SwitchboardTestSupport
import Testing

@Suite struct CheckCommandTests {
    @Test func theBundledConfigurationIsValid() async throws {
        let result = try await switchboard("check")
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("config/switchboard.yaml: 3 subscribers, all valid"))
        #expect(result.output.isEmpty)  // plugins print only when they handle events
    }

    @Test func checkRunsNoShutdownSoItsReportIsItsOwn() async throws {
        // The benchmark plugins log their counts from shutdown(): a check shows none of it.
        let result = try await switchboard("check", "--config", "config/bench.yaml")
        #expect(result.status == 0)
        #expect(result.errors == "config/bench.yaml: 3 subscribers, all valid\n", "\(result.errors)")
        let one = try PluginFolder(files: ["p.lua": "return { handle = function() end }", "c.yaml": "subscribers: [{ name: p, plugin: p.lua, topics: [a] }]\n"])
        #expect(try await switchboard("check", "--config", one.path("c.yaml")).errors.hasSuffix(": 1 subscriber, all valid\n"))
    }

    @Test func verboseShowsEachSubscribersSettingsWithTheDefaultsMarked() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": """
                subscribers:
                  - { name: plain, plugin: p.lua, topics: [a] }
                  - { name: tuned, plugin: p.lua, topics: [a, "b.>"], queue: { capacity: 10, overflow: block }, timeout: 250ms,
                      memory: 8MiB, on_failure: { retries: 2 }, allow: [io] }
                """,
        ])
        let result = try await switchboard("check", "--config", folder.path("c.yaml"), "--verbose")
        #expect(result.status == 0)
        #expect(result.errors.contains("""
            plain: plugin \(folder.path("p.lua"))
              topics: a
              queue: capacity 1024 (default), overflow drop_newest (default)
              timeout: 1s (default)
              memory: 64MiB (default)
              on_failure: retries 0, backoff 100ms, max_backoff 30s, dead_letter false, restart_after 5 (default)
              allow: none
            """), "\(result.errors)")
        #expect(result.errors.contains("""
              topics: a, b.>
              queue: capacity 10, overflow block
              timeout: 250ms
              memory: 8MiB
              on_failure: retries 2, backoff 100ms, max_backoff 30s, dead_letter false, restart_after 5
              allow: io
            """))
    }

    @Test func verboseDescribesSinksAndHidesHeaderValues() async throws {
        let folder = try PluginFolder(files: [
            "c.yaml": """
                subscribers:
                  - name: mail
                    topics: [email.send]
                    http: { url: "http://user:${KEY}@127.0.0.1:8025/send?key=${KEY}", headers: { Authorization: "Bearer ${TOKEN}" } }
                  - { name: archive, topics: ["order.>"], file: { path: out/o.jsonl, rotate: { max_bytes: 1MiB } } }
                """,
        ])
        let result = try await switchboard(
            "check", "--config", folder.path("c.yaml"), "--verbose",
            environment: ["TOKEN": "s3cr3t-token-value", "KEY": "s3cr3t-key"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("""
            mail: http POST http://127.0.0.1:8025/send
              body data, batch max_events 1, max_wait 100ms, timeout 5s, tls ca the system's
              headers: Authorization: (hidden)
              topics: email.send
            """), "\(result.errors)")
        #expect(result.errors.contains("""
            archive: file \(folder.path("out/o.jsonl"))
              format event, rotate at 1MiB, keep 10, fsync interval
            """), "\(result.errors)")
        #expect(!result.errors.contains("s3cr3t") && !result.output.contains("s3cr3t"))
        #expect(result.errors.hasSuffix("2 subscribers, all valid\n"))
    }

    @Test func everyBrokenPluginIsListedWithFileAndLine() async throws {
        let folder = try PluginFolder(files: [
            "syntax.lua": "local x = = 1\nreturn {}",
            "nohandle.lua": "return {}",
            "initfails.lua": "return { handle = function() end,\n  init = function() error('no database') end }",
            "fine.lua": "return { handle = function() end, init = function() switchboard.publish('x', 1) end }",
            "c.yaml": """
                subscribers:
                  - { name: one, plugin: syntax.lua, topics: [a] }
                  - { name: two, plugin: nohandle.lua, topics: [a] }
                  - { name: three, plugin: initfails.lua, topics: [a] }
                  - { name: four, plugin: fine.lua, topics: [a] }
                """,
        ])
        let result = try await switchboard("check", "--config", folder.path("c.yaml"))
        #expect(result.status == 2)
        #expect(result.errors.contains("subscriber 'one'") && result.errors.contains("syntax.lua:1:"))
        #expect(result.errors.contains("subscriber 'two'") && result.errors.contains("plugin.handle is missing"))
        #expect(result.errors.contains("subscriber 'three'") && result.errors.contains("initfails.lua:2: no database"))
        #expect(!result.errors.contains("subscriber 'four'"))
    }

    @Test func topicsWrittenEmptyOnAPluginWithHandleIsAnErrorForCheckAndRun() async throws {
        let folder = try PluginFolder(files: [
            "handles.lua": "return { handle = function() end }",
            "produces.lua": "return { init = function() switchboard.every(1, function() end) end }",
            "c.yaml": """
                subscribers:
                  - { name: forgot, plugin: handles.lua, topics: [] }
                  - { name: producer, plugin: produces.lua, topics: [] }
                  - { name: unlisted, plugin: handles.lua }
                """,
        ])
        let check = try await switchboard("check", "--config", folder.path("c.yaml"))
        #expect(check.status == 2)
        #expect(check.errors.contains(
            "subscriber 'forgot': \(folder.path("handles.lua")): plugin.handle would never be called, as the entry says topics: []; list the topics it handles, or remove handle from a producer"),
            "\(check.errors)")
        #expect(!check.errors.contains("'producer'") && !check.errors.contains("'unlisted'"))
        let run = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none", "--duration", "1s")
        #expect(run.status == 2)
        #expect(run.errors.contains("plugin.handle would never be called"))
    }

    @Test func valueMistakesAreAnsweredWithTheFixThroughTheBinary() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": """
                subscribers:
                  - { name: a, plugin: p.lua, topics: [x], memory: 64MB }
                  - { name: b, plugin: p.lua, topics: [x], timeout: 0s }
                  - { name: c, plugin: p.lua, topics: [x], timeot: 1s }
                  - { name: d, plugin: gone.lua, topics: [x] }
                  - { name: e, plugin: p.lua, topics: [x], timeout: 1m30s, queue: { capacity: 8 }, on_failure: { backoff: 1.5s } }
                """,
        ])
        let result = try await switchboard("check", "--config", folder.path("c.yaml"))
        #expect(result.status == 2)
        let file = folder.path("c.yaml")
        for line in [
            "\(file):2: subscriber 'a': memory '64MB' is not a size such as 512KiB, 64MiB or 1GiB; did you mean 64MiB?",
            "\(file):3: subscriber 'b': timeout 0s would mean no time limit at all; write timeout: none if that is what you want",
            "\(file):4: subscriber 'c': unknown key 'timeot' in a subscriber",
            "\(file):5: subscriber 'd': plugin file 'gone.lua' not found (looked for \(folder.path("gone.lua")))",
        ] {
            #expect(result.errors.contains(line), "\(line)\n\(result.errors)")
        }
        #expect(result.errors.contains("; did you mean 'timeout'?"))
        #expect(!result.errors.contains("subscriber 'e'"), "1m30s and 1.5s are durations")
    }

    @Test func configurationErrorsExitWithTwo() async throws {
        let folder = try PluginFolder(files: ["c.yaml": "subscribers:\n  - { name: a, plugin: x.lua, topcis: [a] }\n"])
        let result = try await switchboard("check", "--config", folder.path("c.yaml"))
        #expect(result.status == 2)
        #expect(result.errors.contains("c.yaml:2: subscriber 'a': unknown key 'topcis'"))
        #expect(result.errors.contains("plugin file 'x.lua' not found"))
    }

    @Test func usageErrorsExitWithTwoAndTheVersionPrints() async throws {
        let bogus = try await switchboard("check", "--bogus")
        #expect(bogus.status == 2)
        #expect(bogus.errors.contains("Unknown option '--bogus'"))
        let version = try await switchboard("--version")
        #expect(version.status == 0)
        #expect(version.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        let help = try await switchboard("check", "--help")
        #expect(help.output.contains("Example:") && help.output.contains("switchboard check --config"))
    }
}
