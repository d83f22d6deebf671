/* pg_int.h: what the PostgreSQL engine's two files share, not part of the
 * store's interface: pg_engine.c (the SQL, the statement functions, the
 * store, its readers, the listener's start, the hypervisor's lock, the
 * operators' functions) and pg_writer.c (the writer thread: group commit,
 * runs again, the database's clock). */
#ifndef ATTACHD_PG_INT_H
#define ATTACHD_PG_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/job_queue.h"
#include "store/pg.h"
#include "store/store_int.h"

/* The engine's own statements, after the records' (store_int.h): the
 * health check's write and the operators' listing and deleting
 * (store_account_list ...; sqlite_admin.c has SQLite's). Names are ordered
 * bytewise, as SQLite orders them. */
enum {
    P_PROBE = N_STMT, P_ACCOUNT_LIST, P_ACCOUNT_COUNTS, P_QUOTA_DEL, P_ACCOUNT_DEL, P_USER_LIST,
    N_PG_STMT
};

struct pgs_stmt {
    struct store_stmt common;   /* its engine: pg_engine */
    struct pg_stmt *st;         /* pg.c's, set by each use; NULL: the connection is lost */
    char *stand_in[PG_MAX_PARAMS];  /* what an invalid UTF-8 text is bound as (malloc'd) */
};

struct pg_store;

struct pgs_conn {
    struct store_conn common;   /* its engine: pg_engine */
    struct pg_conn *pg;
    struct pgs_stmt st[N_PG_STMT];
    struct pg_store *store;     /* NULL: a connection of pg_store_connect's */
    int read_depth;             /* nesting of store_read_begin() */
    struct pgs_conn *next;      /* every reader, for store_close */
};

struct pg_store {
    struct store common;            /* its engine: pg_engine */
    char *conninfo;
    struct pgs_conn *writer;
    pthread_t writer_thread;
    struct job_inbox inbox;         /* the writer's jobs */
    pthread_mutex_t lock;           /* guards the reader list, the listener's start */
    pthread_key_t reader_key;
    struct pgs_conn *readers;
    /* Hears the auth epoch's bumps (pgs_auth_generation); started by the
     * first call, under lock. listen_failed: it could not start; not tried
     * again. */
    _Atomic(struct pg_listener *) listener;
    bool listen_failed;
    double clock_due;           /* metrics_now() when to measure the clock again */
    struct pg_lease *hypervisor;    /* held by this process (pgs_hold_hypervisor) */
};

static inline struct pg_store *store_of(struct store *s)
{
    return (struct pg_store *)s;
}

/* Every statement of p reset (after a job ran out of memory, or
 * store_conn_reset). pg_engine.c. */
void pgs_reset_all(struct pgs_conn *p);

/* pg_writer.c: the writer thread (its argument: the pg_store), queueing a
 * job for it, and measuring the database's clock (on the writer's
 * connection, outside a transaction). */
void *pgs_writer_main(void *arg);
void pgs_submit(struct store *base, struct store_job *job);
void pgs_measure_clock(struct pg_store *s);

#endif
