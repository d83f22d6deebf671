/* pg_engine.c: the store's PostgreSQL engine (see store.h for the
 * contract, docs/scale-out.md for what it is for): the SQL text of every
 * record statement in PostgreSQL's dialect and the engine's own statements,
 * the statement functions of the engine's table (store_int.h) over pg.c's
 * statements, so that the record functions (records.c) run on a
 * PostgreSQL connection unchanged; and the store: opening (migrating under
 * pg_schema.c's advisory lock), the readers and their snapshots, the
 * writer thread and its group commit, and what operators need.
 *
 * The texts are SQLite's (sqlite_sql.c), ?N translated to $N
 * (pg_translate), except where the dialects differ; those are written out
 * below, each saying why.
 *
 * Readers: one PostgreSQL connection per calling thread, made on first use
 * and kept for the store's life, as SQLite's. A snapshot
 * (store_read_begin .. store_read_end, nested pairs counted) is one
 * REPEATABLE READ, READ ONLY transaction; a read outside one runs on its
 * own. A lost connection is made again (pg_ready, with its backoff) at the
 * next use outside a transaction; a snapshot it was in answers
 * STORE_UNAVAILABLE until it ends.
 *
 * The writer: a thread with a connection of its own runs every job queued
 * at that moment in one SERIALIZABLE transaction (docs/scale-out.md says
 * why), each inside a savepoint (a job that refuses is rolled back to it
 * alone), commits once, then answers each job with its true outcome:
 *  - a serialization failure or a deadlock (STORE_BUSY, the transaction
 *    doomed: pg.h), at a statement or at COMMIT, runs the whole batch
 *    again: the jobs are pure (store.h), after a wait that grows with the
 *    attempts (randomised, so that two nodes whose batches conflict do not
 *    meet again in step). The job it ended under runs alone after
 *    ALONE_AFTER such ends, and is answered -STORE_BUSY after MAX_ATTEMPTS
 *    (about a third of a second of waits in all);
 *  - the connection lost during the batch: every job of it is answered
 *    -STORE_UNAVAILABLE (nothing of it was committed); the jobs not yet run
 *    wait for the next transaction, which makes the connection again
 *    (pg_ready, with its backoff) or answers them -STORE_UNAVAILABLE too;
 *  - a COMMIT whose outcome is unknown (pg_commit says so: the connection
 *    broke before its answer) answers every job of the batch
 *    -STORE_UNAVAILABLE: neither success nor refusal is guessed;
 *  - a lock or statement timeout inside a job is that job's -STORE_BUSY
 *    (pg.c maps them), rolled back to its savepoint like a refusal.
 *
 * The credential cache: every bump of the auth epoch notifies a channel at
 * its commit (its statement does, below); a listener (pg_listen.c), started
 * where credentials are checked, hears them, and store_auth_generation
 * moves when it does, so that the epoch is read again only when it moved
 * (pgs_auth_generation says what happens while it does not listen).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/pg.h"
#include "store/pg_schema.h"
#include "store/store_int.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/oom.h"
#include "util/utf8.h"

/* ---------------------------------------------------------------------------
 * The SQL
 * ------------------------------------------------------------------------- */

/* Where every bump of the auth epoch is notified (pg_listen.c listens). */
#define AUTH_CHANNEL "attachd_auth"

/* A list's LIMIT and OFFSET as SQLite takes them: a negative limit is no
 * limit (PostgreSQL refuses it; LIMIT NULL is none), a negative offset is
 * none. */
#define PG_LIMIT(limit) " LIMIT CASE WHEN " limit "::bigint < 0 THEN NULL ELSE " limit \
                        "::bigint END"
#define PG_PAGE(limit, offset) PG_LIMIT(limit) " OFFSET greatest(" offset "::bigint, 0)"

/* The texts that are not SQLite's translated. PostgreSQL must know the type
 * of every parameter when it prepares a statement: `$N IS NULL` alone does
 * not say it ($N::text does), and a parameter the text does not use at all
 * (an UPDATE of some of the columns a record binds) is named in a
 * num_nulls(...) >= 0, which is always true. */
