import Foundation
import SwitchboardTestSupport

/// What a run of the binary came to.
typealias RunResult = (status: Int32, output: String, errors: String)

/// Runs the built `switchboard` binary, as a user would, from the package's root, with
/// `input` on its standard input. With `closedOutput`, its standard output is a pipe whose
/// reading end is already closed, as in `switchboard run | head -0`.
func switchboard(
    _ arguments: String..., input: String = "", closedOutput: Bool = false, environment: [String: String] = [:]
) async throws -> RunResult {
    try await switchboard(arguments, input: Data(input.utf8), closedOutput: closedOutput, environment: environment)
}

/// This process's environment with `changes` applied, for a child process.
func environment(with changes: [String: String]) -> [String: String] {
    ProcessInfo.processInfo.environment.merging(changes) { _, changed in changed }
}

/// ``switchboard(_:input:closedOutput:)`` with any bytes, valid UTF-8 or not, as input.
/// The process is fed and waited for on a thread of its own: blocking a thread of the
/// concurrency pool (two here) for a whole run would stall every other test.
func switchboard(
    _ arguments: [String], input: Data, closedOutput: Bool = false, environment changes: [String: String] = [:]
) async throws -> RunResult {
    let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let process = Process()
    process.executableURL = build.appendingPathComponent("switchboard")
    process.arguments = arguments
    process.currentDirectoryURL = packageRoot
    process.environment = environment(with: changes)
    let output = Pipe()
    let errors = Pipe()
    let standardInput = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = standardInput
    if closedOutput { try output.fileHandleForReading.close() }
    try process.run()
    return await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            // Standard error is read on one more thread, so that neither pipe can fill up and stall the process.
            let errorData = Recorder<Data>()
            let errorsRead = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                errorData.append(errors.fileHandleForReading.readDataToEndOfFile())
                errorsRead.signal()
            }
            standardInput.fileHandleForWriting.write(input)
            try? standardInput.fileHandleForWriting.close()
            let outputData = closedOutput ? Data() : output.fileHandleForReading.readDataToEndOfFile()
            errorsRead.wait()
            process.waitUntilExit()
            continuation.resume(returning: (
                process.terminationStatus, String(decoding: outputData, as: UTF8.self),
                String(decoding: errorData.all[0], as: UTF8.self)))
        }
    }
}

/// The lines of `text` that start with `prefix`, in order.
func lines(of text: String, startingWith prefix: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
}
