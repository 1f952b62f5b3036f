#if canImport(Glibc)
import Glibc
#endif
import CNATS
import SwitchboardCore

extension JetStreamSettings {
    /// Makes sure the stream is there: created or updated with ``create``, otherwise looked up
    /// (a missing one throws, naming it).
    func ensureStream(on connection: OpaquePointer?, wait: Duration) throws(NATSError) {
        var options = jsOptions()
        try check(jsOptions_Init(&options), "cannot create the JetStream options")
        options.Wait = milliseconds(wait)
        var context: OpaquePointer?
        try check(natsConnection_JetStream(&context, connection, &options), "cannot use JetStream")
        defer { jsCtx_Destroy(context) }
        var code = jsErrCode(rawValue: 0)
        var info: UnsafeMutablePointer<jsStreamInfo>?
        defer { jsStreamInfo_Destroy(info) }
        guard create else {
            let status = js_GetStreamInfo(&info, context, stream, nil, &code)
            if status == NATS_NOT_FOUND || code == JSStreamNotFoundErr {
                throw NATSError("the JetStream stream '\(stream)' does not exist: create it, or set nats.jetstream.stream.create: true")
            }
            try check(status, "cannot look up the JetStream stream '\(stream)'")
            return
        }
        var config = jsStreamConfig()
        try check(jsStreamConfig_Init(&config), "cannot create a stream configuration")
        let name = strdup(stream)
        var names = subjects.map { UnsafePointer(strdup($0)) }
        defer {
            free(name)
            names.forEach { free(UnsafeMutablePointer(mutating: $0)) }
        }
        config.Name = UnsafePointer(name)
        config.Storage = storage == .file ? js_FileStorage : js_MemoryStorage
        config.MaxAge = maxAge.map { Int64(SystemClock.nanoseconds($0)) } ?? 0
        config.Duplicates = Int64(SystemClock.nanoseconds(duplicateWindow))
        let status = names.withUnsafeMutableBufferPointer { list in
            config.Subjects = list.baseAddress
            config.SubjectsLen = Int32(list.count)
            let added = js_AddStream(&info, context, &config, nil, &code)
            guard code == JSStreamNameExistErr else { return added }
            return js_UpdateStream(&info, context, &config, nil, &code)
        }
        try check(status, "cannot create or update the JetStream stream '\(stream)' (error \(code.rawValue))")
    }
}
