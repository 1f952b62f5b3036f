#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OrderedCollections

/// A JSON value in compact binary form, the "tape": what text parses into in one pass, and
/// what the Lua bridge reads without converting. Cheap to hold and to slice.
///
/// Layout (shared with the C shim, `CSwitchboardLua.h`): a tag byte, then for an integer
/// or a double 8 little-endian bytes, for a string a 4-byte length and the UTF-8 bytes, for
/// an array a 4-byte count and the elements, for an object a 4-byte count and the members,
/// each an untagged string (length, bytes) followed by a value.
public struct JSONTape: @unchecked Sendable {  // the bytes are immutable and kept alive by `owner`
    /// The tag bytes of the tape format.
    public enum Tag: UInt8, Sendable {
        case null = 0, `false`, `true`, int, double, string, array, object
    }

    /// Keeps `base` alive: a ``TapeStorage``, or whatever other object holds the bytes.
    @usableFromInline let owner: AnyObject
    @usableFromInline let base: UnsafeRawPointer
    /// Its size in bytes.
    public let count: Int

    /// A tape over `bytes`, which `owner` keeps alive and unchanged for as long as it lives.
    /// The bytes must hold exactly one well-formed value with valid UTF-8 strings.
    package init(owner: AnyObject, bytes: UnsafeRawBufferPointer) {
        self.owner = owner
        base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        count = bytes.count
    }

    private init(_ writer: consuming TapeWriter) {
        let storage = writer.finish()
        self.init(owner: storage, bytes: UnsafeRawBufferPointer(start: storage.base, count: storage.count))
    }

    /// Encodes a value.
    public init(_ value: JSON) {
        var writer = TapeWriter(capacity: 64)
        writer.write(value)
        self.init(writer)
    }

    /// Encodes a map of strings as an object (event headers, say).
    public init(strings: [String: String]) {
        var writer = TapeWriter(capacity: 64)
        writer.tag(.object)
        writer.count(strings.count)
        for (key, value) in strings {
            writer.text(key)
            writer.tag(.string)
            writer.text(value)
        }
        self.init(writer)
    }

    /// Appends the value's compact JSON text to `text`, without decoding it: the same text as
    /// ``JSON/write(to:sortedKeys:)`` writes for ``decoded()``.
    public func write(to text: inout [UInt8]) {
        withUnsafeBytes { bytes in
            var reader = TapeReader(bytes: bytes)
            try? reader.writeText(to: &text)  // a tape is well-formed by construction
        }
    }

    /// Parses JSON text straight into a tape (see ``JSON/init(parsing:)-(UnsafeRawBufferPointer)`` for the rules).
    public init(parsing text: UnsafeRawBufferPointer) throws(JSONError) {
        let parser = JSONParser(text)
        self.init(try parser.parseDocument())
    }

    /// Takes bytes written outside Swift (by the Lua bridge), checking that they hold exactly
    /// one well-formed value whose strings are valid UTF-8, as JSON requires.
    public init(validating bytes: UnsafeRawBufferPointer) throws(JSONError) {
        var reader = TapeReader(bytes: bytes)
        try reader.skip(validatingStrings: true)
        guard reader.offset == bytes.count else { throw JSONError("trailing bytes after a tape value") }
        var writer = TapeWriter(capacity: bytes.count)
        writer.append(bytes)
        self.init(writer)
    }

    /// Calls `body` with the encoded bytes.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        defer { _fixLifetime(owner) }  // keeps the bytes alive through `body`, with no generic call
        return try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The value. Strings in a tape that did not come from the parser (Lua strings are
    /// bytes) must be valid UTF-8, or this throws.
    public func decoded() throws(JSONError) -> JSON {
        try withUnsafeBytes { (raw) throws(JSONError) -> JSON in
            var reader = TapeReader(bytes: raw)
            return try reader.value()
        }
    }

    /// Calls `body` with each member of an object tape, in document order, each value a
    /// slice of this tape; calls it never when the tape does not hold an object. One pass.
    public func forEachMember<E: Error>(_ body: (String, JSONTape) throws(E) -> Void) throws(E) {
        try forEachMember(rawKeys: { (key, value) throws(E) in try body(String(decoding: key, as: UTF8.self), value) })
    }

    /// ``forEachMember(_:)`` with each key as its UTF-8 bytes (valid only during the call):
    /// for finding known members without building a string per key.
    public func forEachMember<E: Error>(rawKeys body: (UnsafeRawBufferPointer, JSONTape) throws(E) -> Void) throws(E) {
        try withUnsafeBytes { (raw) throws(E) in
            var reader = TapeReader(bytes: raw)
            try reader.forEachMemberRange { key, found throws(E) in
                try body(key, JSONTape(owner: owner, bytes: UnsafeRawBufferPointer(rebasing: raw[found])))
            }
        }
    }

    /// The value of member `key` when the tape holds an object, as a slice of this tape.
    public subscript(member key: String) -> JSONTape? {
        var found: JSONTape?
        forEachMember { name, value in
            if found == nil, name == key { found = value }
        }
        return found
    }

    /// The members when the tape holds an object whose values are all strings (headers).
    public var strings: [String: String]? {
        guard case let .object(members)? = try? decoded() else { return nil }
        var result: [String: String] = [:]
        for (key, value) in members {
            guard let text = value.stringValue else { return nil }
            result[key] = text
        }
        return result
    }

    /// The string when the tape holds one.
    public var stringValue: String? {
        withUnsafeBytes { raw in
            var reader = TapeReader(bytes: raw)
            return reader.stringValue()
        }
    }
}

/// The bytes of a finished tape, shared by the tape and its slices; immutable.
final class TapeStorage: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    deinit { free(base) }
}

