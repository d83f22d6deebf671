/* pg_lease.c: the hypervisor's lease on PostgreSQL (see pg.h).
 *
 * The lock is a session advisory lock on a connection of the lease's own.
 * Two threads keep it while it is held:
 *  - the keeper asks, every CHECK seconds, whether this session still holds
 *    the lock; a failed answer (the connection lost, PostgreSQL restarted)
 *    makes it take the lock again on a new connection, once per check, for
 *    as long as the lease lasts: a restart of the server or a short cut
 *    costs nothing when the lock is free again on the other side;
 *  - the watchdog compares the time of the last check that confirmed the
 *    lock (when it was sent) with the lease, whatever the keeper is stuck in
 *    (a connection attempt, a server that does not answer), and calls
 *    lost() once the lease has run out.
 * Why this is safe: another process can hold the lock only after this
 * session ended, hence after the sending of the last check that found it
 * held; this process stops by that moment plus the lease; the other waits
 * the lease (and a margin, PG_LEASE_MARGIN) after taking the lock before it
 * drives anything.
 */
#include "store/pg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

/* The lock's key: "attachdh" in ASCII. */
#define LOCK_KEY "7022365680605881448"

enum { L_TRY, L_HELD, L_HOLDER, N_L };

static const char *const lease_sql[N_L] = {
    [L_TRY] = "SELECT pg_try_advisory_lock(" LOCK_KEY ")::int",
    /* does this session hold it? (a session made again by libpq would not) */
    [L_HELD] = "SELECT count(*)::int FROM pg_locks WHERE pid = pg_backend_pid() "
               "AND locktype = 'advisory' AND granted "
               "AND ((classid::bigint << 32) | objid::bigint) = " LOCK_KEY,
    [L_HOLDER] = "SELECT a.application_name, coalesce(host(a.client_addr), 'local'), "
                 "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                 "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                 "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                 "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                 "AND ((l.classid::bigint << 32) | l.objid::bigint) = " LOCK_KEY,
};

struct pg_lease {
    char *conninfo;
    double lease;               /* seconds */
    void (*lost)(void *cls);
    void *cls;
    struct pg_conn *conn;       /* the keeper's; NULL while lost */
    _Atomic int64_t confirmed;  /* monotonic ms: the sending of the last check that held */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stopping;
    pthread_t keeper, watchdog;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms unless told to stop: true when told. */
static bool nap(struct pg_lease *l, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stopping && pthread_cond_timedwait(&l->wake, &l->mu, &until) == 0)
        ;
    bool stop = l->stopping;
    pthread_mutex_unlock(&l->mu);
    return stop;
}

/* Run a statement of one integer: its value, or -1 when it failed. */
static int64_t ask(struct pg_conn *c, int id)
{
    struct pg_stmt *st = pg_stmt(c, id);
    if (!st)
        return -1;
    int64_t v = pg_step(st) == 1 ? pg_col_int64(st, 0) : -1;
    pg_reset(st);
    return v;
}

/* Who holds the lock, for a refusal. */
static void name_holder(struct pg_conn *c, char *err, int errlen)
{
    struct arena ar;
    arena_init(&ar);
    struct pg_stmt *st = pg_stmt(c, L_HOLDER);
    if (st && pg_step(st) == 1)
        snprintf(err, (size_t)errlen,
                 "another attachd drives the hypervisor for this database (PostgreSQL session "
                 "\"%s\" from %s, since %s)",
                 pg_col_text(st, 0, &ar), pg_col_text(st, 1, &ar), pg_col_text(st, 2, &ar));
    else
        snprintf(err, (size_t)errlen, "another attachd drives the hypervisor for this database");
    if (st)
        pg_reset(st);
    arena_release(&ar);
}

/* Connect and try the lock: 1 held (*out the connection), 0 another session
 * holds it, -1 the database could not be asked; err says why. */
static int try_lock(const char *conninfo, struct pg_conn **out, char *err, int errlen)
{
    char host[64] = "?", name[128];
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "hypervisor %s:%ld", host, (long)getpid());
    struct pg_conn *c = pg_connect(conninfo, lease_sql, N_L, name, err, errlen);
    if (!c)
        return -1;
    int64_t held = ask(c, L_TRY);
    if (held == 1) {
        *out = c;
        return 1;
    }
    if (held < 0)
        snprintf(err, (size_t)errlen, "cannot take the hypervisor's lock: %s", pg_message(c));
    else
        name_holder(c, err, errlen);
    pg_close(c);
    return held < 0 ? -1 : 0;
}

