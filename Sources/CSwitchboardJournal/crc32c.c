#include "CSwitchboardJournal.h"
#include <string.h>

static uint32_t table[256];
static int has_sse42 = -1;

static void init_table(void) {
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t crc = index;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
        table[index] = crc;
    }
}

static uint32_t software(uint32_t crc, const unsigned char *bytes, size_t length) {
    while (length--) crc = table[(crc ^ *bytes++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t hardware(uint32_t crc, const unsigned char *bytes, size_t length) {
    uint64_t wide = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = __builtin_ia32_crc32di(wide, word);
        bytes += 8;
        length -= 8;
    }
    crc = (uint32_t)wide;
    while (length--) crc = __builtin_ia32_crc32qi(crc, *bytes++);
    return crc;
}
#endif

uint32_t sb_crc32c(uint32_t crc, const void *bytes, size_t length) {
    if (__atomic_load_n(&has_sse42, __ATOMIC_ACQUIRE) < 0) {  // every thread computes the same answer
        int supported = 0;
#if defined(__x86_64__)
        __builtin_cpu_init();
        supported = __builtin_cpu_supports("sse4.2");
#endif
        if (!supported) init_table();  // before the flag says it is ready
        __atomic_store_n(&has_sse42, supported, __ATOMIC_RELEASE);
    }
    crc = ~crc;
#if defined(__x86_64__)
    if (has_sse42) return ~hardware(crc, bytes, length);
#endif
    return ~software(crc, bytes, length);
}
