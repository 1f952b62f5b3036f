/// Why a JSON text or value was refused.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, in words.
    public let reason: String
    /// The byte offset in the text where the problem was found, when parsing.
    public let offset: Int?

    /// Creates an error with a reason and, for parse errors, the byte offset.
    public init(_ reason: String, offset: Int? = nil) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String {
        if let offset { return "\(reason) at byte \(offset)" }
        return reason
    }
}
