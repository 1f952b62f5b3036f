import SwitchboardConfig
import SwitchboardCore
import SwitchboardLua
import SwitchboardRuntime

/// Runs the tests of plugin test files (`switchboard test`): each test in a fresh Lua state
/// of the subscriber under test, on a virtual clock, its publishes, prints and logs recorded
/// and compared with what the test expects.
public enum PluginTestRunner {
    /// Runs every test of `file`, in order. A plugin that does not load, or whose `init`
    /// fails, makes the file invalid: the report then holds that problem, with `file:line`.
    public static func run(_ file: PluginTestFile) -> PluginTestReport {
        let lua = file.subscriber.lua
        var results: [PluginTestResult] = []
        for test in file.tests {
            let started = ContinuousClock.now
            let run: LuaTestRun
            do {
                run = try LuaTestRun(lua, startingAt: start(of: test), seed: test.seed)
            } catch {
                let place = file.line.map { "\(file.path):\($0)" } ?? file.path
                return PluginTestReport(
                    path: file.path, results: results,
                    problem: "\(place): subscriber '\(lua.name)', test '\(test.name)': \(error)")
            }
            var sequence: UInt64 = 0
            for step in test.steps {
                switch step {
                case .event(let event):
                    sequence += 1
                    run.handle(Event(
                        topic: event.topic, data: event.data, id: event.id ?? EventID(prefix: 0, sequence: sequence),
                        time: event.time ?? run.now, headers: event.headers))
                case .advance(let duration):
                    run.advance(by: duration)
                }
            }
            run.finish()
            let record = run.record
            results.append(PluginTestResult(
                file: file.path, name: test.name, line: test.line, mismatches: test.expect.mismatches(in: record),
                notes: record.notes, duration: ContinuousClock.now - started))
        }
        return PluginTestReport(path: file.path, results: results, problem: nil)
    }

    /// Where a test's clock starts: its first event's `time`, or 2026-01-01T00:00:00Z.
    private static func start(of test: PluginTestFile.Test) -> Double {
        for case .event(let event) in test.steps { return event.time ?? PluginTestFile.defaultStart }
        return PluginTestFile.defaultStart
    }
}

/// What running one test file gave: its results, or why it could not run.
public struct PluginTestReport: Sendable {
    /// The test file.
    public let path: String
    /// The tests that ran, in order.
    public var results: [PluginTestResult]
    /// Why the file is invalid (exit status 2), with `file:line`; nil when its tests ran.
    public var problem: String?

    /// A file that could not be read or validated.
    public init(path: String, problem: String) {
        self.init(path: path, results: [], problem: problem)
    }

    init(path: String, results: [PluginTestResult], problem: String?) {
        self.path = path
        self.results = results
        self.problem = problem
    }
}

/// One test's outcome.
public struct PluginTestResult: Sendable {
    /// The test file.
    public let file: String
    /// The test's name.
    public let name: String
    /// The line of its name.
    public let line: Int?
    /// The expectations it did not meet; none when it passed.
    public let mismatches: [PluginTestMismatch]
    /// What Switchboard logged about the plugin during the test (a failed call, a restart).
    public let notes: [String]
    /// How long it took on the wall clock.
    public let duration: Duration

    /// True when every expectation was met.
    public var passed: Bool { mismatches.isEmpty }

    /// The most notes a failure shows.
    private static let shownNotes = 10

    /// `ok - file: name`, or `FAIL - file: name` followed by each mismatch and what
    /// Switchboard logged meanwhile.
    public var lines: [String] {
        guard !passed else { return ["ok - \(file): \(name)"] }
        var lines = ["FAIL - \(file): \(name)"] + mismatches.flatMap(\.lines)
        if !notes.isEmpty {
            lines.append("  switchboard logged:")
            lines += notes.prefix(Self.shownNotes).map { "    \($0.split(separator: "\n", maxSplits: 1).first ?? "")" }
            if notes.count > Self.shownNotes { lines.append("    (\(notes.count - Self.shownNotes) more)") }
        }
        return lines
    }
}
