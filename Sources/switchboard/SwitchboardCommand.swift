import ArgumentParser
import Foundation
import Switchboard

/// The `switchboard` command line.
@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "A publish/subscribe event router with Lua subscriber plugins.",
        version: "0.1.0",
        subcommands: [
            Run.self, Check.self, TestCommand.self, JournalCommand.self, ReplayCommand.self, DeadLettersCommand.self,
            RedriveCommand.self, TapCommand.self,
        ]
    )

    /// Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error, 3 events lost
    /// (`run --fail-on`), 128 + N stopped by signal N during start-up.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // swift-argument-parser answers usage errors with 64 (EX_USAGE); ours is 2.
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            printDiagnostic(fullMessage(for: error))
            exit(withError: ExitCode(2))
        }
    }
}


/// Prints `error`'s message and gives the exit status for it: 2 for an invalid configuration,
/// subscriber or plugin, 1 for a failure along the way.
func failure(reporting error: RuntimeError) -> ExitCode {
    printDiagnostic(error.message)
    return ExitCode(error.kind == .invalid ? 2 : 1)
}

/// Where `--config` points when it is not given.
let defaultConfiguration = "config/switchboard.yaml"

/// Loads the configuration file, or reports every problem and exits with 2; a missing default
/// says that it was the default, and where it was looked for.
func loadConfiguration(_ path: String) throws -> Configuration {
    do {
        return try Configuration.load(path: path)
    } catch {
        printDiagnostic("\(error)")
        if path == defaultConfiguration, !FileManager.default.fileExists(atPath: path) {
            printDiagnostic("(\(path) is the default configuration, looked for in \(FileManager.default.currentDirectoryPath); name one with --config PATH)")
        }
        throw ExitCode(2)
    }
}

/// `switchboard check`: validate the configuration and load every plugin.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration and load every plugin, routing nothing.",
        discussion: """
            Loads every plugin (syntax, a missing handle for a subscriber with topics, errors in init) \
            with publish and timers inert. Exits 0 when everything is valid, 2 with every problem listed otherwise.

            Example:
              switchboard check --config config/switchboard.yaml
            """
    )

    @Option(help: "The configuration file.")
    var config = defaultConfiguration

    @Flag(help: "Also print every subscriber's settings as they will run, defaults marked.")
    var verbose = false

    func run() async throws {
        let loaded = try loadConfiguration(config)
        let problems = loaded.pluginProblems()
        guard problems.isEmpty else {
            printDiagnostic(problems.joined(separator: "\n"))
            throw ExitCode(2)
        }
        if verbose { for subscriber in loaded.subscribers { printDiagnostic(Self.describe(subscriber)) } }
        let count = loaded.subscribers.count
        printDiagnostic("\(config): \(count) \(count == 1 ? "subscriber" : "subscribers"), all valid")
    }

    /// A subscriber's settings as it will run: `(default)` after each the file leaves out.
    /// Header values are never printed: they may be secrets.
    static func describe(_ entry: Configuration.Subscriber) -> String {
        let lua = entry.lua
        func mark(_ text: String, _ set: Bool) -> String { set ? text : "\(text) (default)" }
        let policy = lua.onFailure
        let failure = "retries \(policy.retries), backoff \(Quantities.duration(policy.backoff)), "
            + "max_backoff \(Quantities.duration(policy.maxBackoff)), dead_letter \(policy.deadLetter), "
            + "restart_after \(policy.restartAfter)"
        let topics = "  topics: \(lua.topics.isEmpty ? "none (a producer)" : lua.topics.joined(separator: ", "))"
        let queue = "  queue: capacity \(mark(String(lua.capacity), entry.capacity != nil)), overflow \(mark("\(lua.overflow)", entry.overflow != nil))"
        let onFailure = "  on_failure: \(mark(failure, entry.onFailure != FailurePolicy()))"
        switch entry.sink {
        case .http(let http)?:
            let headers = http.headers.keys.sorted().map { "\($0): (hidden)" }
            return ([
                "\(entry.name): http \(http.method) \(http.printableURL)",
                "  body \(http.body), batch max_events \(http.maxEvents), max_wait \(Quantities.duration(http.maxWait)), "
                    + "timeout \(Quantities.duration(http.timeout)), tls ca \(http.caFile ?? "the system's")",
                "  headers: \(headers.isEmpty ? "none" : headers.joined(separator: ", "))",
                topics, queue, onFailure,
            ]).joined(separator: "\n")
        case .file(let file)?:
            let rotate = file.rotateBytes.map { "rotate at \(Quantities.size($0)), keep \(file.keep)" } ?? "never rotated"
            return ([
                "\(entry.name): file \(file.path)",
                "  format \(file.format), \(rotate), fsync \(file.fsync.rawValue)",
                topics, queue, onFailure,
            ]).joined(separator: "\n")
        case nil:
            return [
                "\(entry.name): plugin \(entry.plugin)", topics, queue,
                "  timeout: \(mark(Quantities.duration(lua.timeout), entry.timeout != nil))",
                "  memory: \(mark(Quantities.size(lua.memory), entry.memory != nil))",
                onFailure,
                "  allow: \(lua.allow.isEmpty ? "none" : lua.allow.map(\.rawValue).sorted().joined(separator: ", "))",
            ].joined(separator: "\n")
        }
    }
}
