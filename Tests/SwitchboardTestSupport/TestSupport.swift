// Helpers shared by the test targets.
import Foundation
import Switchboard
import Synchronization

/// A thread-safe list that handlers append to.
public final class Recorder<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    public init() {}
    public func append(_ value: Value) { values.withLock { $0.append(value) } }
    public var all: [Value] { values.withLock { $0 } }
    public var count: Int { values.withLock { $0.count } }
}

/// Polls `condition` until it holds or `seconds` pass; a generous bound, not a speed target.
/// It sleeps between polls without holding a thread of the cooperative pool, which other
/// tests' tasks need.
public func eventually(within seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

extension SubscriberStats {
    /// Every routed event has exactly one outcome.
    public var addsUp: Bool { received == handled + failed + dropped + abandoned }
}
