/* pg_listen.c: a listener (see pg.h): a thread with a PostgreSQL connection
 * of its own that LISTENs on one channel and counts the notifications it
 * hears, so that a process learns of the commits of others without asking.
 *
 * The thread waits in poll() on two descriptors: the connection's socket
 * (libpq reads what arrived: PQconsumeInput, then PQnotifies) and an eventfd
 * written once, by pg_listen_stop(), so that it stops at once whatever it is
 * doing, connecting included (the connection is made without blocking:
 * PQconnectStartParams and PQconnectPoll).
 *
 * Correctness never depends on the listener: while it is not LISTENing the
 * generation moves at every call, and it moves once more each time LISTEN
 * succeeds, since whatever was sent while nobody listened is lost.
 */
#include "store/pg.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

/* One attempt, connecting and LISTEN, fails after this long: a server that
 * accepts a connection and never answers must not keep the listener away
 * for good. */
#define ATTEMPT_MS 10000

struct pg_listener {
    char *conninfo;
    char channel[64];
    char listen_sql[96];
    atomic_uint_fast64_t gen;
    atomic_bool listening;
    int stop_fd;                /* an eventfd, written once: stop */
    pthread_t thread;
};

/* Milliseconds from now to deadline (pgc_monotonic's seconds), 0 once it
 * has passed. */
static int left_ms(double deadline)
{
    double left = (deadline - pgc_monotonic()) * 1000;
    return left > 0 ? (int)left : 0;
}

/* Wait until fd (-1: none) is ready for `events`, or the listener is told
 * to stop, at most timeout_ms (-1: no limit). 1 ready (an error or a hang-up
 * too: libpq finds out), 0 timed out, -1 stop. */
static int wait_for(struct pg_listener *l, int fd, short events, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = l->stop_fd, .events = POLLIN}, {.fd = fd, .events = events}};
    double deadline = pgc_monotonic() + timeout_ms / 1000.0;
    for (;;) {
        int n = poll(p, 2, timeout_ms < 0 ? -1 : left_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* cannot happen with valid descriptors; not a loop at full speed */
            log_error("store: the PostgreSQL listener cannot wait: %s", strerror(errno));
            usleep(100000);
            return 0;
        }
        if (p[0].revents)
            return -1;
        return n > 0 ? 1 : 0;
    }
}

/* The server's warnings to the log (libpq would print them on stderr); the
 * rest (a FATAL that ends the session arrives as one) is dropped: the loss
 * itself is logged. */
static void notice(void *arg, const PGresult *r)
{
    (void)arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (!sev || strcmp(sev, "WARNING") != 0)
        return;
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    log_warn("store: PostgreSQL (attachd listener): %s", msg ? msg : "?");
}

static void set_err(char *err, size_t errlen, const char *what, const char *why)
{
    snprintf(err, errlen, "%s%s", what, why ? why : "");
    size_t len = strlen(err);
    while (len && (err[len - 1] == '\n' || err[len - 1] == ' '))
        err[--len] = '\0';
    if (!err[0])
        snprintf(err, errlen, "failed");
}

/* Connect and LISTEN. NULL: it failed (err says why) or the listener is
 * told to stop (err ""). */
