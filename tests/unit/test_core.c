/* test_core.c: the domain rules (core/) against a real store: device
 * naming, the attach / detach / update / swap checks in Nova's order and with
 * Nova's messages, the server lifecycle and actions, and account scoping. */
#include "helpers.h"

#include <pthread.h>

struct fx {
    struct tmp_store t;
    struct core *core;
    struct arena ar;
    struct core_ctx a;          /* alice, member of acct-a */
    struct core_ctx b;          /* bob, member of acct-b */
    struct core_ctx admin;      /* root, admin, home account ops */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    tmp_store_open(&f->t);
    add_account(f->t.store, "acct-a", "alpha");
    add_account(f->t.store, "acct-b", "beta");
    add_account(f->t.store, "ops", "operations");
    f->core = core_new(f->t.store);
    assert_non_null(f->core);
    arena_init(&f->ar);
    f->a = (struct core_ctx){.core = f->core, .arena = &f->ar, .scope = "acct-a",
                             .account = "acct-a", .home = "acct-a", .user_id = "alice",
                             .version = 1};
    f->b = (struct core_ctx){.core = f->core, .arena = &f->ar, .scope = "acct-b",
                             .account = "acct-b", .home = "acct-b", .user_id = "bob",
                             .version = 1};
    f->admin = (struct core_ctx){.core = f->core, .arena = &f->ar, .scope = NULL,
                                 .account = "ops", .home = "ops", .user_id = "root",
                                 .admin = true, .version = 1};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    core_free(f->core);
    tmp_store_close(&f->t);
    arena_release(&f->ar);
    free(f);
    normal_logs();
    return 0;
}

/* ---- helpers --------------------------------------------------------------------- */

#define OK(call)                                                                         \
    do {                                                                                 \
        struct core_error err_ = {0};                                                    \
        struct core_error *err = &err_;                                                  \
        if (!(call))                                                                     \
            fail_msg("%s failed: %d %s", #call, err_.code, err_.message);                \
    } while (0)

/* Expect the call to fail with code and (when msg is not NULL) exactly msg. */
#define FAILS(call, want_code, want_msg)                                                 \
    do {                                                                                 \
        struct core_error err_ = {0};                                                    \
        struct core_error *err = &err_;                                                  \
        if (call)                                                                        \
            fail_msg("%s succeeded, want code %d", #call, (int)(want_code));             \
        if (err_.code != (want_code))                                                    \
            fail_msg("%s: code %d (%s), want %d", #call, err_.code, err_.message,        \
                     (int)(want_code));                                                  \
        const char *want_ = (want_msg);                                                  \
        if (want_ && strcmp(err_.message, want_) != 0)                                   \
            fail_msg("%s:\n  got  \"%s\"\n  want \"%s\"", #call, err_.message, want_);   \
    } while (0)

static void server(struct core_ctx *c, const char *id)
{
    struct server_spec spec = {.id = id, .name = id, .image_ref = "img", .flavor_ref = "1"};
    struct server s;
    OK(CORE_RUN(c, err, core_server_create, &spec, &s));
    assert_string_equal(s.id, id);
}

static void volume(struct core_ctx *c, const char *id)
{
    struct volume_spec spec = {.id = id, .name = id, .size = 1};
    struct volume v;
    OK(CORE_RUN(c, err, core_volume_create, &spec, &v));
}

static bool attach(struct core_ctx *c, const char *srv, const char *vol, const char *device,
                   struct attachment *out, struct core_error *err)
{
    struct attach_spec spec = {.volume_id = vol, .device = device};
    struct attachment tmp;
    return CORE_RUN(c, err, core_attach, srv, &spec, out ? out : &tmp);
}

static const char *volume_status(struct fx *f, const char *id)
{
    struct volume v;
    struct core_error err;
    if (!core_volume_get(&f->admin, id, &v, &err))
        return "(none)";
    return v.status;
}

static const char *vm_state(struct fx *f, const char *id)
{
    struct server s;
    struct core_error err;
    if (!core_server_get(&f->admin, id, &s, &err))
        return "(none)";
    return s.vm_state;
}

static bool action(struct core_ctx *c, const char *id, enum server_action a,
                   struct core_error *err)
{
    return CORE_RUN(c, err, core_server_action, id, a);
}

/* Put the server straight into a vm_state / task_state, as a driver would. */
struct set_state_job {
    const char *id, *vm_state, *task_state;
    bool clear_launched;
};

static int job_set_state(struct store_conn *w, void *arg)
{
    struct set_state_job *j = arg;
    struct arena ar;
    arena_init(&ar);
    struct server s;
    enum store_rc rc = store_server_get(w, &ar, NULL, j->id, &s);
    if (rc == STORE_OK) {
        if (j->vm_state)
            s.vm_state = j->vm_state;
        s.task_state = j->task_state;
        if (j->clear_launched)
            s.launched_at = NULL;
        rc = store_server_update(w, &s);
    }
    arena_release(&ar);
    return (int)rc;
}

static void set_state(struct fx *f, const char *id, const char *vm, const char *task)
{
    struct set_state_job j = {id, vm, task, false};
    assert_int_equal(store_write(f->t.store, job_set_state, &j), 0);
}

struct status_job {
    const char *id, *status;
};

static int job_set_volume_status(struct store_conn *w, void *arg)
{
    struct status_job *j = arg;
    return (int)store_volume_set_status(w, j->id, j->status);
}

static void set_volume_status(struct fx *f, const char *id, const char *status)
{
    struct status_job j = {id, status};
    assert_int_equal(store_write(f->t.store, job_set_volume_status, &j), 0);
}

/* ---- attach ----------------------------------------------------------------------- */

static void test_attach_picks_next_device(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "v1");
    volume(&f->a, "v2");
    volume(&f->a, "v3");
    struct attachment at;
    OK(attach(&f->a, "srv", "v1", NULL, &at, err));
    assert_string_equal(at.device, "/dev/vdb");
    assert_string_equal(at.server_id, "srv");
    assert_string_equal(at.volume_id, "v1");
    assert_int_equal(at.boot_index, -1);
    assert_true(is_uuid4(at.id));
    assert_true(is_uuid4(at.bdm_uuid));
    assert_string_not_equal(at.id, at.bdm_uuid);
    OK(attach(&f->a, "srv", "v2", NULL, &at, err));
    assert_string_equal(at.device, "/dev/vdc");
    assert_string_equal(volume_status(f, "v1"), "in-use");
    assert_string_equal(volume_status(f, "v2"), "in-use");
    assert_string_equal(volume_status(f, "v3"), "available");

    /* a freed name is reused first */
    OK(CORE_RUN(&f->a, err, core_detach, "srv", "v1"));
    OK(attach(&f->a, "srv", "v3", NULL, &at, err));
    assert_string_equal(at.device, "/dev/vdb");

    struct attachment *list;
    int n;
    OK(core_attachment_list(&f->a, "srv", 0, 100, &list, &n, err));
    assert_int_equal(n, 2);
    assert_string_equal(list[0].volume_id, "v2");
    assert_string_equal(list[1].volume_id, "v3");
}

static void test_attach_requested_device(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "v1");
    volume(&f->a, "v2");
    volume(&f->a, "v3");
    struct attachment at;
    OK(attach(&f->a, "srv", "v1", "/dev/vdb", &at, err));
    assert_string_equal(at.device, "/dev/vdb");
    FAILS(attach(&f->a, "srv", "v2", "/dev/vdb", NULL, err), CORE_CONFLICT,
          "The supplied device path (/dev/vdb) is in use.");
    assert_string_equal(volume_status(f, "v2"), "available");
    /* an automatic name skips the taken one */
    OK(attach(&f->a, "srv", "v2", "/dev/sdf", &at, err));
    OK(attach(&f->a, "srv", "v3", NULL, &at, err));
    assert_string_equal(at.device, "/dev/vdc");
}

static void test_attach_invalid_device(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "v1");
    FAILS(attach(&f->a, "srv", "v1", "sda", NULL, err), CORE_BAD_REQUEST,
          "The supplied device path (sda) is invalid.");
    FAILS(attach(&f->a, "srv", "v1", "/dev/", NULL, err), CORE_BAD_REQUEST,
          "The supplied device path (/dev/) is invalid.");
    assert_string_equal(volume_status(f, "v1"), "available");
}

