import CLua
import CSwitchboardLua
import Logging
import Synchronization
import SwitchboardCore

/// Runs one Lua plugin in its own state. Created by ``Router/subscribe(lua:logger:)``; from
/// `start` on, only the subscriber's own thread touches it or its state (`interrupt` aside).
final class LuaHandler: EventHandler {
    let configuration: LuaSubscriberConfiguration
    private(set) var logger: Logger
    /// The file descriptor `print` writes to.
    let output: Int32
    private(set) var context: SubscriberContext?
    // Behind pointers, so that the per-event path pays no dynamic exclusivity checks.
    private let current = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: 1)
    private let refs = UnsafeMutablePointer<sb_plugin_refs>.allocate(capacity: 1)
    /// The states `interrupt` may reach from another thread (the current one, and one being
    /// built, whose `init` may run), and whether it was interrupted.
    private let interruptible = Mutex<(state: UncheckedState?, building: UncheckedState?, interrupted: Bool)>(
        (nil, nil, false))
    /// Bytes lent to C by the host callbacks, valid until the next callback.
    var scratch = ScratchBuffer()
    /// Pending `every` and `after` timers.
    var timers = LuaTimers()
    /// The files the current state was built from.
    let sources: LuaSources
    /// Plugin errors, logged once per interval each.
    private var errors = LogThrottle()
    /// Bytes the current state holds, as of its last call: readable from any thread.
    private let memory = Atomic<Int>(0)
    /// Modules required while a new state is being built; nil once it is current.
    private var modulesOfNewState: [String]?
    /// Under `switchboard test`: the virtual clock and the record that stand in for the
    /// router and the wall clock; nil in a run.
    let bench: LuaTestBench?

    /// A state pointer, handed between the worker and an interrupting thread under the mutex.
    struct UncheckedState: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    /// Creates the handler; `start` builds its Lua state on the subscriber's thread.
    init(
        configuration: LuaSubscriberConfiguration, logger: Logger, output: Int32 = 1, sources: LuaSources = LuaSources(),
        bench: LuaTestBench? = nil
    ) {
        self.configuration = configuration
        self.output = output
        self.sources = sources
        self.bench = bench
        var logger = logger
        logger[metadataKey: "subscriber"] = .string(configuration.name)
        self.logger = logger
        current.initialize(to: nil)
        refs.initialize(to: sb_plugin_refs(init: LUA_NOREF, handle: LUA_NOREF, shutdown: LUA_NOREF))
        LuaHost.installCallbacks()
    }

    deinit {
        if let state = current.pointee { sb_state_close(state) }
        current.deallocate()
        refs.deallocate()
        scratch.deallocate()
    }

    // MARK: EventHandler

    func start(_ context: SubscriberContext) throws {
        self.context = context
        if context.workers > 1 { logger[metadataKey: "worker"] = .stringConvertible(context.worker) }
        try build()
    }

    func handle(_ event: Event) throws {
        // Non-mutating access to the topic's bytes (String.withUTF8 on a copy costs a dynamic
        // exclusivity check per event); a topic that is not contiguous UTF-8 is copied first.
        let status = event.topic.utf8.withContiguousStorageIfAvailable { dispatch(event, topic: $0) }
            ?? Array(event.topic.utf8).withUnsafeBufferPointer { dispatch(event, topic: $0) }
        memory.store(sb_memory_used(current.pointee), ordering: .relaxed)
        guard status != LUA_OK else { return }
        var message = errorMessage()
        if status == LUA_ERRMEM { message = "memory limit of \(Quantities.size(configuration.memory)) exceeded (\(message))" }
        errors.log(
            "handle failed: \(message)", level: .error,
            metadata: ["topic": .string(event.topic), "event": .string(event.id.description)], to: logger)
        if status == LUA_ERRMEM { rebuildAfterMemoryFailure() }
        throw LuaError(message)
    }

    var nextTimerDeadline: UInt64? { timers.nextDeadline }

    var memoryInUse: Int? { memory.load(ordering: .relaxed) }

    var callBudget: Duration? { configuration.timeout > .zero ? configuration.timeout : nil }

    /// Now on the timers' clock: the monotonic clock, or the virtual one under test.
    var timerClock: UInt64 { bench?.nanos ?? SystemClock.monotonicNanos() }

    func fireTimers() { fireTimers(atMost: .max) }

    /// Runs up to `count` of the timers due now, earliest first.
    func fireTimers(atMost count: Int) {
        guard let state = current.pointee else { return }
        let now = timerClock
        var fired = 0
        while fired < count, let (ref, release) = timers.takeDue(now: now) {
            fired += 1
            let status = sb_fire_timer(state, ref, release ? 1 : 0)
            guard status != LUA_OK else { continue }
            errors.log("timer callback failed: \(errorMessage())", level: .error, to: logger)
            bench?.timerFailed(errorMessage())
            if status == LUA_ERRMEM {
                rebuildAfterMemoryFailure()
                return
            }
        }
    }

    func stop() {
        guard let state = current.pointee else { return }
        // `shutdown` runs under its own budget, even after an interrupted call: from here on
        // `interrupt` no longer reaches the state.
        interruptible.withLock { $0.state = nil }
        sb_clear_interrupt(state)
        if refs.pointee.shutdown != LUA_NOREF, sb_call_ref(state, refs.pointee.shutdown) != LUA_OK {
            logger.error("shutdown failed: \(errorMessage())")
            bench?.append("shutdown failed: \(LuaTestRun.withoutTraceback(errorMessage()))", to: \.errors)
        }
        errors.flush(to: logger)
        replaceState(with: nil)
    }

    /// Closes the state without running `shutdown`: for a state that was only built to be checked.
    func close() { replaceState(with: nil) }

    func restart() throws {
        errors.log("restarting: too many consecutive failures", level: .warning, to: logger)
        try build()
    }

    func interrupt() {
        interruptible.withLock { shared in
            shared.interrupted = true
            for state in [shared.state, shared.building] { if let state { sb_interrupt(state.pointer) } }
        }
    }

    // MARK: States

    /// Makes a fresh state, loads the plugin and runs `init`; on success it replaces the
    /// current state (and its timers), otherwise the current one stays and this throws.
    private func build() throws {
        let limits = sb_limits(
            timeout_ns: SystemClock.nanoseconds(configuration.timeout), memory: max(0, configuration.memory))
        guard let state = sb_state_new(Unmanaged.passUnretained(self).toOpaque(), output, limits) else {
            throw LuaError("\(configuration.script): cannot create a Lua state: out of memory")
        }
        if let bench {
            sb_set_clock(state, bench.clock)
            sb_seed_random(state, bench.seed)
        }
        interruptible.withLock { shared in  // a signal during start-up stops `init`
            shared.building = UncheckedState(pointer: state)
            if shared.interrupted { sb_interrupt(state) }
        }
        let previousTimers = timers
        timers = LuaTimers()
        modulesOfNewState = []
        defer { modulesOfNewState = nil }
        var newRefs = sb_plugin_refs()
        var name = configuration.name
        let allow = configuration.allow.reduce(Int32(0)) { flags, library in
            switch library {
            case .io: flags | Int32(SB_ALLOW_IO)
            case .os: flags | Int32(SB_ALLOW_OS)
            case .debug: flags | Int32(SB_ALLOW_DEBUG)
            }
        }
        var failure: String?
        let status = name.withUTF8 { nameBytes in
            JSONTape(configuration.settings).withUnsafeBytes { settings in
                sb_load_plugin(
                    state, configuration.script, Self.directory(of: configuration.script),
                    sb_bytes(UnsafeRawBufferPointer(nameBytes)), sb_bytes(settings),
                    sb_worker(number: Int32(context?.worker ?? 1), count: Int32(context?.workers ?? 1)), allow, &newRefs)
            }
        }
        if status != LUA_OK {
            failure = Self.message(of: state)
        } else if !configuration.topics.isEmpty, newRefs.handle == LUA_NOREF {
            failure = "\(configuration.script): plugin.handle is missing; a subscriber with topics needs it"
        } else if configuration.producer, newRefs.handle != LUA_NOREF {
            failure = "\(configuration.script): plugin.handle would never be called, as the entry says topics: []; list the topics it handles, or remove handle from a producer"
        } else if newRefs.`init` != LUA_NOREF, sb_call_init(state, newRefs.`init`) != LUA_OK {
            failure = "\(configuration.script): init failed: \(Self.message(of: state))"
        }
        if let failure {
            interruptible.withLock { $0.building = nil }
            sb_state_close(state)
            timers = previousTimers
            throw LuaError(failure)
        }
        refs.pointee = newRefs
        sources.replace(with: [configuration.script] + (modulesOfNewState ?? []))
        replaceState(with: state)
    }

    /// `require` loaded the module in the file at `path`.
    func moduleLoaded(_ path: String) {
        if modulesOfNewState != nil { modulesOfNewState?.append(path) } else { sources.record(path) }
    }

    /// Closes the current state and makes `state` current, reachable by `interrupt`.
    private func replaceState(with state: OpaquePointer?) {
        let old = current.pointee
        interruptible.withLock { shared in
            shared.state = state.map(UncheckedState.init)
            shared.building = nil
            if shared.interrupted, let state { sb_interrupt(state) }
        }
        current.pointee = state
        if let old { sb_state_close(old) }
        memory.store(state.map { sb_memory_used($0) } ?? 0, ordering: .relaxed)
    }

    /// After the memory limit was hit the state is rebuilt at once, before the next event.
    private func rebuildAfterMemoryFailure() {
        do {
            try build()
            context?.recordRestart()
            logger.warning("rebuilt the Lua state after it hit its memory limit")
        } catch {
            logger.error("could not rebuild the Lua state after a memory failure: \(error)")
        }
    }

    /// Calls the plugin's handle(event) under lua_pcall; returns the Lua status.
    private func dispatch(_ event: Event, topic: UnsafeBufferPointer<UInt8>) -> Int32 {
        event.withUnsafeTapeBytes { data in
            var description = sb_event(
                topic: sb_bytes(UnsafeRawBufferPointer(topic)), data_tape: sb_bytes(data),
                id_prefix: event.id.prefix, id_sequence: event.id.sequence, time: event.time, headers_tape: sb_bytes())
            if event.headers.isEmpty { return sb_dispatch(current.pointee, refs.pointee.handle, &description) }
            return JSONTape(strings: event.headers).withUnsafeBytes { headers in
                description.headers_tape = sb_bytes(headers)
                return sb_dispatch(current.pointee, refs.pointee.handle, &description)
            }
        }
    }

    /// The message of the last failed call into the current state.
    private func errorMessage() -> String { Self.message(of: current.pointee) }

    private static func message(of state: OpaquePointer?) -> String {
        let message = sb_error_message(state)
        return String(decoding: UnsafeRawBufferPointer(start: message.bytes, count: message.length), as: UTF8.self)
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

extension sb_bytes {
    /// Lends bytes to C for the duration of a call.
    init(_ buffer: UnsafeRawBufferPointer) {
        self.init(bytes: buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), length: buffer.count)
    }
}
