import SwitchboardConfig
import SwitchboardCore
import SwitchboardJournal
import SwitchboardLua
import Synchronization

/// The dead letters of one subscriber sent again, each once, to a fresh instance of its plugin,
/// as ``Replay`` runs one: `switchboard redrive`. Each event keeps its id and time and carries
/// the header `Switchboard-Redrive` with the number of its redrives. What the plugin handles
/// is marked done; what fails again stays a dead letter, with the new error.
public struct Redrive: Sendable {
    /// The header a redriven event carries: how many times it has been redriven, this one included.
    public static let header = "Switchboard-Redrive"

    /// The configuration, with a journal.
    public var configuration: Configuration
    /// The subscriber whose dead letters are sent again.
    public var subscriber: String
    /// Which dead letters, by their own place in the journal.
    public var window = JournalWindow()
    /// Count and list what would be sent, and send nothing.
    public var dryRun = false

    /// What a redrive came to.
    public struct Outcome: Sendable {
        /// The dead letters sent (or, in a dry run, that would be).
        public var letters: [DeadLetter]
        /// Handled by the plugin: done.
        public var handled = 0
        /// Failed again; with `on_failure.dead_letter`, dead-lettered again.
        public var failed = 0
        /// Sent but neither handled nor failed: refused by the plugin's queue, or still in it
        /// when the plugin stopped. None of the letters is marked done then, since which ones
        /// were handled is not known; they stay listed and go again with the next redrive.
        public var unsettled = 0
    }

    /// A redrive of `subscriber`'s dead letters.
    public init(configuration: Configuration, subscriber: String) {
        self.configuration = configuration
        self.subscriber = subscriber
    }

    /// Sends the dead letters not yet done, newest of each event, and records the outcomes.
    /// Throws ``RuntimeError`` (``RuntimeError/Kind/invalid`` without a journal, for a missing
    /// or non-plugin subscriber, or a plugin that fails to start).
    public func run() async throws -> Outcome {
        let path = configuration.path
        let folder = try DeadLetters.folder(of: configuration)
        guard let entry = configuration.subscribers.first(where: { $0.name == subscriber }) else {
            throw RuntimeError(kind: .invalid, message: "\(path): no subscriber named '\(subscriber)'")
        }
        guard entry.sink == nil else {
            throw RuntimeError(kind: .invalid, message: "\(path): '\(subscriber)' is a sink: a redrive runs a plugin")
        }
        // Each event once, from its newest dead letter.
        var newest: [String: DeadLetter] = [:]
        for letter in try DeadLetters.read(configuration, subscriber: subscriber, window: window) where !letter.isDone {
            newest[letter.id] = letter
        }
        var outcome = Outcome(letters: newest.values.sorted { $0.sequence < $1.sequence })
        guard !dryRun, !outcome.letters.isEmpty else { return outcome }

        let router = Router()
        var target = entry.lua
        target.topics = []  // routed to by nothing but the redrive
        target.overflow = .block
        target.onFailure.deadLetter = true  // the new error comes back in the dead letter
        let errors = Mutex<[String: String]>([:])
        let replayed: Subscriber
        do {
            try router.subscribe("deadletter.\(subscriber)", capacity: 1 << 16, overflow: .block) { letter in
                guard let id = letter.data["event"]?["id"]?.stringValue else { return }
                errors.withLock { $0[id] = letter.data["error"]?.stringValue ?? "failed" }
            }
            replayed = try router.subscribe(lua: target)
        } catch {
            await router.shutdown(drainTimeout: .zero)
            throw RuntimeError(kind: .invalid, message: "\(path): \(error)")
        }
        var refused = 0
        for letter in outcome.letters {
            var headers = letter.event["headers"].flatMap { JSONTape($0).strings } ?? [:]
            headers[Self.header] = String(letter.redrives + 1)
            let taken = router.send(
                letter.topic, tape: JSONTape(letter.event["data"] ?? .null), headers: headers,
                id: EventID(letter.id) ?? EventID(prefix: 0, sequence: letter.sequence), time: letter.time, to: replayed)
            if !taken { refused += 1 }
        }
        await router.shutdown(drainTimeout: .seconds(3600))
        let failures = errors.withLock { $0 }
        let stats = router.stats()[subscriber]!
        outcome.failed = outcome.letters.count { failures[$0.id] != nil }
        // Handled, as the plugin's own counts say: exactly the letters that did not fail, or
        // (some refused or abandoned) an unknown part of them, recorded as nothing.
        outcome.unsettled = refused + stats.abandoned
        outcome.handled = outcome.unsettled == 0 ? outcome.letters.count - outcome.failed : stats.handled
        let results = outcome.letters.compactMap { letter -> (letter: DeadLetter, error: String?)? in
            if let error = failures[letter.id] { return (letter, error) }
            return outcome.unsettled == 0 ? (letter, nil) : nil
        }
        try DeadLetters.record(results, in: folder)
        return outcome
    }
}
