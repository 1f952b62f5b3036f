#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory that ``JSONTape/init(parsing:reusing:)`` parses one text after another into, so
/// that a stream of JSON lines costs no allocation per line.
///
/// Each tape parsed into it keeps it alive, as any tape keeps its owner. The next parse
/// reuses the memory only once no tape from it is left: one that is still held (a copy, a
/// slice, a value kept somewhere) stays valid, and the next parse takes a fresh scratch.
package final class JSONTapeScratch: @unchecked Sendable {  // written only while no tape holds it
    fileprivate var base: UnsafeMutableRawPointer?
    fileprivate var capacity = 0

    package init() {}

    deinit { free(base) }
}

extension JSONTape {
    /// Parses JSON text, as ``init(parsing:)`` does, into `scratch`'s memory when no tape from
    /// an earlier parse holds it (otherwise into a fresh scratch, which replaces it).
    package init(parsing text: UnsafeRawBufferPointer, reusing scratch: inout JSONTapeScratch) throws(JSONError) {
        if !isKnownUniquelyReferenced(&scratch) { scratch = JSONTapeScratch() }
        let writer = TapeWriter(reusing: scratch.base, capacity: scratch.capacity, minimum: text.count + 64)
        scratch.base = nil  // the writer owns the memory until it hands it back, or frees it on an error
        let (base, capacity, count) = try JSONParser(text, into: writer).parseDocument().release()
        scratch.base = base
        scratch.capacity = capacity
        self.init(owner: scratch, bytes: UnsafeRawBufferPointer(start: base, count: count))
    }
}
