// Shared between the shim's C files; not part of the Swift-facing header.
#ifndef CSWITCHBOARD_LUA_INTERNAL_H
#define CSWITCHBOARD_LUA_INTERNAL_H

#include "CSwitchboardLua.h"
#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>

#define SB_ARRAY_MT "switchboard.array"
#define SB_OBJECT_MT "switchboard.object"
#define SB_TIMER_MT "switchboard.timer"

/// What C keeps per state, reached through the state's extra space (shared by its coroutines).
typedef struct sb_context {
    void *host;          // the Swift object
    sb_buffer tape;      // scratch for Lua → tape
    size_t memory_used;  // bytes the allocator holds
    int output;          // where print writes
} sb_context;

extern sb_host_callbacks sb_callbacks;

static inline sb_context *sb_context_of(lua_State *L) { return *(sb_context **)lua_getextraspace(L); }

// tape.c
/// Pushes the value at the front of the tape (advancing *cursor). Raises on a malformed tape.
void sb_push_tape(lua_State *L, const unsigned char **cursor, const unsigned char *end, int depth);
/// Appends the value at `index` to `buffer` as a tape. Raises on a value JSON cannot hold.
void sb_encode_value(lua_State *L, int index, sb_buffer *buffer);
/// Appends the table at `index`, which must map strings to strings, as an object tape. Raises otherwise.
void sb_encode_headers(lua_State *L, int index, sb_buffer *buffer);

// host.c
/// Pushes nothing; sets the global `switchboard` table and replaces `print`.
void sb_install_host_api(lua_State *L, sb_bytes name, sb_bytes settings_tape);

#endif
