// The `switchboard` table plugins see. Each function checks its arguments in C, converts
// values to tapes, calls Swift through sb_callbacks, and raises any error itself after
// Swift has returned.
#include "internal.h"
#include <errno.h>
#include <time.h>
#include <unistd.h>

static sb_bytes bytes_of(const sb_buffer *buffer, size_t from, size_t to) {
    sb_bytes slice = {buffer->bytes + from, to - from};
    return slice;
}

/// Encodes argument 2 (data) and, if given, argument 3 (headers) into the context's tape.
/// Run under lua_pcall by l_publish, so that a value JSON cannot hold becomes nil, message.
static int encode_publish_arguments(lua_State *L) {
    sb_context *context = sb_context_of(L);
    context->tape.length = 0;
    sb_encode_value(L, 1, &context->tape);
    lua_pushinteger(L, (lua_Integer)context->tape.length);
    if (!lua_isnoneornil(L, 2)) {
        if (!lua_istable(L, 2)) return luaL_error(L, "headers must be a table of strings");
        sb_encode_headers(L, 2, &context->tape);
    }
    return 1;
}

/// switchboard.publish(topic, data [, headers]) → accepted count, or nil, message.
static int l_publish(lua_State *L) {
    size_t topic_length;
    const char *topic = luaL_checklstring(L, 1, &topic_length);
    lua_settop(L, 3);
    lua_pushcfunction(L, encode_publish_arguments);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    sb_context *context = sb_context_of(L);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        size_t length = 0;
        const char *message = lua_tolstring(L, -1, &length);  // a string: raised by the encoder or luaL_error
        sb_bytes text = {(const unsigned char *)(message ? message : ""), message ? length : 0};
        sb_callbacks.publish_failed(context->host, text);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;  // nil, message
    }
    size_t data_end = (size_t)lua_tointeger(L, -1);
    sb_bytes topic_bytes = {(const unsigned char *)topic, topic_length};
    sb_bytes error = {0, 0};
    // Into a full `block` queue it may wait for room until a tenth of the call's budget is
    // left, for the plugin to handle the answer; an interrupted call does not wait.
    uint64_t deadline = atomic_load_explicit(&context->deadline, memory_order_relaxed);
    uint64_t budget = context->limits.timeout_ns;
    int waits = deadline && budget && !atomic_load_explicit(&context->interrupted, memory_order_relaxed);
    uint64_t wait_until = waits ? deadline - budget / 10 : 0;
    int64_t accepted = sb_callbacks.publish(context->host, topic_bytes, bytes_of(&context->tape, 0, data_end),
                                            bytes_of(&context->tape, data_end, context->tape.length), wait_until,
                                            &error);
    if (accepted < 0) {
        lua_pushnil(L);
        lua_pushlstring(L, (const char *)error.bytes, error.length);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)accepted);
    return 1;
}

/// switchboard.log.<level>(message [, fields]); the level is upvalue 1.
static int l_log(lua_State *L) {
    int level = (int)lua_tointeger(L, lua_upvalueindex(1));
    lua_settop(L, 2);  // message, fields; luaL_tolstring pushes above them
    size_t length;
    const char *message = luaL_tolstring(L, 1, &length);
    sb_context *context = sb_context_of(L);
    context->tape.length = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        sb_encode_value(L, 2, &context->tape);
    }
    sb_bytes message_bytes = {(const unsigned char *)message, length};
    sb_callbacks.log(context->host, level, message_bytes, bytes_of(&context->tape, 0, context->tape.length));
    return 0;
}

/// switchboard.every / switchboard.after (seconds, fn) → timer; `repeating` is upvalue 1.
/// An interval must be positive and a delay zero or more (NaN is neither); the host caps
/// very long ones. At most SB_MAX_TIMERS are pending per state, each charged to its memory.
static int l_timer(lua_State *L) {
    int repeating = lua_toboolean(L, lua_upvalueindex(1));
    lua_Number seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds > 0 || (!repeating && seconds == 0), 1,
                  repeating ? "the interval must be a positive number of seconds"
                            : "the delay must be zero or a positive number of seconds");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    sb_context *context = sb_context_of(L);
    if (context->timers >= SB_MAX_TIMERS)
        return luaL_error(L, "too many timers: a plugin may have %d pending at once (cancel the ones it no longer needs)",
                          SB_MAX_TIMERS);
    int64_t *timer = lua_newuserdatauv(L, sizeof(int64_t), 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, context->timer_mt);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 2);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (!sb_charge(context, SB_TIMER_COST)) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "not enough memory");
    }
    context->timers++;
    *timer = sb_callbacks.timer_add(context->host, (double)seconds, repeating, ref);
    return 1;
}

void sb_timer_released(lua_State *L, int ref) {
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    sb_context_of(L)->timers--;
    sb_uncharge(sb_context_of(L), SB_TIMER_COST);
}

/// timer:cancel() → true if it was still pending.
static int l_timer_cancel(lua_State *L) {
    int64_t *timer = luaL_checkudata(L, 1, SB_TIMER_MT);
    int ref = sb_callbacks.timer_cancel(sb_context_of(L)->host, *timer);
    if (ref != LUA_NOREF) sb_timer_released(L, ref);
    lua_pushboolean(L, ref != LUA_NOREF);
    return 1;
}

/// switchboard.now() → Unix time in seconds, with a fraction; the virtual clock's, if set.
static int l_now(lua_State *L) {
    const double *clock = sb_context_of(L)->clock;
    if (clock) {
        lua_pushnumber(L, (lua_Number)*clock);
        return 1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
    return 1;
}

/// switchboard.json.encode(value) → text; raises for a value JSON cannot hold.
static int l_json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    sb_context *context = sb_context_of(L);
    context->tape.length = 0;
    sb_encode_value(L, 1, &context->tape);
    sb_bytes out = {0, 0};
    int status = sb_callbacks.json_encode(context->host, bytes_of(&context->tape, 0, context->tape.length), &out);
    lua_pushlstring(L, (const char *)out.bytes, out.length);
    if (status != 0) return lua_error(L);
    return 1;
}

