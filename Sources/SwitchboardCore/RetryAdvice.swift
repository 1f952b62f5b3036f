/// An error that tells the failure policy how to go on. A handler that calls another service
/// throws one to say that retrying cannot help (an HTTP 400) or when to try again (an HTTP
/// `Retry-After`); any other error is retried on the policy's own schedule.
public protocol RetryAdvice: Error {
    /// True when another attempt would fail the same way: the event fails at once.
    var isPermanent: Bool { get }
    /// How long to wait before the next attempt, if the failure says; capped by
    /// ``FailurePolicy/maxBackoff``.
    var retryAfter: Duration? { get }
}
