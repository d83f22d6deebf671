/* test_store.c: the SQLite store against a real database in a temporary
 * directory: migrations, every record's CRUD, the unique keys, paging,
 * store_write's rollback and group commit from several threads, snapshots,
 * and the auth epoch / change detection. */
#include "helpers.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/metrics.h"

struct fx {
    struct tmp_store t;
    struct store *s;
    struct store_conn *r;
    struct arena ar;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->s = tmp_store_open(&f->t);
    f->r = store_reader(f->s);
    assert_non_null(f->r);
    arena_init(&f->ar);
    add_account(f->s, "acct-a", "alpha");
    add_account(f->s, "acct-b", "beta");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tmp_store_close(&f->t);
    arena_release(&f->ar);
    free(f);
    normal_logs();
    return 0;
}

/* ---- generic write jobs ------------------------------------------------------- */

/* Run one store call on the writer and hand back its store_rc (0 = STORE_OK). */
enum op { OP_SERVER_ADD, OP_SERVER_UPDATE, OP_SERVER_DEL, OP_VOLUME_ADD, OP_VOLUME_STATUS,
          OP_VOLUME_DEL, OP_ATTACH_ADD, OP_ATTACH_UPDATE, OP_ATTACH_SWAP, OP_ATTACH_DEL,
          OP_USER_DEL, OP_USER_PWHASH, OP_ACCOUNT_ADD, OP_USER_ADD };

struct op_job {
    enum op op;
    const void *rec;
    const char *a, *b;
};

static int run_op(struct store_conn *w, void *arg)
{
    struct op_job *j = arg;
    switch (j->op) {
    case OP_SERVER_ADD: return (int)store_server_add(w, j->rec);
    case OP_SERVER_UPDATE: return (int)store_server_update(w, j->rec);
    case OP_SERVER_DEL: return (int)store_server_del(w, j->a);
    case OP_VOLUME_ADD: return (int)store_volume_add(w, j->rec);
    case OP_VOLUME_STATUS: return (int)store_volume_set_status(w, j->a, j->b);
    case OP_VOLUME_DEL: return (int)store_volume_del(w, j->a);
    case OP_ATTACH_ADD: return (int)store_attachment_add(w, j->rec);
    case OP_ATTACH_UPDATE: return (int)store_attachment_update(w, j->rec);
    case OP_ATTACH_SWAP: return (int)store_attachment_swap(w, j->a, j->b);
    case OP_ATTACH_DEL: return (int)store_attachment_del(w, j->a);
    case OP_USER_DEL: return (int)store_user_del(w, j->a);
    case OP_USER_PWHASH: return (int)store_user_set_pwhash(w, j->a, j->b);
    case OP_ACCOUNT_ADD: return (int)store_account_add(w, j->rec);
    case OP_USER_ADD: return (int)store_user_add(w, j->rec);
    }
    return -1;
}

static int op(struct store *s, enum op o, const void *rec, const char *a, const char *b)
{
    struct op_job j = {o, rec, a, b};
    return store_write(s, run_op, &j);
}

static struct server server_rec(const char *id, const char *account)
{
    static _Thread_local char now[32];
    store_now(now);
    return (struct server){
        .id = id, .account_id = account, .user_id = "alice", .name = id,
        .vm_state = "active", .power_state = POWER_RUNNING, .image_ref = "img",
        .flavor_ref = "1", .availability_zone = "nova", .metadata = NULL,
        .created_at = now, .updated_at = now, .launched_at = now,
    };
}

static struct volume volume_rec(const char *id, const char *account)
{
    static _Thread_local char now[32];
    store_now(now);
    return (struct volume){
        .id = id, .account_id = account, .name = id, .size = 1, .status = "available",
        .availability_zone = "nova", .created_at = now, .updated_at = now,
    };
}

static struct attachment attachment_rec(const char *id, const char *server, const char *volume,
                                        const char *device)
{
    static _Thread_local char now[32];
    store_now(now);
    return (struct attachment){
        .id = id, .bdm_uuid = "bdm", .server_id = server, .volume_id = volume,
        .device = device, .tag = NULL, .delete_on_termination = false, .boot_index = -1,
        .created_at = now,
    };
}

static void add_server(struct fx *f, const char *id, const char *account)
{
    struct server s = server_rec(id, account);
    assert_int_equal(op(f->s, OP_SERVER_ADD, &s, NULL, NULL), 0);
}

static void add_volume(struct fx *f, const char *id, const char *account)
{
    struct volume v = volume_rec(id, account);
    assert_int_equal(op(f->s, OP_VOLUME_ADD, &v, NULL, NULL), 0);
}

static int user_version(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- migrations ------------------------------------------------------------------ */

/* A fresh directory whose database is migrated to the newest schema. */
static void tmp_migrated(struct tmp_store *t)
{
    tmp_dir_make(t);
    char err[256] = "";
    int from, to;
    assert_int_equal(store_migrate(t->path, &from, &to, err, sizeof err), 0);
}

static void test_migrate_fresh(void **state)
{
    (void)state;
    struct tmp_store t;
    tmp_dir_make(&t);
    char err[256] = "";
    int from = -1, to = -1;
    assert_int_equal(store_migrate(t.path, &from, &to, err, sizeof err), 0);
    assert_int_equal(from, 0);
    assert_int_equal(to, STORE_SCHEMA_VERSION);
    assert_int_equal(user_version(t.path), STORE_SCHEMA_VERSION);
    /* a second run has nothing to do */
    assert_int_equal(store_migrate(t.path, &from, &to, err, sizeof err), 0);
    assert_int_equal(from, STORE_SCHEMA_VERSION);
    assert_int_equal(to, STORE_SCHEMA_VERSION);
    /* and the store opens on it, with the epoch the schema starts with */
    struct store_options o = {.path = t.path};
    t.store = store_open(&o, err, sizeof err);
    assert_non_null(t.store);
    int64_t epoch = 0;
    assert_int_equal(store_auth_epoch(store_reader(t.store), &epoch), STORE_OK);
    assert_int_equal(epoch, 1);
    int64_t n = -1;
    assert_int_equal(store_user_count(store_reader(t.store), &n), STORE_OK);
    assert_int_equal(n, 0);
    tmp_store_close(&t);
}

static void test_migrate_refuses_newer(void **state)
{
    (void)state;
    quiet_logs();
    struct tmp_store t;
    tmp_migrated(&t);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    char err[256] = "";
    int from = -1, to = -1;
    assert_int_not_equal(store_migrate(t.path, &from, &to, err, sizeof err), 0);
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(from, 99);
    assert_int_equal(user_version(t.path), 99);      /* left alone */

    err[0] = '\0';
    struct store_options o = {.path = t.path};
    assert_null(store_open(&o, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
    tmp_dir_remove(&t);
    normal_logs();
}

static void test_open_missing_directory_fails(void **state)
{
    (void)state;
    quiet_logs();
    char err[256] = "";
    struct store_options o = {.path = "/nonexistent-attachd-dir/x/attachd.db"};
    assert_null(store_open(&o, err, sizeof err));
    assert_true(strlen(err) > 0);
    normal_logs();
}

/* ---- accounts and users -------------------------------------------------------------- */

static void test_accounts(void **state)
{
    struct fx *f = *state;
    struct account a;
    assert_int_equal(store_account_get(f->r, &f->ar, "acct-a", &a), STORE_OK);
    assert_string_equal(a.id, "acct-a");
    assert_string_equal(a.name, "alpha");
    assert_int_equal(strlen(a.created_at), 26);
    assert_int_equal(store_account_get(f->r, &f->ar, "beta", &a), STORE_OK);   /* by name */
    assert_string_equal(a.id, "acct-b");
    assert_int_equal(store_account_get(f->r, &f->ar, "gamma", &a), STORE_NOTFOUND);

    char now[32];
    store_now(now);
    struct account dup_id = {.id = "acct-a", .name = "other", .created_at = now};
    struct account dup_name = {.id = "acct-c", .name = "alpha", .created_at = now};
    assert_int_equal(op(f->s, OP_ACCOUNT_ADD, &dup_id, NULL, NULL), STORE_EXISTS);
    assert_int_equal(op(f->s, OP_ACCOUNT_ADD, &dup_name, NULL, NULL), STORE_EXISTS);
    assert_int_equal(store_account_get(f->r, &f->ar, "acct-c", &a), STORE_NOTFOUND);
}

static void test_users(void **state)
{
    struct fx *f = *state;
    quiet_logs();
    char now[32];
    store_now(now);
    struct user u = {.name = "alice", .account_id = "acct-a", .pwhash = "h1",
                     .created_at = now, .role = ROLE_MEMBER};
    struct user r = {.name = "root", .account_id = "acct-b", .pwhash = "h2",
                     .created_at = now, .role = ROLE_ADMIN};
    assert_int_equal(op(f->s, OP_USER_ADD, &u, NULL, NULL), 0);
    assert_int_equal(op(f->s, OP_USER_ADD, &r, NULL, NULL), 0);
    assert_int_equal(op(f->s, OP_USER_ADD, &u, NULL, NULL), STORE_EXISTS);
    struct user bad = u;
    bad.name = "ghost";
    bad.account_id = "no-such-account";             /* foreign key */
    assert_int_equal(op(f->s, OP_USER_ADD, &bad, NULL, NULL), STORE_ERROR);

    int64_t n = 0;
    assert_int_equal(store_user_count(f->r, &n), STORE_OK);
    assert_int_equal(n, 2);

    struct user got;
    assert_int_equal(store_user_get(f->r, &f->ar, "alice", &got), STORE_OK);
    assert_string_equal(got.name, "alice");
    assert_string_equal(got.account_id, "acct-a");
    assert_string_equal(got.pwhash, "h1");
    assert_int_equal(got.role, ROLE_MEMBER);
    assert_true(got.id > 0);
    assert_int_equal(store_user_get(f->r, &f->ar, "root", &got), STORE_OK);
    assert_int_equal(got.role, ROLE_ADMIN);
    assert_int_equal(store_user_get(f->r, &f->ar, "ALICE", &got), STORE_NOTFOUND);
    assert_int_equal(store_user_get(f->r, &f->ar, "ghost", &got), STORE_NOTFOUND);

    assert_int_equal(op(f->s, OP_USER_PWHASH, NULL, "alice", "h3"), 0);
    assert_int_equal(store_user_get(f->r, &f->ar, "alice", &got), STORE_OK);
    assert_string_equal(got.pwhash, "h3");
    assert_int_equal(op(f->s, OP_USER_PWHASH, NULL, "ghost", "h3"), STORE_NOTFOUND);

    assert_int_equal(op(f->s, OP_USER_DEL, NULL, "alice", NULL), 0);
    assert_int_equal(store_user_get(f->r, &f->ar, "alice", &got), STORE_NOTFOUND);
    assert_int_equal(op(f->s, OP_USER_DEL, NULL, "alice", NULL), STORE_NOTFOUND);
    assert_int_equal(store_user_count(f->r, &n), STORE_OK);
    assert_int_equal(n, 1);
}

/* ---- servers ------------------------------------------------------------------------ */

static void test_server_crud(void **state)
{
    struct fx *f = *state;
    struct server s = server_rec("srv-1", "acct-a");
    s.key_name = "key";
    s.metadata = "{\"a\":\"b\"}";
    assert_int_equal(op(f->s, OP_SERVER_ADD, &s, NULL, NULL), 0);
    assert_int_equal(op(f->s, OP_SERVER_ADD, &s, NULL, NULL), STORE_EXISTS);

    struct server got;
    assert_int_equal(store_server_get(f->r, &f->ar, "acct-a", "srv-1", &got), STORE_OK);
    assert_string_equal(got.id, "srv-1");
    assert_string_equal(got.account_id, "acct-a");
    assert_string_equal(got.user_id, "alice");
    assert_string_equal(got.vm_state, "active");
    assert_null(got.task_state);
    assert_int_equal(got.power_state, POWER_RUNNING);
    assert_false(got.locked);
    assert_null(got.locked_by);
    assert_string_equal(got.image_ref, "img");
    assert_string_equal(got.key_name, "key");
    assert_string_equal(got.metadata, "{\"a\":\"b\"}");
    assert_string_equal(got.created_at, s.created_at);
    assert_non_null(got.launched_at);

    /* scoping: another account does not see it, an admin (NULL) does */
    assert_int_equal(store_server_get(f->r, &f->ar, "acct-b", "srv-1", &got), STORE_NOTFOUND);
    assert_int_equal(store_server_get(f->r, &f->ar, NULL, "srv-1", &got), STORE_OK);
    assert_int_equal(store_server_get(f->r, &f->ar, NULL, "srv-2", &got), STORE_NOTFOUND);

    /* update */
    s.vm_state = "stopped";
    s.power_state = POWER_SHUTDOWN;
    s.locked = true;
    s.locked_by = "owner";
    s.task_state = "powering-off";
    s.name = "renamed";
    assert_int_equal(op(f->s, OP_SERVER_UPDATE, &s, NULL, NULL), 0);
    assert_int_equal(store_server_get(f->r, &f->ar, "acct-a", "srv-1", &got), STORE_OK);
    assert_string_equal(got.vm_state, "stopped");
    assert_int_equal(got.power_state, POWER_SHUTDOWN);
    assert_true(got.locked);
    assert_string_equal(got.locked_by, "owner");
    assert_string_equal(got.task_state, "powering-off");
    assert_string_equal(got.name, "renamed");
    struct server ghost = server_rec("srv-ghost", "acct-a");
    assert_int_equal(op(f->s, OP_SERVER_UPDATE, &ghost, NULL, NULL), STORE_NOTFOUND);

    /* delete */
    assert_int_equal(op(f->s, OP_SERVER_DEL, NULL, "srv-1", NULL), 0);
    assert_int_equal(store_server_get(f->r, &f->ar, NULL, "srv-1", &got), STORE_NOTFOUND);
    assert_int_equal(op(f->s, OP_SERVER_DEL, NULL, "srv-1", NULL), STORE_NOTFOUND);
}

static void expect_page(struct fx *f, const char *account, const char *marker, int limit,
                        const char *const *ids, int n_ids)
{
    struct server *list = NULL;
    int n = -1;
    assert_int_equal(store_server_list(f->r, &f->ar, account, marker, NULL, limit, &list, &n), STORE_OK);
    assert_int_equal(n, n_ids);
    for (int i = 0; i < n_ids; i++)
        assert_string_equal(list[i].id, ids[i]);
}

static void test_server_list_paging(void **state)
{
    struct fx *f = *state;
    add_server(f, "s1", "acct-a");
    add_server(f, "b1", "acct-b");
    add_server(f, "s2", "acct-a");
    add_server(f, "s3", "acct-a");
    add_server(f, "b2", "acct-b");
    add_server(f, "s4", "acct-a");
    add_server(f, "s5", "acct-a");

    expect_page(f, "acct-a", NULL, 100, (const char *[]){"s5", "s4", "s3", "s2", "s1"}, 5);
    expect_page(f, "acct-a", NULL, 2, (const char *[]){"s5", "s4"}, 2);
    expect_page(f, "acct-a", "s4", 2, (const char *[]){"s3", "s2"}, 2);
    expect_page(f, "acct-a", "s2", 2, (const char *[]){"s1"}, 1);
    expect_page(f, "acct-a", "s1", 2, NULL, 0);
    expect_page(f, "acct-b", NULL, 10, (const char *[]){"b2", "b1"}, 2);
    expect_page(f, "acct-b", "b2", 10, (const char *[]){"b1"}, 1);
    expect_page(f, "acct-a", NULL, 0, NULL, 0);

    /* a marker that is not in scope is NOTFOUND, as if it did not exist */
    struct server *list;
    int n;
    assert_int_equal(store_server_list(f->r, &f->ar, "acct-a", "b1", NULL, 10, &list, &n),
                     STORE_NOTFOUND);
    assert_int_equal(store_server_list(f->r, &f->ar, "acct-a", "nope", NULL, 10, &list, &n),
                     STORE_NOTFOUND);
    /* a deleted marker is gone too */
    assert_int_equal(op(f->s, OP_SERVER_DEL, NULL, "s3", NULL), 0);
    assert_int_equal(store_server_list(f->r, &f->ar, "acct-a", "s3", NULL, 10, &list, &n),
                     STORE_NOTFOUND);
    expect_page(f, "acct-a", "s4", 10, (const char *[]){"s2", "s1"}, 2);
}

static void test_server_list_large(void **state)
{
    /* more rows than collect()'s first allocation, so the array grows */
    struct fx *f = *state;
    char id[16];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "srv-%02d", i);
        struct server s = server_rec(id, "acct-a");
        assert_int_equal(op(f->s, OP_SERVER_ADD, &s, NULL, NULL), 0);
    }
    struct server *list;
    int n;
    assert_int_equal(store_server_list(f->r, &f->ar, "acct-a", NULL, NULL, 1000, &list, &n), STORE_OK);
    assert_int_equal(n, 40);
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "srv-%02d", 39 - i);
        assert_string_equal(list[i].id, id);
    }
}

