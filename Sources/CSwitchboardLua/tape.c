// The value bridge: tapes written by Swift become Lua values, and Lua values become tapes
// for Swift. JSON null is the light userdata NULL (`switchboard.null`); arrays carry the
// SB_ARRAY_MT metatable so that an empty one encodes back as [] rather than {}.
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- Tape → Lua ------------------------------------------------------------------------

void sb_push_tape(lua_State *L, const unsigned char **cursor, const unsigned char *end, int depth) {
    if (depth > SB_MAX_DEPTH) luaL_error(L, "nesting deeper than %d levels", SB_MAX_DEPTH);
    luaL_checkstack(L, 3, "nesting too deep");
    sb_tape_need(L, *cursor, end, 1);
    unsigned char tag = *(*cursor)++;
    switch (tag) {
    case SB_TAPE_NULL: lua_pushlightuserdata(L, NULL); break;
    case SB_TAPE_FALSE: lua_pushboolean(L, 0); break;
    case SB_TAPE_TRUE: lua_pushboolean(L, 1); break;
    case SB_TAPE_INT: {
        int64_t value;
        sb_tape_need(L, *cursor, end, 8);
        memcpy(&value, *cursor, 8);
        *cursor += 8;
        lua_pushinteger(L, (lua_Integer)value);
        break;
    }
    case SB_TAPE_DOUBLE: {
        double value;
        sb_tape_need(L, *cursor, end, 8);
        memcpy(&value, *cursor, 8);
        *cursor += 8;
        lua_pushnumber(L, value);
        break;
    }
    case SB_TAPE_STRING: {
        uint32_t length = sb_tape_u32(L, cursor, end);
        sb_tape_need(L, *cursor, end, length);
        lua_pushlstring(L, (const char *)*cursor, length);
        *cursor += length;
        break;
    }
    case SB_TAPE_ARRAY: {
        uint32_t count = sb_tape_u32(L, cursor, end);
        lua_createtable(L, (int)count, 0);
        for (uint32_t index = 1; index <= count; index++) {
            sb_push_tape(L, cursor, end, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)index);
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, sb_context_of(L)->array_mt);
        lua_setmetatable(L, -2);
        break;
    }
    case SB_TAPE_OBJECT: {
        uint32_t count = sb_tape_u32(L, cursor, end);
        lua_createtable(L, 0, (int)count);
        for (uint32_t index = 0; index < count; index++) {
            uint32_t length = sb_tape_u32(L, cursor, end);
            sb_tape_need(L, *cursor, end, length);
            lua_pushlstring(L, (const char *)*cursor, length);
            *cursor += length;
            sb_push_tape(L, cursor, end, depth + 1);
            lua_rawset(L, -3);
        }
        break;
    }
    default: luaL_error(L, "switchboard: bad value tape tag %d", tag);
    }
}

// ---- Lua → tape ------------------------------------------------------------------------

/// Room for `count` more bytes at the end of `buffer`, which the state's memory cap pays for;
/// raises past SB_MAX_ENCODED. Returns where they go.
static unsigned char *reserve(lua_State *L, sb_buffer *buffer, size_t count) {
    if (buffer->capacity - buffer->length < count) {
        if (count > SB_MAX_ENCODED - buffer->length)
            luaL_error(L, "cannot encode: the value takes more than %d MiB, the most a plugin may publish or encode",
                       (int)(SB_MAX_ENCODED >> 20));
        size_t capacity = buffer->capacity ? buffer->capacity : 256;
        while (capacity - buffer->length < count) capacity *= 2;
        if (capacity > SB_MAX_ENCODED) capacity = SB_MAX_ENCODED;
        size_t growth = capacity - buffer->capacity;
        sb_context *context = sb_context_of(L);
        if (!sb_charge(context, growth)) luaL_error(L, "not enough memory");
        unsigned char *bytes = realloc(buffer->bytes, capacity);
        if (!bytes) {
            sb_uncharge(context, growth);
            luaL_error(L, "not enough memory");
        }
        buffer->bytes = bytes;
        buffer->capacity = capacity;
    }
    unsigned char *slot = buffer->bytes + buffer->length;
    buffer->length += count;
    return slot;
}

void sb_buffer_release(sb_context *context, sb_buffer *buffer) {
    sb_uncharge(context, buffer->capacity);
    free(buffer->bytes);
    buffer->bytes = NULL;
    buffer->length = buffer->capacity = 0;
}

static void write_tag(lua_State *L, sb_buffer *buffer, unsigned char tag) { *reserve(L, buffer, 1) = tag; }

