/* sqlite_vfs.c: the VFS that attachd's connections open their databases
 * with (sqlite_int.h): SQLite's default one, except that a connection at
 * synchronous FULL gathers the frames of a commit in memory and writes
 * them to the WAL in a few large writes (up to GATHER_MAX bytes each), the
 * last just before the fsync that ends the commit.
 *
 * Why: SQLite writes a WAL frame as two writes, its 24-byte header and its
 * page. Under a stream of detaches a commit (about 56 of them) made some
 * 190 pwrites, each with its syscall, its inotify event (sqlite_watch.c)
 * and its page-cache walk: a fifth of the writer thread's time. Gathered,
 * the same bytes go to the same offsets in about one write per 30 frames.
 *
 * Why it is safe: the bytes, their offsets and their order are SQLite's;
 * only the moment they reach the file changes, and never past a point where
 * anybody could look at them:
 *   - Other connections (readers, the checkpointer, other processes) read a
 *     frame only once the WAL index says it is committed. At FULL, SQLite
 *     syncs the WAL before it updates the index, and the sync writes the
 *     gathered bytes first (a failed write fails the sync, so the commit).
 *     Below FULL there is no sync to hang the write on: nothing is gathered.
 *     The level is learnt from the connection's PRAGMA synchronous, which
 *     SQLite shows its VFS (SQLITE_FCNTL_PRAGMA); until one says FULL or
 *     EXTRA, nothing is gathered.
 *   - The connection itself: a read of the WAL file, its size, a
 *     truncation, a file control, closing it, and a write elsewhere than
 *     right after the gathered bytes write them first.
 *   - A crash loses only frames that no commit had ended: what SQLite's
 *     recovery ignores anyway.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/sqlite_int.h"

/* The most gathered before a write: under 128 KiB, the most that SQLite's
 * unix VFS writes in one call (it masks a write's length with 0x1ffff). */
#define GATHER_MAX (124 << 10)

/* A database file: SQLite's, and whether its connection syncs every commit. */
struct db_file {
    sqlite3_file base;
    sqlite3_file *real;
    bool syncs_commits;
};

/* A WAL file: SQLite's, and the bytes gathered for [off, off + len). */
struct wal_file {
    sqlite3_file base;
    sqlite3_file *real;
    struct db_file *db;         /* its database's, opened before and closed after it */
    char *buf;                  /* GATHER_MAX bytes once anything was gathered */
    size_t len;
    sqlite3_int64 off;
};

#define ROUND8(n) (((n) + 7) & ~(size_t)7)
#define REAL_AT(f, type) ((sqlite3_file *)((char *)(f) + ROUND8(sizeof(type))))

static sqlite3_vfs gather_vfs;

/* ---- the WAL file ---------------------------------------------------------- */

static struct wal_file *wal_of(sqlite3_file *f)
{
    return (struct wal_file *)f;
}

static int flush(struct wal_file *w)
{
    if (!w->len)
        return SQLITE_OK;
    int rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->off);
    w->len = 0;
    return rc;
}

static int wal_close(sqlite3_file *f)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, n, off);
}

static int wal_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    struct wal_file *w = wal_of(f);
    bool gathers = w->db && w->db->syncs_commits && n > 0 && (size_t)n < GATHER_MAX;
    if (gathers && !w->buf && !(w->buf = malloc(GATHER_MAX)))
        gathers = false;
    if (w->len && (!gathers || off != w->off + (sqlite3_int64)w->len ||
                   w->len + (size_t)n > GATHER_MAX)) {
        int rc = flush(w);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!gathers)
        return w->real->pMethods->xWrite(w->real, p, n, off);
    if (!w->len)
        w->off = off;
    memcpy(w->buf + w->len, p, (size_t)n);
    w->len += (size_t)n;
    return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

/* The rest as SQLite's own: the WAL file is never locked or mapped. */
static int wal_lock(sqlite3_file *f, int lock)
{
    return wal_of(f)->real->pMethods->xLock(wal_of(f)->real, lock);
}

static int wal_unlock(sqlite3_file *f, int lock)
{
    return wal_of(f)->real->pMethods->xUnlock(wal_of(f)->real, lock);
}

