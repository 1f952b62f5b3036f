import Foundation

extension Configuration {
    /// A subscriber whose handler is native rather than a plugin: its entry's `http:` or `file:`.
    public enum Sink: Sendable, Equatable {
        /// `http:`: each event (or batch) is an HTTP request.
        case http(HTTPSink)
        /// `file:`: each event is a line of a file.
        case file(FileSink)
    }

    /// What a sink writes of each event.
    public enum EventFormat: String, Sendable, CaseIterable {
        /// The event's payload only.
        case data
        /// `{"id", "time", "topic", "data", "headers"}`: the line `switchboard journal` prints, without `seq`.
        case event
    }

    /// An `http:` sink, with the defaults of the keys the file leaves out.
    public struct HTTPSink: Sendable, Equatable {
        /// The methods a sink may use.
        public enum Method: String, Sendable, CaseIterable {
            case POST, PUT
        }

        /// `url`: `http://` or `https://`.
        public var url: String
        /// `method`: `POST` (default) or `PUT`.
        public var method = Method.POST
        /// `headers`: sent with every request. Their values may hold secrets: never printed.
        public var headers: [String: String] = [:]
        /// `body`: `data` (default) or `event`.
        public var body = EventFormat.data
        /// `batch.max_events`: above 1, the body is a JSON array of bodies. Default 1.
        public var maxEvents = 1
        /// `batch.max_wait`: how long the first event of a batch waits for it to fill. Default 100 ms.
        public var maxWait = Duration.milliseconds(100)
        /// `timeout`: for one request, and the sink's budget for `/healthz`'s "stuck". Default 5 s.
        public var timeout = Duration.seconds(5)
        /// `tls.ca`: a PEM file of the certificates to trust instead of the system's.
        public var caFile: String?

        /// A sink posting to `url`, everything else by default.
        public init(url: String) { self.url = url }

        /// The URL without its user, password and query, which may hold secrets: for logs and `check`.
        public var printableURL: String {
            URLComponents(string: url).map { url in
                "\(url.scheme ?? "http")://\(url.host ?? "")\(url.port.map { ":\($0)" } ?? "")\(url.path)"
            } ?? "the sink's URL"
        }
    }

    /// A `file:` sink, with the defaults of the keys the file leaves out.
    public struct FileSink: Sendable, Equatable {
        /// `path`, resolved against the configuration file's folder.
        public var path: String
        /// `format`: `event` (default) or `data`.
        public var format = EventFormat.event
        /// `rotate.max_bytes`: past this size the file is renamed `PATH.1` (and older ones
        /// `.2`, `.3`, ...) and a new one begun; nil (no `rotate`): never rotated.
        public var rotateBytes: Int?
        /// `rotate.keep`: how many rotated files are kept. Default 10.
        public var keep = 10
        /// `fsync`: as the journal's; default `interval`.
        public var fsync = Fsync.interval

        /// A sink writing to `path`, everything else by default.
        public init(path: String) { self.path = path }
    }

    /// The `ingest` section: where events come in over the network.
    public struct Ingest: Sendable, Equatable {
        /// `http.listen`: `HOST:PORT` of the HTTP ingest listener.
        public var listen: String
        /// `http.token`: the bearer token every request must carry; nil (or empty in the file) for none.
        public var token: String?
        /// `http.max_body`: the largest request body. Default 10 MiB.
        public var maxBody = 10 << 20

        /// An ingest listener on `listen`, without a token.
        public init(listen: String) { self.listen = listen }
    }
}
