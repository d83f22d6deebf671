/* sqlite_writer.c: the SQLite store's writer thread and its group commit,
 * and the checkpointer (sqlite_int.h).
 *
 * Checkpoints are not made inside a commit (SQLite's default) but by a
 * checkpointer thread on a connection of its own, PASSIVE, each time the
 * WAL has grown by C pages (store_options.checkpoint_pages) since its last
 * pass: a pass at every commit past C would copy a few pages and sync the
 * database each time (a fifth of attachd's CPU under a stream of detaches,
 * and fsyncs competing with the writer's). A WAL starts again from
 * its beginning only when a write begins after every frame was copied,
 * which a busy writer never lets the checkpointer see; so past 4 C, after
 * each of its passes, the checkpointer syncs the database file
 * (sync_database) and hands over to the writer, which copies what is left
 * (what was committed during that pass) between two batches, after
 * answering the first; the WAL then starts over at the next commit. When
 * C/4 frames or more were committed during the pass and its sync, the
 * checkpointer passes again first (up to MAX_PASSES in a row), so that the
 * writer's stop stays short (sq_pass_again). Past 16 C (checkpoints are
 * slow: a long fsync) the writer waits for its turn: the WAL stays
 * bounded, and commits slow down instead (but for frames
 * that a snapshot in use still needs: below).
 *
 * A pass copies only frames no snapshot still needs (a reader's, or the
 * writer's own while a commit is under way beside the pass), and commits
 * go on during and after it. Before each pass, the snapshots that readers
 * of this process keep while idle and that a commit has made stale (their
 * thread would begin anew at its next read) are ended: one read on a
 * thread that then served only writes would otherwise hold every frame
 * after it until the reaper's next round, half a second at most, in which
 * a stream of detaches writes tens of thousands of pages, for the writer
 * to copy in one stop. What a snapshot in use still needs (a request's,
 * another process's) waits. Under load the next pass copies the rest;
 * when no commit comes for CHECKPOINT_IDLE_MS while the WAL holds frames a
 * pass left, the checkpointer makes another, so that a store gone idle
 * does not keep its last commits in the WAL (and its next commit can start
 * the WAL over): one pass more each time the WAL grows by C pages, or a
 * few while a reader holds frames.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/job_queue.h"
#include "store/sqlite_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/oom.h"

/* How often one job may be run again after SQLite undid its transaction
 * before it is answered as not committed. */
#define MAX_ATTEMPTS 3
/* The most jobs one transaction takes; the rest wait for the next. */
#define MAX_BATCH 4096
/* How long the writer waits at most for a checkpoint past 16 C, in 1 ms steps. */
#define CHECKPOINT_WAIT_MS 5000
/* The most passes the checkpointer makes in a row before the writer's turn. */
#define MAX_PASSES 3
/* How long no commit must come before a pass that left frames is made again. */
#define CHECKPOINT_IDLE_MS 20

/* A thread of this process begins, or ends, writing the database's files
 * (the writer a transaction, the checkpointer a checkpoint). */
static void writing_begins(struct sq_store *s)
{
    atomic_fetch_add(&s->writing, 1);
}

static void writing_ends(struct sq_store *s)
{
    atomic_store(&s->written, (int64_t)(sq_monotonic() * 1000));
    atomic_fetch_sub(&s->writing, 1);
}

/* ---------------------------------------------------------------------------
 * The writer thread: group commit
 * ------------------------------------------------------------------------- */

/* No write is taken from now on (database_usable says so). */
static void refuse_writes(struct sq_store *s)
{
    pthread_mutex_lock(&s->lock);
    s->lost = true;
    pthread_mutex_unlock(&s->lock);
}

/* Is the database file still the one we opened, and writable? Once it is
 * not, it never is again for this store: the acknowledged writes would go
 * to a file that a restart would not open. */
static bool database_usable(struct sq_store *s)
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
    refuse_writes(s);
    log_error("store: the database file %s %s since attachd opened it; refusing every write "
              "from now on (restart attachd on the right file)", s->path, why);
    return false;
}

/* End the writer's transaction, keeping nothing of it. A connection still
 * inside it afterwards would carry what was to be discarded into the next
 * commit: no more writes then. */
