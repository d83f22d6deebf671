/* fuzz_api.c: libFuzzer harness for api_head() and api_handle(), the whole
 * API layer (router, auth, microversions, JSON bodies, queries, both
 * dialects, core, store) without the HTTP adapter.
 *
 * One temp store per process (in /dev/shm when it exists), made once in
 * LLVMFuzzerInitialize, and one core on it without a hypervisor driver (the
 * none driver: core_new(store)): accounts acct-0001 (example, the default
 * quotas), acct-0002 (other, quotas it already fills: one more server or
 * 6 GB more of volumes is over) and ops-0001 (no limits); users demo (member
 * of acct-0001), other (member of acct-0002), ops (admin), eve (member, only
 * ever sent with a wrong password); servers, volumes and attachments with
 * the ids docs/api.md uses, in every state a rule looks at (stopped,
 * suspended, locked by an admin, a task in progress, never launched, booted
 * from a volume; volumes available, in-use, in error, of several sizes): see
 * job_reset(). argon2 runs once per user; afterwards the credential cache
 * makes a valid Authorization cheap. Requests come from 192.0.2.1.
 *
 * The API never waits: api_handle() may answer API_SUSPENDED after calling
 * req->suspend() (a password check, a commit); the harness then waits for
 * req->resume() from the thread that did the work and calls api_resume(),
 * as the HTTP layer does, until API_DONE (see drive()). A request with a
 * body has api_head()'s verdict on its credentials first, as exchange.c
 * asks for it before it reads a body.
 *
 * An input is up to 4 requests separated by "\n\x1e\x1e\n", run in order
 * on the same state (so that attach-then-swap-then-detach is reachable).
 *
 * Request layout (see README.md):
 *   byte 0   method:  % 8 -> GET HEAD POST PUT DELETE PATCH OTHER GET;
 *                     bit 3: through a trusted proxy (req->host is the Host
 *                     field's first element, as exchange.c takes it from
 *                     X-Forwarded-Host, and the scheme https); bit 4: with
 *                     --public-url https://cloud.example.com/attachd
 *   byte 1   auth:    % 8 -> none, demo, ops, other, eve (wrong password),
 *                             nobody (unknown user), raw field, "Basic " + raw field
 *   byte 2   flags:   1 OpenStack-API-Version, 2 X-OpenStack-Nova-API-Version,
 *                     4 Host, 8 Content-Type: application/json; the high four
 *                     bits, when not 0: the n-th new arena chunk the request
 *                     asks for fails (oom_test_fail_after(), util/oom.h), and
 *                     its answer may then be the 503 of router.c's
 *                     answer_out_of_memory()
 *   then '\n'-separated fields: target (path[?query], percent-decoded as the
 *   daemon does), OpenStack-API-Version value, X-OpenStack-Nova-API-Version
 *   value, Host value, raw Authorization text; everything after the fifth
 *   '\n' is the body (raw bytes).
 *
 * A raw Authorization that parses as Basic credentials is replaced by the
 * canonical header of the same credentials (valid) or by the "nobody" one,
 * so that no input costs an argon2 verification (auth_parse_basic has a
 * harness of its own).
 *
 * State: after an input in which any request may have changed something (a
 * method other than GET/HEAD answered 2xx) the servers, volumes and
 * attachments are put back to the baseline in one write, so that every input
 * runs against the same data and the store never grows.
 *
 * Checks after every request's answer (abort() on failure, with the request
 * and response on stderr): see drive() and check_response() (links:
 * check_links(); GET /metrics: check_exposition()); after an input
 * that changed something, no account uses more than its quotas allow
 * (check_quotas()).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/call.h"
#include "auth/auth.h"
#include "core/core.h"
#include "http/query.h"
#include "store/sqlite_int.h"
#include "store/store.h"
#include "util/arena.h"
#include "util/id.h"
#include "util/log.h"
#include "util/oom.h"

#define MAX_KV 16

/* ---- the world ---------------------------------------------------------- */

static struct {
    char dir[96];
    char path[160];
    struct store *store;
    struct core *core;
    struct auth *auth;
    struct api *api;
    struct sockaddr_in client;
    char *hdr_demo, *hdr_ops, *hdr_other, *hdr_eve, *hdr_nobody;
    unsigned long runs, resets;
    bool allow_fallback;        /* FUZZ_API_ALLOW contains "fallback": its known causes */
    bool allow_dialect;         /* FUZZ_API_ALLOW contains "dialect": unroutable paths */
    bool allow_oom_call;        /* FUZZ_API_ALLOW contains "oom-call": see one_request() */
    bool trace;                 /* FUZZ_API_TRACE set: one line per input */
} W;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_api: setup failed: %s\n", what);
    abort();
}

static char *basic_header(const char *user, const char *password)
{
    char raw[256];
    snprintf(raw, sizeof raw, "%s:%s", user, password);
    size_t n = strlen(raw);
    size_t b64len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64len);
    sodium_bin2base64(b64, b64len, (const unsigned char *)raw, n, sodium_base64_VARIANT_ORIGINAL);
    char *h = malloc(b64len + 8);
    snprintf(h, b64len + 8, "Basic %s", b64);
    free(b64);
    return h;
}

static int job_account(struct store_conn *w, void *arg)
{
    return (int)store_account_add(w, arg);
}

static int job_user(struct store_conn *w, void *arg)
{
    return (int)store_user_add(w, arg);
}

struct quota_job {
    const char *account;
    struct quota q;
};

static int job_quota(struct store_conn *w, void *arg)
{
    struct quota_job *j = arg;
    return (int)store_quota_set(w, j->account, &j->q);
}

/* An account and its quotas (NULL: none set, Nova's and Cinder's defaults). */
static void add_account(const char *id, const char *name, const struct quota *q)
{
    char now[32];
    store_now(now);
    struct account a = {.id = id, .name = name, .created_at = now};
    if (store_write(W.store, job_account, &a) != 0)
        die("account");
    struct quota_job j = {.account = id};
    if (q) {
        j.q = *q;
        if (store_write(W.store, job_quota, &j) != 0)
            die("quota");
    }
}

static void add_user(const char *name, const char *account, const char *pw, enum role role)
{
    char now[32], hash[crypto_pwhash_STRBYTES];
    store_now(now);
    if (auth_hash_password(pw, hash, sizeof hash) != 0)
        die("hash");
    struct user u = {.name = name, .account_id = account, .pwhash = hash, .created_at = now,
                     .role = role};
    if (store_write(W.store, job_user, &u) != 0)
        die("user");
}

