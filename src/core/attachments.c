/* attachments.c: attach and detach (docs/api.md, the
 * os-volume_attachments sections), with the checks in Nova's order, and
 * the reads; an update (and a swap) is attachments_update.c's. Each
 * change and its checks run in one transaction, so two clients racing for
 * one volume cannot both win (and the store's unique key on
 * attachments.volume_id would refuse the second regardless).
 */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* More than Nova allows on libvirt in practice; enough to bound a server. */
#define MAX_DISKS 128

/* The 503 of a device operation while the hypervisor does not answer. */
static void hypervisor_unreachable(struct core_error *err)
{
    core_fail(err, CORE_UNAVAILABLE, "The hypervisor cannot be reached at this time; retry later.");
    err->retry_after = 5;
}

/* The task a device operation hands the hypervisor's part to; NULL when it
 * cannot have one (the hypervisor unreachable, or no memory), the op then
 * answered with a 503. */
static struct task *device_task(struct core_op *op, enum task_kind kind)
{
    struct task *t = NULL;
    if (!core_hypervisor_up(op->ctx->core))
        hypervisor_unreachable(&op->err);
    else if (!(t = task_new(kind, "")))
        core_fail(&op->err, CORE_UNAVAILABLE, "The service is unavailable at this time.");
    if (!t)
        core_finish(op, false);
    return t;
}

