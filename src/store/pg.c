/* pg.c: PostgreSQL connections for the store (see pg.h): connecting and
 * preparing, the pipeline that sends deferred commands with the next
 * statement, SQLSTATEs mapped to store_rc, and making a lost connection
 * again with backoff.
 *
 * Every exchange with the server is one pipeline: the deferred commands,
 * then the statement (or a transaction command), then a sync, then every
 * result read up to the sync's. Commands sent without waiting (a read
 * transaction's COMMIT, a ROLLBACK) leave their results to be read before
 * the next exchange, in order; the server has already acted on them.
 */
#include "store/pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/metrics.h"

/* The transaction commands every connection has prepared besides its own
 * statements. */
enum {
    I_BEGIN_READ, I_BEGIN_WRITE, I_BEGIN_SERIALIZABLE, I_SAVEPOINT, I_ROLLBACK_TO, I_RELEASE, I_COMMIT, I_ROLLBACK,
    I_CLOCK, N_INTERNAL
};

static const char *const internal_sql[N_INTERNAL] = {
    [I_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    [I_BEGIN_WRITE] = "BEGIN ISOLATION LEVEL READ COMMITTED",
    [I_BEGIN_SERIALIZABLE] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
    [I_SAVEPOINT] = "SAVEPOINT job",
    [I_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT job",
    [I_RELEASE] = "RELEASE SAVEPOINT job",
    [I_COMMIT] = "COMMIT",
    [I_ROLLBACK] = "ROLLBACK",
    [I_CLOCK] = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
};

/* Settings of every connection: a lock waited for longer than this, or a
 * statement running longer, fails (STORE_BUSY: the client gets 503); a
 * node that stopped halfway through a transaction does not keep its locks. */
#define SESSION_SETTINGS "SET lock_timeout = '5s'; SET statement_timeout = '30s'; " \
                         "SET idle_in_transaction_session_timeout = '60s'; " \
                         "SET client_encoding = 'UTF8'"

#define BACKOFF_MIN PG_BACKOFF_MIN
#define BACKOFF_MAX PG_BACKOFF_MAX
#define MAX_DEFERRED 6

/* TX_LOST: the connection was lost while the transaction was open; the
 * transaction is gone, and stays refused (STORE_UNAVAILABLE) until its owner
 * ends it, even once the connection is made again, so that its later
 * statements can never run outside it. */
enum tx { TX_NONE, TX_OPEN, TX_FAILED, TX_DOOMED, TX_LOST };

/* The savepoint: none, deferred (not sent yet), or sent. One at a time. */
enum sp { SP_NONE, SP_DEFERRED, SP_SENT };

struct pg_conn {
    PGconn *conn;
    char *conninfo;
    char appname[64];
    const char *const *sql;
    int n;
    struct pg_stmt *st;
    int defer[MAX_DEFERRED];            /* internal commands to send first */
    int ndefer;
    int unread;                         /* syncs whose results are still to be read */
    enum tx tx;
    enum sp sp;
    bool begun;                         /* the transaction's BEGIN was sent */
    bool last_ran;                      /* the last exchange's own command ran (not
                                         * skipped after an earlier one failed) */
    bool lost;
    int64_t changes;
    char sqlstate[6], constraint[64], message[256];
    double next_try, backoff;
    uint64_t reconnects;
};

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------------
 * Connection strings and SQL text
 * ------------------------------------------------------------------------- */

bool pg_is_conninfo(const char *db)
{
    if (!db)
        return false;
    if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11))
        return true;
    if (!strchr(db, '='))
        return false;
    /* key=value: only if libpq reads it as such (a file may have '=' in its
     * name: "data/a=b.db" is not a valid keyword list) */
    char *msg = NULL;
    PQconninfoOption *o = PQconninfoParse(db, &msg);
    PQfreemem(msg);
    if (!o)
        return false;
    PQconninfoFree(o);
    return true;
}

