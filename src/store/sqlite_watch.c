/* sqlite_watch.c: the SQLite store's watch on its database file (another
 * process, as the CLI, may write it: readers' kept snapshots must then
 * end) and on readers' snapshots left idle (sqlite_int.h).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/sqlite_int.h"
#include "util/log.h"

/* While this process writes the database's files (and this long after),
 * the watcher, woken by its own writes, looks again only this often. */
#define WATCH_QUIET_MS 5

/* How often, and how long at most, a change seen is looked for until it is
 * visible (watcher_main). */
#define CONFIRM_EVERY_MS 2
#define CONFIRM_MAX_MS 2000

/* Has this process written the database's files lately? */
static bool writing_lately(struct sq_store *s)
{
    return atomic_load(&s->writing) > 0 ||
           (int64_t)(sq_monotonic() * 1000) - atomic_load(&s->written) < WATCH_QUIET_MS;
}

/* ---------------------------------------------------------------------------
 * Changes by other processes, and snapshots left idle
 * ------------------------------------------------------------------------- */

/* The count moves: every reader begins a new snapshot, and the auth epoch
 * is read again (store_auth_generation). */
static void changed(struct sq_store *s)
{
    atomic_fetch_add(&s->changes, 1);
    atomic_fetch_add(&s->auth_gen, 1);
}

/* The database's data_version as the watcher's own connection sees it now:
 * it moves once a commit of another connection is visible to new
 * snapshots. False if it cannot be read. */
static bool data_version(sqlite3_stmt *st, int64_t *v)
{
    bool ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);          /* and its read transaction ends */
    return ok;
}

/* Another process (the CLI: a password changed, a user deleted) wrote the
 * database: its WAL was written. inotify says so at once, for nothing per
 * request; the change count moves and every reader begins a new snapshot.
 * But a commit is visible only once its frames are written and synced and
 * the WAL's index says so, after the last event its writes made: a reader
 * that began its snapshot in between would keep it, and the auth epoch read
 * then would be kept until the next change (an old password accepted). So
 * a change is confirmed too: after an event the watcher reads the
 * database's data_version every CONFIRM_EVERY_MS, and the count moves again
 * when it does (for CONFIRM_MAX_MS at most: a transaction may never
 * commit). This process's own writes wake the watcher too (every page
 * written): while it writes, the watcher looks only every WATCH_QUIET_MS,
 * so that another process's change is seen that much later at most, and a
 * commit does not cost a wake per page. */
static void *watcher_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-watch");
    struct sq_store *s = arg;
    char wal[PATH_MAX];
    snprintf(wal, sizeof wal, "%s-wal", s->base);
    struct pollfd fds[2] = {{s->watch_fd, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
    _Alignas(struct inotify_event) char buf[4096];
    int64_t seen = 0;
    data_version(s->watch_version, &seen);
    double unconfirmed_since = -1;      /* an event not followed by a new version yet */
    for (;;) {
        int n = poll(fds, 2, unconfirmed_since >= 0 ? CONFIRM_EVERY_MS : -1);
        if (n < 0 || (fds[1].revents & POLLIN))
            break;
        ssize_t got = n > 0 ? read(s->watch_fd, buf, sizeof buf) : 0;
        for (char *p = buf; got > 0 && p < buf + got;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (e->len && (!strcmp(e->name, wal) || !strcmp(e->name, s->base))) {
                changed(s);
                unconfirmed_since = sq_monotonic();
            }
            p += sizeof *e + e->len;
        }
        int64_t v;
        if (unconfirmed_since >= 0 && data_version(s->watch_version, &v) && v != seen) {
            seen = v;
            changed(s);
            unconfirmed_since = -1;
        } else if (unconfirmed_since >= 0 &&
                   sq_monotonic() - unconfirmed_since > CONFIRM_MAX_MS / 1000.0) {
            unconfirmed_since = -1;
        }
        bool stopping = false;
        while (!stopping && writing_lately(s))
            stopping = poll(&fds[1], 1, WATCH_QUIET_MS) != 0;
        if (stopping)
            break;
    }
    return NULL;
}

void sq_end_stale_snapshots(struct sq_store *s)
{
    uint64_t changes = atomic_load(&s->changes);
    double now = sq_monotonic();
    pthread_mutex_lock(&s->lock);
    for (struct sq_conn *c = s->readers; c; c = c->next) {
        if (pthread_mutex_trylock(&c->use) != 0)
            continue;       /* in use: its thread renews it */
        if (c->kept && !sq_snapshot_current(c, changes, now))
            sq_end_kept(c);
        pthread_mutex_unlock(&c->use);
    }
    pthread_mutex_unlock(&s->lock);
}

/* A thread that stops reading (no requests come its way) would keep its
 * snapshot, and with it WAL frames that a checkpoint could otherwise free:
 * the reaper ends such snapshots every SNAPSHOT_MAX_AGE, so that none is
 * kept much longer than that even while nothing is checkpointed (the
 * checkpointer ends those that commits made stale before each pass). */
static void *reaper_main(void *arg)
{
    pthread_setname_np(pthread_self(), "store-reaper");
    struct sq_store *s = arg;
    struct pollfd stop = {s->stop_fd, POLLIN, 0};
    while (poll(&stop, 1, (int)(SNAPSHOT_MAX_AGE * 1000)) == 0)
        sq_end_stale_snapshots(s);
    return NULL;
}

bool sq_watch_start(struct sq_store *s, char *err, int errlen)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (!(s->base = strdup(base))) {
        snprintf(err, (size_t)errlen, "out of memory");
        return false;
    }
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        strcpy(dir, ".");
    s->watch_conn = sq_conn_open(s->path, false, false, err, errlen);
    if (!s->watch_conn || sqlite3_prepare_v2(s->watch_conn->db, "PRAGMA data_version", -1,
                                             &s->watch_version, NULL) != SQLITE_OK) {
        if (s->watch_conn)
            snprintf(err, (size_t)errlen, "cannot watch %s for changes: %s", s->path,
                     sqlite3_errmsg(s->watch_conn->db));
        return false;
    }
    s->watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    s->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (s->watch_fd < 0 || s->stop_fd < 0 ||
        inotify_add_watch(s->watch_fd, dir, IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                                IN_MOVED_TO) < 0 ||
        pthread_create(&s->watcher, NULL, watcher_main, s) != 0) {
        snprintf(err, (size_t)errlen, "cannot watch %s for changes: %s", dir, strerror(errno));
        return false;
    }
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        uint64_t one = 1;
        ssize_t w = write(s->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(s->watcher, NULL);
        snprintf(err, (size_t)errlen, "cannot start the snapshot reaper");
        return false;
    }
    s->watching = true;
    return true;
}

void sq_watch_stop(struct sq_store *s)
{
    if (s->watching) {
        uint64_t one = 1;
        ssize_t w = write(s->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(s->watcher, NULL);
        pthread_join(s->reaper, NULL);
    }
    if (s->watch_fd >= 0)
        close(s->watch_fd);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    sqlite3_finalize(s->watch_version);
    if (s->watch_conn)
        sq_conn_close(s->watch_conn);
    free(s->base);
}