int pg_lease_holder(const char *conninfo, char *who, int wholen, char *err, int errlen)
{
    struct pg_conn *c = pg_connect(conninfo, lease_sql, N_L, "hypervisor check", err, errlen);
    if (!c)
        return -1;
    struct arena ar;
    arena_init(&ar);
    struct pg_stmt *st = pg_stmt(c, L_HOLDER);
    int rc = st ? pg_step(st) : -1;
    if (rc == 1)
        snprintf(who, (size_t)wholen, "PostgreSQL session \"%s\" from %s, since %s",
                 pg_col_text(st, 0, &ar), pg_col_text(st, 1, &ar), pg_col_text(st, 2, &ar));
    else if (rc < 0)
        snprintf(err, (size_t)errlen, "cannot ask who drives the hypervisor: %s", pg_message(c));
    if (st)
        pg_reset(st);
    arena_release(&ar);
    pg_close(c);
    return rc < 0 ? -1 : rc;
}

static int check_ms(const struct pg_lease *l)
{
    double s = l->lease / 4 < 1.0 ? l->lease / 4 : 1.0;
    return (int)(s * 1000);
}

static void *keeper_main(void *arg)
{
    struct pg_lease *l = arg;
    bool said = false, said_taken = false;  /* the loss, another holder: logged */
    while (!nap(l, check_ms(l))) {
        int64_t sent = now_ms();
        if (l->conn && ask(l->conn, L_HELD) == 1) {
            atomic_store(&l->confirmed, sent);
            continue;
        }
        if (!said)
            log_warn("hypervisor: the connection that holds its lease is lost (%s); taking the "
                     "lock again", l->conn ? pg_message(l->conn) : "not made again yet");
        said = true;
        pg_close(l->conn);
        l->conn = NULL;
        char err[512];
        int rc = try_lock(l->conninfo, &l->conn, err, sizeof err);
        if (rc == 1) {
            atomic_store(&l->confirmed, sent);
            log_info("hypervisor: its lock is taken again; this node still drives it");
            said = said_taken = false;
        } else if (rc == 0 && !said_taken) {
            log_error("hypervisor: %s, since this node lost its lock", err);
            said_taken = true;
        }
    }
    return NULL;
}

static void *watchdog_main(void *arg)
{
    struct pg_lease *l = arg;
    int64_t lease_ms = (int64_t)(l->lease * 1000);
    while (!nap(l, 100)) {
        if (now_ms() - atomic_load(&l->confirmed) > lease_ms) {
            log_error("hypervisor: no check confirmed this node's lock for %.0f s: its lease "
                      "has run out, and another node may drive the hypervisor now",
                      l->lease);
            l->lost(l->cls);
            return NULL;
        }
    }
    return NULL;
}

int pg_lease_take(const char *conninfo, double lease, void (*lost)(void *cls), void *cls,
                  struct pg_lease **out, char *err, int errlen)
{
    struct pg_lease *l = calloc(1, sizeof *l);
    if (!l || !(l->conninfo = strdup(conninfo))) {
        free(l);
        snprintf(err, (size_t)errlen, "out of memory");
        return -1;
    }
    l->lease = lease;
    l->lost = lost;
    l->cls = cls;
    int64_t sent = now_ms();
    int rc = try_lock(conninfo, &l->conn, err, errlen);
    if (rc != 1) {
        free(l->conninfo);
        free(l);
        return rc;
    }
    atomic_store(&l->confirmed, sent);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&l->keeper, NULL, keeper_main, l) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the hypervisor lease's keeper");
        goto fail;
    }
    if (pthread_create(&l->watchdog, NULL, watchdog_main, l) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the hypervisor lease's watchdog");
        pthread_mutex_lock(&l->mu);
        l->stopping = true;
        pthread_cond_broadcast(&l->wake);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->keeper, NULL);
        goto fail;
    }
    *out = l;
    return 1;
fail:
    pg_close(l->conn);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l->conninfo);
    free(l);
    return -1;
}

void pg_lease_end(struct pg_lease *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->watchdog, NULL);
    pthread_join(l->keeper, NULL);
    pg_close(l->conn);          /* the session ends: the lock is free */
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l->conninfo);
    free(l);
}
