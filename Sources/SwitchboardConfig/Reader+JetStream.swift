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
            !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_".unicodeScalars.contains($0)) }
                ? name : nil
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
        if jetStream.export.isEmpty { problem(node, "nats jetstream needs subjects to 'export', such as export: [\"order.>\"]") }
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
}
