/* libvirt.c: the libvirt driver's connection: opened, watched, lost and
 * made again, its domain events, and the driver's table. Volumes are files
 * in a directory (volfile.c); servers are libvirt domains (found by UUID or
 * name: libvirt_lookup.c; those attachd defines: libvirt_domain.c); an
 * attachment is a hot-plugged <disk> carrying a user alias
 * ("ua-<attachment id>") by which every later call finds it again
 * (libvirt_disks.c).
 *
 * Threads:
 *  - the libvirt event loop (libvirt_loop.c): one per process, shared by
 *    every open driver. libvirt runs keepalive pings, connection-close
 *    detection and domain-event dispatch on it. Our callbacks on it only
 *    queue and return, so a slow receiver can never stall keepalive and
 *    make a healthy connection look dead.
 *  - the watch thread, one per driver: delivers queued events to
 *    d->events in order, closes lost connections and reconnects with
 *    backoff. It is "the driver's own thread" of driver.h.
 *  - the callers' driver workers, any number at once.
 *
 * Invariants:
 *  - lv->conn is either NULL (down: every call answers DRIVER_UNAVAILABLE
 *    at once, without touching libvirt) or a connection with keepalive, a
 *    close callback and our three domain-event callbacks registered. A call
 *    takes its own reference, so a connection lost mid-call stays valid
 *    until the call ends (it fails fast: libvirt errors out on a closed
 *    socket at once).
 *  - lv->mu is never held across a libvirt call that may do I/O (only
 *    across virConnectRef): libvirt calls our close callback with its own
 *    lock held, from any thread.
 *  - A connection is declared lost exactly once (conn_lost compares the
 *    pointer), which reports connection(false) once; connection(true)
 *    follows only after the event callbacks are registered again, so no
 *    event that happens after connection(true) is missed. Events while
 *    down are lost: the receiver reconciles with disk_list on
 *    connection(true).
 *  - Events are not delivered before the caller's first call (driver.h
 *    lets it set d->events until then); they wait in the queue. A detach
 *    waiting for its DEVICE_REMOVED (lv_listen) is told at once.
 */
#include "driver/driver.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver/libvirt_int.h"
#include "driver/volfile.h"
#include "util/clock.h"
#include "util/log.h"

/* A dead daemon is noticed at once through the closed socket; a hung one
 * (or a lost network under qemu+ssh) after INTERVAL * (COUNT + 1) seconds
 * without an answer: libvirt then closes the connection, the calls waiting
 * on it fail, and the close callback starts the reconnect. */
#define KEEPALIVE_INTERVAL 3
#define KEEPALIVE_COUNT 2
#define BACKOFF_FIRST_S 1
#define BACKOFF_MAX_S 30
#define QUEUE_MAX 10000         /* undelivered events kept; older ones dropped */
#define CLOSE_JOIN_S 10         /* a close waits this long for a reconnect attempt */

enum { EV_REMOVED, EV_REMOVAL_FAILED, EV_STATE, EV_CONNECTION };
enum { CB_REMOVED, CB_REMOVAL_FAILED, CB_LIFECYCLE, CB_COUNT };

struct lv_event {
    struct lv_event *next;
    int kind;
    char uuid[VIR_UUID_STRING_BUFLEN];
    char *alias;
    enum driver_state state;
    bool up;
};

struct lv {
    struct driver base;         /* first: a struct driver * is a struct lv * */
    char *uri, *volume_dir;
    const char *hv_user;        /* who must reach volume_dir, when local */
    enum driver_bus bus;
    char *instance_dir, *owner;
    struct lv_settings settings;    /* for libvirt_domain.c */

    pthread_mutex_t mu;
    pthread_cond_t cond;        /* watch thread: queue, loss, close */
    pthread_cond_t wcond;       /* detach waiters */
    virConnectPtr conn;         /* NULL while down */
    int cb[CB_COUNT];           /* conn's event callback ids */
    virConnectPtr dead;         /* lost, not yet closed by the watch thread */
    int dead_cb[CB_COUNT];
    bool armed;                 /* the caller has made a call: deliver events */
    bool closing, abandoned;
    int backoff_s;
    struct timespec next_try;
    struct lv_event *head, *tail;
    int queued;
    struct lv_waiter *waiters;
    pthread_t watch;

