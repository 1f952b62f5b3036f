// `event.data` built a member at a time. A handler that reads `event.data.total` of an order
// pays for one number, not for the whole object with its strings and nested tables: building
// them was two thirds of what such a handler cost (0.25 s of the 1,000,000-event pipeline).
//
// A top-level object of at most SB_LAZY_MEMBERS members and SB_LAZY_BYTES bytes of tape
// starts as an empty table holding a copy of its tape in a userdata under a key of the host's,
// with the SB_DATA_MT metatable. Reading a member (__index) builds that member; writing one
// (__newindex) marks it, so that the plugin's value, or its nil, wins over the tape's. Once
// every member is built or written, the key and the metatable go and the table is a plain one.
//
// Whatever would look at the table's raw contents builds the rest first: __pairs, and the
// sandbox's next, rawget, rawset and setmetatable, the JSON encoder and json.object/array
// (sb_materialize, which builds an event's lazy fields the same way). So no plugin sees the hidden key, or a member missing: the table
// behaves as the object built at once, but getmetatable says "switchboard.data" until then.
#include "internal.h"
#include <string.h>

/// The most members, and tape bytes, a lazily built object may have: one bit per member
/// says whether it is built; past either bound the object is built at once.
#define SB_LAZY_MEMBERS 64
#define SB_LAZY_BYTES (16 * 1024)

static const char hidden_key = 0;  // its address is the key

typedef struct lazy_data {
    const sb_context *owner;  // with `kind`, the tags that tell the host's userdata from any other
    const void *kind;         // &hidden_key: an event's hidden userdata has another
    uint64_t built;           // bit i: member i was built, or written by the plugin
    uint32_t count;           // members
    uint32_t length;          // tape bytes
    unsigned char tape[];     // the object's tape, from its tag
} lazy_data;

/// Moves *cursor past the value at it without building it. Raises on a malformed tape.
static void skip_value(lua_State *L, const unsigned char **cursor, const unsigned char *end, int depth) {
    if (depth > SB_MAX_DEPTH) luaL_error(L, "nesting deeper than %d levels", SB_MAX_DEPTH);
    sb_tape_need(L, *cursor, end, 1);
    switch (*(*cursor)++) {
    case SB_TAPE_NULL:
    case SB_TAPE_FALSE:
    case SB_TAPE_TRUE: break;
    case SB_TAPE_INT:
    case SB_TAPE_DOUBLE:
        sb_tape_need(L, *cursor, end, 8);
        *cursor += 8;
        break;
    case SB_TAPE_STRING: {
        uint32_t length = sb_tape_u32(L, cursor, end);
        sb_tape_need(L, *cursor, end, length);
        *cursor += length;
        break;
    }
    case SB_TAPE_ARRAY: {
        uint32_t count = sb_tape_u32(L, cursor, end);
        for (uint32_t index = 0; index < count; index++) skip_value(L, cursor, end, depth + 1);
        break;
    }
    case SB_TAPE_OBJECT: {
        uint32_t count = sb_tape_u32(L, cursor, end);
        for (uint32_t index = 0; index < count; index++) {
            uint32_t length = sb_tape_u32(L, cursor, end);
            sb_tape_need(L, *cursor, end, length);
            *cursor += length;
            skip_value(L, cursor, end, depth + 1);
        }
        break;
    }
    default: luaL_error(L, "switchboard: bad value tape tag");
    }
}

/// The lazy state of the table at `index`, pushed, or NULL with nothing pushed when it has
/// none (built already, or a value that is not the host's under the key).
static lazy_data *push_state(lua_State *L, int index) {
    lazy_data *state = sb_push_hidden(L, index, &hidden_key, sizeof(lazy_data));
    if (!state) return NULL;
    if (state->count <= SB_LAZY_MEMBERS && state->length >= 5 && sizeof(lazy_data) + state->length <= lua_rawlen(L, -1))
        return state;
    lua_pop(L, 1);  // never made so by the host
    return NULL;
}

void *sb_push_hidden(lua_State *L, int index, const void *kind, size_t size) {
    const void *const *tags = NULL;  // the owner, then the kind
    if (lua_rawgetp(L, index, kind) == LUA_TUSERDATA && lua_rawlen(L, -1) >= size) tags = lua_touserdata(L, -1);
    if (tags && tags[0] == sb_context_of(L) && tags[1] == kind) return (void *)tags;
    lua_pop(L, 1);
    return NULL;
}

/// Makes the table at `index` a plain one once every member is built (pushes nothing).
static void finish_if_built(lua_State *L, int index, const lazy_data *state) {
    uint64_t all = state->count == 64 ? ~(uint64_t)0 : ((uint64_t)1 << state->count) - 1;
    if ((state->built & all) != all) return;
    lua_pushnil(L);
    lua_rawsetp(L, index, &hidden_key);
    lua_pushnil(L);
    lua_setmetatable(L, index);
}

/// Calls `visit` with each member's index, key and value cursor, until it returns nonzero;
/// returns that, or 0.
typedef int (*member_visitor)(lua_State *L, uint32_t member, const char *key, size_t length,
                              const unsigned char *value, const unsigned char *end, void *context);

