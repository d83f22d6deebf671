/* pg.h: PostgreSQL connections for the store, through libpq; not part of
 * the store's interface (store.h is).
 *
 * A connection (struct pg_conn) is made with a table of statements, each
 * prepared on connect (one round trip for all of them) and known by its
 * index from then on. It runs in libpq's pipeline mode: a statement is sent
 * together with whatever commands were deferred before it (a BEGIN, a
 * SAVEPOINT, the RELEASE of the last one), in one round trip, and a read
 * transaction's COMMIT is sent without waiting for its answer (read at the
 * next use). So a transaction costs no round trip of its own: a read
 * transaction of one statement is one round trip, a write transaction one per
 * statement and one for its COMMIT.
 *
 * Errors are mapped by SQLSTATE (never by message text):
 *   23505 unique violation            STORE_EXISTS (the constraint's name kept)
 *   40001, 40P01 serialization, deadlock  STORE_BUSY; the transaction is doomed:
 *                                     only its ROLLBACK goes on (the writer runs
 *                                     its jobs again)
 *   55P03 lock timeout, 57014 statement timeout or cancel   STORE_BUSY
 *   class 08, 57P01-57P03, a broken connection   STORE_UNAVAILABLE; the
 *                                     connection is lost and made again later
 *   anything else                     STORE_ERROR, logged
 * After a failed statement inside a transaction, the next statements fail
 * at once (no round trip) until the transaction or the savepoint is rolled
 * back: PostgreSQL refuses them anyway.
 *
 * A lost connection is made again, with its statements prepared again, by
 * pg_ready() on its next use, no sooner than its backoff allows (50 ms,
 * doubling to 2 s): a request meanwhile fails at once. A transaction it was
 * in is gone, and stays refused (STORE_UNAVAILABLE, at once) until it is
 * ended (pg_commit, pg_rollback, pg_end_read), even once the connection is
 * made again, so that none of its statements runs outside it; a COMMIT it
 * was waiting for has an unknown outcome (pg_commit says so). One loss is
 * not seen by its caller: the exchange that opens a transaction (its BEGIN
 * goes with its first statement) and finds the connection lost is made
 * again at once on a new connection (once; not a COMMIT), since nothing of
 * that transaction reached the server: a connection whose session ended
 * while it was idle (a restart, a failover) costs a reconnection, not a
 * refused request.
 *
 * The server's warnings go to the log (libpq would print them on stderr).
 *
 * A connection belongs to one thread at a time.
 */
#ifndef ATTACHD_PG_H
#define ATTACHD_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/arena.h"

#define PG_MAX_PARAMS 24

/* A lost connection is made again no sooner than this after the last
 * failed attempt, in seconds: the first, doubling up to the second. */
#define PG_BACKOFF_MIN 0.05
#define PG_BACKOFF_MAX 2.0

/* Seconds on the monotonic clock (pg_exchange.c): the backoff, the
 * listener's and the lease's waits. */
double pgc_monotonic(void);

struct pg_conn;

struct pg_stmt {
    struct pg_conn *c;
    int id;
    int nparams;                        /* the highest position bound */
    int want;                           /* how many the statement takes */
    const char *val[PG_MAX_PARAMS];     /* NULL: SQL NULL */
    char num[PG_MAX_PARAMS][24];        /* integers, as text */
    PGresult *res;                      /* after the first step: its rows */
    int row, nrows;                     /* the current row; how many */
};

/* How a transaction begins. */
enum pg_begin { PG_READ, PG_WRITE, PG_SERIALIZABLE };

/* Translate an SQLite statement's ?N parameters into PostgreSQL's $N
 * (malloc'd; NULL when out of memory). */
char *pg_translate(const char *sql);

/* Is `db` a PostgreSQL connection string (a postgresql:// or postgres://
 * URI, or libpq's key=value form) rather than a file name? */
bool pg_is_conninfo(const char *db);

/* `db` as it may be shown (a log line, the CLI's output): a connection
 * string without its password ("PostgreSQL host=... port=... dbname=...
 * user=..."), or db itself when it is not one. Into out[size]. */
const char *pg_describe(const char *db, char *out, size_t size);
/* `db` with its password (a URI's user:PASSWORD@ or ?password=, the
 * key=value form's password=...) shown as ***, the rest as written (for
 * `config check`): into out[size], or db itself when it has none. */
const char *pg_redact(const char *db, char *out, size_t size);

/* Connect and prepare sql[0..n-1] (PostgreSQL's text, $N parameters; a NULL
 * entry is left unprepared). `name` says what the connection is for in
 * pg_stat_activity (application_name "attachd <name>" unless the conninfo
 * sets one). NULL on failure, with a reason in err. The texts must outlive
 * the connection. */
