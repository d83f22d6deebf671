/* exchange.c: one request's exchange with the HTTP adapter (server.h),
 * from the URI callback to the access log: the struct request handed to
 * the API, its body, its suspension and resumption, and the answer sent.
 * server.c starts the daemon with these callbacks (server_int.h).
 *
 * libmicrohttpd calls the access handler several times per request: first
 * with the headers (we set up the request and, for a declared body over the
 * limit, answer 413 at once), then once per chunk of body, then a last time
 * with no data, where the API runs. A request's arena lives until MHD tells us
 * the response has been sent, so response bodies are handed over without a
 * copy.
 *
 * Every request runs on the epoll thread that received it, and nothing
 * there waits: when the API hands work on (a password check, a commit), it
 * suspends the connection, and the thread that finishes the work resumes it,
 * which brings MHD back to the access handler to go on (api_resume()).
 *
 * MHD times connections by inactivity only and refuses everyone at its
 * limit; the connection guard (guard.h) adds the deadlines for a request's
 * head and body and makes room at the cap. This file tells it where each
 * request is: head complete, body complete, request done (server.c tells
 * it when a connection starts and closes).
 *
 * A request that declares a body has its credentials checked at the first
 * call (api_head()), which may suspend it there for a password check: the
 * body is read only once they are good, and a refusal is answered without
 * it (the connection then closes), as are the paths that need no
 * credentials. No unauthenticated client has a body buffered, or holds a
 * connection by sending one slowly.
 *
 * Framing is checked here, at the access handler's first call (the headers
 * are all there, the body not yet read): libmicrohttpd 0.9.75 serves a
 * request with both Content-Length and Transfer-Encoding, with differing
 * Content-Lengths, with two Host headers, or with a framing header it
 * misread ("Content-Length :"), each a way to make it and a proxy in front
 * disagree about where a request ends. They get 400 and the
 * connection is closed, before anything of the request happens. The
 * decision itself is framing.c's, a pure function of the header lines.
 *
 * Each request is counted in the metrics (util/metrics.h) and logged
 * (util/log.h: buffered per thread) when MHD reports it complete. Its raw
 * query string is only seen by the URI log callback, which is where a
 * request's exchange is made; the query's arguments are parsed here
 * (query.h), not by MHD, whose pool they could fill.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/auth.h"
#include "http/framing.h"
#include "http/guard.h"
#include "http/query.h"
#include "http/server_int.h"
#include "util/id.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/oom.h"

struct exchange {
    struct arena arena;             /* first: exchange_on_uri zeroes what follows */
    void *api_slot;                 /* api_reserve()'s, the arena's first */
    struct request req;
    struct response res;
    struct http_server *server;
    struct timespec start;
    char request_id[4 + UUID_STR_LEN + 1];
    const char *method;
    const char *query;              /* as the client sent it, NULL if none */
    struct http_query args;         /* the query parsed, once args_parsed */
    bool args_parsed;
    bool out_of_memory;             /* a copy of the head, or the body's buffer, failed: 503 */
    const char *failed_user;        /* the name a refused login gave */
    const char *forwarded_for;      /* X-Forwarded-For from a trusted proxy */
    char *body;
    size_t body_len, body_cap;
    bool begun;                     /* the access handler has seen it: it is a request */
    bool too_large;
    bool answered;
    bool body_done;                 /* told the guard: the body is in (or ignored) */
    bool started;                   /* the API has it */
    bool gating;                    /* api_head() checks the credentials: body unread */
    bool close;                     /* answer with Connection: close */
    char *kept;                     /* the log line's strings, once the arena is gone */
    struct MHD_Connection *conn;
};

_Static_assert(offsetof(struct exchange, api_slot) == sizeof(struct arena),
               "exchange_on_uri zeroes everything after the arena");

/* An answer is queued; a request that built a large one lets its arena go
 * at once (the records, the JSON tree) and keeps only a copy of the body,
 * so that a client that reads slowly holds no more than its answer. */
