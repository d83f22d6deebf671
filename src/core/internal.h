/* internal.h: helpers shared by the core's files; not part of its interface. */
#ifndef ATTACHD_CORE_INTERNAL_H
#define ATTACHD_CORE_INTERNAL_H

#include <pthread.h>

#include "core/core.h"
#include "driver/driver.h"
#include "util/id.h"

/* ---- hypervisor work (tasks.c) ------------------------------------------------ */

#define TASK_KEY_MAX (8 + ID_MAX + 1)

enum task_kind {
    TASK_ATTACH,            /* attach a disk; commit attached, or undo */
    TASK_SETTLE_ATTACH,     /* an attach whose outcome is unknown: look, then commit or undo */
    TASK_DETACH,            /* ask for a removal until it is confirmed or given up */
    TASK_VOLUME_CREATE,     /* make a volume's file */
    TASK_VOLUME_DELETE,     /* remove a volume's file and its record */
    TASK_SERVER_DELETE,     /* a server whose disks are all detached: forget it */
    TASK_SERVER_CREATE,     /* define and start a server's domain; commit active, or error */
    TASK_SERVER_POWER,      /* a power action on a server's domain (server_actions.c) */
    TASK_SERVER_CONSOLE,    /* read a domain's console log for a waiting requester */
};

enum task_state { TASK_READY, TASK_RUNNING, TASK_WAITING, TASK_COMMITTING };

struct task {
    enum task_kind kind;
    enum task_state state;
    double queued_at;                   /* core_clock(), for the metrics */
    char lane[TASK_KEY_MAX];            /* "server:<id>" or "volume:<id>" */
    char server[ID_MAX + 1];
    char domain[DRIVER_UUID_LEN + 1];
    char attachment[ID_MAX + 1];
    char alias[DRIVER_ALIAS_MAX + 1];
    char volume[ID_MAX + 1];
    char serial[256];
    char path[4096];
    char target[DRIVER_TARGET_MAX];     /* "sdb", without /dev/ */
    enum driver_bus bus;
    int64_t bytes;
    bool adopted;
    bool file_made;                     /* a volume create: its file was made */
    int action;                         /* a power action: enum server_action */
    int phase;                          /* a reboot: 1 once the domain was off */
    /* a console read: where the text goes (the requester's), how many lines */
    const char **console;
    int lines;
    /* a detach: how often asked, whether the removal event came, when to
     * look again and when to give up */
    int attempts;
    bool removed;
    double retry_at, deadline;
    /* the requester while it waits, answered "pending" at answer_by (0:
     * only by the outcome); `made` is its record to fill in, its arena */
    struct core_op *op;
    double answer_by;
    struct attachment *made_attachment;
    struct volume *made_volume;
    /* a server delete: the volumes to delete with it, NUL-separated, ending
     * in an empty string (malloc'd, freed with the task) */
    char *volumes;
    /* the outcome and its completion */
    struct core *core;
    bool ok;
    struct core_error err;
    char fault[512];
    struct store_job job;
    struct task *next;
};

struct lane;

struct core {
    struct store *store;
    struct driver *driver;              /* NULL: state only (the none driver) */
    struct core_options opts;
    pthread_mutex_t lock;               /* guards everything below */
    pthread_cond_t wake;                /* workers: a task is ready; stop waits */
    pthread_cond_t tick;                /* the timer, on CLOCK_MONOTONIC: stop, deadlines */
    struct lane *lanes;
    int tasks;
    bool stopping, draining, hypervisor_up;
    bool reconcile_due, reconciling;
    double reconcile_at;
    int reconcile_interval;
    pthread_t *workers, timer;
    int n_workers;
    bool timer_running;
    bool started;                       /* the workers run: reconciling may queue tasks */
    /* the flavors (limits.c); `owned` when they are copies */
    const struct flavor *flavors;
    int n_flavors;
    struct flavor *owned;
};

/* Free a task and what it owns. */
void task_free(struct task *t);

/* Monotonic seconds. */
double core_clock(void);
struct task *task_new(enum task_kind kind, const char *lane);
/* Queue a task in its lane; false when the core is stopping. */
bool task_enqueue(struct core *c, struct task *t);
/* Is a task about this attachment queued or running? */
bool task_pending_for(struct core *c, const char *attachment_id);
/* From a task's step (a worker): commit fn as its completion; its done()
 * finishes the task (answers the requester with t->ok / t->err). */
void task_complete(struct core *c, struct task *t, store_write_fn fn);
/* task_complete for a completion that records only what the hypervisor
 * confirmed (a disk there, a disk gone): committed lazily (store.h), as a
 * crash that loses it leaves its intent, which the reconciler settles the
 * same way from the hypervisor's state. */
