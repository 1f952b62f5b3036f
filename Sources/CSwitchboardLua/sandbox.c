// The sandbox: the globals a plugin sees, built from an allow-list as Redis builds its
// scripting environment. Nothing is opened and then taken away: a library that is not
// listed here is never opened, so no table, metatable or `package.loaded` entry can lead
// back to it. A plugin gets the base library (without dofile and loadfile; `load` for text
// chunks only; `setmetatable` without finalizers; `xpcall` whose handler keeps to the
// budget; `pairs`, `next`, `rawget` and `rawset` that first build what the host builds lazily), string (without dump), table, math, utf8, coroutine (under the budget), an os
// with clock, time and date only, and a `require` of Lua modules in its own folder. `allow`
// adds whole libraries on top (SB_ALLOW_*), nothing more.
#include "internal.h"
#include <lua5.4/lualib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/// Calls the original function in upvalue 1 with every value on the stack as its arguments
/// (pops them), leaving `results` results (LUA_MULTRET: all); returns how many there are.
static int call_original(lua_State *L, int results) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, results);
    return lua_gettop(L);
}

/// Calls upvalue 1 (load or loadfile) with the same arguments, the one at the position in
/// upvalue 2 (its mode) forced to "t": a malformed binary chunk can crash the VM. Returns
/// what the original returns.
static int text_only(lua_State *L) {
    int mode = (int)lua_tointeger(L, lua_upvalueindex(2));
    lua_settop(L, lua_gettop(L) > mode ? lua_gettop(L) : mode);  // pads with nil up to the mode; an `env` stays
    lua_pushliteral(L, "t");
    lua_replace(L, mode);
    return call_original(L, LUA_MULTRET);
}

