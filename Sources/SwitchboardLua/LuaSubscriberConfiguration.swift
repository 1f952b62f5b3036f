import SwitchboardCore

/// A Lua subscriber: its plugin script, the topics it is bound to, its queue and its settings.
public struct LuaSubscriberConfiguration: Sendable {
    /// Unique name; the plugin sees it as `switchboard.name`.
    public var name: String
    /// Path of the plugin file; `require` finds modules in the same folder only.
    public var script: String
    /// Patterns it subscribes to; empty for a producer that only publishes from timers.
    public var topics: [String]
    /// How many events may wait in its queue.
    public var capacity: Int
    /// What its full queue does with one more event.
    public var overflow: OverflowPolicy
    /// Handed to the plugin's `init(settings)` and kept as `switchboard.settings`.
    public var settings: JSON

    /// Creates a configuration; the defaults match the config file's.
    public init(
        name: String, script: String, topics: [String] = [], capacity: Int = 1024,
        overflow: OverflowPolicy = .dropNewest, settings: JSON = [:]
    ) {
        self.name = name
        self.script = script
        self.topics = topics
        self.capacity = capacity
        self.overflow = overflow
        self.settings = settings
    }
}
