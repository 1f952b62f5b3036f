/// Validation of topics and patterns, the NATS subject grammar.
///
/// A topic is tokens separated by `.`. Tokens are non-empty and hold no white space.
/// In a pattern, a `*` token matches exactly one token and a `>` token, last only,
/// matches one or more. A published topic holds neither; `foo*` is an ordinary token.
public enum Topic {
    /// Checks a topic that events are published to.
    public static func validate(_ topic: String) throws(TopicError) {
        try check(topic, allowWildcards: false)
    }

    /// Checks a subscription pattern.
    public static func validatePattern(_ pattern: String) throws(TopicError) {
        try check(pattern, allowWildcards: true)
    }

    /// True when some topic matches both valid patterns: `order.*` and `*.created` overlap,
    /// `order.*` and `user.>` do not.
    public static func overlap(_ a: String, _ b: String) -> Bool {
        let a = a.split(separator: ".", omittingEmptySubsequences: false)
        let b = b.split(separator: ".", omittingEmptySubsequences: false)
        for (x, y) in zip(a, b) {
            if x == ">" || y == ">" { return true }
            if x != "*", y != "*", x != y { return false }
        }
        return a.count == b.count
    }

    /// True when every topic that `pattern` matches, `wider` matches too: `order.>` covers
    /// `order.*` and `order.created`, `order.*` does not cover `order.>`.
    public static func pattern(_ wider: String, covers pattern: String) -> Bool {
        let wide = wider.split(separator: ".", omittingEmptySubsequences: false)
        let narrow = pattern.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in wide.enumerated() {
            if token == ">" { return narrow.count > index }
            guard index < narrow.count, narrow[index] != ">" else { return false }
            if token != "*", (narrow[index] == "*" || narrow[index] != token) { return false }
        }
        return wide.count == narrow.count
    }

    private static func check(_ text: String, allowWildcards: Bool) throws(TopicError) {
        let noun = allowWildcards ? "pattern" : "topic"
        func fail(_ reason: String) -> TopicError { TopicError(kind: noun, text: text, reason: reason) }
        if text.isEmpty { throw fail("empty \(noun)") }
        var position = 1
        var tokenStart = text.utf8.startIndex
        var index = tokenStart
        let utf8 = text.utf8
        while true {
            let atEnd = index == utf8.endIndex
            if atEnd || utf8[index] == UInt8(ascii: ".") {
                let token = utf8[tokenStart..<index]
                if token.isEmpty { throw fail("token \(position) is empty") }
                if token.count == 1, token.first == UInt8(ascii: "*") || token.first == UInt8(ascii: ">") {
                    let symbol = String(decoding: token, as: UTF8.self)
                    if !allowWildcards {
                        throw fail("wildcard '\(symbol)' (token \(position)) is only allowed in subscription patterns")
                    }
                    if token.first == UInt8(ascii: ">"), !atEnd {
                        throw fail("'>' (token \(position)) must be the last token")
                    }
                }
                if atEnd { return }
                position += 1
                tokenStart = utf8.index(after: index)
            } else if isWhitespace(utf8[index]) {
                var end = index
                while end != utf8.endIndex, utf8[end] != UInt8(ascii: ".") { end = utf8.index(after: end) }
                let token = String(decoding: utf8[tokenStart..<end], as: UTF8.self)
                throw fail("token \(position) '\(token)' contains white space")
            }
            index = utf8.index(after: index)
        }
    }

    /// ASCII white space and control characters; a topic must also work as a NATS subject.
    private static func isWhitespace(_ byte: UInt8) -> Bool { byte <= 0x20 || byte == 0x7F }
}
