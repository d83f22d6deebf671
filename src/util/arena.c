/* arena.c: see arena.h. Chunks grow geometrically; a large request gets a
 * chunk of its own so that the common small case stays in the inline buffer.
 * Large chunks are mapped from the system and unmapped when released:
 * malloc would keep their memory after a burst of large answers (glibc's
 * threshold for mapping rises with every large block freed). */
#include "util/arena.h"

#include "util/oom.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    bool mapped;
    _Alignas(16) char data[];
};

#define MAP_AT (256u * 1024)    /* chunks this large or larger are mapped */

static struct arena_chunk *chunk_new(size_t size)
{
    struct arena_chunk *c;
    size_t total = sizeof *c + size;
    if (oom_test_should_fail())
        return NULL;
    if (total < MAP_AT) {
        if (!(c = malloc(total)))
            return NULL;
        c->mapped = false;
    } else {
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        c = p;
        c->mapped = true;
    }
    c->size = size;
    return c;
}

static void chunk_free(struct arena_chunk *c)
{
    if (c->mapped)
        munmap(c, sizeof *c + c->size);
    else
        free(c);
}

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

void arena_init(struct arena *a)
{
    a->head = NULL;
    a->inline_used = 0;
}

void arena_release(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        chunk_free(c);
        c = next;
    }
    arena_init(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = ALIGN16(n ? n : 1);
    uintptr_t base = (uintptr_t)a->inline_buf;
    size_t pad = ALIGN16(base + a->inline_used) - (base + a->inline_used);
    if (a->inline_used + pad + n <= sizeof a->inline_buf) {
        void *p = a->inline_buf + a->inline_used + pad;
        a->inline_used += pad + n;
        memset(p, 0, n);
        return p;
    }
    struct arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = c ? c->size * 2 : 8192;
        if (size < n)
            size = n;
        if (!(c = chunk_new(size)))
            oom_fail();
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

size_t arena_held(const struct arena *a)
{
    size_t n = 0;
    for (const struct arena_chunk *c = a->head; c; c = c->next)
        n += c->size;
    return n;
}
