/* sqlite_int.h: what the SQLite store's files share; not part of the
 * store's interface (store.h is). sqlite.c owns connections, opening and
 * closing, readers and the helpers below; sqlite_writer.c the writer thread
 * and the checkpointer; sqlite_watch.c the watch on the database file;
 * sqlite_records.c the SQL text and the record functions. */
#ifndef ATTACHD_SQLITE_INT_H
#define ATTACHD_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

enum stmt_id {
    S_BEGIN, S_BEGIN_IMMEDIATE, S_COMMIT, S_ROLLBACK,
    S_SAVEPOINT, S_ROLLBACK_TO, S_RELEASE,
    S_DATA_VERSION, S_AUTH_EPOCH, S_AUTH_EPOCH_BUMP,
    S_ACCOUNT_ADD, S_ACCOUNT_GET, S_QUOTA_GET, S_QUOTA_SET, S_SERVER_USAGE, S_VOLUME_USAGE,
    S_USER_ADD, S_USER_GET, S_USER_SET_PWHASH, S_USER_DEL, S_USER_COUNT,
    S_SERVER_ADD, S_SERVER_GET, S_SERVER_SEQ, S_SERVER_LIST, S_SERVER_UPDATE, S_SERVER_DEL,
    S_SERVER_BY_DOMAIN, S_SERVER_BOUND,
    S_VOLUME_ADD, S_VOLUME_GET, S_VOLUME_LIST, S_VOLUME_LIST_NAME, S_VOLUME_SET_STATUS,
    S_VOLUME_DEL, S_VOLUME_SET_STORAGE, S_VOLUME_UNSETTLED, S_VOLUME_UPDATE,
    S_ATTACH_ADD, S_ATTACH_GET, S_ATTACH_FIND, S_ATTACH_PARTS,
    S_ATTACH_BY_VOLUME, S_ATTACH_LIST, S_ATTACH_UPDATE,
    S_ATTACH_SWAP, S_ATTACH_DEL, S_ATTACH_BY_ID, S_ATTACH_SET_STATUS, S_ATTACH_UNSETTLED,
    S_IMAGE_ADD, S_IMAGE_GET, S_IMAGE_LIST, S_IMAGE_USERS, S_IMAGE_DEL,
    N_STMT
};

/* A kept snapshot older than this is ended: WAL frames a reader could still
 * read cannot be checkpointed away, and it shows other processes' changes
 * at the latest this late if the watcher missed them. */
#define SNAPSHOT_MAX_AGE 0.5

struct store {
    char *path;
    bool synchronous_full;
    struct store_conn *writer;
    pthread_t writer_thread;
    pthread_mutex_t lock;           /* guards the queue, the reader list, `lost` */
    pthread_cond_t work;
    struct store_job *head, *tail;
    bool stopping;
    pthread_key_t reader_key;
    struct store_conn *readers;
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
    atomic_int writing;             /* threads of this process writing its files now */
    atomic_int_fast64_t written;    /* ms: when one last stopped */
    bool watching;
    char *base;                     /* the database file's name, without its directory */
    /* The checkpointer: woken by the writer's WAL hook. */
    struct store_conn *checkpointer;
    pthread_t checkpointer_thread;
    bool checkpointing;             /* the thread runs */
    pthread_mutex_t ckpt_lock;      /* guards wanted, writer_turn, ckpt_stopping */
    pthread_cond_t ckpt_cond;
    bool wanted, ckpt_stopping;
    bool writer_turn;               /* the writer is to finish the checkpoint */
    atomic_int wal_pages;           /* the WAL's length after the last commit */
    int checkpoint_pages;           /* C, above */
};

/* A connection to the database at path (the writer's, or a reader's), set
 * up as every connection is; NULL with the reason in err. */
struct store_conn *sq_conn_open(const char *path, bool writer, bool synchronous_full, char *err,
                                int errlen);
void sq_conn_close(struct store_conn *c);
/* End a reader's kept snapshot, if it has one. */
void sq_end_kept(struct store_conn *c);
/* Seconds on the monotonic clock. */
double sq_monotonic(void);

/* The writer thread (its argument: the store), and the checkpointer
 * (sqlite_writer.c): started after the writer connection is open, stopped
 * after the writer thread. */
void *sq_writer_main(void *arg);
bool sq_checkpointer_start(struct store *s, char *err, int errlen);
void sq_checkpointer_stop(struct store *s);
/* The watcher and the reaper (sqlite_watch.c). */
bool sq_watch_start(struct store *s, char *err, int errlen);
void sq_watch_stop(struct store *s);

/* The text of each statement, by id (sqlite_records.c). */
extern const char *const sqlite_sql[N_STMT];

struct store_conn {
    sqlite3 *db;
    sqlite3_stmt *st[N_STMT];
    struct store *store;
    bool reader;
    bool epoch_bumped;          /* the writer's transaction bumped the auth epoch */
    int read_depth;             /* nesting of store_read_begin() */
    /* A reader's snapshot is kept between its uses while nothing commits
     * (see store_read_begin): `use` is held from the outermost begin to its
     * end, so that the reaper can end a kept snapshot that its thread left
     * idle without racing the thread. */
    pthread_mutex_t use;
    bool kept;                  /* a read transaction is open */
    uint64_t gen;               /* the store's change count when it began */
    double began;
    struct store_conn *next;    /* every reader, for store_close */
};

/* The connection's prepared statement `id` (prepared on first use), or NULL
 * after logging why not. */
sqlite3_stmt *sq_stmt(struct store_conn *c, enum stmt_id id);
/* Reset a statement and clear its bindings, ready for the next use. */
void sq_done(sqlite3_stmt *st);
/* Map a failed step to a store_rc (and reset the statement). */
enum store_rc sq_fail(struct store_conn *c, sqlite3_stmt *st, int rc);
/* Run a statement that returns no rows. */
enum store_rc sq_exec(struct store_conn *c, sqlite3_stmt *st);
enum store_rc sq_exec_id(struct store_conn *c, enum stmt_id id);
/* A change that must hit exactly one row: STORE_NOTFOUND when it hit none. */
enum store_rc sq_exec_one(struct store_conn *c, sqlite3_stmt *st);

void sq_bind_text(sqlite3_stmt *st, int i, const char *s);
const char *sq_col_text(sqlite3_stmt *st, int i, struct arena *ar);
/* Step a single-row query: STORE_OK with the row current (read it, then
 * sq_done()), or STORE_NOTFOUND. */
enum store_rc sq_step_row(struct store_conn *c, sqlite3_stmt *st);
/* Reads the current row into the record at `out`. */
typedef void (*sq_row_reader)(sqlite3_stmt *st, struct arena *ar, void *out);
/* A single-row query: the row read into *out with `read`, or STORE_NOTFOUND. */
enum store_rc sq_get(struct store_conn *c, sqlite3_stmt *st, struct arena *ar, sq_row_reader read,
                     void *out);
/* A single-row query of one integer column: its value into *out. */
enum store_rc sq_get_int64(struct store_conn *c, enum stmt_id id, int64_t *out);
/* Collect every row into a new arena array of records of `size` bytes. */
enum store_rc sq_collect(struct store_conn *c, sqlite3_stmt *st, struct arena *ar, size_t size,
                         sq_row_reader read, void **out, int *n);

#endif
