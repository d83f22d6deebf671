/* test_tasks.c: the core's hypervisor work (core/tasks.c, reconcile.c)
 * against the fake driver: each change's intent, driver call and
 * completion; detaches confirmed at once, by an event, or never (given up
 * after the timeout, the fault on the server); requesters that wait and
 * are answered "pending"; one operation per server at a time, servers in
 * parallel; the reconciler settling intents a crash left and reporting,
 * without fixing, what disagrees; servers following their domains. */
#include "helpers.h"

#include "fake_driver.h"
#include "core/internal.h"
#include "store/sqlite_int.h"

#include <sqlite3.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define DOM_A "11111111-1111-4111-8111-111111111111"
#define DOM_B "22222222-2222-4222-8222-222222222222"

struct fx {
    struct tmp_store t;
    struct core *core;
    struct fake_hv *fake;
    struct arena ar;
    struct core_ctx admin;
};

static struct core_options options(void)
{
    return (struct core_options){.bus = BUS_SCSI, .detach_timeout = 2, .detach_attempts = 4,
                                 .reconcile = true, .reconcile_interval = 0, .workers = 4};
}

/* A store with an account, a core that has not started its driver yet. */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    tmp_store_open(&f->t);
    add_account(f->t.store, "acct", "acct");
    f->core = core_new(f->t.store);
    f->fake = fake_open();
    fake_add_domain(f->fake, DOM_A, "vm-a", DOMAIN_RUNNING);
    fake_add_domain(f->fake, DOM_B, "vm-b", DOMAIN_RUNNING);
    arena_init(&f->ar);
    f->admin = (struct core_ctx){.core = f->core, .arena = &f->ar, .scope = NULL,
                                 .account = "acct", .home = "acct", .user_id = "test",
                                 .admin = true, .version = 1};
    *state = f;
    return 0;
}

static void start_workers(struct fx *f, int workers)
{
    struct core_options o = options();
    o.workers = workers;
    char err[256];
    if (!core_start_driver(f->core, &f->fake->base, &o, err, sizeof err))
        fail_msg("core_start_driver: %s", err);
}

static void start(struct fx *f)
{
    struct core_options o = options();
    char err[256];
    if (!core_start_driver(f->core, &f->fake->base, &o, err, sizeof err))
        fail_msg("core_start_driver: %s", err);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    core_stop_driver(f->core);
    fake_sleep_ms(f->fake->event_delay_ms + 50);   /* its removal threads end */
    driver_close(&f->fake->base);
    core_free(f->core);
    tmp_store_close(&f->t);
    arena_release(&f->ar);
    free(f);
    normal_logs();
    return 0;
}

/* ---- helpers --------------------------------------------------------------------------- */

static void server(struct fx *f, const char *id, const char *dom)
{
    struct driver_domain d = {.state = DOMAIN_RUNNING, .persistent = true};
    snprintf(d.uuid, sizeof d.uuid, "%s", dom);
    struct server_spec spec = {.id = id, .name = id, .image_ref = "i", .flavor_ref = "1",
                               .domain = &d};
    struct server s;
    struct core_error err;
    if (!CORE_RUN(&f->admin, &err, core_server_create, &spec, &s))
        fail_msg("server %s: %s", id, err.message);
}

static void volume(struct fx *f, const char *id)
{
    struct volume_spec spec = {.id = id, .name = id, .size = 1};
    struct volume v;
    struct core_error err;
    if (!CORE_RUN(&f->admin, &err, core_volume_create, &spec, &v))
        fail_msg("volume %s: %s", id, err.message);
    assert_string_equal(v.status, "available");
}

static bool attach(struct fx *f, const char *srv, const char *vol, struct attachment *out,
                   struct core_error *err)
{
    struct attach_spec spec = {.volume_id = vol};
    return CORE_RUN(&f->admin, err, core_attach, srv, &spec, out);
}

/* Detach, waiting at most `wait` seconds for the confirmation. */
static bool detach(struct fx *f, const char *srv, const char *vol, double wait, bool *pending,
                   struct core_error *err)
{
    struct core_sync s;
    core_sync_init(&s, &f->admin);
    s.op.wait = wait;
    core_detach(&s.op, srv, vol);
    bool ok = core_sync_wait(&s, err);
    *pending = s.op.pending;
    return ok;
}

static struct volume get_volume(struct fx *f, const char *id)
{
    struct volume v;
    struct core_error err;
    if (!core_volume_get(&f->admin, id, &v, &err))
        fail_msg("volume %s: %s", id, err.message);
    return v;
}

static struct server get_server(struct fx *f, const char *id)
{
    struct server s;
    struct core_error err;
    if (!core_server_get(&f->admin, id, &s, &err))
        fail_msg("server %s: %s", id, err.message);
    return s;
}

static struct attachment get_attachment(struct fx *f, const char *server, const char *volume)
{
    struct attachment at;
    struct core_error err;
    if (!core_attachment_get(&f->admin, server, volume, &at, &err))
        fail_msg("attachment %s %s: %s", server, volume, err.message);
    return at;
}

/* Wait (at most `seconds`) until the volume has that status. */
static bool volume_becomes(struct fx *f, const char *id, const char *status, double seconds)
{
    for (int i = 0; i < seconds * 50; i++) {
        if (!strcmp(get_volume(f, id).status, status))
            return true;
        fake_sleep_ms(20);
    }
    return false;
}

/* ---- the store's and the reconciler's windows --------------------------------------------
 * test_tasks links with -Wl,--wrap for the three functions below
 * (meson.build): each wrapper is the real function until a test arms it. */

enum store_rc __real_store_attachment_unsettled(struct store_conn *c, struct arena *ar,
                                                struct attachment **out, int *n);
