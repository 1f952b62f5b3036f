import Foundation
import Switchboard
@_exported import SwitchboardTestSupport
import Synchronization

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

struct Failure: Error {}

