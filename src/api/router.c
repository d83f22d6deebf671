/* router.c: from a path to a handler
 * (docs/api.md, decisions D1 and D6).
 *
 * The steps, in this order for every request:
 *   1. the prefix picks the dialect: "/v2.1[/{project_id}]" is Nova,
 *      "/v3[/{project_id}]" the read-only block-storage API the openstack CLI
 *      looks volumes up in (Nova's error shape), "/image[/v2]" the read-only
 *      image API it finds images in (Glance's shapes),
 *      "/accounts/{accountId}/flexcloud" and everything else Hostway;
 *   2. version discovery answers without credentials;
 *   3. Basic credentials are checked (401 before any lookup:
 *      docs/api.md, decision D6). A request that declares a body has them
 *      checked once its head is in, before the body is read (api_head()),
 *      and again with the body; one that needs none is answered from its
 *      head, its body unread;
 *   4. an account named in the path must be the caller's (or the caller an
 *      admin), else 404 as if it did not exist;
 *   5. Nova's microversion headers are negotiated;
 *   6. the rest of the path is matched against the route table: no match is
 *      404, a match without the method is 405.
 * /healthcheck and /metrics, for operators, are outside both dialects
 * (ops.c): the first needs no credentials, the second an admin's.
 */
#include <stdlib.h>
#include <string.h>

#include "api/call.h"
#include "auth/auth.h"
#include "util/id.h"
#include "util/log.h"
#include "util/oom.h"
#include "util/utf8.h"

struct api {
    struct core *core;
    struct store *store;
    struct auth *auth;
    unsigned detach_wait;
    struct health *health;
};

#define MAX_SEGMENTS 16

enum { HOSTWAY = 1, NOVA = 2, BOTH = 3, CINDER = 4, GLANCE = 8 };
enum { PROXY = 16 };            /* Nova's proxy APIs, gone from 2.36 (proxy_available()) */

struct route {
    unsigned dialects;          /* those it serves, and PROXY */
    const char *pattern;        /* segments; "*" matches an id */
    handler_fn get, post, put, del;
};

static const struct route routes[] = {
    {BOTH, "servers", servers_list, servers_create, NULL, NULL},
    {BOTH, "servers/detail", servers_detail, NULL, NULL, NULL},
    {BOTH, "servers/*", servers_show, NULL, NULL, servers_delete},
    {BOTH, "servers/*/action", NULL, servers_action, NULL, NULL},
    {BOTH, "servers/*/ips", servers_ips, NULL, NULL, NULL},
    {BOTH, "servers/*/ips/*", servers_ips_network, NULL, NULL, NULL},
    {BOTH, "servers/*/os-security-groups", servers_security_groups, NULL, NULL, NULL},
    {BOTH, "servers/*/os-volume_attachments", attachments_list, attachments_create, NULL, NULL},
    {BOTH, "servers/*/os-volume_attachments/*", attachments_show, NULL, attachments_update,
     attachments_delete},
    {NOVA | PROXY, "os-volumes", volumes_list, volumes_create, NULL, NULL},
    {NOVA | PROXY, "os-volumes/detail", volumes_detail, NULL, NULL, NULL},
    {NOVA | PROXY, "os-volumes/*", volumes_show, NULL, NULL, volumes_delete},
    {BOTH, "flavors", flavors_list, NULL, NULL, NULL},
    {BOTH, "flavors/detail", flavors_detail, NULL, NULL, NULL},
    {BOTH, "flavors/*", flavors_show, NULL, NULL, NULL},
    {BOTH, "flavors/*/os-extra_specs", flavors_extra_specs, NULL, NULL, NULL},
    {BOTH, "flavors/*/os-extra_specs/*", flavors_extra_spec, NULL, NULL, NULL},
    {BOTH | PROXY, "images", images_list, NULL, NULL, NULL},
    {BOTH | PROXY, "images/detail", images_detail, NULL, NULL, NULL},
    {BOTH | PROXY, "images/*", images_show, NULL, NULL, NULL},
    {GLANCE, "images", glance_images_list, NULL, NULL, NULL},
    {GLANCE, "images/*", glance_images_show, NULL, NULL, NULL},
    {BOTH, "limits", limits_show, NULL, NULL, NULL},
    {CINDER, "limits", cinder_limits, NULL, NULL, NULL},
    {CINDER, "volumes", cinder_volumes_list, cinder_volumes_create, NULL, NULL},
    {CINDER, "volumes/detail", cinder_volumes_detail, NULL, NULL, NULL},
    {CINDER, "volumes/*", cinder_volumes_show, NULL, cinder_volumes_update,
     cinder_volumes_delete},
    {HOSTWAY, "volumes", volumes_list, volumes_create, NULL, NULL},
    {HOSTWAY, "volumes/detail", volumes_detail, NULL, NULL, NULL},
    {HOSTWAY, "volumes/*", volumes_show, NULL, NULL, volumes_delete},
};

