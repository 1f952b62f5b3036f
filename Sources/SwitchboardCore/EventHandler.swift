import Logging
import Synchronization

/// What a subscriber runs: a Swift closure, a Lua state, or any other handler.
///
/// Every method is called on the subscriber's own thread, one at a time, so a handler
/// needs no locking of its own; nothing else touches it once subscribed.
public protocol EventHandler: AnyObject {
    /// Runs once before the first event. Throwing refuses the subscription with that error.
    func start(_ context: SubscriberContext) throws
    /// Handles one event, in publish order. Throwing counts the event as failed.
    func handle(_ event: Event) throws
    /// Takes events in batches through ``handle(batch:)`` instead of one at a time; nil (the
    /// default) for one at a time.
    var batching: Batching? { get }
    /// Handles up to ``Batching/maxEvents`` events at once, in publish order; throwing fails
    /// all of them, and a retry hands the same batch again. Called only when ``batching`` is set.
    func handle(batch: [Event]) throws
    /// When the next timer is due, in ``SystemClock/monotonicNanos()``; nil when none is set.
    var nextTimerDeadline: UInt64? { get }
    /// Runs the timers that are due.
    func fireTimers()
    /// Runs once after the last event, when the queue has drained or the subscriber was removed,
    /// also after an interrupted call, unless that call outlasted ``Router/stopGrace``.
    func stop()
    /// Rebuilds the handler after repeated failures (``FailurePolicy/restartAfter``). Throwing
    /// means the rebuild failed; it is tried again after a backoff.
    func restart() throws
    /// Asks a call in progress to end now, and any later call but `stop`, which runs as usual.
    /// Called from another thread, when the subscriber's drain deadline has passed or while
    /// it starts, when start-up is stopping.
    func interrupt()
    /// Bytes the handler holds, if it knows; read from any thread (for stats).
    var memoryInUse: Int? { get }
    /// How long one call may take, if the handler bounds it (a Lua plugin's `timeout`): at
    /// shutdown, a call in progress for longer counts as stuck and is not waited for.
    var callBudget: Duration? { get }
}

extension EventHandler {
    public func start(_ context: SubscriberContext) throws {}
    public var batching: Batching? { nil }
    public func handle(batch: [Event]) throws { for event in batch { try handle(event) } }
    public var nextTimerDeadline: UInt64? { nil }
    public func fireTimers() {}
    public func stop() {}
    public func restart() throws {}
    public func interrupt() {}
    public var memoryInUse: Int? { nil }
    public var callBudget: Duration? { nil }
}

/// What a handler knows of its subscriber.
public final class SubscriberContext: Sendable {
    /// The subscriber's name.
    public let name: String
    /// The number of the worker the handler runs in, from 1 to ``workers``.
    public let worker: Int
    /// How many workers the subscriber has, each with its own handler.
    public let workers: Int
    /// The router it belongs to. From a handler, a publish into a full `block` queue counts a
    /// drop at once, unless it says how long it may wait (``Router/publish(_:data:headers:waitingForRoom:)``).
    public weak let router: Router?
    /// How many times the handler was rebuilt.
    let restarts = Atomic<Int>(0)
    /// Its publishes that at least one subscriber took.
    let published = Atomic<Int>(0)
    /// Its publishes that were refused (an invalid topic or payload, a shutdown) or that
    /// matched subscribers none of which took them.
    let publishFailed = Atomic<Int>(0)
    /// Each distinct publish failure is logged once per 10 s.
    private let failures = Mutex(LogThrottle())
    /// The subscribers its publishes were routed to: the publish graph that orders shutdown.
    private let downstream = Mutex<Set<ObjectIdentifier>>([])

    init(name: String, router: Router?, worker: Int = 1, workers: Int = 1) {
        self.name = name
        self.router = router
        self.worker = worker
        self.workers = workers
    }

    /// A context with no router behind it, for worker 1 of `workers`: what a handler
    /// publishes goes nowhere (for checks and plugin tests).
    package static func detached(name: String, workers: Int) -> SubscriberContext {
        SubscriberContext(name: name, router: nil, worker: 1, workers: workers)
    }

    /// Counts a rebuild of the handler, whoever decided it (the failure policy, or the handler
    /// itself after a memory failure).
    public func recordRestart() { restarts.wrappingAdd(1, ordering: .relaxed) }

    /// Counts a publish of this subscriber that failed, and logs why (each distinct message
    /// once per 10 s): the router does this for what it refuses, a handler for a publish it
    /// could not even make (a Lua value JSON cannot hold).
    public func recordPublishFailure(_ message: String) {
        publishFailed.wrappingAdd(1, ordering: .relaxed)
        var logger = Logger(label: "switchboard")
        logger[metadataKey: "subscriber"] = .string(name)
        failures.withLock { $0.log("publish failed: \(message)", level: .warning, to: logger) }
    }

    /// Records where its publishes go (once per topic and routing table, on its own thread).
    func routed(to targets: [Subscriber]) {
        guard !targets.isEmpty else { return }
        downstream.withLock { $0.formUnion(targets.lazy.map(ObjectIdentifier.init)) }
    }

    /// The subscribers it has published to.
    var publishedTo: Set<ObjectIdentifier> { downstream.withLock { $0 } }

    /// Logs the publish failures counted but not yet logged (the subscriber ends).
    func flushPublishFailures() {
        var logger = Logger(label: "switchboard")
        logger[metadataKey: "subscriber"] = .string(name)
        failures.withLock { $0.flush(to: logger) }
    }
}

/// A handler made of a Swift closure.
final class ClosureHandler: EventHandler {
    private let body: @Sendable (Event) throws -> Void
    init(_ body: @escaping @Sendable (Event) throws -> Void) { self.body = body }
    func handle(_ event: Event) throws { try body(event) }
}
