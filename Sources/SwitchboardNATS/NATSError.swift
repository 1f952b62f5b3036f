import CNATS

/// A failure of the NATS client, in its own words.
public struct NATSError: Error, CustomStringConvertible {
    /// What was being done, and why it failed.
    public let description: String

    /// The error `status` of the call just made on this thread, with the client's detail
    /// for it when it has one (the C client keeps the last error per thread).
    init(_ doing: String, _ status: natsStatus) {
        var lastStatus = NATS_OK
        var detail = nats_GetLastError(&lastStatus).map { String(cString: $0) } ?? ""
        if detail.hasPrefix("("), let end = detail.firstRange(of: "): ") { detail = String(detail[end.upperBound...]) }  // "(conn.c:2088): "
        let text = String(cString: natsStatus_GetText(status))
        description = "\(doing): \(detail.isEmpty || lastStatus != status ? text : detail)"
    }

    init(_ description: String) {
        self.description = description
    }
}

/// Throws a ``NATSError`` unless `status` is `NATS_OK`.
@inline(__always)
func check(_ status: natsStatus, _ doing: @autoclosure () -> String) throws(NATSError) {
    if status != NATS_OK { throw NATSError(doing(), status) }
}