static const char *const own_sql[N_STMT] = {
    /* the bump notifies every listener (AUTH_CHANNEL) in the same
     * statement: NOTIFY is transactional, sent at commit, dropped with a
     * rollback (a job's savepoint too); one row when the epoch moved */
    [S_AUTH_EPOCH_BUMP] = "WITH b AS (UPDATE meta SET value = value + 1 "
                          "WHERE key = 'auth_epoch' RETURNING value) "
                          "SELECT pg_notify('" AUTH_CHANNEL "', value::text) FROM b",
    /* SQLite's groups come out in flavor_ref's order (its index): the same
     * order, bytewise as SQLite compares */
    [S_SERVER_USAGE] = "SELECT flavor_ref, count(*) FROM servers WHERE account_id = $1 "
                       "GROUP BY flavor_ref ORDER BY flavor_ref COLLATE \"C\"",
    [S_SERVER_GET] = "SELECT " SERVER_COLS " FROM servers WHERE id = $1 "
                     "AND ($2::text IS NULL OR account_id = $2)",
    /* instr() is strpos() */
    [S_SERVER_LIST] = "SELECT " SERVER_COLS " FROM servers WHERE account_id = $1 AND seq < $2 "
                      "AND ($4::text IS NULL OR strpos(name, $4) > 0) ORDER BY seq DESC"
                      PG_LIMIT("$3"),
    [S_SERVER_UPDATE] = "UPDATE servers SET name = $4, vm_state = $5, task_state = $6, "
                        "power_state = $7, locked = $8, locked_by = $9, metadata = $14, "
                        "updated_at = $16, launched_at = $17, fault = $19 WHERE id = $1 "
                        "AND num_nulls($2::text, $3::text, $10::text, $11::text, $12::text, "
                        "$13::text, $15::text, $18::text, $20::text) >= 0",
    [S_VOLUME_GET] = "SELECT " VOLUME_COLS " FROM volumes WHERE id = $1 "
                     "AND ($2::text IS NULL OR account_id = $2)",
    [S_VOLUME_LIST] = "SELECT " VOLUME_COLS " FROM volumes WHERE account_id = $1 "
                      "ORDER BY seq DESC" PG_PAGE("$3", "$2"),
    [S_VOLUME_LIST_NAME] = "SELECT " VOLUME_COLS " FROM volumes WHERE account_id = $1 "
                           "AND name = $4 ORDER BY seq DESC" PG_PAGE("$3", "$2"),
    [S_ATTACH_FIND] = "SELECT a.id, a.bdm_uuid, a.server_id, a.volume_id, a.device, a.tag, "
                      "a.delete_on_termination, a.boot_index, a.created_at, a.status "
                      "FROM servers s LEFT JOIN attachments a "
                      "ON a.server_id = s.id AND a.volume_id = $2 "
                      "WHERE s.id = $1 AND ($3::text IS NULL OR s.account_id = $3)",
    /* one row, always: each part NULL when it is not found (a subquery in
     * FROM needs its alias, a LEFT JOIN its ON) */
    [S_ATTACH_PARTS] = "SELECT s.*, v.*, a.* FROM (SELECT 1) one "
                       "LEFT JOIN (SELECT " SERVER_COLS " FROM servers WHERE id = $1 "
                       "AND ($3::text IS NULL OR account_id = $3)) s ON true "
                       "LEFT JOIN (SELECT " VOLUME_COLS " FROM volumes WHERE id = $2 "
                       "AND ($3::text IS NULL OR account_id = $3)) v ON true "
                       "LEFT JOIN (SELECT " ATTACH_COLS " FROM attachments WHERE server_id = $1 "
                       "AND volume_id = $2) a ON true",
    [S_ATTACH_UPDATE] = "UPDATE attachments SET device = $5, tag = $6, "
                        "delete_on_termination = $7 WHERE id = $1 "
                        "AND num_nulls($2::text, $3::text, $4::text, $8::text, $9::text, "
                        "$10::text) >= 0",
};

/* The engine's own statements, after the records' (store_int.h): the
 * health check's write and the operators' listing and deleting
 * (store_account_list ...; sqlite_admin.c has SQLite's). Names are ordered
 * bytewise, as SQLite orders them. */
enum {
    P_PROBE = N_STMT, P_ACCOUNT_LIST, P_ACCOUNT_COUNTS, P_QUOTA_DEL, P_ACCOUNT_DEL, P_USER_LIST,
    N_PG_STMT
};

static const char *const engine_sql[N_PG_STMT - N_STMT] = {
    [P_PROBE - N_STMT] = "INSERT INTO meta (key, value) VALUES ('health_probe', "
                         "extract(epoch FROM now())::bigint) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [P_ACCOUNT_LIST - N_STMT] = "SELECT id, name, created_at FROM accounts "
                                "ORDER BY name COLLATE \"C\"",
    [P_ACCOUNT_COUNTS - N_STMT] = "SELECT (SELECT count(*) FROM users WHERE account_id = $1), "
                                  "(SELECT count(*) FROM servers WHERE account_id = $1), "
                                  "(SELECT count(*) FROM volumes WHERE account_id = $1)",
    [P_QUOTA_DEL - N_STMT] = "DELETE FROM quotas WHERE account_id = $1",
    [P_ACCOUNT_DEL - N_STMT] = "DELETE FROM accounts WHERE id = $1",
    [P_USER_LIST - N_STMT] = "SELECT id, name, account_id, role, created_at FROM users "
                             "WHERE $1::text IS NULL OR account_id = $1 "
                             "ORDER BY name COLLATE \"C\"",
};

static const char *pg_sql[N_PG_STMT];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;
static bool sql_ready;

/* Made once, kept for the life of the process (connections prepare them
 * again when they are made again). */