bool __real_task_enqueue(struct core *c, struct task *t);
enum store_rc __real_store_volume_set_storage(struct store_conn *w, const char *id,
                                              const char *path, const char *status);

/* Armed on the test's thread, read and disarmed on the store's writer (or
 * the reconciler's): atomic. `pass` is read only after the task that set it
 * has finished. */
static struct {
    _Atomic int unsettled_delay_ms;         /* the reconciler's read, slowed */
    struct fake_hv *_Atomic then_detach;    /* ... then this guest honours an unplug */
    struct core *_Atomic reconcile_first;   /* a pass started just before an attach's
                                               task is queued */
    pthread_t pass;
    _Atomic bool undo_set_storage;          /* SQLite undoes the transaction under the
                                               next one */
} armed;

enum store_rc __wrap_store_volume_set_storage(struct store_conn *w, const char *id,
                                              const char *path, const char *status)
{
    enum store_rc rc = __real_store_volume_set_storage(w, id, path, status);
    if (armed.undo_set_storage) {
        armed.undo_set_storage = false;
        sqlite3_exec(sq_conn_of(w)->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

enum store_rc __wrap_store_attachment_unsettled(struct store_conn *c, struct arena *ar,
                                                struct attachment **out, int *n)
{
    enum store_rc rc = __real_store_attachment_unsettled(c, ar, out, n);
    if (armed.unsettled_delay_ms) {
        fake_sleep_ms(armed.unsettled_delay_ms);
        armed.unsettled_delay_ms = 0;
        armed.then_detach->detach = DETACH_AT_ONCE;
    }
    return rc;
}

static void *reconcile_pass(void *arg)
{
    core_reconcile(arg, NULL, NULL);
    return NULL;
}

bool __wrap_task_enqueue(struct core *c, struct task *t)
{
    if (armed.reconcile_first && t->kind == TASK_ATTACH) {
        armed.reconcile_first = NULL;
        if (pthread_create(&armed.pass, NULL, reconcile_pass, c) != 0)
            fail_msg("pthread_create");
        fake_sleep_ms(300);         /* time enough for a pass that does not wait */
    }
    return __real_task_enqueue(c, t);
}

/* ---- attach -------------------------------------------------------------------------- */

static void test_attach_hot_plugs(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    assert_string_equal(get_volume(f, "v1").path, "/fake/vol-v1.img");
    struct attachment at;
    struct core_error err;
    assert_true(attach(f, "s1", "v1", &at, &err));
    assert_string_equal(at.device, "/dev/sdb");     /* the scsi bus: sdX, the first after sda */
    assert_string_equal(at.status, "attached");
    char alias[DRIVER_ALIAS_MAX + 1], serial[256];
    driver_alias(at.id, alias);
    assert_true(fake_has_disk(f->fake, DOM_A, alias, serial, sizeof serial));
    assert_string_equal(serial, "v1");
    assert_string_equal(get_volume(f, "v1").status, "in-use");
    /* the next one gets the next target */
    volume(f, "v2");
    assert_true(attach(f, "s1", "v2", &at, &err));
    assert_string_equal(at.device, "/dev/sdc");
}

/* A device asked for is a hint the hypervisor's bus decides on: a free
 * name of the bus's is taken; the root disk's name, a partition, a name of
 * another bus, or one taken, gives the next free name. */
static void test_attach_device_hints(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    static const char *const hints[][2] = {
        {"/dev/sdf", "/dev/sdf"}, {"/dev/sda", "/dev/sdb"}, {"/dev/sdf", "/dev/sdc"},
        {"/dev/sdd1", "/dev/sdd"}, {"/dev/vdz", "/dev/sde"}, {"/dev/sdab", "/dev/sdab"},
        {"/dev/sdabc", "/dev/sdg"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
        char id[8];
        snprintf(id, sizeof id, "v%zu", i);
        volume(f, id);
        struct attach_spec spec = {.volume_id = id, .device = hints[i][0]};
        struct attachment at;
        struct core_error err;
        if (!CORE_RUN(&f->admin, &err, core_attach, "s1", &spec, &at))
            fail_msg("attach %s as %s: %s", id, hints[i][0], err.message);
        assert_string_equal(at.device, hints[i][1]);
    }
}

static void test_attach_refused_leaves_nothing(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    snprintf(f->fake->refuse, sizeof f->fake->refuse, "unsupported configuration: no");
    struct attachment at;
    struct core_error err;
    quiet_logs();
    assert_false(attach(f, "s1", "v1", &at, &err));
    assert_int_equal(err.code, CORE_HYPERVISOR);
    assert_non_null(strstr(err.message, "unsupported configuration: no"));
    assert_string_equal(get_volume(f, "v1").status, "available");
    assert_int_equal(fake_disks(f->fake, DOM_A), 0);
    struct attachment *list;
    int n;
    assert_true(core_server_attachments(&f->admin, "s1", &list, &n, &err));
    assert_int_equal(n, 0);
}

static void test_attach_needs_a_domain_and_storage(void **state)
{
    struct fx *f = *state;
    /* made before the hypervisor: no domain, no file */
    struct server_spec spec = {.id = "plain", .name = "plain", .image_ref = "i",
                               .flavor_ref = "1"};
    struct server s;
    struct core_error err;
    assert_true(CORE_RUN(&f->admin, &err, core_server_create, &spec, &s));
    volume(f, "nofile");
    start(f);
    server(f, "s1", DOM_A);
    struct attachment at;
    assert_false(attach(f, "s1", "nofile", &at, &err));
    assert_int_equal(err.code, CORE_CONFLICT);
    assert_non_null(strstr(err.message, "has no storage"));
    volume(f, "v1");
    assert_false(attach(f, "plain", "v1", &at, &err));
    assert_int_equal(err.code, CORE_CONFLICT);
    assert_non_null(strstr(err.message, "not a virtual machine"));
    /* and a server attachd makes needs an image it knows */
    struct server_spec api = {.name = "new", .image_ref = "i", .flavor_ref = "1"};
    assert_false(CORE_RUN(&f->admin, &err, core_server_create, &api, &s));
    assert_int_equal(err.code, CORE_BAD_REQUEST);
    assert_string_equal(err.message, "Can not find requested image");
}

static void test_hypervisor_unreachable_is_503(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    f->fake->base.events.connection(f->fake->base.events.cls, false);
    struct attachment at;
    struct core_error err;
    quiet_logs();
    assert_false(attach(f, "s1", "v1", &at, &err));
    assert_int_equal(err.code, CORE_UNAVAILABLE);
    assert_true(err.retry_after > 0);
    assert_string_equal(get_volume(f, "v1").status, "available");
    f->fake->base.events.connection(f->fake->base.events.cls, true);
    assert_true(attach(f, "s1", "v1", &at, &err));

    /* a detach likewise: refused at once, the disk left where it is */
    f->fake->base.events.connection(f->fake->base.events.cls, false);
    bool pending;
    err = (struct core_error){0};
    assert_false(detach(f, "s1", "v1", 5, &pending, &err));
    assert_int_equal(err.code, CORE_UNAVAILABLE);
    assert_true(err.retry_after > 0);
    assert_string_equal(get_volume(f, "v1").status, "in-use");
    assert_int_equal(fake_disks(f->fake, DOM_A), 1);
    f->fake->base.events.connection(f->fake->base.events.cls, true);
    assert_true(detach(f, "s1", "v1", 5, &pending, &err));
    assert_string_equal(get_volume(f, "v1").status, "available");
}

/* The hypervisor goes away during the attach: the outcome is unknown, the
 * requester hears 503, and once the hypervisor answers again the intent is
 * settled by what the domain has. */
static void test_attach_outcome_unknown_is_settled(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    f->fake->unavailable = true;
    struct attachment at;
    struct core_error err;
    quiet_logs();
    assert_false(attach(f, "s1", "v1", &at, &err));
    assert_int_equal(err.code, CORE_UNAVAILABLE);
    assert_string_equal(get_volume(f, "v1").status, "attaching");
    f->fake->unavailable = false;       /* the disk never got there */
    assert_true(volume_becomes(f, "v1", "available", 10));
}

/* ---- detach -------------------------------------------------------------------------- */

static void test_detach_confirmed_at_once(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    struct attachment at;
    struct core_error err;
    bool pending;
    assert_true(attach(f, "s1", "v1", &at, &err));
    if (!detach(f, "s1", "v1", 5, &pending, &err))
        fail_msg("detach: %s", err.message);
    assert_false(pending);
    assert_string_equal(get_volume(f, "v1").status, "available");
    assert_int_equal(fake_disks(f->fake, DOM_A), 0);
}

static void test_detach_confirmed_by_event(void **state)
{
    struct fx *f = *state;
    f->fake->detach = DETACH_BY_EVENT;
    f->fake->event_delay_ms = 300;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    volume(f, "v2");
    struct attachment at;
    struct core_error err;
    bool pending;
    /* a requester that waits: answered once the removal is confirmed */
    assert_true(attach(f, "s1", "v1", &at, &err));
    double t0 = now_s();
    if (!detach(f, "s1", "v1", 5, &pending, &err))
        fail_msg("detach: %s", err.message);
    assert_false(pending);
    assert_true(now_s() - t0 >= 0.25);
    assert_string_equal(get_volume(f, "v1").status, "available");
    /* one that does not wait (Nova's 202): answered at once, detaching until then */
    assert_true(attach(f, "s1", "v2", &at, &err));
    assert_true(detach(f, "s1", "v2", 0, &pending, &err));
    assert_true(pending);
    assert_string_equal(get_volume(f, "v2").status, "detaching");
    /* a second detach meanwhile is refused as such, an attach as attached */
    assert_false(detach(f, "s1", "v2", 0, &pending, &err));
    assert_int_equal(err.code, CORE_DETACHING);
    server(f, "s2", DOM_B);
    assert_false(attach(f, "s2", "v2", &at, &err));
    assert_int_equal(err.code, CORE_ALREADY_ATTACHED);
    assert_true(volume_becomes(f, "v2", "available", 5));
}

/* A virtio-blk disk in a VM without a guest: the removal is never
 * confirmed. Asked a few times, then given up: the attachment is back, the
 * server carries the fault. A requester that waited less is told
 * "pending". */
static void test_detach_never_confirmed_is_given_up(void **state)
{
    struct fx *f = *state;
    f->fake->detach = DETACH_NEVER;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    struct attachment at;
    struct core_error err;
    bool pending;
    quiet_logs();
    assert_true(attach(f, "s1", "v1", &at, &err));
    double t0 = now_s();
    assert_true(detach(f, "s1", "v1", 0.5, &pending, &err));
    assert_true(pending);
    assert_true(now_s() - t0 < 1.5);
    assert_string_equal(get_volume(f, "v1").status, "detaching");
    assert_true(volume_becomes(f, "v1", "in-use", 6));
    assert_true(now_s() - t0 >= 2.0);           /* the timeout */
    assert_true(f->fake->detaches >= 2);              /* asked again within it */
    struct server s = get_server(f, "s1");
    assert_non_null(s.fault);
    assert_non_null(strstr(s.fault, "did not confirm the detach of volume v1"));
    char alias[DRIVER_ALIAS_MAX + 1];
    driver_alias(at.id, alias);
    assert_true(fake_has_disk(f->fake, DOM_A, alias, NULL, 0));
    assert_string_equal(get_attachment(f, "s1", "v1").status, "attached");
}

/* The metrics' view of the work (core_tasks_pending): a detach the guest
 * never confirms is one pending detach, older each time it is asked, until
 * it is given up. */
static void test_pending_work_is_counted(void **state)
{
    struct fx *f = *state;
    f->fake->detach = DETACH_NEVER;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    struct attachment at;
    struct core_error err;
    bool pending;
    quiet_logs();
    const char *names[CORE_TASK_KINDS];
    int counts[CORE_TASK_KINDS];
    assert_true(core_tasks_pending(f->core, names, counts) == 0);
    for (int i = 0; i < CORE_TASK_KINDS; i++)
        assert_int_equal(counts[i], 0);
    assert_true(attach(f, "s1", "v1", &at, &err));
    assert_true(detach(f, "s1", "v1", 0, &pending, &err));
    assert_true(pending);
    double first = core_tasks_pending(f->core, names, counts);
    int detaches = 0, others = 0;
    for (int i = 0; i < CORE_TASK_KINDS; i++) {
        if (!strcmp(names[i], "detach"))
            detaches += counts[i];
        else
            others += counts[i];
    }
    assert_int_equal(detaches, 1);
    assert_int_equal(others, 0);
    fake_sleep_ms(50);
    assert_true(core_tasks_pending(f->core, names, counts) > first);
    assert_true(volume_becomes(f, "v1", "in-use", 6));      /* given up */
    for (int i = 0; i < 100 && core_tasks_pending(f->core, names, counts) > 0; i++)
        fake_sleep_ms(20);
    assert_true(core_tasks_pending(f->core, names, counts) == 0);
}

/* Stopping: a requester waiting for a confirmation is answered pending at
 * once, and the intent stays for the next start. */
static void test_drain_answers_waiting_requesters(void **state)
{
    struct fx *f = *state;
    f->fake->detach = DETACH_NEVER;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    struct attachment at;
    struct core_error err;
    assert_true(attach(f, "s1", "v1", &at, &err));
    struct core_sync s;
    core_sync_init(&s, &f->admin);
    s.op.wait = 30;
    core_detach(&s.op, "s1", "v1");
    fake_sleep_ms(200);
    double t0 = now_s();
    core_drain(f->core);
    assert_true(core_sync_wait(&s, &err));
    assert_true(s.op.pending);
    assert_true(now_s() - t0 < 1);
}

/* ---- one operation per server at a time ------------------------------------------------ */

struct racer {
    struct fx *f;
    const char *server, *volume;
    bool ok;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct arena ar;
    arena_init(&ar);
    struct core_ctx ctx = r->f->admin;
    ctx.arena = &ar;
    struct attach_spec spec = {.volume_id = r->volume};
    struct attachment at;
    struct core_error err;
    r->ok = CORE_RUN(&ctx, &err, core_attach, r->server, &spec, &at);
    arena_release(&ar);
    return NULL;
}

static void test_one_operation_per_server(void **state)
{
    struct fx *f = *state;
    f->fake->delay_ms = 150;
    start(f);
    server(f, "s1", DOM_A);
    server(f, "s2", DOM_B);
    const char *vols[] = {"v1", "v2", "v3", "v4", "v5", "v6"};
    struct racer r[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        volume(f, vols[i]);
        r[i] = (struct racer){f, i % 2 ? "s2" : "s1", vols[i], false};
    }
    for (int i = 0; i < 6; i++)
        pthread_create(&th[i], NULL, race, &r[i]);
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].ok);
    }
    assert_int_equal(f->fake->max_busy_domain, 1);    /* never two at once on one server */
    assert_int_equal(f->fake->max_busy_all, 2);       /* but the two servers in parallel */
    assert_int_equal(fake_disks(f->fake, DOM_A), 3);
    assert_int_equal(fake_disks(f->fake, DOM_B), 3);
}

/* Servers waiting for a worker are served in the order they came: with one
 * worker busy, attaches to three more servers queued in turn run in that
 * turn (the newest first would leave the oldest waiting behind any number
 * of newcomers). */
static void test_servers_served_in_order(void **state)
{
    struct fx *f = *state;
    fake_add_domain(f->fake, "33333333-3333-4333-8333-333333333333", "vm-c", DOMAIN_RUNNING);
    fake_add_domain(f->fake, "44444444-4444-4444-8444-444444444444", "vm-d", DOMAIN_RUNNING);
    f->fake->delay_ms = 200;
    start_workers(f, 1);
    const char *doms[] = {DOM_A, DOM_B, "33333333-3333-4333-8333-333333333333",
                          "44444444-4444-4444-8444-444444444444"};
    const char *srvs[] = {"s1", "s2", "s3", "s4"}, *vols[] = {"v1", "v2", "v3", "v4"};
    struct racer r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        server(f, srvs[i], doms[i]);
        volume(f, vols[i]);
        r[i] = (struct racer){f, srvs[i], vols[i], false};
    }
    pthread_create(&th[0], NULL, race, &r[0]);
    for (int i = 0; i < 100 && f->fake->attaches == 0; i++)
        fake_sleep_ms(10);                  /* the one worker is busy with s1 */
    for (int i = 1; i < 4; i++) {
        pthread_create(&th[i], NULL, race, &r[i]);
        fake_sleep_ms(40);                  /* queued before the next one */
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].ok);
    }
    assert_int_equal(f->fake->attaches, 4);
    const char *want[] = {"vm-a", "vm-b", "vm-c", "vm-d"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(f->fake->attached_to[i], want[i]);
}

