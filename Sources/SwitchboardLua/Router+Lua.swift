import Logging
import SwitchboardCore

extension Router {
    /// Starts a Lua subscriber: loads its plugin in a new Lua state on the subscriber's own
    /// thread (one per worker) and runs `init(settings)` there before this returns. Throws
    /// ``RouterError/startFailed(subscriber:reason:)`` with the plugin's `file:line` when the
    /// plugin does not load, lacks `handle` while it has topics, or fails in `init`.
    @discardableResult
    public func subscribe(
        lua configuration: LuaSubscriberConfiguration,
        logger: Logger = Logger(label: "switchboard")
    ) throws(RouterError) -> Subscriber {
        try subscribe(
            configuration.topics, name: configuration.name, capacity: configuration.capacity,
            overflow: configuration.overflow, failurePolicy: configuration.onFailure, workers: configuration.workers,
            key: configuration.key, handlers: { _ in LuaHandler(configuration: configuration, logger: logger) })
    }
}

extension Router {
    /// Starts a Lua subscriber like ``subscribe(lua:logger:)`` but without routing to it until
    /// the next ``Router/commit(adding:removing:)``; `sources` records the files it loads.
    public func prepare(
        lua configuration: LuaSubscriberConfiguration, logger: Logger = Logger(label: "switchboard"),
        sources: LuaSources = LuaSources()
    ) throws(RouterError) -> Subscriber {
        try prepare(
            configuration.topics, name: configuration.name, capacity: configuration.capacity,
            overflow: configuration.overflow, failurePolicy: configuration.onFailure, workers: configuration.workers,
            key: configuration.key, handlers: { _ in LuaHandler(configuration: configuration, logger: logger, sources: sources) })
    }

    /// Rebuilds a running subscriber from a new Lua configuration: its queue, patterns and
    /// failure policy change, and in each worker a fresh Lua state (`init` run) replaces the
    /// old one (its `shutdown` run) between two events; what is queued stays, in order. If a
    /// new state fails to load or `init`, that worker and those after it keep their old ones,
    /// and this throws. The number of workers and the key stay as they are: a change to them
    /// takes a new subscriber (see `Deployment`).
    public func rebuild(
        _ subscriber: Subscriber, lua configuration: LuaSubscriberConfiguration,
        logger: Logger = Logger(label: "switchboard"), sources: LuaSources = LuaSources()
    ) throws(RouterError) {
        try replaceHandlers(of: subscriber) { _ in LuaHandler(configuration: configuration, logger: logger, sources: sources) }
        try reconfigure(
            subscriber, patterns: configuration.topics, capacity: configuration.capacity,
            overflow: configuration.overflow, failurePolicy: configuration.onFailure)
    }
}
