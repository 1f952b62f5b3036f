import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-thread publishing state: the routing table this thread last saw, its cache of
/// topic → subscribers, a block of event ids, and the pool its events' memory returns to.
/// Kept in thread-local storage so that concurrent publishers share no lock and no written
/// cache line in the common path.
/// Reached through a pointer (``current``), which also spares the hot path the dynamic
/// exclusivity checks that a class's stored properties would cost.
struct PublisherContext {
    /// The most topics a thread caches before it starts over.
    static let cacheLimit = 4096
    private static let idBlock: UInt64 = 4096

    var routerSerial = -1
    var generation = -1
    var table: RoutingTable?
    var cache: [String: [Subscriber]] = [:]
    /// The last topic published and its subscribers: a burst of one topic skips the hash lookup.
    var lastTopic = ""
    var lastTargets: [Subscriber] = []
    /// The topics published before the last one, and their subscribers: a feed that cycles
    /// through a few topics finds them by comparison, without hashing the topic.
    var recent: [(topic: String, targets: [Subscriber])] = []
    /// Where the next topic to leave `lastTopic` goes in `recent`, once it is full.
    var recentCursor = 0
    static let recentLimit = 8
    /// Set on subscriber threads: their publishes never wait on a full `block` queue.
    var isSubscriberThread = false
    /// On a subscriber's thread, its context: what it publishes is counted there.
    var publisher: SubscriberContext?
    /// The storages of the events this thread published, reused once their subscribers are done.
    var pool = EventPool()
    /// The memory event lines are parsed into (``Router/publish(eventLine:)``).
    var scratch = JSONTapeScratch()
    /// Timestamps for the events this thread publishes.
    var clock = WallClock()
    /// The process's id prefix, copied: reading the lazy global costs a call on every publish.
    private let idPrefix = processPrefix
    private var nextSequence: UInt64 = 0
    private var sequenceLimit: UInt64 = 0

    /// The thread-local slot that holds each thread's context. A router keeps a copy and
    /// passes it to ``current(_:)``: reading this lazy global costs a call on every access.
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            guard let context = raw?.assumingMemoryBound(to: PublisherContext.self) else { return }
            context.deinitialize(count: 1)
            context.deallocate()
        }
        return key
    }()

    /// The calling thread's context, created on first use and freed when the thread exits.
    static func current(_ key: pthread_key_t = key) -> UnsafeMutablePointer<PublisherContext> {
        if let raw = pthread_getspecific(key) {
            return raw.assumingMemoryBound(to: PublisherContext.self)
        }
        let context = UnsafeMutablePointer<PublisherContext>.allocate(capacity: 1)
        context.initialize(to: PublisherContext())
        pthread_setspecific(key, context)
        return context
    }

    /// A fresh id; takes a new block of sequence numbers from the process-wide counter when this one runs out.
    @inline(__always) mutating func nextID() -> EventID {
        if nextSequence == sequenceLimit {
            nextSequence = idSequence.wrappingAdd(Self.idBlock, ordering: .relaxed).oldValue
            sequenceLimit = nextSequence + Self.idBlock
        }
        defer { nextSequence += 1 }
        return EventID(prefix: idPrefix, sequence: nextSequence)
    }
}

private let processPrefix = UInt64.random(in: 1...UInt64.max)
private let idSequence = Atomic<UInt64>(1)

/// An immutable routing snapshot: the trie of every active subscriber's patterns and the
/// accept hooks. Rebuilt lazily after a change, then shared read-only by all publishers.
final class RoutingTable: Sendable {
    let generation: Int
    let trie: TopicTrie<Subscriber>
    let hooks: [@Sendable (Event) -> Void]

    init(generation: Int, subscribers: [Subscriber], hooks: [@Sendable (Event) -> Void]) {
        self.generation = generation
        var trie = TopicTrie<Subscriber>()
        for subscriber in subscribers {
            for pattern in subscriber.patterns { trie.insert(pattern, subscriber) }
        }
        self.trie = trie
        self.hooks = hooks
    }
}