/* ---- volumes ---------------------------------------------------------------------- */

static void test_volume_crud(void **state)
{
    struct fx *f = *state;
    quiet_logs();
    struct volume v = volume_rec("vol-1", "acct-a");
    v.description = "d";
    v.size = 10;
    v.metadata = "{\"k\":\"v\"}";
    assert_int_equal(op(f->s, OP_VOLUME_ADD, &v, NULL, NULL), 0);
    assert_int_equal(op(f->s, OP_VOLUME_ADD, &v, NULL, NULL), STORE_EXISTS);
    struct volume zero = volume_rec("vol-0", "acct-a");
    zero.size = 0;                                   /* CHECK (size >= 1) */
    assert_int_equal(op(f->s, OP_VOLUME_ADD, &zero, NULL, NULL), STORE_ERROR);

    struct volume got;
    assert_int_equal(store_volume_get(f->r, &f->ar, "acct-a", "vol-1", &got), STORE_OK);
    assert_string_equal(got.name, "vol-1");
    assert_string_equal(got.description, "d");
    assert_int_equal(got.size, 10);
    assert_string_equal(got.status, "available");
    assert_null(got.volume_type);
    assert_null(got.snapshot_id);
    assert_string_equal(got.metadata, "{\"k\":\"v\"}");
    assert_int_equal(store_volume_get(f->r, &f->ar, "acct-b", "vol-1", &got), STORE_NOTFOUND);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol-1", &got), STORE_OK);

    struct volume noname = volume_rec("vol-2", "acct-a");
    noname.name = NULL;
    noname.metadata = NULL;
    assert_int_equal(op(f->s, OP_VOLUME_ADD, &noname, NULL, NULL), 0);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol-2", &got), STORE_OK);
    assert_null(got.name);
    assert_string_equal(got.metadata, "{}");

    assert_int_equal(op(f->s, OP_VOLUME_STATUS, NULL, "vol-1", "in-use"), 0);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol-1", &got), STORE_OK);
    assert_string_equal(got.status, "in-use");
    assert_int_equal(op(f->s, OP_VOLUME_STATUS, NULL, "vol-x", "in-use"), STORE_NOTFOUND);

    assert_int_equal(op(f->s, OP_VOLUME_DEL, NULL, "vol-1", NULL), 0);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol-1", &got), STORE_NOTFOUND);
    assert_int_equal(op(f->s, OP_VOLUME_DEL, NULL, "vol-1", NULL), STORE_NOTFOUND);
}

static void test_volume_list_paging(void **state)
{
    struct fx *f = *state;
    add_volume(f, "v1", "acct-a");
    add_volume(f, "w1", "acct-b");
    add_volume(f, "v2", "acct-a");
    add_volume(f, "v3", "acct-a");
    struct volume *list;
    int n;
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-a", NULL, 0, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].id, "v3");
    assert_string_equal(list[1].id, "v2");
    assert_string_equal(list[2].id, "v1");
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-a", NULL, 1, 1, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "v2");
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-a", NULL, 3, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-b", NULL, 0, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "w1");
}

/* ---- attachments --------------------------------------------------------------------- */

