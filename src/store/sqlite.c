/* sqlite.c: the store on embedded SQLite (see store.h for the contract).
 *
 * One writer connection owned by the writer thread, one reader connection per
 * calling thread, WAL journal so that readers never wait for the writer.
 * Every statement is prepared once per connection, on first use, and kept.
 */
#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/schema.h"
#include "util/log.h"

/* ---------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------- */

#define SERVER_COLS "id, account_id, user_id, name, vm_state, task_state, power_state, " \
                    "locked, locked_by, image_ref, flavor_ref, availability_zone, key_name, " \
                    "metadata, created_at, updated_at, launched_at"
#define VOLUME_COLS "id, account_id, name, description, size, status, volume_type, " \
                    "availability_zone, snapshot_id, metadata, created_at, updated_at"
#define ATTACH_COLS "id, bdm_uuid, server_id, volume_id, device, tag, delete_on_termination, " \
                    "boot_index, created_at"

enum stmt_id {
    S_BEGIN, S_BEGIN_IMMEDIATE, S_COMMIT, S_ROLLBACK,
    S_SAVEPOINT, S_ROLLBACK_TO, S_RELEASE,
    S_DATA_VERSION, S_AUTH_EPOCH, S_AUTH_EPOCH_BUMP,
    S_ACCOUNT_ADD, S_ACCOUNT_GET,
    S_USER_ADD, S_USER_GET, S_USER_SET_PWHASH, S_USER_DEL, S_USER_COUNT,
    S_SERVER_ADD, S_SERVER_GET, S_SERVER_SEQ, S_SERVER_LIST, S_SERVER_UPDATE, S_SERVER_DEL,
    S_VOLUME_ADD, S_VOLUME_GET, S_VOLUME_LIST, S_VOLUME_LIST_NAME, S_VOLUME_SET_STATUS,
    S_VOLUME_DEL,
    S_ATTACH_ADD, S_ATTACH_GET, S_ATTACH_BY_VOLUME, S_ATTACH_LIST, S_ATTACH_UPDATE,
    S_ATTACH_SWAP, S_ATTACH_DEL,
    N_STMT
};

static const char *const sql_text[N_STMT] = {
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
    [S_USER_ADD] = "INSERT INTO users (name, account_id, role, pwhash, created_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_USER_GET] = "SELECT id, name, account_id, role, pwhash, created_at FROM users "
                   "WHERE name = ?1",
    [S_USER_SET_PWHASH] = "UPDATE users SET pwhash = ?2 WHERE name = ?1",
    [S_USER_DEL] = "DELETE FROM users WHERE name = ?1",
    [S_USER_COUNT] = "SELECT count(*) FROM users",
    [S_SERVER_ADD] = "INSERT INTO servers (" SERVER_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [S_SERVER_GET] = "SELECT " SERVER_COLS " FROM servers WHERE id = ?1 "
                     "AND (?2 IS NULL OR account_id = ?2)",
    [S_SERVER_SEQ] = "SELECT seq FROM servers WHERE id = ?1 AND account_id = ?2",
    [S_SERVER_LIST] = "SELECT " SERVER_COLS " FROM servers WHERE account_id = ?1 AND seq < ?2 "
                      "AND (?4 IS NULL OR instr(name, ?4) > 0) ORDER BY seq DESC LIMIT ?3",
    [S_SERVER_UPDATE] = "UPDATE servers SET name = ?4, vm_state = ?5, task_state = ?6, "
                        "power_state = ?7, locked = ?8, locked_by = ?9, metadata = ?14, "
                        "updated_at = ?16, launched_at = ?17 WHERE id = ?1",
    [S_SERVER_DEL] = "DELETE FROM servers WHERE id = ?1",
    [S_VOLUME_ADD] = "INSERT INTO volumes (" VOLUME_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [S_VOLUME_GET] = "SELECT " VOLUME_COLS " FROM volumes WHERE id = ?1 "
                     "AND (?2 IS NULL OR account_id = ?2)",
    [S_VOLUME_LIST] = "SELECT " VOLUME_COLS " FROM volumes WHERE account_id = ?1 "
                      "ORDER BY seq DESC LIMIT ?3 OFFSET ?2",
    [S_VOLUME_LIST_NAME] = "SELECT " VOLUME_COLS " FROM volumes WHERE account_id = ?1 "
                           "AND name = ?4 ORDER BY seq DESC LIMIT ?3 OFFSET ?2",
    [S_VOLUME_SET_STATUS] = "UPDATE volumes SET status = ?2, updated_at = ?3 WHERE id = ?1",
    [S_VOLUME_DEL] = "DELETE FROM volumes WHERE id = ?1",
    [S_ATTACH_ADD] = "INSERT INTO attachments (" ATTACH_COLS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_ATTACH_GET] = "SELECT " ATTACH_COLS " FROM attachments WHERE server_id = ?1 "
                     "AND volume_id = ?2",
    [S_ATTACH_BY_VOLUME] = "SELECT " ATTACH_COLS " FROM attachments WHERE volume_id = ?1",
    [S_ATTACH_LIST] = "SELECT " ATTACH_COLS " FROM attachments WHERE server_id = ?1 "
                      "ORDER BY seq LIMIT ?3 OFFSET ?2",
    [S_ATTACH_UPDATE] = "UPDATE attachments SET device = ?5, tag = ?6, "
                        "delete_on_termination = ?7 WHERE id = ?1",
    [S_ATTACH_SWAP] = "UPDATE attachments SET volume_id = ?2 WHERE id = ?1",
    [S_ATTACH_DEL] = "DELETE FROM attachments WHERE id = ?1",
};

