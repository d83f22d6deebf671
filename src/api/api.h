/* api.h: the API layer's entry point. The HTTP adapter turns each request
 * into a struct request, calls api_handle(), and sends the struct response.
 * Everything between (routing, authentication, microversions, JSON, the two
 * dialects) lives below this header.
 *
 * The API never waits. Work that takes time (a password check, a commit)
 * goes to the thread that does it: the API first calls req->suspend() (the
 * HTTP layer then sends nothing on that connection), hands the work on, and
 * answers API_SUSPENDED; when the work is done, its thread calls
 * req->resume(), and the HTTP layer calls api_resume() on one of its own
 * threads, which continues the request (and may suspend it again).
 */
#ifndef ATTACHD_API_H
#define ATTACHD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "auth/auth.h"
#include "core/core.h"
#include "util/arena.h"

#define API_MAX_HEADERS 12

enum method {
    METHOD_GET = 1, METHOD_HEAD = 2, METHOD_POST = 4, METHOD_PUT = 8,
    METHOD_DELETE = 16, METHOD_PATCH = 32, METHOD_OTHER = 64,
};

struct request {
    struct arena *arena;
    enum method method;
    const char *path;               /* without the query string */
    const char *query_string;       /* as sent, without its '?'; NULL: none */
    const char *body;
    size_t body_len;
    /* Access to the HTTP layer's headers and query arguments. The
     * arguments are libmicrohttpd's parse of query_string (src/http/query.h),
     * which the Hostway dialect reads; query gives the first value of a
     * name. The other dialects parse query_string as webob does
     * (src/api/query.c). */
    const char *(*header)(void *http, const char *name);
    const char *(*query)(void *http, const char *name);
    /* Call fn for each query argument; stop and return false when it does. */
    bool (*each_query)(void *http, bool (*fn)(void *cls, const char *key, const char *value),
                       void *cls);
    void *http;
    const struct sockaddr *client;  /* the peer's address; NULL if unknown */
    const char *request_id;         /* "req-<uuid4>" */
    const char *user;               /* set once authenticated, for the access log */
    /* How the client reached attachd, for the links in answers (the HTTP
     * layer's): the scheme it used ("http" when NULL) and the host it named
     * (NULL: the Host header), each as a trusted proxy forwarded them; or the
     * base every link has (--public-url). */
    const char *scheme;
    const char *host;
    const char *public_url;
    /* What the API made of it, for the metrics: the route that matched and
     * the dialect (strings that live as long as the process), or NULL. */
    const char *route;
    const char *dialect;
    /* Set by the HTTP layer: see the top of this file. suspend() is called
     * on the request's own thread, resume() on any, once per suspend(). */
    void (*suspend)(struct request *req);
    void (*resume)(struct request *req);
    /* The API's, across a suspension. The HTTP layer may set it before
     * api_handle() to api_reserve()'s slot; else api_handle() makes it. */
    void *api_state;
};

struct response_header {
    const char *name, *value;
};

struct response {
    int status;
    const char *content_type;       /* NULL: no body */
    const char *body;
    size_t body_len;
    struct response_header headers[API_MAX_HEADERS];
    int n_headers;
};

struct api;

/* API_ADMITTED: api_head()'s only: read the body, then api_handle(). */
enum api_status { API_DONE, API_SUSPENDED, API_ADMITTED };

struct api *api_new(struct core *core, struct store *store, struct auth *auth);
/* How long a Hostway detach waits for the hypervisor's confirmation before
 * it answers 202 instead of 204 (seconds). */
void api_set_detach_wait(struct api *a, unsigned seconds);
void api_free(struct api *a);
/* Room for a request's state, taken from a fresh arena: its first
 * allocation, which the arena's inline buffer holds, so that it cannot fail
 * (running out of memory later is answered 503; util/oom.h). The HTTP layer
 * reserves it before it copies anything of the request into the arena, and
 * hands it over in req->api_state. */
void *api_reserve(struct arena *fresh);
/* The credentials of a request whose body is declared but not yet read,
 * checked from its head (step 3 of router.c alone), so that nobody has a
 * body read and held before showing good credentials: API_ADMITTED when
 * they are good and the body may be read, then api_handle() as for any
 * request, which checks them again (the cache answers, and a password
 * changed meanwhile counts); API_DONE with res filled in when the request
 * is answered without its body: refused, or on a path that needs no
 * credentials (version discovery, /healthcheck), whose answers depend on
 * no body; or API_SUSPENDED while a password is checked, after which
 * api_resume() gives one of the other two. */
enum api_status api_head(struct api *a, struct request *req, struct response *res);
/* Handle a request: API_DONE with res filled in, or API_SUSPENDED. */
enum api_status api_handle(struct api *a, struct request *req, struct response *res);
/* Go on with a request whose work is done (after req->resume()). */
enum api_status api_resume(struct api *a, struct request *req, struct response *res);

/* Helpers the HTTP layer uses too. */
void api_add_header(struct response *res, const char *name, const char *value);
/* A whole error response for failures found before the API ran: 400 (the
 * framing), 413, 503 (stopping), in the dialect req->path names; a 503
 * that needs no memory if the answer itself runs out of it. Both are made
 * in the request's call slot (api_reserve()). */
void api_http_error(struct request *req, struct response *res, int status);
/* The 503 of a request the HTTP layer ran out of memory for (its copies of
 * the head), made without allocating, in the dialect path names. */
void api_http_out_of_memory(struct request *req, struct response *res, const char *path);

#endif