static int for_each_member(lua_State *L, const lazy_data *state, member_visitor visit, void *context) {
    const unsigned char *cursor = state->tape + 5, *end = state->tape + state->length;  // past the tag and count
    for (uint32_t member = 0; member < state->count; member++) {
        uint32_t length = sb_tape_u32(L, &cursor, end);
        sb_tape_need(L, cursor, end, length);
        const char *key = (const char *)cursor;
        cursor += length;
        int found = visit(L, member, key, length, cursor, end, context);
        if (found) return found;
        skip_value(L, &cursor, end, 1);
    }
    return 0;
}

struct key_search {
    const char *key;
    size_t length;
    uint64_t members;            // every member with the key: a JSON object may repeat one
    const unsigned char *value;  // the last one's, which wins, as when the object is built at once
};

static int match_key(lua_State *L, uint32_t member, const char *key, size_t length, const unsigned char *value,
                     const unsigned char *end, void *context) {
    (void)L;
    (void)end;
    struct key_search *search = context;
    if (length == search->length && memcmp(key, search->key, length) == 0) {
        search->members |= (uint64_t)1 << member;
        search->value = value;
    }
    return 0;
}

/// Finds the members whose key is the string at `key_index`; 0 when the object has none.
static int find_member(lua_State *L, const lazy_data *state, int key_index, struct key_search *search) {
    if (lua_type(L, key_index) != LUA_TSTRING) return 0;
    search->key = lua_tolstring(L, key_index, &search->length);
    search->members = 0;
    for_each_member(L, state, match_key, search);
    return search->members != 0;
}

/// __index(t, key): builds the member `key` if the tape has it and the plugin has not
/// written it; returns it, or nil.
static int data_index(lua_State *L) {
    lazy_data *state = push_state(L, 1);  // [3] the state
    struct key_search search;
    if (!state || !find_member(L, state, 2, &search) || (state->built & search.members)) return 0;
    const unsigned char *cursor = search.value;
    sb_push_tape(L, &cursor, state->tape + state->length, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);  // t[key] = value, which stays on top
    state->built |= search.members;
    finish_if_built(L, 1, state);
    return 1;
}

/// __newindex(t, key, value): the plugin's value wins over the tape's, nil included.
static int data_newindex(lua_State *L) {
    lazy_data *state = push_state(L, 1);
    struct key_search search;
    if (state && find_member(L, state, 2, &search)) state->built |= search.members;
    lua_settop(L, 3);
    lua_rawset(L, 1);
    if (state) finish_if_built(L, 1, state);
    return 0;
}

static int build_member(lua_State *L, uint32_t member, const char *key, size_t length, const unsigned char *value,
                        const unsigned char *end, void *context) {
    lazy_data *state = context;
    if (state->built >> member & 1) return 0;
    lua_pushlstring(L, key, length);
    sb_push_tape(L, &value, end, 1);
    lua_rawset(L, -4);  // below: the state, then the table
    state->built |= (uint64_t)1 << member;
    return 0;
}

/// Builds every member of the lazy object at `index` (an absolute index) and makes it a plain table.
static void materialize_data(lua_State *L, int index) {
    luaL_checkstack(L, 4, "building event.data");
    lua_pushvalue(L, index);  // for build_member's rawset
    lazy_data *state = push_state(L, index);
    if (state) {
        for_each_member(L, state, build_member, state);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, index, &hidden_key);
    lua_pushnil(L);
    lua_setmetatable(L, index);
}

void sb_materialize(lua_State *L, int index) {
    index = lua_absindex(L, index);
    if (lua_type(L, index) != LUA_TTABLE || !lua_getmetatable(L, index)) return;
    sb_context *context = sb_context_of(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, context->data_mt);
    int data = lua_rawequal(L, -1, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, context->event_mt);
    int event = lua_rawequal(L, -1, -3);
    lua_pop(L, 3);
    if (data) materialize_data(L, index);
    else if (event) sb_event_materialize(L, index);
}

int sb_next(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sb_materialize(L, 1);
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

int sb_pairs(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sb_materialize(L, 1);
    lua_pushcfunction(L, sb_next);  // the host's own: the plugin may replace the global
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void sb_push_data(lua_State *L, const unsigned char *tape, size_t length) {
    const unsigned char *cursor = tape, *end = tape + length;
    uint32_t count = 0;
    if (length >= 5 && tape[0] == SB_TAPE_OBJECT) memcpy(&count, tape + 1, 4);
    if (count == 0 || count > SB_LAZY_MEMBERS || length > SB_LAZY_BYTES) {
        sb_push_tape(L, &cursor, end, 0);
        return;
    }
    luaL_checkstack(L, 3, "building event.data");
    lua_createtable(L, 0, (int)count + 1);
    lazy_data *state = lua_newuserdatauv(L, sizeof(lazy_data) + length, 0);
    state->owner = sb_context_of(L);
    state->kind = &hidden_key;
    state->built = 0;
    state->count = count;
    state->length = (uint32_t)length;
    memcpy(state->tape, tape, length);
    lua_rawsetp(L, -2, &hidden_key);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb_context_of(L)->data_mt);
    lua_setmetatable(L, -2);
}

void sb_data_install(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"__index", data_index}, {"__newindex", data_newindex}, {"__pairs", sb_pairs}, {NULL, NULL}};
    sb_context_of(L)->data_mt = sb_install_metatable(L, SB_DATA_MT, methods);
}
