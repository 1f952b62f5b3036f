#if canImport(Glibc)
import Glibc
#endif
import CNATS
import Logging
import Synchronization
import SwitchboardCore

/// One connection to NATS and the counters both directions share. The C client calls back
/// on its own threads (disconnected, reconnected, closed, errors); those callbacks only count
/// and log.
final class NATSLink: @unchecked Sendable {  // `connection` is set once in init; the client is thread-safe
    let settings: NATSSettings
    let instance: String
    let logger: Logger
    /// The `natsConnection *`, valid until ``destroy()``.
    private(set) var connection: OpaquePointer!

    let disconnects = Atomic<Int>(0)
    let reconnects = Atomic<Int>(0)
    let exported = Atomic<Int>(0)
    let possiblyLost = Atomic<Int>(0)
    let imported = Atomic<Int>(0)
    /// Imports refused here (not JSON, invalid topic, shutting down); the client's own drops are counted apart.
    let importRejected = Atomic<Int>(0)
    /// Signalled by the client's closed callback: the last callback of the connection.
    let closed = Completion()
    /// True from ``close(timeout:)`` on; once the connection is freed, its state is "closed".
    private let closing = Mutex<(started: Bool, freed: Bool)>((false, false))

    /// Connects, or throws why it could not (after ``NATSSettings/connectTimeout``).
    init(settings: NATSSettings, instance: String, logger: Logger) throws(NATSError) {
        self.settings = settings
        self.instance = instance
        self.logger = logger
        var options: OpaquePointer?
        try check(natsOptions_Create(&options), "cannot create the NATS options")
        defer { natsOptions_Destroy(options) }
        try Self.configure(options, settings, instance: instance)
        // The connection callbacks keep this object alive until the closed callback, their last.
        let closure = Unmanaged.passRetained(self).toOpaque()
        natsOptions_SetDisconnectedCB(options, { _, closure in
            Unmanaged<NATSLink>.fromOpaque(closure!).takeUnretainedValue().disconnected()
        }, closure)
        natsOptions_SetReconnectedCB(options, { _, closure in
            Unmanaged<NATSLink>.fromOpaque(closure!).takeUnretainedValue().reconnected()
        }, closure)
        natsOptions_SetClosedCB(options, { _, closure in
            let link = Unmanaged<NATSLink>.fromOpaque(closure!)
            link.takeUnretainedValue().closed.signal()
            link.release()
        }, closure)
        natsOptions_SetErrorHandler(options, { _, subscription, status, closure in
            let link = Unmanaged<NATSLink>.fromOpaque(closure!).takeUnretainedValue()
            let subject = subscription.flatMap { natsSubscription_GetSubject($0) }.map { String(cString: $0) }
            link.logger.warning(
                "nats: \(String(cString: natsStatus_GetText(status)))\(subject.map { " on '\($0)'" } ?? "")")
        }, closure)
        natsOptions_SetCustomReconnectDelay(options, { _, attempts, closure in
            Unmanaged<NATSLink>.fromOpaque(closure!).takeUnretainedValue().reconnectDelay(attempts: Int(attempts))
        }, closure)
        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK, let connection else {
            Unmanaged<NATSLink>.fromOpaque(closure).release()  // never connected: no callback will run
            throw NATSError("cannot connect to NATS at \(settings.url)", status)
        }
        self.connection = connection
    }