struct store_conn {
    sqlite3 *db;
    sqlite3_stmt *st[N_STMT];
    int64_t data_version;
    struct store_conn *next;    /* every reader, for store_close */
};

struct write_job {
    store_write_fn fn;
    void *arg;
    int rc;
    bool done;
    struct write_job *next;
};

struct store {
    char *path;
    bool synchronous_full;
    struct store_conn *writer;
    pthread_t writer_thread;
    pthread_mutex_t lock;           /* guards the queue and the reader list */
    pthread_cond_t work, done;
    struct write_job *head, *tail;
    bool stopping;
    pthread_key_t reader_key;
    struct store_conn *readers;
};

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

static sqlite3_stmt *stmt(struct store_conn *c, enum stmt_id id)
{
    if (!c->st[id] &&
        sqlite3_prepare_v3(c->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                           NULL) != SQLITE_OK) {
        log_error("store: cannot prepare \"%s\": %s", sql_text[id], sqlite3_errmsg(c->db));
        return NULL;
    }
    return c->st[id];
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Map a failed step to a store_rc and log what is not a caller's mistake. */
static enum store_rc fail(struct store_conn *c, sqlite3_stmt *st, int rc)
{
    int ext = sqlite3_extended_errcode(c->db);
    done(st);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_EXISTS;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return STORE_BUSY;
    log_error("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(c->db));
    return STORE_ERROR;
}

/* Run a statement that returns no rows. */
static enum store_rc exec_stmt(struct store_conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return fail(c, st, rc);
    done(st);
    return STORE_OK;
}

static enum store_rc exec_id(struct store_conn *c, enum stmt_id id)
{
    sqlite3_stmt *st = stmt(c, id);
    return st ? exec_stmt(c, st) : STORE_ERROR;
}

/* A change that must hit exactly one row: STORE_NOTFOUND when it hit none. */
static enum store_rc exec_one(struct store_conn *c, sqlite3_stmt *st)
{
    enum store_rc rc = exec_stmt(c, st);
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOTFOUND;
    return rc;
}

static void conn_close(struct store_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_STMT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
}

static struct store_conn *conn_open(const char *path, bool writer, bool synchronous_full,
                                    char *err, int errlen)
{
    struct store_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, (size_t)errlen, "cannot open database %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        conn_close(c);
        return NULL;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA foreign_keys = ON; PRAGMA synchronous = %s; %s",
             synchronous_full ? "FULL" : "NORMAL",
             writer ? "PRAGMA journal_mode = WAL;" : "PRAGMA query_only = ON;");
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, (size_t)errlen, "cannot configure database %s: %s", path,
                 msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        conn_close(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------------------
 * The writer thread: group commit
 * ------------------------------------------------------------------------- */

static void run_batch(struct store *s, struct write_job *batch)
{
    struct store_conn *w = s->writer;
    enum store_rc begin = exec_id(w, S_BEGIN_IMMEDIATE);
    if (begin != STORE_OK) {
        for (struct write_job *j = batch; j; j = j->next)
            j->rc = -(int)begin;
        return;
    }
    for (struct write_job *j = batch; j; j = j->next) {
        if (exec_id(w, S_SAVEPOINT) != STORE_OK) {
            j->rc = -STORE_ERROR;
            continue;
        }
        j->rc = j->fn(w, j->arg);
        if (j->rc != 0)
            exec_id(w, S_ROLLBACK_TO);
        exec_id(w, S_RELEASE);
    }
    enum store_rc commit = exec_id(w, S_COMMIT);
    if (commit != STORE_OK) {
        log_error("store: commit failed, %s", sqlite3_errmsg(w->db));
        if (!sqlite3_get_autocommit(w->db))
            exec_id(w, S_ROLLBACK);
        for (struct write_job *j = batch; j; j = j->next)
            if (j->rc == 0)
                j->rc = -(int)commit;
    }
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->head)
            break;
        struct write_job *batch = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->lock);

        run_batch(s, batch);

        pthread_mutex_lock(&s->lock);
        for (struct write_job *j = batch; j; j = j->next)
            j->done = true;
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int store_write(struct store *s, store_write_fn fn, void *arg)
{
    struct write_job job = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return -STORE_ERROR;
    }
    if (s->tail)
        s->tail->next = &job;
    else
        s->head = &job;
    s->tail = &job;
    pthread_cond_signal(&s->work);
    while (!job.done)
        pthread_cond_wait(&s->done, &s->lock);
    pthread_mutex_unlock(&s->lock);
    return job.rc;
}

/* ---------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------- */

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    /* Memory statistics take a global mutex on every allocation. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_migrate(const char *path, int *from, int *to, char *err, int errlen)
{
    pthread_once(&sqlite_once, sqlite_setup);
    struct store_conn *c = conn_open(path, true, true, err, errlen);
    if (!c)
        return -1;
    int rc = schema_migrate(c->db, from, to, err, errlen);
    conn_close(c);
    return rc;
}

struct store *store_open(const struct store_options *opts, char *err, int errlen)
{
    int from, to;
    if (store_migrate(opts->path, &from, &to, err, errlen) < 0)
        return NULL;
    if (from != to)
        log_info("store: migrated %s from schema version %d to %d", opts->path, from, to);

    struct store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(opts->path))) {
        free(s);
        snprintf(err, (size_t)errlen, "out of memory");
        return NULL;
    }
    s->synchronous_full = opts->synchronous_full;
    s->writer = conn_open(s->path, true, s->synchronous_full, err, errlen);
    if (!s->writer) {
        free(s->path);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    pthread_key_create(&s->reader_key, NULL);
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot start the writer thread");
        pthread_key_delete(s->reader_key);
        conn_close(s->writer);
        free(s->path);
        free(s);
        return NULL;
    }
    return s;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer_thread, NULL);
    struct store_conn *r = s->readers;
    while (r) {
        struct store_conn *next = r->next;
        conn_close(r);
        r = next;
    }
    conn_close(s->writer);
    pthread_key_delete(s->reader_key);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    free(s->path);
    free(s);
}

struct store_conn *store_reader(struct store *s)
{
    struct store_conn *c = pthread_getspecific(s->reader_key);
    if (c)
        return c;
    char err[256];
    c = conn_open(s->path, false, s->synchronous_full, err, sizeof err);
    if (!c) {
        log_error("store: %s", err);
        return NULL;
    }
    c->data_version = -1;
    pthread_mutex_lock(&s->lock);
    c->next = s->readers;
    s->readers = c;
    pthread_mutex_unlock(&s->lock);
    pthread_setspecific(s->reader_key, c);
    return c;
}

enum store_rc store_read_begin(struct store_conn *c)
{
    return exec_id(c, S_BEGIN);
}

void store_read_end(struct store_conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        exec_id(c, S_COMMIT);
}

void store_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06d", (int)(ts.tv_nsec / 1000) % 1000000);
}

/* ---------------------------------------------------------------------------
 * Binding and reading columns
 * ------------------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i, struct arena *ar)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const char *s = (const char *)sqlite3_column_text(st, i);
    return arena_strndup(ar, s, (size_t)sqlite3_column_bytes(st, i));
}

/* Step a single-row query: STORE_OK with the row current, or NOTFOUND. The
 * caller reads the columns and then calls done(). */
static enum store_rc step_row(struct store_conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc == SQLITE_DONE) {
        done(st);
        return STORE_NOTFOUND;
    }
    return fail(c, st, rc);
}

