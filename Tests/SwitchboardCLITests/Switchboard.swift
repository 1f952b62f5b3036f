import Foundation

/// Runs the built `switchboard` binary, as a user would, from the package's root, with
/// `input` on its standard input. With `closedOutput`, its standard output is a pipe whose
/// reading end is already closed, as in `switchboard run | head -0`.
func switchboard(
    _ arguments: String..., input: String = "", closedOutput: Bool = false
) throws -> (status: Int32, output: String, errors: String) {
    try switchboard(arguments, input: Data(input.utf8), closedOutput: closedOutput)
}

/// ``switchboard(_:input:closedOutput:)`` with any bytes, valid UTF-8 or not, as input.
func switchboard(
    _ arguments: [String], input: Data, closedOutput: Bool = false
) throws -> (status: Int32, output: String, errors: String) {
    let build = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let process = Process()
    process.executableURL = build.appendingPathComponent("switchboard")
    process.arguments = arguments
    process.currentDirectoryURL = root
    let output = Pipe()
    let errors = Pipe()
    let standardInput = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = standardInput
    if closedOutput { try output.fileHandleForReading.close() }
    try process.run()
    standardInput.fileHandleForWriting.write(input)
    try standardInput.fileHandleForWriting.close()
    let outputData = closedOutput ? Data() : output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

/// The lines of `text` that start with `prefix`, in order.
func lines(of text: String, startingWith prefix: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
}
