/* sqlite.c: the store's SQLite engine (see store.h for the contract):
 * connections, opening and closing, readers and their snapshots, the
 * statement functions the record functions (records.c) run on, and the
 * engine's table (store_int.h). The writer thread and the checkpointer are
 * sqlite_writer.c's; the watch on the database file, sqlite_watch.c's
 * (sqlite_int.h says how they share a store).
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

#include "store/schema.h"
#include "store/sqlite_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"

/* The WAL's length, in pages, past which the checkpointer copies it back
 * (SQLite's own auto-checkpoint threshold), by default. */
#define CHECKPOINT_PAGES 1000
/* Every reader connection maps the database file up to this length: a
 * page read from the file (not from the WAL) is then a memory access, not a
 * pread, and a reader's cache, dropped at every commit, does not have to be
 * filled again (the mapping is kept across commits: sqlite_vfs.c). Not the
 * writer: SQLite looks a mapped page up in the WAL's
 * index at every use, walking all the frames of that page the index holds
 * (hundreds, for a page each commit rewrites: 12 to 16% of a detach's
 * instructions, bench/instructions --detach), where a page in a cache is
 * used as it is; and the writer's cache stays valid from one of its
 * transactions to the next, unless another process (the CLI) wrote between.
 * The price: a page the writer's cache does not hold is a pread, which
 * costs detaches scattered over a large database 10% more CPU
 * (bench/results.md, 2026-12-04). */
#define MMAP_SIZE (1LL << 30)
/* The writer's page cache, in KiB (SQLite's default is 2 MiB). A detach
 * walks the attachment's, volume's and server's rows and their indexes;
 * over a large database (131,072 attachments, 72 MiB) a 2 MiB cache missed
 * often enough that pread was the writer's largest cost (8% of attachd's
 * CPU under a stream of detaches, in order): 1.80 preads per detach, and
 * 1.12 with 8 MiB (perf stat, bench/results.md 2026-12-04 15:37). What
 * that saves, a microsecond or two of the writer's time per detach, is
 * below what this project's hosts let bench/run tell apart (0.92x, 0.96x
 * and 1.12x the CPU in three runs). The cache is filled only as pages are
 * read, and a busy writer keeps it: about 6 MiB of anonymous memory more
 * once idle, of the 20 MiB budget. The readers keep SQLite's default. */
#define WRITER_CACHE_KIB "8192"
/* A WAL restarted from its start is cut back to this length (bytes): 16 C
 * of the default C, the most it reaches, so that a busy WAL file is written
 * over in place rather than cut and extended again (block allocation). */
#define JOURNAL_LIMIT "67108864"

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

/* End a kept snapshot (the caller holds c->use). */
void sq_end_kept(struct sq_conn *c)
{
    c->kept = false;
    if (!sqlite3_get_autocommit(c->db))
        sq_exec_id(c, S_COMMIT);
}

sqlite3_stmt *sq_stmt(struct sq_conn *c, int id)
{
    /* A read outside a snapshot reads the latest: a kept snapshot, which
     * may be stale, ends first. (The reaper touches only kept snapshots.) */
    if (c->reader && c->read_depth == 0 && c->kept) {
        pthread_mutex_lock(&c->use);
        sq_end_kept(c);
        pthread_mutex_unlock(&c->use);
    }
    if (!c->st[id].st &&
        sqlite3_prepare_v3(c->db, sqlite_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id].st,
                           NULL) != SQLITE_OK) {
        log_error("store: cannot prepare \"%s\": %s", sqlite_sql[id], sqlite3_errmsg(c->db));
        return NULL;
    }
    return c->st[id].st;
}

