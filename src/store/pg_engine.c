/* pg_engine.c: the store's PostgreSQL engine, so far its statements: the
 * SQL text of every record statement in PostgreSQL's dialect, and the
 * statement functions of the engine's table (store_int.h) over pg.c's
 * statements, so that the record functions (records.c) run on a
 * PostgreSQL connection unchanged. The writer, the readers and the rest of
 * the store's functions are still to come (docs/scale-out.md): store.c
 * opens no store on this engine yet, and its table has none of them.
 *
 * The texts are SQLite's (sqlite_sql.c), ?N translated to $N
 * (pg_translate), except where the dialects differ; those are written out
 * below, each saying why.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/pg.h"
#include "store/store_int.h"

/* ---------------------------------------------------------------------------
 * The SQL
 * ------------------------------------------------------------------------- */

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

static const char *pg_sql[N_STMT];
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
    sql_ready = true;
}

/* ---------------------------------------------------------------------------
 * Connections and their statements
 * ------------------------------------------------------------------------- */

struct pgs_stmt {
    struct store_stmt common;   /* its engine: pg_engine */
    struct pg_stmt *st;         /* pg.c's, set by each use */
};

struct pgs_conn {
    struct store_conn common;   /* its engine: pg_engine */
    struct pg_conn *pg;
    struct pgs_stmt st[N_STMT];
};

static const struct store_engine pg_engine;

static struct pg_stmt *raw(struct store_stmt *st)
{
    return ((struct pgs_stmt *)st)->st;
}

static struct store_stmt *pgs_stmt(struct store_conn *c, enum stmt_id id)
{
    struct pgs_conn *p = (struct pgs_conn *)c;
    /* NULL while the connection is lost: its owner makes it again (pg_ready) */
    struct pg_stmt *st = pg_stmt(p->pg, (int)id);
    if (!st)
        return NULL;
    p->st[id].st = st;
    return &p->st[id].common;
}

static void pgs_bind_text(struct store_stmt *st, int i, const char *s)
{
    pg_bind_text(raw(st), i, s);
}

static void pgs_bind_int64(struct store_stmt *st, int i, int64_t v)
{
    pg_bind_int64(raw(st), i, v);
}

static void pgs_bind_null(struct store_stmt *st, int i)
{
    pg_bind_text(raw(st), i, NULL);
}

static int pgs_step(struct store_stmt *st)
{
    int rc = pg_step(raw(st));
    if (rc < 0)
        pg_reset(raw(st));
    return rc;
}

static bool pgs_col_null(struct store_stmt *st, int i)
{
    return pg_col_null(raw(st), i);
}

static const char *pgs_col_text(struct store_stmt *st, int i, struct arena *ar)
{
    return pg_col_text(raw(st), i, ar);
}

static int64_t pgs_col_int64(struct store_stmt *st, int i)
{
    return pg_col_int64(raw(st), i);
}

static int64_t pgs_changes(struct store_stmt *st)
{
    return pg_changes(raw(st)->c);
}

static void pgs_reset(struct store_stmt *st)
{
    pg_reset(raw(st));
}

/* The statements only, so far (see the top of this file). */
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
};

struct store_conn *pg_store_connect(const char *conninfo, const char *name, char *err,
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
    for (int i = 0; i < N_STMT; i++)
        p->st[i].common.eng = &pg_engine;
    if (!(p->pg = pg_connect(conninfo, pg_sql, N_STMT, name, err, errlen))) {
        free(p);
        return NULL;
    }
    return &p->common;
}

void pg_store_close(struct store_conn *c)
{
    if (!c)
        return;
    struct pgs_conn *p = (struct pgs_conn *)c;
    pg_close(p->pg);
    free(p);
}

struct pg_conn *pg_store_pg(struct store_conn *c)
{
    return c && c->eng == &pg_engine ? ((struct pgs_conn *)c)->pg : NULL;
}
