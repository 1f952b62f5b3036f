import Foundation
import Switchboard
import Testing

/// JSON that survives the trip through Lua: published from Swift, handed to a plugin as
/// `event.data`, published back by the plugin, and encoded by `json.encode` on the way.
@Suite struct LuaJSONBridgeTests {
    static let roundTrips: [(String, JSON)] = [
        ("null in an object", ["a": nil, "b": 1]),
        ("null in an array", [1, nil, 3, nil]),
        ("int64 extremes", [.int(.max), .int(.min), 0, -1]),
        ("2^53 + 1", .int(9_007_199_254_740_993)),
        ("floats with zero fraction", [1.0, -0.5, 100.0, 1e300]),
        ("empty array vs object", ["array": [], "object": [:], "nested": [[], [:]]]),
        ("nested mix", ["users": [["id": 1, "tags": ["a", "b"], "meta": [:]], ["id": 2, "tags": [], "meta": ["x": nil]]]]),
        ("unicode", ["text": "café 😀 日本 \u{0} \" \\ \n", "ключ": "значение"]),
        ("scalars", [true, false, "", 0.1]),
        ("top-level string", "just a string"),
        ("top-level null", nil),
    ]

    @Test(arguments: roundTrips)
    func valuesRoundTripThroughAPlugin(_ name: String, _ value: JSON) async throws {
        let fixture = try LuaFixture("""
            return { handle = function(event)
              switchboard.publish("out.same", event.data)
              switchboard.publish("out.text", switchboard.json.encode(event.data))
              switchboard.publish("out.redecoded", switchboard.json.decode(switchboard.json.encode(event.data)))
            end }
            """)
        try fixture.router.publish("in.value", data: value)
        let output = await fixture.outputs(3)
        await fixture.router.shutdown()
        #expect(output[0] == value, "\(name): event.data published back")
        #expect(output[1] == .string(value.serialized(sortedKeys: true)), "\(name): json.encode, keys sorted")
        #expect(output[2] == value, "\(name): json.decode(json.encode(x))")
        #expect(try JSON(parsing: output[1].stringValue!) == value)
    }

    @Test func tablesBuiltInLuaEncodeByTheDocumentedRules() async throws {
        let fixture = try LuaFixture("""
            local json = switchboard.json
            return { handle = function()
              switchboard.publish("out.r", {
                json.encode({}),
                json.encode(json.array({})),
                json.encode(json.object({})),
                json.encode({3, 2, 1}),
                json.encode(json.object({10, 20})),
                json.encode({b = 1, a = {c = true, a = 1.0}, ["10"] = 2}),
                json.encode(switchboard.null),
                json.encode(json.array({1, 2, nil, 4})),
                json.encode(math.maxinteger),
                json.encode(2^53),
              })
            end }
            """)
        try fixture.router.publish("in.x")
        let results = await fixture.outputs(1)[0]
        await fixture.router.shutdown()
        #expect(results == [
            "{}", "[]", "{}", "[3,2,1]", #"{"1":10,"2":20}"#, #"{"10":2,"a":{"a":1.0,"c":true},"b":1}"#,
            "null", "[1,2,null,4]", "9223372036854775807", "9007199254740992.0",
        ])
    }

    @Test func unrepresentableValuesAndBadTextAreErrors() async throws {
        let fixture = try LuaFixture("""
            local json = switchboard.json
            local function err(f, ...) local ok, e = pcall(f, ...); return ok and "no error" or tostring(e) end
            return { handle = function()
              local cycle = {}; cycle[1] = cycle
              local deep = {}; local t = deep
              for i = 1, 200 do t[1] = {}; t = t[1] end
              switchboard.publish("out.r", {
                err(json.encode, print),
                err(json.encode, coroutine.create(function() end)),
                err(json.encode, switchboard.after(60, function() end)),
                err(json.encode, cycle),
                err(json.encode, 0/0),
                err(json.encode, math.huge),
                err(json.encode, {1, 2, x = 1}),
                err(json.encode, {[1.5] = 1}),
                err(json.encode, deep),
                err(json.encode, "\\xc3\\x28"),
                err(json.decode, "{bad json"),
                err(json.decode, string.rep("[", 200) .. string.rep("]", 200)),
                err(json.decode, "[1] trailing"),
              })
            end }
            """)
        try fixture.router.publish("in.x")
        let errors = await fixture.outputs(1)[0]
        await fixture.router.shutdown()
        let expected = [
            "cannot encode a function", "cannot encode a thread", "cannot encode a userdata",
            "contains itself", "NaN or infinity", "NaN or infinity", "both sequence and other keys",
            "number key", "nesting deeper than 128", "not valid UTF-8",
            "json.decode: expected a string key", "json.decode: nesting deeper than 128",
            "json.decode: unexpected text after the JSON value",
        ]
        for (index, fragment) in expected.enumerated() {
            #expect(errors[index]?.stringValue?.contains(fragment) == true, "case \(index + 1): \(errors[index] ?? nil)")
        }
    }

    @Test func decodedValuesHaveTheRightLuaTypes() async throws {
        let fixture = try LuaFixture("""
            return { handle = function(event)
              local d = event.data
              switchboard.publish("out.types", {
                math.type(d.i), math.type(d.f), d.n == switchboard.null, d.a[2] == switchboard.null,
                #d.a, type(d.o), d.big, d.max == math.maxinteger,
              })
            end }
            """)
        try fixture.router.publish("in.x", data: [
            "i": 5, "f": 5.0, "n": nil, "a": [1, nil, 3], "o": [:], "big": .int(9_007_199_254_740_993), "max": .int(.max),
        ])
        #expect(await fixture.outputs(1)[0] == ["integer", "float", true, true, 3, "table", .int(9_007_199_254_740_993), true])
        await fixture.router.shutdown()
    }
}
