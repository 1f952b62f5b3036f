import Foundation
import Logging
import Synchronization
import SwitchboardCore

/// An append-only journal of every event a router accepts, in segment files with a checksum
/// per record (see docs/operations.md, *Journal and replay*, for why, and what each ``FsyncMode`` promises).
///
/// ``record(_:)``, installed as the router's accept hook by ``attach(to:)``, numbers each event
/// and copies its record to a buffer under a lock held for tens of nanoseconds, while the event
/// is still in the publisher's cache; a writer thread of its own checksums the records, writes
/// them to the current segment and syncs it.
public final class Journal: SpillSource {
    /// When the journal asks the disk to keep what it wrote.
    public enum FsyncMode: String, Sendable, CaseIterable {
        /// Before `publish` returns and before any subscriber sees the event (group commit:
        /// publishers that arrive together share one fsync).
        case always
        /// Within ``Journal/interval`` of the write.
        case interval
        /// Never: the operating system writes back when it chooses.
        case never
    }

    /// What retention keeps: older segments go, whole, once either bound is passed.
    public struct Retention: Sendable, Equatable {
        /// The most bytes all segments may hold.
        public var maxBytes: Int?
        /// The oldest a segment's last write may be.
        public var maxAge: Duration?
        /// Keeps everything by default.
        public init(maxBytes: Int? = nil, maxAge: Duration? = nil) {
            self.maxBytes = maxBytes
            self.maxAge = maxAge
        }
    }

    /// How often the writer syncs under `interval`.
    public static let interval = Duration.milliseconds(100)
    /// How often the writer writes what gathered, under `interval` and `never`.
    static let writePeriod: UInt64 = 5_000_000

    /// The folder of segment files.
    public let folder: String
    /// The fsync mode.
    public let fsync: FsyncMode
    private let retention: Retention
    private let segmentSize: Int
    private let logger: Logger

    /// What the lock guards.
    private struct State: ~Copyable {
        var nextSequence: UInt64
        /// The records of numbered events not yet written.
        var pending = RecordBatch()
        var lastPending: UInt64 = 0
        var durable: UInt64
        var closing = false
        var closed = false
        var failed: String?
    }
    private let lock = ConditionLock(conditions: 2)  // 0: work for the writer, 1: durable moved
    nonisolated(unsafe) private var state: State  // only under `lock`
    /// Signalled once the writer has written, synced and closed everything.
    private let writerDone = Completion()
    /// Held from `init` to ``close()``: no other process writes the folder meanwhile.
    private let ownership: JournalLock

    /// Opens the journal in `folder` (creating it): cuts off a torn or corrupt tail of the last
    /// segment with a warning, and carries on numbering after its last good record. Throws
    /// ``JournalLock/InUse`` while another process has it open.
    public init(
        folder: String, fsync: FsyncMode = .interval, retention: Retention = Retention(),
        segmentSize: Int = 64 << 20, logger: Logger = Logger(label: "switchboard.journal")
    ) throws {
        self.folder = folder
        self.fsync = fsync
        self.retention = retention
        self.segmentSize = segmentSize
        self.logger = logger
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        ownership = try JournalLock.acquire(in: folder)
        let last: UInt64
        do {
            last = try Self.repairTail(in: folder, logger: logger)
        } catch {
            ownership.release()
            throw error
        }
        state = State(nextSequence: last + 1, durable: last)
        OSThread.spawn { [self] in writeLoop() }
    }

    /// The sequence number the next event will get.
    public var nextSequence: UInt64 { lock.withLock { state.nextSequence } }

    // MARK: Spilling subscribers

    private let writing = Atomic<Bool>(true)

    /// False once a write failed (a full disk): spilling subscribers then drop, and count it.
    public var isWriting: Bool { writing.load(ordering: .relaxed) }

    /// A reader of the events numbered `sequence` and after, as far as they are written.
    public func cursor(from sequence: UInt64) -> any SpillCursor { JournalCursor(folder: folder, from: sequence) }

    private var positionsFolder: String { (folder as NSString).appendingPathComponent("positions") }

