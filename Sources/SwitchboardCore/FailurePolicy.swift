/// What a subscriber does when its handler fails an event (an error, a timeout, a memory limit).
public struct FailurePolicy: Sendable, Hashable {
    /// Further attempts at a failed event, on the subscriber's own thread.
    public var retries: Int
    /// The pause before the first retry; it doubles with each retry, and between restarts that fail.
    public var backoff: Duration
    /// The longest pause: it caps the doubling backoff, and a wait a failure asks for
    /// (``RetryAdvice/retryAfter``, an HTTP `Retry-After`).
    public var maxBackoff: Duration
    /// Whether an event that still fails is published to `deadletter.<subscriber>` with data
    /// `{event, error, attempts}`. A dead letter never reaches the subscriber that produced it,
    /// and one that fails makes no further dead letter.
    public var deadLetter: Bool
    /// After this many consecutive failed events the handler is restarted (a Lua plugin gets a
    /// fresh state and `init` again), so a plugin that corrupted its own state heals.
    public var restartAfter: Int

    /// Whether an event on `topic` that still fails makes a dead letter: with ``deadLetter``
    /// set, unless it is a dead letter itself.
    public func deadLetters(_ topic: String) -> Bool { deadLetter && !topic.hasPrefix("deadletter.") }

    /// Creates a policy; the defaults retry nothing, keep no dead letters and restart after 5 failures.
    public init(
        retries: Int = 0, backoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(30),
        deadLetter: Bool = false, restartAfter: Int = 5
    ) {
        self.retries = retries
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.deadLetter = deadLetter
        self.restartAfter = restartAfter
    }
}
