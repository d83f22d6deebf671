/* sqlite_records.c: the SQL of the SQLite store and the record functions
 * of store.h: accounts, users, servers, volumes, attachments, images. Every
 * statement has bound parameters and is prepared once per connection. */
#include <stdint.h>
#include <string.h>

#include "store/sqlite_int.h"

/* ---------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------- */

#define SERVER_COLS "id, account_id, user_id, name, vm_state, task_state, power_state, " \
                    "locked, locked_by, image_ref, flavor_ref, availability_zone, key_name, " \
                    "metadata, created_at, updated_at, launched_at, domain, fault, own_domain"
#define VOLUME_COLS "id, account_id, name, description, size, status, volume_type, " \
                    "availability_zone, snapshot_id, metadata, created_at, updated_at, path, adopted"
#define IMAGE_COLS "id, name, disk_format, size, virtual_size, checksum, hash_value, path, " \
                   "kernel, initrd, cmdline, created_at, updated_at"
#define ATTACH_COLS "id, bdm_uuid, server_id, volume_id, device, tag, delete_on_termination, " \
                    "boot_index, created_at, status"
/* How many columns each list has (read_*_at read them from a base column). */
enum { SERVER_NCOLS = 20, VOLUME_NCOLS = 14 };

const char *const sqlite_sql[N_STMT] = {
    [S_BEGIN] = "BEGIN",
    [S_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT job",
    [S_ROLLBACK_TO] = "ROLLBACK TO job",
    [S_RELEASE] = "RELEASE job",
    [S_DATA_VERSION] = "PRAGMA data_version",
    [S_AUTH_EPOCH] = "SELECT value FROM meta WHERE key = 'auth_epoch'",
    [S_AUTH_EPOCH_BUMP] = "UPDATE meta SET value = value + 1 WHERE key = 'auth_epoch'",
    [S_ACCOUNT_ADD] = "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
    [S_ACCOUNT_GET] = "SELECT id, name, created_at FROM accounts WHERE id = ?1 "
                      "UNION ALL SELECT id, name, created_at FROM accounts WHERE name = ?1 "
                      "LIMIT 1",
    [S_QUOTA_GET] = "SELECT instances, cores, ram, volumes, gigabytes FROM quotas "
                    "WHERE account_id = ?1",
    [S_QUOTA_SET] = "INSERT INTO quotas (account_id, instances, cores, ram, volumes, gigabytes) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (account_id) DO UPDATE SET "
                    "instances = ?2, cores = ?3, ram = ?4, volumes = ?5, gigabytes = ?6",
    [S_SERVER_USAGE] = "SELECT flavor_ref, count(*) FROM servers WHERE account_id = ?1 "
                       "GROUP BY flavor_ref",
    [S_VOLUME_USAGE] = "SELECT count(*), coalesce(sum(size), 0) FROM volumes "
                       "WHERE account_id = ?1",
    [S_USER_ADD] = "INSERT INTO users (name, account_id, role, pwhash, created_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_USER_GET] = "SELECT id, name, account_id, role, pwhash, created_at FROM users "
                   "WHERE name = ?1",
    [S_USER_SET_PWHASH] = "UPDATE users SET pwhash = ?2 WHERE name = ?1",
    [S_USER_DEL] = "DELETE FROM users WHERE name = ?1",
    [S_USER_COUNT] = "SELECT count(*) FROM users",
    [S_SERVER_ADD] = "INSERT INTO servers (" SERVER_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                     "?18, ?19, ?20)",
    [S_SERVER_GET] = "SELECT " SERVER_COLS " FROM servers WHERE id = ?1 "
                     "AND (?2 IS NULL OR account_id = ?2)",
    [S_SERVER_SEQ] = "SELECT seq FROM servers WHERE id = ?1 AND account_id = ?2",
    [S_SERVER_LIST] = "SELECT " SERVER_COLS " FROM servers WHERE account_id = ?1 AND seq < ?2 "
                      "AND (?4 IS NULL OR instr(name, ?4) > 0) ORDER BY seq DESC LIMIT ?3",
    [S_SERVER_UPDATE] = "UPDATE servers SET name = ?4, vm_state = ?5, task_state = ?6, "
                        "power_state = ?7, locked = ?8, locked_by = ?9, metadata = ?14, "
                        "updated_at = ?16, launched_at = ?17, fault = ?19 WHERE id = ?1",
    [S_SERVER_BY_DOMAIN] = "SELECT " SERVER_COLS " FROM servers WHERE domain = ?1",
    [S_SERVER_BOUND] = "SELECT " SERVER_COLS " FROM servers WHERE domain IS NOT NULL ORDER BY seq",
    [S_SERVER_DEL] = "DELETE FROM servers WHERE id = ?1",
    [S_VOLUME_ADD] = "INSERT INTO volumes (" VOLUME_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [S_VOLUME_GET] = "SELECT " VOLUME_COLS " FROM volumes WHERE id = ?1 "
                     "AND (?2 IS NULL OR account_id = ?2)",
    [S_VOLUME_LIST] = "SELECT " VOLUME_COLS " FROM volumes WHERE account_id = ?1 "
                      "ORDER BY seq DESC LIMIT ?3 OFFSET ?2",
    [S_VOLUME_LIST_NAME] = "SELECT " VOLUME_COLS " FROM volumes WHERE account_id = ?1 "
                           "AND name = ?4 ORDER BY seq DESC LIMIT ?3 OFFSET ?2",
    [S_VOLUME_SET_STATUS] = "UPDATE volumes SET status = ?2, updated_at = ?3 WHERE id = ?1",
    [S_VOLUME_DEL] = "DELETE FROM volumes WHERE id = ?1",
    [S_VOLUME_UPDATE] = "UPDATE volumes SET name = ?2, description = ?3, metadata = ?4, "
                        "updated_at = ?5 WHERE id = ?1",
    [S_VOLUME_SET_STORAGE] = "UPDATE volumes SET path = ?2, status = ?3, updated_at = ?4 "
                             "WHERE id = ?1",
    [S_VOLUME_UNSETTLED] = "SELECT " VOLUME_COLS " FROM volumes "
                           "WHERE status IN ('creating', 'deleting') ORDER BY seq",
    [S_ATTACH_ADD] = "INSERT INTO attachments (" ATTACH_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_ATTACH_BY_ID] = "SELECT " ATTACH_COLS " FROM attachments WHERE id = ?1",
    [S_ATTACH_SET_STATUS] = "UPDATE attachments SET status = ?2 WHERE id = ?1 AND status = ?3",
    [S_ATTACH_UNSETTLED] = "SELECT " ATTACH_COLS " FROM attachments WHERE status <> 'attached' "
                           "ORDER BY seq",
    [S_ATTACH_GET] = "SELECT " ATTACH_COLS " FROM attachments WHERE server_id = ?1 "
                     "AND volume_id = ?2",
    [S_ATTACH_FIND] = "SELECT a.id, a.bdm_uuid, a.server_id, a.volume_id, a.device, a.tag, "
                      "a.delete_on_termination, a.boot_index, a.created_at, a.status "
                      "FROM servers s LEFT JOIN attachments a "
                      "ON a.server_id = s.id AND a.volume_id = ?2 "
                      "WHERE s.id = ?1 AND (?3 IS NULL OR s.account_id = ?3)",
    /* one row, always: each part NULL when it is not found */
    [S_ATTACH_PARTS] = "SELECT s.*, v.*, a.* FROM (SELECT 1) "
                       "LEFT JOIN (SELECT " SERVER_COLS " FROM servers WHERE id = ?1 "
                       "AND (?3 IS NULL OR account_id = ?3)) s "
                       "LEFT JOIN (SELECT " VOLUME_COLS " FROM volumes WHERE id = ?2 "
                       "AND (?3 IS NULL OR account_id = ?3)) v "
                       "LEFT JOIN (SELECT " ATTACH_COLS " FROM attachments WHERE server_id = ?1 "
                       "AND volume_id = ?2) a",
    [S_ATTACH_BY_VOLUME] = "SELECT " ATTACH_COLS " FROM attachments WHERE volume_id = ?1",
    [S_ATTACH_LIST] = "SELECT " ATTACH_COLS " FROM attachments WHERE server_id = ?1 "
                      "ORDER BY seq LIMIT ?3 OFFSET ?2",
    [S_ATTACH_UPDATE] = "UPDATE attachments SET device = ?5, tag = ?6, "
                        "delete_on_termination = ?7 WHERE id = ?1",
    [S_ATTACH_SWAP] = "UPDATE attachments SET volume_id = ?2 WHERE id = ?1",
    [S_ATTACH_DEL] = "DELETE FROM attachments WHERE id = ?1",
    [S_IMAGE_ADD] = "INSERT INTO images (" IMAGE_COLS ") VALUES "
                    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [S_IMAGE_GET] = "SELECT " IMAGE_COLS " FROM images WHERE id = ?1",
    [S_IMAGE_LIST] = "SELECT " IMAGE_COLS " FROM images ORDER BY seq",
    [S_IMAGE_USERS] = "SELECT count(*) FROM servers WHERE image_ref = ?1",
    [S_IMAGE_DEL] = "DELETE FROM images WHERE id = ?1",
};


