#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// What makes one process at a time the writer of a journal: a POSIX record lock on the file
/// `lock` in its folder, which holds the writer's process id. The kernel lets go of it when
/// the process ends, however it ends, so a crash leaves no stale lock behind. (A record lock
/// belongs to the process: within one, only ``Journal`` opens the file.)
public final class JournalLock: Sendable {
    /// Another process writes the journal.
    public struct InUse: Error, CustomStringConvertible {
        /// The folder.
        public let folder: String
        /// The process that holds it.
        public let holder: pid_t

        public var description: String {
            "the journal at \(folder) is in use by another process (pid \(holder)): one instance at a time writes a journal; stop that one, or give this one a journal.path of its own"
        }
    }

    private let descriptor: Atomic<Int32>  // -1 once let go

    private init(descriptor: Int32) { self.descriptor = Atomic(descriptor) }

    private static func path(in folder: String) -> String { (folder as NSString).appendingPathComponent("lock") }

    /// Takes the lock of the journal in `folder`, or throws ``InUse``.
    static func acquire(in folder: String) throws -> JournalLock {
        let descriptor = open(path(in: folder), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path(in: folder), NSLocalizedDescriptionKey: String(cString: strerror(errno))])
        }
        var request = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: 0, l_len: 0, l_pid: 0)
        guard fcntl(descriptor, F_SETLK, &request) == 0 else {
            close(descriptor)
            throw InUse(folder: folder, holder: holder(of: folder) ?? 0)
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, pid, pid.utf8.count, 0)  // for people; the lock is what counts
        return JournalLock(descriptor: descriptor)
    }

    /// The process that writes the journal in `folder` now, if one does.
    public static func holder(of folder: String) -> pid_t? {
        let descriptor = open(path(in: folder), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }  // never written, so never held
        defer { close(descriptor) }
        var request = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: 0, l_len: 0, l_pid: 0)
        guard fcntl(descriptor, F_GETLK, &request) == 0, request.l_type != Int16(F_UNLCK) else { return nil }
        return request.l_pid
    }

    /// Lets go of the lock; again, does nothing.
    func release() {
        let held = descriptor.exchange(-1, ordering: .relaxed)
        if held >= 0 { close(held) }
    }
}
