/* tasks.c: the core's hypervisor work.
 *
 * A change that touches the hypervisor is a task in three parts: an intent
 * committed by the store (an attachment "attaching", a volume "creating"),
 * a driver call made on a worker thread outside any transaction, and a
 * completion committed after it. The completion is triggered by the call's
 * result, by a driver event (a disk removed), or by a deadline; it is a
 * compare-and-set on the intent, so a late or repeated trigger changes
 * nothing. A crash between the parts leaves an intent that the reconciler
 * (reconcile.c) finishes or undoes. The intent is flushed to disk before
 * the hypervisor is touched; a completion that records only what the
 * hypervisor confirmed (a disk there, a disk gone) is not waited for
 * (task_complete_confirmed): a crash that loses it is such a crash.
 *
 * Tasks queue in lanes: one lane per server (or per volume, for its file),
 * and only the head of a lane runs, so one device operation per server at a
 * time, in order; lanes run in parallel on the workers. The head holds its
 * lane from its driver call until its completion is committed, waiting for
 * a removal included.
 *
 * Threads: the workers (driver calls), one timer thread (deadlines, the
 * requester's longest wait, the reconciler's period), the driver's event
 * thread (events only mark tasks), the store's writer (completions; their
 * done() releases the lane). One mutex guards lanes, tasks and the
 * requesters' ops; nothing blocks while holding it.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"

/* ---- kinds ----------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*step)(struct core *c, struct task *t);
} kinds[] = {
    [TASK_ATTACH] = {"attach", core_attachment_step},
    [TASK_SETTLE_ATTACH] = {"attach", core_attachment_step},
    [TASK_DETACH] = {"detach", core_attachment_step},
    [TASK_VOLUME_CREATE] = {"volume create", core_volume_step},
    [TASK_VOLUME_DELETE] = {"volume delete", core_volume_step},
    [TASK_SERVER_DELETE] = {"server delete", core_server_step},
    [TASK_SERVER_CREATE] = {"server create", core_server_step},
    [TASK_SERVER_POWER] = {"server power", core_server_step},
    [TASK_SERVER_CONSOLE] = {"console", core_server_step},
};

const char *task_name(enum task_kind kind)
{
    return kinds[kind].name;
}

void task_step(struct core *c, struct task *t)
{
    kinds[t->kind].step(c, t);
}

/* ---- time ------------------------------------------------------------------ */

double core_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- lanes -------------------------------------------------------------------- */

struct lane {
    char key[TASK_KEY_MAX];
    struct task *head, *tail;
    struct lane *next;
};

static struct lane *lane_of(struct core *c, const char *key, bool create)
{
    for (struct lane *l = c->lanes; l; l = l->next)
        if (!strcmp(l->key, key))
            return l;
    if (!create)
        return NULL;
    struct lane *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    snprintf(l->key, sizeof l->key, "%s", key);
    struct lane **end = &c->lanes;      /* FIFO: the oldest lane is served first */
    while (*end)
        end = &(*end)->next;
    *end = l;
    return l;
}

static void lane_drop(struct core *c, struct lane *l)
{
    for (struct lane **p = &c->lanes; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            free(l);
            return;
        }
    }
}

/* ---- tasks ---------------------------------------------------------------------- */

void task_free(struct task *t)
{
    if (t) {
        free(t->volumes);
        free(t);
    }
}

struct task *task_new(enum task_kind kind, const char *lane)
{
    struct task *t = calloc(1, sizeof *t);
    if (t) {
        t->kind = kind;
        snprintf(t->lane, sizeof t->lane, "%s", lane);
    }
    return t;
}

