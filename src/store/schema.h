/* schema.h: the versioned schema. Migration N takes a database from
 * user_version N-1 to N; each runs in its own transaction. */
#ifndef ATTACHD_SCHEMA_H
#define ATTACHD_SCHEMA_H

#include <sqlite3.h>

/* Bring db to the newest version. Returns 0, or -1 with a reason in err
 * (including "made by a newer attachd"). */
int schema_migrate(sqlite3 *db, int *from, int *to, char *err, int errlen);
/* The version this binary writes. */
int schema_latest(void);

#endif
