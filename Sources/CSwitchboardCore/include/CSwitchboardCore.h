// What the router core needs from the Swift runtime and the CPU, and Swift cannot spell.
#ifndef CSWITCHBOARD_CORE_H
#define CSWITCHBOARD_CORE_H
#include <stdint.h>

/// Adds `count` strong references to the Swift object `object` with one atomic operation
/// (the runtime's swift_retain_n, which Swift code may not name); returns `object`.
void *sb_retain_n(void *object, uint32_t count);

/// The CPU's time-stamp counter on x86-64 (about 10 ns to read in a VM, where
/// clock_gettime takes 23); 0 elsewhere.
static inline uint64_t sb_cycles(void) {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return 0;
#endif
}

#endif
