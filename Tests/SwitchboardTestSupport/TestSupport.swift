// Helpers shared by the test targets.
import Foundation
import Switchboard
import Synchronization
import Testing

/// A thread-safe list that handlers append to.
public final class Recorder<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    public init() {}
    public func append(_ value: Value) { values.withLock { $0.append(value) } }
    /// Appends `value` and returns how many came before it.
    public func append(counting value: Value) -> Int {
        values.withLock { values in
            values.append(value)
            return values.count - 1
        }
    }
    public var all: [Value] { values.withLock { $0 } }
    public var count: Int { values.withLock { $0.count } }
}

/// A temporary folder of files for one test (plugins, configuration files), removed when released.
public final class PluginFolder {
    public let url: URL

    public init(files: [String: String] = [:]) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("sb-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (name, text) in files { try write(name, text) }
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `text` to `name` (creating folders) and returns its path.
    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let path = self.path(name)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The path of `name` in the folder.
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// Polls `condition` until it holds or `seconds` pass; a generous bound, not a speed target
/// (30 s by default: the whole suite on two busy cores, with nats-server and several
/// instances running beside a test, once took a start-up past 10 s). It sleeps between polls
/// without holding a thread of the cooperative pool, which other tests' tasks need.
public func eventually(within seconds: Double = 30, _ condition: () -> Bool) async -> Bool {
    await eventually(within: seconds, pollingEvery: .milliseconds(1)) { () async in condition() }
}

/// ``eventually(within:_:)`` for a condition that awaits (an HTTP request, say), polled every `interval`.
public func eventually(
    within seconds: Double = 30, pollingEvery interval: Duration = .milliseconds(20), _ condition: () async -> Bool
) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return await condition()
}

extension SubscriberStats {
    /// Every routed event has exactly one outcome.
    public var addsUp: Bool { received == handled + failed + dropped + abandoned + pending }
}

/// Tests that measure time, and tests that load both cores, run one at a time: on a two-core
/// machine a burst of work from one starves the threads whose timing another checks.
/// Everything else still runs in parallel with them.
public struct Exclusive: TestTrait, SuiteTrait, TestScoping {
    private actor Gate {
        private var busy = false
        private var waiting: [CheckedContinuation<Void, Never>] = []

        func enter() async {
            guard busy else {
                busy = true
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }

        func leave() {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
    }

    private static let gate = Gate()

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await Self.gate.enter()
        do {
            try await function()
        } catch {
            await Self.gate.leave()
            throw error
        }
        await Self.gate.leave()
    }
}

extension Trait where Self == Exclusive {
    /// Runs the test (or the whole suite) alone among the other `.exclusive` ones.
    public static var exclusive: Exclusive { Exclusive() }
}

/// The package's root folder, where `config/` and `plugins/` are.
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs `executable` with `arguments` on a thread of its own (not one of the concurrency
/// pool's); its exit status and what it wrote to standard output.
public func runProgram(_ executable: String, _ arguments: [String] = []) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    return await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            continuation.resume(returning: (process.terminationStatus, String(decoding: data, as: UTF8.self)))
        }
    }
}
