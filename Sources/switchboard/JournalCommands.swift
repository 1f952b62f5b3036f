import ArgumentParser
import Foundation
import Switchboard

/// `--from` and `--to`, both inclusive.
struct JournalWindowOptions: ParsableArguments {
    @Option(help: "The first event: a sequence number or an RFC 3339 time.")
    var from: JournalWindow.Bound?

    @Option(help: "The last event: a sequence number or an RFC 3339 time.")
    var to: JournalWindow.Bound?

    var window: JournalWindow { JournalWindow(from: from, to: to) }
}

/// A `--from`/`--to` bound: a sequence number, or an RFC 3339 time.
extension JournalWindow.Bound: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
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
    var config = defaultConfiguration

    @OptionGroup var window: JournalWindowOptions

    @Option(help: "Only events whose topic matches this pattern.")
    var topic: String?

    func validate() throws {
        if let topic {
            do { try Topic.validatePattern(topic) } catch { throw ValidationError("--topic: \(error)") }
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let loaded = try loadConfiguration(config)
        guard let folder = loaded.journal?.path else {
            printDiagnostic("\(config): no journal is configured (journal: { path: ... })")
            throw ExitCode(2)
        }
        let filter = topic.map { PatternSet([$0]) }
        var output = ""
        do {
            try window.window.forEachRecord(in: folder) { record in
                guard filter?.matches(record.topic) ?? true else { return }
                output += record.json.serialized() + "\n"
                if output.utf8.count >= 1 << 16 { try Self.write(&output) }
            }
        } catch let problem as JournalReader.CorruptRecord {
            try Self.write(&output)
            printDiagnostic("journal: \(problem)")
            throw ExitCode(1)
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
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
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
    var config = defaultConfiguration

    @Option(help: "The subscriber whose plugin to run.")
    var subscriber: String

    @OptionGroup var window: JournalWindowOptions

    @Flag(help: "Route what the plugin publishes to the configuration's other subscribers.")
    var publish = false

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        var replay = Replay(configuration: try loadConfiguration(config), subscriber: subscriber)
        replay.window = window.window
        replay.publish = publish
        var bar: ProgressBar?
        let outcome: Replay.Outcome
        do {
            outcome = try await replay.run { sent, total in
                guard StandardError.isTerminal else { return }
                bar = bar ?? ProgressBar(total: total)
                bar?.update(sent)
            }
        } catch let error as RuntimeError {
            bar?.finish()
            throw failure(reporting: error)
        }
        bar?.finish()
        let fate = publish ? "routed to the other subscribers" : "discarded"
        printDiagnostic(
            "replayed \(outcome.sent) events to \(subscriber): handled \(outcome.stats.handled), failed \(outcome.stats.failed); "
                + "it published \(outcome.published) (\(fate))")
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
