#if canImport(Glibc)
import Glibc
#endif
import CNATS
import Logging
import Synchronization
import SwitchboardCore

/// The JetStream side of a bridge's imports: pulls the stream's messages through a durable
/// consumer that every instance with its name shares, publishes each locally with a
/// ``DeliveryTracker``, and acknowledges it once every local subscriber is done with it.
///
/// - Handled (or failed and dead-lettered) everywhere: acknowledged.
/// - Failed without a dead letter: negatively acknowledged with the next ``JetStreamSettings/Import/backoff``
///   delay, so that it comes again; at its ``JetStreamSettings/Import/maxDeliver``th delivery, terminated.
/// - Dropped or abandoned by a local queue, or refused at shutdown: negatively acknowledged at once,
///   so that another member takes it.
/// - Exported by this instance (its `Switchboard-Origin`), or routed to no subscriber: acknowledged at once.
///
/// A message carries its delivery count in the header `Switchboard-Delivery`. Until it is done,
/// the server is told every third of ``JetStreamSettings/Import/ackWait`` that it is in progress.
/// Two threads of its own: one pulls and publishes, one acknowledges (a subscriber's report only
/// hands the outcome over, under whatever lock it holds).
final class JetStreamImporter: Sendable {
    /// The header with the number of times the server delivered the message: 1 the first time.
    static let deliveryHeader = "Switchboard-Delivery"

    private let link: NATSLink
    private let settings: JetStreamSettings.Import
    private let router: Router
    /// Never handed an imported message: it would store it again.
    private let exporter: Subscriber?
    private let context: ContextHandle
    private let subscription: ContextHandle
    let counts = Counts()
    /// Messages taken and not yet answered, by a local number; the answers waiting for the acknowledging thread.
    private let work = Mutex<Work>(Work())
    private let wake = ConditionLock()
    private let pulling = Atomic<Bool>(true)
    private let pulled = Completion()
    private let answered = Completion()
    private let log = Mutex(LogThrottle())

    /// What the importer counts.
    final class Counts: Sendable {
        let imported = Atomic<Int>(0)
        let acked = Atomic<Int>(0)
        let nacked = Atomic<Int>(0)
        let terminated = Atomic<Int>(0)
        let redelivered = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
    }

    /// How the acknowledging thread answers a message.
    private enum Answer {
        case outcome(DeliveryTracker.Outcome)
        case terminate
    }

    private struct Work {
        var next = 0
        var taken: [Int: (message: MessageHandle, delivered: Int, since: UInt64)] = [:]
        var answers: [(Int, Answer)] = []
        var stopping = false
    }

    /// Makes sure the consumer is there (created or updated with `create`, otherwise looked up:
    /// a missing one throws, naming it) and binds a pull subscription to it. Nothing is pulled
    /// before ``start()``.
    init(link: NATSLink, jetStream: JetStreamSettings, router: Router, exporter: Subscriber?) throws(NATSError) {
        self.link = link
        let settings = jetStream.import!
        self.settings = settings
        self.router = router
        self.exporter = exporter
        var options = jsOptions()
        try check(jsOptions_Init(&options), "cannot create the JetStream options")
        options.Wait = milliseconds(link.settings.connectTimeout)
        var js: OpaquePointer?
        try check(natsConnection_JetStream(&js, link.connection, &options), "cannot use JetStream")
        context = ContextHandle(value: js!)
        do {
            try Self.ensureConsumer(js, stream: jetStream.stream, settings: settings, create: jetStream.create)
            var bind = jsSubOptions()
            jsSubOptions_Init(&bind)
            var subscription: OpaquePointer?
            var code = jsErrCode(rawValue: 0)
            let status = jetStream.stream.withCString { stream in
                settings.durable.withCString { durable in
                    bind.Stream = stream
                    bind.Consumer = durable
                    bind.ManualAck = true
                    return js_PullSubscribe(&subscription, js, settings.filter, durable, nil, &bind, &code)  // no filter: all of the stream
                }
            }
            try check(status, "cannot pull from the JetStream consumer '\(settings.durable)' of stream '\(jetStream.stream)' (error \(code.rawValue))")
            self.subscription = ContextHandle(value: subscription!)
        } catch {
            jsCtx_Destroy(js)
            throw error
        }
    }

    deinit {
        natsSubscription_Destroy(subscription.value)
        jsCtx_Destroy(context.value)
        for (_, taken) in work.withLock({ $0.taken }) { natsMsg_Destroy(taken.message.value) }
    }

