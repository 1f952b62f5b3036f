// What the journal needs from C: its checksum, CRC-32C (Castagnoli), with the SSE 4.2
// instruction where the CPU has it (about 8 bytes a cycle) and a table otherwise, and the
// lock of its folder. Swift has no portable spelling of either.
#ifndef CSWITCHBOARD_JOURNAL_H
#define CSWITCHBOARD_JOURNAL_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C of `length` bytes at `bytes`, continuing from `crc` (0 to start).
uint32_t sb_crc32c(uint32_t crc, const void *bytes, size_t length);

/// Takes an exclusive lock on the whole file open as `fd`, without waiting: 0, or -1 with
/// errno (EAGAIN or EACCES while another holds one). On Linux an open file description's
/// lock (F_OFD_SETLK): it belongs to `fd`, not to the process, so closing another descriptor
/// of the file in the same process keeps it, and a second lock in the same process conflicts.
/// Elsewhere a POSIX record lock. The kernel drops it when `fd` closes, however the process ends.
int sb_lock_file(int fd);

/// 1 when another open file description (or process) holds a lock on the file open as `fd`,
/// 0 when none does, -1 with errno on failure.
int sb_file_is_locked(int fd);

#endif
