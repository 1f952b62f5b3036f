import Synchronization
import SwitchboardCore

/// What `GET /healthz` reports: the run's phase, and the subscribers that need a look.
public final class Health: Sendable {
    /// Where a run is.
    public enum Phase: Int, Sendable {
        /// Subscribers are starting: not ready yet (503).
        case starting
        /// Every subscriber is running (200), also while one is being rebuilt.
        case running
        /// Shutting down: no new work (503).
        case draining
    }

    private let router: Router
    private let phaseValue = Atomic<Int>(Phase.starting.rawValue)
    private let budgets: Mutex<[String: Duration]>
    /// Components outside the router, by name, with a word for their state.
    private let components = Mutex<[(name: String, state: @Sendable () -> String)]>([])

    /// Reports on `router`; `budgets` are the per-event budgets by subscriber name, past which
    /// a call in progress counts as stuck.
    public init(router: Router, budgets: [String: Duration] = [:]) {
        self.router = router
        self.budgets = Mutex(budgets)
    }

    /// The phase now.
    public var phase: Phase {
        get { Phase(rawValue: phaseValue.load(ordering: .relaxed))! }
        set { phaseValue.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// Adds a component outside the router (the NATS bridge) whose `state` the body reports
    /// under `name`. It does not change the status: local routing goes on without it.
    public func addComponent(_ name: String, state: @escaping @Sendable () -> String) {
        components.withLock { $0.append((name, state)) }
    }

    /// Replaces the per-event budgets (after a reload).
    public func setBudgets(_ budgets: [String: Duration]) { self.budgets.withLock { $0 = budgets } }

    /// The HTTP status and the JSON body: `{"status": "running", "stuck": [...], "rebuilding": [...]}`,
    /// then each component's state (`"nats": "connected"`).
    public func report() -> (status: Int, body: String) {
        let budgets = self.budgets.withLock { $0 }
        var stuck: [String] = []
        var rebuilding: [String] = []
        let subscribers = phase == .starting ? [] : router.stats().subscribers
        for subscriber in subscribers {
            if let busy = subscriber.busyFor, let budget = budgets[subscriber.name], busy > budget { stuck.append(subscriber.name) }
            if subscriber.isRebuilding { rebuilding.append(subscriber.name) }
        }
        let phase = self.phase
        let name = switch phase {
        case .starting: "starting"
        case .running: "running"
        case .draining: "draining"
        }
        func list(_ names: [String]) -> String { "[" + names.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let extra = components.withLock { $0 }.map { #", "\#($0.name)": "\#($0.state())""# }.joined()
        let body = #"{"status": "\#(name)", "stuck": \#(list(stuck)), "rebuilding": \#(list(rebuilding))\#(extra)}"#
        return (phase == .running ? 200 : 503, body)
    }
}