/* The first segment after /v2.1 that is a collection, not a project id. */
static bool nova_collection(const char *seg)
{
    return !strcmp(seg, "servers") || !strcmp(seg, "os-volumes") ||
           !strncmp(seg, "os-", 3) || !strcmp(seg, "flavors") || !strcmp(seg, "limits") ||
           !strcmp(seg, "extensions") || !strcmp(seg, "images");
}

struct api *api_new(struct core *core, struct store *store, struct auth *auth)
{
    struct api *a = calloc(1, sizeof *a);
    if (a && !(a->health = health_new(store))) {
        free(a);
        a = NULL;
    }
    if (a) {
        a->core = core;
        a->store = store;
        a->auth = auth;
    }
    return a;
}

void api_set_detach_wait(struct api *a, unsigned seconds)
{
    a->detach_wait = seconds;
}

unsigned api_detach_wait(const struct api *a)
{
    return a->detach_wait;
}

void api_free(struct api *a)
{
    if (a)
        health_free(a->health);
    free(a);
}

/* Split path into segments (in the arena). A single trailing slash is
 * ignored; an empty segment anywhere else makes the path unroutable. */
static int split(struct arena *ar, const char *path, char **seg)
{
    int n = 0;
    const char *p = path;
    if (*p != '/')
        return -1;
    while (*p == '/' && p[1] != '\0') {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || n == MAX_SEGMENTS)
            return -1;
        seg[n++] = arena_strndup(ar, p, len);
        p += len;
    }
    return n;
}

static bool match(const char *pattern, char **seg, int n, const char **params)
{
    int i = 0, np = 0;
    const char *p = pattern;
    /* one pass over the pattern: this runs for every route before the
     * request's, on every request */
    while (*p) {
        if (i == n)
            return false;
        if (p[0] == '*' && (p[1] == '/' || p[1] == '\0')) {
            if (np < 3)
                params[np++] = seg[i];
            p++;
        } else {
            const char *s = seg[i];
            while (*p && *p != '/' && *p == *s) {
                p++;
                s++;
            }
            if (*s || (*p && *p != '/'))
                return false;
        }
        i++;
        if (*p == '/')
            p++;
    }
    return i == n;
}

/* The base of links: --public-url, else the scheme and host the client used
 * (as the HTTP layer saw them, or a trusted proxy forwarded them). */
static const char *request_base(struct call *c)
{
    struct request *req = c->req;
    if (req->public_url)
        return req->public_url;
    const char *host = req->host ? req->host : req->header(req->http, "Host");
    if (!host || !*host || strlen(host) > 255 || !utf8_valid(host, strlen(host)) ||
        strpbrk(host, " /\\\"<>"))
        host = "localhost";
    return arena_concat(c->arena, req->scheme ? req->scheme : "http", "://", host, NULL);
}

static bool is_read(const struct call *c)
{
    return c->req->method == METHOD_GET || c->req->method == METHOD_HEAD;
}

