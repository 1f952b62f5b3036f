import Logging

/// Keeps a failing plugin, or a stream of bad messages, from flooding the log: each distinct
/// message (the same text once its numbers are masked, so event ids, counters and line numbers
/// do not count) is logged once per interval; the repeats in between are counted and reported
/// with the next one logged, or when the subscriber stops, with the first repeat's text as it was.
package struct LogThrottle {
    /// Nanoseconds between two lines of the same message.
    package let interval: UInt64
    private var seen: [String: Entry] = [:]
    private struct Entry {
        var loggedAt: UInt64
        var repeats = 0
        /// The first repeat not yet reported, verbatim, and its level.
        var firstRepeat: (message: String, level: Logger.Level)?
    }
    /// More distinct messages than this, and the oldest knowledge is dropped.
    private static let limit = 1000

    package init(interval: Duration = .seconds(10)) { self.interval = SystemClock.nanoseconds(interval) }

    /// Logs `message` at `level` unless the same message was logged less than an interval
    /// ago, in which case it only counts it. A line that follows repeats says how many.
    package mutating func log(_ message: String, level: Logger.Level, metadata: Logger.Metadata = [:], to logger: Logger) {
        let key = Self.masked(message)
        let now = SystemClock.monotonicNanos()
        if let entry = seen[key], now &- entry.loggedAt < interval {
            seen[key]!.repeats += 1
            if entry.firstRepeat == nil { seen[key]!.firstRepeat = (message, level) }
            return
        }
        if seen.count >= Self.limit { seen.removeAll() }
        var metadata = metadata
        if let repeats = seen[key]?.repeats, repeats > 0 { metadata["repeated"] = "\(repeats)" }
        seen[key] = Entry(loggedAt: now)
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    /// Reports the repeats not yet reported (the subscriber stops): the first of each, as it
    /// was written and at its level, with their count.
    package mutating func flush(to logger: Logger) {
        for entry in seen.values {
            guard let first = entry.firstRepeat else { continue }
            logger.log(level: first.level, "\(first.message)", metadata: ["repeated": "\(entry.repeats)"])
        }
        seen.removeAll()
    }

    /// `message` with every run of digits replaced by `#`.
    static func masked(_ message: String) -> String {
        var result = ""
        var inDigits = false
        for character in message.unicodeScalars {
            if ("0"..."9").contains(character) {
                if !inDigits { result.append("#") }
                inDigits = true
            } else {
                result.unicodeScalars.append(character)
                inDigits = false
            }
        }
        return result
    }
}
