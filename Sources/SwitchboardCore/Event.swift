import CSwitchboardCore
@_exported import SwitchboardJSON

/// One published event, as every subscriber it was routed to receives it.
///
/// A value type backed by one immutable allocation, so handing it to several
/// subscribers costs one reference count each, not one per field.
public struct Event: Sendable {
    /// The payload as it was published: a value, or a tape parsed from JSON text.
    enum Payload: Sendable {
        case value(JSON)
        case tape(JSONTape)

        /// The bytes of the tape, 0 for a value.
        var tapeCount: Int {
            if case let .tape(tape) = self { tape.count } else { 0 }
        }

        /// Small enough for a publisher's pool: a tape or a string of at most
        /// ``Event/largestPooled`` bytes, or another scalar. Arrays and objects are not
        /// measured, so never kept.
        var isPoolable: Bool {
            switch self {
            case let .tape(tape): tape.count <= Event.largestPooled
            case .value(.null), .value(.bool), .value(.int), .value(.double): true
            case let .value(.string(string)): string.utf8.count <= Event.largestPooled
            case .value(.array), .value(.object): false
            }
        }
    }

    struct Header {
        let topic: String
        let value: JSON?  // nil when the payload is the tape in the storage's tail
        let tapeCount: Int  // the tape's length
        let tailCapacity: Int  // the tape bytes the tail has room for, kept when the pool reuses the storage
        let id: EventID
        let time: Double
        let headers: [String: String]
        let tracker: DeliveryTracker?
    }

    /// One allocation per event: the header, and a tape payload's bytes in its tail. A small
    /// event's storage goes back to its publisher's pool (``EventPool``); any other is freed
    /// by whoever releases the event last: one block, not three.
    final class Storage: ManagedBuffer<Header, UInt8> {
        /// The bytes of tape the tail has room for.
        var tailCapacity: Int { withUnsafeMutablePointerToHeader { $0.pointee.tailCapacity } }
    }

    /// Written once in `init`, so sharing it between threads is safe. What it holds is written
    /// only while no other thread can see it: in `init`, and when the pool reuses it, once its
    /// publisher holds the only reference left.
    nonisolated(unsafe) private let storage: Storage

    /// The most tape bytes, or string bytes, of an event that its publisher's pool recycles.
    static let largestPooled = 1024

    init(
        topic: String, payload: Payload, id: EventID, time: Double, headers: [String: String], tracker: DeliveryTracker? = nil
    ) {
        storage = Self.makeStorage(tail: payload.tapeCount)
        Self.fill(storage, topic: topic, payload: payload, id: id, time: time, headers: headers, tracker: tracker)
    }

    /// An event whose storage comes from the publishing thread's `pool` and goes back to it,
    /// when the event is small and carries no headers or tracker: the fields a storage keeps
    /// until it is reused must not hold on to large memory, or to a tracker's source.
    init(
        topic: String, payload: Payload, id: EventID, time: Double, headers: [String: String], tracker: DeliveryTracker?,
        pool: inout EventPool
    ) {
        guard tracker == nil, headers.isEmpty, payload.isPoolable else {
            self = Event(topic: topic, payload: payload, id: id, time: time, headers: headers, tracker: tracker)
            return
        }
        if let reused = pool.reusable(tail: payload.tapeCount) {
            storage = reused
        } else {
            // Rounded up, and room for a small tape even in a scalar's, so that later events
            // a little larger fit too.
            storage = Self.makeStorage(tail: max((payload.tapeCount + 63) & ~63, 64))
            pool.keep(storage)
        }
        Self.fill(storage, topic: topic, payload: payload, id: id, time: time, headers: headers, tracker: nil)
    }

    /// A storage with room for `tail` bytes of tape, holding no event yet.
    private static func makeStorage(tail: Int) -> Storage {
        unsafeDowncast(Storage.create(minimumCapacity: tail) { _ in
            Header(
                topic: "", value: nil, tapeCount: 0, tailCapacity: tail, id: EventID(prefix: 0, sequence: 0), time: 0,
                headers: [:], tracker: nil)
        }, to: Storage.self)
    }

