import Foundation
import Yams

// The sections of native subscribers (sinks) and of HTTP ingest.

extension Reader {
    mutating func readHTTPSink(_ node: Node) -> Configuration.HTTPSink? {
        let fields = members(node, .http)
        guard let urlNode = fields["url"] else {
            problem(node, "http needs a 'url', such as http://127.0.0.1:8025/v1/send")
            return nil
        }
        let before = problems.count
        let url = value(urlNode, "http url", "an http:// or https:// URL with a host, such as http://127.0.0.1:8025/v1/send") { (text: String) -> String? in
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
                  let host = url.host, !host.isEmpty
            else { return nil }
            return text
        }
        var sink = Configuration.HTTPSink(url: url ?? "")
        if let method = value(fields["method"], "http method", "POST or PUT", Configuration.HTTPSink.Method.init(rawValue:)) {
            sink.method = method
        }
        if let headers = fields["headers"] {
            for (key, value) in members(headers, allowed: nil, what: "http headers") {
                let valid = !key.isEmpty && key.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }
                if !valid { problem(value, "http header name '\(key)' must be letters, digits and punctuation, without ':'") }
                // The value is never echoed: it may be a secret.
                if let text = string(value, "http header '\(key)'") {
                    if text.utf8.contains(where: { $0 == 10 || $0 == 13 }) {
                        problem(value, "http header '\(key)': its value must be one line")
                    } else if valid {
                        sink.headers[key] = text
                    }
                }
            }
        }
        if let body = value(fields["body"], "http body", "data or event", Configuration.EventFormat.init(rawValue:)) {
            sink.body = body
        }
        if let batch = fields["batch"] {
            let batchFields = members(batch, .httpBatch)
            if let count = value(batchFields["max_events"], "http batch max_events", "a whole number of at least 1", {
                Int($0).flatMap { $0 >= 1 ? $0 : nil }
            }) { sink.maxEvents = count }
            if let wait = value(batchFields["max_wait"], "http batch max_wait", "a duration such as 100ms", ConfigValue.duration) {
                sink.maxWait = wait
            }
        }
        if let timeout = value(fields["timeout"], "http timeout", "a duration such as 5s", ConfigValue.duration) {
            if timeout <= .zero { problem(fields["timeout"], "http timeout must be more than 0") } else { sink.timeout = timeout }
        }
        if let tls = fields["tls"] {
            let tlsFields = members(tls, .httpTLS)
            sink.caFile = existingFile(tlsFields["ca"], "http tls ca")
        }
        return problems.count == before ? sink : nil
    }

    mutating func readFileSink(_ node: Node) -> Configuration.FileSink? {
        let fields = members(node, .file)
        guard let pathNode = fields["path"], let path = string(pathNode, "file path") else {
            if fields["path"] == nil { problem(node, "file needs a 'path', such as out/orders.jsonl") }
            return nil
        }
        let before = problems.count
        var sink = Configuration.FileSink(path: resolve(path))
        if path.isEmpty || path.hasSuffix("/") { problem(pathNode, "file path '\(path)' must name a file") }
        if let format = value(fields["format"], "file format", "event or data", Configuration.EventFormat.init(rawValue:)) {
            sink.format = format
        }
        if let rotate = fields["rotate"] {
            let rotateFields = members(rotate, .fileRotate)
            if rotateFields["max_bytes"] == nil { problem(rotate, "file rotate needs 'max_bytes', such as 64MiB") }
            sink.rotateBytes = value(rotateFields["max_bytes"], "file rotate max_bytes", "a size of at least 1KiB, such as 64MiB") {
                ConfigValue.size($0).flatMap { $0 >= 1024 ? $0 : nil }
            }
            if let keep = value(rotateFields["keep"], "file rotate keep", "a whole number of at least 1", {
                Int($0).flatMap { $0 >= 1 ? $0 : nil }
            }) { sink.keep = keep }
        }
        if let fsync = value(fields["fsync"], "file fsync", "always, interval or never", Configuration.Fsync.init(rawValue:)) {
            sink.fsync = fsync
        }
        return problems.count == before ? sink : nil
    }

    mutating func readIngest(_ node: Node) -> Configuration.Ingest? {
        let top = members(node, .ingest)
        guard let http = top["http"] else {
            problem(node, "ingest needs an 'http' section: ingest: { http: { listen: \"127.0.0.1:8080\" } }")
            return nil
        }
        let fields = members(http, .ingestHTTP)
        guard let listenNode = fields["listen"] else {
            problem(http, "ingest http needs 'listen', such as 127.0.0.1:8080")
            return nil
        }
        let before = problems.count
        guard let listen = value(listenNode, "ingest http listen", "HOST:PORT, such as 127.0.0.1:8080", { text in
            ConfigValue.hostAndPort(text).map { _ in text }
        }) else { return nil }
        var ingest = Configuration.Ingest(listen: listen)
        if let tokenNode = fields["token"], let token = string(tokenNode, "ingest http token"), !token.isEmpty {
            if token.count < 16 { problem(tokenNode, "ingest http token must be at least 16 characters (it has \(token.count))") }
            ingest.token = token
        }
        if let size = value(fields["max_body"], "ingest http max_body", "a size of at least 1KiB, such as 10MiB", {
            ConfigValue.size($0).flatMap { $0 >= 1024 ? $0 : nil }
        }) { ingest.maxBody = size }
        if ingest.token == nil, let (host, _) = ConfigValue.hostAndPort(listen), !ConfigValue.isLoopback(host) {
            problem(listenNode, "ingest http listen '\(listen)' is not a loopback address: set ingest.http.token (16 characters or more) so that only your producers can publish")
        }
        return problems.count == before ? ingest : nil
    }
}
