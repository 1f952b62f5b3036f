#if canImport(Glibc)
import Glibc
#endif
import CNATS
import Logging
import Synchronization
import SwitchboardCore

/// The export side of a bridge: a router subscriber whose handler publishes each event to NATS.
/// It runs on the subscriber's own thread, the only one that publishes on the connection, so a
/// slow or absent server fills its bounded queue (drops counted) and never holds a publisher.
///
/// Exports are confirmed by a flush (a round trip to the server) every flush interval and at
/// the end. Those written before a lost connection and not confirmed on it are counted as
/// possibly lost; while the connection is down, the handler waits, and the queue absorbs.
final class NATSExporter: EventHandler {
    private let link: NATSLink
    private let interval: UInt64
    private var nextFlush: UInt64 = 0
    /// The payload's JSON text, reused from event to event.
    private var text: [UInt8] = []
    /// Written since the last confirmation, and the link's epoch before the first of them.
    private var unconfirmed = 0
    private var unconfirmedEpoch = 0
    /// The client's statistics, read for the reconnect count (see ``NATSLink/epoch(_:)``).
    private var statistics: OpaquePointer?
    private var context: SubscriberContext?
    /// Failed exports, logged once per 10 s for each kind of failure.
    private var errors = LogThrottle()
    /// Drops already logged, and when: at most one line per 10 s.
    private var droppedLogged = (count: 0, at: UInt64(0))
    private let interrupted = Atomic<Bool>(false)
    /// Signalled once the last export is confirmed or counted, after the last event.
    let stopped = Completion()

    init(link: NATSLink) {
        self.link = link
        interval = SystemClock.nanoseconds(link.settings.flushInterval)
    }

    deinit { natsStatistics_Destroy(statistics) }

    func start(_ context: SubscriberContext) throws {
        self.context = context
        try check(natsStatistics_Create(&statistics), "cannot create NATS statistics")
        nextFlush = SystemClock.monotonicNanos() + interval
    }

    func handle(_ event: Event) throws {
        do {
            try export(event)
        } catch {
            errors.log("nats: \(error)", level: .error, metadata: ["event": "\(event.id)"], to: link.logger)
            throw error
        }
    }

    private func export(_ event: Event) throws(NATSError) {
        try waitForConnection()
        let message = try Self.message(for: event, instance: link.instance, text: &text)
        defer { natsMsg_Destroy(message) }
        if unconfirmed == 0 { unconfirmedEpoch = link.epoch(statistics) }  // before the write: a loss after it must show
        try check(natsConnection_PublishMsg(link.connection, message), "cannot export '\(event.topic)' to NATS")
        unconfirmed += 1
    }

    /// A new message for an export (the caller destroys it): the payload as JSON, written
    /// through `text` (reused from event to event), and the headers: the event's own (those
    /// NATS can carry), its id, time and origin.
    static func message(for event: Event, instance: String, text: inout [UInt8]) throws(NATSError) -> OpaquePointer? {
        text.removeAll(keepingCapacity: true)
        event.tape.write(to: &text)
        var message: OpaquePointer?
        try text.withUnsafeBufferPointer { bytes throws(NATSError) in
            try bytes.withMemoryRebound(to: CChar.self) { bytes throws(NATSError) in
                try check(natsMsg_Create(&message, event.topic, nil, bytes.baseAddress, Int32(bytes.count)), "cannot export '\(event.topic)'")
            }
        }
        for (key, value) in event.headers where isValidHeader(key, value) {
            natsMsgHeader_Set(message, key, value)
        }
        natsMsgHeader_Set(message, NATSBridge.idHeader, event.id.description)
        natsMsgHeader_Set(message, NATSBridge.timeHeader, String(event.time))
        natsMsgHeader_Set(message, NATSBridge.originHeader, instance)
        return message
    }

    /// NATS headers are text lines: a key holds no `:`, space or control character, a value no line break.
    private static func isValidHeader(_ key: String, _ value: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }
            && !value.utf8.contains { $0 == 10 || $0 == 13 }
    }

    /// Returns once the connection is up; throws if it closed for good, or shutdown interrupted the wait.
    private func waitForConnection() throws(NATSError) {
        while natsConnection_Status(link.connection) != NATS_CONN_STATUS_CONNECTED {
            if natsConnection_IsClosed(link.connection) { throw NATSError("the NATS connection is closed for good") }
            if interrupted.load(ordering: .relaxed) { throw NATSError("shut down while NATS was unreachable") }
            if SystemClock.monotonicNanos() >= nextFlush { fireTimers() }
            usleep(10_000)
        }
    }

    var nextTimerDeadline: UInt64? { nextFlush }

    func fireTimers() {
        confirm(final: false)
        reportDrops(final: false)
        nextFlush = SystemClock.monotonicNanos() + interval
    }

    /// Confirms what was written since the last time with a flush: confirmed if the connection
    /// held throughout, possibly lost if it dropped in between. A flush that fails on a
    /// connection that held is tried again next time, except at the end.
    private func confirm(final: Bool) {
        guard unconfirmed > 0 else { return }
        let status = natsConnection_FlushTimeout(link.connection, milliseconds(link.settings.connectTimeout))
        if link.epoch(statistics) != unconfirmedEpoch || (status != NATS_OK && final) {
            link.possiblyLost.add(unconfirmed, ordering: .relaxed)
            link.logger.warning("nats: \(unconfirmed) exports were not confirmed before the connection was lost: counted as possibly lost")
        } else if status == NATS_OK {
            link.exported.add(unconfirmed, ordering: .relaxed)
        } else {
            return
        }
        unconfirmed = 0
    }

    /// Logs the export queue's drops since the last line, at most once per 10 s and at the end.
    private func reportDrops(final: Bool) {
        let now = SystemClock.monotonicNanos()
        guard final || now &- droppedLogged.at >= 10_000_000_000, let context,
              let stats = context.router?.subscriber(named: context.name)?.stats(), stats.dropped > droppedLogged.count
        else { return }
        link.logger.warning(
            "nats: the export queue (\(stats.capacity) events) was full: \(stats.dropped - droppedLogged.count) exports dropped, \(stats.dropped) in all")
        droppedLogged = (stats.dropped, now)
    }

    func stop() {
        confirm(final: true)
        reportDrops(final: true)
        errors.flush(to: link.logger)
        stopped.signal()
    }

    func interrupt() { interrupted.store(true, ordering: .relaxed) }
}
