/* metrics.c: see metrics.h.
 *
 * A thread's block has one writer, the thread itself, so a count goes up by
 * a relaxed load and store (plain moves on x86-64), and the scraping thread
 * reads each word with a relaxed load: it sees every count as it was at some
 * moment, never a torn one. A table slot is claimed by storing its key last
 * (release), so a reader that sees the key sees a slot set up for it.
 */
#include "util/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Request latencies, seconds: 100 us to 10 s. */
static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_LATENCY (sizeof latency_bounds / sizeof latency_bounds[0])
/* Writes per group commit. */
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
#define N_BATCH (sizeof batch_bounds / sizeof batch_bounds[0])

#define REQ_SLOTS 512       /* route x method x status x dialect seen by one thread */
#define HIST_SLOTS 128      /* route x method */

static const char *const method_names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                           "OTHER"};

static const struct {
    const char *name, *labels, *help;
} counter_info[METRIC_COUNTERS] = {
    [METRIC_CONN_ACCEPTED] = {"attachd_http_connections_total", NULL,
                              "Connections admitted."},
    [METRIC_CONN_REFUSED] = {"attachd_http_connections_refused_total", "reason=\"cap\"",
                             "Connections refused: at --max-connections when none could be "
                             "closed to make room (cap), or their address at --max-per-ip "
                             "(per_ip)."},
    [METRIC_CONN_REFUSED_PER_IP] = {"attachd_http_connections_refused_total",
                                    "reason=\"per_ip\"", NULL},
    [METRIC_CONN_EVICTED] = {"attachd_http_connections_closed_total", "reason=\"evicted\"",
                             "Connections closed by attachd: evicted to make room at the cap, "
                             "or over --header-timeout or --timeout."},
    [METRIC_CONN_HEAD_TIMEOUT] = {"attachd_http_connections_closed_total",
                                  "reason=\"header_timeout\"", NULL},
    [METRIC_CONN_BODY_TIMEOUT] = {"attachd_http_connections_closed_total",
                                  "reason=\"body_timeout\"", NULL},
    [METRIC_AUTH_OK] = {"attachd_auth_password_checks_total", "result=\"ok\"",
                        "Passwords checked against their argon2id hash, by outcome "
                        "(unknown users are checked against a dummy hash and denied)."},
    [METRIC_AUTH_DENIED] = {"attachd_auth_password_checks_total", "result=\"denied\"", NULL},
    [METRIC_AUTH_UNAVAILABLE] = {"attachd_auth_password_checks_total",
                                 "result=\"unavailable\"", NULL},
    [METRIC_AUTH_CACHED] = {"attachd_auth_cache_hits_total", NULL,
                            "Credentials answered from the verified-credential cache, "
                            "without a password check."},
    [METRIC_THROTTLE_USER] = {"attachd_auth_throttled_total", "reason=\"user\"",
                              "Logins refused before any check: 429 for too many failures of "
                              "a user name or an address, or too many checks queued from one "
                              "address; 503 when the verifiers' queue is full."},
    [METRIC_THROTTLE_ADDRESS] = {"attachd_auth_throttled_total", "reason=\"address\"", NULL},
    [METRIC_THROTTLE_CONCURRENT] = {"attachd_auth_throttled_total", "reason=\"concurrent\"",
                                    NULL},
    [METRIC_THROTTLE_QUEUE] = {"attachd_auth_throttled_total", "reason=\"queue_full\"", NULL},
    [METRIC_STORE_ERROR] = {"attachd_store_errors_total", "kind=\"statement\"",
                            "Store failures: a statement that failed (logged), a commit that "
                            "failed (its writes answered as not committed), a write refused "
                            "because the database file was lost."},
    [METRIC_STORE_COMMIT_FAILED] = {"attachd_store_errors_total", "kind=\"commit\"", NULL},
    [METRIC_STORE_UNAVAILABLE] = {"attachd_store_errors_total", "kind=\"unavailable\"", NULL},
    [METRIC_STORE_COMMIT_LAZY] = {"attachd_store_unflushed_transactions_total", NULL,
                                  "Transactions of hypervisor completions alone, committed "
                                  "without waiting for the disk: a crash of the machine that "
                                  "loses one leaves its intent, which the reconciler finishes."},
    [METRIC_STORE_CHECKPOINTS] = {"attachd_store_checkpoints_total", NULL,
                                  "Checkpoint passes of the SQLite store: pages of the "
                                  "write-ahead log copied into the database file."},
    [METRIC_TLS_RELOADS] = {"attachd_tls_reloads_total", "result=\"ok\"",
                            "TLS certificate and key read again on SIGHUP, by outcome (a "
                            "failed reload keeps the previous ones)."},
    [METRIC_TLS_RELOAD_FAILURES] = {"attachd_tls_reloads_total", "result=\"failed\"", NULL},
    [METRIC_TLS_HANDSHAKE_FAILED] = {"attachd_tls_handshake_failures_total", NULL,
                                     "TLS handshakes that failed (a client without TLS, or "
                                     "only older versions, a scanner)."},
};

