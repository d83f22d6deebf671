/* core.c: what every part of the core shares: errors and lookups. */
#include "core/internal.h"

#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/id.h"

bool core_fail(struct core_error *err, enum core_code code, const char *fmt, ...)
{
    err->code = code;
    err->retry_after = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

bool core_store_failed(struct core_error *err, enum store_rc rc)
{
    (void)rc;
    core_fail(err, CORE_UNAVAILABLE, "The service is unavailable at this time.");
    err->retry_after = 1;
    return false;
}

struct core *core_new(struct store *store)
{
    struct core *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->store = store;
    c->hypervisor_up = true;
    core_set_flavors(c, NULL, 0);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    cond_init_monotonic(&c->tick);
    return c;
}

void core_free(struct core *c)
{
    if (!c)
        return;
    core_stop_driver(c);
    core_set_flavors(c, NULL, 0);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->tick);
    free(c);
}

/* ---- operations ------------------------------------------------------------ */

void core_finish(struct core_op *op, bool ok)
{
    op->ok = ok;
    op->done(op);
}

static void write_done(struct store_job *job)
{
    struct core_op *op = (struct core_op *)((char *)job - offsetof(struct core_op, job));
    if (job->rc < 0)
        core_store_failed(&op->err, (enum store_rc)-job->rc);
    /* job->rc > 0: the write function set op->err */
    if (op->then)
        op->then(op, job->rc == 0);
    else
        core_finish(op, job->rc == 0);
}

void core_submit_then(struct core_op *op, store_write_fn fn, void *arg,
                      void (*then)(struct core_op *op, bool ok))
{
    op->ok = false;
    op->pending = false;
    op->then = then;
    op->job = (struct store_job){.fn = fn, .arg = arg, .done = write_done};
    if (op->handoff)
        op->handoff(op);
    store_submit(op->ctx->core->store, &op->job);
}

void core_submit(struct core_op *op, store_write_fn fn, void *arg)
{
    core_submit_then(op, fn, arg, NULL);
}

static void sync_done(struct core_op *op)
{
    struct core_sync *s = (struct core_sync *)op;
    pthread_mutex_lock(&s->lock);
    s->finished = true;
    pthread_cond_signal(&s->finished_cond);
    pthread_mutex_unlock(&s->lock);
}

void core_sync_init(struct core_sync *s, struct core_ctx *ctx)
{
    *s = (struct core_sync){.op = {.ctx = ctx, .done = sync_done}};
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->finished_cond, NULL);
}

bool core_sync_wait(struct core_sync *s, struct core_error *err)
{
    pthread_mutex_lock(&s->lock);
    while (!s->finished)
        pthread_cond_wait(&s->finished_cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->finished_cond);
    if (!s->op.ok && err)
        *err = s->op.err;
    return s->op.ok;
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
    struct store_conn *r = store_reader(c->core->store);
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
    struct store_conn *r = store_reader(c->core->store);
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

bool core_same_account(const struct volume *v, const struct server *s, struct core_error *err)
{
    if (!strcmp(v->account_id, s->account_id))
        return true;
    return core_fail(err, CORE_OTHER_ACCOUNT,
                     "Invalid volume: volume %s belongs to another account than instance %s; "
                     "a volume can only be attached to a server of its own account", v->id,
                     s->id);
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