void task_complete_confirmed(struct core *c, struct task *t, store_write_fn fn);
/* From a task's step: wait until retry_at (or a removal event). */
void task_wait(struct core *c, struct task *t, double retry_at);
/* A task with nothing to commit (a read) is done: the next of its lane runs. */
void task_done(struct core *c, struct task *t);
/* The task's waiting requester, taken off it (NULL: answered already, as
 * pending, by a stopping core): the caller answers it. */
struct core_op *task_take_op(struct core *c, struct task *t);
/* Stopping: requesters are no longer made to wait (core_drain). */
bool core_draining(struct core *c);
/* Answer the requester now that its change is on its way ("pending"). */
void task_answer_pending(struct core *c, struct task *t);
/* Run a task's next step (a worker, no lock held), and its name. */
void task_step(struct core *c, struct task *t);
const char *task_name(enum task_kind kind);
/* A domain's state changed: its server's status follows (servers.c). */
void core_follow_domain(struct core *c, const char *domain, enum driver_state state);

/* The steps of each kind of task (attachments.c, volumes.c, servers.c). */
void core_attachment_step(struct core *c, struct task *t);
void core_volume_step(struct core *c, struct task *t);
void core_server_step(struct core *c, struct task *t);
/* ... of which server_actions.c's: a power action, a console read. */
void core_server_power_step(struct core *c, struct task *t);
void core_server_console_step(struct core *c, struct task *t);
/* A domain's state as Nova's vm_state and power_state (false: none of
 * them, as a domain being created). */
bool core_domain_status(enum driver_state state, const char **vm_state, int *power);
/* A server task's completion: if the server still has task_state `task`
 * (a delete meanwhile takes it over), it has none any more, and leave()
 * writes what the task changed, at `now`. 0, or -1 if the store failed. */
int core_end_server_task(struct store_conn *w, struct task *t, const char *task,
                         void (*leave)(const struct task *t, struct server *s,
                                       const char *now));
/* The task that settles an attachment left attaching or detaching. */
struct task *core_attachment_task(const struct server *s, const struct attachment *at,
                                  const struct volume *v);
/* The task that finishes a volume left creating or deleting, and a server
 * left spawning (its create) or deleting. */
struct task *core_volume_task(const struct volume *v);
struct task *core_server_task(const struct server *s);

/* Map a failed store call to a core error (NOTFOUND is the caller's to map). */
bool core_store_failed(struct core_error *err, enum store_rc rc);
/* Run fn(writer, arg) as op's one transaction and finish op with the
 * outcome: fn returns 0 to commit, or nonzero after setting op->err. */
void core_submit(struct core_op *op, store_write_fn fn, void *arg);
/* The same, but call then(op, committed) on the writer thread instead of
 * finishing op: the intent of a task is committed, its work comes next. */
void core_submit_then(struct core_op *op, store_write_fn fn, void *arg,
                      void (*then)(struct core_op *op, bool ok));
/* Finish op now, with op->err already set: a check that failed before
 * anything was queued. */
void core_finish(struct core_op *op, bool ok);
/* The current time in the store's form, and a new UUID4, in c->arena. */
const char *core_now(struct core_ctx *c);
const char *core_new_id(struct core_ctx *c);
/* The calling thread's reader, or false with CORE_UNAVAILABLE. */
struct store_conn *core_reader(struct core_ctx *c, struct core_error *err);

/* Server lookups shared by the attachment rules; 404 with Nova's text. */
bool core_find_server(struct core_ctx *c, struct store_conn *conn, const char *id,
                      struct server *out, struct core_error *err);
bool core_find_volume(struct core_ctx *c, struct store_conn *conn, const char *id,
                      struct volume *out, struct core_error *err);
/* A volume is attached only to a server of its own account, whoever asks
 * (Nova has no such rule; an admin could otherwise hand one account's
 * volume to another's server, which could then delete it). */
bool core_same_account(const struct volume *v, const struct server *s, struct core_error *err);
/* Would one more server of flavor f, or a volume of size GiB, pass the
 * quotas of c->account? Read in the creating transaction. */
bool core_check_server_quota(struct core_ctx *c, struct store_conn *w, const struct flavor *f,
                             struct core_error *err);
bool core_check_volume_quota(struct core_ctx *c, struct store_conn *w, int64_t size,
                             struct core_error *err);
/* Nova's check_instance_lock: a locked server refuses non-admins. */
bool core_check_unlocked(struct core_ctx *c, const struct server *s, struct core_error *err);
/* Nova's check_instance_state for `action` (attach_volume, detach_volume,
 * swap_volume): the server is in one of the vm_states `allowed` (NULL
 * ended), has no task_state, and was launched; else 409 with Nova's text
 * (attachments.c; its update and swap in attachments_update.c). */
bool core_check_state(const struct server *s, const char *action, const char *const *allowed,
                      struct core_error *err);

#endif