void sq_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Map a failed step to a store_rc and log what is not a caller's mistake. */
enum store_rc sq_fail(sqlite3_stmt *st, int rc)
{
    sqlite3 *db = sqlite3_db_handle(st);
    int ext = sqlite3_extended_errcode(db);
    sq_done(st);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_EXISTS;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return STORE_BUSY;
    log_error("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(db));
    metrics_inc(METRIC_STORE_ERROR);
    return STORE_ERROR;
}

/* Run a statement that returns no rows. */
enum store_rc sq_exec(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(st, rc);
    sq_done(st);
    return STORE_OK;
}

enum store_rc sq_exec_id(struct sq_conn *c, int id)
{
    sqlite3_stmt *st = sq_stmt(c, id);
    return st ? sq_exec(st) : STORE_ERROR;
}

void sq_conn_close(struct sq_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_SQ_STMT; i++)
        sqlite3_finalize(c->st[i].st);
    sqlite3_close(c->db);
    free(c);
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static const char *vfs_name;    /* SQ_VFS, or NULL (SQLite's default) if it could not be had */

static void sqlite_setup(void)
{
    /* Memory statistics take a global mutex on every allocation. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sq_vfs_register())
        vfs_name = SQ_VFS;
    else
        log_warn("store: SQLite's default VFS cannot be wrapped; WAL writes go one by one");
}

struct sq_conn *sq_conn_open(const char *path, bool writer, bool synchronous_full, char *err,
                             int errlen)
{
    struct sq_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    c->common.eng = &sqlite_engine;
    for (int i = 0; i < N_SQ_STMT; i++)
        c->st[i].common.eng = &sqlite_engine;
    pthread_once(&sqlite_once, sqlite_setup);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &c->db, flags, vfs_name) != SQLITE_OK) {
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
             synchronous_full ? "FULL" : "NORMAL", writer ? 0 : MMAP_SIZE,
             writer ? "PRAGMA journal_mode = WAL; PRAGMA journal_size_limit = " JOURNAL_LIMIT ";"
                      " PRAGMA cache_size = -" WRITER_CACHE_KIB ";"    /* negative: KiB */
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

static int sq_migrate(const char *path, int *from, int *to, char *err, int errlen)
{
    struct sq_conn *c = sq_conn_open(path, true, true, err, errlen);
    if (!c)
        return -1;
    int rc = schema_migrate(c->db, from, to, err, errlen);
    sq_conn_close(c);
    return rc;
}

static struct store *sq_open(const struct store_options *opts, char *err, int errlen)
{
    int from, to;
    if (sq_migrate(opts->path, &from, &to, err, errlen) < 0)
        return NULL;
    if (from != to)
        log_info("store: migrated %s from schema version %d to %d", opts->path, from, to);

    struct sq_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(opts->path))) {
        free(s);
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    s->common.eng = &sqlite_engine;
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
    job_inbox_init(&s->inbox);
    pthread_key_create(&s->reader_key, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    cond_init_monotonic(&s->ckpt_cond);     /* the checkpointer's timed wait */
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
        job_inbox_destroy(&s->inbox);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->ckpt_lock);
        pthread_cond_destroy(&s->ckpt_cond);
        sq_conn_close(s->writer);
        free(s->path);
        free(s);
        return NULL;
    }
    return &s->common;
}