static void make_sql(void)
{
    for (int i = 0; i < N_STMT; i++) {
        pg_sql[i] = own_sql[i] ? own_sql[i] : pg_translate(sqlite_sql[i]);
        if (!pg_sql[i])
            return;
    }
    for (int i = N_STMT; i < N_PG_STMT; i++)
        pg_sql[i] = engine_sql[i - N_STMT];
    sql_ready = true;
}

/* ---------------------------------------------------------------------------
 * Connections and their statements
 * ------------------------------------------------------------------------- */

struct pgs_stmt {
    struct store_stmt common;   /* its engine: pg_engine */
    struct pg_stmt *st;         /* pg.c's, set by each use; NULL: the connection is lost */
    char *stand_in[PG_MAX_PARAMS];  /* what an invalid UTF-8 text is bound as (malloc'd) */
};

struct pg_store;

struct pgs_conn {
    struct store_conn common;   /* its engine: pg_engine */
    struct pg_conn *pg;
    struct pgs_stmt st[N_PG_STMT];
    struct pg_store *store;     /* NULL: a connection of pg_store_connect's */
    int read_depth;             /* nesting of store_read_begin() */
    struct pgs_conn *next;      /* every reader, for store_close */
};

static const struct store_engine pg_engine;

static struct pgs_conn *conn_of(struct store_conn *c)
{
    return (struct pgs_conn *)c;
}

static struct pg_stmt *raw(struct store_stmt *st)
{
    return ((struct pgs_stmt *)st)->st;
}

/* Forget the stand-ins of the statement's last use. */
static void free_stand_ins(struct pgs_stmt *st)
{
    for (int i = 0; i < PG_MAX_PARAMS; i++) {
        free(st->stand_in[i]);
        st->stand_in[i] = NULL;
    }
}

/* A statement even while the connection is lost: it then answers
 * STORE_UNAVAILABLE when stepped (a request gets 503, not 500). Outside a
 * transaction a lost connection is made again first (its backoff allowing);
 * inside one never: the transaction is gone and stays refused (pg.h). */
static struct store_stmt *pgs_stmt(struct store_conn *c, enum stmt_id id)
{
    struct pgs_conn *p = conn_of(c);
    if (!pg_in_transaction(p->pg))
        pg_ready(p->pg);
    free_stand_ins(&p->st[id]);
    p->st[id].st = pg_stmt(p->pg, (int)id);
    return &p->st[id].common;
}

/* Text that is not valid UTF-8 (a marker or an id from a URL, say):
 * PostgreSQL refuses it (22021) where SQLite compares its bytes and finds
 * nothing equal. It is bound as a valid stand-in that no stored value is
 * expected to be: U+0001 (a control character, which the API refuses or
 * strips in names and ids) and its bytes in hex; so a lookup finds
 * nothing, as on SQLite. */
static void pgs_bind_text(struct store_stmt *st, int i, const char *s)
{
    if (!raw(st))
        return;
    struct pgs_stmt *p = (struct pgs_stmt *)st;
    if (s && i >= 1 && i <= PG_MAX_PARAMS && !utf8_valid(s, strlen(s))) {
        static const char hex[] = "0123456789abcdef";
        static const char prefix[] = "\x01invalid-utf8:";
        size_t n = strlen(s);
        char *out = malloc(sizeof prefix + 2 * n);
        if (!out)
            oom_fail();
        char *o = out + sizeof prefix - 1;
        memcpy(out, prefix, sizeof prefix - 1);
        for (size_t k = 0; k < n; k++) {
            *o++ = hex[(unsigned char)s[k] >> 4];
            *o++ = hex[(unsigned char)s[k] & 15];
        }
        *o = '\0';
        free(p->stand_in[i - 1]);
        p->stand_in[i - 1] = out;
        s = out;
    }
    pg_bind_text(raw(st), i, s);
}

static void pgs_bind_int64(struct store_stmt *st, int i, int64_t v)
{
    if (raw(st))
        pg_bind_int64(raw(st), i, v);
}

static void pgs_bind_null(struct store_stmt *st, int i)
{
    if (raw(st))
        pg_bind_text(raw(st), i, NULL);
}

static int pgs_step(struct store_stmt *st)
{
    if (!raw(st))
        return -STORE_UNAVAILABLE;
    int rc = pg_step(raw(st));
    if (rc < 0)
        pg_reset(raw(st));
    return rc;
}

static bool pgs_col_null(struct store_stmt *st, int i)
{
    return !raw(st) || pg_col_null(raw(st), i);
}

static const char *pgs_col_text(struct store_stmt *st, int i, struct arena *ar)
{
    return raw(st) ? pg_col_text(raw(st), i, ar) : NULL;
}

static int64_t pgs_col_int64(struct store_stmt *st, int i)
{
    return raw(st) ? pg_col_int64(raw(st), i) : 0;
}

static int64_t pgs_changes(struct store_stmt *st)
{
    return raw(st) ? pg_changes(raw(st)->c) : 0;
}

