/* sqlite_admin.c: what operators need of the SQLite store, beside the
 * records the API uses: the health check's write, the online backup, the
 * check of a file before it is restored, and the listing and deleting the
 * CLI does. None of it is on a request's path, so its statements are
 * prepared when used rather than kept (records.c keeps the hot ones).
 *
 * All of it is the SQLite engine's functions of its table (store_int.h;
 * store.c dispatches to them; pg_engine.c has PostgreSQL's).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/sqlite_int.h"
#include "util/log.h"

/* A statement for one use; NULL after logging why not. */
static sqlite3_stmt *prepare(struct sq_conn *c, const char *sql)
{
    sqlite3_stmt *st;
    if (!c)
        return NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(c->db));
        return NULL;
    }
    return st;
}

static enum store_rc step_done(struct sq_conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    enum store_rc out = STORE_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        int ext = sqlite3_extended_errcode(c->db);
        out = ext == SQLITE_CONSTRAINT_FOREIGNKEY ? STORE_EXISTS
              : rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? STORE_BUSY : STORE_ERROR;
        if (out == STORE_ERROR)
            log_error("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(c->db));
    }
    sqlite3_finalize(st);
    return out;
}

/* ---- the health check ---------------------------------------------------------------- */

int sq_probe_write(struct store_conn *base, void *arg)
{
    (void)arg;
    struct sq_conn *w = sq_conn_of(base);
    sqlite3_stmt *st = prepare(w, "INSERT INTO meta (key, value) VALUES ('health_probe', "
                                  "CAST(strftime('%s', 'now') AS INTEGER)) "
                                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (!st)
        return -STORE_ERROR;
    enum store_rc rc = step_done(w, st);
    return rc == STORE_OK ? 0 : -(int)rc;
}

/* ---- accounts and users ----------------------------------------------------------------- */

enum store_rc sq_account_list(struct store_conn *base, struct arena *ar,
                                 struct account **out, int *n)
{
    struct sq_conn *c = sq_conn_of(base);
    sqlite3_stmt *st = prepare(c, "SELECT id, name, created_at FROM accounts ORDER BY name");
    if (!st)
        return STORE_ERROR;
    int cap = 0, count = 0, rc;
    struct account *items = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            struct account *bigger = arena_alloc(ar, sizeof *bigger * (size_t)cap);
            if (items)
                memcpy(bigger, items, sizeof *items * (size_t)count);
            items = bigger;
        }
        items[count++] = (struct account){.id = sq_col_text(st, 0, ar),
                                          .name = sq_col_text(st, 1, ar),
                                          .created_at = sq_col_text(st, 2, ar)};
    }
    enum store_rc out_rc = rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
    if (out_rc != STORE_OK)
        log_error("store: listing accounts: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    *out = items;
    *n = count;
    return out_rc;
}

enum store_rc sq_account_counts(struct store_conn *base, const char *id, int64_t *users,
                                   int64_t *servers, int64_t *volumes)
{
    struct sq_conn *c = sq_conn_of(base);
    sqlite3_stmt *st = prepare(c, "SELECT (SELECT count(*) FROM users WHERE account_id = ?1), "
                                  "(SELECT count(*) FROM servers WHERE account_id = ?1), "
                                  "(SELECT count(*) FROM volumes WHERE account_id = ?1)");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    enum store_rc rc = STORE_ERROR;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *users = sqlite3_column_int64(st, 0);
        *servers = sqlite3_column_int64(st, 1);
        *volumes = sqlite3_column_int64(st, 2);
        rc = STORE_OK;
    } else {
        log_error("store: counting an account's records: %s", sqlite3_errmsg(c->db));
    }
    sqlite3_finalize(st);
    return rc;
}

enum store_rc sq_account_del(struct store_conn *base, const char *id)
{
    struct sq_conn *w = sq_conn_of(base);
    int64_t users, servers, volumes;
    enum store_rc rc = sq_account_counts(base, id, &users, &servers, &volumes);
    if (rc != STORE_OK)
        return rc;
    if (users || servers || volumes)
        return STORE_EXISTS;
    sqlite3_stmt *st = prepare(w, "DELETE FROM quotas WHERE account_id = ?1");
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if ((rc = step_done(w, st)) != STORE_OK)
        return rc;
    if (!(st = prepare(w, "DELETE FROM accounts WHERE id = ?1")))
        return STORE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if ((rc = step_done(w, st)) != STORE_OK)
        return rc;
    return sqlite3_changes(w->db) ? STORE_OK : STORE_NOTFOUND;
}

