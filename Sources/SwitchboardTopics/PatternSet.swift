/// A set of patterns that answers whether a topic matches any of them, through a ``TopicTrie``.
public struct PatternSet: Sendable {
    private final class Marker: Sendable {}
    private static let marker = Marker()
    private var trie = TopicTrie<Marker>()

    /// The set of `patterns` (already validated).
    public init(_ patterns: [String]) {
        for pattern in patterns { trie.insert(pattern, Self.marker) }
    }

    /// True when `topic` matches one of the patterns.
    public func matches(_ topic: String) -> Bool { !trie.match(topic).isEmpty }
}
