// Event tables. `topic` and `time` are set at once; `id`, `headers` and a structured `data`
// are built only when the plugin first reads them: many handlers never do (a counter, a
// router on topic), and building strings and tables is most of what an event costs in
// Lua. Until then the event holds one userdata with the id and copies of the tapes, under
// a key of the host's; __index, __pairs and the JSON encoder build from it. A plugin can
// find that key with `next`, but what it stores there is used only if it is such a userdata
// (large enough, and tagged with the state's context, which no plugin can write: sandboxed
// code creates no userdata), so it can move or drop the fields, never forge them. A large
// payload's copy is charged to the state only while the plugin keeps it (see
// sb_context.payload_held): a handler pays for what it reads or keeps.
#include "internal.h"
#include <string.h>

static const char hidden_key = 0;  // its address is the key

/// The hidden userdata: the id, then the headers tape and the data tape, back to back. 40
/// bytes before the tapes, so that a small event's block stays in the state's pool.
typedef struct lazy_fields {
    const sb_context *owner;  // with `kind`, the tags that tell the host's userdata from any other
    const void *kind;         // &hidden_key: a data object's hidden userdata has another
    uint64_t id_prefix;
    uint64_t id_sequence;
    uint32_t headers_length;  // tapes count in uint32 themselves
    uint32_t data_length;
    unsigned char tapes[];
} lazy_fields;

/// Pushes `prefix-sequence` in hex, prefix padded to 16 digits, as EventID's description.
static void push_id(lua_State *L, uint64_t prefix, uint64_t sequence) {
    static const char digits[] = "0123456789abcdef";
    char out[40], reversed[16];
    for (int index = 15; index >= 0; index--, prefix >>= 4) out[index] = digits[prefix & 15];
    out[16] = '-';
    int count = 0;
    do {
        reversed[count++] = digits[sequence & 15];
        sequence >>= 4;
    } while (sequence != 0);
    for (int index = 0; index < count; index++) out[17 + index] = reversed[count - 1 - index];
    lua_pushlstring(L, out, (size_t)(17 + count));
}

/// Collects garbage when the unread payloads the state holds and its memory pass its cap,
/// then fails the call (as a memory failure, so the state is rebuilt) if they still do:
/// the plugin keeps more events than its memory allows. Pushes nothing.
static void check_payload_cap(lua_State *L, sb_context *context) {
    size_t cap = context->limits.memory;
    if (!cap || context->memory_used + context->payload_held <= cap) return;
    lua_gc(L, LUA_GCCOLLECT);
    if (context->memory_used + context->payload_held <= cap) return;
    context->memory_failed = 1;
    luaL_error(L, "not enough memory: the plugin keeps events whose payloads (%d KiB) do not fit in its memory",
               (int)(context->payload_held >> 10));
}

void sb_push_event(lua_State *L, const sb_event *event) {
    sb_context *context = sb_context_of(L);
    lua_createtable(L, 0, 3);  // topic, time, the hidden fields; reading the lazy ones grows it
    lua_pushlstring(L, (const char *)event->topic.bytes, event->topic.length);
    lua_setfield(L, -2, "topic");
    lua_pushnumber(L, event->time);
    lua_setfield(L, -2, "time");
    size_t headers = event->headers_tape.length, data = event->data_tape.length;
    if (headers > UINT32_MAX || data > UINT32_MAX) luaL_error(L, "switchboard: an event over 4 GiB");
    if (headers + data >= SB_LARGE_PAYLOAD) {
        check_payload_cap(L, context);
        context->allocating_payload = 1;
    }
    lazy_fields *lazy = lua_newuserdatauv(L, sizeof(lazy_fields) + headers + data, 0);  // clears the flag
    lazy->owner = context;
    lazy->kind = &hidden_key;
    lazy->id_prefix = event->id_prefix;
    lazy->id_sequence = event->id_sequence;
    lazy->headers_length = (uint32_t)headers;
    lazy->data_length = (uint32_t)data;
    if (headers) memcpy(lazy->tapes, event->headers_tape.bytes, headers);
    if (data) memcpy(lazy->tapes + headers, event->data_tape.bytes, data);
    lua_rawsetp(L, -2, &hidden_key);
    lua_rawgeti(L, LUA_REGISTRYINDEX, context->event_mt);
    lua_setmetatable(L, -2);
}

/// Pushes the unbuilt fields of the event table at `index` and returns them, or pushes
/// nothing and returns NULL when it has none (built already, or a plugin's value there).
static const lazy_fields *push_lazy(lua_State *L, int index) {
    const lazy_fields *lazy = sb_push_hidden(L, index, &hidden_key, sizeof(lazy_fields));
    if (!lazy) return NULL;
    if (sizeof(lazy_fields) + (size_t)lazy->headers_length + lazy->data_length <= lua_rawlen(L, -1)) return lazy;
    lua_pop(L, 1);  // never made so by the host
    return NULL;
}

/// Pushes event[key] without metamethods (a plain lua_getfield would call __index, which
/// materializes, which looks the field up again...).
static int raw_field(lua_State *L, int index, const char *key) {
    lua_pushstring(L, key);
    return lua_rawget(L, index);
}

/// Sets event[field] (at `index`) from the hidden fields unless the plugin assigned it
/// already. Pushes and pops nothing.
static void build_field(lua_State *L, int index, const lazy_fields *lazy, const char *field) {
    if (raw_field(L, index, field) != LUA_TNIL) {  // a field the plugin assigned keeps its value
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (field[0] == 'i') {
        push_id(L, lazy->id_prefix, lazy->id_sequence);
    } else if (field[0] == 'h') {
        const unsigned char *cursor = lazy->tapes;
        if (lazy->headers_length) sb_push_tape(L, &cursor, cursor + lazy->headers_length, 0);
        else lua_createtable(L, 0, 0);
    } else {
        sb_push_data(L, lazy->tapes + lazy->headers_length, lazy->data_length);
    }
    lua_setfield(L, index, field);
}

void sb_event_materialize(lua_State *L, int index) {
    index = lua_absindex(L, index);
    const lazy_fields *lazy = push_lazy(L, index);
    if (!lazy) return;
    build_field(L, index, lazy, "id");
    build_field(L, index, lazy, "headers");
    build_field(L, index, lazy, "data");
    lua_pop(L, 1);  // the userdata
    lua_pushnil(L);
    lua_rawsetp(L, index, &hidden_key);
}

/// __index(event, key): builds a lazy field on its first read, only that one (reading
/// `data` need not build the id string or the headers table). Once built, a field is a
/// plain member and __index no longer runs for it.
static int event_index(lua_State *L) {
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    const char *key = lua_tostring(L, 2);
    if (strcmp(key, "data") != 0 && strcmp(key, "id") != 0 && strcmp(key, "headers") != 0) return 0;
    const lazy_fields *lazy = push_lazy(L, 1);
    if (!lazy) return 0;
    build_field(L, 1, lazy, key);
    lua_pop(L, 1);
    lua_rawget(L, 1);
    return 1;
}

void sb_event_install(lua_State *L) {
    static const luaL_Reg methods[] = {{"__index", event_index}, {"__pairs", sb_pairs}, {NULL, NULL}};
    sb_context_of(L)->event_mt = sb_install_metatable(L, SB_EVENT_MT, methods);
}