enum store_rc sq_user_list(struct store_conn *base, struct arena *ar, const char *account,
                              struct user **out, int *n)
{
    struct sq_conn *c = sq_conn_of(base);
    sqlite3_stmt *st = prepare(c, "SELECT id, name, account_id, role, created_at FROM users "
                                  "WHERE ?1 IS NULL OR account_id = ?1 ORDER BY name");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, account);
    int cap = 0, count = 0, rc;
    struct user *items = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            struct user *bigger = arena_alloc(ar, sizeof *bigger * (size_t)cap);
            if (items)
                memcpy(bigger, items, sizeof *items * (size_t)count);
            items = bigger;
        }
        const char *role = (const char *)sqlite3_column_text(st, 3);
        items[count++] = (struct user){.id = sqlite3_column_int64(st, 0),
                                       .name = sq_col_text(st, 1, ar),
                                       .account_id = sq_col_text(st, 2, ar),
                                       .role = role && !strcmp(role, "admin") ? ROLE_ADMIN
                                                                              : ROLE_MEMBER,
                                       .created_at = sq_col_text(st, 4, ar)};
    }
    enum store_rc out_rc = rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
    if (out_rc != STORE_OK)
        log_error("store: listing users: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    *out = items;
    *n = count;
    return out_rc;
}

/* ---- backup and the check before a restore ---------------------------------------------- */

/* fsync a file by name, and the directory that holds it. */
static bool sync_path(const char *path, bool dir_too)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (ok && dir_too) {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", path);
        ok = sync_path(dirname(copy), false);
    }
    return ok;
}

int sq_backup(struct store *s, const char *dest, char *err, int errlen)
{
    struct store_conn *r = store_reader(s);
    const char *path = r ? sqlite3_db_filename(sq_conn_of(r)->db, "main") : NULL;
    if (!path || !*path) {
        snprintf(err, (size_t)errlen, "the store has no database file to back up");
        return -1;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.partial-%ld", dest, (long)getpid());
    /* The copy holds password hashes: readable by its owner only. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, (size_t)errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    close(fd);
    sqlite3 *src = NULL, *dst = NULL;
    int rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(src, 5000);
        /* One step copies every page inside one read transaction of the
         * source: a snapshot holding every change committed before it
         * began, taken without stopping the writer (WAL). */
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (!b) {
            rc = sqlite3_errcode(dst);
        } else {
            for (int tries = 0; tries < 50; tries++) {
                rc = sqlite3_backup_step(b, -1);
                if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
                    break;
                usleep(100000);
            }
            int fin = sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? fin : rc;
        }
    }
    char *msg = NULL;
    /* The copy is one file: rollback journal rather than WAL. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        snprintf(err, (size_t)errlen, "backup of %s failed: %s", path,
                 msg ? msg : dst ? sqlite3_errmsg(dst) : src ? sqlite3_errmsg(src) : "?");
    sqlite3_free(msg);
    sqlite3_close(dst);
    sqlite3_close(src);
    if (rc == SQLITE_OK && sq_check_file(tmp, NULL, err, errlen) < 0)
        rc = SQLITE_CORRUPT;
    if (rc == SQLITE_OK && (!sync_path(tmp, false) || rename(tmp, dest) != 0 ||
                            !sync_path(dest, true))) {
        snprintf(err, (size_t)errlen, "cannot put the backup in place as %s: %s", dest,
                 strerror(errno));
        rc = SQLITE_IOERR;
    }
    if (rc != SQLITE_OK) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int sq_check_file(const char *path, int *version, char *err, int errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, (size_t)errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int v = -1;
    const char *why = NULL;
    char result[256];
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        why = db ? sqlite3_errmsg(db) : "out of memory";
        goto out;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        why = "not an SQLite database";
        goto out;
    }
    snprintf(result, sizeof result, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    q = NULL;
    if (strcmp(result, "ok") != 0) {
        snprintf(err, (size_t)errlen, "%s: it fails SQLite's quick_check: %s", path, result);
        sqlite3_close(db);
        return -1;
    }
    if (sqlite3_prepare_v2(db, "SELECT (SELECT value FROM meta WHERE key = 'auth_epoch'), "
                               "(SELECT user_version FROM pragma_user_version)", -1, &q,
                           NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW || sqlite3_column_type(q, 0) == SQLITE_NULL) {
        why = "not an attachd database";
        goto out;
    }
    v = sqlite3_column_int(q, 1);
    if (v < 1 || v > STORE_SCHEMA_VERSION)
        why = v < 1 ? "not an attachd database"
                    : "made by a newer attachd (its schema version is newer than this one's)";
out:
    if (why)
        snprintf(err, (size_t)errlen, "%s: %s", path, why);
    sqlite3_finalize(q);
    sqlite3_close(db);
    if (version)
        *version = v;
    return why ? -1 : 0;
}