/* Collect rows into a growing arena array of records of `size` bytes. */
typedef void (*row_reader)(sqlite3_stmt *st, struct arena *ar, void *out);

static enum store_rc collect(struct store_conn *c, sqlite3_stmt *st, struct arena *ar,
                             size_t size, row_reader read, void **out, int *n)
{
    int cap = 0, count = 0;
    char *items = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char *bigger = arena_alloc(ar, size * (size_t)cap);
            if (items)
                memcpy(bigger, items, size * (size_t)count);
            items = bigger;
        }
        read(st, ar, items + size * (size_t)count);
        count++;
    }
    if (rc != SQLITE_DONE)
        return fail(c, st, rc);
    done(st);
    *out = items;
    *n = count;
    return STORE_OK;
}

/* ---------------------------------------------------------------------------
 * Meta
 * ------------------------------------------------------------------------- */

bool store_changed(struct store_conn *c)
{
    sqlite3_stmt *st = stmt(c, S_DATA_VERSION);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        if (st)
            done(st);
        return true;
    }
    int64_t v = sqlite3_column_int64(st, 0);
    done(st);
    bool changed = v != c->data_version;
    c->data_version = v;
    return changed;
}

enum store_rc store_auth_epoch(struct store_conn *c, int64_t *epoch)
{
    sqlite3_stmt *st = stmt(c, S_AUTH_EPOCH);
    if (!st)
        return STORE_ERROR;
    enum store_rc rc = step_row(c, st);
    if (rc == STORE_OK) {
        *epoch = sqlite3_column_int64(st, 0);
        done(st);
    }
    return rc;
}

