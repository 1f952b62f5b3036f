@_exported import SwitchboardTopics
import Logging
import Synchronization

/// Routes published events to the subscribers whose patterns match their topic.
///
/// Each subscriber has a bounded queue and its own consumer, so a slow, stuck or failing
/// handler delays neither publishers nor other subscribers. `publish` may be called from
/// any thread; it never blocks except for a subscriber whose overflow policy is `block`.
public final class Router: Sendable {
    private struct State {
        var subscribers: [Subscriber] = []
        /// Removed by ``Router/commit(adding:removing:)``: still counted in stats.
        var retired: [Subscriber] = []
        /// In ``Router/prepare(_:name:capacity:overflow:failurePolicy:handler:)``, their handlers starting.
        var starting: [Subscriber] = []
        /// Set by ``Router/interruptStarts()``: no handler starts any more.
        var startsInterrupted = false
        var hooks: [@Sendable (Event) -> Void] = []
        var makeObserver: (@Sendable (_ subscriber: String, _ worker: Int?) -> (any HandlerObserver)?)?
        var spillSource: (any SpillSource)?
        var table: RoutingTable?
        var generation = 0
        var closed = false
    }

    private static let serials = Atomic<Int>(0)

    private let state = Mutex(State())
    private let generation = Atomic<Int>(0)
    private let accepting = Atomic<Bool>(true)
    private let publishedCount = Atomic<Int>(0)
    private let serial = Router.serials.wrappingAdd(1, ordering: .relaxed).newValue
    let contextKey = PublisherContext.key

    /// Creates a router with no subscribers.
    public init() {}

    // MARK: Subscribing

    /// Subscribes a Swift closure to one pattern. The closure runs on the subscriber's own
    /// thread, one event at a time, in publish order; a thrown error counts the event as failed.
    ///
    /// With `workers` above 1 it runs on that many threads at once, each with its own share
    /// of `capacity`: events with equal `key`s go to the same worker, in publish order; without
    /// a key, each event goes to the worker with the fewest waiting, in no order between them.
    @discardableResult
    public func subscribe(
        _ pattern: String, name: String? = nil, capacity: Int = 1024, overflow: OverflowPolicy = .dropNewest,
        workers: Int = 1, key: EventKey? = nil, handler: @escaping @Sendable (Event) throws -> Void
    ) throws(RouterError) -> Subscriber {
        try subscribe(
            [pattern], name: name, capacity: capacity, overflow: overflow, workers: workers, key: key, handler: handler)
    }

    /// Subscribes a Swift closure to several patterns; an event that matches more than one arrives once.
    @discardableResult
    public func subscribe(
        _ patterns: [String], name: String? = nil, capacity: Int = 1024, overflow: OverflowPolicy = .dropNewest,
        workers: Int = 1, key: EventKey? = nil, handler: @escaping @Sendable (Event) throws -> Void
    ) throws(RouterError) -> Subscriber {
        try subscribe(
            patterns, name: name, capacity: capacity, overflow: overflow, workers: workers, key: key,
            handlers: { _ in ClosureHandler(handler) })
    }

    /// Subscribes any ``EventHandler``. Its `start` runs on the new subscriber's thread before
    /// this returns; the subscriber is routed to only once it has started.
    @discardableResult
    public func subscribe(
        _ patterns: [String], name: String? = nil, capacity: Int = 1024, overflow: OverflowPolicy = .dropNewest,
        failurePolicy: FailurePolicy = FailurePolicy(), handler: some EventHandler
    ) throws(RouterError) -> Subscriber {
        try subscribe(
            patterns, name: name, capacity: capacity, overflow: overflow, failurePolicy: failurePolicy,
            handlers: { _ in handler })
    }

    /// Subscribes with `workers` handlers, one per worker, each made by `makeHandler` from the
    /// worker's number (from 1); `key` orders events across them, as for a closure.
    @discardableResult
    public func subscribe(
        _ patterns: [String], name: String? = nil, capacity: Int = 1024, overflow: OverflowPolicy = .dropNewest,
        failurePolicy: FailurePolicy = FailurePolicy(), workers: Int = 1, key: EventKey? = nil,
        handlers makeHandler: (_ worker: Int) -> any EventHandler
    ) throws(RouterError) -> Subscriber {
        let subscriber = try prepare(
            patterns, name: name, capacity: capacity, overflow: overflow, failurePolicy: failurePolicy,
            workers: workers, key: key, handlers: makeHandler)
        do {
            try commit(adding: [subscriber])
        } catch {
            subscriber.seal()
            throw error
        }
        return subscriber
    }

    // MARK: Changing subscriptions live

