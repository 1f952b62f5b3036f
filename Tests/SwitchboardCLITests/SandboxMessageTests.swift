import Foundation
import SwitchboardTestSupport
import Testing

/// A plugin that reaches for what the sandbox leaves out is told so, and how to get it back.
@Suite struct SandboxMessageTests {
    static let plugin = """
        local plugin = {}
        function plugin.handle(event)
          if event.data == "probe" then print(io == nil, os.getenv == nil, debug == nil) return end
          if event.data == "io" then return io.open("/etc/hostname") end
          if event.data == "require" then return require("io").open("/etc/hostname") end
          if event.data == "env" then return os.getenv("HOME") end
          if event.data == "debug" then return debug.getinfo(1) end
          if event.data == "dump" then return string.dump(print) end
          -- Other ways to reach the same names, which must get the same hints.
          if event.data == "_G" then return _G.io.open("/etc/hostname") end
          if event.data == "loaded" then return package.loaded.io.open("/etc/hostname") end
          if event.data == "bracket" then return os["getenv"]("HOME") end
          if event.data == "method" then return ("x"):dump() end
          if event.data == "env" .. "2" then local e = _ENV; return e.debug.getinfo(1) end
        end
        return plugin
        """

    @Test func aRunLogsTheSandboxAndTheFixAndProbingStillWorks() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": Self.plugin, "c.yaml": "subscribers:\n  - { name: p, plugin: p.lua, topics: [a] }\n",
        ])
        let input = ["probe", "io", "env"].map { #"{"topic": "a", "data": "\#($0)"}"# }.joined(separator: "\n") + "\n"
        let result = try await switchboard("run", "--config", folder.path("c.yaml"), "--fail-on", "none", input: input)
        #expect(result.output == "true\ttrue\ttrue\n")  // `if io then` keeps working: the names are absent, not traps
        #expect(result.errors.contains("attempt to index a nil value (global 'io'); io is not available to plugins (sandbox); allow: [io] gives it back"), "\(result.errors)")
        #expect(result.errors.contains("os.getenv is not available to plugins (sandbox); a secret belongs in the subscriber's settings, as ${VAR}"))
    }

    @Test func eachLeftOutNameSaysWhichAllowGivesItBack() async throws {
        let folder = try PluginFolder(files: [
            "p.lua": Self.plugin,
            "p.test.yaml": """
                plugin: p.lua
                tests:
                  - name: hints
                    events: [{ topic: a, data: io }, { topic: a, data: require }, { topic: a, data: env }, { topic: a, data: debug }, { topic: a, data: dump }]
                    expect:
                      errors:
                        - "io is not available to plugins (sandbox); allow: [io] gives it back"
                        - "module 'io' is not available in the sandbox"
                        - "allow: [os] gives os.getenv back"
                        - "debug is not available to plugins (sandbox); allow: [debug] gives it back"
                        - "string.dump is not available to plugins (sandbox); allow: [debug] gives it back"
                  - name: other spellings of the same names
                    events: [{ topic: a, data: _G }, { topic: a, data: loaded }, { topic: a, data: bracket }, { topic: a, data: method }, { topic: a, data: env2 }]
                    expect:
                      errors:
                        - "(field 'io'); io is not available to plugins (sandbox); allow: [io] gives it back"
                        - "(field 'io'); io is not available to plugins (sandbox); allow: [io] gives it back"
                        - "(field 'getenv'); os.getenv is not available to plugins (sandbox)"
                        - "(method 'dump'); string.dump is not available to plugins (sandbox)"
                        - "(field 'debug'); debug is not available to plugins (sandbox); allow: [debug] gives it back"
                  - name: probing for a left-out name is no error
                    events: [{ topic: a, data: probe }]
                    expect: { prints: ["true\\ttrue\\ttrue"] }
                """,
        ])
        let result = try await switchboard("test", folder.path("p.test.yaml"))
        #expect(result.status == 0, "\(result.output)")
    }
}
