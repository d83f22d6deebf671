/* attachments.c: attach, update (and swap), detach: spec section 3, with the
 * checks in Nova's order. Each change and its checks run in one transaction,
 * so two clients racing for one volume cannot both win (and the store's
 * unique key on attachments.volume_id would refuse the second regardless).
 */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>


/* More than Nova allows on libvirt in practice; enough to bound a server. */
#define MAX_DISKS 128

/* Nova's check_instance_state for attach_volume / detach_volume / swap. */
static bool check_state(const struct server *s, const char *action, const char *const *allowed,
                        struct core_error *err)
{
    bool ok = false;
    for (; *allowed; allowed++)
        ok |= !strcmp(s->vm_state, *allowed);
    if (!ok)
        return core_fail(err, CORE_CONFLICT, "Cannot '%s' instance %s while it is in vm_state %s",
                         action, s->id, s->vm_state);
    if (s->task_state)
        return core_fail(err, CORE_CONFLICT,
                         "Cannot '%s' instance %s while it is in task_state %s", action, s->id,
                         s->task_state);
    if (!s->launched_at)
        return core_fail(err, CORE_CONFLICT,
                         "Cannot '%s' instance %s while it is in launched_at None", action,
                         s->id);
    return true;
}

static const char *const attach_states[] = {
    "active", "paused", "stopped", "resized", "soft-delete", "shelved", "shelved_offloaded",
    NULL,
};
static const char *const swap_states[] = {"active", "paused", "resized", NULL};

/* The next free /dev/vdX name: vdb..vdz, then vdaa..vdzz, as Nova counts. */
static const char *next_device(struct arena *ar, const struct attachment *at, int n)
{
    for (int i = 1; i < 26 + 26 * 26; i++) {
        char name[16];
        if (i < 26)
            snprintf(name, sizeof name, "/dev/vd%c", 'a' + i);
        else
            snprintf(name, sizeof name, "/dev/vd%c%c", 'a' + (i - 26) / 26, 'a' + (i - 26) % 26);
        bool used = false;
        for (int k = 0; k < n && !used; k++)
            used = !strcmp(at[k].device, name);
        if (!used)
            return arena_strdup(ar, name);
    }
    return NULL;
}

/* ---- attach --------------------------------------------------------------- */

struct attach_job {
    struct core_ctx *c;
    const char *server_id;
    const struct attach_spec *spec;
    struct attachment *out;
    struct core_error *err;
};

