import Foundation
import ServiceLifecycle
import SwitchboardCore
import SwitchboardJSON
import Synchronization

/// Reads event lines from a file descriptor and publishes them, as a service: JSON lines,
/// `{"topic": ..., "data": ..., "headers": {...}}`, or `topic payload` lines. A bad line is
/// rejected on its own, counted and handed to the caller's sink with its number and the
/// reason, and reading goes on (unless ``strict``).
///
/// ``run()`` reads on a thread of its own, because reads block, until the input ends, a bad
/// line stops it (``strict``) or the group shuts down; then it returns, which ends the run.
/// A read blocked on an idle input is left behind: it stops at its next publish, once the
/// router shuts down, or with the process.
public struct Feeder: Service {
    /// How input lines are written.
    public enum Format: String, Sendable, CaseIterable {
        /// `{"topic": ..., "data": ..., "headers": {...}}`
        case json
        /// `topic payload`: the payload is JSON when it parses as JSON, a string otherwise.
        case line
    }

    /// A line that was not published.
    public struct Rejection: Sendable, Equatable {
        /// Its number, from 1.
        public var line: Int
        /// Why, in words.
        public var reason: String
    }

    /// The longest line accepted.
    public static let maximumLine = 1 << 20

    private let router: Router
    private let descriptor: Int32
    private let format: Format
    private let strict: Bool
    private let closesDescriptor: Bool
    private let onRejected: @Sendable (Rejection) -> Void
    private let counts = Counts()

    /// What the reading thread counts, readable from any thread while it reads.
    private final class Counts: Sendable {
        let rejected = Atomic<Int>(0)
        let stoppedAtBadLine = Atomic<Bool>(false)
    }

    /// A feeder of the lines read from `descriptor`, handing each rejected line to
    /// `onRejected`. With `closesDescriptor` it closes the descriptor once it has read it
    /// (on its reading thread, which may outlive ``run()``); otherwise the caller does.
    public init(
        router: Router, descriptor: Int32, format: Format = .json, strict: Bool = false, closesDescriptor: Bool = false,
        onRejected: @escaping @Sendable (Rejection) -> Void
    ) {
        self.router = router
        self.descriptor = descriptor
        self.format = format
        self.strict = strict
        self.closesDescriptor = closesDescriptor
        self.onRejected = onRejected
    }

    /// Lines rejected so far.
    public var rejected: Int { counts.rejected.load(ordering: .relaxed) }
    /// True once it stopped at a bad line (``strict``).
    public var stoppedAtBadLine: Bool { counts.stoppedAtBadLine.load(ordering: .relaxed) }

    /// Reads until the input ends, a bad line stops it, or graceful shutdown.
    public func run() async {
        let (done, finish) = AsyncStream.makeStream(of: Void.self)
        Thread.detachNewThread { [self] in
            feed()
            finish.finish()
        }
        await cancelWhenGracefulShutdown {
            for await _ in done {}
        }
    }

    /// Reads the input to its end in 1 MiB chunks, on the calling thread, or until the router
    /// shuts down or, when strict, a line is bad.
    public func feed() {
        _ = readLines(from: descriptor)
        if closesDescriptor { close(descriptor) }
        if strict && rejected > 0 { counts.stoppedAtBadLine.store(true, ordering: .relaxed) }
    }

    /// The reading loop of ``feed()``; false if it stopped early.
    private func readLines(from descriptor: Int32) -> Bool {
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
    private func handle(_ line: UnsafeRawBufferPointer, line number: Int) -> Bool {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }  // blank
        switch format {
        case .json:
            return publish(line: number, hint: { Self.looksLikeTopicAndPayload(line) }) { router throws(RouterError) in
                _ = try router.publish(eventLine: line)
            }
        case .line: return handleTopicAndPayload(line, line: number)
        }
    }

    /// `topic payload`, split at the first space or tab; no payload is null.
    private func handleTopicAndPayload(_ line: UnsafeRawBufferPointer, line number: Int) -> Bool {
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

    /// Runs one publish; a refusal rejects the line, with `hint`'s reason instead when it has one. False to stop reading.
    private func publish(
        line number: Int, hint: () -> String? = { nil }, _ body: (Router) throws(RouterError) -> Void
    ) -> Bool {
        do {
            try body(router)
            return true
        } catch .shutDown {
            return false
        } catch {
            return reject(line: number, hint() ?? "\(error)")
        }
    }

    /// Why a refused JSON line that starts with a word was refused: it is probably `topic payload`.
    private static func looksLikeTopicAndPayload(_ line: UnsafeRawBufferPointer) -> String? {
        guard let first = line.first(where: { $0 != 0x20 && $0 != 0x09 }), (first | 0x20) &- UInt8(ascii: "a") < 26 else { return nil }
        return "not a JSON object: a 'topic payload' line needs --format line"
    }

    /// Counts and reports a bad line; false when that ends the reading (`strict`).
    private func reject(line: Int, _ reason: String) -> Bool {
        counts.rejected.add(1, ordering: .relaxed)
        onRejected(Rejection(line: line, reason: reason))
        return !strict
    }
}
