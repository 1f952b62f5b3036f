/// Counters of one subscriber. At any quiet moment
/// `received == handled + failed + dropped + abandoned + pending`.
public struct SubscriberStats: Sendable, Hashable {
    /// The subscriber's name.
    public var name: String
    /// Every event routed to it.
    public var received: Int
    /// Events its handler finished without error.
    public var handled: Int
    /// Events whose handling failed (once per event, however many attempts).
    public var failed: Int
    /// Events refused by its full queue, or evicted by `dropOldest`.
    public var dropped: Int
    /// Events still queued, or in hand, at the shutdown deadline or at unsubscribe.
    public var abandoned: Int
    /// For a spilling subscriber: events accepted for it that it has not read back from the
    /// journal yet (at exit, those it will read after a restart). Zero for the other policies.
    public var pending = 0
    /// Events waiting in its queue now.
    public var queueDepth: Int
    /// Its queue's capacity.
    public var capacity: Int
    /// Seconds from publish to handler start, for the last event it started.
    public var lag: Double
    /// Events published as dead letters after they failed.
    public var deadLettered: Int
    /// Times the handler was rebuilt after failures.
    public var restarts: Int
    /// Further attempts at events (or batches) that failed, under ``FailurePolicy/retries``.
    public var retries = 0
    /// Its own publishes that at least one subscriber took.
    public var published = 0
    /// Its own publishes that failed: refused (an invalid topic or payload, a shutdown), or
    /// matched subscribers none of which took them. One that matches no subscriber is neither.
    public var publishFailed = 0
    /// How long the handler call in progress has run; nil when idle, or when the router has no
    /// ``HandlerObserver`` (only then does it time calls).
    public var busyFor: Duration? = nil
    /// True while its handler is being rebuilt (after failures, or by a reload).
    public var isRebuilding = false
    /// Bytes its handler holds, when the handler knows (a Lua state's allocation).
    public var memoryInUse: Int? = nil
    /// With several workers, each one's own counts, by worker number from 1 (the fields above
    /// are their sums); empty for a subscriber with one worker.
    public var perWorker: [SubscriberStats] = []

    /// Adds the counters of `other`, an earlier run of the same subscriber, or another worker.
    mutating func addCounts(of other: SubscriberStats) {
        received += other.received
        handled += other.handled
        failed += other.failed
        dropped += other.dropped
        abandoned += other.abandoned
        pending += other.pending
        deadLettered += other.deadLettered
        restarts += other.restarts
        retries += other.retries
        published += other.published
        publishFailed += other.publishFailed
    }

    /// Adds another worker of the same subscriber: its counters, and what its queue and handler hold now.
    mutating func addWorker(_ worker: SubscriberStats) {
        addCounts(of: worker)
        queueDepth += worker.queueDepth
        capacity += worker.capacity
        lag = max(lag, worker.lag)
        if let busy = worker.busyFor { busyFor = max(busyFor ?? busy, busy) }
        isRebuilding = isRebuilding || worker.isRebuilding
        if let memory = worker.memoryInUse { memoryInUse = (memoryInUse ?? 0) + memory }
    }
}

/// A snapshot of the router's counters.
public struct RouterStats: Sendable, Hashable {
    /// Events the router accepted from any publisher, whether or not a subscriber matched.
    public var published: Int
    /// One entry per subscriber, active ones in subscription order, then those a reload removed.
    public var subscribers: [SubscriberStats]

    /// The subscribers' counts with one entry per name, in first-seen order: a name that ran
    /// twice (removed by a reload, then added back) gets the sums of its counters.
    public var byName: [SubscriberStats] {
        var merged: [SubscriberStats] = []
        var index: [String: Int] = [:]
        for subscriber in subscribers {
            guard let at = index[subscriber.name] else {
                index[subscriber.name] = merged.count
                merged.append(subscriber)
                continue
            }
            merged[at].addCounts(of: subscriber)
            for (index, worker) in subscriber.perWorker.enumerated() {  // a run with other worker counts
                if index < merged[at].perWorker.count { merged[at].perWorker[index].addCounts(of: worker) }
            }
        }
        return merged
    }

    /// The stats of the subscriber with this name, if there is one.
    public subscript(name: String) -> SubscriberStats? { subscribers.first { $0.name == name } }
}