    /// Starts a subscriber (its handler's `start` runs on its new thread before this returns)
    /// without routing to it: it takes part from the next ``commit(adding:removing:)``. The
    /// first step of changing a running set of subscribers in one switch (a reload).
    public func prepare(
        _ patterns: [String], name: String? = nil, capacity: Int = 1024, overflow: OverflowPolicy = .dropNewest,
        failurePolicy: FailurePolicy = FailurePolicy(), handler: some EventHandler
    ) throws(RouterError) -> Subscriber {
        try prepare(
            patterns, name: name, capacity: capacity, overflow: overflow, failurePolicy: failurePolicy,
            handlers: { _ in handler })
    }

    /// Starts a subscriber with `workers` handlers, one per worker, made by `makeHandler` from
    /// the worker's number (from 1), each started on its own thread; not routed to until the
    /// next commit, as ``prepare(_:name:capacity:overflow:failurePolicy:handler:)``.
    public func prepare(
        _ patterns: [String], name: String? = nil, capacity: Int = 1024, overflow: OverflowPolicy = .dropNewest,
        failurePolicy: FailurePolicy = FailurePolicy(), workers: Int = 1, key: EventKey? = nil,
        handlers makeHandler: (_ worker: Int) -> any EventHandler
    ) throws(RouterError) -> Subscriber {
        let subscriber = try makeSubscriber(
            patterns, name: name, capacity: capacity, overflow: overflow, failurePolicy: failurePolicy,
            workers: workers, key: key)
        let admitted = state.withLock { state in
            if !state.startsInterrupted { state.starting.append(subscriber) }
            return !state.startsInterrupted
        }
        guard admitted else { throw .startFailed(subscriber: subscriber.name, reason: "start-up was interrupted") }
        defer { state.withLock { $0.starting.removeAll { $0 === subscriber } } }
        if let error = subscriber.start(handlers: makeHandler) {
            throw .startFailed(subscriber: subscriber.name, reason: "\(error)")
        }
        return subscriber
    }

    /// Interrupts every handler `start` under way in ``prepare(_:name:capacity:overflow:failurePolicy:handler:)``
    /// (a plugin's `init`), and refuses those asked for later: for stopping during start-up.
    public func interruptStarts() {
        let starting = state.withLock { state in
            state.startsInterrupted = true
            return state.starting
        }
        for subscriber in starting { subscriber.interrupt() }
    }

    /// Changes a subscriber's patterns, queue capacity, overflow policy and failure policy.
    /// The queue changes at once, keeping what waits in it; routing by the new patterns
    /// starts at the next ``commit(adding:removing:)``.
    public func reconfigure(
        _ subscriber: Subscriber, patterns: [String], capacity: Int, overflow: OverflowPolicy, failurePolicy: FailurePolicy
    ) throws(RouterError) {
        try Self.checkCapacity(capacity, workers: subscriber.workerCount)
        for pattern in patterns {
            do { try Topic.validatePattern(pattern) } catch { throw .invalidTopic(error) }
        }
        guard (overflow == .spill) == (subscriber.mailbox.spillSource != nil) else {
            throw .invalidArgument("a subscriber cannot start or stop spilling while it runs")
        }
        subscriber.update(patterns: patterns, failurePolicy: failurePolicy)
        subscriber.reconfigure(capacity: capacity, policy: overflow)
    }

    /// Replaces a running subscriber's handler between two events: `handler` starts on the
    /// subscriber's thread, then the old handler stops (a plugin's `shutdown` runs) and the
    /// queue carries on, in order, with the new one. If `handler` fails to start, the old one
    /// stays and this throws. For a subscriber with one worker.
    public func replaceHandler(of subscriber: Subscriber, with handler: some EventHandler) throws(RouterError) {
        guard subscriber.workerCount == 1 else {
            throw .invalidArgument("'\(subscriber.name)' has \(subscriber.workerCount) workers: give one handler each")
        }
        try replaceHandlers(of: subscriber) { _ in handler }
    }

    /// Replaces each worker's handler with one made by `makeHandler` from the worker's number,
    /// between two of that worker's events, as ``replaceHandler(of:with:)`` does. If one fails
    /// to start, it and the workers after it keep their old handlers, and this throws.
    public func replaceHandlers(
        of subscriber: Subscriber, with makeHandler: (_ worker: Int) -> any EventHandler
    ) throws(RouterError) {
        do {
            try subscriber.replaceHandlers(makeHandler)
        } catch {
            throw .startFailed(subscriber: subscriber.name, reason: "\(error)")
        }
    }