/* The baseline: what every input starts from. */
static int job_reset(struct store_conn *w, void *arg)
{
    (void)arg;
    if (sqlite3_exec(sq_conn_of(w)->db, "DELETE FROM attachments; DELETE FROM servers; DELETE FROM volumes;",
                     NULL, NULL, NULL) != SQLITE_OK)
        return 1;
    char now[32];
    store_now(now);
    static const struct {
        const char *id, *account, *name, *vm_state, *image, *key, *metadata, *locked_by;
        int power;
    } servers[] = {
        {"test-server-0013", "acct-0001", "web", "active", "img", "key1", "{\"role\":\"web\"}",
         NULL, 1},
        {"test-server-0014", "acct-0001", "db", "active", "", NULL, "{}", NULL, 1},
        {"test-server-0099", "acct-0001", "old-web", "stopped", "img", NULL, "{}", NULL, 4},
        {"test-server-0098", "acct-0001", "old-db", "active", "img", NULL, "{}", "admin", 1},
        {"test-server-0097", "acct-0001", "sleepy", "suspended", "img", NULL, "{}", NULL, 7},
        {"test-server-0096", "acct-0001", "busy", "active", "img", NULL, "{}", NULL, 1},
        {"test-server-0095", "acct-0001", "unlaunched", "active", "img", NULL, "{}", NULL, 1},
        {"srv-b-0001", "acct-0002", "b-web", "active", "img", NULL, "{}", NULL, 1},
    };
    for (size_t i = 0; i < sizeof servers / sizeof servers[0]; i++) {
        struct server s = {
            .id = servers[i].id, .account_id = servers[i].account, .user_id = "demo",
            .name = servers[i].name, .vm_state = servers[i].vm_state,
            .power_state = servers[i].power, .locked = servers[i].locked_by != NULL,
            .locked_by = servers[i].locked_by, .image_ref = servers[i].image, .flavor_ref = "1",
            .availability_zone = "nova", .key_name = servers[i].key,
            .metadata = servers[i].metadata, .created_at = now, .updated_at = now,
            .launched_at = strcmp(servers[i].id, "test-server-0095") ? now : NULL,
            .task_state = strcmp(servers[i].id, "test-server-0096") ? NULL : "deleting",
        };
        if (store_server_add(w, &s) != STORE_OK)
            return 1;
    }
    static const struct {
        const char *id, *account, *name, *status, *metadata;
        int64_t size;
    } volumes[] = {
        {"hbs2012May03_0OxRg0Jz7", "acct-0001", NULL, "in-use", "{}", 1},
        {"hbs2012May08_61EfdIZ3Y", "acct-0001", "data", "available", "{}", 10},
        {"vol-0003", "acct-0001", "spare", "available", "{}", 10},
        {"vol-0004", "acct-0001", "boot", "in-use", "{}", 1},
        {"vol-0005", "acct-0001", "scratch", "available", "{\"k\":\"v\"}", 1},
        {"vol-0006", "acct-0001", "broken", "error", "{}", 5},
        {"vol-0007", "acct-0001", "big", "in-use", "{}", 20},
        {"vol-b-0001", "acct-0002", "b-data", "available", "{}", 5},
    };
    for (size_t i = 0; i < sizeof volumes / sizeof volumes[0]; i++) {
        struct volume v = {
            .id = volumes[i].id, .account_id = volumes[i].account, .name = volumes[i].name,
            .size = volumes[i].size, .status = volumes[i].status, .availability_zone = "nova",
            .metadata = volumes[i].metadata, .created_at = now, .updated_at = now,
        };
        if (store_volume_add(w, &v) != STORE_OK)
            return 1;
    }
    static const struct {
        const char *id, *bdm, *server, *volume, *device, *tag;
        int boot_index;
    } attachments[] = {
        {"6f1d0e46-4a5e-4d8e-9a57-000000000001", "6f1d0e46-4a5e-4d8e-9a57-0000000000b1",
         "test-server-0013", "hbs2012May03_0OxRg0Jz7", "/dev/vdb", "t1", -1},
        {"6f1d0e46-4a5e-4d8e-9a57-000000000002", "6f1d0e46-4a5e-4d8e-9a57-0000000000b2",
         "test-server-0014", "vol-0004", "/dev/vda", NULL, 0},
        {"6f1d0e46-4a5e-4d8e-9a57-000000000003", "6f1d0e46-4a5e-4d8e-9a57-0000000000b3",
         "test-server-0013", "vol-0007", "/dev/vdc", NULL, -1},
    };
    for (size_t i = 0; i < sizeof attachments / sizeof attachments[0]; i++) {
        struct attachment a = {
            .id = attachments[i].id, .bdm_uuid = attachments[i].bdm,
            .server_id = attachments[i].server, .volume_id = attachments[i].volume,
            .device = attachments[i].device, .tag = attachments[i].tag,
            .boot_index = attachments[i].boot_index, .created_at = now,
        };
        if (store_attachment_add(w, &a) != STORE_OK)
            return 1;
    }
    return 0;
}

static void reset_state(void)
{
    if (store_write(W.store, job_reset, NULL) != 0)
        die("reset");
    W.resets++;
}

static void cleanup(void)
{
    if (W.api)
        api_free(W.api);
    if (W.auth)
        auth_free(W.auth);
    if (W.core)
        core_free(W.core);
    if (W.store)
        store_close(W.store);
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[200];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", W.path, suffix[i]);
        unlink(p);
    }
    rmdir(W.dir);
    free(W.hdr_demo);
    free(W.hdr_ops);
    free(W.hdr_other);
    free(W.hdr_eve);
    free(W.hdr_nobody);
    W.api = NULL;
    W.core = NULL;
    W.auth = NULL;
    W.store = NULL;
}

/* A crash ends the process without atexit(): remove the stores of fuzz_api
 * processes that are gone ("attachd-fuzz-<pid>-XXXXXX"). */
