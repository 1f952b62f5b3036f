/// A snapshot of a ``NATSBridge``'s counters. At any quiet moment, of the events that matched an
/// export pattern, `exported + possiblyLost + dropped` is every one of them.
public struct NATSBridgeStats: Sendable, Hashable {
    /// The connection: `connected`, `connecting`, `reconnecting`, `disconnected`, `draining` or `closed`.
    public var state: String
    /// Exports the server confirmed it received (a flush answered after they were written).
    public var exported: Int
    /// Exports written to a connection that dropped before the server confirmed them: they may
    /// or may not have reached it. Core NATS cannot tell.
    public var possiblyLost: Int
    /// Exports that never left: refused by the full export queue, failed to publish, or still
    /// queued at the shutdown deadline.
    public var dropped: Int
    /// NATS messages published locally.
    public var imported: Int
    /// NATS messages not published locally: dropped by the client as a slow consumer, not JSON,
    /// not a valid topic, or arriving after shutdown began.
    public var importDropped: Int
    /// Times the connection was re-established.
    public var reconnects: Int
    /// The JetStream exporter's counts, when there is a JetStream export.
    public var jetStream: JetStream?
    /// The JetStream importer's counts, when there is a JetStream import.
    public var jetStreamImport: JetStreamImport?

    /// What the JetStream importer counts. Of the messages the consumer delivered, at a quiet
    /// moment, `acked + nacked + terminated + pending` is every delivery.
    public struct JetStreamImport: Sendable, Hashable {
        /// Messages published locally (each delivery of one).
        public var imported = 0
        /// Acknowledged: every local subscriber was done with them, or none took them, or this instance exported them.
        public var acked = 0
        /// Negatively acknowledged: failed (to come again after the backoff), or dropped or abandoned locally (for another member).
        public var nacked = 0
        /// Terminated: failed at their last delivery, or never importable (not JSON, an invalid topic).
        public var terminated = 0
        /// Deliveries after the first of a message.
        public var redelivered = 0
        /// Delivered and not yet answered.
        public var pending = 0
    }

    /// What the JetStream exporter counts. At any quiet moment, of the events that matched a
    /// JetStream export pattern, `exported + exportFailed + exportPending` is every one of them.
    public struct JetStream: Sendable, Hashable {
        /// Exports the server acknowledged: stored in the stream.
        public var exported = 0
        /// Exports never stored: not acknowledged after every attempt, refused by the full
        /// export queue, or still queued at the shutdown deadline.
        public var exportFailed = 0
        /// Exports published and awaiting their acknowledgement.
        public var exportPending = 0
    }
}
