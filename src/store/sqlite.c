/* sqlite.c: the store on embedded SQLite (see store.h for the contract):
 * connections, the writer thread and its group commit, and the helpers the
 * record functions (sqlite_records.c) use.
 *
 * One writer connection owned by the writer thread, one reader connection per
 * calling thread, WAL journal so that readers never wait for the writer.
 * Every statement is prepared once per connection, on first use, and kept.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/schema.h"
#include "store/sqlite_int.h"
#include "util/log.h"

struct write_job {
    store_write_fn fn;
    void *arg;
    int rc;
    bool done;
    pthread_cond_t woken;           /* its caller waits here, alone */
    struct write_job *next;
};

struct store {
    char *path;
    bool synchronous_full;
    struct store_conn *writer;
    pthread_t writer_thread;
    pthread_mutex_t lock;           /* guards the queue and the reader list */
    pthread_cond_t work;
    struct write_job *head, *tail;
    bool stopping;
    pthread_key_t reader_key;
    struct store_conn *readers;
};

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

sqlite3_stmt *sq_stmt(struct store_conn *c, enum stmt_id id)
{
    if (!c->st[id] &&
        sqlite3_prepare_v3(c->db, sqlite_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                           NULL) != SQLITE_OK) {
        log_error("store: cannot prepare \"%s\": %s", sqlite_sql[id], sqlite3_errmsg(c->db));
        return NULL;
    }
    return c->st[id];
}

void sq_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Map a failed step to a store_rc and log what is not a caller's mistake. */
enum store_rc sq_fail(struct store_conn *c, sqlite3_stmt *st, int rc)
{
    int ext = sqlite3_extended_errcode(c->db);
    sq_done(st);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_EXISTS;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return STORE_BUSY;
    log_error("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(c->db));
    return STORE_ERROR;
}

/* Run a statement that returns no rows. */
enum store_rc sq_exec(struct store_conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(c, st, rc);
    sq_done(st);
    return STORE_OK;
}

enum store_rc sq_exec_id(struct store_conn *c, enum stmt_id id)
{
    sqlite3_stmt *st = sq_stmt(c, id);
    return st ? sq_exec(c, st) : STORE_ERROR;
}

/* A change that must hit exactly one row: STORE_NOTFOUND when it hit none. */
enum store_rc sq_exec_one(struct store_conn *c, sqlite3_stmt *st)
{
    enum store_rc rc = sq_exec(c, st);
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOTFOUND;
    return rc;
}

static void conn_close(struct store_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_STMT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
}

static struct store_conn *conn_open(const char *path, bool writer, bool synchronous_full,
                                    char *err, int errlen)
{
    struct store_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, (size_t)errlen, "cannot open database %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        conn_close(c);
        return NULL;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA foreign_keys = ON; PRAGMA synchronous = %s; %s",
             synchronous_full ? "FULL" : "NORMAL",
             writer ? "PRAGMA journal_mode = WAL;" : "PRAGMA query_only = ON;");
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, (size_t)errlen, "cannot configure database %s: %s", path,
                 msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        conn_close(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------------------
 * The writer thread: group commit
 * ------------------------------------------------------------------------- */

static void run_batch(struct store *s, struct write_job *batch)
{
    struct store_conn *w = s->writer;
    enum store_rc begin = sq_exec_id(w, S_BEGIN_IMMEDIATE);
    if (begin != STORE_OK) {
        for (struct write_job *j = batch; j; j = j->next)
            j->rc = -(int)begin;
        return;
    }
    for (struct write_job *j = batch; j; j = j->next) {
        if (sq_exec_id(w, S_SAVEPOINT) != STORE_OK) {
            j->rc = -STORE_ERROR;
            continue;
        }
        j->rc = j->fn(w, j->arg);
        if (j->rc != 0)
            sq_exec_id(w, S_ROLLBACK_TO);
        sq_exec_id(w, S_RELEASE);
    }
    enum store_rc commit = sq_exec_id(w, S_COMMIT);
    if (commit != STORE_OK) {
        log_error("store: commit failed, %s", sqlite3_errmsg(w->db));
        if (!sqlite3_get_autocommit(w->db))
            sq_exec_id(w, S_ROLLBACK);
        for (struct write_job *j = batch; j; j = j->next)
            if (j->rc == 0)
                j->rc = -(int)commit;
    }
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->head)
            break;
        struct write_job *batch = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->lock);

        run_batch(s, batch);

