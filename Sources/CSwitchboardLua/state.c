// States, protected calls and plugin loading. Every entry point clears the stack, runs its
// body under lua_pcall with `traceback` as message handler, and leaves on failure exactly one
// value: the error message, which sb_error_message reads.
#include "internal.h"
#include <lua5.4/lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

sb_host_callbacks sb_callbacks;

void sb_set_host_callbacks(const sb_host_callbacks *callbacks) { sb_callbacks = *callbacks; }

#define SB_SLAB_SIZE (64 * 1024)

static size_t size_class(size_t size) { return (size - 1) / 16; }

/// A block of `size` (1...SB_SMALL_LIMIT) bytes from the pool, or NULL when out of memory.
static void *pool_take(sb_pool *pool, size_t size) {
    size_t class = size_class(size);
    void *block = pool->free[class];
    if (block) {
        pool->free[class] = *(void **)block;
        return block;
    }
    size_t bytes = (class + 1) * 16;
    if ((size_t)(pool->end - pool->cursor) < bytes) {
        sb_slab *slab = malloc(SB_SLAB_SIZE);
        if (!slab) return NULL;
        slab->next = pool->slabs;
        pool->slabs = slab;
        pool->cursor = (char *)slab + 16;  // keep blocks 16-byte aligned past the header
        pool->end = (char *)slab + SB_SLAB_SIZE;
    }
    block = pool->cursor;
    pool->cursor += bytes;
    return block;
}

static void pool_give(sb_pool *pool, void *block, size_t size) {
    size_t class = size_class(size);
    *(void **)block = pool->free[class];
    pool->free[class] = block;
}

static void pool_release(sb_pool *pool) {
    while (pool->slabs) {
        sb_slab *next = pool->slabs->next;
        free(pool->slabs);
        pool->slabs = next;
    }
}

/// lua_Alloc that counts the bytes each state holds and serves small blocks from its pool.
/// Lua passes the block's old size in `osize` only when `ptr` is not NULL; for a new block
/// `osize` is a type tag, not a size. Which allocator owns a block follows from its size.
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sb_context *context = ud;
    size_t old_size = ptr ? osize : 0;
    int old_small = ptr && old_size <= SB_SMALL_LIMIT;
    if (nsize == 0) {
        if (old_small) pool_give(&context->pool, ptr, old_size);
        else free(ptr);
        context->memory_used -= old_size;
        return NULL;
    }
    if (nsize > old_size && context->limits.memory && context->memory_used + (nsize - old_size) > context->limits.memory)
        return NULL;  // over the cap: Lua raises a memory error (shrinking never gets here)
    void *block;
    if (old_small && size_class(nsize) == size_class(old_size)) {
        block = ptr;  // the same size class: the block already fits
    } else if (!ptr || old_small || nsize <= SB_SMALL_LIMIT) {
        // Moving between pool and malloc, or a new block: take, copy, give back.
        block = nsize <= SB_SMALL_LIMIT ? pool_take(&context->pool, nsize) : malloc(nsize);
        if (!block) {
            // Lua requires shrinking never to fail: keep the old block (its extra bytes are
            // lost to the pool, a few bytes under memory exhaustion only).
            return nsize <= old_size ? ptr : NULL;
        }
        if (ptr) {
            memcpy(block, ptr, old_size < nsize ? old_size : nsize);
            if (old_small) pool_give(&context->pool, ptr, old_size);
            else free(ptr);
        }
    } else {
        block = realloc(ptr, nsize);  // large to large
        if (!block) return NULL;
    }
    context->memory_used += nsize - old_size;
    return block;
}

/// Errors outside any lua_pcall would end here; the shim never makes one.
static int sb_panic(lua_State *L) {
    fprintf(stderr, "switchboard: unprotected Lua error: %s\n", lua_tostring(L, -1));
    abort();
}

/// The coarse monotonic clock: a few nanoseconds to read instead of tens, at the kernel
/// tick's resolution (1-4 ms), plenty for budgets of tens of milliseconds and up.
static uint64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/// How many VM instructions a coroutine runs between two deadline checks.
#define SB_HOOK_COUNT 1000

// Budgets. A count hook costs the VM a function call on every instruction once it is set
// (plain loops ran 2.2 times slower with one), so a main thread runs without any: a watchdog
// thread looks at every state's deadline every few milliseconds and, once it has passed, sets
// the hook on that state's main thread from outside (lua_sethook is safe to call
// asynchronously, as lua.c does from its SIGINT handler). Coroutines, whose running thread
// the watchdog cannot know, keep a count hook of their own.

/// The budget hook. Past the deadline (or once interrupted) it re-arms itself to run on every
/// instruction and raises each time, so a pcall in the script cannot swallow the error: the
/// next instruction after the pcall raises again. A stale arming of a main thread (its call
/// ended in time) removes itself.
static void budget_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sb_context *context = sb_context_of(L);
    int interrupted = atomic_load_explicit(&context->interrupted, memory_order_relaxed);
    uint64_t deadline = atomic_load_explicit(&context->deadline, memory_order_relaxed);
    if (!interrupted && (deadline == 0 || monotonic_ns() < deadline)) {
        if (L == context->main) {
            lua_sethook(L, NULL, 0, 0);
            atomic_store_explicit(&context->armed, 0, memory_order_relaxed);
        }
        return;
    }
    context->timed_out = 1;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    if (interrupted) luaL_error(L, "interrupted: the subscriber is shutting down");
    luaL_error(L, "timeout: the call ran past its %d ms budget", (int)(context->limits.timeout_ns / 1000000));
}