/* ---- volumes and servers ----------------------------------------------------------------- */

static void test_volume_files(void **state)
{
    struct fx *f = *state;
    start(f);
    volume(f, "v1");
    assert_int_equal(f->fake->volumes_made, 1);
    struct core_error err;
    assert_true(CORE_RUN(&f->admin, &err, core_volume_delete, "v1"));
    assert_int_equal(f->fake->volumes_deleted, 1);
    struct volume v;
    assert_false(core_volume_get(&f->admin, "v1", &v, &err));
    /* adopted storage is never deleted */
    struct volume_spec adopt = {.id = "mine", .name = "mine", .size = 1, .path = "/dev/sdq"};
    assert_true(CORE_RUN(&f->admin, &err, core_volume_create, &adopt, &v));
    assert_true(v.adopted);
    assert_true(CORE_RUN(&f->admin, &err, core_volume_delete, "mine"));
    assert_int_equal(f->fake->volumes_deleted, 1);
    /* a file that cannot be made: the volume exists, in error */
    f->fake->volume_fails = true;
    quiet_logs();
    struct volume_spec spec = {.id = "full", .name = "full", .size = 1};
    assert_true(CORE_RUN(&f->admin, &err, core_volume_create, &spec, &v));
    assert_string_equal(v.status, "error");
    assert_string_equal(get_volume(f, "full").status, "error");
    /* the same, with SQLite undoing the completion's transaction once: it
     * runs again, with the same outcome */
    armed.undo_set_storage = true;
    spec.id = spec.name = "full-again";
    assert_true(CORE_RUN(&f->admin, &err, core_volume_create, &spec, &v));
    assert_false(armed.undo_set_storage);   /* undone once */
    assert_string_equal(v.status, "error");
    assert_string_equal(get_volume(f, "full-again").status, "error");
}

