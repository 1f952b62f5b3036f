import Synchronization

/// A subscription: a name, its patterns, and one or more workers, each a bounded queue (a
/// lane) with its own thread and its own handler.
///
/// Returned by ``Router/subscribe(_:name:capacity:overflow:workers:key:handler:)``; pass it to
/// ``Router/unsubscribe(_:)`` to end it. With several workers, an event goes to one of them:
/// by its ``key`` when the subscriber has one (equal keys to the same worker, in publish
/// order), otherwise to the worker with the fewest events waiting.
public final class Subscriber: Sendable {
    /// The subscriber's name, used in stats and logs.
    public let name: String
    /// The patterns it is routed by.
    public var patterns: [String] { settings.withLock { $0.patterns } }
    /// What it does when its handler fails.
    public var failurePolicy: FailurePolicy { settings.withLock { $0.failurePolicy } }
    /// What orders its events across its workers; nil when they have no order between them.
    public let key: EventKey?
    /// A live look at what is routed (``Router/tap(matching:capacity:)``): routed to as any
    /// subscriber, but left out of ``Router/stats()``, and so of summaries, reports and metrics.
    public let isTap: Bool
    /// How many workers it has.
    public let workerCount: Int
    /// What ``Router/reconfigure(_:patterns:capacity:overflow:failurePolicy:)`` may change.
    private let settings: Mutex<(patterns: [String], failurePolicy: FailurePolicy)>
    /// Its workers, numbered from 1. Written once, in `init`, and only read after.
    nonisolated(unsafe) private(set) var workers: [Worker] = []
    /// The first worker's queue: the only one, unless it has several workers. Kept here, with
    /// ``workerCount``, so that a publish to a one-worker subscriber reads no array.
    let mailbox: Mailbox
    /// Signalled when the router first routes to it; until then no worker takes an event or fires a timer.
    let routed = Completion()

    init(
        name: String, patterns: [String], failurePolicy: FailurePolicy, key: EventKey?, mailboxes: [Mailbox],
        router: Router, isTap: Bool = false, makeObserver: (_ worker: Int?) -> (any HandlerObserver)?
    ) {
        self.name = name
        self.isTap = isTap
        settings = Mutex((patterns, failurePolicy))
        self.key = key
        mailbox = mailboxes[0]
        workerCount = mailboxes.count
        workers = mailboxes.enumerated().map { index, mailbox in
            Worker(
                number: index + 1, of: self, mailbox: mailbox,
                context: SubscriberContext(name: name, router: router, worker: index + 1, workers: mailboxes.count),
                observer: makeObserver(mailboxes.count > 1 ? index + 1 : nil))
        }
    }

    /// Several workers and no key: each event goes to the worker with the fewest waiting.
    var balancesLanes: Bool { key == nil && workerCount > 1 }

    /// The dead-letter topic of this subscriber.
    var deadLetterTopic: String { "deadletter.\(name)" }

    // MARK: Routing

    /// Offers an event to the lane of the worker that takes it.
    @inline(__always)
    func offer(_ event: consuming Event, fromSubscriber: Bool, waitUntil: UInt64? = nil) -> Mailbox.Offer {
        guard workerCount > 1 else { return mailbox.offer(event, fromSubscriber: fromSubscriber, waitUntil: waitUntil) }
        return offerToLane(event, fromSubscriber: fromSubscriber, waitUntil: waitUntil)
    }

    @inline(never)
    private func offerToLane(_ event: consuming Event, fromSubscriber: Bool, waitUntil: UInt64?) -> Mailbox.Offer {
        if let key {
            let lane = key.lane(of: event, among: workerCount)
            return workers[lane].mailbox.offer(event, fromSubscriber: fromSubscriber, waitUntil: waitUntil)
        }
        var chosen = workers[0]
        var fewest = chosen.waiting.load(ordering: .relaxed)
        for worker in workers.dropFirst() {
            let waiting = worker.waiting.load(ordering: .relaxed)
            if waiting < fewest { (chosen, fewest) = (worker, waiting) }
        }
        let outcome = chosen.mailbox.offer(event, fromSubscriber: fromSubscriber, waitUntil: waitUntil)
        if outcome == .accepted { chosen.waiting.add(1, ordering: .relaxed) }
        return outcome
    }