static void roll_back(struct sq_store *s, struct sq_conn *w)
{
    if (sqlite3_get_autocommit(w->db) ||
        (sq_exec_id(w, S_ROLLBACK) == STORE_OK && sqlite3_get_autocommit(w->db)))
        return;
    refuse_writes(s);
    log_error("store: a transaction could not be rolled back (%s); refusing every write from "
              "now on", sqlite3_errmsg(w->db));
}

/* Run one job's function; a job that runs out of memory is answered as not
 * committed (its changes undone like a refusal's). */
static int run_job(struct sq_conn *w, struct store_job *j)
{
    struct oom_point p;
    int rc;
    oom_enter(&p);
    if (setjmp(p.jb) == 0) {
        rc = j->fn(&w->common, j->arg);
    } else {
        for (int i = 0; i < N_SQ_STMT; i++)
            if (w->st[i].st)
                sq_done(w->st[i].st);
        log_error("store: a write ran out of memory; it is not committed");
        rc = -STORE_ERROR;
    }
    oom_leave(&p);
    return rc;
}

/* Run jobs from `pending` in one transaction. Jobs whose outcome is known
 * go to `finished`; jobs to run again (the transaction was undone under
 * them) go back to the front of `pending`. True when it committed.
 * run_transaction's body, between writing_begins and writing_ends. */
static bool transaction(struct sq_store *s, struct sq_conn *w, struct job_queue *pending,
                        struct job_queue *finished)
{
    double began = metrics_now();
    w->common.epoch_bumped = false;
    enum store_rc begin = sq_exec_id(w, S_BEGIN_IMMEDIATE);
    if (begin != STORE_OK) {
        job_finish_all(pending, finished, -(int)begin);
        return false;
    }
    struct job_queue ran = {0};
    bool undone = false;        /* the transaction ended under us */
    bool unguarded = false;     /* or a job without a savepoint refused after changing rows */
    struct store_job *j;
    while (!undone && !unguarded && ran.n < MAX_BATCH && pending->head) {
        if (pending->head->alone && ran.n > 0)
            break;              /* it waits for a transaction of its own */
        j = job_pop(pending);
        job_push(&ran, j);
        if (j->guarded && sq_exec_id(w, S_SAVEPOINT) != STORE_OK) {
            undone = true;
            break;
        }
        /* A job changes the database through the record functions
         * (store.h): INSERT, UPDATE and DELETE, whose every row changed is
         * counted here, and none when the statement failed (SQLite undid
         * it). A refusal with no row counted left nothing to undo. */
        sqlite3_int64 changes = sqlite3_total_changes64(w->db);
        j->rc = run_job(w, j);
        /* A guarded job's refusal is rolled back to its savepoint; then the
         * savepoint goes. If either statement fails, or SQLite has rolled
         * the whole transaction back while the job ran, nothing of this
         * transaction is reliable. */
        if (j->guarded && ((j->rc != 0 && sq_exec_id(w, S_ROLLBACK_TO) != STORE_OK) ||
                           sq_exec_id(w, S_RELEASE) != STORE_OK))
            undone = true;
        else if (!j->guarded && j->rc != 0 && sqlite3_total_changes64(w->db) != changes)
            unguarded = true;
        if (sqlite3_get_autocommit(w->db))
            undone = true;
        if (j->alone)
            break;
    }
    if (unguarded && !undone) {
        /* Only a savepoint could undo its rows alone: the transaction goes,
         * and all of it runs again, every job the writer holds inside a
         * savepoint, so that requests made to refuse so cost at most one
         * run more each, however many of them come together. */
        roll_back(s, w);
        job_prepend(pending, &ran);
        for (j = pending->head; j; j = j->next)
            j->guarded = true;
        return false;
    }
    if (!undone) {
        enum store_rc commit = sq_exec_id(w, S_COMMIT);
        if (commit == STORE_OK) {
            metrics_commit((unsigned)ran.n, metrics_now() - began);
            atomic_fetch_add(&s->changes, 1);
            if (w->common.epoch_bumped)
                atomic_fetch_add(&s->auth_gen, 1);
            job_prepend(finished, &ran);    /* answered in the order they ran */
            return true;
        }
        log_error("store: commit failed: %s", sqlite3_errmsg(w->db));
        metrics_inc(METRIC_STORE_COMMIT_FAILED);
        roll_back(s, w);
        /* A failed commit keeps nothing: every job of it is answered so,
         * the refused ones with their own answer. */
        while ((j = job_pop(&ran))) {
            if (j->rc == 0)
                j->rc = -(int)(commit == STORE_BUSY ? STORE_BUSY : STORE_ERROR);
            job_push(finished, j);
        }
        return false;
    }
    log_warn("store: a transaction of %d writes was undone by SQLite (%s); running them again",
             ran.n, sqlite3_errmsg(w->db));
    roll_back(s, w);
    /* Every job of it runs again, refused ones too: a refusal may have been
     * caused by a neighbour's change that is now gone. The job it ended
     * under runs alone from now on, so that it cannot take its neighbours
     * down again, and is answered as not committed once it has ended
     * MAX_ATTEMPTS transactions. */
    struct store_job *culprit = ran.tail;
    struct job_queue again = {0};
    while ((j = job_pop(&ran)) != culprit)
        job_push(&again, j);
    culprit->alone = true;
    if (++culprit->attempts >= MAX_ATTEMPTS) {
        culprit->rc = -STORE_ERROR;
        job_push(finished, culprit);
    } else {
        job_push(&again, culprit);
    }
    job_prepend(pending, &again);
    return false;
}

