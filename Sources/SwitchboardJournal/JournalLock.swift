#if canImport(Glibc)
import Glibc
#endif
import CSwitchboardJournal
import Foundation
import Synchronization

/// What makes one journal at a time the writer of a folder: a lock on the file `lock` in it
/// (see `sb_lock_file`), which also holds the writer's process id for people and messages.
/// The kernel lets go of it when the process ends, however it ends, so a crash leaves no
/// stale lock behind. On Linux a second journal on the folder in the same process is refused too.
public final class JournalLock: Sendable {
    /// Another journal writes the folder, in this process or another.
    public struct InUse: Error, CustomStringConvertible {
        /// The folder.
        public let folder: String
        /// The process that holds it, as its lock file says; nil if it says nothing readable.
        public let holder: pid_t?

        public var description: String {
            let pid = holder.map { " (pid \($0))" } ?? ""
            return "the journal at \(folder) is in use by another instance\(pid): one at a time writes a journal; stop that one, or give this one a journal.path of its own"
        }
    }

    private let descriptor: Atomic<Int32>  // -1 once let go

    private init(descriptor: Int32) { self.descriptor = Atomic(descriptor) }

    deinit { release() }

    private static func path(in folder: String) -> String { (folder as NSString).appendingPathComponent("lock") }

    /// Takes the lock of the journal in `folder`, or throws ``InUse``.
    static func acquire(in folder: String) throws -> JournalLock {
        let descriptor = open(path(in: folder), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path(in: folder), NSLocalizedDescriptionKey: String(cString: strerror(errno))])
        }
        guard sb_lock_file(descriptor) == 0 else {
            close(descriptor)
            throw InUse(folder: folder, holder: writer(in: folder))
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, pid, pid.utf8.count, 0)  // for people; the lock is what counts
        return JournalLock(descriptor: descriptor)
    }

    /// The process that writes the journal in `folder` now, if one does: its pid, or 0 when
    /// its lock file names none.
    public static func holder(of folder: String) -> pid_t? {
        let descriptor = open(path(in: folder), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }  // never written, so never held
        defer { close(descriptor) }
        guard sb_file_is_locked(descriptor) == 1 else { return nil }
        return writer(in: folder) ?? 0
    }

    /// The process id the lock file holds.
    private static func writer(in folder: String) -> pid_t? {
        (try? String(contentsOfFile: path(in: folder), encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Lets go of the lock; again, does nothing.
    func release() {
        let held = descriptor.exchange(-1, ordering: .relaxed)
        if held >= 0 { close(held) }
    }
}
