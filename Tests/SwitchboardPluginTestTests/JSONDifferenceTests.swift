import Switchboard
import Testing

@Suite struct JSONDifferenceTests {
    @Test func anObjectMatchesWhenItHoldsTheExpectedKeysRecursively() {
        let actual: JSON = ["to": "ann@example.com", "from": "shop", "meta": ["tries": 1, "tags": ["a"]]]
        #expect(JSONDifference.subset(expected: ["to": "ann@example.com"], actual: actual) == nil)
        #expect(JSONDifference.subset(expected: ["meta": ["tries": 1]], actual: actual) == nil)
        #expect(JSONDifference.subset(expected: [:], actual: actual) == nil)
        #expect(JSONDifference.subset(expected: ["meta": ["tries": 2]], actual: actual, path: "[0].data")
            == JSONDifference(path: "[0].data.meta.tries", expected: "2", actual: "1"))
        #expect(JSONDifference.subset(expected: ["meta": ["retry": true]], actual: actual)
            == JSONDifference(path: ".meta.retry", expected: "true", actual: "no such key"))
        #expect(JSONDifference.subset(expected: ["to": ["name": "ann"]], actual: actual)?.path == ".to")
    }

    @Test func arraysCompareExactlyWholeAndElementByElement() {
        let actual: JSON = ["items": [["id": 1, "qty": 2], ["id": 2, "qty": 1]]]
        #expect(JSONDifference.subset(expected: actual, actual: actual) == nil)
        // An object inside an array is not a subset: its extra key is a difference.
        #expect(JSONDifference.subset(expected: ["items": [["id": 1], ["id": 2]]], actual: actual)?.path == ".items[0].qty")
        #expect(JSONDifference.subset(expected: ["items": [["id": 1, "qty": 2]]], actual: actual)
            == JSONDifference(path: ".items", expected: "1 elements", actual: "2"))
        #expect(JSONDifference.subset(expected: [1, 2, 3], actual: [1, 3, 2])?.path == "[1]")
        #expect(JSONDifference.subset(expected: [], actual: [:]) != nil)  // an empty array is not an empty object
    }

    @Test func integersStayDistinctFromFloats() {
        #expect(JSONDifference.subset(expected: ["count": 5], actual: ["count": .double(5)])
            == JSONDifference(path: ".count", expected: "5 (an integer)", actual: "5.0 (a float)"))
        #expect(JSONDifference.subset(expected: .double(1.5), actual: .double(1.5)) == nil)
        #expect(JSONDifference.subset(expected: "5", actual: 5) == JSONDifference(path: "", expected: "\"5\"", actual: "5"))
        #expect(JSONDifference.subset(expected: nil, actual: false) != nil)
    }

    @Test func oddKeysAreQuotedInThePath() {
        #expect(JSONDifference.subset(expected: ["a b": 1], actual: ["a b": 2])?.path == #"["a b"]"#)
    }
}
