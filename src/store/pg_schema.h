/* pg_schema.h: the versioned schema on PostgreSQL (schema.h is SQLite's):
 * the same versions, each migration written in PostgreSQL's dialect. */
#ifndef ATTACHD_PG_SCHEMA_H
#define ATTACHD_PG_SCHEMA_H

/* Bring the database of `conninfo` to STORE_SCHEMA_VERSION, each migration
 * in its own transaction, all of them under an advisory lock (two nodes
 * starting at once migrate once). 0, or -1 with a reason in err (including
 * "made by a newer attachd"). */
int pg_schema_migrate(const char *conninfo, int *from, int *to, char *err, int errlen);
/* How many migrations this binary has a PostgreSQL form of (tests check it
 * is every one of schema.c's). */
int pg_schema_count(void);

#endif
