import Foundation
@testable import SwitchboardLua
import Switchboard
import Testing

@Suite struct LuaHostAPITests {
    @Test func publishReturnsTheAcceptedCountOrNilAndAMessage() async throws {
        let fixture = try LuaFixture("""
            local function try(...)
              local n, err = switchboard.publish(...)
              return {n == nil and switchboard.null or n, err == nil and switchboard.null or err}
            end
            return { handle = function(event)
              local cycle = {}; cycle.self = cycle
              switchboard.publish("out.results", {
                try("out.x", {a = 1}),
                try("nobody.listens"),
                try("bad..topic", 1),
                try("out.*", 1),
                try("out.x", {f = print}),
                try("out.x", cycle),
                try("out.x", 0/0),
                try("out.x", {1, 2, x = 3}),
                try("out.x", {[true] = 1}),
                try("out.x", switchboard.after(60, function() end)),
                try("out.x", "\\xff"),
                try("out.x", 1, {h = 1}),
                try("out.x", 1, {h = "v"}),
              })
            end }
            """)
        try fixture.router.publish("in.go")
        _ = await eventually { fixture.published.all.contains { $0.topic == "out.results" } }
        let results = try #require(fixture.published.all.first { $0.topic == "out.results" }?.data)
        func result(_ index: Int) -> (JSON, String) {
            (results[index]![0]!, results[index]![1]!.stringValue ?? "")
        }
        #expect(result(0).0 == 1)
        #expect(result(1).0 == 0)
        #expect(result(2).0 == .null && result(2).1.contains("token 2 is empty"))
        #expect(result(3).0 == .null && result(3).1.contains("wildcard '*'"))
        #expect(result(4).1.contains("cannot encode a function"))
        #expect(result(5).1.contains("contains itself"))
        #expect(result(6).1.contains("NaN or infinity"))
        #expect(result(7).1.contains("both sequence and other keys"))
        #expect(result(8).1.contains("boolean key"))
        #expect(result(9).1.contains("cannot encode a userdata"))
        #expect(result(10).1.contains("not valid UTF-8"))
        #expect(result(11).1.contains("headers must map strings to strings"))
        #expect(result(12).0 == 1)
        #expect(fixture.published.all.contains { $0.headers == ["h": "v"] })
        await fixture.router.shutdown()
    }

    @Test func publishToAFullBlockQueueAnswersQueueFullInsteadOfWaiting() async throws {
        let router = Router()
        let folder = try PluginFolder()
        let gate = Recorder<Bool>()
        let stuck = Recorder<Bool>()
        try router.subscribe("sink", name: "sink", capacity: 1, overflow: .block) { _ in
            stuck.append(true)
            while gate.count == 0 { usleep(500) }
        }
        let results = Recorder<JSON>()
        try router.subscribe("out.r", name: "results") { results.append($0.data) }
        let path = try folder.write("p.lua", """
            return { handle = function()
              local answers = {}
              for i = 1, 5 do
                local n, err = switchboard.publish("sink", i)
                answers[i] = err or n
              end
              switchboard.publish("out.r", answers)
            end }
            """)
        try router.subscribe(lua: LuaSubscriberConfiguration(name: "producer", script: path, topics: ["go"]))
        // The sink is stuck on an event of its own, so its queue has exactly one free slot.
        try router.publish("sink", data: 0)
        #expect(await eventually { stuck.count == 1 })
        try router.publish("go")
        #expect(await eventually { results.count == 1 })  // the plugin never waited
        #expect(results.all.first == [1, "queue full", "queue full", "queue full", "queue full"])
        gate.append(true)
        await router.shutdown()
        #expect(router.stats()["sink"]!.dropped == 4)
    }

    @Test func logWritesStructuredLinesTaggedWithTheSubscriber() async throws {
        let logs = LogRecorder()
        let fixture = try LuaFixture("""
            return { handle = function(event)
              switchboard.log.debug("d")
              switchboard.log.info("user signed up", {email = event.data.email, n = 3})
              switchboard.log.warn("w")
              switchboard.log.error("e")
              switchboard.publish("out.done", true)
            end }
            """, logger: logs.logger)
        try fixture.router.publish("in.x", data: ["email": "a@b.c"])
        _ = await fixture.outputs(1)
        await fixture.router.shutdown()
        let entries = logs.all
        #expect(entries.map(\.level) == [.debug, .info, .warning, .error])
        #expect(entries[1].message == "user signed up")
        #expect(entries[1].metadata["email"] == "a@b.c")
        #expect(entries[1].metadata["n"] == "3")
        #expect(entries.allSatisfy { $0.metadata["subscriber"] == "plugin" })
    }

