import Foundation
import SwitchboardCore

/// Reads a journal's events from a sequence number on, as far as they have been written,
/// following the writer from segment to segment: what spilling subscribers read.
struct JournalCursor: SpillCursor {
    private let folder: String
    private var wanted: UInt64
    private var segment: SegmentFile?
    /// Bytes read from the segment, starting at file offset `bufferStart`.
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private var offset = 0  // file offset of the next record

    init(folder: String, from sequence: UInt64) {
        self.folder = folder
        wanted = sequence
    }

    mutating func next() -> (sequence: UInt64, event: Event)? {
        while true {
            if segment == nil, !openSegment() { return nil }
            guard let record = readRecord() else {
                // The end of what is written: a later segment means this one is complete.
                guard let current = segment, let later = JournalSegments.list(in: folder).first(where: { $0.first > current.first })
                else { return nil }
                segment = nil
                wanted = max(wanted, later.first)
                continue
            }
            guard record.sequence >= wanted else { continue }
            wanted = record.sequence + 1
            return (record.sequence, Event(
                topic: record.topic, tape: record.data, id: record.id, time: record.time, headers: record.headers))
        }
    }

    /// Opens the segment that holds `wanted` (or the first after it); false if there is none yet.
    private mutating func openSegment() -> Bool {
        let segments = JournalSegments.list(in: folder)
        guard let chosen = segments.last(where: { $0.first <= wanted }) ?? segments.first else { return false }
        let descriptor = open(chosen.path, O_RDONLY)
        guard descriptor >= 0 else { return false }
        segment = SegmentFile(first: chosen.first, descriptor: descriptor)
        buffer = []
        bufferStart = 0
        offset = 0
        return true
    }

    /// The next whole record of the segment, or nil at the end of what is written (a record
    /// still being written, torn or not yet checked, counts as not written yet).
    private mutating func readRecord() -> JournalRecord? {
        guard let descriptor = segment?.descriptor else { return nil }
        guard fill(descriptor, upTo: offset + RecordFormat.headerSize) else { return nil }
        let length = buffer.withUnsafeBytes { RecordFormat.length(in: $0, at: offset - bufferStart) }
        guard fill(descriptor, upTo: offset + 8 + length) else { return nil }
        let owner = OwnedBytes(buffer[(offset - bufferStart)..<(offset - bufferStart + 8 + length)])
        guard let (record, _) = try? RecordFormat.record(in: owner.bytes, at: 0, owner: owner) else { return nil }
        offset += 8 + length
        return record
    }

    /// Makes the buffer reach file offset `end`, reading 64 KiB at a time; false if the file is shorter.
    private mutating func fill(_ descriptor: Int32, upTo end: Int) -> Bool {
        if offset - bufferStart > 1 << 20 {  // drop what was read
            buffer.removeFirst(offset - bufferStart)
            bufferStart = offset
        }
        while bufferStart + buffer.count < end {
            var chunk = [UInt8](repeating: 0, count: max(1 << 16, end - bufferStart - buffer.count))
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(bufferStart + buffer.count)) }
            guard count > 0 else { return false }
            buffer.append(contentsOf: chunk[0..<count])
        }
        return true
    }
}

/// An open segment file, closed with its last reference.
private final class SegmentFile {
    let first: UInt64
    let descriptor: Int32
    init(first: UInt64, descriptor: Int32) {
        self.first = first
        self.descriptor = descriptor
    }
    deinit { close(descriptor) }
}
