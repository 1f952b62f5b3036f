import Foundation
import Logging
import Synchronization
import SwitchboardConfig
import SwitchboardCore
import SwitchboardLua
import SwitchboardSinks

/// The subscribers of a configuration file, running on a router, and reloadable: ``reload()``
/// re-reads the file and every plugin and applies the difference without a restart.
public final class Deployment: Sendable {
    /// The router the subscribers run on.
    public let router: Router
    /// The configuration file.
    public let path: String
    private let logger: Logger
    private let environment: [String: String]

    /// A running subscriber with what it was built from.
    private struct Running: Sendable {
        let subscriber: Subscriber
        let entry: Configuration.Subscriber
        /// The files a plugin loaded; nil for a sink.
        let sources: LuaSources?
        /// A file sink's way to reopen its file at a reload.
        let reopening: FileSink.Reopening?

        /// True when `entry` would build what runs now.
        func builds(_ entry: Configuration.Subscriber) -> Bool { self.entry == entry && sources?.areCurrent != false }

        /// True when `entry` asks for other workers or another key: a rebuild in place cannot
        /// give it those, a new subscriber takes over once this one has drained.
        func needsReplacing(by entry: Configuration.Subscriber) -> Bool {
            self.entry.workerCount != entry.workerCount || self.entry.key != entry.key
        }
    }

    private struct State: Sendable {
        var configuration: Configuration
        var running: [String: Running] = [:]
    }

    private let state: Mutex<State>
    /// Reloads one at a time.
    private let reloading = Mutex<Bool>(false)