    /// Sets every option of `settings` on `options`.
    private static func configure(_ options: OpaquePointer?, _ settings: NATSSettings, instance: String) throws(NATSError) {
        try check(natsOptions_SetURL(options, settings.url), "invalid NATS url '\(settings.url)'")
        try check(natsOptions_SetName(options, instance), "invalid instance name '\(instance)'")
        // The server never hands this connection its own messages: no instance re-imports its exports.
        try check(natsOptions_SetNoEcho(options, true), "cannot set no_echo")
        try check(natsOptions_SetTimeout(options, milliseconds(settings.connectTimeout)), "invalid connect_timeout")
        try check(natsOptions_SetMaxReconnect(options, Int32(clamping: settings.maxReconnects ?? -1)), "invalid max_reconnects")
        if let user = settings.user {
            try check(natsOptions_SetUserInfo(options, user, settings.password), "invalid NATS user")
        }
        if let token = settings.token { try check(natsOptions_SetToken(options, token), "invalid NATS token") }
        if let credentials = settings.credentials {
            try check(
                natsOptions_SetUserCredentialsFromFiles(options, credentials, nil),
                "cannot use the NATS credentials '\(credentials)'")
        }
        if let tls = settings.tls {
            try check(natsOptions_SetSecure(options, true), "cannot enable TLS")
            if let ca = tls.ca {
                try check(natsOptions_LoadCATrustedCertificates(options, ca), "cannot load the TLS authorities '\(ca)'")
            }
            if let certificate = tls.certificate {
                try check(
                    natsOptions_LoadCertificatesChain(options, certificate, tls.key),
                    "cannot load the TLS certificate '\(certificate)'")
            }
            if let hostname = tls.hostname {
                try check(natsOptions_SetExpectedHostname(options, hostname), "invalid TLS hostname")
            }
            if tls.skipVerify { try check(natsOptions_SkipServerVerification(options, true), "cannot skip TLS verification") }
        }
    }

    /// What the connection is doing now, in one word.
    var state: String {
        closing.withLock { closing in closing.freed ? "closed" : Self.describe(natsConnection_Status(connection)) }
    }

    private static func describe(_ status: natsConnStatus) -> String {
        switch status {
        case NATS_CONN_STATUS_CONNECTED: "connected"
        case NATS_CONN_STATUS_CONNECTING: "connecting"
        case NATS_CONN_STATUS_RECONNECTING: "reconnecting"
        case NATS_CONN_STATUS_CLOSED: "closed"
        case NATS_CONN_STATUS_DRAINING_SUBS, NATS_CONN_STATUS_DRAINING_PUBS: "draining"
        default: "disconnected"
        }
    }

    /// Changes with every lost connection: writes made in one epoch and confirmed in another
    /// may have been lost in between. The reconnect count is read from the client's own
    /// statistics too, which it updates before the new connection can answer a flush.
    func epoch(_ statistics: OpaquePointer?) -> Int {
        var reconnects: UInt64 = 0
        if natsConnection_GetStats(connection, statistics) == NATS_OK {
            natsStatistics_GetCounts(statistics, nil, nil, nil, nil, &reconnects)
        }
        return disconnects.load(ordering: .acquiring) + Int(reconnects)
    }

    private func disconnected() {
        disconnects.add(1, ordering: .releasing)
        guard !closing.withLock({ $0.started }) else { return }
        logger.warning("nats: disconnected from \(settings.url); reconnecting (exports wait in their queue)")
    }

    private func reconnected() {
        reconnects.add(1, ordering: .relaxed)
        logger.notice("nats: reconnected to \(settings.url)")
    }

    /// Milliseconds before the next round of reconnection attempts: ``NATSSettings/reconnectWait``
    /// doubled per round up to ``NATSSettings/reconnectWaitMax``, with up to 20% of jitter so
    /// that instances that lost the same server do not return in step.
    private func reconnectDelay(attempts: Int) -> Int64 {
        let first = milliseconds(settings.reconnectWait)
        let delay = min(first << min(max(attempts - 1, 0), 20), milliseconds(settings.reconnectWaitMax))
        return delay + Int64.random(in: 0...max(delay / 5, 0))
    }

    /// Closes the connection, waits up to `timeout` for its last callback and, if `free`,
    /// frees it (not while a thread may still be inside a call on it); idempotent.
    func close(timeout: Duration, free: Bool) async {
        guard closing.withLock({ closing in defer { closing.started = true }; return !closing.started }) else { return }
        natsConnection_Close(connection)
        await closed.wait(timeout: timeout)
        if free { destroy() }
    }

    /// Closes and frees the connection at once, without waiting for its callbacks; idempotent.
    func destroy() {
        closing.withLock { closing in
            guard !closing.freed else { return }
            closing.started = true
            natsConnection_Destroy(connection)  // closes it first
            closing.freed = true
        }
    }
}

/// A duration in whole milliseconds, as the C client takes them.
func milliseconds(_ duration: Duration) -> Int64 {
    Int64(SystemClock.nanoseconds(duration) / 1_000_000)
}
