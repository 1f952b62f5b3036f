import Foundation
import Switchboard
import Synchronization

/// A thread-safe list that handlers append to.
final class Recorder<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
    var count: Int { values.withLock { $0.count } }
}

/// A gate a handler can wait at until the test opens it.
final class Gate: Sendable {
    private let state = Mutex((open: false, waiting: 0))
    func open() { state.withLock { $0.open = true } }
    /// Blocks the calling handler until opened.
    func pass() {
        state.withLock { $0.waiting += 1 }
        while !state.withLock({ $0.open }) { usleep(200) }
    }
    var waiting: Int { state.withLock { $0.waiting } }
}

/// Polls `condition` until it holds or `seconds` pass; a generous bound, not a speed target.
/// It sleeps between polls without holding a thread of the cooperative pool, which other
/// tests' tasks need.
func eventually(within seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

struct Failure: Error {}

extension SubscriberStats {
    /// Every routed event has exactly one outcome.
    var addsUp: Bool { received == handled + failed + dropped + abandoned }
}
