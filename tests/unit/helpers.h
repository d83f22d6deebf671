/* helpers.h: what the unit tests share.
 *
 *  - a real SQLite store in a fresh mkdtemp() directory, removed afterwards;
 *  - small write jobs that add accounts and users through store_write();
 *  - a fake HTTP request (headers and query arguments from tables) to drive
 *    api_handle() without a socket, and readers for its response.
 *
 * Header-only (everything static) so that each test is a single file.
 */
#ifndef ATTACHD_TEST_HELPERS_H
#define ATTACHD_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "core/core.h"
#include "http/query.h"
#include "store/store.h"
#include "util/arena.h"
#include "util/id.h"
#include "util/log.h"

/* ---- a store in a temporary directory ----------------------------------- */

struct tmp_store {
    char dir[64];
    char path[128];
    struct store *store;
};

/* Make the directory and the database path (the file is not created). */
static inline void tmp_dir_make(struct tmp_store *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/attachd-unit-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/attachd.db", t->dir);
    t->store = NULL;
}

static inline void tmp_dir_remove(struct tmp_store *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

static inline void normal_logs(void);

static inline struct store *tmp_store_open(struct tmp_store *t)
{
    char err[256] = "";
    normal_logs();
    tmp_dir_make(t);
    struct store_options opts = {.path = t->path, .synchronous_full = false};
    t->store = store_open(&opts, err, sizeof err);
    if (!t->store)
        fail_msg("store_open(%s): %s", t->path, err);
    return t->store;
}

static inline void tmp_store_close(struct tmp_store *t)
{
    store_close(t->store);
    t->store = NULL;
    tmp_dir_remove(t);
}

/* ---- write jobs ----------------------------------------------------------- */

static inline int job_add_account(struct store_conn *w, void *arg)
{
    return (int)store_account_add(w, arg);
}

static inline int job_add_user(struct store_conn *w, void *arg)
{
    return (int)store_user_add(w, arg);
}

static inline int job_bump_epoch(struct store_conn *w, void *arg)
{
    (void)arg;
    return (int)store_auth_epoch_bump(w);
}

/* Bumps the epoch, then refuses (9): the bump is rolled back with the job. */
static inline int job_bump_epoch_then_fail(struct store_conn *w, void *arg)
{
    (void)arg;
    return store_auth_epoch_bump(w) == STORE_OK ? 9 : -1;
}

static inline int job_unlimited_quota(struct store_conn *w, void *arg)
{
    struct quota q = {-1, -1, -1, -1, -1};
    return (int)store_quota_set(w, arg, &q);
}

/* An account, in one transaction of its own, with the default quotas. */
static inline void add_bare_account(struct store *s, const char *id, const char *name)
{
    char now[32];
    store_now(now);
    struct account a = {.id = id, .name = name, .created_at = now};
    assert_int_equal(store_write(s, job_add_account, &a), 0);
}

/* An account without quotas (the quota tests set their own). */
static inline void add_account(struct store *s, const char *id, const char *name)
{
    add_bare_account(s, id, name);
    assert_int_equal(store_write(s, job_unlimited_quota, (void *)id), 0);
}

/* Hashing is argon2id (~20 ms and more under sanitizers): add few users. */
static inline void add_user(struct store *s, const char *name, const char *account,
                            const char *password, enum role role)
{
    char now[32], hash[crypto_pwhash_STRBYTES];
    store_now(now);
    assert_int_equal(auth_hash_password(password, hash, sizeof hash), 0);
    struct user u = {.name = name, .account_id = account, .pwhash = hash, .created_at = now,
                     .role = role};
    assert_int_equal(store_write(s, job_add_user, &u), 0);
}

/* "Basic base64(user:password)" in ar. */
static inline char *basic_header(struct arena *ar, const char *user, const char *password)
{
    char *raw = arena_printf(ar, "%s:%s", user, password);
    size_t n = strlen(raw);
    size_t b64len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = arena_alloc(ar, b64len);
    sodium_bin2base64(b64, b64len, (const unsigned char *)raw, n, sodium_base64_VARIANT_ORIGINAL);
    return arena_printf(ar, "Basic %s", b64);
}

/* ---- a fake HTTP request ------------------------------------------------- */

#define FAKE_MAX 16

struct fake_kv {
    const char *name, *value;
};

struct fake {
    struct arena arena;
    pthread_mutex_t lock;
    pthread_cond_t resumed_cond;
    int suspended, resumed;             /* calls of the API's hooks */
    struct fake_kv headers[FAKE_MAX];
    int n_headers;
    char query_string[512];             /* as sent (req.query_string) */
    struct http_query args;             /* parsed by the daemon's code, once asked for */
    bool args_parsed;
    char request_id[48];
    struct request req;
    struct response res;
};

static inline const char *fake_header_cb(void *http, const char *name)
{
    struct fake *f = http;
    for (int i = 0; i < f->n_headers; i++)
        if (!strcasecmp(f->headers[i].name, name))
            return f->headers[i].value;
    return NULL;
}

/* The query's arguments as exchange.c hands them to the API. */
static inline const struct http_query *fake_args(struct fake *f)
{
    if (!f->args_parsed)
        http_query_parse(&f->args, &f->arena, f->req.query_string);
    f->args_parsed = true;
    return &f->args;
}

static inline const char *fake_query_cb(void *http, const char *name)
{
    return http_query_get(fake_args(http), name);
}

static inline bool fake_each_query_cb(void *http,
                                      bool (*fn)(void *cls, const char *key, const char *value),
                                      void *cls)
{
    const struct http_query *q = fake_args(http);
    for (size_t i = 0; i < q->n; i++)
        if (!fn(cls, q->args[i].key, q->args[i].value ? q->args[i].value : ""))
            return false;
    return true;
}

/* The API's suspension hooks: resume() may come from any thread. */
static inline void fake_suspend_cb(struct request *req)
{
    struct fake *f = req->http;
    pthread_mutex_lock(&f->lock);
    f->suspended++;
    pthread_mutex_unlock(&f->lock);
}

static inline void fake_resume_cb(struct request *req)
{
    struct fake *f = req->http;
    pthread_mutex_lock(&f->lock);
    f->resumed++;
    pthread_cond_signal(&f->resumed_cond);
    pthread_mutex_unlock(&f->lock);
}

/* f must not move after this (the request points into it). */
static inline void fake_init(struct fake *f, enum method method, const char *path,
                             const char *body)
{
    memset(f, 0, sizeof *f);
    arena_init(&f->arena);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->resumed_cond, NULL);
    char uuid[UUID_STR_LEN + 1];
    id_uuid4(uuid);
    snprintf(f->request_id, sizeof f->request_id, "req-%s", uuid);
    f->req = (struct request){
        .arena = &f->arena, .method = method, .path = path, .body = body,
        .body_len = body ? strlen(body) : 0, .header = fake_header_cb, .query = fake_query_cb,
        .each_query = fake_each_query_cb, .http = f, .request_id = f->request_id,
        .suspend = fake_suspend_cb, .resume = fake_resume_cb,
    };
}