static int do_attach(struct store_conn *w, void *arg)
{
    struct attach_job *j = arg;
    struct core_ctx *c = j->c;
    struct server s;
    struct volume v;
    struct attachment existing, *at;
    int n;

    if (!core_find_server(c, w, j->server_id, &s, j->err) ||
        !core_check_unlocked(c, &s, j->err) ||
        !check_state(&s, "attach_volume", attach_states, j->err))
        return 1;
    if (j->spec->device && !core_device_valid(j->spec->device)) {
        core_fail(j->err, CORE_BAD_REQUEST, "The supplied device path (%s) is invalid.",
                  j->spec->device);
        return 1;
    }
    if (!core_find_volume(c, w, j->spec->volume_id, &v, j->err) ||
        !core_same_account(&v, &s, j->err))
        return 1;
    enum store_rc rc = store_attachment_by_volume(w, c->arena, v.id, &existing);
    if (rc == STORE_OK) {
        core_fail(j->err, CORE_ALREADY_ATTACHED,
                  "Invalid volume: volume %s is already attached to instances: %s", v.id,
                  existing.server_id);
        return 1;
    }
    if (rc != STORE_NOTFOUND) {
        core_store_failed(j->err, rc);
        return 1;
    }
    if (strcmp(v.status, "available") != 0) {
        core_fail(j->err, CORE_BAD_REQUEST,
                  "Invalid volume: volume '%s' status must be 'available'. Currently in '%s'",
                  v.id, v.status);
        return 1;
    }
    if ((rc = store_attachment_list(w, c->arena, s.id, 0, -1, &at, &n)) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    const char *device = j->spec->device;
    for (int k = 0; device && k < n; k++) {
        if (!strcmp(at[k].device, device)) {
            core_fail(j->err, CORE_CONFLICT, "The supplied device path (%s) is in use.", device);
            return 1;
        }
    }
    if (!device)
        device = next_device(c->arena, at, n);
    if (n >= MAX_DISKS || !device) {
        core_fail(j->err, CORE_FORBIDDEN,
                  "The maximum allowed number of disk devices (%d) to attach to a single "
                  "instance has been exceeded.", MAX_DISKS);
        return 1;
    }

    *j->out = (struct attachment){
        .id = core_new_id(c), .bdm_uuid = core_new_id(c), .server_id = s.id, .volume_id = v.id, .device = device,
        .tag = j->spec->tag, .delete_on_termination = j->spec->delete_on_termination,
        .boot_index = -1, .created_at = core_now(c),
    };
    if ((rc = store_attachment_add(w, j->out)) != STORE_OK ||
        (rc = store_volume_set_status(w, v.id, "in-use")) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

void core_attach(struct core_op *op, const char *server_id, const struct attach_spec *spec,
                 struct attachment *out)
{
    struct attach_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct attach_job){op->ctx, server_id, spec, out, &op->err};
    core_submit(op, do_attach, j);
}

/* ---- read ----------------------------------------------------------------- */

bool core_attachment_list(struct core_ctx *c, const char *server_id, int64_t offset, int limit,
                          struct attachment **out, int *n, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    struct server s;
    if (!r || !core_read_begin(c, err))
        return false;
    bool ok = core_find_server(c, r, server_id, &s, err);
    if (ok) {
        enum store_rc rc = store_attachment_list(r, c->arena, s.id, offset, limit, out, n);
        ok = rc == STORE_OK || core_store_failed(err, rc);
    }
    core_read_end(c);
    return ok;
}

static bool find_attachment(struct core_ctx *c, struct store_conn *conn, const struct server *s,
                            const char *volume_id, struct attachment *out,
                            struct core_error *err)
{
    enum store_rc rc = store_attachment_get(conn, c->arena, s->id, volume_id, out);
    if (rc == STORE_NOTFOUND)
        return core_fail(err, CORE_NOT_FOUND, "Instance %s is not attached to volume %s", s->id,
                         volume_id);
    return rc == STORE_OK || core_store_failed(err, rc);
}

bool core_attachment_get(struct core_ctx *c, const char *server_id, const char *volume_id,
                         struct attachment *out, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    struct server s;
    if (!r || !core_read_begin(c, err))
        return false;
    bool ok = core_find_server(c, r, server_id, &s, err) &&
              find_attachment(c, r, &s, volume_id, out, err);
    core_read_end(c);
    return ok;
}

/* ---- update and swap ------------------------------------------------------ */

struct update_job {
    struct core_ctx *c;
    const char *server_id, *volume_id;
    const struct attach_update *u;
    struct core_error *err;
};

/* 2.85: only delete_on_termination changes; the rest must stay as it is. */
static bool update_regular(struct update_job *j, struct store_conn *w, const struct server *s,
                           struct attachment *at)
{
    const struct attach_update *u = j->u;
    enum store_rc rc = store_attachment_get(w, j->c->arena, s->id, j->volume_id, at);
    if (rc == STORE_NOTFOUND)
        return core_fail(j->err, CORE_NOT_FOUND, "No volume Block Device Mapping with id %s.",
                         j->volume_id);
    if (rc != STORE_OK)
        return core_store_failed(j->err, rc);
    if (u->has_id && (!u->id || strcmp(u->id, j->volume_id)))
        return core_fail(j->err, CORE_BAD_REQUEST, "The id property is not mutable");
    if (u->has_server_id && (!u->server_id || strcmp(u->server_id, s->id)))
        return core_fail(j->err, CORE_BAD_REQUEST, "The serverId property is not mutable");
    if (u->has_device && (!u->device || strcmp(u->device, at->device)))
        return core_fail(j->err, CORE_BAD_REQUEST, "The device property is not mutable");
    if (u->has_tag && !(u->tag == at->tag || (u->tag && at->tag && !strcmp(u->tag, at->tag))))
        return core_fail(j->err, CORE_BAD_REQUEST, "The tag property is not mutable");
    if (u->set_delete_on_termination) {
        at->delete_on_termination = u->delete_on_termination;
        if ((rc = store_attachment_update(w, at)) != STORE_OK)
            return core_store_failed(j->err, rc);
    }
    return true;
}

/* A swap moves the attachment (and its device) to the new volume: the old
 * one becomes available, the new one in-use, in one transaction. */
static bool swap(struct update_job *j, struct store_conn *w, const struct server *s)
{
    struct core_ctx *c = j->c;
    struct volume old_vol, new_vol;
    struct attachment at, other;
    if (!core_find_volume(c, w, j->volume_id, &old_vol, j->err))
        return false;
    enum store_rc rc = store_volume_get(w, c->arena, c->scope, j->u->volume_id, &new_vol);
    if (rc == STORE_NOTFOUND)
        return core_fail(j->err, CORE_BAD_REQUEST, "Volume %s could not be found.",
                         j->u->volume_id);
    if (rc != STORE_OK)
        return core_store_failed(j->err, rc);
    if (!core_same_account(&new_vol, s, j->err) || !core_check_unlocked(c, s, j->err) ||
        !check_state(s, "swap_volume", swap_states, j->err))
        return false;
    rc = store_attachment_get(w, c->arena, s->id, old_vol.id, &at);
    if (rc == STORE_NOTFOUND)
        return core_fail(j->err, CORE_NOT_FOUND, "No volume Block Device Mapping with id %s.",
                         old_vol.id);
    if (rc != STORE_OK)
        return core_store_failed(j->err, rc);
    if (!strcmp(old_vol.id, new_vol.id))
        return true;
    /* Nova's compute API swap_volume checks */
    rc = store_attachment_by_volume(w, c->arena, new_vol.id, &other);
    if (rc == STORE_OK)
        return core_fail(j->err, CORE_BAD_REQUEST,
                         "Invalid volume: New volume must be detached in order to swap.");
    if (rc != STORE_NOTFOUND)
        return core_store_failed(j->err, rc);
    if (strcmp(new_vol.status, "available") != 0)
        return core_fail(j->err, CORE_BAD_REQUEST,
                         "Invalid volume: volume '%s' status must be 'available'. Currently in "
                         "'%s'", new_vol.id, new_vol.status);
    if (new_vol.size < old_vol.size)
        return core_fail(j->err, CORE_BAD_REQUEST,
                         "Invalid volume: New volume must be the same size or larger.");
    if ((rc = store_attachment_swap(w, at.id, new_vol.id)) != STORE_OK ||
        (rc = store_volume_set_status(w, old_vol.id, "available")) != STORE_OK ||
        (rc = store_volume_set_status(w, new_vol.id, "in-use")) != STORE_OK)
        return core_store_failed(j->err, rc);
    return true;
}

static int do_update(struct store_conn *w, void *arg)
{
    struct update_job *j = arg;
    struct server s;
    struct attachment at;
    bool only_swap = j->c->version < 85;
    bool swapping = strcmp(j->u->volume_id, j->volume_id) != 0;
    if (!core_find_server(j->c, w, j->server_id, &s, j->err))
        return 1;
    if ((only_swap || swapping) && !j->c->admin) {
        core_fail(j->err, CORE_FORBIDDEN,
                  "Policy doesn't allow os_compute_api:os-volumes-attachments:swap to be "
                  "performed.");
        return 1;
    }
    if (!only_swap && !update_regular(j, w, &s, &at))
        return 1;
    if ((only_swap || swapping) && !swap(j, w, &s))
        return 1;
    return 0;
}

void core_attachment_update(struct core_op *op, const char *server_id, const char *volume_id,
                            const struct attach_update *u)
{
    struct update_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct update_job){op->ctx, server_id, volume_id, u, &op->err};
    core_submit(op, do_update, j);
}

/* ---- detach --------------------------------------------------------------- */

struct detach_job {
    struct core_ctx *c;
    const char *server_id, *volume_id;
    struct core_error *err;
};

static int do_detach(struct store_conn *w, void *arg)
{
    struct detach_job *j = arg;
    struct core_ctx *c = j->c;
    struct server s;
    struct volume v;
    struct attachment at;
    if (!core_find_server(c, w, j->server_id, &s, j->err) ||
        !core_find_volume(c, w, j->volume_id, &v, j->err) ||
        !find_attachment(c, w, &s, v.id, &at, j->err))
        return 1;
    if (at.boot_index == 0) {
        core_fail(j->err, CORE_BAD_REQUEST, "Cannot detach a root device volume");
        return 1;
    }
    if (!core_check_unlocked(c, &s, j->err) ||
        !check_state(&s, "detach_volume", attach_states, j->err))
        return 1;
    if (strcmp(v.status, "in-use") != 0) {
        core_fail(j->err, CORE_BAD_REQUEST,
                  "Invalid volume: Invalid input received: Invalid volume: Unable to detach "
                  "volume. Volume status must be 'in-use' and attach_status must be "
                  "'attached' to detach.");
        return 1;
    }
    enum store_rc rc;
    if ((rc = store_attachment_del(w, at.id)) != STORE_OK ||
        (rc = store_volume_set_status(w, v.id, "available")) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

void core_detach(struct core_op *op, const char *server_id, const char *volume_id)
{
    struct detach_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct detach_job){op->ctx, server_id, volume_id, &op->err};
    core_submit(op, do_detach, j);
}
