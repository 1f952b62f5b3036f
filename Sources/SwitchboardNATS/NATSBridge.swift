#if canImport(Glibc)
import Glibc
#endif
import CNATS
import Logging
import Synchronization
import SwitchboardCore

/// Connects a router to NATS: local events whose topic matches an export pattern are published
/// to NATS under the same subject, and NATS messages on the import subjects are published
/// locally, so that several instances share topics and, with a queue group, work.
///
/// Exports carry the event's id, time and origin instance in NATS headers and the payload as
/// JSON; imports restore them as event headers. An imported event is never exported again by
/// the instance that imported it, and the server never hands an instance its own exports
/// (no echo), so bridges do not loop. Delivery over core NATS is at most once: what may have
/// been lost is counted (see ``NATSBridgeStats``), never silent. With ``JetStreamSettings``,
/// exports are stored in a stream, each counted once the server acknowledged it, and imports
/// come through a durable consumer, each acknowledged once every local subscriber is done.
///
/// The life of a bridge: ``init(settings:instance:router:logger:)`` connects and starts the
/// exporter; ``startImports()`` once local subscribers are in place; at the end,
/// ``stopImports(timeout:)``, the router's shutdown (which drains the exporter), ``close(timeout:)``.
public final class NATSBridge: Sendable {
    /// The header with the event's id, in its text form.
    public static let idHeader = "Switchboard-Id"
    /// The header with the event's publish time: Unix seconds, with a fraction.
    public static let timeHeader = "Switchboard-Time"
    /// The header with the name of the instance that exported the event.
    public static let originHeader = "Switchboard-Origin"
    /// The name of the exporter's subscriber in the router's stats.
    public static let exporterName = "nats.export"
    /// The names of both exporters' subscribers, core and JetStream: they keep their own counts.
    public static let exporterNames: Set = [exporterName, JetStreamExporter.name]

    /// This instance's name: the origin of what it exports, and its connection's name.
    public var instance: String { link.instance }
    private let link: NATSLink
    private let router: Router
    private let importer: NATSImporter
    private let exporter: (subscriber: Subscriber, stopped: Completion)?
    /// The JetStream exporter: its subscriber and its acknowledgements.
    private let jetStream: (subscriber: Subscriber, stopped: Completion, acks: JetStreamExporter.Acknowledgements)?
    /// The JetStream importer, once imports started.
    private let jetStreamImporter = Mutex<JetStreamImporter?>(nil)
    /// Import subscriptions, and what the client dropped of those already closed.
    private let subscriptions = Mutex<(live: [SubscriptionHandle], dropped: Int)>(([], 0))

    /// Connects (throws if the server cannot be reached within the connect timeout) and, with
    /// export patterns, subscribes the exporter to `router` under ``exporterName``.
    public init(settings: NATSSettings, instance: String, router: Router, logger: Logger) throws {
        link = try NATSLink(settings: settings, instance: instance, logger: logger)
        self.router = router
        var exporter: (subscriber: Subscriber, stopped: Completion)?
        do {
            try settings.jetStream?.ensureStream(on: link.connection, wait: settings.connectTimeout)
            if !settings.export.isEmpty {
                let handler = NATSExporter(link: link)
                let subscriber = try router.subscribe(
                    settings.export, name: Self.exporterName, capacity: settings.exportCapacity, overflow: .dropNewest,
                    failurePolicy: FailurePolicy(restartAfter: .max), handler: handler)
                exporter = (subscriber, handler.stopped)
            }
            if let jetStream = settings.jetStream, !jetStream.export.isEmpty {
                let handler = try JetStreamExporter(link: link, settings: jetStream)
                let subscriber = try router.subscribe(
                    jetStream.export, name: JetStreamExporter.name, capacity: settings.exportCapacity, overflow: .dropNewest,
                    failurePolicy: FailurePolicy(restartAfter: .max), handler: handler)
                self.jetStream = (subscriber, handler.stopped, handler.acks)
            } else {
                self.jetStream = nil
            }
        } catch {
            if let exporter { router.unsubscribe(exporter.subscriber) }
            link.destroy()
            throw error
        }
        self.exporter = exporter
        importer = NATSImporter(link: link, router: router, exporter: exporter?.subscriber)
    }

    /// Subscribes to the import subjects (in the queue group, if set) and waits until the
    /// server has them: a message published after this returns reaches this instance.
    public func startImports() throws(NATSError) {
        let settings = link.settings
        if let jetStream = settings.jetStream, jetStream.import != nil {
            let importer = try JetStreamImporter(link: link, jetStream: jetStream, router: router, exporter: self.jetStream?.subscriber)
            jetStreamImporter.withLock { $0 = importer }
            importer.start()
        }
        for subject in settings.import {
            var subscription: OpaquePointer?
            let closure = Unmanaged.passRetained(importer).toOpaque()  // released when the subscription completes
            let status = if let group = settings.queueGroup {
                natsConnection_QueueSubscribe(&subscription, link.connection, subject, group, NATSImporter.onMessage, closure)
            } else {
                natsConnection_Subscribe(&subscription, link.connection, subject, NATSImporter.onMessage, closure)
            }
            guard status == NATS_OK, let subscription else {
                Unmanaged<NATSImporter>.fromOpaque(closure).release()
                throw NATSError("cannot subscribe to '\(subject)' on NATS", status)
            }
            natsSubscription_SetOnCompleteCB(subscription, { closure in
                Unmanaged<NATSImporter>.fromOpaque(closure!).release()
            }, closure)
            subscriptions.withLock { $0.live.append(SubscriptionHandle(value: subscription)) }
        }
        try check(
            natsConnection_FlushTimeout(link.connection, milliseconds(settings.connectTimeout)),
            "NATS did not confirm the import subscriptions")
    }

