import CNATS
import Logging
import Synchronization
import SwitchboardCore

/// The import side of a bridge: publishes each NATS message on an import subject locally, on
/// the client's delivery thread, with its NATS headers as event headers. A local queue under
/// the `block` policy holds that thread, and the client then counts a slow consumer's drops.
final class NATSImporter: Sendable {
    private let link: NATSLink
    private let router: Router
    /// Never handed an imported event: that would export it again.
    private let exporter: Subscriber?
    private let log = Mutex(LogThrottle())

    init(link: NATSLink, router: Router, exporter: Subscriber?) {
        self.link = link
        self.router = router
        self.exporter = exporter
    }

    /// The subscriptions' message handler; the closure is the importer. Takes ownership of the message.
    static let onMessage: natsMsgHandler = { _, _, message, closure in
        Unmanaged<NATSImporter>.fromOpaque(closure!).takeUnretainedValue().receive(message!)
        natsMsg_Destroy(message)
    }

    private func receive(_ message: OpaquePointer) {
        let subject = String(cString: natsMsg_GetSubject(message))
        do {
            let length = Int(natsMsg_GetDataLength(message))
            // An empty message (a bare signal, common on NATS) is null; anything else must be JSON.
            let tape = length == 0
                ? JSONTape(.null) : try JSONTape(parsing: UnsafeRawBufferPointer(start: natsMsg_GetData(message), count: length))
            let headers = Self.headers(of: message)
            if let exporter {
                try router.publish(subject, tape: tape, headers: headers, excluding: exporter)
            } else {
                try router.publish(subject, tape: tape, headers: headers)
            }
            link.imported.add(1, ordering: .relaxed)
        } catch {
            link.importRejected.add(1, ordering: .relaxed)
            log.withLock { $0.log("nats: message on '\(subject)' not imported: \(error)", level: .warning, to: link.logger) }
        }
    }

    /// The message's headers, the first value of each.
    static func headers(of message: OpaquePointer) -> [String: String] {
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        guard natsMsgHeader_Keys(message, &keys, &count) == NATS_OK, let keys else { return [:] }
        defer { free(keys) }  // the array is ours; the strings are the message's
        var headers: [String: String] = [:]
        for index in 0..<Int(count) {
            guard let key = keys[index] else { continue }
            var value: UnsafePointer<CChar>?
            if natsMsgHeader_Get(message, key, &value) == NATS_OK, let value {
                headers[String(cString: key)] = String(cString: value)
            }
        }
        return headers
    }
}
