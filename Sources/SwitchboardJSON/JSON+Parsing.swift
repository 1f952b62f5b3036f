#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension JSON {
    /// Parses one JSON text (RFC 8259): a single value with optional white space around it.
    ///
    /// Strings must be valid UTF-8; nesting deeper than ``maximumDepth`` is refused.
    /// Integers that fit in 64 bits become `.int`, every other number `.double`.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(JSONError) {
        self = try JSONTape(parsing: bytes).decoded()
    }

    /// Parses one JSON text from a string.
    public init(parsing text: String) throws(JSONError) {
        var text = text
        let result: Result<JSON, JSONError> = text.withUTF8 { buffer in
            Result { () throws(JSONError) -> JSON in try JSON(parsing: UnsafeRawBufferPointer(buffer)) }
        }
        self = try result.get()
    }

    /// Parses one JSON text from bytes.
    public init(parsing bytes: some Collection<UInt8>) throws(JSONError) {
        let result: Result<JSON, JSONError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONError) -> JSON in try JSON(parsing: UnsafeRawBufferPointer(buffer)) }
        }
        if let result { self = try result.get() } else { self = try JSON(parsing: Array(bytes)) }
    }
}

/// A recursive-descent parser over UTF-8 bytes that writes a ``JSONTape`` as it goes: one
/// pass, no intermediate tokens, strings unescaped and validated straight into the tape.
struct JSONParser: ~Copyable {
    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var out: TapeWriter

    init(_ bytes: UnsafeRawBufferPointer) {
        self.init(bytes, into: TapeWriter(capacity: bytes.count + 64))
    }

    /// A parser that writes into `out`.
    init(_ bytes: UnsafeRawBufferPointer, into out: consuming TapeWriter) {
        self.bytes = bytes
        self.out = out
    }

    /// Parses the whole text and returns the tape.
    consuming func parseDocument() throws(JSONError) -> TapeWriter {
        skipWhitespace()
        try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected text after the JSON value") }
        return out
    }

    /// An error at the cursor, or at `offset`.
    private func fail(_ reason: String, at offset: Int? = nil) -> JSONError {
        JSONError(reason, at: offset ?? index, in: bytes)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONError) {
        guard index < bytes.count else { throw fail("unexpected end of JSON text") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            out.tag(.string)
            try parseString()
        case UInt8(ascii: "t"): try expectLiteral("true"); out.tag(.true)
        case UInt8(ascii: "f"): try expectLiteral("false"); out.tag(.false)
        case UInt8(ascii: "n"): try expectLiteral("null"); out.tag(.null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber()
        default: throw fail("unexpected character '\(Unicode.Scalar(bytes[index]))'" + Self.hint(bytes[index]))
        }
    }

    /// What a character where a value or a key was expected probably means.
    private static func hint(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "'"): "; JSON strings are in double quotes"
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
            "; JSON strings and keys are in double quotes"
        default: ""
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
              memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0
        else { throw fail("invalid literal, expected '\(word)'") }
        index += count
    }