static void dispatch(struct call *c, char **seg, int n)
{
    unsigned dialect = c->glance   ? GLANCE
                       : c->cinder ? CINDER
                       : c->dialect == DIALECT_NOVA ? NOVA : HOSTWAY;
    const struct route *found = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *params[3] = {0};
        if ((routes[i].dialects & dialect) && match(routes[i].pattern, seg, n, params)) {
            found = &routes[i];
            memcpy(c->param, params, sizeof params);
            break;
        }
    }
    if (!found) {
        reply_error(c, 404, "The resource could not be found.");
        return;
    }
    c->req->route = found->pattern;
    /* ids are ASCII (docs/api.md, decision D5): anything else names
     * nothing, and must not reach a message that has to be valid UTF-8
     * JSON */
    for (int i = 0; i < 3 && c->param[i]; i++) {
        if (!utf8_valid(c->param[i], strlen(c->param[i]))) {
            reply_error(c, 404, "The resource could not be found.");
            return;
        }
    }
    handler_fn h = NULL;
    switch (c->req->method) {
    case METHOD_GET: case METHOD_HEAD: h = found->get; break;
    case METHOD_POST: h = found->post; break;
    case METHOD_PUT: h = found->put; break;
    case METHOD_DELETE: h = found->del; break;
    default: break;
    }
    if (!h) {
        char *allow = "";
        if (found->get) allow = arena_printf(c->arena, "%s%sGET, HEAD", allow, *allow ? ", " : "");
        if (found->post) allow = arena_printf(c->arena, "%s%sPOST", allow, *allow ? ", " : "");
        if (found->put) allow = arena_printf(c->arena, "%s%sPUT", allow, *allow ? ", " : "");
        if (found->del) allow = arena_printf(c->arena, "%s%sDELETE", allow, *allow ? ", " : "");
        reply_error(c, 405, "The method specified is not allowed for this resource.");
        api_add_header(c->res, "Allow", allow);
        return;
    }
    /* Nova's order: a method outside its versions (404), then the query
     * schema's decorator (400), then the method */
    if (((found->dialects & PROXY) && !proxy_available(c)) || (is_read(c) && !query_decodes(c)))
        return;
    h(c);
}

/* "compute 2.N" for every N up to 99, row N: the header texts of the
 * versions served (2.1 to 2.MAX_VERSION, microversion.c), so that no answer
 * formats one; the version alone is the text past "compute ". */
#define TEN_TEXTS(p) p "0", p "1", p "2", p "3", p "4", p "5", p "6", p "7", p "8", p "9"
#define COMPUTE_PREFIX_LEN 8    /* strlen("compute ") */
static const char compute_texts[100][COMPUTE_PREFIX_LEN + 5] = {
    TEN_TEXTS("compute 2."),  TEN_TEXTS("compute 2.1"), TEN_TEXTS("compute 2.2"),
    TEN_TEXTS("compute 2.3"), TEN_TEXTS("compute 2.4"), TEN_TEXTS("compute 2.5"),
    TEN_TEXTS("compute 2.6"), TEN_TEXTS("compute 2.7"), TEN_TEXTS("compute 2.8"),
    TEN_TEXTS("compute 2.9"),
};
_Static_assert(MAX_VERSION < 100, "compute_texts has a row for each version served");

static void add_common_headers(struct call *c)
{
    api_add_header(c->res, "x-openstack-request-id", c->req->request_id);
    api_add_header(c->res, "x-compute-request-id", c->req->request_id);
    if (!c->versioned && !c->version_echo)
        return;
    const char *full = c->version_echo
                           ? arena_concat(c->arena, "compute ", c->version_echo, NULL)
                           : compute_texts[c->version];
    api_add_header(c->res, "OpenStack-API-Version", full);
    api_add_header(c->res, "X-OpenStack-Nova-API-Version", full + COMPUTE_PREFIX_LEN);
    api_add_header(c->res, "Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version");
}

/* ---- suspension ---------------------------------------------------------------- */

static void suspend(struct call *c, void (*then)(struct call *c))
{
    c->then = then;
    c->suspended = true;
    c->req->suspend(c->req);
}

/* The core hands the change to its writer: the connection waits. */
static void op_handoff(struct core_op *op)
{
    struct call *c = op->cls;
    c->suspended = true;
    c->req->suspend(c->req);
}

static void op_done(struct core_op *op)
{
    struct call *c = op->cls;
    if (c->suspended)
        c->req->resume(c->req);
    else
        c->done_inline = true;  /* refused before anything was handed on */
}