    @Test func timersRunOnTheSubscriberBetweenEventsAndCanBeCancelled() async throws {
        let fixture = try LuaFixture("""
            local plugin = {}
            local ticks, busy = 0, false
            function plugin.init()
              local repeating
              repeating = switchboard.every(0.01, function()
                if busy then error("timer ran during handle") end
                ticks = ticks + 1
                if ticks == 3 then
                  switchboard.publish("out.ticks", ticks)
                  switchboard.publish("out.cancelled", repeating:cancel())
                  switchboard.publish("out.again", repeating:cancel())
                end
              end)
              switchboard.after(0.02, function() switchboard.publish("out.after", "once") end)
              local never = switchboard.after(0.01, function() switchboard.publish("out.never", 1) end)
              never:cancel()
            end
            function plugin.handle(event)
              busy = true
              local stop = os.clock() + 0.005
              while os.clock() < stop do end
              busy = false
            end
            return plugin
            """)
        for _ in 0..<20 { try fixture.router.publish("in.work") }
        #expect(await eventually { fixture.published.count >= 4 })
        try await Task.sleep(for: .milliseconds(100))
        await fixture.router.shutdown()
        let byTopic = Dictionary(grouping: fixture.published.all, by: \.topic).mapValues { $0.map(\.data) }
        #expect(byTopic["out.ticks"] == [3])
        #expect(byTopic["out.cancelled"] == [true])
        #expect(byTopic["out.again"] == [false])
        #expect(byTopic["out.after"] == ["once"])
        #expect(byTopic["out.never"] == nil)
        #expect(fixture.router.stats()["plugin"]!.failed == 0)
    }

    @Test func timerArgumentsAreChecked() async throws {
        let fixture = try LuaFixture("""
            return { handle = function()
              local ok1, e1 = pcall(switchboard.every, 0, function() end)
              local ok2, e2 = pcall(switchboard.after, 1, "not a function")
              switchboard.publish("out.e", {e1, e2})
            end }
            """)
        try fixture.router.publish("in.x")
        let errors = await fixture.outputs(1)[0]
        #expect(errors[0]?.stringValue?.contains("the interval must be a positive number of seconds") == true)
        #expect(errors[1]?.stringValue?.contains("function expected") == true)
        await fixture.router.shutdown()
    }

    @Test func nowIsUnixTimeWithAFraction() async throws {
        let fixture = try LuaFixture("""
            return { handle = function() switchboard.publish("out.now", {switchboard.now(), math.type(switchboard.now())}) end }
            """)
        try fixture.router.publish("in.x")
        let now = await fixture.outputs(1)[0]
        #expect(abs(now[0]!.doubleValue! - Date().timeIntervalSince1970) < 60)
        #expect(now[1] == "float")
        await fixture.router.shutdown()
    }

    @Test func printWritesWholeLinesThatNeverInterleave() async throws {
        let output = OutputFile()
        let folder = try PluginFolder()
        let path = try folder.write("p.lua", """
            return { handle = function(event)
              local fill = string.rep(switchboard.name, 2000)  -- lines of 10-12 KB
              print(switchboard.name, event.data, fill, nil, true)
            end }
            """)
        let router = Router()
        for name in ["alpha", "bravo", "charlie"] {
            let configuration = LuaSubscriberConfiguration(name: name, script: path, topics: ["p"], capacity: 1000)
            try router.subscribe(["p"], name: name, capacity: 1000, handler: LuaHandler(
                configuration: configuration, logger: .init(label: "t"), output: output.descriptor))
        }
        for n in 0..<200 { try router.publish("p", data: .int(Int64(n))) }
        await router.shutdown()
        let lines = output.lines
        #expect(lines.count == 600)
        for line in lines {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            #expect(fields.count == 5)
            #expect(fields[2] == String(repeating: String(fields[0]), count: 2000)[...])
            #expect(fields[3] == "nil" && fields[4] == "true")
        }
    }
}
