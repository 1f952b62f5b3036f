// The journal's checksum: CRC-32C (Castagnoli), with the SSE 4.2 instruction where the CPU
// has it (about 8 bytes a cycle) and a table otherwise. Swift has no portable spelling of it.
#ifndef CSWITCHBOARD_JOURNAL_H
#define CSWITCHBOARD_JOURNAL_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C of `length` bytes at `bytes`, continuing from `crc` (0 to start).
uint32_t sb_crc32c(uint32_t crc, const void *bytes, size_t length);

#endif
