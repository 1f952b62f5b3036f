import ArgumentParser
import Logging
import Foundation
import Switchboard

/// `switchboard run`: start every subscriber and route the events read from the input.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start every subscriber and route the events read from the input.",
        discussion: """
            Input is one JSON object per line: {"topic": "user.created", "data": ..., "headers": {...}} \
            (or, with --format line, "topic payload"). A bad line is reported with its number and skipped \
            (with --strict, it ends the run). At the end of the input, of --duration, or at SIGINT/SIGTERM, \
            subscribers drain, plugins shut down, and a summary goes to standard error. A flag overrides \
            the same setting in the configuration.

            Exit status: 0 done; 1 a runtime failure, or a bad line with --strict; 2 a usage or \
            configuration error; 3 events were lost (see --fail-on); 128 + N stopped by signal N \
            during start-up.

            Examples:
              switchboard run --config config/switchboard.yaml --report report.json < events.jsonl
              echo 'user.created {"email": "ann@example.com"}' | switchboard run --format line
              switchboard run --config config/dashboard.yaml --input none --duration 2s
              switchboard run --input none --metrics-listen 127.0.0.1:9464 --log-format json
            """
    )

    @Option(help: "The configuration file.")
    var config = defaultConfiguration

    @Option(help: "Where events come from: - (standard input), a file, or none.")
    var input = "-"

    @Option(help: "Stop after this long: 250ms, 5s, 2m, 1h, 7d.")
    var duration: String?

    @Option(help: "Write a JSON report of the counts here at exit.")
    var report: String?

    @Option(help: "How long subscribers may drain at exit (default: drain_timeout in the configuration, or 5s).")
    var drainTimeout: String?

    @Option(help: "How input lines are written: json or line (\"topic payload\").")
    var format = Feeder.Format.json

    @Flag(help: "Stop at the first bad input line, with exit status 1.")
    var strict = false

    @Option(help: ArgumentHelp(
        "Exit with status 3 when events had these outcomes: a comma list of dropped, abandoned, failed, or none.",
        discussion: "Default: dropped,abandoned with an input that ends (a file, or standard input); none with --input none."))
    var failOn: String?

    @Option(help: "Serve GET /metrics and GET /healthz on HOST:PORT (no authentication unless metrics.token is set: keep it on loopback).")
    var metricsListen: String?

    @Option(help: "Serve HTTP ingest (POST /publish, POST /publish/<topic>) on HOST:PORT; a token (ingest.http.token) is needed off loopback.")
    var ingestListen: String?

    @Option(help: "The lowest level logged: trace, debug, info, notice, warning, error, critical (default: log.level in the configuration, or info).")
    var logLevel: String?

    @Option(help: "How log lines are written: text or json (default: log.format in the configuration, or text).")
    var logFormat: Configuration.LogFormat?

    func validate() throws {
        for (flag, value) in [("--duration", duration), ("--drain-timeout", drainTimeout)] {
            if let value, ConfigValue.duration(value) == nil {
                throw ValidationError("\(flag) '\(value)' is not a duration such as 5s, 250ms or 2m")
            }
        }
        if let metricsListen, ConfigValue.hostAndPort(metricsListen) == nil {
            throw ValidationError("--metrics-listen '\(metricsListen)' is not HOST:PORT, such as 127.0.0.1:9464")
        }
        if let ingestListen, ConfigValue.hostAndPort(ingestListen) == nil {
            throw ValidationError("--ingest-listen '\(ingestListen)' is not HOST:PORT, such as 127.0.0.1:8080")
        }
        if let failOn, Self.losses(failOn) == nil {
            throw ValidationError("--fail-on '\(failOn)' is not a comma list of dropped, abandoned, failed, or none")
        }
        if input != "-", input != "none" {  // before anything starts: no subscriber runs for an input that is not there
            let descriptor = open(input, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw ValidationError("--input '\(input)': cannot open it: \(String(cString: strerror(errno)))")
            }
            close(descriptor)
        }
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)  // a closed standard output ends writes, not the process
        let loaded = try loadConfiguration(config)
        var options = Runtime.Options()
        let level = LogLevelSetting(.info)  // set by the runtime: the flag, else log.level, else info
        options.logLevel = level
        options.logLevelOverride = logLevel.flatMap(Logger.Level.init(rawValue:))
        let logLines = logFormat ?? loaded.log.format ?? .text
        LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, format: logLines, level: level) }
        var logger = Logger(label: "switchboard")
        logger.logLevel = .trace  // what the run says is never filtered out, as the plain lines are not
        // What the run says as it goes: plain lines, or log lines under --log-format json (the
        // summary table at the end stays a table).
        let tell: @Sendable (String, Logger.Level) -> Void = { [logger] line, level in
            guard logLines == .json else { return printDiagnostic(line) }
            let message = line.hasPrefix("switchboard: ") ? String(line.dropFirst("switchboard: ".count)) : line
            logger.log(level: level, "\(message)")
        }
        options.input = switch input {
        case "none": .none
        case "-": .standardInput
        default: .file(input)
        }
        options.format = format
        options.strict = strict
        options.duration = duration.flatMap(ConfigValue.duration)
        options.drainTimeout = drainTimeout.flatMap(ConfigValue.duration)
        options.metricsListen = metricsListen
        options.ingestListen = ingestListen
        options.handlesSignals = true
        let runtime = Runtime(
            configuration: loaded, options: options, say: { tell($0, .info) },
            onRejected: { [input] in tell("\(input == "-" ? "stdin" : input): line \($0.line): \($0.reason)", .warning) })
        let progress = StandardError.isTerminal ? Task { await Self.showProgress(runtime.router) } : nil
        let outcome: RunReport
        do {
            outcome = try await runtime.run()
        } catch {
            progress?.cancel()
            await progress?.value  // the live line is gone before the message
            if !error.message.isEmpty { tell(error.message, .error) }
            switch error.kind {
            case .invalid: throw ExitCode(2)
            case .failed: throw ExitCode(1)
            case .interrupted(let signal): throw ExitCode(128 + signal)
            }
        }
        progress?.cancel()
        await progress?.value
        printDiagnostic(outcome.summary)
        if let report {
            do {
                try outcome.document.serialized().write(toFile: report, atomically: true, encoding: .utf8)
            } catch {
                tell("cannot write the report to '\(report)': \(error)", .error)
                throw ExitCode(1)
            }
        }
        if outcome.stoppedAtBadLine {
            tell("switchboard: stopped at a bad input line (--strict)", .error)
            throw ExitCode(1)
        }
        let failing = failOn.flatMap(Self.losses) ?? (input == "none" ? [] : [.dropped, .abandoned])
        let losing = outcome.subscribers(with: failing)
        if !losing.isEmpty {
            let counts = outcome.stats.byName.filter { losing.contains($0.name) }.map { subscriber in
                let lost = [(RunReport.Loss.dropped, subscriber.dropped), (.abandoned, subscriber.abandoned), (.failed, subscriber.failed)]
                    .filter { failing.contains($0.0) && $0.1 > 0 }.map { "\($0.0.rawValue) \($0.1)" }
                return "\(subscriber.name) \(lost.joined(separator: ", "))"
            }
            tell("switchboard: events were lost (\(counts.joined(separator: "; "))): exit status 3; --fail-on none exits 0", .warning)
            throw ExitCode(3)
        }
    }

    /// `--fail-on`'s outcomes; nil when the list is not valid.
    private static func losses(_ list: String) -> Set<RunReport.Loss>? {
        if list == "none" { return [] }
        let words = list.split(separator: ",", omittingEmptySubsequences: false).map { RunReport.Loss(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        return words.isEmpty || words.contains(nil) ? nil : Set(words.compactMap { $0 })
    }

    /// Redraws a live line on the terminal every second until cancelled, then removes it:
    /// events per second in and out, queued, dropped, failed.
    private static func showProgress(_ router: Router) async {
        var last = router.stats()
        var lastTime = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let stats = router.stats()
            let now = ContinuousClock.now
            let seconds = Double((now - lastTime).components.attoseconds) / 1e18 + Double((now - lastTime).components.seconds)
            func done(_ stats: RouterStats) -> Int { stats.subscribers.reduce(0) { $0 + $1.handled + $1.failed } }
            let rateIn = Int(Double(stats.published - last.published) / max(seconds, 0.001))
            let rateOut = Int(Double(done(stats) - done(last)) / max(seconds, 0.001))
            let queued = stats.subscribers.reduce(0) { $0 + $1.queueDepth }
            let dropped = stats.subscribers.reduce(0) { $0 + $1.dropped }
            let failed = stats.subscribers.reduce(0) { $0 + $1.failed }
            if !Task.isCancelled {
                StandardError.showProgress("in \(rateIn)/s  out \(rateOut)/s  queued \(queued)  dropped \(dropped)  failed \(failed)")
            }
            (last, lastTime) = (stats, now)
        }
        StandardError.showProgress(nil)
    }
}

extension Feeder.Format: ExpressibleByArgument {}
