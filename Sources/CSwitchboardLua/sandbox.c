// The sandbox: what a plugin cannot reach unless its configuration allows it. Plugins keep
// the pure libraries (string, table, math, utf8, coroutine), os.clock, os.time, os.date and
// `require` of Lua modules next to the plugin; they lose the file system, processes, the
// environment, C modules and the debug library. A traceback comes with every error anyway.
#include "internal.h"

static void remove_field(lua_State *L, const char *table, const char *field) {
    if (lua_getglobal(L, table) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, field);
    }
    lua_pop(L, 1);
}

static void remove_global(lua_State *L, const char *name) {
    lua_pushnil(L);
    lua_setglobal(L, name);
}

/// load(chunk [, chunkname [, mode [, env]]]) with the mode forced to text: a malformed
/// binary chunk can crash the VM. The original load is upvalue 1.
static int text_only_load(lua_State *L) {
    int arguments = lua_gettop(L);
    if (arguments < 1) return luaL_error(L, "bad argument #1 to 'load' (value expected)");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (arguments >= 2) lua_pushvalue(L, 2); else lua_pushnil(L);
    lua_pushliteral(L, "t");
    if (arguments >= 4) lua_pushvalue(L, 4);
    lua_call(L, arguments >= 4 ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L) - arguments;
}

/// package.searchers[2] with a record: when the original Lua searcher (upvalue 1) finds a
/// module, the host learns its file, so that a reload can tell when a module changed.
/// Returns what the original returns.
static int recording_searcher(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 2);  // loader and file name, or nil and a message
    if (lua_isfunction(L, -2) && lua_type(L, -1) == LUA_TSTRING) {
        sb_callbacks.module_loaded(sb_context_of(L)->host, lua_tostring(L, -1));
    }
    return 2;
}

/// coroutine.create(f), with the budget hook set on the new coroutine (the original create
/// is upvalue 1). Returns the coroutine.
static int watched_create(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    if (lua_isthread(L, -1)) sb_watch_coroutine(lua_tothread(L, -1));
    return 1;
}

/// coroutine.wrap on top of the watched create: the original would make its coroutine out of
/// the hook's reach.
static const char watched_wrap[] =
    "local create, resume, pack, unpack = ...\n"
    "return function(f)\n"
    "  local co = create(f)\n"
    "  return function(...)\n"
    "    local results = pack(resume(co, ...))\n"
    "    if results[1] then return unpack(results, 2, results.n) end\n"
    "    error(results[2], 0)\n"
    "  end\n"
    "end\n";

/// Replaces coroutine.create and coroutine.wrap with their watched forms (pushes nothing).
static void watch_coroutines(lua_State *L) {
    if (lua_getglobal(L, "coroutine") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, "create");
    lua_pushcclosure(L, watched_create, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "create");  // coroutine table, watched create
    if (luaL_loadbuffer(L, watched_wrap, sizeof(watched_wrap) - 1, "=coroutine.wrap") != LUA_OK) {
        lua_pop(L, 3);
        return;
    }
    lua_insert(L, -2);  // coroutine table, chunk, watched create
    lua_getfield(L, -3, "resume");
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "pack");
    lua_getfield(L, -2, "unpack");
    lua_remove(L, -3);  // coroutine table, chunk, create, resume, pack, unpack
    lua_call(L, 4, 1);
    lua_setfield(L, -2, "wrap");
    lua_pop(L, 1);
}

void sb_sandbox(lua_State *L, int allow) {
    int top = lua_gettop(L);
    if (!(allow & SB_ALLOW_IO)) {
        remove_global(L, "io");
        remove_global(L, "dofile");
        remove_global(L, "loadfile");
    }
    if (!(allow & SB_ALLOW_OS)) {
        static const char *const unsafe[] = {"execute", "exit", "remove", "rename", "tmpname", "getenv",
                                             "setlocale"};
        for (size_t index = 0; index < sizeof unsafe / sizeof *unsafe; index++) remove_field(L, "os", unsafe[index]);
    }
    if (!(allow & SB_ALLOW_DEBUG)) {
        remove_global(L, "debug");
        remove_field(L, "string", "dump");
    }
    // No C modules, whatever is allowed: no loadlib, and only the preload and Lua searchers.
    remove_field(L, "package", "loadlib");
    if (lua_getglobal(L, "package") == LUA_TTABLE && lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
        lua_pushnil(L);
        lua_rawseti(L, -2, 4);  // the all-in-one C searcher
        lua_pushnil(L);
        lua_rawseti(L, -2, 3);  // the C searcher
        lua_rawgeti(L, -1, 2);  // the Lua searcher, recorded
        lua_pushcclosure(L, recording_searcher, 1);
        lua_rawseti(L, -2, 2);
    }
    lua_settop(L, top);
    watch_coroutines(L);
    lua_getglobal(L, "load");
    lua_pushcclosure(L, text_only_load, 1);
    lua_setglobal(L, "load");
}
