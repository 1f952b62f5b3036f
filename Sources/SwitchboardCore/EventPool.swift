/// The event storages one publishing thread recycles, so that an event's memory goes back to
/// the thread that made it instead of through `free` on the thread of its last subscriber.
///
/// Under glibc's malloc, an event allocated by a publisher and freed by a subscriber crosses
/// arenas twice per event, and the two serialize on the arena: an embedding program without
/// a malloc of its own published at the Go seed's speed, a third of what it reached with
/// jemalloc. Here the publisher keeps a reference to each storage it made and reuses one
/// once it holds the only reference left, that is once every subscriber, and any plugin that
/// kept the event, has let go: nothing is freed per event, and no subscriber ever frees one.
///
/// The pool holds storages in a ring, oldest first. The first ``reserve`` publishes make new
/// ones; after that a publish looks at one: if it is free it is reused, otherwise a new
/// storage takes its place in the ring and the busy one moves to the back, to be looked at
/// again a full turn later. Past ``limit`` storages the busy one is let go instead, to be
/// freed by its last holder as before the pool.
///
/// Only small events are recycled (see ``Event/isPoolable``): a storage keeps its last
/// event's fields until it is reused, and those must not hold on to large memory.
struct EventPool {
    /// The most storages a thread keeps: enough for the events a fast publisher has in
    /// flight on 65,536-slot queues.
    static let limit = 32_768
    /// The most memory a thread's storages take, about (see ``footprint(_:)``): 8 MiB.
    static let budget = 8 << 20
    /// The storages made before any is reused, so that a reused one was let go long before:
    /// one a subscriber released a moment ago is still in that core's cache, and writing it
    /// costs the publisher a transfer. Its storages fit in the budget, however large.
    static let reserve = 1024

    private var storages: [Event.Storage] = []
    private var cursor = 0
    private var bytes = 0

    /// A storage no event uses any more, with room for `tail` bytes of tape, or nil: then
    /// make one and hand it to ``keep(_:)``.
    @inline(__always)
    mutating func reusable(tail: Int) -> Event.Storage? {
        if cursor == storages.count {
            if storages.count < Self.reserve { return nil }
            cursor = 0
        }
        guard isKnownUniquelyReferenced(&storages[cursor]), storages[cursor].tailCapacity >= tail else { return nil }
        defer { cursor += 1 }
        return storages[cursor]
    }

    /// Keeps `storage`, just made because ``reusable(tail:)`` found none, for reuse once its
    /// event is done, in the place of the one found busy or too small. A busy one moves to the
    /// back while the pool may grow, and is let go once it may not; a small one is let go.
    mutating func keep(_ storage: Event.Storage) {
        let size = Self.footprint(storage)
        if cursor == storages.count {  // filling the reserve
            if storages.count < Self.limit, bytes + size <= Self.budget {
                storages.append(storage)
                bytes += size
                cursor = storages.count
                return
            }
            cursor = 0
        }
        let grows = storages.count < Self.limit && bytes + size <= Self.budget
            && !isKnownUniquelyReferenced(&storages[cursor])
        if grows {
            storages.append(storages[cursor])
            bytes += size
        } else {
            bytes += size - Self.footprint(storages[cursor])
        }
        storages[cursor] = storage
        cursor += 1
    }

    /// The memory a storage takes: its tail, and about 128 bytes for the object, the header
    /// and malloc's own.
    private static func footprint(_ storage: Event.Storage) -> Int { storage.tailCapacity + 128 }
}
