/* exporter.c: GET /metrics on a listener of its own (--metrics-listen), so
 * that Prometheus can scrape attachd without credentials: whoever can reach
 * that address may read the metrics, and nothing else is served there.
 *
 * It is kept apart from the API listener on purpose: one thread of its own
 * (MHD's internal polling thread), few connections, short timeouts, no
 * guard; a scrape is a few kilobytes every few seconds. Metrics hold no
 * secret (no user names, no ids), but they do tell the load and the error
 * rates: bind it to an address only the monitoring can reach.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/query.h"
#include "http/server.h"
#include "util/log.h"
#include "util/metrics.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct http_exporter {
    struct MHD_Daemon *daemon;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    static int seen;
    if (!*con_cls) {            /* the head: wait for the (ignored) body */
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/metrics") != 0) {
        static char msg[] = "Not found: only /metrics is served here.\n";
        return reply(conn, 404, "text/plain", msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static char msg[] = "Method not allowed: GET /metrics.\n";
        return reply(conn, 405, "text/plain", msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT);
    }
    size_t len;
    char *text = metrics_render(&len);
    if (!text) {
        static char msg[] = "Out of memory.\n";
        return reply(conn, 503, "text/plain", msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT);
    }
    return reply(conn, 200, CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn("metrics listener: %s", msg);
}

/* The query is ignored here, and hidden from libmicrohttpd (query.h says
 * why). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    http_query_hide(uri);
    return NULL;
}

struct http_exporter *http_exporter_start(const char *listen, char *err, int errlen)
{
    struct sockaddr_storage addr = {0};
    if (http_parse_listen(listen, &addr, err, errlen) < 0)
        return NULL;
    struct http_exporter *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    e->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                 MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_CONNECTION_LIMIT, 16u,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, 8u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
                                 MHD_OPTION_END);
    if (!e->daemon) {
        snprintf(err, (size_t)errlen,
                 "cannot listen on --metrics-listen %s (address in use or not available)",
                 listen);
        free(e);
        return NULL;
    }
    return e;
}

void http_exporter_stop(struct http_exporter *e)
{
    if (!e)
        return;
    MHD_stop_daemon(e->daemon);
    free(e);
}
