/// A one-shot signal that threads can block on and tasks can await.
package final class Completion: @unchecked Sendable {
    private let lock = ConditionLock()
    private var done = false
    private var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter = 0

    /// A signal not yet given.
    package init() {}

    /// True once ``signal()`` ran.
    package var isDone: Bool { lock.withLock { done } }

    /// Marks it done and wakes every waiter; later calls do nothing.
    package func signal() {
        lock.lock()
        guard !done else {
            lock.unlock()
            return
        }
        done = true
        let resumed = waiters.values
        waiters = [:]
        lock.unlock()
        lock.broadcast()
        for waiter in resumed { waiter.resume() }
    }

    /// Blocks the calling thread until done.
    package func waitBlocking() {
        lock.withLock { while !done { lock.wait() } }
    }

    /// Suspends until done or the task is cancelled.
    package func wait() async {
        // The lock is never held across `withTaskCancellationHandler`: for a task that is already
        // cancelled, the handler runs at once, on this thread, and takes the lock itself.
        let id: Int? = lock.withLock {
            if done { return nil }
            nextWaiter += 1
            return nextWaiter
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                lock.lock()
                if done || Task.isCancelled {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                waiters[id] = continuation
                lock.unlock()
            }
        } onCancel: {
            let waiter = lock.withLock { waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Suspends until done, or for at most `timeout`; true if done.
    @discardableResult
    package func wait(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return isDone
    }
}