/// dofile([filename]) for text chunks (with `allow: [io]` only). Returns what the chunk returns.
static int text_dofile(lua_State *L) {
    const char *name = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (luaL_loadfilex(L, name, "t") != LUA_OK) return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/// setmetatable(t, mt), refusing a metatable with a `__gc` field: Lua runs finalizers with
/// hooks off, and lua_close runs pending ones outside any call, so no budget could stop a
/// finalizer that loops. Returns t.
static int guarded_setmetatable(lua_State *L) {
    int type = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    sb_materialize(L, 1);  // a data object being built becomes a plain table, and may take one
    luaL_argexpected(L, type == LUA_TNIL || type == LUA_TTABLE, 2, "nil or table");
    if (type == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: a metatable with __gc is refused in the sandbox (finalizers run "
                                 "outside the time budget); release resources explicitly, or use <close> variables");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/// rawget or rawset (the original in upvalue 1) on a table whose lazily built contents the
/// host has built first (sb_materialize), so that raw access sees what the plugin would
/// see through the table's metamethods. Returns what the original returns.
static int materialized_raw(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sb_materialize(L, 1);
    return call_original(L, LUA_MULTRET);
}

/// Returns the three results of a __pairs metamethod (the continuation of guarded_pairs).
static int finish_pairs(lua_State *L, int status, lua_KContext extra) {
    (void)status;
    (void)extra;
    return 3;
}

/// pairs(t) as Lua's own, but for a value without __pairs it returns the host's next rather
/// than Lua's raw one, which would let a plugin walk the raw contents of a table the host
/// builds lazily (sb_materialize). Returns the iterator, t and nil, or the metamethod's three.
static int guarded_pairs(lua_State *L) {
    luaL_checkany(L, 1);
    if (luaL_getmetafield(L, 1, "__pairs") == LUA_TNIL) {
        lua_pushcfunction(L, sb_next);
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        return 3;
    }
    lua_pushvalue(L, 1);
    lua_callk(L, 1, 3, 0, finish_pairs);
    return 3;
}

/// The message handler of a plugin's xpcall (upvalue 1), called only within the budget:
/// when the error is the budget's own, Lua runs the handler with hooks off (the error came
/// from the hook), so a handler that looped then would never be stopped. Returns one value:
/// the handler's result, or past the deadline the error as it is.
static int budgeted_message_handler(lua_State *L) {
    lua_settop(L, 1);
    if (sb_over_budget(L)) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

/// Returns xpcall's results once its protected call ended (the continuation of guarded_xpcall).
static int finish_xpcall(lua_State *L, int status, lua_KContext extra) {
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;  // false, the handler's result
    }
    return lua_gettop(L) - (int)extra;  // true and f's results
}

/// xpcall(f, handler, ...) as Lua's own (yieldable), with the handler behind
/// budgeted_message_handler.
static int guarded_xpcall(lua_State *L) {
    int arguments = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, budgeted_message_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);  // the first result
    lua_pushvalue(L, 1);    // f
    lua_rotate(L, 3, 2);    // below f's arguments: f, handler, true, f, arguments...
    int status = lua_pcallk(L, arguments - 2, LUA_MULTRET, 2, 2, finish_xpcall);
    return finish_xpcall(L, status, 2);
}

/// The coroutine function in upvalue 1 (coroutine.resume) after a budget check: once the
/// call is past its deadline no coroutine runs again. Returns its results.
static int budgeted(lua_State *L) {
    sb_check_budget(L);
    return call_original(L, LUA_MULTRET);
}

/// coroutine.create(f) under the budget (upvalue 1 is the original). Returns the coroutine,
/// whose count hook checks the deadline.
static int watched_create(lua_State *L) {
    sb_check_budget(L);
    call_original(L, 1);
    sb_watch_coroutine(lua_tothread(L, -1));
    return 1;
}

/// A function made by coroutine.wrap: resumes its coroutine (upvalue 1) as Lua's own does,
/// after a budget check, and on an error closes the coroutine's to-be-closed variables, unless
/// the budget stopped it (they would run with hooks off, see sb_stopped_by_budget), and
/// raises the error. Returns what the coroutine yields or returns.
static int wrapped_resume(lua_State *L) {
    sb_check_budget(L);
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int arguments = lua_gettop(L), results;
    if (!lua_checkstack(co, arguments)) return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, arguments);
    int status = lua_resume(co, L, arguments, &results);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, results + 1)) {
            lua_pop(co, results);
            return luaL_error(L, "too many results to resume");
        }
        lua_xmove(co, L, results);
        return results;
    }
    lua_xmove(co, L, 1);  // the error
    status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD && !sb_stopped_by_budget(co)) {
        lua_pop(L, 1);
        status = lua_resetthread(co);  // closes its to-be-closed variables; leaves the error
        lua_xmove(co, L, 1);
    }
    if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {  // where the wrapped function was called
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/// coroutine.wrap(f) under the budget (upvalue 1 is the original coroutine.create, as
/// watched_create's): a new, watched coroutine behind wrapped_resume. Returns the function.
static int watched_wrap(lua_State *L) {
    watched_create(L);  // leaves just the coroutine
    lua_pushcclosure(L, wrapped_resume, 1);
    return 1;
}

/// coroutine.close(co) under the budget (upvalue 1 is the original). A coroutine the budget
/// stopped is not closed (its to-be-closed variables would run with hooks off): returns
/// false and why; otherwise what the original returns.
static int guarded_close(lua_State *L) {
    sb_check_budget(L);
    lua_State *co = lua_tothread(L, 1);
    if (co && sb_stopped_by_budget(co)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "the coroutine was stopped by the time budget; its to-be-closed variables do not run");
        return 2;
    }
    return call_original(L, LUA_MULTRET);
}

/// Replaces table[name] (the table at -1) by `function` closed over the original (pushes nothing).
static void wrap_field(lua_State *L, const char *name, lua_CFunction function) {
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, function, 1);
    lua_setfield(L, -2, name);
}

/// os.time([table]): without a table, the virtual clock's whole seconds when one is set
/// (sb_set_clock); otherwise the original in upvalue 1.
static int clocked_time(lua_State *L) {
    const double *clock = sb_context_of(L)->clock;
    if (clock && lua_isnoneornil(L, 1)) {
        lua_pushinteger(L, (lua_Integer)floor(*clock));
        return 1;
    }
    return call_original(L, LUA_MULTRET);
}

/// os.date([format [, time]]): without a time, the virtual clock's when one is set; the
/// original in upvalue 1 does the formatting.
static int clocked_date(lua_State *L) {
    const double *clock = sb_context_of(L)->clock;
    if (clock && lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushinteger(L, (lua_Integer)floor(*clock));
    }
    return call_original(L, LUA_MULTRET);
}

