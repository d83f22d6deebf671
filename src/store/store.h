/* store.h: the persistence interface. store.c hands each call on to the
 * engine behind the store (store_int.h): SQLite's (sqlite.c) for a file,
 * PostgreSQL's (pg_engine.c, docs/scale-out.md) for a connection string;
 * the record functions are written once for every engine (records.c).
 * What follows is SQLite's engine; PostgreSQL's keeps the same contract
 * (pg_engine.c says how: its readers' snapshots are transactions, its
 * writer's transactions SERIALIZABLE, run again whole after a
 * serialization failure).
 *
 * Concurrency model:
 *  - Reads run on a connection of the calling thread's own
 *    (store_reader()), created on first use, with its prepared statements
 *    kept for the life of the store. Readers never block each other or the
 *    writer (WAL). Everything a caller reads between store_read_begin() and
 *    store_read_end() comes from one snapshot, never older than the last
 *    change this process committed before store_read_begin(), nor than one
 *    another process (the CLI) committed a few milliseconds before it (the
 *    database's directory is watched); a snapshot is kept between uses
 *    while nothing changes.
 *  - Writes are jobs: store_submit() queues one and returns at once. The
 *    writer thread runs every job queued at that moment in one transaction,
 *    each inside a savepoint of its own so that a refused job's changes are
 *    undone without its neighbours', commits once (group commit), and then
 *    calls each job's done() with its outcome, on the writer thread, in the
 *    order the jobs ran, before it begins another transaction: when a job's
 *    done() runs, every job whose changes it could read has been answered
 *    (the reconciler, core/reconcile.c, relies on it). (SQLite's writer leaves the
 *    savepoints out, as each copies every page its job changes, until a job
 *    refuses after it changed rows, which most refusals do not; then the
 *    transaction runs again with them.) A job's function may run more than
 *    once: so, and when the engine rolls back a whole transaction under
 *    the batch (SQLITE_FULL, IOERR, NOMEM, ...), every job of that
 *    transaction runs again in a new one, because its outcome may have
 *    depended on what was undone; the job it ended under runs in a
 *    transaction of its own from then on, and is answered as not committed
 *    if it keeps ending them. So a job function changes nothing but the
 *    database and its own outputs.
 *  - A job is answered only with its true outcome: 0 when its changes are
 *    committed, its function's nonzero value when it refused (nothing of it
 *    is kept), or a negative -STORE_* when it could not be committed.
 *  - The writer checks, before each transaction, that the database file is
 *    still the one it opened and still writable; a database that was moved,
 *    deleted or made read-only under it refuses every write from then on
 *    (STORE_UNAVAILABLE, logged once) instead of acknowledging changes that
 *    nobody would ever read.
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

#include "store/model.h"
#include "util/arena.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOTFOUND,
    STORE_EXISTS,       /* a unique key is taken */
    STORE_ERROR,        /* the database failed; logged */
    STORE_BUSY,         /* the database stayed locked past the busy timeout */
    STORE_UNAVAILABLE,  /* the store refuses writes: database lost, read-only, or closing */
};

/* The schema this attachd writes (schema.c holds one migration per version). */
#define STORE_SCHEMA_VERSION 7

struct store;
struct store_conn;

struct store_options {
    const char *path;
    bool synchronous_full;      /* synchronous=FULL (power-safe) or NORMAL */
    int checkpoint_pages;       /* WAL length that starts a checkpoint; 0: 1000 */
};

/* Open (creating and migrating as needed) the database at opts->path and
 * start the writer thread. On failure return NULL with a reason in err. */
struct store *store_open(const struct store_options *opts, char *err, int errlen);
/* Wait for queued writes, stop the writer thread, close every connection. */
void store_close(struct store *s);

/* Apply pending migrations; report the versions. Refuses a database made by
 * a newer attachd. */
int store_migrate(const char *path, int *from, int *to, char *err, int errlen);

/* The calling thread's reader connection (created on first use). A read
 * outside store_read_begin()..store_read_end() reads the latest state. */
struct store_conn *store_reader(struct store *s);
/* Abandon whatever a connection was in the middle of (after its thread ran
 * out of memory, util/oom.h): every statement reset, the snapshot ended. */
