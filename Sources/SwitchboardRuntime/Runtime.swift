import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import SwitchboardConfig
import SwitchboardCore
import SwitchboardIngest
import SwitchboardJournal
import SwitchboardMetrics
import SwitchboardNATS

/// A running instance of a configuration: the journal, the NATS bridge, the metrics and health
/// listener, the subscribers and the input, as services of one `ServiceGroup`.
///
/// ``run()`` starts them in dependency order, each once the one before it is ready: journal,
/// NATS export, metrics and health (so that `/healthz` says `starting` meanwhile), subscribers,
/// NATS import, then the input. The group stops them in reverse order: the input stops, imports
/// stop, subscribers drain, the listener closes, the bridge closes, the journal closes. A run
/// ends at the end of its input, after its ``Options-swift.struct/duration``, at ``shutDown()``
/// or, when it ``Options-swift.struct/handlesSignals``, at SIGINT or SIGTERM.
public final class Runtime: Sendable {
    /// Where events come from.
    public enum Input: Sendable, Equatable {
        /// Nowhere: the run ends at its duration, a signal or ``Runtime/shutDown()``.
        case none
        /// Standard input, one event per line.
        case standardInput
        /// A file, one event per line.
        case file(String)
    }

    /// How to run, beyond the configuration: what the command line's flags set.
    public struct Options: Sendable {
        /// Where events come from.
        public var input = Input.none
        /// How input lines are written.
        public var format = Feeder.Format.json
        /// Stop at the first bad input line.
        public var strict = false
        /// Stop after this long, once started.
        public var duration: Duration?
        /// How long subscribers may drain at exit; overrides the configuration's `drain_timeout`.
        public var drainTimeout: Duration?
        /// Where to serve metrics and health; overrides the configuration's `metrics.listen`.
        public var metricsListen: String?
        /// Where to serve HTTP ingest; overrides the configuration's `ingest.http.listen`.
        public var ingestListen: String?
        /// Trap SIGINT, SIGTERM (graceful shutdown, a second one exits at once) and SIGHUP (reload).
        public var handlesSignals = false
        /// The level the process's log handlers read: set from the configuration's `log.level`
        /// at start and at each reload, unless ``logLevelOverride`` is set. Nil: not managed.
        public var logLevel: LogLevelSetting?
        /// A level that overrides `log.level` (the `--log-level` flag), at start and at reloads.
        public var logLevelOverride: Logger.Level?

        /// Standard options: no input, no signals, everything else from the configuration.
        public init() {}
    }

    /// The router every part runs on.
    public let router = Router()
    /// The configuration it started with (``reload()`` may change what runs).
    public let configuration: Configuration
    private let options: Options
    private let say: @Sendable (String) -> Void
    private let onRejected: @Sendable (Feeder.Rejection) -> Void
    private let environment: [String: String]
    private let health: Health
    private let metrics: RouterMetrics?
    private let ingestCounts = HTTPIngest.Counts()

    /// The parts that exist once their stage started, and where the run is.
    private struct Parts {
        var deployment: Deployment?
        var bridge: NATSBridge?
        var feeder: Feeder?
        var group: ServiceGroup?
        var shutDownEarly = false
        /// ``run()`` was called: a runtime runs once.
        var ran = false
        /// Every stage started: until then, and after a failed start, nothing waits to drain.
        var startedUp = false
        var ended = false
        /// A `POST /-/redrive` is under way.
        var redriving = false
    }

    /// The parts, in a box that closures may hold without holding the runtime.
    private final class Shared: Sendable {
        private let parts = Mutex(Parts())
        func withLock<Result>(_ body: (inout Parts) -> Result) -> Result { parts.withLock { body(&$0) } }
    }

    private let parts = Shared()