    /// Switches routing in one step: from now on every publish sees the `adding` subscribers
    /// (prepared ones start taking events), every pattern change made by ``reconfigure``,
    /// and none of the `removing` ones, which stop taking events and drain what they hold
    /// (see ``retire(_:drainTimeout:)``). A publish sees either the old set or the new one.
    ///
    /// Those of `adding` also in `holding` are routed to, their queues filling, but take no
    /// event and fire no timer until ``release(_:)``: a replacement waits for the subscriber
    /// it replaces to drain, so that no event overtakes an older one of the same key.
    public func commit(adding: [Subscriber] = [], removing: [Subscriber] = [], holding: [Subscriber] = []) throws(RouterError) {
        let committed = state.withLock { state in
            guard !state.closed else { return false }
            state.subscribers.removeAll { subscriber in removing.contains { $0 === subscriber } }
            state.retired += removing
            state.subscribers += adding
            changed(&state)
            return true
        }
        guard committed else { throw .shutDown }
        for subscriber in adding where !holding.contains(where: { $0 === subscriber }) { subscriber.routed.signal() }
        for subscriber in removing { subscriber.beginDrain() }
    }

    /// Lets subscribers committed as `holding` start taking events.
    public func release(_ held: [Subscriber]) {
        for subscriber in held { subscriber.routed.signal() }
    }

    /// Stops prepared subscribers that will not be committed after all: their handlers stop
    /// (a plugin's `shutdown` runs) without having taken an event.
    public func discard(_ prepared: [Subscriber]) {
        for subscriber in prepared {
            subscriber.seal()
            subscriber.routed.signal()
        }
    }

    /// Lets subscribers removed by a commit drain their queues until the deadline, then stops
    /// them (a plugin's `shutdown` runs); what is still queued then counts as abandoned. Returns
    /// as ``shutdown(drainTimeout:)`` does.
    public func retire(_ subscribers: [Subscriber], drainTimeout: Duration) async {
        await Self.drain(subscribers, waiting: drainTimeout)
    }

    /// Events matching `pattern` as an `AsyncSequence`, with the same queue options as a subscriber.
    /// The subscription ends when the sequence and its iterators are released, or at shutdown.
    public func events(
        matching pattern: String, capacity: Int = 1024, overflow: OverflowPolicy = .dropNewest
    ) throws(RouterError) -> EventStream {
        try stream(matching: pattern, capacity: capacity, overflow: overflow, isTap: false)
    }

    /// A tap: events matching `pattern` for a live look, on a `drop_newest` queue of
    /// `capacity`, so that it never slows publishers; what it could not take counts as its
    /// subscriber's `dropped`. A tap is left out of ``stats()`` (summaries, reports, metrics)
    /// and ends, as any stream does, when the sequence and its iterators are released.
    public func tap(matching pattern: String, capacity: Int = 1024) throws(RouterError) -> EventStream {
        try stream(matching: pattern, capacity: capacity, overflow: .dropNewest, isTap: true)
    }

    /// How many taps are open.
    public var openTaps: Int { state.withLock { $0.subscribers.count { $0.isTap } } }

    private func stream(
        matching pattern: String, capacity: Int, overflow: OverflowPolicy, isTap: Bool
    ) throws(RouterError) -> EventStream {
        let subscriber = try makeSubscriber(
            [pattern], name: isTap ? "tap \(pattern)" : nil, capacity: capacity, overflow: overflow,
            failurePolicy: FailurePolicy(), workers: 1, key: nil, isTap: isTap)
        subscriber.mailbox.onStreamEnd = { [finished = subscriber.workers[0].finished] in finished.signal() }
        try commit(adding: [subscriber])
        return EventStream(subscription: StreamSubscription(router: self, subscriber: subscriber))
    }

    /// Ends a subscription: nothing more is routed to it, what is queued counts as abandoned,
    /// and no handler call begins after this returns (one in progress is waited for, unless
    /// this is called from that handler, in which case it takes effect when the handler returns).
    public func unsubscribe(_ subscriber: Subscriber) {
        state.withLock { state in
            guard let index = state.subscribers.firstIndex(where: { $0 === subscriber }) else { return }
            state.subscribers.remove(at: index)
            changed(&state)
        }
        subscriber.seal()
        if !subscriber.isOnOwnThread { subscriber.waitFinishedBlocking() }
    }

    /// Lets subscribers with the ``OverflowPolicy/spill`` policy read from `source` (the
    /// journal, which must see every accepted event: attach it as an accept hook first).
    public func spill(to source: any SpillSource) {
        state.withLock { $0.spillSource = source }
    }

    /// Times the handler calls of every subscriber started from now on: `makeObserver` is
    /// asked once per worker, by subscriber name and, for a subscriber with several workers,
    /// the worker's number (nil with one). Without it no clock is read per event.
    public func observeHandlers(
        _ makeObserver: @escaping @Sendable (_ subscriber: String, _ worker: Int?) -> (any HandlerObserver)?
    ) {
        state.withLock { $0.makeObserver = makeObserver }
    }

