import Logging

/// Keeps a failing plugin, or a stream of bad messages, from flooding the log: each distinct
/// message (the same text once its numbers are masked, so event ids, counters and line numbers
/// do not count) is logged once per interval; the repeats in between are counted and reported
/// with the next one logged, or when the subscriber stops.
package struct LogThrottle {
    /// Nanoseconds between two lines of the same message.
    package let interval: UInt64
    private var seen: [String: (loggedAt: UInt64, repeats: Int)] = [:]
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
            return
        }
        if seen.count >= Self.limit { seen.removeAll() }
        var metadata = metadata
        if let repeats = seen[key]?.repeats, repeats > 0 { metadata["repeated"] = "\(repeats)" }
        seen[key] = (now, 0)
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    /// Reports the repeats not yet reported (the subscriber stops), at `level`.
    package mutating func flush(to logger: Logger, level: Logger.Level = .error) {
        for (key, entry) in seen where entry.repeats > 0 {
            logger.log(level: level, "\(key)", metadata: ["repeated": "\(entry.repeats)"])
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
