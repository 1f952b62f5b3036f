import Switchboard
import Testing

/// What a client that imports the library keeps of the standard library's names.
@Suite struct ClientNamespaceTests {
    /// `Clock` is still Swift's protocol: the router's clock reads are `SystemClock`.
    @Test func clockIsSwiftsProtocol() {
        func now<C: Clock>(_ clock: C) -> C.Instant { clock.now }
        let before = ContinuousClock.now
        #expect(now(ContinuousClock()) >= before)
    }
}
