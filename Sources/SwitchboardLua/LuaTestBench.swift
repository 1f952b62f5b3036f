import Logging
import SwitchboardCore

/// What a plugin under test talks to in place of a router and the wall clock: a virtual clock,
/// and the record of what it publishes, prints and logs. Touched only by the thread that drives
/// the ``LuaTestRun`` (the plugin's calls run on it), hence unchecked.
final class LuaTestBench: @unchecked Sendable {
    /// The virtual time in Unix seconds, read by C (`switchboard.now()`, `os.time()`, `os.date()`).
    let clock = UnsafeMutablePointer<Double>.allocate(capacity: 1)
    /// The virtual time in Unix nanoseconds: the timers' clock.
    private(set) var nanos: UInt64 = 0
    /// What `math.random` starts from in every state the run builds.
    let seed: Int64
    var record = LuaTestRun.Record()
    /// Bytes the record holds, about: the texts and payloads it keeps.
    private var bytes = 0
    /// Timer callbacks that failed.
    private(set) var timerFailures = 0

    init(startingAt nanos: UInt64, seed: Int64) {
        self.seed = seed
        set(nanos: nanos)
    }

    deinit { clock.deallocate() }

    /// Moves the virtual clock.
    func set(nanos: UInt64) {
        self.nanos = nanos
        // Whole seconds and the fraction apart: `1767225600.1` is then the nearest double, as a
        // test file's number is, where nanos / 1e9 in one division can be one unit off.
        clock.pointee = Double(nanos / 1_000_000_000) + Double(nanos % 1_000_000_000) / 1e9
    }

    /// Appends to one of the record's lists, of about `size` bytes, unless the record is full.
    func append<Entry>(_ entry: Entry, to list: WritableKeyPath<LuaTestRun.Record, [Entry]>, size: Int) {
        guard record[keyPath: list].count < LuaTestRun.recordLimit else {
            return cutOff("more than \(LuaTestRun.recordLimit) entries of one kind (publishes, prints, logs, errors)")
        }
        guard bytes + size <= LuaTestRun.recordByteLimit else {
            return cutOff("more than \(Quantities.size(LuaTestRun.recordByteLimit)) of publishes, prints and logs")
        }
        bytes += size
        record[keyPath: list].append(entry)
    }

    /// Appends a line to one of the record's lists of text.
    func append(_ line: String, to list: WritableKeyPath<LuaTestRun.Record, [String]>) {
        append(line, to: list, size: line.utf8.count)
    }

    /// A timer callback failed with `message`.
    func timerFailed(_ message: String) {
        timerFailures += 1
        append("timer callback failed: \(LuaTestRun.withoutTraceback(message))", to: \.errors)
    }

    /// Marks the record as cut short, for the first reason given.
    func cutOff(_ reason: String) {
        if record.cutOff == nil { record.cutOff = reason }
    }

    /// A logger whose lines, Switchboard's own about the plugin (a failed publish, a restart), go to the record's notes.
    func logger(label: String) -> Logger {
        Logger(label: label) { _ in NoteHandler(bench: self) }
    }

    private struct NoteHandler: LogHandler {
        let bench: LuaTestBench
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            bench.append("\(event.level): \(event.message)", to: \.notes)
        }
    }
}