struct core_op *call_op(struct call *c, void (*then)(struct call *c))
{
    c->then = then;
    c->op = (struct core_op){.ctx = &c->core, .done = op_done, .handoff = op_handoff, .cls = c};
    return &c->op;
}

static void auth_done(struct auth_check *ck)
{
    struct call *c = ck->cls;
    c->req->resume(c->req);
}

/* ---- steps 3 to 6 ------------------------------------------------------------------ */

/* Step 3's verdict: true for good credentials, else the refusal is
 * answered. */
static bool credentials_good(struct call *c)
{
    switch (c->auth.result) {
    case AUTH_OK: return true;
    case AUTH_DENIED: reply_unauthorized(c); return false;
    case AUTH_THROTTLED: reply_throttled(c, c->auth.throttle, c->auth.retry_after); return false;
    case AUTH_UNAVAILABLE: case AUTH_VERIFY:
        reply_error(c, 503, "The service is unavailable at this time.");
        if (c->auth.retry_after > 0)
            api_add_header(c->res, "Retry-After",
                           arena_printf(c->arena, "%d", c->auth.retry_after));
        return false;
    }
    return false;
}

/* Steps 4-5 once the credentials are known; false once a response has been
 * made. */
static bool admit(struct call *c)
{
    struct api *a = c->api;
    const struct principal *p = &c->auth.principal;
    if (!credentials_good(c))
        return false;
    c->req->user = p->user;
    c->core = (struct core_ctx){
        .core = a->core, .arena = c->arena, .home = p->account, .account = p->account,
        .user_id = p->user, .admin = p->admin, .scope = p->admin ? NULL : p->account,
        .version = 1,
    };
    if (c->account_in_path) {
        struct account acct;
        struct store_conn *r = store_reader(a->store);
        bool own = !strcmp(c->account_in_path, p->account);
        if (!own && (!p->admin || !r ||
                     store_account_get(r, c->arena, c->account_in_path, &acct) != STORE_OK ||
                     strcmp(acct.id, c->account_in_path) != 0)) {
            reply_error(c, 404, "The resource could not be found.");
            return false;
        }
        c->core.scope = c->core.account = c->account_in_path;
    }
    if (c->dialect == DIALECT_NOVA && !c->cinder && !c->glance) {
        const char *bad = NULL;
        switch (mv_negotiate(c->req, c->arena, &c->version, &bad)) {
        case MV_OK: break;
        case MV_MALFORMED:
            reply_error(c, 400, "API Version String %s is of invalid format. Must be of format "
                                "MajorNum.MinorNum.", bad);
            return false;
        case MV_UNSUPPORTED:
            c->version_echo = bad;     /* Nova echoes what was asked for */
            reply_error(c, 406, "Version %s is not supported by the API. Minimum is 2.1 and "
                                "maximum is 2.%d.", bad, MAX_VERSION);
            return false;
        }
        c->versioned = true;
        c->core.version = c->version;
    }
    return true;
}

static void proceed(struct call *c)
{
    if (!admit(c))
        return;
    if (c->ops == OPS_METRICS)
        ops_metrics(c);
    else if (c->n_segments < 0)
        reply_error(c, 404, "The resource could not be found.");
    else
        dispatch(c, c->segments, c->n_segments);
}

/* A read sees one snapshot from the credential check on (never half a
 * change: docs/api.md, decision D4): the auth epoch and the resources come
 * from one read transaction. A snapshot is never held across a
 * suspension. */
static bool snapshot_begin(struct call *c)
{
    struct core_error err;
    if (!is_read(c))
        return true;
    if (core_read_begin(&c->core, &err))
        return true;
    reply_core_error(c, &err);
    return false;
}

static void snapshot_end(struct call *c)
{
    if (is_read(c))
        core_read_end(&c->core);
}

/* After a password check on a verifier thread. */
static void verified(struct call *c)
{
    if (!snapshot_begin(c))
        return;
    proceed(c);
    snapshot_end(c);
}

/* Step 3's check on this thread (auth.h): AUTH_VERIFY when a password must
 * be checked by auth_verify(), which resumes the call. */