/* ---------------------------------------------------------------------------
 * The shapes most record functions take
 * ------------------------------------------------------------------------- */

/* KEYS(a, b, ...): text parameters ?1, ?2, ... as an array and its length. */
#define KEYS(...) (const char *const[]){__VA_ARGS__}, \
    (int)(sizeof (const char *const[]){__VA_ARGS__} / sizeof(const char *))

/* Statement `id` with keys[i] bound to ?i+1 (NULL binds NULL), or NULL. */
static sqlite3_stmt *keyed(struct store_conn *c, enum stmt_id id, const char *const *keys, int n)
{
    sqlite3_stmt *st = sq_stmt(c, id);
    for (int i = 0; st && i < n; i++)
        sq_bind_text(st, i + 1, keys[i]);
    return st;
}

/* The one row that `id` finds by its keys, read into *out. */
static enum store_rc get_row(struct store_conn *c, struct arena *ar, sq_row_reader read,
                             void *out, enum stmt_id id, const char *const *keys, int n)
{
    sqlite3_stmt *st = keyed(c, id, keys, n);
    return st ? sq_get(c, st, ar, read, out) : STORE_ERROR;
}

/* A change that `id` makes to exactly one row found by its keys. */
static enum store_rc change_row(struct store_conn *w, enum stmt_id id, const char *const *keys,
                                int n)
{
    sqlite3_stmt *st = keyed(w, id, keys, n);
    return st ? sq_exec_one(w, st) : STORE_ERROR;
}

