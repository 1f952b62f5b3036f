import SwitchboardConfig
import SwitchboardJournal
import SwitchboardLua
import SwitchboardNATS
import SwitchboardSinks
import SwitchboardCore

// What each part is built from: a section of the file over the part's own defaults.

extension Configuration.Subscriber {
    /// The Lua subscriber this entry describes; what the file leaves out keeps its default.
    public var lua: LuaSubscriberConfiguration {
        var lua = LuaSubscriberConfiguration(name: name, script: plugin, topics: topics, onFailure: onFailure, settings: settings)
        lua.producer = producer
        if let capacity { lua.capacity = capacity }
        if let overflow { lua.overflow = overflow }
        if let timeout { lua.timeout = timeout }
        if let memory { lua.memory = memory }
        lua.allow = Set(allow.compactMap(LuaLibrary.init(rawValue:)))  // the reader admits only these names
        lua.workers = workerCount
        lua.key = key
        return lua
    }
}

extension Configuration.Subscriber {
    /// How many workers the entry asks for: `workers`, or 1.
    var workerCount: Int { workers ?? 1 }

    /// The queue the entry asks for, over the defaults every subscriber shares (a plugin's and a sink's alike).
    var queue: (capacity: Int, overflow: OverflowPolicy) {
        let lua = self.lua
        return (lua.capacity, lua.overflow)
    }

    /// How long one call of its handler may take, past which `/healthz` counts it as stuck:
    /// a plugin's `timeout`, an http sink's; nil for a file sink.
    var callBudget: Duration? {
        switch sink {
        case nil: lua.timeout
        case .http(let http)?: http.timeout
        case .file?: nil
        }
    }
}

extension Configuration.Sink {
    /// A new handler for this sink, and for a file sink the way to make it reopen its file.
    func makeHandler(name: String) throws -> (any EventHandler, FileSink.Reopening?) {
        switch self {
        case .http(let settings):
            return (HTTPSink(settings: settings, name: name), nil)
        case .file(let settings):
            let reopening = FileSink.Reopening()
            return (try FileSink(settings: settings, reopening: reopening), reopening)
        }
    }
}

extension Configuration.JournalSettings {
    /// Opens the journal this section describes.
    func open() throws -> Journal {
        let retention = Journal.Retention(maxBytes: maxBytes, maxAge: maxAge)
        guard let fsync else { return try Journal(folder: path, retention: retention) }
        return try Journal(folder: path, fsync: Journal.FsyncMode(rawValue: fsync.rawValue)!, retention: retention)
    }
}

extension Configuration.NATSSettings {
    /// The bridge's settings; what the file leaves out keeps its default.
    public var bridge: NATSSettings {
        var bridge = NATSSettings(url: url)
        bridge.export = export
        bridge.import = self.import
        bridge.queueGroup = queueGroup
        if let exportQueue { bridge.exportCapacity = exportQueue }
        if let flushInterval { bridge.flushInterval = flushInterval }
        if let connectTimeout { bridge.connectTimeout = connectTimeout }
        if let reconnectWait { bridge.reconnectWait = reconnectWait }
        if let reconnectWaitMax { bridge.reconnectWaitMax = reconnectWaitMax }
        bridge.maxReconnects = maxReconnects
        (bridge.user, bridge.password, bridge.token, bridge.credentials) = (user, password, token, credentials)
        bridge.tls = tls.map { section in
            var tls = NATSSettings.TLS()
            (tls.ca, tls.certificate, tls.key, tls.hostname) = (section.ca, section.cert, section.key, section.hostname)
            tls.skipVerify = section.insecureSkipVerify
            return tls
        }
        bridge.jetStream = jetStream.map { section in
            var jetStream = JetStreamSettings(stream: section.stream.name)
            jetStream.subjects = section.stream.subjects
            if let storage = section.stream.storage { jetStream.storage = JetStreamSettings.Storage(rawValue: storage.rawValue)! }
            jetStream.maxAge = section.stream.maxAge
            if let window = section.stream.duplicateWindow { jetStream.duplicateWindow = window }
            jetStream.create = section.stream.create
            jetStream.export = section.export
            jetStream.import = section.import.map { section in
                var settings = JetStreamSettings.Import(durable: section.durable, filter: section.filter)
                if let ackWait = section.ackWait { settings.ackWait = ackWait }
                if let maxDeliver = section.maxDeliver { settings.maxDeliver = maxDeliver }
                if let maxAckPending = section.maxAckPending { settings.maxAckPending = maxAckPending }
                if let backoff = section.backoff { settings.backoff = backoff }
                return settings
            }
            return jetStream
        }
        return bridge
    }
}
