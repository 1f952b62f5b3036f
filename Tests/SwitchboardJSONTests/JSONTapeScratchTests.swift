import SwitchboardJSON
import Testing

/// Event lines are parsed into one thread's scratch memory, line after line: a tape still
/// held must survive the next parse, and a tape let go must leave its memory for the next.
@Suite struct JSONTapeScratchTests {
    private static func parse(_ text: String, _ scratch: inout JSONTapeScratch) throws -> JSONTape {
        var text = text
        return try text.withUTF8 { try JSONTape(parsing: UnsafeRawBufferPointer($0), reusing: &scratch) }
    }

    private static func address(_ tape: JSONTape) -> UInt { tape.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) } }

    @Test func aTapeLetGoLeavesItsMemoryToTheNextParse() throws {
        var scratch = JSONTapeScratch()
        let first = Self.address(try Self.parse(#"{"topic": "a", "data": [1, 2, 3]}"#, &scratch))
        let second = try Self.parse(#"{"topic": "b", "data": "short"}"#, &scratch)
        #expect(Self.address(second) == first)
        #expect(try second.decoded() == ["topic": "b", "data": "short"])
    }

    @Test func aTapeStillHeldSurvivesTheNextParse() throws {
        var scratch = JSONTapeScratch()
        let kept = try Self.parse(#"{"topic": "kept", "data": {"n": 1}}"#, &scratch)
        let slice = try #require(kept[member: "data"])
        let next = try Self.parse(#"{"topic": "next", "data": {"n": 2, "more": [true, null]}}"#, &scratch)
        #expect(Self.address(next) != Self.address(kept))
        #expect(try kept.decoded() == ["topic": "kept", "data": ["n": 1]])
        #expect(try slice.decoded() == ["n": 1])
        #expect(try next.decoded() == ["topic": "next", "data": ["n": 2, "more": [true, .null]]])
    }

    @Test func aFailedParseLeavesTheScratchUsable() throws {
        var scratch = JSONTapeScratch()
        #expect(throws: JSONError.self) { try Self.parse(#"{"topic": "a", "data": [1, 2"#, &scratch) }
        let long = String(repeating: "z", count: 10_000)
        let tape = try Self.parse(#"{"data": "\#(long)"}"#, &scratch)  // larger than any buffer before it
        #expect(try tape.decoded() == ["data": .string(long)])
    }
}
