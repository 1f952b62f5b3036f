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

            Examples:
              switchboard run --config config/switchboard.yaml --report report.json < events.jsonl
              echo 'user.created {"email": "ann@example.com"}' | switchboard run --format line
              switchboard run --config config/dashboard.yaml --input none --duration 2s
              switchboard run --input none --metrics-listen 127.0.0.1:9464 --log-format json
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

    @Option(help: "Serve GET /metrics and GET /healthz on HOST:PORT (no authentication: keep it on loopback).")
    var metricsListen: String?

    @Option(help: "The lowest level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "How log lines are written: text or json.")
    var logFormat = StandardErrorLogHandler.Format.text

    func validate() throws {
        for (flag, value) in [("--duration", duration), ("--drain-timeout", drainTimeout)] {
            if let value, ConfigValue.duration(value) == nil {
                throw ValidationError("\(flag) '\(value)' is not a duration such as 5s, 250ms or 2m")
            }
        }
        if let metricsListen, ConfigValue.hostAndPort(metricsListen) == nil {
            throw ValidationError("--metrics-listen '\(metricsListen)' is not HOST:PORT, such as 127.0.0.1:9464")
        }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)  // a closed standard output ends writes, not the process
        LoggingSystem.bootstrap { [logFormat, logLevel] label in
            StandardErrorLogHandler(label: label, format: logFormat, logLevel: Logger.Level(rawValue: logLevel)!)
        }
        let signals = await Signals()
        let loaded = try loadConfiguration(config)
        let router = Router()
        signals.interruptStartUp { router.interruptStarts() }
        let rejected = Tally()
        let health = Health(router: router, budgets: Self.budgets(loaded))
        var metricsServer: Task<Void, Never>?
        var metrics: RouterMetrics?
        if let listen = metricsListen ?? loaded.metricsListen, let (host, port) = ConfigValue.hostAndPort(listen) {
            let routerMetrics = RouterMetrics(router: router)
            routerMetrics.addReadings { [MetricReading(.counter, "switchboard_input_rejected_total", value: rejected.value)] }
            metrics = routerMetrics
            metricsServer = try await Self.serveMetrics(
                MetricsServer(
                    metrics: routerMetrics, health: health, host: host, port: port, logger: Logger(label: "switchboard.metrics")))
        }
        defer { metricsServer?.cancel() }
        let journal = try loaded.journal.map { settings in
            do {
                return try Journal(folder: settings.path, fsync: settings.fsync, retention: settings.retention)
            } catch {
                printDiagnostic("\(config): cannot open the journal at \(settings.path): \(error)")
                throw ExitCode(1)
            }
        }
        if let journal {  // every accepted event, before any subscriber; spilling ones read it back
            journal.attach(to: router)
            router.spill(to: journal)
        }
        // The exporter subscribes before the plugins start, so it sees what they publish from the
        // first event; imports start once the plugins are routed to, before the run reports ready.
        var bridge: NATSBridge?
        if let settings = loaded.nats {
            do {
                bridge = try NATSBridge(
                    settings: settings, instance: loaded.instance, router: router, logger: Logger(label: "switchboard.nats"))
            } catch {
                printDiagnostic("\(config): \(error)")
                await router.shutdown(drainTimeout: .zero)
                throw ExitCode(1)
            }
        }
        if let bridge {
            metrics?.addReadings { Self.readings(bridge.stats()) }
            health.addComponent("nats") { bridge.stats().state }
        }
        let started = Result { () throws -> Deployment in
            let deployment = try Deployment(router: router, configuration: loaded)
            try bridge?.startImports()
            return deployment
        }
        let stopSignal = signals.startedUp()  // then a failure to start is the interruption's
        guard stopSignal == nil, case .success(let deployment) = started else {
            if stopSignal == nil, case .failure(let error) = started { printDiagnostic("\(config): \(error)") }
            await router.shutdown(drainTimeout: .zero)
            await bridge?.close(timeout: Duration.seconds(1))
            throw ExitCode(stopSignal.map { 128 + $0 } ?? 2)
        }
        health.phase = .running
        let flagDrainTimeout = drainTimeout.flatMap(ConfigValue.duration)
        let reloads = Task {
            for await _ in signals.hangups {
                do {
                    let summary = try await deployment.reload(drainTimeout: flagDrainTimeout)
                    health.setBudgets(Self.budgets(deployment.configuration))
                    printDiagnostic("switchboard: reloaded \(config): \(summary)")
                } catch {
                    printDiagnostic("switchboard: reload of \(config) failed, nothing changed:\n\(error)")
                }
            }
        }
        defer { reloads.cancel() }
        let progress = StandardError.isTerminal ? Task { await Self.showProgress(router) } : nil
        defer { progress?.cancel() }
        if let bridge, let settings = loaded.nats {
            printDiagnostic("switchboard: \(Self.describe(settings, instance: bridge.instance))")
        }
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
            let feeder = Feeder(router: router, format: format, strict: strict, rejected: rejected)
            outcome = await Self.feed(feeder, descriptor: descriptor, until: end, signals: signals)
        }
        health.phase = .draining
        let drain = flagDrainTimeout ?? deployment.configuration.drainTimeout ?? .seconds(5)
        await bridge?.stopImports(timeout: drain)  // the queue group's other members take the rest
        await router.shutdown(drainTimeout: drain)
        await bridge?.close(timeout: drain)
        journal?.close()
        progress?.cancel()
        await progress?.value
        let stats = router.stats()
        let nats = bridge.map { (stats: $0.stats(), instance: $0.instance) }
        printDiagnostic(Self.summary(stats, rejected: outcome.rejected))
        if let nats { printDiagnostic(Self.summary(nats.stats)) }
        if let report {
            do {
                let natsDocument = nats.map { Self.reportDocument($0.stats, instance: $0.instance) }
                try Self.reportDocument(stats, rejected: outcome.rejected, nats: natsDocument).serialized()
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
    /// At `end` or a signal the feeder stops at its next publish, once shutdown began; one
    /// blocked on an idle input is left behind, and ends with the process.
    private static func feed(
        _ feeder: Feeder, descriptor: Int32, until end: ContinuousClock.Instant?, signals: Signals
    ) async -> Feeder.Outcome {
        let (done, finish) = AsyncStream.makeStream(of: Feeder.Outcome.self)
        Thread.detachNewThread {
            var feeder = feeder
            finish.yield(feeder.feed(descriptor: descriptor))
            finish.finish()
        }
        return await withTaskGroup(of: Feeder.Outcome?.self) { group in
            group.addTask {
                for await outcome in done { return outcome }
                return nil  // cancelled: the input did not end
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
            return first ?? Feeder.Outcome(rejected: feeder.rejected.value)
        }
    }

    /// Each subscriber's per-event budget, past which a call counts as stuck in `/healthz`.
    private static func budgets(_ configuration: Configuration) -> [String: Duration] {
        Dictionary(configuration.subscribers.map { ($0.name, $0.timeout) }, uniquingKeysWith: { _, last in last })
    }

    /// Starts the metrics server and waits until it listens (it prints where); the task
    /// serves until cancelled.
    private static func serveMetrics(_ server: MetricsServer) async throws -> Task<Void, Never> {
        let (listening, announce) = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            do {
                try await server.run { port in
                    printDiagnostic("switchboard: metrics and health on port \(port) (GET /metrics, GET /healthz)")
                    announce.yield(port)
                }
            } catch {
                printDiagnostic("switchboard: the metrics server failed: \(error)")
            }
            announce.finish()
        }
        var iterator = listening.makeAsyncIterator()
        guard await iterator.next() != nil else { throw ExitCode(1) }
        return task
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

    /// The table on standard error at exit.
    static func summary(_ stats: RouterStats, rejected: Int) -> String {
        let columns = ["received", "handled", "failed", "dropped", "abandoned", "pending"]
        let width = max(10, stats.subscribers.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ count: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, count - text.count))
            return left ? text + fill : fill + text
        }
        var lines = [pad("subscriber", width, left: true) + columns.map { pad($0, 10) }.joined()]
        for subscriber in stats.subscribers {
            let values = [
                subscriber.received, subscriber.handled, subscriber.failed, subscriber.dropped, subscriber.abandoned,
                subscriber.pending,
            ]
            lines.append(pad(subscriber.name, width, left: true) + values.map { pad(String($0), 10) }.joined())
        }
        lines.append("published \(stats.published), rejected \(rejected)")
        return lines.joined(separator: "\n")
    }

    /// The `--report` document, one entry per subscriber name (see ``RouterStats/byName``), and
    /// the NATS bridge's counts when there is one.
    static func reportDocument(_ stats: RouterStats, rejected: Int, nats: JSON?) -> JSON {
        let subscribers = stats.byName.map { subscriber -> (String, JSON) in
            (subscriber.name, [
                "received": .int(Int64(subscriber.received)), "handled": .int(Int64(subscriber.handled)),
                "failed": .int(Int64(subscriber.failed)), "dropped": .int(Int64(subscriber.dropped)),
                "abandoned": .int(Int64(subscriber.abandoned)), "pending": .int(Int64(subscriber.pending)),
            ])
        }
        var document: [(String, JSON)] = [
            ("published", .int(Int64(stats.published))), ("rejected", .int(Int64(rejected))),
            ("subscribers", .object(.init(subscribers, uniquingKeysWith: { first, _ in first }))),
        ]
        if let nats { document.append(("nats", nats)) }
        return .object(.init(document, uniquingKeysWith: { first, _ in first }))
    }
}
