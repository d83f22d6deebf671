/* server_int.h: what the HTTP adapter's files share; not part of its
 * interface (server.h is). server.c starts and stops the daemon (its
 * options, the listening socket, the connection cap, draining); exchange.c
 * handles each request on it, from the URI callback to the access log. */
#ifndef ATTACHD_HTTP_SERVER_INT_H
#define ATTACHD_HTTP_SERVER_INT_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/server.h"

/* A trusted proxy's address range. */
struct cidr {
    int family;
    unsigned char addr[16];
    unsigned bits;
};

#define MAX_PROXIES 32

struct http_server {
    struct MHD_Daemon *daemon;
    struct api *api;
    struct http_guard *guard;       /* the cap and the deadlines MHD lacks */
    size_t max_body;
    atomic_int in_flight;           /* requests being handled */
    atomic_int suspended;           /* of those, waiting for work on another thread */
    atomic_bool draining;           /* stopping: no new requests */
    const char *scheme;             /* "https" with TLS */
    char *public_url;
    struct cidr proxies[MAX_PROXIES];
    int n_proxies;
};

/* The callbacks http_start() gives MHD for each request (exchange.c); cls
 * is the struct http_server, but for exchange_unescape().
 *
 * The URI log callback: makes the request's exchange, as the request line
 * is in; NULL (out of memory) makes the access handler try again. */
void *exchange_on_uri(void *cls, const char *uri, struct MHD_Connection *conn);
/* The access handler: the request's head, then each chunk of its body,
 * then the API's answer (again after each resumption). */
enum MHD_Result exchange_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_size,
                                     void **con_cls);
/* The request is over: counted, logged and freed. */
void exchange_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe);
/* The path's percent-decoding, but for %00. */
size_t exchange_unescape(void *cls, struct MHD_Connection *conn, char *s);

#endif