/* The keywords and values with which attachd gives libpq a connection
 * string (for PQconnectdbParams or PQconnectStartParams, expand_dbname 1):
 * its own defaults first, which the string overrides where it names them,
 * then the string, then the application name shown in pg_stat_activity
 * unless the string names one. The defaults bound the waits on a server
 * that stops answering without closing the connection (a host gone, a
 * network cut): connect_timeout 10 s, TCP keepalives after 10 s idle every
 * 5 s, 3 missed, and tcp_user_timeout 30 s for data sent and not
 * acknowledged; on a unix socket they do not apply. keys and vals need
 * PG_PARAMS entries. */
#define PG_PARAMS 10
void pg_params(const char *conninfo, const char *appname, const char **keys, const char **vals);

struct pg_conn *pg_connect(const char *conninfo, const char *const *sql, int n, const char *name,
                           char *err, int errlen);
void pg_close(struct pg_conn *c);
/* The connection is usable now: made again if it was lost (and its backoff
 * allows). False when it is lost still. */
bool pg_ready(struct pg_conn *c);
/* Has it lost its server (since the last pg_ready)? */
bool pg_lost(const struct pg_conn *c);
/* How many times it was made again since pg_connect. */
uint64_t pg_reconnects(const struct pg_conn *c);
/* libpq's connection, for what the statement layer does not do (LISTEN). */
PGconn *pg_raw(struct pg_conn *c);

/* ---- statements ---------------------------------------------------------- */

/* Statement `id`, its bindings cleared; NULL when the connection is lost.
 * A position left unbound is NULL, as in SQLite. */
struct pg_stmt *pg_stmt(struct pg_conn *c, int id);
void pg_bind_text(struct pg_stmt *st, int i, const char *s);
void pg_bind_int64(struct pg_stmt *st, int i, int64_t v);
/* The first call runs the statement; each call makes the next row current.
 * 1: a row; 0: no more rows; < 0: -store_rc. */
int pg_step(struct pg_stmt *st);
bool pg_col_null(const struct pg_stmt *st, int i);
const char *pg_col_text(const struct pg_stmt *st, int i, struct arena *ar);
int64_t pg_col_int64(const struct pg_stmt *st, int i);
/* Forget its rows and bindings, ready for the next use. */
void pg_reset(struct pg_stmt *st);
/* Rows the last statement changed. */
int64_t pg_changes(const struct pg_conn *c);
/* After STORE_EXISTS: the unique constraint that was violated. */
const char *pg_constraint(const struct pg_conn *c);
/* The last error's SQLSTATE and message ("" when none). */
const char *pg_sqlstate(const struct pg_conn *c);
const char *pg_message(const struct pg_conn *c);

/* ---- transactions -------------------------------------------------------- */

/* Begin one (sent with the next statement). PG_READ: REPEATABLE READ, READ
 * ONLY: every read sees one snapshot. PG_WRITE: READ COMMITTED.
 * PG_SERIALIZABLE: SERIALIZABLE, the store's writer's (docs/scale-out.md):
 * a conflict with a concurrent transaction fails it (STORE_BUSY, doomed),
 * at a statement or at its COMMIT. */
void pg_begin(struct pg_conn *c, enum pg_begin how);
/* A savepoint (sent with the next statement), its rollback (a round trip,
 * unless nothing was sent since), its release (sent with the next command).
 * One at a time: the next pg_savepoint comes after pg_release. */
void pg_savepoint(struct pg_conn *c);
enum store_rc pg_rollback_to(struct pg_conn *c);
void pg_release(struct pg_conn *c);
/* COMMIT and wait for it: STORE_OK; STORE_BUSY when a serialization
 * failure undid it; STORE_UNAVAILABLE when the connection was lost before
 * the answer came: *unknown then says whether it might have committed. */
enum store_rc pg_commit(struct pg_conn *c, bool *unknown);
/* The open transaction's COMMIT will not wait for its WAL to reach the disk
 * (SET LOCAL synchronous_commit TO off, sent with the next command): for a
 * transaction of lazy jobs alone (store.h). */
void pg_commit_unflushed(struct pg_conn *c);
/* End a read transaction without waiting (COMMIT, its answer read later). */
void pg_end_read(struct pg_conn *c);
/* ROLLBACK (without a round trip if nothing was sent). */
void pg_rollback(struct pg_conn *c);
/* The transaction can only be rolled back (a serialization failure, a
 * deadlock, the connection lost), or the savepoint only rolled back to (a
 * statement failed in it). */
bool pg_doomed(const struct pg_conn *c);
bool pg_failed(const struct pg_conn *c);
/* Is a transaction open (or about to be)? */
bool pg_in_transaction(const struct pg_conn *c);

/* ---- the store's records on PostgreSQL (pg_engine.c) ---------------------- */

