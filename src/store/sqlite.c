/* sqlite.c: the store on embedded SQLite (see store.h for the contract):
 * connections, the writer thread and its group commit, and the helpers the
 * record functions (sqlite_records.c) use.
 *
 * One writer connection owned by the writer thread, one reader connection per
 * calling thread, WAL journal so that readers never wait for the writer.
 * Every statement is prepared once per connection, on first use, and kept.
 * Checkpoints are not made inside a commit (SQLite's default) but by a
 * checkpointer thread on a connection of its own, PASSIVE, once the WAL
 * passes C pages (store_options.checkpoint_pages). A WAL starts again from
 * its beginning only when a write begins after every frame was copied,
 * which a busy writer never lets the checkpointer see; so past 4 C, after
 * each of its passes, the checkpointer hands over to the writer, which
 * copies what is left (what was committed during that pass) between two
 * batches, after answering the first; the WAL then starts over at the next
 * commit. Past 16 C (checkpoints are slow: a long fsync) the writer waits
 * for its turn: the WAL stays bounded, and commits slow down instead.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/pg.h"
#include "store/schema.h"
#include "store/sqlite_int.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/oom.h"

/* How often one job may be run again after SQLite undid its transaction
 * before it is answered as not committed. */
#define MAX_ATTEMPTS 3
/* The most jobs one transaction takes; the rest wait for the next. */
#define MAX_BATCH 4096
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
/* How long the writer waits at most for a checkpoint past 16 C, in 1 ms steps. */
#define CHECKPOINT_WAIT_MS 5000

struct store {
    char *path;
    bool synchronous_full;
    struct store_conn *writer;
    pthread_t writer_thread;
    pthread_mutex_t lock;           /* guards the queue, the reader list, `lost` */
    pthread_cond_t work;
    struct store_job *head, *tail;
    bool stopping;
    pthread_key_t reader_key;
    struct store_conn *readers;
    dev_t dev;                      /* the database file as opened */
    ino_t ino;
    bool lost;                      /* writes refused for good (logged once) */
    /* Changes: counted by the writer after each commit and by the watcher
     * when another process (the CLI) writes the database; a reader keeps
     * its snapshot while the count stays. */
    atomic_uint_fast64_t changes;
    /* Moves when the auth epoch may have changed: a commit of this process
     * that bumped it, or any write of another process (store_auth_generation). */
    atomic_uint_fast64_t auth_gen;
    pthread_t watcher, reaper;
    int watch_fd, stop_fd;          /* inotify; an eventfd that stops both threads */
    atomic_int writing;             /* threads of this process writing its files now */
    atomic_int_fast64_t written;    /* ms: when one last stopped */
    bool watching;
    char *base;                     /* the database file's name, without its directory */
    /* The checkpointer: woken by the writer's WAL hook. */
    struct store_conn *checkpointer;
    pthread_t checkpointer_thread;
    bool checkpointing;             /* the thread runs */
    pthread_mutex_t ckpt_lock;      /* guards wanted, writer_turn, ckpt_stopping */
    pthread_cond_t ckpt_cond;
    bool wanted, ckpt_stopping;
    bool writer_turn;               /* the writer is to finish the checkpoint */
    atomic_int wal_pages;           /* the WAL's length after the last commit */
    int checkpoint_pages;           /* C, above */
};

/* While this process writes the database's files (and this long after),
 * the watcher, woken by its own writes, looks again only this often. */
#define WATCH_QUIET_MS 5

/* A kept snapshot older than this is ended: WAL frames a reader could still
 * read cannot be checkpointed away, and it shows other processes' changes
 * at the latest this late if the watcher missed them. */
#define SNAPSHOT_MAX_AGE 0.5

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A thread of this process begins, or ends, writing the database's files
 * (the writer a transaction, the checkpointer a checkpoint). */
static void writing_begins(struct store *s)
{
    atomic_fetch_add(&s->writing, 1);
}

static void writing_ends(struct store *s)
{
    atomic_store(&s->written, monotonic_ms());
    atomic_fetch_sub(&s->writing, 1);
}

static bool writing_lately(struct store *s)
{
    return atomic_load(&s->writing) > 0 ||
           monotonic_ms() - atomic_load(&s->written) < WATCH_QUIET_MS;
}

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

