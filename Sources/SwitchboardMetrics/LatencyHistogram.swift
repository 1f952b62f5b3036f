import Synchronization

/// A Prometheus histogram of durations, cheap enough to record every handler call: a bucket
/// found among eleven integer bounds and two uncontended atomic additions, no lock.
/// (swift-prometheus's histogram takes a lock and compares 128-bit `Duration`s per bucket:
/// recording lag and duration with it cost the Lua pipeline a fifth of its speed.)
final class LatencyHistogram: Sendable {
    /// Upper bounds of the buckets, in nanoseconds: 100 µs to 10 s; the last bucket is +Inf.
    static let bounds: [Int64] = [
        100_000, 500_000, 1_000_000, 5_000_000, 10_000_000, 50_000_000, 100_000_000, 500_000_000,
        1_000_000_000, 5_000_000_000, 10_000_000_000,
    ]
    private let counts: InlineArray<12, Atomic<UInt64>> = InlineArray { _ in Atomic<UInt64>(0) }
    private let sumNanos = Atomic<UInt64>(0)

    /// Counts one observation.
    func record(nanoseconds: Int64) {
        var bucket = 0
        while bucket < Self.bounds.count, nanoseconds > Self.bounds[bucket] { bucket += 1 }
        counts[bucket].wrappingAdd(1, ordering: .relaxed)
        sumNanos.wrappingAdd(UInt64(max(0, nanoseconds)), ordering: .relaxed)
    }

    /// Appends the samples in the Prometheus text format: cumulative buckets, sum in seconds, count.
    func render(name: String, labels: String, into text: inout String) {
        var cumulative: UInt64 = 0
        for bucket in 0..<12 {
            cumulative += counts[bucket].load(ordering: .relaxed)
            let bound = bucket < Self.bounds.count ? "\(Double(Self.bounds[bucket]) / 1e9)" : "+Inf"
            text += "\(name)_bucket{\(labels),le=\"\(bound)\"} \(cumulative)\n"
        }
        text += "\(name)_sum{\(labels)} \(Double(sumNanos.load(ordering: .relaxed)) / 1e9)\n"
        text += "\(name)_count{\(labels)} \(cumulative)\n"
    }
}