static void pgs_reset(struct store_stmt *st)
{
    free_stand_ins((struct pgs_stmt *)st);
    if (raw(st))
        pg_reset(raw(st));
}

/* A connection with every statement prepared; NULL with a reason in err. */
static struct pgs_conn *conn_open(const char *conninfo, const char *name, char *err,
                                  int errlen)
{
    pthread_once(&sql_once, make_sql);
    if (!sql_ready) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    struct pgs_conn *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    p->common.eng = &pg_engine;
    for (int i = 0; i < N_PG_STMT; i++)
        p->st[i].common.eng = &pg_engine;
    if (!(p->pg = pg_connect(conninfo, pg_sql, N_PG_STMT, name, err, errlen))) {
        free(p);
        return NULL;
    }
    return p;
}

static void conn_close(struct pgs_conn *p)
{
    if (!p)
        return;
    for (int i = 0; i < N_PG_STMT; i++)
        free_stand_ins(&p->st[i]);
    pg_close(p->pg);
    free(p);
}

/* Every statement reset (after a job ran out of memory, or store_conn_reset). */
static void reset_all(struct pgs_conn *p)
{
    for (int i = 0; i < N_PG_STMT; i++)
        if (p->st[i].st)
            pg_reset(p->st[i].st);
}

struct store_conn *pg_store_connect(const char *conninfo, const char *name, char *err,
                                    int errlen)
{
    struct pgs_conn *p = conn_open(conninfo, name, err, errlen);
    return p ? &p->common : NULL;
}

void pg_store_close(struct store_conn *c)
{
    if (c)
        conn_close(conn_of(c));
}

struct pg_conn *pg_store_pg(struct store_conn *c)
{
    return c && c->eng == &pg_engine ? conn_of(c)->pg : NULL;
}

/* ---------------------------------------------------------------------------
 * The store
 * ------------------------------------------------------------------------- */

/* How many transactions one job may end (a serialization failure, a
 * deadlock) in a batch before it runs alone, and in all before it is
 * answered -STORE_BUSY; the wait before it runs again, in microseconds:
 * doubling from the first, at most the second (with nodes writing the same
 * rows, a batch of another node holds them some milliseconds). */
#define ALONE_AFTER 3
#define MAX_ATTEMPTS 16
#define RETRY_WAIT_MIN 1000u
#define RETRY_WAIT_MAX 25000u
/* The most jobs one transaction takes; the rest wait for the next. */
#define MAX_BATCH 4096

struct pg_store {
    struct store common;            /* its engine: pg_engine */
    char *conninfo;
    struct pgs_conn *writer;
    pthread_t writer_thread;
    pthread_mutex_t lock;           /* guards the queue, the reader list, stopping */
    pthread_cond_t work;
    struct store_job *head, *tail;
    bool stopping;
    pthread_key_t reader_key;
    struct pgs_conn *readers;
    /* Hears the auth epoch's bumps (pgs_auth_generation); started by the
     * first call, under lock. listen_failed: it could not start; not tried
     * again. */
    _Atomic(struct pg_listener *) listener;
    bool listen_failed;
    double clock_due;           /* metrics_now() when to measure the clock again */
    struct pg_conn *hypervisor; /* holds the hypervisor's lock (pgs_hold_hypervisor) */
};

static struct pg_store *store_of(struct store *s)
{
    return (struct pg_store *)s;
}

static int pgs_migrate(const char *conninfo, int *from, int *to, char *err, int errlen)
{
    return pg_schema_migrate(conninfo, from, to, err, errlen);
}

static void *writer_main(void *arg);

/* Records are stamped by the database's clock (store_now), so that every
 * node on one database stamps by one clock: its offset from this machine's
 * is measured on the writer's connection when the store opens, then again
 * every CLOCK_EVERY seconds before a batch (CLOCK_RETRY after a failure,
 * the last offset kept meanwhile). A round trip's error is half of it. */
#define CLOCK_EVERY 60.0
#define CLOCK_RETRY 5.0

static void measure_clock(struct pg_store *s)
{
    int64_t server, local;
    bool ok = pg_clock(s->writer->pg, &server, &local);
    if (ok) {
        int64_t offset = server - local;
        if ((offset > 1000000 || offset < -1000000) &&
            (store_clock_offset() - offset > 1000000 || offset - store_clock_offset() > 1000000))
            log_warn("store: this machine's clock is %.1f s %s PostgreSQL's; records are "
                     "stamped by PostgreSQL's",
                     (double)(offset < 0 ? -offset : offset) / 1e6, offset > 0 ? "behind" : "ahead of");
        store_clock_offset_set(offset);
    }
    s->clock_due = metrics_now() + (ok ? CLOCK_EVERY : CLOCK_RETRY);
}

