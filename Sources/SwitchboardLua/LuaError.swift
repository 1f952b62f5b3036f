/// A Lua plugin failed: to load, to start, or to handle an event. The message carries the
/// plugin's `file:line` and, for runtime errors, a Lua traceback.
public struct LuaError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let message: String

    init(_ message: String) { self.message = message }

    public var description: String { message }
}
