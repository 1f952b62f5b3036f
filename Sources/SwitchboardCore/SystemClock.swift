#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cheap clock reads (vDSO, no system call) for the hot path. (Not named `Clock`, which would
/// shadow `Swift.Clock` for every client that imports the router.)
public enum SystemClock {
    /// Nanoseconds on the monotonic clock: for deadlines and durations.
    @inline(__always) public static func monotonicNanos() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// Unix time in seconds, with a fraction: for event timestamps.
    @inline(__always) public static func unixSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9  // a division took a twentieth of a publish
    }

    /// A `Duration` in nanoseconds, saturating at the bounds of `UInt64`.
    public static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ UInt64(attoseconds / 1_000_000_000)
    }
}
