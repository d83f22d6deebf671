/* sqlite_int.h: what the SQLite engine's files share; not part of the
 * store's interface (store.h is). The engine's structures begin with the
 * engine-neutral heads of store_int.h. sqlite.c owns connections, opening
 * and closing, readers, the statement functions and the engine's table
 * (sqlite_engine); sqlite_writer.c the writer thread and the checkpointer;
 * sqlite_watch.c the watch on the database file; sqlite_sql.c the SQL
 * text; sqlite_admin.c what operators need. The record functions are
 * records.c's, the same for every engine. */
#ifndef ATTACHD_SQLITE_INT_H
#define ATTACHD_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/job_queue.h"
#include "store/store_int.h"

/* SQLite's own statements, after the records' (store_int.h). */
enum {
    S_BEGIN = N_STMT, S_BEGIN_IMMEDIATE, S_COMMIT, S_ROLLBACK,
    S_SAVEPOINT, S_ROLLBACK_TO, S_RELEASE,
    S_DATA_VERSION,
    N_SQ_STMT
};

/* A kept snapshot older than this is ended: WAL frames a reader could still
 * read cannot be checkpointed away, and it shows other processes' changes
 * at the latest this late if the watcher missed them. */
#define SNAPSHOT_MAX_AGE 0.5

struct sq_store {
    struct store common;            /* its engine: sqlite_engine */
    char *path;
    bool synchronous_full;
    struct sq_conn *writer;
    pthread_t writer_thread;
    struct job_inbox inbox;         /* the writer's jobs */
    pthread_mutex_t lock;           /* guards the reader list, `lost` */
    pthread_key_t reader_key;
    struct sq_conn *readers;
    dev_t dev;                      /* the database file as opened */
    ino_t ino;
    bool lost;                      /* writes refused for good (logged once) */
    /* Changes: counted by the writer after each commit and by the watcher
     * when another process (the CLI) writes the database; a reader keeps
     * its snapshot while the count stays. */
    atomic_uint_fast64_t changes;
    /* Moves when the auth epoch may have changed: a commit of this process
     * that bumped it, or any write of another process (store_auth_generation). */
    atomic_uint_fast64_t auth_gen;
    pthread_t watcher, reaper;
    int watch_fd, stop_fd;          /* inotify; an eventfd that stops both threads */
    struct sq_conn *watch_conn;     /* the watcher's: a change seen is confirmed visible */
    sqlite3_stmt *watch_version;    /* on it: PRAGMA data_version */
    atomic_int writing;             /* threads of this process writing its files now */
    atomic_int_fast64_t written;    /* ms: when one last stopped */
    bool watching;
    char *base;                     /* the database file's name, without its directory */
    /* The checkpointer: woken by the writer's WAL hook. */
    struct sq_conn *checkpointer;
    pthread_t checkpointer_thread;
    bool checkpointing;             /* the thread runs */
    pthread_mutex_t ckpt_lock;      /* guards wanted, writer_turn, ckpt_stopping, ckpt_log,
                                     * ckpt_copied */
    pthread_cond_t ckpt_cond;       /* on CLOCK_MONOTONIC */
    bool wanted, ckpt_stopping;
    bool writer_turn;               /* the writer is to finish the checkpoint */
    atomic_int wal_pages;           /* the WAL's length after the last commit */
    int ckpt_log;                   /* the WAL's length at the checkpointer's last pass */
    int ckpt_copied;                /* the frames of it copied by then (all, or fewer) */
    int checkpoint_pages;           /* C, above */
};

/* A connection to the database at path (the writer's, or a reader's), set
 * up as every connection is; NULL with the reason in err. */
struct sq_conn *sq_conn_open(const char *path, bool writer, bool synchronous_full, char *err,
                             int errlen);
void sq_conn_close(struct sq_conn *c);
/* End a reader's kept snapshot, if it has one. */
void sq_end_kept(struct sq_conn *c);
/* End every kept snapshot that its thread is not using now and that is no
 * longer current: kept, it would only hold WAL frames that a checkpoint
 * could copy (sqlite_watch.c). The reaper calls it every SNAPSHOT_MAX_AGE,
 * the checkpointer and the writer before each checkpoint. */
void sq_end_stale_snapshots(struct sq_store *s);
/* Seconds on the monotonic clock. */
double sq_monotonic(void);

/* The writer thread (its argument: the store), and the checkpointer
 * (sqlite_writer.c): started after the writer connection is open, stopped
 * after the writer thread. */
