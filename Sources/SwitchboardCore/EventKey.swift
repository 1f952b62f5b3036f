/// What keeps a subscriber's events in order across its workers: events with equal keys go
/// to the same worker, which handles them in publish order.
///
/// Keys are compared by their JSON text, so `1`, `1.0` and `"1"` are three keys. An event
/// without the key (a missing path, or an array or object there) has the null key; all
/// events with the null key go to one worker.
public enum EventKey: Sendable, Hashable, CustomStringConvertible {
    /// The event's topic.
    case topic
    /// The value at a path of object keys in the payload: `data.customer.id` is `["customer", "id"]`.
    case data([String])
    /// A header's value.
    case header(String)

    /// Reads the configuration form: `topic`, `data.<path>` (dot-separated object keys) or
    /// `headers.<name>`; nil for anything else.
    public init?(_ text: String) {
        if text == "topic" {
            self = .topic
        } else if text.hasPrefix("data.") {
            let path = text.dropFirst(5).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else { return nil }
            self = .data(path)
        } else if text.hasPrefix("headers."), text.count > 8 {
            self = .header(String(text.dropFirst(8)))
        } else {
            return nil
        }
    }

    /// The configuration form.
    public var description: String {
        switch self {
        case .topic: "topic"
        case let .data(path): "data." + path.joined(separator: ".")
        case let .header(name): "headers." + name
        }
    }

    /// The worker, out of `count`, that takes the events with `event`'s key.
    func lane(of event: borrowing Event, among count: Int) -> Int {
        var hasher = Hasher()
        switch self {
        case .topic:
            hasher.combine(event.topic)
        case let .header(name):
            hasher.combine(event.headers[name])
        case let .data(path):
            // A scalar's tape bytes (its tag and value) are equal exactly when its JSON text is.
            if let found = Self.scalar(at: path, in: event.tape) {
                found.withUnsafeBytes { hasher.combine(bytes: $0) }
            } else {  // the null key: the same bytes as a null at the path
                withUnsafeBytes(of: JSONTape.Tag.null.rawValue) { hasher.combine(bytes: $0) }
            }
        }
        return Int(UInt(bitPattern: hasher.finalize()) % UInt(count))
    }

    /// The scalar at `path` in `tape`; nil when a key is missing or the value is an array or object.
    private static func scalar(at path: [String], in tape: JSONTape) -> JSONTape? {
        var found = tape
        for key in path {
            var member: JSONTape?
            found.forEachMember(rawKeys: { name, value in
                if member == nil, name.elementsEqual(key.utf8) { member = value }
            })
            guard let member else { return nil }
            found = member
        }
        return found.withUnsafeBytes { $0.first.map { $0 < JSONTape.Tag.array.rawValue } ?? false } ? found : nil
    }
}