#define RELEASE_ABOVE (256u * 1024)

/* ---- request accessors ----------------------------------------------------- */

/* The first n bytes of s, copied into the exchange's arena; NULL when
 * memory ran out. The HTTP layer copies the head outside the API's
 * recovery points (util/oom.h), so it sets its own: a request whose head
 * could not be copied is answered 503 (out_of_memory), and the daemon
 * goes on. */
static const char *copy(struct exchange *x, const char *s, size_t n)
{
    struct oom_point p;
    oom_enter(&p);
    if (setjmp(p.jb) != 0) {
        oom_leave(&p);
        return NULL;
    }
    const char *c = arena_strndup(&x->arena, s, n);
    oom_leave(&p);
    return c;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The request's accessors (struct request): http is the exchange. */
static const char *req_header(void *http, const char *name)
{
    return header(((struct exchange *)http)->conn, name);
}

/* The query's arguments, parsed at the first look (query.h). */
static const struct http_query *args_of(struct exchange *x)
{
    if (!x->args_parsed) {
        http_query_parse(&x->args, &x->arena, x->query);
        x->args_parsed = true;
    }
    return &x->args;
}

static const char *get_query(void *http, const char *name)
{
    return http_query_get(args_of(http), name);
}

static bool each_query(void *http, bool (*fn)(void *, const char *, const char *), void *cls)
{
    const struct http_query *q = args_of(http);
    for (size_t i = 0; i < q->n; i++)
        if (!fn(cls, q->args[i].key, q->args[i].value ? q->args[i].value : ""))
            return false;
    return true;
}

static enum method parse_method(const char *m)
{
    static const struct { const char *name; enum method m; } methods[] = {
        {"GET", METHOD_GET}, {"HEAD", METHOD_HEAD}, {"POST", METHOD_POST},
        {"PUT", METHOD_PUT}, {"DELETE", METHOD_DELETE}, {"PATCH", METHOD_PATCH},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(m, methods[i].name))
            return methods[i].m;
    return METHOD_OTHER;
}

/* ---- responses ------------------------------------------------------------ */

/* A refused login (401, or 429 for too many failures): the user name it
 * gave, for the access log. Never the password. */
static void note_failed_user(struct exchange *x)
{
    if (x->res.status != 401 && x->res.status != 429)
        return;
    const char *h = header(x->conn, MHD_HTTP_HEADER_AUTHORIZATION);
    char user[AUTH_NAME_MAX + 1], pass[AUTH_HEADER_MAX];
    if (h && strlen(h) <= AUTH_HEADER_MAX &&
        auth_parse_basic(h, user, sizeof user, pass, sizeof pass))
        x->failed_user = copy(x, user, strlen(user));     /* NULL: logged without */
    memset(pass, 0, sizeof pass);
}

/* The arena is about to go with a large answer: keep copies of the strings
 * the access-log line needs, in one block. */
static bool keep_for_log(struct exchange *x)
{
    const char **fields[] = {&x->method, &x->req.path, &x->query, &x->req.user,
                             &x->failed_user};
    size_t n = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        n += *fields[i] ? strlen(*fields[i]) + 1 : 0;
    char *p = x->kept = malloc(n ? n : 1);
    if (!p)
        return false;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (*fields[i]) {
            size_t len = strlen(*fields[i]) + 1;
            memcpy(p, *fields[i], len);
            *fields[i] = p;
            p += len;
        }
    }
    return true;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct exchange *x)
{
    struct response *res = &x->res;
    bool release = arena_held(&x->arena) > RELEASE_ABOVE;
    void *body = (void *)(res->body ? res->body : "");
    if (release && (body = malloc(res->body_len ? res->body_len : 1)))
        memcpy(body, res->body ? res->body : "", res->body_len);
    if (!body)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        res->body_len, body, release ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (release)
            free(body);
        return MHD_NO;
    }
    if (res->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
    for (int i = 0; i < res->n_headers; i++)
        MHD_add_response_header(r, res->headers[i].name, res->headers[i].value);
    const char *connection = header(conn, MHD_HTTP_HEADER_CONNECTION);
    if (x->close || x->too_large || (connection && strcasestr(connection, "close")))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    x->answered = true;
    note_failed_user(x);
    if (release) {
        bool kept = keep_for_log(x);
        x->res.body = NULL;
        x->res.content_type = NULL;
        x->res.n_headers = 0;
        arena_release(&x->arena);
        if (!kept)
            return MHD_NO;
    }
    return ok;
}

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* ---- suspension: the API's hooks --------------------------------------------- */