/// Appends values to a tape in a malloc'd buffer, storing through a raw pointer so that the
/// parser's hot loop does no per-byte uniqueness or bounds bookkeeping.
struct TapeWriter: ~Copyable {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = malloc(self.capacity)!
    }

    /// A writer that takes over `base`, `capacity` bytes from malloc (or nil), growing it to
    /// `minimum` bytes at once if it is smaller.
    init(reusing base: UnsafeMutableRawPointer?, capacity: Int, minimum: Int) {
        if let base, capacity >= minimum {
            self.base = base
            self.capacity = capacity
        } else {
            self.capacity = max(minimum, 16)
            self.base = realloc(base, self.capacity)!
        }
    }

    deinit { free(base) }

    /// Hands back the memory, its capacity and the bytes written, for the caller to free or reuse.
    consuming func release() -> (base: UnsafeMutableRawPointer, capacity: Int, count: Int) {
        let result = (base, capacity, count)
        discard self
        return result
    }

    /// Hands the bytes to a storage that frees them (unused capacity and all: shrinking costs a realloc).
    consuming func finish() -> TapeStorage {
        let storage = TapeStorage(base: base, count: count)
        discard self
        return storage
    }

    @inline(__always) private mutating func reserve(_ extra: Int) {
        if count + extra > capacity {
            capacity = max(capacity * 2, count + extra)
            base = realloc(base, capacity)!
        }
    }

    @inline(__always) mutating func byte(_ value: UInt8) {
        reserve(1)
        base.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always) mutating func tag(_ tag: JSONTape.Tag) { byte(tag.rawValue) }

    /// Stores all eight bytes of `word` and keeps the first `keeping` of them: the rest are
    /// written over by what comes next.
    @inline(__always) mutating func word(_ word: UInt64, keeping: Int) {
        reserve(8)
        base.storeBytes(of: word, toByteOffset: count, as: UInt64.self)
        count += keeping
    }

    /// Appends raw bytes with one copy.
    @inline(__always) mutating func append(_ raw: UnsafeRawBufferPointer) {
        guard raw.count > 0 else { return }
        reserve(raw.count)
        (base + count).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        count += raw.count
    }

    /// The bytes written so far from `offset` on.
    func written(from offset: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: count - offset)
    }

    @inline(__always) mutating func count(_ value: Int) {
        reserve(4)
        base.storeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    /// Writes a count to fill in later; returns where it is.
    @inline(__always) mutating func placeholder() -> Int {
        defer { count(0) }
        return count
    }

    mutating func patch(_ position: Int, _ value: Int) {
        base.storeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian, toByteOffset: position, as: UInt32.self)
    }

    mutating func int(_ value: Int64) {
        tag(.int)
        reserve(8)
        base.storeBytes(of: value.littleEndian, toByteOffset: count, as: Int64.self)
        count += 8
    }

    mutating func double(_ value: Double) {
        tag(.double)
        reserve(8)
        base.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    /// Writes an untagged string: length and UTF-8 bytes.
    mutating func text(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            count(utf8.count)
            append(UnsafeRawBufferPointer(utf8))
        }
    }

    mutating func write(_ value: JSON) {
        switch value {
        case .null: tag(.null)
        case .bool(false): tag(.false)
        case .bool(true): tag(.true)
        case let .int(number): int(number)
        case let .double(number): double(number)
        case let .string(string):
            tag(.string)
            text(string)
        case let .array(elements):
            tag(.array)
            count(elements.count)
            for element in elements { write(element) }
        case let .object(members):
            tag(.object)
            count(members.count)
            for (key, member) in members {
                text(key)
                write(member)
            }
        }
    }
}