/* Every row of `id` (no parameters), into a new array of *n records. */
static enum store_rc all_rows(struct store_conn *c, enum stmt_id id, struct arena *ar,
                              size_t size, sq_row_reader read, void **out, int *n)
{
    sqlite3_stmt *st = sq_stmt(c, id);
    return st ? sq_collect(c, st, ar, size, read, out, n) : STORE_ERROR;
}

/* ---------------------------------------------------------------------------
 * Accounts and users
 * ------------------------------------------------------------------------- */

enum store_rc store_account_add(struct store_conn *w, const struct account *a)
{
    sqlite3_stmt *st = sq_stmt(w, S_ACCOUNT_ADD);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, a->id);
    sq_bind_text(st, 2, a->name);
    sq_bind_text(st, 3, a->created_at);
    return sq_exec(w, st);
}

enum store_rc store_account_get(struct store_conn *c, struct arena *ar, const char *key,
                                struct account *out)
{
    sqlite3_stmt *st = sq_stmt(c, S_ACCOUNT_GET);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, key);
    enum store_rc rc = sq_step_row(c, st);
    if (rc == STORE_OK) {
        out->id = sq_col_text(st, 0, ar);
        out->name = sq_col_text(st, 1, ar);
        out->created_at = sq_col_text(st, 2, ar);
        sq_done(st);
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * Quotas and usage
 * ------------------------------------------------------------------------- */

static int64_t col_quota(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? QUOTA_UNSET : sqlite3_column_int64(st, i);
}

static void bind_quota(sqlite3_stmt *st, int i, int64_t v)
{
    if (v == QUOTA_UNSET)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

enum store_rc store_quota_get(struct store_conn *c, const char *account, struct quota *out)
{
    sqlite3_stmt *st = sq_stmt(c, S_QUOTA_GET);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, account);
    enum store_rc rc = sq_step_row(c, st);
    *out = (struct quota){QUOTA_UNSET, QUOTA_UNSET, QUOTA_UNSET, QUOTA_UNSET, QUOTA_UNSET};
    if (rc == STORE_OK) {
        *out = (struct quota){col_quota(st, 0), col_quota(st, 1), col_quota(st, 2),
                              col_quota(st, 3), col_quota(st, 4)};
        sq_done(st);
    }
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

enum store_rc store_quota_set(struct store_conn *w, const char *account, const struct quota *q)
{
    sqlite3_stmt *st = sq_stmt(w, S_QUOTA_SET);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, account);
    bind_quota(st, 2, q->instances);
    bind_quota(st, 3, q->cores);
    bind_quota(st, 4, q->ram);
    bind_quota(st, 5, q->volumes);
    bind_quota(st, 6, q->gigabytes);
    return sq_exec(w, st);
}

static void read_flavor_count(sqlite3_stmt *st, struct arena *ar, void *out)
{
    struct flavor_count *f = out;
    f->flavor_ref = sq_col_text(st, 0, ar);
    f->servers = sqlite3_column_int64(st, 1);
}

enum store_rc store_server_usage(struct store_conn *c, struct arena *ar, const char *account,
                                 struct flavor_count **out, int *n)
{
    sqlite3_stmt *st = sq_stmt(c, S_SERVER_USAGE);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, account);
    return sq_collect(c, st, ar, sizeof **out, read_flavor_count, (void **)out, n);
}

