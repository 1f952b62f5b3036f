import Foundation
import SwitchboardCore
import SwitchboardJSON
import SwitchboardTopics
import Yams

extension Reader {
    /// The keys of a test file's own subscriber entry, beside `plugin:`.
    private static let entryKeys = ["name", "topics", "settings", "timeout", "memory", "allow", "on_failure"]

    /// Reads a test file's tree; nil when it has no subscriber to test.
    mutating func readTestFile(_ root: Node?, defaultConfiguration: String) -> PluginTestFile? {
        guard let root else {
            problem(nil, "the file is empty; it needs 'subscriber' (or 'plugin') and 'tests'")
            return nil
        }
        let fields = members(
            root, allowed: ["subscriber", "config", "plugin", "tests"] + Self.entryKeys, what: "a test file")
        var entry: Configuration.Subscriber?
        var line: Int?
        switch (fields["subscriber"], fields["plugin"]) {
        case let (node?, nil):
            line = node.mark?.line
            for key in Self.entryKeys where fields[key] != nil {
                problem(fields[key], "'\(key)' goes with 'plugin:'; with 'subscriber:' the configuration's entry sets it")
            }
            let configuration = fields["config"].flatMap { string($0, "config") }.map(resolve) ?? defaultConfiguration
            if let name = string(node, "subscriber") { entry = configurationEntry(name, in: configuration, at: node) }
        case let (nil, node?):
            line = node.mark?.line
            if let config = fields["config"] { problem(config, "'config' goes with 'subscriber:'; with 'plugin:' this file is the entry") }
            entry = ownEntry(fields, plugin: node)
        case (_?, _?):
            problem(root, "a test file has 'subscriber' or 'plugin', not both")
        case (nil, nil):
            problem(root, "a test file needs 'subscriber' (an entry of a configuration) or 'plugin' (a Lua file)")
        }
        subscriber = nil  // what follows is the tests' own
        guard let testsNode = fields["tests"] else {
            problem(root, "a test file needs 'tests', a list")
            return nil
        }
        guard let list = testsNode.sequence, !list.isEmpty else {
            problem(testsNode, "'tests' must be a list of at least one test")
            return nil
        }
        let tests = list.compactMap { readTest($0, topics: entry?.topics ?? []) }
        guard let entry else { return nil }
        return PluginTestFile(path: file, subscriber: entry, line: line, tests: tests)
    }

    /// The entry named `name` of the configuration at `path`.
    private mutating func configurationEntry(_ name: String, in path: String, at node: Node) -> Configuration.Subscriber? {
        let configuration: Configuration
        do {
            configuration = try Configuration.load(path: path, environment: environment)
        } catch {
            problems += error.problems
            problem(node, "subscriber '\(name)': the configuration \(path) is not valid; name another with 'config:'")
            return nil
        }
        guard let entry = configuration.subscribers.first(where: { $0.name == name }) else {
            let names = configuration.subscribers.map(\.name).joined(separator: ", ")
            problem(node, "no subscriber '\(name)' in \(path) (it has: \(names))")
            return nil
        }
        guard entry.sink == nil else {
            problem(node, "subscriber '\(name)' in \(path) is a sink, not a plugin: switchboard test runs Lua plugins")
            return nil
        }
        return entry
    }

