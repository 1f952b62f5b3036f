import ArgumentParser
import Foundation
import Switchboard

/// `switchboard deadletters`: list the dead letters a journal holds.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deadletters",
        abstract: "List the dead letters in the journal: the events subscribers failed for good, with the error.",
        discussion: """
            Each line: the dead letter's sequence number, the subscriber, the original event's topic, \
            id and time, the attempts and the error. A dead letter that a redrive handled is done, and \
            listed only with --all. --from and --to bound the dead letters' own sequence numbers or times.

            Example:
              switchboard deadletters --config config/switchboard.yaml --subscriber email
            """
    )

    @Option(help: "The configuration file.")
    var config = defaultConfiguration

    @Option(help: "Only this subscriber's dead letters.")
    var subscriber: String?

    @OptionGroup var window: JournalWindowOptions

    @Flag(help: "Print JSON lines: {\"seq\", \"subscriber\", \"id\", \"topic\", \"time\", \"error\", \"attempts\", \"redrives\", \"done\"}.")
    var json = false

    @Flag(help: "Also list the dead letters a redrive handled.")
    var all = false

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let letters: [DeadLetter]
        do {
            letters = try DeadLetters.read(try loadConfiguration(config), subscriber: subscriber, window: window.window)
        } catch let error as RuntimeError {
            throw failure(reporting: error)
        }
        let shown = letters.filter { all || !$0.isDone }
        var output = ""
        for letter in shown { output += (json ? letter.json.serialized() : Self.describe(letter)) + "\n" }
        FileHandle.standardOutput.write(Data(output.utf8))
        let done = letters.count { $0.isDone }
        let hidden = all || done == 0 ? "" : " (and \(done) a redrive handled: --all lists them)"
        printDiagnostic("\(shown.count) dead \(shown.count == 1 ? "letter" : "letters")\(hidden)")
    }

    /// `#12 email: order.created 3f2a9c1e0b7d4a58-1a at 2026-12-04T19:51:55.032Z, 2 attempts: <error>`.
    static func describe(_ letter: DeadLetter) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions.insert(.withFractionalSeconds)
        let time = formatter.string(from: Date(timeIntervalSince1970: letter.time))
        let redriven = letter.redrives == 0 ? "" : ", \(letter.redrives) \(letter.redrives == 1 ? "redrive" : "redrives")"
        let error = letter.error.components(separatedBy: "\nstack traceback:")[0]  // --json keeps the traceback
        return "#\(letter.sequence) \(letter.subscriber): \(letter.topic) \(letter.id) at \(time), "
            + "\(letter.attempts) \(letter.attempts == 1 ? "attempt" : "attempts")\(redriven)\(letter.isDone ? " (done)" : ""): \(error)"
    }
}

/// `switchboard redrive`: send a subscriber's dead letters again, to a fresh instance of its plugin.
struct RedriveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redrive",
        abstract: "Send a subscriber's dead letters again, each once, to a fresh instance of its plugin.",
        discussion: """
            The plugin runs as `replay` runs it, with its usual limits, init and shutdown included. Each \
            event keeps its id and time and carries the header Switchboard-Redrive with the number of \
            its redrives. What the plugin handles is marked done; what fails again stays a dead letter, \
            with its new error. --from and --to bound the dead letters' own sequence numbers or times.

            Example:
              switchboard redrive --config config/switchboard.yaml --subscriber email --dry-run
            """
    )

    @Option(help: "The configuration file.")
    var config = defaultConfiguration

    @Option(help: "The subscriber whose dead letters to send again.")
    var subscriber: String

    @OptionGroup var window: JournalWindowOptions

    @Flag(help: "List what would be sent, and send nothing.")
    var dryRun = false

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let loaded = try loadConfiguration(config)
        var redrive = Redrive(configuration: loaded, subscriber: subscriber)
        redrive.window = window.window
        redrive.dryRun = dryRun
        let outcome: Redrive.Outcome
        do {
            outcome = try await redrive.run()
        } catch let error as RuntimeError {
            throw failure(reporting: error)
        }
        let count = "\(outcome.letters.count) dead \(outcome.letters.count == 1 ? "letter" : "letters")"
        if dryRun {
            FileHandle.standardOutput.write(Data(outcome.letters.map { DeadLettersCommand.describe($0) + "\n" }.joined().utf8))
            printDiagnostic("would redrive \(count) to \(subscriber)")
            return
        }
        let again = loaded.subscribers.first { $0.name == subscriber }?.onFailure.deadLetter == true
            ? "dead-lettered again" : "failed again"
        printDiagnostic("redrove \(count) to \(subscriber): handled \(outcome.handled), \(again) \(outcome.failed)")
        if outcome.unsettled > 0 {
            printDiagnostic(
                "switchboard redrive: \(outcome.unsettled) were refused or still queued when the plugin stopped: "
                    + "no dead letter is marked done, so each goes again with the next redrive")
            throw ExitCode(1)
        }
    }
}
