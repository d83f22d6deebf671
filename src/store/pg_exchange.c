/* pg_exchange.c: a PostgreSQL connection's exchanges with its server (see
 * pg.h): the pipeline that sends deferred commands with the next
 * statement, a statement's parameters, steps and columns, and SQLSTATEs
 * mapped to store_rc; a broken connection is marked lost here, and made
 * again by pg.c (pg_ready), which also connects and runs transactions.
 *
 * Every exchange with the server is one pipeline: the deferred commands,
 * then the statement (or a transaction command), then a sync, then every
 * result read up to the sync's. Commands sent without waiting (a read
 * transaction's COMMIT, a ROLLBACK) leave their results to be read before
 * the next exchange, in order; the server has already acted on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/pg_conn_int.h"
#include "util/log.h"
#include "util/metrics.h"

double pgc_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    c->next_try = pgc_monotonic();      /* the first attempt at once */
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

void pgc_iname(char out[12], int i)
{
    snprintf(out, 12, "i%d", i);
}

void pgc_sname(char out[12], int i)
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
        pgc_iname(name, c->defer[i]);
        if (!PQsendQueryPrepared(c->conn, name, 0, NULL, NULL, NULL, 0))
            return false;
        if (c->defer[i] == I_BEGIN_READ || c->defer[i] == I_BEGIN_WRITE ||
            c->defer[i] == I_BEGIN_SERIALIZABLE)
            c->begun = true;
        if (c->defer[i] == I_SAVEPOINT)
            c->sp = SP_SENT;
    }
    if (cmd >= 0)
        pgc_iname(name, cmd);
    else
        pgc_sname(name, st->id);
    /* as many values as the statement takes (those not bound are NULL, as
     * in SQLite), or more if more were bound (PostgreSQL then refuses it) */
    int nparams = cmd >= 0 ? 0 : st->nparams > st->want ? st->nparams : st->want;
    if (!PQsendQueryPrepared(c->conn, name, nparams, cmd >= 0 ? NULL : st->val, NULL, NULL, 0))
        return false;
    return PQpipelineSync(c->conn) == 1;
}

/* One exchange (pgc_exchange, pg_conn_int.h), once. */
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
int pgc_exchange(struct pg_conn *c, int cmd, struct pg_stmt *st, PGresult **out_res)
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

void pgc_send_nowait(struct pg_conn *c, int cmd)
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

void pgc_defer(struct pg_conn *c, int cmd)
{
    if (c->ndefer < MAX_DEFERRED)
        c->defer[c->ndefer++] = cmd;
}

bool pgc_deferred_last(const struct pg_conn *c, int cmd)
{
    return c->ndefer > 0 && c->defer[c->ndefer - 1] == cmd;
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
        int rc = pgc_exchange(c, -1, st, NULL);
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