static void test_server_delete_detaches_first(void **state)
{
    struct fx *f = *state;
    f->fake->detach = DETACH_BY_EVENT;
    f->fake->event_delay_ms = 100;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "keep");
    volume(f, "drop");
    struct attachment at;
    struct core_error err;
    assert_true(attach(f, "s1", "keep", &at, &err));
    struct attach_spec dot = {.volume_id = "drop", .delete_on_termination = true};
    assert_true(CORE_RUN(&f->admin, &err, core_attach, "s1", &dot, &at));
    assert_true(CORE_RUN(&f->admin, &err, core_server_delete, "s1"));
    assert_string_equal(get_server(f, "s1").task_state, "deleting");
    struct server s;
    for (int i = 0; i < 100 && core_server_get(&f->admin, "s1", &s, &err); i++)
        fake_sleep_ms(50);
    assert_false(core_server_get(&f->admin, "s1", &s, &err));
    assert_int_equal(fake_disks(f->fake, DOM_A), 0);
    assert_string_equal(get_volume(f, "keep").status, "available");
    struct volume v;
    assert_false(core_volume_get(&f->admin, "drop", &v, &err));
    assert_int_equal(f->fake->volumes_deleted, 1);
}

static void test_servers_follow_their_domains(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    fake_set_state(f->fake, DOM_A, DOMAIN_SHUTOFF);
    for (int i = 0; i < 100 && strcmp(get_server(f, "s1").vm_state, "stopped"); i++)
        fake_sleep_ms(20);
    struct server s = get_server(f, "s1");
    assert_string_equal(s.vm_state, "stopped");
    assert_int_equal(s.power_state, POWER_SHUTDOWN);
    fake_set_state(f->fake, DOM_A, DOMAIN_PAUSED);
    for (int i = 0; i < 100 && strcmp(get_server(f, "s1").vm_state, "paused"); i++)
        fake_sleep_ms(20);
    assert_string_equal(get_server(f, "s1").vm_state, "paused");
    fake_set_state(f->fake, DOM_A, DOMAIN_SAVED);     /* managed-saved outside attachd */
    for (int i = 0; i < 100 && strcmp(get_server(f, "s1").vm_state, "suspended"); i++)
        fake_sleep_ms(20);
    s = get_server(f, "s1");
    assert_string_equal(s.vm_state, "suspended");
    assert_int_equal(s.power_state, POWER_SHUTDOWN);
}

