import ArgumentParser
import Foundation
import Switchboard

/// `--from` and `--to`, both inclusive.
struct JournalWindow: ParsableArguments {
    @Option(help: "The first event: a sequence number or an RFC 3339 time.")
    var from: JournalBound?

    @Option(help: "The last event: a sequence number or an RFC 3339 time.")
    var to: JournalBound?
}

/// A `--from`/`--to` bound: a sequence number, or an RFC 3339 time.
enum JournalBound: ExpressibleByArgument {
    case sequence(UInt64)
    case time(Double)

    init?(argument: String) {
        if let sequence = UInt64(argument) {
            self = .sequence(sequence)
        } else if let date = ISO8601DateFormatter().date(from: argument)
            ?? { let f = ISO8601DateFormatter(); f.formatOptions.insert(.withFractionalSeconds); return f.date(from: argument) }() {
            self = .time(date.timeIntervalSince1970)
        } else {
            return nil
        }
    }

    /// True when `record` is at or after this bound.
    func admitsFrom(_ record: JournalRecord) -> Bool {
        switch self {
        case let .sequence(sequence): record.sequence >= sequence
        case let .time(time): record.time >= time
        }
    }

    /// True when `record` is at or before this bound.
    func admitsTo(_ record: JournalRecord) -> Bool {
        switch self {
        case let .sequence(sequence): record.sequence <= sequence
        case let .time(time): record.time <= time
        }
    }
}

/// The journal folder of a configuration, or exit 2 when it has none.
func journalFolder(of configuration: Configuration) throws -> String {
    guard let journal = configuration.journal else {
        printDiagnostic("\(configuration.path): no journal is configured (journal: { path: ... })")
        throw ExitCode(2)
    }
    return journal.path
}

/// Walks the journal's records within the bounds, in order; exit 1 at a corrupt record.
func forEachRecord(in folder: String, within window: JournalWindow, _ body: (JournalRecord) throws -> Void) throws {
    var records = JournalReader(folder: folder).makeIterator()
    while let record = records.next() {
        if let from = window.from, !from.admitsFrom(record) { continue }
        if let to = window.to, !to.admitsTo(record) { break }
        try body(record)
    }
    if let problem = records.problem {
        printDiagnostic("journal: \(problem)")
        throw ExitCode(1)
    }
}

/// `switchboard journal`: print journaled events as JSON lines.
struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Print journaled events as JSON lines.",
        discussion: """
            Each line: {"seq": N, "id": ..., "time": ..., "topic": ..., "data": ..., "headers": {...}}. \
            --from and --to take a sequence number or an RFC 3339 time, both inclusive.

            Example:
              switchboard journal --config config/switchboard.yaml --from 2026-11-29T10:00:00Z --topic 'order.>'
            """
    )

    @Option(help: "The configuration file.")
    var config = "config/switchboard.yaml"

    @OptionGroup var window: JournalWindow

    @Option(help: "Only events whose topic matches this pattern.")
    var topic: String?

    func validate() throws {
        if let topic {
            do { try Topic.validatePattern(topic) } catch { throw ValidationError("--topic: \(error)") }
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let folder = try journalFolder(of: try loadConfiguration(config))
        let filter = topic.map { PatternSet([$0]) }
        var output = ""
        try forEachRecord(in: folder, within: window) { record in
            guard filter?.matches(record.topic) ?? true else { return }
            output += record.json.serialized() + "\n"
            if output.utf8.count >= 1 << 16 { try Self.write(&output) }
        }
        try Self.write(&output)
    }

    /// Writes and empties `text`; a closed standard output ends the command quietly.
    private static func write(_ text: inout String) throws {
        let ok = text.utf8.withContiguousStorageIfAvailable { writeAll(UnsafeRawBufferPointer($0), to: STDOUT_FILENO) } ?? true
        text = ""
        if !ok { throw ExitCode(0) }
    }
}

/// `switchboard replay`: run one subscriber's plugin over journaled events.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one subscriber's plugin, fresh, over the journaled events that match its topics.",
        discussion: """
            The plugin runs with its usual limits, init and shutdown included, over the events in \
            order. What it publishes is counted and discarded, unless --publish routes it to the \
            configuration's other subscribers.

            Example:
              switchboard replay --config config/switchboard.yaml --subscriber email --from 1200
            """
    )

    @Option(help: "The configuration file.")
    var config = "config/switchboard.yaml"

    @Option(help: "The subscriber whose plugin to run.")
    var subscriber: String

    @OptionGroup var window: JournalWindow

    @Flag(help: "Route what the plugin publishes to the configuration's other subscribers.")
    var publish = false

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        var loaded = try loadConfiguration(config)
        let folder = try journalFolder(of: loaded)
        guard var target = loaded.subscribers.first(where: { $0.name == subscriber })?.lua else {
            printDiagnostic("\(config): no subscriber named '\(subscriber)'")
            throw ExitCode(2)
        }
        let patterns = PatternSet(target.topics)
        var total = 0
        try forEachRecord(in: folder, within: window) { if patterns.matches($0.topic) { total += 1 } }

        let router = Router()
        loaded.subscribers.removeAll { $0.name == subscriber }
        if publish { _ = try Deployment(router: router, configuration: loaded) }
        // Routed to by nothing but the replay: its own publishes must not come back to it.
        target.topics = []
        target.overflow = .block
        let replayed: Subscriber
        do {
            replayed = try router.subscribe(lua: target)
        } catch {
            printDiagnostic("\(config): \(error)")
            throw ExitCode(2)
        }
        var sent = 0
        let progress = StandardError.isTerminal ? ProgressBar(total: total) : nil
        try forEachRecord(in: folder, within: window) { record in
            guard patterns.matches(record.topic) else { return }
            router.send(record.topic, tape: record.data, headers: record.headers, id: record.id, time: record.time, to: replayed)
            sent += 1
            progress?.update(sent)
        }
        progress?.finish()
        await router.shutdown(drainTimeout: .seconds(3600))
        let stats = router.stats()
        let counts = stats[subscriber]!
        let fate = publish ? "routed to the other subscribers" : "discarded"
        printDiagnostic(
            "replayed \(sent) events to \(subscriber): handled \(counts.handled), failed \(counts.failed); "
                + "it published \(stats.published) (\(fate))")
    }
}

/// A progress bar with a count and an estimate of the time left, redrawn at most ten times a second.
final class ProgressBar {
    private let total: Int
    private let start = ContinuousClock.now
    private var lastDraw = ContinuousClock.now - .seconds(1)

    init(total: Int) { self.total = total }

    func update(_ done: Int) {
        let now = ContinuousClock.now
        guard now - lastDraw >= .milliseconds(100) || done == total else { return }
        lastDraw = now
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = Double((now - start).components.seconds) + Double((now - start).components.attoseconds) / 1e18
        let left = fraction > 0 ? elapsed / fraction - elapsed : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        StandardError.showProgress("[\(bar)] \(done)/\(total)  ETA \(Int(left.rounded()))s")
    }

    func finish() { StandardError.showProgress(nil) }
}
