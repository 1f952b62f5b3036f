import Foundation
import Switchboard
import SwitchboardTestSupport
import Testing

/// A publisher reuses the memory of its events once every holder let go of them
/// (`EventPool`): what a handler keeps must never be overwritten, and what it let go must be reused.
@Suite struct EventPoolTests {
    /// An event line with a payload of `index`'s own size: small ones the pool recycles,
    /// growing ones that need a larger storage, and some past what it recycles at all.
    private static func line(_ index: Int) -> String {
        let pad = String(repeating: "x", count: index % 97 == 0 ? 3000 : index % 300)
        return #"{"topic": "pool.\#(index % 3)", "data": {"n": \#(index), "pad": "\#(pad)"}}"#
    }

    @Test func whatAHandlerKeepsStaysIntactWhileItsPublisherGoesOn() async throws {
        let router = Router()
        let events = Recorder<Event>()
        let tapes = Recorder<(Int, JSONTape)>()
        try router.subscribe("pool.*", capacity: 8192, overflow: .block) { event in
            let n = Int(event.data["n"]?.intValue ?? -1)
            if event.topic == "pool.scalar" || n % 2 == 0 {
                events.append(event)
            } else {
                tapes.append((n, event.tape))  // the tape alone keeps the memory too
            }
        }
        for index in 0..<5000 {
            var line = Self.line(index)
            try line.withUTF8 { _ = try router.publish(eventLine: UnsafeRawBufferPointer($0)) }
            try router.publish("pool.scalar", data: .int(Int64(-index)))  // scalars share the pool
        }
        await router.shutdown()
        #expect(events.count == 2500 + 5000 && tapes.count == 2500)
        var seen = Set<EventID>()
        for event in events.all {
            #expect(seen.insert(event.id).inserted)
            guard let n = event.data["n"]?.intValue else {
                #expect(event.topic == "pool.scalar" && event.data.intValue.map { $0 <= 0 } == true)
                continue
            }
            #expect(event.topic == "pool.\(n % 3)")
            #expect(event.data == (try JSON(parsing: Self.line(Int(n))))["data"])
        }
        for (n, tape) in tapes.all { #expect(try tape.decoded() == (try JSON(parsing: Self.line(n)))["data"]) }
    }

    /// Runs `body` on a new thread, whose pool is empty: a test's task may run on a thread
    /// whose pool another test filled.
    private static func onFreshThread(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    // Thousands of round trips between two threads: alone among the tests that time themselves.
    @Test(.exclusive) func aPublisherReusesTheMemoryOfEventsItsSubscribersAreDoneWith() async throws {
        let router = Router()
        let addresses = Recorder<UInt>()
        let handled = DispatchSemaphore(value: 0)
        try router.subscribe("pool.*") { event in
            if event.topic == "pool.tape" { addresses.append(event.withUnsafeTapeBytes { UInt(bitPattern: $0.baseAddress) }) }
            handled.signal()
        }
        let tape = JSONTape(["large enough not to fit where a scalar was": .string(String(repeating: "t", count: 150))])
        // One at a time, so that the oldest event is long done when the pool looks at it again;
        // scalars first, whose storages are too small for the tapes that follow.
        try await Self.onFreshThread {
            for index in 0..<1100 {
                try router.publish("pool.scalar", data: .int(Int64(index)))
                handled.wait()
            }
            for _ in 0..<2500 {
                try router.publish("pool.tape", tape: tape)
                handled.wait()
            }
        }
        await router.shutdown()
        let distinct = Set(addresses.all).count
        #expect(addresses.count == 2500)
        // The pool keeps 1,024 storages before it reuses any; the scalars' are replaced as the
        // tapes come, and a few more are made when the subscriber's loop still holds one.
        #expect(distinct < 1300, "\(distinct) storages for 2,500 events: they are not reused")
    }

    @Test func eventsWithHeadersOrLargePayloadsArriveWhole() async throws {
        let router = Router()
        let events = Recorder<Event>()
        try router.subscribe("pool.>", capacity: 4096, overflow: .block) { events.append($0) }
        let large = JSON.string(String(repeating: "y", count: 5000))
        for index in 0..<2000 {
            try router.publish("pool.h", data: .int(Int64(index)), headers: ["index": "\(index)"])
            try router.publish("pool.large", data: large)
        }
        await router.shutdown()
        let all = events.all
        #expect(all.count == 4000)
        for (position, event) in all.enumerated() {
            if position % 2 == 0 {
                #expect(event.headers == ["index": "\(position / 2)"] && event.data == .int(Int64(position / 2)))
            } else {
                #expect(event.data == large && event.headers.isEmpty)
            }
        }
    }
}