static void test_attach_already_attached(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv-1");
    server(&f->a, "srv-2");
    volume(&f->a, "vol");
    OK(attach(&f->a, "srv-1", "vol", NULL, NULL, err));
    FAILS(attach(&f->a, "srv-2", "vol", NULL, NULL, err), CORE_ALREADY_ATTACHED,
          "Invalid volume: volume vol is already attached to instances: srv-1");
    FAILS(attach(&f->a, "srv-1", "vol", NULL, NULL, err), CORE_ALREADY_ATTACHED,
          "Invalid volume: volume vol is already attached to instances: srv-1");
    /* even an admin, even with a free device name */
    FAILS(attach(&f->admin, "srv-2", "vol", "/dev/vdq", NULL, err), CORE_ALREADY_ATTACHED, NULL);
}

static void test_attach_not_found(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "vol");
    FAILS(attach(&f->a, "nope", "vol", NULL, NULL, err), CORE_NOT_FOUND,
          "Instance nope could not be found.");
    FAILS(attach(&f->a, "srv", "nope", NULL, NULL, err), CORE_NOT_FOUND,
          "Volume nope could not be found.");
}

static void test_attach_volume_not_available(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "vol");
    set_volume_status(f, "vol", "error");
    FAILS(attach(&f->a, "srv", "vol", NULL, NULL, err), CORE_BAD_REQUEST,
          "Invalid volume: volume 'vol' status must be 'available'. Currently in 'error'");
}

static void test_attach_locked_server(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "v1");
    volume(&f->a, "v2");
    OK(attach(&f->a, "srv", "v2", NULL, NULL, err));
    OK(action(&f->a, "srv", ACTION_LOCK, err));
    FAILS(attach(&f->a, "srv", "v1", NULL, NULL, err), CORE_CONFLICT, "Instance srv is locked");
    FAILS(CORE_RUN(&f->a, err, core_detach, "srv", "v2"), CORE_CONFLICT, "Instance srv is locked");
    assert_string_equal(volume_status(f, "v1"), "available");
    assert_string_equal(volume_status(f, "v2"), "in-use");
    /* an admin is not stopped by the lock */
    OK(attach(&f->admin, "srv", "v1", NULL, NULL, err));
    OK(CORE_RUN(&f->admin, err, core_detach, "srv", "v2"));
    assert_string_equal(volume_status(f, "v1"), "in-use");
    assert_string_equal(volume_status(f, "v2"), "available");
    /* and the owner can again once it is unlocked */
    OK(action(&f->a, "srv", ACTION_UNLOCK, err));
    OK(CORE_RUN(&f->a, err, core_detach, "srv", "v1"));
}

