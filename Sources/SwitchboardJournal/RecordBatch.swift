/// The writer's batch of encoded records: bytes appended in place, without zeroing them
/// first, in one buffer kept from batch to batch.
struct RecordBatch: ~Copyable {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    /// The bytes appended since the last ``removeAll()``.
    private(set) var count = 0

    init(capacity: Int = 1 << 20) {
        base = .allocate(byteCount: capacity, alignment: 8)
        self.capacity = capacity
    }

    deinit { base.deallocate() }

    /// What was appended; valid until the next change.
    var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: count) }

    /// Empties the batch, keeping its buffer.
    mutating func removeAll() { count = 0 }

    /// Appends `size` bytes, every one of which `body` writes.
    mutating func append(size: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        if count + size > capacity {
            capacity = max(capacity * 2, count + size)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
            grown.copyMemory(from: base, byteCount: count)
            base.deallocate()
            base = grown
        }
        body(UnsafeMutableRawBufferPointer(start: base + count, count: size))
        count += size
    }
}
