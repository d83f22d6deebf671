/* serve.c: `attachd serve`, the daemon: options, the order things start
 * and stop in, signals, systemd's readiness and watchdog, and the demo.
 */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "core/core.h"
#include "driver/driver.h"
#include "http/server.h"
#include "store/pg.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/id.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/sdnotify.h"

/* ---- the demo ---------------------------------------------------------------- */

struct demo {
    char account[33];
    char password[25];
    bool created;
};

static int do_demo(struct store_conn *w, void *arg)
{
    struct demo *d = arg;
    struct arena ar;
    struct user u;
    arena_init(&ar);
    enum store_rc rc = store_user_get(w, &ar, "demo", &u);
    arena_release(&ar);
    if (rc == STORE_OK)
        return 0;       /* made on an earlier start */
    char now[32], hash[crypto_pwhash_STRBYTES];
    unsigned char raw[12];
    store_now(now);
    id_hex32(d->account);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(d->password, sizeof d->password, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (auth_hash_password(d->password, hash, sizeof hash) != 0)
        return 1;
    struct account a = {.id = d->account, .name = "demo", .created_at = now};
    if (store_account_add(w, &a) != STORE_OK)
        return 1;
    struct user nu = {.name = "demo", .account_id = d->account, .role = ROLE_MEMBER,
                      .pwhash = hash, .created_at = now};
    if (store_user_add(w, &nu) != STORE_OK)
        return 1;
    d->created = true;
    return 0;
}

#define DEMO_SERVER "test-server-0013"
#define DEMO_VOLUME "hbs2012May03_0OxRg0Jz7"
#define DEMO_BOOT_WAIT 300      /* seconds for the demo server's domain to run */

/* Give the demo server the image of that id or name and the smallest
 * flavor; false (and say why) when there is no such image. */
static bool demo_image(struct store *store, struct core_ctx *ctx, const char *image,
                       struct server_spec *srv)
{
    struct image img;
    struct store_conn *r = store_reader(store);
    if (!r || cli_find_image(r, ctx->arena, image, &img) != STORE_OK) {
        fprintf(stderr, "attachd: demo: no image \"%s\" to make the demo server from; add it "
                "with scripts/demo-image, or name one with --demo-image\n", image);
        return false;
    }
    const struct flavor *f;
    int nf = core_flavors(ctx->core, &f), small = 0;
    for (int k = 1; k < nf; k++)
        if (f[k].ram_mb < f[small].ram_mb)
            small = k;
    srv->image_ref = img.id;
    srv->flavor_ref = f[small].id;
    return true;
}

/* Wait for the created server's domain to run (the create's task does it). */
static bool demo_booted(struct core_ctx *ctx, struct core_error *err)
{
    for (int i = 0; i < DEMO_BOOT_WAIT * 10; i++) {
        struct server s;
        if (!core_server_get(ctx, DEMO_SERVER, &s, err))
            return false;
        if (!s.task_state && !strcmp(s.vm_state, "active"))
            return true;
        if (!s.task_state && !strcmp(s.vm_state, "error"))
            return core_fail(err, CORE_HYPERVISOR, "%s", s.fault ? s.fault : "its create failed");
        usleep(100000);
    }
    return core_fail(err, CORE_HYPERVISOR, "its domain was not running after %d s",
                     DEMO_BOOT_WAIT);
}

/* The demo account gets the Hostway documentation's own server and volume,
 * attached, so that its DELETE example answers 204 as written. With a
 * hypervisor the server is a VM that attachd creates from the image
 * `image`, as POST /servers does, and the volume a file, hot-plugged into
 * it. */
static bool demo_seed(struct store *store, struct core *core, struct driver *driver,
                      const char *image, const char *account)
{
    struct arena ar;
    arena_init(&ar);
    struct core_ctx ctx = {.core = core, .arena = &ar, .scope = account, .account = account,
                           .home = account, .user_id = "demo", .version = 1};
    struct server_spec srv = {.id = DEMO_SERVER, .name = "demo"};
    if (driver && !demo_image(store, &ctx, image, &srv)) {
        arena_release(&ar);
        return false;
    }
    struct volume_spec vol = {.id = DEMO_VOLUME, .name = "demo", .size = 1};
    struct attach_spec at = {.volume_id = DEMO_VOLUME};
    struct server s;
    struct volume v;
    struct attachment a;
    struct core_error err;
    struct core_sync sync;
    core_sync_init(&sync, &ctx);
    core_server_create(&sync.op, &srv, &s);
    bool ok = core_sync_wait(&sync, &err);
    if (ok && driver)
        ok = demo_booted(&ctx, &err);
    if (ok) {
        core_sync_init(&sync, &ctx);
        core_volume_create(&sync.op, &vol, &v);
        ok = core_sync_wait(&sync, &err);
    }
    if (ok) {
        core_sync_init(&sync, &ctx);
        core_attach(&sync.op, DEMO_SERVER, &at, &a);
        ok = core_sync_wait(&sync, &err);
    }
    if (!ok)
        fprintf(stderr, "attachd: demo server and volume not created: %s\n", err.message);
    arena_release(&ar);
    return ok;
}

static int demo(struct store *store, struct core *core, struct driver *driver,
                const struct cli *c, const char *base)
{
    struct demo d = {0};
    int rc = store_write(store, do_demo, &d);
    if (rc != 0) {
        fprintf(stderr, "attachd: the demo account could not be made (%s)\n",
                rc == -STORE_BUSY ? "database is locked" : "see the log above");
        return CLI_FAILED;
    }
    if (d.created && demo_seed(store, core, driver, cli_get(c, "demo-image"), d.account)) {
        printf("attachd: created demo account %s with user \"demo\", password \"%s\",\n"
               "  and the Hostway example's server %s with volume %s attached. Try:\n"
               "  curl -u demo:%s %s/servers/%s/os-volume_attachments\n"
               "  curl -i -u demo:%s -X DELETE %s/servers/%s/os-volume_attachments/%s\n",
               d.account, d.password, DEMO_SERVER, DEMO_VOLUME, d.password, base, DEMO_SERVER,
               d.password, base, DEMO_SERVER, DEMO_VOLUME);
        if (driver) {
            char name[DRIVER_NAME_MAX + 1];
            driver_domain_name(DEMO_SERVER, name);
            printf("  The server is the running VM \"%s\"; see its disks with\n"
                   "  virsh -c qemu:///system domblklist %s\n", name, name);
        }
        printf("  For the openstack CLI (README.md):\n"
               "  export OS_CLOUD=envvars OS_AUTH_TYPE=http_basic OS_USERNAME=demo "
               "OS_PASSWORD=%s\n"
               "  export OS_ENDPOINT=%s/v2.1 OS_BLOCK_STORAGE_ENDPOINT_OVERRIDE=%s/v3/%s\n"
               "  export OS_IMAGE_ENDPOINT_OVERRIDE=%s/image\n",
               d.password, base, base, d.account, base);
    }
    fflush(stdout);
    return CLI_OK;
}

/* ---- metrics ------------------------------------------------------------------ */

static time_t started;

static void collect_process(void *cls, struct metrics_out *o)
{
    (void)cls;
    metrics_gauge(o, "attachd_build_info", "The running attachd's version (always 1).",
                  "version=\"" ATTACHD_VERSION "\"", 1);
    metrics_gauge(o, "process_start_time_seconds",
                  "When attachd started, in seconds since the Unix epoch.", NULL,
                  (double)started);
}

/* With a hypervisor: the work it has queued or in progress. */
static void collect_core(void *cls, struct metrics_out *o)
{
    struct core *core = cls;
    const char *names[CORE_TASK_KINDS];
    int counts[CORE_TASK_KINDS];
    double oldest = core_tasks_pending(core, names, counts);
    char labels[64];
    for (int i = 0; i < CORE_TASK_KINDS; i++) {
        snprintf(labels, sizeof labels, "kind=\"%s\"", names[i]);
        metrics_gauge(o, "attachd_hypervisor_operations_pending",
                      "Hypervisor operations queued or in progress (one per server runs at a "
                      "time), by kind.", labels, counts[i]);
    }
    metrics_gauge(o, "attachd_hypervisor_oldest_operation_seconds",
                  "Age of the oldest hypervisor operation queued or in progress (0: none).",
                  NULL, oldest);
    metrics_gauge(o, "attachd_hypervisor_connected",
                  "1 while attachd is connected to the hypervisor, 0 while it reconnects.",
                  NULL, core_hypervisor_up(core) ? 1 : 0);
}

/* ---- systemd's watchdog ------------------------------------------------------------ */

/* WATCHDOG=1 says "alive", so it is sent only when the writer thread, the
 * part that every change waits for, answers an empty job in time: a writer
 * stuck on a dead disk then gets attachd restarted. */
struct liveness {
    struct store_job job;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool pending, done;
};

static int noop(struct store_conn *w, void *arg)
{
    (void)w;
    (void)arg;
    return 0;
}

static void liveness_done(struct store_job *job)
{
    struct liveness *l = (struct liveness *)job;
    pthread_mutex_lock(&l->lock);
    l->pending = false;
    l->done = true;
    pthread_cond_signal(&l->done_cond);
    pthread_mutex_unlock(&l->lock);
}

static void watchdog_tick(struct store *store, struct liveness *l, uint64_t wait_usec)
{
    pthread_mutex_lock(&l->lock);
    if (!l->pending) {
        l->pending = true;
        l->done = false;
        l->job = (struct store_job){.fn = noop, .done = liveness_done};
        pthread_mutex_unlock(&l->lock);
        store_submit(store, &l->job);
        pthread_mutex_lock(&l->lock);
    }
    struct timespec until;
    deadline_after_s(&until, (double)wait_usec / 1e6);
    while (!l->done && pthread_cond_timedwait(&l->done_cond, &l->lock, &until) != ETIMEDOUT)
        ;
    bool alive = l->done;
    pthread_mutex_unlock(&l->lock);
    if (alive)
        sdnotify("WATCHDOG=1");
    else
        log_error("attachd: the store's writer did not answer within %.1f s; the watchdog is "
                  "not told that attachd is alive", (double)wait_usec / 1e6);
}

/* ---- the hypervisor's lease ------------------------------------------------------ */

/* The exit status of a node whose lease ran out (EX_TEMPFAIL): systemd's
 * Restart=on-failure starts it again, as the holder or as a standby. */
#define LEASE_LOST_STATUS 75

/* The lease ran out (store.h, store_hold_hypervisor): another node may drive
 * the hypervisor from now on, so this one stops at once, finishing nothing:
 * what it had begun stays an intent, which the next holder's reconciler
 * settles, as after a crash. */
static void lease_lost(void *cls)
{
    (void)cls;
    log_error("attachd: stopping at once, since this node may no longer drive the hypervisor "
              "(docs/scale-out.md)");
    _exit(LEASE_LOST_STATUS);
}

/* Wait `seconds` for SIGTERM or SIGINT (SIGHUP is ignored meanwhile),
 * telling systemd's watchdog, if any, that the wait is alive: the signal,
 * or 0 once the time has passed. */
static int wait_signal(const sigset_t *handled, double seconds)
{
    struct timespec until, now;
    deadline_after_s(&until, seconds);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = (double)(until.tv_sec - now.tv_sec) +
                      (double)(until.tv_nsec - now.tv_nsec) / 1e9;
        if (left <= 0)
            return 0;
        if (left > 1)
            left = 1;
        struct timespec step = {0};
        timespec_add(&step, left);
        int sig = sigtimedwait(handled, NULL, &step);
        if (sig > 0 && sig != SIGHUP)
            return sig;
        if (sdnotify_watchdog_usec())
            sdnotify("WATCHDOG=1");
    }
}

