/* guard.c: see guard.h.
 *
 * The table is split into shards with a lock each, so that the watchdog
 * (one getsockopt() per connection waiting for a head, about 1.5 us each)
 * holds any one lock briefly, and the HTTP threads' bookkeeping (a few
 * short critical sections per request) rarely waits behind it. Choosing a
 * connection to evict takes every shard's lock, in order, so that the
 * oldest of all is chosen and cannot close meanwhile.
 *
 * struct tcp_info comes from <linux/tcp.h>: glibc's <netinet/tcp.h> has no
 * tcpi_bytes_received and cannot be included beside it, so this file keeps
 * to <netinet/in.h> and <sys/socket.h>.
 */
#include "http/guard.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"

#define SHARDS 16
/* How often the watchdog looks for heads that began: a head's clock starts
 * up to this late, in the client's favour. Deadlines are kept exactly. */
#define TICK_MS 250
/* At most one summary line in the log per this many milliseconds. */
#define REPORT_MS 1000

enum phase {
    PHASE_HEAD,     /* waiting for a request head, or receiving one */
    PHASE_BODY,     /* the head complete, the body arriving */
    PHASE_BUSY,     /* being handled (perhaps suspended) or answered */
};

struct http_guard_conn {
    struct http_guard_conn *prev, *next;    /* in its shard's list */
    unsigned shard;
    int fd;
    enum phase phase;
    bool served;            /* completed a request: a head-wait without bytes is idle */
    bool head_seen;         /* the current head's first byte has arrived */
    bool cut;               /* shut down by the guard, not yet reported closed */
    bool baseline_due;      /* baseline is to be read at the watchdog's next look */
    uint64_t baseline;      /* bytes received when it began to wait for this head */
    int64_t opened;         /* milliseconds (CLOCK_MONOTONIC) */
    int64_t head_began;     /* when the watchdog saw the head's first byte */
    int64_t head_ended;     /* when the head was complete: the body's clock */
    int64_t idle_since;     /* when its last request ended (a coarse clock) */
};

struct shard {
    pthread_mutex_t lock;   /* the list and every field of its entries */
    struct http_guard_conn *head;
};