    private static func ensureConsumer(
        _ js: OpaquePointer?, stream: String, settings: JetStreamSettings.Import, create: Bool
    ) throws(NATSError) {
        var code = jsErrCode(rawValue: 0)
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        defer { jsConsumerInfo_Destroy(info) }
        guard create else {
            let status = js_GetConsumerInfo(&info, js, stream, settings.durable, nil, &code)
            if status == NATS_NOT_FOUND || code == JSConsumerNotFoundErr {
                throw NATSError("the JetStream consumer '\(settings.durable)' of stream '\(stream)' does not exist: create it, or set nats.jetstream.stream.create: true")
            }
            try check(status, "cannot look up the JetStream consumer '\(settings.durable)'")
            return
        }
        var config = jsConsumerConfig()
        try check(jsConsumerConfig_Init(&config), "cannot create a consumer configuration")
        let filter = settings.filter.flatMap { strdup($0) }  // nil: the whole stream
        defer { free(filter) }
        let status = settings.durable.withCString { durable in
            config.Durable = durable
            config.FilterSubject = UnsafePointer(filter)
            config.AckPolicy = js_AckExplicit
            config.DeliverPolicy = js_DeliverAll
            config.AckWait = Int64(SystemClock.nanoseconds(settings.ackWait))
            config.MaxDeliver = Int64(settings.maxDeliver)
            config.MaxAckPending = Int64(settings.maxAckPending)
            let added = js_AddConsumer(&info, js, stream, &config, nil, &code)
            guard code == JSConsumerNameExistErr else { return added }
            return js_UpdateConsumer(&info, js, stream, &config, nil, &code)
        }
        try check(status, "cannot create or update the JetStream consumer '\(settings.durable)' (error \(code.rawValue))")
    }

    /// Starts pulling and acknowledging, each on a thread of its own.
    func start() {
        OSThread.spawn { [self] in
            pull()
            pulled.signal()
        }
        OSThread.spawn { [self] in
            acknowledge()
            answered.signal()
        }
    }

    // MARK: Pulling

    private func pull() {
        while pulling.load(ordering: .relaxed) {
            let room = settings.maxAckPending - counts.pending.load(ordering: .relaxed)
            guard room > 0 else {
                usleep(1000)  // the server hands out no more until some are answered
                continue
            }
            var list = natsMsgList()
            var code = jsErrCode(rawValue: 0)
            let asked = min(room, 256)
            let status = natsSubscription_Fetch(&list, subscription.value, Int32(asked), 250, &code)
            // Every message of the batch is in hand, and kept alive, before the first is routed:
            // routing one may wait on a full `block` queue.
            var batch: [(number: Int, delivered: Int, message: OpaquePointer)] = []
            // The list holds at most what was asked for: a fetch cut short by a disconnection
            // can leave a count past it (read there, the list overflowed its allocation).
            let count = list.Msgs == nil ? 0 : min(Int(list.Count), asked)
            for index in 0..<count {
                guard let message = list.Msgs[index] else { continue }
                list.Msgs[index] = nil  // ours now: the list's destruction leaves it
                let (number, delivered) = take(message)
                batch.append((number, delivered, message))
            }
            for taken in batch { route(taken.number, delivered: taken.delivered, taken.message) }
            list.Count = Int32(count)  // or the list's destruction walks, and frees, past its slots too
            natsMsgList_Destroy(&list)
            if status != NATS_OK, status != NATS_TIMEOUT {
                if natsConnection_IsClosed(link.connection) { return }
                log.withLock { $0.log("nats jetstream: cannot pull from '\(settings.durable)': \(String(cString: natsStatus_GetText(status)))", level: .warning, to: link.logger) }
                usleep(100_000)  // disconnected: the client reconnects meanwhile
            }
        }
    }

    /// Takes a message in hand, with its delivery count; only the acknowledging thread answers
    /// and frees it.
    private func take(_ message: OpaquePointer) -> (number: Int, delivered: Int) {
        var metadata: UnsafeMutablePointer<jsMsgMetaData>?
        let delivered = natsMsg_GetMetaData(&metadata, message) == NATS_OK ? Int(metadata!.pointee.NumDelivered) : 1
        jsMsgMetaData_Destroy(metadata)
        counts.pending.add(1, ordering: .relaxed)
        return work.withLock { work in
            defer { work.next += 1 }
            work.taken[work.next] = (MessageHandle(value: message), delivered, SystemClock.monotonicNanos())
            return (work.next, delivered)
        }
    }

    /// Publishes a message in hand locally with a tracker, or answers it at once.
    private func route(_ number: Int, delivered: Int, _ message: OpaquePointer) {
        var headers = NATSImporter.headers(of: message)
        if headers[NATSBridge.originHeader] == link.instance { return queue(number, .outcome(.done)) }  // its own export
        if delivered > 1 { counts.redelivered.add(1, ordering: .relaxed) }
        headers[Self.deliveryHeader] = String(delivered)
        let subject = String(cString: natsMsg_GetSubject(message))
        let tape: JSONTape
        do {
            let length = Int(natsMsg_GetDataLength(message))
            tape = length == 0
                ? JSONTape(.null) : try JSONTape(parsing: UnsafeRawBufferPointer(start: natsMsg_GetData(message), count: length))
        } catch {
            log.withLock { $0.log("nats jetstream: message on '\(subject)' is not JSON, terminated: \(error)", level: .warning, to: link.logger) }
            return queue(number, .terminate)
        }
        let tracker = DeliveryTracker { [self] outcome, _ in queue(number, .outcome(outcome)) }
        do {
            try router.publish(subject, tape: tape, headers: headers, excluding: exporter, tracker: tracker)
            counts.imported.add(1, ordering: .relaxed)
        } catch .invalidTopic(let error) {  // it never becomes valid; not routed, so the tracker never completes
            log.withLock { $0.log("nats jetstream: message on '\(subject)' not imported, terminated: \(error)", level: .warning, to: link.logger) }
            queue(number, .terminate)
        } catch {
            queue(number, .outcome(.lost))  // shutting down: another member takes it
        }
    }