const char *pg_describe(const char *db, char *out, size_t size)
{
    if (!pg_is_conninfo(db))
        return db;
    PQconninfoOption *opts = PQconninfoParse(db, NULL);
    int n = snprintf(out, size, "PostgreSQL");
    static const char *const shown[] = {"host", "hostaddr", "port", "dbname", "user"};
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
            if (o->val && *o->val && !strcmp(o->keyword, shown[i]) && n >= 0 &&
                (size_t)n < size)
                n += snprintf(out + n, size - (size_t)n, " %s=%s", o->keyword, o->val);
    PQconninfoFree(opts);
    return out;
}

char *pg_translate(const char *sql)
{
    size_t n = strlen(sql);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = sql; *p; p++)
        *o++ = *p == '?' && p[1] >= '0' && p[1] <= '9' ? '$' : *p;
    *o = '\0';
    return out;
}

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */

static void clear_error(struct pg_conn *c)
{
    c->sqlstate[0] = c->constraint[0] = c->message[0] = '\0';
}

/* The connection is gone: whatever it was in the middle of is gone too. */
static void mark_lost(struct pg_conn *c)
{
    if (!c->lost)
        log_warn("store: the PostgreSQL connection (%s) was lost: %s", c->appname,
                 c->message[0] ? c->message : "no answer");
    c->lost = true;
    c->tx = c->tx == TX_NONE ? TX_NONE : TX_LOST;
    c->sp = SP_NONE;
    c->begun = false;
    c->ndefer = 0;
    c->unread = 0;
    c->next_try = monotonic();      /* the first attempt at once */
}

/* Map a failed result (or, r NULL, a failure to send) to -store_rc, and
 * what it does to the transaction. */
static int failed(struct pg_conn *c, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->conn);
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
    snprintf(c->message, sizeof c->message, "%s", msg ? msg : "");
    size_t len = strlen(c->message);
    while (len && (c->message[len - 1] == '\n' || c->message[len - 1] == ' '))
        c->message[--len] = '\0';
    const char *con = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    snprintf(c->constraint, sizeof c->constraint, "%s", con ? con : "");
    if (PQstatus(c->conn) == CONNECTION_BAD || !strncmp(c->sqlstate, "08", 2) ||
        !strcmp(c->sqlstate, "57P01") || !strcmp(c->sqlstate, "57P02") ||
        !strcmp(c->sqlstate, "57P03")) {
        mark_lost(c);
        return -STORE_UNAVAILABLE;
    }
    bool doom = !strcmp(c->sqlstate, "40001") || !strcmp(c->sqlstate, "40P01");
    if (c->tx == TX_OPEN)
        c->tx = doom ? TX_DOOMED : TX_FAILED;
    else if (c->tx == TX_FAILED && doom)
        c->tx = TX_DOOMED;
    if (!strcmp(c->sqlstate, "23505"))
        return -STORE_EXISTS;
    if (doom || !strcmp(c->sqlstate, "55P03") || !strcmp(c->sqlstate, "57014"))
        return -STORE_BUSY;
    if (strcmp(c->sqlstate, "25P02") != 0) {
        log_error("store: PostgreSQL: %s%s%s", c->message, c->sqlstate[0] ? " SQLSTATE " : "",
                  c->sqlstate);
        metrics_inc(METRIC_STORE_ERROR);
    }
    return -STORE_ERROR;
}

/* ---------------------------------------------------------------------------
 * The pipeline
 * ------------------------------------------------------------------------- */

static void iname(char out[12], int i)
{
    snprintf(out, 12, "i%d", i);
}

static void sname(char out[12], int i)
{
    snprintf(out, 12, "s%d", i);
}

/* Read and drop every result up to the next sync's. False: the connection
 * broke. */
static bool skip_to_sync(struct pg_conn *c)
{
    for (int nulls = 0;;) {
        PGresult *r = PQgetResult(c->conn);
        if (!r) {
            if (PQstatus(c->conn) == CONNECTION_BAD || ++nulls > 64)
                return false;
            continue;
        }
        ExecStatusType s = PQresultStatus(r);
        PQclear(r);
        if (s == PGRES_PIPELINE_SYNC)
            return true;
    }
}

/* The results of commands sent without waiting. */
static bool drain(struct pg_conn *c)
{
    for (; c->unread > 0; c->unread--) {
        if (!skip_to_sync(c)) {
            snprintf(c->message, sizeof c->message, "%s", PQerrorMessage(c->conn));
            mark_lost(c);
            return false;
        }
    }
    return true;
}