    pthread_mutex_t dlocks_mu;  /* guards dlocks */
    struct lv_dlock *dlocks;    /* the domains being changed or waited for */
    pthread_mutex_t all_domains;    /* lv_domain_lock's fallback, out of memory */
    struct lv_known *known;     /* handles and views (libvirt_known.c) */
};

/* ------------------------------------------------------------------ */
/* errors                                                              */

static void quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;                    /* every error is copied into driver_error */
}

static void conn_lost(struct lv *lv, virConnectPtr c, const char *why);

/* A libvirt call on c failed: its message into err, and what it means.
 * Read the thread's last error first: any libvirt call resets it. */
static enum driver_rc lv_failed(struct lv *lv, virConnectPtr c, struct driver_error *err)
{
    virErrorPtr e = virGetLastError();
    int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
    int domain = e ? e->domain : VIR_FROM_NONE;
    snprintf(err->message, sizeof err->message, "%s",
             e && e->message ? e->message : "libvirt failed without a message");
    if (c && virConnectIsAlive(c) == 0) {
        conn_lost(lv, c, err->message);
        return DRIVER_UNAVAILABLE;
    }
    if (domain == VIR_FROM_RPC || domain == VIR_FROM_REMOTE || code == VIR_ERR_NO_CONNECT ||
        code == VIR_ERR_INVALID_CONN)
        return DRIVER_UNAVAILABLE;
    /* "cannot acquire state change lock": another job holds the domain */
    if (code == VIR_ERR_OPERATION_TIMEOUT)
        return DRIVER_UNAVAILABLE;
    if (code == VIR_ERR_NO_DOMAIN)
        return DRIVER_NOT_FOUND;
    return DRIVER_REFUSED;
}

/* ------------------------------------------------------------------ */
/* events: queued on libvirt's loop, delivered by the watch thread     */

static bool passed(const struct timespec *ts)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

/* Called with lv->mu held. */
static void enqueue(struct lv *lv, int kind, const char *uuid, const char *alias,
                    enum driver_state state, bool up)
{
    struct lv_event *ev = calloc(1, sizeof *ev);
    if (!ev || (alias && !(ev->alias = strdup(alias)))) {
        free(ev);
        log_error("libvirt driver: out of memory; an event is lost");
        return;
    }
    ev->kind = kind;
    if (uuid)
        snprintf(ev->uuid, sizeof ev->uuid, "%s", uuid);
    ev->state = state;
    ev->up = up;
    if (lv->tail)
        lv->tail->next = ev;
    else
        lv->head = ev;
    lv->tail = ev;
    if (++lv->queued > QUEUE_MAX) {        /* nobody has called us yet: keep the newest */
        struct lv_event *old = lv->head;
        lv->head = old->next;
        lv->queued--;
        free(old->alias);
        free(old);
        log_warn("libvirt driver: more than %d undelivered events; dropping the oldest",
                 QUEUE_MAX);
    }
    pthread_cond_signal(&lv->cond);
}

static void device_event(struct lv *lv, virDomainPtr dom, const char *alias, int kind)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return;
    if (kind == EV_REMOVED)
        lv_known_event(lv->known, uuid, alias, false);
    pthread_mutex_lock(&lv->mu);
    enqueue(lv, kind, uuid, alias, DOMAIN_OTHER, false);
    for (struct lv_waiter *w = lv->waiters; w; w = w->next)
        if (w->outcome == W_WAITING && !strcmp(w->uuid, uuid) && !strcmp(w->alias, alias))
            w->outcome = kind == EV_REMOVED ? W_REMOVED : W_FAILED;
    pthread_cond_broadcast(&lv->wcond);
    pthread_mutex_unlock(&lv->mu);
}

static void on_removed(virConnectPtr c, virDomainPtr dom, const char *alias, void *opaque)
{
    (void)c;
    device_event(opaque, dom, alias, EV_REMOVED);
}

