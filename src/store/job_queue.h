/* job_queue.h: a queue of store jobs (store.h's struct store_job, linked by
 * its `next`), oldest first: what each engine's writer thread collects,
 * runs in one transaction, and answers (sqlite_writer.c, pg_writer.c). */
#ifndef ATTACHD_JOB_QUEUE_H
#define ATTACHD_JOB_QUEUE_H

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