/* Send the deferred commands, then internal command `cmd` (>= 0) or the
 * statement st, then a sync. False: the connection broke. */
static bool send_all(struct pg_conn *c, int cmd, struct pg_stmt *st)
{
    char name[12];
    for (int i = 0; i < c->ndefer; i++) {
        iname(name, c->defer[i]);
        if (!PQsendQueryPrepared(c->conn, name, 0, NULL, NULL, NULL, 0))
            return false;
        if (c->defer[i] == I_BEGIN_READ || c->defer[i] == I_BEGIN_WRITE ||
            c->defer[i] == I_BEGIN_SERIALIZABLE)
            c->begun = true;
        if (c->defer[i] == I_SAVEPOINT)
            c->sp = SP_SENT;
    }
    if (cmd >= 0)
        iname(name, cmd);
    else
        sname(name, st->id);
    /* as many values as the statement takes (those not bound are NULL, as
     * in SQLite), or more if more were bound (PostgreSQL then refuses it) */
    int nparams = cmd >= 0 ? 0 : st->nparams > st->want ? st->nparams : st->want;
    if (!PQsendQueryPrepared(c->conn, name, nparams, cmd >= 0 ? NULL : st->val, NULL, NULL, 0))
        return false;
    return PQpipelineSync(c->conn) == 1;
}

/* One exchange: the deferred commands and cmd or st, waited for. 0, or
 * -store_rc; a statement's rows are in st->res. *out_res (if given) gets
 * the last command's result. */
static int exchange_once(struct pg_conn *c, int cmd, struct pg_stmt *st, PGresult **out_res)
{
    if (c->lost)
        return -STORE_UNAVAILABLE;
    if (!drain(c))
        return -STORE_UNAVAILABLE;
    clear_error(c);
    c->last_ran = false;
    if (st)
        c->changes = 0;
    int nq = c->ndefer + 1;
    if (!send_all(c, cmd, st)) {
        /* part of a pipeline may be queued without its sync: the
         * connection's state is unknown, so it is made again */
        snprintf(c->message, sizeof c->message, "%s", PQerrorMessage(c->conn));
        mark_lost(c);
        return -STORE_UNAVAILABLE;
    }
    c->ndefer = 0;
    int rc = 0, q = 0, nulls = 0;
    for (;;) {
        PGresult *r = PQgetResult(c->conn);
        if (!r) {
            /* the end of one command's results; a broken connection ends
             * them all (and then gives NULL forever) */
            if (PQstatus(c->conn) == CONNECTION_BAD || ++nulls > nq + 2) {
                if (!c->message[0])
                    snprintf(c->message, sizeof c->message, "%s", PQerrorMessage(c->conn));
                mark_lost(c);
                return -STORE_UNAVAILABLE;
            }
            q++;
            continue;
        }
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (q == nq - 1 && s != PGRES_PIPELINE_ABORTED)
            c->last_ran = true;
        if (s == PGRES_FATAL_ERROR) {
            if (rc == 0)
                rc = failed(c, r);
            PQclear(r);
            if (c->lost)
                return rc;
            continue;
        }
        if (s == PGRES_PIPELINE_ABORTED || q != nq - 1) {
            PQclear(r);
            continue;
        }
        /* the last command's result */
        if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
            const char *n = PQcmdTuples(r);
            c->changes = n && *n ? strtoll(n, NULL, 10) : 0;
        }
        if (out_res)
            *out_res = r;
        else if (st && s == PGRES_TUPLES_OK)
            st->res = r;
        else
            PQclear(r);
    }
    return rc;
}

/* exchange_once, and once more on a new connection when the connection is
 * found lost by the exchange that opens a transaction (its BEGIN not yet
 * sent): nothing of that transaction reached the server, so it can begin
 * on the new one as if the old had never been. A connection that broke
 * while idle (PostgreSQL restarted, failed over, ended the session) then
 * costs its next transaction a reconnection, not a refusal. Anything else
 * lost stays lost: a transaction that had begun, a statement outside one
 * (it may have run). */
