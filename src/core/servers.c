/* servers.c: a server's life (docs/api.md, decision D9): its create, its
 * reads, its delete, and its status following its domain.
 *
 * Without a hypervisor a new server is active at once and a delete is one
 * transaction. Under a driver each is an intent (task_state spawning or
 * deleting) committed first, then a task that acts on the domain, then a
 * completion. The actions on a server are server_actions.c's.
 */
#include "core/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"

/* Nova's _STATE_MAP (nova/api/openstack/common.py): a server's status from
 * its vm_state and task_state. A row without a task is the vm_state's
 * default, its status under any task the table does not name. */
static const struct state_status {
    const char *vm, *task, *status;
} state_map[] = {
    {"active", NULL, "ACTIVE"},
    {"active", "rebooting", "REBOOT"},
    {"active", "reboot_pending", "REBOOT"},
    {"active", "reboot_started", "REBOOT"},
    {"active", "rebooting_hard", "HARD_REBOOT"},
    {"active", "reboot_pending_hard", "HARD_REBOOT"},
    {"active", "reboot_started_hard", "HARD_REBOOT"},
    {"active", "updating_password", "PASSWORD"},
    {"active", "rebuilding", "REBUILD"},
    {"active", "rebuild_block_device_mapping", "REBUILD"},
    {"active", "rebuild_spawning", "REBUILD"},
    {"active", "migrating", "MIGRATING"},
    {"active", "resize_prep", "RESIZE"},
    {"active", "resize_migrating", "RESIZE"},
    {"active", "resize_migrated", "RESIZE"},
    {"active", "resize_finish", "RESIZE"},
    {"building", NULL, "BUILD"},
    {"stopped", NULL, "SHUTOFF"},
    {"stopped", "resize_prep", "RESIZE"},
    {"stopped", "resize_migrating", "RESIZE"},
    {"stopped", "resize_migrated", "RESIZE"},
    {"stopped", "resize_finish", "RESIZE"},
    {"stopped", "rebuilding", "REBUILD"},
    {"stopped", "rebuild_block_device_mapping", "REBUILD"},
    {"stopped", "rebuild_spawning", "REBUILD"},
    {"resized", NULL, "VERIFY_RESIZE"},
    {"resized", "resize_reverting", "REVERT_RESIZE"},
    {"paused", NULL, "PAUSED"},
    {"paused", "migrating", "MIGRATING"},
    {"suspended", NULL, "SUSPENDED"},
    {"rescued", NULL, "RESCUE"},
    {"error", NULL, "ERROR"},
    {"error", "rebuilding", "REBUILD"},
    {"error", "rebuild_block_device_mapping", "REBUILD"},
    {"error", "rebuild_spawning", "REBUILD"},
    {"deleted", NULL, "DELETED"},
    {"soft-delete", NULL, "SOFT_DELETED"},
    {"shelved", NULL, "SHELVED"},
    {"shelved_offloaded", NULL, "SHELVED_OFFLOADED"},
};
#define N_STATES (sizeof state_map / sizeof state_map[0])

const char *core_server_status(const char *vm_state, const char *task_state)
{
    const char *status = "UNKNOWN";
    for (size_t i = 0; i < N_STATES; i++) {
        const struct state_status *m = &state_map[i];
        if (strcmp(m->vm, vm_state) != 0)
            continue;
        if (!m->task) {         /* each vm_state's default comes first */
            status = m->status;
            if (!task_state)
                break;
        } else if (task_state && !strcmp(m->task, task_state)) {
            return m->status;
        }
    }
    return status;
}

/* Appends ",name" to a list of names between commas unless it holds it. */
static void add_state(struct arena *ar, const char **list, const char *name)
{
    const char *had = *list ? *list : ",";
    if (!strstr(had, arena_printf(ar, ",%s,", name)))
        *list = arena_printf(ar, "%s%s,", had, name);
}

