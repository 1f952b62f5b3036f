/// Why a JSON text or value was refused.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, in words.
    public let reason: String
    /// The byte offset in the text where the problem was found, when parsing.
    public let offset: Int?
    /// Where that offset is for a reader: the 1-based line and column (in Unicode scalars).
    public let line: Int?
    public let column: Int?

    /// Creates an error with a reason and, for parse errors, the byte offset.
    public init(_ reason: String, offset: Int? = nil) {
        self.reason = reason
        self.offset = offset
        line = nil
        column = nil
    }

    /// A parse error at `offset` in `text`, with its line and column.
    init(_ reason: String, at offset: Int, in text: UnsafeRawBufferPointer) {
        self.reason = reason
        self.offset = offset
        let before = UnsafeRawBufferPointer(rebasing: text[..<min(offset, text.count)])
        let lineStart = (before.lastIndex(of: 0x0A) ?? -1) + 1
        line = 1 + before.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        column = 1 + before[lineStart...].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }  // continuation bytes are not characters
    }

    public var description: String {
        switch (line, column, offset) {
        case (1?, let column?, _): "\(reason) at column \(column)"
        case (let line?, let column?, _): "\(reason) at line \(line), column \(column)"
        case (_, _, let offset?): "\(reason) at byte \(offset)"
        default: reason
        }
    }
}