static void run_transaction(struct sq_store *s, struct job_queue *pending,
                            struct job_queue *finished)
{
    if (!database_usable(s)) {
        job_finish_all(pending, finished, -STORE_UNAVAILABLE);
        metrics_inc(METRIC_STORE_UNAVAILABLE);
        return;
    }
    /* Lazy jobs alone (store.h): committed at synchronous NORMAL, which in
     * WAL mode appends to the log without an fsync. The setting can only
     * change between transactions, and takes effect when the PRAGMA is
     * compiled: it is not a prepared statement, which would keep the
     * level it was prepared with. */
    bool lazy = s->synchronous_full && job_all_lazy(pending, MAX_BATCH) &&
                sqlite3_exec(s->writer->db, "PRAGMA synchronous = NORMAL", NULL, NULL,
                             NULL) == SQLITE_OK;
    writing_begins(s);
    bool committed = transaction(s, s->writer, pending, finished);
    writing_ends(s);
    if (lazy) {
        if (committed)
            metrics_inc(METRIC_STORE_COMMIT_LAZY);
        if (sqlite3_exec(s->writer->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) !=
            SQLITE_OK) {
            /* every later commit would be as lazy: no more writes */
            refuse_writes(s);
            log_error("store: synchronous = FULL could not be set again after a lazy commit "
                      "(%s); refusing every write from now on", sqlite3_errmsg(s->writer->db));
        }
    }
}

/* On the writer thread, between transactions: see the top of this file.
 * BUSY is another checkpoint under way (the checkpointer's). A pass that
 * copied fewer frames than the WAL holds (a snapshot still needs them)
 * does not let the WAL start over: the next pass copies the rest. */
static void finish_checkpoint(struct sq_store *s)
{
    int pages = atomic_load(&s->wal_pages);
    pthread_mutex_lock(&s->ckpt_lock);
    bool turn = s->writer_turn;
    pthread_mutex_unlock(&s->ckpt_lock);
    bool must = pages >= 16 * s->checkpoint_pages;
    if (!turn && !must)
        return;
    int wait_ms = must ? CHECKPOINT_WAIT_MS : 0;
    int rc, log = 0, copied = 0;
    sq_end_stale_snapshots(s);      /* none goes stale while the writer waits here */
    writing_begins(s);
    for (;;) {
        rc = sqlite3_wal_checkpoint_v2(s->writer->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                       &copied);
        if (rc != SQLITE_BUSY || wait_ms-- <= 0)
            break;
        usleep(1000);
    }
    writing_ends(s);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_error("store: checkpoint: %s", sqlite3_errmsg(s->writer->db));
    if (rc == SQLITE_OK)
        metrics_inc(METRIC_STORE_CHECKPOINTS);
    bool all = rc == SQLITE_OK && copied == log;
    if (rc != SQLITE_BUSY) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->writer_turn = false;
        /* all copied: the next commit starts the WAL over */
        s->ckpt_log = all ? 0 : log;
        s->ckpt_copied = all ? 0 : copied;
        pthread_cond_broadcast(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    if (all)
        atomic_store(&s->wal_pages, 0);     /* the next commit's hook says how long it is */
}

void *sq_writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-writer");
    struct sq_store *s = arg;
    struct job_queue pending;
    while (job_inbox_take(&s->inbox, &pending)) {
        while (pending.head) {
            struct job_queue finished = {0};
            run_transaction(s, &pending, &finished);
            job_answer_all(&finished);
            finish_checkpoint(s);
        }
    }
    return NULL;
}