    /// An instance of `configuration`, not yet started. `say` gets what the instance says to its
    /// operator (where it listens, how many subscribers run, reload results: the command line
    /// prints it to standard error); `onRejected` gets each rejected input line.
    public init(
        configuration: Configuration, options: Options = Options(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        say: @escaping @Sendable (String) -> Void = { _ in },
        onRejected: @escaping @Sendable (Feeder.Rejection) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.options = options
        self.environment = environment
        self.say = say
        self.onRejected = onRejected
        options.logLevel?.level = options.logLevelOverride ?? configuration.log.level ?? .info
        let router = self.router
        health = Health(router: router, budgets: Self.budgets(configuration))
        metrics = (options.metricsListen ?? configuration.metricsListen).map { _ in RouterMetrics(router: router) }
        metrics?.addReadings { [parts] in
            [MetricReading(.counter, "switchboard_input_rejected_total", value: parts.withLock { $0.feeder?.rejected ?? 0 })]
        }
        if ingest != nil {
            metrics?.addReadings { [ingestCounts] in
                [
                    MetricReading(.counter, "switchboard_ingest_accepted_total", value: ingestCounts.accepted.load(ordering: .relaxed)),
                    MetricReading(.counter, "switchboard_ingest_rejected_total", value: ingestCounts.rejected.load(ordering: .relaxed)),
                ]
            }
        }
    }

    /// Runs until the input ends, the duration passes, ``shutDown()`` or a signal; then stops
    /// every part, in reverse order, and returns the counts. Throws ``RuntimeError`` when the
    /// instance could not start: the parts that had started are stopped first.
    public func run() async throws(RuntimeError) -> RunReport {
        guard parts.withLock({ parts in defer { parts.ran = true }; return !parts.ran }) else {
            throw RuntimeError(kind: .failed, message: "switchboard: a runtime runs once; make a new one")
        }
        defer { parts.withLock { $0.ended = true } }
        let signals = options.handlesSignals
            ? await Signals(say: say) { [self] duringStartUp in
                if duringStartUp { router.interruptStarts() }
                await shutDown()
            } : nil
        let group = ServiceGroup(
            configuration: .init(
                services: stages(signals: signals).map {
                    .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                          failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                logger: Logger(label: "switchboard.lifecycle")))
        let early = parts.withLock { parts in
            parts.group = group
            return parts.shutDownEarly
        }
        if early { await group.triggerGracefulShutdown() }
        defer { signals?.stop() }
        do {
            try await group.run()
        } catch {
            if let signal = signals?.duringStartUp { throw RuntimeError(kind: .interrupted(signal: signal), message: "") }
            throw error as? RuntimeError ?? RuntimeError(kind: .failed, message: "switchboard: \(error)")
        }
        if let signal = signals?.duringStartUp { throw RuntimeError(kind: .interrupted(signal: signal), message: "") }
        let (bridge, feeder) = parts.withLock { ($0.bridge, $0.feeder) }
        return RunReport(
            stats: router.stats(), rejected: feeder?.rejected ?? 0, stoppedAtBadLine: feeder?.stoppedAtBadLine ?? false,
            nats: bridge.map { ($0.stats(), $0.instance) })
    }

    /// Ends the run gracefully, as a signal would: the input stops and subscribers drain.
    public func shutDown() async {
        let (group, startedUp) = parts.withLock { parts in
            parts.shutDownEarly = true
            return (parts.group, parts.startedUp)
        }
        if startedUp { health.phase = .draining }  // at once: the stages stop in turn
        await group?.triggerGracefulShutdown()
    }

    /// Ends the run from a stage that is done (the input ended, the duration passed) and waits
    /// for the stage's turn to stop. A stage that returned instead, while the group waited for
    /// a later one to stop, would make the group cancel every stage (the HTTP listeners would
    /// log the cancellation as an error) rather than stop them in order.
    private func endRun() async {
        await shutDown()
        await Stage.untilShutdown()
    }

    /// Re-reads the configuration file and every plugin and applies the difference (see
    /// ``Deployment/reload(drainTimeout:)``), with the same overrides as at start; the drain
    /// timeout and the log level change too.
    @discardableResult
    public func reload() async throws -> Deployment.ReloadSummary {
        let (deployment, ended) = parts.withLock { ($0.deployment, $0.ended) }
        guard !ended else { throw Deployment.ReloadError(problems: ["the run has ended"], reason: .notRunning) }
        guard let deployment else {
            throw Deployment.ReloadError(problems: ["the subscribers are still starting"], reason: .notRunning)
        }
        let summary = try await deployment.reload(drainTimeout: options.drainTimeout)
        health.setBudgets(Self.budgets(deployment.configuration))
        options.logLevel?.level = options.logLevelOverride ?? deployment.configuration.log.level ?? .info
        return summary
    }

    /// `POST /-/reload`: what SIGHUP does, answered as JSON: 200 with what changed
    /// (`{"added": [...], "changed": [...], "removed": [...], "kept": [...], "ignored": [...]}`),
    /// 422 with the problems when nothing changed, 409 while another reload runs, 503 while the
    /// subscribers start or after the run ended. Logged as a reload by signal is.
    private func reloadOverHTTP() async -> (status: Int, body: String) {
        func names(_ list: [String]) -> JSON { .array(list.map(JSON.string)) }
        do {
            let summary = try await reload()
            say("switchboard: reloaded \(configuration.path) (POST /-/reload): \(summary)")
            let body: JSON = [
                "added": names(summary.added), "changed": names(summary.changed), "removed": names(summary.removed),
                "kept": names(summary.kept), "ignored": names(summary.needRestart),
            ]
            return (200, body.serialized())
        } catch {
            let refusal = error as? Deployment.ReloadError ?? Deployment.ReloadError(problems: ["\(error)"])
            say("switchboard: reload of \(configuration.path) (POST /-/reload) failed, nothing changed:\n\(refusal)")
            let status = switch refusal.reason {
            case .problems: 422
            case .underWay: 409
            case .notRunning: 503
            }
            return (status, (["problems": names(refusal.problems)] as JSON).serialized())
        }
    }

    /// `POST /-/redrive?subscriber=NAME[&from=&to=][&dry_run=true]`: sends the subscriber's dead
    /// letters again through the subscriber itself (``Redrive/run(through:)``), as
    /// `switchboard redrive --url` asks. 200 with `{"subscriber", "letters", "dead_letter",
    /// "handled", "failed", "unsettled"}` (`letters` as `switchboard deadletters --json` prints
    /// them); 400 without a subscriber or with a bad bound, 422 for what cannot be redriven (no
    /// journal, no such plugin, one that spills), 409 while another redrive runs, 503 while the
    /// subscribers start or after the run ended. Each `{"error": ...}`.
    private func redriveOverHTTP(_ parameters: [String: String]) async -> (status: Int, body: String) {
        func refusal(_ status: Int, _ message: String) -> (status: Int, body: String) {
            (status, (["error": .string(message)] as JSON).serialized())
        }
        guard let name = parameters["subscriber"], !name.isEmpty else {
            return refusal(400, "missing subscriber: POST /-/redrive?subscriber=NAME")
        }
        var window = JournalWindow()
        for (key, text) in parameters where key == "from" || key == "to" {
            guard let bound = JournalWindow.Bound(text) else {
                return refusal(400, "\(key) '\(text)' is neither a sequence number nor an RFC 3339 time")
            }
            if key == "from" { window.from = bound } else { window.to = bound }
        }
        let (deployment, ended) = parts.withLock { ($0.deployment, $0.ended) }
        guard !ended, let deployment else { return refusal(503, ended ? "the run has ended" : "the subscribers are still starting") }
        guard parts.withLock({ parts in defer { parts.redriving = true }; return !parts.redriving }) else {
            return refusal(409, "a redrive is already under way")
        }
        defer { parts.withLock { $0.redriving = false } }
        var redrive = Redrive(configuration: deployment.configuration, subscriber: name)
        redrive.window = window
        redrive.dryRun = parameters["dry_run"] == "true"
        do {
            let outcome = try await redrive.run(through: router)
            if !redrive.dryRun {
                say("switchboard: redrove \(outcome.letters.count) dead letters to \(name) (POST /-/redrive): handled \(outcome.handled), failed again \(outcome.failed), unsettled \(outcome.unsettled)")
            }
            let body: JSON = [
                "subscriber": .string(name), "letters": .array(outcome.letters.map(\.json)), "dead_letter": .bool(outcome.deadLetters),
                "handled": .int(Int64(outcome.handled)), "failed": .int(Int64(outcome.failed)), "unsettled": .int(Int64(outcome.unsettled)),
            ]
            return (200, body.serialized())
        } catch let error as RuntimeError {
            return refusal(error.kind == .invalid ? 422 : 500, error.message)
        } catch {
            return refusal(500, "\(error)")
        }
    }

    /// HTTP ingest as the file and the flag set it: the flag's address over the file's.
    private var ingest: Configuration.Ingest? {
        guard let listen = options.ingestListen else { return configuration.ingest }
        var ingest = configuration.ingest ?? Configuration.Ingest(listen: listen)
        ingest.listen = listen
        return ingest
    }

    /// How long subscribers may drain now: nothing, when the run never got started.
    private var drainTimeout: Duration {
        let (running, startedUp) = parts.withLock { ($0.deployment?.configuration, $0.startedUp) }
        guard startedUp else { return .zero }
        return options.drainTimeout ?? (running ?? configuration).drainTimeout ?? .seconds(5)
    }

    /// Each subscriber's per-event budget, past which a call counts as stuck in `/healthz`.
    private static func budgets(_ configuration: Configuration) -> [String: Duration] {
        Dictionary(
            configuration.subscribers.compactMap { entry in entry.callBudget.map { (entry.name, $0) } },
            uniquingKeysWith: { _, last in last })
    }

    // MARK: The stages, in start-up order

    private func stages(signals: Signals?) -> [Stage] {
        var stages: [Stage] = []
        func add(_ name: String, _ body: @escaping @Sendable (_ ready: @escaping @Sendable () -> Void) async throws -> Void) {
            stages.append(Stage(name, after: stages.last, body: body))
        }
        let path = configuration.path
        if let settings = configuration.journal {
            add("journal") { [router] ready in
                let journal: Journal
                do {
                    journal = try settings.open()
                } catch {
                    throw RuntimeError(kind: .failed, message: "\(path): cannot open the journal at \(settings.path): \(error)")
                }
                journal.attach(to: router)  // every accepted event, before any subscriber; spilling ones read it back
                router.spill(to: journal)
                ready()
                await Stage.untilShutdown()
                journal.close()
            }
        }
        if let settings = configuration.nats?.bridge {
            // The exporter subscribes before the plugins start, so it sees what they publish from the first event.
            add("nats") { [self] ready in
                let bridge: NATSBridge
                do {
                    bridge = try NATSBridge(
                        settings: settings, instance: configuration.instance, router: router,
                        logger: Logger(label: "switchboard.nats"))
                } catch {
                    throw RuntimeError(kind: .failed, message: "\(path): \(error)")
                }
                parts.withLock { $0.bridge = bridge }
                metrics?.addReadings { Self.readings(bridge.stats()) }
                health.addComponent("nats") { bridge.stats().state }
                ready()
                await Stage.untilShutdown()
                let drain = drainTimeout
                await router.shutdown(drainTimeout: drain)  // done already, unless the subscribers never started
                await bridge.close(timeout: drain)
            }
        }
        if let metrics, let listen = options.metricsListen ?? configuration.metricsListen,
            let (host, port) = ConfigValue.hostAndPort(listen)
        {
            add("metrics") { [self] ready in
                let admin = configuration.metricsAdmin
                if admin, configuration.metricsToken == nil, !ConfigValue.isLoopback(host) {
                    throw RuntimeError(
                        kind: .invalid,
                        message: "\(path): metrics listen '\(listen)' is not a loopback address: set metrics.token (16 characters or more) so that only you can reload the instance and redrive its dead letters, or turn metrics.admin off")
                }
                let handlers = admin
                    ? MetricsServer.Admin(reload: { [self] in await reloadOverHTTP() }, redrive: { [self] in await redriveOverHTTP($0) })
                    : nil
                let server = MetricsServer(
                    metrics: metrics, health: health, host: host, port: port, token: configuration.metricsToken,
                    admin: handlers, allowsTap: configuration.metricsToken != nil || ConfigValue.isLoopback(host),
                    logger: Logger(label: "switchboard.metrics"))
                let endpoints = "GET /metrics, GET /healthz, GET /tap" + (admin ? ", POST /-/reload, POST /-/redrive" : "")
                do {
                    try await server.run { [say] port in
                        say("switchboard: metrics and health on port \(port) (\(endpoints))")
                        ready()
                    }
                } catch {
                    throw RuntimeError(kind: .failed, message: "switchboard: the metrics server failed: \(error)")
                }
            }
        }
        if let ingest {
            add("ingest") { [self] ready in
                guard let (host, port) = ConfigValue.hostAndPort(ingest.listen) else {
                    throw RuntimeError(kind: .invalid, message: "switchboard: ingest listen '\(ingest.listen)' is not HOST:PORT, such as 127.0.0.1:8080")
                }
                if ingest.token == nil, !ConfigValue.isLoopback(host) {
                    throw RuntimeError(
                        kind: .invalid,
                        message: "\(path): ingest listen '\(ingest.listen)' is not a loopback address: set ingest.http.token (16 characters or more) so that only your producers can publish")
                }
                let server = HTTPIngest(
                    router: router, host: host, port: port, token: ingest.token, maxBody: ingest.maxBody, counts: ingestCounts,
                    logger: Logger(label: "switchboard.ingest")
                ) { [health] in health.phase == .running }
                do {
                    try await server.run { [say] port in
                        say("switchboard: HTTP ingest on port \(port) (POST /publish, POST /publish/<topic>)")
                        ready()
                    }
                } catch {
                    throw RuntimeError(kind: .failed, message: "switchboard: the ingest server failed: \(error)")
                }
            }
        }
        add("subscribers") { [self] ready in
            let deployment: Deployment
            let stopping = Atomic<Bool>(false)
            do {
                // Shut down while plugins start (a signal, shutDown(), a failure elsewhere): interrupt them.
                deployment = try await withGracefulShutdownHandler { [router, configuration, environment] in
                    // On a thread of its own: plugins' `init`s block, and the two threads of the
                    // concurrency pool must stay free for the signal that would interrupt them.
                    try await withCheckedThrowingContinuation { started in
                        Thread.detachNewThread {
                            started.resume(with: Result {
                                try Deployment(router: router, configuration: configuration, environment: environment)
                            })
                        }
                    }
                } onGracefulShutdown: { [router] in
                    stopping.store(true, ordering: .relaxed)
                    router.interruptStarts()
                }
            } catch {
                if stopping.load(ordering: .relaxed) { return }  // interrupted: not the configuration's fault
                throw RuntimeError(kind: .invalid, message: "\(path): \(error)")
            }
            parts.withLock { $0.deployment = deployment }
            ready()
            await Stage.untilShutdown()
            await router.shutdown(drainTimeout: drainTimeout)
        }
        if let settings = configuration.nats, !settings.import.isEmpty || settings.jetStream?.import != nil {
            // Imports start once the plugins are routed to, before the run reports ready.
            add("nats import") { [self] ready in
                let bridge = parts.withLock { $0.bridge }!
                do { try bridge.startImports() } catch {
                    throw RuntimeError(kind: .invalid, message: "\(path): \(error)")
                }
                ready()
                await Stage.untilShutdown()
                await bridge.stopImports(timeout: drainTimeout)  // the queue group's other members take the rest
            }
        }
        add("running") { [self] ready in
            if let signal = signals?.startedUp() {
                throw RuntimeError(kind: .interrupted(signal: signal), message: "")
            }
            health.phase = .running
            parts.withLock { $0.startedUp = true }
            if let settings = configuration.nats?.bridge, let bridge = parts.withLock({ $0.bridge }) {
                say("switchboard: \(Self.describe(settings, instance: bridge.instance))")
            }
            let count = configuration.subscribers.count
            say("switchboard: \(count) \(count == 1 ? "subscriber" : "subscribers") running")
            let reloads = signals.map { signals in
                Task {
                    for await _ in signals.hangups {
                        do {
                            say("switchboard: reloaded \(configuration.path): \(try await reload())")
                        } catch {
                            say("switchboard: reload of \(configuration.path) failed, nothing changed:\n\(error)")
                        }
                    }
                }
            }
            ready()
            await Stage.untilShutdown()
            reloads?.cancel()
            await reloads?.value  // a reload under way ends before the subscribers drain
            health.phase = .draining
        }
        if options.input != .none {
            add("input") { [self] ready in
                var descriptor = STDIN_FILENO
                if case .file(let file) = options.input {
                    descriptor = open(file, O_RDONLY | O_CLOEXEC)
                    guard descriptor >= 0 else {
                        throw RuntimeError(kind: .failed, message: "cannot open input '\(file)': \(String(cString: strerror(errno)))")
                    }
                }
                let feeder = Feeder(
                    router: router, descriptor: descriptor, format: options.format, strict: options.strict,
                    closesDescriptor: descriptor != STDIN_FILENO, onRejected: onRejected)
                parts.withLock { $0.feeder = feeder }
                ready()
                await feeder.run()  // returns at the end of the input, or at the shutdown
                await endRun()
            }
        }
        if let duration = options.duration {
            add("duration") { [self] ready in
                ready()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
                await endRun()
            }
        }
        return stages
    }
}
