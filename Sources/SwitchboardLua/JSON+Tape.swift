import CSwitchboardLua
import OrderedCollections
import SwitchboardCore

extension JSON {
    /// Appends the value to `tape` in the shim's tape format (see CSwitchboardLua.h).
    func writeTape(to tape: inout [UInt8]) {
        switch self {
        case .null: tape.append(UInt8(SB_TAPE_NULL))
        case .bool(false): tape.append(UInt8(SB_TAPE_FALSE))
        case .bool(true): tape.append(UInt8(SB_TAPE_TRUE))
        case let .int(value):
            tape.append(UInt8(SB_TAPE_INT))
            withUnsafeBytes(of: value.littleEndian) { tape.append(contentsOf: $0) }
        case let .double(value):
            tape.append(UInt8(SB_TAPE_DOUBLE))
            withUnsafeBytes(of: value.bitPattern.littleEndian) { tape.append(contentsOf: $0) }
        case let .string(text):
            tape.append(UInt8(SB_TAPE_STRING))
            JSON.writeTapeBytes(text, to: &tape)
        case let .array(elements):
            tape.append(UInt8(SB_TAPE_ARRAY))
            JSON.writeTapeCount(elements.count, to: &tape)
            for element in elements { element.writeTape(to: &tape) }
        case let .object(members):
            tape.append(UInt8(SB_TAPE_OBJECT))
            JSON.writeTapeCount(members.count, to: &tape)
            for (key, value) in members {
                JSON.writeTapeBytes(key, to: &tape)
                value.writeTape(to: &tape)
            }
        }
    }

    /// Appends a string map as an object tape of strings (event headers).
    static func writeTape(headers: [String: String], to tape: inout [UInt8]) {
        tape.append(UInt8(SB_TAPE_OBJECT))
        writeTapeCount(headers.count, to: &tape)
        for (key, value) in headers {
            writeTapeBytes(key, to: &tape)
            tape.append(UInt8(SB_TAPE_STRING))
            writeTapeBytes(value, to: &tape)
        }
    }

    private static func writeTapeCount(_ count: Int, to tape: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: count).littleEndian) { tape.append(contentsOf: $0) }
    }

    private static func writeTapeBytes(_ text: String, to tape: inout [UInt8]) {
        writeTapeCount(text.utf8.count, to: &tape)
        tape.append(contentsOf: text.utf8)
    }

    /// Reads one value from a tape written by the shim. Lua strings are bytes: one that is
    /// not valid UTF-8 is refused, as JSON text cannot hold it.
    init(tape: UnsafeRawBufferPointer) throws(JSONError) {
        var reader = TapeReader(bytes: tape)
        self = try reader.value()
    }
}

/// Headers from a tape that holds an object of strings.
func headers(fromTape tape: UnsafeRawBufferPointer) throws(JSONError) -> [String: String] {
    guard tape.count > 0, case let .object(members) = try JSON(tape: tape) else { return [:] }
    var headers: [String: String] = [:]
    for (key, value) in members { headers[key] = value.stringValue }
    return headers
}

private struct TapeReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    mutating func value() throws(JSONError) -> JSON {
        guard offset < bytes.count else { throw JSONError("truncated value tape") }
        let tag = Int(bytes[offset])
        offset += 1
        switch tag {
        case Int(SB_TAPE_NULL): return .null
        case Int(SB_TAPE_FALSE): return .bool(false)
        case Int(SB_TAPE_TRUE): return .bool(true)
        case Int(SB_TAPE_INT): return .int(try load(Int64.self))
        case Int(SB_TAPE_DOUBLE): return .double(Double(bitPattern: try load(UInt64.self)))
        case Int(SB_TAPE_STRING): return .string(try string())
        case Int(SB_TAPE_ARRAY):
            let count = Int(try load(UInt32.self))
            var elements: [JSON] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try value()) }
            return .array(elements)
        case Int(SB_TAPE_OBJECT):
            let count = Int(try load(UInt32.self))
            var members = OrderedDictionary<String, JSON>(minimumCapacity: count)
            for _ in 0..<count {
                let key = try string()
                members[key] = try value()
            }
            return .object(members)
        default: throw JSONError("bad value tape tag \(tag)")
        }
    }

    private mutating func load<T: FixedWidthInteger>(_ type: T.Type) throws(JSONError) -> T {
        guard offset + MemoryLayout<T>.size <= bytes.count else { throw JSONError("truncated value tape") }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    private mutating func string() throws(JSONError) -> String {
        let length = Int(try load(UInt32.self))
        guard offset + length <= bytes.count else { throw JSONError("truncated value tape") }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length])
        offset += length
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw JSONError("a string is not valid UTF-8, which JSON requires")
        }
        return text
    }
}
