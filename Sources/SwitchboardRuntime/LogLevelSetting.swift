import Logging
import Synchronization

/// The lowest level logged, which can change while the instance runs: a log handler reads it
/// for each message, and ``Runtime/reload()`` sets it from the configuration's `log.level`.
public final class LogLevelSetting: Sendable {
    private let rawValue: Atomic<Int>

    /// A setting starting at `level`.
    public init(_ level: Logger.Level) {
        rawValue = Atomic(Self.index(of: level))
    }

    /// The level now.
    public var level: Logger.Level {
        get { Logger.Level.allCases[rawValue.load(ordering: .relaxed)] }
        set { rawValue.store(Self.index(of: newValue), ordering: .relaxed) }
    }

    private static func index(of level: Logger.Level) -> Int { Logger.Level.allCases.firstIndex(of: level)! }
}