static void sweep_stale(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        char rest[32];
        if (sscanf(e->d_name, "attachd-fuzz-%ld-%31s", &pid, rest) != 2 || pid <= 0 ||
            strlen(rest) != 6 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        static const char *const files[] = {"attachd.db", "attachd.db-wal", "attachd.db-shm",
                                            "attachd.db-journal"};
        char p[512];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(p, sizeof p, "%s/%s/%s", base, e->d_name, files[i]);
            unlink(p);
        }
        snprintf(p, sizeof p, "%s/%s", base, e->d_name);
        rmdir(p);
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        die("sodium_init");
    log_set_level(LOG_WARN);
    const char *allow = getenv("FUZZ_API_ALLOW");
    W.allow_fallback = allow && strstr(allow, "fallback");
    W.allow_dialect = allow && strstr(allow, "dialect");
    W.allow_oom_call = allow && strstr(allow, "oom-call");
    W.trace = getenv("FUZZ_API_TRACE") != NULL;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    sweep_stale(base);
    snprintf(W.dir, sizeof W.dir, "%s/attachd-fuzz-%ld-XXXXXX", base, (long)getpid());
    if (!mkdtemp(W.dir))
        die("mkdtemp");
    snprintf(W.path, sizeof W.path, "%s/attachd.db", W.dir);
    char err[256] = "";
    struct store_options opts = {.path = W.path, .synchronous_full = false};
    W.store = store_open(&opts, err, sizeof err);
    if (!W.store)
        die(err);
    atexit(cleanup);
    /* acct-0002 has one m1.tiny server and a 5 GB volume: another server
     * is over its instances, a volume over 5 GB over its gigabytes */
    static const struct quota tight = {1, 2, 1024, 2, 10};
    static const struct quota unlimited = {-1, -1, -1, -1, -1};
    add_account("acct-0001", "example", NULL);
    add_account("acct-0002", "other", &tight);
    add_account("ops-0001", "operations", &unlimited);
    add_user("demo", "acct-0001", "secret", ROLE_MEMBER);
    add_user("other", "acct-0002", "other-secret", ROLE_MEMBER);
    add_user("ops", "ops-0001", "0ps-secret", ROLE_ADMIN);
    add_user("eve", "acct-0002", "eve-secret", ROLE_MEMBER);
    reset_state();
    W.core = core_new(W.store);
    W.auth = auth_new(W.store);
    W.api = W.core && W.auth ? api_new(W.core, W.store, W.auth) : NULL;
    W.client = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(40000),
                                    .sin_addr.s_addr = htonl(0xc0000201)};
    if (!W.api)
        die("api_new");
    W.hdr_demo = basic_header("demo", "secret");
    W.hdr_ops = basic_header("ops", "0ps-secret");
    W.hdr_other = basic_header("other", "other-secret");
    W.hdr_eve = basic_header("eve", "wrong");
    W.hdr_nobody = basic_header("nobody", "x");
    return 0;
}

/* ---- the fake HTTP request ------------------------------------------------ */

struct kv {
    char *name, *value;
};

struct fake {
    struct kv headers[MAX_KV];
    int n_headers;
    struct http_query query;    /* parsed by the daemon's own code (http/query.h) */
    /* the API's suspension hooks: resume() comes from another thread */
    pthread_mutex_t lock;
    pthread_cond_t resumed_cond;
    int suspended, resumed;
};

static void fake_suspend(struct request *req)
{
    struct fake *f = req->http;
    pthread_mutex_lock(&f->lock);
    f->suspended++;
    pthread_mutex_unlock(&f->lock);
}

static void fake_resume(struct request *req)
{
    struct fake *f = req->http;
    pthread_mutex_lock(&f->lock);
    f->resumed++;
    pthread_cond_signal(&f->resumed_cond);
    pthread_mutex_unlock(&f->lock);
}

static const char *fake_header(void *http, const char *name)
{
    struct fake *f = http;
    for (int i = 0; i < f->n_headers; i++)
        if (!strcasecmp(f->headers[i].name, name))
            return f->headers[i].value;
    return NULL;
}

/* The query as exchange.c hands it to the API (http/query.h). */
static const char *fake_query(void *http, const char *name)
{
    struct fake *f = http;
    return http_query_get(&f->query, name);
}

static bool fake_each_query(void *http, bool (*fn)(void *cls, const char *key, const char *value),
                            void *cls)
{
    struct fake *f = http;
    for (size_t i = 0; i < f->query.n; i++)
        if (!fn(cls, f->query.args[i].key, f->query.args[i].value ? f->query.args[i].value : ""))
            return false;
    return true;
}

/* A header value as libmicrohttpd hands it over: no CR, LF or NUL, no
 * leading or trailing blanks. */
static char *header_value(struct arena *ar, const char *s, size_t n)
{
    char *v = arena_alloc(ar, n + 1), *o = v;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n' && s[i] != '\0')
            *o++ = s[i];
    *o = '\0';
    char *start = v;
    while (*start == ' ' || *start == '\t')
        start++;
    while (o > start && (o[-1] == ' ' || o[-1] == '\t'))
        *--o = '\0';
    return start;
}

/* ---- what a response must look like -------------------------------------- */

static const char seed_401[] =
    "401 Unauthorized\n"
    "This server could not verify that you are authorized to\n"
    "access the document you requested.  Either you supplied the\n"
    "wrong credentials (e.g., bad password), or your browser\n"
    "does not understand how to supply the credentials required.\n";

static const char *nova_name(int status)
{
    switch (status) {
    case 400: return "badRequest";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "itemNotFound";
    case 405: return "badMethod";
    case 409: return "conflictingRequest";
    case 413: case 429: return "overLimit";
    case 415: return "badMediaType";
    case 501: return "notImplemented";
    case 503: return "serviceUnavailable";
    default: return "computeFault";
    }
}

static const char *hostway_title(int status)
{
    switch (status) {
    case 400: return "Bad request";
    case 403: return "Forbidden";
    case 404: return "Resource not found";
    case 405: return "Method not allowed";
    case 406: return "Not acceptable";
    case 409: return "Conflict";
    case 413: return "Request entity too large";
    case 415: return "Unsupported media type";
    case 501: return "Not implemented";
    case 429: return "Too many requests";
    case 503: return "Service unavailable";
    default: return "Internal server error";
    }
}