    /// The position saved for the spilling subscriber `name`.
    public func position(of name: String) -> UInt64? {
        (try? String(contentsOfFile: (positionsFolder as NSString).appendingPathComponent(name), encoding: .utf8))
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Saves that the spilling subscriber `name` handled every event through `sequence`
    /// (written whole, by renaming; not synced: a lost update only means handling again).
    public func savePosition(_ sequence: UInt64, of name: String) {
        try? FileManager.default.createDirectory(atPath: positionsFolder, withIntermediateDirectories: true)
        let path = (positionsFolder as NSString).appendingPathComponent(name)
        try? "\(sequence)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The oldest sequence number a spilling subscriber still needs, if any.
    private func oldestNeeded() -> UInt64? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: positionsFolder)) ?? []
        return names.compactMap { position(of: $0) }.min().map { $0 + 1 }
    }

    /// Journals every event `router` accepts, before any subscriber sees it.
    public func attach(to router: Router) {
        router.addAcceptHook { [self] event in record(event) }
    }

    /// Appends one event; under `always`, returns once it is on disk. Returns its sequence number.
    @discardableResult
    public func record(_ event: Event) -> UInt64 {
        let headers = event.headers.isEmpty ? nil : JSONTape(strings: event.headers)  // most events have none
        lock.lock()
        let sequence = state.nextSequence
        state.nextSequence += 1
        // Copied here, where the event was just made, not later by the writer: bytes in this
        // core's cache cost less than the writer's misses on every event and the reference
        // count it would hold. The writer checksums them.
        RecordFormat.appendRecord(of: event, headers: headers, sequence: sequence, to: &state.pending)
        state.lastPending = sequence
        // Only `always` wakes the writer at once, and waits for its group's sync; otherwise the
        // writer comes every few milliseconds and takes what gathered: a wakeup per event would
        // cost more than the journal itself.
        if fsync == .always {
            lock.signal(0)
            while state.durable < sequence, state.failed == nil, !state.closed { lock.wait(1) }
        }
        lock.unlock()
        return sequence
    }

    /// Writes and syncs everything recorded, then stops the writer. Recording after this is lost.
    public func close() {
        lock.withLock { state.closing = true }
        lock.signal(0)
        writerDone.waitBlocking()
        ownership.release()
    }

    // MARK: Writer

    private func writeLoop() {
        var segment = openLastSegment()
        var lastSync = SystemClock.monotonicNanos()
        let interval = SystemClock.nanoseconds(Self.interval)
        var batch = RecordBatch()  // handed back and forth with `pending`, keeping its buffer
        while true {
            lock.lock()
            while !state.closing {
                if fsync == .always {
                    if state.pending.count > 0 { break }
                    lock.wait(0)
                } else {
                    _ = lock.wait(0, untilMonotonic: SystemClock.monotonicNanos() + Self.writePeriod)
                    if state.pending.count > 0 || (segment.dirty && SystemClock.monotonicNanos() &- lastSync >= interval) { break }
                }
            }
            batch.removeAll()
            swap(&batch, &state.pending)
            let (last, closing) = (state.lastPending, state.closing)
            lock.unlock()

            var failure: String?
            var offset = 0
            RecordFormat.checksum(batch.bytes)
            let bytes = UnsafeRawBufferPointer(batch.bytes)
            while failure == nil, offset < bytes.count {
                if segment.size >= segmentSize || segment.descriptor < 0 {
                    segment.close(sync: fsync != .never)
                    segment = Segment(folder: folder, first: RecordFormat.sequence(in: bytes, at: offset))
                    applyRetention(keeping: segment.path)
                }
                // Up to the segment's size, whole records only (at least one): the records are
                // walked only when the rest does not fit.
                var end = bytes.count
                if segment.size + (end - offset) > segmentSize {
                    end = offset
                    repeat {
                        end += 8 + RecordFormat.length(in: bytes, at: end)
                    } while end < bytes.count && segment.size + (end - offset) < segmentSize
                }
                failure = segment.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                offset = end
            }
            let now = SystemClock.monotonicNanos()
            if failure == nil, fsync == .always || (fsync == .interval && (now &- lastSync >= interval || closing)) {
                failure = segment.sync()
                lastSync = now
            }
            lock.lock()
            if let failure, state.failed == nil {
                state.failed = failure
                writing.store(false, ordering: .relaxed)
                logger.critical("journal: \(failure); events are no longer journaled")
            }
            if batch.count > 0 { state.durable = last }
            if closing, state.pending.count == 0 { state.closed = true }
            let done = state.closed
            lock.unlock()
            lock.broadcast(1)
            if done { break }
        }
        segment.close(sync: fsync != .never)
        writerDone.signal()
    }

    /// The newest segment, to append to, or none yet.
    private func openLastSegment() -> Segment {
        guard let last = JournalSegments.list(in: folder).last else { return Segment.none }
        return Segment(appendingTo: last.path)
    }

    /// Deletes the oldest segments, whole, past the retention bounds; never `current`, and
    /// never one that holds events a spilling subscriber has not read.
    private func applyRetention(keeping current: String) {
        guard retention.maxBytes != nil || retention.maxAge != nil else { return }
        let segments = JournalSegments.list(in: folder).map { segment in
            let attributes = try? FileManager.default.attributesOfItem(atPath: segment.path)
            return (path: segment.path, first: segment.first, size: (attributes?[.size] as? Int) ?? 0,
                    modified: (attributes?[.modificationDate] as? Date) ?? Date())
        }
        var total = segments.reduce(0) { $0 + $1.size }
        let oldest = retention.maxAge.map { Date().addingTimeInterval(-Double($0.components.seconds)) }
        let needed = oldestNeeded()
        for (index, segment) in segments.enumerated() where segment.path != current {
            let tooMuch = retention.maxBytes.map { total > $0 } ?? false
            let tooOld = oldest.map { segment.modified < $0 } ?? false
            // Its events end where the next segment begins.
            let stillNeeded = needed.map { index + 1 >= segments.count || segments[index + 1].first > $0 } ?? false
            guard tooMuch || tooOld, !stillNeeded else { break }
            try? FileManager.default.removeItem(atPath: segment.path)
            total -= segment.size
            logger.info("journal: retention removed \(segment.path)")
        }
    }

    // MARK: Start-up

    /// Checks every record of the last segment; cuts the file at the first bad one, with a
    /// warning. Returns the last good sequence number (0 for an empty journal).
    static func repairTail(in folder: String, logger: Logger) throws -> UInt64 {
        var segments = JournalSegments.list(in: folder)
        while let last = segments.last {
            let bytes = try OwnedBytes(path: last.path)
            var offset = 0
            var lastSequence: UInt64?
            var expected = last.first
            while offset < bytes.count {
                do {
                    let (record, next) = try RecordFormat.record(in: bytes.bytes, at: offset, owner: bytes)
                    guard record.sequence == expected else {
                        throw RecordFormat.Problem.malformed("sequence \(record.sequence) where \(expected) was due")
                    }
                    lastSequence = record.sequence
                    expected += 1
                    offset = next
                } catch {
                    logger.warning(
                        "journal: cut off \(bytes.count - offset) bytes after sequence \(lastSequence.map(String.init) ?? "none") in \(last.path): \(error)")
                    guard truncate(last.path, off_t(offset)) == 0 else {
                        throw RecordFormat.Problem.malformed("cannot truncate \(last.path)")
                    }
                    break
                }
            }
            if let lastSequence { return lastSequence }
            try FileManager.default.removeItem(atPath: last.path)  // nothing good in it
            segments.removeLast()
        }
        return 0
    }
}