static void on_removal_failed(virConnectPtr c, virDomainPtr dom, const char *alias, void *opaque)
{
    (void)c;
    device_event(opaque, dom, alias, EV_REMOVAL_FAILED);
}

/* A lifecycle event as the state the domain is in after it (as lv_state()
 * maps states in libvirt_lookup.c, but for SHUTDOWN: the guest has powered
 * off, and STOPPED follows; -1: not a change of state). */
static int state_after(int event, int detail)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
    case VIR_DOMAIN_EVENT_RESUMED: return DOMAIN_RUNNING;
    case VIR_DOMAIN_EVENT_SUSPENDED: return DOMAIN_PAUSED;
    case VIR_DOMAIN_EVENT_STOPPED:
        return detail == VIR_DOMAIN_EVENT_STOPPED_SAVED ? DOMAIN_SAVED : DOMAIN_SHUTOFF;
    case VIR_DOMAIN_EVENT_SHUTDOWN: return DOMAIN_SHUTOFF;
    case VIR_DOMAIN_EVENT_CRASHED: return DOMAIN_CRASHED;
    case VIR_DOMAIN_EVENT_PMSUSPENDED: return DOMAIN_OTHER;
    default: return -1;         /* DEFINED, UNDEFINED: the state is unchanged */
    }
}

static int on_lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
    (void)c;
    struct lv *lv = opaque;
    int st = state_after(event, detail);
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return 0;
    lv_known_event(lv->known, uuid, NULL, event == VIR_DOMAIN_EVENT_UNDEFINED);
    if (st < 0)
        return 0;
    pthread_mutex_lock(&lv->mu);
    enqueue(lv, EV_STATE, uuid, NULL, (enum driver_state)st, false);
    pthread_mutex_unlock(&lv->mu);
    return 0;
}

static void on_close(virConnectPtr c, int reason, void *opaque)
{
    static const char *const why[] = {"an error", "end of file", "keepalive timeout"};
    if (reason == VIR_CONNECT_CLOSE_REASON_CLIENT)
        return;                 /* our own close */
    conn_lost(opaque, c, reason >= 0 && reason < 3 ? why[reason] : "unknown reason");
}

static void conn_lost(struct lv *lv, virConnectPtr c, const char *why)
{
    pthread_mutex_lock(&lv->mu);
    if (c && lv->conn == c) {
        log_warn("libvirt driver: connection to %s lost (%s); reconnecting", lv->uri, why);
        lv->dead = c;
        memcpy(lv->dead_cb, lv->cb, sizeof lv->cb);
        lv->conn = NULL;
        lv->backoff_s = BACKOFF_FIRST_S;
        deadline_after_ms(&lv->next_try, lv->backoff_s * 1000L);
        for (struct lv_waiter *w = lv->waiters; w; w = w->next)
            if (w->outcome == W_WAITING)
                w->outcome = W_LOST;
        pthread_cond_broadcast(&lv->wcond);
        enqueue(lv, EV_CONNECTION, NULL, NULL, DOMAIN_OTHER, false);
    }
    pthread_mutex_unlock(&lv->mu);
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

static void conn_teardown(virConnectPtr c, const int cb[CB_COUNT])
{
    for (int i = 0; i < CB_COUNT; i++)
        if (cb[i] >= 0)
            virConnectDomainEventDeregisterAny(c, cb[i]);
    virConnectUnregisterCloseCallback(c, on_close);     /* fails if it fired: fine */
    virConnectClose(c);
}

/* Open lv->uri with keepalive, the close callback and the event callbacks;
 * NULL with libvirt's reason in err. */
static virConnectPtr conn_open(struct lv *lv, int cb[CB_COUNT], char *err, size_t errlen)
{
    for (int i = 0; i < CB_COUNT; i++)
        cb[i] = -1;
    virConnectPtr c = virConnectOpen(lv->uri);
    if (!c) {
        snprintf(err, errlen, "%s", virGetLastErrorMessage());
        return NULL;
    }
    /* Drivers that run in this process (qemu:///embed, test:///) have no
     * connection to keep alive: VIR_ERR_NO_SUPPORT. */
    if (virConnectSetKeepAlive(c, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT) < 0 &&
        virGetLastErrorCode() != VIR_ERR_NO_SUPPORT) {
        snprintf(err, errlen, "cannot enable keepalive: %s", virGetLastErrorMessage());
        goto fail;
    }
    if (virConnectRegisterCloseCallback(c, on_close, lv, NULL) < 0) {
        snprintf(err, errlen, "cannot watch the connection: %s", virGetLastErrorMessage());
        goto fail;
    }
    static const int ids[CB_COUNT] = {VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                      VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED,
                                      VIR_DOMAIN_EVENT_ID_LIFECYCLE};
    const virConnectDomainEventGenericCallback fns[CB_COUNT] = {
        VIR_DOMAIN_EVENT_CALLBACK(on_removed), VIR_DOMAIN_EVENT_CALLBACK(on_removal_failed),
        VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle)};
    for (int i = 0; i < CB_COUNT; i++)
        if ((cb[i] = virConnectDomainEventRegisterAny(c, NULL, ids[i], fns[i], lv, NULL)) < 0) {
            snprintf(err, errlen, "cannot register for domain events: %s",
                     virGetLastErrorMessage());
            goto fail;
        }
    return c;
fail:
    conn_teardown(c, cb);
    return NULL;
}

