import Foundation
import Logging
import Synchronization
import SwitchboardConfig
import SwitchboardCore

/// The handler of a `file:` sink: one line per event, each in a single `write` to a file opened
/// for appending, rotated by size and synced as the journal syncs. A reload reopens the file
/// (``Reopening/request()``), so logrotate can move it away, as can a rebuild after failures.
public final class FileSink: EventHandler {
    /// Asks a file sink, from any thread, to reopen its file before its next write.
    public final class Reopening: Sendable {
        fileprivate let requested = Atomic<Bool>(false)
        public init() {}
        /// The next write goes to a newly opened file at the sink's path.
        public func request() { requested.store(true, ordering: .relaxed) }
    }

    private let settings: Configuration.FileSink
    private let reopening: Reopening
    private var descriptor: Int32 = -1
    private var size = 0
    private var line: [UInt8] = []
    /// When written bytes still wait for a sync, under `fsync: interval` (monotonic nanoseconds).
    private var syncDue: UInt64?

    /// Opens (creating it and its folder when missing) the file of `settings`.
    public init(settings: Configuration.FileSink, reopening: Reopening = Reopening()) throws {
        self.settings = settings
        self.reopening = reopening
        try open()
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    public func handle(_ event: Event) throws {
        if reopening.requested.exchange(false, ordering: .relaxed) { try reopen() }
        line.removeAll(keepingCapacity: true)
        switch settings.format {
        case .event: event.writeJSON(to: &line)
        case .data: event.tape.write(to: &line)
        }
        line.append(UInt8(ascii: "\n"))
        if let limit = settings.rotateBytes, size > 0, size + line.count > limit { try rotate() }
        try write(line)
        size += line.count
        switch settings.fsync {
        case .always: try sync()
        case .interval: if syncDue == nil { syncDue = SystemClock.monotonicNanos() &+ SystemClock.nanoseconds(Self.syncInterval) }
        case .never: break
        }
    }

    /// How long written lines wait for a sync under `fsync: interval`: the journal's interval.
    static let syncInterval = Duration.milliseconds(100)

    public var nextTimerDeadline: UInt64? { syncDue }

    public func fireTimers() { try? sync() }

    public func stop() {
        if settings.fsync != .never { try? sync() }
        close(descriptor)
        descriptor = -1
    }

    public func restart() throws { try reopen() }

    private func open() throws {
        let folder = (settings.path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let opened = Foundation.open(settings.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard opened >= 0 else { throw Self.failure("cannot open \(settings.path)") }
        var status = stat()
        fstat(opened, &status)
        descriptor = opened
        size = Int(status.st_size)
    }

    private func reopen() throws {
        if settings.fsync != .never { try? sync() }
        close(descriptor)
        descriptor = -1
        try open()
    }

    /// Moves `PATH` to `PATH.1`, `PATH.1` to `PATH.2` and so on, dropping the one past `keep`, and begins a new file.
    private func rotate() throws {
        if settings.fsync != .never { try sync() }
        close(descriptor)
        descriptor = -1
        let path = settings.path
        unlink("\(path).\(settings.keep)")
        for index in stride(from: settings.keep - 1, through: 1, by: -1) { rename("\(path).\(index)", "\(path).\(index + 1)") }
        guard rename(path, "\(path).1") == 0 || errno == ENOENT else { throw Self.failure("cannot rotate \(path)") }
        try open()
    }

    /// Writes all of `bytes`: one `write`, unless the system takes only part of it.
    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Self.failure("cannot write to \(settings.path)")
                }
                offset += written
            }
        }
    }

    private func sync() throws {
        syncDue = nil
        guard fdatasync(descriptor) == 0 else { throw Self.failure("cannot sync \(settings.path)") }
    }

    private static func failure(_ what: String) -> any Error {
        FileSinkError(description: "\(what): \(String(cString: strerror(errno)))")
    }
}

/// Why a file sink could not write.
public struct FileSinkError: Error, CustomStringConvertible {
    public let description: String
}
