import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
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

/// `switchboard redrive`: send a subscriber's dead letters again, to a fresh instance of its
/// plugin, or with `--url` through a running instance's subscriber.
struct RedriveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redrive",
        abstract: "Send a subscriber's dead letters again, each once, to its plugin.",
        discussion: """
            Without --url, the plugin runs here as `replay` runs it, with its usual limits, init and \
            shutdown included. With --url, a running instance hands them to its own subscriber of that \
            name, beside its traffic (the instance needs metrics.admin: true): use it while an instance \
            runs on the journal, so that the plugin runs once. Each event keeps its id and time and \
            carries the header Switchboard-Redrive with the number of its redrives. What the plugin \
            handles is marked done; what fails again stays a dead letter, with its new error. --from \
            and --to bound the dead letters' own sequence numbers or times.

            Examples:
              switchboard redrive --config config/switchboard.yaml --subscriber email --dry-run
              switchboard redrive --subscriber email --url http://127.0.0.1:9464
            """
    )

    @Option(help: "The configuration file (not read with --url).")
    var config = defaultConfiguration

    @Option(help: "The subscriber whose dead letters to send again.")
    var subscriber: String

    @OptionGroup var window: JournalWindowOptions

    @Flag(help: "List what would be sent, and send nothing.")
    var dryRun = false

    @Option(help: "Redrive through the running instance whose metrics listener this is, such as http://127.0.0.1:9464.")
    var url: String?

    @Option(help: "With --url: the instance's metrics.token (default: the SWITCHBOARD_TOKEN environment variable).")
    var token: String?

    func validate() throws {
        if let url { try InstanceClient.validate(url) }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let outcome = if let url { try await redrive(through: url) } else { try await redriveHere() }
        let count = "\(outcome.letters.count) dead \(outcome.letters.count == 1 ? "letter" : "letters")"
        if dryRun {
            FileHandle.standardOutput.write(Data(outcome.letters.map { DeadLettersCommand.describe($0) + "\n" }.joined().utf8))
            printDiagnostic("would redrive \(count) to \(subscriber)")
            return
        }
        let again = outcome.deadLetters ? "dead-lettered again" : "failed again"
        printDiagnostic("redrove \(count) to \(subscriber): handled \(outcome.handled), \(again) \(outcome.failed)")
        if outcome.unsettled > 0 {
            printDiagnostic(
                "switchboard redrive: \(outcome.unsettled) were refused by a full queue or still queued when the plugin stopped: "
                    + "they stay listed, and go again with the next redrive")
            throw ExitCode(1)
        }
    }

    /// A redrive to a fresh instance of the plugin, in this process.
    private func redriveHere() async throws -> Redrive.Outcome {
        var redrive = Redrive(configuration: try loadConfiguration(config), subscriber: subscriber)
        redrive.window = window.window
        redrive.dryRun = dryRun
        do {
            return try await redrive.run()
        } catch let error as RuntimeError {
            throw failure(reporting: error)
        }
    }

    /// A redrive through the running instance at `url`: `POST /-/redrive`.
    private func redrive(through url: String) async throws -> Redrive.Outcome {
        let instance = InstanceClient(url: url, token: token)
        var query = [URLQueryItem(name: "subscriber", value: subscriber)]
        if let from = window.from { query.append(URLQueryItem(name: "from", value: from.text)) }
        if let to = window.to { query.append(URLQueryItem(name: "to", value: to.text)) }
        if dryRun { query.append(URLQueryItem(name: "dry_run", value: "true")) }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            // The answer comes once every event is done: a long redrive takes as long as its plugin.
            response = try await HTTPClient.shared.execute(instance.request(.POST, "/-/redrive", query: query), timeout: .hours(1))
            body = response.status == .ok ? try await response.body.collect(upTo: 256 << 20) : ByteBuffer()
        } catch {
            printDiagnostic("switchboard redrive: no answer from \(url): \(error) (a redrive under way goes on in the instance: see its log and `switchboard deadletters`)")
            throw ExitCode(1)
        }
        guard response.status == .ok else {
            printDiagnostic("switchboard redrive: \(await instance.refusal(response))")
            throw ExitCode(response.status == .unprocessableEntity ? 2 : 1)
        }
        guard let answer = try? JSON(parsing: String(buffer: body)), case let .array(listed)? = answer["letters"] else {
            printDiagnostic("switchboard redrive: \(url) answered with what is not a redrive's report: \(String(buffer: body).prefix(200))")
            throw ExitCode(1)
        }
        var outcome = Redrive.Outcome(letters: listed.compactMap(DeadLetter.init(json:)), deadLetters: answer["dead_letter"] == true)
        outcome.handled = Int(answer["handled"]?.intValue ?? 0)
        outcome.failed = Int(answer["failed"]?.intValue ?? 0)
        outcome.unsettled = Int(answer["unsettled"]?.intValue ?? 0)
        return outcome
    }
}
