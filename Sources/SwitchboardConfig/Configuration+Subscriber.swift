import SwitchboardCore
import SwitchboardJSON

extension Configuration {
    /// A `subscribers` entry as the file gives it: nil where a key is left out, so that the
    /// subscriber's own defaults apply (docs/configuration.md lists them).
    public struct Subscriber: Sendable, Equatable {
        /// `name`: unique, letters, digits, `-` and `_`.
        public var name: String
        /// `plugin`: the Lua file, resolved against the configuration file's folder; empty for a sink.
        public var plugin: String
        /// `http:` or `file:`: a native handler instead of a plugin; nil for a plugin.
        public var sink: Sink?
        /// `topics`: the patterns it subscribes to; none for a producer.
        public var topics: [String] = []
        /// True when the file wrote `topics: []` out: a producer, whose plugin may not have a
        /// `handle`, since no event would ever reach it.
        public var producer = false
        /// `queue.capacity`.
        public var capacity: Int?
        /// `queue.overflow`.
        public var overflow: OverflowPolicy?
        /// `workers`: how many threads, each with its own handler, share its events; nil for 1.
        public var workers: Int?
        /// `key`: what keeps events in order across its workers.
        public var key: EventKey?
        /// `timeout`: the budget of each call into the plugin.
        public var timeout: Duration?
        /// `memory`: the bytes its Lua state may hold.
        public var memory: Int?
        /// `allow`: libraries given back to a trusted plugin, by name (one of ``libraries``).
        public var allow: Set<String> = []
        /// `on_failure`.
        public var onFailure = FailurePolicy()
        /// `settings`: handed to the plugin's `init`.
        public var settings: JSON = [:]

        /// The names `allow` accepts: the sandbox's optional libraries (docs/sandbox.md).
        public static let libraries = ["io", "os", "debug"]

        /// The most `workers` an entry may ask for: each is a thread.
        public static let maxWorkers = 256

        /// An entry with only a name and a plugin.
        public init(name: String, plugin: String) {
            self.name = name
            self.plugin = plugin
        }

        /// An entry with only a name and a sink.
        public init(name: String, sink: Sink) {
            self.name = name
            plugin = ""
            self.sink = sink
        }
    }
}
