/* commands.c: the subcommands. Each opens the store, does its work in one
 * transaction (so a refused command writes nothing), and reports. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "core/core.h"
#include "driver/driver.h"
#include "http/server.h"
#include "store/store.h"
#include "util/id.h"
#include "util/log.h"
#include "util/utf8.h"

#define DEFAULT_DB "data/attachd.db"

/* ---- helpers ---------------------------------------------------------------- */

static const char *db_path(const struct cli *c)
{
    const char *p = cli_get(c, "db");
    return p && *p ? p : DEFAULT_DB;
}

/* Create the database's folder, as `make run` and a first start expect. */
static void make_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    }
    mkdir(dir, 0755);
}

struct store *cli_open_store_at(const struct cli *c, bool create_dir)
{
    char err[512];
    const char *path = db_path(c);
    const char *sync = cli_get(c, "synchronous");
    if (create_dir)
        make_parent(path);
    struct store_options o = {.path = path,
                              .synchronous_full = !sync || strcmp(sync, "normal") != 0};
    struct store *s = store_open(&o, err, sizeof err);
    if (!s)
        fprintf(stderr, "attachd: %s\n", err);
    return s;
}

bool cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < min || v > max || *s == '-')
        return false;
    *out = (unsigned)v;
    return true;
}

/* One line from stdin without its newline; false if none or empty. */
static bool read_password(char *buf, size_t size)
{
    if (!fgets(buf, (int)size, stdin))
        return false;
    size_t n = strlen(buf);
    if (n == size - 1 && buf[n - 1] != '\n')
        return false;   /* too long */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return n > 0 && utf8_valid(buf, n);
}

bool cli_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || !utf8_valid(s, n))
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Run fn in one transaction; a nonzero return from fn is an exit status. */
static int write_or_fail(struct store *s, store_write_fn fn, void *arg)
{
    int rc = store_write(s, fn, arg);
    if (rc < 0) {
        fprintf(stderr, "attachd: the database write failed (%s)\n",
                -rc == STORE_BUSY ? "database is locked" : "see the log above");
        return 1;
    }
    return rc;
}

/* Open the store, run fn in one transaction, close: the body of the small
 * commands. Returns the exit status. */
static int run_write(const struct cli *c, store_write_fn fn, void *arg)
{
    struct store *s = cli_open_store_at(c, false);
    if (!s)
        return 1;
    int status = write_or_fail(s, fn, arg);
    store_close(s);
    return status;
}

/* ---- serve -------------------------------------------------------------------- */

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

/* The demo account gets the seed page's own server and volume, attached, so
 * that its DELETE example answers 204 as written. With a hypervisor the
 * server is the demo domain (a running VM) and the volume a file,
 * hot-plugged into it. */