enum store_rc store_volume_usage(struct store_conn *c, const char *account, int64_t *volumes,
                                 int64_t *gigabytes)
{
    sqlite3_stmt *st = sq_stmt(c, S_VOLUME_USAGE);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, account);
    enum store_rc rc = sq_step_row(c, st);
    if (rc == STORE_OK) {
        *volumes = sqlite3_column_int64(st, 0);
        *gigabytes = sqlite3_column_int64(st, 1);
        sq_done(st);
    }
    return rc;
}

enum store_rc store_user_add(struct store_conn *w, const struct user *u)
{
    sqlite3_stmt *st = sq_stmt(w, S_USER_ADD);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, u->name);
    sq_bind_text(st, 2, u->account_id);
    sq_bind_text(st, 3, u->role == ROLE_ADMIN ? "admin" : "member");
    sq_bind_text(st, 4, u->pwhash);
    sq_bind_text(st, 5, u->created_at);
    return sq_exec(w, st);
}

enum store_rc store_user_get(struct store_conn *c, struct arena *ar, const char *name,
                             struct user *out)
{
    sqlite3_stmt *st = sq_stmt(c, S_USER_GET);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, name);
    enum store_rc rc = sq_step_row(c, st);
    if (rc == STORE_OK) {
        out->id = sqlite3_column_int64(st, 0);
        out->name = sq_col_text(st, 1, ar);
        out->account_id = sq_col_text(st, 2, ar);
        const char *role = (const char *)sqlite3_column_text(st, 3);
        out->role = role && !strcmp(role, "admin") ? ROLE_ADMIN : ROLE_MEMBER;
        out->pwhash = sq_col_text(st, 4, ar);
        out->created_at = sq_col_text(st, 5, ar);
        sq_done(st);
    }
    return rc;
}

enum store_rc store_user_set_pwhash(struct store_conn *w, const char *name, const char *pwhash)
{
    return change_row(w, S_USER_SET_PWHASH, KEYS(name, pwhash));
}

enum store_rc store_user_del(struct store_conn *w, const char *name)
{
    return change_row(w, S_USER_DEL, KEYS(name));
}

enum store_rc store_user_count(struct store_conn *c, int64_t *n)
{
    return sq_get_int64(c, S_USER_COUNT, n);
}

/* ---------------------------------------------------------------------------
 * Servers
 * ------------------------------------------------------------------------- */

static void bind_server(sqlite3_stmt *st, const struct server *s)
{
    sq_bind_text(st, 1, s->id);
    sq_bind_text(st, 2, s->account_id);
    sq_bind_text(st, 3, s->user_id);
    sq_bind_text(st, 4, s->name);
    sq_bind_text(st, 5, s->vm_state);
    sq_bind_text(st, 6, s->task_state);
    sqlite3_bind_int(st, 7, s->power_state);
    sqlite3_bind_int(st, 8, s->locked);
    sq_bind_text(st, 9, s->locked_by);
    sq_bind_text(st, 10, s->image_ref);
    sq_bind_text(st, 11, s->flavor_ref);
    sq_bind_text(st, 12, s->availability_zone);
    sq_bind_text(st, 13, s->key_name);
    sq_bind_text(st, 14, s->metadata ? s->metadata : "{}");
    sq_bind_text(st, 15, s->created_at);
    sq_bind_text(st, 16, s->updated_at);
    sq_bind_text(st, 17, s->launched_at);
    sq_bind_text(st, 18, s->domain);
    sq_bind_text(st, 19, s->fault);
    sqlite3_bind_int(st, 20, s->own_domain);
}

