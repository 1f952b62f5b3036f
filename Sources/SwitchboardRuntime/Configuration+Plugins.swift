import Logging
import SwitchboardConfig
import SwitchboardLua

extension Configuration {
    /// Loads every plugin subscriber's plugin as ``SwitchboardLua/LuaSubscriberConfiguration/check(logger:)`` does,
    /// routing nothing: the problems, one line each, as `switchboard check` prints them.
    public func pluginProblems(logger: Logger = Logger(label: "switchboard")) -> [String] {
        subscribers.compactMap { subscriber in
            guard subscriber.sink == nil else { return nil }  // the reader checked it whole
            do {
                try subscriber.lua.check(logger: logger)
                return nil
            } catch {
                return "\(path): subscriber '\(subscriber.name)': \(error)"
            }
        }
    }
}