/* The connection for one call, with a reference of its own; NULL (and
 * DRIVER_UNAVAILABLE's message) while down. */
static virConnectPtr conn_get(struct lv *lv, struct driver_error *err)
{
    pthread_mutex_lock(&lv->mu);
    if (!lv->armed) {
        lv->armed = true;
        pthread_cond_signal(&lv->cond);
    }
    virConnectPtr c = lv->conn;
    if (c)
        virConnectRef(c);
    pthread_mutex_unlock(&lv->mu);
    if (!c)
        driver_fail(err, DRIVER_UNAVAILABLE, "not connected to %s (reconnecting)", lv->uri);
    return c;
}

static void deliver(struct lv *lv, const struct lv_event *ev)
{
    const struct driver_events *e = &lv->base.events;
    switch (ev->kind) {
    case EV_REMOVED:
        if (e->disk_removed)
            e->disk_removed(e->cls, ev->uuid, ev->alias);
        break;
    case EV_REMOVAL_FAILED:
        if (e->disk_removal_failed)
            e->disk_removal_failed(e->cls, ev->uuid, ev->alias);
        break;
    case EV_STATE:
        if (e->domain_state)
            e->domain_state(e->cls, ev->uuid, ev->state);
        break;
    case EV_CONNECTION:
        if (e->connection)
            e->connection(e->cls, ev->up);
        break;
    }
}

static void lv_free(struct lv *lv);