/* Make this process the one that drives the hypervisor: at once, or as a
 * standby once the node that does is gone, then after the last holder's
 * lease. 1: it is; 0: a signal came while it waited; -1: refused or
 * failed (printed). */
static int hold_hypervisor(struct cli *c, struct store *store, const sigset_t *handled)
{
    double lease = cli_uint(c, "hypervisor-lease"), settle;
    char err[512];
    bool waited = false;
    for (;;) {
        enum store_rc rc = store_hold_hypervisor(store, lease, lease_lost, NULL, &settle, err,
                                                 sizeof err);
        if (rc == STORE_OK)
            break;
        if (rc != STORE_EXISTS || !cli_flag(c, "standby")) {
            fprintf(stderr, "attachd: %s%s\n", err,
                    rc == STORE_EXISTS ? "; one node per database may, others wait as a standby "
                                         "(--standby; docs/scale-out.md)" : "");
            return -1;
        }
        if (!waited) {
            log_info("attachd: standby: %s; this node serves once it may drive the hypervisor "
                     "itself", err);
            sdnotify("READY=1\nSTATUS=standby: waiting for the hypervisor's lease");
            waited = true;
        }
        int sig = wait_signal(handled, 1.0);
        if (sig) {
            log_info("attachd: %s received while a standby", strsignal(sig));
            return 0;
        }
    }
    if (settle > 0) {
        log_info("attachd: this node holds the hypervisor's lease; it drives the hypervisor in "
                 "%.0f s, once the last holder's lease has run out", settle);
        int sig = wait_signal(handled, settle);
        if (sig) {
            log_info("attachd: %s received before serving", strsignal(sig));
            return 0;
        }
    }
    return 1;
}

