/* sqlite_sql.c: the SQL text of the SQLite store's statements, by id: the
 * record functions' (store_int.h, records.c) and SQLite's own transaction
 * commands (sqlite_int.h). PostgreSQL's texts are these translated where
 * they are portable (pg_engine.c). */
#include "store/sqlite_int.h"

/* A page of servers: of one account (?1) or of all, with store.h's filter */
#define SERVER_LIST(accounts)                                                              \
    "SELECT " SERVER_COLS " FROM servers WHERE " accounts " AND seq < ?2 "                 \
    "AND (?4 IS NULL OR instr(name, ?4) > 0) "                                             \
    "AND (?5 IS NULL OR instr(?5, ',' || vm_state || ',') > 0) "                           \
    "AND (?6 IS NULL OR instr(?6, ',' || task_state || ',') > 0) "                         \
    "AND (?7 IS NULL OR image_ref = ?7) AND (?8 IS NULL OR flavor_ref = ?8) "              \
    "AND (?9 = 0 OR locked = (?9 > 0)) AND (?10 IS NULL OR user_id = ?10) "                \
    "AND (?11 IS NULL OR instr(key_name, ?11) > 0) "                                       \
    "AND (?12 IS NULL OR instr(availability_zone, ?12) > 0) "                              \
    "AND (?13 IS NULL OR instr(CAST(power_state AS TEXT), ?13) > 0) "                      \
    "AND (?14 IS NULL OR substr(updated_at, 1, 19) >= ?14) "                               \
    "AND (?15 IS NULL OR substr(updated_at, 1, 19) <= ?15) ORDER BY seq DESC LIMIT ?3"

const char *const sqlite_sql[N_SQ_STMT] = {
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
    [S_SERVER_SEQ] = "SELECT seq FROM servers WHERE id = ?1 "
                     "AND account_id = coalesce(?2, account_id)",
    [S_SERVER_LIST] = SERVER_LIST("account_id = ?1"),
    [S_SERVER_LIST_ALL] = SERVER_LIST("?1 IS NULL"),    /* every account's: by seq alone */
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
                      "FROM servers s INDEXED BY servers_id_account LEFT JOIN attachments a "
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
    /* in no order: store_attachment_list sorts them by seq */
    [S_ATTACH_LIST] = "SELECT " ATTACH_COLS ", seq FROM attachments WHERE server_id = ?1",
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
