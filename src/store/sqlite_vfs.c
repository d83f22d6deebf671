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
 *
 * At FULL, the WAL file is also made longer ahead of small commits, 1 MiB
 * of zeros at a time (WAL_CHUNK), as PostgreSQL fills a new WAL segment
 * with zeros (wal_init_zero): the commits after it write over blocks the
 * file already has, and their fdatasync flushes data only. A write past the
 * file's end makes ext4 commit its journal at that fdatasync (the new
 * length and blocks): for commits of 16 KiB, 208 to 303 us a commit alone
 * here against 180 with the zeros (their cost included), and under
 * libvirt's own config writes, which share that journal, far more. For a
 * commit of 128 KiB the zeros cost more than they save (325 against 295 to
 * 319 us), so a commit of WAL_PAD_BELOW or more goes past the end as it
 * is: the large batches of a busy writer. SQLite reads a WAL only up to the
 * last frame its index or its recovery finds valid; zeros are never one
 * (their salts are not the header's). The zeros are written only past the
 * file's end as fstat tells it at that moment, by the connection that
 * holds the WAL's write lock (SQLite writes the WAL under no other), so
 * they cover no frame of anybody's.
 *
 * And a connection that maps the database file (the readers: PRAGMA
 * mmap_size, sqlite.c) keeps its mapping while the file keeps its length.
 * SQLite drops a connection's mapping whenever its next snapshot finds that
 * anything was committed, and maps the file again at the next page it
 * fetches. On this project's hosts that costs a read some 55 us more after
 * every commit (munmap, mmap and the first page fault, where a pread costs
 * 1.3 us), which a reader pays at every request under sparse writes.
 * Linux keeps a shared mapping and the file's writes coherent (one page
 * cache), so a mapping as long as the file shows every byte a pread would;
 * SQLite reads from it only pages that are not in the WAL, which its locks
 * keep from changing under a snapshot. A file of another length (grown by a
 * checkpoint, or cut) is mapped again, as SQLite does.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/sqlite_int.h"

/* The most gathered before a write: under 128 KiB, the most that SQLite's
 * unix VFS writes in one call (it masks a write's length with 0x1ffff). */
#define GATHER_MAX (124 << 10)

/* An open file of this VFS: SQLite's own file object, `real`, behind it. */
struct shim {
    sqlite3_file base;
    sqlite3_file *real;
};

/* A database file, whether its connection syncs every commit, and whether
 * it maps the file (and how long the file was when it last did; -1 unknown). */
struct db_file {
    struct shim f;
    bool syncs_commits;
    bool maps;
    sqlite3_int64 mapped_length;
};

/* The WAL file grows by this much at a time, written with zeros, before a
 * commit of less than WAL_PAD_BELOW that would go past its end. */
#define WAL_CHUNK (1 << 20)
#define WAL_PAD_BELOW (64 << 10)

/* A WAL file, the bytes gathered for [off, off + len), its length as this
 * connection last made or saw it (-1: unknown), and how much was written
 * since the last sync (the commit being written, at FULL). */
struct wal_file {
    struct shim f;
    struct db_file *db;         /* its database's, opened before and closed after it */
    char *buf;                  /* GATHER_MAX bytes once anything was gathered */
    size_t len;
    sqlite3_int64 off;
    sqlite3_int64 length;
    sqlite3_int64 unsynced;
};

#define ROUND8(n) (((n) + 7) & ~(size_t)7)
#define REAL_AT(f, type) ((sqlite3_file *)((char *)(f) + ROUND8(sizeof(type))))

static sqlite3_vfs gather_vfs;

/* ---- calls passed to SQLite's file as they are ------------------------------- */

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((struct shim *)f)->real;
}

static int pass_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}

static int pass_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xRead(real_of(f), p, n, off);
}

static int pass_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xWrite(real_of(f), p, n, off);
}

static int pass_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int pass_sync(sqlite3_file *f, int flags)
{
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int pass_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int pass_lock(sqlite3_file *f, int lock)
{
    return real_of(f)->pMethods->xLock(real_of(f), lock);
}

static int pass_unlock(sqlite3_file *f, int lock)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}

static int pass_check_reserved(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int pass_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int pass_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int pass_device(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int pass_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **p)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, p);
}

static int pass_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void pass_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int pass_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static int pass_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, p);
}

static int pass_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

/* ---- the WAL file: gathered writes -------------------------------------------- */

static struct wal_file *wal_of(sqlite3_file *f)
{
    return (struct wal_file *)f;
}

/* Write [off, off + n) to the file; at FULL, if a commit of less than
 * WAL_PAD_BELOW so far would go past its end, make it WAL_CHUNK longer
 * first with zeros (the file's length is asked again then: another process
 * may have written the WAL since). */
