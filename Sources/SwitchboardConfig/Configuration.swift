import Foundation
import Logging
import SwitchboardCore
import SwitchboardJSON
import SwitchboardTopics
import Yams

/// A configuration file: the subscribers to start, with their plugins, topics, queues, limits
/// and settings. YAML (so JSON too). Relative paths resolve against the file's folder, and
/// `${NAME}` in a value is replaced by that environment variable.
///
/// It holds what the file says, validated. Where a part has a default of its own (a
/// subscriber's queue, timeout and memory; the journal's fsync; the bridge's timings), a key
/// left out is nil, and the runtime applies the part's default when it builds it.
public struct Configuration: Sendable {
    /// The file it was read from.
    public let path: String
    /// The subscribers, in file order.
    public var subscribers: [Subscriber]
    /// How long subscribers may drain at shutdown (`drain_timeout`); nil when not set.
    public var drainTimeout: Duration?
    /// Where to serve metrics and health (`metrics: { listen: "HOST:PORT" }`); nil when not set.
    public var metricsListen: String?
    /// The bearer token that `/metrics`, `/tap`, `POST /-/reload` and `POST /-/redrive` require
    /// (`metrics.token`, at least 16 characters); nil for none. `/healthz` never requires it.
    public var metricsToken: String?
    /// Whether the metrics listener serves `POST /-/reload` and `POST /-/redrive`
    /// (`metrics.admin`, default false).
    public var metricsAdmin = false
    /// The event journal (`journal: { path, fsync, retention }`); nil when off.
    public var journal: JournalSettings?
    /// This instance's name (`instance`): the origin of what it exports to NATS, and its
    /// connection's name there. By default the host name and the process id: `web-1-4711`.
    public var instance: String
    /// The NATS bridge (`nats: { url, export, import, queue_group, ... }`); nil when off.
    public var nats: NATSSettings?
    /// HTTP ingest (`ingest: { http: { listen, token, max_body } }`); nil when off.
    public var ingest: Ingest?
    /// How the instance logs (`log: { level, format }`).
    public var log = LogSettings()

    /// Reads and validates a configuration file. Validation is strict and reports every
    /// problem at once: unknown keys, bad values, duplicate names, invalid patterns, missing
    /// plugin files, unset environment variables.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> Configuration {
        var reader = Reader(file: path, environment: environment)
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(problems: [.init(file: path, line: nil, subscriber: nil, message: "cannot read the file")])
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError(problems: [.init(file: path, line: nil, subscriber: nil, message: "invalid YAML: \(error)")])
        }
        let subscribers = reader.read(root)
        guard reader.problems.isEmpty else { throw ConfigurationError(problems: reader.problems) }
        return Configuration(
            path: path, subscribers: subscribers, drainTimeout: reader.drainTimeout, metricsListen: reader.metricsListen,
            metricsToken: reader.metricsToken, metricsAdmin: reader.metricsAdmin, journal: reader.journal,
            instance: reader.instance ?? defaultInstance, nats: reader.nats, ingest: reader.ingest, log: reader.log)
    }

    /// The host name and the process id.
    private static var defaultInstance: String {
        var name = [UInt8](repeating: 0, count: 256)
        let host = gethostname(&name, name.count - 1) == 0
            ? String(decoding: name.prefix { $0 != 0 }, as: UTF8.self) : "switchboard"
        return "\(host)-\(getpid())"
    }
}

/// Walks the YAML tree, collecting problems instead of stopping at the first.
struct Reader {
    let file: String
    let environment: [String: String]
    var problems: [ConfigurationError.Problem] = []
    private(set) var drainTimeout: Duration?
    private(set) var metricsListen: String?
    private(set) var metricsToken: String?
    private(set) var metricsAdmin = false
    private(set) var journal: Configuration.JournalSettings?
    private(set) var instance: String?
    private(set) var nats: Configuration.NATSSettings?
    private(set) var ingest: Configuration.Ingest?
    private(set) var log = Configuration.LogSettings()
    /// Where `overflow: spill` was asked for: it needs a journal.
    private var spillers: [Node] = []
    /// The subscriber whose entry is being read: problems name it.
    var subscriber: String?

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    private var folder: String { (file as NSString).deletingLastPathComponent }

