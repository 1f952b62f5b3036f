/// Why a run could not start, or stopped before it was up.
public struct RuntimeError: Error, CustomStringConvertible {
    /// What kind of failure it was; the command line's exit status follows from it.
    public enum Kind: Sendable, Equatable {
        /// The configuration cannot run as written: a plugin that fails to load or to `init`,
        /// an import NATS refuses (exit status 2).
        case invalid
        /// Something outside the configuration failed: the journal, the NATS connection, the
        /// metrics listener, the input (exit status 1).
        case failed
        /// A signal stopped the start-up (exit status 128 + the signal).
        case interrupted(signal: Int32)
    }

    /// What kind of failure it was.
    public var kind: Kind
    /// What failed, where and why; empty when it was said already (an interruption).
    public var message: String

    public var description: String { message }
}
