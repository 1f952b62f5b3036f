@_exported import SwitchboardJSON

/// One published event, as every subscriber it was routed to receives it.
///
/// A value type backed by one immutable allocation, so handing it to several
/// subscribers costs one reference count each, not one per field.
public struct Event: Sendable {
    private final class Storage: Sendable {
        let topic: String
        let data: JSON
        let id: EventID
        let time: Double
        let headers: [String: String]

        init(topic: String, data: JSON, id: EventID, time: Double, headers: [String: String]) {
            self.topic = topic
            self.data = data
            self.id = id
            self.time = time
            self.headers = headers
        }
    }

    private let storage: Storage

    /// The topic it was published to.
    public var topic: String { storage.topic }
    /// The payload.
    public var data: JSON { storage.data }
    /// A process-unique identifier, also unique across restarts and instances.
    public var id: EventID { storage.id }
    /// When it was published: Unix time in seconds, with a fraction.
    public var time: Double { storage.time }
    /// String headers given by the publisher.
    public var headers: [String: String] { storage.headers }

    /// Creates an event; ``Router/publish(_:data:headers:)`` does this for you.
    public init(topic: String, data: JSON, id: EventID, time: Double, headers: [String: String] = [:]) {
        storage = Storage(topic: topic, data: data, id: id, time: time, headers: headers)
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