static void read_server_at(sqlite3_stmt *st, int b, struct arena *ar, void *out)
{
    struct server *s = out;
    s->id = sq_col_text(st, b, ar);
    s->account_id = sq_col_text(st, b + 1, ar);
    s->user_id = sq_col_text(st, b + 2, ar);
    s->name = sq_col_text(st, b + 3, ar);
    s->vm_state = sq_col_text(st, b + 4, ar);
    s->task_state = sq_col_text(st, b + 5, ar);
    s->power_state = sqlite3_column_int(st, b + 6);
    s->locked = sqlite3_column_int(st, b + 7) != 0;
    s->locked_by = sq_col_text(st, b + 8, ar);
    s->image_ref = sq_col_text(st, b + 9, ar);
    s->flavor_ref = sq_col_text(st, b + 10, ar);
    s->availability_zone = sq_col_text(st, b + 11, ar);
    s->key_name = sq_col_text(st, b + 12, ar);
    s->metadata = sq_col_text(st, b + 13, ar);
    s->created_at = sq_col_text(st, b + 14, ar);
    s->updated_at = sq_col_text(st, b + 15, ar);
    s->launched_at = sq_col_text(st, b + 16, ar);
    s->domain = sq_col_text(st, b + 17, ar);
    s->fault = sq_col_text(st, b + 18, ar);
    s->own_domain = sqlite3_column_int(st, b + 19) != 0;
}

static void read_server(sqlite3_stmt *st, struct arena *ar, void *out)
{
    read_server_at(st, 0, ar, out);
}

enum store_rc store_server_add(struct store_conn *w, const struct server *srv)
{
    sqlite3_stmt *st = sq_stmt(w, S_SERVER_ADD);
    if (!st)
        return STORE_ERROR;
    bind_server(st, srv);
    return sq_exec(w, st);
}

enum store_rc store_server_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct server *out)
{
    return get_row(c, ar, read_server, out, S_SERVER_GET, KEYS(id, account));
}

enum store_rc store_server_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *marker, const char *name_contains, int limit,
                                struct server **out, int *n)
{
    int64_t before = INT64_MAX;
    if (marker) {
        sqlite3_stmt *st = sq_stmt(c, S_SERVER_SEQ);
        if (!st)
            return STORE_ERROR;
        sq_bind_text(st, 1, marker);
        sq_bind_text(st, 2, account);
        enum store_rc rc = sq_step_row(c, st);
        if (rc != STORE_OK)
            return rc;
        before = sqlite3_column_int64(st, 0);
        sq_done(st);
    }
    sqlite3_stmt *st = sq_stmt(c, S_SERVER_LIST);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, account);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int(st, 3, limit);
    sq_bind_text(st, 4, name_contains);
    return sq_collect(c, st, ar, sizeof **out, read_server, (void **)out, n);
}

enum store_rc store_server_update(struct store_conn *w, const struct server *srv)
{
    sqlite3_stmt *st = sq_stmt(w, S_SERVER_UPDATE);
    if (!st)
        return STORE_ERROR;
    bind_server(st, srv);
    return sq_exec_one(w, st);
}

enum store_rc store_server_del(struct store_conn *w, const char *id)
{
    return change_row(w, S_SERVER_DEL, KEYS(id));
}

/* ---------------------------------------------------------------------------
 * Volumes
 * ------------------------------------------------------------------------- */

static void read_volume_at(sqlite3_stmt *st, int b, struct arena *ar, void *out)
{
    struct volume *v = out;
    v->id = sq_col_text(st, b, ar);
    v->account_id = sq_col_text(st, b + 1, ar);
    v->name = sq_col_text(st, b + 2, ar);
    v->description = sq_col_text(st, b + 3, ar);
    v->size = sqlite3_column_int64(st, b + 4);
    v->status = sq_col_text(st, b + 5, ar);
    v->volume_type = sq_col_text(st, b + 6, ar);
    v->availability_zone = sq_col_text(st, b + 7, ar);
    v->snapshot_id = sq_col_text(st, b + 8, ar);
    v->metadata = sq_col_text(st, b + 9, ar);
    v->created_at = sq_col_text(st, b + 10, ar);
    v->updated_at = sq_col_text(st, b + 11, ar);
    v->path = sq_col_text(st, b + 12, ar);
    v->adopted = sqlite3_column_int(st, b + 13) != 0;
}