/* ---- servers attachd makes, and power actions ------------------------------------------------ */

static int job_add_image(struct store_conn *w, void *arg)
{
    return (int)store_image_add(w, arg);
}

/* A server made through the API (POST /servers) from image "img". */
static struct server made_server(struct fx *f)
{
    char now[32];
    store_now(now);
    struct image img = {.id = "img", .name = "img", .disk_format = "raw", .size = 1,
                        .virtual_size = 1, .checksum = "-", .hash_value = "-",
                        .path = "/fake/img.raw", .created_at = now, .updated_at = now};
    store_write(f->t.store, job_add_image, &img);       /* there already: fine */
    struct server_spec spec = {.name = "new", .image_ref = "img", .flavor_ref = "1"};
    struct server s;
    struct core_error err;
    if (!CORE_RUN(&f->admin, &err, core_server_create, &spec, &s))
        fail_msg("server create: %s", err.message);
    return s;
}

/* Wait (at most 5 s) until the server has no task and that vm_state. */
static bool server_becomes(struct fx *f, const char *id, const char *vm_state)
{
    for (int i = 0; i < 250; i++) {
        struct server s = get_server(f, id);
        if (!s.task_state && !strcmp(s.vm_state, vm_state))
            return true;
        fake_sleep_ms(20);
    }
    return false;
}