static PGconn *connect_and_listen(struct pg_listener *l, char *err, size_t errlen)
{
    err[0] = '\0';
    double deadline = pgc_monotonic() + ATTEMPT_MS / 1000.0;
    const char *keys[PG_PARAMS], *vals[PG_PARAMS];
    pg_params(l->conninfo, "attachd listener", keys, vals);
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    if (!c) {
        set_err(err, errlen, "out of memory", NULL);
        return NULL;
    }
    /* as if PQconnectPoll had last asked to write (libpq's contract) */
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (PQstatus(c) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
           ps != PGRES_POLLING_FAILED) {
        int w = wait_for(l, PQsocket(c), ps == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                         left_ms(deadline));
        if (w < 0)
            goto stop;
        if (w == 0) {
            set_err(err, errlen, "cannot connect to PostgreSQL: no answer", NULL);
            goto fail;
        }
        ps = PQconnectPoll(c);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        set_err(err, errlen, "cannot connect to PostgreSQL: ", PQerrorMessage(c));
        goto fail;
    }
    PQsetNoticeReceiver(c, notice, l);
    if (PQsetnonblocking(c, 1) != 0 || !PQsendQuery(c, l->listen_sql)) {
        set_err(err, errlen, "cannot send LISTEN: ", PQerrorMessage(c));
        goto fail;
    }
    int f;
    while ((f = PQflush(c)) == 1) {
        int w = wait_for(l, PQsocket(c), POLLOUT, left_ms(deadline));
        if (w < 0)
            goto stop;
        if (w == 0) {
            set_err(err, errlen, "cannot send LISTEN: no answer", NULL);
            goto fail;
        }
    }
    if (f < 0) {
        set_err(err, errlen, "cannot send LISTEN: ", PQerrorMessage(c));
        goto fail;
    }
    bool ok = true;
    for (;;) {
        while (PQisBusy(c)) {
            int w = wait_for(l, PQsocket(c), POLLIN, left_ms(deadline));
            if (w < 0)
                goto stop;
            if (w == 0) {
                set_err(err, errlen, "LISTEN: no answer", NULL);
                goto fail;
            }
            if (!PQconsumeInput(c)) {
                set_err(err, errlen, "LISTEN: ", PQerrorMessage(c));
                goto fail;
            }
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        if (PQresultStatus(r) != PGRES_COMMAND_OK && ok) {
            ok = false;
            set_err(err, errlen, "LISTEN: ", PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    if (!ok)
        goto fail;
    return c;
stop:
    err[0] = '\0';
fail:
    PQfinish(c);
    return NULL;
}

/* Count notifications until the connection is lost (false) or the listener
 * is told to stop (true). */
static bool hear(struct pg_listener *l, PGconn *c)
{
    for (;;) {
        /* what arrived with LISTEN's answer first, then whatever comes */
        bool heard = false;
        PGnotify *n;
        while ((n = PQnotifies(c))) {
            heard = true;
            PQfreemem(n);
        }
        if (heard)
            atomic_fetch_add(&l->gen, 1);
        if (PQstatus(c) == CONNECTION_BAD)
            return false;
        int w = wait_for(l, PQsocket(c), POLLIN, -1);
        if (w < 0)
            return true;
        if (!PQconsumeInput(c))
            return false;
    }
}

static void *listen_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-listen");
    struct pg_listener *l = arg;
    double backoff = PG_BACKOFF_MIN;
    bool lost = false;          /* it listened before */
    for (;;) {
        char err[512];
        PGconn *c = connect_and_listen(l, err, sizeof err);
        if (!c) {
            if (!err[0])
                break;
            log_warn("store: listening on PostgreSQL's channel %s failed, again in %.2f s "
                     "(meanwhile each credential check reads the auth epoch): %s", l->channel,
                     backoff, err);
            if (wait_for(l, -1, 0, (int)(backoff * 1000)) < 0)
                break;
            backoff = backoff * 2 > PG_BACKOFF_MAX ? PG_BACKOFF_MAX : backoff * 2;
            continue;
        }
        backoff = PG_BACKOFF_MIN;
        atomic_store(&l->listening, true);
        /* after listening: a notification sent before LISTEN took effect
         * is not delivered, so whatever happened meanwhile is unknown */
        atomic_fetch_add(&l->gen, 1);
        if (lost)
            log_info("store: listening on PostgreSQL's channel %s again", l->channel);
        bool stop = hear(l, c);
        atomic_store(&l->listening, false);
        if (!stop) {
            char why[256];
            set_err(why, sizeof why, "", PQerrorMessage(c));
            log_warn("store: the PostgreSQL connection listening on %s was lost: %s; making it "
                     "again", l->channel, why);
        }
        PQfinish(c);
        if (stop)
            break;
        lost = true;
    }
    return NULL;
}

struct pg_listener *pg_listen_start(const char *conninfo, const char *channel)
{
    struct pg_listener *l = calloc(1, sizeof *l);
    if (!l || !(l->conninfo = strdup(conninfo))) {
        free(l);
        log_error("store: cannot listen on PostgreSQL's channel %s: out of memory", channel);
        return NULL;
    }
    snprintf(l->channel, sizeof l->channel, "%s", channel);
    snprintf(l->listen_sql, sizeof l->listen_sql, "LISTEN %s", channel);
    atomic_init(&l->gen, 0);
    atomic_init(&l->listening, false);
    if ((l->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        log_error("store: cannot listen on PostgreSQL's channel %s: eventfd: %s", channel,
                  strerror(errno));
        free(l->conninfo);
        free(l);
        return NULL;
    }
    if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
        log_error("store: cannot listen on PostgreSQL's channel %s: no thread", channel);
        close(l->stop_fd);
        free(l->conninfo);
        free(l);
        return NULL;
    }
    return l;
}

uint64_t pg_listen_generation(struct pg_listener *l)
{
    /* The order matters where the listener starts to listen: it sets
     * `listening`, then moves the generation; a caller that saw listening
     * false moved it itself. Either way, a caller whose next call finds the
     * same value read the epoch after LISTEN took effect. */
    if (atomic_load(&l->listening))
        return atomic_load(&l->gen);
    return atomic_fetch_add(&l->gen, 1) + 1;
}

void pg_listen_bump(struct pg_listener *l)
{
    atomic_fetch_add(&l->gen, 1);
}

void pg_listen_stop(struct pg_listener *l)
{
    if (!l)
        return;
    uint64_t one = 1;
    if (write(l->stop_fd, &one, sizeof one) != (ssize_t)sizeof one)
        log_error("store: cannot stop the PostgreSQL listener: %s", strerror(errno));
    pthread_join(l->thread, NULL);
    close(l->stop_fd);
    free(l->conninfo);
    free(l);
}