    /// Adds a hook that sees every accepted event once, before any subscriber does, whether or
    /// not a subscriber matches it. Hooks run on the publishing thread; keep them short.
    public func addAcceptHook(_ hook: @escaping @Sendable (Event) -> Void) {
        state.withLock { state in
            state.hooks.append(hook)
            changed(&state)
        }
    }

    private func makeSubscriber(
        _ patterns: [String], name: String?, capacity: Int, overflow: OverflowPolicy, failurePolicy: FailurePolicy,
        workers: Int, key: EventKey?, isTap: Bool = false
    ) throws(RouterError) -> Subscriber {
        guard !patterns.isEmpty || name != nil else { throw .invalidArgument("a subscriber needs a pattern or a name") }
        guard workers >= 1 else { throw .invalidArgument("a subscriber needs at least 1 worker, not \(workers)") }
        try Self.checkCapacity(capacity, workers: workers)
        for pattern in patterns {
            do { try Topic.validatePattern(pattern) } catch { throw .invalidTopic(error) }
        }
        let spillSource = state.withLock { $0.spillSource }
        guard overflow != .spill || spillSource != nil else {
            throw .invalidArgument("overflow spill needs a journal to read from (Router.spill(to:))")
        }
        guard failurePolicy.retries >= 0, failurePolicy.restartAfter >= 1 else {
            throw .invalidArgument("on_failure needs retries >= 0 and restart_after >= 1")
        }
        guard overflow != .spill || workers == 1 else {
            throw .invalidArgument("overflow spill takes a single worker, not \(workers)")
        }
        let name = name ?? patterns.joined(separator: ",")
        let lane = Subscriber.laneCapacity(capacity, workers: workers)
        let mailboxes = (0..<workers).map { _ in Mailbox(capacity: lane, policy: overflow, spillSource: spillSource, name: name) }
        let makeObserver = state.withLock { $0.makeObserver }
        return Subscriber(
            name: name, patterns: patterns, failurePolicy: failurePolicy, key: key, mailboxes: mailboxes, router: self,
            isTap: isTap, makeObserver: { worker in isTap ? nil : makeObserver?(name, worker) })
    }


    /// A queue capacity must give each worker's queue room for one event at least.
    private static func checkCapacity(_ capacity: Int, workers: Int) throws(RouterError) {
        guard capacity >= workers else {
            throw .invalidArgument(workers == 1
                ? "queue capacity must be at least 1, not \(capacity)"
                : "queue capacity must be at least the \(workers) workers (each worker's queue holds capacity / workers), not \(capacity)")
        }
    }

    /// Marks the routing table stale; publishers rebuild it on their next publish.
    private func changed(_ state: inout State) {
        state.generation += 1
        state.table = nil
        generation.store(state.generation, ordering: .releasing)
    }

    // MARK: Publishing

    /// Publishes a JSON payload to `topic` and reports how many subscribers took it.
    ///
    /// A full `block` queue makes the publisher wait for room: for as long as it takes, or at
    /// most `waitingForRoom`, after which that subscriber counts a drop. From inside a handler
    /// it waits only when `waitingForRoom` is given (a full `block` queue counts a drop at once),
    /// so that subscribers publishing to each other cannot deadlock for longer than that.
    ///
    /// Throws for an invalid topic, or once shutdown has begun (also releasing a publisher
    /// that waits on a full `block` queue).
    @discardableResult
    public func publish(
        _ topic: String, data: JSON = .null, headers: [String: String] = [:], waitingForRoom limit: Duration? = nil
    ) throws(RouterError) -> DeliveryReport {
        try route(topic, payload: .value(data), headers: headers, excluding: nil, waitingForRoom: limit)
    }

    /// Publishes to every matching subscriber but `excluded` (a dead letter skips its producer).
    func publish(_ topic: String, data: JSON, excluding excluded: Subscriber) throws(RouterError) -> DeliveryReport {
        try route(topic, payload: .value(data), headers: [:], excluding: excluded)
    }

    /// Publishes a payload already in tape form (as parsed from JSON text): subscribers that
    /// read tapes, such as Lua plugins, take it without any conversion. `waitingForRoom` as in
    /// ``publish(_:data:headers:waitingForRoom:)``.
    @discardableResult
    public func publish(
        _ topic: String, tape: JSONTape, headers: [String: String] = [:], waitingForRoom limit: Duration? = nil
    ) throws(RouterError) -> DeliveryReport {
        try route(topic, payload: .tape(tape), headers: headers, excluding: nil, waitingForRoom: limit)
    }

