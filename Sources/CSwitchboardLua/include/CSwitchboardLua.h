// The C side of Switchboard's Lua host.
//
// Swift never calls a Lua API function that can raise an error: Lua raises by longjmp,
// which would skip Swift's cleanups. Every call into Lua goes through sb_* functions that
// run under lua_pcall with a traceback handler; Lua calls Swift only through the host
// callbacks below, which return status codes, and C raises any error after Swift returned.
#ifndef CSWITCHBOARD_LUA_H
#define CSWITCHBOARD_LUA_H

#include <stddef.h>
#include <stdint.h>

typedef struct lua_State lua_State;

// ---- The value tape -------------------------------------------------------------------
// JSON values cross between Swift and C as a compact byte tape, parsed once and walked
// once. Integers are little-endian. An object's keys are written without a tag.
enum {
    SB_TAPE_NULL = 0,    //
    SB_TAPE_FALSE = 1,   //
    SB_TAPE_TRUE = 2,    //
    SB_TAPE_INT = 3,     // int64
    SB_TAPE_DOUBLE = 4,  // float64
    SB_TAPE_STRING = 5,  // uint32 length, bytes
    SB_TAPE_ARRAY = 6,   // uint32 count, values
    SB_TAPE_OBJECT = 7,  // uint32 count, (uint32 length, key bytes, value) pairs
};

/// The deepest nesting of tables the bridge converts (the same limit as Swift's JSON).
#define SB_MAX_DEPTH 128

/// A byte buffer owned by C, reused from call to call.
typedef struct sb_buffer {
    unsigned char *bytes;
    size_t length;
    size_t capacity;
} sb_buffer;

/// Bytes lent by Swift to C; valid until the next call into the same state.
typedef struct sb_bytes {
    const unsigned char *bytes;
    size_t length;
} sb_bytes;

// ---- Host callbacks: Lua → Swift ------------------------------------------------------
// `host` is the Swift object of the state. A callback reports an error by returning a
// negative value and setting *error; C then raises or returns it to Lua.
typedef struct sb_host_callbacks {
    /// Publishes; returns how many subscribers accepted the event, or -1. A full `block` queue
    /// may keep it waiting until `wait_until` (monotonic ns; 0: not at all).
    int64_t (*publish)(void *host, sb_bytes topic, sb_bytes data_tape, sb_bytes headers_tape, uint64_t wait_until,
                       sb_bytes *error);
    /// A publish failed before it reached `publish` (its data or headers JSON cannot hold): to count it.
    void (*publish_failed)(void *host, sb_bytes message);
    /// Writes a log line; level 0 debug, 1 info, 2 warn, 3 error; fields_tape may be empty.
    void (*log)(void *host, int level, sb_bytes message, sb_bytes fields_tape);
    /// Schedules a timer that calls the function at registry reference `ref`; returns its id.
    int64_t (*timer_add)(void *host, double seconds, int repeating, int ref);
    /// Cancels a timer; returns the registry reference to release, or LUA_NOREF (-2) if it already ended.
    int (*timer_cancel)(void *host, int64_t id);
    /// Encodes a tape as JSON text into *out; returns 0, or -1 with *out set to the error.
    int (*json_encode)(void *host, sb_bytes tape, sb_bytes *out);
    /// Parses JSON text into a tape in *out; returns 0, or -1 with *out set to the error.
    int (*json_decode)(void *host, sb_bytes text, sb_bytes *out);
    /// `require` is about to run the Lua module in the file at `path` (NUL-terminated).
    void (*module_loaded)(void *host, const char *path);
    /// `print` of a state whose output is negative: one whole line, its newline included.
    void (*print)(void *host, sb_bytes line);
} sb_host_callbacks;

/// Sets the callbacks once per process, before the first state is made.
void sb_set_host_callbacks(const sb_host_callbacks *callbacks);

// ---- States -------------------------------------------------------------------------
/// Limits of a state. Zero means none.
typedef struct sb_limits {
    uint64_t timeout_ns;  // wall-clock budget of each call into the plugin
    size_t memory;        // bytes its allocator may hold
} sb_limits;