static void test_attach_by_vm_state(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "v1");
    volume(&f->a, "v2");
    volume(&f->a, "v3");
    OK(action(&f->a, "srv", ACTION_STOP, err));
    OK(attach(&f->a, "srv", "v1", NULL, NULL, err));            /* stopped: allowed */
    OK(CORE_RUN(&f->a, err, core_detach, "srv", "v1"));
    OK(action(&f->a, "srv", ACTION_START, err));
    OK(action(&f->a, "srv", ACTION_PAUSE, err));
    OK(attach(&f->a, "srv", "v1", NULL, NULL, err));            /* paused: allowed */
    OK(action(&f->a, "srv", ACTION_UNPAUSE, err));
    OK(action(&f->a, "srv", ACTION_SUSPEND, err));
    FAILS(attach(&f->a, "srv", "v2", NULL, NULL, err), CORE_CONFLICT,
          "Cannot 'attach_volume' instance srv while it is in vm_state suspended");
    FAILS(CORE_RUN(&f->a, err, core_detach, "srv", "v1"), CORE_CONFLICT,
          "Cannot 'detach_volume' instance srv while it is in vm_state suspended");
    /* the admin is bound by the state rule too */
    FAILS(attach(&f->admin, "srv", "v2", NULL, NULL, err), CORE_CONFLICT, NULL);
    assert_string_equal(volume_status(f, "v2"), "available");

    set_state(f, "srv", "building", NULL);
    FAILS(attach(&f->a, "srv", "v2", NULL, NULL, err), CORE_CONFLICT,
          "Cannot 'attach_volume' instance srv while it is in vm_state building");
    set_state(f, "srv", "shelved_offloaded", NULL);
    OK(attach(&f->a, "srv", "v2", NULL, NULL, err));
    set_state(f, "srv", "active", "rebooting");
    FAILS(attach(&f->a, "srv", "v3", NULL, NULL, err), CORE_CONFLICT,
          "Cannot 'attach_volume' instance srv while it is in task_state rebooting");
    set_state(f, "srv", "active", NULL);
    struct set_state_job j = {"srv", NULL, NULL, true};
    assert_int_equal(store_write(f->t.store, job_set_state, &j), 0);
    FAILS(attach(&f->a, "srv", "v3", NULL, NULL, err), CORE_CONFLICT,
          "Cannot 'attach_volume' instance srv while it is in launched_at None");
}

static void test_attach_check_order(void **state)
{
    /* Nova's order: lock before state, state before device, device before volume */
    struct fx *f = *state;
    server(&f->a, "srv");
    OK(action(&f->a, "srv", ACTION_SUSPEND, err));
    OK(action(&f->a, "srv", ACTION_LOCK, err));
    FAILS(attach(&f->a, "srv", "nope", "bad", NULL, err), CORE_CONFLICT, "Instance srv is locked");
    OK(action(&f->a, "srv", ACTION_UNLOCK, err));
    FAILS(attach(&f->a, "srv", "nope", "bad", NULL, err), CORE_CONFLICT,
          "Cannot 'attach_volume' instance srv while it is in vm_state suspended");
    OK(action(&f->a, "srv", ACTION_RESUME, err));
    FAILS(attach(&f->a, "srv", "nope", "bad", NULL, err), CORE_BAD_REQUEST,
          "The supplied device path (bad) is invalid.");
    FAILS(attach(&f->a, "srv", "nope", "/dev/vdb", NULL, err), CORE_NOT_FOUND,
          "Volume nope could not be found.");
}

static void test_attach_max_disks(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    char id[16];
    struct attachment at;
    for (int i = 0; i < 128; i++) {
        snprintf(id, sizeof id, "v%03d", i);
        volume(&f->a, id);
        OK(attach(&f->a, "srv", id, NULL, &at, err));
        if (i == 24)
            assert_string_equal(at.device, "/dev/vdz");
        if (i == 25)
            assert_string_equal(at.device, "/dev/vdaa");
        if (i == 26)
            assert_string_equal(at.device, "/dev/vdab");
    }
    volume(&f->a, "one-too-many");
    FAILS(attach(&f->a, "srv", "one-too-many", NULL, NULL, err), CORE_FORBIDDEN,
          "The maximum allowed number of disk devices (128) to attach to a single instance "
          "has been exceeded.");
    assert_string_equal(volume_status(f, "one-too-many"), "available");
}

struct racer {
    struct core_ctx ctx;
    struct arena ar;
    char server[16];
    bool ok;
    enum core_code code;
};

static void *race_attach(void *arg)
{
    struct racer *r = arg;
    struct core_error err = {0};
    struct attach_spec spec = {.volume_id = "contested"};
    struct attachment at;
    r->ok = CORE_RUN(&r->ctx, &err, core_attach, r->server, &spec, &at);
    r->code = err.code;
    return NULL;
}

static void test_attach_race_one_winner(void **state)
{
    struct fx *f = *state;
    enum { N = 8 };
    struct racer r[N];
    pthread_t th[N];
    volume(&f->a, "contested");
    for (int i = 0; i < N; i++) {
        snprintf(r[i].server, sizeof r[i].server, "srv-%d", i);
        server(&f->a, r[i].server);
    }
    for (int i = 0; i < N; i++) {
        arena_init(&r[i].ar);
        r[i].ctx = f->a;
        r[i].ctx.arena = &r[i].ar;
        assert_int_equal(pthread_create(&th[i], NULL, race_attach, &r[i]), 0);
    }
    int winners = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        arena_release(&r[i].ar);
        if (r[i].ok)
            winners++;
        else
            assert_int_equal(r[i].code, CORE_ALREADY_ATTACHED);
    }
    assert_int_equal(winners, 1);
}

/* ---- detach ------------------------------------------------------------------------ */

