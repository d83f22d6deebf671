/* server.h: the HTTP/1.1 adapter on libmicrohttpd. It owns sockets,
 * limits, timeouts, TLS and the access log, turns each request into a
 * struct request for api_handle(), and sends back the struct response. */
#ifndef ATTACHD_HTTP_SERVER_H
#define ATTACHD_HTTP_SERVER_H

#include <stddef.h>

#include "api/api.h"
#include "http/tls.h"

#define HTTP_MAX_BODY (1024 * 1024)

struct http_options {
    const char *listen;         /* "ADDR:PORT" or "[ADDR6]:PORT" */
    unsigned threads;           /* worker threads (epoll each) */
    unsigned timeout;           /* seconds a connection may stay idle, and a body may take */
    unsigned header_timeout;    /* seconds a request head may take from its first byte */
    unsigned max_connections;   /* see http_connections_that_fit() */
    unsigned max_per_ip;
    size_t max_body;            /* larger bodies get 413 */
    struct http_tls *tls;       /* HTTPS with these (the caller's); NULL: plain HTTP */
    const char *public_url;     /* the base of every link; NULL: as the client reached us */
    const char *trusted_proxies;/* "ADDR[/BITS],...": whose X-Forwarded-* headers count */
};

struct http_server;
struct sockaddr_storage;

/* Parse "ADDR:PORT" / "[ADDR6]:PORT" (the port 1-65535); -1 with a reason
 * in err. */
int http_parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, int errlen);

/* Raise the soft limit on open files (RLIMIT_NOFILE) to the hard one, and
 * return how many client connections fit in it beside what the process
 * keeps open for itself with THREADS HTTP threads (0: none); *limit gets
 * the limit. The cap must not exceed it: a connection accepted past the
 * limit is not refused but left waiting. */
unsigned http_connections_that_fit(unsigned threads, unsigned long *limit);

struct http_server *http_start(const struct http_options *opts, struct api *api, char *err,
                               int errlen);
/* Stop accepting, answer new requests 503, wait for the requests in
 * flight, then close every connection and free the server. */
void http_stop(struct http_server *s);

/* GET /metrics on a listener of its own (--metrics-listen), for anyone who
 * can reach it: one thread, a few connections, nothing else served
 * (exporter.c). */
struct http_exporter;
struct http_exporter *http_exporter_start(const char *listen, char *err, int errlen);
void http_exporter_stop(struct http_exporter *e);

#endif
