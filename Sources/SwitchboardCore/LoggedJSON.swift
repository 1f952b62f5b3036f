import Logging

/// A JSON value in log metadata: text handlers print it as `description` (a string as it is,
/// anything else as JSON), and a JSON handler can write it with its type (`{n = 3}` as `3`).
public struct LoggedJSON: CustomStringConvertible, Sendable {
    /// The value.
    public let value: JSON

    public init(_ value: JSON) { self.value = value }

    public var description: String { value.stringValue ?? value.serialized() }
}

extension Logger.MetadataValue {
    /// The value as JSON: a ``LoggedJSON`` with its type, lists and dictionaries as arrays and
    /// objects, anything else as a string.
    public var json: JSON {
        switch self {
        case .string(let text): .string(text)
        case .stringConvertible(let value): (value as? LoggedJSON)?.value ?? .string(value.description)
        case .array(let values): .array(values.map(\.json))
        case .dictionary(let members): .object(.init(uniqueKeysWithValues: members.sorted { $0.key < $1.key }.map { ($0.key, $0.value.json) }))
        }
    }
}