static void test_detach(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    server(&f->a, "other");
    volume(&f->a, "vol");
    volume(&f->a, "loose");
    OK(attach(&f->a, "srv", "vol", NULL, NULL, err));
    FAILS(CORE_RUN(&f->a, err, core_detach, "other", "vol"), CORE_NOT_FOUND,
          "Instance other is not attached to volume vol");
    FAILS(CORE_RUN(&f->a, err, core_detach, "srv", "loose"), CORE_NOT_FOUND,
          "Instance srv is not attached to volume loose");
    FAILS(CORE_RUN(&f->a, err, core_detach, "srv", "ghost"), CORE_NOT_FOUND,
          "Volume ghost could not be found.");
    FAILS(CORE_RUN(&f->a, err, core_detach, "ghost", "vol"), CORE_NOT_FOUND,
          "Instance ghost could not be found.");
    OK(CORE_RUN(&f->a, err, core_detach, "srv", "vol"));
    assert_string_equal(volume_status(f, "vol"), "available");
    struct attachment at;
    FAILS(core_attachment_get(&f->a, "srv", "vol", &at, err), CORE_NOT_FOUND,
          "Instance srv is not attached to volume vol");
    FAILS(CORE_RUN(&f->a, err, core_detach, "srv", "vol"), CORE_NOT_FOUND,
          "Instance srv is not attached to volume vol");
    /* it can be attached again, elsewhere */
    OK(attach(&f->a, "other", "vol", NULL, NULL, err));
}

static void test_detach_volume_not_in_use(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "vol");
    OK(attach(&f->a, "srv", "vol", NULL, NULL, err));
    set_volume_status(f, "vol", "detaching");
    FAILS(CORE_RUN(&f->a, err, core_detach, "srv", "vol"), CORE_BAD_REQUEST,
          "Invalid volume: Invalid input received: Invalid volume: Unable to detach volume. "
          "Volume status must be 'in-use' and attach_status must be 'attached' to detach.");
}

static void test_detach_root_volume(void **state)
{
    struct fx *f = *state;
    volume(&f->a, "root");
    volume(&f->a, "data");
    struct server_spec spec = {.id = "bfv", .name = "bfv", .root_volume_id = "root"};
    struct server s;
    OK(CORE_RUN(&f->a, err, core_server_create, &spec, &s));
    assert_string_equal(s.image_ref, "");
    assert_string_equal(volume_status(f, "root"), "in-use");
    struct attachment at;
    OK(core_attachment_get(&f->a, "bfv", "root", &at, err));
    assert_string_equal(at.device, "/dev/vda");
    assert_int_equal(at.boot_index, 0);
    assert_false(at.delete_on_termination);
    FAILS(CORE_RUN(&f->a, err, core_detach, "bfv", "root"), CORE_BAD_REQUEST,
          "Cannot detach a root device volume");
    FAILS(CORE_RUN(&f->admin, err, core_detach, "bfv", "root"), CORE_BAD_REQUEST,
          "Cannot detach a root device volume");
    assert_string_equal(volume_status(f, "root"), "in-use");
    /* the next automatic device is vdb, after the root's vda */
    OK(attach(&f->a, "bfv", "data", NULL, &at, err));
    assert_string_equal(at.device, "/dev/vdb");
}

static void test_server_create_root_volume_rules(void **state)
{
    struct fx *f = *state;
    volume(&f->a, "root");
    volume(&f->b, "b-root");
    struct server_spec spec = {.id = "s1", .name = "s1", .root_volume_id = "root"};
    struct server s;
    OK(CORE_RUN(&f->a, err, core_server_create, &spec, &s));
    /* the same root again: no longer available */
    spec.id = "s2";
    FAILS(CORE_RUN(&f->a, err, core_server_create, &spec, &s), CORE_BAD_REQUEST,
          "Invalid volume: volume 'root' status must be 'available'. Currently in 'in-use'");
    FAILS(core_server_get(&f->a, "s2", &s, err), CORE_NOT_FOUND, NULL);
    /* another account's volume does not exist for this caller */
    spec.root_volume_id = "b-root";
    FAILS(CORE_RUN(&f->a, err, core_server_create, &spec, &s), CORE_NOT_FOUND,
          "Volume b-root could not be found.");
    assert_string_equal(volume_status(f, "b-root"), "available");
    /* an id that is taken */
    struct server_spec dup = {.id = "s1", .name = "dup", .image_ref = "img"};
    FAILS(CORE_RUN(&f->a, err, core_server_create, &dup, &s), CORE_CONFLICT, "Server s1 already exists.");
}

/* ---- update and swap ---------------------------------------------------------------------- */

static void test_swap_needs_admin(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "old");
    volume(&f->a, "new");
    OK(attach(&f->a, "srv", "old", NULL, NULL, err));
    struct attach_update u = {.volume_id = "new"};
    const char *policy =
        "Policy doesn't allow os_compute_api:os-volumes-attachments:swap to be performed.";
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "old", &u), CORE_FORBIDDEN, policy);
    f->a.version = 85;
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "old", &u), CORE_FORBIDDEN, policy);
    /* before 2.85 every PUT is a swap, even to the same volume */
    f->a.version = 84;
    u.volume_id = "old";
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "old", &u), CORE_FORBIDDEN, policy);
    assert_string_equal(volume_status(f, "old"), "in-use");
    assert_string_equal(volume_status(f, "new"), "available");
}

static void test_swap_by_admin(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "old");
    volume(&f->a, "new");
    struct attachment before, after;
    OK(attach(&f->a, "srv", "old", "/dev/vdk", &before, err));
    struct attach_update u = {.volume_id = "new"};
    OK(CORE_RUN(&f->admin, err, core_attachment_update, "srv", "old", &u));
    assert_string_equal(volume_status(f, "old"), "available");
    assert_string_equal(volume_status(f, "new"), "in-use");
    OK(core_attachment_get(&f->a, "srv", "new", &after, err));
    assert_string_equal(after.device, "/dev/vdk");
    assert_string_equal(after.id, before.id);
    FAILS(core_attachment_get(&f->a, "srv", "old", &after, err), CORE_NOT_FOUND, NULL);
    /* the old volume is free again */
    server(&f->a, "srv-2");
    OK(attach(&f->a, "srv-2", "old", NULL, NULL, err));
}

