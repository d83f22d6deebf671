/* pg_writer.c: the PostgreSQL engine's writer (pg_int.h, store.h's
 * contract for store_submit and store_write).
 *
 * The writer: a thread with a connection of its own runs every job queued
 * at that moment in one SERIALIZABLE transaction (docs/scale-out.md says
 * why), each inside a savepoint (a job that refuses is rolled back to it
 * alone), commits once, then answers each job with its true outcome:
 *  - a serialization failure or a deadlock (STORE_BUSY, the transaction
 *    doomed: pg.h), at a statement or at COMMIT, runs the whole batch
 *    again: the jobs are pure (store.h), after a wait that grows with the
 *    attempts (randomised, so that two nodes whose batches conflict do not
 *    meet again in step). The job it ended under runs alone after
 *    ALONE_AFTER such ends, and is answered -STORE_BUSY after MAX_ATTEMPTS
 *    (about a third of a second of waits in all);
 *  - the connection lost during the batch: every job of it is answered
 *    -STORE_UNAVAILABLE (nothing of it was committed); the jobs not yet run
 *    wait for the next transaction, which makes the connection again
 *    (pg_ready, with its backoff) or answers them -STORE_UNAVAILABLE too;
 *  - a COMMIT whose outcome is unknown (pg_commit says so: the connection
 *    broke before its answer) answers every job of the batch
 *    -STORE_UNAVAILABLE: neither success nor refusal is guessed;
 *  - a lock or statement timeout inside a job is that job's -STORE_BUSY
 *    (pg_exchange.c maps them), rolled back to its savepoint like a refusal.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "store/job_queue.h"
#include "store/pg_int.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/oom.h"

/* How many transactions one job may end (a serialization failure, a
 * deadlock) in a batch before it runs alone, and in all before it is
 * answered -STORE_BUSY; the wait before it runs again, in microseconds:
 * doubling from the first, at most the second (with nodes writing the same
 * rows, a batch of another node holds them some milliseconds). */
#define ALONE_AFTER 3
#define MAX_ATTEMPTS 16
#define RETRY_WAIT_MIN 1000u
#define RETRY_WAIT_MAX 25000u
/* The most jobs one transaction takes; the rest wait for the next. */
#define MAX_BATCH 4096

/* Records are stamped by the database's clock (store_now), so that every
 * node on one database stamps by one clock: its offset from this machine's
 * is measured on the writer's connection when the store opens, then again
 * every CLOCK_EVERY seconds before a batch (CLOCK_RETRY after a failure,
 * the last offset kept meanwhile). A round trip's error is half of it. */
#define CLOCK_EVERY 60.0
#define CLOCK_RETRY 5.0

void pgs_measure_clock(struct pg_store *s)
{
    int64_t server, local;
    bool ok = pg_clock(s->writer->pg, &server, &local);
    if (ok) {
        int64_t offset = server - local;
        if ((offset > 1000000 || offset < -1000000) &&
            (store_clock_offset() - offset > 1000000 || offset - store_clock_offset() > 1000000))
            log_warn("store: this machine's clock is %.1f s %s PostgreSQL's; records are "
                     "stamped by PostgreSQL's",
                     (double)(offset < 0 ? -offset : offset) / 1e6,
                     offset > 0 ? "behind" : "ahead of");
        store_clock_offset_set(offset);
    }
    s->clock_due = metrics_now() + (ok ? CLOCK_EVERY : CLOCK_RETRY);
}

/* ---------------------------------------------------------------------------
 * The writer thread: group commit
 * ------------------------------------------------------------------------- */

/* Run one job's function; a job that runs out of memory is answered as not
 * committed (its savepoint is rolled back like a refusal's). */
static int run_job(struct pgs_conn *w, struct store_job *j)
{
    struct oom_point p;
    int rc;
    oom_enter(&p);
    if (setjmp(p.jb) == 0) {
        rc = j->fn(&w->common, j->arg);
    } else {
        pgs_reset_all(w);
        log_error("store: a write ran out of memory; it is not committed");
        rc = -STORE_ERROR;
    }
    oom_leave(&p);
    return rc;
}

/* Why a transaction ended under its jobs: the connection is lost
 * (STORE_UNAVAILABLE) or the transaction doomed (STORE_BUSY). */
static enum store_rc undone_why(struct pg_conn *pg)
{
    return pg_lost(pg) || !pg_in_transaction(pg) ? STORE_UNAVAILABLE : STORE_BUSY;
}

/* The wait before attempt `attempts` + 1: RETRY_WAIT_MIN doubling up to
 * RETRY_WAIT_MAX, times a random factor in [0.5, 1.5). */
static unsigned retry_wait(int attempts)
{
    static _Thread_local uint64_t x;        /* xorshift64, the writer's own */
    if (!x)
        x = (uint64_t)metrics_now() * 1000003u ^ (uint64_t)(uintptr_t)&x ^ 0x9e3779b97f4a7c15u;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    unsigned wait = RETRY_WAIT_MIN;
    for (int i = 1; i < attempts && wait < RETRY_WAIT_MAX; i++)
        wait *= 2;
    if (wait > RETRY_WAIT_MAX)
        wait = RETRY_WAIT_MAX;
    return wait / 2 + (unsigned)(x % wait);
}

/* Every job of `ran` runs again (refused ones too: a refusal may have been
 * caused by a neighbour's change that is now gone), the job it ended under
 * alone after ALONE_AFTER, answered `why` after MAX_ATTEMPTS. */
