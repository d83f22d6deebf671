/* store.h: the persistence interface. sqlite.c implements it; a PostgreSQL
 * implementation can sit behind the same functions later.
 *
 * Concurrency model:
 *  - Reads run on a connection of the calling thread's own
 *    (store_reader()), created on first use, with its prepared statements
 *    kept for the life of the store. Readers never block each other or the
 *    writer (WAL).
 *  - Writes run on the single writer connection, on the writer thread:
 *    store_write() queues a function, the writer runs every queued function
 *    in one transaction (each inside its own savepoint, so that one refused
 *    change does not undo its neighbours), commits once (group commit), and
 *    only then wakes the callers. A function that returns nonzero has its
 *    changes rolled back and its return value handed back to its caller.
 *  - Everything a caller reads through store_read_begin()..store_read_end()
 *    comes from one snapshot.
 *
 * Record strings returned by getters are allocated in the arena given.
 * Scoping: a getter's `account` NULL means any account (admins); otherwise a
 * record of another account is STORE_NOTFOUND, exactly as if it did not
 * exist. Lists always name the account they list.
 */
#ifndef ATTACHD_STORE_H
#define ATTACHD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/model.h"
#include "util/arena.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOTFOUND,
    STORE_EXISTS,       /* a unique key is taken */
    STORE_ERROR,        /* the database failed; logged */
    STORE_BUSY,         /* the database stayed locked past the busy timeout */
};

/* The schema this attachd writes (schema.c holds one migration per version). */
#define STORE_SCHEMA_VERSION 2

struct store;
struct store_conn;

struct store_options {
    const char *path;
    bool synchronous_full;      /* synchronous=FULL (power-safe) or NORMAL */
};

/* Open (creating and migrating as needed) the database at opts->path and
 * start the writer thread. On failure return NULL with a reason in err. */
struct store *store_open(const struct store_options *opts, char *err, int errlen);
/* Wait for queued writes, stop the writer thread, close every connection. */
void store_close(struct store *s);

/* Apply pending migrations; report the versions. Refuses a database made by
 * a newer attachd. */
int store_migrate(const char *path, int *from, int *to, char *err, int errlen);

/* The calling thread's reader connection (created on first use). */
struct store_conn *store_reader(struct store *s);
/* A snapshot for the reads between begin and end. Pairs nest: only the
 * outermost pair starts and ends the snapshot. */
enum store_rc store_read_begin(struct store_conn *c);
void store_read_end(struct store_conn *c);

typedef int (*store_write_fn)(struct store_conn *w, void *arg);
/* Run fn(writer, arg) in the next group commit and wait for the commit.
 * Returns fn's nonzero value (its changes undone), or 0 once committed, or
 * -STORE_ERROR / -STORE_BUSY if the commit itself failed. */
int store_write(struct store *s, store_write_fn fn, void *arg);

/* Meta: a counter bumped by every change to users (passwords, deletion), so
 * that each node's credential cache can tell when to forget. */
enum store_rc store_auth_epoch(struct store_conn *c, int64_t *epoch);
enum store_rc store_auth_epoch_bump(struct store_conn *w);
/* True when another connection committed since this one last asked. */
bool store_changed(struct store_conn *c);

/* Accounts. `key` is an id or a name. */
enum store_rc store_account_add(struct store_conn *w, const struct account *a);
enum store_rc store_account_get(struct store_conn *c, struct arena *ar, const char *key,
                                struct account *out);

/* Users. */
enum store_rc store_user_add(struct store_conn *w, const struct user *u);
enum store_rc store_user_get(struct store_conn *c, struct arena *ar, const char *name,
                             struct user *out);
enum store_rc store_user_set_pwhash(struct store_conn *w, const char *name, const char *pwhash);
enum store_rc store_user_del(struct store_conn *w, const char *name);
enum store_rc store_user_count(struct store_conn *c, int64_t *n);

/* Servers. Lists are newest first; `marker` (optional) is the id of the last
 * record of the previous page: STORE_NOTFOUND if it is not in scope;
 * `name_contains` (optional) keeps the servers whose name contains it. */
enum store_rc store_server_add(struct store_conn *w, const struct server *srv);
enum store_rc store_server_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct server *out);
enum store_rc store_server_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *marker, const char *name_contains, int limit,
                                struct server **out, int *n);
enum store_rc store_server_update(struct store_conn *w, const struct server *srv);
enum store_rc store_server_del(struct store_conn *w, const char *id);

/* Volumes. Lists are newest first, paged by offset; `name` (optional) keeps
 * the volumes of exactly that name. */
enum store_rc store_volume_add(struct store_conn *w, const struct volume *v);
enum store_rc store_volume_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct volume *out);
enum store_rc store_volume_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *name, int64_t offset, int limit,
                                struct volume **out, int *n);
enum store_rc store_volume_set_status(struct store_conn *w, const char *id, const char *status);
enum store_rc store_volume_del(struct store_conn *w, const char *id);

/* Attachments: at most one per volume (a unique key, not just a check). */
enum store_rc store_attachment_add(struct store_conn *w, const struct attachment *at);
enum store_rc store_attachment_get(struct store_conn *c, struct arena *ar, const char *server_id,
                                   const char *volume_id, struct attachment *out);
enum store_rc store_attachment_by_volume(struct store_conn *c, struct arena *ar,
                                         const char *volume_id, struct attachment *out);
/* Attachments of one server in attach order; limit < 0 means all. */
enum store_rc store_attachment_list(struct store_conn *c, struct arena *ar, const char *server_id,
                                    int64_t offset, int limit, struct attachment **out, int *n);
enum store_rc store_attachment_update(struct store_conn *w, const struct attachment *at);
/* Move an attachment to another volume (a swap), keeping its device. */
enum store_rc store_attachment_swap(struct store_conn *w, const char *attachment_id,
                                    const char *new_volume_id);
enum store_rc store_attachment_del(struct store_conn *w, const char *attachment_id);

/* The current UTC time in the store's timestamp form, into out[32]. */
void store_now(char out[32]);

#endif
