// Shared between the shim's C files; not part of the Swift-facing header.
#ifndef CSWITCHBOARD_LUA_INTERNAL_H
#define CSWITCHBOARD_LUA_INTERNAL_H

#include "CSwitchboardLua.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>

// Names of the host's metatables. Each one carries `__metatable` set to its name, so that
// `getmetatable` shows a plugin the name and never the table: a plugin cannot add fields
// (a `__gc`) to a metatable that C later gives to new objects.
#define SB_ARRAY_MT "switchboard.array"
#define SB_OBJECT_MT "switchboard.object"
#define SB_TIMER_MT "switchboard.timer"
#define SB_EVENT_MT "switchboard.event"
#define SB_DATA_MT "switchboard.data"

/// Payloads of at least this many bytes are kept outside the memory cap while the plugin has
/// not read them (see sb_context.payload_held), so that one large event does not cost a
/// handler that never reads `event.data` its state.
#define SB_LARGE_PAYLOAD (64 * 1024)

/// The largest tape a plugin may publish or encode (`publish`, `json.encode`, log fields).
#define SB_MAX_ENCODED (16u << 20)

/// The most timers one state may have pending at once.
#define SB_MAX_TIMERS 1000

/// What one live timer costs against the memory cap, beyond its userdata and closure: the
/// host's record of it.
#define SB_TIMER_COST 64

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
    int memory_failed;   // the call in progress failed for the memory cap outside an allocation
    int output;          // where print writes; negative: to the host's print callback
    const double *clock; // the virtual clock (sb_set_clock), or NULL for the system's
    int seeded;          // sb_seed_random was called: math.random starts from `seed`
    int64_t seed;
    int array_mt;        // registry references of the SB_ARRAY_MT and SB_OBJECT_MT metatables,
    int object_mt;       // so the hot path need not look them up by name
    int event_mt;        // registry reference of the event tables' metatable
    int data_mt;         // registry reference of the lazily built `event.data` objects' metatable
    int timer_mt;        // registry reference of the timers' metatable
    int settings;        // registry reference of the settings table, as `init` receives it
    int timers;          // live timers, each charged SB_TIMER_COST
    // Large payloads of unread events: their blocks, allocated by sb_alloc but charged to
    // `payload_held` instead of `memory_used`. A dispatch collects garbage, then fails,
    // when memory_used + payload_held is over the cap: a plugin that keeps unread events
    // still pays for them, one that drops them does not.
    size_t payload_held;
    void **payload_blocks;
    size_t payload_count, payload_capacity;
    int allocating_payload;  // the next new block is a large payload
} sb_context;

extern sb_host_callbacks sb_callbacks;

static inline sb_context *sb_context_of(lua_State *L) { return *(sb_context **)lua_getextraspace(L); }

// tape.c
/// Raises unless `count` bytes are left between `cursor` and `end` (a cursor past the end has none).
static inline void sb_tape_need(lua_State *L, const unsigned char *cursor, const unsigned char *end, size_t count) {
    if (cursor > end || (size_t)(end - cursor) < count) luaL_error(L, "switchboard: truncated value tape");
}
/// Reads the uint32 at *cursor and moves past it; raises when the tape ends first.
static inline uint32_t sb_tape_u32(lua_State *L, const unsigned char **cursor, const unsigned char *end) {
    sb_tape_need(L, *cursor, end, 4);
    uint32_t value;
    memcpy(&value, *cursor, 4);
    *cursor += 4;
    return value;
}
/// Pushes the value at the front of the tape (advancing *cursor). Raises on a malformed tape.
void sb_push_tape(lua_State *L, const unsigned char **cursor, const unsigned char *end, int depth);
/// Appends the value at `index` to `buffer` as a tape. Raises on a value JSON cannot hold.
void sb_encode_value(lua_State *L, int index, sb_buffer *buffer);
/// What the context's tape buffer may keep from call to call; one that grew past it is freed.
#define SB_SCRATCH_KEPT (64 * 1024)
/// Frees `buffer` (the context's tape, grown past SB_SCRATCH_KEPT) and releases its charge.
void sb_buffer_release(sb_context *context, sb_buffer *buffer);
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

