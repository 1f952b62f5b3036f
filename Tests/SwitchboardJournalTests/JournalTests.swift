import Foundation
import Synchronization
import Switchboard
import SwitchboardTestSupport
import Testing

@Suite(.exclusive) struct JournalTests {
    /// Every record of the journal in `folder`, and the corruption that ended the walk, if any.
    func records(in folder: String) -> ([JournalRecord], JournalReader.CorruptRecord?) {
        var iterator = JournalReader(folder: folder).makeIterator()
        var all: [JournalRecord] = []
        while let record = iterator.next() { all.append(record) }
        return (all, iterator.problem)
    }

    @Test(arguments: Journal.FsyncMode.allCases)
    func everyAcceptedEventIsJournaledInOrderBeforeSubscribersSeeIt(fsync: Journal.FsyncMode) async throws {
        let folder = try PluginFolder()
        let journal = try Journal(folder: folder.path("j"), fsync: fsync, segmentSize: 4096)
        let router = Router()
        journal.attach(to: router)
        let seen = Recorder<UInt64>()
        try router.subscribe("a.*") { _ in seen.append(journal.nextSequence) }
        for n in 0..<500 {
            try router.publish(n % 2 == 0 ? "a.b" : "c", data: ["n": .int(Int64(n)), "list": []], headers: n == 3 ? ["k": "v"] : [:])
        }
        await router.shutdown()
        journal.close()
        let (all, problem) = records(in: folder.path("j"))
        #expect(problem == nil)
        #expect(all.map(\.sequence) == (1...500).map { UInt64($0) })  // gap-free, in order, unmatched ones too
        #expect(all.map { try! $0.data.decoded()["n"]?.intValue } == (0..<500).map { Int64($0) })
        #expect(try all[0].data.decoded()["list"] == [])
        #expect(all[3].headers == ["k": "v"] && all[3].topic == "c")
        #expect(Set(all.map(\.id)).count == 500)
        #expect(JournalSegmentsCount(folder.path("j")) > 1)  // rolled over at 4 KiB
        #expect(seen.all.allSatisfy { $0 > 0 })
    }

    @Test func aTornOrCorruptTailIsCutOffAndNumberingGoesOn() async throws {
        let folder = try PluginFolder()
        let path = folder.path("j")
        var journal = try Journal(folder: path, fsync: .always)
        for n in 0..<10 { journal.record(Event(topic: "t", data: .int(Int64(n)), id: EventID(prefix: 1, sequence: UInt64(n)), time: 0)) }
        journal.close()
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: path).first { $0.hasSuffix(".journal") })
        let handle = try #require(FileHandle(forWritingAtPath: "\(path)/\(segment)"))
        handle.seekToEndOfFile()
        handle.write(Data([40, 0, 0, 0, 1, 2, 3]))  // a record that the crash cut short
        try handle.close()
        journal = try Journal(folder: path, fsync: .always)
        #expect(journal.nextSequence == 11)
        journal.record(Event(topic: "t", data: 10, id: EventID(prefix: 1, sequence: 10), time: 0))
        journal.close()
        var (all, problem) = records(in: path)
        #expect(problem == nil && all.map(\.sequence) == (1...11).map { UInt64($0) })

        // Flip a byte in the last record's body: its checksum no longer matches.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: "\(path)/\(segment)"))
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: "\(path)/\(segment)"))
        (all, problem) = records(in: path)
        #expect(problem?.reason == "a checksum mismatch" && all.count == 10)
        journal = try Journal(folder: path, fsync: .never)
        #expect(journal.nextSequence == 11)  // the bad record was cut off
        journal.close()
    }

    @Test func oneJournalAtATimeWritesAFolder() throws {
        let folder = try PluginFolder()
        let path = folder.path("j")
        #expect(JournalLock.holder(of: path) == nil)
        let journal = try Journal(folder: path, fsync: .never)
        #expect(JournalLock.holder(of: path) == getpid())
        // A second one refuses, in this process too, and looking does not let go of the lock.
        #expect(throws: JournalLock.InUse.self) { try Journal(folder: path, fsync: .never) }
        #expect(JournalLock.holder(of: path) == getpid())
        #expect(throws: JournalLock.InUse.self) { try Journal(folder: path, fsync: .never) }
        journal.close()
        journal.close()  // again: nothing to let go of
        #expect(JournalLock.holder(of: path) == nil)
        let next = try Journal(folder: path, fsync: .never)
        next.close()
    }

    @Test func retentionDeletesWholeOldSegments() throws {
        let folder = try PluginFolder()
        let journal = try Journal(folder: folder.path("j"), fsync: .never, retention: .init(maxBytes: 20_000), segmentSize: 4096)
        let payload = JSON.string(String(repeating: "x", count: 200))
        for n in 0..<1000 { journal.record(Event(topic: "t", data: payload, id: EventID(prefix: 1, sequence: UInt64(n)), time: 0)) }
        journal.close()
        let (all, problem) = records(in: folder.path("j"))
        #expect(problem == nil)
        #expect(all.last?.sequence == 1000)
        #expect(all.count < 200 && all.first!.sequence > 1)  // the oldest went, whole segments at a time
        #expect(all.map(\.sequence) == Array(all.first!.sequence...1000))
    }
}

