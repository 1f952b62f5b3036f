import Foundation
import Logging
import Synchronization
@testable import SwitchboardLua
import Switchboard
@_exported import SwitchboardTestSupport

/// A router with one Lua plugin subscribed to `topics`, and a Swift recorder of what the
/// plugin publishes to `out.>`.
struct LuaFixture {
    let router = Router()
    let folder: PluginFolder
    let published = Recorder<Event>()

    init(_ source: String, topics: [String] = ["in.>"], settings: JSON = [:], capacity: Int = 1024,
         overflow: OverflowPolicy = .block, logger: Logger = Logger(label: "test"),
         files: [String: String] = [:], output: Int32 = 1, onFailure: FailurePolicy = FailurePolicy(),
         timeout: Duration = .seconds(1)) throws {
        folder = try PluginFolder()
        for (name, source) in files { try folder.write(name, source) }
        let path = try folder.write("plugin.lua", source)
        let published = self.published
        try router.subscribe("out.>", name: "recorder", capacity: 100_000) { published.append($0) }
        let configuration = LuaSubscriberConfiguration(
            name: "plugin", script: path, topics: topics, capacity: capacity, overflow: overflow, timeout: timeout,
            onFailure: onFailure, settings: settings)
        try router.subscribe(
            topics, name: "plugin", capacity: capacity, overflow: overflow, failurePolicy: onFailure,
            handler: LuaHandler(configuration: configuration, logger: logger, output: output))
    }

    /// The data of everything the plugin published, once `count` events arrived.
    func outputs(_ count: Int) async -> [JSON] {
        _ = await eventually { published.count >= count }
        return published.all.map(\.data)
    }
}

/// Records log entries, for checking what plugins log.
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }
    private let entries = Mutex<[Entry]>([])
    var all: [Entry] { entries.withLock { $0 } }
    func record(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            recorder.record(Entry(
                level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// A file that plugins `print` to, read back line by line.
final class OutputFile {
    let path: String
    let descriptor: Int32
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("sb-out-\(UUID().uuidString)").path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    }
    deinit {
        close(descriptor)
        unlink(path)
    }
    var lines: [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