/* End a kept snapshot (the caller holds c->use). */
static void end_kept(struct store_conn *c)
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
        end_kept(c);
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
        conn_close(c);
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
        conn_close(c);
        return NULL;
    }
    /* SQLite opens a file it may not write read-only, silently: a daemon
     * must not start on it and then fail every write. */
    if (writer && sqlite3_db_readonly(c->db, "main") == 1) {
        snprintf(err, (size_t)errlen, "database %s is read-only to attachd", path);
        conn_close(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------------------
 * The writer thread: group commit
 * ------------------------------------------------------------------------- */

/* A queue of jobs, oldest first. */
struct queue {
    struct store_job *head, *tail;
    int n;
};

static void push(struct queue *q, struct store_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static struct store_job *pop(struct queue *q)
{
    struct store_job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
    }
    return j;
}

/* Put all of `front` before `q`'s jobs, keeping both orders. */
static void prepend(struct queue *q, struct queue *front)
{
    if (!front->head)
        return;
    front->tail->next = q->head;
    if (!q->head)
        q->tail = front->tail;
    q->head = front->head;
    q->n += front->n;
    *front = (struct queue){0};
}

static void finish_all(struct queue *q, struct queue *finished, int rc)
{
    struct store_job *j;
    while ((j = pop(q))) {
        j->rc = rc;
        push(finished, j);
    }
}

/* Is the database file still the one we opened, and writable? Once it is
 * not, it never is again for this store: the acknowledged writes would go
 * to a file that a restart would not open. */
static bool database_usable(struct store *s)
{
    if (s->lost)
        return false;
    struct stat st;
    const char *why = NULL;
    if (stat(s->path, &st) != 0)
        why = "was deleted or moved away";
    else if (st.st_dev != s->dev || st.st_ino != s->ino)
        why = "was replaced by another file";
    else if (access(s->path, W_OK) != 0)
        why = "is no longer writable";
    if (!why)
        return true;
    pthread_mutex_lock(&s->lock);
    s->lost = true;
    pthread_mutex_unlock(&s->lock);
    log_error("store: the database file %s %s since attachd opened it; refusing every write "
              "from now on (restart attachd on the right file)", s->path, why);
    return false;
}

/* Run one job's function; a job that runs out of memory is answered as not
 * committed (its savepoint is rolled back like a refusal's). */
static int run_job(struct store_conn *w, struct store_job *j)
{
    struct oom_point p;
    int rc;
    oom_enter(&p);
    if (setjmp(p.jb) == 0) {
        rc = j->fn(w, j->arg);
    } else {
        for (int i = 0; i < N_STMT; i++)
            if (w->st[i])
                sq_done(w->st[i]);
        log_error("store: a write ran out of memory; it is not committed");
        rc = -STORE_ERROR;
    }
    oom_leave(&p);
    return rc;
}

/* Run jobs from `pending` in one transaction. Jobs whose outcome is known
 * go to `finished`; jobs to run again (the transaction was undone under
 * them) go back to the front of `pending`. */
/* run_transaction's body, between writing_begins and writing_ends. */
static void transaction(struct store *s, struct store_conn *w, struct queue *pending,
                        struct queue *finished)
{
    double began = metrics_now();
    w->epoch_bumped = false;
    enum store_rc begin = sq_exec_id(w, S_BEGIN_IMMEDIATE);
    if (begin != STORE_OK) {
        finish_all(pending, finished, -(int)begin);
        return;
    }
    struct queue ran = {0};
    bool undone = false;        /* the transaction ended under us */
    struct store_job *j;
    while (!undone && ran.n < MAX_BATCH && pending->head) {
        if (pending->head->alone && ran.n > 0)
            break;              /* it waits for a transaction of its own */
        j = pop(pending);
        push(&ran, j);
        if (sq_exec_id(w, S_SAVEPOINT) != STORE_OK) {
            undone = true;
            break;
        }
        j->rc = run_job(w, j);
        /* A refused job's changes are undone; then the savepoint goes. If
         * either statement fails, or SQLite has rolled the whole transaction
         * back while the job ran, nothing of this transaction is reliable. */
        if ((j->rc != 0 && sq_exec_id(w, S_ROLLBACK_TO) != STORE_OK) ||
            sq_exec_id(w, S_RELEASE) != STORE_OK || sqlite3_get_autocommit(w->db))
            undone = true;
        if (j->alone)
            break;
    }
    if (!undone) {
        enum store_rc commit = sq_exec_id(w, S_COMMIT);
        if (commit == STORE_OK) {
            metrics_commit((unsigned)ran.n, metrics_now() - began);
            atomic_fetch_add(&s->changes, 1);
            if (w->epoch_bumped)
                atomic_fetch_add(&s->auth_gen, 1);
            prepend(finished, &ran);    /* order does not matter there */
            return;
        }
        log_error("store: commit failed: %s", sqlite3_errmsg(w->db));
        metrics_inc(METRIC_STORE_COMMIT_FAILED);
        if (!sqlite3_get_autocommit(w->db))
            sq_exec_id(w, S_ROLLBACK);
        /* A failed commit keeps nothing: every job of it is answered so,
         * the refused ones with their own answer. */
        while ((j = pop(&ran))) {
            if (j->rc == 0)
                j->rc = -(int)(commit == STORE_BUSY ? STORE_BUSY : STORE_ERROR);
            push(finished, j);
        }
        return;
    }
    log_warn("store: a transaction of %d writes was undone by SQLite (%s); running them again",
             ran.n, sqlite3_errmsg(w->db));
    if (!sqlite3_get_autocommit(w->db))
        sq_exec_id(w, S_ROLLBACK);
    /* Every job of it runs again, refused ones too: a refusal may have been
     * caused by a neighbour's change that is now gone. The job it ended
     * under runs alone from now on, so that it cannot take its neighbours
     * down again, and is answered as not committed once it has ended
     * MAX_ATTEMPTS transactions. */
    struct store_job *culprit = ran.tail;
    struct queue again = {0};
    while ((j = pop(&ran)) != culprit)
        push(&again, j);
    culprit->alone = true;
    if (++culprit->attempts >= MAX_ATTEMPTS) {
        culprit->rc = -STORE_ERROR;
        push(finished, culprit);
    } else {
        push(&again, culprit);
    }
    prepend(pending, &again);
}

static void run_transaction(struct store *s, struct queue *pending, struct queue *finished)
{
    if (!database_usable(s)) {
        finish_all(pending, finished, -STORE_UNAVAILABLE);
        metrics_inc(METRIC_STORE_UNAVAILABLE);
        return;
    }
    writing_begins(s);
    transaction(s, s->writer, pending, finished);
    writing_ends(s);
}

/* On the writer thread, between transactions: see the top of this file.
 * BUSY is another checkpoint under way (the checkpointer's). */
static void finish_checkpoint(struct store *s)
{
    int pages = atomic_load(&s->wal_pages);
    pthread_mutex_lock(&s->ckpt_lock);
    bool turn = s->writer_turn;
    pthread_mutex_unlock(&s->ckpt_lock);
    bool must = pages >= 16 * s->checkpoint_pages;
    if (!turn && !must)
        return;
    int wait_ms = must ? CHECKPOINT_WAIT_MS : 0;
    int rc;
    writing_begins(s);
    for (;;) {
        rc = sqlite3_wal_checkpoint_v2(s->writer->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                       NULL);
        if (rc != SQLITE_BUSY || wait_ms-- <= 0)
            break;
        usleep(1000);
    }
    writing_ends(s);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_error("store: checkpoint: %s", sqlite3_errmsg(s->writer->db));
    if (rc != SQLITE_BUSY) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->writer_turn = false;
        pthread_cond_broadcast(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    atomic_store(&s->wal_pages, 0);     /* the next commit's hook says how long it is */
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-writer");
    struct store *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->head)
            break;
        struct queue pending = {0};
        struct store_job *j = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->lock);

        while (j) {
            struct store_job *next = j->next;
            push(&pending, j);
            j = next;
        }
        while (pending.head) {
            struct queue finished = {0};
            run_transaction(s, &pending, &finished);
            /* Answer outside the lock; done() may hand work on (and even
             * submit again). */
            while ((j = pop(&finished)))
                j->done(j);
            finish_checkpoint(s);
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

void store_submit(struct store *s, struct store_job *job)
{
    job->next = NULL;
    job->rc = 0;
    job->attempts = 0;
    job->alone = false;
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        job->rc = -STORE_UNAVAILABLE;
        job->done(job);
        return;
    }
    if (s->tail)
        s->tail->next = job;
    else
        s->head = job;
    s->tail = job;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
}

/* store_write(): a job whose done() wakes the thread that waits for it. */
struct waiter {
    struct store_job job;
    pthread_mutex_t lock;
    pthread_cond_t woken;
    bool done;
};

static void waiter_done(struct store_job *job)
{
    struct waiter *w = (struct waiter *)job;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->woken);
    pthread_mutex_unlock(&w->lock);
}

int store_write(struct store *s, store_write_fn fn, void *arg)
{
    struct waiter w = {.job = {.fn = fn, .arg = arg, .done = waiter_done}};
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

/* ---------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------
 * The checkpointer
 * ------------------------------------------------------------------------- */

/* Called by SQLite on the writer thread after each commit, with the WAL's
 * length: replaces the auto-checkpoint, which would run inside COMMIT. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct store *s = arg;
    atomic_store(&s->wal_pages, pages);
    if (pages >= s->checkpoint_pages) {
        pthread_mutex_lock(&s->ckpt_lock);
        if (!s->wanted && !s->writer_turn) {
            s->wanted = true;
            pthread_cond_broadcast(&s->ckpt_cond);
        }
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    return SQLITE_OK;
}

/* PASSIVE: copies what no reader still needs, without taking the write lock
 * or waiting for anyone; the writer restarts the WAL from its start once a
 * checkpoint copied all of it. A checkpoint that copied only part (a reader
 * held an older snapshot) is tried again at the next commit's hook. */
static void *checkpointer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-ckpt");
    struct store *s = arg;
    pthread_mutex_lock(&s->ckpt_lock);
    for (;;) {
        while (!s->wanted && !s->ckpt_stopping)
            pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
        if (s->ckpt_stopping)
            break;
        s->wanted = false;
        pthread_mutex_unlock(&s->ckpt_lock);
        writing_begins(s);
        int rc = sqlite3_wal_checkpoint_v2(s->checkpointer->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                           NULL, NULL);
        writing_ends(s);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_error("store: checkpoint: %s", sqlite3_errmsg(s->checkpointer->db));
        pthread_mutex_lock(&s->ckpt_lock);
        if (atomic_load(&s->wal_pages) >= 4 * s->checkpoint_pages) {
            /* the writer's turn; a pass now would only make it wait */
            s->writer_turn = true;
            while (s->writer_turn && !s->ckpt_stopping)
                pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
        }
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return NULL;
}

static bool checkpointer_start(struct store *s, char *err, int errlen)
{
    s->checkpointer = conn_open(s->path, false, s->synchronous_full, err, errlen);
    if (!s->checkpointer)
        return false;
    if (pthread_create(&s->checkpointer_thread, NULL, checkpointer_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the checkpointer thread");
        return false;
    }
    s->checkpointing = true;
    sqlite3_wal_hook(s->writer->db, wal_hook, s);
    return true;
}

/* After the writer thread stopped. Closing the last connection then
 * checkpoints what is left and removes the WAL (SQLite does). */
static void checkpointer_stop(struct store *s)
{
    if (s->checkpointing) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stopping = true;
        pthread_cond_broadcast(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_join(s->checkpointer_thread, NULL);
    }
    conn_close(s->checkpointer);
    s->checkpointer = NULL;
}

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

static bool watch_start(struct store *s, char *err, int errlen);
static void watch_stop(struct store *s);

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
    s->writer = conn_open(s->path, true, s->synchronous_full, err, errlen);
    struct stat st;
    char *msg = NULL;
    if (s->writer && (stat(s->path, &st) != 0 ||
                      sqlite3_exec(s->writer->db, "BEGIN IMMEDIATE; ROLLBACK", NULL, NULL,
                                   &msg) != SQLITE_OK)) {
        /* the write lock needs the -wal and -shm files beside it */
        snprintf(err, (size_t)errlen, "database %s cannot be written: %s", s->path,
                 msg ? msg : strerror(errno));
        sqlite3_free(msg);
        conn_close(s->writer);
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
    bool started = watch_start(s, err, errlen) && checkpointer_start(s, err, errlen);
    if (started && pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the writer thread");
        started = false;
    }
    if (!started) {
        checkpointer_stop(s);
        watch_stop(s);
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
    checkpointer_stop(s);
    watch_stop(s);
    struct store_conn *r = s->readers;
    while (r) {
        struct store_conn *next = r->next;
        pthread_mutex_destroy(&r->use);
        conn_close(r);
        r = next;
    }
    conn_close(s->writer);
    pthread_key_delete(s->reader_key);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_cond_destroy(&s->ckpt_cond);
    free(s->path);
    free(s);
}

static double monotonic(void)
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
    c = conn_open(s->path, false, s->synchronous_full, err, sizeof err);
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
    double now = monotonic();
    if (c->kept && c->gen == changes && now - c->began < SNAPSHOT_MAX_AGE)
        return STORE_OK;
    end_kept(c);
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
 * Changes by other processes, and snapshots left idle
 * ------------------------------------------------------------------------- */

/* Another process (the CLI: a password changed, a user deleted) wrote the
 * database: its WAL was written. inotify says so at once, for nothing per
 * request; the change count moves and every reader begins a new snapshot.
 * This process's own writes wake the watcher too (every page written):
 * while it writes, the watcher looks only every WATCH_QUIET_MS, so that
 * another process's change is seen that much later at most, and a commit
 * does not cost a wake per page. */
static void *watcher_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-watch");
    struct store *s = arg;
    char wal[PATH_MAX];
    snprintf(wal, sizeof wal, "%s-wal", s->base);
    struct pollfd fds[2] = {{s->watch_fd, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
    _Alignas(struct inotify_event) char buf[4096];
    while (poll(fds, 2, -1) >= 0 && !(fds[1].revents & POLLIN)) {
        ssize_t n = read(s->watch_fd, buf, sizeof buf);
        for (char *p = buf; n > 0 && p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (e->len && (!strcmp(e->name, wal) || !strcmp(e->name, s->base))) {
                atomic_fetch_add(&s->changes, 1);
                atomic_fetch_add(&s->auth_gen, 1);
            }
            p += sizeof *e + e->len;
        }
        bool stopping = false;
        while (!stopping && writing_lately(s))
            stopping = poll(&fds[1], 1, WATCH_QUIET_MS) != 0;
        if (stopping)
            break;
    }
    return NULL;
}

/* A thread that stops reading (no requests come its way) would keep its
 * snapshot, and with it WAL frames that a checkpoint could otherwise free:
 * snapshots idle for longer than SNAPSHOT_MAX_AGE are ended here. */
static void *reaper_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-reaper");
    struct store *s = arg;
    struct pollfd stop = {s->stop_fd, POLLIN, 0};
    while (poll(&stop, 1, (int)(SNAPSHOT_MAX_AGE * 1000)) == 0) {
        double now = monotonic();
        pthread_mutex_lock(&s->lock);
        for (struct store_conn *c = s->readers; c; c = c->next) {
            if (pthread_mutex_trylock(&c->use) != 0)
                continue;       /* in use: its thread renews it */
            if (c->kept && now - c->began >= SNAPSHOT_MAX_AGE)
                end_kept(c);
            pthread_mutex_unlock(&c->use);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static bool watch_start(struct store *s, char *err, int errlen)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (!(s->base = strdup(base))) {
        snprintf(err, (size_t)errlen, "out of memory");
        return false;
    }
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        strcpy(dir, ".");
    s->watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    s->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (s->watch_fd < 0 || s->stop_fd < 0 ||
        inotify_add_watch(s->watch_fd, dir, IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                                IN_MOVED_TO) < 0 ||
        pthread_create(&s->watcher, NULL, watcher_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot watch %s for changes: %s", dir, strerror(errno));
        return false;
    }
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        uint64_t one = 1;
        ssize_t w = write(s->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(s->watcher, NULL);
        snprintf(err, (size_t)errlen, "cannot start the snapshot reaper");
        return false;
    }
    s->watching = true;
    return true;
}

static void watch_stop(struct store *s)
{
    if (s->watching) {
        uint64_t one = 1;
        ssize_t w = write(s->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(s->watcher, NULL);
        pthread_join(s->reaper, NULL);
    }
    if (s->watch_fd >= 0)
        close(s->watch_fd);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    free(s->base);
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