static void write_u32(lua_State *L, sb_buffer *buffer, size_t value) {
    if (value > UINT32_MAX) luaL_error(L, "value too large to encode");
    uint32_t narrow = (uint32_t)value;
    memcpy(reserve(L, buffer, 4), &narrow, 4);
}

static void write_bytes(lua_State *L, sb_buffer *buffer, const char *bytes, size_t length) {
    write_u32(L, buffer, length);
    memcpy(reserve(L, buffer, length), bytes, length);
}

typedef struct key_slice {
    const char *bytes;
    size_t length;
    int is_integer;       // the table's key was this integer (a json.object table)
    lua_Integer integer;
} key_slice;

static int compare_keys(const void *a, const void *b) {
    const key_slice *left = a, *right = b;
    size_t shorter = left->length < right->length ? left->length : right->length;
    int order = memcmp(left->bytes, right->bytes, shorter);
    if (order != 0) return order;
    return (left->length > right->length) - (left->length < right->length);
}

static void encode(lua_State *L, int index, sb_buffer *buffer, int depth, int visiting);

/// Writes the array part 1..count of the table at `index`.
static void encode_array(lua_State *L, int index, lua_Integer count, sb_buffer *buffer, int depth, int visiting) {
    write_tag(L, buffer, SB_TAPE_ARRAY);
    write_u32(L, buffer, (size_t)count);
    for (lua_Integer position = 1; position <= count; position++) {
        lua_rawgeti(L, index, position);
        encode(L, lua_gettop(L), buffer, depth + 1, visiting);
        lua_pop(L, 1);
    }
}

/// Writes the table at `index` as an object with its keys in byte order. Integer keys
/// become decimal strings when `integer_keys` (a table marked with json.object).
static void encode_object(lua_State *L, int index, size_t count, int integer_keys, sb_buffer *buffer, int depth,
                          int visiting) {
    // Collect the keys in a userdata (collected by the GC even if an error unwinds here).
    key_slice *keys = lua_newuserdatauv(L, count * sizeof(key_slice) + 1, 0);
    int scratch = lua_gettop(L);
    lua_createtable(L, 0, 0);  // integer keys converted to strings, kept alive here
    int converted = lua_gettop(L);
    size_t found = 0;
    lua_pushnil(L);
    while (lua_next(L, index) != 0) {
        lua_pop(L, 1);
        if (found == count) luaL_error(L, "cannot encode: the table changed while it was being encoded");
        keys[found].is_integer = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            keys[found].bytes = lua_tolstring(L, -1, &keys[found].length);
        } else if (integer_keys && lua_isinteger(L, -1)) {
            keys[found].is_integer = 1;
            keys[found].integer = lua_tointeger(L, -1);
            lua_pushvalue(L, -1);
            keys[found].bytes = lua_pushfstring(L, "%I", (LUAI_UACINT)keys[found].integer);
            keys[found].length = strlen(keys[found].bytes);
            lua_rawset(L, converted);  // converted[key] = text keeps the string alive
        } else {
            luaL_error(L, "cannot encode a table with a %s key", luaL_typename(L, -1));
        }
        found++;
    }
    qsort(keys, found, sizeof(key_slice), compare_keys);
    write_tag(L, buffer, SB_TAPE_OBJECT);
    write_u32(L, buffer, found);
    for (size_t position = 0; position < found; position++) {
        write_bytes(L, buffer, keys[position].bytes, keys[position].length);
        if (keys[position].is_integer) {
            lua_rawgeti(L, index, keys[position].integer);
        } else {
            lua_pushlstring(L, keys[position].bytes, keys[position].length);
            lua_rawget(L, index);
        }
        encode(L, lua_gettop(L), buffer, depth + 1, visiting);
        lua_pop(L, 1);
    }
    lua_settop(L, scratch - 1);
}

