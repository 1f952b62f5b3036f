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

/// A segment file's bytes, read whole; records and their tapes point into them.
final class SegmentBytes: @unchecked Sendable {  // immutable after init
    let buffer: UnsafeMutableRawBufferPointer

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        buffer = .allocate(byteCount: max(data.count, 1), alignment: 8)
        data.copyBytes(to: buffer.bindMemory(to: UInt8.self))
        count = data.count
    }

    let count: Int
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<count]) }

    deinit { buffer.deallocate() }
}