bool task_enqueue(struct core *c, struct task *t)
{
    pthread_mutex_lock(&c->lock);
    struct lane *l = c->stopping ? NULL : lane_of(c, t->lane, true);
    if (!l) {
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    t->state = TASK_READY;
    t->queued_at = core_clock();
    t->next = NULL;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    c->tasks++;
    pthread_cond_broadcast(&c->wake);
    pthread_cond_signal(&c->tick);      /* it may have a requester's deadline */
    pthread_mutex_unlock(&c->lock);
    return true;
}

/* Does a task work on this attachment, volume (its file) or server (its
 * create or delete)? */
static bool task_about(const struct task *t, const char *id)
{
    switch (t->kind) {
    case TASK_VOLUME_CREATE: case TASK_VOLUME_DELETE: return !strcmp(t->volume, id);
    case TASK_SERVER_DELETE: case TASK_SERVER_CREATE: case TASK_SERVER_POWER:
        return !strcmp(t->server, id);
    default: return !strcmp(t->attachment, id);
    }
}

bool task_pending_for(struct core *c, const char *id)
{
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (struct lane *l = c->lanes; l && !found; l = l->next)
        for (struct task *t = l->head; t && !found; t = t->next)
            found = task_about(t, id);
    pthread_mutex_unlock(&c->lock);
    return found;
}

/* Take the requester's op off a task (under the lock): who takes it answers
 * it, once. */
static struct core_op *take_op(struct task *t)
{
    struct core_op *op = t->op;
    t->op = NULL;
    return op;
}

static void answer(struct core_op *op, bool ok, bool pending, const struct core_error *err)
{
    if (!op)
        return;
    op->pending = pending;
    if (!ok && err)
        op->err = *err;
    core_finish(op, ok);
}

/* The head of a lane is finished: answer its requester (if still waiting),
 * free it, and let the next task of the lane run. */
static void task_finished(struct core *c, struct task *t)
{
    pthread_mutex_lock(&c->lock);
    struct core_op *op = take_op(t);
    struct lane *l = lane_of(c, t->lane, false);
    if (l && l->head == t) {
        l->head = t->next;
        if (!l->head) {
            l->tail = NULL;
            lane_drop(c, l);
        }
    }
    c->tasks--;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
    answer(op, t->ok, false, &t->err);
    task_free(t);
}

static void completion_done(struct store_job *job)
{
    struct task *t = (struct task *)((char *)job - offsetof(struct task, job));
    struct core *c = t->core;
    /* A completion commits the outcome that t->ok and t->err tell; one that
     * refuses (> 0) found the intent changed and set t->err; one that
     * cannot commit leaves the intent to the reconciler. */
    if (job->rc < 0) {
        core_store_failed(&t->err, (enum store_rc)-job->rc);
        t->ok = false;
        log_error("core: %s %s: the completion could not be committed; the reconciler will "
                  "finish it", task_name(t->kind),
                  t->attachment[0] ? t->attachment : t->volume[0] ? t->volume : t->server);
    } else if (job->rc > 0) {
        t->ok = false;
    }
    task_finished(c, t);
}

static void complete(struct core *c, struct task *t, store_write_fn fn, bool lazy)
{
    t->core = c;
    t->job = (struct store_job){.fn = fn, .arg = t, .done = completion_done, .lazy = lazy};
    pthread_mutex_lock(&c->lock);
    t->state = TASK_COMMITTING;
    pthread_mutex_unlock(&c->lock);
    store_submit(c->store, &t->job);
}

void task_complete(struct core *c, struct task *t, store_write_fn fn)
{
    complete(c, t, fn, false);
}

void task_complete_confirmed(struct core *c, struct task *t, store_write_fn fn)
{
    complete(c, t, fn, true);
}

void task_done(struct core *c, struct task *t)
{
    task_finished(c, t);
}

struct core_op *task_take_op(struct core *c, struct task *t)
{
    pthread_mutex_lock(&c->lock);
    struct core_op *op = take_op(t);
    pthread_mutex_unlock(&c->lock);
    return op;
}

void task_wait(struct core *c, struct task *t, double retry_at)
{
    pthread_mutex_lock(&c->lock);
    t->retry_at = retry_at;
    t->state = t->removed ? TASK_READY : TASK_WAITING;   /* the event may have come */
    pthread_cond_broadcast(&c->wake);
    pthread_cond_signal(&c->tick);      /* a new deadline for the timer */
    pthread_mutex_unlock(&c->lock);
}

void task_answer_pending(struct core *c, struct task *t)
{
    pthread_mutex_lock(&c->lock);
    struct core_op *op = take_op(t);
    pthread_mutex_unlock(&c->lock);
    answer(op, true, true, NULL);
}

/* ---- events from the driver ------------------------------------------------------- */

static void on_disk_removed(void *cls, const char *domain, const char *alias)
{
    struct core *c = cls;
    pthread_mutex_lock(&c->lock);
    for (struct lane *l = c->lanes; l; l = l->next) {
        struct task *t = l->head;
        if (t && t->kind == TASK_DETACH && !strcmp(t->domain, domain) &&
            !strcmp(t->alias, alias)) {
            t->removed = true;
            if (t->state == TASK_WAITING)
                t->state = TASK_READY;
            pthread_cond_broadcast(&c->wake);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_domain_state(void *cls, const char *domain, enum driver_state state)
{
    core_follow_domain(cls, domain, state);
}

static void on_connection(void *cls, bool up)
{
    struct core *c = cls;
    pthread_mutex_lock(&c->lock);
    bool was = c->hypervisor_up;
    c->hypervisor_up = up;
    if (up && !was)
        c->reconcile_at = core_clock();     /* see what happened meanwhile */
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
    log_info("core: the hypervisor connection is %s", up ? "back" : "lost");
}

double core_tasks_pending(struct core *c, const char *names[CORE_TASK_KINDS],
                          int counts[CORE_TASK_KINDS])
{
    static const char *const label[] = {
        [TASK_ATTACH] = "attach", [TASK_SETTLE_ATTACH] = "attach_settle",
        [TASK_DETACH] = "detach", [TASK_VOLUME_CREATE] = "volume_create",
        [TASK_VOLUME_DELETE] = "volume_delete", [TASK_SERVER_DELETE] = "server_delete",
        [TASK_SERVER_CREATE] = "server_create", [TASK_SERVER_POWER] = "server_power",
        [TASK_SERVER_CONSOLE] = "console",
    };
    _Static_assert(sizeof label / sizeof label[0] == CORE_TASK_KINDS, "CORE_TASK_KINDS");
    double oldest = 0, now = core_clock();
    for (int i = 0; i < CORE_TASK_KINDS; i++) {
        names[i] = label[i];
        counts[i] = 0;
    }
    pthread_mutex_lock(&c->lock);
    for (struct lane *l = c->lanes; l; l = l->next) {
        for (struct task *t = l->head; t; t = t->next) {
            counts[t->kind]++;
            if (now - t->queued_at > oldest)
                oldest = now - t->queued_at;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return oldest;
}

bool core_hypervisor_up(struct core *c)
{
    pthread_mutex_lock(&c->lock);
    bool up = c->hypervisor_up;
    pthread_mutex_unlock(&c->lock);
    return up;
}

/* ---- workers and the timer ----------------------------------------------------------- */

static struct task *next_ready(struct core *c)
{
    for (struct lane *l = c->lanes; l; l = l->next)
        if (l->head && l->head->state == TASK_READY)
            return l->head;
    return NULL;
}

static void *worker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "core-worker");
    struct core *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        struct task *t = next_ready(c);
        if (!t && c->reconcile_due && !c->reconciling) {
            c->reconcile_due = false;
            c->reconciling = true;
            pthread_mutex_unlock(&c->lock);
            core_reconcile(c, NULL, NULL);
            pthread_mutex_lock(&c->lock);
            c->reconciling = false;
            continue;
        }
        if (!t) {
            pthread_cond_wait(&c->wake, &c->lock);
            continue;
        }
        t->state = TASK_RUNNING;
        pthread_mutex_unlock(&c->lock);
        task_step(c, t);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Deadlines: waiting tasks whose time has come run again; requesters who
 * asked to wait no longer than `answer_by` get their answer; the reconciler
 * runs every reconcile_interval. */
static void *timer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "core-timer");
    struct core *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        double now = core_clock(), next = now + 3600;
        struct core_op *late[16];
        struct task *late_task[16];
        int n_late = 0;
        for (struct lane *l = c->lanes; l; l = l->next) {
            struct task *t = l->head;
            if (!t)
                continue;
            if (t->state == TASK_WAITING) {
                if (t->retry_at <= now) {
                    t->state = TASK_READY;
                    pthread_cond_broadcast(&c->wake);
                } else if (t->retry_at < next) {
                    next = t->retry_at;
                }
            }
            if (t->op && t->answer_by > 0) {
                if (t->answer_by <= now && n_late < 16) {
                    late_task[n_late] = t;
                    late[n_late++] = take_op(t);
                } else if (t->answer_by < next) {
                    next = t->answer_by;
                }
            }
        }
        if (c->reconcile_at > 0 && c->reconcile_at <= now) {
            c->reconcile_due = true;
            c->reconcile_at = c->reconcile_interval > 0 ? now + c->reconcile_interval : 0;
            pthread_cond_broadcast(&c->wake);
        }
        if (c->reconcile_at > 0 && c->reconcile_at < next)
            next = c->reconcile_at;
        if (n_late) {
            pthread_mutex_unlock(&c->lock);
            for (int i = 0; i < n_late; i++) {
                log_info("core: %s %s still in progress; answered as pending",
                         task_name(late_task[i]->kind), late_task[i]->attachment);
                answer(late[i], true, true, NULL);
            }
            pthread_mutex_lock(&c->lock);
            continue;
        }
        struct timespec until = {0};  /* c->tick waits on CLOCK_MONOTONIC, as core_clock */
        timespec_add(&until, next);
        pthread_cond_timedwait(&c->tick, &c->lock, &until);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- life ------------------------------------------------------------------------------ */

void core_set_driver(struct core *c, struct driver *d, const struct core_options *o)
{
    c->driver = d;
    c->opts = *o;
    c->reconcile_interval = o->reconcile ? o->reconcile_interval : 0;
    c->hypervisor_up = true;
    d->events = (struct driver_events){.cls = c, .disk_removed = on_disk_removed,
                                       .domain_state = on_domain_state,
                                       .connection = on_connection};
}

bool core_start_driver(struct core *c, struct driver *d, const struct core_options *o, char *err,
                       size_t errlen)
{
    core_set_driver(c, d, o);
    c->started = true;
    /* before anything is served: every intent a crash left is finished or
     * undone (the tasks queued here run once the workers start), and what
     * disagrees is reported */
    if (o->reconcile && !core_reconcile(c, NULL, NULL)) {
        snprintf(err, errlen, "the first reconciliation with the hypervisor failed (see the log)");
        return false;
    }
    c->reconcile_at = c->reconcile_interval > 0 ? core_clock() + c->reconcile_interval : 0;
    int workers = o->workers > 0 ? o->workers : 4;
    c->workers = calloc((size_t)workers, sizeof *c->workers);
    if (!c->workers) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    while (c->n_workers < workers &&
           pthread_create(&c->workers[c->n_workers], NULL, worker_main, c) == 0)
        c->n_workers++;
    if (c->n_workers < workers || pthread_create(&c->timer, NULL, timer_main, c) != 0) {
        snprintf(err, errlen, "cannot start the core's threads");
        core_stop_driver(c);
        return false;
    }
    c->timer_running = true;
    return true;
}

void core_drain(struct core *c)
{
    struct core_op *ops[64];
    struct task *tasks[64];
    int n = 0;
    pthread_mutex_lock(&c->lock);
    c->draining = true;
    for (struct lane *l = c->lanes; l; l = l->next)
        for (struct task *t = l->head; t && n < 64; t = t->next)
            if (t->op && t->answer_by > 0) {
                tasks[n] = t;
                ops[n++] = take_op(t);
            }
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < n; i++) {
        log_info("core: stopping; %s %s answered as pending", task_name(tasks[i]->kind),
                 tasks[i]->attachment);
        answer(ops[i], true, true, NULL);
    }
}

bool core_draining(struct core *c)
{
    pthread_mutex_lock(&c->lock);
    bool d = c->draining;
    pthread_mutex_unlock(&c->lock);
    return d;
}

void core_stop_driver(struct core *c)
{
    if (!c->driver)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->wake);
    pthread_cond_broadcast(&c->tick);
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < c->n_workers; i++)
        pthread_join(c->workers[i], NULL);
    if (c->timer_running)
        pthread_join(c->timer, NULL);
    free(c->workers);
    c->workers = NULL;
    c->n_workers = 0;
    c->timer_running = false;
    /* Completions already handed to the store finish (their done() frees
     * their task); the rest stay intents for the next start's reconciler. */
    pthread_mutex_lock(&c->lock);
    for (;;) {
        bool committing = false;
        for (struct lane *l = c->lanes; l && !committing; l = l->next)
            committing = l->head && l->head->state == TASK_COMMITTING;
        if (!committing)
            break;
        pthread_cond_wait(&c->wake, &c->lock);
    }
    struct lane *l = c->lanes;
    c->lanes = NULL;
    pthread_mutex_unlock(&c->lock);
    while (l) {
        struct lane *next = l->next;
        struct task *t = l->head;
        while (t) {
            struct task *tn = t->next;
            struct core_op *op = take_op(t);
            struct core_error e;
            core_fail(&e, CORE_UNAVAILABLE, "The service is stopping.");
            answer(op, false, false, &e);
            task_free(t);
            t = tn;
        }
        free(l);
        l = next;
    }
}
