import Foundation
import SwitchboardTestSupport

/// A `switchboard` process that a test talks to while it runs: events go to its standard
/// input as the test writes them, its standard output and error go to files in `folder`.
final class LiveRun: @unchecked Sendable {  // `input` is written from one test at a time
    let process = Process()
    let folder: PluginFolder
    private let input = Pipe()

    /// Starts the built binary with `arguments` and waits until its standard error says
    /// `ready` (by default, that its subscribers run: `N subscribers running`).
    init(
        _ arguments: [String], in folder: PluginFolder, ready: String = " running",
        environment changes: [String: String] = [:]
    ) async throws {
        self.folder = folder
        Glibc.signal(SIGPIPE, SIG_IGN)  // writing to a process a test killed must not kill the tests
        let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        process.executableURL = build.appendingPathComponent("switchboard")
        process.arguments = arguments
        process.currentDirectoryURL = packageRoot
        process.environment = environment(with: changes)
        for name in ["out.txt", "errors.txt"] { _ = FileManager.default.createFile(atPath: folder.path(name), contents: nil) }
        process.standardOutput = FileHandle(forWritingAtPath: folder.path("out.txt"))
        process.standardError = FileHandle(forWritingAtPath: folder.path("errors.txt"))
        process.standardInput = input
        try process.run()
        _ = await eventually { self.errors.contains(ready) }
    }

    /// Standard output so far.
    var output: String { (try? String(contentsOfFile: folder.path("out.txt"), encoding: .utf8)) ?? "" }
    /// Standard error so far.
    var errors: String { (try? String(contentsOfFile: folder.path("errors.txt"), encoding: .utf8)) ?? "" }

    /// Writes event lines to its standard input; after it died, they go nowhere.
    func send(_ lines: [String]) {
        try? input.fileHandleForWriting.write(contentsOf: Data(lines.map { $0 + "\n" }.joined().utf8))
    }

    /// Starts feeding it `count` lines, `line(n)` for n from 0, `chunk` at a time with a
    /// pause of `pauseMicroseconds` after each chunk, on a thread of its own (writes to a pipe
    /// block, which must not hold a thread of the concurrency pool). Await the result to know
    /// the feed ended; it ends early if the process dies.
    func feed(
        count: Int, chunk: Int = 100, pauseMicroseconds: UInt32 = 1000, line: @escaping @Sendable (Int) -> String
    ) -> Task<Void, Never> {
        Task {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { [self] in
                    for start in stride(from: 0, to: count, by: chunk) where process.isRunning {
                        send((start..<min(start + chunk, count)).map(line))
                        usleep(pauseMicroseconds)
                    }
                    continuation.resume()
                }
            }
        }
    }

    /// Sends it a signal.
    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits until its standard error shows `count` more occurrences of `text` than `before` did.
    func waitForErrors(_ text: String, count: Int = 1, after before: String = "", within seconds: Double = 10) async -> Bool {
        let seen = before.components(separatedBy: text).count - 1
        return await eventually(within: seconds) { self.errors.components(separatedBy: text).count - 1 >= seen + count }
    }

    /// Ends its input and waits for it to exit, at most `seconds`; its status, or nil if it is still running.
    func finish(within seconds: Double = 20) async -> Int32? {
        try? input.fileHandleForWriting.close()
        return await exitStatus(within: seconds)
    }

    /// Waits for it to exit, at most `seconds`; its status, or nil if it is still running.
    func exitStatus(within seconds: Double) async -> Int32? {
        _ = await eventually(within: seconds) { !self.process.isRunning }
        return process.isRunning ? nil : process.terminationStatus
    }
}
