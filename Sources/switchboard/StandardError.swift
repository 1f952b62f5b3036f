import ArgumentParser
import Foundation
import Logging
import Switchboard
import Synchronization

/// Standard error, where everything Switchboard itself says goes: whole lines, one write
/// each, and on a terminal a live progress line kept below them.
enum StandardError {
    /// The progress line shown now, if any: a line written meanwhile clears it first.
    private static let progress = Mutex<String?>(nil)
    /// True when standard error is a terminal.
    static let isTerminal = isatty(STDERR_FILENO) == 1

    /// Writes `line` and a newline.
    static func write(_ line: String) {
        progress.withLock { shown in
            let clear = shown == nil ? "" : "\r\u{1B}[2K"
            writeAll(clear + line + "\n" + (shown ?? ""))
        }
    }

    /// Shows `line` as the live progress line, in place of the last one; nil removes it.
    static func showProgress(_ line: String?) {
        progress.withLock { shown in
            writeAll("\r\u{1B}[2K" + (line ?? ""))
            shown = line
        }
    }

    private static func writeAll(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { switchboard.writeAll($0, to: STDERR_FILENO) }
    }
}

/// Writes all of `bytes` to `descriptor`, retrying after interrupted and partial writes; false
/// when the descriptor refuses them (a closed pipe).
func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0, errno == EINTR { continue }
        if written <= 0 { return false }
        offset += written
    }
    return true
}

/// Writes a line to standard error.
func printDiagnostic(_ line: String) { StandardError.write(line) }

/// swift-log lines on standard error, as text (`2026-11-29T15:09:09+0000 error switchboard:
/// subscriber=email message`) or as one JSON object per line, at the level a shared
/// ``LogLevelSetting`` holds now (a reload may change it).
struct StandardErrorLogHandler: LogHandler {
    let label: String
    let format: Configuration.LogFormat
    let level: LogLevelSetting
    /// Set on one logger only (`logger.logLevel = ...`): it then ignores ``level``.
    private var ownLevel: Logger.Level?
    var metadata: Logger.Metadata = [:]

    init(label: String, format: Configuration.LogFormat, level: LogLevelSetting) {
        self.label = label
        self.format = format
        self.level = level
    }

    var logLevel: Logger.Level {
        get { ownLevel ?? level.level }
        set { ownLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let time = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withInternetDateTime])
        switch format {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            StandardError.write("\(time) \(event.level) \(label):\(fields.isEmpty ? "" : " " + fields) \(event.message)")
        case .json:
            var object: [(String, JSON)] = [
                ("time", .string(time)), ("level", .string("\(event.level)")), ("label", .string(label)),
                ("message", .string("\(event.message)")),
            ]
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { object.append((key, value.json)) }
            StandardError.write(JSON.object(.init(object, uniquingKeysWith: { first, _ in first })).serialized())
        }
    }
}

extension Configuration.LogFormat: ExpressibleByArgument {}