static enum driver_state fake_state(struct fx *f, const char *uuid)
{
    pthread_mutex_lock(&f->fake->lock);
    struct fake_domain *d = fake_domain(f->fake, uuid);
    enum driver_state st = d ? d->state : DOMAIN_OTHER;
    pthread_mutex_unlock(&f->fake->lock);
    return st;
}

/* POST /servers: building and spawning at once (the answer), then the
 * domain defined as attachd-<id> and started, and the server active and
 * launched. A delete undefines it. */
static void test_server_create_defines_and_starts(void **state)
{
    struct fx *f = *state;
    start(f);
    struct server s = made_server(f);
    assert_string_equal(s.vm_state, "building");
    assert_string_equal(s.task_state, "spawning");
    assert_true(s.own_domain);
    assert_string_equal(s.domain, s.id);
    assert_true(server_becomes(f, s.id, "active"));
    struct server now = get_server(f, s.id);
    assert_int_equal(now.power_state, POWER_RUNNING);
    assert_non_null(now.launched_at);
    char name[DRIVER_NAME_MAX + 1];
    driver_domain_name(s.id, name);
    pthread_mutex_lock(&f->fake->lock);
    struct fake_domain *d = fake_domain(f->fake, name);
    assert_non_null(d);
    assert_string_equal(d->uuid, s.id);
    pthread_mutex_unlock(&f->fake->lock);
    assert_int_equal(fake_state(f, s.id), DOMAIN_RUNNING);

    struct core_error err;
    assert_true(CORE_RUN(&f->admin, &err, core_server_delete, s.id));
    for (int i = 0; i < 250 && core_server_get(&f->admin, s.id, &now, &err); i++)
        fake_sleep_ms(20);
    assert_false(core_server_get(&f->admin, s.id, &now, &err));
    assert_int_equal(fake_state(f, s.id), DOMAIN_OTHER);       /* undefined */
}

/* A server id given as a UUID in upper case (the CLI's --id): its domain's
 * UUID is the same in lower case, as libvirt reports UUIDs, so that the
 * domain's state and events are found for it. */
static void test_server_create_upper_case_uuid(void **state)
{
    struct fx *f = *state;
    start(f);
    made_server(f);     /* (and its image) */
    struct server_spec spec = {.id = "ABCDEF01-2345-4789-ABCD-EF0123456789", .name = "upper",
                               .image_ref = "img", .flavor_ref = "1"};
    struct server s;
    struct core_error err;
    if (!CORE_RUN(&f->admin, &err, core_server_create, &spec, &s))
        fail_msg("server create: %s", err.message);
    assert_string_equal(s.id, "ABCDEF01-2345-4789-ABCD-EF0123456789");
    assert_string_equal(s.domain, "abcdef01-2345-4789-abcd-ef0123456789");
    assert_true(server_becomes(f, s.id, "active"));
    assert_int_equal(fake_state(f, "abcdef01-2345-4789-abcd-ef0123456789"), DOMAIN_RUNNING);
}

/* A create the hypervisor refuses: the server in error with the refusal
 * as its fault, and no domain behind. */
static void test_server_create_refused(void **state)
{
    struct fx *f = *state;
    start(f);
    quiet_logs();
    snprintf(f->fake->domain_refuse, sizeof f->fake->domain_refuse, "no space for the disk");
    struct server s = made_server(f);
    assert_true(server_becomes(f, s.id, "error"));
    struct server now = get_server(f, s.id);
    assert_string_equal(now.fault, "The server could not be created: no space for the disk");
    assert_int_equal(fake_state(f, s.id), DOMAIN_OTHER);
}

/* Power actions under a driver: the task_state first (the answer), then
 * the domain changed and the state it is in. */
static void test_power_actions_drive_the_domain(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    static const struct {
        enum server_action action;
        const char *task, *vm_state;
        enum driver_state domain;
        int power;
    } steps[] = {
        {ACTION_PAUSE, "pausing", "paused", DOMAIN_PAUSED, POWER_PAUSED},
        {ACTION_UNPAUSE, "unpausing", "active", DOMAIN_RUNNING, POWER_RUNNING},
        {ACTION_SUSPEND, "suspending", "suspended", DOMAIN_SAVED, POWER_SHUTDOWN},
        {ACTION_RESUME, "resuming", "active", DOMAIN_RUNNING, POWER_RUNNING},
        {ACTION_STOP, "powering-off", "stopped", DOMAIN_SHUTOFF, POWER_SHUTDOWN},
        {ACTION_START, "powering-on", "active", DOMAIN_RUNNING, POWER_RUNNING},
    };
    struct core_error err;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        f->fake->delay_ms = 0;
        assert_true(CORE_RUN(&f->admin, &err, core_server_action, "s1", steps[i].action));
        assert_true(server_becomes(f, "s1", steps[i].vm_state));
        assert_int_equal(fake_state(f, DOM_A), steps[i].domain);
        assert_int_equal(get_server(f, "s1").power_state, steps[i].power);
    }
    /* reboots: off, then started (SOFT asks the guest, HARD pulls the plug) */
    memset(f->fake->powered, 0, sizeof f->fake->powered);
    assert_true(CORE_RUN(&f->admin, &err, core_server_action, "s1", ACTION_REBOOT_SOFT));
    assert_true(server_becomes(f, "s1", "active"));
    assert_int_equal(f->fake->powered[DP_SHUTDOWN], 1);
    assert_int_equal(f->fake->powered[DP_START], 1);
    assert_true(CORE_RUN(&f->admin, &err, core_server_action, "s1", ACTION_REBOOT_HARD));
    assert_true(server_becomes(f, "s1", "active"));
    assert_int_equal(f->fake->powered[DP_DESTROY], 1);
    assert_int_equal(f->fake->powered[DP_START], 2);
    assert_int_equal(fake_state(f, DOM_A), DOMAIN_RUNNING);
    /* a refusal: the state unchanged, the refusal as the fault */
    quiet_logs();
    snprintf(f->fake->domain_refuse, sizeof f->fake->domain_refuse, "domain is not running");
    assert_true(CORE_RUN(&f->admin, &err, core_server_action, "s1", ACTION_PAUSE));
    assert_true(server_becomes(f, "s1", "active"));
    assert_string_equal(get_server(f, "s1").fault,
                        "Cannot 'pause' instance s1: domain is not running");
    assert_int_equal(fake_state(f, DOM_A), DOMAIN_RUNNING);
}

