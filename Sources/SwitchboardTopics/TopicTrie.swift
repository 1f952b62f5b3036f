/// An index of subscription patterns, searched token by token.
///
/// Each token of a topic is looked up in a hash map per level, so the cost of a
/// match grows with the number of tokens and of patterns that could match, not
/// with the number of patterns in the trie. A trie is a value, copied on write: build it,
/// then share it read-only between threads.
public struct TopicTrie<Value: AnyObject & Sendable>: Sendable {
    private final class Node: @unchecked Sendable {  // only mutated through a uniquely referenced root
        var literals: [Substring: Node] = [:]
        var single: Node?
        var rest: [Int] = []      // entries whose pattern ends in `>` here
        var terminal: [Int] = []  // entries whose pattern ends exactly here

        /// A copy of this node and of every node below it.
        func deepCopy() -> Node {
            let copy = Node()
            copy.literals = literals.mapValues { $0.deepCopy() }
            copy.single = single?.deepCopy()
            copy.rest = rest
            copy.terminal = terminal
            return copy
        }
    }

    /// Only ever reached through the root, so copies of a trie share either all nodes or none.
    private var root = Node()
    private var values: [Value] = []

    /// An empty trie.
    public init() {}

    /// Adds a pattern; `value` is returned by every match of a topic the pattern covers.
    /// The pattern must already be valid (``Topic/validatePattern(_:)``).
    public mutating func insert(_ pattern: String, _ value: Value) {
        if !isKnownUniquelyReferenced(&root) { root = root.deepCopy() }
        let entry = values.count
        values.append(value)
        var node = root
        let tokens = pattern.split(separator: ".", omittingEmptySubsequences: false)
        for (position, token) in tokens.enumerated() {
            if token == ">", position == tokens.count - 1 {
                node.rest.append(entry)
                return
            }
            if token == "*" {
                if node.single == nil { node.single = Node() }
                node = node.single!
            } else {
                if node.literals[token] == nil { node.literals[token] = Node() }
                node = node.literals[token]!
            }
        }
        node.terminal.append(entry)
    }

    /// The values of every pattern that matches `topic`, in insertion order, each once
    /// even if several of its patterns match.
    public func match(_ topic: String) -> [Value] {
        var hits: [Int] = []
        collect(topic.split(separator: ".", omittingEmptySubsequences: false)[...], node: root, into: &hits)
        if hits.count > 1 { hits.sort() }
        var result: [Value] = []
        result.reserveCapacity(hits.count)
        for entry in hits {
            let value = values[entry]
            if !result.contains(where: { $0 === value }) { result.append(value) }
        }
        return result
    }

    private func collect(_ tokens: ArraySlice<Substring>, node: Node, into hits: inout [Int]) {
        guard let token = tokens.first else {
            hits.append(contentsOf: node.terminal)
            return
        }
        hits.append(contentsOf: node.rest)
        let remaining = tokens.dropFirst()
        if let next = node.literals[token] { collect(remaining, node: next, into: &hits) }
        if let next = node.single { collect(remaining, node: next, into: &hits) }
    }
}
