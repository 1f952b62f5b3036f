import ArgumentParser
import Foundation
import Switchboard
import Synchronization

/// A count that one thread adds to and any thread reads.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func add(_ amount: Int) { count.wrappingAdd(amount, ordering: .relaxed) }
}

/// Reads event lines and publishes them: JSON lines, `{"topic": ..., "data": ..., "headers": {...}}`,
/// or `topic payload` lines. A bad line is rejected on its own, with its line number and the
/// reason, and reading goes on (unless `strict`).
struct Feeder {
    /// How input lines are written.
    enum Format: String, CaseIterable, ExpressibleByArgument {
        /// `{"topic": ..., "data": ..., "headers": {...}}`
        case json
        /// `topic payload`: the payload is JSON when it parses as JSON, a string otherwise.
        case line
    }

    /// The longest line accepted.
    static let maximumLine = 1 << 20

    let router: Router
    let format: Format
    /// Stop at the first bad line.
    let strict: Bool
    /// Lines rejected, readable while feeding (for metrics).
    let rejected: Tally

    init(router: Router, format: Format = .json, strict: Bool = false, rejected: Tally = Tally()) {
        self.router = router
        self.format = format
        self.strict = strict
        self.rejected = rejected
    }

    /// What a feed came to.
    struct Outcome: Sendable {
        /// Lines rejected.
        var rejected = 0
        /// It stopped at a bad line (`strict`).
        var stoppedAtBadLine = false
    }

    /// Reads `descriptor` to its end in 1 MiB chunks, or until the router shuts down or, when
    /// strict, a line is bad.
    mutating func feed(descriptor: Int32) -> Outcome {
        let before = rejected.value
        _ = readLines(from: descriptor)
        let count = rejected.value - before
        return Outcome(rejected: count, stoppedAtBadLine: strict && count > 0)
    }

    /// The reading loop of ``feed(descriptor:)``; false if it stopped early.
    private mutating func readLines(from descriptor: Int32) -> Bool {
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
                if !skipping {  // rejected once, however many buffers it fills
                    guard reject(line: lineNumber + 1, "longer than \(Self.maximumLine) bytes") else { return false }
                    skipping = true  // its number is counted when its end is found
                }
                filled = 0
            }
        }
    }

    /// Publishes one line; false to stop reading.
    private mutating func handle(_ line: UnsafeRawBufferPointer, line number: Int) -> Bool {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }  // blank
        switch format {
        case .json: return handleJSON(line, line: number)
        case .line: return handleTopicAndPayload(line, line: number)
        }
    }

    private mutating func handleJSON(_ line: UnsafeRawBufferPointer, line number: Int) -> Bool {
        let envelope: JSONTape
        do {
            envelope = try JSONTape(parsing: line)
        } catch {
            return reject(line: number, "\(error)")
        }
        guard line.first(where: { $0 != 0x20 && $0 != 0x09 }) == UInt8(ascii: "{") else {
            return reject(line: number, "not a JSON object")
        }
        var topic: String?
        var payload: JSONTape?
        var headers: [String: String] = [:]
        var problem: String?
        envelope.forEachMember(rawKeys: { key, value in
            if Self.spells(key, "topic") {
                topic = value.stringValue
                if topic == nil { problem = "the topic must be a string" }
            } else if Self.spells(key, "data") {
                payload = value
            } else if Self.spells(key, "headers") {
                guard let strings = value.strings else {
                    problem = "headers must be an object of strings"
                    return
                }
                headers = strings
            }
        })
        if let problem { return reject(line: number, problem) }
        guard let topic else { return reject(line: number, "missing topic") }
        return publish(line: number) { router throws(RouterError) in
            if let payload {
                try router.publish(topic, tape: payload, headers: headers)
            } else {
                try router.publish(topic, data: .null, headers: headers)
            }
        }
    }

    /// True when `bytes` are the UTF-8 of `word`.
    private static func spells(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        bytes.count == word.utf8CodeUnitCount && memcmp(bytes.baseAddress!, word.utf8Start, bytes.count) == 0
    }

    /// `topic payload`, split at the first space or tab; no payload is null.
    private mutating func handleTopicAndPayload(_ line: UnsafeRawBufferPointer, line number: Int) -> Bool {
        guard let text = String(validating: line, as: UTF8.self) else { return reject(line: number, "invalid UTF-8") }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let topic = String(trimmed.prefix { $0 != " " && $0 != "\t" })
        let payload = trimmed.dropFirst(topic.count).trimmingCharacters(in: .whitespaces)
        return publish(line: number) { router throws(RouterError) in
            if payload.isEmpty {
                try router.publish(topic, data: .null)
            } else {
                try router.publish(topic, data: (try? JSON(parsing: payload)) ?? .string(payload))
            }
        }
    }

    /// Runs one publish; a refusal rejects the line. False to stop reading.
    private mutating func publish(line number: Int, _ body: (Router) throws(RouterError) -> Void) -> Bool {
        do {
            try body(router)
            return true
        } catch .shutDown {
            return false
        } catch {
            return reject(line: number, "\(error)")
        }
    }

    /// Counts and reports a bad line; false when that ends the reading (`strict`).
    private mutating func reject(line: Int, _ reason: String) -> Bool {
        rejected.add(1)
        printDiagnostic("line \(line): \(reason)")
        return !strict
    }
}