static struct store *pgs_open(const struct store_options *opts, char *err, int errlen)
{
    int from, to;
    if (pg_schema_migrate(opts->path, &from, &to, err, errlen) < 0)
        return NULL;
    if (from != to)
        log_info("store: migrated the PostgreSQL database from schema version %d to %d", from,
                 to);
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(opts->path))) {
        free(s);
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    s->common.eng = &pg_engine;
    if (!(s->writer = conn_open(s->conninfo, "writer", err, errlen))) {
        free(s->conninfo);
        free(s);
        return NULL;
    }
    s->writer->store = s;
    measure_clock(s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_key_create(&s->reader_key, NULL);
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the writer thread");
        pthread_key_delete(s->reader_key);
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->lock);
        conn_close(s->writer);
        free(s->conninfo);
        free(s);
        return NULL;
    }
    return &s->common;
}

static void pgs_close(struct store *base)
{
    struct pg_store *s = store_of(base);
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer_thread, NULL);   /* it answers every queued job first */
    pg_listen_stop(atomic_load(&s->listener));
    pg_close(s->hypervisor);
    conn_close(s->writer);
    for (struct pgs_conn *c = s->readers, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    pthread_key_delete(s->reader_key);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->lock);
    free(s->conninfo);
    free(s);
}

/* ---------------------------------------------------------------------------
 * Readers
 * ------------------------------------------------------------------------- */

static struct store_conn *pgs_reader(struct store *base)
{
    struct pg_store *s = store_of(base);
    struct pgs_conn *c = pthread_getspecific(s->reader_key);
    if (c)
        return &c->common;
    char err[512];
    if (!(c = conn_open(s->conninfo, "reader", err, sizeof err))) {
        log_error("store: %s", err);
        return NULL;
    }
    c->store = s;
    pthread_mutex_lock(&s->lock);
    c->next = s->readers;
    s->readers = c;
    pthread_mutex_unlock(&s->lock);
    pthread_setspecific(s->reader_key, c);
    return &c->common;
}

/* The snapshot begins with the first statement after it (its BEGIN is sent
 * with it: pg.h), so it holds every change committed before that. */
static enum store_rc pgs_read_begin(struct store_conn *base)
{
    struct pgs_conn *c = conn_of(base);
    if (c->read_depth++ > 0)
        return STORE_OK;
    if (!pg_in_transaction(c->pg) && !pg_ready(c->pg)) {
        c->read_depth = 0;
        return STORE_UNAVAILABLE;
    }
    pg_begin(c->pg, PG_READ);
    return STORE_OK;
}

static void pgs_read_end(struct store_conn *base)
{
    struct pgs_conn *c = conn_of(base);
    if (c->read_depth == 0 || --c->read_depth > 0)
        return;
    pg_end_read(c->pg);
}

static void pgs_conn_reset(struct store_conn *base)
{
    struct pgs_conn *c = conn_of(base);
    reset_all(c);
    pg_rollback(c->pg);
    c->read_depth = 0;
}

/* ---------------------------------------------------------------------------
 * The writer thread: group commit
 * ------------------------------------------------------------------------- */

/* A queue of jobs, oldest first. */
struct queue {
    struct store_job *head, *tail;
    int n;
};

static void push(struct queue *q, struct store_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static struct store_job *pop(struct queue *q)
{
    struct store_job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
    }
    return j;
}

/* Put all of `front` before `q`'s jobs, keeping both orders. */
static void prepend(struct queue *q, struct queue *front)
{
    if (!front->head)
        return;
    front->tail->next = q->head;
    if (!q->head)
        q->tail = front->tail;
    q->head = front->head;
    q->n += front->n;
    *front = (struct queue){0};
}

static void finish_all(struct queue *q, struct queue *finished, int rc)
{
    struct store_job *j;
    while ((j = pop(q))) {
        j->rc = rc;
        push(finished, j);
    }
}

/* Run one job's function; a job that runs out of memory is answered as not
 * committed (its savepoint is rolled back like a refusal's). */
static int run_job(struct pgs_conn *w, struct store_job *j)
{
    struct oom_point p;
    int rc;
    oom_enter(&p);
    if (setjmp(p.jb) == 0) {
        rc = j->fn(&w->common, j->arg);
    } else {
        reset_all(w);
        log_error("store: a write ran out of memory; it is not committed");
        rc = -STORE_ERROR;
    }
    oom_leave(&p);
    return rc;
}

/* Why a transaction ended under its jobs: the connection is lost
 * (STORE_UNAVAILABLE) or the transaction doomed (STORE_BUSY). */
static enum store_rc undone_why(struct pg_conn *pg)
{
    return pg_lost(pg) || !pg_in_transaction(pg) ? STORE_UNAVAILABLE : STORE_BUSY;
}

/* The wait before attempt `attempts` + 1: RETRY_WAIT_MIN doubling up to
 * RETRY_WAIT_MAX, times a random factor in [0.5, 1.5). */
