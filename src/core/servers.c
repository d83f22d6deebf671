/* servers.c: the server lifecycle (spec section 5, D9).
 *
 * A new server is active and launched at once. The actions follow Nova's
 * check_instance_state / check_instance_lock rules; a refused action is 409
 * with Nova's "Cannot '<action>' instance <id> while it is in vm_state <s>".
 */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>


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

void core_server_create(struct core_op *op, const struct server_spec *spec, struct server *out)
{
    struct core_ctx *c = op->ctx;
    const char *now = core_now(c), *id = spec->id ? spec->id : core_new_id(c);
    *out = (struct server){
        .id = id, .account_id = c->account, .user_id = c->user_id, .name = spec->name,
        .vm_state = "active", .task_state = NULL, .power_state = POWER_RUNNING,
        .image_ref = spec->image_ref ? spec->image_ref : "",
        .flavor_ref = spec->flavor_ref ? spec->flavor_ref : "1",
        .availability_zone = spec->availability_zone ? spec->availability_zone : "nova",
        .key_name = spec->key_name, .metadata = spec->metadata ? spec->metadata : "{}",
        .created_at = now, .updated_at = now, .launched_at = now,
    };
    struct create_job *j = arena_alloc(c->arena, sizeof *j);
    *j = (struct create_job){c, out, spec, core_flavor(out->flavor_ref), &op->err};
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
 * delete_on_termination, in the same transaction (D9). */
static int do_delete(struct store_conn *w, void *arg)
{
    struct id_job *j = arg;
    struct server s;
    if (!core_find_server(j->c, w, j->id, &s, j->err) || !core_check_unlocked(j->c, &s, j->err))
        return 1;
    struct attachment *at;
    int n;
    enum store_rc rc = store_attachment_list(w, j->c->arena, s.id, 0, -1, &at, &n);
    for (int i = 0; rc == STORE_OK && i < n; i++) {
        rc = store_attachment_del(w, at[i].id);
        if (rc == STORE_OK)
            rc = at[i].delete_on_termination ? store_volume_del(w, at[i].volume_id)
                                             : store_volume_set_status(w, at[i].volume_id,
                                                                       "available");
    }
    if (rc == STORE_OK)
        rc = store_server_del(w, s.id);
    if (rc != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

void core_server_delete(struct core_op *op, const char *id)
{
    struct id_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct id_job){op->ctx, id, 0, &op->err};
    core_submit(op, do_delete, j);
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