    /// Writes an event into `storage`, which no other thread can see: releases the fields of
    /// the event it held before (on this, the publishing thread) and copies a tape payload
    /// into the tail.
    private static func fill(
        _ storage: Storage, topic: String, payload: Payload, id: EventID, time: Double, headers: [String: String],
        tracker: DeliveryTracker?
    ) {
        storage.withUnsafeMutablePointers { header, elements in
            let capacity = header.pointee.tailCapacity
            switch payload {
            case let .value(value):
                header.pointee = Header(
                    topic: topic, value: value, tapeCount: 0, tailCapacity: capacity, id: id, time: time, headers: headers,
                    tracker: tracker)
            case let .tape(tape):
                header.pointee = Header(
                    topic: topic, value: nil, tapeCount: tape.count, tailCapacity: capacity, id: id, time: time,
                    headers: headers, tracker: tracker)
                tape.withUnsafeBytes { UnsafeMutableRawPointer(elements).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
    }

    /// Reads a header field. ManagedBuffer's `header` is a class's stored `var`, which costs a
    /// dynamic exclusivity check per read; through the pointer it costs nothing.
    @inline(__always)
    private func header<T>(_ field: KeyPath<Header, T>) -> T {
        storage.withUnsafeMutablePointerToHeader { $0.pointee[keyPath: field] }
    }

    /// The topic it was published to.
    public var topic: String { header(\.topic) }
    /// The payload. For an event published as a tape (from JSON text) it is decoded on each access.
    public var data: JSON {
        if let value = header(\.value) { return value }
        return (try? tape.decoded()) ?? .null  // router tapes are validated when published
    }
    /// The payload as a tape: free for an event published from JSON text, encoded on each access otherwise.
    public var tape: JSONTape {
        if let value = header(\.value) { return JSONTape(value) }
        return storage.withUnsafeMutablePointers { header, elements in
            JSONTape(owner: storage, bytes: UnsafeRawBufferPointer(start: elements, count: header.pointee.tapeCount))
        }
    }
    /// Calls `body` with the payload's tape bytes, valid only during the call: for an event
    /// published from JSON text, without the reference count that ``tape`` costs (a write to
    /// a line that every subscriber of the event shares).
    public func withUnsafeTapeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let value = header(\.value) { return try JSONTape(value).withUnsafeBytes(body) }
        return try storage.withUnsafeMutablePointers { header, elements in
            try body(UnsafeRawBufferPointer(start: elements, count: header.pointee.tapeCount))
        }
    }

    /// A process-unique identifier, also unique across restarts and instances.
    public var id: EventID { header(\.id) }
    /// When it was published: Unix time in seconds, with a fraction.
    public var time: Double { header(\.time) }
    /// String headers given by the publisher.
    public var headers: [String: String] { header(\.headers) }
    /// What learns when its subscribers are done with it, when its publisher asked.
    var tracker: DeliveryTracker? { header(\.tracker) }

    /// Adds `count` references to the event with one atomic operation, where `count` copies
    /// would cost one each. Hand each one out with ``adoptReference()``.
    func retain(_ count: Int) {
        if count > 0 { _ = sb_retain_n(Unmanaged.passUnretained(storage).toOpaque(), UInt32(count)) }
    }

    /// A copy that owns one of the references that ``retain(_:)`` added, adding none.
    func adoptReference() -> Event {
        Event(storage: Unmanaged.passUnretained(storage).takeRetainedValue())
    }

    private init(storage: Storage) { self.storage = storage }

    /// An event with a payload in tape form, as the journal reads it back.
    package init(topic: String, tape: JSONTape, id: EventID, time: Double, headers: [String: String]) {
        self.init(topic: topic, payload: .tape(tape), id: id, time: time, headers: headers)
    }

    /// Creates an event; ``Router/publish(_:data:headers:)`` does this for you.
    public init(topic: String, data: JSON, id: EventID, time: Double, headers: [String: String] = [:]) {
        self.init(topic: topic, payload: .value(data), id: id, time: time, headers: headers)
    }
}

/// An event identifier: a random per-process prefix and a counter, written `prefix-counter` in hex.
///
/// Making one costs an increment, not a random draw; the 64-bit random prefix keeps ids
/// unique across restarts and across instances.
public struct EventID: Sendable, Hashable, CustomStringConvertible {
    /// Random, fixed for the life of the process.
    public let prefix: UInt64
    /// Increases with every id the process hands out.
    public let sequence: UInt64

    /// Creates an id from its two parts.
    public init(prefix: UInt64, sequence: UInt64) {
        self.prefix = prefix
        self.sequence = sequence
    }

    /// Reads the text form, `prefix-counter` in hex, such as `3f2a9c1e0b7d4a58-1a`; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isHexDigit) }),
              let prefix = UInt64(parts[0], radix: 16), let sequence = UInt64(parts[1], radix: 16)
        else { return nil }
        self.init(prefix: prefix, sequence: sequence)
    }

    /// The text form, for example `3f2a9c1e0b7d4a58-1a`.
    public var description: String {
        // Written in place: String(radix:) and concatenation cost four allocations, and a bridge
        // exporting events writes one id per event.
        let digits = (64 - sequence.leadingZeroBitCount + 3) / 4
        return String(unsafeUninitializedCapacity: 17 + max(digits, 1)) { buffer in
            let hex = ("0123456789abcdef" as StaticString).utf8Start
            for index in 0..<16 { buffer[index] = hex[Int(prefix >> (60 - 4 * UInt64(index)) & 0xF)] }
            buffer[16] = UInt8(ascii: "-")
            let count = max(digits, 1)
            for index in 0..<count { buffer[17 + index] = hex[Int(sequence >> (4 * UInt64(count - 1 - index)) & 0xF)] }
            return 17 + count
        }
    }
}
