import SwitchboardJSON

/// Where an actual value first departs from an expected one, as a test failure shows it.
public struct JSONDifference: Sendable, Equatable, CustomStringConvertible {
    /// The path from the expectation's root: `[0].data.to`.
    public let path: String
    /// What the expectation wanted there.
    public let expected: String
    /// What was there.
    public let actual: String

    package init(path: String, expected: String, actual: String) {
        self.path = path
        self.expected = expected
        self.actual = actual
    }

    public var description: String { "at \(path.isEmpty ? "the top" : path): expected \(expected), got \(actual)" }

    /// The first difference between `expected` and `actual`, or nil when they match: an object
    /// in the expectation needs its keys present with matching values, recursively; arrays,
    /// strings, numbers, booleans and null compare exactly (arrays element by element, whole),
    /// and an integer never equals a float.
    public static func subset(expected: JSON, actual: JSON, path: String = "") -> JSONDifference? {
        first(expected: expected, actual: actual, path: path, exact: false)
    }

    private static func first(expected: JSON, actual: JSON, path: String, exact: Bool) -> JSONDifference? {
        switch (expected, actual) {
        case let (.object(wanted), .object(found)):
            for (key, value) in wanted {
                let place = path + member(key)
                guard let present = found[key] else { return JSONDifference(path: place, expected: describe(value, beside: nil), actual: "no such key") }
                if let difference = first(expected: value, actual: present, path: place, exact: exact) { return difference }
            }
            if exact, let extra = found.keys.first(where: { wanted[$0] == nil }) {
                return JSONDifference(path: path + member(extra), expected: "no such key (arrays compare exactly)", actual: describe(found[extra]!, beside: nil))
            }
            return nil
        case let (.array(wanted), .array(found)):
            for index in 0..<min(wanted.count, found.count) {
                if let difference = first(expected: wanted[index], actual: found[index], path: "\(path)[\(index)]", exact: true) {
                    return difference
                }
            }
            guard wanted.count != found.count else { return nil }
            return JSONDifference(path: path, expected: "\(wanted.count) elements", actual: "\(found.count)")
        default:
            guard expected != actual else { return nil }
            return JSONDifference(path: path, expected: describe(expected, beside: actual), actual: describe(actual, beside: expected))
        }
    }

    /// The JSON text of `value`; a number says which kind it is when the other value is a
    /// number of the other kind (`5 (an integer)` against `5.0 (a float)`).
    static func describe(_ value: JSON, beside other: JSON?) -> String {
        switch (value, other) {
        case (.int, .double?): "\(value.serialized()) (an integer)"
        case (.double, .int?): "\(value.serialized()) (a float)"
        default: value.serialized()
        }
    }

    /// `.key`, or `["a key"]` for a key that is not a plain name.
    static func member(_ key: String) -> String {
        let plain = !key.isEmpty && key.first.map { $0.isLetter || $0 == "_" } == true
            && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        return plain ? ".\(key)" : "[\(JSON.string(key).serialized())]"
    }
}
