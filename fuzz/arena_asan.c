/* arena_asan.c: src/util/arena.c's interface for the fuzz build, with every
 * block a malloc() of its own.
 *
 * Nearly everything a request allocates comes from its arena, and the real
 * arena carves blocks out of large chunks: a write past a block lands in
 * the next block, and a block used after arena_release() may sit in a
 * chunk that was reused. AddressSanitizer sees neither. Here each block is
 * its own heap allocation of exactly the size asked for, so a byte past it
 * is a redzone and a block used after its arena was released is in
 * quarantine: the harnesses see what the real arena hides. The contract is
 * the same (zeroed, 16-byte aligned, never NULL, out of memory unwinds to
 * the recovery point).
 *
 * Where the real arena would take its memory from is kept as bookkeeping
 * only (struct layout, in the inline buffer this version does not hand
 * out): the first ARENA_INLINE bytes, which cannot fail, then chunks of
 * 8 KiB doubling. So a failure that oom_test_fail_after() asks for comes at
 * the same allocation as with the real arena (a new chunk, never the inline
 * part a request's first allocation relies on), and arena_held() gives the
 * same number.
 *
 * build.sh links this instead of src/util/arena.c unless FUZZ_REAL_ARENA=1.
 */
#include "util/arena.h"

#include "util/oom.h"

#include <stdlib.h>
#include <string.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    _Alignas(16) char data[];
};

/* The real arena's state, kept in the inline buffer (all zero: no chunk). */
struct layout {
    size_t chunk_size, chunk_used;      /* its newest chunk */
    size_t held;                        /* all its chunks */
};

_Static_assert(sizeof(struct layout) <= ARENA_INLINE, "the layout fits the inline buffer");

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

void arena_init(struct arena *a)
{
    a->head = NULL;
    a->inline_used = 0;
    memset(a->inline_buf, 0, sizeof(struct layout));
}

void arena_release(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    arena_init(a);
}

/* Where the real arena would put n more bytes: the inline buffer, its
 * newest chunk, or a new chunk, which is where it can fail. */
static void follow_layout(struct arena *a, size_t n)
{
    struct layout *l = (struct layout *)a->inline_buf;
    n = ALIGN16(n);
    if (a->inline_used + n <= ARENA_INLINE) {
        a->inline_used += n;
        return;
    }
    if (!l->chunk_size || l->chunk_size - l->chunk_used < n) {
        size_t size = l->chunk_size ? l->chunk_size * 2 : 8192;
        if (size < n)
            size = n;
        if (oom_test_should_fail() || n > (size_t)1 << 40)
            oom_fail();
        l->chunk_size = size;
        l->chunk_used = 0;
        l->held += size;
    }
    l->chunk_used += n;
}

void *arena_alloc(struct arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    follow_layout(a, n);
    /* malloc's blocks are 16-byte aligned, and so is data after the header */
    struct arena_chunk *c = malloc(sizeof *c + n);
    if (!c)
        oom_fail();
    c->size = n;
    c->next = a->head;
    a->head = c;
    memset(c->data, 0, n);
    return c->data;
}

size_t arena_held(const struct arena *a)
{
    return ((const struct layout *)a->inline_buf)->held;
}
