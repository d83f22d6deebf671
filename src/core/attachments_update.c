/* attachments_update.c: an attachment's update (docs/api.md, PUT
 * os-volume_attachments): from microversion 2.85 its delete_on_termination,
 * the rest being immutable; and a swap to another volume (before 2.85 the
 * only update, an admin's, and only without a hypervisor), with Nova's
 * checks in Nova's order, in one transaction as attachments.c's changes.
 */
#include "core/internal.h"

#include <string.h>

static const char *const swap_states[] = {"active", "paused", "resized", NULL};

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
        !core_check_state(s, "swap_volume", swap_states, j->err))
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
    if ((only_swap || swapping) && j->c->core->driver) {
        core_fail(j->err, CORE_NOT_IMPLEMENTED,
                  "Swapping a volume is not supported with the %s driver.",
                  j->c->core->driver->ops->name);
        return 1;
    }
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
