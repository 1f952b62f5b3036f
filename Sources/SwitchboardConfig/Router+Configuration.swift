import Logging
import SwitchboardCore
import SwitchboardLua

extension Router {
    /// Starts every subscriber of a configuration, in file order, together (see
    /// ``Router/startTogether(_:)``): none takes an event or fires a timer before all are
    /// routed to. If one fails to start, the ones already started are removed again and the
    /// error names the subscriber.
    @discardableResult
    public func subscribe(
        configuration: Configuration, logger: Logger = Logger(label: "switchboard")
    ) throws(RouterError) -> [Subscriber] {
        var started: [Subscriber] = []
        do {
            try startTogether { () throws(RouterError) in
                for subscriber in configuration.subscribers {
                    started.append(try subscribe(lua: subscriber, logger: logger))
                }
            }
        } catch {
            for running in started { unsubscribe(running) }
            throw error
        }
        return started
    }
}
