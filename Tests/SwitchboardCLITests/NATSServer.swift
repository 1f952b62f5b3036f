import Foundation
import Switchboard
import SwitchboardTestSupport

/// A real `nats-server` (Debian's package) on a free loopback port, for one test; killed when released.
final class NATSServer: @unchecked Sendable {  // used by one test at a time
    let port: Int
    private var process: Process?
    /// With JetStream: its store, kept across ``kill()`` and ``start()``.
    private let store: PluginFolder?

    /// The URL instances connect to.
    var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts a server on a port that was free a moment ago, and waits until it takes
    /// connections; with `jetStream`, JetStream runs with its store in a temporary folder.
    init(jetStream: Bool = false) async throws {
        port = try Self.freePort()
        store = jetStream ? try PluginFolder() : nil
        try await start()
    }

    deinit { process?.terminate() }

    /// Starts the server (again, after ``kill()``) on the same port.
    func start() async throws {
        let executable = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let executable else { throw ServerError("nats-server is not installed: run ./setup.sh") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-a", "127.0.0.1", "-p", "\(port)"] + (store.map { ["-js", "-sd", $0.url.path] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        guard await eventually(within: 10, { Self.accepts(port: self.port) }) else {
            throw ServerError("nats-server did not listen on port \(port)")
        }
    }

    /// Kills the server at once (SIGKILL): its clients see the connection drop.
    func kill() {
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Publishes one message as any NATS client would (the protocol by hand: a foreign
    /// publisher, not a Switchboard instance), and returns once the server processed it.
    func publish(_ subject: String, _ payload: String, headers: [(String, String)] = []) throws {
        try publish([(subject, payload, headers)])
    }

    /// Publishes several messages on one connection, in order, as ``publish(_:_:headers:)`` does one.
    func publish(_ messages: [(subject: String, payload: String, headers: [(String, String)])]) throws {
        let socket = try Self.connected(port: port)
        defer { close(socket) }
        let message = #"CONNECT {"verbose":false,"headers":true}"# + "\r\n" + messages.map { subject, payload, headers in
            let head = "NATS/1.0\r\n" + headers.map { "\($0): \($1)\r\n" }.joined() + "\r\n"
            return "HPUB \(subject) \(head.utf8.count) \(head.utf8.count + payload.utf8.count)\r\n\(head)\(payload)\r\n"
        }.joined() + "PING\r\n"
        guard Array(message.utf8).withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, 0) }) == message.utf8.count else {
            throw ServerError("cannot write to nats-server")
        }
        var reply = [UInt8](repeating: 0, count: 4096)
        var text = ""
        while !text.contains("PONG") {  // after the INFO line; the PUB before it is processed
            let count = recv(socket, &reply, reply.count, 0)
            guard count > 0 else { throw ServerError("nats-server closed the connection: \(text)") }
            text += String(decoding: reply[..<count], as: UTF8.self)
        }
    }

    /// Sends a request as any NATS client would and returns the reply's payload: for the
    /// JetStream API (`$JS.API.STREAM.INFO.ORDERS`), read as an outside observer.
    func request(_ subject: String, _ payload: String = "") throws -> String {
        let socket = try Self.connected(port: port)
        defer { close(socket) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let message = #"CONNECT {"verbose":false}"# + "\r\nSUB _INBOX.test 1\r\n"
            + "PUB \(subject) _INBOX.test \(payload.utf8.count)\r\n\(payload)\r\n"
        guard Array(message.utf8).withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, 0) }) == message.utf8.count else {
            throw ServerError("cannot write to nats-server")
        }
        var received: [UInt8] = []
        var reply = [UInt8](repeating: 0, count: 65536)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            if let header = text.range(of: "MSG _INBOX.test 1 "), let end = text[header.upperBound...].range(of: "\r\n"),
               let length = Int(text[header.upperBound..<end.lowerBound]) {
                let body = Array(text[end.upperBound...].utf8)
                if body.count >= length { return String(decoding: body.prefix(length), as: UTF8.self) }
            }
            let count = recv(socket, &reply, reply.count, 0)
            guard count > 0 else { throw ServerError("no reply to \(subject): \(text)") }
            received += reply[..<count]
        }
    }

    /// The number of messages in a JetStream stream, as the server tells any client.
    func messages(inStream stream: String) throws -> Int? {
        let info = try JSON(parsing: request("$JS.API.STREAM.INFO.\(stream)"))
        return info["state"]?["messages"]?.intValue.map(Int.init)
    }

    private static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else { throw ServerError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func accepts(port: Int) -> Bool {
        guard let socket = try? connected(port: port) else { return false }
        close(socket)
        return true
    }

    /// A socket connected to `port` on loopback; the caller closes it.
    private static func connected(port: Int) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(socket)
            throw ServerError("cannot connect to port \(port)")
        }
        return socket
    }

    /// 127.0.0.1:`port` as a socket address.
    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    struct ServerError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