static void test_attachment_crud(void **state)
{
    struct fx *f = *state;
    add_server(f, "srv", "acct-a");
    add_volume(f, "v1", "acct-a");
    add_volume(f, "v2", "acct-a");
    add_volume(f, "v3", "acct-a");

    struct attachment a1 = attachment_rec("att-1", "srv", "v1", "/dev/vdb");
    a1.tag = "t1";
    a1.delete_on_termination = true;
    struct attachment a2 = attachment_rec("att-2", "srv", "v2", "/dev/vdc");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &a1, NULL, NULL), 0);
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &a2, NULL, NULL), 0);

    struct attachment got;
    assert_int_equal(store_attachment_get(f->r, &f->ar, "srv", "v1", &got), STORE_OK);
    assert_string_equal(got.id, "att-1");
    assert_string_equal(got.bdm_uuid, "bdm");
    assert_string_equal(got.device, "/dev/vdb");
    assert_string_equal(got.tag, "t1");
    assert_true(got.delete_on_termination);
    assert_int_equal(got.boot_index, -1);
    assert_int_equal(store_attachment_get(f->r, &f->ar, "srv", "v3", &got), STORE_NOTFOUND);
    assert_int_equal(store_attachment_get(f->r, &f->ar, "other", "v1", &got), STORE_NOTFOUND);
    assert_int_equal(store_attachment_by_volume(f->r, &f->ar, "v2", &got), STORE_OK);
    assert_string_equal(got.id, "att-2");
    assert_null(got.tag);
    assert_false(got.delete_on_termination);
    assert_int_equal(store_attachment_by_volume(f->r, &f->ar, "v3", &got), STORE_NOTFOUND);

    /* the three parts in one lookup: each found or not, within an account */
    struct server ps;
    struct volume pv;
    enum store_rc prc;
    unsigned found = store_attachment_parts(f->r, &f->ar, NULL, "srv", "v1", &ps, &pv, &got, &prc);
    assert_int_equal(prc, STORE_OK);
    assert_int_equal(found, FOUND_SERVER | FOUND_VOLUME | FOUND_ATTACHMENT);
    assert_string_equal(ps.id, "srv");
    assert_string_equal(ps.account_id, "acct-a");
    assert_string_equal(pv.id, "v1");
    assert_int_equal(pv.size, 1);
    assert_string_equal(got.id, "att-1");
    assert_string_equal(got.tag, "t1");
    assert_true(got.delete_on_termination);
    found = store_attachment_parts(f->r, &f->ar, "acct-a", "srv", "v3", &ps, &pv, &got, &prc);
    assert_int_equal(found, FOUND_SERVER | FOUND_VOLUME);
    found = store_attachment_parts(f->r, &f->ar, NULL, "nosuch", "v1", &ps, &pv, &got, &prc);
    assert_int_equal(found, FOUND_VOLUME);
    found = store_attachment_parts(f->r, &f->ar, NULL, "srv", "nosuch", &ps, &pv, &got, &prc);
    assert_int_equal(found, FOUND_SERVER);
    found = store_attachment_parts(f->r, &f->ar, "acct-b", "srv", "v1", &ps, &pv, &got, &prc);
    assert_int_equal(prc, STORE_OK);
    assert_int_equal(found, FOUND_ATTACHMENT);  /* another account's server and volume: neither */

    struct attachment *list;
    int n;
    assert_int_equal(store_attachment_list(f->r, &f->ar, "srv", 0, -1, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "att-1");               /* attach order */
    assert_string_equal(list[1].id, "att-2");
    assert_int_equal(store_attachment_list(f->r, &f->ar, "srv", 1, -1, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "att-2");
    assert_int_equal(store_attachment_list(f->r, &f->ar, "srv", 0, 1, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "att-1");
    assert_int_equal(store_attachment_list(f->r, &f->ar, "nobody", 0, -1, &list, &n), STORE_OK);
    assert_int_equal(n, 0);

    /* update: device, tag, delete_on_termination */
    a1.delete_on_termination = false;
    a1.tag = NULL;
    assert_int_equal(op(f->s, OP_ATTACH_UPDATE, &a1, NULL, NULL), 0);
    assert_int_equal(store_attachment_get(f->r, &f->ar, "srv", "v1", &got), STORE_OK);
    assert_false(got.delete_on_termination);
    assert_null(got.tag);
    struct attachment ghost = attachment_rec("att-x", "srv", "v3", "/dev/vdz");
    assert_int_equal(op(f->s, OP_ATTACH_UPDATE, &ghost, NULL, NULL), STORE_NOTFOUND);

    /* swap: the attachment moves to v3 and keeps its id and device */
    assert_int_equal(op(f->s, OP_ATTACH_SWAP, NULL, "att-1", "v3"), 0);
    assert_int_equal(store_attachment_by_volume(f->r, &f->ar, "v1", &got), STORE_NOTFOUND);
    assert_int_equal(store_attachment_by_volume(f->r, &f->ar, "v3", &got), STORE_OK);
    assert_string_equal(got.id, "att-1");
    assert_string_equal(got.device, "/dev/vdb");
    /* swapping onto a volume that is attached breaks the unique key */
    assert_int_equal(op(f->s, OP_ATTACH_SWAP, NULL, "att-1", "v2"), STORE_EXISTS);
    assert_int_equal(op(f->s, OP_ATTACH_SWAP, NULL, "att-x", "v1"), STORE_NOTFOUND);

    assert_int_equal(op(f->s, OP_ATTACH_DEL, NULL, "att-1", NULL), 0);
    assert_int_equal(store_attachment_by_volume(f->r, &f->ar, "v3", &got), STORE_NOTFOUND);
    assert_int_equal(op(f->s, OP_ATTACH_DEL, NULL, "att-1", NULL), STORE_NOTFOUND);
}

static void test_attachment_unique_per_volume(void **state)
{
    struct fx *f = *state;
    add_server(f, "srv-1", "acct-a");
    add_server(f, "srv-2", "acct-a");
    add_volume(f, "vol", "acct-a");
    add_volume(f, "vol-2", "acct-a");
    struct attachment a = attachment_rec("att-1", "srv-1", "vol", "/dev/vdb");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &a, NULL, NULL), 0);
    /* the same volume again, to the same server or another, under any id */
    struct attachment again = attachment_rec("att-2", "srv-1", "vol", "/dev/vdc");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &again, NULL, NULL), STORE_EXISTS);
    struct attachment elsewhere = attachment_rec("att-3", "srv-2", "vol", "/dev/vdb");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &elsewhere, NULL, NULL), STORE_EXISTS);
    /* and no device twice on one server */
    struct attachment same_dev = attachment_rec("att-4", "srv-1", "vol-2", "/dev/vdb");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &same_dev, NULL, NULL), STORE_EXISTS);
    /* nor an attachment id twice */
    struct attachment same_id = attachment_rec("att-1", "srv-2", "vol-2", "/dev/vdb");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &same_id, NULL, NULL), STORE_EXISTS);

    struct attachment *list;
    int n;
    assert_int_equal(store_attachment_list(f->r, &f->ar, "srv-1", 0, -1, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_attachment_list(f->r, &f->ar, "srv-2", 0, -1, &list, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void test_foreign_keys(void **state)
{
    struct fx *f = *state;
    quiet_logs();
    add_server(f, "srv", "acct-a");
    add_volume(f, "vol", "acct-a");
    struct attachment a = attachment_rec("att-1", "ghost-server", "vol", "/dev/vdb");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &a, NULL, NULL), STORE_ERROR);
    a = attachment_rec("att-1", "srv", "ghost-volume", "/dev/vdb");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &a, NULL, NULL), STORE_ERROR);
    struct server s = server_rec("srv-x", "no-account");
    assert_int_equal(op(f->s, OP_SERVER_ADD, &s, NULL, NULL), STORE_ERROR);
    /* an attached volume or server cannot disappear under its attachment */
    a = attachment_rec("att-1", "srv", "vol", "/dev/vdb");
    assert_int_equal(op(f->s, OP_ATTACH_ADD, &a, NULL, NULL), 0);
    assert_int_equal(op(f->s, OP_VOLUME_DEL, NULL, "vol", NULL), STORE_ERROR);
    assert_int_equal(op(f->s, OP_SERVER_DEL, NULL, "srv", NULL), STORE_ERROR);
    struct volume v;
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol", &v), STORE_OK);
}

/* ---- store_write: rollback, group commit ------------------------------------------------ */

struct add_then_fail {
    const char *id;
    int rc;
};

static int job_add_volume_then_return(struct store_conn *w, void *arg)
{
    struct add_then_fail *j = arg;
    struct volume v = volume_rec(j->id, "acct-a");
    enum store_rc rc = store_volume_add(w, &v);
    if (rc != STORE_OK)
        return 100 + (int)rc;
    return j->rc;
}

static void test_write_rollback(void **state)
{
    struct fx *f = *state;
    struct add_then_fail j = {"vol-rolled-back", 7};
    assert_int_equal(store_write(f->s, job_add_volume_then_return, &j), 7);
    struct volume v;
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol-rolled-back", &v), STORE_NOTFOUND);
    /* a later write is not disturbed by the rolled-back one */
    j = (struct add_then_fail){"vol-kept", 0};
    assert_int_equal(store_write(f->s, job_add_volume_then_return, &j), 0);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol-kept", &v), STORE_OK);
    /* and the rolled-back id is free to use */
    j = (struct add_then_fail){"vol-rolled-back", 0};
    assert_int_equal(store_write(f->s, job_add_volume_then_return, &j), 0);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "vol-rolled-back", &v), STORE_OK);
}

static int job_two_changes_then_fail(struct store_conn *w, void *arg)
{
    (void)arg;
    struct volume v1 = volume_rec("pair-1", "acct-a"), v2 = volume_rec("pair-2", "acct-a");
    if (store_volume_add(w, &v1) != STORE_OK || store_volume_add(w, &v2) != STORE_OK)
        return 50;
    if (store_auth_epoch_bump(w) != STORE_OK)
        return 51;
    return 3;
}

static void test_write_rollback_undoes_everything(void **state)
{
    struct fx *f = *state;
    int64_t before, after;
    assert_int_equal(store_auth_epoch(f->r, &before), STORE_OK);
    assert_int_equal(store_write(f->s, job_two_changes_then_fail, NULL), 3);
    struct volume v;
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "pair-1", &v), STORE_NOTFOUND);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "pair-2", &v), STORE_NOTFOUND);
    assert_int_equal(store_auth_epoch(f->r, &after), STORE_OK);
    assert_int_equal(after, before);
}

enum { THREADS = 8, PER_THREAD = 40 };

struct worker {
    struct store *s;
    int index;
    int ok, refused, other;
};

/* Every third job of each thread fails after its insert: its insert must be
 * undone while its batch neighbours commit. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char id[32];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(id, sizeof id, "t%d-%d", w->index, i);
        struct add_then_fail j = {id, i % 3 == 2 ? 9 : 0};
        int rc = store_write(w->s, job_add_volume_then_return, &j);
        if (rc == 0)
            w->ok++;
        else if (rc == 9)
            w->refused++;
        else
            w->other++;
    }
    /* a reader of this thread's own sees every committed write */
    struct store_conn *r = store_reader(w->s);
    struct arena ar;
    arena_init(&ar);
    for (int i = 0; r && i < PER_THREAD; i++) {
        snprintf(id, sizeof id, "t%d-%d", w->index, i);
        struct volume v;
        enum store_rc rc = store_volume_get(r, &ar, NULL, id, &v);
        if ((i % 3 == 2) != (rc == STORE_NOTFOUND))
            w->other++;
    }
    arena_release(&ar);
    return NULL;
}

static void test_group_commit_many_threads(void **state)
{
    struct fx *f = *state;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.s = f->s, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    int ok = 0, refused = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].other, 0);
        ok += w[i].ok;
        refused += w[i].refused;
    }
    int want_refused = THREADS * (PER_THREAD / 3);
    assert_int_equal(refused, want_refused);
    assert_int_equal(ok, THREADS * PER_THREAD - want_refused);

    struct volume *list;
    int n;
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-a", NULL, 0, 100000, &list, &n), STORE_OK);
    assert_int_equal(n, ok);
    for (int i = 0; i < n; i++) {
        int t, k;
        assert_int_equal(sscanf(list[i].id, "t%d-%d", &t, &k), 2);
        assert_int_not_equal(k % 3, 2);
    }
}

/* ---- snapshots, change detection, auth epoch --------------------------------------------- */