bool core_server_status_filter(struct arena *ar, const char *const *statuses, int n,
                               struct server_filter *f)
{
    bool any_task = false;
    f->vm_states = f->task_states = NULL;
    for (size_t i = 0; i < N_STATES; i++) {
        const struct state_status *m = &state_map[i];
        for (int k = 0; k < n; k++) {
            if (strcasecmp(statuses[k], m->status) != 0)
                continue;
            add_state(ar, &f->vm_states, m->vm);
            if (m->task)
                add_state(ar, &f->task_states, m->task);
            else
                any_task = true;
        }
    }
    if (any_task)       /* Nova's 'default': any task_state */
        f->task_states = NULL;
    return f->vm_states != NULL;
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
    /* a domain attachd defines boots an image it has, or a volume */
    if (j->srv->own_domain) {
        struct image img;
        enum store_rc rc = STORE_OK;
        if (j->srv->image_ref[0])
            rc = store_image_get(w, j->c->arena, j->srv->image_ref, &img);
        else if (!j->spec->root_volume_id)
            rc = STORE_NOTFOUND;        /* nothing to boot */
        if (rc == STORE_NOTFOUND)
            core_fail(j->err, CORE_BAD_REQUEST, "Can not find requested image");
        else if (rc != STORE_OK)
            core_store_failed(j->err, rc);
        if (rc != STORE_OK)
            return 1;
    }
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
    /* the domain first: after the insert's unique violation PostgreSQL
     * answers nothing more until the job's savepoint is rolled back */
    enum store_rc rc;
    if (j->srv->domain) {
        struct server other;
        rc = store_server_by_domain(w, j->c->arena, j->srv->domain, &other);
        if (rc == STORE_OK) {
            core_fail(j->err, CORE_CONFLICT, "Domain %s is server %s already.", j->srv->domain,
                      other.id);
            return 1;
        }
        if (rc != STORE_NOTFOUND) {
            core_store_failed(j->err, rc);
            return 1;
        }
    }
    rc = store_server_add(w, j->srv);
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

bool core_domain_status(enum driver_state state, const char **vm_state, int *power)
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

/* The create's task: define and start the domain (create_step). */
static void create_queued(struct core_op *op, bool ok)
{
    struct create_job *j = op->job.arg;
    char lane[TASK_KEY_MAX];
    snprintf(lane, sizeof lane, "server:%s", j->srv->id);
    struct task *t = ok ? task_new(TASK_SERVER_CREATE, lane) : NULL;
    if (t) {
        snprintf(t->server, sizeof t->server, "%s", j->srv->id);
        snprintf(t->domain, sizeof t->domain, "%s", j->srv->domain);
        if (!task_enqueue(op->ctx->core, t))
            task_free(t);       /* stopping: the next start's reconciler queues it */
    } else if (ok) {
        log_warn("core: server %s: out of memory for its create; the reconciler will "
                 "start it", j->srv->id);
    }
    core_finish(op, ok);
}

static char *lower_case(struct arena *ar, const char *text)
{
    char *copy = arena_strdup(ar, text);
    for (char *p = copy; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return copy;
}

void core_server_create(struct core_op *op, const struct server_spec *spec, struct server *out)
{
    struct core_ctx *c = op->ctx;
    /* under a driver, a server is a domain: bound (server add --domain), or
     * defined and started by attachd from here on */
    bool define = c->core->driver && !spec->domain;
    const char *now = core_now(c);
    const char *id = spec->id ? spec->id
                              : spec->domain ? arena_strdup(c->arena, spec->domain->uuid)
                                             : core_new_id(c);
    /* the domain attachd defines has the server's id as its UUID, in lower
     * case as libvirt reports UUIDs (an id given to the CLI may be upper
     * case); a server whose id is no UUID (given to the CLI, as the demo's
     * Hostway id) gets a new one (its domain's name still names the server) */
    const char *domain = spec->domain ? arena_strdup(c->arena, spec->domain->uuid)
                         : !define            ? NULL
                         : driver_uuid_ok(id) ? lower_case(c->arena, id)
                                              : core_new_id(c);
    const char *vm_state = define ? "building" : "active";
    int power = define ? POWER_NOSTATE : POWER_RUNNING;
    if (spec->domain)
        core_domain_status(spec->domain->state, &vm_state, &power);
    *out = (struct server){
        .id = id, .account_id = c->account, .user_id = c->user_id, .name = spec->name,
        .vm_state = vm_state, .task_state = define ? "spawning" : NULL, .power_state = power,
        .domain = domain,
        .own_domain = define,
        .image_ref = spec->image_ref ? spec->image_ref : "",
        .flavor_ref = spec->flavor_ref ? spec->flavor_ref : c->core->flavors[0].id,
        .availability_zone = spec->availability_zone ? spec->availability_zone : "nova",
        .key_name = spec->key_name, .metadata = spec->metadata ? spec->metadata : "{}",
        .created_at = now, .updated_at = now, .launched_at = define ? NULL : now,
    };
    struct create_job *j = arena_alloc(c->arena, sizeof *j);
    *j = (struct create_job){c, out, spec, core_flavor(c->core, out->flavor_ref), &op->err};
    if (!j->flavor) {
        core_fail(&op->err, CORE_BAD_REQUEST, "Flavor %s could not be found.", out->flavor_ref);
        core_finish(op, false);
        return;
    }
    if (define)
        core_submit_then(op, do_create, j, create_queued);
    else
        core_submit(op, do_create, j);
}

/* ---- read ----------------------------------------------------------------- */

bool core_server_get(struct core_ctx *c, const char *id, struct server *out,
                     struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    return r && core_find_server(c, r, id, out, err);
}

static bool list_servers(struct core_ctx *c, const char *account, const char *marker,
                         const struct server_filter *filter, int limit, struct server **out,
                         int *n, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    enum store_rc rc = store_server_list(r, c->arena, account, marker, filter, limit, out, n);
    if (rc == STORE_NOTFOUND)
        return core_fail(err, CORE_BAD_REQUEST, "marker [%s] not found", marker);
    return rc == STORE_OK || core_store_failed(err, rc);
}

bool core_server_list(struct core_ctx *c, const char *marker, const struct server_filter *filter,
                      int limit, struct server **out, int *n, struct core_error *err)
{
    return list_servers(c, c->scope ? c->scope : c->account, marker, filter, limit, out, n, err);
}

bool core_server_list_all(struct core_ctx *c, const char *account, const char *marker,
                          const struct server_filter *filter, int limit, struct server **out,
                          int *n, struct core_error *err)
{
    if (!c->admin)
        return core_fail(err, CORE_FORBIDDEN, "Only an admin may list every account's servers");
    return list_servers(c, account, marker, filter, limit, out, n, err);
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

/* A server gone from the hypervisor (or never on one), forgotten: its
 * attachments, its delete_on_termination volumes (their files removed
 * before), the others available again, then the server. */
static enum store_rc forget_server(struct store_conn *w, struct arena *ar, const char *id)
{
    struct attachment *at;
    int n;
    enum store_rc rc = store_attachment_list(w, ar, id, 0, -1, &at, &n);
    for (int i = 0; rc == STORE_OK && i < n; i++) {
        rc = store_attachment_del(w, at[i].id);
        if (rc == STORE_OK)
            rc = at[i].delete_on_termination ? store_volume_del(w, at[i].volume_id)
                                             : store_volume_set_status(w, at[i].volume_id,
                                                                       "available");
    }
    return rc == STORE_OK ? store_server_del(w, id) : rc;
}

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
            if (strcmp(at[i].status, "attached") != 0 || s.own_domain)
                continue;       /* being changed: its own task is queued; or its disk goes
                                   with the domain attachd made */
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
        rc = forget_server(w, c->arena, s.id);
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

/* The last task of a server's delete: every disk detached (or the domain
 * attachd made undefined with its disks), it forgets the server and deletes
 * its delete_on_termination volumes (files first: a crash between leaves a
 * record whose file is gone, never a file nobody knows). A disk that would
 * not detach, or a domain that would not go, stops the delete: the server
 * is back, with the fault. */
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
        rc = forget_server(w, &ar, s.id);
        /* and the ones whose disks were detached before */
        for (const char *v = t->volumes; rc == STORE_OK && v && *v; v += strlen(v) + 1) {
            rc = store_volume_del(w, v);
            if (rc == STORE_NOTFOUND)
                rc = STORE_OK;
        }
    }
    arena_release(&ar);
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

/* Remove the domain attachd made for the server: 1 gone, 0 it would not
 * go (t->err says why), -1 the hypervisor cannot be asked now. */
static int undefine_own(struct core *c, struct task *t)
{
    struct driver_error de = {""};
    switch (c->driver->ops->domain_undefine(c->driver, t->domain, t->server, &de)) {
    case DRIVER_OK:
    case DRIVER_NOT_FOUND:
        return 1;
    case DRIVER_UNAVAILABLE:
        return -1;
    default:
        core_fail(&t->err, CORE_HYPERVISOR,
                  "The server was not deleted: its domain could not be removed: %s",
                  de.message);
        log_warn("core: server %s: %s", t->server, t->err.message);
        return 0;
    }
}

static void delete_step(struct core *c, struct task *t)
{
    struct store_conn *r = store_reader(c->store);
    struct arena ar;
    struct server s;
    struct attachment *at;
    int n = 0;
    arena_init(&ar);
    enum store_rc rc = r ? store_server_get(r, &ar, NULL, t->server, &s) : STORE_ERROR;
    if (rc == STORE_OK)
        rc = store_attachment_list(r, &ar, t->server, 0, -1, &at, &n);
    int gone = rc == STORE_OK && s.own_domain ? undefine_own(c, t) : 1;
    if (rc == STORE_NOTFOUND) {
        arena_release(&ar);
        t->ok = true;           /* forgotten already: server_gone finds nothing */
        task_complete(c, t, server_gone);
        return;
    }
    if (rc != STORE_OK || gone < 0) {
        arena_release(&ar);
        task_wait(c, t, core_clock() + 5);
        return;
    }
    t->ok = gone == 1;
    for (int i = 0; t->ok && !s.own_domain && i < n; i++) {
        if (at[i].boot_index == 0)
            continue;
        t->ok = false;
        core_fail(&t->err, CORE_HYPERVISOR,
                  "The server was not deleted: volume %s did not detach from it", at[i].volume_id);
        log_warn("core: server %s: %s", t->server, t->err.message);
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

/* ---- create: the domain defined and started -------------------------------------- */

int core_end_server_task(struct store_conn *w, struct task *t, const char *task,
                         void (*leave)(const struct task *t, struct server *s,
                                       const char *now))
{
    struct arena ar;
    struct server s;
    arena_init(&ar);
    enum store_rc rc = store_server_get(w, &ar, NULL, t->server, &s);
    if (rc == STORE_OK && s.task_state && !strcmp(s.task_state, task)) {
        char now[32];
        store_now(now);
        s.task_state = NULL;
        s.updated_at = now;
        leave(t, &s, now);
        rc = store_server_update(w, &s);
    }
    arena_release(&ar);
    return rc == STORE_OK || rc == STORE_NOTFOUND ? 0 : -1;
}

/* The completion of a create: active, or error with the fault (the step
 * removed what it made). A server being deleted meanwhile is the delete's. */
static void created(const struct task *t, struct server *s, const char *now)
{
    if (t->ok) {
        s->vm_state = "active";
        s->power_state = POWER_RUNNING;
        s->launched_at = now;
    } else {
        s->vm_state = "error";
        s->power_state = POWER_NOSTATE;
        s->fault = t->err.message;
    }
}

static int server_created(struct store_conn *w, void *arg)
{
    return core_end_server_task(w, arg, "spawning", created);
}

/* What the domain of server s is made of: its flavor, its image or root
 * volume. False with t->err set when something it needs is gone. */
static bool domain_spec(struct core *c, struct task *t, struct store_conn *r, struct arena *ar,
                        const struct server *s, struct driver_domain_spec *spec,
                        struct driver_disk *root)
{
    const struct flavor *f = core_flavor(c, s->flavor_ref);
    if (!f)
        return core_fail(&t->err, CORE_HYPERVISOR, "Flavor %s could not be found.",
                         s->flavor_ref);
    *spec = (struct driver_domain_spec){.uuid = s->domain, .server = s->id, .vcpus = f->vcpus,
                                        .ram_mb = f->ram_mb, .disk_bytes = f->disk_gb << 30};
    if (s->image_ref && s->image_ref[0]) {
        struct image img;
        if (store_image_get(r, ar, s->image_ref, &img) != STORE_OK)
            return core_fail(&t->err, CORE_HYPERVISOR, "Image %s could not be found.",
                             s->image_ref);
        spec->image = img.path;
        spec->image_format = img.disk_format;
        spec->kernel = img.kernel;
        spec->initrd = img.initrd;
        spec->cmdline = img.cmdline;
        return true;
    }
    struct attachment *at;
    int n = 0;
    if (store_attachment_list(r, ar, s->id, 0, -1, &at, &n) != STORE_OK)
        n = 0;
    for (int i = 0; i < n; i++) {
        struct volume v;
        if (at[i].boot_index != 0 ||
            store_volume_get(r, ar, NULL, at[i].volume_id, &v) != STORE_OK || !v.path)
            continue;
        char *alias = arena_alloc(ar, DRIVER_ALIAS_MAX + 1), *serial = arena_alloc(ar, 256);
        driver_alias(at[i].id, alias);
        driver_serial(v.id, serial);
        int64_t bytes;
        bool block = false;
        struct driver_error de;
        c->driver->ops->volume_probe(c->driver, v.path, &bytes, &block, &de);
        *root = (struct driver_disk){.domain = s->domain, .alias = alias, .serial = serial,
                                     .path = v.path, .block = block, .bus = BUS_VIRTIO,
                                     .target = "vda"};
        spec->root_volume = root;
        return true;
    }
    return core_fail(&t->err, CORE_HYPERVISOR, "The server has neither an image nor a root "
                     "volume with storage.");
}

static void create_step(struct core *c, struct task *t)
{
    struct driver *d = c->driver;
    struct store_conn *r = store_reader(c->store);
    struct arena ar;
    struct server s;
    arena_init(&ar);
    enum store_rc rc = r ? store_server_get(r, &ar, NULL, t->server, &s) : STORE_ERROR;
    if (rc == STORE_ERROR) {
        arena_release(&ar);
        task_wait(c, t, core_clock() + 5);
        return;
    }
    t->ok = true;
    if (rc == STORE_NOTFOUND || !s.task_state || strcmp(s.task_state, "spawning") != 0) {
        arena_release(&ar);     /* deleted meanwhile: the delete's to finish */
        task_complete(c, t, server_created);
        return;
    }
    struct driver_domain_spec spec;
    struct driver_disk root;
    struct driver_error de = {""};
    enum driver_rc drc = DRIVER_REFUSED;
    if (domain_spec(c, t, r, &ar, &s, &spec, &root)) {
        drc = d->ops->domain_define(d, &spec, &de);
        if (drc == DRIVER_OK)
            drc = d->ops->domain_power(d, s.domain, DP_START, &de);
        if (drc != DRIVER_OK && drc != DRIVER_UNAVAILABLE)
            core_fail(&t->err, CORE_HYPERVISOR, "The server could not be created: %s",
                      de.message);
    }
    arena_release(&ar);
    if (drc == DRIVER_UNAVAILABLE) {
        task_wait(c, t, core_clock() + 5);      /* both calls may be made again */
        return;
    }
    if (drc != DRIVER_OK) {
        t->ok = false;
        log_warn("core: server %s: %s", t->server, t->err.message);
        struct driver_error ue = {""};
        drc = d->ops->domain_undefine(d, t->domain, t->server, &ue);
        if (drc != DRIVER_OK && drc != DRIVER_NOT_FOUND)
            log_warn("core: server %s: its half-made domain could not be removed (%s); "
                     "deleting the server removes it", t->server, ue.message);
    }
    task_complete(c, t, server_created);
}

void core_server_step(struct core *c, struct task *t)
{
    switch (t->kind) {
    case TASK_SERVER_CREATE: create_step(c, t); break;
    case TASK_SERVER_POWER: core_server_power_step(c, t); break;
    case TASK_SERVER_CONSOLE: core_server_console_step(c, t); break;
    default: delete_step(c, t); break;
    }
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
    if (core_domain_status(f->state, &vm_state, &power) &&
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