void *sq_writer_main(void *arg);
bool sq_checkpointer_start(struct sq_store *s, char *err, int errlen);
void sq_checkpointer_stop(struct sq_store *s);
/* After a pass of the checkpointer (and its sync) that copied `copied` of
 * the `log` frames the WAL held when it began, the WAL now `pages` long,
 * C = checkpoint_pages: is the writer's turn due (4 C), but would it copy
 * C/4 frames or more, committed during that pass? Then the checkpointer
 * passes again first (sqlite_writer.c says why). Not when a snapshot kept
 * frames from the pass (copied < log: the next pass could not copy them
 * either), nor near 16 C, where the writer would wait for the pass. */
bool sq_pass_again(int checkpoint_pages, int pages, int log, int copied);
/* Queue a job for the writer thread (store_submit). */
void sq_submit(struct store *s, struct store_job *job);
/* The watcher and the reaper (sqlite_watch.c). */
bool sq_watch_start(struct sq_store *s, char *err, int errlen);
void sq_watch_stop(struct sq_store *s);
/* The operators' functions of the engine's table (sqlite_admin.c). */
int sq_probe_write(struct store_conn *w, void *arg);
int sq_backup(struct store *s, const char *dest, char *err, int errlen);
int sq_check_file(const char *path, int *version, char *err, int errlen);
enum store_rc sq_account_list(struct store_conn *c, struct arena *ar, struct account **out,
                              int *n);
enum store_rc sq_account_counts(struct store_conn *c, const char *id, int64_t *users,
                                int64_t *servers, int64_t *volumes);
enum store_rc sq_account_del(struct store_conn *w, const char *id);
enum store_rc sq_user_list(struct store_conn *c, struct arena *ar, const char *account,
                           struct user **out, int *n);

/* The VFS every connection opens its database with (sqlite_vfs.c):
 * SQLite's default, except that at synchronous FULL a commit's WAL frames
 * are written in a few large writes just before its fsync, and that a
 * connection that maps the file keeps its mapping across commits while the
 * file keeps its length. Registered once; false if it cannot be. */
#define SQ_VFS "attachd-gather"
bool sq_vfs_register(void);
/* How many times a connection's mapping was let go (the file's length had
 * changed), in this process: for the tests. */
long sq_vfs_maps_dropped(void);

/* The text of each statement, by id (sqlite_sql.c). */
extern const char *const sqlite_sql[N_SQ_STMT];

/* A statement as the records see it (store_int.h): SQLite's, prepared on
 * first use and kept. */
struct sq_stmt {
    struct store_stmt common;   /* its engine: sqlite_engine */
    sqlite3_stmt *st;
};

struct sq_conn {
    struct store_conn common;   /* its engine: sqlite_engine */
    sqlite3 *db;
    struct sq_stmt st[N_SQ_STMT];
    struct sq_store *store;
    bool reader;
    int read_depth;             /* nesting of store_read_begin() */
    /* A reader's snapshot is kept between its uses while nothing commits
     * (see store_read_begin): `use` is held from the outermost begin to its
     * end, so that the reaper can end a kept snapshot that its thread left
     * idle without racing the thread. */
    pthread_mutex_t use;
    bool kept;                  /* a read transaction is open */
    uint64_t gen;               /* the store's change count when it began */
    double began;
    struct sq_conn *next;       /* every reader, for store_close */
};

/* Is a reader's kept snapshot one that its thread would read again as it
 * is: nothing committed since it began (the store's change count is still
 * `changes`), and it is younger than SNAPSHOT_MAX_AGE at `now`? */
static inline bool sq_snapshot_current(const struct sq_conn *c, uint64_t changes, double now)
{
    return c->gen == changes && now - c->began < SNAPSHOT_MAX_AGE;
}

/* The SQLite store of a store of the SQLite engine. */
static inline struct sq_store *sq_store_of(struct store *s)
{
    return (struct sq_store *)s;
}

/* The SQLite connection of a connection of the SQLite engine (the record
 * functions and the jobs are given its head). */
static inline struct sq_conn *sq_conn_of(struct store_conn *c)
{
    return (struct sq_conn *)c;
}

/* The connection's prepared statement `id` (prepared on first use), or NULL
 * after logging why not. */
sqlite3_stmt *sq_stmt(struct sq_conn *c, int id);
/* Reset a statement and clear its bindings, ready for the next use. */
void sq_done(sqlite3_stmt *st);
/* Map a failed step to a store_rc (and reset the statement). */
enum store_rc sq_fail(sqlite3_stmt *st, int rc);
/* Run a statement that returns no rows. */
enum store_rc sq_exec(sqlite3_stmt *st);
enum store_rc sq_exec_id(struct sq_conn *c, int id);

void sq_bind_text(sqlite3_stmt *st, int i, const char *s);
const char *sq_col_text(sqlite3_stmt *st, int i, struct arena *ar);

#endif
