import CLua
import CSwitchboardLua
import Logging
import SwitchboardCore
import SwitchboardTopics

/// The Swift end of the host API: C functions in the shim call these with the handler of
/// the calling state. None of them touches the Lua stack; errors go back as status codes.
enum LuaHost {
    private static let installed: Void = {
        var callbacks = sb_host_callbacks(
            publish: { host, topic, data, headers, waitUntil, error in
                LuaHost.handler(host).publish(topic: topic, data: data, headers: headers, waitUntil: waitUntil, error: error!)
            },
            publish_failed: { host, message in
                LuaHost.handler(host).publishFailed(String(decoding: message.buffer, as: UTF8.self))
            },
            log: { host, level, message, fields in
                LuaHost.handler(host).log(level: level, message: message, fields: fields)
            },
            timer_add: { host, seconds, repeating, ref in
                let handler = LuaHost.handler(host)
                return handler.timers.add(seconds: seconds, repeating: repeating != 0, ref: ref, now: handler.timerClock)
            },
            timer_cancel: { host, id in
                LuaHost.handler(host).timers.cancel(id: id) ?? LUA_NOREF
            },
            json_encode: { host, tape, out in
                LuaHost.handler(host).encodeJSON(tape: tape, out: out!)
            },
            json_decode: { host, text, out in
                LuaHost.handler(host).decodeJSON(text: text, out: out!)
            },
            module_loaded: { host, path in
                LuaHost.handler(host).moduleLoaded(String(cString: path!))
            },
            print: { host, line in
                // Only a test bench keeps what is printed: a check's state prints nowhere.
                LuaHost.handler(host).bench?.append(String(decoding: line.buffer.dropLast(), as: UTF8.self), to: \.prints)
            })
        sb_set_host_callbacks(&callbacks)
    }()

    /// Registers the callbacks with the shim, once per process.
    static func installCallbacks() { _ = installed }

    fileprivate static func handler(_ host: UnsafeMutableRawPointer?) -> LuaHandler {
        Unmanaged<LuaHandler>.fromOpaque(host!).takeUnretainedValue()
    }
}

extension sb_bytes {
    /// The bytes as a raw buffer.
    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: length) }
}

extension LuaHandler {
    /// `switchboard.publish`: into a full `block` queue it waits for room until `waitUntil`
    /// (monotonic nanoseconds, shortly before the call's budget ends; 0: it does not wait).
    fileprivate func publish(
        topic: sb_bytes, data: sb_bytes, headers: sb_bytes, waitUntil: UInt64, error errorOut: UnsafeMutablePointer<sb_bytes>
    ) -> Int64 {
        func fail(_ message: String) -> Int64 {
            errorOut.pointee = scratch.lend(message.utf8)
            return -1
        }
        let topicText: String
        let payload: JSONTape
        var headerMap: [String: String] = [:]
        do {
            guard let text = String(validating: topic.buffer, as: UTF8.self) else { throw LuaError("the topic is not valid UTF-8") }
            topicText = text
            payload = try JSONTape(validating: data.buffer)
            if headers.length > 0 { headerMap = try JSONTape(validating: headers.buffer).strings ?? [:] }
        } catch {
            let message = error is LuaError ? "\(error)" : "cannot publish: \(error)"
            publishFailed(message)
            return fail(message)
        }
        if let bench {  // under test: recorded, not routed; refused as the router refuses it
            do {
                try Topic.validate(topicText)
            } catch {
                let message = RouterError.invalidTopic(error).description
                publishFailed(message)
                return fail(message)
            }
            bench.append(
                LuaTestRun.Publish(topic: topicText, data: (try? payload.decoded()) ?? .null, headers: headerMap),
                to: \.publishes, size: topic.length + data.length + headers.length)
            return 1
        }
        guard let router = context?.router else { return fail("the router is gone") }
        // From here the router counts the publish, and logs it when it fails.
        let now = SystemClock.monotonicNanos()
        let limit = waitUntil == 0 ? nil : Duration.nanoseconds(Int64(waitUntil > now ? waitUntil - now : 0))
        do {
            let report = try router.publish(topicText, tape: payload, headers: headerMap, waitingForRoom: limit)
            if report.accepted == 0, report.dropped > 0 { return fail("queue full") }
            return Int64(report.accepted)
        } catch {
            return fail("\(error)")
        }
    }

    /// Counts and logs a publish the plugin made that failed before it reached the router (a
    /// test bench notes it).
    fileprivate func publishFailed(_ message: String) {
        if let bench { bench.append("warning: publish failed: \(message)", to: \.notes) } else { context?.recordPublishFailure(message) }
    }

    fileprivate func log(level: Int32, message: sb_bytes, fields: sb_bytes) {
        let levels: [Logger.Level] = [.debug, .info, .warning, .error]
        let index = Int(max(0, min(3, level)))
        if let bench {
            let fieldsValue = fields.length > 0 ? ((try? JSONTape(validating: fields.buffer).decoded()) ?? [:]) : [:]
            let names = ["debug", "info", "warn", "error"]
            bench.append(
                LuaTestRun.LogLine(level: names[index], message: String(decoding: message.buffer, as: UTF8.self), fields: fieldsValue),
                to: \.logs, size: message.length + fields.length)
            return
        }
        var metadata: Logger.Metadata = [:]
        if fields.length > 0, case let .object(members)? = try? JSONTape(validating: fields.buffer).decoded() {
            for (key, value) in members {
                metadata[key] = .stringConvertible(LoggedJSON(value))
            }
        }
        let text = Logger.Message(stringLiteral: String(decoding: message.buffer, as: UTF8.self))
        logger.log(level: levels[index], text, metadata: metadata)
    }

    fileprivate func encodeJSON(tape: sb_bytes, out: UnsafeMutablePointer<sb_bytes>) -> Int32 {
        do {
            out.pointee = scratch.lend(try JSONTape(validating: tape.buffer).decoded().serialized().utf8)
            return 0
        } catch {
            out.pointee = scratch.lend("json.encode: \(error)".utf8)
            return -1
        }
    }

    fileprivate func decodeJSON(text: sb_bytes, out: UnsafeMutablePointer<sb_bytes>) -> Int32 {
        do {
            out.pointee = scratch.lend(tape: try JSONTape(parsing: text.buffer))
            return 0
        } catch {
            out.pointee = scratch.lend("json.decode: \(error)".utf8)
            return -1
        }
    }
}

/// A growable byte buffer whose contents C may read until the next `lend`.
struct ScratchBuffer {
    private var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// Copies a tape in and returns a view of it for C.
    mutating func lend(tape: JSONTape) -> sb_bytes {
        tape.withUnsafeBytes { lend($0) }
    }

    /// Copies `bytes` in and returns a view of them for C. Past 1 MiB the buffer shrinks
    /// again, so that one large value (a `json.encode` of 16 MiB) is not held for good.
    mutating func lend(_ bytes: some Collection<UInt8>) -> sb_bytes {
        let tooLarge = storage.count > 1 << 20 && storage.count > 4 * bytes.count
        if storage.count < bytes.count || tooLarge {
            storage.deallocate()
            storage = .allocate(byteCount: max(bytes.count, tooLarge ? 256 : 2 * storage.count, 256), alignment: 1)
        }
        storage.copyBytes(from: bytes)
        return sb_bytes(bytes: storage.baseAddress?.assumingMemoryBound(to: UInt8.self), length: bytes.count)
    }

    func deallocate() { storage.deallocate() }
}
