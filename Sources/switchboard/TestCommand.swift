import ArgumentParser
import Foundation
import Switchboard

/// `switchboard test`: run plugin test files.
struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run plugin tests: events handed to a plugin, and the publishes, prints and logs they should cause.",
        discussion: """
            Each NAME.test.yaml names the subscriber it tests (an entry of a configuration, or a plugin file \
            with its settings) and lists tests: event steps, { advance: 1s } steps on a virtual clock, and \
            what is expected. Every test runs in a fresh Lua state under the subscriber's sandbox and limits; \
            nothing is routed and nothing waits on the wall clock. One line per test, ok or FAIL (with \
            the first difference), then "N passed, M failed". See docs/testing.md.

            Exit status: 0 every test passed; 1 a test failed; 2 a test file is invalid (an unknown key, a \
            missing subscriber, a plugin that does not load).

            Examples:
              switchboard test
              switchboard test plugins/registration --junit out/plugin-tests.xml
              switchboard test plugins/ecommerce/shop.test.yaml --config config/ecommerce.yaml
            """
    )

    @Argument(help: "Test files, or folders searched for *.test.yaml (default: plugins/).")
    var paths: [String] = []

    @Option(help: "The configuration a test file's 'subscriber:' is found in when the file names no 'config:' (default: config/switchboard.yaml).")
    var config: String?

    @Option(help: "Also write a JUnit XML report to this file.")
    var junit: String?

    func run() async throws {
        // os.date formats in the local time zone: UTC makes a test's output the same on every machine.
        setenv("TZ", "UTC", 1)
        tzset()
        var reports: [PluginTestReport] = []
        for (path, problem) in Self.testFiles(in: paths.isEmpty ? ["plugins"] : paths) {
            let report: PluginTestReport
            if let problem {
                report = PluginTestReport(path: path, problem: problem)
            } else {
                do {
                    report = PluginTestRunner.run(try PluginTestFile.load(path: path, configuration: config ?? defaultConfiguration))
                } catch {
                    report = PluginTestReport(path: path, problem: "\(error)")
                }
            }
            writeOutput(report.results.flatMap(\.lines))
            if let problem = report.problem { printDiagnostic(problem) }
            reports.append(report)
        }
        let results = reports.flatMap(\.results)
        let failed = results.filter { !$0.passed }.count
        writeOutput(["\(results.count - failed) passed, \(failed) failed"])
        if let junit {
            do {
                try JUnitReport.xml(reports).write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                printDiagnostic("--junit \(junit): cannot write the report: \(error.localizedDescription)")
                throw ExitCode(2)
            }
        }
        if reports.contains(where: { $0.problem != nil }) { throw ExitCode(2) }
        if failed > 0 { throw ExitCode(1) }
    }

    /// The test files: each file named, and every `*.test.yaml` under each folder, sorted; a
    /// path that does not exist, or a folder without test files, with its problem.
    static func testFiles(in paths: [String]) -> [(path: String, problem: String?)] {
        paths.flatMap { path -> [(path: String, problem: String?)] in
            var folder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &folder) else {
                return [(path, "\(path): no such file or folder")]
            }
            guard folder.boolValue else { return [(path, nil)] }
            let found = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                .filter { $0.hasSuffix(".test.yaml") }.sorted()
                .map { (path as NSString).appendingPathComponent($0) }
            if found.isEmpty { return [(path, "\(path): no *.test.yaml files in this folder")] }
            return found.map { ($0, nil) }
        }
    }

    /// Writes lines to standard output, at once: a problem written to standard error in between keeps its place.
    private func writeOutput(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        _ = Array((lines.joined(separator: "\n") + "\n").utf8).withUnsafeBytes { writeAll($0, to: STDOUT_FILENO) }
    }
}