static bool is_uuid4(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

struct exchange {
    const char *method_name;
    enum method method;
    const char *target;         /* as the fuzzer wrote it */
    const char *path;           /* decoded, without the query */
    struct fake *fake;
    const char *request_id;
    const char *body;
    size_t body_len;
    struct response *res;
    int oom_at;                 /* the request's n-th new arena chunk failed (0: none) */
    const char *base;           /* what every link must begin with */
    struct arena *ar;
};

static const char *res_header(const struct response *res, const char *name)
{
    for (int i = 0; i < res->n_headers; i++)
        if (res->headers[i].name && !strcasecmp(res->headers[i].name, name))
            return res->headers[i].value;
    return NULL;
}

static void printable(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\\')
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

static void fail(const struct exchange *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void fail(const struct exchange *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n==== fuzz_api: CHECK FAILED: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n---- request: %s ", x->method_name);
    printable(stderr, x->path, strlen(x->path));
    fprintf(stderr, "\n");
    for (int i = 0; i < x->fake->n_headers; i++) {
        fprintf(stderr, "  %s: ", x->fake->headers[i].name);
        printable(stderr, x->fake->headers[i].value, strlen(x->fake->headers[i].value));
        fprintf(stderr, "\n");
    }
    for (size_t i = 0; i < x->fake->query.n; i++) {
        const struct http_query_arg *q = &x->fake->query.args[i];
        fprintf(stderr, "  ?");
        printable(stderr, q->key, strlen(q->key));
        if (q->value) {
            fprintf(stderr, "=");
            printable(stderr, q->value, strlen(q->value));
        }
        fprintf(stderr, "\n");
    }
    fprintf(stderr, "  body (%zu bytes): ", x->body_len);
    printable(stderr, x->body ? x->body : "", x->body_len > 2000 ? 2000 : x->body_len);
    const struct response *res = x->res;
    fprintf(stderr, "\n---- response: %d, content-type %s\n", res->status,
            res->content_type ? res->content_type : "(none)");
    for (int i = 0; i < res->n_headers; i++)
        fprintf(stderr, "  %s: %s\n", res->headers[i].name ? res->headers[i].name : "(null)",
                res->headers[i].value ? res->headers[i].value : "(null)");
    fprintf(stderr, "  body (%zu bytes): ", res->body_len);
    if (res->body)
        printable(stderr, res->body, res->body_len > 4000 ? 4000 : res->body_len);
    fprintf(stderr, "\n====\n");
    abort();
}

/* The dialect the path asks for: "/v2.1[/...]" and "/v3[/...]" are Nova's
 * error shape, "/image[/...]" Glance's, everything else Hostway's (router.c
 * step 1). */
static bool nova_path(const char *p)
{
    return !strcmp(p, "/v2.1") || !strncmp(p, "/v2.1/", 6) || !strcmp(p, "/v3") ||
           !strncmp(p, "/v3/", 4);
}

static bool glance_path(const char *p)
{
    return !strcmp(p, "/image") || !strncmp(p, "/image/", 7);
}

/* Glance's (webob's) error: {"message": "...<br /><br />\n\n\n",
 * "code": "<status> <title>", "title": "<title>"}, in that order. */
static void check_glance_error(const struct exchange *x, json_t *j)
{
    static const char *const order[] = {"message", "code", "title"};
    if (!json_is_object(j) || json_object_size(j) != 3)
        fail(x, "a Glance error body must be an object with three members");
    void *it = json_object_iter(j);
    for (int i = 0; i < 3; i++, it = json_object_iter_next(j, it))
        if (!it || !json_is_string(json_object_iter_value(it)) ||
            strcmp(json_object_iter_key(it), order[i]) != 0)
            fail(x, "Glance error member %d is not the string %s", i, order[i]);
    const char *message = json_string_value(json_object_get(j, "message"));
    const char *code = json_string_value(json_object_get(j, "code"));
    const char *title = json_string_value(json_object_get(j, "title"));
    size_t n = strlen(message), tail = strlen("<br /><br />\n\n\n");
    if (n < tail || strcmp(message + n - tail, "<br /><br />\n\n\n") != 0)
        fail(x, "a Glance error message must end as webob's does");
    char want[64];
    snprintf(want, sizeof want, "%d %s", x->res->status, title);
    if (strcmp(code, want) != 0)
        fail(x, "Glance error code %s, want %s", code, want);
}

/* A path router.c cannot split: an empty segment (other than one trailing
 * slash) or more than 16 segments. It is answered in the Hostway dialect
 * even under /v2.1 (a known finding; FUZZ_API_ALLOW=dialect skips it). */
static bool unroutable(const char *p)
{
    if (*p != '/')
        return false;
    int segments = 0;
    for (const char *s = p; *s; s++) {
        if (*s != '/')
            continue;
        if (s[1] == '/')
            return true;
        if (s[1] != '\0')
            segments++;
    }
    return segments > 16;
}

/* The last non-empty segment of the path is `seg` (ignoring one trailing /). */
static bool last_segment_is(const char *path, const char *seg)
{
    size_t n = strlen(path);
    if (n && path[n - 1] == '/')
        n--;
    size_t m = strlen(seg);
    return n > m && path[n - m - 1] == '/' && !strncmp(path + n - m, seg, m);
}

static bool utf8(const char *s)
{
    json_t *j = json_string(s);     /* NULL unless valid UTF-8 */
    json_decref(j);
    return j != NULL;
}

/* The causes of a fallback body found so far (README.md, findings): a
 * microversion header or a marker that is not UTF-8, echoed into the
 * message; or a body big enough for py_repr() to cut a character in two. */
static bool known_fallback(const struct exchange *x)
{
    static const char *const names[] = {"OpenStack-API-Version", "X-OpenStack-Nova-API-Version"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = fake_header(x->fake, names[i]);
        if (v && !utf8(v))
            return true;
    }
    const char *marker = fake_query(x->fake, "marker");
    if (marker && !utf8(marker))
        return true;
    return x->body_len >= 256;
}

static void check_error_body(const struct exchange *x, json_t *j)
{
    const struct response *res = x->res;
    int status = res->status;
    if (glance_path(x->path)) {
        check_glance_error(x, j);
        return;
    }
    if (!json_is_object(j) || json_object_size(j) != 1)
        fail(x, "an error body must be an object with exactly one key");
    const char *name = json_object_iter_key(json_object_iter(j));
    json_t *inner = json_object_iter_value(json_object_iter(j));
    if (!json_is_object(inner))
        fail(x, "the error's value must be an object");
    json_t *code = json_object_get(inner, "code");
    json_t *message = json_object_get(inner, "message");
    if (!json_is_integer(code) || json_integer_value(code) != status)
        fail(x, "error code must be the status %d", status);
    if (!json_is_string(message))
        fail(x, "error message must be a string");
    if (!strcmp(json_string_value(message), "The request could not be handled.")) {
        /* dialect.c's fallback when the real message is not valid UTF-8:
         * neither Nova's text nor, in the Hostway dialect, Hostway's shape */
        if (W.allow_fallback && known_fallback(x))
            return;
        fail(x, "fallback error body: the real message could not be encoded");
    }
    bool nova = nova_path(x->path);
    bool looks_hostway = json_object_get(inner, "errorid") != NULL;
    if (looks_hostway == nova && !(W.allow_dialect && unroutable(x->path)))
        fail(x, "error body in the wrong dialect (path asks for %s)", nova ? "Nova" : "Hostway");
    if (!looks_hostway) {
        /* Nova: {"<name>": {"code": N, "message": "..."}} (+ retryAfter on 429) */
        if (strcmp(name, nova_name(status)) != 0)
            fail(x, "Nova fault name %s, want %s", name, nova_name(status));
        /* retryAfter: a throttle's 429, and Cinder's OverLimit 413 */
        size_t want = 2 + ((status == 429 || status == 413) &&
                                   json_object_get(inner, "retryAfter") ? 1 : 0);
        if (json_object_size(inner) != want)
            fail(x, "Nova fault has %zu members, want %zu", json_object_size(inner), want);
    } else {
        /* Hostway: message, code, details, errorid, in that order */
        static const char *const order[] = {"message", "code", "details", "errorid"};
        const char *want_name = status == 409 ? "conflict" : nova_name(status);
        if (strcmp(name, want_name) != 0)
            fail(x, "Hostway fault name %s, want %s", name, want_name);
        if (json_object_size(inner) != 4)
            fail(x, "Hostway fault has %zu members, want 4", json_object_size(inner));
        void *it = json_object_iter(inner);
        for (int i = 0; i < 4; i++, it = json_object_iter_next(inner, it))
            if (!it || strcmp(json_object_iter_key(it), order[i]) != 0)
                fail(x, "Hostway fault member %d is not %s", i, order[i]);
        json_t *details = json_object_get(inner, "details");
        if (!json_is_string(details))
            fail(x, "Hostway details must be a string");
        if (!is_uuid4(json_string_value(json_object_get(inner, "errorid"))))
            fail(x, "Hostway errorid must be a UUID4");
        if (status == 404 && (strcmp(json_string_value(message), "Resource not found") != 0 ||
                              *json_string_value(details) != '\0'))
            fail(x, "Hostway 404 must be the seed's body");
        /* the title: the status's, or one of the few dialect.c names */
        const char *title = json_string_value(message);
        if (strcmp(title, hostway_title(status)) != 0 &&
            strcmp(title, "VolumeAlreadyAttached") != 0 && strcmp(title, "VolumeInUse") != 0 &&
            !(strcmp(title, "Quota exceeded") == 0 && (status == 413 || status == 403)))
            fail(x, "Hostway title \"%s\" for %d", title, status);
    }
}

/* GET .../limits: {"limits": {"rate": [], "absolute": {...}}}, every
 * absolute value an integer, and no usage above its limit: a quota is
 * checked in the transaction that creates, and the fixture starts within
 * every limit. */
static void check_limits(const struct exchange *x, json_t *j)
{
    json_t *limits = json_object_get(j, "limits");
    json_t *absolute = json_object_get(limits, "absolute");
    if (json_object_size(j) != 1 || !json_is_object(limits) ||
        !json_is_array(json_object_get(limits, "rate")) || !json_is_object(absolute))
        fail(x, "limits: not {\"limits\": {\"rate\": [], \"absolute\": {...}}}");
    const char *k;
    json_t *v;
    json_object_foreach(absolute, k, v)
        if (!json_is_integer(v))
            fail(x, "limits: %s is not an integer", k);
    static const char *const pairs[][2] = {
        {"maxTotalInstances", "totalInstancesUsed"}, {"maxTotalCores", "totalCoresUsed"},
        {"maxTotalRAMSize", "totalRAMUsed"}, {"maxTotalVolumes", "totalVolumesUsed"},
        {"maxTotalVolumeGigabytes", "totalGigabytesUsed"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        json_t *max = json_object_get(absolute, pairs[i][0]);
        json_t *used = json_object_get(absolute, pairs[i][1]);
        if (!max != !used)
            fail(x, "limits: %s without %s", max ? pairs[i][0] : pairs[i][1],
                 max ? pairs[i][1] : pairs[i][0]);
        if (max && json_integer_value(max) >= 0 && json_integer_value(used) > json_integer_value(max))
            fail(x, "limits: %s %lld over %s %lld", pairs[i][1],
                 (long long)json_integer_value(used), pairs[i][0],
                 (long long)json_integer_value(max));
    }
}

/* Every link of an answer begins with the base the request gave: the
 * --public-url, or the scheme and the host the client named (a trusted
 * proxy's, else the Host header) when it is a plausible host, else
 * "localhost" (router.c's request_base()), then "/". */
static void check_hrefs(const struct exchange *x, json_t *v)
{
    size_t n = strlen(x->base);
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        /* (but a version's "describedby": the API's documentation) */
        json_t *rel = json_object_get(v, "rel");
        bool doc = json_is_string(rel) && !strcmp(json_string_value(rel), "describedby");
        json_object_foreach(v, k, m) {
            if (!strcmp(k, "href") && json_is_string(m) && !doc &&
                (strncmp(json_string_value(m), x->base, n) != 0 ||
                 json_string_value(m)[n] != '/'))
                fail(x, "a link %s that does not begin with %s/", json_string_value(m), x->base);
            check_hrefs(x, m);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
            check_hrefs(x, m);
    }
}

static void check_links(const struct exchange *x, json_t *body)
{
    check_hrefs(x, body);
    const char *location = res_header(x->res, "Location");
    size_t n = strlen(x->base);
    if (location && (strncmp(location, x->base, n) != 0 || location[n] != '/'))
        fail(x, "Location %s does not begin with %s/", location, x->base);
}

static bool metric_name(const char **p)
{
    const char *s = *p;
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return false;
    while (isalnum((unsigned char)*s) || *s == '_' || *s == ':')
        s++;
    *p = s;
    return true;
}

/* GET /metrics: Prometheus' text format 0.0.4, every line of it: "# HELP
 * name text", "# TYPE name type", or name{label="value",...} value. */
static void check_exposition(const struct exchange *x)
{
    const struct response *res = x->res;
    if (strcmp(res->content_type, "text/plain; version=0.0.4; charset=utf-8") != 0)
        fail(x, "metrics: content type %s", res->content_type);
    if (!res->body_len || res->body[res->body_len - 1] != '\n' ||
        memchr(res->body, '\0', res->body_len) || !utf8(arena_strndup(x->ar, res->body,
                                                                        res->body_len)))
        fail(x, "metrics: not lines of UTF-8 text");
    const char *p = res->body, *end = res->body + res->body_len;
    for (int line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *s = p;
        bool ok;
        if (!strncmp(s, "# HELP ", 7)) {
            s += 7;
            ok = metric_name(&s) && *s == ' ';
        } else if (!strncmp(s, "# TYPE ", 7)) {
            s += 7;
            ok = metric_name(&s) && *s == ' ';
            if (ok) {
                s++;
                size_t n = (size_t)(eol - s);
                ok = (n == 7 && !strncmp(s, "counter", 7)) || (n == 5 && !strncmp(s, "gauge", 5)) ||
                     (n == 9 && !strncmp(s, "histogram", 9)) ||
                     (n == 7 && !strncmp(s, "summary", 7)) || (n == 7 && !strncmp(s, "untyped", 7));
            }
        } else {
            ok = metric_name(&s);
            if (ok && *s == '{') {
                s++;
                while (ok && *s != '}') {
                    ok = (isalpha((unsigned char)*s) || *s == '_');
                    while (ok && (isalnum((unsigned char)*s) || *s == '_'))
                        s++;
                    ok = ok && s[0] == '=' && s[1] == '"';
                    if (!ok)
                        break;
                    for (s += 2; *s != '"' && s < eol; s++)
                        if (*s == '\\' && (s[1] == '\\' || s[1] == '"' || s[1] == 'n'))
                            s++;
                        else if (*s == '\\')
                            ok = false;
                    ok = ok && *s == '"';
                    s++;
                    if (ok && *s == ',')
                        s++;
                    else
                        ok = ok && *s == '}';
                }
                s++;
            }
            if (ok) {
                ok = *s == ' ';
                s++;
                char *num_end;
                if (!strncmp(s, "+Inf", 4) || !strncmp(s, "-Inf", 4))
                    num_end = (char *)s + 4;
                else if (!strncmp(s, "NaN", 3))
                    num_end = (char *)s + 3;
                else
                    strtod(s, &num_end);
                ok = ok && num_end > s && (num_end == eol || *num_end == ' ');
            }
        }
        if (!ok)
            fail(x, "metrics: line %d is not Prometheus' text format: %.*s", line,
                 (int)(eol - p), p);
        p = eol + 1;
    }
}

/* The answer of a request that ran out of memory (router.c): 503 in the
 * dialect's shape, "retry it", Retry-After: 1, the request ids. */
static void check_out_of_memory(const struct exchange *x)
{
    const struct response *res = x->res;
    const char *rid = res_header(res, "x-openstack-request-id");
    if (!rid || strcmp(rid, x->request_id) != 0 || !res_header(res, "Retry-After") ||
        strcmp(res_header(res, "Retry-After"), "1") != 0)
        fail(x, "out of memory: the request id or Retry-After: 1 missing");
    if (!res->content_type || strcmp(res->content_type, "application/json") != 0 || !res->body)
        fail(x, "out of memory: not a JSON answer");
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    if (!j)
        fail(x, "out of memory: the answer is not JSON");
    if (glance_path(x->path)) {
        check_glance_error(x, j);
        if (!strstr(json_string_value(json_object_get(j, "message")), "ran out of memory"))
            fail(x, "out of memory: not the Glance 503");
        json_decref(j);
        return;
    }
    json_t *inner = json_object_get(j, "serviceUnavailable");
    bool nova = nova_path(x->path) && !(W.allow_dialect && unroutable(x->path));
    json_t *text = json_object_get(inner, nova ? "message" : "details");
    if (json_object_size(j) != 1 || !json_is_object(inner) ||
        json_integer_value(json_object_get(inner, "code")) != 503 || !json_is_string(text) ||
        !strstr(json_string_value(text), "ran out of memory") ||
        json_object_size(inner) != (nova ? 2 : 4) ||
        (!nova && !is_uuid4(json_string_value(json_object_get(inner, "errorid")))))
        fail(x, "out of memory: not the %s shape of the 503", nova ? "Nova" : "Hostway");
    json_decref(j);
}

static void check_response(const struct exchange *x)
{
    const struct response *res = x->res;
    int status = res->status;

    if (status == 0)
        fail(x, "no status set");
    if (status < 200 || status > 599)
        fail(x, "status %d out of range", status);
    if (status == 503 && x->oom_at) {
        check_out_of_memory(x);
        return;
    }
    if (status >= 500)
        fail(x, "status %d: hostile input must not give a server error", status);

    /* headers: the request id twice, nothing NULL, nothing that cannot go
     * into an HTTP header */
    if (res->n_headers < 0 || res->n_headers > API_MAX_HEADERS)
        fail(x, "n_headers %d", res->n_headers);
    for (int i = 0; i < res->n_headers; i++) {
        const char *n = res->headers[i].name, *v = res->headers[i].value;
        if (!n || !v)
            fail(x, "a NULL header name or value");
        if (strpbrk(v, "\r\n") || strpbrk(n, "\r\n: "))
            fail(x, "header %s has a CR/LF in its value", n);
    }
    const char *rid = res_header(res, "x-openstack-request-id");
    const char *cid = res_header(res, "x-compute-request-id");
    if (!rid || !cid || strcmp(rid, x->request_id) != 0 || strcmp(cid, x->request_id) != 0)
        fail(x, "missing or wrong request-id headers");

    if ((res->body != NULL) != (res->content_type != NULL))
        fail(x, "a body needs a content type and a content type a body");
    if (!res->body && res->body_len != 0)
        fail(x, "body_len without a body");
    /* lists are cut at an item near API_MAX_ANSWER (one item may pass it) */
    if (res->body_len > API_MAX_ANSWER + (256u << 10))
        fail(x, "an answer of %zu bytes", res->body_len);

    if (status == 204) {
        if (res->body || res->body_len)
            fail(x, "204 with a body");
        return;
    }
    if (status == 401) {
        if (!res->content_type || strncmp(res->content_type, "text/plain", 10) != 0 ||
            res->body_len != sizeof seed_401 - 1 || memcmp(res->body, seed_401, res->body_len))
            fail(x, "401 must be the seed's text/plain body");
        if (!res_header(res, "WWW-Authenticate"))
            fail(x, "401 without WWW-Authenticate");
        return;
    }
    if (status == 405 && (!res_header(res, "Allow") || !*res_header(res, "Allow")))
        fail(x, "405 without Allow");
    if (status == 429 && !res_header(res, "Retry-After"))
        fail(x, "429 without Retry-After");
    /* a server's creation answers 202 with a body, and Cinder's of a volume */
    bool creates = x->method == METHOD_POST &&
                   (last_segment_is(x->path, "servers") ||
                    (!strncmp(x->path, "/v3/", 4) && last_segment_is(x->path, "volumes")));
    if (status == 202 && res->body && !creates)
        fail(x, "202 with a body (only the creation of a server or a Cinder volume answers one)");
    if (!res->body) {
        if (status >= 400)
            fail(x, "error %d without a body", status);
        return;
    }
    if (status == 200 && !strcmp(x->path, "/metrics")) {
        check_exposition(x);
        return;
    }
    if (strcmp(res->content_type, "application/json") != 0)
        fail(x, "content type %s", res->content_type);
    json_error_t e;
    json_t *j = json_loadb(res->body, res->body_len, 0, &e);
    if (!j)
        fail(x, "response is not valid JSON: %s", e.text);
    if (status >= 400)
        check_error_body(x, j);
    else if (!json_is_object(j) || json_object_size(j) < 1)
        fail(x, "a success body must be a non-empty object");
    else if (json_object_get(j, "limits"))
        check_limits(x, j);
    if (status < 400)
        check_links(x, j);
    json_decref(j);
}

/* ---- running a request ------------------------------------------------------ */

/* How long a suspended request may wait for its resume(): the work behind
 * it (an argon2 check, a commit) takes milliseconds; a lost resume() would
 * otherwise hang the fuzzer until libFuzzer's own timeout. */
#define RESUME_WAIT_SECONDS 60

/* Wait out the API's suspensions from st on, as the HTTP layer does: each
 * time it answers API_SUSPENDED, it must have called suspend() once more
 * than before; wait for the resume() from the thread that did the work,
 * then api_resume(). base: the suspend() calls before the API was called
 * (they are made on this thread; a resume() may come before the call
 * returns). The status it ends with. */
static enum api_status settle(const struct exchange *x, struct request *req, int base,
                              enum api_status st)
{
    struct fake *f = x->fake;
    for (int waits = base + 1; st == API_SUSPENDED; waits++) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += RESUME_WAIT_SECONDS;
        pthread_mutex_lock(&f->lock);
        int suspended = f->suspended;
        bool late = false;
        while (f->resumed < waits && !late)
            late = pthread_cond_timedwait(&f->resumed_cond, &f->lock, &until) != 0 &&
                   f->resumed < waits;
        pthread_mutex_unlock(&f->lock);
        if (suspended != waits)
            fail(x, "API_SUSPENDED number %d after %d calls of suspend()", waits, suspended);
        if (late)
            fail(x, "suspended, and not resumed within %d s", RESUME_WAIT_SECONDS);
        if (waits - base > 64)
            fail(x, "suspended more than 64 times");
        st = api_resume(W.api, req, x->res);
    }
    return st;
}

/* Run the request to its answer as the HTTP layer does: a request with a
 * body has api_head()'s verdict first (exchange.c), and is answered by it
 * when refused. At the end every suspend() had its one resume(). */
static void drive(const struct exchange *x, struct request *req)
{
    struct fake *f = x->fake;
    enum api_status st = API_ADMITTED;
    if (req->body_len) {
        st = settle(x, req, 0, api_head(W.api, req, x->res));
        int status = x->res->status;
        bool read = req->method == METHOD_GET || req->method == METHOD_HEAD;
        bool refused = status == 401 || status == 429 || status == 503;
        /* version discovery, and its 400 for a query that is not UTF-8 */
        bool not_utf8 = status == 400 && x->res->body &&
                        memmem(x->res->body, x->res->body_len, "Query string is not UTF-8", 25);
        bool open = !strcmp(req->path, "/healthcheck") ||
                    (read && (status == 200 || status == 300 || not_utf8));
        if (st == API_DONE && !refused && !open)
            fail(x, "api_head answered %d: it checks credentials, and answers only the "
                    "paths that need none", status);
        if (st == API_ADMITTED && x->res->status)
            fail(x, "api_head admitted with a response made (%d)", x->res->status);
    }
    if (st == API_ADMITTED) {
        pthread_mutex_lock(&f->lock);
        int base = f->suspended;
        pthread_mutex_unlock(&f->lock);
        st = settle(x, req, base, api_handle(W.api, req, x->res));
    }
    if (st != API_DONE)
        fail(x, "api_handle/api_resume answered %d", (int)st);
    pthread_mutex_lock(&f->lock);
    int suspended = f->suspended, resumed = f->resumed;
    pthread_mutex_unlock(&f->lock);
    if (suspended != resumed)
        fail(x, "answered with %d suspend() and %d resume()", suspended, resumed);
}

/* ---- the input ------------------------------------------------------------ */

/* The next '\n'-terminated field of [*p, end), advancing *p. */
static const char *field(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *s = *p;
    const uint8_t *nl = s < end ? memchr(s, '\n', (size_t)(end - s)) : NULL;
    if (!nl) {
        *len = (size_t)(end - s);
        *p = end;
    } else {
        *len = (size_t)(nl - s);
        *p = nl + 1;
    }
    return (const char *)s;
}

/* A raw Authorization that is well-formed Basic: its canonical form when it
 * names valid credentials, else the unknown user's (no argon2 per input). */
static const char *tame_authorization(const char *h)
{
    char user[AUTH_NAME_MAX + 1], pass[AUTH_HEADER_MAX];
    if (!auth_parse_basic(h, user, sizeof user, pass, sizeof pass))
        return h;
    if (!strcmp(user, "demo") && !strcmp(pass, "secret"))
        return W.hdr_demo;
    if (!strcmp(user, "ops") && !strcmp(pass, "0ps-secret"))
        return W.hdr_ops;
    if (!strcmp(user, "other") && !strcmp(pass, "other-secret"))
        return W.hdr_other;
    return W.hdr_nobody;
}

/* One request: run it, check the answer; true if it may have changed state. */
static bool one_request(const uint8_t *data, size_t size)
{
    static const struct { const char *name; enum method m; } methods[8] = {
        {"GET", METHOD_GET}, {"HEAD", METHOD_HEAD}, {"POST", METHOD_POST},
        {"PUT", METHOD_PUT}, {"DELETE", METHOD_DELETE}, {"PATCH", METHOD_PATCH},
        {"OPTIONS", METHOD_OTHER}, {"GET", METHOD_GET},
    };
    if (size < 3)
        return false;
    uint8_t msel = data[0] % 8, asel = data[1] % 8, flags = data[2];
    const uint8_t *p = data + 3, *end = data + size;

    struct arena ar;
    arena_init(&ar);
    void *slot = api_reserve(&ar);      /* first, as exchange.c's exchange_on_uri() does */
    struct fake f;
    memset(&f, 0, sizeof f);
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.resumed_cond, NULL);

    size_t n;
    const char *s = field(&p, end, &n);
    char *target = arena_strndup(&ar, s, n);        /* stops at a NUL */
    char *path = arena_strdup(&ar, target);
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    http_unescape(path);
    http_query_parse(&f.query, &ar, q);

    const char *osapi, *xnova, *host, *rawauth;
    s = field(&p, end, &n);
    osapi = header_value(&ar, s, n);
    s = field(&p, end, &n);
    xnova = header_value(&ar, s, n);
    s = field(&p, end, &n);
    host = header_value(&ar, s, n);
    s = field(&p, end, &n);
    rawauth = header_value(&ar, s, n);

    /* the body: exactly its bytes, so that an overread is caught */
    size_t body_len = (size_t)(end - p);
    char *body = NULL;
    if (body_len) {
        body = malloc(body_len);
        memcpy(body, p, body_len);
    }

    const char *authorization = NULL;
    switch (asel) {
    case 0: break;
    case 1: authorization = W.hdr_demo; break;
    case 2: authorization = W.hdr_ops; break;
    case 3: authorization = W.hdr_other; break;
    case 4: authorization = W.hdr_eve; break;
    case 5: authorization = W.hdr_nobody; break;
    case 6: authorization = tame_authorization(rawauth); break;
    case 7: authorization = tame_authorization(arena_printf(&ar, "Basic %s", rawauth)); break;
    }
    if (authorization)
        f.headers[f.n_headers++] = (struct kv){"Authorization", (char *)authorization};
    if (flags & 1)
        f.headers[f.n_headers++] = (struct kv){"OpenStack-API-Version", (char *)osapi};
    if (flags & 2)
        f.headers[f.n_headers++] = (struct kv){"X-OpenStack-Nova-API-Version", (char *)xnova};
    if (flags & 4)
        f.headers[f.n_headers++] = (struct kv){"Host", (char *)host};
    if (flags & 8)
        f.headers[f.n_headers++] = (struct kv){"Content-Type", "application/json"};

    /* how the client reached attachd (exchange.c's link_base()) */
    bool proxied = data[0] & 8, public_url = data[0] & 16;
    const char *fwd_host = NULL;
    if (proxied) {
        /* exchange.c's first_of(): the first element of X-Forwarded-Host */
        const char *v = host;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t len = strcspn(v, ", \t");
        fwd_host = len ? arena_strndup(&ar, v, len) : NULL;
    }
    const char *link_host = fwd_host ? fwd_host : (flags & 4) ? host : NULL;
    if (!link_host || !*link_host || strlen(link_host) > 255 || !utf8(link_host) ||
        strpbrk(link_host, " /\\\"<>"))
        link_host = "localhost";
    const char *base = public_url ? "https://cloud.example.com/attachd"
                                  : arena_printf(&ar, "%s://%s", proxied ? "https" : "http",
                                                 link_host);

    char uuid[UUID_STR_LEN + 1], request_id[48];
    id_uuid4(uuid);
    snprintf(request_id, sizeof request_id, "req-%s", uuid);
    struct request req = {
        .arena = &ar, .method = methods[msel].m, .path = path, .body = body,
        .body_len = body_len, .query_string = q, .header = fake_header, .query = fake_query,
        .each_query = fake_each_query, .http = &f,
        .client = (const struct sockaddr *)&W.client, .request_id = request_id,
        .suspend = fake_suspend, .resume = fake_resume, .api_state = slot,
        .scheme = proxied ? "https" : NULL, .host = fwd_host,
        .public_url = public_url ? "https://cloud.example.com/attachd" : NULL,
    };
    struct response res;
    memset(&res, 0, sizeof res);
    struct exchange x = {
        .method_name = methods[msel].name, .method = methods[msel].m, .target = target,
        .path = path, .fake = &f, .request_id = request_id, .body = body,
        .body_len = body_len, .res = &res, .oom_at = flags >> 4, .base = base, .ar = &ar,
    };
    /* Before finding 8 was fixed (README.md), api_handle() took its call
     * from the arena after the request's own copies, and an allocation
     * failure there aborted the process; FUZZ_API_ALLOW=oom-call makes no
     * allocation of such a request fail, for replaying that finding against
     * an old build. The call is now api_reserve()'s slot, taken first. */
    if (x.oom_at && W.allow_oom_call &&
        ar.inline_used + ((sizeof(struct call) + 15) & ~(size_t)15) > ARENA_INLINE)
        x.oom_at = 0;
    if (x.oom_at) {
        log_set_level(LOG_ERROR + 1);   /* "ran out of memory; answered 503" each time */
        oom_test_fail_after(x.oom_at);
    }
    drive(&x, &req);
    if (x.oom_at) {
        oom_test_fail_after(0);
        log_set_level(LOG_WARN);
    }
    if (W.trace) {
        fprintf(stderr, "fuzz_api: %s ", x.method_name);
        printable(stderr, target, strlen(target));
        fprintf(stderr, " auth=%d -> %d ", asel, res.status);
        if (res.body)
            printable(stderr, res.body, res.body_len > 160 ? 160 : res.body_len);
        fprintf(stderr, "\n");
    }
    check_response(&x);

    /* a request abandoned for memory may or may not have made its change */
    bool wrote = (req.method != METHOD_GET && req.method != METHOD_HEAD && res.status >= 200 &&
                  res.status < 300) || (x.oom_at && res.status == 503);
    free(body);
    arena_release(&ar);
    pthread_mutex_destroy(&f.lock);
    pthread_cond_destroy(&f.resumed_cond);
    return wrote;
}

/* After an input that changed something: no account uses more than its
 * quotas allow, however the requests went (the checks are in the
 * transactions that create). */
static void check_quotas(const uint8_t *data, size_t size)
{
    static const char *const accounts[] = {"acct-0001", "acct-0002", "ops-0001"};
    struct arena ar;
    arena_init(&ar);
    for (size_t i = 0; i < sizeof accounts / sizeof accounts[0]; i++) {
        struct core_ctx c = {.core = W.core, .arena = &ar, .scope = accounts[i],
                             .account = accounts[i], .home = accounts[i], .user_id = "fuzz",
                             .version = 1};
        struct limits l;
        struct core_error err;
        if (!core_limits(&c, &l, &err)) {
            fprintf(stderr, "fuzz_api: CHECK FAILED: core_limits(%s): %s\n", accounts[i],
                    err.message);
            abort();
        }
        const int64_t q[5] = {l.quota.instances, l.quota.cores, l.quota.ram, l.quota.volumes,
                              l.quota.gigabytes};
        const int64_t u[5] = {l.used.instances, l.used.cores, l.used.ram, l.used.volumes,
                              l.used.gigabytes};
        static const char *const names[] = {"instances", "cores", "ram", "volumes", "gigabytes"};
        for (int k = 0; k < 5; k++) {
            if (q[k] >= 0 && u[k] > q[k]) {
                fprintf(stderr, "\n==== fuzz_api: CHECK FAILED: after this input %s uses "
                                "%lld %s, over its quota of %lld\n---- input (%zu bytes): ",
                        accounts[i], (long long)u[k], names[k], (long long)q[k], size);
                printable(stderr, (const char *)data, size);
                fprintf(stderr, "\n");
                abort();
            }
        }
    }
    arena_release(&ar);
}

/* An input is up to MAX_REQUESTS requests separated by SEPARATOR, run in
 * order against the same state (attach, then swap, then detach...); the
 * state goes back to the baseline after the last one if any changed it. */
#define SEPARATOR "\n\x1e\x1e\n"
#define MAX_REQUESTS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    W.runs++;
    bool dirty = false;
    const uint8_t *p = data, *end = data + size;
    for (int i = 0; i < MAX_REQUESTS && p <= end; i++) {
        const uint8_t *next = NULL;
        if (i + 1 < MAX_REQUESTS)
            next = memmem(p, (size_t)(end - p), SEPARATOR, sizeof SEPARATOR - 1);
        const uint8_t *stop = next ? next : end;
        dirty |= one_request(p, (size_t)(stop - p));
        if (!next)
            break;
        p = next + sizeof SEPARATOR - 1;
    }
    if (dirty) {
        check_quotas(data, size);
        reset_state();
    }
    return 0;
}
