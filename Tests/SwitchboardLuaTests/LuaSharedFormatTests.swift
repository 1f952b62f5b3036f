import CSwitchboardLua
@testable import SwitchboardLua
import Switchboard
import Testing

/// Formats that C and Swift each write down: these fail when the two sides disagree.
@Suite struct LuaSharedFormatTests {
    @Test func tapeTagsAreTheSameOnBothSides() {
        let c: [JSONTape.Tag: Int] = [
            .null: Int(SB_TAPE_NULL), .false: Int(SB_TAPE_FALSE), .true: Int(SB_TAPE_TRUE), .int: Int(SB_TAPE_INT),
            .double: Int(SB_TAPE_DOUBLE), .string: Int(SB_TAPE_STRING), .array: Int(SB_TAPE_ARRAY),
            .object: Int(SB_TAPE_OBJECT),
        ]
        for tag in [JSONTape.Tag.null, .false, .true, .int, .double, .string, .array, .object] {
            #expect(c[tag] == Int(tag.rawValue), "\(tag)")
        }
    }

    @Test func nestingLimitsAgree() {
        #expect(Int(SB_MAX_DEPTH) == JSON.maximumDepth)
    }

    /// A plugin's `event.id` is ``EventID/description`` of the same event, for ids at the
    /// edges of both fields.
    @Test(arguments: [
        EventID(prefix: 0, sequence: 0), EventID(prefix: 1, sequence: 15), EventID(prefix: 0xfedc_ba98_7654_3210, sequence: 16),
        EventID(prefix: .max, sequence: .max), EventID(prefix: 0x0123_4567_89ab_cdef, sequence: 0x1_0000_0000),
    ])
    func eventIdTextIsTheSameOnBothSides(_ id: EventID) throws {
        let folder = try PluginFolder()
        let path = try folder.write("ids.lua", "return { handle = function(event) error(event.id, 0) end }")
        let handler = LuaHandler(
            configuration: LuaSubscriberConfiguration(name: "ids", script: path, topics: ["a"]), logger: .init(label: "test"))
        try handler.start(.detached(name: "ids", workers: 1))
        defer { handler.stop() }
        let message = #expect(throws: LuaError.self) {
            try handler.handle(Event(topic: "a", data: .null, id: id, time: 0))
        }
        #expect(message.map { "\($0)".split(separator: "\n").first.map(String.init) } == id.description)
    }
}
