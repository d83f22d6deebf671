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
 *
 * A refused attempt keeps its connection in the lease for the next one (a
 * standby tries every second): that one tries the lock again on the same
 * session (made again only once it is lost), and names the holder again
 * only when the lock has changed hands since it last named it.
 */
#include "store/pg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"

/* The lock's key: "attachdh" in ASCII. */
#define LOCK_KEY "7022365680605881448"
/* The lock's granted row in pg_locks ("" or a table alias such as "l."):
 * pg_advisory_lock(bigint) keeps the key's high half in classid, its low
 * half in objid. */
#define LOCK_ROW(alias)                                      \
    alias "locktype = 'advisory' AND " alias "granted AND "  \
    "((" alias "classid::bigint << 32) | " alias "objid::bigint) = " LOCK_KEY

enum { L_TRY, L_HELD, L_HOLDER, N_L };

static const char *const lease_sql[N_L] = {
    /* the lock; and the session that holds it, if another does (0: none) */
    [L_TRY] = "SELECT pg_try_advisory_lock(" LOCK_KEY ")::int, coalesce((SELECT pid "
              "FROM pg_locks WHERE pid <> pg_backend_pid() AND database = "
              "(SELECT oid FROM pg_database WHERE datname = current_database()) "
              "AND " LOCK_ROW("") " LIMIT 1), 0)",
    /* does this session hold it? (a session made again by libpq would not) */
    [L_HELD] = "SELECT count(*)::int FROM pg_locks WHERE pid = pg_backend_pid() "
               "AND " LOCK_ROW(""),
    [L_HOLDER] = "SELECT a.application_name, coalesce(host(a.client_addr), 'local'), "
                 "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                 "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                 "WHERE l.database = "
                 "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                 "AND " LOCK_ROW("l."),
};

struct pg_lease {
    char *conninfo;
    double lease;               /* seconds */
    void (*lost)(void *cls);
    void *cls;
    struct pg_conn *conn;       /* the lock's session: kept between refused attempts, the
                                   keeper's once held; NULL while lost */
    int64_t holder;             /* refused: the holder's pid, 0 if it could not be named */
    char refusal[512];          /* refused: what the last attempt said of it */
    _Atomic double confirmed;   /* pgc_monotonic(): the sending of the last check that held */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stopping;
    int threads;                /* started: 0, 1 (the keeper), 2 (and the watchdog) */
    pthread_t keeper, watchdog;
};

/* Sleep ms unless told to stop: true when told. */
static bool nap(struct pg_lease *l, int ms)
{
    struct timespec until;
    deadline_after_ms(&until, ms);
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

/* Who holds the lock: 1 (into out: the session, its address, since when),
 * 0 nobody, -1 the database could not be asked (pg_message says why). */
static int describe_holder(struct pg_conn *c, char *out, int len)
{
    struct pg_stmt *st = pg_stmt(c, L_HOLDER);
    if (!st)
        return -1;
    struct arena ar;
    arena_init(&ar);
    int rc = pg_step(st);
    if (rc == 1)
        snprintf(out, (size_t)len, "PostgreSQL session \"%s\" from %s, since %s",
                 pg_col_text(st, 0, &ar), pg_col_text(st, 1, &ar), pg_col_text(st, 2, &ar));
    pg_reset(st);
    arena_release(&ar);
    return rc < 0 ? -1 : rc;
}

/* Who holds the lock, for a refusal: true when it could be named. */
static bool name_holder(struct pg_conn *c, char *err, int errlen)
{
    char who[256];
    bool named = describe_holder(c, who, sizeof who) == 1;
    if (named)
        snprintf(err, (size_t)errlen,
                 "another attachd drives the hypervisor for this database (%s)", who);
    else
        snprintf(err, (size_t)errlen, "another attachd drives the hypervisor for this database");
    return named;
}

/* A connection of the lease's ("attachd hypervisor HOST:PID"). */
static struct pg_conn *lease_connect(const char *conninfo, char *err, int errlen)
{
    char host[64] = "?", name[128];
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "hypervisor %s:%ld", host, (long)getpid());
    return pg_connect(conninfo, lease_sql, N_L, name, err, errlen);
}

/* Try the lock on c: 1 held, 0 another session holds it (*holder: its pid,
 * 0 when it let go meanwhile), -1 the database could not be asked (err says
 * why). */
static int try_on(struct pg_conn *c, int64_t *holder, char *err, int errlen)
{
    struct pg_stmt *st = pg_stmt(c, L_TRY);
    int64_t held = st && pg_step(st) == 1 ? pg_col_int64(st, 0) : -1;
    *holder = held == 0 ? pg_col_int64(st, 1) : 0;
    if (st)
        pg_reset(st);
    if (held < 0) {
        snprintf(err, (size_t)errlen, "cannot take the hypervisor's lock: %s", pg_message(c));
        return -1;
    }
    return held == 1;
}