    mutating func problem(_ node: Node?, _ message: String) {
        problems.append(.init(file: file, line: node?.mark?.line, subscriber: subscriber, message: message))
    }

    /// The members of a mapping, refusing keys not in `allowed` (nil: any string key).
    mutating func members(_ node: Node, allowed: [String]?, what: String) -> [String: Node] {
        guard let mapping = node.mapping else {
            problem(node, "\(what) must be a mapping")
            return [:]
        }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string, allowed?.contains(name) ?? true else {
                let spelled = key.scalar?.string ?? "\(key)"
                let nearest = (allowed ?? []).map { ($0, Self.distance($0, spelled)) }.min { $0.1 < $1.1 }
                let suggestion = nearest.flatMap { $0.1 <= max(1, spelled.count / 3) ? "; did you mean '\($0.0)'?" : nil } ?? ""
                problem(key, "unknown key '\(spelled)' in \(what) (known: \((allowed ?? []).joined(separator: ", ")))\(suggestion)")
                continue
            }
            result[name] = value
        }
        return result
    }

    /// The members of a mapping that is a section of the configuration.
    mutating func members(_ node: Node, _ section: Configuration.Section) -> [String: Node] {
        members(node, allowed: section.keys, what: section.what)
    }

    /// True for a non-empty name of ASCII letters, digits and the characters of `also`.
    static func isName(_ name: String, also: String = "-_") -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || also.unicodeScalars.contains($0)) }
    }

    /// The edit distance between two keys: the least insertions, deletions and substitutions.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)  // distances from a's first i characters to each prefix of b
        for (i, character) in a.enumerated() {
            var diagonal = row[0]
            row[0] = i + 1
            for (j, other) in b.enumerated() {
                (diagonal, row[j + 1]) = (row[j + 1], min(diagonal + (character == other ? 0 : 1), row[j + 1] + 1, row[j] + 1))
            }
        }
        return row[b.count]
    }

    /// A scalar's text after `${NAME}` substitution.
    mutating func string(_ node: Node, _ what: String) -> String? {
        guard let scalar = node.scalar else {
            problem(node, "\(what) must be a single value")
            return nil
        }
        let (text, missing) = ConfigValue.substitute(scalar.string, environment: environment)
        for name in missing { problem(node, "\(what): environment variable '\(name)' is not set") }
        return missing.isEmpty ? text : nil
    }

    mutating func value<T>(_ node: Node?, _ what: String, _ format: String, _ parse: (String) -> T?) -> T? {
        guard let node, let text = string(node, what) else { return nil }
        guard let value = parse(text) else {
            let meant = ConfigValue.respellings(of: text).first { $0 != text && parse($0) != nil }
            problem(node, "\(what) '\(text)' is not \(format)" + (meant.map { "; did you mean \($0)?" } ?? ""))
            return nil
        }
        return value
    }

    mutating func strings(_ node: Node?, _ what: String) -> [String] {
        guard let node else { return [] }
        guard let sequence = node.sequence else {
            problem(node, "\(what) must be a list")
            return []
        }
        return sequence.compactMap { string($0, what) }
    }

    mutating func read(_ root: Node?) -> [Configuration.Subscriber] {
        guard let root else {
            problem(nil, "the file is empty; it needs a 'subscribers' list")
            return []
        }
        let top = members(root, .top)
        if let node = top["journal"] { journal = readJournal(node) }
        if let node = top["nats"] { nats = readNATS(node) }
        if let node = top["ingest"] { ingest = readIngest(node) }
        if let node = top["log"] {
            let fields = members(node, .log)
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            log.level = value(fields["level"], "log level", "one of \(levels)", Logger.Level.init(rawValue:))
            log.format = value(fields["format"], "log format", "text or json", Configuration.LogFormat.init(rawValue:))
        }
        instance = value(top["instance"], "instance", "a name of letters, digits, ., - and _") { name in
            Self.isName(name, also: "._-") ? name : nil
        }
        drainTimeout = value(top["drain_timeout"], "drain_timeout", "a duration such as 5s", ConfigValue.duration)
        if let metrics = top["metrics"] {
            let fields = members(metrics, .metrics)
            metricsListen = value(fields["listen"], "metrics listen", "HOST:PORT, such as 127.0.0.1:9464") { text in
                ConfigValue.hostAndPort(text).map { _ in text }
            }
            if let tokenNode = fields["token"], let token = string(tokenNode, "metrics token"), !token.isEmpty {
                if token.count < 16 { problem(tokenNode, "metrics token must be at least 16 characters (it has \(token.count))") }
                metricsToken = token
            }
            metricsAdmin = value(fields["admin"], "metrics admin", "true or false") { Bool($0) } ?? false
            if metricsAdmin, metricsToken == nil, let listen = metricsListen, let (host, _) = ConfigValue.hostAndPort(listen),
                !ConfigValue.isLoopback(host)
            {
                problem(
                    fields["admin"]!,
                    "metrics admin needs metrics.token (16 characters or more) on '\(listen)', which is not a loopback address: anyone who reaches it could reload the instance and redrive its dead letters")
            }
        }
        guard let list = top["subscribers"] else {
            problem(root, "missing 'subscribers'")
            return []
        }
        guard let entries = list.sequence else {
            problem(list, "'subscribers' must be a list")
            return []
        }
        var names: [String: Int] = [:]
        var result: [Configuration.Subscriber] = []
        for entry in entries {
            subscriber = nil
            if let configuration = readSubscriber(entry, names: &names) { result.append(configuration) }
        }
        subscriber = nil
        if journal == nil {
            for node in spillers { problem(node, "queue overflow 'spill' needs a journal (journal: { path: ... })") }
        }
        return result
    }

    private mutating func readJournal(_ node: Node) -> Configuration.JournalSettings? {
        let fields = members(node, .journal)
        guard let pathNode = fields["path"], let path = string(pathNode, "journal path") else {
            problem(node, "journal needs a 'path'")
            return nil
        }
        var settings = Configuration.JournalSettings(path: resolve(path))
        settings.fsync = value(fields["fsync"], "journal fsync", "always, interval or never", Configuration.Fsync.init(rawValue:))
        if let retention = fields["retention"] {
            let bounds = members(retention, .journalRetention)
            settings.maxBytes = value(bounds["max_bytes"], "retention max_bytes", "a size such as 10GiB", ConfigValue.size)
            settings.maxAge = value(bounds["max_age"], "retention max_age", "a duration such as 7d", ConfigValue.duration)
        }
        return settings
    }

    private mutating func readNATS(_ node: Node) -> Configuration.NATSSettings? {
        let fields = members(node, .nats)
        if fields["url"] == nil { problem(node, "nats needs a 'url', such as nats://127.0.0.1:4222") }
        let url = value(fields["url"], "nats url", "one or more URLs such as nats://127.0.0.1:4222, separated by commas") { text in
            text.split(separator: ",").allSatisfy { entry in
                let entry = entry.trimmingCharacters(in: .whitespaces)
                return ["nats://", "tls://"].contains { entry.hasPrefix($0) && entry.count > $0.count }
            } ? text : nil
        }
        var settings = Configuration.NATSSettings(url: url ?? "")  // checked through, for every problem; kept only when valid
        settings.export = patterns(fields["export"], "nats export")
        settings.import = patterns(fields["import"], "nats import")
        if let jetStream = fields["jetstream"] { settings.jetStream = readJetStream(jetStream, coreExport: settings.export, coreImport: settings.import) }
        if settings.export.isEmpty && settings.import.isEmpty && fields["jetstream"] == nil {
            problem(node, "nats needs subjects to 'export', to 'import', or both, or a 'jetstream' section")
        }
        settings.queueGroup = value(fields["queue_group"], "nats queue_group", "a name without spaces") { name in
            !name.isEmpty && !name.contains(where: \.isWhitespace) ? name : nil
        }
        if settings.queueGroup != nil && settings.import.isEmpty {
            problem(fields["queue_group"], "nats queue_group shares imports: it needs an 'import' list")
        }
        let whole = { (text: String) in Int(text).flatMap { $0 >= 1 ? $0 : nil } }
        settings.exportQueue = value(fields["export_queue"], "nats export_queue", "a whole number of at least 1", whole)
        for (key, path) in [("flush_interval", \Configuration.NATSSettings.flushInterval), ("connect_timeout", \.connectTimeout),
                            ("reconnect_wait", \.reconnectWait), ("reconnect_wait_max", \.reconnectWaitMax)] {
            if let duration = value(fields[key], "nats \(key)", "a duration such as 250ms or 2s", ConfigValue.duration) {
                if duration <= .zero { problem(fields[key], "nats \(key) must be more than 0") } else { settings[keyPath: path] = duration }
            }
        }
        settings.maxReconnects = value(fields["max_reconnects"], "nats max_reconnects", "a whole number (leave it out to retry forever)") {
            Int($0).flatMap { $0 >= 0 ? $0 : nil }
        }
        settings.user = value(fields["user"], "nats user", "a name") { $0 }
        settings.password = value(fields["password"], "nats password", "a password") { $0 }
        if settings.password != nil && settings.user == nil { problem(fields["password"], "nats password needs a 'user'") }
        settings.token = value(fields["token"], "nats token", "a token") { $0 }
        settings.credentials = existingFile(fields["credentials"], "nats credentials")
        if let tlsNode = fields["tls"] {
            let tlsFields = members(tlsNode, .natsTLS)
            var tls = Configuration.NATSSettings.TLS()
            tls.ca = existingFile(tlsFields["ca"], "nats tls ca")
            tls.cert = existingFile(tlsFields["cert"], "nats tls cert")
            tls.key = existingFile(tlsFields["key"], "nats tls key")
            if (tlsFields["cert"] == nil) != (tlsFields["key"] == nil) {
                problem(tlsNode, "nats tls needs both 'cert' and 'key', or neither")
            }
            tls.hostname = value(tlsFields["hostname"], "nats tls hostname", "a host name") { $0 }
            tls.insecureSkipVerify = value(tlsFields["insecure_skip_verify"], "nats tls insecure_skip_verify", "true or false") { Bool($0) } ?? false
            settings.tls = tls
        }
        return url == nil ? nil : settings
    }

    /// A list of topic patterns, each validated.
    mutating func patterns(_ node: Node?, _ what: String) -> [String] {
        let patterns = strings(node, what)
        for (index, pattern) in patterns.enumerated() {
            do { try Topic.validatePattern(pattern) } catch { problem(node?.sequence?[index], "\(what): \(error)") }
        }
        return patterns
    }

    /// A path to a file that must exist, resolved against the configuration's folder.
    mutating func existingFile(_ node: Node?, _ what: String) -> String? {
        guard let node, let text = string(node, what) else { return nil }
        let path = resolve(text)
        guard FileManager.default.fileExists(atPath: path) else {
            problem(node, "\(what) file '\(text)' not found (looked for \(path))")
            return nil
        }
        return path
    }

    /// A path from the file, relative to the file's folder unless absolute.
    func resolve(_ path: String) -> String {
        ((path.hasPrefix("/") ? path : (folder as NSString).appendingPathComponent(path)) as NSString).standardizingPath
    }

    mutating func readSubscriber(_ entry: Node, names: inout [String: Int]) -> Configuration.Subscriber? {
        // The name first, so that every problem of the entry can name its subscriber.
        subscriber = entry.mapping?.first(where: { $0.key.scalar?.string == "name" })?.value.scalar?.string
        let before = problems.count
        let fields = members(entry, .subscriber)
        guard let nameNode = fields["name"], let name = string(nameNode, "name") else {
            problem(entry, "a subscriber needs a 'name'")
            return nil
        }
        if !Self.isName(name) {
            problem(nameNode, "name '\(name)' may hold only letters, digits, - and _")
        }
        if let line = names[name] {
            problem(nameNode, "duplicate name '\(name)' (first at line \(line))")
        } else {
            names[name] = nameNode.mark?.line ?? 0
        }
        var configuration = Configuration.Subscriber(name: name, plugin: "")
        let handlers = ["plugin", "http", "file"].filter { fields[$0] != nil }
        if handlers.isEmpty {
            problem(entry, "a subscriber needs one of 'plugin' (a Lua file), 'http' or 'file' (a sink)")
        } else if handlers.count > 1 {
            problem(entry, "a subscriber has one of 'plugin', 'http' or 'file', not \(handlers.joined(separator: " and "))")
        }
        if let pluginNode = fields["plugin"], let plugin = string(pluginNode, "plugin") {
            configuration.plugin = resolve(plugin)
            if !FileManager.default.fileExists(atPath: configuration.plugin) {
                problem(pluginNode, "plugin file '\(plugin)' not found (looked for \(configuration.plugin))")
            }
        }
        if let node = fields["http"] { configuration.sink = readHTTPSink(node).map(Configuration.Sink.http) }
        if let node = fields["file"] { configuration.sink = readFileSink(node).map(Configuration.Sink.file) }
        if fields["plugin"] == nil, handlers.count == 1 {
            for key in ["timeout", "memory", "settings", "allow"] {
                guard let node = fields[key] else { continue }
                problem(node, key == "timeout" && fields["http"] != nil
                    ? "an http sink's timeout goes in its http section: http: { timeout: 5s }"
                    : "'\(key)' is for plugins: a sink runs no Lua")
            }
        }
        configuration.topics = patterns(fields["topics"], "topics")
        configuration.producer = fields["topics"]?.sequence?.isEmpty == true
        if let queue = fields["queue"] {
            let queueFields = members(queue, .queue)
            configuration.capacity = value(
                queueFields["capacity"], "queue capacity", "a whole number of at least 1", { Int($0).flatMap { $0 >= 1 ? $0 : nil } })
            configuration.overflow = value(
                queueFields["overflow"], "queue overflow", "drop_newest, drop_oldest, block or spill", ConfigValue.overflow)
            if configuration.overflow == .spill { spillers.append(queueFields["overflow"]!) }
        }
        configuration.workers = value(
            fields["workers"], "workers", "a whole number from 1 to \(Configuration.Subscriber.maxWorkers)",
            { Int($0).flatMap { (1...Configuration.Subscriber.maxWorkers).contains($0) ? $0 : nil } })
        if let workers = configuration.workers, workers > 1 {
            if let capacity = configuration.capacity, capacity < workers {
                problem(fields["workers"], "queue capacity \(capacity) is less than workers \(workers): each worker's queue holds capacity / workers events, so give at least \(workers)")
            }
            if configuration.overflow == .spill {
                problem(fields["workers"], "queue overflow 'spill' takes a single worker for now: remove workers, or pick another overflow")
            }
            if case .file? = configuration.sink {
                problem(fields["workers"], "a file sink writes one file in order: workers is for plugins and http sinks")
            }
        }
        configuration.key = value(fields["key"], "key", "topic, data.<path> or headers.<name>", EventKey.init)
        if configuration.overflow == .spill, case .http(let http)? = configuration.sink, http.maxEvents > 1 {
            problem(fields["http"], "an http sink with overflow 'spill' sends one event per request: leave batch.max_events at 1")
        }
        if fields["timeout"]?.scalar?.string == "none" {
            configuration.timeout = .zero  // no time limit, spelled out
        } else {
            configuration.timeout = value(fields["timeout"], "timeout", "a duration such as 250ms, 1.5s or 2m, or none", ConfigValue.duration)
            if configuration.timeout == .zero {
                problem(fields["timeout"], "timeout 0s would mean no time limit at all; write timeout: none if that is what you want")
            }
        }
        configuration.memory = value(fields["memory"], "memory", "a size such as 512KiB, 64MiB or 1GiB", ConfigValue.size)
        if let settings = fields["settings"] { configuration.settings = json(settings) }
        if let policy = fields["on_failure"] { configuration.onFailure = failurePolicy(policy) }
        for (index, library) in strings(fields["allow"], "allow").enumerated() {
            guard Configuration.Subscriber.libraries.contains(library) else {
                let names = Configuration.Subscriber.libraries.joined(separator: ", ")
                problem(fields["allow"]?.sequence?[index], "allow: unknown library '\(library)' (known: \(names))")
                continue
            }
            configuration.allow.insert(library)
        }
        return problems.count == before ? configuration : nil
    }

    private mutating func failurePolicy(_ node: Node) -> FailurePolicy {
        let fields = members(node, .onFailure)
        var policy = FailurePolicy()
        if let retries = value(fields["retries"], "on_failure retries", "a whole number", { Int($0).flatMap { $0 >= 0 ? $0 : nil } }) {
            policy.retries = retries
        }
        if let backoff = value(fields["backoff"], "on_failure backoff", "a duration such as 100ms", ConfigValue.duration) {
            policy.backoff = backoff
        }
        if let longest = value(fields["max_backoff"], "on_failure max_backoff", "a duration such as 30s", ConfigValue.duration) {
            if longest <= .zero { problem(fields["max_backoff"], "on_failure max_backoff must be more than 0") } else { policy.maxBackoff = longest }
        }
        if let deadLetter = value(fields["dead_letter"], "on_failure dead_letter", "true or false", { Bool($0) }) {
            policy.deadLetter = deadLetter
        }
        if let restartAfter = value(fields["restart_after"], "on_failure restart_after", "a whole number of at least 1", { Int($0).flatMap { $0 >= 1 ? $0 : nil } }) {
            policy.restartAfter = restartAfter
        }
        return policy
    }

    /// A YAML value as JSON: mappings (string keys) as objects in order, sequences as arrays,
    /// scalars by their resolved type, strings after `${NAME}` substitution; `what` names it in problems.
    mutating func json(_ node: Node, _ what: String = "settings") -> JSON {
        switch node {
        case let .mapping(mapping):
            var object: [(String, JSON)] = []
            for (key, value) in mapping {
                guard let name = key.scalar?.string else {
                    problem(key, "\(what): keys must be strings")
                    continue
                }
                object.append((name, json(value, what)))
            }
            return .object(.init(object, uniquingKeysWith: { _, last in last }))
        case let .sequence(sequence):
            return .array(sequence.map { json($0, what) })
        case .scalar:
            if node.null != nil { return .null }
            if let flag = node.bool { return .bool(flag) }
            if let integer = node.int { return .int(Int64(integer)) }
            if let number = node.float {
                guard number.isFinite else {
                    problem(node, "\(what): \(node.scalar?.string ?? "") is not a number JSON can hold")
                    return .null
                }
                return .double(number)
            }
            return string(node, what).map(JSON.string) ?? .null
        case .alias:
            problem(node, "\(what): aliases are not supported")
            return .null
        }
    }
}
