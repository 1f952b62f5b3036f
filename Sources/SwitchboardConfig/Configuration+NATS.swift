extension Configuration {
    /// The `nats` section as the file gives it: nil where a key is left out, so that the
    /// bridge's own defaults apply. Files are resolved against the configuration's folder.
    public struct NATSSettings: Sendable, Equatable {
        /// `url`: one or more servers, separated by commas.
        public var url: String
        /// `export`: local topic patterns published to NATS.
        public var export: [String] = []
        /// `import`: NATS subjects published locally.
        public var `import`: [String] = []
        /// `queue_group`: shares the imports with the group's other members.
        public var queueGroup: String?
        /// `export_queue`: the export queue's capacity.
        public var exportQueue: Int?
        /// `flush_interval`.
        public var flushInterval: Duration?
        /// `connect_timeout`.
        public var connectTimeout: Duration?
        /// `reconnect_wait`.
        public var reconnectWait: Duration?
        /// `reconnect_wait_max`.
        public var reconnectWaitMax: Duration?
        /// `max_reconnects`; nil: never give up.
        public var maxReconnects: Int?
        /// `user`.
        public var user: String?
        /// `password`.
        public var password: String?
        /// `token`.
        public var token: String?
        /// `credentials`: a `.creds` file.
        public var credentials: String?
        /// `tls`.
        public var tls: TLS?
        /// `jetstream`: exports stored in a stream, each confirmed by the server.
        public var jetStream: JetStream?

        /// The `jetstream` part of the section.
        public struct JetStream: Sendable, Equatable {
            /// `stream`.
            public var stream: Stream
            /// `export`: local topic patterns stored in the stream.
            public var export: [String] = []
            /// `import`: the stream's messages through a durable consumer, acknowledged once handled.
            public var `import`: Import?

            /// `import`: a durable consumer that every instance with its name shares.
            public struct Import: Sendable, Equatable {
                /// `durable`: the consumer's name.
                public var durable: String
                /// `filter`: the subjects it takes from the stream; nil: all of them.
                public var filter: String?
                /// `ack_wait`: how long the server waits for an acknowledgement before it delivers again.
                public var ackWait: Duration?
                /// `max_deliver`: deliveries of one message before it is terminated.
                public var maxDeliver: Int?
                /// `max_ack_pending`: messages handed out and not yet acknowledged, across the instances.
                public var maxAckPending: Int?
                /// `backoff`: the delay before each redelivery after a failure; the last one repeats.
                public var backoff: [Duration]?

                /// A consumer with only a name.
                public init(durable: String) {
                    self.durable = durable
                }
            }

            /// `stream`: where exports are stored.
            public struct Stream: Sendable, Equatable {
                /// `name`.
                public var name: String
                /// `subjects`: what the stream stores.
                public var subjects: [String] = []
                /// `storage`: `file` or `memory`.
                public var storage: Storage?
                /// `max_age`: how long it keeps a message; nil: as long as the server keeps the stream.
                public var maxAge: Duration?
                /// `duplicate_window`: how long a `Nats-Msg-Id` is remembered, so that a retried export is stored once.
                public var duplicateWindow: Duration?
                /// `create`: create the stream, or update it to these settings, at start.
                public var create = false

                /// A stream with only a name.
                public init(name: String) {
                    self.name = name
                }
            }

            /// Where a stream keeps its messages.
            public enum Storage: String, Sendable, CaseIterable {
                case file, memory
            }

            /// A section with only a stream.
            public init(stream: Stream) {
                self.stream = stream
            }
        }

        /// The `tls` part of the section.
        public struct TLS: Sendable, Equatable {
            /// `ca`: a PEM file of authorities to trust.
            public var ca: String?
            /// `cert`: the client's PEM certificate chain.
            public var cert: String?
            /// `key`: the PEM private key of `cert`.
            public var key: String?
            /// `hostname`: the name the server's certificate must carry.
            public var hostname: String?
            /// `insecure_skip_verify`: accept any server certificate (testing only).
            public var insecureSkipVerify = false

            /// Nothing set.
            public init() {}
        }

        /// A section with only a URL.
        public init(url: String) {
            self.url = url
        }
    }
}
