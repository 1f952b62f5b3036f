import Foundation
import SwitchboardCore

/// Reads a journal folder's records in order, one segment at a time.
public struct JournalReader: Sequence {
    /// Why reading stopped short.
    public struct CorruptRecord: Error, CustomStringConvertible {
        /// The segment file.
        public let file: String
        /// The byte offset of the bad record.
        public let offset: Int
        /// What is wrong with it.
        public let reason: String
        public var description: String { "\(file): \(reason) at byte \(offset)" }
    }

    private let folder: String

    /// A reader of the journal in `folder`.
    public init(folder: String) { self.folder = folder }

    /// The records, oldest first; a corrupt record ends the sequence, and ``problem`` says where.
    public func makeIterator() -> Iterator { Iterator(segments: JournalSegments.list(in: folder)) }

    /// Walks the records.
    public struct Iterator: IteratorProtocol {
        private var segments: [(path: String, first: UInt64)]
        private var current: (path: String, bytes: OwnedBytes)?
        private var offset = 0
        /// Set when a corrupt record ended the walk.
        public private(set) var problem: CorruptRecord?

        init(segments: [(path: String, first: UInt64)]) { self.segments = segments }

        public mutating func next() -> JournalRecord? {
            while problem == nil {
                if let (path, bytes) = current, offset < bytes.count {
                    do {
                        let (record, next) = try RecordFormat.record(in: bytes.bytes, at: offset, owner: bytes)
                        offset = next
                        return record
                    } catch {
                        problem = CorruptRecord(file: path, offset: offset, reason: "\(error)")
                        return nil
                    }
                }
                guard !segments.isEmpty else { return nil }
                let segment = segments.removeFirst()
                do {
                    current = (segment.path, try OwnedBytes(path: segment.path))
                    offset = 0
                } catch {
                    problem = CorruptRecord(file: segment.path, offset: 0, reason: "cannot read it: \(error)")
                }
            }
            return nil
        }
    }
}
