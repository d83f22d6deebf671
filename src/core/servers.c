/* servers.c: the server lifecycle (docs/api.md, decision D9).
 *
 * A new server is active and launched at once. The actions follow Nova's
 * check_instance_state / check_instance_lock rules; a refused action is 409
 * with Nova's "Cannot '<action>' instance <id> while it is in vm_state <s>".
 */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"


const char *core_server_status(const char *vm_state)
{
    static const struct { const char *vm, *status; } map[] = {
        {"active", "ACTIVE"}, {"building", "BUILD"}, {"stopped", "SHUTOFF"},
        {"paused", "PAUSED"}, {"suspended", "SUSPENDED"}, {"rescued", "RESCUE"},
        {"resized", "VERIFY_RESIZE"}, {"error", "ERROR"}, {"soft-delete", "SOFT_DELETED"},
        {"shelved", "SHELVED"}, {"shelved_offloaded", "SHELVED_OFFLOADED"},
        {"deleted", "DELETED"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].vm, vm_state))
            return map[i].status;
    return "UNKNOWN";
}

/* ---- create --------------------------------------------------------------- */

struct create_job {
    struct core_ctx *c;
    struct server *srv;
    const struct server_spec *spec;
    const struct flavor *flavor;
    struct core_error *err;
};

static int do_create(struct store_conn *w, void *arg)
{
    struct create_job *j = arg;
    struct volume root;
    if (!core_check_server_quota(j->c, w, j->flavor, j->err))
        return 1;
    if (j->spec->root_volume_id) {
        if (!core_find_volume(j->c, w, j->spec->root_volume_id, &root, j->err) ||
            !core_same_account(&root, j->srv, j->err))
            return 1;
        if (strcmp(root.status, "available") != 0) {
            core_fail(j->err, CORE_BAD_REQUEST,
                      "Invalid volume: volume '%s' status must be 'available'. Currently in '%s'",
                      root.id, root.status);
            return 1;
        }
    }
    enum store_rc rc = store_server_add(w, j->srv);
    if (rc == STORE_EXISTS && j->srv->domain) {
        struct server other;
        if (store_server_by_domain(w, j->c->arena, j->srv->domain, &other) == STORE_OK) {
            core_fail(j->err, CORE_CONFLICT, "Domain %s is server %s already.", j->srv->domain,
                      other.id);
            return 1;
        }
    }
    if (rc == STORE_EXISTS) {
        core_fail(j->err, CORE_CONFLICT, "Server %s already exists.", j->srv->id);
        return 1;
    }
    if (rc != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    if (j->spec->root_volume_id) {
        struct attachment at = {
            .id = core_new_id(j->c), .bdm_uuid = core_new_id(j->c), .server_id = j->srv->id, .volume_id = root.id,
            .device = "/dev/vda", .boot_index = 0, .created_at = j->srv->created_at,
            .delete_on_termination = j->spec->root_delete_on_termination,
        };
        if ((rc = store_attachment_add(w, &at)) != STORE_OK ||
            (rc = store_volume_set_status(w, root.id, "in-use")) != STORE_OK) {
            core_store_failed(j->err, rc);
            return 1;
        }
    }
    return 0;
}

/* A domain's state as Nova's vm_state and power_state. */
static bool domain_status(enum driver_state state, const char **vm_state, int *power)
{
    switch (state) {
    case DOMAIN_RUNNING: *vm_state = "active"; *power = POWER_RUNNING; return true;
    case DOMAIN_PAUSED: *vm_state = "paused"; *power = POWER_PAUSED; return true;
    case DOMAIN_SHUTOFF: *vm_state = "stopped"; *power = POWER_SHUTDOWN; return true;
    /* a managed save (Nova's suspend on libvirt): off, to be resumed */
    case DOMAIN_SAVED: *vm_state = "suspended"; *power = POWER_SHUTDOWN; return true;
    case DOMAIN_CRASHED: *vm_state = "error"; *power = POWER_CRASHED; return true;
    default: return false;
    }
}

void core_server_create(struct core_op *op, const struct server_spec *spec, struct server *out)
{
    struct core_ctx *c = op->ctx;
    if (c->core->driver && !spec->domain) {
        core_fail(&op->err, CORE_NOT_IMPLEMENTED,
                  "Creating a server is not supported with the %s driver yet: bind an existing "
                  "domain with 'attachd server add --domain'.", c->core->driver->ops->name);
        core_finish(op, false);
        return;
    }
    const char *now = core_now(c);
    const char *id = spec->id ? spec->id
                              : spec->domain ? arena_strdup(c->arena, spec->domain->uuid)
                                             : core_new_id(c);
    const char *vm_state = "active";
    int power = POWER_RUNNING;
    if (spec->domain)
        domain_status(spec->domain->state, &vm_state, &power);
    *out = (struct server){
        .id = id, .account_id = c->account, .user_id = c->user_id, .name = spec->name,
        .vm_state = vm_state, .task_state = NULL, .power_state = power,
        .domain = spec->domain ? arena_strdup(c->arena, spec->domain->uuid) : NULL,
        .image_ref = spec->image_ref ? spec->image_ref : "",
        .flavor_ref = spec->flavor_ref ? spec->flavor_ref : c->core->flavors[0].id,
        .availability_zone = spec->availability_zone ? spec->availability_zone : "nova",
        .key_name = spec->key_name, .metadata = spec->metadata ? spec->metadata : "{}",
        .created_at = now, .updated_at = now, .launched_at = now,
    };
    struct create_job *j = arena_alloc(c->arena, sizeof *j);
    *j = (struct create_job){c, out, spec, core_flavor(c->core, out->flavor_ref), &op->err};
    if (!j->flavor) {
        core_fail(&op->err, CORE_BAD_REQUEST, "Flavor %s could not be found.", out->flavor_ref);
        core_finish(op, false);
        return;
    }
    core_submit(op, do_create, j);
}

/* ---- read ----------------------------------------------------------------- */

bool core_server_get(struct core_ctx *c, const char *id, struct server *out,
                     struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    return r && core_find_server(c, r, id, out, err);
}

bool core_server_list(struct core_ctx *c, const char *marker, const char *name_contains,
                      int limit, struct server **out, int *n, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    const char *account = c->scope ? c->scope : c->account;
    enum store_rc rc = store_server_list(r, c->arena, account, marker, name_contains, limit,
                                         out, n);
    if (rc == STORE_NOTFOUND)
        return core_fail(err, CORE_BAD_REQUEST, "marker [%s] not found", marker);
    return rc == STORE_OK || core_store_failed(err, rc);
}

bool core_server_attachments(struct core_ctx *c, const char *server_id, struct attachment **out,
                             int *n, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    enum store_rc rc = store_attachment_list(r, c->arena, server_id, 0, -1, out, n);
    return rc == STORE_OK || core_store_failed(err, rc);
}

/* ---- delete --------------------------------------------------------------- */

struct id_job {
    struct core_ctx *c;
    const char *id;
    int action;
    struct core_error *err;
};

/* Deleting a server detaches its volumes and deletes those marked
 * delete_on_termination (docs/api.md, decision D9). Without a hypervisor
 * that is one transaction. With one, the server is "deleting" and each volume
 * "detaching" (the intent, answered 204 as Nova does), each disk's removal
 * is asked and confirmed in the server's lane, and then a last task deletes
 * the delete_on_termination volumes and forgets the server. */
struct delete_job {
    struct core_ctx *c;
    const char *id;
    struct core_error *err;
    /* with a hypervisor: the tasks, planned in the transaction */
    struct task **tasks;
    int n_tasks;
};

static int do_delete(struct store_conn *w, void *arg)
{
    struct delete_job *j = arg;
    struct core_ctx *c = j->c;
    struct server s;
    if (!core_find_server(c, w, j->id, &s, j->err) || !core_check_unlocked(c, &s, j->err))
        return 1;
    struct attachment *at;
    int n;
    enum store_rc rc = store_attachment_list(w, c->arena, s.id, 0, -1, &at, &n);
    if (rc == STORE_OK && c->core->driver && s.domain) {
        /* the plan: a detach for each attached disk, then the server's end */
        j->tasks = arena_alloc(c->arena, (size_t)(n + 1) * sizeof *j->tasks);
        j->n_tasks = 0;
        size_t len = 1;
        for (int i = 0; i < n; i++)
            len += at[i].delete_on_termination ? strlen(at[i].volume_id) + 1 : 0;
        char lane[TASK_KEY_MAX];
        snprintf(lane, sizeof lane, "server:%s", s.id);
        struct task *last = task_new(TASK_SERVER_DELETE, lane);
        char *volumes = last ? calloc(1, len) : NULL;
        if (!volumes) {
            task_free(last);
            core_fail(j->err, CORE_UNAVAILABLE, "The service is unavailable at this time.");
            return 1;
        }
        last->volumes = volumes;
        snprintf(last->server, sizeof last->server, "%s", s.id);
        snprintf(last->domain, sizeof last->domain, "%s", s.domain);
        s.task_state = "deleting";
        rc = store_server_update(w, &s);
        for (int i = 0; rc == STORE_OK && i < n; i++) {
            if (at[i].delete_on_termination) {
                strcpy(volumes, at[i].volume_id);
                volumes += strlen(volumes) + 1;
            }
            if (strcmp(at[i].status, "attached") != 0)
                continue;       /* being attached or detached: its own task is queued */
            rc = store_attachment_set_status(w, at[i].id, "attached", "detaching");
            if (rc == STORE_OK)
                rc = store_volume_set_status(w, at[i].volume_id, "detaching");
            struct task *t = core_attachment_task(&s, &at[i], NULL);
            if (t)
                t->kind = TASK_DETACH;
            if (rc == STORE_OK && t)
                j->tasks[j->n_tasks++] = t;
            else
                task_free(t);
        }
        j->tasks[j->n_tasks++] = last;
    } else {
        for (int i = 0; rc == STORE_OK && i < n; i++) {
            rc = store_attachment_del(w, at[i].id);
            if (rc == STORE_OK)
                rc = at[i].delete_on_termination ? store_volume_del(w, at[i].volume_id)
                                                 : store_volume_set_status(w, at[i].volume_id,
                                                                           "available");
        }
        if (rc == STORE_OK)
            rc = store_server_del(w, s.id);
    }
    if (rc != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

static void free_plan(struct delete_job *j)
{
    for (int i = 0; i < j->n_tasks; i++)
        task_free(j->tasks[i]);
    j->n_tasks = 0;
}

static void delete_intent_done(struct core_op *op, bool ok)
{
    struct delete_job *j = op->job.arg;
    for (int i = 0; ok && i < j->n_tasks; i++) {
        if (!task_enqueue(op->ctx->core, j->tasks[i])) {
            /* stopping: what was not queued stays an intent for the next start */
            while (i < j->n_tasks)
                task_free(j->tasks[i++]);
        }
    }
    if (!ok)
        free_plan(j);
    j->n_tasks = 0;
    core_finish(op, ok);
}

/* A job that runs again plans again: the plan of an earlier run goes. */
static int do_delete_planned(struct store_conn *w, void *arg)
{
    free_plan(arg);
    int rc = do_delete(w, arg);
    if (rc != 0)
        free_plan(arg);
    return rc;
}

void core_server_delete(struct core_op *op, const char *id)
{
    struct delete_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct delete_job){op->ctx, id, &op->err, NULL, 0};
    if (op->ctx->core->driver)
        core_submit_then(op, do_delete_planned, j, delete_intent_done);
    else
        core_submit(op, do_delete, j);
}

/* The last task of a server's delete: every disk detached, it forgets the
 * server and deletes its delete_on_termination volumes (files first: a
 * crash between leaves a record whose file is gone, never a file nobody
 * knows). A disk that would not detach stops the delete: the server is
 * back, with the fault. */
static int server_gone(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    struct arena ar;
    struct server s;
    arena_init(&ar);
    enum store_rc rc = store_server_get(w, &ar, NULL, t->server, &s);
    if (rc == STORE_OK && !t->ok) {
        s.task_state = NULL;
        s.fault = t->err.message;
        rc = store_server_update(w, &s);
    } else if (rc == STORE_OK) {
        for (const char *v = t->volumes; rc == STORE_OK && v && *v; v += strlen(v) + 1) {
            rc = store_volume_del(w, v);
            if (rc == STORE_NOTFOUND)
                rc = STORE_OK;
        }
        if (rc == STORE_OK)
            rc = store_server_del(w, s.id);
    }
    arena_release(&ar);
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

void core_server_step(struct core *c, struct task *t)
{
    struct store_conn *r = store_reader(c->store);
    struct arena ar;
    struct attachment *at;
    int n = 0;
    arena_init(&ar);
    enum store_rc rc = r ? store_attachment_list(r, &ar, t->server, 0, -1, &at, &n) : STORE_ERROR;
    if (rc != STORE_OK) {
        arena_release(&ar);
        task_wait(c, t, core_clock() + 5);
        return;
    }
    t->ok = true;
    for (int i = 0; i < n; i++) {
        if (at[i].boot_index == 0)
            continue;
        t->ok = false;
        core_fail(&t->err, CORE_HYPERVISOR,
                  "The server was not deleted: volume %s did not detach from it", at[i].volume_id);
        log_warn("core: server %s: %s", t->server, t->err.message);
        break;
    }
    for (const char *v = t->volumes; t->ok && v && *v; v += strlen(v) + 1) {
        struct volume vol;
        struct driver_error de;
        if (store_volume_get(r, &ar, NULL, v, &vol) != STORE_OK || !vol.path || vol.adopted)
            continue;
        if (c->driver->ops->volume_delete(c->driver, vol.path, &de) != DRIVER_OK)
            log_error("core: server %s: the file of volume %s cannot be removed: %s", t->server,
                      v, de.message);
    }
    arena_release(&ar);
    task_complete(c, t, server_gone);
}

struct task *core_server_task(const struct server *s)
{
    char lane[TASK_KEY_MAX];
    snprintf(lane, sizeof lane, "server:%s", s->id);
    struct task *t = task_new(TASK_SERVER_DELETE, lane);
    if (t) {
        snprintf(t->server, sizeof t->server, "%s", s->id);
        snprintf(t->domain, sizeof t->domain, "%s", s->domain ? s->domain : "");
    }
    return t;
}

/* ---- following the hypervisor ------------------------------------------------ */

struct follow_job {
    struct store_job job;
    char domain[DRIVER_UUID_LEN + 1];
    enum driver_state state;
};

static int do_follow(struct store_conn *w, void *arg)
{
    struct follow_job *f = arg;
    struct arena ar;
    struct server s;
    const char *vm_state;
    int power;
    arena_init(&ar);
    enum store_rc rc = STORE_OK;
    if (domain_status(f->state, &vm_state, &power) &&
        store_server_by_domain(w, &ar, f->domain, &s) == STORE_OK && !s.task_state &&
        (strcmp(s.vm_state, vm_state) != 0 || s.power_state != power)) {
        char now[32];
        store_now(now);
        log_info("core: server %s follows its domain: %s -> %s", s.id, s.vm_state, vm_state);
        s.vm_state = vm_state;
        s.power_state = power;
        s.updated_at = now;
        rc = store_server_update(w, &s);
    }
    arena_release(&ar);
    return rc == STORE_OK ? 0 : -1;
}

static void follow_done(struct store_job *job)
{
    free(job);
}

void core_follow_domain(struct core *c, const char *domain, enum driver_state state)
{
    struct follow_job *f = calloc(1, sizeof *f);
    if (!f)
        return;
    snprintf(f->domain, sizeof f->domain, "%s", domain);
    f->state = state;
    f->job = (struct store_job){.fn = do_follow, .arg = f, .done = follow_done};
    store_submit(c->store, &f->job);
}

/* ---- actions -------------------------------------------------------------- */

static const struct action_rule {
    const char *name;           /* as in Nova's conflict message */
    const char *from;           /* the vm_state it needs; NULL: any */
    const char *to;             /* the vm_state it leaves; NULL: unchanged */
    int power;
    bool checks_lock;
} rules[] = {
    [ACTION_STOP] = {"stop", "active", "stopped", POWER_SHUTDOWN, true},
    [ACTION_START] = {"start", "stopped", "active", POWER_RUNNING, true},
    [ACTION_LOCK] = {"lock", NULL, NULL, 0, false},
    [ACTION_UNLOCK] = {"unlock", NULL, NULL, 0, false},
    [ACTION_PAUSE] = {"pause", "active", "paused", POWER_PAUSED, true},
    [ACTION_UNPAUSE] = {"unpause", "paused", "active", POWER_RUNNING, true},
    [ACTION_SUSPEND] = {"suspend", "active", "suspended", POWER_SUSPENDED, true},
    [ACTION_RESUME] = {"resume", "suspended", "active", POWER_RUNNING, true},
};

static int do_action(struct store_conn *w, void *arg)
{
    struct id_job *j = arg;
    const struct action_rule *r = &rules[j->action];
    struct server s;
    if (!core_find_server(j->c, w, j->id, &s, j->err))
        return 1;
    if (r->checks_lock && !core_check_unlocked(j->c, &s, j->err))
        return 1;
    if (s.domain && r->to) {
        core_fail(j->err, CORE_NOT_IMPLEMENTED,
                  "Cannot '%s' instance %s: its virtual machine's power is not driven by "
                  "attachd yet (its status follows the hypervisor).", r->name, s.id);
        return 1;
    }
    if (r->from && strcmp(s.vm_state, r->from) != 0) {
        core_fail(j->err, CORE_CONFLICT, "Cannot '%s' instance %s while it is in vm_state %s",
                  r->name, s.id, s.vm_state);
        return 1;
    }
    if (s.task_state) {
        core_fail(j->err, CORE_CONFLICT, "Cannot '%s' instance %s while it is in task_state %s",
                  r->name, s.id, s.task_state);
        return 1;
    }
    switch (j->action) {
    case ACTION_LOCK:
        if (!s.locked) {
            s.locked = true;
            s.locked_by = strcmp(j->c->home, s.account_id) ? "admin" : "owner";
        }
        break;
    case ACTION_UNLOCK:
        /* Nova's unlock_override: only an admin lifts an admin's lock. */
        if (s.locked && s.locked_by && !strcmp(s.locked_by, "admin") && !j->c->admin) {
            core_fail(j->err, CORE_FORBIDDEN,
                      "Policy doesn't allow os_compute_api:os-lock-server:unlock:"
                      "unlock_override to be performed.");
            return 1;
        }
        s.locked = false;
        s.locked_by = NULL;
        break;
    default:
        s.vm_state = r->to;
        s.power_state = r->power;
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

void core_server_action(struct core_op *op, const char *id, enum server_action action)
{
    struct id_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct id_job){op->ctx, id, (int)action, &op->err};
    core_submit(op, do_action, j);
}
