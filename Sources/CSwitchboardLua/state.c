// States, protected calls and plugin loading. Every entry point clears the stack, runs its
// body under lua_pcall with `traceback` as message handler, and leaves on failure exactly one
// value: the error message, which sb_error_message reads.
#include "internal.h"
#include <lua5.4/lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sb_host_callbacks sb_callbacks;

void sb_set_host_callbacks(const sb_host_callbacks *callbacks) { sb_callbacks = *callbacks; }

/// Errors outside any lua_pcall would end here; the shim never makes one.
static int sb_panic(lua_State *L) {
    fprintf(stderr, "switchboard: unprotected Lua error: %s\n", lua_tostring(L, -1));
    abort();
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
    sb_budget_watch(context);
    return L;
}

void sb_state_close(lua_State *L) {
    sb_context *context = sb_context_of(L);
    sb_budget_unwatch(context);  // before the state goes: the watchdog never touches a closed one
    lua_close(L);
    sb_allocator_release(context);
    free(context->tape.bytes);
    free(context);
}

/// Calls __tostring of the value at index 1 (pushes its result or an error message): run
/// under lua_pcall by the message handler, so that a __tostring that raises cannot make
/// the handler fail, and one that loops ends at the budget like any plugin code.
static int error_tostring(lua_State *L) {
    if (!luaL_callmeta(L, 1, "__tostring")) lua_pushnil(L);
    return 1;
}

/// What a plugin that reaches for a name the sandbox leaves out is told, after Lua's own
/// message (`attempt to index a nil value (global 'io')`): the name is simply absent, so
/// `if io then` keeps working, and the hint is added only where the error is reported.
static const struct {
    const char *name;  // the name Lua's message quotes: (global 'io'), (field 'io'), (method 'dump')
    const char *hint;
} sandbox_hints[] = {
    {"io", "io is not available to plugins (sandbox); allow: [io] gives it back"},
    {"dofile", "dofile is not available to plugins (sandbox); allow: [io] gives it back"},
    {"loadfile", "loadfile is not available to plugins (sandbox); allow: [io] gives it back"},
    {"debug", "debug is not available to plugins (sandbox); allow: [debug] gives it back, with full trust"},
    {"dump", "string.dump is not available to plugins (sandbox); allow: [debug] gives it back, with full trust"},
    {"getenv",
     "os.getenv is not available to plugins (sandbox); a secret belongs in the subscriber's settings, as ${VAR}, "
     "and allow: [os] gives os.getenv back"},
    {"execute", "os.execute is not available to plugins (sandbox); allow: [os] gives it back"},
    {"exit", "os.exit is not available to plugins (sandbox); allow: [os] gives it back"},
    {"remove", "os.remove is not available to plugins (sandbox); allow: [os] gives it back"},
    {"rename", "os.rename is not available to plugins (sandbox); allow: [os] gives it back"},
    {"tmpname", "os.tmpname is not available to plugins (sandbox); allow: [os] gives it back"},
    {"setlocale", "os.setlocale is not available to plugins (sandbox); allow: [os] gives it back"},
};

/// The sandbox's hint for an error about a nil value named in `sandbox_hints`, however the
/// plugin reached for it (`io.open`, `_G.io`, `package.loaded.io`, `os["getenv"]`,
/// `("x"):dump()`), or NULL.
static const char *sandbox_hint(const char *message) {
    if (!strstr(message, "a nil value (")) return NULL;
    static const char *const kinds[] = {"global", "field", "method"};
    char quoted[64];
    for (size_t index = 0; index < sizeof sandbox_hints / sizeof *sandbox_hints; index++) {
        for (size_t kind = 0; kind < sizeof kinds / sizeof *kinds; kind++) {
            snprintf(quoted, sizeof quoted, "(%s '%s')", kinds[kind], sandbox_hints[index].name);
            if (strstr(message, quoted)) return sandbox_hints[index].hint;
        }
    }
    return NULL;
}

/// Message handler: turns any error value into a string, adds the sandbox's hint to an error
/// about a name it leaves out, and appends a traceback. Pushes 1 (the message); the error
/// value stays below it.
static int traceback(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (message == NULL) {
        lua_pushcfunction(L, error_tostring);
        lua_pushvalue(L, 1);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
            message = lua_tostring(L, -1);
        else
            message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    const char *hint = sandbox_hint(message);
    if (hint) message = lua_pushfstring(L, "%s; %s", message, hint);
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
    context->memory_failed = 0;
    sb_budget_begin(context);
    int status = lua_pcall(L, 1, 0, 1);
    sb_budget_end(context);
    if (context->tape.capacity > SB_SCRATCH_KEPT) sb_buffer_release(context, &context->tape);
    if (status == LUA_OK) {
        lua_settop(L, 0);
    } else {
        lua_remove(L, 1);  // the handler; the message stays
        if (context->memory_failed) status = LUA_ERRMEM;
    }
    return status;
}

void sb_set_clock(lua_State *L, const double *unix_seconds) { sb_context_of(L)->clock = unix_seconds; }

void sb_seed_random(lua_State *L, int64_t seed) {
    sb_context *context = sb_context_of(L);
    context->seeded = 1;
    context->seed = seed;
}

size_t sb_memory_used(lua_State *L) {
    sb_context *context = sb_context_of(L);
    return context->memory_used + context->payload_held;
}

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
    sb_worker worker;
    int allow;
    sb_plugin_refs *refs;
};

static int load_body(lua_State *L) {
    struct load_arguments *arguments = lua_touserdata(L, 1);
    // Generational collection suits a stream of short-lived event tables: young garbage is
    // swept in minor collections instead of by full incremental cycles.
    lua_gc(L, LUA_GCGEN, 0, 0);
    sb_sandbox(L, arguments->allow, arguments->directory);
    sb_context *context = sb_context_of(L);
    if (context->seeded) {
        lua_getglobal(L, LUA_MATHLIBNAME);
        lua_getfield(L, -1, "randomseed");
        lua_pushinteger(L, (lua_Integer)context->seed);
        lua_call(L, 1, 0);
        lua_pop(L, 1);  // math
    }
    sb_install_host_api(L, arguments->name, arguments->settings, arguments->worker);
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
                   sb_worker worker, int allow, sb_plugin_refs *refs) {
    refs->init = refs->handle = refs->shutdown = LUA_NOREF;
    struct load_arguments arguments = {path, directory, name, settings_tape, worker, allow, refs};
    return protected_call(L, load_body, &arguments);
}

struct call_arguments {
    int ref;
    int with_settings;
};

static int call_body(lua_State *L) {
    struct call_arguments *arguments = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, arguments->ref);
    if (arguments->with_settings) lua_rawgeti(L, LUA_REGISTRYINDEX, sb_context_of(L)->settings);
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
    if (arguments->release) sb_timer_released(L, arguments->ref);
    lua_call(L, 0, 0);
    return 0;
}

int sb_fire_timer(lua_State *L, int ref, int release) {
    struct timer_arguments arguments = {ref, release};
    return protected_call(L, timer_body, &arguments);
}