void sb_watch_coroutine(lua_State *co) { lua_sethook(co, budget_hook, LUA_MASKCOUNT, SB_HOOK_COUNT); }

/// The context of the call in progress on this thread, for the signal handler.
static __thread sb_context *calling;

/// SIGURG from the watchdog: arms the budget hook of this thread's call, on this thread (lua_sethook
/// walks the running thread's call frames, which only that thread may do, as lua.c does on SIGINT).
static void on_budget_signal(int number) {
    (void)number;
    sb_context *context = calling;
    if (context) lua_sethook(context->main, budget_hook, LUA_MASKCOUNT, 1);
}

/// The watchdog: every state, checked every SB_WATCH_PERIOD_NS.
#define SB_WATCH_PERIOD_NS 5000000
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static sb_context *watched;
static pthread_once_t watchdog_started = PTHREAD_ONCE_INIT;

static void *watchdog(void *unused) {
    (void)unused;
    for (;;) {
        struct timespec pause = {0, SB_WATCH_PERIOD_NS};
        nanosleep(&pause, NULL);
        uint64_t now = monotonic_ns();
        pthread_mutex_lock(&watch_lock);
        for (sb_context *context = watched; context; context = context->watched_next) {
            uint64_t deadline = atomic_load_explicit(&context->deadline, memory_order_acquire);
            int over = now >= deadline || atomic_load_explicit(&context->interrupted, memory_order_relaxed);
            if (deadline != 0 && over && !atomic_exchange_explicit(&context->armed, 1, memory_order_relaxed))
                pthread_kill(context->thread, SIGURG);
        }
        pthread_mutex_unlock(&watch_lock);
    }
    return NULL;
}

static void start_watchdog(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_budget_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGURG, &action, NULL);
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    if (pthread_create(&thread, &attributes, watchdog, NULL) != 0) {
        fprintf(stderr, "switchboard: cannot start the Lua watchdog thread\n");
        abort();  // budgets could not be enforced
    }
    pthread_attr_destroy(&attributes);
}

static void watch(sb_context *context) {
    pthread_once(&watchdog_started, start_watchdog);
    pthread_mutex_lock(&watch_lock);
    context->watched_next = watched;
    context->watched_previous = NULL;
    if (watched) watched->watched_previous = context;
    watched = context;
    pthread_mutex_unlock(&watch_lock);
}

static void unwatch(sb_context *context) {
    pthread_mutex_lock(&watch_lock);
    if (context->watched_previous) context->watched_previous->watched_next = context->watched_next;
    else watched = context->watched_next;
    if (context->watched_next) context->watched_next->watched_previous = context->watched_previous;
    pthread_mutex_unlock(&watch_lock);
}

void sb_interrupt(lua_State *L) {
    atomic_store(&sb_context_of(L)->interrupted, 1);  // the watchdog signals a call in progress
}

lua_State *sb_state_new(void *host, int output, sb_limits limits) {
    sb_context *context = calloc(1, sizeof(sb_context));
    if (!context) return NULL;
    context->host = host;
    context->output = output;
    context->limits = limits;
    atomic_init(&context->interrupted, 0);
    atomic_init(&context->armed, 0);
    atomic_init(&context->deadline, 0);
    lua_State *L = lua_newstate(sb_alloc, context);
    if (!L) {
        free(context);
        return NULL;
    }
    *(sb_context **)lua_getextraspace(L) = context;
    context->main = L;
    lua_atpanic(L, sb_panic);
    watch(context);
    return L;
}

void sb_state_close(lua_State *L) {
    sb_context *context = sb_context_of(L);
    unwatch(context);  // before the state goes: the watchdog never touches a closed one
    lua_close(L);
    pool_release(&context->pool);
    free(context->tape.bytes);
    free(context);
}

/// Message handler: turns any error value into a string and appends a traceback.
/// Pushes 1 (the message); the error value stays below it.
static int traceback(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (message == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            message = lua_tostring(L, -1);
        else
            message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, message, 1);
    return 1;
}