enum store_rc store_auth_epoch_bump(struct store_conn *w)
{
    return exec_id(w, S_AUTH_EPOCH_BUMP);
}

/* ---------------------------------------------------------------------------
 * Accounts and users
 * ------------------------------------------------------------------------- */

enum store_rc store_account_add(struct store_conn *w, const struct account *a)
{
    sqlite3_stmt *st = stmt(w, S_ACCOUNT_ADD);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, a->id);
    bind_text(st, 2, a->name);
    bind_text(st, 3, a->created_at);
    return exec_stmt(w, st);
}

enum store_rc store_account_get(struct store_conn *c, struct arena *ar, const char *key,
                                struct account *out)
{
    sqlite3_stmt *st = stmt(c, S_ACCOUNT_GET);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, key);
    enum store_rc rc = step_row(c, st);
    if (rc == STORE_OK) {
        out->id = col_text(st, 0, ar);
        out->name = col_text(st, 1, ar);
        out->created_at = col_text(st, 2, ar);
        done(st);
    }
    return rc;
}

enum store_rc store_user_add(struct store_conn *w, const struct user *u)
{
    sqlite3_stmt *st = stmt(w, S_USER_ADD);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, u->name);
    bind_text(st, 2, u->account_id);
    bind_text(st, 3, u->role == ROLE_ADMIN ? "admin" : "member");
    bind_text(st, 4, u->pwhash);
    bind_text(st, 5, u->created_at);
    return exec_stmt(w, st);
}

