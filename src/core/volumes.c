/* volumes.c: block-storage volumes (docs/api.md, decision D8). A volume is
 * "available" when created and "in-use" while attached; an attached volume
 * cannot be deleted.
 *
 * With a hypervisor a volume has storage: a file the driver makes in its
 * volume directory (the intent "creating", the file, then "available" or
 * "error"), or a file or block device adopted as it is (never deleted).
 * Deleting is "deleting", the file removed, then the record. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define GIB ((int64_t)1 << 30)

static struct task *volume_task(enum task_kind kind, const struct volume *v)
{
    char lane[TASK_KEY_MAX];
    snprintf(lane, sizeof lane, "volume:%s", v->id);
    struct task *t = task_new(kind, lane);
    if (t) {
        snprintf(t->volume, sizeof t->volume, "%s", v->id);
        snprintf(t->path, sizeof t->path, "%s", v->path ? v->path : "");
        t->bytes = v->size * GIB;
        t->adopted = v->adopted;
    }
    return t;
}

struct task *core_volume_task(const struct volume *v)
{
    return volume_task(!strcmp(v->status, "creating") ? TASK_VOLUME_CREATE : TASK_VOLUME_DELETE,
                       v);
}

/* The volume's task runs; its requester waits for it. */
static void start_task(struct core_op *op, struct task *t, struct volume *made)
{
    if (!t) {
        core_fail(&op->err, CORE_UNAVAILABLE, "The service is unavailable at this time.");
        core_finish(op, false);
        return;
    }
    t->op = op;
    t->made_volume = made;
    if (!task_enqueue(op->ctx->core, t)) {
        free(t);
        core_fail(&op->err, CORE_UNAVAILABLE, "The service is stopping.");
        core_finish(op, false);
    }
}

static int volume_made(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    const char *status = t->file_made ? "available" : "error";
    enum store_rc rc = store_volume_set_storage(w, t->volume, t->file_made ? t->path : NULL,
                                                status);
    if (rc == STORE_OK && t->made_volume && t->op) {
        t->made_volume->status = status;
        t->made_volume->path = t->file_made ? arena_strdup(t->op->ctx->arena, t->path) : NULL;
    }
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

static int volume_gone(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    enum store_rc rc = t->ok ? store_volume_del(w, t->volume)
                             : store_volume_set_storage(w, t->volume, t->path, "error");
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

void core_volume_step(struct core *c, struct task *t)
{
    struct driver *d = c->driver;
    struct driver_error de = {""};
    if (t->kind == TASK_VOLUME_CREATE) {
        enum driver_rc rc = d->ops->volume_create(d, t->volume, t->bytes, t->path,
                                                  sizeof t->path, &de);
        t->file_made = rc == DRIVER_OK;
        if (!t->file_made)
            log_error("core: volume %s: its file cannot be made: %s; the volume is in error",
                      t->volume, de.message);
        /* the request succeeds either way: the volume exists, maybe in error
         * (volume_made, which may run more than once, only reads file_made) */
        t->ok = true;
        task_complete(c, t, volume_made);
        return;
    }
    enum driver_rc rc = t->adopted || !*t->path ? DRIVER_OK
                                                : d->ops->volume_delete(d, t->path, &de);
    t->ok = rc == DRIVER_OK || rc == DRIVER_NOT_FOUND;
    if (!t->ok) {
        core_fail(&t->err, CORE_HYPERVISOR, "The storage of volume %s cannot be removed: %s",
                  t->volume, de.message);
        log_error("core: %s", t->err.message);
    }
    task_complete(c, t, volume_gone);
}

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

static void volume_intent_done(struct core_op *op, bool ok)
{
    struct volume_job *j = op->job.arg;
    if (ok)
        start_task(op, volume_task(TASK_VOLUME_CREATE, j->vol), j->vol);
    else
        core_finish(op, false);
}

void core_volume_create(struct core_op *op, const struct volume_spec *spec, struct volume *out)
{
    struct core_ctx *c = op->ctx;
    const char *now = core_now(c), *id = spec->id ? spec->id : core_new_id(c);
    /* with a hypervisor a new volume needs its file first; an adopted one
     * has its storage already */
    bool make_file = c->core->driver && !spec->path;
    *out = (struct volume){
        .id = id, .account_id = c->account, .name = spec->name,
        .description = spec->description, .size = spec->size,
        .status = make_file ? "creating" : "available", .volume_type = spec->volume_type,
        .availability_zone = spec->availability_zone ? spec->availability_zone : "nova",
        .snapshot_id = spec->snapshot_id, .metadata = spec->metadata ? spec->metadata : "{}",
        .created_at = now, .updated_at = now, .path = spec->path, .adopted = spec->path != NULL,
    };
    struct volume_job *j = arena_alloc(c->arena, sizeof *j);
    *j = (struct volume_job){c, out, NULL, &op->err};
    if (make_file)
        core_submit_then(op, do_create, j, volume_intent_done);
    else
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

struct update_job {
    struct core_ctx *c;
    const char *id;
    const struct volume_update *u;
    struct volume *out;
    struct core_error *err;
};

static int do_update(struct store_conn *w, void *arg)
{
    struct update_job *j = arg;
    if (!core_find_volume(j->c, w, j->id, j->out, j->err))
        return 1;
    if (j->u->name_set)
        j->out->name = j->u->name;
    if (j->u->description_set)
        j->out->description = j->u->description;
    if (j->u->metadata)
        j->out->metadata = j->u->metadata;
    j->out->updated_at = core_now(j->c);
    enum store_rc rc = store_volume_update(w, j->out);
    return rc == STORE_OK ? 0 : (core_store_failed(j->err, rc), 1);
}

void core_volume_update(struct core_op *op, const char *id, const struct volume_update *u,
                        struct volume *out)
{
    struct update_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct update_job){op->ctx, id, u, out, &op->err};
    core_submit(op, do_update, j);
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
    if (rc != STORE_NOTFOUND) {
        core_store_failed(j->err, rc);
        return 1;
    }
    if (j->vol) {           /* with a hypervisor: the intent, then the file */
        if ((rc = store_volume_set_status(w, v.id, "deleting")) != STORE_OK) {
            core_store_failed(j->err, rc);
            return 1;
        }
        *j->vol = v;
        return 0;
    }
    if ((rc = store_volume_del(w, v.id)) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

static void delete_intent_done(struct core_op *op, bool ok)
{
    struct volume_job *j = op->job.arg;
    if (ok)
        start_task(op, volume_task(TASK_VOLUME_DELETE, j->vol), NULL);
    else
        core_finish(op, false);
}

void core_volume_delete(struct core_op *op, const char *id)
{
    struct volume_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct volume_job){op->ctx, NULL, id, &op->err};
    if (!op->ctx->core->driver) {
        core_submit(op, do_delete, j);
        return;
    }
    j->vol = arena_alloc(op->ctx->arena, sizeof *j->vol);
    core_submit_then(op, do_delete, j, delete_intent_done);
}