static unsigned retry_wait(int attempts)
{
    static _Thread_local uint64_t x;        /* xorshift64, the writer's own */
    if (!x)
        x = (uint64_t)metrics_now() * 1000003u ^ (uint64_t)(uintptr_t)&x ^ 0x9e3779b97f4a7c15u;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    unsigned wait = RETRY_WAIT_MIN;
    for (int i = 1; i < attempts && wait < RETRY_WAIT_MAX; i++)
        wait *= 2;
    if (wait > RETRY_WAIT_MAX)
        wait = RETRY_WAIT_MAX;
    return wait / 2 + (unsigned)(x % wait);
}

/* Every job of `ran` runs again (refused ones too: a refusal may have been
 * caused by a neighbour's change that is now gone), the job it ended under
 * alone after ALONE_AFTER, answered `why` after MAX_ATTEMPTS. */
static void again(struct queue *ran, struct queue *pending, struct queue *finished,
                  enum store_rc why)
{
    struct store_job *culprit = ran->tail, *j;
    struct queue back = {0};
    while ((j = pop(ran)) != culprit)
        push(&back, j);
    culprit->attempts++;
    if (culprit->attempts >= ALONE_AFTER)
        culprit->alone = true;
    if (culprit->attempts >= MAX_ATTEMPTS) {
        culprit->rc = -(int)why;
        push(finished, culprit);
    } else {
        push(&back, culprit);
    }
    prepend(pending, &back);
    /* a moment for the transaction it conflicted with to end */
    usleep(retry_wait(culprit->attempts));
}

/* Run jobs from `pending` in one transaction (see the top of this file).
 * Jobs whose outcome is known go to `finished`; jobs to run again go back
 * to the front of `pending`. */
static void transaction(struct pg_store *s, struct queue *pending, struct queue *finished)
{
    struct pgs_conn *w = s->writer;
    struct pg_conn *pg = w->pg;
    if (!pg_ready(pg)) {
        finish_all(pending, finished, -STORE_UNAVAILABLE);
        metrics_inc(METRIC_STORE_UNAVAILABLE);
        return;
    }
    double began = metrics_now();
    w->common.epoch_bumped = false;
    pg_begin(pg, PG_SERIALIZABLE);
    struct queue ran = {0};
    enum store_rc undone = STORE_OK;
    while (undone == STORE_OK && ran.n < MAX_BATCH && pending->head) {
        if (pending->head->alone && ran.n > 0)
            break;              /* it waits for a transaction of its own */
        struct store_job *j = pop(pending);
        push(&ran, j);
        pg_savepoint(pg);
        j->rc = run_job(w, j);
        if (j->rc == 0 && pg_failed(pg))
            j->rc = -STORE_ERROR;   /* a statement failed and the job did not say so */
        if (pg_doomed(pg)) {
            undone = undone_why(pg);
        } else if (j->rc != 0) {
            enum store_rc back = pg_rollback_to(pg);
            if (back != STORE_OK)
                undone = pg_doomed(pg) ? undone_why(pg) : back;
        }
        if (undone == STORE_OK)
            pg_release(pg);
        if (j->alone)
            break;
    }
    if (undone == STORE_OK) {
        bool unknown;
        enum store_rc commit = pg_commit(pg, &unknown);
        if (commit == STORE_OK) {
            metrics_commit((unsigned)ran.n, metrics_now() - began);
            /* this node's own change is seen at once, not when its
             * notification comes back */
            struct pg_listener *l = atomic_load(&s->listener);
            if (w->common.epoch_bumped && l)
                pg_listen_bump(l);
            prepend(finished, &ran);
            return;
        }
        if (commit == STORE_BUSY) {
            /* a serialization failure at COMMIT: nothing was kept */
            again(&ran, pending, finished, STORE_BUSY);
            return;
        }
        metrics_inc(METRIC_STORE_COMMIT_FAILED);
        if (commit == STORE_UNAVAILABLE) {
            log_error("store: the PostgreSQL connection was lost %s the COMMIT of %d writes: "
                      "%s; each is answered as unavailable", unknown ? "during" : "before",
                      ran.n, unknown ? "it may or may not have committed" : "not committed");
            finish_all(&ran, finished, -STORE_UNAVAILABLE);
            return;
        }
        log_error("store: COMMIT failed: %s", pg_message(pg));
        /* A failed commit keeps nothing: every job of it is answered so,
         * the refused ones with their own answer. */
        struct store_job *j;
        while ((j = pop(&ran))) {
            if (j->rc == 0)
                j->rc = -(int)commit;
            push(finished, j);
        }
        return;
    }
    pg_rollback(pg);
    if (undone == STORE_UNAVAILABLE) {
        log_warn("store: a transaction of %d writes was lost with its PostgreSQL connection; "
                 "each is answered as unavailable", ran.n);
        metrics_inc(METRIC_STORE_UNAVAILABLE);
        finish_all(&ran, finished, -STORE_UNAVAILABLE);
        return;
    }
    if (undone == STORE_BUSY)
        log_info("store: a transaction of %d writes ended in a serialization failure or a "
                 "deadlock; running them again", ran.n);
    else
        log_warn("store: a transaction of %d writes was undone (%s); running them again",
                 ran.n, pg_message(pg));
    again(&ran, pending, finished, undone);
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-writer");
    struct pg_store *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->head)
            break;
        struct queue pending = {0};
        struct store_job *j = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->lock);
        while (j) {
            struct store_job *next = j->next;
            push(&pending, j);
            j = next;
        }
        if (metrics_now() >= s->clock_due)
            measure_clock(s);
        while (pending.head) {
            struct queue finished = {0};
            transaction(s, &pending, &finished);
            /* Answer outside the lock; done() may hand work on (and even
             * submit again). */
            while ((j = pop(&finished)))
                j->done(j);
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void pgs_submit(struct store *base, struct store_job *job)
{
    struct pg_store *s = store_of(base);
    job->next = NULL;
    job->rc = 0;
    job->attempts = 0;
    job->alone = false;
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        job->rc = -STORE_UNAVAILABLE;
        job->done(job);
        return;
    }
    if (s->tail)
        s->tail->next = job;
    else
        s->head = job;
    s->tail = job;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
}