static void test_swap_refusals(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    server(&f->a, "srv-2");
    volume(&f->a, "old");
    volume(&f->a, "busy");
    volume(&f->a, "loose");
    OK(attach(&f->a, "srv", "old", NULL, NULL, err));
    OK(attach(&f->a, "srv-2", "busy", NULL, NULL, err));
    struct attach_update u = {.volume_id = "busy"};
    /* Nova's swap_volume: an attached new volume is refused first */
    FAILS(CORE_RUN(&f->admin, err, core_attachment_update, "srv", "old", &u), CORE_BAD_REQUEST,
          "Invalid volume: New volume must be detached in order to swap.");
    u.volume_id = "ghost";
    FAILS(CORE_RUN(&f->admin, err, core_attachment_update, "srv", "old", &u), CORE_BAD_REQUEST,
          "Volume ghost could not be found.");
    /* the old volume must be attached to this server */
    u.volume_id = "old";
    FAILS(CORE_RUN(&f->admin, err, core_attachment_update, "srv", "loose", &u), CORE_NOT_FOUND,
          "No volume Block Device Mapping with id loose.");
    /* swap needs active, paused or resized */
    OK(action(&f->a, "srv", ACTION_STOP, err));
    u.volume_id = "loose";
    FAILS(CORE_RUN(&f->admin, err, core_attachment_update, "srv", "old", &u), CORE_CONFLICT,
          "Cannot 'swap_volume' instance srv while it is in vm_state stopped");
    assert_string_equal(volume_status(f, "old"), "in-use");
    assert_string_equal(volume_status(f, "loose"), "available");
}

static void test_update_delete_on_termination(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "vol");
    struct attachment at;
    OK(attach(&f->a, "srv", "vol", NULL, &at, err));
    assert_false(at.delete_on_termination);
    f->a.version = 85;
    struct attach_update u = {.volume_id = "vol", .set_delete_on_termination = true,
                              .delete_on_termination = true};
    OK(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u));
    OK(core_attachment_get(&f->a, "srv", "vol", &at, err));
    assert_true(at.delete_on_termination);
    assert_string_equal(at.device, "/dev/vdb");
    /* the same values for the immutable fields are fine */
    u = (struct attach_update){.volume_id = "vol", .set_delete_on_termination = true,
                               .delete_on_termination = false, .has_device = true,
                               .device = "/dev/vdb", .has_server_id = true, .server_id = "srv",
                               .has_id = true, .id = "vol", .has_tag = true, .tag = NULL};
    OK(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u));
    OK(core_attachment_get(&f->a, "srv", "vol", &at, err));
    assert_false(at.delete_on_termination);
}

static void test_update_immutable_fields(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "vol");
    struct attach_spec spec = {.volume_id = "vol", .tag = "disk1"};
    struct attachment at;
    OK(CORE_RUN(&f->a, err, core_attach, "srv", &spec, &at));
    f->a.version = 85;
    struct attach_update u = {.volume_id = "vol", .set_delete_on_termination = true,
                              .delete_on_termination = true, .has_device = true,
                              .device = "/dev/vdc"};
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u), CORE_BAD_REQUEST,
          "The device property is not mutable");
    u = (struct attach_update){.volume_id = "vol", .has_device = true, .device = NULL};
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u), CORE_BAD_REQUEST,
          "The device property is not mutable");
    u = (struct attach_update){.volume_id = "vol", .has_tag = true, .tag = "disk2"};
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u), CORE_BAD_REQUEST,
          "The tag property is not mutable");
    u = (struct attach_update){.volume_id = "vol", .has_tag = true, .tag = NULL};
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u), CORE_BAD_REQUEST,
          "The tag property is not mutable");
    u = (struct attach_update){.volume_id = "vol", .has_server_id = true, .server_id = "x"};
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u), CORE_BAD_REQUEST,
          "The serverId property is not mutable");
    u = (struct attach_update){.volume_id = "vol", .has_id = true, .id = "x"};
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u), CORE_BAD_REQUEST,
          "The id property is not mutable");
    u = (struct attach_update){.volume_id = "vol", .has_tag = true, .tag = "disk1"};
    OK(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u));
    /* a refused update changed nothing */
    OK(core_attachment_get(&f->a, "srv", "vol", &at, err));
    assert_false(at.delete_on_termination);
    assert_string_equal(at.device, "/dev/vdb");
    assert_string_equal(at.tag, "disk1");
}

static void test_update_not_attached(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "vol");
    f->a.version = 85;
    struct attach_update u = {.volume_id = "vol", .set_delete_on_termination = true};
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "srv", "vol", &u), CORE_NOT_FOUND,
          "No volume Block Device Mapping with id vol.");
    FAILS(CORE_RUN(&f->a, err, core_attachment_update, "ghost", "vol", &u), CORE_NOT_FOUND,
          "Instance ghost could not be found.");
}

/* ---- server delete ------------------------------------------------------------------------ */

static void test_server_delete_detaches(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "keep");
    volume(&f->a, "drop");
    OK(attach(&f->a, "srv", "keep", NULL, NULL, err));
    struct attach_spec spec = {.volume_id = "drop", .delete_on_termination = true};
    struct attachment at;
    OK(CORE_RUN(&f->a, err, core_attach, "srv", &spec, &at));
    assert_true(at.delete_on_termination);
    OK(CORE_RUN(&f->a, err, core_server_delete, "srv"));
    struct server s;
    FAILS(core_server_get(&f->a, "srv", &s, err), CORE_NOT_FOUND,
          "Instance srv could not be found.");
    assert_string_equal(volume_status(f, "keep"), "available");
    struct volume v;
    FAILS(core_volume_get(&f->a, "drop", &v, err), CORE_NOT_FOUND,
          "Volume drop could not be found.");
    bool attached = true;
    OK(core_volume_attachment(&f->a, "keep", &at, &attached, err));
    assert_false(attached);
    FAILS(CORE_RUN(&f->a, err, core_server_delete, "srv"), CORE_NOT_FOUND, NULL);
}

