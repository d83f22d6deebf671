/* metrics.h: counters and histograms for GET /metrics (Prometheus text
 * format), cheap enough for every request.
 *
 * Each thread counts into a block of its own: an increment is a plain load
 * and store on memory no other thread writes (no lock, no atomic
 * read-modify-write, no shared cache line), and a scrape adds up every
 * thread's block. Requests are counted by route, method, status and dialect
 * in a small open-addressed table per thread; their latencies in one
 * histogram per route and method. What is a level rather than a count (open
 * connections, requests in flight, hypervisor work pending) is asked of its
 * owner at scrape time, through a collector it registered.
 *
 * Route and dialect names must be strings that live for the whole process
 * (string literals, a route table's patterns): they are told apart by
 * address, and interned on first sight (at most METRICS_MAX_LABELS).
 */
#ifndef ATTACHD_METRICS_H
#define ATTACHD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS 120

/* Plain counters, each with its name and labels in metrics.c. */
enum metrics_counter {
    METRIC_CONN_ACCEPTED,       /* connections admitted */
    METRIC_CONN_REFUSED,        /* refused at the connection cap */
    METRIC_CONN_REFUSED_PER_IP, /* refused: its address at --max-per-ip */
    METRIC_CONN_EVICTED,        /* closed to make room at the cap */
    METRIC_CONN_HEAD_TIMEOUT,   /* closed: request head over --header-timeout */
    METRIC_CONN_BODY_TIMEOUT,   /* closed: request body over --timeout */
    METRIC_AUTH_OK,             /* password checks (argon2id) that passed */
    METRIC_AUTH_DENIED,         /* ... that failed, unknown users included */
    METRIC_AUTH_UNAVAILABLE,    /* ... that could not be made (the store failed) */
    METRIC_AUTH_CACHED,         /* credentials answered from the verified cache */
    METRIC_THROTTLE_USER,       /* a user name from one address over its failures */
    METRIC_THROTTLE_ADDRESS,    /* one address over its failures */
    METRIC_THROTTLE_CONCURRENT, /* one address with too many checks queued */
    METRIC_THROTTLE_QUEUE,      /* the verifiers' queue full (503) */
    METRIC_STORE_ERROR,         /* a statement failed (logged) */
    METRIC_STORE_COMMIT_FAILED, /* a commit failed: its writes were not kept */
    METRIC_STORE_UNAVAILABLE,   /* writes refused: the database file was lost */
    METRIC_STORE_COMMIT_LAZY,   /* transactions of lazy writes alone (store.h) */
    METRIC_STORE_CHECKPOINTS,   /* SQLite checkpoint passes that ran (sqlite_writer.c) */
    METRIC_TLS_RELOADS,         /* certificate and key read again (SIGHUP) */
    METRIC_TLS_RELOAD_FAILURES,
    METRIC_TLS_HANDSHAKE_FAILED,/* a client's TLS handshake failed */
    METRIC_COUNTERS
};

void metrics_inc(enum metrics_counter c);

/* A request answered: method is an index (0 GET, 1 HEAD, 2 POST, 3 PUT,
 * 4 DELETE, 5 PATCH, 6 other); route and dialect as above, or NULL. */
void metrics_request(const char *route, const char *dialect, unsigned method, int status,
                     double seconds);
/* A transaction of the store's writer: how many writes it carried, and how
 * long it took from BEGIN to the end of COMMIT (its fsync included). */
void metrics_commit(unsigned batch, double seconds);

/* Monotonic seconds, for the callers' durations. */
double metrics_now(void);

/* At scrape time: a collector appends lines through these. `labels` is the
 * text between the braces (already escaped, NULL for none). HELP and TYPE
 * are written once per name, at its first sample. */
struct metrics_out;
void metrics_gauge(struct metrics_out *o, const char *name, const char *help,
                   const char *labels, double value);
void metrics_counter(struct metrics_out *o, const char *name, const char *help,
                     const char *labels, double value);
/* A label value escaped for the text format (\\, \", \n), into buf. */
const char *metrics_escape(const char *value, char *buf, size_t size);

typedef void (*metrics_collector)(void *cls, struct metrics_out *o);
void metrics_register(metrics_collector fn, void *cls);
void metrics_unregister(metrics_collector fn, void *cls);

/* The whole exposition, malloc'd (*len its length); NULL when out of memory. */
char *metrics_render(size_t *len);

#endif
