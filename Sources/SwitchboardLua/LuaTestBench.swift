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

    /// Appends to one of the record's lists unless it is full.
    func append<Entry>(_ entry: Entry, to list: WritableKeyPath<LuaTestRun.Record, [Entry]>) {
        guard record[keyPath: list].count < LuaTestRun.recordLimit else {
            record.overflowed = true
            return
        }
        record[keyPath: list].append(entry)
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
