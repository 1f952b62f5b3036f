import Foundation
import Switchboard
import SwitchboardTestSupport

/// `count` input lines on `topic`, each with data `{"n": i}`.
func eventLines(_ count: Int, topic: String = "mail.send") -> String {
    (0..<count).map { #"{"topic": "\#(topic)", "data": {"n": \#($0)}}"# }.joined(separator: "\n") + "\n"
}

/// Runs the configuration `yaml` (in `folder`) over `input` to its end, and returns the report.
func run(_ yaml: String, input: String, in folder: PluginFolder) async throws -> RunReport {
    try folder.write("c.yaml", yaml)
    try folder.write("in.jsonl", input)
    var options = Runtime.Options()
    options.input = .file(folder.path("in.jsonl"))
    return try await Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")), options: options).run()
}

/// The `n` of each payload in a request body: one object, or an array of them.
func numbers(in body: [UInt8]) -> [Int] {
    guard let value = try? JSON(parsing: String(decoding: body, as: UTF8.self)) else { return [] }
    let items: [JSON] = if case .array(let items) = value { items } else { [value] }
    return items.compactMap { item in
        let payload = item["data"] ?? item  // body: event wraps it
        guard case .int(let n)? = payload["n"] else { return nil }
        return Int(n)
    }
}
