// The allocator of every state: it keeps the state under its memory cap and serves small
// blocks from the state's own pool.
#include "internal.h"
#include <stdlib.h>
#include <string.h>

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

/// A new block for a large unread payload, charged to payload_held; NULL when out of memory.
static void *payload_take(sb_context *context, size_t size) {
    if (context->payload_count == context->payload_capacity) {
        size_t capacity = context->payload_capacity ? context->payload_capacity * 2 : 8;
        void **blocks = realloc(context->payload_blocks, capacity * sizeof(void *));
        if (!blocks) return NULL;
        context->payload_blocks = blocks;
        context->payload_capacity = capacity;
    }
    void *block = malloc(size);
    if (!block) return NULL;
    context->payload_blocks[context->payload_count++] = block;
    context->payload_held += size;
    return block;
}

/// True, and the block forgotten and its charge released, when `block` is a payload's.
static int payload_give(sb_context *context, void *block, size_t size) {
    for (size_t index = 0; index < context->payload_count; index++) {
        if (context->payload_blocks[index] != block) continue;
        context->payload_blocks[index] = context->payload_blocks[--context->payload_count];
        context->payload_held -= size;
        free(block);
        return 1;
    }
    return 0;
}

/// Lua passes the block's old size in `osize` only when `ptr` is not NULL; for a new block
/// `osize` is a type tag, not a size. Which allocator owns a block follows from its size
/// (and, for a large one, from the payload list).
void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sb_context *context = ud;
    size_t old_size = ptr ? osize : 0;
    int old_small = ptr && old_size <= SB_SMALL_LIMIT;
    if (nsize == 0) {
        if (old_small) pool_give(&context->pool, ptr, old_size);
        else if (context->payload_count && payload_give(context, ptr, old_size)) return NULL;
        else free(ptr);
        context->memory_used -= old_size;
        return NULL;
    }
    if (nsize > old_size && context->limits.memory && context->memory_used + (nsize - old_size) > context->limits.memory &&
        !context->allocating_payload)
        return NULL;  // over the cap: Lua raises a memory error (shrinking never gets here)
    void *block;
    if (old_small && size_class(nsize) == size_class(old_size)) {
        block = ptr;  // the same size class: the block already fits
    } else if (!ptr || old_small || nsize <= SB_SMALL_LIMIT) {
        // Moving between pool and malloc, or a new block: take, copy, give back.
        if (nsize <= SB_SMALL_LIMIT) {
            block = pool_take(&context->pool, nsize);
        } else if (!ptr && context->allocating_payload) {  // an unread payload's userdata (event.c)
            context->allocating_payload = 0;
            return payload_take(context, nsize);
        } else {
            block = malloc(nsize);
        }
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
        block = realloc(ptr, nsize);  // large to large (never a payload: userdata never grow)
        if (!block) return NULL;
    }
    context->memory_used += nsize - old_size;
    return block;
}

void sb_allocator_release(sb_context *context) {
    while (context->pool.slabs) {
        sb_slab *next = context->pool.slabs->next;
        free(context->pool.slabs);
        context->pool.slabs = next;
    }
    free(context->payload_blocks);
}

int sb_charge(sb_context *context, size_t bytes) {
    if (context->limits.memory && context->memory_used + bytes > context->limits.memory) return 0;
    context->memory_used += bytes;
    return 1;
}

void sb_uncharge(sb_context *context, size_t bytes) { context->memory_used -= bytes; }
