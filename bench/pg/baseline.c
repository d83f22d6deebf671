/* baseline.c: the libpq baseline of bench/pg/run. What a detach costs
 * PostgreSQL with nothing of attachd around it: N threads, each with its own
 * connection, each detach its own SERIALIZABLE transaction running the
 * statements attachd's writer runs for one (src/store/pg_engine.c's texts):
 *
 *   BEGIN ISOLATION LEVEL SERIALIZABLE
 *   S_ATTACH_PARTS     the server, the volume and their attachment, one row
 *   S_ATTACH_DEL       DELETE FROM attachments WHERE id = $1
 *   S_VOLUME_SET_STATUS UPDATE volumes SET status = $2, updated_at = $3 WHERE id = $1
 *   COMMIT             (synchronous_commit as the database has it: on)
 *
 * each statement prepared once per connection and run with PQexecPrepared,
 * one round trip each (a plain client: no pipeline). With --epoch each
 * detach is also preceded by attachd's per-request credential check read
 * (S_AUTH_EPOCH, on its own, outside the transaction), as attachd does on
 * its reader connection.
 *
 * Detach K is volume dv-K on server ds-(K/4), bench/pg/run's dataset (K
 * in 7 digits, zeros in front, as bench/lua/detach.lua writes it). Each
 * thread detaches its own block of K in order (thread T of N: from
 * T*total/N), as each attachd node in bench/pg/run gets its own block: the
 * threads' transactions then touch rows (and index pages) apart, as
 * detaches spread over a large database would, rather than neighbours that
 * SERIALIZABLE's page-level predicate locks would set against each other.
 * With --interleave, thread T detaches T, T + N, T + 2N, ...: neighbours. A serialization
 * failure (40001) or deadlock (40P01) rolls back and runs the same K again
 * (counted as a retry); anything else that is not the expected answer is
 * counted as an error.
 *
 * Output on stdout: "START" after the warm-up, "END" after the measured
 * window (bench/pg/run reads PostgreSQL's CPU at each), then one line
 * "BENCH {json}" with the counts of the window.
 *
 * usage: baseline --conninfo STR --account ID [--threads 64] [--warmup 1]
 *                 [--duration 4] [--total 131072] [--epoch] [--interleave]
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERVER_COLS "id, account_id, user_id, name, vm_state, task_state, power_state, " \
                    "locked, locked_by, image_ref, flavor_ref, availability_zone, key_name, " \
                    "metadata, created_at, updated_at, launched_at, domain, fault, own_domain"
#define VOLUME_COLS "id, account_id, name, description, size, status, volume_type, " \
                    "availability_zone, snapshot_id, metadata, created_at, updated_at, path, " \
                    "adopted"
#define ATTACH_COLS "id, bdm_uuid, server_id, volume_id, device, tag, delete_on_termination, " \
                    "boot_index, created_at, status"
enum { SERVER_NCOLS = 20, VOLUME_NCOLS = 14 };

static const char *const SQL_PARTS =
    "SELECT s.*, v.*, a.* FROM (SELECT 1) one "
    "LEFT JOIN (SELECT " SERVER_COLS " FROM servers WHERE id = $1 "
    "AND ($3::text IS NULL OR account_id = $3)) s ON true "
    "LEFT JOIN (SELECT " VOLUME_COLS " FROM volumes WHERE id = $2 "
    "AND ($3::text IS NULL OR account_id = $3)) v ON true "
    "LEFT JOIN (SELECT " ATTACH_COLS " FROM attachments WHERE server_id = $1 "
    "AND volume_id = $2) a ON true";
static const char *const SQL_DEL = "DELETE FROM attachments WHERE id = $1";
static const char *const SQL_SET_STATUS =
    "UPDATE volumes SET status = $2, updated_at = $3 WHERE id = $1";
static const char *const SQL_EPOCH = "SELECT value FROM meta WHERE key = 'auth_epoch'";

static const char *conninfo, *account;
static int nthreads = 64, total = 131072;
static double warmup = 1, duration = 4;
static bool epoch, interleave;

static atomic_long done, retries, errors;
static atomic_bool stop, exhausted;

static void now_text(char out[64])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000));
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool prepare(PGconn *c, const char *name, const char *sql, int nparams)
{
    PGresult *r = PQprepare(c, name, sql, nparams, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "baseline: prepare %s: %s", name, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* 1: done, 0: retry (serialization failure, deadlock), -1: error */
static int outcome(PGresult *r, ExecStatusType want)
{
    if (PQresultStatus(r) == want)
        return 1;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01")))
        return 0;
    static atomic_int shown;
    if (atomic_fetch_add(&shown, 1) < 5)
        fprintf(stderr, "baseline: %s", PQresultErrorMessage(r));
    return -1;
}

static void simple(PGconn *c, const char *sql)
{
    PQclear(PQexec(c, sql));
}

