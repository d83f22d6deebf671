/* server_actions.c: what POST /servers/{id}/action does (docs/api.md,
 * decision D9): the power actions, lock and unlock, and the console's log.
 *
 * The actions follow Nova's check_instance_state / check_instance_lock
 * rules (the table below); a refused action is 409 with Nova's "Cannot
 * '<action>' instance <id> while it is in vm_state <s>".
 */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct id_job {
    struct core_ctx *c;
    const char *id;
    int action;
    struct core_error *err;
    bool power_task;            /* the domain is to change: queue a task */
    const char *domain;
};

/* ---- actions -------------------------------------------------------------- */

/* Under a driver, a power action is a task: its intent is Nova's
 * task_state, the domain_power() calls follow, and its completion sets the
 * state the domain is then in (as a domain's events would). A reboot is
 * two calls, as on Nova's libvirt driver: the domain off (SOFT: asked, and
 * destroyed after shutdown_timeout; HARD: destroyed), then started. */
#define ANY_POWERED {"active", "stopped", "paused", "suspended", "error"}
static const struct action_rule {
    const char *name;           /* as in Nova's conflict message */
    const char *from[5];        /* the vm_states it takes; none: any */
    const char *to;             /* the vm_state it leaves; NULL: unchanged */
    int power;
    bool checks_lock;
    const char *task;           /* its task_state while the domain changes */
    enum driver_power how;      /* what the domain is asked */
    enum driver_state after;    /* the domain's state once done */
    bool then_start;            /* and then started (a reboot) */
} rules[] = {
    [ACTION_STOP] = {"stop", {"active"}, "stopped", POWER_SHUTDOWN, true, "powering-off",
                     DP_SHUTDOWN, DOMAIN_SHUTOFF, false},
    [ACTION_START] = {"start", {"stopped"}, "active", POWER_RUNNING, true, "powering-on",
                      DP_START, DOMAIN_RUNNING, false},
    [ACTION_LOCK] = {"lock", {NULL}, NULL, 0, false, NULL, 0, 0, false},
    [ACTION_UNLOCK] = {"unlock", {NULL}, NULL, 0, false, NULL, 0, 0, false},
    [ACTION_PAUSE] = {"pause", {"active"}, "paused", POWER_PAUSED, true, "pausing", DP_PAUSE,
                      DOMAIN_PAUSED, false},
    [ACTION_UNPAUSE] = {"unpause", {"paused"}, "active", POWER_RUNNING, true, "unpausing",
                        DP_UNPAUSE, DOMAIN_RUNNING, false},
    [ACTION_SUSPEND] = {"suspend", {"active"}, "suspended", POWER_SUSPENDED, true, "suspending",
                        DP_SAVE, DOMAIN_SAVED, false},
    [ACTION_RESUME] = {"resume", {"suspended"}, "active", POWER_RUNNING, true, "resuming",
                       DP_START, DOMAIN_RUNNING, false},
    [ACTION_REBOOT_SOFT] = {"reboot", {"active"}, "active", POWER_RUNNING, true, "rebooting",
                            DP_SHUTDOWN, DOMAIN_RUNNING, true},
    [ACTION_REBOOT_HARD] = {"reboot", ANY_POWERED, "active", POWER_RUNNING, true,
                            "rebooting_hard", DP_DESTROY, DOMAIN_RUNNING, true},
};
#define N_RULES ((int)(sizeof rules / sizeof rules[0]))

/* Does the rule take a server in vm_state? */
static bool allowed(const struct action_rule *r, const char *vm_state)
{
    bool any = true;
    for (int i = 0; i < 5 && r->from[i]; i++) {
        any = false;
        if (!strcmp(r->from[i], vm_state))
            return true;
    }
    return any;
}

/* The power action whose task_state this is, or -1. */
static int action_of(const char *task_state)
{
    for (int i = 0; task_state && i < N_RULES; i++)
        if (rules[i].task && !strcmp(rules[i].task, task_state))
            return i;
    return -1;
}

static bool apply_action(struct id_job *j, const struct action_rule *r, struct server *s);

