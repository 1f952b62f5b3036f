import CLua
import CSwitchboardLua
import Logging
import SwitchboardCore

/// Runs one Lua plugin in its own state. Created by ``Router/subscribe(lua:logger:)``; from
/// `start` on, only the subscriber's own thread touches it or its state.
final class LuaHandler: EventHandler {
    let configuration: LuaSubscriberConfiguration
    let logger: Logger
    /// The file descriptor `print` writes to.
    let output: Int32
    private(set) var context: SubscriberContext?
    // `let`s, so that the per-event path pays no dynamic exclusivity checks.
    private let state: OpaquePointer
    private let refs = UnsafeMutablePointer<sb_plugin_refs>.allocate(capacity: 1)
    private var closed = false
    /// Bytes lent to C by the host callbacks, valid until the next callback.
    var scratch = ScratchBuffer()
    /// Pending `every` and `after` timers.
    var timers = LuaTimers()

    /// Creates the handler and its (empty) Lua state; `start` loads the plugin on the subscriber's thread.
    init(configuration: LuaSubscriberConfiguration, logger: Logger, output: Int32 = 1) throws(LuaError) {
        self.configuration = configuration
        self.output = output
        var logger = logger
        logger[metadataKey: "subscriber"] = .string(configuration.name)
        self.logger = logger
        refs.initialize(to: sb_plugin_refs(init: LUA_NOREF, handle: LUA_NOREF, shutdown: LUA_NOREF))
        LuaHost.installCallbacks()
        guard let state = sb_state_new(nil, output) else {
            refs.deallocate()
            throw LuaError("\(configuration.script): cannot create a Lua state: out of memory")
        }
        self.state = state
        sb_state_set_host(state, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        if !closed { sb_state_close(state) }
        refs.deallocate()
        scratch.deallocate()
    }

    // MARK: EventHandler

    func start(_ context: SubscriberContext) throws {
        self.context = context
        let directory = Self.directory(of: configuration.script)
        var name = configuration.name
        let status = name.withUTF8 { nameBytes in
            JSONTape(configuration.settings).withUnsafeBytes { settings in
                sb_load_plugin(
                    state, configuration.script, directory, sb_bytes(UnsafeRawBufferPointer(nameBytes)),
                    sb_bytes(settings), refs)
            }
        }
        guard status == LUA_OK else { throw LuaError(errorMessage()) }
        if !configuration.topics.isEmpty, refs.pointee.handle == LUA_NOREF {
            throw LuaError("\(configuration.script): plugin.handle is missing; a subscriber with topics needs it")
        }
        if refs.pointee.`init` != LUA_NOREF {
            guard sb_call_init(state, refs.pointee.`init`) == LUA_OK else { throw LuaError("\(configuration.script): init failed: \(errorMessage())") }
        }
    }

    func handle(_ event: Event) throws {
        // Non-mutating access to the topic's bytes (String.withUTF8 on a copy costs a dynamic
        // exclusivity check per event); a topic that is not contiguous UTF-8 is copied first.
        let status = event.topic.utf8.withContiguousStorageIfAvailable { dispatch(event, topic: $0) }
            ?? Array(event.topic.utf8).withUnsafeBufferPointer { dispatch(event, topic: $0) }
        if status != LUA_OK {
            let message = errorMessage()
            logger.error(
                "handle failed: \(message)",
                metadata: ["topic": .string(event.topic), "event": .string(event.id.description)])
            throw LuaError(message)
        }
    }

    /// Calls the plugin's handle(event) under lua_pcall; returns the Lua status.
    private func dispatch(_ event: Event, topic: UnsafeBufferPointer<UInt8>) -> Int32 {
        event.tape.withUnsafeBytes { data in
            var description = sb_event(
                topic: sb_bytes(UnsafeRawBufferPointer(topic)), data_tape: sb_bytes(data),
                id_prefix: event.id.prefix, id_sequence: event.id.sequence, time: event.time, headers_tape: sb_bytes())
            if event.headers.isEmpty { return sb_dispatch(state, refs.pointee.handle, &description) }
            return JSONTape(strings: event.headers).withUnsafeBytes { headers in
                description.headers_tape = sb_bytes(headers)
                return sb_dispatch(state, refs.pointee.handle, &description)
            }
        }
    }

    var nextTimerDeadline: UInt64? { timers.nextDeadline }

    func fireTimers() {
        let now = Clock.monotonicNanos()
        while let (ref, release) = timers.takeDue(now: now) {
            if sb_fire_timer(state, ref, release ? 1 : 0) != LUA_OK {
                logger.error("timer callback failed: \(errorMessage())")
            }
        }
    }

    func stop() {
        if refs.pointee.shutdown != LUA_NOREF, sb_call_ref(state, refs.pointee.shutdown) != LUA_OK {
            logger.error("shutdown failed: \(errorMessage())")
        }
        sb_state_close(state)
        closed = true
    }

    // MARK: Helpers

    /// The message of the last failed call into the state.
    private func errorMessage() -> String {
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
