import Foundation
import Switchboard
import Testing

@Suite struct LuaPluginContractTests {
    @Test func initHandleShutdownInOrderWithTheEventFields() async throws {
        let output = OutputFile()
        let fixture = try LuaFixture("""
            local plugin = {}
            local seen = 0
            function plugin.init(settings)
              switchboard.publish("out.init", {greeting = settings.greeting, same = settings == switchboard.settings,
                                               name = switchboard.name})
            end
            function plugin.handle(event)
              seen = seen + 1
              switchboard.publish("out.event", {topic = event.topic, data = event.data, id = event.id,
                time_type = math.type(event.time), headers = event.headers})
            end
            function plugin.shutdown() print("shutdown after", seen) end
            return plugin
            """, settings: ["greeting": "hello"], output: output.descriptor)
        let before = Date().timeIntervalSince1970
        try fixture.router.publish("in.a", data: ["n": 1], headers: ["trace": "t-1"])
        try fixture.router.publish("in.b.c", data: nil)
        try fixture.router.publish("elsewhere", data: 3)
        let published = await fixture.outputs(3)
        #expect(published[0] == ["greeting": "hello", "same": true, "name": "plugin"])
        #expect(published[1]["topic"] == "in.a")
        #expect(published[1]["data"] == ["n": 1])
        #expect(published[1]["headers"] == ["trace": "t-1"])
        #expect(published[1]["time_type"] == "float")
        #expect(published[2]["topic"] == "in.b.c")
        #expect(published[2]["data"] == .null)  // null arrives as switchboard.null, which publishes back as null
        #expect(published[2]["headers"] == [:])
        #expect(published[1]["id"]?.stringValue != published[2]["id"]?.stringValue)
        #expect(fixture.published.all[1].time >= before)
        await fixture.router.shutdown()
        #expect(output.lines == ["shutdown after\t2"])
        let stats = fixture.router.stats()["plugin"]!
        #expect((stats.received, stats.handled) == (2, 2))
    }

    @Test func eventDataBehavesAsAPlainFieldWhenBuiltOnFirstRead() async throws {
        let fixture = try LuaFixture("""
            local kept
            local plugin = {}
            function plugin.handle(event)
              if event.topic == "in.keep" then
                kept = event  -- read its data only later, from a timer
                switchboard.after(0, function() switchboard.publish("out.later", kept.data) end)
              elseif event.topic == "in.pairs" then
                local keys = {}
                for key in pairs(event) do keys[#keys + 1] = key end
                table.sort(keys)
                switchboard.publish("out.pairs", keys)
              elseif event.topic == "in.encode" then
                switchboard.publish("out.encoded", switchboard.json.decode(switchboard.json.encode(event)).data)
              elseif event.topic == "in.assign" then
                event.data = "replaced"
                switchboard.publish("out.assigned", event.data)
              end
            end
            return plugin
            """)
        let value: JSON = ["nested": ["list": [1, 2, nil]], "empty": []]
        for topic in ["in.keep", "in.pairs", "in.encode", "in.assign"] { try fixture.router.publish(topic, data: value) }
        _ = await fixture.outputs(4)
        await fixture.router.shutdown()
        let byTopic = Dictionary(grouping: fixture.published.all, by: \.topic).mapValues { $0[0].data }
        #expect(byTopic["out.later"] == value)
        #expect(byTopic["out.pairs"] == ["data", "headers", "id", "time", "topic"])
        #expect(byTopic["out.encoded"] == value)
        #expect(byTopic["out.assigned"] == "replaced")
    }

    @Test func errorsInHandleFailThatEventAndTheNextGoesOn() async throws {
        let fixture = try LuaFixture("""
            return { handle = function(event)
              if event.data.fail then error("bad event " .. event.data.n) end
              switchboard.publish("out.ok", event.data.n)
            end }
            """)
        for n in 1...6 { try fixture.router.publish("in.x", data: ["n": .int(Int64(n)), "fail": .bool(n % 2 == 0)]) }
        #expect(await fixture.outputs(3) == [1, 3, 5])
        await fixture.router.shutdown()
        let stats = fixture.router.stats()["plugin"]!
        #expect((stats.handled, stats.failed) == (3, 3))
        #expect(stats.addsUp)
    }

    @Test func producerPluginsNeedNoHandle() async throws {
        let fixture = try LuaFixture("""
            local plugin = {}
            function plugin.init() switchboard.after(0, function() switchboard.publish("out.tick", 1) end) end
            return plugin
            """, topics: [])
        #expect(await fixture.outputs(1) == [1])
        await fixture.router.shutdown()
    }

    @Test(arguments: [
        ("return {}", "plugin.handle is missing"),
        ("return 42", "the plugin must return a table, not number"),
        ("local x = = 1\nreturn {}", "plugin.lua:1:"),
        ("return { handle = 5 }", "plugin.handle must be a function"),
        ("error('no')\nreturn {}", "plugin.lua:1: no"),
        ("return { handle = function() end, init = function() local t = nil; return t.x end }", "init failed: "),
    ])
    func loadFailuresNameTheFileAndLine(source: String, expected: String) throws {
        let folder = try PluginFolder()
        let path = try folder.write("plugin.lua", source)
        let router = Router()
        #expect {
            try router.subscribe(lua: LuaSubscriberConfiguration(name: "broken", script: path, topics: ["a"]))
        } throws: { error in
            let text = "\(error)"
            return text.contains(expected) && text.contains("subscriber 'broken'")
        }
        #expect(router.stats().subscribers.isEmpty)
    }

    @Test func initErrorsCarryTheTraceback() throws {
        let folder = try PluginFolder()
        let path = try folder.write("plugin.lua", "return { handle = function() end,\n  init = function() error('boom') end }")
        #expect {
            try Router().subscribe(lua: LuaSubscriberConfiguration(name: "p", script: path, topics: ["a"]))
        } throws: { "\($0)".contains("plugin.lua:2: boom") && "\($0)".contains("stack traceback") }
    }

    @Test func missingFileIsReported() {
        #expect {
            try Router().subscribe(lua: LuaSubscriberConfiguration(name: "p", script: "/nonexistent/x.lua", topics: ["a"]))
        } throws: { "\($0)".contains("cannot open /nonexistent/x.lua") }
    }

    @Test func requireFindsModulesNextToThePluginOnly() async throws {
        let fixture = try LuaFixture("""
            local helper = require("helper")
            local nested = require("lib.nested")
            local ok, err = pcall(require, "Package")  -- Package.swift's folder is the working directory
            return { handle = function(event)
              switchboard.publish("out.r", {helper.twice(21), nested.name, ok, package.loaded.helper == helper,
                                            package.path == nil and package.cpath == nil})
            end }
            """, files: ["helper.lua": "return { twice = function(x) return 2 * x end }",
                         "lib/nested/init.lua": "return { name = 'nested' }"])
        try fixture.router.publish("in.go")
        #expect(await fixture.outputs(1) == [[42, "nested", false, true, true]])
        await fixture.router.shutdown()
    }
}
