/* pg_conn_int.h: what the two files of a PostgreSQL connection share:
 * pg.c (connecting, transactions, the clock) and pg_exchange.c (the
 * pipeline, statements, errors). Not part of pg.h's interface. */
#ifndef ATTACHD_STORE_PG_CONN_INT_H
#define ATTACHD_STORE_PG_CONN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/pg.h"

/* The transaction commands every connection has prepared besides its own
 * statements. */
enum {
    I_BEGIN_READ, I_BEGIN_WRITE, I_BEGIN_SERIALIZABLE, I_SAVEPOINT, I_ROLLBACK_TO, I_RELEASE,
    I_COMMIT, I_ROLLBACK, I_CLOCK, I_UNFLUSHED, N_INTERNAL
};

#define MAX_DEFERRED 6

/* TX_LOST: the connection was lost while the transaction was open; the
 * transaction is gone, and stays refused (STORE_UNAVAILABLE) until its owner
 * ends it, even once the connection is made again, so that its later
 * statements can never run outside it. */
enum tx { TX_NONE, TX_OPEN, TX_FAILED, TX_DOOMED, TX_LOST };

/* The savepoint: none, deferred (not sent yet), or sent. One at a time. */
enum sp { SP_NONE, SP_DEFERRED, SP_SENT };

struct pg_conn {
    PGconn *conn;
    char *conninfo;
    char appname[64];
    const char *const *sql;
    int n;
    struct pg_stmt *st;
    int defer[MAX_DEFERRED];            /* internal commands to send first */
    int ndefer;
    int unread;                         /* syncs whose results are still to be read */
    enum tx tx;
    enum sp sp;
    bool begun;                         /* the transaction's BEGIN was sent */
    bool last_ran;                      /* the last exchange's own command ran (not
                                         * skipped after an earlier one failed) */
    bool lost;
    int64_t changes;
    char sqlstate[6], constraint[64], message[256];
    double next_try, backoff;
    uint64_t reconnects;
};

/* The names of internal command i ("i3") and of statement i ("s3"), as
 * prepared on every connection. */
void pgc_iname(char out[12], int i);
void pgc_sname(char out[12], int i);

/* One exchange (pg_exchange.c): the deferred commands, then internal
 * command `cmd` (>= 0) or the statement st, then a sync, every result
 * read. 0, or -store_rc; a statement's rows are in st->res; *out_res (if
 * given) gets the last command's result. The exchange that opens a
 * transaction and finds the connection lost runs once more on a new
 * connection (pg.h says why). */
int pgc_exchange(struct pg_conn *c, int cmd, struct pg_stmt *st, PGresult **out_res);
/* Send cmd (after the deferred ones) and a sync, not waiting: its result is
 * read before the next exchange. */
void pgc_send_nowait(struct pg_conn *c, int cmd);
/* Defer internal command cmd to go with the next exchange (at most
 * MAX_DEFERRED); is cmd the last one deferred? */
void pgc_defer(struct pg_conn *c, int cmd);
bool pgc_deferred_last(const struct pg_conn *c, int cmd);

#endif
