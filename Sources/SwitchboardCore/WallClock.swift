import CSwitchboardCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Event timestamps for one publishing thread: the system's wall clock, read about once a
/// millisecond, and in between extrapolated from the CPU's time-stamp counter.
///
/// `clock_gettime` took a fifth of a fan-out publish; the counter costs half as much. It is
/// used only where the kernel keeps time with it too (so it runs at a constant rate and
/// agrees across cores); elsewhere every reading is the system clock's. Each re-reading
/// also measures the counter's rate, so the extrapolation follows the wall clock's own
/// adjustments, and a step of the wall clock shows within a millisecond.
struct WallClock {
    /// Counter ticks between two readings of the system clock: about a millisecond at 2 GHz.
    private static let span: UInt64 = 1 << 21

    /// True where the kernel's clock source is the time-stamp counter.
    static let countsCycles: Bool = {
        let source = "/sys/devices/system/clocksource/clocksource0/current_clocksource"
        guard sb_cycles() != 0, let file = fopen(source, "r") else { return false }
        defer { fclose(file) }
        var name = [UInt8](repeating: 0, count: 32)
        let count = fread(&name, 1, name.count, file)
        return name[..<count].elementsEqual("tsc\n".utf8)
    }()

    private let counting = WallClock.countsCycles
    private var anchorCycles: UInt64 = 0
    private var anchorNanos: UInt64 = 0
    /// Nanoseconds per tick, once measured over one to four spans; 0 before.
    private var nanosPerCycle = 0.0

    /// True once readings are extrapolated from the counter.
    var isExtrapolating: Bool { nanosPerCycle > 0 }

    /// Unix time in seconds, with a fraction.
    @inline(__always) mutating func now() -> Double {
        let cycles = counting ? sb_cycles() : 0
        let elapsed = cycles &- anchorCycles
        if elapsed < Self.span, nanosPerCycle > 0 {
            return Double(anchorNanos &+ UInt64(Double(elapsed) * nanosPerCycle)) * 1e-9
        }
        return reanchor(at: cycles, elapsed: elapsed)
    }

    /// Reads the system clock, measures the counter's rate against the last reading when the
    /// two are one to four spans apart (not after an idle spell or a counter that went back),
    /// and starts a new span. A small step of the wall clock within a span skews the next
    /// span's readings by at most the step; the reading after it measures the rate afresh.
    @inline(never) private mutating func reanchor(at cycles: UInt64, elapsed: UInt64) -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let nanos = UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
        if counting, anchorCycles != 0 {
            if elapsed < Self.span { return Double(nanos) * 1e-9 }  // no rate yet: the span goes on
            if elapsed < 4 * Self.span, nanos > anchorNanos {
                let rate = Double(nanos - anchorNanos) / Double(elapsed)
                if rate > 0.1, rate < 10 { nanosPerCycle = rate }  // 0.1 to 10 GHz; anything else spans a step
            }
        }
        anchorCycles = cycles
        anchorNanos = nanos
        return Double(nanos) * 1e-9
    }
}
