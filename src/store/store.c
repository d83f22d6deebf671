/* store.c: the store's front (store.h): picks the engine when a store is
 * opened, by the --db value (store_int.h), and hands every call on to the
 * table of the store's or the connection's engine; and what is the same
 * for every engine (store_write, store_now). The record functions are
 * records.c's.
 *
 * The engines: PostgreSQL (pg_engine.c) for a connection string
 * (pg_is_conninfo: a postgresql:// or postgres:// URI, or libpq's
 * key=value form), SQLite (sqlite.c) for anything else, a file name.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "store/pg.h"
#include "store/store_int.h"

/* The engine for `db` (a connection string is never taken for a file
 * name: no file of that name is made). */
static const struct store_engine *engine_for(const char *db)
{
    return pg_is_conninfo(db) ? postgresql_engine : &sqlite_engine;
}

/* ---------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------- */

struct store *store_open(const struct store_options *opts, char *err, int errlen)
{
    return engine_for(opts->path)->open(opts, err, errlen);
}

void store_close(struct store *s)
{
    if (s)
        s->eng->close(s);
}

int store_migrate(const char *path, int *from, int *to, char *err, int errlen)
{
    return engine_for(path)->migrate(path, from, to, err, errlen);
}

/* ---------------------------------------------------------------------------
 * Readers
 * ------------------------------------------------------------------------- */

struct store_conn *store_reader(struct store *s)
{
    return s->eng->reader(s);
}

void store_conn_reset(struct store_conn *c)
{
    c->eng->conn_reset(c);
}

enum store_rc store_read_begin(struct store_conn *c)
{
    return c->eng->read_begin(c);
}

void store_read_end(struct store_conn *c)
{
    c->eng->read_end(c);
}

/* ---------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------- */

void store_submit(struct store *s, struct store_job *job)
{
    s->eng->submit(s, job);
}

/* store_write(): a job whose done() wakes the thread that waits for it. */
struct waiter {
    struct store_job job;
    void (*then)(void *arg, int rc);
    pthread_mutex_t lock;
    pthread_cond_t woken;
    bool done;
};

static void waiter_done(struct store_job *job)
{
    struct waiter *w = (struct waiter *)job;
    if (w->then)
        w->then(job->arg, job->rc);
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->woken);
    pthread_mutex_unlock(&w->lock);
}

int store_write(struct store *s, store_write_fn fn, void *arg)
{
    return store_write_then(s, fn, arg, NULL);
}

int store_write_then(struct store *s, store_write_fn fn, void *arg,
                     void (*then)(void *arg, int rc))
{
    struct waiter w = {.job = {.fn = fn, .arg = arg, .done = waiter_done}, .then = then};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.woken, NULL);
    store_submit(s, &w.job);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.woken, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.woken);
    return w.job.rc;
}

uint64_t store_auth_generation(struct store *s)
{
    return s->eng->auth_generation(s);
}

enum store_rc store_hold_hypervisor(struct store *s, double lease, void (*lost)(void *cls),
                                    void *cls, double *settle, char *err, int errlen)
{
    *settle = 0;
    if (!s->eng->hold_hypervisor)
        return STORE_OK;
    return s->eng->hold_hypervisor(s, lease, lost, cls, settle, err, errlen);
}

enum store_rc store_hypervisor_holder(struct store *s, char *who, int wholen)
{
    if (!s->eng->hypervisor_holder)
        return STORE_NOTFOUND;
    return s->eng->hypervisor_holder(s, who, wholen);
}

/* ---------------------------------------------------------------------------
 * For operators
 * ------------------------------------------------------------------------- */

int store_probe_write(struct store_conn *w, void *arg)
{
    return w->eng->probe_write(w, arg);
}

int store_backup(struct store *s, const char *dest, char *err, int errlen)
{
    return s->eng->backup(s, dest, err, errlen);
}

int store_check_file(const char *path, int *version, char *err, int errlen)
{
    /* a file: SQLite's, whatever engine the daemon runs on */
    return sqlite_engine.check_file(path, version, err, errlen);
}

enum store_rc store_account_list(struct store_conn *c, struct arena *ar, struct account **out,
                                 int *n)
{
    return c->eng->account_list(c, ar, out, n);
}

enum store_rc store_account_counts(struct store_conn *c, const char *id, int64_t *users,
                                   int64_t *servers, int64_t *volumes)
{
    return c->eng->account_counts(c, id, users, servers, volumes);
}

enum store_rc store_account_del(struct store_conn *w, const char *id)
{
    return w->eng->account_del(w, id);
}

enum store_rc store_user_list(struct store_conn *c, struct arena *ar, const char *account,
                              struct user **out, int *n)
{
    return c->eng->user_list(c, ar, account, out, n);
}

/* ---------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------- */

static _Atomic int64_t clock_offset_us;

void store_clock_offset_set(int64_t us)
{
    atomic_store_explicit(&clock_offset_us, us, memory_order_relaxed);
}

int64_t store_clock_offset(void)
{
    return atomic_load_explicit(&clock_offset_us, memory_order_relaxed);
}

void store_now(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + store_clock_offset();
    time_t sec = (time_t)(us / 1000000);
    int frac = (int)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06d", frac);
}
