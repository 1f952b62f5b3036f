#if canImport(Glibc)
import Glibc
#endif
import CNATS
import Logging
import Synchronization
import SwitchboardCore

/// The JetStream side of a bridge's exports: a router subscriber whose handler publishes each
/// event to the stream asynchronously, with `Nats-Msg-Id` set to the event's id. An export
/// counts as exported only once the server's acknowledgement has arrived. One that gets no
/// acknowledgement in time, or no answer (a server restart, a lost connection), is published
/// again from the exporter's own thread, every 100 ms, and the stream's duplicate window stores
/// it once; once ``JetStreamSettings/ackTimeout`` times ``JetStreamSettings/attempts`` have
/// passed since its first publish, it counts as failed. At most ``JetStreamSettings/ackWindow``
/// exports await acknowledgement; past that the handler waits, and the subscriber's bounded
/// queue absorbs (never holding a publisher).
final class JetStreamExporter: EventHandler {
    /// The name of the exporter's subscriber in the router's stats.
    static let name = "nats.jetstream.export"

    private let link: NATSLink
    private let settings: JetStreamSettings
    let acks: Acknowledgements
    private var context: OpaquePointer?  // the jsCtx
    private var text: [UInt8] = []
    private var errors = LogThrottle()
    private var nextRetry: UInt64 = 0
    private let interrupted = Atomic<Bool>(false)
    /// Signalled once the last export is acknowledged or counted.
    let stopped = Completion()

    /// What the acknowledgements count, shared with the client's thread that delivers them.
    final class Acknowledgements: Sendable {
        let exported = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        /// When each export awaiting acknowledgement was first published, by event id.
        fileprivate let firstSent = Mutex<[String: UInt64]>([:])
        /// Exports to publish again, owned here until the exporter's thread takes them; closed at stop.
        fileprivate let again = Mutex<(messages: [MessageHandle], closed: Bool)>(([], false))
        fileprivate let budget: UInt64  // nanoseconds from the first publish
        fileprivate let ackWait: Int64  // milliseconds
        fileprivate let logger: Logger
        fileprivate let log = Mutex(LogThrottle())

        init(logger: Logger, settings: JetStreamSettings) {
            self.logger = logger
            budget = SystemClock.nanoseconds(settings.ackTimeout) * UInt64(max(settings.attempts, 1))
            ackWait = milliseconds(settings.ackTimeout)
        }

        /// Counts an export as failed for good and forgets it.
        fileprivate func fail(_ id: String, _ why: String) {
            firstSent.withLock { _ = $0.removeValue(forKey: id) }
            failed.add(1, ordering: .relaxed)
            pending.subtract(1, ordering: .relaxed)
            log.withLock { $0.log("nats jetstream: an export was not stored: \(why)", level: .error, to: logger) }
        }
    }

    /// Makes the JetStream context; the stream must be there (``JetStreamSettings/ensureStream(on:wait:)``).
    init(link: NATSLink, settings: JetStreamSettings) throws(NATSError) {
        self.link = link
        self.settings = settings
        acks = Acknowledgements(logger: link.logger, settings: settings)
        var options = jsOptions()
        try check(jsOptions_Init(&options), "cannot create the JetStream options")
        options.Wait = milliseconds(link.settings.connectTimeout)
        options.PublishAsync.MaxPending = Int64(settings.ackWindow)
        options.PublishAsync.AckHandler = Self.onAcknowledgement
        options.PublishAsync.AckHandlerClosure = Unmanaged.passUnretained(acks).toOpaque()  // kept by self, which outlives the context
        var context: OpaquePointer?
        try check(natsConnection_JetStream(&context, link.connection, &options), "cannot use JetStream")
        self.context = context
    }

    deinit { jsCtx_Destroy(context) }

    func handle(_ event: Event) throws {
        do {
            try export(event)
        } catch {
            // Interrupted at the drain deadline, the event counts as abandoned by its queue.
            if !interrupted.load(ordering: .relaxed) { acks.failed.add(1, ordering: .relaxed) }
            errors.log("nats jetstream: \(error)", level: .error, metadata: ["event": "\(event.id)"], to: link.logger)
            throw error
        }
    }

    private func export(_ event: Event) throws(NATSError) {
        var message = try NATSExporter.message(for: event, instance: link.instance, text: &text)
        defer { natsMsg_Destroy(message) }  // nothing once the client took it
        let id = event.id.description
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = acks.ackWait
        acks.pending.add(1, ordering: .relaxed)
        acks.firstSent.withLock { $0[id] = SystemClock.monotonicNanos() }
        let status = id.withCString { id in
            options.MsgId = id
            // A full window makes the client wait (its stall wait) and refuse: wait and try again.
            var status = js_PublishMsgAsync(context, &message, &options)
            while status == NATS_TIMEOUT, !interrupted.load(ordering: .relaxed) {
                status = js_PublishMsgAsync(context, &message, &options)
            }
            return status
        }
        if status != NATS_OK {
            acks.firstSent.withLock { _ = $0.removeValue(forKey: id) }
            acks.pending.subtract(1, ordering: .relaxed)
            throw NATSError("cannot export '\(event.topic)' to JetStream", status)
        }
    }

