import OrderedCollections

extension JSON {
    /// Converts any `Encodable` value to JSON, keeping integer and floating-point types and
    /// the order in which the value encodes its keys.
    public init(encoding value: some Encodable) throws {
        let root = EncodingSlot()
        try value.encode(to: ValueEncoder(slot: root, codingPath: []))
        self = root.json
    }
}

/// A mutable place in the tree being built: a leaf value, an array or an object of further slots.
private final class EncodingSlot {
    enum Content {
        case value(JSON)
        case array([EncodingSlot])
        case object(OrderedDictionary<String, EncodingSlot>)
    }

    var content: Content = .value(.object([:]))

    var json: JSON {
        switch content {
        case let .value(value): value
        case let .array(slots): .array(slots.map(\.json))
        case let .object(slots): .object(slots.mapValues(\.json))
        }
    }
}

private struct ValueEncoder: Encoder {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = slot.content {} else { slot.content = .object([:]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(slot: slot, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = slot.content {} else { slot.content = .array([]) }
        return UnkeyedContainer(slot: slot, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(slot: slot, codingPath: codingPath)
    }
}

/// Turns a primitive into a leaf, or encodes a composite value into a new slot.
private func encodeLeaf(_ value: some Encodable, codingPath: [any CodingKey]) throws -> EncodingSlot {
    let slot = EncodingSlot()
    switch value {
    case let json as JSON: slot.content = .value(json)
    case let flag as Bool: slot.content = .value(.bool(flag))
    case let text as String: slot.content = .value(.string(text))
    case let number as Double: slot.content = .value(.double(number))
    case let number as Float: slot.content = .value(.double(Double(number)))
    case let number as Int: slot.content = .value(.int(Int64(number)))
    case let number as Int8: slot.content = .value(.int(Int64(number)))
    case let number as Int16: slot.content = .value(.int(Int64(number)))
    case let number as Int32: slot.content = .value(.int(Int64(number)))
    case let number as Int64: slot.content = .value(.int(number))
    case let number as UInt: slot.content = .value(Int64(exactly: number).map(JSON.int) ?? .double(Double(number)))
    case let number as UInt8: slot.content = .value(.int(Int64(number)))
    case let number as UInt16: slot.content = .value(.int(Int64(number)))
    case let number as UInt32: slot.content = .value(.int(Int64(number)))
    case let number as UInt64: slot.content = .value(Int64(exactly: number).map(JSON.int) ?? .double(Double(number)))
    default: try value.encode(to: ValueEncoder(slot: slot, codingPath: codingPath))
    }
    return slot
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]

    private func set(_ child: EncodingSlot, for key: Key) {
        guard case var .object(members) = slot.content else { return }
        slot.content = .value(.null)  // release the old storage so the update below does not copy
        members[key.stringValue] = child
        slot.content = .object(members)
    }

    mutating func encodeNil(forKey key: Key) throws {
        let child = EncodingSlot()
        child.content = .value(.null)
        set(child, for: key)
    }

    mutating func encode(_ value: some Encodable, forKey key: Key) throws {
        set(try encodeLeaf(value, codingPath: codingPath + [key]), for: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = EncodingSlot()
        set(child, for: key)
        return ValueEncoder(slot: child, codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = EncodingSlot()
        set(child, for: key)
        return ValueEncoder(slot: child, codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let child = EncodingSlot()
        set(child, for: key)
        return ValueEncoder(slot: child, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]
    var count: Int { if case let .array(slots) = slot.content { slots.count } else { 0 } }

    private func append(_ child: EncodingSlot) {
        guard case var .array(slots) = slot.content else { return }
        slot.content = .value(.null)  // release the old storage so the append below does not copy
        slots.append(child)
        slot.content = .array(slots)
    }

    private var nextPath: [any CodingKey] { codingPath + [AnyKey(stringValue: String(count))] }

    mutating func encodeNil() throws {
        let child = EncodingSlot()
        child.content = .value(.null)
        append(child)
    }

    mutating func encode(_ value: some Encodable) throws { append(try encodeLeaf(value, codingPath: nextPath)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = EncodingSlot()
        let path = nextPath
        append(child)
        return ValueEncoder(slot: child, codingPath: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = EncodingSlot()
        let path = nextPath
        append(child)
        return ValueEncoder(slot: child, codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let child = EncodingSlot()
        let path = nextPath
        append(child)
        return ValueEncoder(slot: child, codingPath: path)
    }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { slot.content = .value(.null) }

    mutating func encode(_ value: some Encodable) throws {
        slot.content = try encodeLeaf(value, codingPath: codingPath).content
    }
}