void store_conn_reset(struct store_conn *c);
/* A snapshot for the reads between begin and end. Pairs nest: only the
 * outermost pair starts and ends the snapshot. */
enum store_rc store_read_begin(struct store_conn *c);
void store_read_end(struct store_conn *c);

/* A write: fn(writer, arg) runs in a transaction on the writer thread and
 * returns 0 to keep its changes or nonzero to have them undone. */
typedef int (*store_write_fn)(struct store_conn *w, void *arg);

struct store_job {
    store_write_fn fn;
    void *arg;
    /* Called once on the writer thread when the outcome is known; keep it
     * short (hand the rest on). The job is the caller's again from then on. */
    void (*done)(struct store_job *job);
    /* The outcome, when done() runs: 0 committed; fn's nonzero value (its
     * changes undone); -STORE_ERROR, -STORE_BUSY or -STORE_UNAVAILABLE when
     * it could not be committed. */
    int rc;
    /* Its commit need not wait for the disk: a write whose loss in a crash
     * of the machine does no harm, because what it records can be found
     * again (a hypervisor task's completion: its intent is durable, and the
     * reconciler finishes it from the hypervisor's state at start). A
     * transaction is committed so only when every job in it is lazy; the
     * next durable commit makes it durable too, as the log is in order. */
    bool lazy;
    /* the store's own */
    int attempts;               /* transactions that ended under it */
    bool alone;                 /* runs in a transaction of its own */
    bool guarded;               /* runs inside a savepoint (SQLite) */
    struct store_job *next;
};

/* Queue a job (its memory must stay valid until done() returns). */
void store_submit(struct store *s, struct store_job *job);
/* Submit fn and wait for its outcome (for the CLI and tests: never on a
 * thread that serves requests). */
int store_write(struct store *s, store_write_fn fn, void *arg);
/* The same, and then(arg, outcome) runs in the job's done(), on the writer
 * thread before it begins another transaction (see above), before this
 * returns. */
int store_write_then(struct store *s, store_write_fn fn, void *arg,
                     void (*then)(void *arg, int rc));

/* Meta: a counter bumped by every change to users (passwords, deletion), so
 * that each node's credential cache can tell when to forget. */
enum store_rc store_auth_epoch(struct store_conn *c, int64_t *epoch);
enum store_rc store_auth_epoch_bump(struct store_conn *w);
/* A number that moves whenever the auth epoch may have changed (this
 * process committed a bump; on SQLite another process wrote the database,
 * on PostgreSQL another process's bump was notified, or nobody listens):
 * the epoch needs reading again only when it moved. Read it before the
 * epoch. */
uint64_t store_auth_generation(struct store *s);

/* Make this process the one that drives a hypervisor for the database, for
 * as long as the store is open: at most one does (docs/scale-out.md).
 * STORE_OK: it is; it may drive the hypervisor after *settle seconds.
 * STORE_EXISTS: another process is (err names it). Anything else: the
 * database could not be asked (err says why).
 *  - SQLite: serve's lock on the file already makes it one process:
 *    STORE_OK, *settle 0, nothing kept; lost is never called.
 *  - PostgreSQL: a lease (pg.h, "the hypervisor's lease"): a session
 *    advisory lock, confirmed every second and taken again when its
 *    connection is lost. When no check has confirmed it for `lease` seconds,
 *    lost(cls) is called on a thread of the store's, and the process must
 *    stop driving the hypervisor at once (serve ends). *settle is the lease
 *    and a margin: the last holder may not know yet that it lost it. */
enum store_rc store_hold_hypervisor(struct store *s, double lease, void (*lost)(void *cls),
                                    void *cls, double *settle, char *err, int errlen);
/* Does another process drive a hypervisor for the database? STORE_OK: yes
 * (who names it); STORE_NOTFOUND: no (always on SQLite, where serve's lock
 * on the file makes it one process); anything else: the database could not
 * be asked (who says why). */
enum store_rc store_hypervisor_holder(struct store *s, char *who, int wholen);

/* Accounts. `key` is an id or a name. */
enum store_rc store_account_add(struct store_conn *w, const struct account *a);
enum store_rc store_account_get(struct store_conn *c, struct arena *ar, const char *key,
                                struct account *out);

