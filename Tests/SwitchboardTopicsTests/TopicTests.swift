import Testing
import SwitchboardTopics

final class Box: Sendable {
    let name: String
    init(_ name: String) { self.name = name }
}

func matches(_ pattern: String, _ topic: String) -> Bool {
    var trie = TopicTrie<Box>()
    trie.insert(pattern, Box(pattern))
    return !trie.match(topic).isEmpty
}

@Suite struct TopicGrammarTests {
    @Test(arguments: ["user.created", "a", "a.b.c.d", "foo*.bar", "x>y", "ünïcode.topic"])
    func validTopics(_ topic: String) throws {
        try Topic.validate(topic)
    }

    @Test(arguments: [
        ("", "empty topic"),
        ("user..created", "token 2 is empty"),
        (".user", "token 1 is empty"),
        ("user.", "token 2 is empty"),
        ("user.*", "wildcard '*' (token 2)"),
        ("user.>", "wildcard '>' (token 2)"),
        ("user.new user", "token 2 'new user' contains white space"),
        ("user.\tx", "token 2"),
    ])
    func invalidTopics(_ topic: String, _ reason: String) {
        #expect {
            try Topic.validate(topic)
        } throws: { error in
            let text = "\(error)"
            return text.contains(reason) && text.contains("invalid topic")
        }
    }

    @Test(arguments: ["user.*", "user.>", ">", "*", "*.error", "a.*.c.>", "foo*"])
    func validPatterns(_ pattern: String) throws {
        try Topic.validatePattern(pattern)
    }

    @Test(arguments: [
        ("user.>.x", "'>' (token 2) must be the last token"),
        ("", "empty pattern"),
        ("a..b", "token 2 is empty"),
        ("a b", "token 1 'a b' contains white space"),
    ])
    func invalidPatterns(_ pattern: String, _ reason: String) {
        #expect {
            try Topic.validatePattern(pattern)
        } throws: { error in "\(error)".contains(reason) && "\(error)".contains("invalid pattern") }
    }
}

@Suite struct TopicMatchingTests {
    @Test func singleTokenWildcard() {
        #expect(matches("user.*", "user.created"))
        #expect(!matches("user.*", "user"))
        #expect(!matches("user.*", "user.a.b"))
        #expect(matches("*.error", "api.error"))
        #expect(!matches("*.error", "api.db.error"))
        #expect(matches("a.*.c", "a.b.c"))
    }

    @Test func fullWildcard() {
        #expect(matches("user.>", "user.a"))
        #expect(matches("user.>", "user.a.b"))
        #expect(!matches("user.>", "user"))
        #expect(matches(">", "anything"))
        #expect(matches(">", "any.thing.at.all"))
        #expect(!matches("a.>", "b.a"))
    }

    @Test func literalTokens() {
        #expect(matches("user.created", "user.created"))
        #expect(!matches("user.created", "user.created.x"))
        #expect(!matches("user.created", "user"))
        #expect(matches("foo*", "foo*"))
        #expect(!matches("foo*", "foobar"))
    }

    @Test func valueWithSeveralMatchingPatternsComesOnce() {
        let both = Box("both")
        let other = Box("other")
        var trie = TopicTrie<Box>()
        trie.insert("order.>", both)
        trie.insert("order.created", other)
        trie.insert("order.*", both)
        trie.insert("payment.>", both)
        let hits = trie.match("order.created")
        #expect(hits.map(\.name) == ["both", "other"])
        #expect(trie.match("payment.completed").map(\.name) == ["both"])
        #expect(trie.match("shipping.x").isEmpty)
    }

    @Test func patternsOverlapWhenOneTopicMatchesBoth() {
        for (a, b) in [("order.*", "*.created"), ("order.>", "order.created"), (">", "x"), ("a.*", "a.>"), ("a.b", "a.b")] {
            #expect(Topic.overlap(a, b) && Topic.overlap(b, a), "\(a) \(b)")
        }
        for (a, b) in [("order.*", "user.>"), ("a.>", "a"), ("a.*", "a.b.c"), ("a.b", "a.c"), ("a", "a.b")] {
            #expect(!Topic.overlap(a, b) && !Topic.overlap(b, a), "\(a) \(b)")
        }
    }

    @Test func aPatternCoversThoseWhoseTopicsItAllMatches() {
        for (wide, narrow) in [("order.>", "order.*"), ("order.>", "order.a.b"), ("*.x", "a.x"), (">", "*.>"), ("a.*", "a.*")] {
            #expect(Topic.pattern(wide, covers: narrow), "\(wide) \(narrow)")
        }
        for (wide, narrow) in [("order.*", "order.>"), ("a.b", "a.*"), ("order.>", "order"), ("a.*", "b.*"), ("*", ">")] {
            #expect(!Topic.pattern(wide, covers: narrow), "\(wide) \(narrow)")
        }
    }
}