static int wal_check_reserved(sqlite3_file *f, int *out)
{
    return wal_of(f)->real->pMethods->xCheckReservedLock(wal_of(f)->real, out);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wal_sector_size(sqlite3_file *f)
{
    return wal_of(f)->real->pMethods->xSectorSize(wal_of(f)->real);
}

static int wal_device(sqlite3_file *f)
{
    return wal_of(f)->real->pMethods->xDeviceCharacteristics(wal_of(f)->real);
}

static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device,
};

/* ---- the database file: SQLite's, watching PRAGMA synchronous -------------- */

static struct db_file *db_of(sqlite3_file *f)
{
    return (struct db_file *)f;
}

/* Does this level (PRAGMA synchronous's value) sync the WAL at every commit? */
static bool level_syncs_commits(const char *v)
{
    return !strcasecmp(v, "full") || !strcasecmp(v, "extra") || !strcmp(v, "2") ||
           !strcmp(v, "3");
}

static int db_file_control(sqlite3_file *f, int op, void *arg)
{
    struct db_file *d = db_of(f);
    if (op == SQLITE_FCNTL_PRAGMA) {
        char **a = arg;     /* a[1] the pragma, a[2] its value (NULL: a query) */
        if (a[2] && !strcasecmp(a[1], "synchronous"))
            d->syncs_commits = level_syncs_commits(a[2]);
    }
    return d->real->pMethods->xFileControl(d->real, op, arg);
}

static int db_close(sqlite3_file *f)
{
    return db_of(f)->real->pMethods->xClose(db_of(f)->real);
}

static int db_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return db_of(f)->real->pMethods->xRead(db_of(f)->real, p, n, off);
}

static int db_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    return db_of(f)->real->pMethods->xWrite(db_of(f)->real, p, n, off);
}

static int db_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return db_of(f)->real->pMethods->xTruncate(db_of(f)->real, size);
}

static int db_sync(sqlite3_file *f, int flags)
{
    return db_of(f)->real->pMethods->xSync(db_of(f)->real, flags);
}

static int db_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return db_of(f)->real->pMethods->xFileSize(db_of(f)->real, size);
}

static int db_lock(sqlite3_file *f, int lock)
{
    return db_of(f)->real->pMethods->xLock(db_of(f)->real, lock);
}

static int db_unlock(sqlite3_file *f, int lock)
{
    return db_of(f)->real->pMethods->xUnlock(db_of(f)->real, lock);
}

static int db_check_reserved(sqlite3_file *f, int *out)
{
    return db_of(f)->real->pMethods->xCheckReservedLock(db_of(f)->real, out);
}

static int db_sector_size(sqlite3_file *f)
{
    return db_of(f)->real->pMethods->xSectorSize(db_of(f)->real);
}

static int db_device(sqlite3_file *f)
{
    return db_of(f)->real->pMethods->xDeviceCharacteristics(db_of(f)->real);
}

static int db_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **p)
{
    return db_of(f)->real->pMethods->xShmMap(db_of(f)->real, region, size, extend, p);
}

static int db_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return db_of(f)->real->pMethods->xShmLock(db_of(f)->real, offset, n, flags);
}

static void db_shm_barrier(sqlite3_file *f)
{
    db_of(f)->real->pMethods->xShmBarrier(db_of(f)->real);
}

static int db_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return db_of(f)->real->pMethods->xShmUnmap(db_of(f)->real, delete_flag);
}

static int db_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    return db_of(f)->real->pMethods->xFetch(db_of(f)->real, off, n, p);
}

static int db_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return db_of(f)->real->pMethods->xUnfetch(db_of(f)->real, off, p);
}

static const sqlite3_io_methods db_methods = {
    .iVersion = 3,
    .xClose = db_close,
    .xRead = db_read,
    .xWrite = db_write,
    .xTruncate = db_truncate,
    .xSync = db_sync,
    .xFileSize = db_file_size,
    .xLock = db_lock,
    .xUnlock = db_unlock,
    .xCheckReservedLock = db_check_reserved,
    .xFileControl = db_file_control,
    .xSectorSize = db_sector_size,
    .xDeviceCharacteristics = db_device,
    .xShmMap = db_shm_map,
    .xShmLock = db_shm_lock,
    .xShmBarrier = db_shm_barrier,
    .xShmUnmap = db_shm_unmap,
    .xFetch = db_fetch,
    .xUnfetch = db_unfetch,
};

