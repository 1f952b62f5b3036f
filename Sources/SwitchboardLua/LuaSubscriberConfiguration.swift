import SwitchboardCore

/// A Lua subscriber: its plugin script, the topics it is bound to, its queue, its limits and its settings.
public struct LuaSubscriberConfiguration: Sendable, Equatable {
    /// Unique name; the plugin sees it as `switchboard.name`.
    public var name: String
    /// Path of the plugin file; `require` finds modules in the same folder only.
    public var script: String
    /// Patterns it subscribes to; empty for a producer that only publishes from timers.
    public var topics: [String]
    /// True for a producer by declaration (`topics: []`): its plugin may not have a `handle`,
    /// which no event would ever reach.
    public var producer = false
    /// How many events may wait in its queue.
    public var capacity: Int
    /// What its full queue does with one more event.
    public var overflow: OverflowPolicy
    /// Wall-clock budget of each call into the plugin: `handle`, a timer callback, `init`, `shutdown`.
    public var timeout: Duration
    /// Bytes its Lua state may hold; past it the call fails and the state is rebuilt.
    public var memory: Int
    /// Libraries the sandbox gives back to trusted code.
    public var allow: Set<LuaLibrary>
    /// What happens when an event fails.
    public var onFailure: FailurePolicy
    /// Handed to the plugin's `init(settings)` and kept as `switchboard.settings`.
    public var settings: JSON
    /// How many workers run the plugin, each with its own thread and Lua state and its share of `capacity`.
    public var workers = 1
    /// What keeps events in order across the workers; nil for no order between them.
    public var key: EventKey?

    /// Creates a configuration; the defaults match the config file's.
    public init(
        name: String, script: String, topics: [String] = [], capacity: Int = 1024,
        overflow: OverflowPolicy = .dropNewest, timeout: Duration = .seconds(1), memory: Int = 64 << 20,
        allow: Set<LuaLibrary> = [], onFailure: FailurePolicy = FailurePolicy(), settings: JSON = [:]
    ) {
        self.name = name
        self.script = script
        self.topics = topics
        self.capacity = capacity
        self.overflow = overflow
        self.timeout = timeout
        self.memory = memory
        self.allow = allow
        self.onFailure = onFailure
        self.settings = settings
    }
}

/// Libraries the sandbox opens only for a subscriber whose `allow` names them (docs/sandbox.md).
public enum LuaLibrary: String, Sendable, CaseIterable {
    /// The io library, `dofile` and `loadfile` (text chunks only).
    case io
    /// The whole os library: `os.execute`, `os.exit`, `os.remove`, `os.rename`, `os.tmpname`,
    /// `os.getenv`, `os.setlocale` (`os.clock`, `os.time` and `os.date` are always there).
    case os
    /// The debug library and `string.dump`: full trust, past every rule of the sandbox.
    case debug
}