    /// Stops taking messages from NATS: unsubscribes, so that the server hands the rest of the
    /// queue group's work to other instances, and publishes locally what had already arrived
    /// (waiting up to `timeout` for it). Call it before the router's shutdown.
    public func stopImports(timeout: Duration) async {
        await jetStreamImporter.withLock { $0 }?.stopPulling(timeout: timeout)
        let live = subscriptions.withLock { $0.live }
        guard !live.isEmpty else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            OSThread.spawn {  // the waits block
                for subscription in live { natsSubscription_Drain(subscription.value) }
                for subscription in live {
                    natsSubscription_WaitForDrainCompletion(subscription.value, milliseconds(timeout))
                }
                done.resume()
            }
        }
        subscriptions.withLock { subscriptions in
            for subscription in subscriptions.live {
                subscriptions.dropped += Self.dropped(subscription.value)
                natsSubscription_Destroy(subscription.value)
            }
            subscriptions.live = []
        }
    }

    /// Closes the connection once the exporter has confirmed or counted its last export (after
    /// the router's shutdown, which drains it), waiting up to `timeout` for each step. An
    /// exporter still at work then (the router was not shut down) keeps the connection's
    /// memory: it is closed, not freed.
    public func close(timeout: Duration) async {
        // Its last flush may take up to the connect timeout once the router interrupted it.
        var stopped = await exporter?.stopped.wait(timeout: timeout + link.settings.connectTimeout) ?? true
        if let jetStream {  // its last acknowledgements may take up to the acknowledgement timeout
            stopped = await jetStream.stopped.wait(timeout: timeout + link.settings.connectTimeout + (link.settings.jetStream?.ackTimeout ?? .zero)) && stopped
        }
        await stopImports(timeout: timeout)  // if not done already
        await jetStreamImporter.withLock { $0 }?.close(timeout: timeout)  // answers what the subscribers finished
        await link.close(timeout: timeout, free: stopped)
    }

    deinit {
        for subscription in subscriptions.withLock({ $0.live }) { natsSubscription_Destroy(subscription.value) }
        if exporter?.stopped.isDone ?? true, jetStream?.stopped.isDone ?? true { link.destroy() }
    }

    /// A snapshot of the bridge's counters.
    public func stats() -> NATSBridgeStats {
        let export = exporter?.subscriber.stats()
        let clientDropped = subscriptions.withLock { subscriptions in
            subscriptions.live.reduce(subscriptions.dropped) { $0 + Self.dropped($1.value) }
        }
        return NATSBridgeStats(
            state: link.state, exported: link.exported.load(ordering: .relaxed),
            possiblyLost: link.possiblyLost.load(ordering: .relaxed),
            dropped: export.map { $0.dropped + $0.failed + $0.abandoned } ?? 0,
            imported: link.imported.load(ordering: .relaxed),
            importDropped: link.importRejected.load(ordering: .relaxed) + clientDropped,
            reconnects: link.reconnects.load(ordering: .relaxed),
            jetStream: jetStream.map { jetStream in
                let queue = jetStream.subscriber.stats()
                return NATSBridgeStats.JetStream(
                    exported: jetStream.acks.exported.load(ordering: .relaxed),
                    exportFailed: jetStream.acks.failed.load(ordering: .relaxed) + queue.dropped + queue.abandoned,
                    exportPending: jetStream.acks.pending.load(ordering: .relaxed))
            },
            jetStreamImport: link.settings.jetStream?.import.map { _ in
                let counts = jetStreamImporter.withLock { $0 }?.counts
                return NATSBridgeStats.JetStreamImport(
                    imported: counts?.imported.load(ordering: .relaxed) ?? 0, acked: counts?.acked.load(ordering: .relaxed) ?? 0,
                    nacked: counts?.nacked.load(ordering: .relaxed) ?? 0, terminated: counts?.terminated.load(ordering: .relaxed) ?? 0,
                    redelivered: counts?.redelivered.load(ordering: .relaxed) ?? 0, pending: counts?.pending.load(ordering: .relaxed) ?? 0)
            })
    }

    /// Messages the client dropped from `subscription` because they arrived faster than they
    /// were published locally.
    private static func dropped(_ subscription: OpaquePointer) -> Int {
        var dropped: Int64 = 0
        natsSubscription_GetDropped(subscription, &dropped)
        return Int(dropped)
    }
}

/// A `natsSubscription *`: the C client locks it on every call, so any thread may use it.
private struct SubscriptionHandle: @unchecked Sendable {
    let value: OpaquePointer
}
