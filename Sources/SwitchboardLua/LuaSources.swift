import Foundation
import Synchronization

/// The source files a Lua plugin's state was built from: the plugin and every module it
/// has `require`d, with their contents at load time. A reload compares them with the files
/// on disk to tell whether a subscriber changed.
public final class LuaSources: Sendable {
    private let files = Mutex<[String: Data]>([:])

    /// Creates an empty record; the Lua subscriber given it fills it as it loads.
    public init() {}

    /// True while every recorded file still has the contents it was loaded with.
    public var areCurrent: Bool {
        files.withLock { $0 }.allSatisfy { path, contents in FileManager.default.contents(atPath: path) == contents }
    }

    /// Replaces the record with `paths` as they are now: a new state was built from them.
    func replace(with paths: [String]) {
        let contents = Dictionary(paths.map { ($0, Self.contents(of: $0)) }, uniquingKeysWith: { first, _ in first })
        files.withLock { $0 = contents }
    }

    /// Adds a file as it is now (a module required after `init`).
    func record(_ path: String) {
        let contents = Self.contents(of: path)
        files.withLock { $0[path] = contents }
    }

    private static func contents(of path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }
}
