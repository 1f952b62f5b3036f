/// Why the router refused a call.
public enum RouterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The topic or pattern breaks the grammar.
    case invalidTopic(TopicError)
    /// The router is shutting down or has shut down.
    case shutDown
    /// A parameter is out of range; the text says which.
    case invalidArgument(String)
    /// The subscriber's handler failed to start; the text says why.
    case startFailed(subscriber: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidTopic(error): error.description
        case .shutDown: "the router is shutting down"
        case let .invalidArgument(text): text
        case let .startFailed(subscriber, reason): "subscriber '\(subscriber)' failed to start: \(reason)"
        }
    }
}
