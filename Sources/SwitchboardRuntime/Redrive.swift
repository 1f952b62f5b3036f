import Foundation
import SwitchboardConfig
import SwitchboardCore
import SwitchboardJournal
import SwitchboardLua
import Synchronization

/// The dead letters of one subscriber sent again, each once: `switchboard redrive`. ``run()``
/// hands them to a fresh instance of the plugin, as ``Replay`` runs one; ``run(through:)`` to
/// the subscriber of a running instance (`--url`, `POST /-/redrive`). Each event keeps its id
/// and time and carries the header `Switchboard-Redrive` with the number of its redrives. What
/// the plugin handles is marked done; what fails again stays a dead letter, with the new error.
public struct Redrive: Sendable {
    /// The header a redriven event carries: how many times it has been redriven, this one included.
    public static let header = "Switchboard-Redrive"

    /// The most redriven events in the subscriber's queue at once: a redrive through a running
    /// instance leaves the rest of the queue to the traffic.
    static let inFlight = 64
    /// How long a redrive waits for room in the subscriber's queue for one event, and for the
    /// outcomes of the last ones: a plugin stuck in its restarts must not hold it (and, over
    /// HTTP, every later redrive) for ever. What is not settled then stays listed.
    static let patience = Duration.seconds(600)

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
        /// Whether the subscriber dead-letters what fails (`on_failure.dead_letter`).
        public var deadLetters: Bool
        /// Handled by the plugin: done.
        public var handled = 0
        /// Failed again; with ``deadLetters``, dead-lettered again.
        public var failed = 0
        /// Sent but neither handled nor failed: refused by the subscriber's full queue, or still
        /// in it when the plugin stopped. They stay listed and go again with the next redrive.
        public var unsettled = 0

