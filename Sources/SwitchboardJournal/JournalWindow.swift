import Foundation

/// A stretch of a journal, both ends inclusive, each a sequence number or a time: what
/// `switchboard journal` prints and `switchboard replay` feeds.
public struct JournalWindow: Sendable {
    /// One end of the window.
    public enum Bound: Sendable {
        /// A record's sequence number.
        case sequence(UInt64)
        /// A publish time, in Unix seconds.
        case time(Double)

        /// A bound as an operator writes one: a sequence number, or an RFC 3339 time (with or
        /// without fractional seconds). Nil for anything else.
        public init?(_ text: String) {
            if let sequence = UInt64(text) {
                self = .sequence(sequence)
            } else if let date = Self.formatter(fractional: false).date(from: text) ?? Self.formatter(fractional: true).date(from: text) {
                self = .time(date.timeIntervalSince1970)
            } else {
                return nil
            }
        }

        /// The bound as ``init(_:)`` reads it: a sequence number, or an RFC 3339 time to the millisecond.
        public var text: String {
            switch self {
            case let .sequence(sequence): "\(sequence)"
            case let .time(time): Self.formatter(fractional: true).string(from: Date(timeIntervalSince1970: time))
            }
        }

        private static func formatter(fractional: Bool) -> ISO8601DateFormatter {
            let formatter = ISO8601DateFormatter()
            if fractional { formatter.formatOptions.insert(.withFractionalSeconds) }
            return formatter
        }
    }

    /// The first record; nil: the oldest.
    public var from: Bound?
    /// The last record; nil: the newest.
    public var to: Bound?

    /// The window from `from` to `to`.
    public init(from: Bound? = nil, to: Bound? = nil) {
        self.from = from
        self.to = to
    }

    /// Calls `body` with each record of the journal in `folder` within the window, in order.
    /// Throws ``JournalReader/CorruptRecord`` at a corrupt record, after the good ones before it.
    public func forEachRecord(in folder: String, _ body: (JournalRecord) throws -> Void) throws {
        var records = JournalReader(folder: folder).makeIterator()
        while let record = records.next() {
            if let from, !Self.record(record, isAtOrAfter: from) { continue }
            if let to, Self.record(record, isAfter: to) { break }
            try body(record)
        }
        if let problem = records.problem { throw problem }
    }

    private static func record(_ record: JournalRecord, isAtOrAfter bound: Bound) -> Bool {
        switch bound {
        case let .sequence(sequence): record.sequence >= sequence
        case let .time(time): record.time >= time
        }
    }

    private static func record(_ record: JournalRecord, isAfter bound: Bound) -> Bool {
        switch bound {
        case let .sequence(sequence): record.sequence > sequence
        case let .time(time): record.time > time
        }
    }
}