static inline void fake_header(struct fake *f, const char *name, const char *value)
{
    assert_true(f->n_headers < FAKE_MAX);
    f->headers[f->n_headers++] = (struct fake_kv){name, value};
}

/* name and value as sent: nothing is escaped. */
static inline void fake_query(struct fake *f, const char *name, const char *value)
{
    size_t len = strlen(f->query_string);
    int n = snprintf(f->query_string + len, sizeof f->query_string - len, "%s%s=%s",
                     len ? "&" : "", name, value);
    assert_true(n > 0 && (size_t)n < sizeof f->query_string - len);
    f->req.query_string = f->query_string;
}

/* Wait out the suspensions of a call that answered st, resuming it after
 * each as the HTTP layer does; the status it ends with. base: f->suspended
 * before the call (suspend() is called on the caller's thread, but a resume
 * may come before the call returns). */
static inline enum api_status fake_settle(struct api *a, struct fake *f, int base,
                                          enum api_status st)
{
    for (int waits = base + 1; st == API_SUSPENDED; waits++) {
        pthread_mutex_lock(&f->lock);
        int suspended = f->suspended;
        while (f->resumed < waits)
            pthread_cond_wait(&f->resumed_cond, &f->lock);
        pthread_mutex_unlock(&f->lock);
        assert_int_equal(suspended, waits);     /* suspend() came before the answer */
        st = api_resume(a, &f->req, &f->res);
    }
    assert_int_equal(f->suspended, f->resumed);
    return st;
}

