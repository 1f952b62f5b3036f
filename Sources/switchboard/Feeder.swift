import Foundation
import Switchboard

/// Reads JSON lines, `{"topic": ..., "data": ..., "headers": {...}}`, and publishes them.
/// A bad line is rejected on its own, with its line number and the reason; reading goes on.
struct Feeder {
    /// The longest line accepted.
    static let maximumLine = 1 << 20

    let router: Router
    private(set) var rejected = 0
    private(set) var published = 0

    init(router: Router) { self.router = router }

    /// Reads `descriptor` to its end in 1 MiB chunks. Returns false if publishing stopped
    /// (the router shut down).
    mutating func feed(descriptor: Int32) -> Bool {
        let capacity = Self.maximumLine + 1
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        var filled = 0
        var lineNumber = 0
        var skipping = false  // inside a line longer than the maximum
        while true {
            let count = read(descriptor, buffer.baseAddress! + filled, capacity - filled)
            if count < 0, errno == EINTR { continue }
            let atEnd = count <= 0
            if !atEnd { filled += count }
            var start = 0
            while true {
                let newline = memchr(buffer.baseAddress! + start, 0x0A, filled - start)
                var end: Int
                if let newline {
                    end = buffer.baseAddress!.distance(to: newline)
                } else if atEnd, start < filled {
                    end = filled  // a last line without a newline
                } else {
                    break
                }
                lineNumber += 1
                let next = end + (newline == nil ? 0 : 1)
                if skipping {
                    skipping = false
                } else {
                    if end > start, buffer[end - 1] == 0x0D { end -= 1 }  // CRLF
                    guard handle(UnsafeRawBufferPointer(rebasing: buffer[start..<end]), line: lineNumber) else { return false }
                }
                start = next
            }
            if atEnd { return true }
            filled -= start
            if start > 0, filled > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: filled) }
            if filled == capacity {  // no newline in a whole buffer: the line is too long
                lineNumber += 1
                reject(line: lineNumber, "longer than \(Self.maximumLine) bytes")
                lineNumber -= 1  // counted again when its end is found
                skipping = true
                filled = 0
            }
        }
    }

    /// Publishes one line; false once the router refuses everything.
    private mutating func handle(_ line: UnsafeRawBufferPointer, line number: Int) -> Bool {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }  // blank
        let envelope: JSONTape
        do {
            envelope = try JSONTape(parsing: line)
        } catch {
            reject(line: number, "\(error)")
            return true
        }
        guard line.first(where: { $0 != 0x20 && $0 != 0x09 }) == UInt8(ascii: "{") else {
            reject(line: number, "not a JSON object")
            return true
        }
        var topic: String?
        var payload: JSONTape?
        var headers: [String: String] = [:]
        var problem: String?
        envelope.forEachMember { key, value in
            switch key {
            case "topic":
                topic = value.stringValue
                if topic == nil { problem = "the topic must be a string" }
            case "data":
                payload = value
            case "headers":
                guard let strings = value.strings else {
                    problem = "headers must be an object of strings"
                    return
                }
                headers = strings
            default:
                break
            }
        }
        if let problem {
            reject(line: number, problem)
            return true
        }
        guard let topic else {
            reject(line: number, "missing topic")
            return true
        }
        do {
            if let payload {
                try router.publish(topic, tape: payload, headers: headers)
            } else {
                try router.publish(topic, data: .null, headers: headers)
            }
            published += 1
        } catch RouterError.shutDown {
            return false
        } catch {
            reject(line: number, "\(error)")
        }
        return true
    }

    private mutating func reject(line: Int, _ reason: String) {
        rejected += 1
        printDiagnostic("line \(line): \(reason)")
    }
}