static void test_server_delete_root_volume(void **state)
{
    struct fx *f = *state;
    volume(&f->a, "r1");
    volume(&f->a, "r2");
    struct server_spec spec = {.id = "bfv-1", .name = "x", .root_volume_id = "r1",
                               .root_delete_on_termination = true};
    struct server s;
    OK(CORE_RUN(&f->a, err, core_server_create, &spec, &s));
    spec = (struct server_spec){.id = "bfv-2", .name = "y", .root_volume_id = "r2"};
    OK(CORE_RUN(&f->a, err, core_server_create, &spec, &s));
    OK(CORE_RUN(&f->a, err, core_server_delete, "bfv-1"));
    OK(CORE_RUN(&f->a, err, core_server_delete, "bfv-2"));
    struct volume v;
    FAILS(core_volume_get(&f->a, "r1", &v, err), CORE_NOT_FOUND, NULL);
    assert_string_equal(volume_status(f, "r2"), "available");
}

static void test_server_delete_locked(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    OK(action(&f->a, "srv", ACTION_LOCK, err));
    FAILS(CORE_RUN(&f->a, err, core_server_delete, "srv"), CORE_CONFLICT, "Instance srv is locked");
    OK(CORE_RUN(&f->admin, err, core_server_delete, "srv"));
}

/* ---- scoping ----------------------------------------------------------------------------- */

static void test_scoping(void **state)
{
    struct fx *f = *state;
    server(&f->a, "a-srv");
    volume(&f->a, "a-vol");
    volume(&f->b, "b-vol");
    server(&f->b, "b-srv");
    struct server s;
    struct volume v;
    struct attachment at;
    FAILS(core_server_get(&f->b, "a-srv", &s, err), CORE_NOT_FOUND,
          "Instance a-srv could not be found.");
    FAILS(core_volume_get(&f->b, "a-vol", &v, err), CORE_NOT_FOUND,
          "Volume a-vol could not be found.");
    FAILS(attach(&f->b, "a-srv", "b-vol", NULL, NULL, err), CORE_NOT_FOUND,
          "Instance a-srv could not be found.");
    FAILS(attach(&f->a, "a-srv", "b-vol", NULL, NULL, err), CORE_NOT_FOUND,
          "Volume b-vol could not be found.");
    FAILS(CORE_RUN(&f->b, err, core_server_delete, "a-srv"), CORE_NOT_FOUND, NULL);
    FAILS(CORE_RUN(&f->b, err, core_volume_delete, "a-vol"), CORE_NOT_FOUND, NULL);
    FAILS(action(&f->b, "a-srv", ACTION_STOP, err), CORE_NOT_FOUND, NULL);
    OK(attach(&f->a, "a-srv", "a-vol", NULL, NULL, err));
    FAILS(CORE_RUN(&f->b, err, core_detach, "a-srv", "a-vol"), CORE_NOT_FOUND, NULL);
    FAILS(core_attachment_get(&f->b, "a-srv", "a-vol", &at, err), CORE_NOT_FOUND, NULL);
    struct attachment *list;
    int n;
    FAILS(core_attachment_list(&f->b, "a-srv", 0, 10, &list, &n, err), CORE_NOT_FOUND, NULL);

    /* lists show only the caller's own */
    struct server *servers;
    OK(core_server_list(&f->b, NULL, NULL, 100, &servers, &n, err));
    assert_int_equal(n, 1);
    assert_string_equal(servers[0].id, "b-srv");
    struct volume *vols;
    OK(core_volume_list(&f->b, NULL, 0, 100, &vols, &n, err));
    assert_int_equal(n, 1);
    assert_string_equal(vols[0].id, "b-vol");

    /* a ctx whose scope is another account (an admin acting for it) */
    struct core_ctx for_b = f->admin;
    for_b.scope = for_b.account = "acct-b";
    FAILS(core_server_get(&for_b, "a-srv", &s, err), CORE_NOT_FOUND, NULL);
    OK(core_server_get(&for_b, "b-srv", &s, err));
    /* the admin without a scope sees everything */
    OK(core_server_get(&f->admin, "a-srv", &s, err));
    OK(core_volume_get(&f->admin, "b-vol", &v, err));
    /* and a resource made for an account belongs to it */
    OK(CORE_RUN(&for_b, err, core_server_create, &(struct server_spec){.id = "made-for-b", .name = "m", .image_ref = "i"}, &s));
    assert_string_equal(s.account_id, "acct-b");
    OK(core_server_get(&f->b, "made-for-b", &s, err));
}

static void test_server_list_marker(void **state)
{
    struct fx *f = *state;
    server(&f->a, "s1");
    server(&f->a, "s2");
    server(&f->a, "s3");
    server(&f->b, "b1");
    struct server *list;
    int n;
    OK(core_server_list(&f->a, "s3", NULL, 10, &list, &n, err));
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "s2");
    assert_string_equal(list[1].id, "s1");
    FAILS(core_server_list(&f->a, "b1", NULL, 10, &list, &n, err), CORE_BAD_REQUEST,
          "marker [b1] not found");
    FAILS(core_server_list(&f->a, "zzz", NULL, 10, &list, &n, err), CORE_BAD_REQUEST,
          "marker [zzz] not found");
}

/* ---- volumes ------------------------------------------------------------------------------- */

