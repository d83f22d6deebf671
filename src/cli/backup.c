/* backup.c: `db backup FILE` and `db restore FILE`, and the lock that keeps
 * a restore from swapping the database under a daemon.
 *
 * `serve` holds a shared flock(2) on its database file for as long as it
 * runs; `db restore` takes it exclusively, without waiting, and so refuses
 * while any daemon serves that file. flock locks are apart from SQLite's own
 * (fcntl) locks on Linux, so neither disturbs the other. A lock names a file,
 * not a path: a daemon that got its lock on a file that a restore had just
 * replaced takes it again on the file now at the path.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/pg.h"
#include "store/store.h"

/* The lock on the database file at path (made empty if there is none, for
 * serve: SQLite takes an empty file as a new database); its descriptor, or
 * -1 with a reason. exclusive: do not wait, fail with EWOULDBLOCK. */
int cli_db_lock(const char *path, bool exclusive, char *err, int errlen)
{
    if (!exclusive)
        cli_make_parent(path);
    for (int tries = 0; tries < 10; tries++) {
        int fd = open(path, (exclusive ? O_RDWR : O_RDWR | O_CREAT) | O_CLOEXEC, 0640);
        if (fd < 0) {
            bool denied = errno == EACCES || errno == EPERM || errno == EROFS;
            snprintf(err, (size_t)errlen, denied ? "database %s cannot be written: %s"
                                                 : "cannot open database %s: %s",
                     path, strerror(errno));
            return -1;
        }
        int rc;
        do
            rc = flock(fd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            int e = errno;
            close(fd);
            snprintf(err, (size_t)errlen, "%s: %s", path,
                     e == EWOULDBLOCK ? "an attachd daemon is serving this database (stop it "
                                        "first)"
                                      : strerror(e));
            errno = e;
            return -1;
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino)
            return fd;
        close(fd);          /* replaced meanwhile: lock the file now there */
    }
    snprintf(err, (size_t)errlen, "%s keeps being replaced", path);
    return -1;
}

int cmd_db_backup(int argc, char **argv)
{
    static const char *const names[] = {"db", NULL};
    struct cli c = {.command = "db backup", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    const char *dest = c.positional[0];
    int status;
    struct stat st;
    char err[1024];
    if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
        status = cli_error("db backup: %s is a directory; name the backup file", dest);
        goto out;
    }
    struct store *s = cli_open_store_at(&c, false, &status);
    if (!s)
        goto out;
    status = CLI_OK;
    if (store_backup(s, dest, err, sizeof err) < 0) {
        fprintf(stderr, "attachd: db backup: %s\n", err);
        status = CLI_FAILED;
    } else {
        printf("%s: a consistent copy of %s\n", dest, cli_db_path(&c));
    }
    store_close(s);
out:
    cli_done(&c);
    return status;
}

/* Copy src to dst (made 0600, fsync'd): the restored database. */
static bool copy_file(const char *src, const char *dst, char *err, int errlen)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = in >= 0 && out >= 0;
    char buf[64 * 1024];
    ssize_t n = 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; ok && off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            ok = w > 0;
            off += w > 0 ? w : 0;
        }
    }
    ok = ok && n == 0 && fsync(out) == 0;
    if (!ok)
        snprintf(err, (size_t)errlen, "cannot copy %s to %s: %s", src, dst, strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok;
}

int cmd_db_restore(int argc, char **argv)
{
    static const char *const names[] = {"db", NULL};
    struct cli c = {.command = "db restore", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    const char *from = c.positional[0], *db = cli_db_path(&c);
    char err[2 * PATH_MAX + 512], tmp[PATH_MAX], side[PATH_MAX];
    int version, status = CLI_USAGE, lock = -1;
    struct stat st;
    if (pg_is_conninfo(db)) {
        cli_error("db restore: %s is a PostgreSQL database: restore it with pg_restore or psql "
                  "(`db restore` replaces an SQLite database file)",
                  pg_describe(db, tmp, sizeof tmp));
        goto out;
    }
    if (store_check_file(from, &version, err, sizeof err) < 0) {
        cli_error("db restore: %s", err);
        goto out;
    }
    /* No daemon may serve the database while it is replaced. */
    if (stat(db, &st) == 0 && (lock = cli_db_lock(db, true, err, sizeof err)) < 0) {
        cli_error("db restore: %s", err);
        goto out;
    }
    status = CLI_FAILED;
    snprintf(tmp, sizeof tmp, "%s.restore-%ld", db, (long)getpid());
    if (!copy_file(from, tmp, err, sizeof err)) {
        fprintf(stderr, "attachd: db restore: %s\n", err);
        unlink(tmp);
        goto out;
    }
    /* The old database's WAL and its index belong to the old file: left
     * beside the new one, SQLite would apply the old changes to it. */
    const char *suffix[] = {"-wal", "-shm", "-journal"};
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", db, suffix[i]);
        if (unlink(side) != 0 && errno != ENOENT) {
            fprintf(stderr, "attachd: db restore: cannot remove %s: %s\n", side,
                    strerror(errno));
            unlink(tmp);
            goto out;
        }
    }
    if (rename(tmp, db) != 0) {
        fprintf(stderr, "attachd: db restore: cannot put %s in place: %s\n", db,
                strerror(errno));
        unlink(tmp);
        goto out;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", db);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    /* Open it once as the commands do: an older backup is migrated now. */
    struct store *s = cli_open_store_at(&c, false, &status);
    if (s) {
        store_close(s);
        status = CLI_OK;
        printf("%s: restored from %s (schema version %d)\n", db, from, version);
    }
out:
    if (lock >= 0)
        close(lock);
    cli_done(&c);
    return status;
}
