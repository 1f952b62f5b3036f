/// Where a subscriber with the ``OverflowPolicy/spill`` policy reads its events: the router's
/// journal. A spilling subscriber never has an event dropped and never makes a publisher
/// wait: it reads every accepted event, in journal order, from its own durable position.
public protocol SpillSource: AnyObject, Sendable {
    /// The number the next accepted event will get.
    var nextSequence: UInt64 { get }
    /// False once the journal cannot write (a full disk): spilling subscribers drop instead.
    var isWriting: Bool { get }
    /// The events numbered `sequence` and after, as far as they have been written.
    func cursor(from sequence: UInt64) -> any SpillCursor
    /// The position saved for the subscriber `name`: every event through it was handled.
    func position(of name: String) -> UInt64?
    /// Saves that the subscriber `name` has handled every event through `sequence`.
    func savePosition(_ sequence: UInt64, of name: String)
}

/// Reads events from a ``SpillSource`` in order.
public protocol SpillCursor {
    /// The next event and its number; nil when the cursor has reached what is written so far
    /// (call again later: it goes on from there).
    mutating func next() -> (sequence: UInt64, event: Event)?
}