/* Nova's check_instance_state for attach_volume / detach_volume / swap. */
bool core_check_state(const struct server *s, const char *action, const char *const *allowed,
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

/* Is a requested device one that next_device counts: the prefix and one
 * or two letters, not the root disk's "a" (nor a partition)? */
static bool countable_device(const char *d, const char *prefix)
{
    if (strncmp(d, "/dev/", 5) != 0 || strncmp(d + 5, prefix, 2) != 0)
        return false;
    const char *l = d + 7;
    size_t len = strlen(l);
    for (size_t i = 0; i < len; i++)
        if (l[i] < 'a' || l[i] > 'z')
            return false;
    return (len == 1 && l[0] != 'a') || len == 2;
}

/* The next free device name with a prefix ("vd" or "sd"): b..z, then
 * aa..zz, as Nova counts. A requested name that is one of those is taken
 * if free (on a hypervisor the prefix is the bus's, so a request is a
 * hint: the root disk's name, a partition or another bus's name would be
 * refused by the hypervisor, and the next free name is used instead). */
static const char *next_device(struct arena *ar, const char *prefix, const char *hint,
                               const struct attachment *at, int n)
{
    char name[24];
    for (int i = hint ? 0 : 1; i < 26 + 26 * 26; i++) {
        if (i == 0) {
            if (!countable_device(hint, prefix))
                continue;
            snprintf(name, sizeof name, "%s", hint);
        } else if (i < 26) {
            snprintf(name, sizeof name, "/dev/%s%c", prefix, 'a' + i);
        } else {
            snprintf(name, sizeof name, "/dev/%s%c%c", prefix, 'a' + (i - 26) / 26,
                     'a' + (i - 26) % 26);
        }
        bool used = false;
        for (int k = 0; k < n && !used; k++)
            used = !strcmp(at[k].device, name);
        if (!used)
            return arena_strdup(ar, name);
    }
    return NULL;
}

/* On a hypervisor the server must be a domain and the volume must have
 * storage; a volume made or a server added without one cannot be. */
static bool check_reachable(struct core_ctx *c, const struct server *s, const struct volume *v,
                            struct core_error *err)
{
    if (!c->core->driver)
        return true;
    if (!s->domain)
        return core_fail(err, CORE_CONFLICT,
                         "Instance %s is not a virtual machine of the hypervisor (it was added "
                         "without a domain); its volumes cannot be changed", s->id);
    if (v && !v->path)
        return core_fail(err, CORE_CONFLICT,
                         "Volume %s has no storage (it was made without a hypervisor)", v->id);
    return true;
}

/* A task about an attachment, in its server's lane. */
static void fill_task(struct task *t, enum task_kind kind, const struct server *s,
                      const struct attachment *at, const struct volume *v)
{
    t->kind = kind;
    snprintf(t->lane, sizeof t->lane, "server:%s", s->id);
    snprintf(t->server, sizeof t->server, "%s", s->id);
    snprintf(t->domain, sizeof t->domain, "%s", s->domain ? s->domain : "");
    snprintf(t->attachment, sizeof t->attachment, "%s", at->id);
    driver_alias(at->id, t->alias);
    snprintf(t->volume, sizeof t->volume, "%s", at->volume_id);
    driver_serial(at->volume_id, t->serial);
    snprintf(t->target, sizeof t->target, "%s", at->device + 5);      /* after "/dev/" */
    t->bus = !strncmp(t->target, "vd", 2) ? BUS_VIRTIO : BUS_SCSI;
    if (v)
        snprintf(t->path, sizeof t->path, "%s", v->path ? v->path : "");
}

/* ---- attach --------------------------------------------------------------- */

struct attach_job {
    struct core_ctx *c;
    const char *server_id;
    const struct attach_spec *spec;
    struct attachment *out;
    struct core_error *err;
    struct task *task;          /* with a hypervisor: its work, filled in here */
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
        !core_check_state(&s, "attach_volume", attach_states, j->err))
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
    if (!check_reachable(c, &s, &v, j->err))
        return 1;
    if ((rc = store_attachment_list(w, c->arena, s.id, 0, -1, &at, &n)) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    /* Without a hypervisor the device asked for is the device (Nova's
     * check that it is free included); with one, the bus decides the
     * prefix and a request is a hint, as on Nova's libvirt driver. */
    const char *device = j->spec->device;
    bool hv = j->task != NULL;
    for (int k = 0; device && !hv && k < n; k++) {
        if (!strcmp(at[k].device, device)) {
            core_fail(j->err, CORE_CONFLICT, "The supplied device path (%s) is in use.", device);
            return 1;
        }
    }
    const char *prefix = hv && c->core->opts.bus == BUS_SCSI ? "sd" : "vd";
    if (!device || hv)
        device = next_device(c->arena, prefix, device, at, n);
    if (n >= MAX_DISKS || !device) {
        core_fail(j->err, CORE_FORBIDDEN,
                  "The maximum allowed number of disk devices (%d) to attach to a single "
                  "instance has been exceeded.", MAX_DISKS);
        return 1;
    }

    *j->out = (struct attachment){
        .id = core_new_id(c), .bdm_uuid = core_new_id(c), .server_id = s.id, .volume_id = v.id,
        .device = device, .tag = j->spec->tag,
        .delete_on_termination = j->spec->delete_on_termination, .boot_index = -1,
        .created_at = core_now(c), .status = hv ? "attaching" : "attached",
    };
    if ((rc = store_attachment_add(w, j->out)) != STORE_OK ||
        (rc = store_volume_set_status(w, v.id, hv ? "attaching" : "in-use")) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    if (hv)
        fill_task(j->task, TASK_ATTACH, &s, j->out, &v);
    return 0;
}

/* The intent is committed (or refused): the hypervisor's part comes next. */
static void attach_intent_done(struct core_op *op, bool ok)
{
    struct attach_job *j = op->job.arg;
    struct task *t = j->task;
    if (ok) {
        t->op = op;
        t->made_attachment = j->out;
        if (task_enqueue(op->ctx->core, t))
            return;
        core_fail(&op->err, CORE_UNAVAILABLE, "The service is stopping.");
        ok = false;
        /* the intent stays: the reconciler of the next start settles it */
    }
    free(t);
    core_finish(op, ok);
}

void core_attach(struct core_op *op, const char *server_id, const struct attach_spec *spec,
                 struct attachment *out)
{
    struct core *core = op->ctx->core;
    struct attach_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct attach_job){op->ctx, server_id, spec, out, &op->err, NULL};
    if (!core->driver)
        core_submit(op, do_attach, j);
    else if ((j->task = device_task(op, TASK_ATTACH)))
        core_submit_then(op, do_attach, j, attach_intent_done);
}

/* The completions of an attach: attached (with the target the hypervisor
 * used), or undone. Both are compare-and-sets on "attaching". */
static int attach_commit(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    struct arena ar;
    struct attachment at;
    arena_init(&ar);
    enum store_rc rc = store_attachment_by_id(w, &ar, t->attachment, &at);
    if (rc == STORE_OK && strcmp(at.status, "attaching") != 0)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK) {
        char device[8 + DRIVER_TARGET_MAX];
        snprintf(device, sizeof device, "/dev/%s", t->target);
        at.device = device;
        if ((rc = store_attachment_update(w, &at)) == STORE_OK &&
            (rc = store_attachment_set_status(w, at.id, "attaching", "attached")) == STORE_OK)
            rc = store_volume_set_status(w, at.volume_id, "in-use");
        if (rc == STORE_OK && t->made_attachment && t->op) {
            t->made_attachment->device = arena_strdup(t->op->ctx->arena, device);
            t->made_attachment->status = "attached";
        }
    }
    arena_release(&ar);
    if (rc == STORE_NOTFOUND) {
        core_fail(&t->err, CORE_CONFLICT, "The attachment of volume %s changed meanwhile.",
                  t->volume);
        return 1;
    }
    return rc == STORE_OK ? 0 : -1;
}

