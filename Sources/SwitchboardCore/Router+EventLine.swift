#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Router {
    /// Publishes one event line, `{"topic": ..., "data": ..., "headers": {...}}`: the format of
    /// the stdin feeder and of HTTP ingest. `data` is published as parsed, without conversion;
    /// no `data` is null. Throws ``RouterError/invalidArgument(_:)`` saying what is wrong with
    /// the line, or as ``publish(_:tape:headers:waitingForRoom:)`` does.
    @discardableResult
    public func publish(eventLine line: UnsafeRawBufferPointer) throws(RouterError) -> DeliveryReport {
        let envelope: JSONTape
        do {
            // Into this thread's scratch memory: the event copies its payload, so a feeder's
            // lines cost no allocation each.
            envelope = try JSONTape(parsing: line, reusing: &PublisherContext.current(contextKey).pointee.scratch)
        } catch {
            throw .invalidArgument("\(error)")
        }
        guard line.first(where: { $0 != 0x20 && $0 != 0x09 }) == UInt8(ascii: "{") else {
            throw .invalidArgument("not a JSON object")
        }
        var topic: String?
        var payload: JSONTape?
        var headers: [String: String] = [:]
        var problem: String?
        envelope.forEachMember(rawKeys: { key, value in
            if Self.spells(key, "topic") {
                topic = value.stringValue
                if topic == nil { problem = "the topic must be a string" }
            } else if Self.spells(key, "data") {
                payload = value
            } else if Self.spells(key, "headers") {
                guard let strings = value.strings else {
                    problem = "headers must be an object of strings"
                    return
                }
                headers = strings
            }
        })
        if let problem { throw .invalidArgument(problem) }
        guard let topic else { throw .invalidArgument("missing topic") }
        if let payload { return try publish(topic, tape: payload, headers: headers) }
        return try publish(topic, data: .null, headers: headers)
    }

    /// True when `bytes` are the UTF-8 of `word`.
    private static func spells(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        bytes.count == word.utf8CodeUnitCount && memcmp(bytes.baseAddress!, word.utf8Start, bytes.count) == 0
    }
}