/* An attempt: try the lock on the session the last refusal kept (made
 * again if it was lost), or on a new one. 1 held, 0 refused (err names the
 * holder, asked again only when the lock changed hands), -1 the database
 * could not be asked (err says why). */
static int attempt(struct pg_lease *l, char *err, int errlen)
{
    bool kept = l->conn != NULL;
    if (!kept && !(l->conn = lease_connect(l->conninfo, err, errlen)))
        return -1;
    int64_t holder;
    int rc = try_on(l->conn, &holder, err, errlen);
    if (rc < 0 && kept && pg_lost(l->conn) && pg_ready(l->conn))
        rc = try_on(l->conn, &holder, err, errlen);   /* a new session, once */
    if (rc == 0) {
        if (!kept || holder == 0 || holder != l->holder)
            l->holder = name_holder(l->conn, l->refusal, sizeof l->refusal) ? holder : 0;
        snprintf(err, (size_t)errlen, "%s", l->refusal);
    } else if (rc < 0) {
        pg_close(l->conn);
        l->conn = NULL;
    }
    return rc;
}

int pg_lease_holder(const char *conninfo, char *who, int wholen, char *err, int errlen)
{
    struct pg_conn *c = pg_connect(conninfo, lease_sql, N_L, "hypervisor check", err, errlen);
    if (!c)
        return -1;
    int rc = describe_holder(c, who, wholen);
    if (rc < 0)
        snprintf(err, (size_t)errlen, "cannot ask who drives the hypervisor: %s", pg_message(c));
    pg_close(c);
    return rc;
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
        double sent = pgc_monotonic();
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
        /* l->conn is NULL: a new session. A refusal keeps it in l->conn, as
         * any refused attempt does; the next check finds that it does not
         * hold the lock and closes it. */
        char err[512];
        int rc = attempt(l, err, sizeof err);
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
    while (!nap(l, 100)) {
        if (pgc_monotonic() - atomic_load(&l->confirmed) > l->lease) {
            log_error("hypervisor: no check confirmed this node's lock for %.0f s: its lease "
                      "has run out, and another node may drive the hypervisor now",
                      l->lease);
            l->lost(l->cls);
            return NULL;
        }
    }
    return NULL;
}

/* Tell the lease's threads to stop, and wait for those that started. */
static void stop_threads(struct pg_lease *l)
{
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->mu);
    if (l->threads > 1)
        pthread_join(l->watchdog, NULL);
    if (l->threads > 0)
        pthread_join(l->keeper, NULL);
    l->threads = 0;
}

static struct pg_lease *lease_new(const char *conninfo, double lease, void (*lost)(void *cls),
                                  void *cls)
{
    struct pg_lease *l = calloc(1, sizeof *l);
    if (!l || !(l->conninfo = strdup(conninfo))) {
        free(l);
        return NULL;
    }
    l->lease = lease;
    l->lost = lost;
    l->cls = cls;
    pthread_mutex_init(&l->mu, NULL);
    cond_init_monotonic(&l->wake);
    return l;
}

int pg_lease_take(const char *conninfo, double lease, void (*lost)(void *cls), void *cls,
                  struct pg_lease **lp, char *err, int errlen)
{
    if (pg_lease_held(*lp))
        return 1;
    if (!*lp && !(*lp = lease_new(conninfo, lease, lost, cls))) {
        snprintf(err, (size_t)errlen, "out of memory");
        return -1;
    }
    struct pg_lease *l = *lp;
    double sent = pgc_monotonic();
    int rc = attempt(l, err, errlen);
    if (rc != 1)
        return rc;
    atomic_store(&l->confirmed, sent);
    l->stopping = false;
    if (pthread_create(&l->keeper, NULL, keeper_main, l) == 0) {
        l->threads = 1;
        if (pthread_create(&l->watchdog, NULL, watchdog_main, l) == 0) {
            l->threads = 2;
            return 1;
        }
    }
    snprintf(err, (size_t)errlen, "cannot start the hypervisor lease's threads");
    stop_threads(l);
    pg_close(l->conn);          /* the lock is free again */
    l->conn = NULL;
    return -1;
}

bool pg_lease_held(const struct pg_lease *l)
{
    return l && l->threads > 0;
}

void pg_lease_end(struct pg_lease *l)
{
    if (!l)
        return;
    stop_threads(l);
    pg_close(l->conn);          /* the session ends: the lock is free */
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l->conninfo);
    free(l);
}
