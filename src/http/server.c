/* server.c: see server.h. The daemon's start and stop: the listening
 * address, MHD's options, the connection cap and the accept policy, MHD's
 * messages, the HTTP layer's metrics, and draining. Each request on the
 * daemon is exchange.c's; what the two share is server_int.h.
 *
 * MHD times connections by inactivity only and refuses everyone at its
 * limit; the connection guard (guard.h) adds the deadlines for a request's
 * head and body and makes room at the cap. This file tells it when a
 * connection starts and closes, exchange.c where each request is.
 *
 * Stopping: stop accepting; answer new requests on open connections 503
 * with Connection: close; wait until no request is in flight, so that no
 * connection is left suspended (MHD aborts if one is); then stop MHD.
 *
 * HTTPS is libmicrohttpd's, on GnuTLS, with the certificate tls.c keeps
 * (and reloads).
 */
#include "http/server_int.h"

#include <arpa/inet.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/guard.h"
#include "util/log.h"
#include "util/metrics.h"

/* ---- connections and MHD's messages ----------------------------------------- */

/* The connection cap. libmicrohttpd's own limit stops accepting when it is
 * reached, so the next client waits in the listen backlog with no answer;
 * here the accept policy decides instead: the guard makes room by closing a
 * connection that has not sent a whole head, or the new one is closed at
 * once. MHD checks --max-per-ip before this, so a client at its own limit
 * cannot make room for itself. A connection holds its place from this
 * callback until MHD reports it closed; should MHD fail to set up a
 * connection it admitted (out of memory), the place is lost. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)addr;
    (void)len;
    struct http_server *s = cls;
    /* Draining: a new connection is closed at once (a client or a load
     * balancer tries elsewhere); kept-alive ones get 503 (exchange.c). */
    if (atomic_load(&s->draining))
        return MHD_NO;
    return http_guard_admit(s->guard) ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_ctx = ci ? http_guard_opened(s->guard, ci->connect_fd) : NULL;
        if (!*socket_ctx && ci) {
            /* unguarded, it could be held for ever: end it (MHD cleans up) */
            log_warn("http: out of memory; closing a new connection");
            shutdown(ci->connect_fd, SHUT_RDWR);
        }
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_guard_closed(s->guard, *socket_ctx);
        *socket_ctx = NULL;
    }
}

/* At most one line a minute for a message that a client can cause by the
 * thousand; the metric counts them all. */
static void log_seldom(atomic_long *last, const char *msg, const char *metric)
{
    long now = (long)time(NULL), was = atomic_load(last);
    if (now - was < 60 || !atomic_compare_exchange_strong(last, &was, now))
        return;
    log_warn("http: %s (counted in %s; this line is written at most once a minute)", msg,
             metric);
}

/* libmicrohttpd's messages. A failed TLS handshake (a scanner, plain HTTP
 * on the HTTPS port, an old TLS version) and a connection refused at
 * --max-per-ip (MHD refuses those before our accept policy sees them; its
 * own cap is set out of reach, so its "connection limit" is the per-address
 * one) are counted, and written seldom. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    static atomic_long last_tls_line, last_per_ip_line;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    if (strstr(msg, "andshake") || strstr(msg, "TLS")) {
        metrics_inc(METRIC_TLS_HANDSHAKE_FAILED);
        log_seldom(&last_tls_line, msg, "attachd_tls_handshake_failures_total");
    } else if (strstr(msg, "reached connection limit")) {
        metrics_inc(METRIC_CONN_REFUSED_PER_IP);
        log_seldom(&last_per_ip_line, msg,
                   "attachd_http_connections_refused_total{reason=\"per_ip\"}");
    } else {
        log_warn("http: %s", msg);
    }
}

/* ---- start and stop --------------------------------------------------------- */

int http_parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, int errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || strlen(listen) >= sizeof host) {
        snprintf(err, (size_t)errlen, "--listen wants ADDR:PORT, got \"%s\"", listen);
        return -1;
    }
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535) {
        snprintf(err, (size_t)errlen, "--listen %s: the port must be 1 to 65535", listen);
        return -1;
    }
    size_t hlen = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, (size_t)errlen, "cannot resolve --listen %s: %s", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