    /// Publishes a tape to every matching subscriber but `excluded`: a bridge imports this way,
    /// so that its own exporter never sends back out what came in.
    @discardableResult
    public func publish(
        _ topic: String, tape: JSONTape, headers: [String: String] = [:], excluding excluded: Subscriber
    ) throws(RouterError) -> DeliveryReport {
        try route(topic, payload: .tape(tape), headers: headers, excluding: excluded)
    }

    /// Publishes a tape to every matching subscriber but `excluded`, and tells `tracker` how
    /// each one that took it is done with it: a JetStream import acknowledges its message this way.
    @discardableResult
    package func publish(
        _ topic: String, tape: JSONTape, headers: [String: String], excluding excluded: Subscriber?, tracker: DeliveryTracker
    ) throws(RouterError) -> DeliveryReport {
        try route(topic, payload: .tape(tape), headers: headers, excluding: excluded, tracker: tracker)
    }

    private func route(
        _ topic: String, payload: Event.Payload, headers: [String: String], excluding excluded: Subscriber?,
        waitingForRoom limit: Duration? = nil, tracker: DeliveryTracker? = nil
    ) throws(RouterError) -> DeliveryReport {
        let context = PublisherContext.current(contextKey)
        if context.pointee.isSubscriberThread {
            return try routeCounted(topic, payload: payload, headers: headers, excluding: excluded, limit, context, tracker: tracker)
        }
        return try deliver(topic, payload: payload, headers: headers, excluding: excluded, limit, context, tracker: tracker)
    }

    /// A subscriber's publish, counted as its `published` or `publishFailed`; a failure is logged.
    @inline(never)
    private func routeCounted(
        _ topic: String, payload: Event.Payload, headers: [String: String], excluding excluded: Subscriber?,
        _ limit: Duration?, _ context: UnsafeMutablePointer<PublisherContext>, tracker: DeliveryTracker?
    ) throws(RouterError) -> DeliveryReport {
        guard let publisher = context.pointee.publisher else {
            return try deliver(topic, payload: payload, headers: headers, excluding: excluded, limit, context, tracker: tracker)
        }
        let report: DeliveryReport
        do {
            report = try deliver(topic, payload: payload, headers: headers, excluding: excluded, limit, context, tracker: tracker)
        } catch {
            publisher.recordPublishFailure("to '\(topic)': \(error)")
            throw error
        }
        if report.accepted > 0 {
            publisher.published.wrappingAdd(1, ordering: .relaxed)
        } else if report.matched > 0 {
            let why = report.dropped > 0 ? "queue full" : "its subscribers were stopping"
            publisher.recordPublishFailure("to '\(topic)': \(why) (\(report.matched) matched, none took it)")
        }
        return report
    }

    private func deliver(
        _ topic: String, payload: Event.Payload, headers: [String: String], excluding excluded: Subscriber?,
        _ limit: Duration?, _ context: UnsafeMutablePointer<PublisherContext>, tracker: DeliveryTracker? = nil
    ) throws(RouterError) -> DeliveryReport {
        let current = generation.load(ordering: .acquiring)
        if context.pointee.routerSerial != serial || context.pointee.generation != current { refresh(context) }
        // Once shutdown began, only subscribers publish: chains of subscribers drain completely.
        guard accepting.load(ordering: .relaxed) || context.pointee.isSubscriberThread else { throw .shutDown }
        try resolve(topic, in: context)

        let event = Event(
            topic: topic, payload: payload, id: context.pointee.nextID(), time: context.pointee.clock.now(),
            headers: headers, tracker: tracker, pool: &context.pointee.pool)
        let hooks = context.pointee.table!.hooks
        if !hooks.isEmpty {
            for hook in hooks { hook(event) }
            try resolve(topic, in: context)  // a hook may have published, and so replaced the last targets
        }
        publishedCount.wrappingAdd(1, ordering: .relaxed)

        // Deliver from the context's target list in place: copying the array out would cost a
        // retain and a release per publish. Nothing below runs code that could publish.
        let fromSubscriber = context.pointee.isSubscriberThread
        let waitUntil = limit.map { SystemClock.monotonicNanos() &+ SystemClock.nanoseconds(max($0, .zero)) }
        var report = DeliveryReport(matched: context.pointee.lastTargets.count)
        var closed = false
        // Compared by address: `!==` would box both sides as AnyObject?, a retain and a release each.
        let skipped = excluded.map { Unmanaged.passUnretained($0).toOpaque() }
        context.pointee.lastTargets.withUnsafeBufferPointer { subscribers in
            event.retain(subscribers.count)  // a reference for each target, taken or not, in one atomic add
            // Each subscriber borrowed, not retained: iterating the buffer would retain and
            // release every one of them, two atomic writes per target.
            subscribers.withMemoryRebound(to: Unmanaged<Subscriber>.self) { references in
                for subscriber in references {
                    let copy = event.adoptReference()
                    guard subscriber.toOpaque() != skipped else { continue }
                    let outcome = subscriber._withUnsafeGuaranteedRef {
                        $0.offer(copy, fromSubscriber: fromSubscriber, waitUntil: waitUntil)
                    }
                    switch outcome {  // the mailbox has logged a loss
                    case .accepted, .evicted: report.accepted += 1
                    case .dropped: report.dropped += 1
                    case .closed: closed = true
                    }
                }
            }
        }
        if closed {
            if !accepting.load(ordering: .relaxed) { throw .shutDown }
            redeliver(event, in: context, excluding: skipped, waitUntil: waitUntil, report: &report)
        }
        if let tracker { tracker.routed(accepted: report.accepted, lost: report.dropped > 0) }
        return report
    }