static bool demo_seed(struct core *core, struct driver *driver, const char *domain,
                      const char *account)
{
    struct arena ar;
    arena_init(&ar);
    struct core_ctx ctx = {.core = core, .arena = &ar, .scope = account, .account = account,
                           .home = account, .user_id = "demo", .version = 1};
    struct server_spec srv = {.id = DEMO_SERVER, .name = "demo", .image_ref = "demo-image",
                              .flavor_ref = "1"};
    struct driver_domain dom;
    struct driver_error de;
    if (driver) {
        if (driver->ops->domain_lookup(driver, domain, &dom, &de) != DRIVER_OK) {
            fprintf(stderr, "attachd: demo: no domain \"%s\" to be the demo server (%s); make "
                    "it with scripts/demo-vm start, or name one with --demo-domain\n", domain,
                    de.message);
            arena_release(&ar);
            return false;
        }
        srv.domain = &dom;
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

int cmd_serve(int argc, char **argv)
{
    struct cli_option opts[] = {
        {"listen", true, NULL, NULL, NULL}, {"db", true, NULL, NULL, NULL}, {"threads", true, NULL, NULL, NULL},
        {"timeout", true, NULL, NULL, NULL}, {"header-timeout", true, NULL, NULL, NULL},
        {"max-connections", true, NULL, NULL, NULL}, {"max-per-ip", true, NULL, NULL, NULL},
        {"synchronous", true, NULL, NULL, NULL}, {"demo", false, NULL, NULL, NULL},
        {"demo-domain", true, NULL, NULL, NULL},
        CLI_DRIVER_OPTIONS, {NULL, false, NULL, NULL, NULL},
    };
    struct cli c = {.command = "serve", .section = "serve", .options = opts};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return 2;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct http_options h = {
        .listen = cli_get(&c, "listen") ? cli_get(&c, "listen") : "127.0.0.1:8774",
        .threads = cores > 0 ? (unsigned)cores : 1, .timeout = 30, .header_timeout = 10,
        .max_connections = 1024,
        .max_per_ip = 64, .max_body = HTTP_MAX_BODY,
    };
    const char *sync = cli_get(&c, "synchronous");
    int status = 2;
    if ((cli_get(&c, "threads") && !cli_parse_uint(cli_get(&c, "threads"), 1, 256, &h.threads)) ||
        (cli_get(&c, "timeout") && !cli_parse_uint(cli_get(&c, "timeout"), 1, 3600, &h.timeout)) ||
        (cli_get(&c, "header-timeout") &&
         !cli_parse_uint(cli_get(&c, "header-timeout"), 1, 3600, &h.header_timeout)) ||
        (cli_get(&c, "max-connections") &&
         !cli_parse_uint(cli_get(&c, "max-connections"), 1, 65536, &h.max_connections)) ||
        (cli_get(&c, "max-per-ip") &&
         !cli_parse_uint(cli_get(&c, "max-per-ip"), 1, 65536, &h.max_per_ip))) {
        cli_error("serve: --threads, --timeout, --header-timeout, --max-connections and "
                  "--max-per-ip take positive whole numbers");
        goto out;
    }
    /* Every connection is a file descriptor: a cap the limit cannot hold
     * would leave clients past the limit hanging instead of refused. */
    unsigned long nofile;
    unsigned fit = http_connections_that_fit(h.threads, &nofile);
    if (cli_get(&c, "max-connections") && h.max_connections > fit) {
        cli_error("serve: --max-connections %u does not fit the open-files limit of %lu "
                  "(room for %u connections with %u threads); raise it (ulimit -n) or lower "
                  "--max-connections", h.max_connections, nofile, fit, h.threads);
        goto out;
    }
    struct sockaddr_storage addr;
    char lerr[512];
    if (http_parse_listen(h.listen, &addr, lerr, sizeof lerr) < 0) {
        cli_error("serve: %s", lerr);
        goto out;
    }
    if (sync && strcmp(sync, "full") != 0 && strcmp(sync, "normal") != 0) {
        cli_error("serve: --synchronous is full or normal");
        goto out;
    }
    struct hv_settings hv;
    if (!cli_hv_settings(&c, &hv))
        goto out;
    status = 1;
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

    bool failed;
    struct driver *driver = cli_open_driver(&hv, &failed);
    if (failed)
        goto out;
    struct store *store = cli_open_store_at(&c, true);
    struct core *core = store ? core_new(store) : NULL;
    if (core && driver) {
        /* before listening: every intent a crash left is settled */
        struct core_options o;
        char err[256];
        cli_core_options(&hv, true, &o);
        if (!core_start_driver(core, driver, &o, err, sizeof err)) {
            fprintf(stderr, "attachd: %s\n", err);
            core_free(core);
            core = NULL;
        }
    }
    if (!core) {
        driver_close(driver);
        store_close(store);
        goto out;
    }
    if (cli_flag(&c, "demo")) {
        struct demo d = {0};
        if (write_or_fail(store, do_demo, &d) != 0) {
            core_free(core);
            driver_close(driver);
            store_close(store);
            goto out;
        }
        const char *demo_domain = cli_get(&c, "demo-domain");
        if (d.created && demo_seed(core, driver, demo_domain ? demo_domain : "attachd-demo",
                                   d.account))
            printf("attachd: created demo account %s with user \"demo\", password \"%s\",\n"
                   "  and the seed page's server %s with volume %s attached. Try:\n"
                   "  curl -u demo:%s http://%s/servers/%s/os-volume_attachments\n"
                   "  curl -i -u demo:%s -X DELETE http://%s/servers/%s/os-volume_attachments/%s\n",
                   d.account, d.password, DEMO_SERVER, DEMO_VOLUME, d.password, h.listen,
                   DEMO_SERVER, d.password, h.listen, DEMO_SERVER, DEMO_VOLUME);
        if (d.created && driver)
            printf("  The server is the running VM \"%s\"; see its disks with\n"
                   "  virsh -c qemu:///system domblklist %s\n",
                   demo_domain ? demo_domain : "attachd-demo",
                   demo_domain ? demo_domain : "attachd-demo");
        fflush(stdout);
    }
    struct auth *auth = auth_new(store);
    struct api *api = auth ? api_new(core, store, auth) : NULL;
    if (api)
        api_set_detach_wait(api, hv.hostway_detach_wait);
    char err[512];
    struct http_server *http = api ? http_start(&h, api, err, sizeof err) : NULL;
    if (!http) {
        fprintf(stderr, "attachd: %s\n", api ? err : "out of memory");
        api_free(api);
        auth_free(auth);
        core_free(core);
        driver_close(driver);
        store_close(store);
        goto out;
    }
    log_info("attachd %s listening on %s (database %s, driver %s, %u threads, %u connections "
             "at most)", ATTACHD_VERSION, h.listen, db_path(&c), hv.kind, h.threads,
             h.max_connections);
    int sig = 0;
    while (sigwait(&handled, &sig) == 0 && sig == SIGHUP)
        log_info("attachd: SIGHUP received; nothing to reload (the log is standard error)");
    log_info("attachd: %s received, finishing requests in flight", strsignal(sig));
    /* The order matters: requesters waiting for the hypervisor are answered
     * first, then the requests finish (they may wait for the verifiers and
     * the store), then the verifiers, the core's workers (what they have not
     * finished stays an intent for the next start), the driver, and the
     * store's queued writes. */
    core_drain(core);
    http_stop(http);
    api_free(api);
    auth_free(auth);
    core_stop_driver(core);
    driver_close(driver);
    core_free(core);
    store_close(store);
    log_info("attachd: stopped");
    status = 0;
out:
    cli_done(&c);
    return status;
}

/* ---- db ----------------------------------------------------------------------- */

int cmd_db_migrate(int argc, char **argv)
{
    struct cli_option opts[] = {{"db", true, NULL, NULL, NULL}, {NULL, false, NULL, NULL, NULL}};
    struct cli c = {.command = "db migrate", .section = "db", .options = opts};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return 2;
    char err[512];
    int from, to;
    make_parent(db_path(&c));
    int rc = store_migrate(db_path(&c), &from, &to, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "attachd: %s\n", err);
    else if (from == to)
        printf("%s: schema version %d, up to date\n", db_path(&c), to);
    else
        printf("%s: schema version %d -> %d\n", db_path(&c), from, to);
    cli_done(&c);
    return rc < 0 ? 1 : 0;
}

/* ---- accounts and users ------------------------------------------------------- */

struct account_job {
    struct account account;
};

static int do_account_add(struct store_conn *w, void *arg)
{
    struct account_job *j = arg;
    enum store_rc rc = store_account_add(w, &j->account);
    if (rc == STORE_EXISTS)
        return cli_error("account add: an account with id %s or name \"%s\" exists already",
                         j->account.id, j->account.name);
    return rc == STORE_OK ? 0 : 1;
}

int cmd_account_add(int argc, char **argv)
{
    struct cli_option opts[] = {{"id", true, NULL, NULL, NULL}, {"db", true, NULL, NULL, NULL}, {NULL, false, NULL, NULL, NULL}};
    struct cli c = {.command = "account add", .section = "account", .options = opts};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return 2;
    char id[33], now[32];
    const char *given = cli_get(&c, "id"), *name = c.positional[0];
    int status = 2;
    if (given && !id_valid(given, strlen(given))) {
        cli_error("account add: --id must be 1-255 characters of A-Z a-z 0-9 . _ ~ : -");
        goto out;
    }
    if (!cli_name_ok(name)) {
        cli_error("account add: NAME must be 1-255 printable characters");
        goto out;
    }
    if (!given)
        id_hex32(id);
    store_now(now);
    struct account_job j = {{.id = given ? given : id, .name = name, .created_at = now}};
    status = run_write(&c, do_account_add, &j);
    if (status == 0)
        printf("%s\n", j.account.id);
out:
    cli_done(&c);
    return status;
}

/* account quota ACCOUNT [--instances N] ...: set the limits given (a number,
 * -1 for none, or "default"), then show them all with the account's usage. */
struct quota_job {
    const char *account_key;
    const char *account_id;
    struct arena *ar;
    struct quota set;           /* QUOTA_UNSET: "default"; unchanged where !given */
    bool given[5];
};

static int64_t *quota_field(struct quota *q, int i)
{
    int64_t *f[] = {&q->instances, &q->cores, &q->ram, &q->volumes, &q->gigabytes};
    return f[i];
}

static const char *const quota_names[] = {"instances", "cores", "ram", "volumes", "gigabytes"};

static int resolve_account(struct store_conn *w, struct arena *ar, const char *key,
                           const char **id);

static int do_account_quota(struct store_conn *w, void *arg)
{
    struct quota_job *j = arg;
    struct quota q;
    int rc = resolve_account(w, j->ar, j->account_key, &j->account_id);
    if (rc != 0)
        return rc;
    if (store_quota_get(w, j->account_id, &q) != STORE_OK)
        return 1;
    bool changed = false;
    for (int i = 0; i < 5; i++) {
        if (j->given[i]) {
            *quota_field(&q, i) = *quota_field(&j->set, i);
            changed = true;
        }
    }
    return !changed || store_quota_set(w, j->account_id, &q) == STORE_OK ? 0 : 1;
}

int cmd_account_quota(int argc, char **argv)
{
    struct cli_option opts[] = {{"instances", true, NULL, NULL, NULL}, {"cores", true, NULL, NULL, NULL},
                                {"ram", true, NULL, NULL, NULL}, {"volumes", true, NULL, NULL, NULL},
                                {"gigabytes", true, NULL, NULL, NULL}, {"db", true, NULL, NULL, NULL},
                                {NULL, false, NULL, NULL, NULL}};
    struct cli c = {.command = "account quota", .section = "account", .options = opts};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return 2;
    struct arena ar;
    arena_init(&ar);
    struct quota_job j = {.account_key = c.positional[0], .ar = &ar};
    int status = 2;
    for (int i = 0; i < 5; i++) {
        const char *v = cli_get(&c, quota_names[i]);
        if (!v)
            continue;
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!strcmp(v, "default")) {
            n = QUOTA_UNSET;
        } else if (!*v || *end || errno || n < -1 || n > INT64_MAX / 2) {
            cli_error("account quota: --%s is a whole number, -1 for no limit, or \"default\"",
                      quota_names[i]);
            goto out;
        }
        *quota_field(&j.set, i) = n;
        j.given[i] = true;
    }
    struct store *s = cli_open_store_at(&c, false);
    struct core *core = s ? core_new(s) : NULL;
    status = 1;
    if (core && (status = write_or_fail(s, do_account_quota, &j)) == 0) {
        struct core_ctx ctx = {.core = core, .arena = &ar, .scope = j.account_id,
                               .account = j.account_id, .home = j.account_id, .admin = true};
        struct limits l;
        struct core_error err;
        if (core_limits(&ctx, &l, &err)) {
            printf("%-10s %10s %10s\n", "resource", "limit", "in use");
            for (int i = 0; i < 5; i++)
                printf("%-10s %10lld %10lld\n", quota_names[i],
                       (long long)*quota_field(&l.quota, i), (long long)*quota_field(&l.used, i));
        } else {
            fprintf(stderr, "attachd: account quota: %s\n", err.message);
            status = 1;
        }
    }
    core_free(core);
    store_close(s);
out:
    arena_release(&ar);
    cli_done(&c);
    return status;
}

/* Resolve an account id or name on the writer, for the add commands. */
static int resolve_account(struct store_conn *w, struct arena *ar, const char *key,
                           const char **id)
{
    struct account a;
    enum store_rc rc = store_account_get(w, ar, key, &a);
    if (rc == STORE_NOTFOUND)
        return cli_error("unknown account \"%s\"", key);
    if (rc != STORE_OK)
        return 1;
    *id = a.id;
    return 0;
}

struct user_job {
    const char *account, *name;
    enum role role;
    char hash[crypto_pwhash_STRBYTES];
};

/* Read the new password from standard input, hash it into j->hash and run
 * fn: the tail of `user add` and `user passwd`. The password itself is wiped
 * as soon as it is hashed. */
static int with_new_password(const struct cli *c, struct user_job *j, store_write_fn fn)
{
    char password[1024];
    if (!read_password(password, sizeof password)) {
        sodium_memzero(password, sizeof password);
        return cli_error("%s: expected the password (one line, valid UTF-8) on standard input",
                         c->command);
    }
    bool hashed = sodium_init() >= 0 &&
                  auth_hash_password(password, j->hash, sizeof j->hash) == 0;
    sodium_memzero(password, sizeof password);
    return hashed ? run_write(c, fn, j) : 1;
}

static int do_user_add(struct store_conn *w, void *arg)
{
    struct user_job *j = arg;
    struct arena ar;
    arena_init(&ar);
    char now[32];
    store_now(now);
    struct user u = {.name = j->name, .role = j->role, .pwhash = j->hash, .created_at = now};
    int rc = resolve_account(w, &ar, j->account, &u.account_id);
    if (rc == 0) {
        enum store_rc src = store_user_add(w, &u);
        if (src == STORE_EXISTS)
            rc = cli_error("user add: user \"%s\" exists already", j->name);
        else if (src != STORE_OK)
            rc = 1;
    }
    arena_release(&ar);
    return rc;
}

int cmd_user_add(int argc, char **argv)
{
    struct cli_option opts[] = {{"account", true, NULL, NULL, NULL}, {"role", true, NULL, NULL, NULL},
                                {"db", true, NULL, NULL, NULL}, {NULL, false, NULL, NULL, NULL}};
    struct cli c = {.command = "user add", .section = "user", .options = opts};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return 2;
    struct user_job j = {.account = cli_get(&c, "account"), .name = c.positional[0]};
    const char *role = cli_get(&c, "role");
    int status = 2;
    if (!j.account || !role) {
        cli_error("user add: --account and --role are required");
        goto out;
    }
    if (strcmp(role, "member") != 0 && strcmp(role, "admin") != 0) {
        cli_error("user add: --role is member or admin");
        goto out;
    }
    j.role = strcmp(role, "admin") ? ROLE_MEMBER : ROLE_ADMIN;
    if (!cli_name_ok(j.name) || strchr(j.name, ':')) {
        cli_error("user add: USERNAME must be 1-255 printable characters without ':'");
        goto out;
    }
    status = with_new_password(&c, &j, do_user_add);
out:
    cli_done(&c);
    return status;
}

/* Every change to a user bumps the auth epoch in the same transaction, so
 * that running daemons drop cached credentials at once. */
static int do_user_passwd(struct store_conn *w, void *arg)
{
    struct user_job *j = arg;
    enum store_rc rc = store_user_set_pwhash(w, j->name, j->hash);
    if (rc == STORE_NOTFOUND)
        return cli_error("user passwd: unknown user \"%s\"", j->name);
    return rc == STORE_OK && store_auth_epoch_bump(w) == STORE_OK ? 0 : 1;
}

int cmd_user_passwd(int argc, char **argv)
{
    struct cli_option opts[] = {{"db", true, NULL, NULL, NULL}, {NULL, false, NULL, NULL, NULL}};
    struct cli c = {.command = "user passwd", .section = "user", .options = opts};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return 2;
    struct user_job j = {.name = c.positional[0]};
    int status = with_new_password(&c, &j, do_user_passwd);
    cli_done(&c);
    return status;
}

static int do_user_del(struct store_conn *w, void *arg)
{
    struct user_job *j = arg;
    enum store_rc rc = store_user_del(w, j->name);
    if (rc == STORE_NOTFOUND)
        return cli_error("user del: unknown user \"%s\"", j->name);
    return rc == STORE_OK && store_auth_epoch_bump(w) == STORE_OK ? 0 : 1;
}

int cmd_user_del(int argc, char **argv)
{
    struct cli_option opts[] = {{"db", true, NULL, NULL, NULL}, {NULL, false, NULL, NULL, NULL}};
    struct cli c = {.command = "user del", .section = "user", .options = opts};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return 2;
    struct user_job j = {.name = c.positional[0]};
    int status = run_write(&c, do_user_del, &j);
    cli_done(&c);
    return status;
}
