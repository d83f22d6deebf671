/* stmt.c: the engine-neutral helpers of the statement interface of
 * store_int.h (a statement run for no rows, for exactly one changed row,
 * for one row, for every row into an array), over each engine's step and
 * reset; the record functions (records.c) and the engines' own statements
 * (pg_engine.c) use them. */
#include <string.h>

#include "store/store_int.h"

enum store_rc stmt_exec(struct store_stmt *st)
{
    int rc = stmt_step(st);
    if (rc < 0)
        return (enum store_rc)-rc;
    stmt_reset(st);
    return STORE_OK;
}

enum store_rc stmt_exec_one(struct store_stmt *st)
{
    enum store_rc rc = stmt_exec(st);
    if (rc == STORE_OK && st->eng->changes(st) == 0)
        return STORE_NOTFOUND;
    return rc;
}

enum store_rc stmt_row(struct store_stmt *st)
{
    int rc = stmt_step(st);
    if (rc > 0)
        return STORE_OK;
    if (rc == 0) {
        stmt_reset(st);
        return STORE_NOTFOUND;
    }
    return (enum store_rc)-rc;
}

enum store_rc stmt_get_row(struct store_stmt *st, struct arena *ar, stmt_row_reader read,
                           void *out)
{
    enum store_rc rc = stmt_row(st);
    if (rc == STORE_OK) {
        read(st, ar, out);
        stmt_reset(st);
    }
    return rc;
}

/* Collect rows into a growing arena array of records of `size` bytes. */
enum store_rc stmt_collect(struct store_stmt *st, struct arena *ar, size_t size,
                           stmt_row_reader read, void **out, int *n)
{
    int cap = 0, count = 0;
    char *items = NULL;
    int rc;
    while ((rc = stmt_step(st)) > 0) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char *bigger = arena_alloc(ar, size * (size_t)cap);
            if (items)
                memcpy(bigger, items, size * (size_t)count);
            items = bigger;
        }
        read(st, ar, items + size * (size_t)count);
        count++;
    }
    if (rc < 0)
        return (enum store_rc)-rc;
    stmt_reset(st);
    *out = items;
    *n = count;
    return STORE_OK;
}