/* A guest that never powers off: destroyed after shutdown_timeout. */
static void test_stop_destroys_after_the_timeout(void **state)
{
    struct fx *f = *state;
    struct core_options o = options();
    o.shutdown_timeout = 1;
    char why[256];
    if (!core_start_driver(f->core, &f->fake->base, &o, why, sizeof why))
        fail_msg("core_start_driver: %s", why);
    server(f, "s1", DOM_A);
    f->fake->acpi_ignored = true;
    quiet_logs();
    struct core_error err;
    assert_true(CORE_RUN(&f->admin, &err, core_server_action, "s1", ACTION_STOP));
    fake_sleep_ms(300);
    struct server s = get_server(f, "s1");
    assert_string_equal(s.task_state, "powering-off");      /* still up to the guest */
    assert_int_equal(fake_state(f, DOM_A), DOMAIN_RUNNING);
    assert_true(server_becomes(f, "s1", "stopped"));
    assert_int_equal(fake_state(f, DOM_A), DOMAIN_SHUTOFF);
    /* a SOFT reboot of such a guest: destroyed after the timeout, started */
    assert_true(CORE_RUN(&f->admin, &err, core_server_action, "s1", ACTION_START));
    assert_true(server_becomes(f, "s1", "active"));
    int destroyed = f->fake->powered[DP_DESTROY];
    assert_true(CORE_RUN(&f->admin, &err, core_server_action, "s1", ACTION_REBOOT_SOFT));
    fake_sleep_ms(300);
    struct server rebooting = get_server(f, "s1");
    assert_string_equal(rebooting.task_state, "rebooting");
    assert_string_equal(core_server_status(rebooting.vm_state, rebooting.task_state), "REBOOT");
    assert_true(server_becomes(f, "s1", "active"));
    assert_int_equal(f->fake->powered[DP_DESTROY], destroyed + 1);
    assert_int_equal(fake_state(f, DOM_A), DOMAIN_RUNNING);
}

/* os-getConsoleOutput: read by a worker for the waiting requester; the
 * last lines as Nova's _tail_log counts them (the text after the last
 * newline is a line: "" here). */
static void test_console_output(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    static const struct { int lines; const char *want; } cases[] = {
        {-1, "boot\r\none\ntwo\nthree\n"}, {0, "boot\r\none\ntwo\nthree\n"},
        {1, ""}, {2, "three\n"}, {3, "two\nthree\n"}, {99, "boot\r\none\ntwo\nthree\n"},
    };
    struct core_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out = NULL;
        assert_true(CORE_RUN(&f->admin, &err, core_server_console, "s1", cases[i].lines, &out));
        assert_string_equal(out, cases[i].want);
    }
    const char *out = NULL;
    assert_false(CORE_RUN(&f->admin, &err, core_server_console, "nope", -1, &out));
    assert_int_equal(err.code, CORE_NOT_FOUND);
    f->fake->unavailable = true;
    assert_false(CORE_RUN(&f->admin, &err, core_server_console, "s1", -1, &out));
    assert_int_equal(err.code, CORE_UNAVAILABLE);
}

/* ---- the reconciler ------------------------------------------------------------------------ */

struct reported {
    int n;
    char what[8][256];
};

static void collect(void *cls, const struct core_disagreement *d)
{
    struct reported *r = cls;
    if (r->n < 8)
        snprintf(r->what[r->n], sizeof r->what[0], "%s %s: %s", d->server ? d->server : "-",
                 d->volume ? d->volume : "-", d->what);
    r->n++;
}

/* Set an attachment's status and its volume's as a crash would leave them. */
static int set_intent(struct store_conn *w, void *arg)
{
    const char *const *j = arg;     /* attachment, from, to, volume, volume status */
    enum store_rc rc = store_attachment_set_status(w, j[0], j[1], j[2]);
    if (rc == STORE_OK)
        rc = store_volume_set_status(w, j[3], j[4]);
    return (int)rc;
}

/* A crash left intents: an attach whose disk made it, one whose did not,
 * a detach the hypervisor never heard of. The next start settles each. */
static void test_reconcile_settles_what_a_crash_left(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "made");
    volume(f, "lost");
    volume(f, "leaving");
    struct attachment a1, a2, a3;
    struct core_error err;
    assert_true(attach(f, "s1", "made", &a1, &err));
    assert_true(attach(f, "s1", "lost", &a2, &err));
    assert_true(attach(f, "s1", "leaving", &a3, &err));
    core_stop_driver(f->core);
    /* "lost": the crash came before the hypervisor was asked */
    char alias[DRIVER_ALIAS_MAX + 1];
    struct driver_error de;
    driver_alias(a2.id, alias);
    f->fake->base.ops->disk_detach(&f->fake->base, DOM_A, alias, &de);
    const char *intents[3][5] = {
        {a1.id, "attached", "attaching", "made", "attaching"},
        {a2.id, "attached", "attaching", "lost", "attaching"},
        {a3.id, "attached", "detaching", "leaving", "detaching"},
    };
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_write(f->t.store, set_intent, (void *)intents[i]), 0);
    /* the next start */
    core_free(f->core);
    f->core = core_new(f->t.store);
    f->admin.core = f->core;
    start(f);
    assert_true(volume_becomes(f, "made", "in-use", 5));
    assert_true(volume_becomes(f, "lost", "available", 5));
    assert_true(volume_becomes(f, "leaving", "available", 5));
    assert_string_equal(get_attachment(f, "s1", "made").status, "attached");
    assert_int_equal(fake_disks(f->fake, DOM_A), 1);
}

