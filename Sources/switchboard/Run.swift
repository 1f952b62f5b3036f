import ArgumentParser
import OrderedCollections
import Foundation
import Switchboard

/// `switchboard run`: start every subscriber and route the events read from the input.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start every subscriber and route the events read from the input.",
        discussion: """
            Input is one JSON object per line: {"topic": "user.created", "data": ..., "headers": {...}} \\
            (or, with --format line, "topic payload"). A bad line is reported with its number and skipped \\
            (with --strict, it ends the run). At the end of the input, of --duration, or at SIGINT/SIGTERM, \\
            subscribers drain, plugins shut down, and a summary goes to standard error. A flag overrides \\
            the same setting in the configuration.

            Examples:
              switchboard run --config config/switchboard.yaml --report report.json < events.jsonl
              echo 'user.created {"email": "ann@example.com"}' | switchboard run --format line
              switchboard run --config config/dashboard.yaml --input none --duration 2s
            """
    )

    @Option(help: "The configuration file.")
    var config = "config/switchboard.yaml"

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

    func validate() throws {
        for (flag, value) in [("--duration", duration), ("--drain-timeout", drainTimeout)] {
            if let value, ConfigValue.duration(value) == nil {
                throw ValidationError("\(flag) '\(value)' is not a duration such as 5s, 250ms or 2m")
            }
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)  // a closed standard output ends writes, not the process
        let signals = Signals()
        let loaded = try loadConfiguration(config)
        let router = Router()
        let deployment: Deployment
        do {
            deployment = try Deployment(router: router, configuration: loaded)
        } catch {
            printDiagnostic("\(config): \(error)")
            throw ExitCode(2)
        }
        let flagDrainTimeout = drainTimeout.flatMap(ConfigValue.duration)
        let reloads = Task {
            for await _ in signals.hangups {
                do {
                    let summary = try await deployment.reload(drainTimeout: flagDrainTimeout)
                    printDiagnostic("switchboard: reloaded \(config): \(summary)")
                } catch {
                    printDiagnostic("switchboard: reload of \(config) failed, nothing changed:\n\(error)")
                }
            }
        }
        defer { reloads.cancel() }
        printDiagnostic("switchboard: \(loaded.subscribers.count) subscribers running")
        var outcome = Feeder.Outcome()
        let end = duration.flatMap(ConfigValue.duration).map { ContinuousClock.now + $0 }
        if input == "none" {
            await withTaskGroup(of: Void.self) { group in  // until --duration or a signal
                group.addTask { await signals.wait() }
                if let end { group.addTask { try? await Task.sleep(until: end, clock: .continuous) } }
                await group.next()
                group.cancelAll()
            }
        } else {
            let descriptor = input == "-" ? STDIN_FILENO : open(input, O_RDONLY)
            guard descriptor >= 0 else {
                printDiagnostic("cannot open input '\(input)'")
                await router.shutdown(drainTimeout: .zero)
                throw ExitCode(1)
            }
            let feeder = Feeder(router: router, format: format, strict: strict)
            outcome = await Self.feed(feeder, descriptor: descriptor, until: end, signals: signals)
        }
        await router.shutdown(drainTimeout: flagDrainTimeout ?? deployment.configuration.drainTimeout ?? .seconds(5))
        let stats = router.stats()
        printDiagnostic(Self.summary(stats, rejected: outcome.rejected))
        if let report {
            do {
                try Self.reportDocument(stats, rejected: outcome.rejected).serialized()
                    .write(toFile: report, atomically: true, encoding: .utf8)
            } catch {
                printDiagnostic("cannot write the report to '\(report)': \(error)")
                throw ExitCode(1)
            }
        }
        if outcome.stoppedAtBadLine {
            printDiagnostic("switchboard: stopped at a bad input line (--strict)")
            throw ExitCode(1)
        }
    }

    /// Feeds the input on its own thread (reads block), until its end, `end` or a signal.
    private static func feed(
        _ feeder: Feeder, descriptor: Int32, until end: ContinuousClock.Instant?, signals: Signals
    ) async -> Feeder.Outcome {
        await withTaskGroup(of: Feeder.Outcome?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    Thread.detachNewThread {
                        var feeder = feeder
                        continuation.resume(returning: feeder.feed(descriptor: descriptor))
                    }
                }
            }
            if let end {
                group.addTask {
                    try? await Task.sleep(until: end, clock: .continuous)
                    return nil
                }
            }
            group.addTask {
                await signals.wait()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            // At --duration or a signal the feeder stops at its next publish, once shutdown
            // began; a feeder waiting on an idle input is left behind, and ends with the process.
            return first ?? Feeder.Outcome()
        }
    }

    /// The table on standard error at exit.
    static func summary(_ stats: RouterStats, rejected: Int) -> String {
        let columns = ["received", "handled", "failed", "dropped", "abandoned"]
        let width = max(10, stats.subscribers.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ count: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, count - text.count))
            return left ? text + fill : fill + text
        }
        var lines = [pad("subscriber", width, left: true) + columns.map { pad($0, 10) }.joined()]
        for subscriber in stats.subscribers {
            let values = [subscriber.received, subscriber.handled, subscriber.failed, subscriber.dropped, subscriber.abandoned]
            lines.append(pad(subscriber.name, width, left: true) + values.map { pad(String($0), 10) }.joined())
        }
        lines.append("published \(stats.published), rejected \(rejected)")
        return lines.joined(separator: "\n")
    }

    /// The `--report` document. A name that ran twice (removed by a reload, then added back)
    /// reports the sum of both.
    static func reportDocument(_ stats: RouterStats, rejected: Int) -> JSON {
        var subscribers = OrderedDictionary<String, [Int]>()
        for subscriber in stats.subscribers {
            let counts = [subscriber.received, subscriber.handled, subscriber.failed, subscriber.dropped, subscriber.abandoned]
            subscribers[subscriber.name] = zip(subscribers[subscriber.name] ?? [0, 0, 0, 0, 0], counts).map(+)
        }
        return [
            "published": .int(Int64(stats.published)), "rejected": .int(Int64(rejected)),
            "subscribers": .object(subscribers.mapValues { counts in
                .object(.init(uniqueKeysWithValues: zip(["received", "handled", "failed", "dropped", "abandoned"], counts.map { .int(Int64($0)) })))
            }),
        ]
    }
}