/* What the process keeps open besides client connections, measured with
 * `ls /proc/PID/fd` after requests of every kind: standard input, output
 * and error (3), the listening socket (1), SQLite's writer connection, the
 * main thread's and each password verifier's reader (database file and
 * WAL: 2 each, 8 in all) and the shared WAL index (1): 13. FD_RESERVE
 * doubles that and more, for SQLite's temporary files (a large sort) and
 * for the subsystems still to come. Each HTTP thread adds its epoll
 * instance, its wake-up eventfd and its SQLite reader (database and WAL):
 * 4, and may hold one socket just accepted that the accept policy is about
 * to refuse: FD_PER_THREAD. On top of the cap itself come the connections
 * the guard closed that MHD has not yet cleaned up: HTTP_GUARD_SLACK_MIN
 * always, more when the limit has room (eviction_slack()). */
#define FD_RESERVE 32
#define FD_PER_THREAD 5

/* Client connections the current limit leaves room for, the least slack
 * included; *limit gets the limit. */
static unsigned connection_room(unsigned threads, unsigned long *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        *limit = 0;
        return 0;
    }
    *limit = rl.rlim_cur == RLIM_INFINITY ? ULONG_MAX : (unsigned long)rl.rlim_cur;
    unsigned long kept =
        FD_RESERVE + (unsigned long)FD_PER_THREAD * threads + HTTP_GUARD_SLACK_MIN;
    if (*limit <= kept)
        return 0;
    unsigned long fit = *limit - kept;
    return fit > 65536 ? 65536 : (unsigned)fit;
}

/* Room over the cap for evicted connections MHD has not yet cleaned up.
 * Each newcomer at the cap closes one, and MHD ends it on that
 * connection's thread a turn of its event loop later, after accepting up
 * to 11 more: under a flood of new connections (measured: 17 addresses x
 * 64 trickling heads against the default cap, ~1000 evictions a second)
 * about as many are pending as newcomers arrive meanwhile, 60 or so; with
 * room for only 48, 1% of a normal client's new connections were refused.
 * So a quarter of the cap (and at least a few per thread), as much of it
 * as the open-files limit spares, never less than the budgeted
 * HTTP_GUARD_SLACK_MIN. */
static unsigned eviction_slack(unsigned threads, unsigned max_connections)
{
    unsigned long limit;
    unsigned room = connection_room(threads, &limit);
    unsigned spare = room > max_connections ? room - max_connections : 0;
    unsigned want = max_connections / 4 > 16 + 12 * threads ? max_connections / 4
                                                             : 16 + 12 * threads;
    return HTTP_GUARD_SLACK_MIN + (spare < want ? spare : want);
}

/* "ADDR[/BITS],..." into s->proxies (the CLI checked the form). */
static bool parse_proxies(struct http_server *s, const char *list, char *err, int errlen)
{
    const char *p = list;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        char item[64];
        if (n >= sizeof item || s->n_proxies == MAX_PROXIES)
            goto bad;
        memcpy(item, p, n);
        item[n] = '\0';
        struct cidr *c = &s->proxies[s->n_proxies];
        char *slash = strchr(item, '/');
        if (slash)
            *slash = '\0';
        c->family = strchr(item, ':') ? AF_INET6 : AF_INET;
        c->bits = c->family == AF_INET ? 32 : 128;
        if (inet_pton(c->family, item, c->addr) != 1)
            goto bad;
        if (slash) {
            char *end;
            unsigned long bits = strtoul(slash + 1, &end, 10);
            if (*end || bits > c->bits)
                goto bad;
            c->bits = (unsigned)bits;
        }
        s->n_proxies++;
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
bad:
    snprintf(err, (size_t)errlen, "--trusted-proxy: \"%s\" is not a list of at most %d "
             "addresses or CIDR ranges", list, MAX_PROXIES);
    return false;
}

/* For GET /metrics: what the HTTP layer has now. */
static void collect(void *cls, struct metrics_out *o)
{
    struct http_server *s = cls;
    metrics_gauge(o, "attachd_http_requests_in_flight",
                  "Requests being handled now, suspended ones included.", NULL,
                  atomic_load(&s->in_flight));
    metrics_gauge(o, "attachd_http_requests_suspended",
                  "Requests waiting for work on another thread (a commit, a password check, "
                  "the hypervisor).", NULL, atomic_load(&s->suspended));
    metrics_gauge(o, "attachd_http_connections_open", "Client connections open now.", NULL,
                  http_guard_open(s->guard));
    metrics_gauge(o, "attachd_http_connections_max", "The connection cap (--max-connections).",
                  NULL, http_guard_cap(s->guard));
}