static void read_volume(sqlite3_stmt *st, struct arena *ar, void *out)
{
    read_volume_at(st, 0, ar, out);
}

enum store_rc store_volume_add(struct store_conn *w, const struct volume *v)
{
    sqlite3_stmt *st = sq_stmt(w, S_VOLUME_ADD);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, v->id);
    sq_bind_text(st, 2, v->account_id);
    sq_bind_text(st, 3, v->name);
    sq_bind_text(st, 4, v->description);
    sqlite3_bind_int64(st, 5, v->size);
    sq_bind_text(st, 6, v->status);
    sq_bind_text(st, 7, v->volume_type);
    sq_bind_text(st, 8, v->availability_zone);
    sq_bind_text(st, 9, v->snapshot_id);
    sq_bind_text(st, 10, v->metadata ? v->metadata : "{}");
    sq_bind_text(st, 11, v->created_at);
    sq_bind_text(st, 12, v->updated_at);
    sq_bind_text(st, 13, v->path);
    sqlite3_bind_int(st, 14, v->adopted);
    return sq_exec(w, st);
}

enum store_rc store_volume_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct volume *out)
{
    return get_row(c, ar, read_volume, out, S_VOLUME_GET, KEYS(id, account));
}

enum store_rc store_volume_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *name, int64_t offset, int limit,
                                struct volume **out, int *n)
{
    /* two statements, so that the name lookup uses its index */
    sqlite3_stmt *st = sq_stmt(c, name ? S_VOLUME_LIST_NAME : S_VOLUME_LIST);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, account);
    if (name)
        sq_bind_text(st, 4, name);
    sqlite3_bind_int64(st, 2, offset);
    sqlite3_bind_int(st, 3, limit);
    return sq_collect(c, st, ar, sizeof **out, read_volume, (void **)out, n);
}

enum store_rc store_volume_set_status(struct store_conn *w, const char *id, const char *status)
{
    char now[32];
    store_now(now);
    return change_row(w, S_VOLUME_SET_STATUS, KEYS(id, status, now));
}

enum store_rc store_volume_update(struct store_conn *w, const struct volume *v)
{
    return change_row(w, S_VOLUME_UPDATE,
                      KEYS(v->id, v->name, v->description, v->metadata ? v->metadata : "{}",
                           v->updated_at));
}

enum store_rc store_volume_del(struct store_conn *w, const char *id)
{
    return change_row(w, S_VOLUME_DEL, KEYS(id));
}

/* ---------------------------------------------------------------------------
 * Attachments
 * ------------------------------------------------------------------------- */

static void bind_attachment(sqlite3_stmt *st, const struct attachment *a)
{
    sq_bind_text(st, 1, a->id);
    sq_bind_text(st, 2, a->bdm_uuid);
    sq_bind_text(st, 3, a->server_id);
    sq_bind_text(st, 4, a->volume_id);
    sq_bind_text(st, 5, a->device);
    sq_bind_text(st, 6, a->tag);
    sqlite3_bind_int(st, 7, a->delete_on_termination);
    sqlite3_bind_int(st, 8, a->boot_index);
    sq_bind_text(st, 9, a->created_at);
    sq_bind_text(st, 10, a->status ? a->status : "attached");
}

static void read_attachment_at(sqlite3_stmt *st, int b, struct arena *ar, void *out)
{
    struct attachment *a = out;
    a->id = sq_col_text(st, b, ar);
    a->bdm_uuid = sq_col_text(st, b + 1, ar);
    a->server_id = sq_col_text(st, b + 2, ar);
    a->volume_id = sq_col_text(st, b + 3, ar);
    a->device = sq_col_text(st, b + 4, ar);
    a->tag = sq_col_text(st, b + 5, ar);
    a->delete_on_termination = sqlite3_column_int(st, b + 6) != 0;
    a->boot_index = sqlite3_column_int(st, b + 7);
    a->created_at = sq_col_text(st, b + 8, ar);
    a->status = sq_col_text(st, b + 9, ar);
}

static void read_attachment(sqlite3_stmt *st, struct arena *ar, void *out)
{
    read_attachment_at(st, 0, ar, out);
}