static void again(struct job_queue *ran, struct job_queue *pending, struct job_queue *finished,
                  enum store_rc why)
{
    struct store_job *culprit = ran->tail, *j;
    struct job_queue back = {0};
    while ((j = job_pop(ran)) != culprit)
        job_push(&back, j);
    culprit->attempts++;
    if (culprit->attempts >= ALONE_AFTER)
        culprit->alone = true;
    if (culprit->attempts >= MAX_ATTEMPTS) {
        culprit->rc = -(int)why;
        job_push(finished, culprit);
    } else {
        job_push(&back, culprit);
    }
    job_prepend(pending, &back);
    /* a moment for the transaction it conflicted with to end */
    usleep(retry_wait(culprit->attempts));
}

/* Run jobs from `pending` in one transaction (see the top of this file).
 * Jobs whose outcome is known go to `finished`; jobs to run again go back
 * to the front of `pending`. */
static void transaction(struct pg_store *s, struct job_queue *pending, struct job_queue *finished)
{
    struct pgs_conn *w = s->writer;
    struct pg_conn *pg = w->pg;
    if (!pg_ready(pg)) {
        job_finish_all(pending, finished, -STORE_UNAVAILABLE);
        metrics_inc(METRIC_STORE_UNAVAILABLE);
        return;
    }
    double began = metrics_now();
    w->common.epoch_bumped = false;
    bool lazy = job_all_lazy(pending, MAX_BATCH);
    pg_begin(pg, PG_SERIALIZABLE);
    struct job_queue ran = {0};
    enum store_rc undone = STORE_OK;
    while (undone == STORE_OK && ran.n < MAX_BATCH && pending->head) {
        if (pending->head->alone && ran.n > 0)
            break;              /* it waits for a transaction of its own */
        struct store_job *j = job_pop(pending);
        job_push(&ran, j);
        pg_savepoint(pg);
        j->rc = run_job(w, j);
        if (j->rc == 0 && pg_failed(pg))
            j->rc = -STORE_ERROR;   /* a statement failed and the job did not say so */
        if (pg_doomed(pg)) {
            undone = undone_why(pg);
        } else if (j->rc != 0) {
            enum store_rc back = pg_rollback_to(pg);
            if (back != STORE_OK)
                undone = pg_doomed(pg) ? undone_why(pg) : back;
        }
        if (undone == STORE_OK)
            pg_release(pg);
        if (j->alone)
            break;
    }
    if (undone == STORE_OK) {
        if (lazy)
            pg_commit_unflushed(pg);
        bool unknown;
        enum store_rc commit = pg_commit(pg, &unknown);
        if (commit == STORE_OK) {
            metrics_commit((unsigned)ran.n, metrics_now() - began);
            if (lazy)
                metrics_inc(METRIC_STORE_COMMIT_LAZY);
            /* this node's own change is seen at once, not when its
             * notification comes back */
            struct pg_listener *l = atomic_load(&s->listener);
            if (w->common.epoch_bumped && l)
                pg_listen_bump(l);
            job_prepend(finished, &ran);
            return;
        }
        if (commit == STORE_BUSY) {
            /* a serialization failure at COMMIT: nothing was kept */
            again(&ran, pending, finished, STORE_BUSY);
            return;
        }
        metrics_inc(METRIC_STORE_COMMIT_FAILED);
        if (commit == STORE_UNAVAILABLE) {
            log_error("store: the PostgreSQL connection was lost %s the COMMIT of %d writes: "
                      "%s; each is answered as unavailable", unknown ? "during" : "before",
                      ran.n, unknown ? "it may or may not have committed" : "not committed");
            job_finish_all(&ran, finished, -STORE_UNAVAILABLE);
            return;
        }
        log_error("store: COMMIT failed: %s", pg_message(pg));
        /* A failed commit keeps nothing: every job of it is answered so,
         * the refused ones with their own answer. */
        struct store_job *j;
        while ((j = job_pop(&ran))) {
            if (j->rc == 0)
                j->rc = -(int)commit;
            job_push(finished, j);
        }
        return;
    }
    pg_rollback(pg);
    if (undone == STORE_UNAVAILABLE) {
        log_warn("store: a transaction of %d writes was lost with its PostgreSQL connection; "
                 "each is answered as unavailable", ran.n);
        metrics_inc(METRIC_STORE_UNAVAILABLE);
        job_finish_all(&ran, finished, -STORE_UNAVAILABLE);
        return;
    }
    if (undone == STORE_BUSY)
        log_info("store: a transaction of %d writes ended in a serialization failure or a "
                 "deadlock; running them again", ran.n);
    else
        log_warn("store: a transaction of %d writes was undone (%s); running them again",
                 ran.n, pg_message(pg));
    again(&ran, pending, finished, undone);
}

void *pgs_writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-writer");
    struct pg_store *s = arg;
    struct job_queue pending;
    while (job_inbox_take(&s->inbox, &pending)) {
        if (metrics_now() >= s->clock_due)
            pgs_measure_clock(s);
        while (pending.head) {
            struct job_queue finished = {0};
            transaction(s, &pending, &finished);
            job_answer_all(&finished);
        }
    }
    return NULL;
}

void pgs_submit(struct store *base, struct store_job *job)
{
    job_inbox_submit(&store_of(base)->inbox, job);
}
