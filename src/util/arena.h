/* arena.h: a bump allocator that owns everything one request allocates.
 *
 * A request creates one arena, allocates freely while it is handled, and
 * frees it in one call when the response has been sent. Allocation never
 * fails silently: on out-of-memory it aborts, as there is no sane recovery
 * half-way through a request. Blocks are 16-byte aligned.
 */
#ifndef ATTACHD_ARENA_H
#define ATTACHD_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head;
    char inline_buf[2048];      /* the first allocations need no malloc */
    size_t inline_used;
};

void arena_init(struct arena *a);
void arena_release(struct arena *a);    /* frees every block; a is reusable */

void *arena_alloc(struct arena *a, size_t n);   /* zeroed */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap);

#endif