static int exchange(struct pg_conn *c, int cmd, struct pg_stmt *st, PGresult **out_res)
{
    /* (a COMMIT sent with its BEGIN may have committed: never again) */
    bool opening = c->tx == TX_OPEN && !c->begun && cmd != I_COMMIT;
    int saved[MAX_DEFERRED], nsaved = c->ndefer;
    enum sp sp = c->sp;
    memcpy(saved, c->defer, sizeof saved);
    int rc = exchange_once(c, cmd, st, out_res);
    if (rc != -STORE_UNAVAILABLE || !opening || !c->lost || !pg_ready(c))
        return rc;
    c->tx = TX_OPEN;
    c->sp = sp;
    c->begun = false;
    memcpy(c->defer, saved, sizeof saved);
    c->ndefer = nsaved;
    return exchange_once(c, cmd, st, out_res);
}

/* Send cmd (after the deferred ones) and a sync, not waiting. */
static void send_nowait(struct pg_conn *c, int cmd)
{
    if (c->lost)
        return;
    if (!send_all(c, cmd, NULL)) {
        snprintf(c->message, sizeof c->message, "%s", PQerrorMessage(c->conn));
        mark_lost(c);
        return;
    }
    c->ndefer = 0;
    c->unread++;
}

static void defer(struct pg_conn *c, int cmd)
{
    if (c->ndefer < MAX_DEFERRED)
        c->defer[c->ndefer++] = cmd;
}

static bool deferred_last(const struct pg_conn *c, int cmd)
{
    return c->ndefer > 0 && c->defer[c->ndefer - 1] == cmd;
}

/* ---------------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------------- */

/* The server's warnings (a NOTICE or less is dropped): to the log, not to
 * libpq's default of stderr. */
static void notice(void *arg, const PGresult *r)
{
    const struct pg_conn *c = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (!sev || strcmp(sev, "WARNING") != 0)
        return;
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    log_warn("store: PostgreSQL (%s): %s (SQLSTATE %s)", c->appname, msg ? msg : "?",
             state ? state : "?");
}

/* libpq's messages end with a newline: a log line must not. */
static void trim(char *s)
{
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
        s[--len] = '\0';
}

/* Connect, configure, enter pipeline mode, prepare every statement and
 * learn how many parameters each takes (one round trip for all). */
void pg_params(const char *conninfo, const char *appname, const char **keys, const char **vals)
{
    static const char *const defaults[][2] = {
        {"connect_timeout", "10"},   {"keepalives", "1"},       {"keepalives_idle", "10"},
        {"keepalives_interval", "5"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++, n++) {
        keys[n] = defaults[i][0];
        vals[n] = defaults[i][1];
    }
    keys[n] = "dbname";
    vals[n++] = conninfo;
    keys[n] = "fallback_application_name";
    vals[n++] = appname;
    keys[n] = vals[n] = NULL;
}

static PGconn *open_conn(struct pg_conn *c, char *err, int errlen)
{
    const char *keys[PG_PARAMS], *vals[PG_PARAMS];
    pg_params(c->conninfo, c->appname, keys, vals);
    int *ids = NULL;        /* what the sent-th Prepare was: -1 - internal, or a statement */
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, (size_t)errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        goto fail;
    }
    PQsetNoticeReceiver(conn, notice, c);
    PGresult *r = PQexec(conn, SESSION_SETTINGS);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, (size_t)errlen, "cannot configure the PostgreSQL session: %s",
                 PQresultErrorMessage(r));
    PQclear(r);
    if (!ok)
        goto fail;
    if (PQenterPipelineMode(conn) != 1) {
        snprintf(err, (size_t)errlen, "libpq cannot enter pipeline mode: %s",
                 PQerrorMessage(conn));
        goto fail;
    }
    char name[12];
    int sent = 0;
    ids = calloc((size_t)(N_INTERNAL + c->n), sizeof *ids);
    if (!ids) {
        snprintf(err, (size_t)errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < N_INTERNAL + c->n; i++) {
        bool internal = i < N_INTERNAL;
        int id = internal ? i : i - N_INTERNAL;
        if (!internal && !c->sql[id])
            continue;
        if (internal)
            iname(name, id);
        else
            sname(name, id);
        if (!PQsendPrepare(conn, name, internal ? internal_sql[id] : c->sql[id], 0, NULL) ||
            !PQsendDescribePrepared(conn, name))
            goto send_failed;
        ids[sent++] = internal ? -1 - id : id;
    }
    if (PQpipelineSync(conn) != 1)
        goto send_failed;
    /* for each statement, its Prepare's result and its Describe's (each
     * followed by NULL), then the sync's */
    int q = 0;
    const char *bad = NULL;
    char why[512] = "";
    for (int nulls = 0;;) {
        PGresult *p = PQgetResult(conn);
        if (!p) {
            if (PQstatus(conn) == CONNECTION_BAD || ++nulls > 2 * sent + 2)
                goto send_failed;
            q++;
            continue;
        }
        ExecStatusType s = PQresultStatus(p);
        if (s == PGRES_PIPELINE_SYNC) {
            PQclear(p);
            break;
        }
        int id = q / 2 < sent ? ids[q / 2] : INT32_MIN;
        if (s == PGRES_FATAL_ERROR && !why[0]) {
            bad = id == INT32_MIN ? "?" : id < 0 ? internal_sql[-1 - id] : c->sql[id];
            snprintf(why, sizeof why, "%s", PQresultErrorMessage(p));
        }
        if (s == PGRES_COMMAND_OK && q % 2 == 1 && id >= 0)
            c->st[id].want = PQnparams(p);
        PQclear(p);
    }
    free(ids);
    ids = NULL;
    if (why[0]) {
        snprintf(err, (size_t)errlen, "cannot prepare \"%s\": %s", bad, why);
        goto fail;
    }
    return conn;
send_failed:
    snprintf(err, (size_t)errlen, "cannot prepare the statements: %s", PQerrorMessage(conn));
fail:
    if (errlen > 0)
        trim(err);
    free(ids);
    PQfinish(conn);
    return NULL;
}