    /// Called on the client's thread for each acknowledgement, or its absence: counts it, or
    /// keeps the message to publish again from the exporter's thread, which the stream's
    /// duplicate window stores once. Never blocks: acknowledgements wait behind it.
    private static let onAcknowledgement: jsPubAckHandler = { _, message, acknowledgement, failure, closure in
        let acks = Unmanaged<Acknowledgements>.fromOpaque(closure!).takeUnretainedValue()
        var id: UnsafePointer<CChar>?
        natsMsgHeader_Get(message, "Nats-Msg-Id", &id)
        let key = id.map { String(cString: $0) } ?? ""
        if acknowledgement != nil {
            natsMsg_Destroy(message)
            acks.firstSent.withLock { _ = $0.removeValue(forKey: key) }
            acks.exported.add(1, ordering: .relaxed)
            acks.pending.subtract(1, ordering: .relaxed)
            return
        }
        let status = failure?.pointee.Err ?? NATS_ERR
        let why = failure?.pointee.ErrText.map { String(cString: $0) } ?? String(cString: natsStatus_GetText(status))
        let transient = status == NATS_TIMEOUT || status == NATS_NO_RESPONDERS || status == NATS_CONNECTION_DISCONNECTED
        let first = acks.firstSent.withLock { $0[key] } ?? 0
        if transient, SystemClock.monotonicNanos() &- first < acks.budget, let message,
           acks.again.withLock({ again in
               if !again.closed { again.messages.append(MessageHandle(value: message)) }  // ours now: the client destroys nothing
               return !again.closed
           }) {
            return
        }
        natsMsg_Destroy(message)
        acks.fail(key, why)
    }

    var nextTimerDeadline: UInt64? { nextRetry }

    func start(_ context: SubscriberContext) throws {
        nextRetry = SystemClock.monotonicNanos() + Self.retryInterval
    }

    /// How often exports without an acknowledgement are published again.
    private static let retryInterval: UInt64 = 100_000_000

    func fireTimers() {
        publishAgain()
        nextRetry = SystemClock.monotonicNanos() + Self.retryInterval
    }

    /// Publishes again what got no acknowledgement; what the client refuses counts as failed.
    private func publishAgain() {
        for handle in acks.again.withLock({ again in defer { again.messages = [] }; return again.messages }) {
            var message: OpaquePointer? = handle.value
            var id: UnsafePointer<CChar>?
            natsMsgHeader_Get(message, "Nats-Msg-Id", &id)
            let key = id.map { String(cString: $0) } ?? ""
            var options = jsPubOptions()
            jsPubOptions_Init(&options)
            options.MaxWait = acks.ackWait
            let status = key.withCString { id in
                options.MsgId = id
                return js_PublishMsgAsync(context, &message, &options)
            }
            let first = acks.firstSent.withLock { $0[key] } ?? 0
            if status == NATS_TIMEOUT, SystemClock.monotonicNanos() &- first < acks.budget, let message {
                acks.again.withLock { $0.messages.append(MessageHandle(value: message)) }  // the window is full: next time
            } else if status != NATS_OK {
                natsMsg_Destroy(message)
                acks.fail(key, String(cString: natsStatus_GetText(status)))
            }
        }
    }

    func stop() {
        // Wait for what is in flight, publishing again what needs it, for at most the
        // acknowledgement timeout; what is still unacknowledged then counts as failed.
        let deadline = SystemClock.monotonicNanos() + SystemClock.nanoseconds(settings.ackTimeout)
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = 100
        while acks.pending.load(ordering: .relaxed) > 0, SystemClock.monotonicNanos() < deadline {
            publishAgain()
            if js_PublishAsyncComplete(context, &options) == NATS_OK { usleep(10_000) }  // none in flight: a retry is due
        }
        let unsent = acks.again.withLock { again in
            defer { (again.messages, again.closed) = ([], true) }  // a late failure now counts at once
            return again.messages
        }
        for handle in unsent { natsMsg_Destroy(handle.value) }
        var left = unsent.count
        var list = natsMsgList()
        // (The client has no pending list before the first publish: asking for it then crashes.)
        if acks.pending.load(ordering: .relaxed) > unsent.count, js_PublishAsyncGetPendingList(&list, context) == NATS_OK {
            left += Int(list.Count)
            natsMsgList_Destroy(&list)
        }
        if left > 0 {
            acks.failed.add(left, ordering: .relaxed)
            acks.pending.subtract(left, ordering: .relaxed)
            link.logger.error("nats jetstream: \(left) exports were not acknowledged before the shutdown: counted as failed")
        }
        errors.flush(to: link.logger)
        acks.log.withLock { $0.flush(to: link.logger) }
        stopped.signal()
    }

    func interrupt() { interrupted.store(true, ordering: .relaxed) }
}

/// A `natsMsg *` handed from the client's thread to the exporter's.
struct MessageHandle: @unchecked Sendable {
    let value: OpaquePointer
}
