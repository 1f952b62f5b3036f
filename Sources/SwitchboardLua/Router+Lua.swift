import Logging
import SwitchboardCore

extension Router {
    /// Starts a Lua subscriber: loads its plugin in a new Lua state on the subscriber's own
    /// thread and runs `init(settings)` there before this returns. Throws
    /// ``RouterError/startFailed(subscriber:reason:)`` with the plugin's `file:line` when the
    /// plugin does not load, lacks `handle` while it has topics, or fails in `init`.
    @discardableResult
    public func subscribe(
        lua configuration: LuaSubscriberConfiguration,
        logger: Logger = Logger(label: "switchboard")
    ) throws(RouterError) -> Subscriber {
        try subscribe(
            configuration.topics, name: configuration.name, capacity: configuration.capacity,
            overflow: configuration.overflow, failurePolicy: configuration.onFailure,
            handler: LuaHandler(configuration: configuration, logger: logger))
    }
}