enum store_rc store_user_get(struct store_conn *c, struct arena *ar, const char *name,
                             struct user *out)
{
    sqlite3_stmt *st = stmt(c, S_USER_GET);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, name);
    enum store_rc rc = step_row(c, st);
    if (rc == STORE_OK) {
        out->id = sqlite3_column_int64(st, 0);
        out->name = col_text(st, 1, ar);
        out->account_id = col_text(st, 2, ar);
        const char *role = (const char *)sqlite3_column_text(st, 3);
        out->role = role && !strcmp(role, "admin") ? ROLE_ADMIN : ROLE_MEMBER;
        out->pwhash = col_text(st, 4, ar);
        out->created_at = col_text(st, 5, ar);
        done(st);
    }
    return rc;
}

enum store_rc store_user_set_pwhash(struct store_conn *w, const char *name, const char *pwhash)
{
    sqlite3_stmt *st = stmt(w, S_USER_SET_PWHASH);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, name);
    bind_text(st, 2, pwhash);
    return exec_one(w, st);
}

enum store_rc store_user_del(struct store_conn *w, const char *name)
{
    sqlite3_stmt *st = stmt(w, S_USER_DEL);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, name);
    return exec_one(w, st);
}

enum store_rc store_user_count(struct store_conn *c, int64_t *n)
{
    sqlite3_stmt *st = stmt(c, S_USER_COUNT);
    if (!st)
        return STORE_ERROR;
    enum store_rc rc = step_row(c, st);
    if (rc == STORE_OK) {
        *n = sqlite3_column_int64(st, 0);
        done(st);
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * Servers
 * ------------------------------------------------------------------------- */

static void bind_server(sqlite3_stmt *st, const struct server *s)
{
    bind_text(st, 1, s->id);
    bind_text(st, 2, s->account_id);
    bind_text(st, 3, s->user_id);
    bind_text(st, 4, s->name);
    bind_text(st, 5, s->vm_state);
    bind_text(st, 6, s->task_state);
    sqlite3_bind_int(st, 7, s->power_state);
    sqlite3_bind_int(st, 8, s->locked);
    bind_text(st, 9, s->locked_by);
    bind_text(st, 10, s->image_ref);
    bind_text(st, 11, s->flavor_ref);
    bind_text(st, 12, s->availability_zone);
    bind_text(st, 13, s->key_name);
    bind_text(st, 14, s->metadata ? s->metadata : "{}");
    bind_text(st, 15, s->created_at);
    bind_text(st, 16, s->updated_at);
    bind_text(st, 17, s->launched_at);
}

static void read_server(sqlite3_stmt *st, struct arena *ar, void *out)
{
    struct server *s = out;
    s->id = col_text(st, 0, ar);
    s->account_id = col_text(st, 1, ar);
    s->user_id = col_text(st, 2, ar);
    s->name = col_text(st, 3, ar);
    s->vm_state = col_text(st, 4, ar);
    s->task_state = col_text(st, 5, ar);
    s->power_state = sqlite3_column_int(st, 6);
    s->locked = sqlite3_column_int(st, 7) != 0;
    s->locked_by = col_text(st, 8, ar);
    s->image_ref = col_text(st, 9, ar);
    s->flavor_ref = col_text(st, 10, ar);
    s->availability_zone = col_text(st, 11, ar);
    s->key_name = col_text(st, 12, ar);
    s->metadata = col_text(st, 13, ar);
    s->created_at = col_text(st, 14, ar);
    s->updated_at = col_text(st, 15, ar);
    s->launched_at = col_text(st, 16, ar);
}

enum store_rc store_server_add(struct store_conn *w, const struct server *srv)
{
    sqlite3_stmt *st = stmt(w, S_SERVER_ADD);
    if (!st)
        return STORE_ERROR;
    bind_server(st, srv);
    return exec_stmt(w, st);
}

enum store_rc store_server_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct server *out)
{
    sqlite3_stmt *st = stmt(c, S_SERVER_GET);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, id);
    bind_text(st, 2, account);
    enum store_rc rc = step_row(c, st);
    if (rc == STORE_OK) {
        read_server(st, ar, out);
        done(st);
    }
    return rc;
}