    /// A subscriber refused the event because a commit removed it after this thread read its
    /// routing table: delivers the event to the subscribers of the current table that the old
    /// one lacked (those that replaced it), so that a switch loses nothing.
    private func redeliver(
        _ event: Event, in context: UnsafeMutablePointer<PublisherContext>, excluding skipped: UnsafeMutableRawPointer?,
        waitUntil: UInt64?, report: inout DeliveryReport
    ) {
        var tried = Set(context.pointee.lastTargets.map(ObjectIdentifier.init))
        while true {
            refresh(context)
            try? resolve(event.topic, in: context)  // the topic was valid a moment ago
            var closed = false
            for subscriber in context.pointee.lastTargets
            where tried.insert(ObjectIdentifier(subscriber)).inserted && Unmanaged.passUnretained(subscriber).toOpaque() != skipped {
                report.matched += 1
                switch subscriber.offer(event, fromSubscriber: context.pointee.isSubscriberThread, waitUntil: waitUntil) {
                case .accepted, .evicted: report.accepted += 1
                case .dropped: report.dropped += 1
                case .closed: closed = true
                }
            }
            if !closed || !accepting.load(ordering: .relaxed) { return }
        }
    }

    /// Makes `topic` the context's last topic, with its subscribers as the last targets: from
    /// the last publish, the few before it, the per-thread cache, or (validating the topic) the trie.
    @inline(__always)
    private func resolve(_ topic: String, in context: UnsafeMutablePointer<PublisherContext>) throws(RouterError) {
        if topic == context.pointee.lastTopic { return }
        if let slot = context.pointee.recent.firstIndex(where: { $0.topic == topic }) {
            // The last topic takes the found one's place: the recent ones stay the most recent.
            swap(&context.pointee.recent[slot].topic, &context.pointee.lastTopic)
            swap(&context.pointee.recent[slot].targets, &context.pointee.lastTargets)
            return
        }
        let targets: [Subscriber]
        if let cached = context.pointee.cache[topic] {
            targets = cached
        } else {
            do { try Topic.validate(topic) } catch { throw .invalidTopic(error) }
            targets = context.pointee.table!.trie.match(topic)
            context.pointee.publisher?.routed(to: targets)
            if context.pointee.cache.count >= PublisherContext.cacheLimit {
                context.pointee.cache.removeAll(keepingCapacity: true)
            }
            context.pointee.cache[topic] = targets
        }
        if !context.pointee.lastTopic.isEmpty {
            let leaving = (context.pointee.lastTopic, context.pointee.lastTargets)
            if context.pointee.recent.count < PublisherContext.recentLimit {
                context.pointee.recent.append(leaving)
            } else {
                context.pointee.recent[context.pointee.recentCursor] = leaving
                context.pointee.recentCursor = (context.pointee.recentCursor + 1) % PublisherContext.recentLimit
            }
        }
        context.pointee.lastTargets = targets
        context.pointee.lastTopic = topic
    }

    /// Hands an event to one subscriber only, with its original id and time, under that
    /// subscriber's overflow policy: for replaying history into it. It is not counted as
    /// published and no accept hook sees it. False if the subscriber refused it (full or closed).
    @discardableResult
    public func send(
        _ topic: String, tape: JSONTape, headers: [String: String], id: EventID, time: Double, to subscriber: Subscriber
    ) -> Bool {
        send(topic, tape: tape, headers: headers, id: id, time: time, to: subscriber, tracker: nil)
    }

