/* core.c: what every part of the core shares: errors and lookups. */
#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/id.h"

bool core_fail(struct core_error *err, enum core_code code, const char *fmt, ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

bool core_store_failed(struct core_error *err, enum store_rc rc)
{
    (void)rc;
    return core_fail(err, CORE_UNAVAILABLE, "The service is unavailable at this time.");
}

bool core_write_done(int rc, struct core_error *err)
{
    if (rc == 0)
        return true;
    if (rc > 0)
        return false;           /* the write function set err */
    return core_store_failed(err, (enum store_rc)-rc);
}

const char *core_now(struct core_ctx *c)
{
    char *now = arena_alloc(c->arena, 32);
    store_now(now);
    return now;
}

const char *core_new_id(struct core_ctx *c)
{
    char *id = arena_alloc(c->arena, UUID_STR_LEN + 1);
    id_uuid4(id);
    return id;
}

struct store_conn *core_reader(struct core_ctx *c, struct core_error *err)
{
    struct store_conn *r = store_reader(c->store);
    if (!r)
        core_store_failed(err, STORE_ERROR);
    return r;
}

bool core_read_begin(struct core_ctx *c, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    enum store_rc rc = store_read_begin(r);
    return rc == STORE_OK || core_store_failed(err, rc);
}

void core_read_end(struct core_ctx *c)
{
    struct store_conn *r = store_reader(c->store);
    if (r)
        store_read_end(r);
}

bool core_find_server(struct core_ctx *c, struct store_conn *conn, const char *id,
                      struct server *out, struct core_error *err)
{
    enum store_rc rc = store_server_get(conn, c->arena, c->scope, id, out);
    if (rc == STORE_NOTFOUND)
        return core_fail(err, CORE_NOT_FOUND, "Instance %s could not be found.", id);
    if (rc != STORE_OK)
        return core_store_failed(err, rc);
    return true;
}

bool core_find_volume(struct core_ctx *c, struct store_conn *conn, const char *id,
                      struct volume *out, struct core_error *err)
{
    enum store_rc rc = store_volume_get(conn, c->arena, c->scope, id, out);
    if (rc == STORE_NOTFOUND)
        return core_fail(err, CORE_NOT_FOUND, "Volume %s could not be found.", id);
    if (rc != STORE_OK)
        return core_store_failed(err, rc);
    return true;
}

bool core_check_unlocked(struct core_ctx *c, const struct server *s, struct core_error *err)
{
    if (s->locked && !c->admin)
        return core_fail(err, CORE_CONFLICT, "Instance %s is locked", s->id);
    return true;
}

bool core_device_valid(const char *d)
{
    if (!d || strncmp(d, "/dev/", 5) != 0)
        return false;
    d += 5;
    const char *letters = d;
    while (*d >= 'a' && *d <= 'z')
        d++;
    if (d == letters)
        return false;
    while (*d >= '0' && *d <= '9')
        d++;
    return *d == '\0';
}
