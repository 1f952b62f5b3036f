import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A lock for short critical sections, with a fixed number of conditions to wait on that
/// time out on the monotonic clock.
///
/// Used where a thread must sleep until woken (subscriber queues, blocked publishers),
/// which `Synchronization.Mutex` cannot do. Taking the lock is one compare-and-swap and
/// releasing it one plain store: a fan-out publish takes and releases one per subscriber,
/// and with a pthread mutex those two calls were an eighth of its cost. A thread that finds
/// the lock taken spins briefly, then yields its core, since the holder may be descheduled.
/// Only waiting and waking touch a pthread mutex and its condition variables.
package final class ConditionLock: @unchecked Sendable {
    private let held = Atomic<Bool>(false)
    /// Guards `generations` and the condition variables, for waiters and wakers only.
    private let parking = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    /// Per condition, how many times it was signalled. A waiter reads it before it lets go of
    /// the lock and sleeps until it changes, so a wakeup given in between is never lost.
    private let generations: UnsafeMutablePointer<UInt64>
    private let conditionCount: Int

    package init(conditions count: Int = 1) {
        check(pthread_mutex_init(parking, nil), "pthread_mutex_init")
        conditionCount = count
        conditions = .allocate(capacity: count)
        generations = .allocate(capacity: count)
        generations.initialize(repeating: 0, count: count)
        var attributes = pthread_condattr_t()
        check(pthread_condattr_init(&attributes), "pthread_condattr_init")
        #if !canImport(Darwin)
        check(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC), "pthread_condattr_setclock")
        #endif
        for index in 0..<count { check(pthread_cond_init(conditions + index, &attributes), "pthread_cond_init") }
        check(pthread_condattr_destroy(&attributes), "pthread_condattr_destroy")
    }

    deinit {
        for index in 0..<conditionCount { check(pthread_cond_destroy(conditions + index), "pthread_cond_destroy") }
        conditions.deallocate()
        generations.deallocate()
        check(pthread_mutex_destroy(parking), "pthread_mutex_destroy")
        parking.deallocate()
    }

    @inline(__always) package func lock() {
        if !held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { lockContended() }
    }

    @inline(never) private func lockContended() {
        var spins = 0
        while true {
            if !held.load(ordering: .relaxed),
                held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
            {
                return
            }
            spins += 1
            if spins >= 64 { sched_yield() }
        }
    }

    @inline(__always) package func unlock() { held.store(false, ordering: .releasing) }

    /// Runs `body` with the lock held.
    @inline(__always) package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits on condition `index`; the lock must be held, and is held again on return.
    package func wait(_ index: Int = 0) {
        _ = park(index) { pthread_cond_wait(conditions + index, parking) }  // checked in park
    }

    /// Waits on condition `index` until the monotonic deadline (nanoseconds); false when it timed out.
    package func wait(_ index: Int = 0, untilMonotonic deadline: UInt64) -> Bool {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return park(index) { pthread_cond_timedwait(conditions + index, parking, &time) }
    }

    /// With the lock held: lets go of it, sleeps with `sleep` until condition `index` is
    /// signalled (true) or `sleep` reports a timeout (false), and takes the lock again.
    private func park(_ index: Int, _ sleep: () -> Int32) -> Bool {
        check(pthread_mutex_lock(parking), "pthread_mutex_lock")
        let seen = generations[index]
        unlock()
        var signalled = true
        while generations[index] == seen {
            let code = sleep()
            if code == ETIMEDOUT {
                signalled = generations[index] != seen
                break
            }
            check(code, "pthread_cond_wait")
        }
        check(pthread_mutex_unlock(parking), "pthread_mutex_unlock")
        lock()
        return signalled
    }

    package func signal(_ index: Int = 0) { wake(index) { pthread_cond_signal($0) } }
    package func broadcast(_ index: Int = 0) { wake(index) { pthread_cond_broadcast($0) } }

    private func wake(_ index: Int, _ notify: (UnsafeMutablePointer<pthread_cond_t>) -> Int32) {
        check(pthread_mutex_lock(parking), "pthread_mutex_lock")
        generations[index] &+= 1
        check(notify(conditions + index), "pthread_cond_signal")
        check(pthread_mutex_unlock(parking), "pthread_mutex_unlock")
    }
}

/// Stops the process when a pthread call failed, as swift-nio's NIOLock does: a lock or a
/// condition that does not work would lose wakeups or corrupt what it guards.
@inline(__always)
private func check(_ code: Int32, _ call: StaticString) {
    precondition(code == 0, "\(call) failed with error \(code)")
}
