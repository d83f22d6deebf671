/* pg.c: PostgreSQL connections for the store (see pg.h): connection
 * strings, connecting and preparing, making a lost connection again with
 * backoff, transactions (their commands deferred to go with the next
 * statement, or sent without waiting), and the server's clock. The
 * exchanges themselves (the pipeline, statements, SQLSTATEs mapped to
 * store_rc) are pg_exchange.c's; what the two share is pg_conn_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/pg_conn_int.h"
#include "util/log.h"

/* The internal commands' SQL (pg_conn_int.h), prepared on every connection. */
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
    [I_UNFLUSHED] = "SET LOCAL synchronous_commit TO off",
};

/* Settings of every connection: a lock waited for longer than this, or a
 * statement running longer, fails (STORE_BUSY: the client gets 503); a
 * node that stopped halfway through a transaction does not keep its locks. */
#define SESSION_SETTINGS "SET lock_timeout = '5s'; SET statement_timeout = '30s'; " \
                         "SET idle_in_transaction_session_timeout = '60s'; " \
                         "SET client_encoding = 'UTF8'"

#define BACKOFF_MIN PG_BACKOFF_MIN
#define BACKOFF_MAX PG_BACKOFF_MAX

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

/* Replace db[from, to) by "***" into out[size]. */
static const char *masked(const char *db, size_t from, size_t to, char *out, size_t size)
{
    snprintf(out, size, "%.*s***%s", (int)from, db, db + to);
    return out;
}

/* In a URI: the password of its user info, else of its query. */
static const char *redact_uri(const char *db, const char *scheme_end, char *out, size_t size)
{
    const char *auth = scheme_end + 3;
    size_t alen = strcspn(auth, "/?");
    const char *at = memrchr(auth, '@', alen);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon)
        return masked(db, (size_t)(colon + 1 - db), (size_t)(at - db), out, size);
    for (const char *q = strchr(auth, '?'); q; q = strchr(q + 1, '&'))
        if (!strncmp(q + 1, "password=", 9)) {
            size_t from = (size_t)(q + 10 - db);
            return masked(db, from, from + strcspn(db + from, "&"), out, size);
        }
    return db;
}

const char *pg_redact(const char *db, char *out, size_t size)
{
    if (!pg_is_conninfo(db))
        return db;
    if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11))
        return redact_uri(db, strstr(db, "://"), out, size);
    /* key = value ..., a value bare or in single quotes (\\ and \' escaped) */
    for (const char *p = db; *p;) {
        p += strspn(p, " \t\n");
        const char *key = p;
        p += strcspn(p, " \t\n=");
        size_t klen = (size_t)(p - key);
        p += strspn(p, " \t\n");
        if (*p != '=')
            break;
        p++;
        p += strspn(p, " \t\n");
        const char *val = p;
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
        } else {
            p += strcspn(p, " \t\n");
        }
        if (klen == 8 && !strncmp(key, "password", 8))
            return masked(db, (size_t)(val - db), (size_t)(p - db), out, size);
    }
    return db;
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
            pgc_iname(name, id);
        else
            pgc_sname(name, id);
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
    double now = pgc_monotonic();
    if (now < c->next_try)
        return false;
    char err[512];
    PGconn *conn = open_conn(c, err, sizeof err);
    if (!conn) {
        log_warn("store: reconnecting to PostgreSQL (%s) failed, again in %.2f s: %s",
                 c->appname, c->backoff, err);
        c->next_try = now + c->backoff;
        c->backoff = c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : c->backoff * 2;
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
    pgc_defer(c, begin_cmd[how]);
    c->tx = TX_OPEN;
    c->sp = SP_NONE;
    c->begun = false;
}

void pg_savepoint(struct pg_conn *c)
{
    if (c->tx != TX_OPEN || c->sp != SP_NONE)
        return;
    pgc_defer(c, I_SAVEPOINT);
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
    int rc = pgc_exchange(c, I_ROLLBACK_TO, NULL, NULL);
    return rc < 0 ? (enum store_rc)-rc : STORE_OK;
}

void pg_release(struct pg_conn *c)
{
    if (c->sp == SP_DEFERRED && pgc_deferred_last(c, I_SAVEPOINT))
        c->ndefer--;            /* never sent: nothing to release */
    else if (c->sp == SP_SENT && c->tx == TX_OPEN)
        pgc_defer(c, I_RELEASE);
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

void pg_commit_unflushed(struct pg_conn *c)
{
    if (c->tx == TX_OPEN && !c->lost)
        pgc_defer(c, I_UNFLUSHED);
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
    int rc = pgc_exchange(c, I_COMMIT, NULL, &r);
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
    pgc_send_nowait(c, c->tx == TX_OPEN ? I_COMMIT : I_ROLLBACK);
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
    pgc_send_nowait(c, I_ROLLBACK);
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
    int rc = pgc_exchange(c, I_CLOCK, NULL, &r);
    int64_t t1 = realtime_us();
    bool ok = rc == 0 && r && PQntuples(r) == 1;
    if (ok) {
        *server_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *local_us = t0 + (t1 - t0) / 2;
    }
    PQclear(r);
    return ok;
}