/// Creates a state whose host API calls back to `host`, whose `print` writes to the file
/// descriptor `output` (standard output in production; when negative, it calls the host's
/// `print`), and which keeps to `limits`; NULL
/// when out of memory. Every call into it then runs under a count hook: past the call's
/// deadline the hook raises on every instruction, so a script's own pcall cannot swallow it.
lua_State *sb_state_new(void *host, int output, sb_limits limits);

/// Makes the call in progress, and every later one, fail at the hook's next check. Safe from
/// any thread: the way to stop a handler at the shutdown deadline.
void sb_interrupt(lua_State *L);

/// Undoes sb_interrupt for the calls that follow (pushes nothing): a call made after an
/// interrupted one, such as `shutdown`, runs under its own budget again.
void sb_clear_interrupt(lua_State *L);

/// Libraries opened on top of the allow-list only when a configuration names them (`allow: [io, os]`).
enum {
    SB_ALLOW_IO = 1,     // the io library, dofile, loadfile (text chunks only)
    SB_ALLOW_OS = 2,     // the whole os library (os.clock, os.time and os.date are always there)
    SB_ALLOW_DEBUG = 4,  // the debug library, string.dump: full trust
};

/// From now on `switchboard.now()` reads the time from `*unix_seconds`, which the caller keeps
/// valid and may change between calls (NULL: the system clock again); set before
/// sb_load_plugin, `os.time()` and `os.date()` without a time read it too. For `switchboard
/// test`'s virtual clock. Pushes nothing.
void sb_set_clock(lua_State *L, const double *unix_seconds);

/// Makes sb_load_plugin seed `math.random` with `seed`, as `math.randomseed(seed)` does,
/// before the plugin's code runs, instead of Lua's random seed: for repeatable tests.
void sb_seed_random(lua_State *L, int64_t seed);

/// Closes the state and frees what C kept for it.
void sb_state_close(lua_State *L);

/// What loading a plugin found: registry references of its functions (LUA_NOREF when absent).
typedef struct sb_plugin_refs {
    int init;
    int handle;
    int shutdown;
} sb_plugin_refs;

/// Which of its subscriber's workers a state runs in: `number` from 1 to `count`.
typedef struct sb_worker {
    int number;
    int count;
} sb_worker;

/// Builds the sandbox's globals from the allow-list (plus the SB_ALLOW_* libraries in
/// `allow`; see docs/sandbox.md), with `require` limited to Lua modules in `directory`,
/// installs the `switchboard` table (with `name`, `settings`, a tape, and `worker` and
/// `workers`), then loads and runs the plugin file, which must return a table. LUA_OK, or an
/// error status with the message (and traceback) left for sb_error_message. Text chunks
/// only, whatever is allowed.
int sb_load_plugin(lua_State *L, const char *path, const char *directory, sb_bytes name, sb_bytes settings_tape,
                   sb_worker worker, int allow, sb_plugin_refs *refs);

/// Calls init(switchboard.settings) for the function at `ref`.
int sb_call_init(lua_State *L, int ref);

/// Calls the function at `ref` with no arguments.
int sb_call_ref(lua_State *L, int ref);

/// One event, as C builds the table the plugin's `handle` receives.
typedef struct sb_event {
    sb_bytes topic;
    sb_bytes data_tape;
    uint64_t id_prefix;
    uint64_t id_sequence;
    double time;
    sb_bytes headers_tape;  // an object of strings
} sb_event;

/// Calls handle(event) for the function at `ref`.
int sb_dispatch(lua_State *L, int ref, const sb_event *event);

/// Calls a timer's function; a one-shot timer's reference is released first.
int sb_fire_timer(lua_State *L, int ref, int release);

/// The error message of the last failed call, valid until the next call on the state.
/// A failed call returns LUA_ERRRUN, or LUA_ERRMEM for the memory limit.
sb_bytes sb_error_message(lua_State *L);

/// Bytes the state's allocator holds now. Touches no Lua stack.
size_t sb_memory_used(lua_State *L);

#endif