// data.c
/// Pushes the value of the data tape `tape` (pushes 1): a top-level object built a member at
/// a time as the plugin reads it, anything else at once. Copies what it keeps of the tape.
void sb_push_data(lua_State *L, const unsigned char *tape, size_t length);
/// Builds whatever the host builds lazily in the table at `index` (an event's fields, a
/// data object's members), so that its raw contents are complete; does nothing to other
/// values. Pushes nothing.
void sb_materialize(lua_State *L, int index);
/// next(t, key) after sb_materialize(t): the sandbox's `next`, and what __pairs returns.
int sb_next(lua_State *L);
/// __pairs(t) of the host's lazily built tables: sb_materialize(t), then returns sb_next, t, nil.
int sb_pairs(lua_State *L);
/// Pushes the host's userdata under the key `kind` in the table at `index` and returns it;
/// or pushes nothing and returns NULL when there is none of at least `size` bytes that starts
/// with this state's context and `kind`, tags no plugin can write (sandboxed code creates no
/// userdata, and cannot write into one): so a plugin that moves the host's userdata between
/// tables can make the host read only its own kind, which the caller checks is whole.
void *sb_push_hidden(lua_State *L, int index, const void *kind, size_t size);
/// Creates the data objects' metatable and stores its reference in the context (pushes nothing).
void sb_data_install(lua_State *L);

// allocator.c
/// lua_Alloc that keeps a state under its memory cap and serves small blocks from its pool;
/// `ud` is the state's sb_context.
void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/// Frees the pool's slabs and the payload list when the state has closed.
void sb_allocator_release(sb_context *context);
/// Charges `bytes` of memory that C holds for the plugin (timers, the encoder's buffer) to
/// its cap: 1, or 0 (and nothing charged) when they do not fit. sb_uncharge gives them back.
int sb_charge(sb_context *context, size_t bytes);
void sb_uncharge(sb_context *context, size_t bytes);

// budget.c
/// Adds the state to the watchdog's list (starting the watchdog once per process).
void sb_budget_watch(sb_context *context);
/// Removes the state from the watchdog's list; after this the watchdog never touches it.
void sb_budget_unwatch(sb_context *context);
/// Starts the budget of a call on this thread; sb_budget_end ends it.
void sb_budget_begin(sb_context *context);
void sb_budget_end(sb_context *context);
/// Sets the budget hook on a coroutine the plugin creates: the watchdog arms only main
/// threads, so a coroutine checks its budget every SB_HOOK_COUNT instructions itself.
void sb_watch_coroutine(lua_State *co);
/// True when the call in progress is past its deadline or interrupted (pushes nothing).
int sb_over_budget(lua_State *L);
/// True when coroutine `co` died of an error the budget's hook raised. Lua leaves such a
/// coroutine's hooks off (the error left the hook before Lua turned them back on), so its
/// to-be-closed variables must never run.
int sb_stopped_by_budget(lua_State *co);
/// Raises the budget's error when the call in progress is past its deadline or interrupted;
/// otherwise returns (pushes nothing). For host functions that would start more plugin code.
void sb_check_budget(lua_State *L);

// sandbox.c
/// Builds the globals a plugin sees from an allow-list (see CSwitchboardLua.h), with
/// `require` limited to Lua modules in `directory` (pushes nothing).
void sb_sandbox(lua_State *L, int allow, const char *directory);

// host.c
/// Pushes nothing; sets the global `switchboard` table and `print`.
void sb_install_host_api(lua_State *L, sb_bytes name, sb_bytes settings_tape, sb_worker worker);
/// Pushes a new metatable named `name`, protected by `__metatable` (see SB_ARRAY_MT), and
/// leaves it on the stack; returns its registry reference.
int sb_new_metatable(lua_State *L, const char *name);
/// sb_new_metatable with `methods` (NULL-terminated) set in it; pushes nothing.
int sb_install_metatable(lua_State *L, const char *name, const luaL_Reg *methods);
/// Releases a timer's registry reference `ref` and its charge (pushes nothing).
void sb_timer_released(lua_State *L, int ref);


#endif
