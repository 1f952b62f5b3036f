import CoreMetrics
import Prometheus
import Synchronization
import SwitchboardCore

/// A router's metrics in the Prometheus text format, built with swift-metrics on a
/// swift-prometheus registry.
///
/// Counts come from the router's own exact counters, read at each scrape, so publishing pays
/// nothing for them; lag and handler duration are timed per call on subscriber threads
/// through the core's ``SwitchboardCore/HandlerObserver`` seam, into lock-free histograms.
public final class RouterMetrics: Sendable {
    /// The registry every series lives in.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    /// The router it reads.
    public let router: Router
    /// Readings of the components at the edge, added with ``addReadings(_:)``.
    private let sources = Mutex<[@Sendable () -> [MetricReading]]>([])
    /// What each counter showed at the last scrape, to increment by the difference.
    private let reported = Mutex<[String: Int]>([:])
    /// Lag and duration histograms by subscriber name.
    private let timers = TimerTable()

    /// Starts timing every subscriber that `router` starts from now on.
    public init(router: Router, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        factory = PrometheusMetricsFactory(registry: registry)
        self.router = router
        router.observeHandlers { [timers] name, worker in timers.timers(for: name, worker: worker) }
    }

    /// Adds series that `read` tells at each scrape: the counts of a component outside the
    /// router (the input feeder, the NATS bridge).
    public func addReadings(_ read: @escaping @Sendable () -> [MetricReading]) {
        sources.withLock { $0.append(read) }
    }

    /// Brings every series up to date and renders the registry.
    public func render() -> String {
        let stats = router.stats()
        Gauge(label: "switchboard_taps", factory: factory).record(router.openTaps)
        var totals: [(key: String, label: String, dimensions: [(String, String)], value: Int)] = [
            ("published", "switchboard_events_published_total", [], stats.published),
        ]
        for reading in sources.withLock({ $0 }).flatMap({ $0() }) {
            switch reading.kind {
            case .counter:
                let key = ([reading.label] + reading.dimensions.map { "\($0)=\($1)" }).joined(separator: " ")
                totals.append((key, reading.label, reading.dimensions, reading.value))
            case .gauge:
                Gauge(label: reading.label, dimensions: reading.dimensions, factory: factory).record(reading.value)
            }
        }
        for subscriber in stats.byName {  // a name that ran twice counts as one
            let name = subscriber.name
            let outcomes = [
                ("handled", subscriber.handled), ("failed", subscriber.failed), ("dropped", subscriber.dropped),
                ("abandoned", subscriber.abandoned), ("dead_lettered", subscriber.deadLettered),
            ]
            for (outcome, value) in outcomes {
                totals.append((
                    "events \(name) \(outcome)", "switchboard_subscriber_events_total",
                    [("subscriber", name), ("outcome", outcome)], value))
            }
            // With several workers, the series of each worker's own queue and state carry its number.
            let workers: [(labels: [(String, String)], stats: SubscriberStats)] = subscriber.perWorker.isEmpty
                ? [([("subscriber", name)], subscriber)]
                : subscriber.perWorker.enumerated().map { ([("subscriber", name), ("worker", String($0 + 1))], $1) }
            for worker in workers {
                let key = worker.labels.map(\.1).joined(separator: " ")
                totals.append(("restarts \(key)", "switchboard_subscriber_restarts_total", worker.labels, worker.stats.restarts))
                Gauge(label: "switchboard_subscriber_queue_depth", dimensions: worker.labels, factory: factory)
                    .record(worker.stats.queueDepth)
                if let memory = worker.stats.memoryInUse {
                    Gauge(label: "switchboard_lua_memory_bytes", dimensions: worker.labels, factory: factory).record(memory)
                }
            }
            totals.append(("retries \(name)", "switchboard_subscriber_retries_total", [("subscriber", name)], subscriber.retries))
            totals.append(("published \(name)", "switchboard_subscriber_published_total", [("subscriber", name)], subscriber.published))
            totals.append((
                "publish failed \(name)", "switchboard_subscriber_publish_failed_total", [("subscriber", name)],
                subscriber.publishFailed))
            let labels = [("subscriber", name)]
            Gauge(label: "switchboard_subscriber_queue_capacity", dimensions: labels, factory: factory).record(subscriber.capacity)
            Gauge(label: "switchboard_subscriber_pending", dimensions: labels, factory: factory).record(subscriber.pending)
        }
        reported.withLock { reported in
            for total in totals {
                let counter = Counter(label: total.label, dimensions: total.dimensions, factory: factory)
                let delta = total.value - reported[total.key, default: 0]
                if delta > 0 { counter.increment(by: delta) }
                reported[total.key] = max(total.value, reported[total.key, default: 0])
            }
        }
        var text = registry.emitToString()
        let timers = self.timers.all
        for (metric, histogram) in [("switchboard_subscriber_lag_seconds", \SubscriberTimers.lag),
                                    ("switchboard_handler_duration_seconds", \SubscriberTimers.duration)] {
            text += "# TYPE \(metric) histogram\n"
            for entry in timers {
                let worker = entry.worker.map { ",worker=\"\($0)\"" } ?? ""
                entry.timers[keyPath: histogram].render(name: metric, labels: "subscriber=\"\(entry.name)\"\(worker)", into: &text)
            }
        }
        return text
    }
}

/// The histograms of every subscriber (of each worker, for one with several), in the order they started.
private final class TimerTable: Sendable {
    private let entries = Mutex<[(name: String, worker: Int?, timers: SubscriberTimers)]>([])

    /// Every subscriber's histograms.
    var all: [(name: String, worker: Int?, timers: SubscriberTimers)] { entries.withLock { $0 } }

    /// The histograms of the subscriber `name`, or of its worker `worker`: one rebuilt under
    /// the same name (a reload) keeps adding to its series.
    func timers(for name: String, worker: Int?) -> SubscriberTimers {
        entries.withLock { entries in
            if let known = entries.first(where: { $0.name == name && $0.worker == worker }) { return known.timers }
            let made = SubscriberTimers()
            entries.append((name, worker, made))
            return made
        }
    }
}

/// One subscriber's lag and handler-duration histograms.
private final class SubscriberTimers: HandlerObserver {
    let lag = LatencyHistogram()
    let duration = LatencyHistogram()

    func observe(lagNanoseconds: Int64, durationNanoseconds: Int64) {
        lag.record(nanoseconds: lagNanoseconds)
        duration.record(nanoseconds: durationNanoseconds)
    }
}

/// One value of a series that a component outside the router reports at each scrape.
public struct MetricReading: Sendable {
    /// How the value behaves.
    public enum Kind: Sendable {
        /// A total that only grows.
        case counter
        /// A level that goes up and down.
        case gauge
    }

    /// Counter or gauge.
    public var kind: Kind
    /// The series name, such as `switchboard_nats_exported_total`.
    public var label: String
    /// Its labels, as name and value.
    public var dimensions: [(String, String)]
    /// The value now.
    public var value: Int

    /// A reading of `label` with `dimensions`.
    public init(_ kind: Kind, _ label: String, _ dimensions: [(String, String)] = [], value: Int) {
        self.kind = kind
        self.label = label
        self.dimensions = dimensions
        self.value = value
    }
}
