import CSwitchboardJournal
import SwitchboardCore

/// One journaled event.
public struct JournalRecord: Sendable {
    /// Its place in the journal: one more than the record before it.
    public let sequence: UInt64
    /// The event's id.
    public let id: EventID
    /// When it was published: Unix seconds with a fraction.
    public let time: Double
    /// The topic it was published to.
    public let topic: String
    /// The payload.
    public let data: JSONTape
    /// The publisher's headers.
    public let headers: [String: String]

    /// `{"seq": N, "id": ..., "time": ..., "topic": ..., "data": ..., "headers": {...}}`, as
    /// `switchboard journal` prints it.
    public var json: JSON {
        [
            "seq": .int(Int64(bitPattern: sequence)), "id": .string(id.description), "time": .double(time),
            "topic": .string(topic), "data": (try? data.decoded()) ?? .null,
            "headers": .object(sortingKeysOf: headers),
        ]
    }
}

/// The record format, little-endian:
///
///     u32 length of what follows the checksum
///     u32 CRC-32C of the body (everything after the sequence number)
///     u64 sequence number (checked by continuity: one more than the record before)
///     body: f64 time, u64 id prefix, u64 id sequence,
///           u32 + topic bytes, u32 + headers tape, u32 + data tape
enum RecordFormat {
    /// Bytes before the body: length, checksum, sequence number.
    static let headerSize = 16

    /// Appends the record of `event`, numbered `sequence`, to `out`, composed in place, but for
    /// its checksum: ``checksum(_:)`` fills that in. `headers` are the event's headers in tape
    /// form, nil for none.
    static func appendRecord(of event: Event, headers: JSONTape?, sequence: UInt64, to out: inout RecordBatch) {
        guard let headers else {
            appendRecord(of: event, headers: UnsafeRawBufferPointer(start: nil, count: 0), sequence: sequence, to: &out)
            return
        }
        headers.withUnsafeBytes { appendRecord(of: event, headers: $0, sequence: sequence, to: &out) }
    }

    private static func appendRecord(
        of event: Event, headers headerBytes: UnsafeRawBufferPointer, sequence: UInt64, to out: inout RecordBatch
    ) {
        var topic = event.topic
        topic.withUTF8 { topic in
            event.withUnsafeTapeBytes { data in
                let size = headerSize + 8 + 16 + 12 + topic.count + headerBytes.count + data.count
                out.append(size: size) { buffer in
                    var cursor = 8
                    func put<T: FixedWidthInteger>(_ value: T) {
                        buffer.storeBytes(of: value.littleEndian, toByteOffset: cursor, as: T.self)
                        cursor += MemoryLayout<T>.size
                    }
                    func put(_ bytes: UnsafeRawBufferPointer) {
                        put(UInt32(bytes.count))
                        if let base = bytes.baseAddress, bytes.count > 0 {
                            (buffer.baseAddress! + cursor).copyMemory(from: base, byteCount: bytes.count)
                        }
                        cursor += bytes.count
                    }
                    put(sequence)
                    put(event.time.bitPattern)
                    put(event.id.prefix)
                    put(event.id.sequence)
                    put(UnsafeRawBufferPointer(topic))
                    put(headerBytes)
                    put(data)
                    buffer.storeBytes(of: UInt32(size - 8).littleEndian, toByteOffset: 0, as: UInt32.self)
                }
            }
        }
    }

    /// Fills in the checksum of every record in `records`, whole records that
    /// ``appendRecord(of:headers:sequence:to:)`` wrote: the writer's work, which reads them
    /// in order from one buffer, not the publisher's.
    static func checksum(_ records: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset < records.count {
            let end = offset + 8 + length(in: UnsafeRawBufferPointer(records), at: offset)
            let body = UnsafeRawBufferPointer(rebasing: records[(offset + headerSize)..<end])
            records.storeBytes(
                of: sb_crc32c(0, body.baseAddress, body.count).littleEndian, toByteOffset: offset + 4, as: UInt32.self)
            offset = end
        }
    }

    /// The length field of the record at `offset`: the bytes that follow the first eight.
    static func length(in bytes: UnsafeRawBufferPointer, at offset: Int) -> Int {
        Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    /// The sequence number of the record at `offset`.
    static func sequence(in bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
    }

    /// Why a record could not be read.
    enum Problem: Error, CustomStringConvertible {
        case torn, checksum, malformed(String)
        var description: String {
            switch self {
            case .torn: "a torn record (the file ends inside it)"
            case .checksum: "a checksum mismatch"
            case let .malformed(what): "a malformed record (\(what))"
            }
        }
    }

    /// Decodes the record at `offset` in `bytes`; returns it and the offset after it.
    static func record(in bytes: UnsafeRawBufferPointer, at offset: Int, owner: AnyObject) throws(Problem)
        -> (JournalRecord, next: Int)
    {
        guard offset + headerSize <= bytes.count else { throw .torn }
        let length = Self.length(in: bytes, at: offset)
        guard length >= 8 else { throw .malformed("length \(length)") }
        let end = offset + 8 + length
        guard end <= bytes.count else { throw .torn }
        let checksum = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
        let sequence = Self.sequence(in: bytes, at: offset)
        let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerSize)..<end])
        guard sb_crc32c(0, body.baseAddress, body.count) == checksum else { throw .checksum }
        var cursor = 0
        func load<T: FixedWidthInteger>(_: T.Type) throws(Problem) -> T {
            guard cursor + MemoryLayout<T>.size <= body.count else { throw .malformed("short body") }
            defer { cursor += MemoryLayout<T>.size }
            return T(littleEndian: body.loadUnaligned(fromByteOffset: cursor, as: T.self))
        }
        func slice() throws(Problem) -> UnsafeRawBufferPointer {
            let count = Int(try load(UInt32.self))
            guard cursor + count <= body.count else { throw .malformed("short field") }
            defer { cursor += count }
            return UnsafeRawBufferPointer(rebasing: body[cursor..<(cursor + count)])
        }
        let time = Double(bitPattern: try load(UInt64.self))
        let id = EventID(prefix: try load(UInt64.self), sequence: try load(UInt64.self))
        let topic = String(decoding: try slice(), as: UTF8.self)
        let headerBytes = try slice()
        let headers = headerBytes.isEmpty ? [:] : (JSONTape(owner: owner, bytes: headerBytes).strings ?? [:])
        let data = JSONTape(owner: owner, bytes: try slice())
        return (JournalRecord(sequence: sequence, id: id, time: time, topic: topic, data: data, headers: headers), end)
    }
}
