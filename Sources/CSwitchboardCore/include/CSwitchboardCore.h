// What the router core needs from the Swift runtime and Swift cannot spell.
#ifndef CSWITCHBOARD_CORE_H
#define CSWITCHBOARD_CORE_H
#include <stdint.h>

/// Adds `count` strong references to the Swift object `object` with one atomic operation
/// (the runtime's swift_retain_n, which Swift code may not name); returns `object`.
void *sb_retain_n(void *object, uint32_t count);

#endif
