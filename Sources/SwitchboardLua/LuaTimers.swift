import SwitchboardCore

/// The `every` and `after` timers of one Lua state, fired by its subscriber's thread between
/// events, so a callback never runs at the same time as `handle`.
struct LuaTimers {
    private struct Timer {
        let id: Int64
        let ref: Int32
        var deadline: UInt64
        let interval: UInt64?  // nil for `after`
    }

    private var timers: [Timer] = []
    private var nextID: Int64 = 1

    /// When the next timer is due, on the monotonic clock (the virtual one under test).
    var nextDeadline: UInt64? { timers.lazy.map(\.deadline).min() }

    /// The shortest interval of `every`: 1 ms (a shorter one, such as 1e-12, would spin).
    private static let shortestIntervalNanos: UInt64 = 1_000_000

    /// The longest delay kept as given, about 31 years: a longer one (up to infinity) waits that long.
    private static let longestNanos: UInt64 = 1_000_000_000_000_000_000

    /// Adds a timer for the function at registry reference `ref`, due `seconds` after `now`
    /// (on the clock of ``nextDeadline``); returns its id. C has refused a delay that is
    /// negative or NaN.
    mutating func add(seconds: Double, repeating: Bool, ref: Int32, now: UInt64) -> Int64 {
        let nanos = seconds * 1e9 < Double(Self.longestNanos) ? UInt64(max(0, seconds) * 1e9) : Self.longestNanos
        defer { nextID += 1 }
        timers.append(Timer(
            id: nextID, ref: ref, deadline: Self.adding(nanos, to: now),
            interval: repeating ? max(nanos, Self.shortestIntervalNanos) : nil))
        return nextID
    }

    /// Removes a timer; returns its reference for the caller to release, nil if it already ended.
    mutating func cancel(id: Int64) -> Int32? {
        guard let index = timers.firstIndex(where: { $0.id == id }) else { return nil }
        return timers.remove(at: index).ref
    }

    /// The earliest timer due at `now`, if any, with whether its reference is to be released
    /// (a one-shot timer, now removed). A repeating timer is rescheduled past `now`, so one
    /// call of the loop that drains this fires each timer at most once.
    mutating func takeDue(now: UInt64) -> (ref: Int32, release: Bool)? {
        guard let index = timers.indices.min(by: { timers[$0].deadline < timers[$1].deadline }),
              timers[index].deadline <= now
        else { return nil }
        guard let interval = timers[index].interval else { return (timers.remove(at: index).ref, true) }
        let next = Self.adding(interval, to: timers[index].deadline)
        timers[index].deadline = next > now ? next : Self.adding(interval, to: now)
        return (timers[index].ref, false)
    }

    /// `time + nanos`, at most the clock's end: a test's virtual clock may be advanced centuries.
    private static func adding(_ nanos: UInt64, to time: UInt64) -> UInt64 {
        let (sum, overflow) = time.addingReportingOverflow(nanos)
        return overflow ? .max : sum
    }
}