/* Run the request to its answer, as the HTTP layer does: each time the API
 * suspends it, wait for its resume() and go on. */
static inline void fake_run(struct api *a, struct fake *f)
{
    memset(&f->res, 0, sizeof f->res);
    int base = f->suspended;
    enum api_status st = api_handle(a, &f->req, &f->res);
    assert_int_equal(fake_settle(a, f, base, st), API_DONE);
}

static inline void fake_release(struct fake *f)
{
    arena_release(&f->arena);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->resumed_cond);
}

/* A response header (case-insensitive name), NULL if absent. */
static inline const char *res_header(const struct response *res, const char *name)
{
    for (int i = 0; i < res->n_headers; i++)
        if (!strcasecmp(res->headers[i].name, name))
            return res->headers[i].value;
    return NULL;
}

/* The response body as a NUL-terminated string in the request's arena. */
static inline const char *res_body(struct fake *f)
{
    if (!f->res.body)
        return NULL;
    return arena_strndup(&f->arena, f->res.body, f->res.body_len);
}

/* The response body parsed; the caller json_decref()s it. */
static inline json_t *res_json(struct fake *f)
{
    assert_non_null(f->res.body);
    assert_non_null(f->res.content_type);
    assert_string_equal(f->res.content_type, "application/json");
    json_error_t e;
    json_t *j = json_loadb(f->res.body, f->res.body_len, 0, &e);
    if (!j)
        fail_msg("response is not JSON (%s): %.*s", e.text, (int)f->res.body_len, f->res.body);
    return j;
}

/* Is s a lowercase UUID4 ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx")? */
static inline bool is_uuid4(const char *s)
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

/* ---- core changes, waited for -------------------------------------------- */

/* Start a core change, fn(op, args...), as ctx, and wait for it: its
 * outcome, with its error in *err. */
#define CORE_RUN(ctx, err, fn, ...)                                                   \
    ({                                                                                \
        struct core_sync sync_;                                                       \
        core_sync_init(&sync_, (ctx));                                                \
        fn(&sync_.op, __VA_ARGS__);                                                   \
        core_sync_wait(&sync_, (err));                                                \
    })

/* ---- an API over a temporary store --------------------------------------- */

/* Accounts acct-a (alpha), acct-b (beta) and ops (operations); users alice
 * (member of acct-a), bob (member of acct-b) and root (admin, home ops). */
struct api_world {
    struct tmp_store t;
    struct core *core;
    struct auth *auth;
    struct api *api;
    struct arena ar;
    const char *alice, *bob, *root;     /* their Authorization header values */
    int seq;                            /* for unique ids */
};

static inline struct api_world *api_world_new(void)
{
    struct api_world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    tmp_store_open(&w->t);
    arena_init(&w->ar);
    add_account(w->t.store, "acct-a", "alpha");
    add_account(w->t.store, "acct-b", "beta");
    add_account(w->t.store, "ops", "operations");
    add_user(w->t.store, "alice", "acct-a", "alice-pw", ROLE_MEMBER);
    add_user(w->t.store, "bob", "acct-b", "bob-pw", ROLE_MEMBER);
    add_user(w->t.store, "root", "ops", "root-pw", ROLE_ADMIN);
    w->core = core_new(w->t.store);
    w->auth = auth_new(w->t.store);
    assert_non_null(w->core);
    assert_non_null(w->auth);
    w->api = api_new(w->core, w->t.store, w->auth);
    assert_non_null(w->api);
    w->alice = basic_header(&w->ar, "alice", "alice-pw");
    w->bob = basic_header(&w->ar, "bob", "bob-pw");
    w->root = basic_header(&w->ar, "root", "root-pw");
    return w;
}

static inline void api_world_free(struct api_world *w)
{
    api_free(w->api);
    auth_free(w->auth);
    core_free(w->core);
    tmp_store_close(&w->t);
    arena_release(&w->ar);
    free(w);
}