/// Whether `name` is a module name a plugin may require: parts of letters, digits, `_` and
/// `-`, separated by `.` or `/`; so no absolute path, no empty part, no `..`.
static int valid_module_name(const char *name, size_t length) {
    int previous_separator = 1;  // the start counts as one: no leading separator
    for (size_t index = 0; index < length; index++) {
        char c = name[index];
        int separator = c == '.' || c == '/';
        int part = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if ((separator && previous_separator) || (!separator && !part)) return 0;
        previous_separator = separator;
    }
    return length > 0 && !previous_separator;
}

/// Pushes the path of module `name` under `directory`, with dots as slashes, and `suffix`.
static const char *push_module_path(lua_State *L, const char *directory, const char *name, const char *suffix) {
    lua_pushstring(L, directory);
    lua_pushliteral(L, "/");
    luaL_gsub(L, name, ".", "/");
    lua_pushstring(L, suffix);
    lua_concat(L, 4);
    return lua_tostring(L, -1);
}

static int readable(const char *path) {
    FILE *file = fopen(path, "r");
    if (file) fclose(file);
    return file != NULL;
}

/// require(name): the module's value from `package.loaded` (upvalue 1, the table the plugin
/// was given, whatever it later assigns to `package`), else the text chunk `name.lua` or
/// `name/init.lua` under the plugin's folder (upvalue 2), run once with (name, path). Nothing
/// the plugin changes in `package` changes where this looks. Returns the value and the path.
static int sandboxed_require(lua_State *L) {
    size_t length;
    const char *name = luaL_checklstring(L, 1, &length);
    lua_settop(L, 1);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (strcmp(name, "io") == 0 || strcmp(name, "debug") == 0)
        return luaL_error(L, "module '%s' is not available in the sandbox (a subscriber with `allow: [%s]` in its "
                             "configuration gets it)", name, name);
    if (!valid_module_name(name, length))
        return luaL_error(L, "module name '%s' is refused: require loads Lua modules from the plugin's folder by a "
                             "relative name such as 'lib.util' (no '..', no absolute path)", name);
    const char *directory = lua_tostring(L, lua_upvalueindex(2));
    const char *path = push_module_path(L, directory, name, ".lua");  // 2
    if (!readable(path)) {
        const char *other = push_module_path(L, directory, name, "/init.lua");
        if (!readable(other))
            return luaL_error(L, "module '%s' not found: no file '%s' or '%s' (modules are loaded from the plugin's "
                                 "folder only; C modules never)", name, path, other);
        lua_remove(L, 2);
        path = other;
    }
    sb_callbacks.module_loaded(sb_context_of(L)->host, path);
    if (luaL_loadfilex(L, path, "t") != LUA_OK)  // 3
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path, lua_tostring(L, -1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);  // 3: what the module returned
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, 1);
        lua_pushvalue(L, -2);
        lua_rawset(L, lua_upvalueindex(1));
    }
    lua_pushvalue(L, 1);
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL) {  // the module returned nothing and set nothing
        lua_pop(L, 1);
        lua_pushvalue(L, 1);
        lua_pushboolean(L, 1);
        lua_rawset(L, lua_upvalueindex(1));
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, 2);
    return 2;
}

/// Opens library `name` with `open`, as a global when `global` (pushes nothing).
static void open_library(lua_State *L, const char *name, lua_CFunction open, int global) {
    luaL_requiref(L, name, open, global);
    lua_pop(L, 1);
}

/// Removes the global `name` (pushes nothing).
static void remove_global(lua_State *L, const char *name) {
    lua_pushnil(L);
    lua_setglobal(L, name);
}

/// Replaces global `name` by `function` closed over the original and `mode` (see text_only).
static void text_only_global(lua_State *L, const char *name, int mode) {
    lua_getglobal(L, name);
    lua_pushinteger(L, mode);
    lua_pushcclosure(L, text_only, 2);
    lua_setglobal(L, name);
}