struct pg_conn *pg_connect(const char *conninfo, const char *const *sql, int n, const char *name,
                           char *err, int errlen)
{
    struct pg_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->conninfo = strdup(conninfo)) ||
        !(c->st = calloc((size_t)(n > 0 ? n : 1), sizeof *c->st))) {
        if (c)
            free(c->conninfo);
        free(c);
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    snprintf(c->appname, sizeof c->appname, "attachd %s", name);
    c->sql = sql;
    c->n = n;
    c->backoff = BACKOFF_MIN;
    for (int i = 0; i < n; i++) {
        c->st[i].c = c;
        c->st[i].id = i;
    }
    if (!(c->conn = open_conn(c, err, errlen))) {
        free(c->st);
        free(c->conninfo);
        free(c);
        return NULL;
    }
    return c;
}

void pg_close(struct pg_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        PQclear(c->st[i].res);
    PQfinish(c->conn);
    free(c->st);
    free(c->conninfo);
    free(c);
}

bool pg_ready(struct pg_conn *c)
{
    if (!c->lost)
        return true;
    double now = monotonic();
    if (now < c->next_try)
        return false;
    char err[512];
    PGconn *conn = open_conn(c, err, sizeof err);
    if (!conn) {
        c->next_try = now + c->backoff;
        c->backoff = c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : c->backoff * 2;
        log_warn("store: reconnecting to PostgreSQL (%s) failed, again in %.2f s: %s",
                 c->appname, c->backoff, err);
        return false;
    }
    PQfinish(c->conn);
    c->conn = conn;
    c->lost = false;
    c->backoff = BACKOFF_MIN;
    c->reconnects++;
    for (int i = 0; i < c->n; i++) {
        PQclear(c->st[i].res);
        c->st[i].res = NULL;
    }
    log_info("store: reconnected to PostgreSQL (%s)", c->appname);
    return true;
}

bool pg_lost(const struct pg_conn *c)
{
    return c->lost;
}

uint64_t pg_reconnects(const struct pg_conn *c)
{
    return c->reconnects;
}

PGconn *pg_raw(struct pg_conn *c)
{
    return c->conn;
}

/* ---------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------- */

struct pg_stmt *pg_stmt(struct pg_conn *c, int id)
{
    if (c->lost)
        return NULL;
    struct pg_stmt *st = &c->st[id];
    pg_reset(st);
    return st;
}