/// How many segment files the journal folder holds.
private func JournalSegmentsCount(_ folder: String) -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".journal") }.count
}

@Suite(.exclusive) struct SpillTests {
    @Test func aBurstIntoATenSlotSpillingQueueNeitherWaitsNorDrops() async throws {
        let folder = try PluginFolder()
        let journal = try Journal(folder: folder.path("j"), fsync: .interval)
        let router = Router()
        journal.attach(to: router)
        router.spill(to: journal)
        let seen = Recorder<Int64>()
        try router.subscribe("work.*", name: "slow", capacity: 10, overflow: .spill) { event in
            usleep(1000)
            seen.append(event.data.intValue ?? -1)
        }
        let start = Date()
        for n in 0..<3000 { try router.publish(n % 3 == 0 ? "other" : "work.item", data: .int(Int64(n))) }
        let burst = Date().timeIntervalSince(start)
        #expect(burst < 1, "\(burst) s to publish: a handler taking 1 ms would need 2 s for these")
        let expected = (0..<3000).filter { $0 % 3 != 0 }.map { Int64($0) }
        #expect(await eventually(within: 30) { seen.count == expected.count })
        await router.shutdown()
        journal.close()
        #expect(seen.all == expected)  // every one, once, in order
        let stats = try #require(router.stats()["slow"])
        #expect(stats.received == expected.count && stats.handled == expected.count && stats.dropped == 0)
        #expect(stats.pending == 0 && stats.addsUp)
    }

    @Test func whatIsLeftAtExitIsPendingAndTheNextRunHandlesIt() async throws {
        let folder = try PluginFolder()
        let seen = Recorder<Int64>()
        var journal = try Journal(folder: folder.path("j"), fsync: .always)
        var router = Router()
        journal.attach(to: router)
        router.spill(to: journal)
        let released = Mutex(false)
        try router.subscribe("n", name: "slow", capacity: 1, overflow: .spill) { event in
            seen.append(event.data.intValue ?? -1)
            if event.data.intValue == 20 { while !released.withLock({ $0 }) { usleep(1000) } }  // stuck until after shutdown
        }
        for n in 0..<200 { try router.publish("n", data: .int(Int64(n))) }
        #expect(await eventually { seen.count == 21 })
        await router.shutdown(drainTimeout: .milliseconds(100))
        released.withLock { $0 = true }
        journal.close()
        let first = try #require(router.stats()["slow"])
        #expect(first.handled == 20 && first.abandoned == 1 && first.pending == 179 && first.addsUp, "\(first)")
        try await Task.sleep(for: .milliseconds(100))  // the call in hand at the deadline ends, and its position is saved

        journal = try Journal(folder: folder.path("j"), fsync: .always)
        router = Router()
        journal.attach(to: router)
        router.spill(to: journal)
        try router.subscribe("n", name: "slow", capacity: 1, overflow: .spill) { event in seen.append(event.data.intValue ?? -1) }
        #expect(await eventually(within: 20) { Set(seen.all).count == 200 })
        await router.shutdown()
        journal.close()
        // Everything, in order; the event in hand at the deadline may come twice.
        var previous: Int64 = -1
        var breaks: [String] = []
        for value in seen.all {
            if value != previous + 1, value != previous { breaks.append("\(value) after \(previous)") }
            previous = value
        }
        #expect(breaks.isEmpty, "\(breaks)")
        let second = try #require(router.stats()["slow"])
        #expect(second.pending == 0 && second.addsUp, "\(second)")
    }
}
