extension Configuration {
    /// The `journal` section as the file gives it: nil where a key is left out.
    public struct JournalSettings: Sendable, Equatable {
        /// `path`: the folder of segment files, resolved against the configuration file's folder.
        public var path: String
        /// `fsync`: when the journal syncs to disk.
        public var fsync: Fsync?
        /// `retention.max_bytes`: the most bytes all segments may hold.
        public var maxBytes: Int?
        /// `retention.max_age`: the oldest a segment's last write may be.
        public var maxAge: Duration?

        /// A journal in `path` with nothing else set.
        public init(path: String) {
            self.path = path
        }
    }

    /// The values of `journal.fsync`.
    public enum Fsync: String, Sendable, CaseIterable {
        /// Before `publish` returns.
        case always
        /// Every few milliseconds.
        case interval
        /// When the operating system chooses.
        case never
    }
}
