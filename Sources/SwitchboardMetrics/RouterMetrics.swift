import CoreMetrics
import Prometheus
import Synchronization
import SwitchboardCore

/// A router's metrics in the Prometheus text format, built with swift-metrics on a
/// swift-prometheus registry.
///
/// Counts come from the router's own exact counters, read at each scrape, so publishing pays
/// nothing for them; lag and handler duration are timed per call on subscriber threads
/// through the core's ``SwitchboardCore/HandlerObserver`` seam.
public final class RouterMetrics: Sendable {
    /// The registry every series lives in.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let router: Router
    private let rejected: @Sendable () -> Int
    /// What each counter showed at the last scrape, to increment by the difference.
    private let reported = Mutex<[String: Int]>([:])

    /// Histogram buckets for lag and handler duration, 100 µs to 10 s.
    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
        .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(10),
    ]

    /// Starts timing every subscriber that `router` starts from now on. `rejected` tells the
    /// count of input lines rejected so far.
    public init(router: Router, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                rejected: @escaping @Sendable () -> Int = { 0 }) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.buckets
        self.factory = factory
        self.router = router
        self.rejected = rejected
        router.observeHandlers { [factory] name in SubscriberTimers(subscriber: name, factory: factory) }
    }

    /// Brings every series up to date and renders the registry.
    public func render() -> String {
        let stats = router.stats()
        var totals: [(key: String, label: String, dimensions: [(String, String)], value: Int)] = [
            ("published", "switchboard_events_published_total", [], stats.published),
            ("rejected", "switchboard_input_rejected_total", [], rejected()),
        ]
        // A name that ran twice (removed by a reload, then added back) counts as one.
        var merged: [String: SubscriberStats] = [:]
        var order: [String] = []
        for subscriber in stats.subscribers {
            if var seen = merged[subscriber.name] {
                seen.received += subscriber.received
                seen.handled += subscriber.handled
                seen.failed += subscriber.failed
                seen.dropped += subscriber.dropped
                seen.abandoned += subscriber.abandoned
                seen.deadLettered += subscriber.deadLettered
                seen.restarts += subscriber.restarts
                merged[subscriber.name] = seen
            } else {
                merged[subscriber.name] = subscriber
                order.append(subscriber.name)
            }
        }
        for name in order {
            let subscriber = merged[name]!
            let outcomes = [
                ("handled", subscriber.handled), ("failed", subscriber.failed), ("dropped", subscriber.dropped),
                ("abandoned", subscriber.abandoned), ("dead_lettered", subscriber.deadLettered),
            ]
            for (outcome, value) in outcomes {
                totals.append((
                    "events \(name) \(outcome)", "switchboard_subscriber_events_total",
                    [("subscriber", name), ("outcome", outcome)], value))
            }
            totals.append(("restarts \(name)", "switchboard_subscriber_restarts_total", [("subscriber", name)], subscriber.restarts))
            let labels = [("subscriber", name)]
            Gauge(label: "switchboard_subscriber_queue_depth", dimensions: labels, factory: factory).record(subscriber.queueDepth)
            Gauge(label: "switchboard_subscriber_queue_capacity", dimensions: labels, factory: factory).record(subscriber.capacity)
            if let memory = subscriber.memoryInUse {
                Gauge(label: "switchboard_lua_memory_bytes", dimensions: labels, factory: factory).record(memory)
            }
        }
        reported.withLock { reported in
            for total in totals {
                let counter = Counter(label: total.label, dimensions: total.dimensions, factory: factory)
                let delta = total.value - reported[total.key, default: 0]
                if delta > 0 { counter.increment(by: delta) }
                reported[total.key] = max(total.value, reported[total.key, default: 0])
            }
        }
        return registry.emitToString()
    }
}

/// One subscriber's lag and handler-duration histograms.
private struct SubscriberTimers: HandlerObserver {
    let lag: CoreMetrics.Timer
    let duration: CoreMetrics.Timer

    init(subscriber: String, factory: PrometheusMetricsFactory) {
        lag = CoreMetrics.Timer(label: "switchboard_subscriber_lag_seconds", dimensions: [("subscriber", subscriber)], factory: factory)
        duration = CoreMetrics.Timer(
            label: "switchboard_handler_duration_seconds", dimensions: [("subscriber", subscriber)], factory: factory)
    }

    func observe(lagNanoseconds: Int64, durationNanoseconds: Int64) {
        lag.recordNanoseconds(lagNanoseconds)
        duration.recordNanoseconds(durationNanoseconds)
    }
}