static void *watch_main(void *arg)
{
    pthread_setname_np(pthread_self(), "lv-watch");
    struct lv *lv = arg;
    char why[512] = "";
    pthread_mutex_lock(&lv->mu);
    while (!lv->closing) {
        if (lv->armed && lv->head) {
            struct lv_event *ev = lv->head;
            lv->head = ev->next;
            if (!lv->head)
                lv->tail = NULL;
            lv->queued--;
            pthread_mutex_unlock(&lv->mu);
            deliver(lv, ev);
            free(ev->alias);
            free(ev);
            pthread_mutex_lock(&lv->mu);
            continue;
        }
        if (lv->dead) {
            virConnectPtr dead = lv->dead;
            int cb[CB_COUNT];
            memcpy(cb, lv->dead_cb, sizeof cb);
            lv->dead = NULL;
            pthread_mutex_unlock(&lv->mu);
            lv_known_flush(lv->known);      /* its handles hold the connection */
            conn_teardown(dead, cb);
            pthread_mutex_lock(&lv->mu);
            continue;
        }
        if (!lv->conn && passed(&lv->next_try)) {
            pthread_mutex_unlock(&lv->mu);
            int cb[CB_COUNT];
            virConnectPtr c = conn_open(lv, cb, why, sizeof why);
            pthread_mutex_lock(&lv->mu);
            if (c && lv->closing) {
                pthread_mutex_unlock(&lv->mu);
                conn_teardown(c, cb);
                pthread_mutex_lock(&lv->mu);
            } else if (c) {
                lv->conn = c;
                memcpy(lv->cb, cb, sizeof cb);
                enqueue(lv, EV_CONNECTION, NULL, NULL, DOMAIN_OTHER, true);
                log_info("libvirt driver: reconnected to %s", lv->uri);
                pthread_mutex_unlock(&lv->mu);
                if (virConnectIsAlive(c) == 0)      /* died again meanwhile */
                    conn_lost(lv, c, "lost while reconnecting");
                pthread_mutex_lock(&lv->mu);
            } else {
                lv->backoff_s = lv->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S
                                                                  : lv->backoff_s * 2;
                deadline_after_ms(&lv->next_try, lv->backoff_s * 1000L);
                log_warn("libvirt driver: cannot reconnect to %s: %s (next try in %d s)",
                         lv->uri, why, lv->backoff_s);
            }
            continue;
        }
        if (!lv->conn)
            pthread_cond_timedwait(&lv->cond, &lv->mu, &lv->next_try);
        else
            pthread_cond_wait(&lv->cond, &lv->mu);
    }
    bool abandoned = lv->abandoned;
    pthread_mutex_unlock(&lv->mu);
    if (abandoned)              /* close gave up waiting for us: ours to free */
        lv_free(lv);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* domains                                                             */

/* A domain's lock: made by its first taker, freed by its last; two
 * domains never share one (operations on different servers run in
 * parallel). */
struct lv_dlock {
    char uuid[VIR_UUID_STRING_BUFLEN];
    pthread_mutex_t m;
    int refs;                   /* holders and waiters; under dlocks_mu */
    struct lv_dlock *next;
};

struct lv_dlock *lv_domain_lock(struct driver *d, const char *uuid)
{
    struct lv *lv = (struct lv *)d;
    pthread_mutex_lock(&lv->dlocks_mu);
    struct lv_dlock *l = lv->dlocks;
    while (l && strcmp(l->uuid, uuid) != 0)
        l = l->next;
    if (!l && (l = calloc(1, sizeof *l))) {
        snprintf(l->uuid, sizeof l->uuid, "%s", uuid);
        pthread_mutex_init(&l->m, NULL);
        l->next = lv->dlocks;
        lv->dlocks = l;
    }
    if (l)
        l->refs++;
    pthread_mutex_unlock(&lv->dlocks_mu);
    /* out of memory: every domain's changes wait for each other, as safe */
    pthread_mutex_lock(l ? &l->m : &lv->all_domains);
    return l;
}

void lv_domain_unlock(struct driver *d, struct lv_dlock *l)
{
    struct lv *lv = (struct lv *)d;
    if (!l) {
        pthread_mutex_unlock(&lv->all_domains);
        return;
    }
    pthread_mutex_unlock(&l->m);
    pthread_mutex_lock(&lv->dlocks_mu);
    if (--l->refs == 0) {
        for (struct lv_dlock **p = &lv->dlocks; *p; p = &(*p)->next) {
            if (*p == l) {
                *p = l->next;
                break;
            }
        }
        pthread_mutex_destroy(&l->m);
        free(l);
    }
    pthread_mutex_unlock(&lv->dlocks_mu);
}

void lv_listen(struct driver *d, struct lv_waiter *w)
{
    struct lv *lv = (struct lv *)d;
    w->outcome = W_WAITING;
    pthread_mutex_lock(&lv->mu);
    w->next = lv->waiters;
    lv->waiters = w;
    pthread_mutex_unlock(&lv->mu);
}

void lv_wait(struct driver *d, struct lv_waiter *w, long ms)
{
    struct lv *lv = (struct lv *)d;
    pthread_mutex_lock(&lv->mu);
    if (ms > 0) {
        struct timespec deadline;
        deadline_after_ms(&deadline, ms);
        while (w->outcome == W_WAITING &&
               pthread_cond_timedwait(&lv->wcond, &lv->mu, &deadline) != ETIMEDOUT)
            ;
    }
    for (struct lv_waiter **p = &lv->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_mutex_unlock(&lv->mu);
}

static enum driver_rc lv_domain_lookup(struct driver *d, const char *name_or_uuid,
                                       struct driver_domain *out, struct driver_error *err)
{
    virConnectPtr c;
    virDomainPtr dom;
    enum driver_rc rc = lv_open_domain(d, name_or_uuid, &c, &dom, err);
    if (rc != DRIVER_OK)
        return rc;
    memset(out, 0, sizeof *out);
    int persistent = -1;
    if (virDomainGetUUIDString(dom, out->uuid) < 0 ||
        (persistent = virDomainIsPersistent(dom)) < 0)
        rc = lv_error(d, c, err);
    else
        rc = lv_state(d, c, dom, &out->state, err);
    snprintf(out->name, sizeof out->name, "%s", virDomainGetName(dom));
    out->persistent = persistent == 1;
    lv_release(c, dom);
    return rc;
}

/* ------------------------------------------------------------------ */
/* storage: no connection needed                                       */

static enum driver_rc lv_volume_create(struct driver *d, const char *volume_id, int64_t bytes,
                                       char *path, size_t path_size, struct driver_error *err)
{
    struct lv *lv = (struct lv *)d;
    return volfile_create(lv->volume_dir, volume_id, bytes, lv->hv_user, path, path_size, err);
}

static enum driver_rc lv_volume_delete(struct driver *d, const char *path,
                                       struct driver_error *err)
{
    struct lv *lv = (struct lv *)d;
    return volfile_delete(lv->volume_dir, path, err);
}

static enum driver_rc lv_volume_probe(struct driver *d, const char *path, int64_t *bytes,
                                      bool *block, struct driver_error *err)
{
    (void)d;
    return volfile_probe(path, bytes, block, err);
}

/* ------------------------------------------------------------------ */
/* open and close                                                      */

static void lv_free(struct lv *lv)
{
    while (lv->head) {
        struct lv_event *ev = lv->head;
        lv->head = ev->next;
        free(ev->alias);
        free(ev);
    }
    pthread_mutex_destroy(&lv->mu);
    pthread_cond_destroy(&lv->cond);
    pthread_cond_destroy(&lv->wcond);
    pthread_mutex_destroy(&lv->dlocks_mu);
    pthread_mutex_destroy(&lv->all_domains);
    lv_known_free(lv->known);
    free(lv->uri);
    free(lv->volume_dir);
    free(lv->instance_dir);
    free(lv->owner);
    free(lv);
}

static void lv_close(struct driver *d)
{
    struct lv *lv = (struct lv *)d;
    pthread_mutex_lock(&lv->mu);
    lv->closing = true;
    pthread_cond_broadcast(&lv->cond);
    pthread_mutex_unlock(&lv->mu);

    /* The watch thread may be inside virConnectOpen, which has no timeout
     * (a daemon that accepts but never answers). Do not hang the caller's
     * shutdown on it: leave it the driver to free. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += CLOSE_JOIN_S;
    bool joined = pthread_timedjoin_np(lv->watch, NULL, &deadline) == 0;

    pthread_mutex_lock(&lv->mu);
    virConnectPtr c = lv->conn, dead = lv->dead;
    int cb[CB_COUNT], dead_cb[CB_COUNT];
    memcpy(cb, lv->cb, sizeof cb);
    memcpy(dead_cb, lv->dead_cb, sizeof dead_cb);
    lv->conn = lv->dead = NULL;
    if (!joined) {
        lv->abandoned = true;
        pthread_detach(lv->watch);
    }
    pthread_mutex_unlock(&lv->mu);
    lv_known_flush(lv->known);
    if (c)
        conn_teardown(c, cb);
    if (dead)
        conn_teardown(dead, dead_cb);
    lv_loop_stop();             /* no callback of ours runs after this */
    if (joined)
        lv_free(lv);
    else
        log_warn("libvirt driver: a reconnect to %s did not return within %d s; "
                 "closing without it", lv->uri, CLOSE_JOIN_S);
}

static const struct driver_ops lv_ops = {
    .name = "libvirt",
    .volume_create = lv_volume_create,
    .volume_delete = lv_volume_delete,
    .volume_probe = lv_volume_probe,
    .domain_lookup = lv_domain_lookup,
    .disk_attach = lv_disk_attach,
    .disk_detach = lv_disk_detach,
    .disk_list = lv_disk_list,
    .domain_define = lv_domain_define,
    .domain_undefine = lv_domain_undefine,
    .domain_power = lv_domain_power,
    .console_log = lv_console_log,
    .domain_list = lv_domain_list,
    .close = lv_close,
};

static bool local_system(const char *uri)
{
    return !strncmp(uri, "qemu:///system", 14) || !strncmp(uri, "qemu+unix:///system", 19);
}

struct driver *driver_libvirt_open(const struct driver_options *o, char *err, size_t errlen)
{
    const char *uri = o->uri && *o->uri ? o->uri : "qemu:///system";
    if (!o->volume_dir || o->volume_dir[0] != '/') {
        snprintf(err, errlen, "the libvirt driver needs an absolute volume directory");
        return NULL;
    }
    if (o->instance_dir && o->instance_dir[0] != '/') {
        snprintf(err, errlen, "the libvirt driver needs an absolute instance directory");
        return NULL;
    }
    if (virInitialize() < 0) {
        snprintf(err, errlen, "cannot initialise libvirt");
        return NULL;
    }
    virSetErrorFunc(NULL, quiet);  /* libvirt would print every error on stderr */
    xmlInitParser();

    struct lv *lv = calloc(1, sizeof *lv);
    if (!lv || !(lv->known = lv_known_new()) || !(lv->uri = strdup(uri)) || !(lv->volume_dir = strdup(o->volume_dir)) ||
        !(lv->owner = strdup(o->owner ? o->owner : "")) ||
        (o->instance_dir && !(lv->instance_dir = strdup(o->instance_dir)))) {
        snprintf(err, errlen, "out of memory");
        if (lv) {
            lv_known_free(lv->known);
            free(lv->uri);
            free(lv->volume_dir);
            free(lv->owner);
        }
        free(lv);
        return NULL;
    }
    lv->base.ops = &lv_ops;
    lv->bus = o->bus;
    lv->hv_user = local_system(uri) ? "libvirt-qemu" : NULL;
    lv->settings = (struct lv_settings){.uri = lv->uri, .instance_dir = lv->instance_dir,
                                        .owner = lv->owner, .hv_user = lv->hv_user,
                                        .virt = o->virt};
    pthread_mutex_init(&lv->mu, NULL);
    cond_init_monotonic(&lv->cond);
    cond_init_monotonic(&lv->wcond);
    pthread_mutex_init(&lv->dlocks_mu, NULL);
    pthread_mutex_init(&lv->all_domains, NULL);
    for (int i = 0; i < CB_COUNT; i++)
        lv->cb[i] = lv->dead_cb[i] = -1;

    if (!lv_loop_start(err, errlen)) {
        lv_free(lv);
        return NULL;
    }
    char why[512];
    if (!(lv->conn = conn_open(lv, lv->cb, why, sizeof why))) {
        snprintf(err, errlen, "cannot connect to %s: %s", uri, why);
        lv_loop_stop();
        lv_free(lv);
        return NULL;
    }
    int e = pthread_create(&lv->watch, NULL, watch_main, lv);
    if (e) {
        snprintf(err, errlen, "cannot start the libvirt driver's thread: %s", strerror(e));
        conn_teardown(lv->conn, lv->cb);
        lv_loop_stop();
        lv_free(lv);
        return NULL;
    }
    return &lv->base;
}

/* ------------------------------------------------------------------ */
/* for the driver's other files (libvirt_int.h)                       */

struct lv_settings *lv_settings(struct driver *d)
{
    return &((struct lv *)d)->settings;
}

virConnectPtr lv_connection(struct driver *d, struct driver_error *err)
{
    return conn_get((struct lv *)d, err);
}

struct lv_known *lv_known_of(struct driver *d)
{
    return ((struct lv *)d)->known;
}

enum driver_rc lv_error(struct driver *d, virConnectPtr c, struct driver_error *err)
{
    return lv_failed((struct lv *)d, c, err);
}
