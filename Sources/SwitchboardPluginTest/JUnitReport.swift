/// The JUnit XML form of test reports, as CI systems read it: a `testsuite` per file, a
/// `testcase` per test with a `failure` per unmet test, and an invalid file as one testcase
/// with an `error`.
public enum JUnitReport {
    /// The whole document.
    public static func xml(_ reports: [PluginTestReport]) -> String {
        var total = (tests: 0, failures: 0, errors: 0, seconds: 0.0)
        var suites: [String] = []
        for report in reports {
            let failures = report.results.filter { !$0.passed }.count
            let errors = report.problem == nil ? 0 : 1
            let seconds = report.results.reduce(0) { $0 + $1.duration.seconds }
            let tests = report.results.count + errors
            total = (total.tests + tests, total.failures + failures, total.errors + errors, total.seconds + seconds)
            var suite = ["  <testsuite name=\(attribute(report.path)) tests=\"\(tests)\" failures=\"\(failures)\" errors=\"\(errors)\" time=\"\(format(seconds))\">"]
            for result in report.results {
                let line = result.line.map { " line=\"\($0)\"" } ?? ""
                let open = "    <testcase classname=\(attribute(report.path)) name=\(attribute(result.name)) file=\(attribute(report.path))\(line) time=\"\(format(result.duration.seconds))\""
                if result.passed {
                    suite.append(open + "/>")
                } else {
                    let summary = result.mismatches.map { "\($0.expectation): first difference \($0.difference)" }.joined(separator: "; ")
                    suite.append(open + ">")
                    suite.append("      <failure message=\(attribute(summary)) type=\"expectation\">\(text(result.lines.joined(separator: "\n")))</failure>")
                    suite.append("    </testcase>")
                }
            }
            if let problem = report.problem {
                suite.append("    <testcase classname=\(attribute(report.path)) name=\"the test file is valid\" file=\(attribute(report.path))>")
                suite.append("      <error message=\(attribute(problem)) type=\"invalid\">\(text(problem))</error>")
                suite.append("    </testcase>")
            }
            suite.append("  </testsuite>")
            suites += suite
        }
        return (["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                 "<testsuites name=\"switchboard test\" tests=\"\(total.tests)\" failures=\"\(total.failures)\" errors=\"\(total.errors)\" time=\"\(format(total.seconds))\">"]
                + suites + ["</testsuites>"]).joined(separator: "\n") + "\n"
    }

    /// Character data: markup escaped, and the characters XML 1.0 cannot hold (control
    /// characters a plugin printed) written as `\u{..}`; in an attribute, line breaks and tabs
    /// as character references, which a parser keeps.
    static func text(_ value: String, inAttribute: Bool = false) -> String {
        var escaped = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "\t", "\n", "\r":
                if inAttribute { escaped += "&#\(scalar.value);" } else { escaped.unicodeScalars.append(scalar) }
            case _ where scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value):
                escaped += "\\u{\(String(scalar.value, radix: 16))}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// A quoted attribute value.
    static func attribute(_ value: String) -> String { "\"" + text(value, inAttribute: true) + "\"" }

    private static func format(_ seconds: Double) -> String {
        let millis = Int((seconds * 1000).rounded())
        return "\(millis / 1000).\(String(millis % 1000).leftPadded(to: 3))"
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