/* ---- exact group commit ----------------------------------------------------------
 * Jobs are made to share one transaction by holding the writer in a first
 * job until they are all queued. "SQLite rolled the whole transaction back"
 * is provoked the way it happens: the transaction simply ends under a job
 * (here by a ROLLBACK on the writer's own handle). */

#include "store/sqlite_int.h"

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
};

static int job_wait_at_gate(struct store_conn *w, void *arg)
{
    (void)w;
    struct gate *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* A gate that also says when the writer reached it. */
struct held_gate {
    struct gate g;
    bool reached;
};

static int job_hold(struct store_conn *w, void *arg)
{
    struct held_gate *h = arg;
    pthread_mutex_lock(&h->g.lock);
    h->reached = true;
    pthread_cond_broadcast(&h->g.cond);
    pthread_mutex_unlock(&h->g.lock);
    return job_wait_at_gate(w, &h->g);
}

/* A job that run_together queues: the first member of each test's job. */
struct tj {
    struct store_job job;
    bool lazy;                  /* queue it lazy (store.h) */
    atomic_bool answered;
};

static void tj_done(struct store_job *job)
{
    atomic_store(&((struct tj *)job)->answered, true);
}

/* How run_together queues its jobs. */
enum {
    /* only once the writer is inside the holding job: they then cannot join
     * its transaction, and share one of their own */
    TOGETHER_WAIT_HELD = 1,
    /* no last job waited for after them (it could join their transaction):
     * wait for each one's answer instead */
    TOGETHER_NO_LAST = 2,
};

/* Queue n jobs behind a held writer, so that they share one transaction;
 * release it; wait for every answer. The jobs are elements of `size` bytes
 * from `jobs`, each beginning with its struct tj, run by fn with the
 * element as argument. */
static void run_together(struct store *s, void *jobs, size_t size, int n, store_write_fn fn,
                         unsigned how)
{
    struct held_gate h = {.g.open = false};
    struct gate *g = &h.g;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    struct tj hold = {.job = {.fn = job_hold, .arg = &h, .done = tj_done}};
    store_submit(s, &hold.job);
    if (how & TOGETHER_WAIT_HELD) {
        pthread_mutex_lock(&g->lock);
        while (!h.reached)
            pthread_cond_wait(&g->cond, &g->lock);
        pthread_mutex_unlock(&g->lock);
    }
    for (int i = 0; i < n; i++) {
        struct tj *t = (struct tj *)((char *)jobs + (size_t)i * size);
        t->job = (struct store_job){.fn = fn, .arg = t, .done = tj_done, .lazy = t->lazy};
        atomic_store(&t->answered, false);
        store_submit(s, &t->job);
    }
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    /* a last job, waited for, comes after all of them */
    if (!(how & TOGETHER_NO_LAST))
        assert_int_equal(store_write(s, job_wait_at_gate, g), 0);
    for (int i = 0; i < n; i++) {
        struct tj *t = (struct tj *)((char *)jobs + (size_t)i * size);
        if (how & TOGETHER_NO_LAST) {
            while (!atomic_load(&t->answered))
                usleep(1000);
        } else {
            assert_true(atomic_load(&t->answered));
        }
    }
    /* and the holding job, whose memory is this function's */
    while (!atomic_load(&hold.answered))
        usleep(1000);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

struct gj {
    struct tj tj;
    const char *account;        /* to add */
    int undo_on;                /* end the transaction on these attempts: 1, 2 ... (bits) */
    int runs;
};

static int job_add_and_maybe_undo(struct store_conn *w, void *arg)
{
    struct gj *j = arg;
    j->runs++;
    char now[32];
    store_now(now);
    struct account a = {.id = j->account, .name = j->account, .created_at = now};
    enum store_rc rc = store_account_add(w, &a);
    if (j->undo_on & (1 << (j->runs - 1)))
        sqlite3_exec(sq_conn_of(w)->db, "ROLLBACK", NULL, NULL, NULL);
    return rc == STORE_OK ? 0 : (int)rc;
}

static bool account_exists(struct fx *f, const char *id)
{
    struct account a;
    return store_account_get(f->r, &f->ar, id, &a) == STORE_OK;
}

/* The transaction ends under the second job: every job that ran in it runs
 * again in a new one and is answered with its true outcome; none is told
 * "failed" for a change that is committed. */
static void test_group_commit_transaction_undone_under_a_job(void **state)
{
    struct fx *f = *state;
    quiet_logs();
    struct gj jobs[3] = {{.account = "g-one"}, {.account = "g-two", .undo_on = 1},
                         {.account = "g-three"}};
    run_together(f->s, jobs, sizeof *jobs, 3, job_add_and_maybe_undo, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobs[i].tj.job.rc, 0);
        assert_true(account_exists(f, jobs[i].account));
    }
    assert_int_equal(jobs[0].runs, 2);     /* undone with the second, so again */
    assert_int_equal(jobs[1].runs, 2);
    assert_int_equal(jobs[2].runs, 1);     /* had not run yet */
}

/* A job under which the transaction always ends is answered as not
 * committed, after a bounded number of attempts; its neighbours commit. */
static void test_group_commit_job_that_always_undoes(void **state)
{
    struct fx *f = *state;
    quiet_logs();
    struct gj jobs[3] = {{.account = "h-one"}, {.account = "h-two", .undo_on = ~0},
                         {.account = "h-three"}};
    run_together(f->s, jobs, sizeof *jobs, 3, job_add_and_maybe_undo, 0);
    assert_int_equal(jobs[0].tj.job.rc, 0);
    assert_int_equal(jobs[1].tj.job.rc, -STORE_ERROR);
    assert_int_equal(jobs[2].tj.job.rc, 0);
    assert_true(account_exists(f, "h-one"));
    assert_false(account_exists(f, "h-two"));
    assert_true(account_exists(f, "h-three"));
    assert_true(jobs[1].runs >= 2 && jobs[1].runs <= 5);
}

/* A refused job next to an undone transaction is asked again: its refusal
 * may have rested on a neighbour's change that is gone. */
static void test_group_commit_refusal_asked_again(void **state)
{
    struct fx *f = *state;
    quiet_logs();
    struct gj jobs[3] = {{.account = "dup"}, {.account = "dup"},
                         {.account = "k-three", .undo_on = 1}};
    run_together(f->s, jobs, sizeof *jobs, 3, job_add_and_maybe_undo, 0);
    assert_int_equal(jobs[0].tj.job.rc, 0);
    assert_int_equal(jobs[1].tj.job.rc, STORE_EXISTS);    /* refused: the first has it */
    assert_int_equal(jobs[1].runs, 2);
    assert_int_equal(jobs[2].tj.job.rc, 0);
    assert_true(account_exists(f, "dup") && account_exists(f, "k-three"));
}

/* A job that adds its account, then refuses when told to (after the add,
 * or before it). */
struct rj {
    struct tj tj;
    const char *account;
    enum { RJ_KEEP, RJ_REFUSE_BEFORE, RJ_REFUSE_AFTER } how;
    int runs;
};

static int job_add_then_refuse(struct store_conn *w, void *arg)
{
    struct rj *j = arg;
    j->runs++;
    if (j->how == RJ_REFUSE_BEFORE)
        return 7;
    char now[32];
    store_now(now);
    struct account a = {.id = j->account, .name = j->account, .created_at = now};
    if (store_account_add(w, &a) != STORE_OK)
        return 1;
    return j->how == RJ_REFUSE_AFTER ? 8 : 0;
}

/* Jobs run without a savepoint until one refuses after it changed rows:
 * its rows must not be committed with its neighbours', so the transaction
 * runs again, every job in a savepoint (once: a second such refusal among
 * them costs nothing more); a refusal before any change needs none. Every
 * answer is the job's own. */
static void test_group_commit_refusal_after_changes_is_undone_alone(void **state)
{
    struct fx *f = *state;
    struct rj jobs[5] = {{.account = "r-one"},
                         {.account = "r-two", .how = RJ_REFUSE_BEFORE},
                         {.account = "r-three", .how = RJ_REFUSE_AFTER},
                         {.account = "r-four"},
                         {.account = "r-five", .how = RJ_REFUSE_AFTER}};
    run_together(f->s, jobs, sizeof *jobs, 5, job_add_then_refuse, TOGETHER_WAIT_HELD);
    int want_rc[5] = {0, 7, 8, 0, 8};
    /* the first run ends at r-three; the second runs all five, guarded */
    int want_runs[5] = {2, 2, 2, 1, 1};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(jobs[i].tj.job.rc, want_rc[i]);
        assert_int_equal(jobs[i].runs, want_runs[i]);
        assert_int_equal(account_exists(f, jobs[i].account), want_rc[i] == 0);
    }
}

/* ---- lazy jobs ----------------------------------------------------------------------
 * A transaction of lazy jobs alone commits at synchronous NORMAL (no fsync
 * in WAL mode); one with any other job at the store's FULL; and the writer
 * is at FULL again after it. Each job reads the level it runs under. */

struct lz {
    struct tj tj;
    const char *account;
    int level;                  /* PRAGMA synchronous inside the job: 1 NORMAL, 2 FULL */
};