/* What disagrees otherwise is reported, never fixed. */
static void test_reconcile_reports_disagreements(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    server(f, "s2", DOM_B);
    volume(f, "v1");
    struct attachment at;
    struct core_error err;
    assert_true(attach(f, "s1", "v1", &at, &err));
    /* behind attachd's back: the disk removed, a disk of its kind added, a
     * domain gone */
    char alias[DRIVER_ALIAS_MAX + 1];
    driver_alias(at.id, alias);
    struct driver_error de;
    f->fake->base.ops->disk_detach(&f->fake->base, DOM_A, alias, &de);
    fake_plant_disk(f->fake, DOM_A, "ua-planted", "sdx");
    fake_remove_domain(f->fake, DOM_B);
    struct reported r = {0};
    quiet_logs();
    assert_true(core_reconcile(f->core, collect, &r));
    assert_int_equal(r.n, 3);
    bool missing = false, planted = false, gone = false;
    for (int i = 0; i < r.n; i++) {
        missing |= strstr(r.what[i], "s1 v1: attached as /dev/sdb in the store") != NULL;
        planted |= strstr(r.what[i], "ua-planted") != NULL;
        gone |= strstr(r.what[i], "s2 -: its domain") != NULL;
    }
    assert_true(missing && planted && gone);
    /* and nothing was "fixed" */
    assert_string_equal(get_volume(f, "v1").status, "in-use");
    assert_true(fake_has_disk(f->fake, DOM_A, "ua-planted", NULL, 0));
}

/* ---- the reconciler beside the tasks ------------------------------------------------------ */

/* A periodic pass that comes between an attach's intent and the queueing of
 * its task leaves the attach alone: it does not undo the intent while the
 * disk is being plugged (which left the disk in the guest and the volume
 * "available", free to attach elsewhere). */
static void test_reconcile_beside_an_attach(void **state)
{
    struct fx *f = *state;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    struct attachment at;
    struct core_error err;
    armed.reconcile_first = f->core;
    bool ok = attach(f, "s1", "v1", &at, &err);
    assert_null(armed.reconcile_first);     /* the pass ran */
    pthread_join(armed.pass, NULL);
    assert_true(ok);
    assert_string_equal(at.status, "attached");
    fake_sleep_ms(200);                     /* whatever the pass queued has run */
    assert_string_equal(get_volume(f, "v1").status, "in-use");
    assert_string_equal(get_attachment(f, "s1", "v1").status, "attached");
    assert_int_equal(fake_disks(f->fake, DOM_A), 1);
}

/* A pass that read a detach's intent before the detach was given up does
 * not ask for the removal again afterwards (which took the disk out of the
 * guest while the store said it was attached). */
static void test_reconcile_beside_a_detach_given_up(void **state)
{
    struct fx *f = *state;
    f->fake->detach = DETACH_NEVER;
    start(f);
    server(f, "s1", DOM_A);
    volume(f, "v1");
    struct attachment at;
    struct core_error err;
    bool pending;
    quiet_logs();
    assert_true(attach(f, "s1", "v1", &at, &err));
    assert_true(detach(f, "s1", "v1", 0, &pending, &err));
    assert_true(pending);
    armed.then_detach = f->fake;
    armed.unsettled_delay_ms = 3500;        /* beyond the detach's timeout (2 s) */
    assert_true(core_reconcile(f->core, NULL, NULL));
    assert_true(volume_becomes(f, "v1", "in-use", 5));     /* given up */
    fake_sleep_ms(500);                     /* whatever the pass queued has run */
    assert_string_equal(get_attachment(f, "s1", "v1").status, "attached");
    assert_string_equal(get_volume(f, "v1").status, "in-use");
    char alias[DRIVER_ALIAS_MAX + 1];
    driver_alias(at.id, alias);
    assert_true(fake_has_disk(f->fake, DOM_A, alias, NULL, 0));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_attach_hot_plugs),
        T(test_attach_device_hints),
        T(test_attach_refused_leaves_nothing),
        T(test_attach_needs_a_domain_and_storage),
        T(test_hypervisor_unreachable_is_503),
        T(test_attach_outcome_unknown_is_settled),
        T(test_detach_confirmed_at_once),
        T(test_detach_confirmed_by_event),
        T(test_detach_never_confirmed_is_given_up),
        T(test_pending_work_is_counted),
        T(test_drain_answers_waiting_requesters),
        T(test_one_operation_per_server),
        T(test_servers_served_in_order),
        T(test_volume_files),
        T(test_server_delete_detaches_first),
        T(test_servers_follow_their_domains),
        T(test_server_create_defines_and_starts),
        T(test_server_create_upper_case_uuid),
        T(test_server_create_refused),
        T(test_power_actions_drive_the_domain),
        T(test_stop_destroys_after_the_timeout),
        T(test_console_output),
        T(test_reconcile_settles_what_a_crash_left),
        T(test_reconcile_reports_disagreements),
        T(test_reconcile_beside_an_attach),
        T(test_reconcile_beside_a_detach_given_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
