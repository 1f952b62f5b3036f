import Foundation
import SwitchboardTopics
import Yams

// The `jetstream` part of the `nats` section.

extension Reader {
    mutating func readJetStream(_ node: Node, coreExport: [String], coreImport: [String]) -> Configuration.NATSSettings.JetStream? {
        let fields = members(node, .natsJetStream)
        guard let streamNode = fields["stream"] else {
            problem(node, "nats jetstream needs a 'stream', such as stream: { name: ORDERS, subjects: [\"order.>\"], create: true }")
            return nil
        }
        let before = problems.count
        let streamFields = members(streamNode, .natsStream)
        let name = value(streamFields["name"], "nats jetstream stream name", "a stream name of letters, digits, - and _") { name in
            Self.isName(name) ? name : nil
        }
        if streamFields["name"] == nil { problem(streamNode, "nats jetstream stream needs a 'name', such as ORDERS") }
        var stream = Configuration.NATSSettings.JetStream.Stream(name: name ?? "")
        stream.subjects = patterns(streamFields["subjects"], "nats jetstream stream subjects")
        stream.storage = value(
            streamFields["storage"], "nats jetstream stream storage", "file or memory", Configuration.NATSSettings.JetStream.Storage.init(rawValue:))
        stream.maxAge = value(streamFields["max_age"], "nats jetstream stream max_age", "a duration such as 7d", ConfigValue.duration)
        stream.duplicateWindow = value(
            streamFields["duplicate_window"], "nats jetstream stream duplicate_window", "a duration such as 2m", ConfigValue.duration)
        for (key, duration) in [("max_age", stream.maxAge), ("duplicate_window", stream.duplicateWindow)] where duration == .zero {
            problem(streamFields[key], "nats jetstream stream \(key) must be more than 0")
        }
        stream.create = value(streamFields["create"], "nats jetstream stream create", "true or false") { Bool($0) } ?? false
        if stream.create, stream.subjects.isEmpty {
            problem(streamNode, "nats jetstream stream with create: true needs 'subjects', the subjects it stores")
        }
        var jetStream = Configuration.NATSSettings.JetStream(stream: stream)
        jetStream.export = patterns(fields["export"], "nats jetstream export")
        if let node = fields["import"] { jetStream.import = readJetStreamImport(node, stream: stream, coreExport: coreExport) }
        if jetStream.export.isEmpty && fields["import"] == nil {
            problem(node, "nats jetstream needs subjects to 'export', an 'import', or both, such as export: [\"order.>\"]")
        }
        for (index, pattern) in jetStream.export.enumerated() {
            let at = fields["export"]?.sequence?[index]
            if !stream.subjects.isEmpty, !stream.subjects.contains(where: { Topic.pattern($0, covers: pattern) }) {
                problem(at, "nats jetstream export '\(pattern)' is not within the stream's subjects (\(stream.subjects.joined(separator: ", "))): the server would store none of it")
            }
            if let core = coreExport.first(where: { Topic.overlap($0, pattern) }) {
                problem(at, "nats jetstream export '\(pattern)' overlaps nats export '\(core)': the stream would store those events twice; export them through one of the two")
            }
            if let core = coreImport.first(where: { Topic.overlap($0, pattern) }) {
                problem(at, "nats jetstream export '\(pattern)' overlaps nats import '\(core)': what one instance stores, another would import and store again, without end")
            }
        }
        return problems.count == before ? jetStream : nil
    }

    private mutating func readJetStreamImport(
        _ node: Node, stream: Configuration.NATSSettings.JetStream.Stream, coreExport: [String]
    ) -> Configuration.NATSSettings.JetStream.Import? {
        let fields = members(node, .natsImport)
        let before = problems.count
        let durable = value(fields["durable"], "nats jetstream import durable", "a consumer name of letters, digits, - and _") { name in
            Self.isName(name) ? name : nil
        }
        if fields["durable"] == nil { problem(node, "nats jetstream import needs a 'durable' name, which every instance sharing the work gives") }
        var settings = Configuration.NATSSettings.JetStream.Import(durable: durable ?? "")
        if let filterNode = fields["filter"], let filter = string(filterNode, "nats jetstream import filter") {
            do { try Topic.validatePattern(filter) } catch { problem(filterNode, "nats jetstream import filter: \(error)") }
            settings.filter = filter
        }
        if let filter = settings.filter, !stream.subjects.isEmpty, !stream.subjects.contains(where: { Topic.pattern($0, covers: filter) }) {
            problem(fields["filter"], "nats jetstream import filter '\(filter)' is not within the stream's subjects (\(stream.subjects.joined(separator: ", ")))")
        }
        for taken in settings.filter.map({ [$0] }) ?? stream.subjects {
            if let core = coreExport.first(where: { Topic.overlap($0, taken) }) {
                problem(fields["filter"] ?? node, "nats jetstream import of '\(taken)' overlaps nats export '\(core)': imported messages would be exported into the stream again, without end")
            }
        }
        settings.ackWait = value(fields["ack_wait"], "nats jetstream import ack_wait", "a duration such as 30s", ConfigValue.duration)
        if settings.ackWait.map({ $0 < .seconds(1) }) == true { problem(fields["ack_wait"], "nats jetstream import ack_wait must be at least 1s") }
        let whole = { (text: String) in Int(text).flatMap { $0 >= 1 ? $0 : nil } }
        settings.maxDeliver = value(fields["max_deliver"], "nats jetstream import max_deliver", "a whole number of at least 1", whole)
        settings.maxAckPending = value(fields["max_ack_pending"], "nats jetstream import max_ack_pending", "a whole number of at least 1", whole)
        if let list = fields["backoff"] {
            let texts = strings(list, "nats jetstream import backoff")
            let delays = texts.compactMap(ConfigValue.duration)
            if delays.count != texts.count || delays.isEmpty {
                problem(list, "nats jetstream import backoff must be a list of durations, such as [1s, 5s, 30s]")
            } else {
                settings.backoff = delays
            }
        }
        return problems.count == before ? settings : nil
    }
}