static struct exchange *exchange_of(struct request *req)
{
    return (struct exchange *)((char *)req - offsetof(struct exchange, req));
}

static void suspend(struct request *req)
{
    atomic_fetch_add_explicit(&exchange_of(req)->server->suspended, 1, memory_order_relaxed);
    MHD_suspend_connection(exchange_of(req)->conn);
}

static void resume(struct request *req)
{
    atomic_fetch_sub_explicit(&exchange_of(req)->server->suspended, 1, memory_order_relaxed);
    MHD_resume_connection(exchange_of(req)->conn);
}

/* ---- how the client reached us: links and the log ------------------------------ */

static bool in_cidr(const struct cidr *c, const struct sockaddr *sa)
{
    const unsigned char *a;
    if (sa->sa_family == AF_INET && c->family == AF_INET)
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6 && c->family == AF_INET6)
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    else if (sa->sa_family == AF_INET6 && c->family == AF_INET &&
             IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12;
    else
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(a, c->addr, full) != 0)
        return false;
    return !rest || ((a[full] ^ c->addr[full]) & (0xff << (8 - rest))) == 0;
}

static bool trusted(const struct http_server *s, const struct sockaddr *peer)
{
    for (int i = 0; peer && i < s->n_proxies; i++)
        if (in_cidr(&s->proxies[i], peer))
            return true;
    return false;
}

/* The first element of a forwarded list ("https, http" from a chain of
 * proxies: the first is what the client used), in the arena. */
static const char *first_of(struct exchange *x, const char *v)
{
    if (!v)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, ", \t");
    const char *first = n ? copy(x, v, n) : NULL;
    if (n && !first)
        x->out_of_memory = true;
    return first;
}

/* The scheme and host for links: as this connection is (TLS or not, and
 * the Host header, which the router checks), unless a trusted proxy says
 * what the client used. */
static void link_base(struct http_server *s, struct exchange *x)
{
    x->req.scheme = s->scheme;
    x->req.public_url = s->public_url;
    if (!s->n_proxies || !trusted(s, x->req.client))
        return;
    const char *proto = first_of(x, header(x->conn, "X-Forwarded-Proto"));
    if (proto && (!strcasecmp(proto, "https") || !strcasecmp(proto, "http")))
        x->req.scheme = strcasecmp(proto, "https") ? "http" : "https";
    x->req.host = first_of(x, header(x->conn, "X-Forwarded-Host"));
    x->forwarded_for = header(x->conn, "X-Forwarded-For");
}

/* ---- the access handler --------------------------------------------------- */

/* A thread keeps the last exchange it freed for its next request. An
 * exchange is too large for malloc's small bins, and glibc consolidates its
 * fast bins before it serves such a size: a malloc per request cost about
 * 1% of a GET. Under AddressSanitizer every exchange is new, so that a use
 * after free is still caught. */
#ifdef __SANITIZE_ADDRESS__
#define KEEP_SPARE 0
#else
#define KEEP_SPARE 1
#endif
static pthread_key_t spare_key;     /* -> the thread's spare; freed at its exit */
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_key_create(void)
{
    pthread_key_create(&spare_key, free);
}

static struct exchange *exchange_alloc(void)
{
    if (KEEP_SPARE) {
        pthread_once(&spare_once, spare_key_create);
        struct exchange *x = pthread_getspecific(spare_key);
        if (x && pthread_setspecific(spare_key, NULL) == 0)
            return x;
    }
    return malloc(sizeof(struct exchange));
}