/* A connection of the store's PostgreSQL engine (store_int.h) outside any
 * store (the tests'): the record functions of store.h (records.c) run on
 * it, each statement prepared on connect. A store opened on this engine
 * (store_open with a connection string) makes its own connections; this
 * one is not for store_reader, store_read_begin and the rest. Its owner
 * runs the records inside the transactions it begins and ends on
 * pg_store_pg(c) (pg_begin, pg_savepoint, pg_commit, pg_end_read ...), and
 * makes it again with pg_ready() once it is lost. NULL on failure, with a
 * reason in err. */
struct store_conn *pg_store_connect(const char *conninfo, const char *name, char *err,
                                    int errlen);
void pg_store_close(struct store_conn *c);
/* Its PostgreSQL connection (NULL if c is another engine's). */
struct pg_conn *pg_store_pg(struct store_conn *c);

/* ---- listening for notifications (pg_listen.c) ----------------------------- */

/* A listener: a thread with a connection of its own ("attachd listener" in
 * pg_stat_activity) that LISTENs on `channel` (a lowercase identifier, as
 * NOTIFY and pg_notify name it) and counts what it hears, so that a process
 * learns of the commits of others (another node, the CLI) without asking.
 *
 * pg_listen_generation() is a number that moves whenever a notification may
 * have been sent since the caller's last call:
 *  - while the listener LISTENs: when a notification arrives (each batch of
 *    them read at once moves it once), when pg_listen_bump() is called, and
 *    once each time LISTEN succeeds (the first time and after every
 *    reconnection: whatever was sent while nobody listened is unknown);
 *  - while it does not (before its first LISTEN succeeds, while its
 *    connection is lost or being made again): at every call.
 * So a caller that compares it with the value it last saw never misses a
 * notification that was delivered; one committed while it listens is
 * delivered within moments of its COMMIT (NOTIFY is transactional: sent at
 * commit, dropped on rollback).
 *
 * A lost connection is made again by the thread, at once and then no sooner
 * than its backoff allows (PG_BACKOFF_MIN doubling to PG_BACKOFF_MAX); an
 * attempt (connecting and LISTEN) that takes longer than 10 s fails.
 * NULL when the thread cannot start (logged). */
struct pg_listener;
struct pg_listener *pg_listen_start(const char *conninfo, const char *channel);
uint64_t pg_listen_generation(struct pg_listener *l);
/* Move the generation (this process made a change the channel is about). */
void pg_listen_bump(struct pg_listener *l);
/* Stop the thread (at once, even in the middle of connecting), close its
 * connection, free it. NULL is ignored. */
void pg_listen_stop(struct pg_listener *l);

/* ---- the hypervisor's lease (pg_lease.c) ----------------------------------- */

/* One process per database drives a hypervisor (docs/scale-out.md). Its
 * lease is a session advisory lock on a connection of its own ("attachd
 * hypervisor HOST:PID" in pg_stat_activity), which PostgreSQL releases when
 * the session ends: the process's death (a kill -9 too), a restart of the
 * server, a cut connection once the server sees it.
 *
 * pg_lease_take: 1 held, 0 another session holds it (err names it), -1 the
 * database could not be asked (err says why). While it is held, the lease
 * checks every min(1 s, lease/4) that its session still holds the lock, and
 * when the connection is lost takes the lock again on a new one. When no
 * check has confirmed the lock for `lease` seconds, lost(cls) is called,
 * once, on a thread of the lease's: another process may hold the lock from
 * then on, and the caller must stop driving the hypervisor at once.
 * *lp is made by the first attempt, and a refused one keeps its session in
 * it for the next (a standby's, every second), which tries the lock again
 * on it (made again if it was lost) and names the holder again only when
 * it has changed; once held, pg_lease_take answers 1 at once.
 *
 * So a process that takes the lock must wait `lease` seconds and
 * PG_LEASE_MARGIN before it drives anything: the last holder may be alive
 * and not know yet that its lease ran out. Every process of a database must
 * use the same lease. */
#define PG_LEASE_MARGIN 2.0
struct pg_lease;
int pg_lease_take(const char *conninfo, double lease, void (*lost)(void *cls), void *cls,
                  struct pg_lease **lp, char *err, int errlen);
/* Is the lock held (by an attempt that answered 1)? NULL: no. */
bool pg_lease_held(const struct pg_lease *l);
/* Release the lock, or a refused attempt's session (the session ends), stop
 * the lease's threads, and free it. NULL is ignored. */
void pg_lease_end(struct pg_lease *l);
/* Who holds the lock, asked on a connection of its own: 1 (into who: the
 * session, its address, since when), 0 nobody, -1 the database could not
 * be asked (err says why). */
int pg_lease_holder(const char *conninfo, char *who, int wholen, char *err, int errlen);

/* ---- the database's clock -------------------------------------------------- */

/* Microseconds since the epoch by the server's clock, measured on c, and the
 * local CLOCK_REALTIME at the middle of the round trip. */
bool pg_clock(struct pg_conn *c, int64_t *server_us, int64_t *local_us);

#endif
