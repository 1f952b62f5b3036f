import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// The journal through the binary: crashes, `switchboard journal` and `switchboard replay`.
@Suite struct JournalCommandTests {
    static func files(fsync: String) -> [String: String] {
        [
            "show.lua": "return { handle = function(e) print(e.topic .. ' ' .. switchboard.json.encode(e.data)) end }",
            "echo.lua": "return { handle = function(e) switchboard.publish('echo.' .. e.data.n, e.data) end }",
            "c.yaml": """
                journal: { path: data/journal, fsync: \(fsync) }
                subscribers:
                  - { name: show, plugin: show.lua, topics: ["order.*"] }
                  - { name: echo, plugin: echo.lua, topics: ["order.created"] }
                  - { name: echoes, plugin: show.lua, topics: ["echo.>"] }
                """,
        ]
    }

    /// The journal's JSON lines, parsed.
    static func journal(_ folder: PluginFolder, _ flags: String...) async throws -> [JSON] {
        let result = try await switchboard(["journal", "--config", folder.path("c.yaml")] + flags, input: Data())
        #expect(result.status == 0, "\(result.errors)")
        return try result.output.split(separator: "\n").map { try JSON(parsing: String($0)) }
    }

    @Test(.exclusive) func aKilledRunLeavesAGapFreeJournalThatTheNextRunContinues() async throws {
        let folder = try PluginFolder(files: Self.files(fsync: "always"))
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml")], in: folder)
        let feeding = run.feed(count: 100_000, chunk: 50) { n in #"{"topic": "order.created", "data": {"n": \#(n)}}"# }
        #expect(await eventually { run.output.split(separator: "\n").count > 300 })
        run.signal(SIGKILL)
        _ = await run.exitStatus(within: 10)
        await feeding.value
        let before = try await Self.journal(folder)
        #expect(before.count > 300)
        // Each input event, then its echo: numbered 1, 2, 3, ... with no gap and no repeat.
        #expect(before.map { $0["seq"]?.intValue } == (1...before.count).map { Int64($0) })
        #expect(Set(before.compactMap { $0["id"]?.stringValue }).count == before.count)
        let inputs = before.filter { $0["topic"] == "order.created" }.compactMap { $0["data"]?["n"]?.intValue }
        #expect(inputs == (0..<Int64(inputs.count)).map { $0 })  // the input order

        let again = try await switchboard("run", "--config", folder.path("c.yaml"), input: #"{"topic": "order.paid", "data": {"n": -1}}"#)
        #expect(again.status == 0, "\(again.errors)")
        let after = try await Self.journal(folder)
        #expect(after.count == before.count + 1)
        #expect(after.last?["seq"] == .int(Int64(before.count + 1)) && after.last?["topic"] == "order.paid")
    }

    @Test func journalFiltersAndReplayFeedsThePluginEveryMatchingEvent() async throws {
        let folder = try PluginFolder(files: Self.files(fsync: "interval"))
        let input = (0..<20).map { n in
            n % 4 == 3 ? #"{"topic": "other.thing", "data": {"n": \#(n)}}"# : #"{"topic": "order.created", "data": {"n": \#(n)}, "headers": {"trace": "t\#(n)"}}"#
        }.joined(separator: "\n")
        let first = try await switchboard("run", "--config", folder.path("c.yaml"), input: input)
        #expect(first.status == 0, "\(first.errors)")

        let all = try await Self.journal(folder)
        #expect(all.count == 35)  // 20 inputs and 15 echoes
        if case let .object(members)? = all.first { #expect(Array(members.keys) == ["seq", "id", "time", "topic", "data", "headers"]) }
        #expect(all.first?["headers"] == ["trace": "t0"])
        let others = try await Self.journal(folder, "--topic", "other.*")
        #expect(others.compactMap { $0["data"]?["n"]?.intValue } == [3, 7, 11, 15, 19])
        let window = try await Self.journal(folder, "--from", "5", "--to", "7")
        #expect(window.compactMap { $0["seq"]?.intValue } == [5, 6, 7])
        let time = try #require(all[9]["time"]?.doubleValue)
        let stamp = ISO8601DateFormatter.string(
            from: Date(timeIntervalSince1970: time.rounded(.down)), timeZone: .init(identifier: "UTC")!, formatOptions: [.withInternetDateTime])
        let since = all.filter { ($0["time"]?.doubleValue ?? 0) >= time.rounded(.down) }.count
        #expect(try await Self.journal(folder, "--from", stamp).count == since)
        #expect(try await switchboard("journal", "--config", folder.path("c.yaml"), "--from", "yesterday").status == 2)

        // The echo plugin again, fresh, over its 15 order.created events: its publishes are discarded...
        let replay = try await switchboard("replay", "--config", folder.path("c.yaml"), "--subscriber", "echo")
        #expect(replay.status == 0, "\(replay.errors)")
        #expect(replay.errors.contains("replayed 15 events to echo: handled 15, failed 0; it published 15 (discarded)"))
        #expect(replay.output.isEmpty)
        // ...or routed to the other subscribers, with --publish.
        let routed = try await switchboard("replay", "--config", folder.path("c.yaml"), "--subscriber", "echo", "--publish")
        #expect(routed.errors.contains("it published 15 (routed to the other subscribers)"))
        let echoes = routed.output.split(separator: "\n").filter { $0.hasPrefix("echo.") }
        #expect(echoes.count == 15)
        // A subscriber that shows what it gets sees exactly the journaled events its topics match, in order.
        let shown = try await switchboard("replay", "--config", folder.path("c.yaml"), "--subscriber", "show", "--to", "20")
        let journaled: [String] = all.prefix(20).filter { $0["topic"]?.stringValue?.hasPrefix("order.") == true }
            .map { record in "order.created " + record["data"]!.serialized(sortedKeys: true) }
        #expect(shown.output.split(separator: "\n").map(String.init) == journaled)
        #expect(try await switchboard("replay", "--config", folder.path("c.yaml"), "--subscriber", "nobody").status == 2)
    }

    @Test(.exclusive) func aSpillingSubscriberHandlesEverythingAcrossAKill() async throws {
        let folder = try PluginFolder(files: [
            "slow.lua": """
                return { handle = function(e)
                  local t = switchboard.now() + 0.005; while switchboard.now() < t do end
                  print(e.data.n)
                end }
                """,
            "c.yaml": """
                journal: { path: data/journal, fsync: always }
                subscribers:
                  - { name: slow, plugin: slow.lua, topics: ["work"], queue: { capacity: 10, overflow: spill } }
                """,
        ])
        let run = try await LiveRun(["run", "--config", folder.path("c.yaml")], in: folder)
        let start = Date()
        run.send((0..<300).map { #"{"topic": "work", "data": {"n": \#($0)}}"# })
        #expect(await eventually { run.output.split(separator: "\n").count >= 50 })
        let accepted = try await Self.journal(folder).count  // the feed went in at once: nothing waited
        #expect(accepted == 300, "\(accepted) of 300 accepted after \(Date().timeIntervalSince(start)) s")
        run.signal(SIGKILL)
        _ = await run.exitStatus(within: 10)
        let first = run.output.split(separator: "\n").compactMap { Int($0) }

        let again = try await switchboard("run", "--config", folder.path("c.yaml"), "--input", "none", "--duration", "4s")
        #expect(again.status == 0, "\(again.errors)")
        let second = again.output.split(separator: "\n").compactMap { Int($0) }
        // At least once: every event, in order within each run; the second picks up where the first
        // saved its position (at most 100 ms before the kill), so a few may come twice.
        #expect(first == Array(0..<first.count))
        let resumedAt = try #require(second.first)
        #expect(resumedAt <= first.count && first.count - resumedAt <= 40, "resumed at \(resumedAt) after \(first.count)")
        #expect(second == Array(resumedAt..<300))
        #expect(again.errors.contains(#/slow\s+\d+\s+\d+\s+0\s+0\s+0\s+0\s+0\s+0\n/#))
    }
}