    /// ``send(_:tape:headers:id:time:to:)``, telling `tracker` how the subscriber is done with
    /// the event (a redrive learns each event's outcome by it), and waiting at most `limit`
    /// for room in a full `block` queue.
    package func send(
        _ topic: String, tape: JSONTape, headers: [String: String], id: EventID, time: Double, to subscriber: Subscriber,
        tracker: DeliveryTracker?, waitingForRoom limit: Duration? = nil
    ) -> Bool {
        let event = Event(topic: topic, payload: .tape(tape), id: id, time: time, headers: headers, tracker: tracker)
        let waitUntil = limit.map { SystemClock.monotonicNanos() &+ SystemClock.nanoseconds(max($0, .zero)) }
        let outcome = subscriber.offer(event, fromSubscriber: false, waitUntil: waitUntil)
        let taken = outcome == .accepted || outcome == .evicted
        tracker?.routed(accepted: taken ? 1 : 0, lost: !taken)
        return taken
    }

    /// Publishes any `Encodable` value, converted with ``JSON/init(encoding:)``.
    @discardableResult
    public func publish(_ topic: String, encoding value: some Encodable, headers: [String: String] = [:]) throws
        -> DeliveryReport
    {
        try publish(topic, data: JSON(encoding: value), headers: headers)
    }

    private func refresh(_ context: UnsafeMutablePointer<PublisherContext>) {
        let table = state.withLock { state in
            if let table = state.table { return table }
            let table = RoutingTable(generation: state.generation, subscribers: state.subscribers, hooks: state.hooks)
            state.table = table
            return table
        }
        context.pointee.routerSerial = serial
        context.pointee.generation = table.generation
        context.pointee.table = table
        context.pointee.cache.removeAll(keepingCapacity: true)
        context.pointee.lastTopic = ""
        context.pointee.lastTargets = []
        context.pointee.recent.removeAll(keepingCapacity: true)
    }

    // MARK: Stats and shutdown

    /// The active subscriber with this name, if any.
    public func subscriber(named name: String) -> Subscriber? {
        state.withLock { state in state.subscribers.first { $0.name == name } }
    }

    /// A snapshot of the counters of the router and of every active subscriber.
    public func stats() -> RouterStats {
        let subscribers = state.withLock { $0.subscribers + $0.retired }.filter { !$0.isTap }
        return RouterStats(
            published: publishedCount.load(ordering: .relaxed), subscribers: subscribers.map { $0.stats() })
    }

    /// Stops intake, lets every subscriber drain its queue until the deadline, then counts
    /// whatever is left as abandoned. Publishing throws from the moment this begins, except
    /// from subscribers themselves: what they publish while draining is still routed, so a
    /// chain of subscribers loses nothing. Timers stop. Once every queue is empty and idle,
    /// each subscriber's handler is stopped (a plugin's `shutdown` runs).
    ///
    /// At the deadline, every subscriber not yet stopped is sealed: what it still holds counts
    /// as abandoned, a call in progress is interrupted, and then its handler is stopped, so one
    /// stuck subscriber costs no other its `shutdown`. Returns once every handler has stopped,
    /// or ``stopGrace`` after the deadline: what still runs then is left behind, with a log
    /// line. A call that has not ended (a long call in C) has its handler's `stop` skipped; a
    /// `stop` still running (a `shutdown` within a long budget) goes on without being waited for.
    public func shutdown(drainTimeout: Duration = .seconds(5)) async {
        accepting.store(false, ordering: .releasing)
        let subscribers = state.withLock { state in
            state.closed = true
            changed(&state)
            return state.subscribers
        }
        for subscriber in subscribers {
            subscriber.routed.signal()  // one held by a commit drains too
            subscriber.beginDrain()
        }
        await Self.drain(subscribers, waiting: drainTimeout)
    }

    /// How long after the drain deadline handlers may take to stop: to leave an interrupted
    /// call and run `stop` (a plugin's `shutdown`).
    public static let stopGrace = Duration.seconds(2)

