import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// The input feeder, in process: what it publishes, what it rejects and with which line numbers.
@Suite struct FeederTests {
    /// Feeds `text` through a pipe to a fresh router whose one subscriber, `all`, takes `>`,
    /// and returns the rejections and the events that subscriber saw (topic and payload).
    static func feed(
        _ text: String, format: Feeder.Format = .json, strict: Bool = false
    ) async throws -> (rejected: [Feeder.Rejection], events: [String], feeder: Feeder) {
        let router = Router()
        let seen = Recorder<String>()
        try router.subscribe(">", name: "all") { event in seen.append("\(event.topic) \(event.data.serialized())") }
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (reading, writing) = (ends[0], ends[1])
        let writer = Thread {
            _ = Array(text.utf8).withUnsafeBytes { write(writing, $0.baseAddress, $0.count) }
            close(writing)
        }
        writer.start()
        let rejections = Recorder<Feeder.Rejection>()
        let feeder = Feeder(router: router, descriptor: reading, format: format, strict: strict) { rejections.append($0) }
        await feeder.run()  // not in a service group: it reads to the end of the input
        close(reading)
        await router.shutdown()
        return (rejections.all, seen.all, feeder)
    }

    @Test func badLinesAreRejectedWithTheirNumbersAndTheRestPublished() async throws {
        let lines = [
            #"{"topic": "a", "data": 1}"#,
            #"{"topic": "a", "data": "#,  // 2: truncated
            "",  // 3: blank, skipped silently
            #"[1, 2]"#,  // 4
            #"{"data": 3}"#,  // 5
            #"{"topic": 7}"#,  // 6
            #"{"topic": "a..b"}"#,  // 7: not a topic
            #"{"topic": "b", "data": {"x": [true, null]}, "headers": {"k": "v"}}"# + "\r",  // 8: CRLF
            #"{"topic": "c", "headers": {"k": 1}}"#,  // 9
            #"{"topic": "d"}"#,  // 10, without a final newline
        ]
        let (rejected, events, feeder) = try await Self.feed(lines.joined(separator: "\n"))
        #expect(rejected.map(\.line) == [2, 4, 5, 6, 7, 9])
        #expect(rejected.first { $0.line == 4 }?.reason == "not a JSON object")
        #expect(rejected.first { $0.line == 5 }?.reason == "missing topic")
        #expect(rejected.first { $0.line == 6 }?.reason == "the topic must be a string")
        #expect(rejected.first { $0.line == 9 }?.reason == "headers must be an object of strings")
        #expect(events == [#"a 1"#, #"b {"x":[true,null]}"#, "d null"])
        #expect(feeder.rejected == 6 && !feeder.stoppedAtBadLine)
    }

    @Test func strictStopsAtTheFirstBadLine() async throws {
        let (rejected, events, feeder) = try await Self.feed(
            [#"{"topic": "a"}"#, "nonsense", #"{"topic": "b"}"#].joined(separator: "\n"), strict: true)
        #expect(rejected.map(\.line) == [2])
        #expect(events == ["a null"])
        #expect(feeder.stoppedAtBadLine)
    }

    @Test func topicAndPayloadLines() async throws {
        let lines = ["user.created {\"email\": \"ann@example.com\"}", "  tick  ", "note hello world", "n 42", "bad..topic 1"]
        let (rejected, events, _) = try await Self.feed(lines.joined(separator: "\n"), format: .line)
        #expect(events == [#"user.created {"email":"ann@example.com"}"#, "tick null", #"note "hello world""#, "n 42"])
        #expect(rejected.map(\.line) == [5])
    }

    @Test func aLineLongerThanTheMaximumIsRejectedOnceAndNumberingGoesOn() async throws {
        let long = #"{"topic": "a", "data": ""# + String(repeating: "x", count: Feeder.maximumLine * 2) + #""}"#
        let (rejected, events, _) = try await Self.feed([#"{"topic": "a"}"#, long, #"{"topic": "b"}"#, "oops"].joined(separator: "\n"))
        #expect(rejected.map(\.line) == [2, 4])
        #expect(rejected.first?.reason == "longer than \(Feeder.maximumLine) bytes")
        #expect(events == ["a null", "b null"])
    }
}