static enum auth_result check_credentials(struct call *c)
{
    c->auth = (struct auth_check){
        .header = c->req->header(c->req->http, "Authorization"), .client = c->req->client,
        .arena = c->arena, .done = auth_done, .cls = c,
    };
    return auth_check(c->api->auth, &c->auth);
}

/* Step 3: the credentials, from the cache when they are there. */
static void authenticate(struct call *c)
{
    struct api *a = c->api;
    c->core = (struct core_ctx){.core = a->core, .arena = c->arena};
    if (!snapshot_begin(c))
        return;
    if (check_credentials(c) == AUTH_VERIFY) {
        snapshot_end(c);
        suspend(c, verified);
        auth_verify(a->auth, &c->auth);
        return;
    }
    proceed(c);
    snapshot_end(c);
}

/* api_head(): step 3 alone, for a head whose body is not read yet. Good
 * credentials leave the response empty (API_ADMITTED). */
static void head_checked(struct call *c)
{
    (void)credentials_good(c);
}

static void authenticate_head(struct call *c)
{
    if (check_credentials(c) == AUTH_VERIFY) {
        suspend(c, head_checked);
        auth_verify(c->api->auth, &c->auth);
        return;
    }
    head_checked(c);
}

#define OOM_MESSAGE "The service ran out of memory for this request; retry it."

/* The answer of a step that ran out of memory, built without allocating. */
static void answer_out_of_memory(struct call *c)
{
    struct response *res = c->res;
    char errorid[UUID_STR_LEN + 1];
    int n;
    id_uuid4(errorid);
    if (c->dialect == DIALECT_HOSTWAY)
        n = snprintf(c->oom_body, sizeof c->oom_body,
                     "{\"serviceUnavailable\":{\"message\":\"Service unavailable\",\"code\":503,"
                     "\"details\":\"" OOM_MESSAGE "\",\"errorid\":\"%s\"}}", errorid);
    else if (c->glance)     /* dialect.c's glance_fault, written out */
        n = snprintf(c->oom_body, sizeof c->oom_body,
                     "{\"message\":\"" OOM_MESSAGE "<br /><br />\\n\\n\\n\",\"code\":"
                     "\"503 Service Unavailable\",\"title\":\"Service Unavailable\"}");
    else
        n = snprintf(c->oom_body, sizeof c->oom_body,
                     "{\"serviceUnavailable\":{\"code\":503,\"message\":\"" OOM_MESSAGE "\"}}");
    *res = (struct response){.status = 503, .content_type = "application/json",
                             .body = c->oom_body, .body_len = (size_t)n};
    api_add_header(res, "Retry-After", "1");
    c->versioned = false;       /* the common headers then need no memory */
    c->version_echo = NULL;
    c->body = NULL;
}

/* A step ran out of memory and was abandoned: undo what this thread's
 * reader was in the middle of, and answer 503 (once the work in flight, if
 * any was handed on, is back: its outcome is then unknown to the client). */
static void out_of_memory(struct call *c)
{
    struct store_conn *r = store_reader(c->api->store);
    if (r)
        store_conn_reset(r);
    log_error("api: request %s ran out of memory; answered 503", c->req->request_id);
    if (c->suspended)
        c->then = answer_out_of_memory;
    else
        answer_out_of_memory(c);
}

static enum api_status finish(struct call *c)
{
    if (c->suspended)
        return API_SUSPENDED;
    if (c->head && !c->res->status)
        return API_ADMITTED;
    /* The common headers allocate too. Out of memory there, the answer
     * becomes the 503, whose headers need none. */
    struct oom_point p;
    oom_enter(&p);
    if (setjmp(p.jb) == 0) {
        add_common_headers(c);
    } else {
        log_error("api: request %s ran out of memory; answered 503", c->req->request_id);
        answer_out_of_memory(c);
        add_common_headers(c);
    }
    oom_leave(&p);
    if (c->body)
        json_decref(c->body);
    c->body = NULL;
    return API_DONE;
}

/* Run the continuation the call waits for. */
static void go_on(struct call *c)
{
    void (*then)(struct call *c) = c->then;
    c->then = NULL;
    c->done_inline = false;
    then(c);
}