struct http_guard {
    struct shard shards[SHARDS];
    atomic_uint next_shard;
    atomic_int count;           /* admitted and not yet reported closed */
    atomic_int closing;         /* of those, cut by the guard */
    int max, slack;
    int64_t header_ms, body_ms;
    unsigned header_s, body_s;
    /* what the watchdog reports, summed since its last report */
    atomic_ulong cut_heads, cut_bodies, evicted;
    int64_t reported;
    pthread_t watchdog;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Payload bytes the socket has received so far (Linux 4.1 and later). */
static bool bytes_received(int fd, uint64_t *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
        return false;
    *out = ti.tcpi_bytes_received;
    return true;
}

/* Has the head this connection waits for begun to arrive? Without
 * TCP_INFO, a new connection's clock runs from its start and a kept-alive
 * one is left to the inactivity timeout. A kept-alive connection's baseline
 * is read here, at the watchdog's first look after its request, rather than
 * by the HTTP thread at the end of every request: bytes of the next head
 * that arrived before that look count as before the wait, so its clock
 * starts at the next byte after it (one tick later at most), as the clock
 * of any head starts up to a tick late. */
static bool head_begun(struct http_guard_conn *c)
{
    uint64_t n;
    if (!bytes_received(c->fd, &n))
        return !c->served;
    if (c->baseline_due) {
        c->baseline_due = false;
        c->baseline = n;
        return false;
    }
    return n > c->baseline;
}

/* Close a connection: MHD sees it end and cleans up on its own thread. The
 * caller holds the entry's shard lock, so the descriptor is still this
 * connection's (see guard.h). */
static void cut(struct http_guard *g, struct http_guard_conn *c)
{
    shutdown(c->fd, SHUT_RDWR);
    c->cut = true;
    atomic_fetch_add(&g->closing, 1);
}

/* ---- the watchdog -------------------------------------------------------------- */

/* Check one connection's deadline; lower *next to it if it is still ahead. */
static void watch(struct http_guard *g, struct http_guard_conn *c, int64_t now, int64_t *next)
{
    int64_t deadline;
    if (c->cut)
        return;
    if (c->phase == PHASE_HEAD) {
        if (!c->head_seen) {
            if (!head_begun(c))
                return;     /* silent: the inactivity timeout's business */
            c->head_seen = true;
            c->head_began = now;
        }
        deadline = c->head_began + g->header_ms;
        if (now >= deadline) {
            cut(g, c);
            atomic_fetch_add(&g->cut_heads, 1);
            metrics_inc(METRIC_CONN_HEAD_TIMEOUT);
            return;
        }
    } else if (c->phase == PHASE_BODY) {
        deadline = c->head_ended + g->body_ms;
        if (now >= deadline) {
            cut(g, c);
            atomic_fetch_add(&g->cut_bodies, 1);
            metrics_inc(METRIC_CONN_BODY_TIMEOUT);
            return;
        }
    } else {
        return;
    }
    if (deadline < *next)
        *next = deadline;
}

/* One line now and then rather than one per connection: under attack
 * there may be thousands. */
static void report(struct http_guard *g, int64_t now)
{
    if (now - g->reported < REPORT_MS)
        return;
    g->reported = now;
    unsigned long heads = atomic_exchange(&g->cut_heads, 0);
    unsigned long bodies = atomic_exchange(&g->cut_bodies, 0);
    unsigned long evicted = atomic_exchange(&g->evicted, 0);
    if (heads || bodies || evicted)
        log_warn("http: closed %lu connections whose request head took over %u s, %lu whose "
                 "request body took over %u s, and %lu to make room for new connections",
                 heads, g->header_s, bodies, g->body_s, evicted);
}

static void *watchdog_main(void *arg)
{
    pthread_setname_np(pthread_self(), "http-guard");
    struct http_guard *g = arg;
    pthread_mutex_lock(&g->stop_lock);
    while (!g->stopping) {
        pthread_mutex_unlock(&g->stop_lock);
        int64_t next = now_ms() + TICK_MS;
        for (unsigned i = 0; i < SHARDS; i++) {
            struct shard *sh = &g->shards[i];
            pthread_mutex_lock(&sh->lock);
            int64_t now = now_ms();
            for (struct http_guard_conn *c = sh->head; c; c = c->next)
                watch(g, c, now, &next);
            pthread_mutex_unlock(&sh->lock);
        }
        report(g, now_ms());
        struct timespec until = {.tv_sec = next / 1000, .tv_nsec = next % 1000 * 1000000};
        pthread_mutex_lock(&g->stop_lock);
        while (!g->stopping &&
               pthread_cond_timedwait(&g->stop_cond, &g->stop_lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&g->stop_lock);
    return NULL;
}

/* ---- admission and eviction ------------------------------------------------------- */

/* Close the connection that has waited longest for a whole head: since it
 * opened if it never completed one, since the head's first byte if kept
 * alive. Only when there is none, the kept-alive connection idle longest
 * since its last request, as a client must expect of an idle connection:
 * else clients that send a request now and then could hold every slot.
 * Requests past their head are never chosen. false: there is none. */
static bool evict_oldest(struct http_guard *g)
{
    struct http_guard_conn *victim = NULL, *idle = NULL;
    int64_t victim_since = 0;
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_mutex_lock(&g->shards[i].lock);
    for (unsigned i = 0; i < SHARDS; i++) {
        for (struct http_guard_conn *c = g->shards[i].head; c; c = c->next) {
            if (c->cut || c->phase != PHASE_HEAD)
                continue;
            if (c->served && !c->head_seen) {
                if (!idle || c->idle_since < idle->idle_since)
                    idle = c;
                continue;
            }
            int64_t since = c->served ? c->head_began : c->opened;
            if (!victim || since < victim_since) {
                victim = c;
                victim_since = since;
            }
        }
    }
    if (!victim)
        victim = idle;
    if (victim) {
        cut(g, victim);
        atomic_fetch_add(&g->evicted, 1);
        metrics_inc(METRIC_CONN_EVICTED);
    }
    for (unsigned i = SHARDS; i-- > 0;)
        pthread_mutex_unlock(&g->shards[i].lock);
    return victim != NULL;
}

bool http_guard_admit(struct http_guard *g)
{
    int n = atomic_fetch_add(&g->count, 1);     /* open before this one */
    /* At the cap, connections already cut make room as MHD cleans them up;
     * past those, close one more. Either way at most g->slack over the
     * cap, so that the descriptors stay within what was budgeted. */
    if (n < g->max || (n < g->max + g->slack &&
                       (n - atomic_load(&g->closing) < g->max || evict_oldest(g)))) {
        metrics_inc(METRIC_CONN_ACCEPTED);
        return true;
    }
    atomic_fetch_sub(&g->count, 1);
    metrics_inc(METRIC_CONN_REFUSED);
    return false;
}

int http_guard_open(struct http_guard *g)
{
    return atomic_load(&g->count);
}

int http_guard_cap(struct http_guard *g)
{
    return g->max;
}

/* ---- the connections' lifecycle -------------------------------------------------------- */

struct http_guard_conn *http_guard_opened(struct http_guard *g, int fd)
{
    struct http_guard_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->phase = PHASE_HEAD;
    c->opened = now_ms();
    c->shard = atomic_fetch_add(&g->next_shard, 1) % SHARDS;
    struct shard *sh = &g->shards[c->shard];
    pthread_mutex_lock(&sh->lock);
    c->next = sh->head;
    if (sh->head)
        sh->head->prev = c;
    sh->head = c;
    pthread_mutex_unlock(&sh->lock);
    return c;
}

void http_guard_closed(struct http_guard *g, struct http_guard_conn *c)
{
    if (c) {
        struct shard *sh = &g->shards[c->shard];
        pthread_mutex_lock(&sh->lock);
        if (c->prev)
            c->prev->next = c->next;
        else
            sh->head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        if (c->cut)
            atomic_fetch_sub(&g->closing, 1);
        pthread_mutex_unlock(&sh->lock);
        free(c);
    }
    atomic_fetch_sub(&g->count, 1);
}

/* Enter a phase unless the connection was cut: the watchdog or an
 * eviction may have shut it down a moment before MHD, with the whole head
 * or body already read, called the access handler. */
static bool enter(struct http_guard *g, struct http_guard_conn *c, enum phase phase)
{
    if (!c)
        return true;
    struct shard *sh = &g->shards[c->shard];
    pthread_mutex_lock(&sh->lock);
    bool open = !c->cut;
    if (open) {
        c->phase = phase;
        if (phase == PHASE_BODY)
            c->head_ended = now_ms();
    }
    pthread_mutex_unlock(&sh->lock);
    return open;
}

bool http_guard_head_done(struct http_guard *g, struct http_guard_conn *c)
{
    return enter(g, c, PHASE_BODY);
}

bool http_guard_body_done(struct http_guard *g, struct http_guard_conn *c)
{
    return enter(g, c, PHASE_BUSY);
}

void http_guard_request_done(struct http_guard *g, struct http_guard_conn *c)
{
    if (!c)
        return;
    /* The baseline of bytes received is read by the watchdog (head_begun):
     * no system call here, on every request's path (the coarse clock is
     * read from memory). */
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    struct shard *sh = &g->shards[c->shard];
    pthread_mutex_lock(&sh->lock);
    c->phase = PHASE_HEAD;
    c->served = true;
    c->head_seen = false;
    c->baseline_due = true;
    c->idle_since = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
    pthread_mutex_unlock(&sh->lock);
}

/* ---- start and stop ------------------------------------------------------------------- */

struct http_guard *http_guard_new(unsigned max_connections, unsigned slack,
                                  unsigned header_timeout, unsigned body_timeout, char *err,
                                  int errlen)
{
    struct http_guard *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    g->max = (int)max_connections;
    g->slack = (int)slack;
    g->header_s = header_timeout;
    g->body_s = body_timeout;
    g->header_ms = (int64_t)header_timeout * 1000;
    g->body_ms = (int64_t)body_timeout * 1000;
    g->reported = now_ms();
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_mutex_init(&g->shards[i].lock, NULL);
    cond_init_monotonic(&g->stop_cond);
    pthread_mutex_init(&g->stop_lock, NULL);
    if (pthread_create(&g->watchdog, NULL, watchdog_main, g) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the connection watchdog thread");
        pthread_cond_destroy(&g->stop_cond);
        pthread_mutex_destroy(&g->stop_lock);
        for (unsigned i = 0; i < SHARDS; i++)
            pthread_mutex_destroy(&g->shards[i].lock);
        free(g);
        return NULL;
    }
    return g;
}

void http_guard_free(struct http_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->stop_lock);
    g->stopping = true;
    pthread_cond_signal(&g->stop_cond);
    pthread_mutex_unlock(&g->stop_lock);
    pthread_join(g->watchdog, NULL);
    report(g, now_ms() + REPORT_MS);
    pthread_cond_destroy(&g->stop_cond);
    pthread_mutex_destroy(&g->stop_lock);
    for (unsigned i = 0; i < SHARDS; i++) {
        while (g->shards[i].head) {     /* none, once MHD has stopped */
            struct http_guard_conn *c = g->shards[i].head;
            g->shards[i].head = c->next;
            free(c);
        }
        pthread_mutex_destroy(&g->shards[i].lock);
    }
    free(g);
}