static int wal_put(struct wal_file *w, const void *p, int n, sqlite3_int64 off)
{
    static const char zeros[64 << 10];
    sqlite3_int64 end = off + n;
    w->unsynced += n;
    if (end > w->length && w->unsynced < WAL_PAD_BELOW && w->db && w->db->syncs_commits) {
        if (pass_file_size(&w->f.base, &w->length) != SQLITE_OK)
            w->length = -1;
        else if (end > w->length) {
            sqlite3_int64 to = (end + WAL_CHUNK - 1) / WAL_CHUNK * WAL_CHUNK;
            for (sqlite3_int64 at = w->length; at < to;) {
                int k = to - at < (sqlite3_int64)sizeof zeros ? (int)(to - at) : (int)sizeof zeros;
                int rc = pass_write(&w->f.base, zeros, k, at);
                if (rc != SQLITE_OK) {
                    w->length = -1;
                    return rc;
                }
                at += k;
            }
            w->length = to;
        }
    }
    return pass_write(&w->f.base, p, n, off);
}

static int flush(struct wal_file *w)
{
    if (!w->len)
        return SQLITE_OK;
    int rc = wal_put(w, w->buf, (int)w->len, w->off);
    w->len = 0;
    return rc;
}

static int wal_close(sqlite3_file *f)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    int rc2 = pass_close(f);
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    int rc = flush(wal_of(f));
    return rc != SQLITE_OK ? rc : pass_read(f, p, n, off);
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
        return wal_put(w, p, n, off);
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
    if (rc == SQLITE_OK)
        rc = pass_truncate(f, size);
    w->length = -1;
    return rc;
}

static int wal_sync(sqlite3_file *f, int flags)
{
    struct wal_file *w = wal_of(f);
    int rc = flush(w);
    w->unsynced = 0;
    return rc != SQLITE_OK ? rc : pass_sync(f, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    int rc = flush(wal_of(f));
    return rc != SQLITE_OK ? rc : pass_file_size(f, size);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
    int rc = flush(wal_of(f));
    return rc != SQLITE_OK ? rc : pass_file_control(f, op, arg);
}

/* Version 1: the WAL file is never mapped. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = pass_lock,
    .xUnlock = pass_unlock,
    .xCheckReservedLock = pass_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = pass_sector_size,
    .xDeviceCharacteristics = pass_device,
};

/* ---- the database file: SQLite's, watching PRAGMA synchronous -------------- */

/* Does this level (PRAGMA synchronous's value) sync the WAL at every commit? */
static bool level_syncs_commits(const char *v)
{
    return !strcasecmp(v, "full") || !strcasecmp(v, "extra") || !strcmp(v, "2") ||
           !strcmp(v, "3");
}

static int db_file_control(sqlite3_file *f, int op, void *arg)
{
    struct db_file *d = (struct db_file *)f;
    if (op == SQLITE_FCNTL_PRAGMA) {
        char **a = arg;     /* a[1] the pragma, a[2] its value (NULL: a query) */
        if (a[2] && !strcasecmp(a[1], "synchronous"))
            d->syncs_commits = level_syncs_commits(a[2]);
    }
    int rc = pass_file_control(f, op, arg);
    if (op == SQLITE_FCNTL_MMAP_SIZE && rc == SQLITE_OK) {
        d->maps = *(sqlite3_int64 *)arg > 0;    /* the limit now in force */
        d->mapped_length = -1;
    }
    return rc;
}

/* ---- the database file: a mapping kept while the file keeps its length ------ */

static atomic_long maps_dropped;

long sq_vfs_maps_dropped(void)
{
    return atomic_load(&maps_dropped);
}

static int db_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    struct db_file *d = (struct db_file *)f;
    int rc = pass_fetch(f, off, n, p);
    if (rc == SQLITE_OK && d->maps && d->mapped_length < 0 &&
        pass_file_size(f, &d->mapped_length) != SQLITE_OK)
        d->mapped_length = -1;
    return rc;
}

/* p NULL: SQLite lets the whole mapping go (no page of it is in use). */
static int db_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    struct db_file *d = (struct db_file *)f;
    if (!p && d->maps && d->mapped_length >= 0) {
        sqlite3_int64 length;
        if (pass_file_size(f, &length) == SQLITE_OK && length == d->mapped_length)
            return SQLITE_OK;
        d->mapped_length = -1;
        atomic_fetch_add(&maps_dropped, 1);
    }
    return pass_unfetch(f, off, p);
}

static const sqlite3_io_methods db_methods = {
    .iVersion = 3,
    .xClose = pass_close,
    .xRead = pass_read,
    .xWrite = pass_write,
    .xTruncate = pass_truncate,
    .xSync = pass_sync,
    .xFileSize = pass_file_size,
    .xLock = pass_lock,
    .xUnlock = pass_unlock,
    .xCheckReservedLock = pass_check_reserved,
    .xFileControl = db_file_control,
    .xSectorSize = pass_sector_size,
    .xDeviceCharacteristics = pass_device,
    .xShmMap = pass_shm_map,
    .xShmLock = pass_shm_lock,
    .xShmBarrier = pass_shm_barrier,
    .xShmUnmap = pass_shm_unmap,
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
        *w = (struct wal_file){.f = {{&wal_methods}, r}, .length = -1};
        sqlite3_file *db = sqlite3_database_file_object(name);
        if (db && db->pMethods == &db_methods)
            w->db = (struct db_file *)db;
    } else {
        *(struct db_file *)f = (struct db_file){.f = {{&db_methods}, r}, .mapped_length = -1};
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