/* The listener, started by the first call: only a process that checks
 * credentials asks (serve; a CLI command never does), so only it has one.
 * NULL when it cannot start. */
static struct pg_listener *start_listener(struct pg_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct pg_listener *l = atomic_load(&s->listener);
    if (!l && !s->listen_failed && !s->stopping) {
        if ((l = pg_listen_start(s->conninfo, AUTH_CHANNEL)))
            atomic_store(&s->listener, l);
        else
            s->listen_failed = true;
    }
    pthread_mutex_unlock(&s->lock);
    return l;
}

/* Moves when the auth epoch may have changed: every bump, by any process
 * (another node, the CLI), notifies AUTH_CHANNEL at its commit, and the
 * listener counts what it hears (pg.h: pg_listen_generation). While it does
 * not listen (not yet, or its connection is being made again) the number
 * moves at every call, so the epoch is then read at every credential check
 * (one statement on the checking thread's reader) and a changed password
 * still stops working at once; so it does if the listener cannot start. */
static uint64_t pgs_auth_generation(struct store *base)
{
    struct pg_store *s = store_of(base);
    struct pg_listener *l = atomic_load(&s->listener);
    if (!l)
        l = start_listener(s);
    if (l)
        return pg_listen_generation(l);
    static _Thread_local uint64_t calls;    /* a thread compares only its own */
    return ++calls;
}

/* ---------------------------------------------------------------------------
 * The hypervisor's lock
 * ------------------------------------------------------------------------- */

/* A session advisory lock (its key: "attachdh" in ASCII) on a connection
 * kept for the store's life: PostgreSQL releases it when the session ends,
 * the process's death included. The holder's session is named after its
 * host and process, so that a refusal can say who holds it. */
#define HYPERVISOR_LOCK "7022365680605881448"

enum { H_TRY, H_HOLDER, N_H };

static const char *const hypervisor_sql[N_H] = {
    [H_TRY] = "SELECT pg_try_advisory_lock(" HYPERVISOR_LOCK ")::int",
    [H_HOLDER] = "SELECT a.application_name, coalesce(host(a.client_addr), 'local'), "
                 "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                 "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                 "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                 "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                 "AND ((l.classid::bigint << 32) | l.objid::bigint) = " HYPERVISOR_LOCK,
};

static bool pgs_hold_hypervisor(struct store *base, char *err, int errlen)
{
    struct pg_store *s = store_of(base);
    if (s->hypervisor)
        return true;
    char host[64] = "?", name[128];
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "hypervisor %s:%ld", host, (long)getpid());
    struct pg_conn *c = pg_connect(s->conninfo, hypervisor_sql, N_H, name, err, errlen);
    if (!c)
        return false;
    struct pg_stmt *st = pg_stmt(c, H_TRY);
    if (pg_step(st) != 1) {
        snprintf(err, (size_t)errlen, "cannot take the hypervisor's lock: %s", pg_message(c));
        pg_close(c);
        return false;
    }
    bool held = pg_col_int64(st, 0) == 1;
    pg_reset(st);
    if (held) {
        s->hypervisor = c;
        return true;
    }
    struct arena ar;
    arena_init(&ar);
    st = pg_stmt(c, H_HOLDER);
    if (pg_step(st) == 1)
        snprintf(err, (size_t)errlen,
                 "another attachd drives the hypervisor for this database (PostgreSQL session "
                 "\"%s\" from %s, since %s); one node per database may (docs/scale-out.md)",
                 pg_col_text(st, 0, &ar), pg_col_text(st, 1, &ar), pg_col_text(st, 2, &ar));
    else
        snprintf(err, (size_t)errlen, "another attachd drives the hypervisor for this database; "
                                      "one node per database may (docs/scale-out.md)");
    pg_reset(st);
    arena_release(&ar);
    pg_close(c);
    return false;
}

/* ---------------------------------------------------------------------------
 * For operators
 * ------------------------------------------------------------------------- */

