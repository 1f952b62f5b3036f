extension Configuration {
    /// A mapping of a configuration file and the keys it may hold. The reader refuses every
    /// other key; the reference (`docs/configuration.md`) and the schema
    /// (`config/switchboard.schema.json`) are tested against these lists.
    public struct Section: Sendable, Equatable {
        /// Where it is in the file: `""` for the top, then dotted keys, with `[]` for each item
        /// of a list: `journal.retention`, `subscribers[].queue`.
        public let path: String
        /// The keys it may hold.
        public let keys: [String]
        /// How problems name it: `journal retention`.
        let what: String

        init(_ path: String, _ what: String, _ keys: [String]) {
            self.path = path
            self.what = what
            self.keys = keys
        }

        /// Every section, from the top down.
        public static let all: [Section] = [
            top, log, metrics, journal, journalRetention, nats, natsTLS, natsJetStream, natsStream, natsImport, ingest, ingestHTTP,
            subscriber, queue, onFailure, http, httpBatch, httpTLS, file, fileRotate,
        ]

        static let top = Section(
            "", "the configuration", ["subscribers", "drain_timeout", "metrics", "journal", "instance", "nats", "log", "ingest"])
        static let log = Section("log", "log", ["level", "format"])
        static let metrics = Section("metrics", "metrics", ["listen", "token", "admin"])
        static let journal = Section("journal", "journal", ["path", "fsync", "retention"])
        static let journalRetention = Section("journal.retention", "journal retention", ["max_bytes", "max_age"])
        static let nats = Section("nats", "nats", [
            "url", "export", "import", "queue_group", "export_queue", "flush_interval", "connect_timeout",
            "reconnect_wait", "reconnect_wait_max", "max_reconnects", "user", "password", "token", "credentials", "tls",
            "jetstream",
        ])
        static let natsTLS = Section("nats.tls", "nats tls", ["ca", "cert", "key", "hostname", "insecure_skip_verify"])
        static let natsJetStream = Section("nats.jetstream", "nats jetstream", ["stream", "export", "import"])
        static let natsImport = Section(
            "nats.jetstream.import", "nats jetstream import", ["durable", "filter", "ack_wait", "max_deliver", "max_ack_pending", "backoff"])
        static let natsStream = Section(
            "nats.jetstream.stream", "nats jetstream stream", ["name", "subjects", "storage", "max_age", "duplicate_window", "create"])
        static let ingest = Section("ingest", "ingest", ["http"])
        static let ingestHTTP = Section("ingest.http", "ingest http", ["listen", "token", "max_body"])
        static let subscriber = Section("subscribers[]", "a subscriber", [
            "name", "plugin", "http", "file", "topics", "queue", "workers", "key", "timeout", "memory", "settings",
            "on_failure", "allow",
        ])
        static let queue = Section("subscribers[].queue", "queue", ["capacity", "overflow"])
        static let onFailure = Section(
            "subscribers[].on_failure", "on_failure", ["retries", "backoff", "max_backoff", "dead_letter", "restart_after"])
        static let http = Section("subscribers[].http", "http", ["url", "method", "headers", "body", "batch", "timeout", "tls"])
        static let httpBatch = Section("subscribers[].http.batch", "http batch", ["max_events", "max_wait"])
        static let httpTLS = Section("subscribers[].http.tls", "http tls", ["ca"])
        static let file = Section("subscribers[].file", "file", ["path", "format", "rotate", "fsync"])
        static let fileRotate = Section("subscribers[].file.rotate", "file rotate", ["max_bytes", "keep"])
    }
}
