import SwitchboardConfig
import SwitchboardCore
import SwitchboardJournal
import SwitchboardLua
import SwitchboardTopics

/// One subscriber's plugin run fresh over the journaled events that match its topics, in
/// order, with its usual limits, `init` and `shutdown` included: `switchboard replay`.
/// What it publishes is counted and discarded, unless ``publish`` routes it to the
/// configuration's other subscribers.
public struct Replay: Sendable {
    /// The configuration, with a journal.
    public var configuration: Configuration
    /// The subscriber whose plugin runs.
    public var subscriber: String
    /// The events to replay.
    public var window = JournalWindow()
    /// Route what the plugin publishes to the configuration's other subscribers.
    public var publish = false

    /// What a replay came to.
    public struct Outcome: Sendable {
        /// Events handed to the plugin.
        public var sent: Int
        /// Its counts.
        public var stats: SubscriberStats
        /// What it published.
        public var published: Int
    }

    /// A replay of `subscriber`'s plugin.
    public init(configuration: Configuration, subscriber: String) {
        self.configuration = configuration
        self.subscriber = subscriber
    }

    /// Counts the events to replay, then replays them, calling `progress` with how many were
    /// sent of how many. Throws ``RuntimeError`` (``RuntimeError/Kind/invalid`` for a missing
    /// journal or subscriber, or a plugin that fails to start; ``RuntimeError/Kind/failed`` for
    /// a corrupt journal record, after the events before it).
    public func run(progress: (_ sent: Int, _ total: Int) -> Void = { _, _ in }) async throws -> Outcome {
        let path = configuration.path
        guard let folder = configuration.journal?.path else {
            throw RuntimeError(kind: .invalid, message: "\(path): no journal is configured (journal: { path: ... })")
        }
        guard var target = configuration.subscribers.first(where: { $0.name == subscriber })?.lua else {
            throw RuntimeError(kind: .invalid, message: "\(path): no subscriber named '\(subscriber)'")
        }
        let patterns = PatternSet(target.topics)
        var total = 0
        try Self.reading { try window.forEachRecord(in: folder) { if patterns.matches($0.topic) { total += 1 } } }

        let router = Router()
        var others = configuration
        others.subscribers.removeAll { $0.name == subscriber }
        // Routed to by nothing but the replay: its own publishes must not come back to it.
        target.topics = []
        target.overflow = .block
        let replayed: Subscriber
        do {
            if publish { _ = try Deployment(router: router, configuration: others) }
            replayed = try router.subscribe(lua: target)
        } catch {
            await router.shutdown(drainTimeout: .zero)
            throw RuntimeError(kind: .invalid, message: "\(path): \(error)")
        }
        var sent = 0
        do {
            try Self.reading {
                try window.forEachRecord(in: folder) { record in
                    guard patterns.matches(record.topic) else { return }
                    router.send(
                        record.topic, tape: record.data, headers: record.headers, id: record.id, time: record.time,
                        to: replayed)
                    sent += 1
                    progress(sent, total)
                }
            }
        } catch {
            await router.shutdown(drainTimeout: .zero)
            throw error
        }
        await router.shutdown(drainTimeout: .seconds(3600))
        let stats = router.stats()
        return Outcome(sent: sent, stats: stats[subscriber]!, published: stats.published)
    }

    /// Runs `body`, a walk of the journal, turning a corrupt record into a ``RuntimeError``.
    private static func reading(_ body: () throws -> Void) throws {
        do { try body() } catch let problem as JournalReader.CorruptRecord {
            throw RuntimeError(kind: .failed, message: "journal: \(problem)")
        }
    }
}
