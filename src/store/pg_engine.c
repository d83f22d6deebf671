/* pg_engine.c: the store's PostgreSQL engine (see store.h for the
 * contract, docs/scale-out.md for what it is for): the SQL text of every
 * record statement in PostgreSQL's dialect and the engine's own statements,
 * the statement functions of the engine's table (store_int.h) over pg.h's
 * statements, so that the record functions (records.c) run on a
 * PostgreSQL connection unchanged; and the store: opening (migrating under
 * pg_schema.c's advisory lock), the readers and their snapshots, the
 * listener's start, the hypervisor's lease (pg_lease.c), and what
 * operators need. The writer thread and its group commit are
 * pg_writer.c's; what the two files share, pg_int.h.
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
 * The credential cache: every bump of the auth epoch notifies a channel at
 * its commit (its statement does, below); a listener (pg_listen.c), started
 * where credentials are checked, hears them, and store_auth_generation
 * moves when it does, so that the epoch is read again only when it moved
 * (pgs_auth_generation says what happens while it does not listen).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/pg.h"
#include "store/pg_int.h"
#include "store/pg_schema.h"
#include "util/log.h"
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

/* sqlite_sql.c's SERVER_LIST: instr() is strpos() */
#define SERVER_LIST(accounts)                                                              \
    "SELECT " SERVER_COLS " FROM servers WHERE " accounts " AND seq < $2 "                 \
    "AND ($4::text IS NULL OR strpos(name, $4) > 0) "                                      \
    "AND ($5::text IS NULL OR strpos($5, ',' || vm_state || ',') > 0) "                    \
    "AND ($6::text IS NULL OR strpos($6, ',' || task_state || ',') > 0) "                  \
    "AND ($7::text IS NULL OR image_ref = $7) AND ($8::text IS NULL OR flavor_ref = $8) "  \
    "AND ($9::int = 0 OR locked = CASE WHEN $9::int > 0 THEN 1 ELSE 0 END) "               \
    "AND ($10::text IS NULL OR user_id = $10) "                                            \
    "AND ($11::text IS NULL OR strpos(key_name, $11) > 0) "                                \
    "AND ($12::text IS NULL OR strpos(availability_zone, $12) > 0) "                       \
    "AND ($13::text IS NULL OR strpos(power_state::text, $13) > 0) "                       \
    "AND ($14::text IS NULL OR substr(updated_at, 1, 19) >= $14) "                         \
    "AND ($15::text IS NULL OR substr(updated_at, 1, 19) <= $15) "                         \
    "ORDER BY seq DESC" PG_LIMIT("$3")

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
    [S_SERVER_LIST] = SERVER_LIST("account_id = $1"),
    [S_SERVER_LIST_ALL] = SERVER_LIST("$1::text IS NULL"),
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

/* The texts of the engine's own statements (pg_int.h names them). */
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
void pgs_reset_all(struct pgs_conn *p)
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

static int pgs_migrate(const char *conninfo, int *from, int *to, char *err, int errlen)
{
    return pg_schema_migrate(conninfo, from, to, err, errlen);
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
    pgs_measure_clock(s);
    pthread_mutex_init(&s->lock, NULL);
    job_inbox_init(&s->inbox);
    pthread_key_create(&s->reader_key, NULL);
    if (pthread_create(&s->writer_thread, NULL, pgs_writer_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the writer thread");
        pthread_key_delete(s->reader_key);
        job_inbox_destroy(&s->inbox);
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
    pthread_mutex_lock(&s->lock);   /* a listener starting meanwhile is done first */
    job_inbox_stop(&s->inbox);      /* and none starts from now on */
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer_thread, NULL);   /* it answers every queued job first */
    pg_listen_stop(atomic_load(&s->listener));
    pg_lease_end(s->hypervisor);
    conn_close(s->writer);
    for (struct pgs_conn *c = s->readers, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    pthread_key_delete(s->reader_key);
    job_inbox_destroy(&s->inbox);
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
    pgs_reset_all(c);
    pg_rollback(c->pg);
    c->read_depth = 0;
}

/* The listener, started by the first call: only a process that checks
 * credentials asks (serve; a CLI command never does), so only it has one.
 * NULL when it cannot start. */
static struct pg_listener *start_listener(struct pg_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct pg_listener *l = atomic_load(&s->listener);
    if (!l && !s->listen_failed && !job_inbox_stopping(&s->inbox)) {
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
 * The hypervisor's lease (pg_lease.c)
 * ------------------------------------------------------------------------- */

static enum store_rc pgs_hold_hypervisor(struct store *base, double lease,
                                         void (*lost)(void *cls), void *cls, double *settle,
                                         char *err, int errlen)
{
    struct pg_store *s = store_of(base);
    if (pg_lease_held(s->hypervisor))
        return STORE_OK;
    int rc = pg_lease_take(s->conninfo, lease, lost, cls, &s->hypervisor, err, errlen);
    if (rc == 1)
        *settle = lease + PG_LEASE_MARGIN;
    return rc == 1 ? STORE_OK : rc == 0 ? STORE_EXISTS : STORE_UNAVAILABLE;
}

static enum store_rc pgs_hypervisor_holder(struct store *base, char *who, int wholen)
{
    struct pg_store *s = store_of(base);
    int rc = pg_lease_holder(s->conninfo, who, wholen, who, wholen);
    return rc == 1 ? STORE_OK : rc == 0 ? STORE_NOTFOUND : STORE_UNAVAILABLE;
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
    .hypervisor_holder = pgs_hypervisor_holder,
    .probe_write = pgs_probe_write,
    .backup = pgs_backup,
    .check_file = pgs_check_file,
    .account_list = pgs_account_list,
    .account_counts = pgs_account_counts,
    .account_del = pgs_account_del,
    .user_list = pgs_user_list,
};

const struct store_engine *const postgresql_engine = &pg_engine;