static void exchange_free(struct exchange *x)
{
    free(x->kept);
    free(x->body);
    arena_release(&x->arena);
    if (KEEP_SPARE) {
        pthread_once(&spare_once, spare_key_create);
        if (!pthread_getspecific(spare_key) && pthread_setspecific(spare_key, x) == 0)
            return;
    }
    free(x);
}

/* The URI log callback: the request line is in. The exchange is made here
 * because this is the only place the raw query string is seen. NULL (out of
 * memory) makes the access handler try again. */
void *exchange_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    /* zeroed but for the arena (first), whose 4 KiB need no zeroing */
    struct exchange *x = exchange_alloc();
    if (!x)
        return NULL;
    memset((char *)x + sizeof x->arena, 0, sizeof *x - sizeof x->arena);
    arena_init(&x->arena);
    x->server = cls;
    x->api_slot = api_reserve(&x->arena);   /* first: it cannot fail */
    clock_gettime(CLOCK_MONOTONIC, &x->start);
    /* the query is copied, then hidden from MHD (query.h says why) */
    const char *q = uri ? strchr(uri, '?') : NULL;
    if (q && q[1])
        x->out_of_memory = !(x->query = copy(x, q + 1, strlen(q + 1)));
    http_query_hide(uri);
    return x;
}

static struct exchange *begin(struct http_server *s, struct MHD_Connection *conn,
                              struct exchange *x, const char *url, const char *method)
{
    /* an exchange the URI callback could not make (out of memory) has not
     * seen the query, which MHD then parsed itself: a request with one is
     * not answered without it. It is made here without a URI: url is the
     * path MHD decoded, where a '?' (%3F) is the path's own. */
    bool late = !x;
    if (late && !(x = exchange_on_uri(s, NULL, conn)))
        return NULL;
    if (late && MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0)
        x->out_of_memory = true;
    x->begun = true;
    memcpy(x->request_id, "req-", 4);
    id_uuid4(x->request_id + 4);
    x->method = copy(x, method, strlen(method));
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    x->req = (struct request){
        .arena = &x->arena, .method = parse_method(method), .path = copy(x, url, strlen(url)),
        .query_string = x->query, .header = req_header, .query = get_query,
        .each_query = each_query, .http = x,
        .client = peer ? peer->client_addr : NULL, .request_id = x->request_id,
        .suspend = suspend, .resume = resume, .api_state = x->api_slot,
    };
    if (!x->method || !x->req.path)
        x->out_of_memory = true;
    x->conn = conn;
    link_base(s, x);
    const char *cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->max_body)
        x->too_large = true;
    atomic_fetch_add(&s->in_flight, 1);
    return x;
}

/* The connection's entry in the guard (NULL if it could not have one). */
static struct http_guard_conn *guard_conn(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result framing_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    http_framing_field(cls, key, value);
    return MHD_YES;
}

/* The framing decision (framing.h) on the head MHD parsed; st: what it
 * found. */
static enum http_framing framing(struct MHD_Connection *conn, const char *version,
                                 struct http_framing_state *st)
{
    *st = (struct http_framing_state){0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, framing_field, st);
    return http_framing_verdict(st, version);
}

/* From here the request is answered: its body, if any, no longer counts
 * against the body deadline. false: the guard has closed the connection. */
static bool body_done(struct http_server *s, struct exchange *x)
{
    if (x->body_done)
        return true;
    x->body_done = true;
    return http_guard_body_done(s->guard, guard_conn(x->conn));
}

/* Send an answer made at the access handler's first call, before the
 * body: MHD then reads no body and closes the connection if one was
 * declared. */
static enum MHD_Result send_early(struct http_server *s, struct exchange *x)
{
    if (!body_done(s, x))
        return MHD_NO;
    return send_response(x->conn, x);
}

