import Foundation
import SwitchboardCore

/// Why an HTTP sink's request failed, and whether trying again can help.
public struct HTTPSinkError: Error, RetryAdvice, CustomStringConvertible {
    /// The response's status; nil when no response came (refused, dropped, timed out).
    public let status: Int?
    /// What went wrong, with the first 1 KiB of the response body when there was one.
    public let message: String
    /// A status other than 408, 429 and 5xx: another attempt would be refused the same way.
    public let isPermanent: Bool
    /// The response's `Retry-After`, when it had one.
    public let retryAfter: Duration?

    public var description: String { message }

    /// The failure a response of `status` means, or nil for a 2xx.
    static func response(status: Int, reason: String, retryAfter: String?, body: [UInt8]) -> HTTPSinkError? {
        guard !(200..<300).contains(status) else { return nil }
        let retryable = status == 408 || status == 429 || (500..<600).contains(status)
        var message = "HTTP \(status) \(reason)"
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.isEmpty { message += ": \(text)" }
        return HTTPSinkError(
            status: status, message: message, isPermanent: !retryable, retryAfter: retryAfter.flatMap(Self.delay(retryAfter:)))
    }

    /// A failure without a response: always worth another attempt.
    static func transport(_ message: String) -> HTTPSinkError {
        HTTPSinkError(status: nil, message: message, isPermanent: false, retryAfter: nil)
    }

    /// A `Retry-After` value, seconds or an HTTP date, as a wait from now.
    static func delay(retryAfter value: String) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(text) { return seconds >= 0 ? .seconds(seconds) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSinceNow) * 1000))
    }
}