/* Run one step of a call on this thread: its JSON in the call's arena, out
 * of memory answered 503 rather than taking the daemon down, and then the
 * continuations of changes that finished without being handed on. */
static enum api_status run_step(struct call *c, void (*step)(struct call *c))
{
    struct oom_point p;
    json_memory_use(c->arena);
    oom_enter(&p);
    if (setjmp(p.jb) == 0) {
        step(c);
        while (c->done_inline)
            go_on(c);
    } else {
        out_of_memory(c);
    }
    oom_leave(&p);
    json_memory_use(NULL);
    return finish(c);
}

enum api_status api_resume(struct api *a, struct request *req, struct response *res)
{
    (void)a;
    (void)res;
    struct call *c = req->api_state;
    c->suspended = false;
    return run_step(c, go_on);
}

/* Does the path begin with the segment `first` ("/v2.1")? */
static bool under(const char *path, const char *first)
{
    size_t n = strlen(first);
    return !strncmp(path, first, n) && (path[n] == '\0' || path[n] == '/');
}

/* The dialect the path's prefix names, from its text alone: for what is
 * answered before the path is split (or when it cannot be), as for what
 * the HTTP layer answers before the API sees the request. */
static void prefix_dialect(struct call *c, const char *path)
{
    c->cinder = under(path, "/v3");
    c->glance = under(path, "/image");
    c->dialect = under(path, "/v2.1") || c->cinder || c->glance ? DIALECT_NOVA : DIALECT_HOSTWAY;
}

/* The first step: the prefix, then discovery (no credentials) or the rest. */
static void start(struct call *c)
{
    struct request *req = c->req;
    /* The dialect the prefix names, before anything that may run out of
     * memory, and for a path that cannot be split (an empty segment, too
     * many): both are answered in it. */
    prefix_dialect(c, req->path);
    char **seg = arena_alloc(c->arena, MAX_SEGMENTS * sizeof *seg);
    int n = split(c->arena, req->path, seg);
    c->base = request_base(c);
    char **rest = seg;

    if (n > 0 && !strcmp(seg[0], "v2.1")) {
        c->dialect = DIALECT_NOVA;
        c->prefix = "/v2.1";
        rest = seg + 1;
        n -= 1;
        if (n > 0 && !nova_collection(rest[0])) {
            c->account_in_path = rest[0];
            c->prefix = arena_printf(c->arena, "/v2.1/%s", rest[0]);
            rest++;
            n--;
        }
    } else if (n > 0 && !strcmp(seg[0], "v3")) {
        c->dialect = DIALECT_NOVA;
        c->cinder = true;
        c->prefix = "/v3";
        rest = seg + 1;
        n -= 1;
        if (n > 0 && strcmp(rest[0], "volumes") != 0 && strcmp(rest[0], "limits") != 0) {
            c->account_in_path = rest[0];
            c->prefix = arena_printf(c->arena, "/v3/%s", rest[0]);
            rest++;
            n--;
        }
    } else if (n > 0 && !strcmp(seg[0], "image")) {
        /* Glance's root, its version list at /versions, and v2 */
        c->prefix = "/image/v2";
        rest = seg + 2;
        n = n == 1 || (n == 2 && !strcmp(seg[1], "versions")) ? 0
            : strcmp(seg[1], "v2") != 0                      ? -1
                                                             : n - 2;
    } else if (n > 0 && !strcmp(seg[0], "accounts")) {
        if (n < 3 || strcmp(seg[2], "flexcloud") != 0) {
            n = -1;
        } else {
            c->account_in_path = seg[1];
            c->prefix = arena_printf(c->arena, "/accounts/%s/flexcloud", seg[1]);
            rest = seg + 3;
            n -= 3;
        }
    }
    c->segments = rest;
    c->n_segments = n;
    req->dialect = c->glance   ? "glance"
                   : c->cinder ? "cinder"
                   : c->dialect == DIALECT_NOVA ? "nova" : "hostway";

    bool discovery = is_read(c) && !c->account_in_path && n == 0;
    /* api_head(): a path that needs credentials has them checked; the rest
     * (version discovery, /healthcheck) is answered from the head, as none
     * of its answers depends on a body */
    if (c->head && !discovery && strcmp(req->path, "/healthcheck") != 0) {
        authenticate_head(c);
        return;
    }
    if (discovery)
        req->route = c->glance   ? "image"
                     : c->cinder ? "v3"
                     : c->dialect == DIALECT_NOVA ? "v2.1" : "/";
    if (!strcmp(req->path, "/healthcheck")) {
        c->ops = OPS_HEALTHCHECK;
        req->route = "healthcheck";
        req->dialect = NULL;
        ops_healthcheck(c, c->api->health, c->api->store);
    } else if (!strcmp(req->path, "/metrics")) {
        c->ops = OPS_METRICS;
        req->route = "metrics";
        req->dialect = NULL;
        authenticate(c);
    } else if (discovery && c->glance) {
        versions_glance(c);
    } else if (discovery && c->cinder) {
        versions_v3(c);
    } else if (discovery && c->dialect == DIALECT_NOVA) {
        if (query_decodes(c))
            versions_v21(c);
    } else if (discovery) {
        versions_root(c);
    } else {
        authenticate(c);
    }
}