void sb_sandbox(lua_State *L, int allow, const char *directory) {
    open_library(L, LUA_GNAME, luaopen_base, 1);
    open_library(L, LUA_STRLIBNAME, luaopen_string, 1);
    open_library(L, LUA_TABLIBNAME, luaopen_table, 1);
    open_library(L, LUA_MATHLIBNAME, luaopen_math, 1);
    open_library(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    open_library(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    text_only_global(L, "load", 3);
    lua_pushcfunction(L, guarded_setmetatable);
    lua_setglobal(L, "setmetatable");
    lua_pushcfunction(L, sb_next);  // so that no lazily built table shows a plugin the host's key
    lua_setglobal(L, "next");
    lua_pushcfunction(L, guarded_pairs);  // Lua's own would hand out its raw next
    lua_setglobal(L, "pairs");
    static const char *const raw[] = {"rawget", "rawset"};
    for (int index = 0; index < 2; index++) {
        lua_getglobal(L, raw[index]);
        lua_pushcclosure(L, materialized_raw, 1);
        lua_setglobal(L, raw[index]);
    }
    lua_pushcfunction(L, guarded_xpcall);
    lua_setglobal(L, "xpcall");
    if (allow & SB_ALLOW_IO) {
        open_library(L, LUA_IOLIBNAME, luaopen_io, 1);
        luaL_getmetatable(L, LUA_FILEHANDLE);  // protected, so that no file handle gets a __gc
        lua_pushliteral(L, LUA_FILEHANDLE);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
        text_only_global(L, "loadfile", 2);
        lua_pushcfunction(L, text_dofile);
        lua_setglobal(L, "dofile");
    } else {
        remove_global(L, "dofile");
        remove_global(L, "loadfile");
    }
    if (allow & SB_ALLOW_DEBUG) {
        open_library(L, LUA_DBLIBNAME, luaopen_debug, 1);
    } else {
        lua_getglobal(L, LUA_STRLIBNAME);  // also the strings' __index
        lua_pushnil(L);
        lua_setfield(L, -2, "dump");
        lua_pop(L, 1);
    }
    if (allow & SB_ALLOW_OS) {
        open_library(L, LUA_OSLIBNAME, luaopen_os, 1);
    } else {
        luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);  // the whole library, kept off the globals
        lua_createtable(L, 0, 3);
        static const char *const kept[] = {"clock", "time", "date"};
        for (int index = 0; index < 3; index++) {
            lua_getfield(L, -2, kept[index]);
            lua_setfield(L, -2, kept[index]);
        }
        lua_setglobal(L, LUA_OSLIBNAME);
        lua_pop(L, 1);
    }
    if (sb_context_of(L)->clock) {  // a test's virtual clock: a run's os.time and os.date stay the originals
        lua_getglobal(L, LUA_OSLIBNAME);
        wrap_field(L, "time", clocked_time);
        wrap_field(L, "date", clocked_date);
        lua_pop(L, 1);
    }
    lua_getglobal(L, LUA_COLIBNAME);
    lua_getfield(L, -1, "create");  // the original, before watched_create replaces it
    lua_pushcclosure(L, watched_wrap, 1);
    lua_setfield(L, -2, "wrap");
    wrap_field(L, "create", watched_create);
    wrap_field(L, "resume", budgeted);
    wrap_field(L, "close", guarded_close);
    lua_pop(L, 1);

    // package: a plain table with `loaded`, which starts with the libraries the plugin has.
    lua_createtable(L, 0, 1);  // package
    lua_createtable(L, 0, 8);  // package.loaded
    static const char *const libraries[] = {LUA_GNAME,   LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME,
                                            LUA_COLIBNAME, LUA_OSLIBNAME, LUA_IOLIBNAME,  LUA_DBLIBNAME};
    for (size_t index = 0; index < sizeof libraries / sizeof *libraries; index++) {
        if (lua_getglobal(L, libraries[index]) == LUA_TTABLE) lua_setfield(L, -2, libraries[index]);
        else lua_pop(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "loaded");
    lua_pushstring(L, directory);
    lua_pushcclosure(L, sandboxed_require, 2);
    lua_setglobal(L, "require");
    lua_setglobal(L, LUA_LOADLIBNAME);
}
