/* ops.c: the two routes for operators, outside both dialects.
 *
 * GET /healthcheck (no credentials): 200 when the store answers a read and
 * accepts a write, else 503 with the reason; a load balancer or systemd can
 * ask it every few seconds. The write is real (a row of the meta table,
 * committed through the writer like any change), so a database that was
 * deleted, made read-only or filled up is seen. Probes are coalesced: while
 * one is being committed, checks that arrive wait for the next, which
 * starts when it ends, so that a flood of health checks costs one write per
 * group commit, and every answer reflects a write begun after it was asked.
 *
 * GET /metrics (admins; anyone on --metrics-listen): util/metrics.h's
 * exposition.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/call.h"
#include "store/store.h"
#include "util/metrics.h"
#include "util/oom.h"

struct health {
    struct store *store;
    pthread_mutex_t lock;       /* everything below */
    struct store_job job;       /* the probe being committed */
    bool running;
    struct call *waiting;       /* answered by the running probe */
    struct call *next_round;    /* came while it ran: answered by the next one */
};

struct health *health_new(struct store *store)
{
    struct health *h = calloc(1, sizeof *h);
    if (h) {
        h->store = store;
        pthread_mutex_init(&h->lock, NULL);
    }
    return h;
}

void health_free(struct health *h)
{
    if (h) {
        pthread_mutex_destroy(&h->lock);
        free(h);
    }
}

static void health_answer(struct call *c, int rc)
{
    const char *why = NULL;
    switch (rc) {
    case 0: break;
    case -STORE_UNAVAILABLE:
        why = "the store refuses writes: its database file was moved, deleted or made "
              "read-only since attachd opened it (see the log), or attachd is stopping";
        break;
    case -STORE_BUSY: why = "the store's database stayed locked by another process"; break;
    case -1: why = "the store did not answer a read (see the log)"; break;
    default: why = "the store could not commit a write (see the log)"; break;
    }
    json_t *body = why ? json_pack("{s:s, s:s}", "status", "unavailable", "reason", why)
                       : json_pack("{s:s}", "status", "ok");
    reply_json(c, why ? 503 : 200, body);
    if (why)
        api_add_header(c->res, "Retry-After", "5");
    api_add_header(c->res, "Cache-Control", "no-store");
}

/* After a resume: the probe's outcome is in c->health_rc. */
static void health_resumed(struct call *c)
{
    health_answer(c, c->health_rc);
}

static void probe_done(struct store_job *job);

/* Under h->lock. */
static void probe_start(struct health *h)
{
    h->running = true;
    h->job = (struct store_job){.fn = store_probe_write, .arg = NULL, .done = probe_done};
    h->job.arg = h;
    store_submit(h->store, &h->job);
}

/* On the writer thread: answer the checks that waited for this probe; start
 * the next one for those that came meanwhile. Nothing of h is touched after
 * the first resume: the last request may then finish, and the daemon stop. */
static void probe_done(struct store_job *job)
{
    struct health *h = job->arg;
    int rc = job->rc;
    pthread_mutex_lock(&h->lock);
    struct call *answer = h->waiting;
    h->waiting = h->next_round;
    h->next_round = NULL;
    h->running = false;
    if (h->waiting)
        probe_start(h);
    pthread_mutex_unlock(&h->lock);
    while (answer) {
        struct call *next = answer->health_next;
        answer->health_rc = rc;
        answer->req->resume(answer->req);
        answer = next;
    }
}

void ops_healthcheck(struct call *c, struct health *h, struct store *store)
{
    if (c->req->method != METHOD_GET && c->req->method != METHOD_HEAD) {
        reply_error(c, 405, "The method specified is not allowed for this resource.");
        api_add_header(c->res, "Allow", "GET, HEAD");
        return;
    }
    struct store_conn *r = store_reader(store);
    int64_t epoch;
    bool read = false;
    if (r && store_read_begin(r) == STORE_OK) {
        read = store_auth_epoch(r, &epoch) == STORE_OK;
        store_read_end(r);
    }
    if (!read) {
        health_answer(c, -1);
        return;
    }
    c->then = health_resumed;
    c->suspended = true;
    c->req->suspend(c->req);
    pthread_mutex_lock(&h->lock);
    if (h->running) {
        c->health_next = h->next_round;
        h->next_round = c;
    } else {
        c->health_next = h->waiting;
        h->waiting = c;
        probe_start(h);
    }
    pthread_mutex_unlock(&h->lock);
}

/* The 503 of a stopping daemon, in the health check's own shape. */
void ops_health_stopping(struct call *c)
{
    reply_json(c, 503, json_pack("{s:s, s:s}", "status", "unavailable", "reason",
                                 "attachd is stopping"));
    api_add_header(c->res, "Cache-Control", "no-store");
}

void ops_metrics(struct call *c)
{
    if (c->req->method != METHOD_GET && c->req->method != METHOD_HEAD) {
        reply_error(c, 405, "The method specified is not allowed for this resource.");
        api_add_header(c->res, "Allow", "GET, HEAD");
        return;
    }
    if (!c->auth.principal.admin) {
        reply_error(c, 403, "Metrics are for admins (or serve them on --metrics-listen).");
        return;
    }
    size_t len;
    char *text = metrics_render(&len);
    if (!text) {
        reply_error(c, 503, "The service ran out of memory for this request; retry it.");
        api_add_header(c->res, "Retry-After", "1");
        return;
    }
    /* into the arena, where running out of memory must not lose `text` */
    char *volatile copy = NULL;
    struct oom_point p;
    oom_enter(&p);
    if (setjmp(p.jb) == 0)
        copy = arena_alloc(c->arena, len + 1);
    oom_leave(&p);
    if (copy)
        memcpy(copy, text, len);
    free(text);
    if (!copy) {
        reply_error(c, 503, "The service ran out of memory for this request; retry it.");
        api_add_header(c->res, "Retry-After", "1");
        return;
    }
    c->res->status = 200;
    c->res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    c->res->body = copy;
    c->res->body_len = len;
}
