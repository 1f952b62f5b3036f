#include "CSwitchboardCore.h"

// Exported by libswiftCore with the C calling convention; compiled Swift calls it where it
// can merge several retains of one object.
extern void *swift_retain_n(void *object, uint32_t count);

void *sb_retain_n(void *object, uint32_t count) {
  return swift_retain_n(object, count);
}