struct http_server *http_start(const struct http_options *o, struct api *api, char *err,
                               int errlen)
{
    struct sockaddr_storage addr = {0};
    if (http_parse_listen(o->listen, &addr, err, errlen) < 0)
        return NULL;
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->max_body = o->max_body;
    s->scheme = o->tls ? "https" : "http";
    if ((o->public_url && !(s->public_url = strdup(o->public_url))) ||
        (o->trusted_proxies && !parse_proxies(s, o->trusted_proxies, err, errlen))) {
        if (o->public_url && !s->public_url)
            snprintf(err, (size_t)errlen, "out of memory");
        free(s->public_url);
        free(s);
        return NULL;
    }
    unsigned threads = o->threads > 1 ? o->threads : 1;
    unsigned slack = eviction_slack(threads, o->max_connections);
    s->guard = http_guard_new(o->max_connections, slack, o->header_timeout, o->timeout, err,
                              errlen);
    if (!s->guard) {
        free(s->public_url);
        free(s);
        return NULL;
    }
    /* MHD shares its own limit out among the worker threads; set it high
     * enough that any one thread could hold every connection the guard
     * admits, so that only accept_policy() decides. */
    unsigned mhd_limit = (o->max_connections + slack + 1) * threads;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (o->tls)
        flags |= MHD_USE_TLS;
    s->daemon = MHD_start_daemon(
        flags, 0, accept_policy, s, exchange_on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, exchange_on_uri, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, o->threads > 1 ? o->threads : 0u,
        MHD_OPTION_CONNECTION_TIMEOUT, o->timeout,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_per_ip,
        /* each connection's pool, which libmicrohttpd zeroes for every
         * request: 16 KiB takes a request line and headers of about 15 KiB
         * together (Nova's eventlet takes 8 KiB a line), then 431; 32 KiB
         * cost a GET 8% of its CPU in that memset alone */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, exchange_on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, exchange_unescape, NULL,
        /* the TLS options last: without TLS, MHD stops reading here (it
         * would not take their arguments, and misread what follows) */
        o->tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END,
        o->tls ? http_tls_callback(o->tls) : NULL,
        MHD_OPTION_HTTPS_PRIORITIES, HTTP_TLS_PRIORITIES,
        MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, (size_t)errlen, "cannot listen on %s (address in use or not available%s)",
                 o->listen, o->tls ? ", or TLS could not be set up" : "");
        http_guard_free(s->guard);
        free(s->public_url);
        free(s);
        return NULL;
    }
    metrics_register(collect, s);
    return s;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    /* New connections are refused by accept_policy() from here on. Not
     * MHD_quiesce_daemon(): in libmicrohttpd 0.9.75 its removal of the
     * listening socket from each pool thread's epoll set races with the
     * thread's own removal at the connection limit, which fires once the
     * daemon is quiesced too, and the loser aborts the process ("Failed to
     * remove listen FD from epoll set"). */
    atomic_store(&s->draining, true);
    /* Every piece of work a request waits for ends in bounded time (a
     * commit within the store's busy timeout, a password check within the
     * verifiers' queue), so this ends; MHD must not be stopped while a
     * connection is suspended. */
    for (unsigned i = 1; atomic_load(&s->in_flight) > 0; i++) {
        usleep(10000);
        if (i % 500 == 0)
            log_info("http: waiting for %d requests in flight", atomic_load(&s->in_flight));
    }
    metrics_unregister(collect, s);
    MHD_stop_daemon(s->daemon);
    http_guard_free(s->guard);     /* after MHD, which reports every connection closed */
    free(s->public_url);
    free(s);
}

/* The highest soft limit the kernel allows when the hard one is "unlimited". */
static rlim_t nr_open(void)
{
    unsigned long v = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v ? (rlim_t)v : (rlim_t)1 << 20;
}

unsigned http_connections_that_fit(unsigned threads, unsigned long *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY ? nr_open() : rl.rlim_max;
        if (rl.rlim_cur < want) {
            struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
            setrlimit(RLIMIT_NOFILE, &raised);   /* if refused, the soft limit stands */
        }
    }
    return connection_room(threads, limit);
}
