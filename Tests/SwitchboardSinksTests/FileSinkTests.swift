import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// `file:` sinks through the runtime.
@Suite struct FileSinkTests {
    private static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func eventLinesAreWhatTheJournalPrintsAndDataLinesThePayload() async throws {
        let folder = try PluginFolder()
        let report = try await run("""
            subscribers:
              - { name: whole, topics: [">"], file: { path: out/whole.jsonl, fsync: always } }
              - { name: payloads, topics: [">"], file: { path: out/data.jsonl, format: data, fsync: never } }
            """, input: #"{"topic": "order.1", "data": {"sku": "a\"b", "n": [1, 2.5]}, "headers": {"k": "v"}}"# + "\n", in: folder)
        #expect(report.stats["whole"]?.handled == 1 && report.stats["payloads"]?.handled == 1)
        let whole = Self.lines(folder.path("out/whole.jsonl"))
        #expect(whole.count == 1)
        let event = try JSON(parsing: whole[0])
        #expect(event["topic"] == "order.1" && event["headers"] == ["k": "v"])
        #expect(event["data"] == ["sku": "a\"b", "n": [1, 2.5]])
        #expect(event["id"]?.stringValue?.isEmpty == false && event["time"]?.doubleValue != nil)
        #expect(whole[0].hasPrefix(#"{"id":""#), "the keys in the journal's order")
        #expect(Self.lines(folder.path("out/data.jsonl")) == [#"{"sku":"a\"b","n":[1,2.5]}"#])
    }

    @Test func itRotatesBySizeAndKeepsTheNewestFiles() async throws {
        let folder = try PluginFolder()
        // Each line is 11 or 12 bytes ({"n":NNN}\n with the payload only): about 90 a file.
        let report = try await run("""
            subscribers:
              - name: archive
                topics: [">"]
                file: { path: orders.jsonl, format: data, rotate: { max_bytes: 1KiB, keep: 2 } }
                queue: { capacity: 1000, overflow: block }
            """, input: eventLines(400), in: folder)
        #expect(report.stats["archive"]?.handled == 400)
        let path = folder.path("orders.jsonl")
        #expect(!FileManager.default.fileExists(atPath: path + ".3"), "only two rotated files are kept")
        var kept: [Int] = []
        for file in [path + ".2", path + ".1", path] {
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            #expect(size > 0 && size <= 1024, "\(file): \(size) bytes")
            kept += Self.lines(file).flatMap { numbers(in: Array($0.utf8)) }
        }
        #expect(kept == Array((400 - kept.count)..<400), "the newest events, in order, none missing")
        #expect(kept.count > 150)
    }

    @Test func aReloadReopensTheFileThatLogrotateMovedAway() async throws {
        let folder = try PluginFolder(files: [
            "c.yaml": """
                subscribers:
                  - { name: archive, topics: [">"], file: { path: orders.jsonl, format: data } }
                """,
        ])
        let runtime = Runtime(configuration: try Configuration.load(path: folder.path("c.yaml")))
        let run = Task { try await runtime.run() }
        #expect(await eventually { runtime.router.subscriber(named: "archive") != nil })
        let path = folder.path("orders.jsonl")
        try runtime.router.publish("a", data: ["n": 1])
        #expect(await eventually { Self.lines(path).count == 1 })
        try FileManager.default.moveItem(atPath: path, toPath: path + ".old")
        var summary: Deployment.ReloadSummary?
        #expect(await eventually { () async in
            summary = try? await runtime.reload()  // refused until the run has started
            return summary != nil
        })
        #expect(summary?.kept == ["archive"])
        try runtime.router.publish("a", data: ["n": 2])
        #expect(await eventually { Self.lines(path).count == 1 })
        await runtime.shutDown()
        _ = try await run.value
        #expect(Self.lines(path + ".old") == [#"{"n":1}"#] && Self.lines(path) == [#"{"n":2}"#])
    }
}