/// switchboard.json.decode(text) → value; raises for invalid JSON.
static int l_json_decode(lua_State *L) {
    size_t length;
    const char *text = luaL_checklstring(L, 1, &length);
    sb_bytes text_bytes = {(const unsigned char *)text, length};
    sb_bytes out = {0, 0};
    if (sb_callbacks.json_decode(sb_context_of(L)->host, text_bytes, &out) != 0) {
        lua_pushlstring(L, (const char *)out.bytes, out.length);
        return lua_error(L);
    }
    const unsigned char *cursor = out.bytes;
    sb_push_tape(L, &cursor, cursor + out.length, 0);
    return 1;
}

/// json.array(t) / json.object(t): marks t and returns it; upvalue 1 is the mark's metatable.
/// A table with another protected metatable (an event) keeps it.
static int l_json_mark(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    sb_materialize(L, 1);  // a data object being built becomes a plain table
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) {
        sb_context *context = sb_context_of(L);
        lua_getmetatable(L, 1);
        lua_rawgeti(L, LUA_REGISTRYINDEX, context->array_mt);
        lua_rawgeti(L, LUA_REGISTRYINDEX, context->object_mt);
        if (!lua_rawequal(L, -3, -2) && !lua_rawequal(L, -3, -1))
            return luaL_error(L, "cannot mark a table whose metatable is protected (%s)", lua_tostring(L, 2));
        lua_settop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, 1);
    return 1;
}

/// print(...): one whole line to standard output in a single unbuffered write, so lines from different
/// subscribers never interleave and none waits in a buffer when the process is killed; with a
/// negative output, to the host's print callback.
static int l_print(lua_State *L) {
    int count = lua_gettop(L);
    luaL_Buffer line;
    luaL_buffinit(L, &line);
    for (int index = 1; index <= count; index++) {
        if (index > 1) luaL_addchar(&line, '\t');
        luaL_tolstring(L, index, NULL);
        luaL_addvalue(&line);
    }
    luaL_addchar(&line, '\n');
    luaL_pushresult(&line);
    size_t length;
    const char *text = lua_tolstring(L, -1, &length);
    sb_context *context = sb_context_of(L);
    if (context->output < 0) {
        sb_bytes line = {(const unsigned char *)text, length};
        sb_callbacks.print(context->host, line);
        return 0;
    }
    while (length > 0) {
        ssize_t written = write(context->output, text, length);
        if (written < 0) {
            if (errno == EINTR) continue;
            break;  // a closed stdout (EPIPE) loses the line, not the subscriber
        }
        text += written;
        length -= (size_t)written;
    }
    return 0;
}

static void set_function(lua_State *L, const char *name, lua_CFunction function) {
    lua_pushcfunction(L, function);
    lua_setfield(L, -2, name);
}

int sb_new_metatable(lua_State *L, const char *name) {
    luaL_newmetatable(L, name);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

int sb_install_metatable(lua_State *L, const char *name, const luaL_Reg *methods) {
    int ref = sb_new_metatable(L, name);
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 1);
    return ref;
}

void sb_install_host_api(lua_State *L, sb_bytes name, sb_bytes settings_tape, sb_worker worker) {
    sb_context *context = sb_context_of(L);
    context->array_mt = sb_new_metatable(L, SB_ARRAY_MT);
    context->object_mt = sb_new_metatable(L, SB_OBJECT_MT);
    lua_pop(L, 2);
    sb_event_install(L);
    sb_data_install(L);
    context->timer_mt = sb_new_metatable(L, SB_TIMER_MT);
    lua_createtable(L, 0, 1);
    set_function(L, "cancel", l_timer_cancel);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_createtable(L, 0, 14);  // switchboard
    set_function(L, "publish", l_publish);
    set_function(L, "now", l_now);
    lua_pushboolean(L, 1);
    lua_pushcclosure(L, l_timer, 1);
    lua_setfield(L, -2, "every");
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, l_timer, 1);
    lua_setfield(L, -2, "after");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushlstring(L, (const char *)name.bytes, name.length);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, worker.number);
    lua_setfield(L, -2, "worker");
    lua_pushinteger(L, worker.count);
    lua_setfield(L, -2, "workers");
    const unsigned char *cursor = settings_tape.bytes;
    sb_push_tape(L, &cursor, cursor + settings_tape.length, 0);
    lua_pushvalue(L, -1);
    context->settings = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setfield(L, -2, "settings");

    lua_createtable(L, 0, 4);  // switchboard.log
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int level = 0; level < 4; level++) {
        lua_pushinteger(L, level);
        lua_pushcclosure(L, l_log, 1);
        lua_setfield(L, -2, levels[level]);
    }
    lua_setfield(L, -2, "log");

    lua_createtable(L, 0, 4);  // switchboard.json
    set_function(L, "encode", l_json_encode);
    set_function(L, "decode", l_json_decode);
    lua_rawgeti(L, LUA_REGISTRYINDEX, context->array_mt);
    lua_pushcclosure(L, l_json_mark, 1);
    lua_setfield(L, -2, "array");
    lua_rawgeti(L, LUA_REGISTRYINDEX, context->object_mt);
    lua_pushcclosure(L, l_json_mark, 1);
    lua_setfield(L, -2, "object");
    lua_setfield(L, -2, "json");

    lua_setglobal(L, "switchboard");
    lua_pushcfunction(L, l_print);
    lua_setglobal(L, "print");
}
