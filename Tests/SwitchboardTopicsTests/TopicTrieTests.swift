import Testing
import SwitchboardTopics

@Suite struct TopicTrieTests {
    @Test func aCopyIsAValueOfItsOwn() {
        var original = TopicTrie<Box>()
        let shared = Box("shared")
        original.insert("a.*", shared)
        var copy = original
        let onlyCopy = Box("copy")
        let onlyOriginal = Box("original")
        copy.insert("a.b", onlyCopy)
        copy.insert("c.>", onlyCopy)
        original.insert("a.b", onlyOriginal)
        original.insert("d", onlyOriginal)
        #expect(original.match("a.b").map(\.name) == ["shared", "original"])
        #expect(copy.match("a.b").map(\.name) == ["shared", "copy"])
        #expect(original.match("c.x").isEmpty && copy.match("c.x").map(\.name) == ["copy"])
        #expect(original.match("d").map(\.name) == ["original"] && copy.match("d").isEmpty)
    }
}
