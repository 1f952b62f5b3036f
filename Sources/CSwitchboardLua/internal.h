// Shared between the shim's C files; not part of the Swift-facing header.
#ifndef CSWITCHBOARD_LUA_INTERNAL_H
#define CSWITCHBOARD_LUA_INTERNAL_H

#include "CSwitchboardLua.h"
#include <pthread.h>
#include <stdatomic.h>
#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>

#define SB_ARRAY_MT "switchboard.array"
#define SB_OBJECT_MT "switchboard.object"
#define SB_TIMER_MT "switchboard.timer"

/// Small blocks (up to SB_SMALL_LIMIT bytes) come from per-state free lists, one per
/// 16-byte size class, carved from 64 KiB slabs: a state is only used by one thread, so
/// they need no locking, and building and dropping event tables costs no malloc or free.
#define SB_SMALL_LIMIT 256
#define SB_SIZE_CLASSES (SB_SMALL_LIMIT / 16)

typedef struct sb_slab {
    struct sb_slab *next;
} sb_slab;

typedef struct sb_pool {
    void *free[SB_SIZE_CLASSES];  // intrusive lists of free blocks, by size class
    sb_slab *slabs;               // every slab, freed when the state closes
    char *cursor, *end;           // the unused rest of the newest slab
} sb_pool;

/// What C keeps per state, reached through the state's extra space (shared by its coroutines).
typedef struct sb_context {
    void *host;          // the Swift object
    lua_State *main;     // the state's main thread, which the watchdog arms
    struct sb_context *watched_next, *watched_previous;  // the watchdog's list, under its lock
    atomic_int armed;    // the watchdog signalled the thread running `main` during this call
    pthread_t thread;    // the thread running the call in progress (valid while `deadline` is set)
    sb_buffer tape;      // scratch for Lua → tape
    size_t memory_used;  // bytes the allocator holds
    sb_pool pool;        // small blocks
    sb_limits limits;
    _Atomic uint64_t deadline;  // monotonic ns when the call in progress must end; 0 outside calls
    int timed_out;       // the call in progress passed its deadline
    atomic_int interrupted;  // set from any thread by sb_interrupt
    int output;          // where print writes
    int array_mt;        // registry references of the SB_ARRAY_MT and SB_OBJECT_MT metatables,
    int object_mt;       // so the hot path need not look them up by name
    int event_mt;        // registry reference of the event tables' metatable
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

// event.c
/// Pushes the event table for `event` (pushes 1). Its `id`, `headers` and `data` are built on first access.
void sb_push_event(lua_State *L, const sb_event *event);
/// Makes the event table at `index` hold its lazy fields if it does not yet (pushes
/// nothing); does nothing to other tables.
void sb_event_materialize(lua_State *L, int index);
/// Creates the event metatable and stores its reference in the context (pushes nothing).
void sb_event_install(lua_State *L);

// state.c
/// Sets the budget hook on a coroutine the plugin creates: the watchdog arms only main
/// threads, so a coroutine checks its budget every few thousand instructions itself.
void sb_watch_coroutine(lua_State *co);

// sandbox.c
/// Removes from the globals what a plugin may not reach unless `allow` names it, and
/// limits `load` to text chunks (pushes nothing).
void sb_sandbox(lua_State *L, int allow);

// host.c
/// Pushes nothing; sets the global `switchboard` table and replaces `print`.
void sb_install_host_api(lua_State *L, sb_bytes name, sb_bytes settings_tape);

#endif