static int do_action(struct store_conn *w, void *arg)
{
    struct id_job *j = arg;
    const struct action_rule *r = &rules[j->action];
    struct server s;
    if (!core_find_server(j->c, w, j->id, &s, j->err))
        return 1;
    if (r->checks_lock && !core_check_unlocked(j->c, &s, j->err))
        return 1;
    if (!allowed(r, s.vm_state)) {
        core_fail(j->err, CORE_CONFLICT, "Cannot '%s' instance %s while it is in vm_state %s",
                  r->name, s.id, s.vm_state);
        return 1;
    }
    if (s.task_state) {
        core_fail(j->err, CORE_CONFLICT, "Cannot '%s' instance %s while it is in task_state %s",
                  r->name, s.id, s.task_state);
        return 1;
    }
    /* under a driver the domain is to change: the task's completion sets
     * the state, and task_state says what is under way meanwhile */
    j->power_task = j->c->core->driver && s.domain && r->task;
    if (j->power_task) {
        s.task_state = r->task;
        j->domain = arena_strdup(j->c->arena, s.domain);
    } else if (!apply_action(j, r, &s)) {
        return 1;
    }
    char now[32];
    store_now(now);
    s.updated_at = now;
    enum store_rc rc = store_server_update(w, &s);
    if (rc != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

/* An action that changes only the record: lock, unlock, or a power action
 * without a hypervisor. False with j->err set when refused. */
static bool apply_action(struct id_job *j, const struct action_rule *r, struct server *s)
{
    switch (j->action) {
    case ACTION_LOCK:
        if (!s->locked) {
            s->locked = true;
            s->locked_by = strcmp(j->c->home, s->account_id) ? "admin" : "owner";
        }
        return true;
    case ACTION_UNLOCK:
        /* Nova's unlock_override: only an admin lifts an admin's lock. */
        if (s->locked && s->locked_by && !strcmp(s->locked_by, "admin") && !j->c->admin)
            return core_fail(j->err, CORE_FORBIDDEN,
                             "Policy doesn't allow os_compute_api:os-lock-server:unlock:"
                             "unlock_override to be performed.");
        s->locked = false;
        s->locked_by = NULL;
        return true;
    default:
        s->vm_state = r->to;
        s->power_state = r->power;
        return true;
    }
}

static struct task *power_task(const char *server, const char *domain, int action)
{
    char lane[TASK_KEY_MAX];
    snprintf(lane, sizeof lane, "server:%s", server);
    struct task *t = task_new(TASK_SERVER_POWER, lane);
    if (t) {
        snprintf(t->server, sizeof t->server, "%s", server);
        snprintf(t->domain, sizeof t->domain, "%s", domain);
        t->action = action;
    }
    return t;
}

static void action_queued(struct core_op *op, bool ok)
{
    struct id_job *j = op->job.arg;
    if (ok && j->power_task) {
        struct task *t = power_task(j->id, j->domain, j->action);
        if (!t || !task_enqueue(op->ctx->core, t)) {
            task_free(t);       /* the reconciler queues it again */
            log_warn("core: server %s: its %s waits for the reconciler", j->id,
                     rules[j->action].name);
        }
    }
    core_finish(op, ok);
}

void core_server_action(struct core_op *op, const char *id, enum server_action action)
{
    struct id_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct id_job){op->ctx, id, (int)action, &op->err, false, NULL};
    if (op->ctx->core->driver)
        core_submit_then(op, do_action, j, action_queued);
    else
        core_submit(op, do_action, j);
}

/* The completion of a power action: the state the domain is in now, or,
 * refused, the state unchanged and the refusal as the server's fault. */
static void powered(const struct task *t, struct server *s, const char *now)
{
    (void)now;
    if (t->ok)
        core_domain_status(rules[t->action].after, &s->vm_state, &s->power_state);
    else
        s->fault = t->err.message;
}

static int power_done(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    return core_end_server_task(w, t, rules[t->action].task, powered);
}

void core_server_power_step(struct core *c, struct task *t)
{
    const struct action_rule *r = &rules[t->action];
    struct driver *d = c->driver;
    struct driver_error de = {""};
    double now = core_clock();
    /* a reboot's second call starts the domain its first turned off */
    enum driver_power how = t->phase ? DP_START : r->how;
    /* a guest that has not powered off within shutdown_timeout: the plug */
    bool late = how == DP_SHUTDOWN && t->deadline > 0 && now >= t->deadline;
    if (late)
        how = DP_DESTROY;
    enum driver_rc rc = d->ops->domain_power(d, t->domain, how, &de);
    if (late && rc == DRIVER_OK)
        log_warn("core: server %s did not power off within %d s; its domain was destroyed",
                 t->server, c->opts.shutdown_timeout);
    if (rc == DRIVER_OK && r->then_start && !t->phase) {
        t->phase = 1;
        rc = d->ops->domain_power(d, t->domain, DP_START, &de);
    }
    switch (rc) {
    case DRIVER_OK:
        t->ok = true;
        break;
    case DRIVER_PENDING:        /* an ACPI shutdown, up to the guest */
        if (t->deadline == 0)
            t->deadline = now + c->opts.shutdown_timeout;
        task_wait(c, t, now + 1 < t->deadline ? now + 1 : t->deadline);
        return;
    case DRIVER_UNAVAILABLE:
        task_wait(c, t, now + 5);
        return;
    default:
        t->ok = false;
        core_fail(&t->err, CORE_HYPERVISOR, "Cannot '%s' instance %s: %s", r->name, t->server,
                  de.message);
        log_warn("core: %s", t->err.message);
    }
    task_complete(c, t, power_done);
}

/* The task that finishes what a server was left doing: its create, its
 * delete or a power action; NULL for anything else. */
struct task *core_server_task(const struct server *s)
{
    int action = action_of(s->task_state);
    if (action >= 0)
        return power_task(s->id, s->domain, action);
    bool spawning = s->task_state && !strcmp(s->task_state, "spawning");
    if (!spawning && (!s->task_state || strcmp(s->task_state, "deleting") != 0))
        return NULL;
    char lane[TASK_KEY_MAX];
    snprintf(lane, sizeof lane, "server:%s", s->id);
    struct task *t = task_new(spawning ? TASK_SERVER_CREATE : TASK_SERVER_DELETE, lane);
    if (t) {
        snprintf(t->server, sizeof t->server, "%s", s->id);
        snprintf(t->domain, sizeof t->domain, "%s", s->domain ? s->domain : "");
    }
    return t;
}

/* ---- the console ------------------------------------------------------------ */

/* The last `lines` lines of text[0..len), as Nova's _tail_log: split at
 * '\n' (a trailing newline makes an empty last line), and joined again. */
static const char *tail_lines(struct arena *ar, const char *text, size_t len, int lines)
{
    size_t from = 0;
    if (lines > 0) {
        int seen = 0;
        for (size_t i = len; i > 0; i--) {
            if (text[i - 1] == '\n' && ++seen == lines) {
                from = i;
                break;
            }
        }
    }
    char *out = arena_alloc(ar, len - from + 1);
    memcpy(out, text + from, len - from);
    out[len - from] = '\0';
    return out;
}

void core_server_console_step(struct core *c, struct task *t)
{
    struct arena ar;
    arena_init(&ar);
    char *text = NULL;
    size_t len = 0;
    struct driver_error de = {""};
    enum driver_rc rc = c->driver->ops->console_log(c->driver, t->domain, &ar, &text, &len, &de);
    struct core_op *op = task_take_op(c, t);
    if (op && rc == DRIVER_OK) {
        /* NULs would end the text early: the API strips control bytes anyway */
        for (size_t i = 0; i < len; i++)
            if (!text[i])
                text[i] = ' ';
        *t->console = tail_lines(op->ctx->arena, text, len, t->lines);
    } else if (op && rc == DRIVER_NOT_FOUND) {
        core_fail(&op->err, CORE_NOT_FOUND, "Guest does not have a console available.");
    } else if (op && rc == DRIVER_UNAVAILABLE) {
        core_fail(&op->err, CORE_UNAVAILABLE, "The hypervisor cannot be reached now: %s",
                  de.message);
        op->err.retry_after = 5;
    } else if (op) {
        core_fail(&op->err, CORE_HYPERVISOR, "The console of server %s cannot be read: %s",
                  t->server, de.message);
    }
    arena_release(&ar);
    if (op)
        core_finish(op, rc == DRIVER_OK);
    task_done(c, t);
}

void core_server_console(struct core_op *op, const char *id, int lines, const char **out)
{
    struct core_ctx *c = op->ctx;
    struct server s;
    struct store_conn *r = core_reader(c, &op->err);
    if (!r || !core_find_server(c, r, id, &s, &op->err)) {
        core_finish(op, false);
        return;
    }
    *out = "";
    if (!c->core->driver || !s.domain) {
        core_finish(op, true);          /* no hypervisor: nothing was printed */
        return;
    }
    char lane[TASK_KEY_MAX];
    snprintf(lane, sizeof lane, "console:%s", s.id);
    struct task *t = task_new(TASK_SERVER_CONSOLE, lane);
    if (!t) {
        core_fail(&op->err, CORE_UNAVAILABLE, "The service is unavailable at this time.");
        core_finish(op, false);
        return;
    }
    snprintf(t->server, sizeof t->server, "%s", s.id);
    snprintf(t->domain, sizeof t->domain, "%s", s.domain);
    t->console = out;
    t->lines = lines;
    t->op = op;
    if (op->handoff)
        op->handoff(op);
    if (!task_enqueue(c->core, t)) {
        t->op = NULL;
        task_free(t);
        core_fail(&op->err, CORE_UNAVAILABLE, "The service is unavailable at this time.");
        core_finish(op, false);
    }
}
