import Logging
import SwitchboardCore

extension LuaSubscriberConfiguration {
    /// Loads the plugin and runs its `init` in a throwaway state, with `publish`, timers and
    /// `print` inert, then closes the state without its `shutdown` (whose output would read as
    /// the check's): throws what a subscriber would fail to start with (syntax errors, a
    /// missing `handle`, errors or timeouts in `init`) with `file:line`.
    public func check(logger: Logger = Logger(label: "switchboard")) throws {
        let handler = LuaHandler(configuration: self, logger: logger, output: -1)
        try handler.start(.detached(name: name, workers: workers))
        handler.close()
    }
}