        /// Nothing handled, failed or unsettled yet.
        public init(letters: [DeadLetter], deadLetters: Bool) {
            self.letters = letters
            self.deadLetters = deadLetters
        }
    }

    /// A redrive of `subscriber`'s dead letters.
    public init(configuration: Configuration, subscriber: String) {
        self.configuration = configuration
        self.subscriber = subscriber
    }

    /// Sends the dead letters to a fresh instance of the plugin, which starts and stops as in
    /// ``Replay``, and records the outcomes. Throws ``RuntimeError`` (``RuntimeError/Kind/invalid``
    /// without a journal, for a missing or non-plugin subscriber, for a plugin that fails to
    /// start, and while an instance runs on the journal: then ``run(through:)`` is the way).
    public func run() async throws -> Outcome {
        let entry = try plugin()
        var outcome = Outcome(letters: try letters(), deadLetters: entry.onFailure.deadLetter)
        guard !dryRun, !outcome.letters.isEmpty else { return outcome }
        let folder = try DeadLetters.folder(of: configuration)
        if let holder = JournalLock.holder(of: folder) {
            throw RuntimeError(
                kind: .invalid,
                message: "\(configuration.path): an instance (pid \(holder)) runs on the journal at \(folder): redrive through it, so that its plugin is the one that runs: switchboard redrive --subscriber \(subscriber) --url http://<its metrics.listen> (it needs metrics.admin: true)")
        }
        let router = Router()
        var target = entry.lua
        target.topics = []  // routed to by nothing but the redrive
        target.overflow = .block
        let replayed: Subscriber
        do {
            replayed = try router.subscribe(lua: target)
        } catch {
            await router.shutdown(drainTimeout: .zero)
            throw RuntimeError(kind: .invalid, message: "\(configuration.path): \(error)")
        }
        let results = await Self.send(outcome.letters, to: replayed, of: router)
        await router.shutdown(drainTimeout: Self.patience)
        try record(results, into: &outcome)
        return outcome
    }

    /// Sends the dead letters to the subscriber of that name on `router`, the running instance's,
    /// at most ``inFlight`` at a time beside its traffic, and records the outcomes once each is
    /// done. Throws ``RuntimeError``: ``RuntimeError/Kind/invalid`` as ``run()`` does, for a
    /// subscriber that does not run, and for one that spills (it reads only the journal, which
    /// a redriven event does not enter: redrive it with the instance stopped).
    public func run(through router: Router) async throws -> Outcome {
        let entry = try plugin()
        guard entry.overflow != .spill else {
            throw RuntimeError(
                kind: .invalid,
                message: "\(configuration.path): '\(subscriber)' spills (queue.overflow: spill) and so reads only the journal, which a redriven event does not enter: stop the instance and redrive without --url")
        }
        guard let live = router.subscriber(named: subscriber) else {
            throw RuntimeError(kind: .invalid, message: "\(configuration.path): '\(subscriber)' does not run")
        }
        var outcome = Outcome(letters: try letters(), deadLetters: live.failurePolicy.deadLetter)
        guard !dryRun, !outcome.letters.isEmpty else { return outcome }
        try record(await Self.send(outcome.letters, to: live, of: router), into: &outcome)
        return outcome
    }

    /// The subscriber's entry, a plugin's.
    private func plugin() throws -> Configuration.Subscriber {
        guard let entry = configuration.subscribers.first(where: { $0.name == subscriber }) else {
            throw RuntimeError(kind: .invalid, message: "\(configuration.path): no subscriber named '\(subscriber)'")
        }
        guard entry.sink == nil else {
            throw RuntimeError(kind: .invalid, message: "\(configuration.path): '\(subscriber)' is a sink: a redrive runs a plugin")
        }
        return entry
    }

    /// The subscriber's dead letters in the window that are not done, oldest first.
    private func letters() throws -> [DeadLetter] {
        try DeadLetters.read(configuration, subscriber: subscriber, window: window).filter { !$0.isDone }
    }

    /// Hands each letter's event to `target`, at most ``inFlight`` waiting at once, on a thread
    /// of its own (a full `block` queue holds it up, at most ``patience`` for each); returns, by
    /// letter, how each ended and the error of a failure, within ``patience`` of the last.
    private static func send(
        _ letters: [DeadLetter], to target: Subscriber, of router: Router
    ) async -> [(DeliveryTracker.Outcome, failure: String?)] {
        await withCheckedContinuation { done in
            Thread.detachNewThread {
                let wait = DispatchTimeInterval.seconds(Int(patience.components.seconds))
                let room = DispatchSemaphore(value: inFlight)
                let outstanding = DispatchGroup()
                let results = Mutex([(DeliveryTracker.Outcome, failure: String?)](repeating: (.lost, nil), count: letters.count))
                for (index, letter) in letters.enumerated() {
                    // None of the last ones done in all that time: the plugin takes no more, and the rest stay unsent.
                    guard room.wait(timeout: .now() + wait) == .success else { break }
                    outstanding.enter()
                    let tracker = DeliveryTracker { outcome, failure in
                        results.withLock { $0[index] = (outcome, failure) }
                        room.signal()
                        outstanding.leave()
                    }
                    var headers = letter.event["headers"].flatMap { JSONTape($0).strings } ?? [:]
                    headers[header] = String(letter.redrives + 1)
                    _ = router.send(  // refused: the tracker says it was lost
                        letter.topic, tape: JSONTape(letter.event["data"] ?? .null), headers: headers,
                        id: EventID(letter.id) ?? EventID(prefix: 0, sequence: letter.sequence), time: letter.time,
                        to: target, tracker: tracker, waitingForRoom: patience)
                }
                _ = outstanding.wait(timeout: .now() + wait)  // every tracker reported, or the rest is unsettled
                done.resume(returning: results.withLock { $0 })
            }
        }
    }

    /// Counts the results into `outcome` and records them: handled letters done, failed ones
    /// with their new error; an unsettled one is not recorded, and so goes again next time.
    private func record(_ results: [(DeliveryTracker.Outcome, failure: String?)], into outcome: inout Outcome) throws {
        var recorded: [(letter: DeadLetter, error: String?)] = []
        for (letter, result) in zip(outcome.letters, results) {
            switch result {
            case (.done, nil):
                outcome.handled += 1
                recorded.append((letter, nil))
            case (.done, let error?), (.failed, let error?):  // dead-lettered again, or failed again
                outcome.failed += 1
                recorded.append((letter, error))
            case (.failed, nil):
                outcome.failed += 1
                recorded.append((letter, "failed"))
            case (.lost, _):
                outcome.unsettled += 1
            }
        }
        try DeadLetters.record(recorded, in: try DeadLetters.folder(of: configuration))
    }
}