void pg_bind_text(struct pg_stmt *st, int i, const char *s)
{
    if (i < 1 || i > PG_MAX_PARAMS)
        return;
    st->val[i - 1] = s;
    if (i > st->nparams)
        st->nparams = i;
}

void pg_bind_int64(struct pg_stmt *st, int i, int64_t v)
{
    if (i < 1 || i > PG_MAX_PARAMS)
        return;
    snprintf(st->num[i - 1], sizeof st->num[i - 1], "%lld", (long long)v);
    pg_bind_text(st, i, st->num[i - 1]);
}

int pg_step(struct pg_stmt *st)
{
    struct pg_conn *c = st->c;
    if (!st->res && st->row == 0) {
        if (c->tx == TX_FAILED || c->tx == TX_DOOMED || c->tx == TX_LOST) {
            /* PostgreSQL refuses everything until the rollback (or the
             * transaction is gone with its connection) */
            st->row = 1;
            return c->tx == TX_DOOMED ? -STORE_BUSY
                   : c->tx == TX_LOST ? -STORE_UNAVAILABLE : -STORE_ERROR;
        }
        int rc = exchange(c, -1, st, NULL);
        st->row = 0;
        st->nrows = st->res ? PQntuples(st->res) : 0;
        if (rc < 0) {
            st->row = 1;        /* a second step does not run it again */
            return rc;
        }
        if (!st->res)
            st->row = 1;        /* no rows (an INSERT, an UPDATE) */
        else if (st->nrows > 0)
            return 1;
        return 0;
    }
    if (!st->res)
        return 0;
    if (st->row + 1 < st->nrows) {
        st->row++;
        return 1;
    }
    st->row = st->nrows;
    return 0;
}

bool pg_col_null(const struct pg_stmt *st, int i)
{
    return !st->res || st->row >= st->nrows || PQgetisnull(st->res, st->row, i);
}

const char *pg_col_text(const struct pg_stmt *st, int i, struct arena *ar)
{
    if (pg_col_null(st, i))
        return NULL;
    return arena_strndup(ar, PQgetvalue(st->res, st->row, i),
                         (size_t)PQgetlength(st->res, st->row, i));
}

int64_t pg_col_int64(const struct pg_stmt *st, int i)
{
    if (pg_col_null(st, i))
        return 0;
    return strtoll(PQgetvalue(st->res, st->row, i), NULL, 10);
}

void pg_reset(struct pg_stmt *st)
{
    PQclear(st->res);
    st->res = NULL;
    st->row = st->nrows = 0;
    st->nparams = 0;
    memset(st->val, 0, sizeof st->val);
}

int64_t pg_changes(const struct pg_conn *c)
{
    return c->changes;
}

const char *pg_constraint(const struct pg_conn *c)
{
    return c->constraint;
}

const char *pg_sqlstate(const struct pg_conn *c)
{
    return c->sqlstate;
}

const char *pg_message(const struct pg_conn *c)
{
    return c->message;
}

/* ---------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------- */

/* The transaction is over, on our side. */
static void end_tx(struct pg_conn *c)
{
    c->tx = TX_NONE;
    c->sp = SP_NONE;
    c->begun = false;
}

void pg_begin(struct pg_conn *c, enum pg_begin how)
{
    if (c->lost || c->tx != TX_NONE)
        return;
    static const int begin_cmd[] = {[PG_READ] = I_BEGIN_READ, [PG_WRITE] = I_BEGIN_WRITE,
                                    [PG_SERIALIZABLE] = I_BEGIN_SERIALIZABLE};
    defer(c, begin_cmd[how]);
    c->tx = TX_OPEN;
    c->sp = SP_NONE;
    c->begun = false;
}

void pg_savepoint(struct pg_conn *c)
{
    if (c->tx != TX_OPEN || c->sp != SP_NONE)
        return;
    defer(c, I_SAVEPOINT);
    c->sp = SP_DEFERRED;
}

enum store_rc pg_rollback_to(struct pg_conn *c)
{
    if (c->tx == TX_LOST || c->lost)
        return STORE_UNAVAILABLE;
    if (c->tx == TX_DOOMED)
        return STORE_BUSY;
    if (c->sp == SP_DEFERRED)
        return STORE_OK;        /* nothing was done since it: it stays as it is */
    if (c->tx == TX_FAILED)
        c->tx = TX_OPEN;        /* ROLLBACK TO is what PostgreSQL accepts now */
    int rc = exchange(c, I_ROLLBACK_TO, NULL, NULL);
    return rc < 0 ? (enum store_rc)-rc : STORE_OK;
}

