/// Sees every handler call of one subscriber, on the subscriber's own thread: the seam for
/// lag and duration metrics. Installed with ``Router/observeHandlers(_:)``; a router without
/// one reads no clock per event.
public protocol HandlerObserver: Sendable {
    /// One handler call ended (whatever its outcome): `lagNanoseconds` from publish to the
    /// call's start, `durationNanoseconds` of the call.
    func observe(lagNanoseconds: Int64, durationNanoseconds: Int64)
}