static void test_volume_delete_rules(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    volume(&f->a, "vol");
    OK(attach(&f->a, "srv", "vol", NULL, NULL, err));
    FAILS(CORE_RUN(&f->a, err, core_volume_delete, "vol"), CORE_VOLUME_BUSY, NULL);
    OK(CORE_RUN(&f->a, err, core_detach, "srv", "vol"));
    OK(CORE_RUN(&f->a, err, core_volume_delete, "vol"));
    FAILS(CORE_RUN(&f->a, err, core_volume_delete, "vol"), CORE_NOT_FOUND,
          "Volume vol could not be found.");
    /* Cinder deletes volumes in error too (as its refusal message says) */
    volume(&f->a, "broken");
    set_volume_status(f, "broken", "error");
    OK(CORE_RUN(&f->a, err, core_volume_delete, "broken"));
    volume(&f->a, "busy");
    set_volume_status(f, "busy", "attaching");
    FAILS(CORE_RUN(&f->a, err, core_volume_delete, "busy"), CORE_VOLUME_BUSY, NULL);
    struct volume_spec spec = {.id = "dup", .size = 2};
    struct volume v;
    OK(CORE_RUN(&f->a, err, core_volume_create, &spec, &v));
    assert_string_equal(v.status, "available");
    assert_string_equal(v.availability_zone, "nova");
    assert_string_equal(v.metadata, "{}");
    FAILS(CORE_RUN(&f->a, err, core_volume_create, &spec, &v), CORE_CONFLICT, "Volume dup already exists.");
}

static void test_generated_ids(void **state)
{
    struct fx *f = *state;
    struct server s;
    struct volume v;
    OK(CORE_RUN(&f->a, err, core_server_create, &(struct server_spec){.name = "n", .image_ref = "i"}, &s));
    assert_true(is_uuid4(s.id));
    assert_string_equal(s.vm_state, "active");
    assert_int_equal(s.power_state, POWER_RUNNING);
    assert_string_equal(s.flavor_ref, "1");
    assert_string_equal(s.availability_zone, "nova");
    assert_non_null(s.launched_at);
    OK(CORE_RUN(&f->a, err, core_volume_create, &(struct volume_spec){.size = 1}, &v));
    assert_true(is_uuid4(v.id));
}

/* ---- core_device_valid ---------------------------------------------------------------------- */

static void test_device_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "/dev/vdb", "/dev/sda", "/dev/sda1", "/dev/xvdb", "/dev/test", "/dev/vdaa", "/dev/hdc12",
        "/dev/a", "/dev/vd",
    };
    static const char *const bad[] = {
        "", "/dev/", "/dev/1", "/dev/vdb1a", "/dev/VDB", "/dev/Vdb", "dev/vdb", "/dev/vdb/",
        "/dev/vdb ", " /dev/vdb", "/devx/vdb", "/dev//vdb", "/dev/vd-b",
        "/DEV/vdb", "vdb", "/dev/v\xc3\xa9", "/dev/../etc",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!core_device_valid(good[i]))
            fail_msg("core_device_valid(\"%s\") = false", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (core_device_valid(bad[i]))
            fail_msg("core_device_valid(\"%s\") = true", bad[i]);
    assert_false(core_device_valid(NULL));
}

/* ---- server actions ------------------------------------------------------------------------- */