void sq_submit(struct store *base, struct store_job *job)
{
    job_inbox_submit(&sq_store_of(base)->inbox, job);
}

/* ---------------------------------------------------------------------------
 * The checkpointer
 * ------------------------------------------------------------------------- */

/* Called by SQLite on the writer thread after each commit, with the WAL's
 * length: replaces the auto-checkpoint, which would run inside COMMIT. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct sq_store *s = arg;
    atomic_store(&s->wal_pages, pages);
    /* once per commit, at most some thousands a second: the lock is cheap */
    pthread_mutex_lock(&s->ckpt_lock);
    if (pages < s->ckpt_log)
        s->ckpt_log = s->ckpt_copied = 0;   /* the WAL started over since that pass */
    if (pages - s->ckpt_log >= s->checkpoint_pages && !s->wanted && !s->writer_turn) {
        s->wanted = true;
        pthread_cond_broadcast(&s->ckpt_cond);
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return SQLITE_OK;
}

/* Under ckpt_lock, after a pass that copied the first `copied` frames:
 * while the WAL holds frames past those, waits for CHECKPOINT_IDLE_MS
 * without a commit, then asks for another pass. A commit's hook asks for
 * one itself once the WAL has grown by C pages. */
static void again_when_idle(struct sq_store *s, int copied)
{
    uint64_t seen = atomic_load(&s->changes);
    while (!s->wanted && !s->ckpt_stopping && atomic_load(&s->wal_pages) > copied) {
        struct timespec until;
        deadline_after_ms(&until, CHECKPOINT_IDLE_MS);
        int rc = 0;
        while (!s->wanted && !s->ckpt_stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->ckpt_cond, &s->ckpt_lock, &until);
        uint64_t changes = atomic_load(&s->changes);
        if (rc == ETIMEDOUT && changes == seen) {
            s->wanted = true;
            return;
        }
        seen = changes;
    }
}

/* Writes the pages that the checkpointer's passes copied into the
 * database file out to the disk. SQLite syncs the database file only in a
 * pass that copies the WAL up to its end, which under load is the writer's
 * turn: the checkpointer's passes, beside which commits go on, leave the
 * pages they wrote (thousands, scattered over the file) to that sync, and
 * the writer stopped for it: 15 to 37 ms every 140 ms or so under a stream
 * of detaches at 1M attachments, the p99 of the detaches (bench/results.md,
 * 2026-12-05). Synced here before the writer's turn, that sync has only
 * the writer's own pass to write. */
static void sync_database(struct sq_store *s)
{
    sqlite3_file *f = NULL;
    int rc = sqlite3_file_control(s->checkpointer->db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
    if (rc == SQLITE_OK && f && f->pMethods)
        rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK)
        log_error("store: checkpoint: cannot sync the database file: %s", sqlite3_errstr(rc));
}

/* One PASSIVE pass of the checkpointer, which copies `copied` of the `log`
 * frames of the WAL (an error other than BUSY logged). Past 4 C, before
 * the writer's turn, the database file is synced after it, unless SQLite
 * did: the pass copied the WAL to its end, with no commit beside it. */