/* ---- serve ---------------------------------------------------------------------- */

static const char *const serve_names[] = {
    "listen", "db", "threads", "timeout", "header-timeout", "max-connections", "max-per-ip",
    "synchronous", "demo", "demo-image", "tls-cert", "tls-key", "public-url", "trusted-proxy",
    "metrics-listen", "log-format", CLI_DRIVER_OPTIONS, "standby", "hypervisor-lease", NULL,
};

int cmd_serve(int argc, char **argv)
{
    struct cli c = {.command = "serve", .names = serve_names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    log_set_format(strcmp(cli_get(&c, "log-format"), "json") ? LOG_TEXT : LOG_JSON);
    started = time(NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct http_options h = {
        .listen = cli_get(&c, "listen"),
        .threads = cli_given(&c, "threads") ? cli_uint(&c, "threads")
                   : cores > 0                 ? (unsigned)cores
                                               : 1,
        .timeout = cli_uint(&c, "timeout"), .header_timeout = cli_uint(&c, "header-timeout"),
        .max_connections = cli_given(&c, "max-connections") ? cli_uint(&c, "max-connections")
                                                            : 1024,
        .max_per_ip = cli_uint(&c, "max-per-ip"), .max_body = HTTP_MAX_BODY,
        .public_url = cli_get(&c, "public-url"), .trusted_proxies = cli_get(&c, "trusted-proxy"),
    };
    int status = CLI_USAGE;
    struct http_tls *tls = NULL;
    struct driver *driver = NULL;
    struct store *store = NULL;
    struct core *core = NULL;
    struct auth *auth = NULL;
    struct api *api = NULL;
    struct http_server *http = NULL;
    struct http_exporter *exporter = NULL;
    int lock_fd = -1;
    char err[512];
    /* Every connection is a file descriptor: a cap the limit cannot hold
     * would leave clients past the limit hanging instead of refused. */
    unsigned long nofile;
    unsigned fit = http_connections_that_fit(h.threads, &nofile);
    if (cli_given(&c, "max-connections") && h.max_connections > fit) {
        cli_error("serve: --max-connections %u does not fit the open-files limit of %lu "
                  "(room for %u connections with %u threads); raise it (ulimit -n) or lower "
                  "--max-connections", h.max_connections, nofile, fit, h.threads);
        goto out;
    }
    struct sockaddr_storage addr;
    const char *listens[] = {"listen", "metrics-listen"};
    for (int i = 0; i < 2; i++) {
        const char *v = cli_get(&c, listens[i]);
        if (v && http_parse_listen(v, &addr, err, sizeof err) < 0) {
            cli_error("serve: %s", err);
            goto out;
        }
    }
    if (cli_given(&c, "tls-cert") != cli_given(&c, "tls-key")) {
        cli_error("serve: --tls-cert and --tls-key go together");
        goto out;
    }
    if (cli_given(&c, "tls-cert") &&
        !(tls = http_tls_load(cli_get(&c, "tls-cert"), cli_get(&c, "tls-key"), err,
                              sizeof err))) {
        cli_error("serve: %s", err);
        goto out;
    }
    h.tls = tls;
    struct hv_settings hv;
    if (!cli_hv_settings(&c, &hv))
        goto out;
    status = CLI_FAILED;
    if (fit == 0) {
        fprintf(stderr, "attachd: the open-files limit of %lu leaves no room for connections "
                "(raise it with ulimit -n)\n", nofile);
        goto out;
    }
    if (h.max_connections > fit) {
        log_warn("attachd: at most %u connections, as the open-files limit is %lu", fit, nofile);
        h.max_connections = fit;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "attachd: libsodium failed to initialise\n");
        goto out;
    }
    /* Block the signals we act on in every thread; the main thread waits
     * for them. */
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &handled, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_buffer_start();

    bool failed;
    driver = cli_open_driver(&hv, &failed);
    if (failed)
        goto out;
    /* While it serves the database, `attachd db restore` cannot swap it. */
    if (!pg_is_conninfo(cli_db_path(&c)) &&
        (lock_fd = cli_db_lock(cli_db_path(&c), false, err, sizeof err)) < 0) {
        fprintf(stderr, "attachd: %s\n", err);
        goto out;
    }
    store = cli_open_store_at(&c, true, &status);
    if (!store)
        goto out;
    status = CLI_FAILED;
    /* one process per database drives a hypervisor (several nodes with the
     * none driver may serve it) */
    if (driver) {
        int held = hold_hypervisor(&c, store, &handled);
        if (held <= 0) {
            status = held == 0 ? CLI_OK : CLI_FAILED;
            goto out;
        }
    } else if (store_hypervisor_holder(store, err, sizeof err) == STORE_OK) {
        /* (checked at start: a libvirt node started later is not refused) */
        fprintf(stderr, "attachd: another attachd drives a hypervisor for this database (%s); "
                "a node with the none driver would record attachments that no hypervisor "
                "makes (docs/scale-out.md)\n", err);
        goto out;
    }
    core = cli_core_new(&c, store);
    if (core && driver) {
        /* before listening: every intent a crash left is settled */
        struct core_options o;
        cli_core_options(&hv, true, &o);
        if (!core_start_driver(core, driver, &o, err, sizeof err)) {
            fprintf(stderr, "attachd: %s\n", err);
            goto out;
        }
    }
    if (!core)
        goto out;
    const char *listen = h.listen;
    char base[600];
    snprintf(base, sizeof base, "%s://%s", tls ? "https" : "http", listen);
    if (cli_flag(&c, "demo") &&
        demo(store, core, driver, &c, h.public_url ? h.public_url : base) != CLI_OK)
        goto out;
    auth = auth_new(store);
    api = auth ? api_new(core, store, auth) : NULL;
    if (api)
        api_set_detach_wait(api, hv.hostway_detach_wait);
    if (!(http = api ? http_start(&h, api, err, sizeof err) : NULL)) {
        fprintf(stderr, "attachd: %s\n", api ? err : "out of memory");
        goto out;
    }
    if (cli_given(&c, "metrics-listen") &&
        !(exporter = http_exporter_start(cli_get(&c, "metrics-listen"), err, sizeof err))) {
        fprintf(stderr, "attachd: %s\n", err);
        goto out;
    }
    metrics_register(collect_process, NULL);
    if (driver)
        metrics_register(collect_core, core);
    char shown[512];
    log_info("attachd %s listening on %s%s (database %s, driver %s, %u threads, %u connections "
             "at most%s%s)", ATTACHD_VERSION, base, tls ? " (TLS 1.2+)" : "",
             pg_describe(cli_db_path(&c), shown, sizeof shown), hv.kind, h.threads,
             h.max_connections,
             exporter ? ", metrics on " : "", exporter ? cli_get(&c, "metrics-listen") : "");
    char ready[700];
    snprintf(ready, sizeof ready, "READY=1\nSTATUS=serving on %s", base);
    sdnotify(ready);

    uint64_t watchdog = sdnotify_watchdog_usec();
    struct liveness live = {.lock = PTHREAD_MUTEX_INITIALIZER};
    cond_init_monotonic(&live.done_cond);
    int sig = 0;
    for (;;) {
        if (watchdog) {
            /* half the period to wait for a signal, a quarter for the writer */
            struct timespec half = {.tv_sec = (time_t)(watchdog / 2000000),
                                    .tv_nsec = (long)(watchdog / 2 % 1000000) * 1000};
            sig = sigtimedwait(&handled, NULL, &half);
            if (sig < 0) {
                if (errno == EAGAIN)
                    watchdog_tick(store, &live, watchdog / 4);
                continue;
            }
        } else if (sigwait(&handled, &sig) != 0) {
            continue;
        }
        if (sig != SIGHUP)
            break;
        if (!tls) {
            log_info("attachd: SIGHUP received; nothing to reload (no TLS; the log is standard "
                     "error)");
        } else if (http_tls_reload(tls, err, sizeof err)) {
            metrics_inc(METRIC_TLS_RELOADS);
            log_info("attachd: SIGHUP: TLS certificate and key read again");
        } else {
            metrics_inc(METRIC_TLS_RELOAD_FAILURES);
            log_error("attachd: SIGHUP: %s; still serving with the previous certificate", err);
        }
    }
    sdnotify("STOPPING=1");
    log_info("attachd: %s received, finishing requests in flight", strsignal(sig));
    /* The order matters: requesters waiting for the hypervisor are answered
     * first, password checks still queued are refused (503), then the
     * requests finish (they may wait for the store), then the verifiers,
     * the core's workers (what they have not finished stays an intent for
     * the next start), the driver, and the store's queued writes (the
     * watchdog's last probe among them). */
    core_drain(core);
    auth_drain(auth);
    http_exporter_stop(exporter);
    exporter = NULL;
    http_stop(http);
    http = NULL;
    metrics_unregister(collect_process, NULL);
    metrics_unregister(collect_core, core);
    status = CLI_OK;
out:
    http_exporter_stop(exporter);
    http_stop(http);
    api_free(api);
    auth_free(auth);
    if (core)
        core_stop_driver(core);
    driver_close(driver);
    core_free(core);
    store_close(store);
    if (lock_fd >= 0)
        close(lock_fd);
    http_tls_free(tls);
    if (status == CLI_OK)
        log_info("attachd: stopped");
    log_buffer_stop();
    cli_done(&c);
    return status;
}