    /// Starts every subscriber of `configuration` on `router`, together: none takes an event or
    /// fires a timer before all are routed to. If one fails to start, none is left running.
    public init(
        router: Router, configuration: Configuration, logger: Logger = Logger(label: "switchboard"),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(RouterError) {
        self.router = router
        path = configuration.path
        self.logger = logger
        self.environment = environment
        var running: [String: Running] = [:]
        var prepared: [Subscriber] = []
        do {
            for subscriber in configuration.subscribers {
                let started = try Self.prepare(subscriber, on: router, logger: logger)
                prepared.append(started.subscriber)
                running[subscriber.name] = started
            }
            try router.commit(adding: prepared)
        } catch {
            router.discard(prepared)
            throw error
        }
        state = Mutex(State(configuration: configuration, running: running))
    }

    /// Starts a subscriber, not yet routed to, recording the files its plugin loads.
    private static func prepare(
        _ entry: Configuration.Subscriber, on router: Router, logger: Logger
    ) throws(RouterError) -> Running {
        guard let sink = entry.sink else {
            let sources = LuaSources()
            let subscriber = try router.prepare(lua: entry.lua, logger: logger, sources: sources)
            return Running(subscriber: subscriber, entry: entry, sources: sources, reopening: nil)
        }
        let (handlers, reopening) = try makeHandlers(sink, of: entry)
        let subscriber = try router.prepare(
            entry.topics, name: entry.name, capacity: entry.queue.capacity, overflow: entry.queue.overflow,
            failurePolicy: entry.onFailure, workers: handlers.count, key: entry.key, handlers: { handlers[$0 - 1] })
        return Running(subscriber: subscriber, entry: entry, sources: nil, reopening: reopening)
    }

    /// A sink's handlers, one per worker; a failure (a file that cannot be opened) as a start failure.
    private static func makeHandlers(
        _ sink: Configuration.Sink, of entry: Configuration.Subscriber
    ) throws(RouterError) -> ([any EventHandler], FileSink.Reopening?) {
        do {
            var handlers: [any EventHandler] = []
            var reopening: FileSink.Reopening?
            for _ in 0..<entry.workerCount {  // the reader allows only one for a file sink
                let made = try sink.makeHandler(name: entry.name)
                handlers.append(made.0)
                reopening = made.1
            }
            return (handlers, reopening)
        } catch {
            throw .startFailed(subscriber: entry.name, reason: "\(error)")
        }
    }

    /// Rebuilds a running subscriber from its changed entry, its queue kept (see ``Router/rebuild(_:lua:logger:sources:)``).
    private static func rebuild(
        _ current: Running, as entry: Configuration.Subscriber, on router: Router, logger: Logger
    ) throws(RouterError) -> Running {
        guard let sink = entry.sink else {
            let sources = LuaSources()
            try router.rebuild(current.subscriber, lua: entry.lua, logger: logger, sources: sources)
            return Running(subscriber: current.subscriber, entry: entry, sources: sources, reopening: nil)
        }
        let (handlers, reopening) = try makeHandlers(sink, of: entry)
        try router.replaceHandlers(of: current.subscriber) { handlers[$0 - 1] }
        try router.reconfigure(
            current.subscriber, patterns: entry.topics, capacity: entry.queue.capacity, overflow: entry.queue.overflow,
            failurePolicy: entry.onFailure)
        return Running(subscriber: current.subscriber, entry: entry, sources: nil, reopening: reopening)
    }

    /// The configuration running now.
    public var configuration: Configuration { state.withLock { $0.configuration } }

    /// What a reload did, by subscriber name.
    public struct ReloadSummary: Sendable, Equatable, CustomStringConvertible {
        /// Started.
        public var added: [String] = []
        /// Rebuilt: their configuration entry, plugin file or a required module differed.
        public var changed: [String] = []
        /// Drained and stopped.
        public var removed: [String] = []
        /// Left as they were, state and queue untouched.
        public var kept: [String] = []
        /// Global settings that changed in the file but cannot change live: ignored until a restart.
        public var needRestart: [String] = []

        public var description: String {
            func list(_ names: [String]) -> String { names.isEmpty ? "none" : names.joined(separator: ", ") }
            let restart = needRestart.isEmpty ? "" : "; ignored until a restart: \(list(needRestart))"
            return "added \(list(added)); changed \(list(changed)); removed \(list(removed)); kept \(list(kept))\(restart)"
        }
    }

    /// Why a reload changed nothing: the problems, as `switchboard check` words them.
    public struct ReloadError: Error, CustomStringConvertible {
        /// What kind of refusal it is.
        public enum Reason: Sendable {
            /// The file or a plugin is invalid, or a plugin failed to load or to `init`.
            case problems
            /// Another reload is under way.
            case underWay
            /// The subscribers are still starting, or the run has ended.
            case notRunning
        }

        /// One line per problem.
        public let problems: [String]
        /// Why nothing changed.
        public let reason: Reason

        /// A refusal for `reason`, said in `problems`.
        public init(problems: [String], reason: Reason = .problems) {
            self.problems = problems
            self.reason = reason
        }

        public var description: String { problems.joined(separator: "\n") }
    }

    /// Re-reads the configuration file and every plugin and applies the difference: new
    /// subscribers start, changed ones are rebuilt with their queues kept, removed ones drain
    /// (until `drainTimeout`) and stop, the rest are untouched; routing switches to the new set
    /// in one step. A changed entry with other `workers` or another `key` is replaced: the new
    /// subscriber is routed to at once but takes events only once the old one has drained, so
    /// that no event of a key overtakes an older one. All or nothing: an invalid file, or a
    /// new or changed plugin that fails to load or to `init`, leaves everything as it was and throws.
    @discardableResult
    public func reload(drainTimeout: Duration? = nil) async throws -> ReloadSummary {
        guard reloading.withLock({ busy in defer { busy = true }; return !busy }) else {
            throw ReloadError(problems: ["a reload is already under way"], reason: .underWay)
        }
        defer { reloading.withLock { $0 = false } }
        var new: Configuration
        do {
            new = try Configuration.load(path: path, environment: environment)
        } catch {
            throw ReloadError(problems: error.problems.map(\.description))
        }
        let (running, current) = state.withLock { ($0.running, $0.configuration) }
        var summary = ReloadSummary()
        /// A global setting that cannot change live keeps its running value, and says so.
        func keep<Value: Equatable>(_ setting: WritableKeyPath<Configuration, Value>, _ name: String) {
            guard new[keyPath: setting] != current[keyPath: setting] else { return }
            summary.needRestart.append(name)
            new[keyPath: setting] = current[keyPath: setting]
        }
        keep(\.metricsListen, "metrics.listen")
        keep(\.metricsToken, "metrics.token")
        keep(\.metricsAdmin, "metrics.admin")
        keep(\.journal, "journal")
        keep(\.instance, "instance")
        keep(\.nats, "nats")
        keep(\.log.format, "log.format")
        var toCheck: [Configuration.Subscriber] = []
        for subscriber in new.subscribers {
            if let current = running[subscriber.name] {
                if current.builds(subscriber) {
                    summary.kept.append(subscriber.name)
                } else {
                    summary.changed.append(subscriber.name)
                    toCheck.append(subscriber)
                }
            } else {
                summary.added.append(subscriber.name)
                toCheck.append(subscriber)
            }
        }
        let names = Set(new.subscribers.map(\.name))
        summary.removed = running.keys.filter { !names.contains($0) }.sorted()

        // Every new or changed plugin must load and init before anything changes.
        var problems: [String] = []
        for subscriber in toCheck {
            if let current = running[subscriber.name], (current.entry.queue.overflow == .spill) != (subscriber.queue.overflow == .spill) {
                problems.append("\(path): subscriber '\(subscriber.name)': changing the overflow to or from spill takes a restart")
            }
            guard subscriber.sink == nil else { continue }  // a sink has nothing to load
            do { try subscriber.lua.check(logger: logger) } catch {
                problems.append("\(path): subscriber '\(subscriber.name)': \(error)")
            }
        }
        guard problems.isEmpty else { throw ReloadError(problems: problems) }

        var next = running
        var prepared: [Subscriber] = []
        var replacements: [Subscriber] = []
        let replaced = new.subscribers.filter { summary.changed.contains($0.name) && running[$0.name]!.needsReplacing(by: $0) }
            .map(\.name)
        do {
            for subscriber in new.subscribers where summary.added.contains(subscriber.name) || replaced.contains(subscriber.name) {
                let started = try Self.prepare(subscriber, on: router, logger: logger)
                prepared.append(started.subscriber)
                if replaced.contains(subscriber.name) { replacements.append(started.subscriber) }
                next[subscriber.name] = started
            }
        } catch {
            router.discard(prepared)
            throw ReloadError(problems: ["\(path): \(error)"])
        }
        for subscriber in new.subscribers where summary.changed.contains(subscriber.name) && !replaced.contains(subscriber.name) {
            do {
                next[subscriber.name] = try Self.rebuild(running[subscriber.name]!, as: subscriber, on: router, logger: logger)
            } catch {
                // It passed the check a moment ago; its old handler keeps running.
                logger.error("reload: subscriber '\(subscriber.name)' kept its old handler: \(error)")
            }
        }
        // The logrotate convention: a reload reopens the files that sinks write.
        for name in summary.kept { running[name]?.reopening?.request() }
        let removed = (summary.removed + replaced).map { running[$0]!.subscriber }
        for name in summary.removed { next[name] = nil }
        do {
            try router.commit(adding: prepared, removing: removed, holding: replacements)
        } catch {
            router.discard(prepared)  // shutdown began: their threads, never routed to, stop too
            throw error
        }
        state.withLock { state in
            state.configuration = new
            state.running = next
        }
        await router.retire(removed, drainTimeout: drainTimeout ?? new.drainTimeout ?? .seconds(5))
        router.release(replacements)
        return summary
    }
}