/// Reads values from a tape.
struct TapeReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func value() throws(JSONError) -> JSON {
        switch try tag() {
        case .null: return .null
        case .false: return .bool(false)
        case .true: return .bool(true)
        case .int: return .int(try load(Int64.self))
        case .double: return .double(Double(bitPattern: try load(UInt64.self)))
        case .string: return .string(try string())
        case .array:
            let count = Int(try load(UInt32.self))
            var elements: [JSON] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try value()) }
            return .array(elements)
        case .object:
            let count = Int(try load(UInt32.self))
            var members = OrderedDictionary<String, JSON>(minimumCapacity: count)
            for _ in 0..<count {
                let key = try string()
                members[key] = try value()
            }
            return .object(members)
        }
    }

    /// Appends the JSON text of the value at the cursor, as ``JSON/write(to:sortedKeys:)`` would
    /// write its decoded value, without decoding it. Router tapes are valid, so the strings
    /// are written as they are.
    mutating func writeText(to text: inout [UInt8]) throws(JSONError) {
        switch try tag() {
        case .null: text.append(contentsOf: "null".utf8)
        case .false: text.append(contentsOf: "false".utf8)
        case .true: text.append(contentsOf: "true".utf8)
        case .int: text.append(contentsOf: String(try load(Int64.self)).utf8)
        case .double: JSON.writeDouble(Double(bitPattern: try load(UInt64.self)), to: &text)
        case .string: JSON.writeString(try stringBytes(), to: &text)
        case .array:
            text.append(UInt8(ascii: "["))
            for index in 0..<Int(try load(UInt32.self)) {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                try writeText(to: &text)
            }
            text.append(UInt8(ascii: "]"))
        case .object:
            text.append(UInt8(ascii: "{"))
            for index in 0..<Int(try load(UInt32.self)) {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                JSON.writeString(try stringBytes(), to: &text)
                text.append(UInt8(ascii: ":"))
                try writeText(to: &text)
            }
            text.append(UInt8(ascii: "}"))
        }
    }

    /// Calls `body` with the key and value range of each member of the object at the cursor.
    /// When the object is the whole tape, its last member's value runs to the end of the
    /// tape and need not be walked (an envelope's payload usually comes last).
    mutating func forEachMemberRange<E: Error>(_ body: (UnsafeRawBufferPointer, Range<Int>) throws(E) -> Void) throws(E) {
        let isWholeTape = offset == 0
        guard (try? tag()) == .object, let count = try? load(UInt32.self) else { return }
        for member in 0..<count {
            guard let key = try? stringBytes() else { return }
            let start = offset
            if isWholeTape, member == count - 1 {
                offset = bytes.count
            } else if (try? skip()) == nil {
                return
            }
            try body(key, start..<offset)
        }
    }

    /// Moves past the value at the cursor, optionally checking that its strings are UTF-8.
    mutating func skip(validatingStrings: Bool = false) throws(JSONError) {
        switch try tag() {
        case .null, .false, .true: break
        case .int, .double: offset += 8
        case .string: try skipString(validating: validatingStrings)
        case .array: for _ in 0..<(try load(UInt32.self)) { try skip(validatingStrings: validatingStrings) }
        case .object:
            for _ in 0..<(try load(UInt32.self)) {
                try skipString(validating: validatingStrings)
                try skip(validatingStrings: validatingStrings)
            }
        }
        guard offset <= bytes.count else { throw JSONError("truncated value tape") }
    }

    private mutating func skipString(validating: Bool) throws(JSONError) {
        let length = Int(try load(UInt32.self))
        guard offset + length <= bytes.count else { throw JSONError("truncated value tape") }
        if validating, !isValidUTF8(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length])) {
            throw JSONError("a string is not valid UTF-8, which JSON requires")
        }
        offset += length
    }

    @inline(__always) private mutating func tag() throws(JSONError) -> JSONTape.Tag {
        guard offset < bytes.count else { throw JSONError("truncated value tape") }
        guard let tag = JSONTape.Tag(rawValue: bytes[offset]) else { throw JSONError("bad value tape tag \(bytes[offset])") }
        offset += 1
        return tag
    }

    @inline(__always) private mutating func load<T: FixedWidthInteger>(_ type: T.Type) throws(JSONError) -> T {
        guard offset + MemoryLayout<T>.size <= bytes.count else { throw JSONError("truncated value tape") }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    /// The bytes of the untagged string at the cursor, unchecked.
    private mutating func stringBytes() throws(JSONError) -> UnsafeRawBufferPointer {
        let length = Int(try load(UInt32.self))
        guard offset + length <= bytes.count else { throw JSONError("truncated value tape") }
        defer { offset += length }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length])
    }

    private mutating func string() throws(JSONError) -> String {
        let slice = try stringBytes()
        guard isValidUTF8(slice) else { throw JSONError("a string is not valid UTF-8, which JSON requires") }
        return String(decoding: slice, as: UTF8.self)  // the fast path, now that it is known to be valid
    }

    /// The string at the cursor, or nil when the value there is not a string.
    mutating func stringValue() -> String? {
        guard (try? tag()) == .string else { return nil }
        return try? string()
    }
}