    /// The entry a test file makes of its own `plugin:` and the keys beside it; its name is
    /// the plugin file's name by default, its topics `>` (every event) when it gives none.
    private mutating func ownEntry(_ fields: [String: Node], plugin: Node) -> Configuration.Subscriber? {
        var pairs: [(Node, Node)] = [(Node("plugin"), plugin)]
        for key in Self.entryKeys { if let value = fields[key] { pairs.append((Node(key), value)) } }
        if fields["name"] == nil {
            let base = ((plugin.scalar?.string ?? "plugin") as NSString).lastPathComponent
            let stem = (base as NSString).deletingPathExtension
            let name = String(stem.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "-" })
            pairs.append((Node("name"), Node(name.isEmpty ? "plugin" : name)))
        }
        if fields["topics"] == nil { pairs.append((Node("topics"), Node([Node(">")]))) }
        var names: [String: Int] = [:]
        return readSubscriber(Node.mapping(Node.Mapping(pairs)), names: &names)
    }

    private mutating func readTest(_ node: Node, topics: [String]) -> PluginTestFile.Test? {
        let before = problems.count
        let fields = members(node, allowed: ["name", "events", "expect", "seed"], what: "a test")
        guard let nameNode = fields["name"], let name = string(nameNode, "test name"), !name.isEmpty else {
            problem(node, "a test needs a 'name'")
            return nil
        }
        var steps: [PluginTestFile.Step] = []
        if let events = fields["events"] {
            if let list = events.sequence {
                let matching = topics.isEmpty ? nil : PatternSet(topics)
                steps = list.enumerated().compactMap { readStep($1, index: $0, topics: topics, matching: matching) }
            } else {
                problem(events, "test '\(name)': 'events' must be a list of steps")
            }
        }
        let seed = value(fields["seed"], "seed", "a whole number") { Int64($0) } ?? 0
        guard let expectNode = fields["expect"] else {
            problem(node, "test '\(name)' needs 'expect': publishes, prints, logs, failures, errors or dead_letters")
            return nil
        }
        let expect = readExpectations(expectNode, test: name)
        guard problems.count == before else { return nil }
        return PluginTestFile.Test(name: name, line: nameNode.mark?.line, seed: seed, steps: steps, expect: expect)
    }

    private mutating func readStep(_ node: Node, index: Int, topics: [String], matching: PatternSet?) -> PluginTestFile.Step? {
        let what = "events[\(index)]"
        if node.mapping?.contains(where: { $0.key.scalar?.string == "advance" }) == true {
            let fields = members(node, allowed: ["advance"], what: "\(what), an advance step")
            return value(fields["advance"], "\(what) advance", "a duration such as 250ms, 1s or 2m", ConfigValue.duration)
                .map(PluginTestFile.Step.advance)
        }
        let fields = members(node, allowed: ["topic", "data", "headers", "id", "time"], what: "\(what), an event step")
        guard let topicNode = fields["topic"], let topic = string(topicNode, "\(what) topic") else {
            if node.mapping != nil { problem(node, "\(what) needs a 'topic' (an event) or is { advance: D }") }
            return nil
        }
        do {
            try Topic.validate(topic)
        } catch {
            problem(topicNode, "\(what) topic: \(error)")
        }
        if topics.isEmpty {
            problem(topicNode, "\(what): the subscriber has no topics, so no event reaches it in a run; test a producer with advance steps")
        } else if let matching, !matching.matches(topic) {
            problem(topicNode, "\(what): topic '\(topic)' is not one the subscriber is bound to (\(topics.joined(separator: ", "))): in a run it would never reach the plugin")
        }
        var step = PluginTestFile.EventStep(topic: topic, data: fields["data"].map { json($0, "\(what) data") } ?? .null, headers: [:])
        if let headersNode = fields["headers"] {
            if case .object(let members) = json(headersNode, "\(what) headers"), members.values.allSatisfy({ $0.stringValue != nil }) {
                step.headers = Dictionary(uniqueKeysWithValues: members.map { ($0.key, $0.value.stringValue!) })
            } else {
                problem(headersNode, "\(what) headers must be a mapping of strings, such as { trace: abc }")
            }
        }
        step.id = value(fields["id"], "\(what) id", "an event id such as 3f2a9c1e0b7d4a58-1a", EventID.init)
        step.time = value(fields["time"], "\(what) time", "Unix seconds or RFC 3339 time such as 2026-01-01T00:00:00Z, before 2500", Self.time)
        return .event(step)
    }

    /// Unix seconds, as a number or as RFC 3339 text, from 1970 to 2500 (the virtual clock
    /// counts nanoseconds in 64 bits, which end in 2554).
    private static func time(_ text: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        var seconds = Double(text) ?? formatter.date(from: text)?.timeIntervalSince1970
        if seconds == nil {
            formatter.formatOptions.insert(.withFractionalSeconds)
            seconds = formatter.date(from: text)?.timeIntervalSince1970
        }
        guard let seconds, (0..<16_725_225_600).contains(seconds) else { return nil }
        return seconds
    }

    private mutating func readExpectations(_ node: Node, test: String) -> PluginTestFile.Expectations {
        let keys = ["publishes", "prints", "logs", "failures", "errors", "dead_letters"]
        let fields = members(node, allowed: keys, what: "test '\(test)' expect")
        if node.mapping?.isEmpty == true { problem(node, "test '\(test)': 'expect' is empty; give at least one of \(keys.joined(separator: ", "))") }
        var expect = PluginTestFile.Expectations()
        let count = { (text: String) in Int(text).flatMap { $0 >= 0 ? $0 : nil } }
        expect.failures = value(fields["failures"], "expect failures", "a whole number", count)
        expect.deadLetters = value(fields["dead_letters"], "expect dead_letters", "a whole number", count)
        if let prints = fields["prints"] { expect.prints = strings(prints, "expect prints") }
        if let errors = fields["errors"] { expect.errors = strings(errors, "expect errors") }
        if let publishes = fields["publishes"] {
            expect.publishes = list(publishes, "expect publishes") { reader, entry in
                let fields = reader.members(entry, allowed: ["topic", "data", "headers"], what: "an expected publish")
                guard let topicNode = fields["topic"], let topic = reader.string(topicNode, "expected publish topic") else {
                    reader.problem(entry, "an expected publish needs a 'topic'")
                    return nil
                }
                return PluginTestFile.ExpectedPublish(
                    topic: topic, data: fields["data"].map { reader.json($0, "expected data") },
                    headers: fields["headers"].map { reader.json($0, "expected headers") })
            }
        }
        if let logs = fields["logs"] {
            expect.logs = list(logs, "expect logs") { reader, entry in
                let fields = reader.members(entry, allowed: ["level", "message", "fields"], what: "an expected log line")
                let level = reader.value(fields["level"], "expected log level", "debug, info, warn or error") {
                    ["debug", "info", "warn", "error"].contains($0) ? $0 : nil
                }
                guard let level else {
                    if fields["level"] == nil { reader.problem(entry, "an expected log line needs a 'level': debug, info, warn or error") }
                    return nil
                }
                return PluginTestFile.ExpectedLog(
                    level: level, message: fields["message"].flatMap { reader.string($0, "expected log message") } ?? "",
                    fields: fields["fields"].map { reader.json($0, "expected log fields") })
            }
        }
        return expect
    }

    /// The entries of a list, each read by `entry`.
    private mutating func list<T>(_ node: Node, _ what: String, _ entry: (inout Reader, Node) -> T?) -> [T] {
        guard let sequence = node.sequence else {
            problem(node, "\(what) must be a list")
            return []
        }
        return sequence.compactMap { entry(&self, $0) }
    }
}