enum store_rc store_server_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *marker, const char *name_contains, int limit,
                                struct server **out, int *n)
{
    int64_t before = INT64_MAX;
    if (marker) {
        sqlite3_stmt *st = stmt(c, S_SERVER_SEQ);
        if (!st)
            return STORE_ERROR;
        bind_text(st, 1, marker);
        bind_text(st, 2, account);
        enum store_rc rc = step_row(c, st);
        if (rc != STORE_OK)
            return rc;
        before = sqlite3_column_int64(st, 0);
        done(st);
    }
    sqlite3_stmt *st = stmt(c, S_SERVER_LIST);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, account);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int(st, 3, limit);
    bind_text(st, 4, name_contains);
    return collect(c, st, ar, sizeof **out, read_server, (void **)out, n);
}

enum store_rc store_server_update(struct store_conn *w, const struct server *srv)
{
    sqlite3_stmt *st = stmt(w, S_SERVER_UPDATE);
    if (!st)
        return STORE_ERROR;
    bind_server(st, srv);
    return exec_one(w, st);
}

enum store_rc store_server_del(struct store_conn *w, const char *id)
{
    sqlite3_stmt *st = stmt(w, S_SERVER_DEL);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, id);
    return exec_one(w, st);
}

/* ---------------------------------------------------------------------------
 * Volumes
 * ------------------------------------------------------------------------- */

static void read_volume(sqlite3_stmt *st, struct arena *ar, void *out)
{
    struct volume *v = out;
    v->id = col_text(st, 0, ar);
    v->account_id = col_text(st, 1, ar);
    v->name = col_text(st, 2, ar);
    v->description = col_text(st, 3, ar);
    v->size = sqlite3_column_int64(st, 4);
    v->status = col_text(st, 5, ar);
    v->volume_type = col_text(st, 6, ar);
    v->availability_zone = col_text(st, 7, ar);
    v->snapshot_id = col_text(st, 8, ar);
    v->metadata = col_text(st, 9, ar);
    v->created_at = col_text(st, 10, ar);
    v->updated_at = col_text(st, 11, ar);
}

enum store_rc store_volume_add(struct store_conn *w, const struct volume *v)
{
    sqlite3_stmt *st = stmt(w, S_VOLUME_ADD);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, v->id);
    bind_text(st, 2, v->account_id);
    bind_text(st, 3, v->name);
    bind_text(st, 4, v->description);
    sqlite3_bind_int64(st, 5, v->size);
    bind_text(st, 6, v->status);
    bind_text(st, 7, v->volume_type);
    bind_text(st, 8, v->availability_zone);
    bind_text(st, 9, v->snapshot_id);
    bind_text(st, 10, v->metadata ? v->metadata : "{}");
    bind_text(st, 11, v->created_at);
    bind_text(st, 12, v->updated_at);
    return exec_stmt(w, st);
}

enum store_rc store_volume_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct volume *out)
{
    sqlite3_stmt *st = stmt(c, S_VOLUME_GET);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, id);
    bind_text(st, 2, account);
    enum store_rc rc = step_row(c, st);
    if (rc == STORE_OK) {
        read_volume(st, ar, out);
        done(st);
    }
    return rc;
}

enum store_rc store_volume_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *name, int64_t offset, int limit,
                                struct volume **out, int *n)
{
    /* two statements, so that the name lookup uses its index */
    sqlite3_stmt *st = stmt(c, name ? S_VOLUME_LIST_NAME : S_VOLUME_LIST);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, account);
    if (name)
        bind_text(st, 4, name);
    sqlite3_bind_int64(st, 2, offset);
    sqlite3_bind_int(st, 3, limit);
    return collect(c, st, ar, sizeof **out, read_volume, (void **)out, n);
}

enum store_rc store_volume_set_status(struct store_conn *w, const char *id, const char *status)
{
    sqlite3_stmt *st = stmt(w, S_VOLUME_SET_STATUS);
    if (!st)
        return STORE_ERROR;
    char now[32];
    store_now(now);
    bind_text(st, 1, id);
    bind_text(st, 2, status);
    bind_text(st, 3, now);
    return exec_one(w, st);
}