/// Writes the table at `index`: an array when marked so or a sequence 1..n, an object
/// when marked so, empty, or keyed by strings; anything else is an error.
static void encode_table(lua_State *L, int index, sb_buffer *buffer, int depth, int visiting) {
    if (depth > SB_MAX_DEPTH) luaL_error(L, "cannot encode: nesting deeper than %d levels", SB_MAX_DEPTH);
    luaL_checkstack(L, 8, "nesting too deep");
    if (lua_rawgetp(L, visiting, lua_topointer(L, index)) != LUA_TNIL) luaL_error(L, "cannot encode a table that contains itself");
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_rawsetp(L, visiting, lua_topointer(L, index));

    int marked_array = 0, marked_object = 0;
    sb_materialize(L, index);  // an event, or a data object: build what is left first
    if (lua_getmetatable(L, index)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, sb_context_of(L)->array_mt);
        marked_array = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        lua_rawgeti(L, LUA_REGISTRYINDEX, sb_context_of(L)->object_mt);
        marked_object = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (marked_array) {
        encode_array(L, index, (lua_Integer)lua_rawlen(L, index), buffer, depth, visiting);
    } else {
        size_t count = 0, strings = 0;
        lua_Integer largest = 0;
        int sequence = 1;
        lua_pushnil(L);
        while (lua_next(L, index) != 0) {
            lua_pop(L, 1);
            count++;
            if (lua_type(L, -1) == LUA_TSTRING) {
                strings++;
                sequence = 0;
            } else if (lua_isinteger(L, -1)) {
                if (lua_tointeger(L, -1) < 1) sequence = 0;
                else if (lua_tointeger(L, -1) > largest) largest = lua_tointeger(L, -1);
            } else {
                luaL_error(L, "cannot encode a table with a %s key", luaL_typename(L, -1));
            }
        }
        if (marked_object || count == 0) {
            encode_object(L, index, count, 1, buffer, depth, visiting);
        } else if (sequence && (size_t)largest == count) {
            encode_array(L, index, largest, buffer, depth, visiting);
        } else if (strings == count) {
            encode_object(L, index, count, 0, buffer, depth, visiting);
        } else if (strings > 0) {
            luaL_error(L, "cannot encode a table with both sequence and other keys (mark it with json.array or json.object)");
        } else {
            luaL_error(L, "cannot encode a table whose keys are neither a sequence 1..n nor strings");
        }
    }
    lua_pushnil(L);
    lua_rawsetp(L, visiting, lua_topointer(L, index));
}

static void encode(lua_State *L, int index, sb_buffer *buffer, int depth, int visiting) {
    switch (lua_type(L, index)) {
    case LUA_TNIL:
    case LUA_TNONE: write_tag(L, buffer, SB_TAPE_NULL); break;
    case LUA_TBOOLEAN: write_tag(L, buffer, lua_toboolean(L, index) ? SB_TAPE_TRUE : SB_TAPE_FALSE); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, index)) {
            int64_t value = (int64_t)lua_tointeger(L, index);
            write_tag(L, buffer, SB_TAPE_INT);
            memcpy(reserve(L, buffer, 8), &value, 8);
        } else {
            double value = (double)lua_tonumber(L, index);
            if (!isfinite(value)) luaL_error(L, "cannot encode %s: JSON has no NaN or infinity", lua_tostring(L, index));
            write_tag(L, buffer, SB_TAPE_DOUBLE);
            memcpy(reserve(L, buffer, 8), &value, 8);
        }
        break;
    case LUA_TSTRING: {
        size_t length;
        const char *bytes = lua_tolstring(L, index, &length);
        write_tag(L, buffer, SB_TAPE_STRING);
        write_bytes(L, buffer, bytes, length);
        break;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, index) == NULL) {
            write_tag(L, buffer, SB_TAPE_NULL);
            break;
        }
        luaL_error(L, "cannot encode a light userdata");
        break;
    case LUA_TTABLE: encode_table(L, index, buffer, depth, visiting); break;
    default: luaL_error(L, "cannot encode a %s", luaL_typename(L, index));
    }
}

void sb_encode_value(lua_State *L, int index, sb_buffer *buffer) {
    index = lua_absindex(L, index);
    lua_createtable(L, 0, 0);  // tables being encoded, to refuse cycles
    encode(L, index, buffer, 0, lua_gettop(L));
    lua_pop(L, 1);
}

void sb_encode_headers(lua_State *L, int index, sb_buffer *buffer) {
    index = lua_absindex(L, index);
    sb_materialize(L, index);
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, index) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "headers must map strings to strings");
        lua_pop(L, 1);
        count++;
    }
    write_tag(L, buffer, SB_TAPE_OBJECT);
    write_u32(L, buffer, count);
    lua_pushnil(L);
    while (lua_next(L, index) != 0) {
        if (count-- == 0) luaL_error(L, "cannot encode: the headers changed while they were being encoded");
        size_t length;
        const char *key = lua_tolstring(L, -2, &length);
        write_bytes(L, buffer, key, length);
        const char *value = lua_tolstring(L, -1, &length);
        write_tag(L, buffer, SB_TAPE_STRING);
        write_bytes(L, buffer, value, length);
        lua_pop(L, 1);
    }
}