/* Quotas of an account (QUOTA_UNSET where it keeps the default), and what
 * it uses: its servers by flavor, its volumes and their gigabytes. */
enum store_rc store_quota_get(struct store_conn *c, const char *account, struct quota *out);
enum store_rc store_quota_set(struct store_conn *w, const char *account, const struct quota *q);
enum store_rc store_server_usage(struct store_conn *c, struct arena *ar, const char *account,
                                 struct flavor_count **out, int *n);
enum store_rc store_volume_usage(struct store_conn *c, const char *account, int64_t *volumes,
                                 int64_t *gigabytes);

/* Users. */
enum store_rc store_user_add(struct store_conn *w, const struct user *u);
enum store_rc store_user_get(struct store_conn *c, struct arena *ar, const char *name,
                             struct user *out);
enum store_rc store_user_set_pwhash(struct store_conn *w, const char *name, const char *pwhash);
enum store_rc store_user_del(struct store_conn *w, const char *name);
enum store_rc store_user_count(struct store_conn *c, int64_t *n);

/* Which servers a list keeps; NULL in a field keeps any. `vm_states` and
 * `task_states` are names between commas (",active,stopped,"), and a server
 * without a task_state is not among any task_states. */
struct server_filter {
    const char *name_contains;  /* its name contains this text */
    const char *vm_states, *task_states;
    const char *image_ref, *flavor_ref;         /* exactly these */
    int locked;                 /* 1 locked only, -1 unlocked only, 0 either */
    const char *user_id;        /* exactly this */
    /* the key's name, the zone, the power state's number contain this text */
    const char *key_name_contains, *zone_contains, *power_state_contains;
    /* updated_at's first 19 characters ("YYYY-MM-DDTHH:MM:SS", to the
     * second, as the API shows it) at or after, at or before this */
    const char *changed_since, *changed_before;
};

/* Servers. Lists are newest first, of `account` (NULL: of every account);
 * `marker` (optional) is the id of the last record of the previous page:
 * STORE_NOTFOUND if it is not in scope; `filter` (optional) keeps only the
 * servers it names. */
enum store_rc store_server_add(struct store_conn *w, const struct server *srv);
enum store_rc store_server_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct server *out);
enum store_rc store_server_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *marker, const struct server_filter *filter,
                                int limit, struct server **out, int *n);
enum store_rc store_server_update(struct store_conn *w, const struct server *srv);
/* The server a hypervisor domain is (STORE_NOTFOUND: none), and every
 * server that is a domain, oldest first. */
enum store_rc store_server_by_domain(struct store_conn *c, struct arena *ar, const char *domain,
                                     struct server *out);
enum store_rc store_server_bound(struct store_conn *c, struct arena *ar, struct server **out,
                                 int *n);
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
/* A volume's name, description, metadata and updated_at, as v has them. */
enum store_rc store_volume_update(struct store_conn *w, const struct volume *v);
/* A volume's storage and status, once its file is made (or failed). */
enum store_rc store_volume_set_storage(struct store_conn *w, const char *id, const char *path,
                                       const char *status);
/* Every volume being created or deleted, oldest first. */
enum store_rc store_volume_unsettled(struct store_conn *c, struct arena *ar, struct volume **out,
                                     int *n);

/* Attachments: at most one per volume (a unique key, not just a check). */
enum store_rc store_attachment_add(struct store_conn *w, const struct attachment *at);
enum store_rc store_attachment_get(struct store_conn *c, struct arena *ar, const char *server_id,
                                   const char *volume_id, struct attachment *out);
enum store_rc store_attachment_by_volume(struct store_conn *c, struct arena *ar,
                                         const char *volume_id, struct attachment *out);
/* The attachment of a volume to a server of `account` (NULL: any), in one
 * lookup: STORE_NOTFOUND with *server_found false when there is no such
 * server (in that account), true when it is not attached to it. */
enum store_rc store_attachment_find(struct store_conn *c, struct arena *ar, const char *account,
                                    const char *server_id, const char *volume_id,
                                    bool *server_found, struct attachment *out);
