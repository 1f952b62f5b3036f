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
    }

    private final class Storage: Sendable {
        let topic: String
        let payload: Payload
        let id: EventID
        let time: Double
        let headers: [String: String]

        init(topic: String, payload: Payload, id: EventID, time: Double, headers: [String: String]) {
            self.topic = topic
            self.payload = payload
            self.id = id
            self.time = time
            self.headers = headers
        }
    }

    private let storage: Storage

    /// The topic it was published to.
    public var topic: String { storage.topic }
    /// The payload. For an event published as a tape (from JSON text) it is decoded on each access.
    public var data: JSON {
        switch storage.payload {
        case let .value(value): value
        case let .tape(tape): (try? tape.decoded()) ?? .null  // router tapes are validated when published
        }
    }
    /// The payload as a tape: free for an event published from JSON text, encoded on each access otherwise.
    public var tape: JSONTape {
        switch storage.payload {
        case let .value(value): JSONTape(value)
        case let .tape(tape): tape
        }
    }
    /// A process-unique identifier, also unique across restarts and instances.
    public var id: EventID { storage.id }
    /// When it was published: Unix time in seconds, with a fraction.
    public var time: Double { storage.time }
    /// String headers given by the publisher.
    public var headers: [String: String] { storage.headers }

    /// Creates an event; ``Router/publish(_:data:headers:)`` does this for you.
    public init(topic: String, data: JSON, id: EventID, time: Double, headers: [String: String] = [:]) {
        storage = Storage(topic: topic, payload: .value(data), id: id, time: time, headers: headers)
    }

    /// Creates an event whose payload is a tape; ``Router/publish(_:tape:headers:)`` does this for you.
    public init(topic: String, tape: JSONTape, id: EventID, time: Double, headers: [String: String] = [:]) {
        storage = Storage(topic: topic, payload: .tape(tape), id: id, time: time, headers: headers)
    }

    init(topic: String, payload: Payload, id: EventID, time: Double, headers: [String: String]) {
        storage = Storage(topic: topic, payload: payload, id: id, time: time, headers: headers)
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

    /// The text form, for example `3f2a9c1e0b7d4a58-1a`.
    public var description: String {
        let hex = String(prefix, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + "-" + String(sequence, radix: 16)
    }
}
