/* store_int.h: what the store's files share across its engines; not part
 * of the store's interface (store.h is).
 *
 * The store is an interface with an engine behind it, chosen when it is
 * opened (store.c: by the --db value). An engine is a table of functions
 * (struct store_engine), like SQLite's VFS: every struct store, struct
 * store_conn and struct store_stmt begins with a pointer to its engine's
 * table, and the engine's own state follows (sqlite_int.h: SQLite's). The
 * record functions of store.h are written once (records.c), over the
 * statement interface below; each engine has its own SQL text for each
 * statement (sqlite_sql.c: SQLite's; pg_engine.c: PostgreSQL's).
 *
 * A statement is known by its id (enum stmt_id), prepared once per
 * connection and kept: using one costs no allocation, only an indirect call
 * per bind, step and column.
 */
#ifndef ATTACHD_STORE_INT_H
#define ATTACHD_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/arena.h"

/* The statements of the record functions (records.c), by id. An engine may
 * have statements of its own after these (sqlite_int.h: its transaction
 * commands). */
enum stmt_id {
    S_AUTH_EPOCH, S_AUTH_EPOCH_BUMP,
    S_ACCOUNT_ADD, S_ACCOUNT_GET, S_QUOTA_GET, S_QUOTA_SET, S_SERVER_USAGE, S_VOLUME_USAGE,
    S_USER_ADD, S_USER_GET, S_USER_SET_PWHASH, S_USER_DEL, S_USER_COUNT,
    S_SERVER_ADD, S_SERVER_GET, S_SERVER_SEQ, S_SERVER_LIST, S_SERVER_LIST_ALL, S_SERVER_UPDATE, S_SERVER_DEL,
    S_SERVER_BY_DOMAIN, S_SERVER_BOUND,
    S_VOLUME_ADD, S_VOLUME_GET, S_VOLUME_LIST, S_VOLUME_LIST_NAME, S_VOLUME_SET_STATUS,
    S_VOLUME_DEL, S_VOLUME_SET_STORAGE, S_VOLUME_UNSETTLED, S_VOLUME_UPDATE,
    S_ATTACH_ADD, S_ATTACH_GET, S_ATTACH_FIND, S_ATTACH_PARTS,
    S_ATTACH_BY_VOLUME, S_ATTACH_LIST, S_ATTACH_UPDATE,
    S_ATTACH_SWAP, S_ATTACH_DEL, S_ATTACH_BY_ID, S_ATTACH_SET_STATUS, S_ATTACH_UNSETTLED,
    S_IMAGE_ADD, S_IMAGE_GET, S_IMAGE_LIST, S_IMAGE_USERS, S_IMAGE_DEL,
    N_STMT
};

/* The columns of each record, in the order records.c reads them (every
 * engine's SQL selects them so), and how many the wide ones have. */
#define SERVER_COLS "id, account_id, user_id, name, vm_state, task_state, power_state, " \
                    "locked, locked_by, image_ref, flavor_ref, availability_zone, key_name, " \
                    "metadata, created_at, updated_at, launched_at, domain, fault, own_domain"
#define VOLUME_COLS "id, account_id, name, description, size, status, volume_type, " \
                    "availability_zone, snapshot_id, metadata, created_at, updated_at, path, " \
                    "adopted"
#define IMAGE_COLS "id, name, disk_format, size, virtual_size, checksum, hash_value, path, " \
                   "kernel, initrd, cmdline, created_at, updated_at"
#define ATTACH_COLS "id, bdm_uuid, server_id, volume_id, device, tag, delete_on_termination, " \
                    "boot_index, created_at, status"
enum { SERVER_NCOLS = 20, VOLUME_NCOLS = 14, ATTACH_NCOLS = 10 };

struct store_engine;

/* The engine-neutral heads; each engine's own structure begins with one. */
struct store {
    const struct store_engine *eng;
};

struct store_conn {
    const struct store_engine *eng;
    bool epoch_bumped;          /* the writer's transaction bumped the auth epoch */
};

struct store_stmt {
    const struct store_engine *eng;
};

struct store_engine {
    const char *name;

    /* ---- statements (records.c uses only these) ---- */

    /* The connection's statement `id`, its bindings cleared, ready to
     * bind and step; NULL after logging why not. */
    struct store_stmt *(*stmt)(struct store_conn *c, enum stmt_id id);
    /* Parameter ?i (1-based); text NULL binds NULL. The text must stay
     * valid until the statement is reset. */
    void (*bind_text)(struct store_stmt *st, int i, const char *s);
    void (*bind_int64)(struct store_stmt *st, int i, int64_t v);
    void (*bind_null)(struct store_stmt *st, int i);
    /* Run it (first call) or move to its next row: 1 a row is current, 0
     * no more rows, < 0 -store_rc (failures are logged as the engine maps
     * them, and the statement is reset). */
    int (*step)(struct store_stmt *st);
    /* The current row's columns (0-based). */
    bool (*col_null)(struct store_stmt *st, int i);
    const char *(*col_text)(struct store_stmt *st, int i, struct arena *ar);   /* NULL: NULL */
    int64_t (*col_int64)(struct store_stmt *st, int i);                      /* NULL: 0 */
    /* Rows changed by the last statement its connection ran (still
     * right after the statement's reset). */
    int64_t (*changes)(struct store_stmt *st);
    /* Forget its rows and bindings, ready for the next use. */
    void (*reset)(struct store_stmt *st);