/* A server and a volume of `account` (NULL: any), and the attachment between
 * those ids (whatever their account), in one lookup: which were found
 * (FOUND_* bits); *rc says whether the lookup itself worked. */
enum { FOUND_SERVER = 1, FOUND_VOLUME = 2, FOUND_ATTACHMENT = 4 };
unsigned store_attachment_parts(struct store_conn *c, struct arena *ar, const char *account,
                                const char *server_id, const char *volume_id, struct server *s,
                                struct volume *v, struct attachment *a, enum store_rc *rc);
/* Attachments of one server in attach order; limit < 0 means all. */
enum store_rc store_attachment_list(struct store_conn *c, struct arena *ar, const char *server_id,
                                    int64_t offset, int limit, struct attachment **out, int *n);
enum store_rc store_attachment_update(struct store_conn *w, const struct attachment *at);
/* Move an attachment to another volume (a swap), keeping its device. */
enum store_rc store_attachment_swap(struct store_conn *w, const char *attachment_id,
                                    const char *new_volume_id);
enum store_rc store_attachment_del(struct store_conn *w, const char *attachment_id);
enum store_rc store_attachment_by_id(struct store_conn *c, struct arena *ar, const char *id,
                                     struct attachment *out);
/* Move an attachment from status `from` to `to`: STORE_NOTFOUND when it is
 * not in `from` (a late or repeated completion changes nothing). */
enum store_rc store_attachment_set_status(struct store_conn *w, const char *id, const char *from,
                                          const char *to);
/* Every attachment that is attaching or detaching, oldest first. */
enum store_rc store_attachment_unsettled(struct store_conn *c, struct arena *ar,
                                         struct attachment **out, int *n);

/* Images (model.h: struct image). store_image_add is STORE_EXISTS when the
 * id or the name is taken; a list is every image, oldest first (there are
 * few: an operator adds them); store_image_users counts the servers made
 * from one, and store_image_del refuses (STORE_EXISTS) while there is any,
 * as their disks may be backed by its file. */
enum store_rc store_image_add(struct store_conn *w, const struct image *img);
enum store_rc store_image_get(struct store_conn *c, struct arena *ar, const char *id,
                              struct image *out);
enum store_rc store_image_list(struct store_conn *c, struct arena *ar, struct image **out,
                               int *n);
enum store_rc store_image_users(struct store_conn *c, const char *id, int64_t *servers);
enum store_rc store_image_del(struct store_conn *w, const char *id);

/* The current UTC time in the store's timestamp form, into out[32]: the
 * database's time where the database has a clock of its own (PostgreSQL:
 * every node on one database stamps its records by one clock), this
 * machine's otherwise. */
void store_now(char out[32]);
/* How far the database's clock is ahead of this machine's, in microseconds
 * (negative: behind), as an engine measured it; store_now adds it. One value
 * per process: a process serves one database. */
void store_clock_offset_set(int64_t us);
int64_t store_clock_offset(void);

/* ---- for operators (sqlite_admin.c) ------------------------------------------------------ */

/* The health check's write (a store_write_fn): one row of the meta table,
 * committed like any change. */
int store_probe_write(struct store_conn *w, void *arg);
/* A consistent copy of the live database into the file dest (made 0600,
 * replaced whole: never left half-written), while writes go on: every change
 * committed before the copy began is in it. -1 with a reason in err. */
int store_backup(struct store *s, const char *dest, char *err, int errlen);
/* Is path an attachd database this attachd can open (SQLite's quick_check
 * passes, a schema version it knows)? -1 with a reason in err. */
int store_check_file(const char *path, int *version, char *err, int errlen);
/* Every account, by name; an account's users, servers and volumes counted;
 * an account deleted (STORE_EXISTS while anything is still in it). */
enum store_rc store_account_list(struct store_conn *c, struct arena *ar, struct account **out,
                                 int *n);
enum store_rc store_account_counts(struct store_conn *c, const char *id, int64_t *users,
                                   int64_t *servers, int64_t *volumes);
enum store_rc store_account_del(struct store_conn *w, const char *id);
/* Users by name, of one account or (NULL) all; without their hashes. */
enum store_rc store_user_list(struct store_conn *c, struct arena *ar, const char *account,
                              struct user **out, int *n);

#endif
