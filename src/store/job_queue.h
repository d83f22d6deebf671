/* job_queue.h: a queue of store jobs (store.h's struct store_job, linked by
 * its `next`), oldest first: what each engine's writer thread collects,
 * runs in one transaction, and answers (sqlite_writer.c, pg_writer.c); and
 * the inbox through which jobs reach the writer: store_submit from any
 * thread, the writer taking every job queued at once. */
#ifndef ATTACHD_JOB_QUEUE_H
#define ATTACHD_JOB_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

#include "store/store.h"

struct job_queue {
    struct store_job *head, *tail;
    int n;
};

static inline void job_push(struct job_queue *q, struct store_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static inline struct store_job *job_pop(struct job_queue *q)
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
static inline void job_prepend(struct job_queue *q, struct job_queue *front)
{
    if (!front->head)
        return;
    front->tail->next = q->head;
    if (!q->head)
        q->tail = front->tail;
    q->head = front->head;
    q->n += front->n;
    *front = (struct job_queue){0};
}

/* Are the jobs that a writer takes next from q into one transaction (at
 * most `max`, ending after or before a job that runs alone) all lazy? */
static inline bool job_all_lazy(const struct job_queue *q, int max)
{
    int n = 0;
    for (const struct store_job *j = q->head; j && n < max; j = j->next, n++) {
        if (j->alone && n > 0)
            break;
        if (!j->lazy)
            return false;
        if (j->alone)
            return true;
    }
    return n > 0;
}

/* Answer every job of q (its outcome set), oldest first, each job's own
 * again from then on: done() may hand work on, and even submit again. */
static inline void job_answer_all(struct job_queue *q)
{
    struct store_job *j;
    while ((j = job_pop(q)))
        j->done(j);
}

/* ---- the inbox ---------------------------------------------------------------------- */

struct job_inbox {
    pthread_mutex_t lock;       /* guards the rest */
    pthread_cond_t work;
    struct job_queue q;
    bool stopping;
};

static inline void job_inbox_init(struct job_inbox *in)
{
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->work, NULL);
    in->q = (struct job_queue){0};
    in->stopping = false;
}

static inline void job_inbox_destroy(struct job_inbox *in)
{
    pthread_cond_destroy(&in->work);
    pthread_mutex_destroy(&in->lock);
}

/* Queue a job, its outcome fields reset; once the inbox is stopping it is
 * answered -STORE_UNAVAILABLE at once instead. */
static inline void job_inbox_submit(struct job_inbox *in, struct store_job *job)
{
    job->rc = 0;
    job->attempts = 0;
    job->alone = false;
    job->guarded = false;
    pthread_mutex_lock(&in->lock);
    if (in->stopping) {
        pthread_mutex_unlock(&in->lock);
        job->rc = -STORE_UNAVAILABLE;
        job->done(job);
        return;
    }
    job_push(&in->q, job);
    pthread_cond_signal(&in->work);
    pthread_mutex_unlock(&in->lock);
}

/* The writer's wait: every job queued, moved to `into` (which is empty),
 * as soon as there is one. False once the inbox is stopping and empty:
 * every job queued before job_inbox_stop is still taken. */
static inline bool job_inbox_take(struct job_inbox *in, struct job_queue *into)
{
    pthread_mutex_lock(&in->lock);
    while (!in->q.head && !in->stopping)
        pthread_cond_wait(&in->work, &in->lock);
    *into = in->q;
    in->q = (struct job_queue){0};
    pthread_mutex_unlock(&in->lock);
    return into->head != NULL;
}

/* Refuse new jobs from now on, and wake the writer to finish. */
static inline void job_inbox_stop(struct job_inbox *in)
{
    pthread_mutex_lock(&in->lock);
    in->stopping = true;
    pthread_cond_broadcast(&in->work);
    pthread_mutex_unlock(&in->lock);
}

static inline bool job_inbox_stopping(struct job_inbox *in)
{
    pthread_mutex_lock(&in->lock);
    bool stopping = in->stopping;
    pthread_mutex_unlock(&in->lock);
    return stopping;
}

/* Every job of q answered rc: moved to `finished`. */
static inline void job_finish_all(struct job_queue *q, struct job_queue *finished, int rc)
{
    struct store_job *j;
    while ((j = job_pop(q))) {
        j->rc = rc;
        job_push(finished, j);
    }
}

#endif