    /// Hands an answer to the acknowledging thread. Called under whatever lock a subscriber holds: it only queues.
    private func queue(_ number: Int, _ answer: Answer) {
        work.withLock { $0.answers.append((number, answer)) }
        wake.withLock { wake.signal() }
    }

    // MARK: Acknowledging

    /// Answers the outcomes as they come, and tells the server about messages still in hand
    /// every third of the acknowledgement wait; until ``close(timeout:)``.
    private func acknowledge() {
        let keepAlive = SystemClock.nanoseconds(settings.ackWait) / 3
        var nextKeepAlive = SystemClock.monotonicNanos() + keepAlive
        while true {
            let (answers, stopping) = work.withLock { work in
                defer { work.answers = [] }
                return (work.answers, work.stopping)
            }
            for (number, answer) in answers {
                guard let taken = work.withLock({ $0.taken.removeValue(forKey: number) }) else { continue }
                counts.pending.subtract(1, ordering: .relaxed)
                let last = taken.delivered >= settings.maxDeliver
                switch answer {
                case .terminate: terminate(taken.message.value)
                case .outcome(.failed) where last: terminate(taken.message.value)
                case .outcome(.lost) where last:
                    // The server would deliver it no more; said and counted rather than left to lapse.
                    log.withLock {
                        $0.log("nats jetstream: a message was dropped or abandoned here at its last delivery (max_deliver \(settings.maxDeliver)): terminated", level: .warning, to: link.logger)
                    }
                    terminate(taken.message.value)
                case .outcome(let outcome): send(taken.message.value, outcome, delivered: taken.delivered)
                }
            }
            if stopping, answers.isEmpty { return }
            let now = SystemClock.monotonicNanos()
            if now >= nextKeepAlive {
                for (_, taken) in work.withLock({ $0.taken }) where now &- taken.since >= keepAlive {
                    natsMsg_InProgress(taken.message.value, nil)
                }
                nextKeepAlive = now + keepAlive
            }
            wake.withLock {
                if work.withLock({ $0.answers.isEmpty && !$0.stopping }) { _ = wake.wait(untilMonotonic: min(nextKeepAlive, now + 100_000_000)) }
            }
        }
    }

    /// Acknowledges, or negatively acknowledges (with the backoff's delay for a failure), and frees the message.
    private func send(_ message: OpaquePointer, _ outcome: DeliveryTracker.Outcome, delivered: Int) {
        switch outcome {
        case .done:
            natsMsg_Ack(message, nil)
            counts.acked.add(1, ordering: .relaxed)
        case .failed:
            let delay = settings.backoff.isEmpty ? .zero : settings.backoff[min(delivered, settings.backoff.count) - 1]
            natsMsg_NakWithDelay(message, milliseconds(delay), nil)
            counts.nacked.add(1, ordering: .relaxed)
        case .lost:
            natsMsg_Nak(message, nil)
            counts.nacked.add(1, ordering: .relaxed)
        }
        natsMsg_Destroy(message)
    }

    /// Terminates a message that will never be handled (its last delivery failed, or it can never be published), and frees it.
    private func terminate(_ message: OpaquePointer) {
        natsMsg_Term(message, nil)
        counts.terminated.add(1, ordering: .relaxed)
        natsMsg_Destroy(message)
    }

    // MARK: Stopping

    /// Stops pulling, waiting up to `timeout` for the puller to notice.
    func stopPulling(timeout: Duration) async {
        pulling.store(false, ordering: .relaxed)
        _ = await pulled.wait(timeout: timeout)
    }

    /// Answers what the local subscribers finished (after the router's shutdown, all of it),
    /// waiting up to `timeout`; what is still in hand is left unacknowledged, for the server
    /// to deliver again after the acknowledgement wait.
    func close(timeout: Duration) async {
        await stopPulling(timeout: timeout)
        let deadline = SystemClock.monotonicNanos() + SystemClock.nanoseconds(timeout)
        while counts.pending.load(ordering: .relaxed) > 0, SystemClock.monotonicNanos() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        work.withLock { $0.stopping = true }
        wake.withLock { wake.signal() }
        _ = await answered.wait(timeout: timeout)
    }
}

/// A `jsCtx *` or `natsSubscription *`: the C client locks them on every call, so any thread may use them.
struct ContextHandle: @unchecked Sendable {
    let value: OpaquePointer
}