/* The HTTP layer's own early answers (api_http_error()). */
static enum MHD_Result answer_early(struct http_server *s, struct exchange *x, int status)
{
    api_http_error(&x->req, &x->res, status);
    return send_early(s, x);
}

/* One of the API's entries (api.h) on this request, the errors it logs
 * tagged with the request's id. */
static enum api_status run_api(struct http_server *s, struct exchange *x,
                               enum api_status (*entry)(struct api *, struct request *,
                                                        struct response *))
{
    log_set_request(x->request_id);
    enum api_status st = entry(s->api, &x->req, &x->res);
    log_set_request(NULL);
    return st;
}

/* Does a head whose framing passed declare a body? It is framed by one
 * Content-Length or by chunks. */
static bool declares_body(const struct http_framing_state *st)
{
    return st->codings || (st->length && strtoull(st->length, NULL, 10) > 0);
}

/* The API's verdict on a head whose body is unread (api_head()). */
static enum MHD_Result gate(struct http_server *s, struct exchange *x, enum api_status st)
{
    switch (st) {
    case API_SUSPENDED:     /* called again as at the head once resumed (MHD's
                               state stays "headers processed") */
        return MHD_YES;
    case API_ADMITTED:      /* read the body (a 100 Continue if it was asked for) */
        x->gating = false;
        return MHD_YES;
    case API_DONE:          /* answered without reading the body (refused, or a
                               path that needs none), and MHD closes the
                               connection, whose body is unread */
        x->gating = false;
        x->close = true;
        return send_early(s, x);
    }
    return MHD_NO;
}

enum MHD_Result exchange_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_size,
                                     void **con_cls)
{
    struct http_server *s = cls;
    struct exchange *x = *con_cls;
    if (!x || !x->begun) {
        /* The head is complete: the body's clock starts (the guard's).
         * MHD_NO closes the connection (here: one the guard closed). */
        if (!http_guard_head_done(s->guard, guard_conn(conn)))
            return MHD_NO;
        if (!(x = begin(s, conn, x, url, method)))
            return MHD_NO;
        *con_cls = x;
        if (x->out_of_memory) {
            /* the path, for the 503's dialect, is MHD's for this call:
             * the copy may be what failed */
            api_http_out_of_memory(&x->req, &x->res, url);
            return send_early(s, x);
        }
        if (atomic_load(&s->draining)) {
            x->close = true;
            return answer_early(s, x, 503);
        }
        struct http_framing_state fs;
        enum http_framing fr = framing(conn, version, &fs);
        if (fr != HTTP_FRAMING_OK && fr != HTTP_FRAMING_NO_HOST) {
            x->close = true;
            return answer_early(s, x, 400);
        }
        if (x->too_large)       /* declared too large: answer before reading it */
            return answer_early(s, x, 413);
        /* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400; where it
         * ends is clear, so the connection may go on */
        if (fr == HTTP_FRAMING_NO_HOST)
            return answer_early(s, x, 400);
        /* A body is read for good credentials only: nobody else has one
         * held in memory, or holds a connection while sending it slowly. */
        if (declares_body(&fs)) {
            x->gating = true;
            return gate(s, x, run_api(s, x, api_head));
        }
        return MHD_YES;
    }
    if (x->gating)              /* resumed: the password check is done */
        return gate(s, x, run_api(s, x, api_resume));
    if (x->answered) {
        *upload_size = 0;       /* discard what follows an early answer */
        return MHD_YES;
    }
    if (*upload_size) {
        /* The whole body has --timeout seconds from the end of its head,
         * chunk-size lines and trailers included: the guard's watchdog
         * keeps that deadline, as MHD's own timer sees only inactivity. */
        size_t n = *upload_size;
        *upload_size = 0;
        if (x->too_large || x->out_of_memory)
            return MHD_YES;     /* discarded: the answer says why */
        if (x->body_len + n > s->max_body) {
            x->too_large = true;
            return MHD_YES;
        }
        if (x->body_len + n + 1 > x->body_cap) {     /* grow geometrically */
            size_t cap = x->body_cap ? x->body_cap : 4096;
            while (cap < x->body_len + n + 1)
                cap *= 2;
            char *grown = realloc(x->body, cap);
            if (!grown) {
                free(x->body);
                x->body = NULL;
                x->body_len = x->body_cap = 0;
                x->out_of_memory = true;
                return MHD_YES;
            }
            x->body = grown;
            x->body_cap = cap;
        }
        memcpy(x->body + x->body_len, upload_data, n);
        x->body_len += n;
        x->body[x->body_len] = '\0';
        return MHD_YES;
    }
    if (!body_done(s, x))
        return MHD_NO;
    if (x->too_large) {
        api_http_error(&x->req, &x->res, 413);
    } else if (x->out_of_memory) {     /* the body's buffer */
        api_http_out_of_memory(&x->req, &x->res, x->req.path);
    } else {
        enum api_status st;
        if (!x->started) {
            x->started = true;
            x->req.body = x->body;
            x->req.body_len = x->body_len;
            st = run_api(s, x, api_handle);
        } else {
            st = run_api(s, x, api_resume);
        }
        if (st == API_SUSPENDED)
            return MHD_YES;     /* called again once resumed */
    }
    return send_response(conn, x);
}