/* One detach of K: 1 done, 0 to be retried, -1 failed. */
static int detach(PGconn *c, int k)
{
    char server[32], volume[32], now[64];
    snprintf(server, sizeof server, "ds-%07d", k / 4);
    snprintf(volume, sizeof volume, "dv-%07d", k);
    PGresult *r;
    int rc;
    if (epoch) {
        r = PQexecPrepared(c, "epoch", 0, NULL, NULL, NULL, 0);
        rc = outcome(r, PGRES_TUPLES_OK);
        PQclear(r);
        if (rc <= 0)
            return rc;
    }
    r = PQexec(c, "BEGIN ISOLATION LEVEL SERIALIZABLE");
    rc = outcome(r, PGRES_COMMAND_OK);
    PQclear(r);
    if (rc <= 0)
        return rc;

    const char *pv[3] = {server, volume, account};
    r = PQexecPrepared(c, "parts", 3, pv, NULL, NULL, 0);
    rc = outcome(r, PGRES_TUPLES_OK);
    char attachment[64] = "";
    if (rc > 0) {
        int acol = SERVER_NCOLS + VOLUME_NCOLS;
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, acol) || PQgetisnull(r, 0, 0) ||
            strcmp(PQgetvalue(r, 0, SERVER_NCOLS + 5), "in-use") != 0) {
            static atomic_int shown;
            if (atomic_fetch_add(&shown, 1) < 5)
                fprintf(stderr, "baseline: %s on %s: not found attached\n", volume, server);
            rc = -1;
        } else {
            snprintf(attachment, sizeof attachment, "%s", PQgetvalue(r, 0, acol));
        }
    }
    PQclear(r);
    if (rc > 0) {
        const char *pd[1] = {attachment};
        r = PQexecPrepared(c, "del", 1, pd, NULL, NULL, 0);
        rc = outcome(r, PGRES_COMMAND_OK);
        if (rc > 0 && strcmp(PQcmdTuples(r), "1") != 0)
            rc = -1;
        PQclear(r);
    }
    if (rc > 0) {
        now_text(now);
        const char *ps[3] = {volume, "available", now};
        r = PQexecPrepared(c, "set_status", 3, ps, NULL, NULL, 0);
        rc = outcome(r, PGRES_COMMAND_OK);
        if (rc > 0 && strcmp(PQcmdTuples(r), "1") != 0)
            rc = -1;
        PQclear(r);
    }
    if (rc > 0) {
        r = PQexec(c, "COMMIT");
        rc = outcome(r, PGRES_COMMAND_OK);
        /* a COMMIT of a failed transaction answers ROLLBACK */
        if (rc > 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0)
            rc = -1;
        PQclear(r);
        if (rc == 0)
            simple(c, "ROLLBACK");
        return rc;
    }
    simple(c, "ROLLBACK");
    return rc;
}

struct worker {
    PGconn *conn;
    int from, to, step; /* its own K: from, from + step, ... below to */
    pthread_t tid;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    PGconn *c = w->conn;
    for (int k = w->from; !atomic_load(&stop); k += w->step) {
        if (k >= w->to) {
            atomic_store(&exhausted, true);
            break;
        }
        int rc;
        while ((rc = detach(c, k)) == 0 && !atomic_load(&stop))
            atomic_fetch_add(&retries, 1);
        if (rc > 0)
            atomic_fetch_add(&done, 1);
        else if (rc < 0)
            atomic_fetch_add(&errors, 1);
    }
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: baseline --conninfo STR --account ID [--threads N] [--warmup S] "
                    "[--duration S] [--total K] [--epoch] [--interleave]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--epoch") || !strcmp(a, "--interleave")) {
            *(a[2] == 'e' ? &epoch : &interleave) = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--conninfo"))
            conninfo = v;
        else if (!strcmp(a, "--account"))
            account = v;
        else if (!strcmp(a, "--threads"))
            nthreads = atoi(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atof(v);
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else if (!strcmp(a, "--total"))
            total = atoi(v);
        else
            usage();
    }
    if (!conninfo || !account || nthreads < 1 || duration <= 0)
        usage();

    struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
    if (!ws)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        PGconn *c = ws[i].conn = PQconnectdb(conninfo);
        if (PQstatus(c) != CONNECTION_OK) {
            fprintf(stderr, "baseline: connect: %s", PQerrorMessage(c));
            return 1;
        }
        if (!prepare(c, "parts", SQL_PARTS, 3) || !prepare(c, "del", SQL_DEL, 1) ||
            !prepare(c, "set_status", SQL_SET_STATUS, 3) || !prepare(c, "epoch", SQL_EPOCH, 0))
            return 1;
        if (interleave) {
            ws[i].from = i, ws[i].to = total, ws[i].step = nthreads;
        } else {
            ws[i].from = (int)((long)total * i / nthreads);
            ws[i].to = (int)((long)total * (i + 1) / nthreads);
            ws[i].step = 1;
        }
    }
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&ws[i].tid, NULL, worker, &ws[i]) != 0) {
            fprintf(stderr, "baseline: pthread_create failed\n");
            return 1;
        }

    usleep((useconds_t)(warmup * 1e6));
    long d0 = atomic_load(&done), r0 = atomic_load(&retries), e0 = atomic_load(&errors);
    double t0 = mono();
    printf("START\n");
    fflush(stdout);
    usleep((useconds_t)(duration * 1e6));
    long d1 = atomic_load(&done), r1 = atomic_load(&retries), e1 = atomic_load(&errors);
    double t1 = mono();
    printf("END\n");
    fflush(stdout);
    atomic_store(&stop, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(ws[i].tid, NULL);
    for (int i = 0; i < nthreads; i++)
        PQfinish(ws[i].conn);
    printf("BENCH {\"detaches\": %ld, \"seconds\": %.6f, \"rate\": %.1f, \"retries\": %ld, "
           "\"errors\": %ld, \"exhausted\": %s, \"threads\": %d, \"epoch\": %s, "
           "\"total_done\": %ld}\n",
           d1 - d0, t1 - t0, (double)(d1 - d0) / (t1 - t0), r1 - r0, e1 - e0,
           atomic_load(&exhausted) ? "true" : "false", nthreads, epoch ? "true" : "false",
           atomic_load(&done));
    free(ws);
    return 0;
}