static int attach_undo(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    struct arena ar;
    struct attachment at;
    arena_init(&ar);
    enum store_rc rc = store_attachment_by_id(w, &ar, t->attachment, &at);
    if (rc == STORE_OK && !strcmp(at.status, "attaching") &&
        (rc = store_attachment_del(w, at.id)) == STORE_OK)
        rc = store_volume_set_status(w, at.volume_id, "available");
    arena_release(&ar);
    /* committed; the task's outcome (t->ok false, t->err) says it failed */
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

static void fail_task(struct task *t, enum core_code code, const char *what,
                      const struct driver_error *de)
{
    core_fail(&t->err, code, "The hypervisor refused to %s volume %s %s server %s: %s", what,
              t->volume, strcmp(what, "attach") ? "from" : "to", t->server, de->message);
    log_warn("core: %s", t->err.message);
}

/* Is the task's disk in its domain? 1 yes, 0 no, -1 the hypervisor cannot tell now. */
static int disk_present(struct core *c, struct task *t, char target[DRIVER_TARGET_MAX])
{
    struct arena ar;
    struct driver_present *d;
    struct driver_error de;
    int n, found = 0;
    arena_init(&ar);
    enum driver_rc rc = c->driver->ops->disk_list(c->driver, t->domain, &ar, &d, &n, &de);
    if (rc == DRIVER_NOT_FOUND)
        n = 0;
    else if (rc != DRIVER_OK)
        found = -1;
    for (int i = 0; found == 0 && i < n; i++) {
        if (!strcmp(d[i].alias, t->alias) && (d[i].live || d[i].config)) {
            found = 1;
            if (target)
                snprintf(target, DRIVER_TARGET_MAX, "%s", d[i].target);
        }
    }
    arena_release(&ar);
    return found;
}

static void attach_step(struct core *c, struct task *t)
{
    struct driver *d = c->driver;
    struct driver_error de = {""};
    int64_t bytes;
    bool block = false;
    char target[DRIVER_TARGET_MAX];
    enum driver_rc rc = d->ops->volume_probe(d, t->path, &bytes, &block, &de);
    if (rc == DRIVER_OK) {
        struct driver_disk disk = {.domain = t->domain, .alias = t->alias, .serial = t->serial,
                                   .path = t->path, .block = block, .bus = t->bus,
                                   .target = t->target};
        rc = d->ops->disk_attach(d, &disk, target, &de);
    }
    switch (rc) {
    case DRIVER_OK:
    case DRIVER_PENDING:
        snprintf(t->target, sizeof t->target, "%s", target);
        t->ok = true;
        task_complete_confirmed(c, t, attach_commit);
        return;
    case DRIVER_UNAVAILABLE:
        /* the attach may or may not have happened: the requester hears so,
         * and the task looks again once the hypervisor answers */
        hypervisor_unreachable(&t->err);
        pthread_mutex_lock(&c->lock);
        struct core_op *op = t->op;
        t->op = NULL;
        pthread_mutex_unlock(&c->lock);
        if (op) {
            op->err = t->err;
            core_finish(op, false);
        }
        t->kind = TASK_SETTLE_ATTACH;
        task_wait(c, t, core_clock() + 5);
        return;
    default:
        fail_task(t, CORE_HYPERVISOR, "attach", &de);
        task_complete(c, t, attach_undo);
    }
}

/* An attach whose outcome nobody knows (a crash, the hypervisor gone
 * mid-call): the disk is there, or it is not. */
static void settle_attach_step(struct core *c, struct task *t)
{
    char target[DRIVER_TARGET_MAX];
    switch (disk_present(c, t, target)) {
    case 1:
        snprintf(t->target, sizeof t->target, "%s", target);
        t->ok = true;
        log_info("core: volume %s was attached to server %s as %s; recorded", t->volume,
                 t->server, target);
        task_complete_confirmed(c, t, attach_commit);
        return;
    case 0:
        log_info("core: volume %s was not attached to server %s; undone", t->volume, t->server);
        task_complete_confirmed(c, t, attach_undo);
        return;
    default:
        task_wait(c, t, core_clock() + 5);
    }
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

/* The server, the volume and their attachment, in one lookup, with Nova's
 * errors in Nova's order: the server, the volume, the attachment. */
static bool find_parts(struct core_ctx *c, struct store_conn *conn, const char *server_id,
                       const char *volume_id, struct server *s, struct volume *v,
                       struct attachment *at, struct core_error *err)
{
    enum store_rc rc;
    unsigned found = store_attachment_parts(conn, c->arena, c->scope, server_id, volume_id, s,
                                            v, at, &rc);
    if (rc != STORE_OK)
        return core_store_failed(err, rc);
    if (!(found & FOUND_SERVER))
        return core_fail(err, CORE_NOT_FOUND, "Instance %s could not be found.", server_id);
    if (!(found & FOUND_VOLUME))
        return core_fail(err, CORE_NOT_FOUND, "Volume %s could not be found.", volume_id);
    if (!(found & FOUND_ATTACHMENT))
        return core_fail(err, CORE_NOT_FOUND, "Instance %s is not attached to volume %s",
                         s->id, v->id);
    return true;
}

bool core_attachment_get(struct core_ctx *c, const char *server_id, const char *volume_id,
                         struct attachment *out, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r || !core_read_begin(c, err))
        return false;
    bool server_found;
    enum store_rc rc = store_attachment_find(r, c->arena, c->scope, server_id, volume_id,
                                             &server_found, out);
    core_read_end(c);
    if (rc == STORE_NOTFOUND && !server_found)
        return core_fail(err, CORE_NOT_FOUND, "Instance %s could not be found.", server_id);
    if (rc == STORE_NOTFOUND)
        return core_fail(err, CORE_NOT_FOUND, "Instance %s is not attached to volume %s",
                         server_id, volume_id);
    return rc == STORE_OK || core_store_failed(err, rc);
}

/* ---- detach ---------------------------------------------------------------
 * Without a hypervisor the attachment goes at once. With one, the intent
 * (attachment and volume "detaching") is committed first, then the removal
 * is asked for until the hypervisor confirms it (its event, or the domain
 * no longer has the disk): a detach call that returned is no proof. Not
 * confirmed within detach_timeout, the attachment returns to "attached" and
 * the server carries the fault. */

struct detach_job {
    struct core_ctx *c;
    const char *server_id, *volume_id;
    struct core_error *err;
    struct task *task;
};

static int do_detach(struct store_conn *w, void *arg)
{
    struct detach_job *j = arg;
    struct core_ctx *c = j->c;
    struct server s;
    struct volume v;
    struct attachment at;
    if (!find_parts(c, w, j->server_id, j->volume_id, &s, &v, &at, j->err))
        return 1;
    if (at.boot_index == 0) {
        core_fail(j->err, CORE_BAD_REQUEST, "Cannot detach a root device volume");
        return 1;
    }
    if (!core_check_unlocked(c, &s, j->err) ||
        !core_check_state(&s, "detach_volume", attach_states, j->err))
        return 1;
    if (strcmp(v.status, "in-use") != 0) {
        /* Cinder's begin_detaching; a second detach of one being detached
         * is a conflict of its own in the Hostway dialect */
        core_fail(j->err, !strcmp(at.status, "detaching") ? CORE_DETACHING : CORE_BAD_REQUEST,
                  "Invalid volume: Invalid input received: Invalid volume: Unable to detach "
                  "volume. Volume status must be 'in-use' and attach_status must be "
                  "'attached' to detach.");
        return 1;
    }
    enum store_rc rc;
    if (j->task) {
        if (!check_reachable(c, &s, NULL, j->err))
            return 1;
        if ((rc = store_attachment_set_status(w, at.id, "attached", "detaching")) != STORE_OK ||
            (rc = store_volume_set_status(w, v.id, "detaching")) != STORE_OK) {
            core_store_failed(j->err, rc);
            return 1;
        }
        fill_task(j->task, TASK_DETACH, &s, &at, &v);
        return 0;
    }
    if ((rc = store_attachment_del(w, at.id)) != STORE_OK ||
        (rc = store_volume_set_status(w, v.id, "available")) != STORE_OK) {
        core_store_failed(j->err, rc);
        return 1;
    }
    return 0;
}

static void detach_intent_done(struct core_op *op, bool ok)
{
    struct detach_job *j = op->job.arg;
    struct task *t = j->task;
    struct core *c = op->ctx->core;
    if (!ok) {
        free(t);
        core_finish(op, false);
        return;
    }
    /* The requester waits for the confirmation as long as it asked to;
     * without waiting (Nova's 202), it is answered now. */
    bool waits = op->wait > 0 && !core_draining(c);
    if (waits) {
        t->op = op;
        t->answer_by = core_clock() + op->wait;
    }
    if (!task_enqueue(c, t)) {
        free(t);        /* stopping: the intent stays for the next start */
        waits = false;
    }
    if (!waits) {
        op->pending = true;
        core_finish(op, true);
    }
}

void core_detach(struct core_op *op, const char *server_id, const char *volume_id)
{
    struct core *core = op->ctx->core;
    struct detach_job *j = arena_alloc(op->ctx->arena, sizeof *j);
    *j = (struct detach_job){op->ctx, server_id, volume_id, &op->err, NULL};
    if (!core->driver)
        core_submit(op, do_detach, j);
    else if ((j->task = device_task(op, TASK_DETACH)))
        core_submit_then(op, do_detach, j, detach_intent_done);
}

/* The completions of a detach: gone (the attachment with it), or back to
 * attached with the fault on the server. Compare-and-sets on "detaching". */
static int detach_commit(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    t->ok = true;
    struct arena ar;
    struct attachment at;
    arena_init(&ar);
    enum store_rc rc = store_attachment_by_id(w, &ar, t->attachment, &at);
    if (rc == STORE_OK && !strcmp(at.status, "detaching") &&
        (rc = store_attachment_del(w, at.id)) == STORE_OK)
        rc = store_volume_set_status(w, at.volume_id, "available");
    arena_release(&ar);
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

static int detach_revert(struct store_conn *w, void *arg)
{
    struct task *t = arg;
    struct arena ar;
    struct server s;
    arena_init(&ar);
    enum store_rc rc = store_attachment_set_status(w, t->attachment, "detaching", "attached");
    if (rc == STORE_OK)
        rc = store_volume_set_status(w, t->volume, "in-use");
    if (rc == STORE_OK && (rc = store_server_get(w, &ar, NULL, t->server, &s)) == STORE_OK) {
        char now[32];
        store_now(now);
        s.fault = t->err.message;
        s.updated_at = now;
        rc = store_server_update(w, &s);
    }
    arena_release(&ar);
    /* committed; the task's outcome (t->ok false, t->err) says it failed */
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

/* A detach given up or refused leaves the volume attached, as the store
 * will say; but asking for the removal took the disk out of the domain's
 * persistent definition at once (only the live unplug did not complete).
 * Put it back there, so that the domain keeps the disk when it restarts
 * and agrees with the store: an attach of the same disk (same alias and
 * path) adds only what is missing. */
static void keep_disk(struct core *c, struct task *t)
{
    struct driver *d = c->driver;
    struct driver_error de = {""};
    char path[sizeof t->path], target[DRIVER_TARGET_MAX];
    snprintf(path, sizeof path, "%s", t->path);
    if (!path[0]) {             /* a server delete's detach: the volume has it */
        struct store_conn *r = store_reader(c->store);
        struct arena ar;
        struct volume v;
        arena_init(&ar);
        if (r && store_volume_get(r, &ar, NULL, t->volume, &v) == STORE_OK && v.path)
            snprintf(path, sizeof path, "%s", v.path);
        arena_release(&ar);
    }
    int64_t bytes;
    bool block = false;
    enum driver_rc rc = DRIVER_NOT_FOUND;
    if (path[0] && (rc = d->ops->volume_probe(d, path, &bytes, &block, &de)) == DRIVER_OK) {
        struct driver_disk disk = {.domain = t->domain, .alias = t->alias, .serial = t->serial,
                                   .path = path, .block = block, .bus = t->bus,
                                   .target = t->target};
        rc = d->ops->disk_attach(d, &disk, target, &de);
    }
    if (rc != DRIVER_OK)
        log_warn("core: volume %s stays attached to server %s, but its disk could not be put "
                 "back into the domain's definition: %s", t->volume, t->server,
                 de.message[0] ? de.message : "the volume has no storage");
}

static void give_up(struct core *c, struct task *t)
{
    core_fail(&t->err, CORE_HYPERVISOR,
              "The hypervisor did not confirm the detach of volume %s from server %s within "
              "%d s (asked %d times); the volume stays attached", t->volume, t->server,
              c->opts.detach_timeout, t->attempts);
    log_warn("core: %s", t->err.message);
    keep_disk(c, t);
    task_complete(c, t, detach_revert);
}

static void detach_step(struct core *c, struct task *t)
{
    struct driver *d = c->driver;
    double now = core_clock();
    if (t->removed) {
        task_complete_confirmed(c, t, detach_commit);
        return;
    }
    if (t->attempts > 0) {
        /* asked before: the domain's own word first */
        switch (disk_present(c, t, NULL)) {
        case 0:
            task_complete_confirmed(c, t, detach_commit);
            return;
        case -1:
            /* unreachable: never give up on what cannot be seen */
            task_wait(c, t, now + 5);
            return;
        }
        if (now >= t->deadline) {
            give_up(c, t);
            return;
        }
    }
    struct driver_error de = {""};
    enum driver_rc rc = d->ops->disk_detach(d, t->domain, t->alias, &de);
    int attempts = c->opts.detach_attempts > 0 ? c->opts.detach_attempts : 1;
    double every = (double)c->opts.detach_timeout / attempts;
    switch (rc) {
    case DRIVER_OK:
    case DRIVER_NOT_FOUND:
        task_complete_confirmed(c, t, detach_commit);
        return;
    case DRIVER_PENDING:
        if (t->attempts++ == 0)
            t->deadline = now + c->opts.detach_timeout;
        task_wait(c, t, now + every < t->deadline ? now + every : t->deadline);
        return;
    case DRIVER_UNAVAILABLE:
        if (t->attempts == 0)
            t->attempts = 1, t->deadline = now + c->opts.detach_timeout;
        task_wait(c, t, now + 5);
        return;
    default:
        fail_task(t, CORE_HYPERVISOR, "detach", &de);
        keep_disk(c, t);
        task_complete(c, t, detach_revert);
    }
}

/* ---- the steps, by kind ------------------------------------------------------ */

void core_attachment_step(struct core *c, struct task *t)
{
    switch (t->kind) {
    case TASK_ATTACH: attach_step(c, t); break;
    case TASK_SETTLE_ATTACH: settle_attach_step(c, t); break;
    default: detach_step(c, t); break;
    }
}

/* A task for an attachment the reconciler found unsettled. */
struct task *core_attachment_task(const struct server *s, const struct attachment *at,
                                  const struct volume *v)
{
    struct task *t = task_new(TASK_DETACH, "");
    if (t)
        fill_task(t, !strcmp(at->status, "attaching") ? TASK_SETTLE_ATTACH : TASK_DETACH, s,
                  at, v);
    return t;
}
