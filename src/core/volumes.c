/* volumes.c: block-storage volumes (spec section 4, D8). A volume is
 * "available" when created and "in-use" while attached; an attached volume
 * cannot be deleted. */
#include "core/internal.h"

#include <string.h>


struct volume_job {
    struct core_ctx *c;
    struct volume *vol;
    const char *id;
    struct core_error *err;
};

static int do_create(struct store_conn *w, void *arg)
{
    struct volume_job *j = arg;
    if (!core_check_volume_quota(j->c, w, j->vol->size, j->err))
        return 1;
    enum store_rc rc = store_volume_add(w, j->vol);
    if (rc == STORE_EXISTS) {
        core_fail(j->err, CORE_CONFLICT, "Volume %s already exists.", j->vol->id);
        return 1;
    }
    if (rc != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

void core_volume_create(struct core_op *op, const struct volume_spec *spec, struct volume *out)
{
    struct core_ctx *c = op->ctx;
    const char *now = core_now(c), *id = spec->id ? spec->id : core_new_id(c);
    *out = (struct volume){
        .id = id, .account_id = c->account, .name = spec->name,
        .description = spec->description, .size = spec->size, .status = "available",
        .volume_type = spec->volume_type,
        .availability_zone = spec->availability_zone ? spec->availability_zone : "nova",
        .snapshot_id = spec->snapshot_id, .metadata = spec->metadata ? spec->metadata : "{}",
        .created_at = now, .updated_at = now,
    };
    struct volume_job *j = arena_alloc(c->arena, sizeof *j);
    *j = (struct volume_job){c, out, NULL, &op->err};
    core_submit(op, do_create, j);
}

bool core_volume_get(struct core_ctx *c, const char *id, struct volume *out,
                     struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    return r && core_find_volume(c, r, id, out, err);
}

bool core_volume_list(struct core_ctx *c, const char *name, int64_t offset, int limit,
                      struct volume **out, int *n, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    const char *account = c->scope ? c->scope : c->account;
    enum store_rc rc = store_volume_list(r, c->arena, account, name, offset, limit, out, n);
    return rc == STORE_OK || core_store_failed(err, rc);
}

bool core_volume_attachment(struct core_ctx *c, const char *volume_id, struct attachment *out,
                            bool *attached, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    enum store_rc rc = store_attachment_by_volume(r, c->arena, volume_id, out);
    *attached = rc == STORE_OK;
    return rc == STORE_OK || rc == STORE_NOTFOUND || core_store_failed(err, rc);
}

static int do_delete(struct store_conn *w, void *arg)
{
    struct volume_job *j = arg;
    struct volume v;
    struct attachment at;
    if (!core_find_volume(j->c, w, j->id, &v, j->err))
        return 1;
    enum store_rc rc = store_attachment_by_volume(w, j->c->arena, v.id, &at);
    /* Cinder deletes available and error volumes (its message, below) */
    if (rc == STORE_OK || (strcmp(v.status, "available") != 0 && strcmp(v.status, "error") != 0)) {
        core_fail(j->err, CORE_VOLUME_BUSY,
                  "Invalid volume: Volume status must be available or error or "
                  "error_restoring or error_extending or error_managing and must not be "
                  "migrating, attached, belong to a group, have snapshots, awaiting a "
                  "transfer, or be disassociated from snapshots after volume transfer.");
        return 1;
    }
    if (rc != STORE_NOTFOUND || (rc = store_volume_del(w, v.id)) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

void core_volume_delete(struct core_op *op, const char *id)
{
    struct volume_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct volume_job){op->ctx, NULL, id, &op->err};
    core_submit(op, do_delete, j);
}
