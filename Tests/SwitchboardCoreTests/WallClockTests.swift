@testable import SwitchboardCore
import Testing

@Suite struct WallClockTests {
    /// Every reading falls between two readings of the system clock taken around it, while
    /// the clock goes from reading the system clock to extrapolating from the cycle counter.
    @Test func readingsStayWithTheSystemClock() {
        var clock = WallClock()
        let tolerance = 0.000_1  // the extrapolation's error over a span is far below this
        let end = SystemClock.monotonicNanos() + 30_000_000
        var readings = 0
        while SystemClock.monotonicNanos() < end {
            let before = SystemClock.unixSeconds()
            let reading = clock.now()
            let after = SystemClock.unixSeconds()
            if reading < before - tolerance || reading > after + tolerance {
                Issue.record("reading \(reading) outside [\(before), \(after)]")
                return
            }
            readings += 1
        }
        #expect(readings > 1000)
        #expect(clock.isExtrapolating == WallClock.countsCycles)
    }
}