struct hist {
    _Atomic uint64_t bucket[N_LATENCY > N_BATCH ? N_LATENCY : N_BATCH];
    _Atomic uint64_t count;
    _Atomic uint64_t sum;       /* microseconds for latencies, units for sizes */
};

struct block {
    _Atomic uint64_t counter[METRIC_COUNTERS];
    struct {
        _Atomic uint32_t key;   /* 0: free */
        _Atomic uint64_t count;
    } req[REQ_SLOTS];
    struct {
        _Atomic uint32_t key;
        struct hist h;
    } lat[HIST_SLOTS];
    _Atomic uint64_t req_lost;  /* requests no slot was left for */
    struct hist commit_latency, commit_batch;
    struct block *next;
};

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;   /* the list, labels */
static struct block *_Atomic blocks;
static _Thread_local struct block *mine;

static const char *_Atomic labels[METRICS_MAX_LABELS];
static atomic_int n_labels;

static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static inline uint64_t get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* The calling thread's block (NULL when out of memory: the count is lost).
 * Blocks live as long as the process: a thread that ends leaves its counts. */
static struct block *my_block(void)
{
    if (mine)
        return mine;
    struct block *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_lock(&blocks_lock);
    b->next = atomic_load(&blocks);
    atomic_store_explicit(&blocks, b, memory_order_release);
    pthread_mutex_unlock(&blocks_lock);
    return mine = b;
}

/* A label's number (1..), by address, interned on first sight; 0 for NULL
 * or when the table is full. */
