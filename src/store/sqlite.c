/* sqlite.c: the store on embedded SQLite (see store.h for the contract):
 * connections, opening and closing, readers and their snapshots, and the
 * helpers the record functions (sqlite_records.c) use. The writer thread
 * and the checkpointer are sqlite_writer.c's; the watch on the database
 * file, sqlite_watch.c's (sqlite_int.h says how they share a store).
 *
 * One writer connection owned by the writer thread, one reader connection per
 * calling thread, WAL journal so that readers never wait for the writer.
 * Every statement is prepared once per connection, on first use, and kept.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/pg.h"
#include "store/schema.h"
#include "store/sqlite_int.h"
#include "util/log.h"
#include "util/metrics.h"

/* The WAL's length, in pages, past which the checkpointer copies it back
 * (SQLite's own auto-checkpoint threshold), by default. */
#define CHECKPOINT_PAGES 1000
/* Every connection maps the database file up to this length: a page read
 * from the file (not from the WAL) is then a memory access, not a pread. */
#define MMAP_SIZE (1LL << 30)
/* A WAL restarted from its start is cut back to this length (bytes): 16 C
 * of the default C, the most it reaches, so that a busy WAL file is written
 * over in place rather than cut and extended again (block allocation). */
#define JOURNAL_LIMIT "67108864"

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

/* End a kept snapshot (the caller holds c->use). */
void sq_end_kept(struct store_conn *c)
{
    c->kept = false;
    if (!sqlite3_get_autocommit(c->db))
        sq_exec_id(c, S_COMMIT);
}