    private mutating func parseObject(depth: Int) throws(JSONError) {
        guard depth <= JSON.maximumDepth else { throw fail("nesting deeper than \(JSON.maximumDepth) levels") }
        index += 1
        out.tag(.object)
        let countPosition = out.placeholder()
        var count = 0
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                if count > 0, index < bytes.count, bytes[index] == UInt8(ascii: "}") { throw fail("a trailing comma before '}': JSON allows none") }
                throw fail("expected a string key" + (index < bytes.count ? Self.hint(bytes[index]) : ""))
            }
            try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':' after key") }
            index += 1
            skipWhitespace()
            try parseValue(depth: depth)
            count += 1
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated object") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                out.patch(countPosition, count)
                return
            default: throw fail("expected ',' or '}' in object")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONError) {
        guard depth <= JSON.maximumDepth else { throw fail("nesting deeper than \(JSON.maximumDepth) levels") }
        index += 1
        out.tag(.array)
        let countPosition = out.placeholder()
        var count = 0
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try parseValue(depth: depth)
            count += 1
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated array") }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { throw fail("a trailing comma before ']': JSON allows none") }
            case UInt8(ascii: "]"):
                index += 1
                out.patch(countPosition, count)
                return
            default: throw fail("expected ',' or ']' in array")
            }
        }
    }

    /// Parses a string starting at its opening quote into an untagged tape string (length,
    /// bytes). Plain runs are copied in one go; the result must be valid UTF-8.
    private mutating func parseString() throws(JSONError) {
        index += 1
        let start = index
        let lengthPosition = out.placeholder()
        let textStart = out.count
        var ascii = true
        while true {
            copyPlainRun()
            guard index < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[index]
            if byte >= 0x80 {
                ascii = false
                out.byte(byte)
                index += 1
                continue
            }
            if byte < 0x20 { throw fail("control character in string") }
            index += 1
            if byte == UInt8(ascii: "\"") {
                if !ascii, !isValidUTF8(out.written(from: textStart)) {
                    throw fail("invalid UTF-8 in string", at: start)
                }
                out.patch(lengthPosition, out.count - textStart)
                return
            }
            try parseEscape()  // a backslash
        }
    }

    /// Copies the bytes from the cursor up to the first quote, backslash, control character
    /// or byte that is not ASCII (or the end) into the tape, and leaves the cursor there:
    /// eight bytes at a time, each word stored whole as it is scanned (the tape's count then
    /// moves past only the plain bytes), so a short string costs no call to memcpy. A SWAR
    /// mask flags the special bytes; as borrows only run towards higher bytes, its lowest
    /// flag is a true one.
    @inline(__always)
    private mutating func copyPlainRun() {
        let ones: UInt64 = 0x0101_0101_0101_0101
        while index + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let special = (((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | (word &- ones &* 0x20) | word)
                & 0x8080_8080_8080_8080
            let plain = special == 0 ? 8 : special.trailingZeroBitCount / 8
            out.word(word, keeping: plain)
            index += plain
            if special != 0 { return }
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { return }
            out.byte(byte)
            index += 1
        }
    }

    /// Reads the escape after a backslash and appends what it stands for.
    private mutating func parseEscape() throws(JSONError) {
        guard index < bytes.count else { throw fail("unterminated string") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.byte(escape)
        case UInt8(ascii: "b"): out.byte(0x08)
        case UInt8(ascii: "f"): out.byte(0x0C)
        case UInt8(ascii: "n"): out.byte(0x0A)
        case UInt8(ascii: "r"): out.byte(0x0D)
        case UInt8(ascii: "t"): out.byte(0x09)
        case UInt8(ascii: "u"):
            let scalar = try parseUnicodeEscape()
            UTF8.encode(scalar) { out.byte($0) }
        default: throw fail("invalid escape '\\\(Unicode.Scalar(escape))'", at: index - 2)
        }
    }

    /// Reads the four hex digits after `\u`, and a low surrogate's escape after a high one.
    private mutating func parseUnicodeEscape() throws(JSONError) -> Unicode.Scalar {
        let high = try parseHex4()
        if (0xD800...0xDBFF).contains(high) {
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { throw fail("unpaired high surrogate in \\u escape") }
            index += 2
            let low = try parseHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate in \\u escape") }
            return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
        }
        guard let scalar = Unicode.Scalar(high) else { throw fail("unpaired low surrogate in \\u escape") }
        return scalar
    }

    private mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// Integers without fraction or exponent that fit in Int64 stay integers; the rest go through strtod.
    private mutating func parseNumber() throws(JSONError) {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
        var magnitude: UInt64 = 0
        var overflow = false
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw fail("leading zero in number") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) {
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                magnitude = sum
                overflow = overflow || o1 || o2
                index += 1
            }
        }
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("expected a digit after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("expected a digit in exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if integral, !overflow {
            if negative, magnitude <= UInt64(Int64.max) + 1 { return out.int(Int64(truncatingIfNeeded: 0 &- magnitude)) }
            if !negative, magnitude <= UInt64(Int64.max) { return out.int(Int64(magnitude)) }
        }
        if let value = fastDecimal(start: start, negative: negative) { return out.double(value) }
        let text = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: text.count + 1) { buffer in
            UnsafeMutableRawBufferPointer(buffer).copyBytes(from: text)
            buffer[text.count] = 0
            return strtod(buffer.baseAddress!, nil)
        }
        guard value.isFinite else { throw fail("number out of range", at: start) }
        out.double(value)
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    private static let powersOfTen: [Double] = (0...22).map { exponent in
        (0..<exponent).reduce(1.0) { value, _ in value * 10 }
    }

    /// The number between `start` and the cursor, when its digits fit in 2^53 and its decimal
    /// exponent in ±22: both are then exact doubles and one IEEE multiplication or division
    /// rounds correctly (Clinger's fast path). Nil otherwise, for strtod.
    private func fastDecimal(start: Int, negative: Bool) -> Double? {
        var mantissa: UInt64 = 0
        var digits = 0
        var scale = 0
        var position = negative ? start + 1 : start
        var inFraction = false
        while position < index {
            let byte = bytes[position]
            if isDigit(byte) {
                if mantissa > 0 || byte != UInt8(ascii: "0") { digits += 1 }
                if digits > 15 { return nil }
                mantissa = mantissa * 10 + UInt64(byte - UInt8(ascii: "0"))
                if inFraction { scale -= 1 }
            } else if byte == UInt8(ascii: ".") {
                inFraction = true
            } else {
                break  // an exponent: 'e' or 'E'
            }
            position += 1
        }
        if position < index {
            position += 1
            var exponentNegative = false
            if bytes[position] == UInt8(ascii: "-") || bytes[position] == UInt8(ascii: "+") {
                exponentNegative = bytes[position] == UInt8(ascii: "-")
                position += 1
            }
            var exponent = 0
            while position < index {
                exponent = exponent * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                if exponent > 400 { return nil }
                position += 1
            }
            scale += exponentNegative ? -exponent : exponent
        }
        guard abs(scale) <= 22 else { return nil }
        let magnitude = Double(mantissa)
        let value = scale < 0 ? magnitude / Self.powersOfTen[-scale] : magnitude * Self.powersOfTen[scale]
        return negative ? -value : value
    }
}

/// True when the bytes are well-formed UTF-8: shortest forms only, no surrogates, at most U+10FFFF.
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var index = 0
    while index < bytes.count {
        // Eight ASCII bytes at a time, the common case.
        if index + 8 <= bytes.count,
           bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            index += 8
            continue
        }
        let lead = bytes[index]
        if lead < 0x80 {
            index += 1
            continue
        }
        let extra: Int
        var scalar: UInt32
        let smallest: UInt32
        switch lead {
        case 0xC0...0xDF: (extra, scalar, smallest) = (1, UInt32(lead & 0x1F), 0x80)
        case 0xE0...0xEF: (extra, scalar, smallest) = (2, UInt32(lead & 0x0F), 0x800)
        case 0xF0...0xF7: (extra, scalar, smallest) = (3, UInt32(lead & 0x07), 0x10000)
        default: return false
        }
        guard index + extra < bytes.count else { return false }
        for offset in 1...extra {
            let byte = bytes[index + offset]
            guard byte & 0xC0 == 0x80 else { return false }
            scalar = scalar << 6 | UInt32(byte & 0x3F)
        }
        guard scalar >= smallest, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return false }
        index += extra + 1
    }
    return true
}
