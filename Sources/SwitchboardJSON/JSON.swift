import OrderedCollections

/// A JSON value that keeps what a round trip through other hosts loses.
///
/// Integers stay 64-bit integers (`.int`), numbers with a fraction or an exponent
/// stay floating point (`.double`, so `1.0` is not `1`), empty arrays and empty
/// objects stay distinct, and objects keep their keys in document order.
public enum JSON: Sendable {
    /// JSON `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// An integer that fits in 64 bits.
    case int(Int64)
    /// A finite floating-point number.
    case double(Double)
    /// A string of Unicode text.
    case string(String)
    /// An array, in order.
    case array([JSON])
    /// An object whose keys keep their document order.
    case object(OrderedDictionary<String, JSON>)

    /// The deepest nesting of arrays and objects that parsing and conversion accept.
    public static let maximumDepth = 128
}

extension JSON: Equatable {
    /// Objects compare equal when they hold the same keys with equal values, in any order;
    /// `.int(1)` and `.double(1)` are different values.
    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            for (key, value) in a where b[key] != value { return false }
            return true
        default: return false
        }
    }
}

extension JSON {
    /// An object of strings with its keys in sorted order, as event headers are written.
    public static func object(sortingKeysOf strings: [String: String]) -> JSON {
        .object(.init(uniqueKeysWithValues: strings.sorted { $0.key < $1.key }.map { ($0, .string($1)) }))
    }

    /// The value at `key` when this is an object, otherwise `nil`.
    public subscript(key: String) -> JSON? {
        if case let .object(members) = self { return members[key] }
        return nil
    }

    /// The element at `index` when this is an array and the index is in range, otherwise `nil`.
    public subscript(index: Int) -> JSON? {
        if case let .array(elements) = self, elements.indices.contains(index) { return elements[index] }
        return nil
    }

    /// The string when this is `.string`.
    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    /// The integer when this is `.int`.
    public var intValue: Int64? { if case let .int(i) = self { i } else { nil } }
    /// The number when this is `.int` or `.double`.
    public var doubleValue: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .double(d): d
        default: nil
        }
    }
    /// The flag when this is `.bool`.
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    /// True for `.null`.
    public var isNull: Bool { if case .null = self { true } else { false } }
}

extension JSON: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(OrderedDictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSON: CustomStringConvertible {
    /// The compact JSON text of the value.
    public var description: String { serialized() }
}