/* The call is its arena's first allocation (api_reserve(), or here when
 * nobody reserved it) and fits the arena's inline buffer, so it cannot run
 * out of memory: everything after it is inside a step, where running out
 * is answered. */
_Static_assert(sizeof(struct call) + 16 <= ARENA_INLINE, "a call fits the arena's inline buffer");

void *api_reserve(struct arena *fresh)
{
    return arena_alloc(fresh, sizeof(struct call));
}

/* A fresh call for the request, in its reserved slot (api_reserve()). */
static struct call *call_begin(struct api *a, struct request *req, struct response *res)
{
    struct call *c = req->api_state ? req->api_state : arena_alloc(req->arena, sizeof *c);
    *c = (struct call){.api = a, .req = req, .res = res, .arena = req->arena,
                       .dialect = DIALECT_HOSTWAY, .version = 1, .prefix = ""};
    req->api_state = c;
    return c;
}

enum api_status api_head(struct api *a, struct request *req, struct response *res)
{
    *res = (struct response){0};
    struct call *c = call_begin(a, req, res);
    c->head = true;
    return run_step(c, start);
}

enum api_status api_handle(struct api *a, struct request *req, struct response *res)
{
    return run_step(call_begin(a, req, res), start);
}

/* The HTTP layer's answers are made in the request's call slot (api_reserve(),
 * which cannot fail), so that the out-of-memory body, kept in the call,
 * outlives this function. */
void api_http_error(struct request *req, struct response *res, int status)
{
    *res = (struct response){0};
    struct call *c = call_begin(NULL, req, res);
    prefix_dialect(c, req->path);
    struct oom_point p;
    bool out_of_memory = false;     /* set only after the longjmp: no volatile */
    json_memory_use(c->arena);      /* as in a step: nothing to free if it runs out */
    oom_enter(&p);
    if (setjmp(p.jb) == 0) {
        if (status == 413)
            reply_error(c, 413, "Request is too large.");
        else if (status == 400)
            reply_error(c, 400, "Bad request: the request is not framed as RFC 9112 asks "
                                "(one Host header; a body framed by one Content-Length or "
                                "by Transfer-Encoding: chunked, not both).");
        else if (status == 503 && !strcmp(req->path, "/healthcheck"))
            ops_health_stopping(c);
        else if (status == 503) {
            reply_error(c, 503, "The service is stopping; retry on a new connection.");
            api_add_header(res, "Retry-After", "1");
        } else
            reply_error(c, status, "The request could not be handled.");
    } else {
        out_of_memory = true;
    }
    oom_leave(&p);
    json_memory_use(NULL);
    if (out_of_memory)
        api_http_out_of_memory(req, res, req->path);
    else
        add_common_headers(c);
}

void api_http_out_of_memory(struct request *req, struct response *res, const char *path)
{
    struct call *c = call_begin(NULL, req, res);
    prefix_dialect(c, path);
    answer_out_of_memory(c);
    add_common_headers(c);
}