static int checkpoint_pass(struct sq_store *s, int *log, int *copied)
{
    int rc = sqlite3_wal_checkpoint_v2(s->checkpointer->db, NULL, SQLITE_CHECKPOINT_PASSIVE, log,
                                       copied);
    if (rc != SQLITE_OK) {
        if (rc != SQLITE_BUSY)
            log_error("store: checkpoint: %s", sqlite3_errmsg(s->checkpointer->db));
        return rc;
    }
    metrics_inc(METRIC_STORE_CHECKPOINTS);
    int pages = atomic_load(&s->wal_pages);
    bool synced = *copied == *log && pages == *log;
    if (pages >= 4 * s->checkpoint_pages && !synced)
        sync_database(s);
    return rc;
}

/* Why a pass again (sq_pass_again): at synchronous = NORMAL the commits
 * sync nothing and go fast, while the sync of a pass is long (it writes out
 * every page the passes since the last one copied: 30 to 35 ms at 1M
 * attachments): the writer's turn after it copied the 1,500 to 2,000
 * frames committed meanwhile, 21 to 27 ms of the writer stopped, which was
 * the p99 of detaches (bench/results.md, 2026-12-05). Another pass, beside
 * the commits, copies them first, and its sync is shorter; the writer's
 * turn copies what comes during that one. At FULL 200 to 600 frames came
 * during a pass and its sync: passing again from C/4 on rather than from C
 * took the p99 of detaches at 1M from 11.3-12.5 to 10.6-11.0 ms in three
 * trials of each, and left it at 10.0 ms in a bench/run of five rounds,
 * with the same CPU per write. A few passes at most. */
bool sq_pass_again(int checkpoint_pages, int pages, int log, int copied)
{
    int c = checkpoint_pages;
    return copied == log && pages >= 4 * c && pages < 12 * c && pages - copied >= c / 4;
}

/* PASSIVE: copies what no snapshot still needs, without taking the write
 * lock or waiting for anyone; the writer restarts the WAL from its start
 * once a checkpoint copied all of it. */
static void *checkpointer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-ckpt");
    struct sq_store *s = arg;
    pthread_mutex_lock(&s->ckpt_lock);
    for (;;) {
        while (!s->wanted && !s->ckpt_stopping)
            pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
        if (s->ckpt_stopping)
            break;
        s->wanted = false;
        pthread_mutex_unlock(&s->ckpt_lock);
        sq_end_stale_snapshots(s);
        writing_begins(s);
        int log = 0, copied = 0;
        int rc = checkpoint_pass(s, &log, &copied);
        for (int n = 1; n < MAX_PASSES && rc == SQLITE_OK; n++) {
            int l, c;       /* a pass that fails leaves what the one before did */
            if (!sq_pass_again(s->checkpoint_pages, atomic_load(&s->wal_pages), log, copied) ||
                checkpoint_pass(s, &l, &c) != SQLITE_OK)
                break;
            log = l;
            copied = c;
        }
        writing_ends(s);
        pthread_mutex_lock(&s->ckpt_lock);
        if (rc == SQLITE_OK) {
            /* The next pass comes C pages past this one's length, until
             * the WAL starts over. If it did since this pass (the commit
             * after a pass that copied it whole), that commit's hook may
             * have come before this lock: the new WAL is counted from 0,
             * not from the old length. (So, rarely, is a WAL whose last
             * commit's hook has not run yet: one pass more, no harm.) */
            if (atomic_load(&s->wal_pages) < log)
                log = copied = 0;
            s->ckpt_log = log;
            s->ckpt_copied = copied;
        }
        if (atomic_load(&s->wal_pages) >= 4 * s->checkpoint_pages) {
            /* the writer's turn; a pass now would only make it wait */
            s->writer_turn = true;
            while (s->writer_turn && !s->ckpt_stopping)
                pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
            again_when_idle(s, s->ckpt_copied);     /* what the writer's pass left */
        } else if (rc == SQLITE_OK) {
            again_when_idle(s, s->ckpt_copied);
        }
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return NULL;
}

bool sq_checkpointer_start(struct sq_store *s, char *err, int errlen)
{
    s->checkpointer = sq_conn_open(s->path, false, s->synchronous_full, err, errlen);
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
void sq_checkpointer_stop(struct sq_store *s)
{
    if (s->checkpointing) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stopping = true;
        pthread_cond_broadcast(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_join(s->checkpointer_thread, NULL);
    }
    sq_conn_close(s->checkpointer);
    s->checkpointer = NULL;
}
