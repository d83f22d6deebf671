/* arena.h: a bump allocator that owns everything one request allocates.
 *
 * A request creates one arena, allocates freely while it is handled, and
 * frees it in one call when the response has been sent. Allocation never
 * returns NULL: out of memory unwinds to the thread's recovery point
 * (util/oom.h), which abandons the work at hand, or aborts without one.
 * Blocks are 16-byte aligned.
 */
#ifndef ATTACHD_ARENA_H
#define ATTACHD_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena_chunk;

/* The first ARENA_INLINE bytes need no malloc, so they cannot fail. */
#define ARENA_INLINE 4096

struct arena {
    struct arena_chunk *head;
    _Alignas(16) char inline_buf[ARENA_INLINE];
    size_t inline_used;
};

void arena_init(struct arena *a);
void arena_release(struct arena *a);    /* frees every block; a is reusable */

void *arena_alloc(struct arena *a, size_t n);   /* zeroed */
/* Bytes the arena holds from the system (its chunks). */
size_t arena_held(const struct arena *a);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* The strings up to a NULL, one after the other: what arena_printf("%s%s")
 * makes, without parsing a format (a request's headers use it). */
char *arena_concat(struct arena *a, ...) __attribute__((sentinel));
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap);

#endif