enum store_rc store_attachment_add(struct store_conn *w, const struct attachment *at)
{
    sqlite3_stmt *st = sq_stmt(w, S_ATTACH_ADD);
    if (!st)
        return STORE_ERROR;
    bind_attachment(st, at);
    return sq_exec(w, st);
}

enum store_rc store_attachment_get(struct store_conn *c, struct arena *ar, const char *server_id,
                                   const char *volume_id, struct attachment *out)
{
    return get_row(c, ar, read_attachment, out, S_ATTACH_GET, KEYS(server_id, volume_id));
}

enum store_rc store_attachment_find(struct store_conn *c, struct arena *ar, const char *account,
                                    const char *server_id, const char *volume_id,
                                    bool *server_found, struct attachment *out)
{
    *server_found = false;
    sqlite3_stmt *st = sq_stmt(c, S_ATTACH_FIND);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, server_id);
    sq_bind_text(st, 2, volume_id);
    sq_bind_text(st, 3, account);
    enum store_rc rc = sq_step_row(c, st);
    if (rc != STORE_OK)
        return rc;
    *server_found = true;
    if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        rc = STORE_NOTFOUND;
    else
        read_attachment(st, ar, out);
    sq_done(st);
    return rc;
}

unsigned store_attachment_parts(struct store_conn *c, struct arena *ar, const char *account,
                                const char *server_id, const char *volume_id, struct server *s,
                                struct volume *v, struct attachment *a, enum store_rc *rc)
{
    sqlite3_stmt *st = sq_stmt(c, S_ATTACH_PARTS);
    if (!st) {
        *rc = STORE_ERROR;
        return 0;
    }
    sq_bind_text(st, 1, server_id);
    sq_bind_text(st, 2, volume_id);
    sq_bind_text(st, 3, account);
    if ((*rc = sq_step_row(c, st)) != STORE_OK)
        return 0;
    unsigned found = 0;
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
        read_server_at(st, 0, ar, s);
        found |= FOUND_SERVER;
    }
    if (sqlite3_column_type(st, SERVER_NCOLS) != SQLITE_NULL) {
        read_volume_at(st, SERVER_NCOLS, ar, v);
        found |= FOUND_VOLUME;
    }
    if (sqlite3_column_type(st, SERVER_NCOLS + VOLUME_NCOLS) != SQLITE_NULL) {
        read_attachment_at(st, SERVER_NCOLS + VOLUME_NCOLS, ar, a);
        found |= FOUND_ATTACHMENT;
    }
    sq_done(st);
    return found;
}

enum store_rc store_attachment_by_volume(struct store_conn *c, struct arena *ar,
                                         const char *volume_id, struct attachment *out)
{
    return get_row(c, ar, read_attachment, out, S_ATTACH_BY_VOLUME, KEYS(volume_id));
}

enum store_rc store_attachment_list(struct store_conn *c, struct arena *ar, const char *server_id,
                                    int64_t offset, int limit, struct attachment **out, int *n)
{
    sqlite3_stmt *st = sq_stmt(c, S_ATTACH_LIST);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, server_id);
    sqlite3_bind_int64(st, 2, offset);
    sqlite3_bind_int(st, 3, limit);
    return sq_collect(c, st, ar, sizeof **out, read_attachment, (void **)out, n);
}

enum store_rc store_attachment_update(struct store_conn *w, const struct attachment *at)
{
    sqlite3_stmt *st = sq_stmt(w, S_ATTACH_UPDATE);
    if (!st)
        return STORE_ERROR;
    bind_attachment(st, at);
    return sq_exec_one(w, st);
}

enum store_rc store_attachment_swap(struct store_conn *w, const char *attachment_id,
                                    const char *new_volume_id)
{
    return change_row(w, S_ATTACH_SWAP, KEYS(attachment_id, new_volume_id));
}

enum store_rc store_attachment_del(struct store_conn *w, const char *attachment_id)
{
    return change_row(w, S_ATTACH_DEL, KEYS(attachment_id));
}

enum store_rc store_attachment_by_id(struct store_conn *c, struct arena *ar, const char *id,
                                     struct attachment *out)
{
    return get_row(c, ar, read_attachment, out, S_ATTACH_BY_ID, KEYS(id));
}

enum store_rc store_attachment_set_status(struct store_conn *w, const char *id, const char *from,
                                          const char *to)
{
    return change_row(w, S_ATTACH_SET_STATUS, KEYS(id, to, from));
}

