/// Why a topic or a pattern was refused; the description names the problem and the offending token.
public struct TopicError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `topic` or `pattern`.
    public let kind: String
    /// The topic or pattern as given.
    public let text: String
    /// What is wrong with it, naming the token.
    public let reason: String

    public var description: String { "invalid \(kind) \"\(text)\": \(reason)" }
}