    /// Waits for draining subscribers to go quiet, then finishes them, in the order of the
    /// publish graph (see ``nextToStop(_:)``): each step stops its subscribers once they are
    /// quiet, and waits for their `stop` (a plugin's `shutdown`), so that what they publish then
    /// reaches the later steps. A subscriber stuck in a call is not waited for. At the
    /// deadline, ends each one still running (see ``shutdown(drainTimeout:)``).
    private static func drain(_ subscribers: [Subscriber], waiting waited: Duration) async {
        let deadline = ContinuousClock.now + waited
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var running = subscribers
                var stuck: [Subscriber] = []
                while !running.isEmpty, !Task.isCancelled {  // the graph grows as `shutdown`s publish
                    let step = nextToStop(running)
                    let stuckNow = await Self.waitUntilQuiet(step, deadline: deadline)
                    for subscriber in step { subscriber.finish() }
                    for subscriber in step {
                        if stuckNow.contains(ObjectIdentifier(subscriber)) { stuck.append(subscriber) } else { await subscriber.waitFinished() }
                    }
                    running.removeAll { member in step.contains { $0 === member } }
                }
                for subscriber in stuck { await subscriber.waitFinished() }  // they still have until the deadline
            }
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
        let late = subscribers.filter { !$0.isFinished }
        guard !late.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for subscriber in late { group.addTask { await subscriber.end(grace: stopGrace) } }
        }
        let abandoned = late.map { ($0.name, $0.stats().abandoned) }.filter { $0.1 > 0 }
        guard !abandoned.isEmpty else { return }
        let counts = abandoned.map { "\($0.1) of \($0.0)" }.joined(separator: ", ")
        Logger(label: "switchboard").warning(
            "the drain deadline passed after \(Quantities.duration(waited)): abandoned \(counts) (raise drain_timeout to wait longer)")
    }

    /// Waits until no event is queued or in hand in `subscribers`, seen in two scans with no
    /// event routed in between: an event that moved from one subscriber to another while a
    /// scan was under way shows in the second scan's counts. A subscriber whose call has lasted
    /// longer than its handler's budget is stuck: it is left out, and returned.
    private static func waitUntilQuiet(_ subscribers: [Subscriber], deadline: ContinuousClock.Instant) async -> Set<ObjectIdentifier> {
        let budgets = subscribers.map(\.callBudget)
        var progress = subscribers.map { _ in (settled: -1, since: ContinuousClock.now) }
        var stuck: Set<ObjectIdentifier> = []
        func scan() -> (pending: Int, received: Int) {
            var total = (pending: 0, received: 0)
            for (index, subscriber) in subscribers.enumerated() where !stuck.contains(ObjectIdentifier(subscriber)) {
                let activity = subscriber.activity()
                let now = ContinuousClock.now
                if activity.settled != progress[index].settled || !activity.inHand {
                    progress[index] = (activity.settled, now)
                } else if let budget = budgets[index], now - progress[index].since > budget {
                    stuck.insert(ObjectIdentifier(subscriber))
                    continue
                }
                total.pending += activity.pending
                total.received += activity.received
            }
            return total
        }
        var previous: (pending: Int, received: Int)?
        while ContinuousClock.now < deadline, !Task.isCancelled {
            let current = scan()
            if current.pending == 0, let previous, previous.pending == 0, previous.received == current.received { return stuck }
            previous = current
            try? await Task.sleep(for: .milliseconds(1))
        }
        return stuck
    }

    /// The subscribers of `running` to stop next: each stops after every running subscriber
    /// that has published to it, so that what one publishes from its `shutdown` reaches the
    /// next before they stop. Subscribers that publish to each other in a cycle stop together;
    /// what one of them publishes then to another of the cycle is refused, and counted.
    /// Among those free to stop, the ones that received events go first: one that received
    /// none may be waiting for what another publishes only from its `shutdown` (a total).
    static func nextToStop(_ running: [Subscriber]) -> [Subscriber] {
        let ids = running.map(ObjectIdentifier.init)
        let index = Dictionary(uniqueKeysWithValues: zip(ids, ids.indices))
        let edges = running.map { $0.publishedTo.compactMap { index[$0] } }
        // Strongly connected components (Tarjan's algorithm).
        var order = Array(repeating: -1, count: running.count), low = order, component = order
        var stack: [Int] = [], onStack = Array(repeating: false, count: running.count)
        var counter = 0, components = 0
        func connect(_ node: Int) {
            (order[node], low[node]) = (counter, counter)
            counter += 1
            stack.append(node)
            onStack[node] = true
            for next in edges[node] {
                if order[next] < 0 {
                    connect(next)
                    low[node] = min(low[node], low[next])
                } else if onStack[next] {
                    low[node] = min(low[node], order[next])
                }
            }
            guard low[node] == order[node] else { return }
            while let member = stack.popLast() {
                onStack[member] = false
                component[member] = components
                if member == node { break }
            }
            components += 1
        }
        for node in running.indices where order[node] < 0 { connect(node) }
        // Components nothing else running publishes to are free to stop.
        var fed = Array(repeating: false, count: components)
        for (node, targets) in edges.enumerated() {
            for next in targets where component[next] != component[node] { fed[component[next]] = true }
        }
        let free = running.indices.filter { !fed[component[$0]] }
        let received = Set(free.filter { running[$0].activity().received > 0 }.map { component[$0] })
        let chosen = received.isEmpty ? Set(free.map { component[$0] }) : received
        return running.indices.filter { chosen.contains(component[$0]) }.map { running[$0] }
    }
}
