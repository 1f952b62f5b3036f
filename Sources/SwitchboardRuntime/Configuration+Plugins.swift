import Logging
import SwitchboardConfig
import SwitchboardLua

extension Configuration {
    /// Loads every subscriber's plugin as ``SwitchboardLua/LuaSubscriberConfiguration/check(logger:)`` does,
    /// routing nothing: the problems, one line each, as `switchboard check` prints them.
    public func pluginProblems(logger: Logger = Logger(label: "switchboard")) -> [String] {
        subscribers.compactMap { subscriber in
            do {
                try subscriber.lua.check(logger: logger)
                return nil
            } catch {
                return "\(path): subscriber '\(subscriber.name)': \(error)"
            }
        }
    }
}