static int job_note_level(struct store_conn *w, void *arg)
{
    struct lz *j = arg;
    sqlite3_stmt *st;
    j->level = -1;
    if (sqlite3_prepare_v2(sq_conn_of(w)->db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            j->level = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    char now[32];
    store_now(now);
    struct account a = {.id = j->account, .name = j->account, .created_at = now};
    return store_account_add(w, &a) == STORE_OK ? 0 : 1;
}

static void test_lazy_jobs_alone_commit_unflushed(void **state)
{
    (void)state;
    struct tmp_store t;
    char err[256] = "";
    tmp_dir_make(&t);
    struct store_options o = {.path = t.path, .synchronous_full = true};
    t.store = store_open(&o, err, sizeof err);
    assert_non_null(t.store);
    struct store_conn *r = store_reader(t.store);
    struct arena ar;
    arena_init(&ar);
    struct account a;

    /* each group in a transaction of its own, after the holding job's
     * (which is not lazy); no last job could join theirs */
    unsigned how = TOGETHER_WAIT_HELD | TOGETHER_NO_LAST;
    struct lz both_lazy[2] = {{.tj.lazy = true, .account = "lz-1"},
                              {.tj.lazy = true, .account = "lz-2"}};
    run_together(t.store, both_lazy, sizeof *both_lazy, 2, job_note_level, how);
    struct lz mixed[2] = {{.tj.lazy = true, .account = "lz-3"}, {.account = "lz-4"}};
    run_together(t.store, mixed, sizeof *mixed, 2, job_note_level, how);
    struct lz after[1] = {{.account = "lz-5"}};
    run_together(t.store, after, sizeof *after, 1, job_note_level, how);

    assert_int_equal(both_lazy[0].level, 1);
    assert_int_equal(both_lazy[1].level, 1);
    assert_int_equal(mixed[0].level, 2);    /* one job that is not lazy: all flushed */
    assert_int_equal(mixed[1].level, 2);
    assert_int_equal(after[0].level, 2);    /* FULL again after a lazy transaction */
    const char *ids[] = {"lz-1", "lz-2", "lz-3", "lz-4", "lz-5"};
    for (int i = 0; i < 5; i++) {
        store_conn_reset(r);
        assert_int_equal(store_account_get(r, &ar, ids[i], &a), STORE_OK);
    }
    arena_release(&ar);
    tmp_store_close(&t);
}

/* ---- the WAL as written (sqlite_vfs.c) --------------------------------------------- */

/* Rows of about a page each: a commit of them writes BIG_ROWS WAL frames
 * or more; one of FEW_ROWS stays within what is gathered before a write
 * (GATHER_MAX, 124 KiB). */
enum { BIG_ROWS = 150, FEW_ROWS = 20, BIG_TEXT = 3000 };

struct big_job {
    const char *prefix;
    int rows;
};

static int job_add_big_volumes(struct store_conn *w, void *arg)
{
    const struct big_job *j = arg;
    char text[BIG_TEXT + 1];
    memset(text, 'd', BIG_TEXT);
    text[BIG_TEXT] = '\0';
    for (int i = 0; i < j->rows; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%d", j->prefix, i);
        struct volume v = volume_rec(id, "big");
        v.description = text;
        if (store_volume_add(w, &v) != STORE_OK)
            return 1;
    }
    return 0;
}

/* A store in a new directory at synchronous FULL or NORMAL, with the
 * account the big volumes belong to. */
static void open_at_level(struct tmp_store *t, bool full)
{
    char err[256];
    normal_logs();
    tmp_dir_make(t);
    struct store_options o = {.path = t->path, .synchronous_full = full};
    t->store = store_open(&o, err, sizeof err);
    assert_non_null(t->store);
    add_account(t->store, "big", "big");
}

/* Commit `rows` big volumes named after `prefix`; the job's answer. */
static int add_big_volumes(struct store *s, const char *prefix, int rows)
{
    struct big_job j = {prefix, rows};
    return store_write(s, job_add_big_volumes, &j);
}

/* Every big volume of `prefix` is there whole, read by another connection
 * than the writer's: its pages are read from the WAL file. */
static void expect_big_volumes(struct store *s, const char *prefix, int rows)
{
    struct store_conn *r = store_reader(s);
    assert_non_null(r);
    store_conn_reset(r);
    struct arena ar;
    arena_init(&ar);
    for (int i = 0; i < rows; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        struct volume v;
        assert_int_equal(store_volume_get(r, &ar, NULL, id, &v), STORE_OK);
        assert_int_equal(strlen(v.description), BIG_TEXT);
    }
    arena_release(&ar);
}

/* Write calls this process has made so far (/proc/self/io's syscw). */
static long writes_so_far(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    assert_non_null(f);
    char line[128];
    long n = -1;
    while (n < 0 && fgets(line, sizeof line, f))
        if (!strncmp(line, "syscw: ", 7))
            n = strtol(line + 7, NULL, 10);
    fclose(f);
    assert_true(n >= 0);
    return n;
}

/* At FULL, a commit's frames reach the WAL file in a few writes (each of
 * up to 124 KiB), not two per frame; and another connection reads them
 * all as soon as the commit returns. */
static void test_full_commit_writes_its_wal_at_once(void **state)
{
    (void)state;
    struct tmp_store t;
    open_at_level(&t, true);
    long before = writes_so_far();
    assert_int_equal(add_big_volumes(t.store, "full", BIG_ROWS), 0);
    long writes = writes_so_far() - before;
    print_message("a commit of %d rows of a page each: %ld write calls\n", BIG_ROWS, writes);
    assert_true(writes > 0);
    assert_true(writes * 10 < BIG_ROWS);    /* one by one: two per frame */
    expect_big_volumes(t.store, "full", BIG_ROWS);
    tmp_store_close(&t);
}

/* Below FULL nothing syncs the WAL at a commit, so nothing may wait to be
 * written: another connection reads the frames as soon as the commit
 * returns. (Gathered as at FULL, the last of them would still be in the
 * writer's memory, and the reader's reads of them would fail.) */
static void test_normal_commit_is_in_the_wal_when_it_returns(void **state)
{
    (void)state;
    struct tmp_store t;
    open_at_level(&t, false);
    assert_int_equal(add_big_volumes(t.store, "normal", BIG_ROWS), 0);
    expect_big_volumes(t.store, "normal", BIG_ROWS);
    tmp_store_close(&t);
}

/* One statement on a raw connection; the text of its first column, if any. */
static void sql(sqlite3 *db, const char *q, char *out, size_t size)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (out)
            snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(st);
}

/* A reader that maps the database file (as the store's readers do) keeps
 * its mapping across commits while the file keeps its length, and still
 * reads what was committed: here a row rewritten in place in the file by a
 * checkpoint. Once a checkpoint has grown the file, the mapping is made
 * again, and the new rows are read. */
static void test_reader_keeps_its_mapping_while_the_file_keeps_its_length(void **state)
{
    (void)state;
    struct tmp_store t;
    tmp_store_open(&t);         /* a database of the store's, which registered the VFS */
    store_close(t.store);
    sqlite3 *w, *r;
    int rw = SQLITE_OPEN_READWRITE;
    assert_int_equal(sqlite3_open_v2(t.path, &w, rw, SQ_VFS), SQLITE_OK);
    assert_int_equal(sqlite3_open_v2(t.path, &r, rw, SQ_VFS), SQLITE_OK);
    sql(w, "PRAGMA journal_mode = WAL", NULL, 0);
    sql(r, "PRAGMA mmap_size = 1073741824", NULL, 0);
    sql(w, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)", NULL, 0);
    sql(w, "INSERT INTO kv VALUES (1, 'one')", NULL, 0);
    sql(w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0);
    char v[64] = "";
    sql(r, "SELECT v FROM kv WHERE k = 1", v, sizeof v);
    assert_string_equal(v, "one");
    long dropped = sq_vfs_maps_dropped();

    sql(w, "UPDATE kv SET v = 'two' WHERE k = 1", NULL, 0);
    sql(w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0);     /* the page, in place */
    sql(r, "SELECT v FROM kv WHERE k = 1", v, sizeof v);
    assert_string_equal(v, "two");
    assert_int_equal(sq_vfs_maps_dropped(), dropped);      /* the same mapping */

    sql(w, "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 401) "
           "INSERT INTO kv SELECT i, printf('%.500c', 'x') FROM n", NULL, 0);
    sql(w, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0);     /* a longer file */
    sql(r, "SELECT count(*) || ' ' || max(length(v)) FROM kv", v, sizeof v);
    assert_string_equal(v, "401 500");
    assert_int_equal(sq_vfs_maps_dropped(), dropped + 1);
    sql(r, "SELECT v FROM kv WHERE k = 1", v, sizeof v);
    assert_string_equal(v, "two");
    sqlite3_close(r);
    sqlite3_close(w);
    tmp_dir_remove(&t);
}

/* A write job (store_write_fn) that reads its connection's PRAGMA
 * cache_size into *arg. */
static int read_cache_size(struct store_conn *w, void *arg)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(sq_conn_of(w)->db, "PRAGMA cache_size", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *(int *)arg = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* The writer keeps a page cache of WRITER_CACHE_KIB (sqlite.c says why);
 * the readers, which map the file, SQLite's default. */
static void test_writer_has_the_larger_page_cache(void **state)
{
    (void)state;
    struct tmp_store t;
    tmp_store_open(&t);
    int writer = 0;
    assert_int_equal(store_write(t.store, read_cache_size, &writer), 0);
    assert_int_equal(writer, -8192);
    struct store_conn *r = store_reader(t.store);
    int reader = 0;
    assert_int_equal(read_cache_size(r, &reader), 0);
    assert_int_equal(reader, -2000);
    tmp_store_close(&t);
}

/* Copy a database and its WAL as they are on disk now, as a crash would
 * leave them, to `to` (and `to`-wal). */
static void copy_as_crashed(const char *from, const char *to)
{
    char cmd[4 * PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s-wal' '%s-wal'", from, to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* At FULL, the WAL file is made longer ahead of small commits, with zeros,
 * a MiB at a time; SQLite's recovery finds every committed frame in it all
 * the same.
 * Another connection that writes the WAL without doing so (here SQLite's
 * own VFS, as another program would) leaves frames past the file's end as
 * this connection last knew it: they are not written over. */
static void test_wal_made_longer_ahead_recovers_whole(void **state)
{
    (void)state;
    struct tmp_store t;
    tmp_store_open(&t);         /* a database of the store's, which registered the VFS */
    store_close(t.store);
    char wal[PATH_MAX], copy[PATH_MAX];
    snprintf(wal, sizeof wal, "%s-wal", t.path);
    snprintf(copy, sizeof copy, "%s/copy.db", t.dir);
    sqlite3 *a, *b;
    assert_int_equal(sqlite3_open_v2(t.path, &a, SQLITE_OPEN_READWRITE, SQ_VFS), SQLITE_OK);
    assert_int_equal(sqlite3_open_v2(t.path, &b, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    sql(a, "PRAGMA journal_mode = WAL", NULL, 0);
    sql(a, "PRAGMA synchronous = FULL", NULL, 0);
    sql(a, "PRAGMA wal_autocheckpoint = 0", NULL, 0);
    sql(b, "PRAGMA wal_autocheckpoint = 0", NULL, 0);
    sql(a, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)", NULL, 0);
    sql(a, "INSERT INTO kv VALUES (1, 'a')", NULL, 0);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_size, 1 << 20);      /* two frames' worth, and zeros */
    /* the other connection writes 2 MiB and more of frames, past that end */
    sql(b, "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 601) "
           "INSERT INTO kv SELECT i, printf('%.4000c', 'b') FROM n", NULL, 0);
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size > 2 << 20 && st.st_size % (1 << 20) != 0);
    sql(a, "INSERT INTO kv VALUES (1000, 'a again')", NULL, 0);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_size % (1 << 20), 0);
    copy_as_crashed(t.path, copy);
    sqlite3_close(b);
    sqlite3_close(a);

    sqlite3 *c;
    assert_int_equal(sqlite3_open_v2(copy, &c, SQLITE_OPEN_READWRITE, SQ_VFS), SQLITE_OK);
    char v[64] = "";
    sql(c, "SELECT count(*) || ' ' || sum(length(v) = 4000) FROM kv", v, sizeof v);
    assert_string_equal(v, "602 600");
    sql(c, "SELECT v FROM kv WHERE k = 1000", v, sizeof v);
    assert_string_equal(v, "a again");
    sql(c, "PRAGMA integrity_check", v, sizeof v);
    assert_string_equal(v, "ok");
    sqlite3_close(c);
    unlink(copy);
    snprintf(copy, sizeof copy, "%s/copy.db-wal", t.dir);
    unlink(copy);
    snprintf(copy, sizeof copy, "%s/copy.db-shm", t.dir);
    unlink(copy);
    tmp_dir_remove(&t);
}

/* The gathered frames are written at the sync that ends the commit: a
 * write that fails there (here the file size limit, EFBIG; the commit is
 * small enough to be gathered whole) fails the commit, which then keeps
 * nothing; the writes after it go on, and all is there after a reopen. */
static void test_failed_wal_write_fails_the_commit(void **state)
{
    (void)state;
    struct tmp_store t;
    open_at_level(&t, true);
    char wal[PATH_MAX];
    snprintf(wal, sizeof wal, "%s-wal", t.path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    /* the frames end here; the file, made longer ahead, further */
    off_t end = 32 + (off_t)atomic_load(&sq_store_of(t.store)->wal_pages) * (24 + 4096);
    assert_true(st.st_size >= end + 8192 && st.st_size % (1 << 20) == 0);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit small = {(rlim_t)end + 8192, old.rlim_max};   /* no write at or past it */
    quiet_logs();
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = add_big_volumes(t.store, "lost", FEW_ROWS);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_true(rc < 0);
    struct store_conn *r = store_reader(t.store);
    struct arena ar;
    arena_init(&ar);
    struct volume v;
    store_conn_reset(r);
    assert_int_equal(store_volume_get(r, &ar, NULL, "lost-0", &v), STORE_NOTFOUND);
    assert_int_equal(add_big_volumes(t.store, "after", BIG_ROWS), 0);
    expect_big_volumes(t.store, "after", BIG_ROWS);
    store_close(t.store);

    char err[256];
    struct store_options o = {.path = t.path, .synchronous_full = true};
    t.store = store_open(&o, err, sizeof err);
    assert_non_null(t.store);
    expect_big_volumes(t.store, "after", BIG_ROWS);
    r = store_reader(t.store);
    assert_int_equal(store_volume_get(r, &ar, NULL, "lost-0", &v), STORE_NOTFOUND);
    arena_release(&ar);
    tmp_store_close(&t);
    normal_logs();
}

/* ---- the database file under the store ------------------------------------------ */

static void test_deleted_database_refuses_writes(void **state)
{
    struct fx *f = *state;
    quiet_logs();
    char moved[200];
    snprintf(moved, sizeof moved, "%s.moved", f->t.path);
    assert_int_equal(rename(f->t.path, moved), 0);
    struct account a = {.id = "after", .name = "after", .created_at = "2026-01-01T00:00:00"};
    assert_int_equal(store_write(f->s, job_add_account, &a), -STORE_UNAVAILABLE);
    /* and for good, even once a file is back at the path */
    assert_int_equal(rename(moved, f->t.path), 0);
    assert_int_equal(store_write(f->s, job_add_account, &a), -STORE_UNAVAILABLE);
    /* reads go on */
    assert_true(account_exists(f, "acct-a"));
    assert_false(account_exists(f, "after"));
}

static void test_open_refuses_unwritable_database(void **state)
{
    (void)state;
    struct tmp_store t;
    char err[256] = "";
    quiet_logs();
    tmp_store_open(&t);
    store_close(t.store);
    /* a read-only file: refused at open, with a reason (root writes any
     * file whatever its mode, so the test needs a user that cannot) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(t.path, 0444), 0);
        struct store_options o = {.path = t.path};
        struct store *s = store_open(&o, err, sizeof err);
        assert_null(s);
        assert_non_null(strstr(err, t.path));
    }
    tmp_dir_remove(&t);
}

static void test_read_snapshot(void **state)
{
    struct fx *f = *state;
    add_volume(f, "before", "acct-a");
    struct volume v;
    assert_int_equal(store_read_begin(f->r), STORE_OK);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "before", &v), STORE_OK);
    add_volume(f, "during", "acct-a");                      /* committed by the writer */
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "during", &v), STORE_NOTFOUND);
    struct volume *list;
    int n;
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-a", NULL, 0, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_read_end(f->r);
    assert_int_equal(store_volume_get(f->r, &f->ar, NULL, "during", &v), STORE_OK);
    store_read_end(f->r);                                   /* harmless outside a read */
}

static void test_reader_per_thread(void **state)
{
    struct fx *f = *state;
    assert_ptr_equal(store_reader(f->s), f->r);
    assert_ptr_equal(store_reader(f->s), f->r);
}

static void *other_reader(void *arg)
{
    return store_reader(arg);
}

static void test_reader_other_thread(void **state)
{
    struct fx *f = *state;
    pthread_t th;
    void *conn = NULL;
    assert_int_equal(pthread_create(&th, NULL, other_reader, f->s), 0);
    pthread_join(th, &conn);
    assert_non_null(conn);
    assert_ptr_not_equal(conn, f->r);
}

/* Waits (5 s at most) until the watcher has taken the events of this
 * process's writes so far: none pending on its inotify descriptor, and the
 * auth generation still for 20 ms. Those events move the generation too
 * (the watcher cannot tell whose write it saw), later the busier the
 * machine. */
static void watcher_settles(struct store *st)
{
    struct sq_store *s = sq_store_of(st);
    for (int i = 0; i < 250; i++) {
        uint64_t g = store_auth_generation(st);
        usleep(20000);
        struct pollfd p = {s->watch_fd, POLLIN, 0};
        if (poll(&p, 1, 0) == 0 && store_auth_generation(st) == g)
            return;
    }
    fail_msg("the watcher never settled");
}

/* The auth generation moves with every committed bump of the epoch, by
 * this store or by another process (here a connection of the test's own,
 * as the CLI would write), and not with reads or a bump rolled back. */
static void test_auth_generation(void **state)
{
    struct fx *f = *state;
    int64_t epoch = 0;
    watcher_settles(f->s);          /* after the fixture's writes */
    uint64_t g = store_auth_generation(f->s);
    assert_int_equal(store_auth_epoch(f->r, &epoch), STORE_OK);
    assert_int_equal(epoch, 1);
    assert_int_equal(store_auth_generation(f->s), g);       /* reads do not move it */

    assert_int_equal(store_write(f->s, job_bump_epoch, NULL), 0);
    assert_true(store_auth_generation(f->s) != g);
    assert_int_equal(store_auth_epoch(f->r, &epoch), STORE_OK);
    assert_int_equal(epoch, 2);

    /* a bump in a job that is refused is rolled back: the epoch stays */
    assert_int_equal(store_write(f->s, job_bump_epoch_then_fail, NULL), 9);
    assert_int_equal(store_auth_epoch(f->r, &epoch), STORE_OK);
    assert_int_equal(epoch, 2);

    /* another process's bump: seen through the directory watch */
    watcher_settles(f->s);
    g = store_auth_generation(f->s);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->t.path, &other), SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    assert_int_equal(sqlite3_exec(other, "UPDATE meta SET value = value + 1 "
                                         "WHERE key = 'auth_epoch'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(other);
    for (int i = 0; i < 200 && store_auth_generation(f->s) == g; i++)
        usleep(10000);
    assert_true(store_auth_generation(f->s) != g);
    assert_int_equal(store_auth_epoch(f->r, &epoch), STORE_OK);
    assert_int_equal(epoch, 3);
}

/* ---- a commit seen before it is visible ------------------------------------------------
 * "slow-sync": SQLite's default VFS, except that the sync of a WAL file
 * sleeps SLOW_SYNC_MS first. A commit's frames are then in the file, and
 * the watcher has seen them written, that long before any snapshot can
 * see the commit. */

#define SLOW_SYNC_MS 300

struct slow_file {
    sqlite3_file base;
    bool wal;
    /* the default VFS's file follows */
};

static sqlite3_file *real_file(sqlite3_file *f)
{
    return (sqlite3_file *)((struct slow_file *)f + 1);
}

#define REAL(f) real_file(f)->pMethods
static int slow_close(sqlite3_file *f) { return REAL(f)->xClose(real_file(f)); }
static int slow_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{ return REAL(f)->xRead(real_file(f), b, n, o); }
static int slow_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{ return REAL(f)->xWrite(real_file(f), b, n, o); }
static int slow_truncate(sqlite3_file *f, sqlite3_int64 n)
{ return REAL(f)->xTruncate(real_file(f), n); }
static int slow_sync(sqlite3_file *f, int flags)
{
    if (((struct slow_file *)f)->wal)
        usleep(SLOW_SYNC_MS * 1000);
    return REAL(f)->xSync(real_file(f), flags);
}
static int slow_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->xFileSize(real_file(f), n); }
static int slow_lock(sqlite3_file *f, int l) { return REAL(f)->xLock(real_file(f), l); }
static int slow_unlock(sqlite3_file *f, int l) { return REAL(f)->xUnlock(real_file(f), l); }
static int slow_reserved(sqlite3_file *f, int *r)
{ return REAL(f)->xCheckReservedLock(real_file(f), r); }
static int slow_fcntl(sqlite3_file *f, int op, void *a)
{ return REAL(f)->xFileControl(real_file(f), op, a); }
static int slow_sector(sqlite3_file *f) { return REAL(f)->xSectorSize(real_file(f)); }
static int slow_device(sqlite3_file *f) { return REAL(f)->xDeviceCharacteristics(real_file(f)); }
static int slow_shm_map(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{ return REAL(f)->xShmMap(real_file(f), i, sz, ext, p); }
static int slow_shm_lock(sqlite3_file *f, int o, int n, int fl)
{ return REAL(f)->xShmLock(real_file(f), o, n, fl); }
static void slow_shm_barrier(sqlite3_file *f) { REAL(f)->xShmBarrier(real_file(f)); }
static int slow_shm_unmap(sqlite3_file *f, int d) { return REAL(f)->xShmUnmap(real_file(f), d); }
#undef REAL

static const sqlite3_io_methods slow_methods = {
    2, slow_close, slow_read, slow_write, slow_truncate, slow_sync, slow_size, slow_lock,
    slow_unlock, slow_reserved, slow_fcntl, slow_sector, slow_device, slow_shm_map,
    slow_shm_lock, slow_shm_barrier, slow_shm_unmap, NULL, NULL,
};

static int slow_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                     int *out)
{
    sqlite3_vfs *real = vfs->pAppData;
    int rc = real->xOpen(real, name, real_file(f), flags, out);
    f->pMethods = rc == SQLITE_OK ? &slow_methods : NULL;
    ((struct slow_file *)f)->wal = (flags & SQLITE_OPEN_WAL) != 0;
    return rc;
}

static void register_slow_sync(void)
{
    static sqlite3_vfs vfs;
    if (vfs.zName)
        return;
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    vfs = *real;
    vfs.szOsFile = (int)sizeof(struct slow_file) + real->szOsFile;
    vfs.zName = "slow-sync";
    vfs.pAppData = real;
    vfs.xOpen = slow_open;
    assert_int_equal(sqlite3_vfs_register(&vfs, 0), SQLITE_OK);
}

static void *bump_slowly(void *arg)
{
    sqlite3 *other = arg;
    int rc = sqlite3_exec(other, "UPDATE meta SET value = value + 1 WHERE key = 'auth_epoch'",
                          NULL, NULL, NULL);
    return rc == SQLITE_OK ? other : NULL;
}

/* Another process's commit that the watcher sees written before it is
 * visible (its sync takes SLOW_SYNC_MS): a snapshot begun in between reads
 * the old epoch; once the commit is visible the count moves again, so that
 * the new epoch is read (an old password is not accepted on and on). */
static void test_change_seen_before_it_is_visible(void **state)
{
    struct fx *f = *state;
    register_slow_sync();
    int64_t before, epoch;
    assert_int_equal(store_auth_epoch(f->r, &before), STORE_OK);
    watcher_settles(f->s);
    uint64_t g = store_auth_generation(f->s);
    sqlite3 *other;
    assert_int_equal(sqlite3_open_v2(f->t.path, &other, SQLITE_OPEN_READWRITE, "slow-sync"),
                     SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    assert_int_equal(sqlite3_exec(other, "PRAGMA synchronous = FULL", NULL, NULL, NULL),
                     SQLITE_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bump_slowly, other), 0);
    for (int i = 0; i < 200 && store_auth_generation(f->s) == g; i++)
        usleep(1000);
    assert_true(store_auth_generation(f->s) != g);  /* its frames are written */
    usleep(SLOW_SYNC_MS * 1000 / 3);                /* every one of them seen */
    g = store_auth_generation(f->s);
    assert_int_equal(store_read_begin(f->r), STORE_OK);
    assert_int_equal(store_auth_epoch(f->r, &epoch), STORE_OK);
    store_read_end(f->r);
    assert_int_equal(epoch, before);                /* not visible yet */
    void *ok;
    pthread_join(th, &ok);
    assert_non_null(ok);                            /* committed, and visible */
    for (int i = 0; i < 500 && store_auth_generation(f->s) == g; i++)
        usleep(1000);
    assert_true(store_auth_generation(f->s) != g);
    assert_int_equal(store_read_begin(f->r), STORE_OK);
    assert_int_equal(store_auth_epoch(f->r, &epoch), STORE_OK);
    store_read_end(f->r);
    assert_int_equal(epoch, before + 1);
    sqlite3_close(other);
}

/* A snapshot is kept between reads while nothing changes, and begun anew as
 * soon as anything commits: through this store, or through another process
 * (here a connection of the test's own, as the CLI would write). */
static void test_kept_snapshot_sees_every_change(void **state)
{
    struct fx *f = *state;
    struct account a;
    double began = sq_monotonic();
    assert_int_equal(store_read_begin(f->r), STORE_OK);
    assert_int_equal(store_account_get(f->r, &f->ar, "late", &a), STORE_NOTFOUND);
    store_read_end(f->r);
    /* another process writes */
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->t.path, &other), SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    assert_int_equal(sqlite3_exec(other, "INSERT INTO accounts VALUES ('late', 'late', 'x')",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* The watcher tells within moments; looked for until well before the
     * kept snapshot's age would end it anyway (SNAPSHOT_MAX_AGE), so that
     * only the watcher can pass this, however slow the machine. */
    bool seen = false;
    while (!seen && sq_monotonic() - began < 0.8 * SNAPSHOT_MAX_AGE) {
        assert_int_equal(store_read_begin(f->r), STORE_OK);
        seen = store_account_get(f->r, &f->ar, "late", &a) == STORE_OK;
        store_read_end(f->r);
        if (!seen)
            usleep(1000);
    }
    assert_true(seen);
    /* and this store's own writes at once */
    add_account(f->s, "later", "later");
    assert_int_equal(store_read_begin(f->r), STORE_OK);
    assert_int_equal(store_account_get(f->r, &f->ar, "later", &a), STORE_OK);
    store_read_end(f->r);
}

/* A snapshot left idle is ended, so that checkpoints can go on: after a
 * while a checkpoint completes whole although the reader kept one. */
static void test_idle_snapshot_does_not_pin_the_wal(void **state)
{
    struct fx *f = *state;
    struct account a;
    assert_int_equal(store_read_begin(f->r), STORE_OK);
    assert_int_equal(store_account_get(f->r, &f->ar, "acct-a", &a), STORE_OK);
    store_read_end(f->r);                  /* kept, and now idle */
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "w%d", i);
        add_account(f->s, id, id);
    }
    usleep(1200 * 1000);                   /* more than twice the reaper's period */
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->t.path, &other), SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    int log = -1, done = -2;
    assert_int_equal(sqlite3_wal_checkpoint_v2(other, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                               &done), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(log, done);           /* every frame checkpointed */
}

/* A store in a new directory whose checkpoints come every `pages` pages. */
static void open_checkpointing(struct tmp_store *t, int pages)
{
    char err[256];
    tmp_dir_make(t);
    struct store_options o = {.path = t->path, .checkpoint_pages = pages};
    t->store = store_open(&o, err, sizeof err);
    assert_non_null(t->store);
}

/* Checkpoints are made by the checkpointer thread, not inside commits (the
 * writer's WAL hook replaces SQLite's auto-checkpoint), and the writer
 * finishes them when it must: under a writer that never pauses, the WAL
 * stays within 16 times the checkpoint length (plus a batch) instead of
 * growing with the commits. */
static void test_wal_stays_bounded(void **state)
{
    (void)state;
    struct tmp_store t;
    open_checkpointing(&t, 50);
    char wal[PATH_MAX];
    snprintf(wal, sizeof wal, "%s-wal", t.path);
    off_t largest = 0;
    for (int i = 0; i < 3000; i++) {
        char id[32];
        snprintf(id, sizeof id, "bounded-%d", i);
        add_account(t.store, id, id);
        struct stat st;
        if (stat(wal, &st) == 0 && st.st_size > largest)
            largest = st.st_size;
    }
    tmp_store_close(&t);
    /* 3000 commits of a few pages each: about 40 MB of WAL unchecked;
     * 16 x 50 pages is 3.2 MB */
    print_message("largest WAL: %lld bytes\n", (long long)largest);
    assert_true(largest > 0);
    assert_true(largest < (16 * 50 + 100) * 4096 + 32);
}

/* The value of attachd_store_checkpoints_total (metrics are process-wide). */
static long checkpoints_so_far(void)
{
    size_t len;
    char *text = metrics_render(&len);
    assert_non_null(text);
    const char *line = strstr(text, "\nattachd_store_checkpoints_total ");
    long n = line ? strtol(line + strlen("\nattachd_store_checkpoints_total "), NULL, 10) : 0;
    free(text);
    return n;
}

/* A checkpoint pass comes each time the WAL has grown by the checkpoint
 * length since the last one, not after every commit past it: 600 serial
 * commits of some pages each (about 7) make some 85 passes (at most 130:
 * four per 4 C, two more before each writer's turn), where a pass after
 * nearly every commit made over 400. */
static void test_checkpoints_follow_the_wal_growth(void **state)
{
    (void)state;
    struct tmp_store t;
    open_checkpointing(&t, 50);
    long before = checkpoints_so_far();
    enum { COMMITS = 600 };
    for (int i = 0; i < COMMITS; i++) {
        char id[32];
        snprintf(id, sizeof id, "growth-%d", i);
        add_account(t.store, id, id);
        usleep(200);    /* lets a pass that was wanted run before the next commit */
    }
    tmp_store_close(&t);
    long passes = checkpoints_so_far() - before;
    print_message("%ld checkpoint passes for %d commits\n", passes, COMMITS);
    assert_true(passes > 0);
    assert_true(passes * 4 < COMMITS);
}

/* Waits (5 s at most) for a checkpointer's pass that copied the WAL whole,
 * at least min_log frames, with no commit since; its length. */
static int wait_whole_pass(struct sq_store *s, int min_log)
{
    for (int ms = 0;; ms++) {
        pthread_mutex_lock(&s->ckpt_lock);
        int log = s->ckpt_log, copied = s->ckpt_copied;
        pthread_mutex_unlock(&s->ckpt_lock);
        if (log >= min_log && copied == log && atomic_load(&s->wal_pages) == log)
            return log;
        assert_true(ms < 5000);
        usleep(1000);
    }
}

/* Commits accounts named "<prefix>-<i>" until the WAL of t (checkpoints
 * every 50 pages) holds 50 pages: the last commit asks for a pass. One
 * transaction per account (add_bare_account; add_account makes two), so
 * that none follows that commit: a transaction under way beside the pass
 * holds the frames its snapshot began at, which the pass leaves (50 of 51,
 * on a loaded machine), or it starts the WAL over if the pass copied the
 * whole WAL. */
static void fill_wal(struct tmp_store *t, const char *prefix)
{
    struct sq_store *s = sq_store_of(t->store);
    for (int i = 0; atomic_load(&s->wal_pages) < 50; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        add_bare_account(t->store, id, id);
    }
}

/* fill_wal, then waits (5 s at most) for the checkpointer's pass that this
 * asks for: the frames it saw, and copied. */
static void first_pass(struct tmp_store *t, const char *prefix, int *log, int *copied)
{
    struct sq_store *s = sq_store_of(t->store);
    long before = checkpoints_so_far();
    fill_wal(t, prefix);
    for (int ms = 0; checkpoints_so_far() == before; ms++) {
        assert_true(ms < 5000);
        usleep(1000);
    }
    pthread_mutex_lock(&s->ckpt_lock);
    *log = s->ckpt_log;
    *copied = s->ckpt_copied;
    pthread_mutex_unlock(&s->ckpt_lock);
}

/* The WAL starting over is noticed whatever its new length: commits until
 * the WAL passes C pages, then nothing until a pass copied the whole WAL,
 * then one commit, which writes from the WAL's start again. The length at
 * that pass is then no longer counted from (it was, until the WAL passed C
 * pages again). */
static void test_checkpoint_counts_from_a_restarted_wal(void **state)
{
    (void)state;
    struct tmp_store t;
    open_checkpointing(&t, 50);
    struct sq_store *s = sq_store_of(t.store);
    fill_wal(&t, "restart");
    int at_pass = wait_whole_pass(s, 50);
    add_account(t.store, "restart-after", "restart-after");
    int pages = atomic_load(&s->wal_pages);
    pthread_mutex_lock(&s->ckpt_lock);
    int counted_from = s->ckpt_log;
    pthread_mutex_unlock(&s->ckpt_lock);
    print_message("pass at %d pages; after one more commit the WAL has %d, counted from %d\n",
                  at_pass, pages, counted_from);
    assert_true(pages < at_pass);   /* it did start over */
    assert_int_equal(counted_from, 0);
    tmp_store_close(&t);
}

/* A pass that leaves frames (a snapshot still needed them) is made again
 * once no commit comes for a moment: a store gone idle does not keep its
 * last commits in the WAL, and its next commit starts the WAL over. Here a
 * reader's snapshot from before the commits holds them all at the first
 * pass; then it ends, and no commit comes. */
static void test_pass_that_left_frames_is_made_again_when_idle(void **state)
{
    (void)state;
    struct tmp_store t;
    open_checkpointing(&t, 50);
    struct sq_store *s = sq_store_of(t.store);
    struct store_conn *r = store_reader(t.store);
    int64_t epoch;
    assert_int_equal(store_read_begin(r), STORE_OK);
    assert_int_equal(store_auth_epoch(r, &epoch), STORE_OK);
    int log, copied;
    first_pass(&t, "left", &log, &copied);
    print_message("first pass: %d of %d frames copied\n", copied, log);
    assert_true(log >= 50);
    assert_true(copied < log);
    store_read_end(r);
    int whole = wait_whole_pass(s, log);    /* the pass made once idle */
    add_account(t.store, "left-after", "left-after");
    assert_true(atomic_load(&s->wal_pages) < whole);
    tmp_store_close(&t);
}

/* The checkpointer passes again before the writer's turn only where that
 * shortens the writer's stop: the turn is due (4 C), C/4 frames or more came
 * during the pass, no snapshot kept frames from it (another pass could not
 * copy those either), and the WAL is not near 16 C (where the writer would
 * wait for the pass). C = 1000 here. */
static void test_checkpointer_passes_again_only_where_it_helps(void **state)
{
    (void)state;
    static const struct {
        int pages, log, copied;
        bool again;
    } cases[] = {
        {4250, 4000, 4000, true},       /* 250 committed during the pass */
        {11999, 4000, 4000, true},
        {4249, 4000, 4000, false},      /* fewer than C/4: the writer copies them */
        {3999, 2500, 2500, false},      /* the turn is not due: a pass comes at +C */
        {12000, 4000, 4000, false},     /* near 16 C */
        {6000, 5000, 3000, false},      /* a snapshot kept frames from the pass */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("pages %d, log %d, copied %d\n", cases[i].pages, cases[i].log,
                      cases[i].copied);
        assert_int_equal(sq_pass_again(1000, cases[i].pages, cases[i].log, cases[i].copied),
                         cases[i].again);
    }
}

/* A snapshot kept by a reader that then went idle, and that a commit has
 * made stale, is ended before the next checkpoint pass rather than at the
 * reaper's next round (half a second, in which a stream of writes fills the
 * WAL for the writer to copy in one stop): the first pass after the
 * commits copies every frame. The reader is not in use, so the pass may
 * end its snapshot; its next read begins a new one anyway. */
static void test_stale_snapshot_is_ended_before_a_pass(void **state)
{
    (void)state;
    struct tmp_store t;
    open_checkpointing(&t, 50);
    struct sq_conn *c = sq_conn_of(store_reader(t.store));
    int64_t epoch;
    assert_int_equal(store_read_begin(&c->common), STORE_OK);
    assert_int_equal(store_auth_epoch(&c->common, &epoch), STORE_OK);
    store_read_end(&c->common);            /* kept, and now idle */
    int log, copied;
    first_pass(&t, "stale", &log, &copied);
    pthread_mutex_lock(&c->use);
    bool kept = c->kept;
    pthread_mutex_unlock(&c->use);
    print_message("first pass: %d of %d frames copied\n", copied, log);
    assert_false(kept);
    assert_true(log >= 50);
    assert_int_equal(copied, log);
    /* and the reader reads on, in a snapshot of its own */
    struct arena ar;
    arena_init(&ar);
    struct account a;
    assert_int_equal(store_read_begin(&c->common), STORE_OK);
    assert_int_equal(store_account_get(&c->common, &ar, "stale-0", &a), STORE_OK);
    store_read_end(&c->common);
    arena_release(&ar);
    tmp_store_close(&t);
}

static void test_store_now_format(void **state)
{
    (void)state;
    char now[32];
    store_now(now);
    assert_int_equal(strlen(now), 26);
    int y, mo, d, h, mi, s, us;
    char tail;
    assert_int_equal(sscanf(now, "%4d-%2d-%2dT%2d:%2d:%2d.%6d%c", &y, &mo, &d, &h, &mi, &s, &us,
                            &tail), 7);
    assert_true(y >= 2024);
    assert_in_range(mo, 1, 12);
    assert_in_range(d, 1, 31);
    assert_in_range(h, 0, 23);
    assert_in_range(mi, 0, 59);
    assert_in_range(s, 0, 60);
    assert_int_equal(now[4], '-');
    assert_int_equal(now[10], 'T');
    assert_int_equal(now[19], '.');
}

/* store_now by the database's clock: the offset an engine measured is
 * added, a negative one too, microseconds borrowing from the seconds. */
static time_t stamp_seconds(const char *stamp, int *us)
{
    struct tm tm = {0};
    assert_non_null(strptime(stamp, "%Y-%m-%dT%H:%M:%S", &tm));
    assert_int_equal(sscanf(stamp + 20, "%6d", us), 1);
    return timegm(&tm);
}

static void test_store_now_by_the_database_clock(void **state)
{
    (void)state;
    static const int64_t offsets[] = {86400LL * 1000000 + 250000, -3 * 1000000 - 999999, -1};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        char before[32], shifted[32], after[32];
        store_now(before);
        store_clock_offset_set(offsets[i]);
        store_now(shifted);
        assert_int_equal(store_clock_offset(), offsets[i]);
        store_clock_offset_set(0);
        store_now(after);
        int us0, us, us1;
        int64_t t0 = (int64_t)stamp_seconds(before, &us0) * 1000000 + us0;
        int64_t t = (int64_t)stamp_seconds(shifted, &us) * 1000000 + us;
        int64_t t1 = (int64_t)stamp_seconds(after, &us1) * 1000000 + us1;
        assert_in_range(us, 0, 999999);
        assert_true(t - offsets[i] >= t0 && t - offsets[i] <= t1);
    }
}