/* ---- the VFS ------------------------------------------------------------------ */

static int gather_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                       int *out_flags)
{
    sqlite3_vfs *real = vfs->pAppData;
    if (!(flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)))
        return real->xOpen(real, name, f, flags, out_flags);   /* SQLite's own, in place */
    bool wal = flags & SQLITE_OPEN_WAL;
    sqlite3_file *r = wal ? REAL_AT(f, struct wal_file) : REAL_AT(f, struct db_file);
    f->pMethods = NULL;         /* SQLite calls no xClose if the open fails */
    int rc = real->xOpen(real, name, r, flags, out_flags);
    if (rc != SQLITE_OK || !r->pMethods)
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    if (wal) {
        struct wal_file *w = wal_of(f);
        *w = (struct wal_file){{&wal_methods}, r, NULL, NULL, 0, 0};
        sqlite3_file *db = sqlite3_database_file_object(name);
        if (db && db->pMethods == &db_methods)
            w->db = db_of(db);
    } else {
        *db_of(f) = (struct db_file){{&db_methods}, r, false};
    }
    return SQLITE_OK;
}

#define PASS(name, params, args)                                                               \
    static int gather_##name params                                                            \
    {                                                                                          \
        sqlite3_vfs *real = vfs->pAppData;                                                     \
        return real->x##name args;                                                             \
    }
PASS(Delete, (sqlite3_vfs * vfs, const char *p, int sync), (real, p, sync))
PASS(Access, (sqlite3_vfs * vfs, const char *p, int flags, int *out), (real, p, flags, out))
PASS(FullPathname, (sqlite3_vfs * vfs, const char *p, int n, char *out), (real, p, n, out))
PASS(Randomness, (sqlite3_vfs * vfs, int n, char *out), (real, n, out))
PASS(Sleep, (sqlite3_vfs * vfs, int us), (real, us))
PASS(CurrentTimeInt64, (sqlite3_vfs * vfs, sqlite3_int64 *t), (real, t))
PASS(GetLastError, (sqlite3_vfs * vfs, int n, char *out), (real, n, out))
#undef PASS

static int gather_CurrentTime(sqlite3_vfs *vfs, double *t)
{
    sqlite3_vfs *real = vfs->pAppData;
    return real->xCurrentTime(real, t);
}

static void *gather_DlOpen(sqlite3_vfs *vfs, const char *path)
{
    sqlite3_vfs *real = vfs->pAppData;
    return real->xDlOpen(real, path);
}

static void gather_DlError(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *real = vfs->pAppData;
    real->xDlError(real, n, out);
}

static void (*gather_DlSym(sqlite3_vfs *vfs, void *lib, const char *sym))(void)
{
    sqlite3_vfs *real = vfs->pAppData;
    return real->xDlSym(real, lib, sym);
}

static void gather_DlClose(sqlite3_vfs *vfs, void *lib)
{
    sqlite3_vfs *real = vfs->pAppData;
    real->xDlClose(real, lib);
}

bool sq_vfs_register(void)
{
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (!real || real->iVersion < 2)
        return false;
    size_t own = ROUND8(sizeof(struct wal_file) > sizeof(struct db_file) ? sizeof(struct wal_file)
                                                                          : sizeof(struct db_file));
    gather_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)(own + (size_t)real->szOsFile),
        .mxPathname = real->mxPathname,
        .zName = SQ_VFS,
        .pAppData = real,
        .xOpen = gather_open,
        .xDelete = gather_Delete,
        .xDlOpen = gather_DlOpen,
        .xDlError = gather_DlError,
        .xDlSym = gather_DlSym,
        .xDlClose = gather_DlClose,
        .xAccess = gather_Access,
        .xFullPathname = gather_FullPathname,
        .xRandomness = gather_Randomness,
        .xSleep = gather_Sleep,
        .xCurrentTime = gather_CurrentTime,
        .xGetLastError = gather_GetLastError,
        .xCurrentTimeInt64 = gather_CurrentTimeInt64,
    };
    return sqlite3_vfs_register(&gather_vfs, 0) == SQLITE_OK;
}