static void sq_close(struct store *base)
{
    struct sq_store *s = sq_store_of(base);
    job_inbox_stop(&s->inbox);
    pthread_join(s->writer_thread, NULL);   /* it answers every queued job first */
    sq_checkpointer_stop(s);
    sq_watch_stop(s);
    struct sq_conn *r = s->readers;
    while (r) {
        struct sq_conn *next = r->next;
        pthread_mutex_destroy(&r->use);
        sq_conn_close(r);
        r = next;
    }
    sq_conn_close(s->writer);
    pthread_key_delete(s->reader_key);
    job_inbox_destroy(&s->inbox);
    pthread_mutex_destroy(&s->lock);
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

static struct store_conn *sq_reader(struct store *base)
{
    struct sq_store *s = sq_store_of(base);
    struct sq_conn *c = pthread_getspecific(s->reader_key);
    if (c)
        return &c->common;
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
    return &c->common;
}

/* A snapshot for the reads up to the matching store_read_end(). Most
 * requests read, and most reads find nothing changed since the last one on
 * their thread: the read transaction is then kept open between them rather
 * than begun and ended (its WAL locks cost a few syscalls each time). It is
 * begun anew when anything committed since (the change count moved) or when
 * it is older than SNAPSHOT_MAX_AGE. */
static enum store_rc sq_read_begin(struct store_conn *base)
{
    struct sq_conn *c = sq_conn_of(base);
    if (c->read_depth++ > 0)
        return STORE_OK;
    pthread_mutex_lock(&c->use);
    uint64_t changes = atomic_load(&c->store->changes);
    double now = sq_monotonic();
    if (c->kept && sq_snapshot_current(c, changes, now))
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

static void sq_read_end(struct store_conn *base)
{
    struct sq_conn *c = sq_conn_of(base);
    if (c->read_depth == 0 || --c->read_depth > 0)
        return;
    pthread_mutex_unlock(&c->use);      /* the snapshot is kept */
}

static void sq_conn_reset(struct store_conn *base)
{
    struct sq_conn *c = sq_conn_of(base);
    for (int i = 0; i < N_SQ_STMT; i++)
        if (c->st[i].st)
            sq_done(c->st[i].st);
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

/* ---------------------------------------------------------------------------
 * The statement functions of the engine's table (store_int.h)
 * ------------------------------------------------------------------------- */

static sqlite3_stmt *raw(struct store_stmt *st)
{
    return ((struct sq_stmt *)st)->st;
}

static struct store_stmt *sq_op_stmt(struct store_conn *c, enum stmt_id id)
{
    struct sq_conn *q = sq_conn_of(c);
    return sq_stmt(q, id) ? &q->st[id].common : NULL;
}

static void sq_op_bind_text(struct store_stmt *st, int i, const char *s)
{
    sq_bind_text(raw(st), i, s);
}

static void sq_op_bind_int64(struct store_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(raw(st), i, v);
}

static void sq_op_bind_null(struct store_stmt *st, int i)
{
    sqlite3_bind_null(raw(st), i);
}

static int sq_op_step(struct store_stmt *st)
{
    sqlite3_stmt *s = raw(st);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return -(int)sq_fail(s, rc);
}

static bool sq_op_col_null(struct store_stmt *st, int i)
{
    return sqlite3_column_type(raw(st), i) == SQLITE_NULL;
}

static const char *sq_op_col_text(struct store_stmt *st, int i, struct arena *ar)
{
    return sq_col_text(raw(st), i, ar);
}

static int64_t sq_op_col_int64(struct store_stmt *st, int i)
{
    return sqlite3_column_int64(raw(st), i);
}

static int64_t sq_op_changes(struct store_stmt *st)
{
    return sqlite3_changes(sqlite3_db_handle(raw(st)));
}

static void sq_op_reset(struct store_stmt *st)
{
    sq_done(raw(st));
}

/* ---------------------------------------------------------------------------
 * The store's functions of the engine's table
 * ------------------------------------------------------------------------- */

static uint64_t sq_auth_generation(struct store *s)
{
    return atomic_load(&sq_store_of(s)->auth_gen);
}

const struct store_engine sqlite_engine = {
    .name = "SQLite",
    .stmt = sq_op_stmt,
    .bind_text = sq_op_bind_text,
    .bind_int64 = sq_op_bind_int64,
    .bind_null = sq_op_bind_null,
    .step = sq_op_step,
    .col_null = sq_op_col_null,
    .col_text = sq_op_col_text,
    .col_int64 = sq_op_col_int64,
    .changes = sq_op_changes,
    .reset = sq_op_reset,
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .reader = sq_reader,
    .conn_reset = sq_conn_reset,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .submit = sq_submit,
    .auth_generation = sq_auth_generation,
    .probe_write = sq_probe_write,
    .backup = sq_backup,
    .check_file = sq_check_file,
    .account_list = sq_account_list,
    .account_counts = sq_account_counts,
    .account_del = sq_account_del,
    .user_list = sq_user_list,
};