void pg_release(struct pg_conn *c)
{
    if (c->sp == SP_DEFERRED && deferred_last(c, I_SAVEPOINT))
        c->ndefer--;            /* never sent: nothing to release */
    else if (c->sp == SP_SENT && c->tx == TX_OPEN)
        defer(c, I_RELEASE);
    c->sp = SP_NONE;
}

/* Nothing of the transaction was sent: forget it. */
static bool never_sent(struct pg_conn *c)
{
    if (c->begun)
        return false;
    c->ndefer = 0;
    end_tx(c);
    return true;
}

enum store_rc pg_commit(struct pg_conn *c, bool *unknown)
{
    *unknown = false;
    if (c->tx == TX_LOST) {
        end_tx(c);              /* lost before its COMMIT was sent: not committed */
        return STORE_UNAVAILABLE;
    }
    if (c->lost)
        return STORE_UNAVAILABLE;
    if (c->tx == TX_NONE || never_sent(c))
        return STORE_OK;
    if (c->tx != TX_OPEN) {
        enum store_rc why = c->tx == TX_DOOMED ? STORE_BUSY : STORE_ERROR;
        pg_rollback(c);
        return why;
    }
    PGresult *r = NULL;
    int rc = exchange(c, I_COMMIT, NULL, &r);
    bool ran = c->last_ran;
    end_tx(c);
    if (rc == -STORE_UNAVAILABLE) {
        /* the COMMIT was sent, or may have been: it may have committed
         * before the connection broke */
        *unknown = true;
        PQclear(r);
        return STORE_UNAVAILABLE;
    }
    /* COMMIT of a transaction that failed answers ROLLBACK, not an error */
    bool committed = rc == 0 && r && !strcmp(PQcmdStatus(r), "COMMIT");
    PQclear(r);
    if (rc < 0 && !ran) {
        /* a command sent before it failed, so the COMMIT was skipped: the
         * transaction is still open (and failed) on the server */
        c->tx = TX_FAILED;
        c->begun = true;
        pg_rollback(c);
    }
    if (rc < 0)
        return (enum store_rc)-rc;
    return committed ? STORE_OK : STORE_ERROR;
}

void pg_end_read(struct pg_conn *c)
{
    if (c->tx == TX_LOST) {
        end_tx(c);
        return;
    }
    if (c->tx == TX_NONE || never_sent(c))
        return;
    send_nowait(c, c->tx == TX_OPEN ? I_COMMIT : I_ROLLBACK);
    end_tx(c);
}

void pg_rollback(struct pg_conn *c)
{
    if (c->tx == TX_LOST) {
        end_tx(c);
        return;
    }
    if (c->tx == TX_NONE || never_sent(c))
        return;
    c->ndefer = 0;              /* a deferred RELEASE or SAVEPOINT is moot */
    send_nowait(c, I_ROLLBACK);
    end_tx(c);
}

bool pg_doomed(const struct pg_conn *c)
{
    return c->lost || c->tx == TX_DOOMED || c->tx == TX_LOST;
}

bool pg_failed(const struct pg_conn *c)
{
    return c->tx == TX_FAILED;
}

bool pg_in_transaction(const struct pg_conn *c)
{
    return c->tx != TX_NONE;
}

/* ---------------------------------------------------------------------------
 * The clock
 * ------------------------------------------------------------------------- */

static int64_t realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool pg_clock(struct pg_conn *c, int64_t *server_us, int64_t *local_us)
{
    if (c->tx != TX_NONE)
        return false;
    int64_t t0 = realtime_us();
    PGresult *r = NULL;
    int rc = exchange(c, I_CLOCK, NULL, &r);
    int64_t t1 = realtime_us();
    bool ok = rc == 0 && r && PQntuples(r) == 1;
    if (ok) {
        *server_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *local_us = t0 + (t1 - t0) / 2;
    }
    PQclear(r);
    return ok;
}
