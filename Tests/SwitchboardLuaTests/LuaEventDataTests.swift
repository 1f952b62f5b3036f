import Foundation
import Switchboard
import Testing

/// `event.data` is built a member at a time as a plugin reads it, and must behave in every
/// way as the object built at once: raw access, iteration, writes and deletions, metatables,
/// encoding, and events kept past their handler call.
@Suite struct LuaEventDataTests {
    static let data: JSON = ["a": 1, "b": "two", "c": [1, 2], "d": ["x": true], "e": nil]

    /// Runs `body` (Lua, with `d = event.data` and `r = {}` in scope) on `data`; returns what it publishes as `r`.
    static func run(_ body: String, data: JSON = data, events: Int = 1) async throws -> [JSON] {
        let fixture = try LuaFixture("""
            local json = switchboard.json
            return { handle = function(event)
              local d, r = event.data, {}
              \(body)
              switchboard.publish("out.r", r)
            end }
            """)
        for _ in 0..<events { try fixture.router.publish("in.x", data: data) }
        let output = await fixture.outputs(events)
        await fixture.router.shutdown()
        return output
    }

    @Test func aMemberReadAloneComesFromTheTapeAndRawAccessSeesEveryMember() async throws {
        let results = try await Self.run("""
            r.a, r.lazy = d.a, getmetatable(d)
            r.missing, r.integerKey, r.length = d.nothere == nil, d[1] == nil, #d
            r.rawB = rawget(d, "b")  -- never read through d: raw access builds it too
            local keys = {}
            for k in next, d do keys[#keys + 1] = type(k) == "string" and k or ("not a string: " .. type(k)) end
            table.sort(keys)
            r.keys, r.plain = table.concat(keys, ","), getmetatable(d) == nil
            """)
        #expect(results == [[
            "a": 1, "lazy": "switchboard.data", "missing": true, "integerKey": true, "length": 0, "rawB": "two",
            "keys": "a,b,c,d,e", "plain": true,
        ]])
    }

    @Test func thePluginsWritesAndDeletionsWinOverTheTape() async throws {
        let results = try await Self.run("""
            d.b = nil                 -- an unread member deleted
            local _ = d.a; d.a = nil  -- a read one deleted: it does not come back
            d.c = "changed"           -- an unread one replaced
            d.z = 9
            rawset(d, "e", nil)       -- deleted raw
            r.a, r.b, r.e = d.a == nil, d.b == nil, d.e == nil
            local count = 0
            for _ in pairs(d) do count = count + 1 end
            r.count, r.data = count, d
            """)
        #expect(results == [["a": true, "b": true, "e": true, "count": 3, "data": ["c": "changed", "d": ["x": true], "z": 9]]])
    }

    @Test func metatablesMarksAndEncodingSeeTheWholeObject() async throws {
        let results = try await Self.run("""
            setmetatable(d, { __index = function() return "default" end })
            r.b, r.other, r.json = d.b, d.other, json.encode(d)
            """)
        #expect(results == [["b": "two", "other": "default", "json": .string(Self.data.serialized(sortedKeys: true))]])
        let marked = try await Self.run("r.marked = json.encode(json.object(d)); r.same = json.decode(json.encode(d))")
        #expect(marked == [["marked": .string(Self.data.serialized(sortedKeys: true)), "same": Self.data]])
    }

    @Test func anEventKeptPastItsCallBuildsItsDataLater() async throws {
        let fixture = try LuaFixture("""
            local kept = {}
            return { handle = function(event)
              kept[#kept + 1] = event
              if #kept == 3 then
                collectgarbage()
                switchboard.publish("out.r", { kept[1].data.b, kept[2].data, kept[3].data.c[2] })
              end
            end }
            """)
        for n in 1...3 { try fixture.router.publish("in.x", data: ["b": .string("b\(n)"), "c": [.int(Int64(n)), .int(Int64(n * 10))]]) }
        let output = await fixture.outputs(1)
        await fixture.router.shutdown()
        #expect(output == [["b1", ["b": "b2", "c": [2, 20]], 30]])
    }

    @Test func largeObjectsAndNestedValuesAreBuiltAtOnce() async throws {
        let wide = JSON.object(.init(uniqueKeysWithValues: (0..<65).map { ("k\($0)", JSON.int(Int64($0))) }))
        let many = try await Self.run("r.plain, r.k64, r.nested = getmetatable(d) == nil, d.k64, getmetatable(event.data) == nil", data: wide)
        #expect(many == [["plain": true, "k64": 64, "nested": true]])
        let nested = try await Self.run("r.d, r.c = getmetatable(d.d) == nil, getmetatable(d.c)")
        #expect(nested == [["d": true, "c": "switchboard.array"]])
        let scalar = try await Self.run("r.value = d", data: "just a string")
        #expect(scalar == [["value": "just a string"]])
    }

    @Test func aRepeatedKeyReadsAsTheObjectBuiltAtOnceReadsIt() async throws {
        // JSON text may repeat a key; built at once, the last one wins. Read alone, a check on
        // the first and a forward of the last would disagree.
        let fixture = try LuaFixture("""
            return { handle = function(event)
              local d = event.data
              local seen = d.amount
              d.note = "checked " .. seen
              switchboard.publish("out.r", { seen = seen, forwarded = d })
              local e = switchboard.json.decode('{"a": 1}')  -- not lazy: decode builds at once
              event.data.amount = 5
              switchboard.publish("out.r", { written = event.data, plain = getmetatable(e) == nil })
            end }
            """)
        let text = #"{"amount": 1, "other": true, "amount": 1000000}"#
        try fixture.router.publish("in.x", tape: try Array(text.utf8).withUnsafeBytes { try JSONTape(parsing: $0) })
        let output = await fixture.outputs(2)
        await fixture.router.shutdown()
        #expect(output[0] == ["seen": 1_000_000, "forwarded": ["amount": 1_000_000, "other": true, "note": "checked 1000000"]])
        #expect(output[1]["written"]?["amount"] == 5 && output[1]["plain"] == true, "\(output[1])")
    }

    @Test func noRouteToLuasRawNextWalksTheHostsHiddenState() async throws {
        // Lua's own pairs hands out its raw next for a table without __pairs; so would any
        // pairs a plugin can reach. Every route must give the host's, which builds first.
        let results = try await Self.run("""
            local routes = {
              pairs({}), (pairs(setmetatable({}, {}))), select(1, pairs({})), next,
              coroutine.wrap(function() coroutine.yield((pairs({}))) end)(),
            }
            local leaks = 0
            for _, walk in ipairs(routes) do
              for _, target in ipairs({ event, event.data, d }) do
                for k, v in walk, target do
                  if type(k) ~= "string" or type(v) == "userdata" and v ~= switchboard.null then leaks = leaks + 1 end
                end
              end
            end
            r.leaks, r.routes = leaks, #routes
            """)
        #expect(results == [["leaks": 0, "routes": 5]])
    }

    @Test func noPluginReachesTheHostsStateOfAnObjectBeingBuilt() async throws {
        // What a hostile plugin would try: find the hidden key, borrow the metatable for a
        // table of its own, or replace the object's members from under the host.
        let results = try await Self.run("""
            local mt = getmetatable(d)  -- while it is being built: a name, not the table
            r.borrowed = pcall(setmetatable, {}, mt)
            local found = 0
            for k in pairs(d) do if type(k) ~= "string" then found = found + 1 end end
            r.found, r.same = found, event.data == d
            """, data: ["b": "two"])
        #expect(results == [["found": 0, "same": true, "borrowed": false]])
        let forged = try await Self.run("""
            r.kind = type(getmetatable(d))
            r.ok = (pcall(setmetatable, d, nil))  -- taking the metatable away builds it first
            r.b = d.b
            """)
        #expect(forged == [["kind": "string", "ok": true, "b": "two"]])
    }
}
