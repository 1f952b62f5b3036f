import Foundation

/// The segment files of a journal folder: `<first sequence, 20 digits>.journal`, read in order.
enum JournalSegments {
    static let suffix = ".journal"

    /// The segment files, oldest first, with the first sequence number each holds.
    static func list(in folder: String) -> [(path: String, first: UInt64)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { name -> (String, UInt64)? in
            guard name.hasSuffix(suffix), let first = UInt64(name.dropLast(suffix.count)) else { return nil }
            return ((folder as NSString).appendingPathComponent(name), first)
        }.sorted { $0.1 < $1.1 }
    }

    /// The name of the segment whose first record is `sequence`.
    static func name(startingAt sequence: UInt64) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }
}

/// Bytes the journal reads (a whole segment file, or one record), owned: the records and
/// tapes decoded from them point into them.
final class OwnedBytes: @unchecked Sendable {  // immutable after init
    let bytes: UnsafeRawBufferPointer

    /// A copy of `source`.
    init(_ source: some Collection<UInt8>) {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 8)
        _ = storage.initializeMemory(as: UInt8.self, from: source)
        bytes = UnsafeRawBufferPointer(rebasing: storage[0..<source.count])
    }

    /// The whole file at `path`.
    convenience init(path: String) throws {
        self.init(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    var count: Int { bytes.count }

    deinit { bytes.deallocate() }
}