        /* Wake exactly the callers of this batch. Each job lives on its
         * caller's stack, which cannot return before we release the lock,
         * so j->next is still safe to read after the signal. */
        pthread_mutex_lock(&s->lock);
        for (struct write_job *j = batch; j; j = j->next) {
            j->done = true;
            pthread_cond_signal(&j->woken);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int store_write(struct store *s, store_write_fn fn, void *arg)
{
    struct write_job job = {.fn = fn, .arg = arg};
    pthread_cond_init(&job.woken, NULL);
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        pthread_cond_destroy(&job.woken);
        return -STORE_ERROR;
    }
    if (s->tail)
        s->tail->next = &job;
    else
        s->head = &job;
    s->tail = &job;
    pthread_cond_signal(&s->work);
    while (!job.done)
        pthread_cond_wait(&job.woken, &s->lock);
    pthread_mutex_unlock(&s->lock);
    pthread_cond_destroy(&job.woken);
    return job.rc;
}

/* ---------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------- */

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    /* Memory statistics take a global mutex on every allocation. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_migrate(const char *path, int *from, int *to, char *err, int errlen)
{
    pthread_once(&sqlite_once, sqlite_setup);
    struct store_conn *c = conn_open(path, true, true, err, errlen);
    if (!c)
        return -1;
    int rc = schema_migrate(c->db, from, to, err, errlen);
    conn_close(c);
    return rc;
}

struct store *store_open(const struct store_options *opts, char *err, int errlen)
{
    int from, to;
    if (store_migrate(opts->path, &from, &to, err, errlen) < 0)
        return NULL;
    if (from != to)
        log_info("store: migrated %s from schema version %d to %d", opts->path, from, to);

    struct store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(opts->path))) {
        free(s);
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    s->synchronous_full = opts->synchronous_full;
    s->writer = conn_open(s->path, true, s->synchronous_full, err, errlen);
    if (!s->writer) {
        free(s->path);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_key_create(&s->reader_key, NULL);
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the writer thread");
        pthread_key_delete(s->reader_key);
        conn_close(s->writer);
        free(s->path);
        free(s);
        return NULL;
    }
    return s;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer_thread, NULL);
    struct store_conn *r = s->readers;
    while (r) {
        struct store_conn *next = r->next;
        conn_close(r);
        r = next;
    }
    conn_close(s->writer);
    pthread_key_delete(s->reader_key);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    free(s->path);
    free(s);
}

struct store_conn *store_reader(struct store *s)
{
    struct store_conn *c = pthread_getspecific(s->reader_key);
    if (c)
        return c;
    char err[256];
    c = conn_open(s->path, false, s->synchronous_full, err, sizeof err);
    if (!c) {
        log_error("store: %s", err);
        return NULL;
    }
    c->data_version = -1;
    pthread_mutex_lock(&s->lock);
    c->next = s->readers;
    s->readers = c;
    pthread_mutex_unlock(&s->lock);
    pthread_setspecific(s->reader_key, c);
    return c;
}

enum store_rc store_read_begin(struct store_conn *c)
{
    if (c->read_depth++ > 0)
        return STORE_OK;
    enum store_rc rc = sq_exec_id(c, S_BEGIN);
    if (rc != STORE_OK)
        c->read_depth = 0;
    return rc;
}

void store_read_end(struct store_conn *c)
{
    if (c->read_depth == 0 || --c->read_depth > 0)
        return;
    if (!sqlite3_get_autocommit(c->db))
        sq_exec_id(c, S_COMMIT);
}

void store_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06d", (int)(ts.tv_nsec / 1000) % 1000000);
}

/* ---------------------------------------------------------------------------
 * Binding and reading columns
 * ------------------------------------------------------------------------- */

void sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

const char *sq_col_text(sqlite3_stmt *st, int i, struct arena *ar)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const char *s = (const char *)sqlite3_column_text(st, i);
    return arena_strndup(ar, s, (size_t)sqlite3_column_bytes(st, i));
}

/* Step a single-row query: STORE_OK with the row current, or NOTFOUND. The
 * caller reads the columns and then calls sq_done(). */
enum store_rc sq_step_row(struct store_conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc == SQLITE_DONE) {
        sq_done(st);
        return STORE_NOTFOUND;
    }
    return sq_fail(c, st, rc);
}

/* Collect rows into a growing arena array of records of `size` bytes. */
enum store_rc sq_get(struct store_conn *c, sqlite3_stmt *st, struct arena *ar, sq_row_reader read,
                     void *out)
{
    enum store_rc rc = sq_step_row(c, st);
    if (rc == STORE_OK) {
        read(st, ar, out);
        sq_done(st);
    }
    return rc;
}

enum store_rc sq_get_int64(struct store_conn *c, enum stmt_id id, int64_t *out)
{
    sqlite3_stmt *st = sq_stmt(c, id);
    if (!st)
        return STORE_ERROR;
    enum store_rc rc = sq_step_row(c, st);
    if (rc == STORE_OK) {
        *out = sqlite3_column_int64(st, 0);
        sq_done(st);
    }
    return rc;
}

enum store_rc sq_collect(struct store_conn *c, sqlite3_stmt *st, struct arena *ar, size_t size,
                         sq_row_reader read, void **out, int *n)
{
    int cap = 0, count = 0;
    char *items = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
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
    if (rc != SQLITE_DONE)
        return sq_fail(c, st, rc);
    sq_done(st);
    *out = items;
    *n = count;
    return STORE_OK;
}

/* ---------------------------------------------------------------------------
 * Meta
 * ------------------------------------------------------------------------- */

bool store_changed(struct store_conn *c)
{
    sqlite3_stmt *st = sq_stmt(c, S_DATA_VERSION);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        if (st)
            sq_done(st);
        return true;
    }
    int64_t v = sqlite3_column_int64(st, 0);
    sq_done(st);
    bool changed = v != c->data_version;
    c->data_version = v;
    return changed;
}

enum store_rc store_auth_epoch(struct store_conn *c, int64_t *epoch)
{
    return sq_get_int64(c, S_AUTH_EPOCH, epoch);
}

enum store_rc store_auth_epoch_bump(struct store_conn *w)
{
    return sq_exec_id(w, S_AUTH_EPOCH_BUMP);
}