/// Runs body(ud) under lua_pcall. Leaves the stack empty on success, or holding only the
/// error message on failure. The call runs under the state's time budget.
static int protected_call(lua_State *L, lua_CFunction body, void *ud) {
    sb_context *context = sb_context_of(L);
    lua_settop(L, 0);
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, body);
    lua_pushlightuserdata(L, ud);
    context->timed_out = 0;
    context->thread = pthread_self();
    calling = context;
    static __thread int listening;  // threads made from pool threads inherit a mask that blocks signals
    if (!listening) {
        sigset_t urgent;
        sigemptyset(&urgent);
        sigaddset(&urgent, SIGURG);
        pthread_sigmask(SIG_UNBLOCK, &urgent, NULL);
        listening = 1;
    }
    // Without a budget the watchdog still needs a deadline to see the call (for an interrupt).
    uint64_t budget = context->limits.timeout_ns ? context->limits.timeout_ns : UINT64_MAX / 2;
    atomic_store_explicit(&context->deadline, monotonic_ns() + budget, memory_order_release);
    if (atomic_load_explicit(&context->interrupted, memory_order_relaxed)) lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    int status = lua_pcall(L, 1, 0, 1);
    atomic_store_explicit(&context->deadline, 0, memory_order_relaxed);
    calling = NULL;
    if (context->timed_out || atomic_load_explicit(&context->armed, memory_order_relaxed)) {
        lua_sethook(L, NULL, 0, 0);  // hook-free again until the next overrun
        atomic_store_explicit(&context->armed, 0, memory_order_relaxed);
    }
    if (status == LUA_OK) {
        lua_settop(L, 0);
    } else {
        lua_remove(L, 1);  // the handler; the message stays
    }
    return status;
}

size_t sb_memory_used(lua_State *L) { return sb_context_of(L)->memory_used; }

sb_bytes sb_error_message(lua_State *L) {
    size_t length = 0;
    const char *text = lua_gettop(L) > 0 ? lua_tolstring(L, -1, &length) : NULL;
    sb_bytes result = {(const unsigned char *)text, text ? length : 0};
    return result;
}

/// Pops nothing; returns a registry reference to plugin[name] (a function), or LUA_NOREF
/// when it is nil. The plugin table is at index `table`.
static int reference_function(lua_State *L, int table, const char *path, const char *name) {
    lua_getfield(L, table, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "%s: plugin.%s must be a function, not a %s", path, name, luaL_typename(L, -1));
    return luaL_ref(L, LUA_REGISTRYINDEX);  // pops the function
}

struct load_arguments {
    const char *path;
    const char *directory;
    sb_bytes name;
    sb_bytes settings;
    int allow;
    sb_plugin_refs *refs;
};

static int load_body(lua_State *L) {
    struct load_arguments *arguments = lua_touserdata(L, 1);
    // Generational collection suits a stream of short-lived event tables: young garbage is
    // swept in minor collections instead of by full incremental cycles.
    lua_gc(L, LUA_GCGEN, 0, 0);
    luaL_openlibs(L);
    lua_getglobal(L, "package");  // require finds modules next to the plugin only
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", arguments->directory, arguments->directory);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    sb_install_host_api(L, arguments->name, arguments->settings);
    sb_sandbox(L, arguments->allow);
    if (luaL_loadfilex(L, arguments->path, "t") != LUA_OK) return lua_error(L);
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "%s: the plugin must return a table, not %s", arguments->path, luaL_typename(L, -1));
    int table = lua_gettop(L);
    arguments->refs->init = reference_function(L, table, arguments->path, "init");
    arguments->refs->handle = reference_function(L, table, arguments->path, "handle");
    arguments->refs->shutdown = reference_function(L, table, arguments->path, "shutdown");
    return 0;
}

int sb_load_plugin(lua_State *L, const char *path, const char *directory, sb_bytes name, sb_bytes settings_tape,
                   int allow, sb_plugin_refs *refs) {
    refs->init = refs->handle = refs->shutdown = LUA_NOREF;
    struct load_arguments arguments = {path, directory, name, settings_tape, allow, refs};
    return protected_call(L, load_body, &arguments);
}

struct call_arguments {
    int ref;
    int with_settings;
};

static int call_body(lua_State *L) {
    struct call_arguments *arguments = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, arguments->ref);
    if (arguments->with_settings) {
        lua_getglobal(L, "switchboard");
        lua_getfield(L, -1, "settings");
        lua_remove(L, -2);
    }
    lua_call(L, arguments->with_settings, 0);
    return 0;
}

int sb_call_init(lua_State *L, int ref) {
    struct call_arguments arguments = {ref, 1};
    return protected_call(L, call_body, &arguments);
}

int sb_call_ref(lua_State *L, int ref) {
    struct call_arguments arguments = {ref, 0};
    return protected_call(L, call_body, &arguments);
}

struct dispatch_arguments {
    int ref;
    const sb_event *event;
};

/// Calls handle(event) with the event's table.
static int dispatch_body(lua_State *L) {
    struct dispatch_arguments *arguments = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, arguments->ref);
    sb_push_event(L, arguments->event);
    lua_call(L, 1, 0);
    return 0;
}

int sb_dispatch(lua_State *L, int ref, const sb_event *event) {
    struct dispatch_arguments arguments = {ref, event};
    return protected_call(L, dispatch_body, &arguments);
}

struct timer_arguments {
    int ref;
    int release;
};

static int timer_body(lua_State *L) {
    struct timer_arguments *arguments = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, arguments->ref);
    if (arguments->release) luaL_unref(L, LUA_REGISTRYINDEX, arguments->ref);
    lua_call(L, 0, 0);
    return 0;
}

int sb_fire_timer(lua_State *L, int ref, int release) {
    struct timer_arguments arguments = {ref, release};
    return protected_call(L, timer_body, &arguments);
}
