/* pg_helpers.h: a PostgreSQL database of its own for a test.
 *
 * The cluster is named by $ATTACHD_PG, a libpq connection string of a user
 * who may create databases: scripts/run-tests sets it to what
 * `scripts/pg-env conninfo` prints when that cluster answers. Without it the
 * PostgreSQL tests are skipped, except under CI ($CI=true), where they fail:
 * CI starts a cluster (.ci/run), and one that is missing or does not answer
 * is a failure there, not a reason to test less. Each test gets a fresh
 * database ("attachd_unit_<pid>_<n>"), dropped at the end. Header-only,
 * like helpers.h.
 */
#ifndef ATTACHD_TEST_PG_HELPERS_H
#define ATTACHD_TEST_PG_HELPERS_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pg_db {
    char name[64];
    char conninfo[512];
};

static inline const char *pg_cluster(void)
{
    const char *s = getenv("ATTACHD_PG");
    return s && *s ? s : NULL;
}

/* Under CI a test without its cluster fails instead of skipping. */
static inline bool pg_required(void)
{
    const char *ci = getenv("CI");
    return ci && !strcmp(ci, "true");
}

static void pg_quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Run one statement on the cluster's own database (or on db's); false if it failed. */
static inline bool pg_admin(const struct pg_db *db, const char *sql)
{
    const char *base = pg_cluster();
    if (!base)
        return false;
    PGconn *c = PQconnectdb(db ? db->conninfo : base);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PQsetNoticeProcessor(c, pg_quiet_notice, NULL);     /* "... skipping" */
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "pg_admin: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "pg_admin: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok;
}

/* One integer from a query on db (-1 on failure). */
static inline long long pg_admin_int(const struct pg_db *db, const char *sql)
{
    PGconn *c = PQconnectdb(db->conninfo);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            v = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

/* A fresh, empty database; false when there is no cluster. */
static inline bool pg_db_create(struct pg_db *db)
{
    static atomic_int n;
    const char *base = pg_cluster();
    if (!base)
        return false;
    snprintf(db->name, sizeof db->name, "attachd_unit_%ld_%d", (long)getpid(),
             atomic_fetch_add(&n, 1));
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db->name);
    pg_admin(NULL, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
    if (!pg_admin(NULL, sql))
        return false;
    snprintf(db->conninfo, sizeof db->conninfo, "%s dbname=%s", base, db->name);
    return true;
}

static inline void pg_db_drop(struct pg_db *db)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    pg_admin(NULL, sql);
}

#endif
