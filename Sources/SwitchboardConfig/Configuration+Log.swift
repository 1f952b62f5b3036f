import Logging

extension Configuration {
    /// The `log` section; nil fields are not set (the command line's flags and defaults apply).
    public struct LogSettings: Sendable, Equatable {
        /// `level`: the lowest level logged; it changes at a reload.
        public var level: Logger.Level?
        /// `format`: how log lines are written; it changes only at a restart.
        public var format: LogFormat?

        /// Settings with `level` and `format`, nil where not set.
        public init(level: Logger.Level? = nil, format: LogFormat? = nil) {
            self.level = level
            self.format = format
        }
    }

    /// The values of `log.format`.
    public enum LogFormat: String, Sendable, CaseIterable {
        /// `2026-11-29T15:09:09+0000 error switchboard: subscriber=email message`
        case text
        /// One JSON object per line: `time`, `level`, `label`, `message` and the metadata.
        case json
    }
}
