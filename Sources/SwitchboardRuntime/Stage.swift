import ServiceLifecycle

/// One step of an instance's start-up, run as a service of its `ServiceGroup`: it waits until
/// the step before it is ready, starts, says it is ready, serves until the group shuts down
/// gracefully, then stops. The group shuts services down in reverse order, so each step stops
/// after every step that started after it.
///
/// `body` starts the step, calls its argument once ready, waits (``untilShutdown()``) and tears
/// down. If it throws or returns before it is ready, no later step starts.
struct Stage: Service {
    let name: String
    let after: Readiness?
    let readiness = Readiness()
    let body: @Sendable (_ ready: @escaping @Sendable () -> Void) async throws -> Void

    init(_ name: String, after: Stage?, body: @escaping @Sendable (_ ready: @escaping @Sendable () -> Void) async throws -> Void) {
        self.name = name
        self.after = after?.readiness
        self.body = body
    }

    func run() async throws {
        defer { readiness.failed() }  // if it never got ready
        if let after {
            // The group may shut down while an earlier step is still starting. If that step never
            // got ready, this one waits for its turn to stop: returning at once would make the
            // group, busy stopping a later step, cancel everything instead of stopping in order.
            guard await cancelWhenGracefulShutdown({ await after.wait() }) else {
                await Self.untilShutdown()
                return
            }
        }
        try await body { readiness.ready() }
    }

    /// Waits until the group shuts down gracefully.
    static func untilShutdown() async {
        try? await gracefulShutdown()
    }
}