sqlite3_stmt *sq_stmt(struct store_conn *c, enum stmt_id id)
{
    /* A read outside a snapshot reads the latest: a kept snapshot, which
     * may be stale, ends first. (The reaper touches only kept snapshots.) */
    if (c->reader && c->read_depth == 0 && c->kept) {
        pthread_mutex_lock(&c->use);
        sq_end_kept(c);
        pthread_mutex_unlock(&c->use);
    }
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
    metrics_inc(METRIC_STORE_ERROR);
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

void sq_conn_close(struct store_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_STMT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
}

struct store_conn *sq_conn_open(const char *path, bool writer, bool synchronous_full,
                                    char *err, int errlen)
{
    struct store_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    if (pg_is_conninfo(path)) {
        /* not a file name: never create a file of that name */
        snprintf(err, (size_t)errlen, "%s is a PostgreSQL connection string: this attachd keeps "
                 "its state in SQLite only (PostgreSQL is not supported yet: docs/scale-out.md)",
                 path);
        free(c);
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, (size_t)errlen, "cannot open database %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sq_conn_close(c);
        return NULL;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA foreign_keys = ON; PRAGMA synchronous = %s; PRAGMA mmap_size = %lld; %s",
             synchronous_full ? "FULL" : "NORMAL", MMAP_SIZE,
             writer ? "PRAGMA journal_mode = WAL; PRAGMA journal_size_limit = " JOURNAL_LIMIT ";"
                    : "PRAGMA query_only = ON;");
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, (size_t)errlen, "cannot configure database %s: %s", path,
                 msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        sq_conn_close(c);
        return NULL;
    }
    /* SQLite opens a file it may not write read-only, silently: a daemon
     * must not start on it and then fail every write. */
    if (writer && sqlite3_db_readonly(c->db, "main") == 1) {
        snprintf(err, (size_t)errlen, "database %s is read-only to attachd", path);
        sq_conn_close(c);
        return NULL;
    }
    return c;
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
    struct store_conn *c = sq_conn_open(path, true, true, err, errlen);
    if (!c)
        return -1;
    int rc = schema_migrate(c->db, from, to, err, errlen);
    sq_conn_close(c);
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
    s->checkpoint_pages = opts->checkpoint_pages > 0 ? opts->checkpoint_pages : CHECKPOINT_PAGES;
    s->writer = sq_conn_open(s->path, true, s->synchronous_full, err, errlen);
    struct stat st;
    char *msg = NULL;
    if (s->writer && (stat(s->path, &st) != 0 ||
                      sqlite3_exec(s->writer->db, "BEGIN IMMEDIATE; ROLLBACK", NULL, NULL,
                                   &msg) != SQLITE_OK)) {
        /* the write lock needs the -wal and -shm files beside it */
        snprintf(err, (size_t)errlen, "database %s cannot be written: %s", s->path,
                 msg ? msg : strerror(errno));
        sqlite3_free(msg);
        sq_conn_close(s->writer);
        s->writer = NULL;
    }
    if (!s->writer) {
        free(s->path);
        free(s);
        return NULL;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_key_create(&s->reader_key, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    s->watch_fd = s->stop_fd = -1;
    bool started = sq_watch_start(s, err, errlen) && sq_checkpointer_start(s, err, errlen);
    if (started && pthread_create(&s->writer_thread, NULL, sq_writer_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the writer thread");
        started = false;
    }
    if (!started) {
        sq_checkpointer_stop(s);
        sq_watch_stop(s);
        pthread_key_delete(s->reader_key);
        sq_conn_close(s->writer);
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
    sq_checkpointer_stop(s);
    sq_watch_stop(s);
    struct store_conn *r = s->readers;
    while (r) {
        struct store_conn *next = r->next;
        pthread_mutex_destroy(&r->use);
        sq_conn_close(r);
        r = next;
    }
    sq_conn_close(s->writer);
    pthread_key_delete(s->reader_key);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_cond_destroy(&s->ckpt_cond);
    free(s->path);
    free(s);
}

double sq_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct store_conn *store_reader(struct store *s)
{
    struct store_conn *c = pthread_getspecific(s->reader_key);
    if (c)
        return c;
    char err[256];
    c = sq_conn_open(s->path, false, s->synchronous_full, err, sizeof err);
    if (!c) {
        log_error("store: %s", err);
        return NULL;
    }
    c->store = s;
    c->reader = true;
    pthread_mutex_init(&c->use, NULL);
    pthread_mutex_lock(&s->lock);
    c->next = s->readers;
    s->readers = c;
    pthread_mutex_unlock(&s->lock);
    pthread_setspecific(s->reader_key, c);
    return c;
}

/* A snapshot for the reads up to the matching store_read_end(). Most
 * requests read, and most reads find nothing changed since the last one on
 * their thread: the read transaction is then kept open between them rather
 * than begun and ended (its WAL locks cost a few syscalls each time). It is
 * begun anew when anything committed since (the change count moved) or when
 * it is older than SNAPSHOT_MAX_AGE. */
enum store_rc store_read_begin(struct store_conn *c)
{
    if (c->read_depth++ > 0)
        return STORE_OK;
    pthread_mutex_lock(&c->use);
    uint64_t changes = atomic_load(&c->store->changes);
    double now = sq_monotonic();
    if (c->kept && c->gen == changes && now - c->began < SNAPSHOT_MAX_AGE)
        return STORE_OK;
    sq_end_kept(c);
    /* The snapshot itself starts at the first read, after the count was
     * taken: it holds at least what the count says. */
    enum store_rc rc = sq_exec_id(c, S_BEGIN);
    if (rc != STORE_OK) {
        c->read_depth = 0;
        pthread_mutex_unlock(&c->use);
        return rc;
    }
    c->kept = true;
    c->gen = changes;
    c->began = now;
    return STORE_OK;
}

void store_read_end(struct store_conn *c)
{
    if (c->read_depth == 0 || --c->read_depth > 0)
        return;
    pthread_mutex_unlock(&c->use);      /* the snapshot is kept */
}

void store_conn_reset(struct store_conn *c)
{
    for (int i = 0; i < N_STMT; i++)
        if (c->st[i])
            sq_done(c->st[i]);
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    c->kept = false;
    if (c->reader && c->read_depth > 0)
        pthread_mutex_unlock(&c->use);
    c->read_depth = 0;
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

uint64_t store_auth_generation(struct store *s)
{
    return atomic_load(&s->auth_gen);
}

enum store_rc store_auth_epoch(struct store_conn *c, int64_t *epoch)
{
    return sq_get_int64(c, S_AUTH_EPOCH, epoch);
}

enum store_rc store_auth_epoch_bump(struct store_conn *w)
{
    w->epoch_bumped = true;     /* counted if its transaction commits */
    return sq_exec_id(w, S_AUTH_EPOCH_BUMP);
}