static unsigned method_index(enum method m)
{
    switch (m) {
    case METHOD_GET: return 0;
    case METHOD_HEAD: return 1;
    case METHOD_POST: return 2;
    case METHOD_PUT: return 3;
    case METHOD_DELETE: return 4;
    case METHOD_PATCH: return 5;
    default: return 6;
    }
}

/* The peer's address as text, into buf (at least INET6_ADDRSTRLEN bytes).
 * IPv4, every request's case, is written by hand: glibc's inet_ntop goes
 * through sprintf, which was 2% of a GET's CPU in bench/run's profile. */
static const char *client_text(const struct sockaddr *sa, char *buf, size_t size)
{
    if (!sa)
        return NULL;
    if (sa->sa_family == AF_INET) {
        if (size < INET_ADDRSTRLEN)
            return NULL;
        const unsigned char *b =
            (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr.s_addr;
        char *w = buf;
        for (int i = 0; i < 4; i++) {
            if (b[i] >= 100)
                *w++ = (char)('0' + b[i] / 100);
            if (b[i] >= 10)
                *w++ = (char)('0' + b[i] / 10 % 10);
            *w++ = (char)('0' + b[i] % 10);
            *w++ = i < 3 ? '.' : '\0';
        }
        return buf;
    }
    if (sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                         (socklen_t)size)
                   ? buf
                   : NULL;
    return NULL;
}

/* The request is over (answered, or its connection ended): count it, log
 * it, free it. An exchange the access handler never saw was no request
 * (the connection ended inside its head): it goes without a trace. */
void exchange_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct exchange *x = *con_cls;
    /* The connection now waits for its next head (or closes). */
    http_guard_request_done(s->guard, guard_conn(conn));
    if (!x)
        return;
    *con_cls = NULL;
    if (!x->begun) {
        exchange_free(x);
        return;
    }
    double secs = seconds_since(&x->start);
    int status = x->answered ? x->res.status : 0;
    metrics_request(x->req.route, x->req.dialect, method_index(x->req.method), status, secs);
    char client[INET6_ADDRSTRLEN];
    struct log_access a = {
        .method = x->method, .path = x->req.path, .query = x->query, .status = status,
        .duration_ms = secs * 1e3, .bytes = x->answered ? x->res.body_len : 0,
        .request_id = x->request_id, .user = x->req.user, .failed_user = x->failed_user,
        .client = client_text(x->req.client, client, sizeof client),
        .forwarded_for = x->forwarded_for,
        .user_agent = header(conn, MHD_HTTP_HEADER_USER_AGENT),
        .aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK,
    };
    log_access(&a);
    exchange_free(x);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* Percent-decoding of the path, as MHD's own but for %00 (query.h). */
size_t exchange_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return http_unescape(s);
}