static int pgs_probe_write(struct store_conn *w, void *arg)
{
    (void)arg;
    return -(int)stmt_exec(stmt_get(w, (enum stmt_id)P_PROBE));
}

static int pgs_backup(struct store *s, const char *dest, char *err, int errlen)
{
    (void)s;
    snprintf(err, (size_t)errlen, "`attachd db backup` copies an SQLite database; this one is "
             "on PostgreSQL: back it up with pg_dump (or the cluster's own backups), not into "
             "%s", dest);
    return -1;
}

static int pgs_check_file(const char *path, int *version, char *err, int errlen)
{
    if (version)
        *version = -1;
    snprintf(err, (size_t)errlen, "%s: checking a database file applies to SQLite only; a "
             "PostgreSQL database is restored with pg_restore or psql", path);
    return -1;
}

static void read_account(struct store_stmt *st, struct arena *ar, void *out)
{
    *(struct account *)out = (struct account){.id = stmt_col_text(st, 0, ar),
                                              .name = stmt_col_text(st, 1, ar),
                                              .created_at = stmt_col_text(st, 2, ar)};
}

static enum store_rc pgs_account_list(struct store_conn *c, struct arena *ar,
                                      struct account **out, int *n)
{
    *out = NULL;
    *n = 0;
    return stmt_collect(stmt_get(c, (enum stmt_id)P_ACCOUNT_LIST), ar, sizeof **out,
                        read_account, (void **)out, n);
}

static enum store_rc pgs_account_counts(struct store_conn *c, const char *id, int64_t *users,
                                        int64_t *servers, int64_t *volumes)
{
    struct store_stmt *st = stmt_get(c, (enum stmt_id)P_ACCOUNT_COUNTS);
    stmt_bind_text(st, 1, id);
    enum store_rc rc = stmt_row(st);
    if (rc == STORE_OK) {
        *users = stmt_col_int64(st, 0);
        *servers = stmt_col_int64(st, 1);
        *volumes = stmt_col_int64(st, 2);
        stmt_reset(st);
    }
    return rc;
}

static enum store_rc pgs_account_del(struct store_conn *w, const char *id)
{
    int64_t users, servers, volumes;
    enum store_rc rc = pgs_account_counts(w, id, &users, &servers, &volumes);
    if (rc != STORE_OK)
        return rc;
    if (users || servers || volumes)
        return STORE_EXISTS;
    struct store_stmt *st = stmt_get(w, (enum stmt_id)P_QUOTA_DEL);
    stmt_bind_text(st, 1, id);
    if ((rc = stmt_exec(st)) != STORE_OK)
        return rc;
    st = stmt_get(w, (enum stmt_id)P_ACCOUNT_DEL);
    stmt_bind_text(st, 1, id);
    return stmt_exec_one(st);
}

static void read_user(struct store_stmt *st, struct arena *ar, void *out)
{
    const char *role = stmt_col_text(st, 3, ar);
    *(struct user *)out = (struct user){.id = stmt_col_int64(st, 0),
                                        .name = stmt_col_text(st, 1, ar),
                                        .account_id = stmt_col_text(st, 2, ar),
                                        .role = role && !strcmp(role, "admin") ? ROLE_ADMIN
                                                                               : ROLE_MEMBER,
                                        .created_at = stmt_col_text(st, 4, ar)};
}

static enum store_rc pgs_user_list(struct store_conn *c, struct arena *ar, const char *account,
                                   struct user **out, int *n)
{
    *out = NULL;
    *n = 0;
    struct store_stmt *st = stmt_get(c, (enum stmt_id)P_USER_LIST);
    stmt_bind_text(st, 1, account);
    return stmt_collect(st, ar, sizeof **out, read_user, (void **)out, n);
}

static const struct store_engine pg_engine = {
    .name = "PostgreSQL",
    .stmt = pgs_stmt,
    .bind_text = pgs_bind_text,
    .bind_int64 = pgs_bind_int64,
    .bind_null = pgs_bind_null,
    .step = pgs_step,
    .col_null = pgs_col_null,
    .col_text = pgs_col_text,
    .col_int64 = pgs_col_int64,
    .changes = pgs_changes,
    .reset = pgs_reset,
    .open = pgs_open,
    .close = pgs_close,
    .migrate = pgs_migrate,
    .reader = pgs_reader,
    .conn_reset = pgs_conn_reset,
    .read_begin = pgs_read_begin,
    .read_end = pgs_read_end,
    .submit = pgs_submit,
    .auth_generation = pgs_auth_generation,
    .hold_hypervisor = pgs_hold_hypervisor,
    .probe_write = pgs_probe_write,
    .backup = pgs_backup,
    .check_file = pgs_check_file,
    .account_list = pgs_account_list,
    .account_counts = pgs_account_counts,
    .account_del = pgs_account_del,
    .user_list = pgs_user_list,
};

const struct store_engine *const postgresql_engine = &pg_engine;
