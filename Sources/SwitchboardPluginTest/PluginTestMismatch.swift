import SwitchboardConfig
import SwitchboardJSON
import SwitchboardLua

/// One expectation of a test that the run did not meet: which, where it first differs, and
/// the whole expected and actual values as JSON.
public struct PluginTestMismatch: Sendable {
    /// `publishes`, `prints`, `logs`, `failures`, `errors`, `dead_letters`, or `record`.
    public let expectation: String
    /// The first difference.
    public let difference: JSONDifference
    /// What the test file expects, as JSON.
    public let expected: JSON
    /// What happened, as JSON.
    public let actual: JSON

    /// The lines a failed test prints for it, indented under the test's line: the whole values
    /// too when they are lists (a count says it all in its first line).
    public var lines: [String] {
        let first = "  \(expectation): first difference \(difference)"
        guard case .array = expected else { return [first] }
        return [first, "    expected: \(expected.serialized())", "    actual:   \(actual.serialized())"]
    }
}

extension PluginTestFile.Expectations {
    /// What the record does not meet, in the order of the expectations' keys.
    func mismatches(in record: LuaTestRun.Record) -> [PluginTestMismatch] {
        var found: [PluginTestMismatch] = []
        func check(_ name: String, _ expected: JSON, _ actual: JSON, _ difference: JSONDifference?) {
            if let difference { found.append(PluginTestMismatch(expectation: name, difference: difference, expected: expected, actual: actual)) }
        }
        if let publishes {
            let expected = JSON.array(publishes.map(\.json))
            let actual = JSON.array(record.publishes.map(\.json))
            check("publishes", expected, actual, Self.listDifference(publishes, record.publishes) { wanted, made, place in
                if wanted.topic != made.topic {
                    return JSONDifference(path: place + ".topic", expected: JSON.string(wanted.topic).serialized(), actual: JSON.string(made.topic).serialized())
                }
                if let data = wanted.data, let difference = JSONDifference.subset(expected: data, actual: made.data, path: place + ".data") {
                    return difference
                }
                return wanted.headers.flatMap { JSONDifference.subset(expected: $0, actual: made.json["headers"] ?? [:], path: place + ".headers") }
            })
        }
        if let prints {
            check("prints", .array(prints.map(JSON.string)), .array(record.prints.map(JSON.string)),
                  Self.listDifference(prints, record.prints) { wanted, made, place in
                      wanted == made ? nil : JSONDifference(path: place, expected: JSON.string(wanted).serialized(), actual: JSON.string(made).serialized())
                  })
        }
        if let logs {
            check("logs", .array(logs.map(\.json)), .array(record.logs.map(\.json)),
                  Self.listDifference(logs, record.logs) { wanted, made, place in
                      if wanted.level != made.level {
                          return JSONDifference(path: place + ".level", expected: JSON.string(wanted.level).serialized(), actual: JSON.string(made.level).serialized())
                      }
                      if !made.message.contains(wanted.message) {
                          return JSONDifference(path: place + ".message", expected: "text containing \(JSON.string(wanted.message).serialized())", actual: JSON.string(made.message).serialized())
                      }
                      return wanted.fields.flatMap { JSONDifference.subset(expected: $0, actual: made.fields, path: place + ".fields") }
                  })
        }
        if let failures, failures != record.failures {
            check("failures", .int(Int64(failures)), .int(Int64(record.failures)), JSONDifference(path: "", expected: "\(failures)", actual: "\(record.failures)"))
        }
        if let errors {
            check("errors", .array(errors.map(JSON.string)), .array(record.errors.map(JSON.string)),
                  Self.listDifference(errors, record.errors) { wanted, made, place in
                      made.contains(wanted) ? nil
                          : JSONDifference(path: place, expected: "a message containing \(JSON.string(wanted).serialized())", actual: JSON.string(made).serialized())
                  })
        }
        if let deadLetters, deadLetters != record.deadLetters {
            check("dead_letters", .int(Int64(deadLetters)), .int(Int64(record.deadLetters)),
                  JSONDifference(path: "", expected: "\(deadLetters)", actual: "\(record.deadLetters)"))
        }
        if let reason = record.cutOff {
            check("record", .string("a test of a few events"), .string(reason),
                  JSONDifference(path: "", expected: "a test of a few events", actual: "\(reason): the run was cut short"))
        }
        return found
    }

    /// The first difference between two whole lists: in an entry (as `entry` compares them), or in their lengths.
    private static func listDifference<Wanted, Made>(
        _ wanted: [Wanted], _ made: [Made], _ entry: (Wanted, Made, String) -> JSONDifference?
    ) -> JSONDifference? {
        for index in 0..<min(wanted.count, made.count) {
            if let difference = entry(wanted[index], made[index], "[\(index)]") { return difference }
        }
        if made.count > wanted.count { return JSONDifference(path: "[\(wanted.count)]", expected: "no more (\(wanted.count) in all)", actual: "\(made.count - wanted.count) more") }
        if wanted.count > made.count { return JSONDifference(path: "[\(made.count)]", expected: "\(wanted.count - made.count) more", actual: "none (\(made.count) in all)") }
        return nil
    }
}

extension PluginTestFile.ExpectedPublish {
    /// As the test file gives it.
    var json: JSON {
        var object: [(String, JSON)] = [("topic", .string(topic))]
        if let data { object.append(("data", data)) }
        if let headers { object.append(("headers", headers)) }
        return .object(.init(object, uniquingKeysWith: { first, _ in first }))
    }
}

extension PluginTestFile.ExpectedLog {
    var json: JSON {
        var object: [(String, JSON)] = [("level", .string(level)), ("message", .string(message))]
        if let fields { object.append(("fields", fields)) }
        return .object(.init(object, uniquingKeysWith: { first, _ in first }))
    }
}

extension LuaTestRun.Publish {
    /// `{topic, data, headers}`, headers sorted (left out when there are none).
    var json: JSON {
        var object: [(String, JSON)] = [("topic", .string(topic)), ("data", data)]
        if !headers.isEmpty {
            object.append(("headers", .object(sortingKeysOf: headers)))
        }
        return .object(.init(object, uniquingKeysWith: { first, _ in first }))
    }
}

extension LuaTestRun.LogLine {
    /// `{level, message, fields}`, fields left out when there are none.
    var json: JSON {
        var object: [(String, JSON)] = [("level", .string(level)), ("message", .string(message))]
        if fields != [:] { object.append(("fields", fields)) }
        return .object(.init(object, uniquingKeysWith: { first, _ in first }))
    }
}