/* cmocka group fixtures: one api_world for a whole file's tests. */
static inline int api_group_setup(void **state)
{
    *state = api_world_new();
    return 0;
}

static inline int api_group_teardown(void **state)
{
    api_world_free(*state);
    return 0;
}

/* Run one request and check its status. On a mismatch f is released before
 * the test fails, so that a failing test leaks nothing either. */
static inline void api_expect(struct api_world *w, struct fake *f, int status)
{
    fake_run(w->api, f);
    if (f->res.status != status) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: status %d, want %d; body: %.*s", f->req.path,
                 f->res.status, status, (int)(f->res.body ? f->res.body_len : 0),
                 f->res.body ? f->res.body : "");
        fake_release(f);
        fail_msg("%s", msg);
    }
}

/* A fresh id with a prefix, unique within the world (in its arena). */
static inline const char *world_id(struct api_world *w, const char *prefix)
{
    return arena_printf(&w->ar, "%s-%d", prefix, ++w->seq);
}

/* A core context acting as `user` of `account` (admin: no scope). */
static inline struct core_ctx world_ctx(struct api_world *w, const char *account, bool admin)
{
    return (struct core_ctx){.core = w->core, .arena = &w->ar,
                             .scope = admin ? NULL : account, .account = account,
                             .home = account, .user_id = "setup", .admin = admin,
                             .version = 1};
}

/* Make a server / volume of `account` directly through the core. */
static inline const char *world_server(struct api_world *w, const char *account)
{
    struct core_ctx c = world_ctx(w, account, false);
    const char *id = world_id(w, "srv");
    struct server_spec spec = {.id = id, .name = id, .image_ref = "img", .flavor_ref = "1"};
    struct server s;
    struct core_error err;
    if (!CORE_RUN(&c, &err, core_server_create, &spec, &s))
        fail_msg("core_server_create: %s", err.message);
    return id;
}

static inline const char *world_volume(struct api_world *w, const char *account)
{
    struct core_ctx c = world_ctx(w, account, false);
    const char *id = world_id(w, "vol");
    struct volume_spec spec = {.id = id, .name = id, .size = 1};
    struct volume v;
    struct core_error err;
    if (!CORE_RUN(&c, &err, core_volume_create, &spec, &v))
        fail_msg("core_volume_create: %s", err.message);
    return id;
}

static inline void world_attach(struct api_world *w, const char *account, const char *server,
                                const char *volume)
{
    struct core_ctx c = world_ctx(w, account, false);
    struct attach_spec spec = {.volume_id = volume};
    struct attachment at;
    struct core_error err;
    if (!CORE_RUN(&c, &err, core_attach, server, &spec, &at))
        fail_msg("core_attach: %s", err.message);
}

/* Start a request: method, path, body (NULL: none), Authorization (NULL: none).
 * Add headers with fake_header(), then fake_run(w->api, f). */
static inline void fake_request(struct fake *f, enum method method, const char *path,
                                const char *body, const char *authorization)
{
    fake_init(f, method, path, body);
    if (authorization)
        fake_header(f, "Authorization", authorization);
}

/* The inner object of a one-key error body {"<name>": {...}}; checks the name. */
static inline json_t *fault_inner(json_t *body, const char *name)
{
    assert_true(json_is_object(body));
    assert_int_equal(json_object_size(body), 1);
    json_t *inner = json_object_get(body, name);
    if (!inner) {
        char text[512];
        size_t n = json_dumpb(body, text, sizeof text - 1, JSON_COMPACT);
        if (n == 0 || n >= sizeof text)
            snprintf(text, sizeof text, "(a body too long to show)");
        else
            text[n] = '\0';
        fail_msg("no \"%s\" in %s", name, text);
    }
    assert_true(json_is_object(inner));
    return inner;
}

/* Silence the store's error log in tests that provoke errors on purpose. */
static inline void quiet_logs(void)
{
    log_set_level(LOG_ERROR + 1);
}

/* Warnings and errors only (no "migrated ..." line for every temp store). */
static inline void normal_logs(void)
{
    log_set_level(LOG_WARN);
}

#endif
