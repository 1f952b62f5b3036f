import Foundation
import Switchboard
import Synchronization
import Testing

/// A handler that logs `<name> interrupted` and `<name> stopped`, and whose `start`, `handle`
/// and `stop` calls take as long as their ``Call`` says.
private final class Probe: EventHandler {
    enum Call {
        case quick
        /// Runs until interrupted, then fails.
        case untilInterrupted
        /// Deaf to interrupts: runs until the gate opens.
        case deaf(Gate)
    }

    let name: String
    let log: Recorder<String>
    let starts: Call
    let handles: Call
    let stops: Call
    private let interrupted = Atomic<Bool>(false)

    init(_ name: String, log: Recorder<String>, starts: Call = .quick, handles: Call = .quick, stops: Call = .quick) {
        (self.name, self.log, self.starts, self.handles, self.stops) = (name, log, starts, handles, stops)
    }

    func start(_ context: SubscriberContext) throws { try run(starts, "start") }
    func handle(_ event: Event) throws { try run(handles, "handle") }
    func interrupt() {
        interrupted.store(true, ordering: .relaxed)
        log.append("\(name) interrupted")
    }
    func stop() {
        try? run(stops, "stop")
        log.append("\(name) stopped")
    }

    private func run(_ call: Call, _ what: String) throws {
        log.append("\(name) in \(what)")
        switch call {
        case .quick: return
        case .untilInterrupted:
            while !interrupted.load(ordering: .relaxed) { usleep(200) }
            throw Failure()
        case .deaf(let gate): gate.pass()
        }
    }
}

@Suite struct RouterDeadlineTests {
    @Test(.exclusive) func theDeadlineInterruptsOnlyCallsInProgressAndStopsEveryOtherHandler() async throws {
        let router = Router()
        let log = Recorder<String>()
        let gate = Gate()
        try router.subscribe(["work"], name: "idle", handler: Probe("idle", log: log))
        try router.subscribe(["work"], name: "lingering", handler: Probe("lingering", log: log, stops: .deaf(gate)))
        try router.subscribe(["work"], name: "busy", handler: Probe("busy", log: log, handles: .untilInterrupted))
        let deaf = try router.subscribe(["work"], name: "deaf", handler: Probe("deaf", log: log, handles: .deaf(gate)))
        try router.publish("work")
        #expect(await eventually { Set(log.all).isSuperset(of: ["idle in handle", "lingering in handle", "busy in handle", "deaf in handle"]) })
        let start = Date()
        await router.shutdown(drainTimeout: .milliseconds(100))
        // The deaf call and the lingering stop are left behind after the grace (waiting for them
        // would never end: the gate opens below). Generous: the drain's waits run on the test
        // process's two-thread concurrency pool, which other suites' blocking calls can hold,
        // and in the suite's first seconds hostile plugins fill both cores.
        #expect(Date().timeIntervalSince(start) < 0.1 + Double(Router.stopGrace.components.seconds) + 30)
        let ended = Set(log.all)
        #expect(ended.isSuperset(of: ["idle stopped", "busy interrupted", "busy stopped", "deaf interrupted"]), "\(ended)")
        #expect(ended.contains("lingering in stop") && !ended.contains("lingering stopped"))
        #expect(!ended.contains("idle interrupted") && !ended.contains("lingering interrupted"))
        #expect(!ended.contains("deaf stopped"))
        let stats = router.stats()
        #expect(stats.subscribers.allSatisfy { $0.addsUp }, "\(stats.subscribers)")
        #expect(stats["idle"]?.handled == 1 && stats["lingering"]?.handled == 1)
        #expect(stats["busy"]?.abandoned == 1 && stats["deaf"]?.abandoned == 1)
        gate.open()
        router.unsubscribe(deaf)  // waits for its thread, which left the call: its stop stays skipped
        #expect(!log.all.contains("deaf stopped"))
        #expect(await eventually { log.all.contains("lingering stopped") })  // its stop went on, unwaited
    }

    @Test func interruptingStartsEndsTheOneUnderWayAndRefusesLaterOnes() async throws {
        let router = Router()
        let log = Recorder<String>()
        let first = Task.detached {  // `prepare` blocks until the start ends
            Result { try router.prepare(["a"], name: "slow", handler: Probe("slow", log: log, starts: .untilInterrupted)) }
        }
        #expect(await eventually { log.all.contains("slow in start") })
        router.interruptStarts()
        let outcome = await first.value
        #expect(throws: RouterError.self) { try outcome.get() }
        #expect {
            try router.prepare(["a"], name: "late", handler: Probe("late", log: log))
        } throws: { "\($0)".contains("subscriber 'late'") && "\($0)".contains("interrupted") }
        #expect(!log.all.contains("late in start"))
    }
}