    // MARK: Stats

    /// A snapshot of its counters: with several workers, their sums, and each worker's own in
    /// ``SubscriberStats/perWorker``.
    public func stats() -> SubscriberStats {
        guard workerCount > 1 else { return workers[0].stats() }
        let each = workers.map { $0.stats() }
        var total = each[0]
        for worker in each.dropFirst() { total.addWorker(worker) }
        total.perWorker = each
        return total
    }

    /// How long one call of its handler may take, if the handler says.
    var callBudget: Duration? { workers[0].callBudget }

    /// The subscribers its workers have published to: the publish graph that orders shutdown.
    var publishedTo: Set<ObjectIdentifier> { workers.reduce(into: []) { $0.formUnion($1.context.publishedTo) } }

    /// True when called from one of its workers' threads.
    var isOnOwnThread: Bool { workers.contains { $0.isOnOwnThread } }

    // MARK: Life cycle

    /// Starts every worker with its own handler (see ``Worker/start(handler:)``), one after
    /// the other; returns the first start error, after stopping the workers already started.
    func start(handlers makeHandler: (_ worker: Int) -> any EventHandler) -> (any Error)? {
        for worker in workers {
            guard let error = worker.start(handler: makeHandler(worker.number)) else { continue }
            for later in workers[worker.number...] { later.finished.signal() }  // never started
            seal()
            routed.signal()  // the started ones run down their sealed queues and stop
            return error
        }
        return nil
    }

    /// Queues the events of a drain: see ``Router/shutdown(drainTimeout:)``.
    func beginDrain() { for worker in workers { worker.mailbox.beginDrain() } }

    /// Lets every worker end once its queue is empty.
    func finish() { for worker in workers { worker.mailbox.finish() } }

    /// Seals every lane (see ``Mailbox/seal()``); true when a worker had events in hand.
    @discardableResult
    func seal() -> Bool { workers.reduce(false) { $1.mailbox.seal() || $0 } }

    /// What its lanes hold, together (see ``Mailbox/activity()``).
    func activity() -> (pending: Int, received: Int, settled: Int, inHand: Bool) {
        var total = (pending: 0, received: 0, settled: 0, inHand: false)
        for worker in workers {
            let activity = worker.mailbox.activity()
            total.pending += activity.pending
            total.received += activity.received
            total.settled += activity.settled
            total.inHand = total.inHand || activity.inHand
        }
        return total
    }

    /// Stops the calls in progress; see ``Worker/interrupt()``.
    func interrupt() { for worker in workers { worker.interrupt() } }

    /// Ends every worker at the drain deadline; see ``Worker/end(grace:)``.
    func end(grace: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { await worker.end(grace: grace) } }
        }
    }

    /// True once every worker has finished for good.
    var isFinished: Bool { workers.allSatisfy { $0.finished.isDone } }

    /// Waits until every worker has finished for good.
    func waitFinished() async { for worker in workers { await worker.finished.wait() } }

    /// Blocks the calling thread until every worker has finished for good.
    func waitFinishedBlocking() { for worker in workers { worker.finished.waitBlocking() } }

    // MARK: Changes

    /// Changes the patterns and failure policy; the router rebuilds its table after this.
    func update(patterns: [String], failurePolicy: FailurePolicy) {
        settings.withLock { $0 = (patterns, failurePolicy) }
    }

    /// Changes every lane's capacity (its share of `capacity`) and the overflow policy.
    func reconfigure(capacity: Int, policy: OverflowPolicy) {
        for worker in workers { worker.mailbox.reconfigure(capacity: Self.laneCapacity(capacity, workers: workerCount), policy: policy) }
    }

    /// A lane's share of a subscriber's queue capacity.
    static func laneCapacity(_ capacity: Int, workers: Int) -> Int { capacity / workers }

    /// Replaces each worker's handler in turn, between two of its events (see
    /// ``Worker/replaceHandler(with:)``). If one fails to start, it and the workers after it
    /// keep their old handlers and this throws.
    func replaceHandlers(_ makeHandler: (_ worker: Int) -> any EventHandler) throws {
        for worker in workers { try worker.replaceHandler(with: makeHandler(worker.number)) }
    }
}
