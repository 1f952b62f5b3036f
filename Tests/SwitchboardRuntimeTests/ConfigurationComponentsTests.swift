import Switchboard
import SwitchboardTestSupport
import Testing

/// What the runtime builds from a file's sections: the parts' own defaults where the file is
/// silent, and the same names on both sides of the line between reading and running.
@Suite struct ConfigurationComponentsTests {
    @Test func whatTheFileLeavesOutTakesEachPartsDefault() throws {
        let folder = try PluginFolder(files: [
            "p.lua": "return { handle = function() end }",
            "c.yaml": """
                journal: { path: j }
                nats: { url: "nats://127.0.0.1:4222", export: [a], tls: { insecure_skip_verify: true } }
                subscribers:
                  - { name: plain, plugin: p.lua }
                  - { name: set, plugin: p.lua, topics: [a], queue: { capacity: 5, overflow: block }, timeout: 2s,
                      memory: 1MiB, allow: [io, os, debug] }
                """,
        ])
        let configuration = try Configuration.load(path: folder.path("c.yaml"))
        let defaults = LuaSubscriberConfiguration(name: "plain", script: folder.path("p.lua"))
        #expect(configuration.subscribers[0].lua == defaults)
        var set = LuaSubscriberConfiguration(
            name: "set", script: folder.path("p.lua"), topics: ["a"], capacity: 5, overflow: .block, timeout: .seconds(2),
            memory: 1 << 20, allow: [.io, .os, .debug])
        set.settings = [:]
        #expect(configuration.subscribers[1].lua == set)
        var bridge = NATSSettings(url: "nats://127.0.0.1:4222")
        bridge.export = ["a"]
        bridge.tls = NATSSettings.TLS()
        bridge.tls?.skipVerify = true
        #expect(configuration.nats?.bridge == bridge)
    }

    @Test func theFilesNamesAreThePartsNames() {
        #expect(Set(Configuration.Subscriber.libraries) == Set(LuaLibrary.allCases.map(\.rawValue)))
        #expect(Configuration.Fsync.allCases.map(\.rawValue) == Journal.FsyncMode.allCases.map(\.rawValue))
    }
}