enum store_rc store_attachment_unsettled(struct store_conn *c, struct arena *ar,
                                         struct attachment **out, int *n)
{
    return all_rows(c, S_ATTACH_UNSETTLED, ar, sizeof **out, read_attachment, (void **)out, n);
}

enum store_rc store_server_by_domain(struct store_conn *c, struct arena *ar, const char *domain,
                                     struct server *out)
{
    return get_row(c, ar, read_server, out, S_SERVER_BY_DOMAIN, KEYS(domain));
}

enum store_rc store_server_bound(struct store_conn *c, struct arena *ar, struct server **out,
                                 int *n)
{
    return all_rows(c, S_SERVER_BOUND, ar, sizeof **out, read_server, (void **)out, n);
}

enum store_rc store_volume_set_storage(struct store_conn *w, const char *id, const char *path,
                                       const char *status)
{
    char now[32];
    store_now(now);
    return change_row(w, S_VOLUME_SET_STORAGE, KEYS(id, path, status, now));
}

enum store_rc store_volume_unsettled(struct store_conn *c, struct arena *ar, struct volume **out,
                                     int *n)
{
    return all_rows(c, S_VOLUME_UNSETTLED, ar, sizeof **out, read_volume, (void **)out, n);
}

/* ---------------------------------------------------------------------------
 * Images
 * ------------------------------------------------------------------------- */

static void read_image(sqlite3_stmt *st, struct arena *ar, void *out)
{
    struct image *img = out;
    img->id = sq_col_text(st, 0, ar);
    img->name = sq_col_text(st, 1, ar);
    img->disk_format = sq_col_text(st, 2, ar);
    img->size = sqlite3_column_int64(st, 3);
    img->virtual_size = sqlite3_column_int64(st, 4);
    img->checksum = sq_col_text(st, 5, ar);
    img->hash_value = sq_col_text(st, 6, ar);
    img->path = sq_col_text(st, 7, ar);
    img->kernel = sq_col_text(st, 8, ar);
    img->initrd = sq_col_text(st, 9, ar);
    img->cmdline = sq_col_text(st, 10, ar);
    img->created_at = sq_col_text(st, 11, ar);
    img->updated_at = sq_col_text(st, 12, ar);
}

enum store_rc store_image_add(struct store_conn *w, const struct image *img)
{
    sqlite3_stmt *st = sq_stmt(w, S_IMAGE_ADD);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, img->id);
    sq_bind_text(st, 2, img->name);
    sq_bind_text(st, 3, img->disk_format);
    sqlite3_bind_int64(st, 4, img->size);
    sqlite3_bind_int64(st, 5, img->virtual_size);
    sq_bind_text(st, 6, img->checksum);
    sq_bind_text(st, 7, img->hash_value);
    sq_bind_text(st, 8, img->path);
    sq_bind_text(st, 9, img->kernel);
    sq_bind_text(st, 10, img->initrd);
    sq_bind_text(st, 11, img->cmdline);
    sq_bind_text(st, 12, img->created_at);
    sq_bind_text(st, 13, img->updated_at);
    return sq_exec(w, st);
}

enum store_rc store_image_get(struct store_conn *c, struct arena *ar, const char *id,
                              struct image *out)
{
    return get_row(c, ar, read_image, out, S_IMAGE_GET, KEYS(id));
}

enum store_rc store_image_list(struct store_conn *c, struct arena *ar, struct image **out,
                               int *n)
{
    return all_rows(c, S_IMAGE_LIST, ar, sizeof **out, read_image, (void **)out, n);
}

enum store_rc store_image_users(struct store_conn *c, const char *id, int64_t *servers)
{
    sqlite3_stmt *st = sq_stmt(c, S_IMAGE_USERS);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, id);
    enum store_rc rc = sq_step_row(c, st);
    if (rc == STORE_OK) {
        *servers = sqlite3_column_int64(st, 0);
        sq_done(st);
    }
    return rc;
}

enum store_rc store_image_del(struct store_conn *w, const char *id)
{
    int64_t servers = 0;
    enum store_rc rc = store_image_users(w, id, &servers);
    if (rc != STORE_OK)
        return rc;
    if (servers > 0)
        return STORE_EXISTS;
    return change_row(w, S_IMAGE_DEL, KEYS(id));
}