static unsigned label_id(const char *s)
{
    if (!s)
        return 0;
    int n = atomic_load_explicit(&n_labels, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (atomic_load_explicit(&labels[i], memory_order_relaxed) == s)
            return (unsigned)i + 1;
    pthread_mutex_lock(&blocks_lock);
    n = atomic_load(&n_labels);
    unsigned id = 0;
    for (int i = 0; i < n && !id; i++)
        if (atomic_load(&labels[i]) == s || !strcmp(atomic_load(&labels[i]), s))
            id = (unsigned)i + 1;
    if (!id && n < METRICS_MAX_LABELS) {
        atomic_store(&labels[n], s);
        atomic_store_explicit(&n_labels, n + 1, memory_order_release);
        id = (unsigned)n + 1;
    }
    pthread_mutex_unlock(&blocks_lock);
    return id;
}

static const char *label_name(unsigned id)
{
    return id ? atomic_load(&labels[id - 1]) : "none";
}

double metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void metrics_inc(enum metrics_counter c)
{
    struct block *b = my_block();
    if (b)
        bump(&b->counter[c], 1);
}

static void observe(struct hist *h, const double *bounds, size_t n, double v, uint64_t sum)
{
    size_t i = 0;
    while (i < n && v > bounds[i])
        i++;
    if (i < n)
        bump(&h->bucket[i], 1);     /* per bucket here; cumulative when rendered */
    bump(&h->count, 1);
    bump(&h->sum, sum);
}

/* The slot of `key` in a table of n slots (linear probing): found, or
 * claimed; -1 when the table is full. `keys` steps through the table's key
 * fields, `stride` bytes apart. */
static int find_slot(_Atomic uint32_t *keys, size_t stride, unsigned n, uint32_t key)
{
    unsigned i = (key * 2654435761u) % n;
    for (unsigned k = 0; k < n; k++, i = (i + 1) % n) {
        _Atomic uint32_t *slot = (_Atomic uint32_t *)((char *)keys + stride * i);
        uint32_t have = atomic_load_explicit(slot, memory_order_relaxed);
        if (have == key)
            return (int)i;
        if (have == 0) {
            atomic_store_explicit(slot, key, memory_order_release);
            return (int)i;
        }
    }
    return -1;
}

void metrics_request(const char *route, const char *dialect, unsigned method, int status,
                     double seconds)
{
    struct block *b = my_block();
    if (!b)
        return;
    unsigned r = label_id(route), d = label_id(dialect);
    if (method > 6)
        method = 6;
    if (status < 0 || status > 999)
        status = 0;
    /* bit 31 keeps every key nonzero */
    uint32_t key = 1u << 31 | r << 20 | d << 13 | method << 10 | (uint32_t)status;
    int slot = find_slot(&b->req[0].key, sizeof b->req[0], REQ_SLOTS, key);
    if (slot >= 0)
        bump(&b->req[slot].count, 1);
    else
        bump(&b->req_lost, 1);
    uint32_t hkey = 1u << 31 | r << 20 | method << 10;
    slot = find_slot(&b->lat[0].key, sizeof b->lat[0], HIST_SLOTS, hkey);
    if (slot >= 0)
        observe(&b->lat[slot].h, latency_bounds, N_LATENCY, seconds,
                (uint64_t)(seconds * 1e6 + 0.5));
}

void metrics_commit(unsigned batch, double seconds)
{
    struct block *b = my_block();
    if (!b)
        return;
    observe(&b->commit_latency, latency_bounds, N_LATENCY, seconds,
            (uint64_t)(seconds * 1e6 + 0.5));
    observe(&b->commit_batch, batch_bounds, N_BATCH, batch, batch);
}

/* ---- collectors -------------------------------------------------------------------- */

struct collector {
    metrics_collector fn;
    void *cls;
    struct collector *next;
};

static pthread_mutex_t collectors_lock = PTHREAD_MUTEX_INITIALIZER;
static struct collector *collectors;

void metrics_register(metrics_collector fn, void *cls)
{
    struct collector *c = malloc(sizeof *c);
    if (!c)
        return;
    *c = (struct collector){fn, cls, NULL};
    pthread_mutex_lock(&collectors_lock);
    struct collector **p = &collectors;
    while (*p)
        p = &(*p)->next;
    *p = c;
    pthread_mutex_unlock(&collectors_lock);
}

void metrics_unregister(metrics_collector fn, void *cls)
{
    pthread_mutex_lock(&collectors_lock);
    for (struct collector **p = &collectors; *p; p = &(*p)->next) {
        if ((*p)->fn == fn && (*p)->cls == cls) {
            struct collector *c = *p;
            *p = c->next;
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&collectors_lock);
}

/* ---- rendering ------------------------------------------------------------------------ */

struct metrics_out {
    FILE *f;
    const char *seen[96];       /* names whose HELP and TYPE are written */
    int n_seen;
};

const char *metrics_escape(const char *value, char *buf, size_t size)
{
    size_t o = 0;
    for (const char *p = value; *p && o + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void head(struct metrics_out *o, const char *name, const char *type, const char *help)
{
    for (int i = 0; i < o->n_seen; i++)
        if (!strcmp(o->seen[i], name))
            return;
    if (o->n_seen < (int)(sizeof o->seen / sizeof o->seen[0]))
        o->seen[o->n_seen++] = name;
    if (help)
        fprintf(o->f, "# HELP %s %s\n", name, help);
    fprintf(o->f, "# TYPE %s %s\n", name, type);
}

static void sample(struct metrics_out *o, const char *name, const char *suffix,
                   const char *labels, double v)
{
    fprintf(o->f, "%s%s", name, suffix ? suffix : "");
    if (labels && *labels)
        fprintf(o->f, "{%s}", labels);
    /* no libm: whole numbers (counts) are written as such, the rest %g */
    if (v > 1e300)
        fputs(" +Inf\n", o->f);
    else if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v)
        fprintf(o->f, " %.0f\n", v);
    else
        fprintf(o->f, " %.9g\n", v);
}

void metrics_gauge(struct metrics_out *o, const char *name, const char *help,
                   const char *labels, double value)
{
    head(o, name, "gauge", help);
    sample(o, name, NULL, labels, value);
}

void metrics_counter(struct metrics_out *o, const char *name, const char *help,
                     const char *labels, double value)
{
    head(o, name, "counter", help);
    sample(o, name, NULL, labels, value);
}

static void render_hist(struct metrics_out *o, const char *name, const char *help,
                        const char *labels, const uint64_t *buckets, const double *bounds,
                        size_t n, uint64_t count, double sum)
{
    head(o, name, "histogram", help);
    char lb[640];           /* the labels (at most 512) and le="..." */
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += buckets[i];
        snprintf(lb, sizeof lb, "%s%sle=\"%g\"", labels ? labels : "", labels ? "," : "",
                 bounds[i]);
        sample(o, name, "_bucket", lb, (double)cum);
    }
    snprintf(lb, sizeof lb, "%s%sle=\"+Inf\"", labels ? labels : "", labels ? "," : "");
    sample(o, name, "_bucket", lb, (double)count);
    sample(o, name, "_sum", labels, sum);
    sample(o, name, "_count", labels, (double)count);
}

struct agg_hist {
    uint64_t bucket[N_LATENCY > N_BATCH ? N_LATENCY : N_BATCH];
    uint64_t count, sum;
};

static void add_hist(struct agg_hist *a, struct hist *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a->bucket[i] += get(&h->bucket[i]);
    a->count += get(&h->count);
    a->sum += get(&h->sum);
}

/* Sum every thread's table of keyed counts into one sorted list. */
struct keyed {
    uint32_t key;
    uint64_t count;
    struct agg_hist h;
};

static int by_key(const void *a, const void *b)
{
    uint32_t x = ((const struct keyed *)a)->key, y = ((const struct keyed *)b)->key;
    return x < y ? -1 : x > y;
}

static struct keyed *find_or_add(struct keyed *arr, int *n, int cap, uint32_t key)
{
    for (int i = 0; i < *n; i++)
        if (arr[i].key == key)
            return &arr[i];
    if (*n == cap)
        return NULL;
    arr[*n] = (struct keyed){.key = key};
    return &arr[(*n)++];
}

static void render_requests(struct metrics_out *o)
{
    enum { CAP = 4096 };
    struct keyed *reqs = calloc(CAP, sizeof *reqs), *lats = calloc(CAP, sizeof *lats);
    int nr = 0, nl = 0;
    uint64_t lost = 0;
    struct agg_hist cl = {0}, cb = {0};
    uint64_t counters[METRIC_COUNTERS] = {0};
    for (struct block *b = atomic_load_explicit(&blocks, memory_order_acquire); b; b = b->next) {
        for (int i = 0; i < METRIC_COUNTERS; i++)
            counters[i] += get(&b->counter[i]);
        lost += get(&b->req_lost);
        add_hist(&cl, &b->commit_latency, N_LATENCY);
        add_hist(&cb, &b->commit_batch, N_BATCH);
        for (int i = 0; reqs && i < REQ_SLOTS; i++) {
            uint32_t k = atomic_load_explicit(&b->req[i].key, memory_order_acquire);
            struct keyed *e = k ? find_or_add(reqs, &nr, CAP, k) : NULL;
            if (e)
                e->count += get(&b->req[i].count);
        }
        for (int i = 0; lats && i < HIST_SLOTS; i++) {
            uint32_t k = atomic_load_explicit(&b->lat[i].key, memory_order_acquire);
            struct keyed *e = k ? find_or_add(lats, &nl, CAP, k) : NULL;
            if (e)
                add_hist(&e->h, &b->lat[i].h, N_LATENCY);
        }
    }
    char lb[512], r[256], d[64];
    if (reqs) {
        qsort(reqs, (size_t)nr, sizeof *reqs, by_key);
        head(o, "attachd_http_requests_total", "counter",
             "Requests answered, by route (the pattern matched; \"none\" before routing, "
             "e.g. 401 or 413), method, status and dialect.");
        for (int i = 0; i < nr; i++) {
            uint32_t k = reqs[i].key;
            snprintf(lb, sizeof lb, "route=\"%s\",method=\"%s\",status=\"%u\",dialect=\"%s\"",
                     metrics_escape(label_name(k >> 20 & 0x7ff), r, sizeof r),
                     method_names[k >> 10 & 7], k & 0x3ff,
                     metrics_escape(label_name(k >> 13 & 0x7f), d, sizeof d));
            sample(o, "attachd_http_requests_total", NULL, lb, (double)reqs[i].count);
        }
        metrics_counter(o, "attachd_http_requests_uncounted_total",
                        "Requests whose route, method, status and dialect found no room in "
                        "a thread's table (0 unless there are unusually many combinations).",
                        NULL, (double)lost);
    }
    if (lats) {
        qsort(lats, (size_t)nl, sizeof *lats, by_key);
        for (int i = 0; i < nl; i++) {
            uint32_t k = lats[i].key;
            snprintf(lb, sizeof lb, "route=\"%s\",method=\"%s\"",
                     metrics_escape(label_name(k >> 20 & 0x7ff), r, sizeof r),
                     method_names[k >> 10 & 7]);
            render_hist(o, "attachd_http_request_duration_seconds",
                        "Time from a request's head to its answer being queued, by route and "
                        "method (waits for the store or the hypervisor included).",
                        lb, lats[i].h.bucket, latency_bounds, N_LATENCY, lats[i].h.count,
                        (double)lats[i].h.sum / 1e6);
        }
    }
    for (int i = 0; i < METRIC_COUNTERS; i++)
        metrics_counter(o, counter_info[i].name, counter_info[i].help, counter_info[i].labels,
                        (double)counters[i]);
    render_hist(o, "attachd_store_commit_batch_size",
                "Writes per transaction of the store's writer (group commit).", NULL, cb.bucket,
                batch_bounds, N_BATCH, cb.count, (double)cb.sum);
    render_hist(o, "attachd_store_commit_duration_seconds",
                "Time of one group-commit transaction, BEGIN to the end of COMMIT (fsync "
                "included).", NULL, cl.bucket, latency_bounds, N_LATENCY, cl.count,
                (double)cl.sum / 1e6);
    free(reqs);
    free(lats);
}

char *metrics_render(size_t *len)
{
    char *text = NULL;
    size_t size = 0;
    struct metrics_out o = {.f = open_memstream(&text, &size)};
    if (!o.f)
        return NULL;
    render_requests(&o);
    pthread_mutex_lock(&collectors_lock);
    for (struct collector *c = collectors; c; c = c->next)
        c->fn(c->cls, &o);
    pthread_mutex_unlock(&collectors_lock);
    if (fclose(o.f) != 0) {
        free(text);
        return NULL;
    }
    *len = size;
    return text;
}