static void test_close_and_reopen_keeps_data(void **state)
{
    (void)state;
    struct tmp_store t;
    tmp_store_open(&t);
    add_account(t.store, "acct-z", "zeta");
    store_close(t.store);
    char err[256];
    struct store_options o = {.path = t.path};
    t.store = store_open(&o, err, sizeof err);
    assert_non_null(t.store);
    struct arena ar;
    arena_init(&ar);
    struct account a;
    assert_int_equal(store_account_get(store_reader(t.store), &ar, "zeta", &a), STORE_OK);
    assert_string_equal(a.id, "acct-z");
    arena_release(&ar);
    tmp_store_close(&t);
}

static void test_name_filters(void **state)
{
    /* servers: the name contains the text; volumes: exactly that name,
     * found even past the first page of the account's volumes */
    struct fx *f = *state;
    const char *names[] = {"web-1", "web-2", "db-1"};
    for (int i = 0; i < 3; i++) {
        struct server s = server_rec(names[i], "acct-a");
        assert_int_equal(op(f->s, OP_SERVER_ADD, &s, NULL, NULL), 0);
    }
    struct server *servers;
    int n;
    struct server_filter web = {.name_contains = "web"}, percent = {.name_contains = "%"};
    assert_int_equal(store_server_list(f->r, &f->ar, "acct-a", NULL, &web, 10, &servers, &n),
                     STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(servers[0].id, "web-2");
    assert_string_equal(servers[1].id, "web-1");
    assert_int_equal(store_server_list(f->r, &f->ar, "acct-a", NULL, &percent, 10, &servers, &n),
                     STORE_OK);
    assert_int_equal(n, 0);     /* literal text, not a LIKE pattern */

    add_volume(f, "wanted", "acct-a");
    char id[16];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "vol-%02d", i);
        add_volume(f, id, "acct-a");
    }
    struct volume *vols;
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-a", "wanted", 0, 10, &vols, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(vols[0].id, "wanted");
    assert_int_equal(store_volume_list(f->r, &f->ar, "acct-b", "wanted", 0, 10, &vols, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
}

/* ---- query plans -------------------------------------------------------------------
 * A GET of an attachment checks its server's account in the index on
 * servers (id, account_id) alone (migration 7): were the statement to need
 * another column of the server, it would read the row again, and a GET at
 * 1M attachments would cost about 4 reads from memory more. */

static void test_attachment_get_reads_no_server_row(void **state)
{
    (void)state;
    struct tmp_store t;
    tmp_migrated(&t);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char sql[1024];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", sqlite_sql[S_ATTACH_FIND]);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int servers = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        if (strstr(detail, "servers")) {
            servers++;
            assert_non_null(strstr(detail, "COVERING INDEX servers_id_account"));
        }
    }
    assert_int_equal(servers, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    tmp_dir_remove(&t);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_fresh),
        cmocka_unit_test(test_migrate_refuses_newer),
        cmocka_unit_test(test_attachment_get_reads_no_server_row),
        cmocka_unit_test(test_open_missing_directory_fails),
        T(test_accounts),
        T(test_users),
        T(test_server_crud),
        T(test_server_list_paging),
        T(test_server_list_large),
        T(test_volume_crud),
        T(test_volume_list_paging),
        T(test_name_filters),
        T(test_attachment_crud),
        T(test_attachment_unique_per_volume),
        T(test_foreign_keys),
        T(test_write_rollback),
        T(test_write_rollback_undoes_everything),
        T(test_group_commit_many_threads),
        T(test_read_snapshot),
        T(test_reader_per_thread),
        T(test_reader_other_thread),
        T(test_auth_generation),
        T(test_change_seen_before_it_is_visible),
        T(test_kept_snapshot_sees_every_change),
        T(test_idle_snapshot_does_not_pin_the_wal),
        cmocka_unit_test(test_wal_stays_bounded),
        cmocka_unit_test(test_checkpoints_follow_the_wal_growth),
        cmocka_unit_test(test_checkpoint_counts_from_a_restarted_wal),
        cmocka_unit_test(test_pass_that_left_frames_is_made_again_when_idle),
        cmocka_unit_test(test_stale_snapshot_is_ended_before_a_pass),
        cmocka_unit_test(test_checkpointer_passes_again_only_where_it_helps),
        cmocka_unit_test(test_full_commit_writes_its_wal_at_once),
        cmocka_unit_test(test_normal_commit_is_in_the_wal_when_it_returns),
        cmocka_unit_test(test_reader_keeps_its_mapping_while_the_file_keeps_its_length),
        cmocka_unit_test(test_writer_has_the_larger_page_cache),
        cmocka_unit_test(test_wal_made_longer_ahead_recovers_whole),
        cmocka_unit_test(test_failed_wal_write_fails_the_commit),
        cmocka_unit_test(test_store_now_format),
        cmocka_unit_test(test_store_now_by_the_database_clock),
        cmocka_unit_test(test_close_and_reopen_keeps_data),
        cmocka_unit_test(test_open_refuses_unwritable_database),
        T(test_group_commit_transaction_undone_under_a_job),
        T(test_group_commit_job_that_always_undoes),
        T(test_group_commit_refusal_after_changes_is_undone_alone),
        T(test_group_commit_refusal_asked_again),
        T(test_lazy_jobs_alone_commit_unflushed),
        T(test_deleted_database_refuses_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
