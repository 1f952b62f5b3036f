import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Switchboard

/// `switchboard tap`: print what a running instance routes, live.
struct TapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "Print the events a running instance routes, live, as JSON lines.",
        discussion: """
            Each line: {"id": ..., "time": ..., "topic": ..., "data": ..., "headers": {...}}, for every \
            event whose topic matches PATTERN, until --limit events or Ctrl-C. The instance serves the \
            tap on its metrics listener (metrics.listen or --metrics-listen). A tap never slows the \
            instance: when it cannot keep up, it misses events and says how many on standard error.

            Example:
              switchboard tap 'order.>' --url http://127.0.0.1:9464 --limit 10
            """
    )

    @Argument(help: "The topics to show: a pattern such as 'order.>' or '>' for everything.")
    var pattern: String

    @Option(help: "The instance's metrics listener.")
    var url = "http://127.0.0.1:9464"

    @Option(help: "Stop after this many events.")
    var limit: Int?

    @Option(help: "The instance's metrics.token (default: the SWITCHBOARD_TOKEN environment variable).")
    var token: String?

    func validate() throws {
        do { try Topic.validatePattern(pattern) } catch { throw ValidationError("\(error)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit)") }
        try InstanceClient.validate(url)
    }

    func run() async throws {
        let instance = InstanceClient(url: url, token: token)
        let request = instance.request(.GET, "/tap", query: [URLQueryItem(name: "pattern", value: pattern)])
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        } catch {
            printDiagnostic("switchboard tap: cannot reach \(url): \(error)")
            throw ExitCode(1)
        }
        guard response.status == .ok else {
            printDiagnostic("switchboard tap: \(await instance.refusal(response))")
            throw ExitCode(1)
        }
        var shown = 0
        var pending: [UInt8] = []
        for try await buffer in response.body {
            pending.append(contentsOf: buffer.readableBytesView)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[..<newline]
                defer { pending.removeSubrange(...newline) }
                guard !line.isEmpty else { continue }  // the instance's keep-alive
                if line.starts(with: #"{"missed":"#.utf8) {
                    let missed = (try? JSON(parsing: Array(line)))?["missed"]?.intValue ?? 0
                    printDiagnostic("switchboard tap: missed \(missed) events so far (the tap could not keep up)")
                    continue
                }
                FileHandle.standardOutput.write(Data(line) + Data([UInt8(ascii: "\n")]))
                shown += 1
                if let limit, shown >= limit { return }
            }
        }
        printDiagnostic("switchboard tap: the instance closed the tap (it is shutting down)")
    }
}