    /* ---- the store (store.h says what each does; store.c dispatches) ---- */

    struct store *(*open)(const struct store_options *opts, char *err, int errlen);
    void (*close)(struct store *s);
    int (*migrate)(const char *path, int *from, int *to, char *err, int errlen);
    struct store_conn *(*reader)(struct store *s);
    void (*conn_reset)(struct store_conn *c);
    enum store_rc (*read_begin)(struct store_conn *c);
    void (*read_end)(struct store_conn *c);
    void (*submit)(struct store *s, struct store_job *job);
    uint64_t (*auth_generation)(struct store *s);
    /* NULL: STORE_OK, settle 0 */
    enum store_rc (*hold_hypervisor)(struct store *s, double lease, void (*lost)(void *cls),
                                     void *cls, double *settle, char *err, int errlen);
    /* NULL: STORE_NOTFOUND */
    enum store_rc (*hypervisor_holder)(struct store *s, char *who, int wholen);
    int (*probe_write)(struct store_conn *w, void *arg);
    int (*backup)(struct store *s, const char *dest, char *err, int errlen);
    int (*check_file)(const char *path, int *version, char *err, int errlen);
    /* the operators' listing and deleting (store.h) */
    enum store_rc (*account_list)(struct store_conn *c, struct arena *ar, struct account **out,
                                  int *n);
    enum store_rc (*account_counts)(struct store_conn *c, const char *id, int64_t *users,
                                    int64_t *servers, int64_t *volumes);
    enum store_rc (*account_del)(struct store_conn *w, const char *id);
    enum store_rc (*user_list)(struct store_conn *c, struct arena *ar, const char *account,
                               struct user **out, int *n);
};

/* The record statements' SQL in SQLite's dialect, by id (sqlite_sql.c:
 * SQLite's own statements follow them there); PostgreSQL's are these,
 * translated where they are portable (pg_engine.c). */
extern const char *const sqlite_sql[];

/* The engines: SQLite's (sqlite.c) and PostgreSQL's (pg_engine.c). */
extern const struct store_engine sqlite_engine;
extern const struct store_engine *const postgresql_engine;

/* ---------------------------------------------------------------------------
 * The statement interface, for the record functions
 * ------------------------------------------------------------------------- */

static inline struct store_stmt *stmt_get(struct store_conn *c, enum stmt_id id)
{
    return c->eng->stmt(c, id);
}

static inline void stmt_bind_text(struct store_stmt *st, int i, const char *s)
{
    st->eng->bind_text(st, i, s);
}

static inline void stmt_bind_int64(struct store_stmt *st, int i, int64_t v)
{
    st->eng->bind_int64(st, i, v);
}

static inline void stmt_bind_null(struct store_stmt *st, int i)
{
    st->eng->bind_null(st, i);
}

static inline int stmt_step(struct store_stmt *st)
{
    return st->eng->step(st);
}

static inline bool stmt_col_null(struct store_stmt *st, int i)
{
    return st->eng->col_null(st, i);
}

static inline const char *stmt_col_text(struct store_stmt *st, int i, struct arena *ar)
{
    return st->eng->col_text(st, i, ar);
}

static inline int64_t stmt_col_int64(struct store_stmt *st, int i)
{
    return st->eng->col_int64(st, i);
}

static inline void stmt_reset(struct store_stmt *st)
{
    st->eng->reset(st);
}

/* Run a statement that returns no rows (or whose rows are not wanted). */
enum store_rc stmt_exec(struct store_stmt *st);
/* A change that must hit exactly one row: STORE_NOTFOUND when it hit none. */
enum store_rc stmt_exec_one(struct store_stmt *st);
/* Step a single-row query: STORE_OK with the row current (read it, then
 * stmt_reset()), or STORE_NOTFOUND. */
enum store_rc stmt_row(struct store_stmt *st);
/* Reads the current row into the record at `out`. */
typedef void (*stmt_row_reader)(struct store_stmt *st, struct arena *ar, void *out);
/* A single-row query: the row read into *out with `read`, or STORE_NOTFOUND. */
enum store_rc stmt_get_row(struct store_stmt *st, struct arena *ar, stmt_row_reader read,
                           void *out);
/* Collect every row into a new arena array of records of `size` bytes. */
enum store_rc stmt_collect(struct store_stmt *st, struct arena *ar, size_t size,
                           stmt_row_reader read, void **out, int *n);

#endif