static void test_actions_state_machine(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    struct server s;
    OK(action(&f->a, "srv", ACTION_STOP, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_string_equal(s.vm_state, "stopped");
    assert_int_equal(s.power_state, POWER_SHUTDOWN);
    assert_string_equal(core_server_status(s.vm_state, s.task_state), "SHUTOFF");
    FAILS(action(&f->a, "srv", ACTION_STOP, err), CORE_CONFLICT,
          "Cannot 'stop' instance srv while it is in vm_state stopped");
    FAILS(action(&f->a, "srv", ACTION_PAUSE, err), CORE_CONFLICT,
          "Cannot 'pause' instance srv while it is in vm_state stopped");
    OK(action(&f->a, "srv", ACTION_START, err));
    assert_string_equal(vm_state(f, "srv"), "active");
    FAILS(action(&f->a, "srv", ACTION_START, err), CORE_CONFLICT,
          "Cannot 'start' instance srv while it is in vm_state active");
    OK(action(&f->a, "srv", ACTION_PAUSE, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_string_equal(s.vm_state, "paused");
    assert_int_equal(s.power_state, POWER_PAUSED);
    FAILS(action(&f->a, "srv", ACTION_RESUME, err), CORE_CONFLICT,
          "Cannot 'resume' instance srv while it is in vm_state paused");
    OK(action(&f->a, "srv", ACTION_UNPAUSE, err));
    OK(action(&f->a, "srv", ACTION_SUSPEND, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_string_equal(s.vm_state, "suspended");
    assert_int_equal(s.power_state, POWER_SUSPENDED);
    FAILS(action(&f->a, "srv", ACTION_UNPAUSE, err), CORE_CONFLICT,
          "Cannot 'unpause' instance srv while it is in vm_state suspended");
    OK(action(&f->a, "srv", ACTION_RESUME, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_string_equal(s.vm_state, "active");
    assert_int_equal(s.power_state, POWER_RUNNING);
    FAILS(action(&f->a, "ghost", ACTION_STOP, err), CORE_NOT_FOUND,
          "Instance ghost could not be found.");
    set_state(f, "srv", "active", "rebooting");
    FAILS(action(&f->a, "srv", ACTION_STOP, err), CORE_CONFLICT,
          "Cannot 'stop' instance srv while it is in task_state rebooting");
}

static void test_actions_lock(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    struct server s;
    OK(action(&f->a, "srv", ACTION_LOCK, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_true(s.locked);
    assert_string_equal(s.locked_by, "owner");
    /* locking twice is harmless; a locked server refuses the owner's actions */
    OK(action(&f->a, "srv", ACTION_LOCK, err));
    FAILS(action(&f->a, "srv", ACTION_STOP, err), CORE_CONFLICT, "Instance srv is locked");
    OK(action(&f->admin, "srv", ACTION_STOP, err));
    OK(action(&f->a, "srv", ACTION_UNLOCK, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_false(s.locked);
    assert_null(s.locked_by);
    OK(action(&f->a, "srv", ACTION_UNLOCK, err));           /* unlocking unlocked is fine */
}

static void test_actions_admin_lock(void **state)
{
    struct fx *f = *state;
    server(&f->a, "srv");
    struct server s;
    OK(action(&f->admin, "srv", ACTION_LOCK, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_true(s.locked);
    assert_string_equal(s.locked_by, "admin");
    FAILS(action(&f->a, "srv", ACTION_UNLOCK, err), CORE_FORBIDDEN,
          "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be "
          "performed.");
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_true(s.locked);
    OK(action(&f->admin, "srv", ACTION_UNLOCK, err));
    OK(core_server_get(&f->a, "srv", &s, err));
    assert_false(s.locked);
    /* an owner's lock can be lifted by an admin as well */
    OK(action(&f->a, "srv", ACTION_LOCK, err));
    OK(action(&f->admin, "srv", ACTION_UNLOCK, err));
}

static void test_server_status_map(void **state)
{
    (void)state;
    /* Nova's _STATE_MAP: the vm_state's default under any other task */
    static const char *const map[][3] = {
        {"active", NULL, "ACTIVE"},
        {"active", "powering-off", "ACTIVE"},
        {"active", "rebooting", "REBOOT"},
        {"active", "reboot_started", "REBOOT"},
        {"active", "rebooting_hard", "HARD_REBOOT"},
        {"active", "reboot_pending_hard", "HARD_REBOOT"},
        {"active", "updating_password", "PASSWORD"},
        {"active", "migrating", "MIGRATING"},
        {"active", "resize_finish", "RESIZE"},
        {"building", NULL, "BUILD"},
        {"building", "spawning", "BUILD"},
        {"stopped", NULL, "SHUTOFF"},
        {"stopped", "rebooting_hard", "SHUTOFF"},
        {"stopped", "rebuild_spawning", "REBUILD"},
        {"paused", NULL, "PAUSED"},
        {"paused", "migrating", "MIGRATING"},
        {"suspended", "rebooting_hard", "SUSPENDED"},
        {"rescued", NULL, "RESCUE"},
        {"resized", NULL, "VERIFY_RESIZE"},
        {"resized", "resize_reverting", "REVERT_RESIZE"},
        {"error", NULL, "ERROR"},
        {"error", "rebuilding", "REBUILD"},
        {"soft-delete", NULL, "SOFT_DELETED"},
        {"shelved", NULL, "SHELVED"},
        {"shelved_offloaded", NULL, "SHELVED_OFFLOADED"},
        {"deleted", "deleting", "DELETED"},
        {"weird", NULL, "UNKNOWN"},
        {"weird", "rebooting", "UNKNOWN"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        assert_string_equal(core_server_status(map[i][0], map[i][1]), map[i][2]);
}

/* Nova's task_and_vm_state_from_status(): the states whose status is
 * asked for, in any case; a vm_state's default among them takes any task. */
static void test_server_status_filter(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    static const struct {
        const char *statuses[3];
        const char *vm_states, *task_states;
    } cases[] = {
        {{"ACTIVE"}, ",active,", NULL},
        {{"active"}, ",active,", NULL},
        {{"REBOOT"}, ",active,", ",rebooting,reboot_pending,reboot_started,"},
        {{"HARD_REBOOT", "reboot"}, ",active,",
         ",rebooting,reboot_pending,reboot_started,rebooting_hard,reboot_pending_hard,"
         "reboot_started_hard,"},
        {{"MIGRATING"}, ",active,paused,", ",migrating,"},
        {{"REBUILD", "SHUTOFF"}, ",active,stopped,error,", NULL},
        {{"SHUTOFF", "PAUSED", "SHUTOFF"}, ",stopped,paused,", NULL},
        {{"DELETED"}, ",deleted,", NULL},
        {{"UNKNOWN", "nothing", "SHUTOFF"}, ",stopped,", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = 0;
        while (n < 3 && cases[i].statuses[n])
            n++;
        struct server_filter f = {0};
        assert_true(core_server_status_filter(&ar, cases[i].statuses, n, &f));
        assert_string_equal(f.vm_states, cases[i].vm_states);
        if (cases[i].task_states)
            assert_string_equal(f.task_states, cases[i].task_states);
        else
            assert_null(f.task_states);
    }
    /* none of Nova's statuses, including the one it shows for no state */
    static const char *const bad[] = {"UNKNOWN", "", "ACTIVE ", "STOPPED"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct server_filter f = {0};
        assert_false(core_server_status_filter(&ar, &bad[i], 1, &f));
    }
    arena_release(&ar);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_attach_picks_next_device),
        T(test_attach_requested_device),
        T(test_attach_invalid_device),
        T(test_attach_already_attached),
        T(test_attach_not_found),
        T(test_attach_volume_not_available),
        T(test_attach_locked_server),
        T(test_attach_by_vm_state),
        T(test_attach_check_order),
        T(test_attach_max_disks),
        T(test_attach_race_one_winner),
        T(test_detach),
        T(test_detach_volume_not_in_use),
        T(test_detach_root_volume),
        T(test_server_create_root_volume_rules),
        T(test_swap_needs_admin),
        T(test_swap_by_admin),
        T(test_swap_refusals),
        T(test_update_delete_on_termination),
        T(test_update_immutable_fields),
        T(test_update_not_attached),
        T(test_server_delete_detaches),
        T(test_server_delete_root_volume),
        T(test_server_delete_locked),
        T(test_scoping),
        T(test_server_list_marker),
        T(test_volume_delete_rules),
        T(test_generated_ids),
        cmocka_unit_test(test_device_valid),
        T(test_actions_state_machine),
        T(test_actions_lock),
        T(test_actions_admin_lock),
        cmocka_unit_test(test_server_status_map),
        cmocka_unit_test(test_server_status_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
