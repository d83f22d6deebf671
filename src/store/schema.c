/* schema.c: see schema.h. Never edit a released migration; add a new one. */
#include "store/schema.h"

#include "store/store.h"

#include <stdio.h>

static const char *const migrations[] = {
    /* 1: accounts, users, servers, volumes, attachments */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO meta VALUES ('auth_epoch', 1);"
    "CREATE TABLE accounts ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  account_id TEXT NOT NULL REFERENCES accounts(id),"
    "  role TEXT NOT NULL CHECK (role IN ('member', 'admin')),"
    "  pwhash TEXT NOT NULL,"
    "  created_at TEXT NOT NULL"
    ");"
    /* rowid gives the list order (newest first) and stable markers */
    "CREATE TABLE servers ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  account_id TEXT NOT NULL REFERENCES accounts(id),"
    "  user_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  vm_state TEXT NOT NULL,"
    "  task_state TEXT,"
    "  power_state INTEGER NOT NULL,"
    "  locked INTEGER NOT NULL DEFAULT 0,"
    "  locked_by TEXT,"
    "  image_ref TEXT NOT NULL,"
    "  flavor_ref TEXT NOT NULL,"
    "  availability_zone TEXT NOT NULL,"
    "  key_name TEXT,"
    "  metadata TEXT NOT NULL DEFAULT '{}',"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  launched_at TEXT"
    ");"
    "CREATE INDEX servers_account ON servers(account_id, seq);"
    "CREATE TABLE volumes ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  account_id TEXT NOT NULL REFERENCES accounts(id),"
    "  name TEXT,"
    "  description TEXT,"
    "  size INTEGER NOT NULL CHECK (size >= 1),"
    "  status TEXT NOT NULL,"
    "  volume_type TEXT,"
    "  availability_zone TEXT NOT NULL,"
    "  snapshot_id TEXT,"
    "  metadata TEXT NOT NULL DEFAULT '{}',"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL"
    ");"
    "CREATE INDEX volumes_account ON volumes(account_id, seq);"
    /* UNIQUE(volume_id): a volume is attached at most once, whatever the
     * code above does; UNIQUE(server_id, device): no device twice. */
    "CREATE TABLE attachments ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  bdm_uuid TEXT NOT NULL,"
    "  server_id TEXT NOT NULL REFERENCES servers(id),"
    "  volume_id TEXT NOT NULL UNIQUE REFERENCES volumes(id),"
    "  device TEXT NOT NULL,"
    "  tag TEXT,"
    "  delete_on_termination INTEGER NOT NULL DEFAULT 0,"
    "  boot_index INTEGER NOT NULL DEFAULT -1,"
    "  created_at TEXT NOT NULL,"
    "  UNIQUE (server_id, device)"
    ");",
    /* 2: look volumes up by name (the openstack CLI's find) */
    "CREATE INDEX volumes_name ON volumes(account_id, name);",
    /* 3: per-account quotas; NULL keeps the default */
    "CREATE TABLE quotas ("
    "  account_id TEXT PRIMARY KEY REFERENCES accounts(id),"
    "  instances INTEGER CHECK (instances >= -1),"
    "  cores INTEGER CHECK (cores >= -1),"
    "  ram INTEGER CHECK (ram >= -1),"
    "  volumes INTEGER CHECK (volumes >= -1),"
    "  gigabytes INTEGER CHECK (gigabytes >= -1)"
    ") WITHOUT ROWID;"
    "CREATE INDEX servers_flavor ON servers(account_id, flavor_ref);",
    /* 4: the hypervisor. A server may be a domain (at most one server per
     * domain); a volume has its storage; an attachment being attached or
     * detached says so until the hypervisor's answer is committed. */
    "ALTER TABLE servers ADD COLUMN domain TEXT;"
    "ALTER TABLE servers ADD COLUMN fault TEXT;"
    "CREATE UNIQUE INDEX servers_domain ON servers(domain) WHERE domain IS NOT NULL;"
    "ALTER TABLE volumes ADD COLUMN path TEXT;"
    "ALTER TABLE volumes ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attachments ADD COLUMN status TEXT NOT NULL DEFAULT 'attached' "
    "  CHECK (status IN ('attaching', 'attached', 'detaching'));"
    "CREATE INDEX attachments_unsettled ON attachments(status) WHERE status <> 'attached';",
    /* 5: images (attachd image add), and the servers made from each */
    "CREATE TABLE images ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL UNIQUE,"
    "  disk_format TEXT NOT NULL CHECK (disk_format IN ('raw', 'qcow2')),"
    "  size INTEGER NOT NULL CHECK (size >= 0),"
    "  virtual_size INTEGER NOT NULL CHECK (virtual_size >= 0),"
    "  checksum TEXT NOT NULL,"
    "  hash_value TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  kernel TEXT,"
    "  initrd TEXT,"
    "  cmdline TEXT,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL"
    ");"
    "CREATE INDEX servers_image ON servers(image_ref);",
    /* 6: a server whose domain attachd defined (POST /servers under the
     * libvirt driver), and so undefines when the server is deleted; a
     * domain bound with `server add --domain` is left alone */
    "ALTER TABLE servers ADD COLUMN own_domain INTEGER NOT NULL DEFAULT 0 "
    "  CHECK (own_domain IN (0, 1));",
    /* 7: a server's id with its account, so that a GET of an attachment
     * checks the server's account in this index alone, without reading
     * the server's row (S_ATTACH_FIND names it: SQLite's planner takes the
     * unique index on id otherwise). At 1M attachments that is about 4
     * reads from memory fewer per GET (bench/results.md, 2026-12-04). */
    "CREATE UNIQUE INDEX servers_id_account ON servers(id, account_id);",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == STORE_SCHEMA_VERSION, "store.h names the newest migration");

int schema_latest(void)
{
    return N_MIGRATIONS;
}

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int schema_migrate(sqlite3 *db, int *from, int *to, char *err, int errlen)
{
    int v;
    if (user_version(db, &v) < 0) {
        snprintf(err, (size_t)errlen, "cannot read schema version: %s", sqlite3_errmsg(db));
        return -1;
    }
    *from = *to = v;
    if (v > N_MIGRATIONS) {
        snprintf(err, (size_t)errlen,
                 "database schema version %d is newer than this attachd supports (%d); "
                 "use a newer attachd", v, N_MIGRATIONS);
        return -1;
    }
    for (; v < N_MIGRATIONS; v++) {
        char sql[64];
        char *msg = NULL;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, (size_t)errlen, "migration to schema version %d failed: %s", v + 1,
                     msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        *to = v + 1;
    }
    return 0;
}