enum store_rc store_volume_del(struct store_conn *w, const char *id)
{
    sqlite3_stmt *st = stmt(w, S_VOLUME_DEL);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, id);
    return exec_one(w, st);
}

/* ---------------------------------------------------------------------------
 * Attachments
 * ------------------------------------------------------------------------- */

static void bind_attachment(sqlite3_stmt *st, const struct attachment *a)
{
    bind_text(st, 1, a->id);
    bind_text(st, 2, a->bdm_uuid);
    bind_text(st, 3, a->server_id);
    bind_text(st, 4, a->volume_id);
    bind_text(st, 5, a->device);
    bind_text(st, 6, a->tag);
    sqlite3_bind_int(st, 7, a->delete_on_termination);
    sqlite3_bind_int(st, 8, a->boot_index);
    bind_text(st, 9, a->created_at);
}

static void read_attachment(sqlite3_stmt *st, struct arena *ar, void *out)
{
    struct attachment *a = out;
    a->id = col_text(st, 0, ar);
    a->bdm_uuid = col_text(st, 1, ar);
    a->server_id = col_text(st, 2, ar);
    a->volume_id = col_text(st, 3, ar);
    a->device = col_text(st, 4, ar);
    a->tag = col_text(st, 5, ar);
    a->delete_on_termination = sqlite3_column_int(st, 6) != 0;
    a->boot_index = sqlite3_column_int(st, 7);
    a->created_at = col_text(st, 8, ar);
}

enum store_rc store_attachment_add(struct store_conn *w, const struct attachment *at)
{
    sqlite3_stmt *st = stmt(w, S_ATTACH_ADD);
    if (!st)
        return STORE_ERROR;
    bind_attachment(st, at);
    return exec_stmt(w, st);
}

static enum store_rc get_one_attachment(struct store_conn *c, sqlite3_stmt *st, struct arena *ar,
                                        struct attachment *out)
{
    enum store_rc rc = step_row(c, st);
    if (rc == STORE_OK) {
        read_attachment(st, ar, out);
        done(st);
    }
    return rc;
}

enum store_rc store_attachment_get(struct store_conn *c, struct arena *ar, const char *server_id,
                                   const char *volume_id, struct attachment *out)
{
    sqlite3_stmt *st = stmt(c, S_ATTACH_GET);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, server_id);
    bind_text(st, 2, volume_id);
    return get_one_attachment(c, st, ar, out);
}

enum store_rc store_attachment_by_volume(struct store_conn *c, struct arena *ar,
                                         const char *volume_id, struct attachment *out)
{
    sqlite3_stmt *st = stmt(c, S_ATTACH_BY_VOLUME);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, volume_id);
    return get_one_attachment(c, st, ar, out);
}

enum store_rc store_attachment_list(struct store_conn *c, struct arena *ar, const char *server_id,
                                    int64_t offset, int limit, struct attachment **out, int *n)
{
    sqlite3_stmt *st = stmt(c, S_ATTACH_LIST);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, server_id);
    sqlite3_bind_int64(st, 2, offset);
    sqlite3_bind_int(st, 3, limit);
    return collect(c, st, ar, sizeof **out, read_attachment, (void **)out, n);
}

enum store_rc store_attachment_update(struct store_conn *w, const struct attachment *at)
{
    sqlite3_stmt *st = stmt(w, S_ATTACH_UPDATE);
    if (!st)
        return STORE_ERROR;
    bind_attachment(st, at);
    return exec_one(w, st);
}

enum store_rc store_attachment_swap(struct store_conn *w, const char *attachment_id,
                                    const char *new_volume_id)
{
    sqlite3_stmt *st = stmt(w, S_ATTACH_SWAP);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, attachment_id);
    bind_text(st, 2, new_volume_id);
    return exec_one(w, st);
}

enum store_rc store_attachment_del(struct store_conn *w, const char *attachment_id)
{
    sqlite3_stmt *st = stmt(w, S_ATTACH_DEL);
    if (!st)
        return STORE_ERROR;
    bind_text(st, 1, attachment_id);
    return exec_one(w, st);
}
