import Foundation
import SwitchboardCore
import SwitchboardJSON
import Yams

/// A plugin test file, `NAME.test.yaml`: the subscriber under test (an entry of a
/// configuration, or a `plugin:` of its own) and its tests, validated as strictly as a
/// configuration (docs/testing.md).
public struct PluginTestFile: Sendable {
    /// The file it was read from.
    public let path: String
    /// The subscriber under test, with its plugin, settings, limits and `on_failure`.
    public var subscriber: Configuration.Subscriber
    /// The line of `subscriber:` or `plugin:`: where a plugin that does not load is reported.
    public var line: Int?
    /// The tests, in file order.
    public var tests: [Test]

    /// One test: steps, then what they should have caused.
    public struct Test: Sendable {
        /// `name`.
        public var name: String
        /// The line of its `name`.
        public var line: Int?
        /// `seed`: what `math.random` starts from (default 0).
        public var seed: Int64
        /// `events`, in order.
        public var steps: [Step]
        /// `expect`.
        public var expect: Expectations
    }

    /// A step of a test.
    public enum Step: Sendable {
        /// An event handed to the plugin.
        case event(EventStep)
        /// `advance: D`: the virtual clock moves on, firing the timers that fall due.
        case advance(Duration)
    }

    /// `{topic, data, headers, id, time}`.
    public struct EventStep: Sendable {
        public var topic: String
        /// `data`: null when left out.
        public var data: JSON
        public var headers: [String: String]
        /// `id`, in the text form `prefix-counter`; a counter from 1 when left out.
        public var id: EventID?
        /// `time`, Unix seconds (written as a number or as RFC 3339 text); the virtual clock's
        /// time when left out.
        public var time: Double?
    }

    /// What a test expects; each is checked only when given.
    public struct Expectations: Sendable {
        /// The whole list of publishes, in order.
        public var publishes: [ExpectedPublish]?
        /// The whole list of printed lines.
        public var prints: [String]?
        /// The whole list of the plugin's log lines.
        public var logs: [ExpectedLog]?
        /// How many events failed, after retries.
        public var failures: Int?
        /// Substrings of the failure messages, one for each, in order.
        public var errors: [String]?
        /// How many events would go to the dead letter topic.
        public var deadLetters: Int?
    }

    /// `{topic, data, headers}`: the topic equal; data and headers, when given, matched as a subset.
    public struct ExpectedPublish: Sendable {
        public var topic: String
        public var data: JSON?
        public var headers: JSON?
    }

    /// `{level, message, fields}`: the level equal, the message a substring, the fields (when given) a subset.
    public struct ExpectedLog: Sendable {
        public var level: String
        public var message: String
        public var fields: JSON?
    }

    /// When a test's clock starts without an event `time`: 2026-01-01T00:00:00Z.
    public static let defaultStart: Double = 1_767_225_600

    /// Reads and validates a test file. `configuration` is where `subscriber:` looks when the
    /// file names no `config:` (the `--config` flag, else `config/switchboard.yaml`). Reports
    /// every problem at once, each with `file:line`; problems of the configuration it names
    /// carry that file's lines.
    public static func load(
        path: String, configuration: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> PluginTestFile {
        func failure(_ message: String) -> ConfigurationError {
            ConfigurationError(problems: [.init(file: path, line: nil, subscriber: nil, message: message)])
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw failure("cannot read the file") }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw failure("invalid YAML: \(error)")
        }
        var reader = Reader(file: path, environment: environment)
        let file = reader.readTestFile(root, defaultConfiguration: configuration)
        guard let file, reader.problems.isEmpty else {
            throw ConfigurationError(problems: reader.problems.isEmpty ? [failure("not a test file").problems[0]] : reader.problems)
        }
        return file
    }
}