/// The segment file being written.
private struct Segment {
    let path: String
    let descriptor: Int32
    private(set) var size: Int
    private(set) var dirty = false
    /// Where the synced bytes still in the page cache begin.
    private var cachedFrom = 0

    static let none = Segment(path: "", descriptor: -1, size: 0)

    private init(path: String, descriptor: Int32, size: Int) {
        self.path = path
        self.descriptor = descriptor
        self.size = size
    }

    /// A new segment whose first record is `first`.
    init(folder: String, first: UInt64) {
        let path = (folder as NSString).appendingPathComponent(JournalSegments.name(startingAt: first))
        self.init(path: path, descriptor: open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644), size: 0)
    }

    /// An existing segment, appended to.
    init(appendingTo path: String) {
        let descriptor = open(path, O_WRONLY | O_APPEND)
        var info = stat()
        self.init(path: path, descriptor: descriptor, size: fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0)
    }

    /// Writes all of `bytes`; an error message on failure.
    mutating func write(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard descriptor >= 0 else { return "cannot open \(path): \(String(cString: strerror(errno)))" }
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return "cannot write \(path): \(String(cString: strerror(errno)))" }
            offset += written
        }
        size += bytes.count
        dirty = true
        return nil
    }

    /// Asks the disk to keep what was written; an error message on failure.
    mutating func sync() -> String? {
        guard dirty, descriptor >= 0 else { return nil }
        dirty = false
        guard fdatasync(descriptor) == 0 else { return "cannot sync \(path): \(String(cString: strerror(errno)))" }
        // Synced pages leave the page cache: a journal is written once and seldom read back, and
        // the memory its pages would hold is better reused warm, for the next writes, than
        // crowding out what the machine does read.
        _ = posix_fadvise(descriptor, off_t(cachedFrom), off_t(size - cachedFrom), POSIX_FADV_DONTNEED)
        cachedFrom = size & ~4095
        return nil
    }

    mutating func close(sync: Bool) {
        guard descriptor >= 0 else { return }
        if sync { _ = self.sync() }
        Foundation.close(descriptor)
    }
}
