/* volfile.c: volume files in the volume directory.
 *
 * Invariants:
 *  - A volume id maps to one file name, always the same, that cannot leave
 *    the directory: ids are [A-Za-z0-9._~:-] (no '/'), and the name is
 *    prefixed, so "." and ".." become "vol-..img" and "vol-...img". Ids too
 *    long for "vol-<id>.img" in 255 bytes get "vol+<prefix>+<sha256>.img";
 *    '+' is not an id character, so the two forms never collide.
 *  - A file appears whole or not at all: it is made under a temporary name
 *    and linked into place (link() never replaces), so a failure (ENOSPC,
 *    EACCES, EROFS) or a crash half-way leaves no volume file, and two
 *    creators racing for the same id agree on one file.
 *  - Files are 0600: libvirt's DAC driver hands each disk to the QEMU user
 *    while attached and back to root afterwards. The directory, though, must
 *    be searchable by that user, which libvirt does not arrange.
 */
#include "driver/volfile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/fs.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/id.h"

#define NAME_PREFIX_KEEP 100    /* characters of a long id kept readable */

bool volfile_name(const char *volume_id, char out[256])
{
    size_t len = strlen(volume_id);
    if (!id_valid(volume_id, len))
        return false;
    if (len + strlen("vol-.img") <= 255) {
        snprintf(out, 256, "vol-%s.img", volume_id);
        return true;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256(h, (const unsigned char *)volume_id, len);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(out, 256, "vol+%.*s+%s.img", NAME_PREFIX_KEEP, volume_id, hex);
    return true;
}

/* mkdir -p, 0755 for what it makes (whatever the umask). */
static int make_dirs(const char *dir, struct driver_error *err)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        driver_fail(err, DRIVER_REFUSED, "directory path too long: %s", dir);
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) == 0) {
            if (chmod(p, 0755) != 0) {
                driver_fail(err, DRIVER_REFUSED, "cannot chmod %s: %s", p, strerror(errno));
                return -1;
            }
        } else if (errno != EEXIST) {
            driver_fail(err, DRIVER_REFUSED, "cannot create the directory %s: %s",
                        p, strerror(errno));
            return -1;
        }
        *s = c;
        if (c == '\0')
            return 0;
    }
}

/* Can `user` search every directory from / down to dir? Checked by mode
 * bits (owner, group, other); ACLs are not read. */
static bool reachable_by(const char *dir, const char *user, char *why, size_t why_size)
{
    struct passwd pw, *pwp = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof buf, &pwp) != 0 || !pwp)
        return true;            /* no such local user: nothing to check here */
    gid_t groups[64];
    int ngroups = 64;
    if (getgrouplist(user, pw.pw_gid, groups, &ngroups) < 0)
        ngroups = 0;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        struct stat st;
        if (stat(p, &st) != 0)
            return true;        /* the caller reports a missing directory */
        mode_t bit = S_IXOTH;
        if (st.st_uid == pw.pw_uid) {
            bit = S_IXUSR;
        } else {
            for (int i = 0; i < ngroups; i++)
                if (groups[i] == st.st_gid)
                    bit = S_IXGRP;
            if (st.st_gid == pw.pw_gid)
                bit = S_IXGRP;
        }
        if (!(st.st_mode & bit)) {
            snprintf(why, why_size, "%s (mode %04o) is not searchable by %s", p,
                     (unsigned)(st.st_mode & 07777), user);
            return false;
        }
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) {
            if (strcmp(p, "/") == 0)
                return true;
            strcpy(p, "/");
            continue;
        }
        *slash = '\0';
    }
}

static enum driver_rc existing(const char *path, int64_t bytes, struct driver_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return driver_fail(err, DRIVER_REFUSED, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return driver_fail(err, DRIVER_REFUSED, "%s exists and is not a regular file", path);
    if (st.st_size != bytes)
        return driver_fail(err, DRIVER_REFUSED, "%s exists with %lld bytes, not %lld", path,
                           (long long)st.st_size, (long long)bytes);
    return DRIVER_OK;
}

enum driver_rc volfile_dir(const char *dir, const char *hv_user, struct driver_error *err)
{
    char why[PATH_MAX + 64];
    if (make_dirs(dir, err) != 0)
        return DRIVER_REFUSED;
    if (hv_user && !reachable_by(dir, hv_user, why, sizeof why))
        return driver_fail(err, DRIVER_REFUSED, "the hypervisor could not open files in %s: %s",
                           dir, why);
    return DRIVER_OK;
}

enum driver_rc volfile_create(const char *dir, const char *volume_id, int64_t bytes,
                              const char *hv_user, char *path, size_t path_size,
                              struct driver_error *err)
{
    char name[256];
    if (!volfile_name(volume_id, name))
        return driver_fail(err, DRIVER_REFUSED, "invalid volume id (1-255 characters of "
                           "A-Z a-z 0-9 . _ ~ : -)");
    if (bytes <= 0)
        return driver_fail(err, DRIVER_REFUSED, "a volume needs a positive size, not %lld",
                           (long long)bytes);
    if (!dir || dir[0] != '/')
        return driver_fail(err, DRIVER_REFUSED, "the volume directory must be an absolute path");
    if ((size_t)snprintf(path, path_size, "%s/%s", dir, name) >= path_size)
        return driver_fail(err, DRIVER_REFUSED, "volume path too long");

    enum driver_rc rc = volfile_dir(dir, hv_user, err);
    if (rc != DRIVER_OK)
        return rc;

    struct stat st;
    if (lstat(path, &st) == 0)
        return existing(path, bytes, err);

    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.vol-new-XXXXXX", dir) >= (int)sizeof tmp)
        return driver_fail(err, DRIVER_REFUSED, "volume path too long");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return driver_fail(err, DRIVER_REFUSED, "cannot create a file in %s: %s",
                           dir, strerror(errno));
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, bytes) != 0 || fsync(fd) != 0)
        rc = driver_fail(err, DRIVER_REFUSED, "cannot make %s of %lld bytes: %s", path,
                         (long long)bytes, strerror(errno));
    close(fd);
    if (rc == DRIVER_OK && link(tmp, path) != 0) {
        if (errno == EEXIST)                    /* someone else made it meanwhile */
            rc = existing(path, bytes, err);
        else
            rc = driver_fail(err, DRIVER_REFUSED, "cannot create %s: %s", path, strerror(errno));
    }
    unlink(tmp);
    if (rc == DRIVER_OK) {                      /* the new name, durably */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return rc;
}

enum driver_rc volfile_delete(const char *dir, const char *path, struct driver_error *err)
{
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    const char *name = path + dl + 1;
    bool ours = strncmp(path, dir, dl) == 0 && path[dl] == '/' && !strchr(name, '/') &&
                (!strncmp(name, "vol-", 4) || !strncmp(name, "vol+", 4)) &&
                strlen(name) > 8 && !strcmp(name + strlen(name) - 4, ".img");
    if (!ours)
        return driver_fail(err, DRIVER_REFUSED, "%s is not a volume file of %.*s",
                           path, (int)dl, dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return driver_fail(err, DRIVER_REFUSED, "cannot remove %s: %s", path, strerror(errno));
    return DRIVER_OK;
}

enum driver_rc volfile_probe(const char *path, int64_t *bytes, bool *block,
                             struct driver_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return driver_fail(err, errno == ENOENT ? DRIVER_NOT_FOUND : DRIVER_REFUSED,
                           "cannot stat %s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) {
        *bytes = st.st_size;
        *block = false;
        return DRIVER_OK;
    }
    if (!S_ISBLK(st.st_mode))
        return driver_fail(err, DRIVER_REFUSED, "%s is neither a regular file nor a block device",
                           path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return driver_fail(err, DRIVER_REFUSED, "cannot open %s: %s", path, strerror(errno));
    uint64_t size = 0;
    int r = ioctl(fd, BLKGETSIZE64, &size);
    int e = errno;
    close(fd);
    if (r != 0)
        return driver_fail(err, DRIVER_REFUSED, "cannot size %s: %s", path, strerror(e));
    *bytes = (int64_t)size;
    *block = true;
    return DRIVER_OK;
}

bool volfile_direct_ok(const char *path, char *why, size_t why_size)
{
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return true;
    }
    if (errno != EINVAL)
        return true;            /* another problem: let the hypervisor name it */
    snprintf(why, why_size, "the file system of %s does not support O_DIRECT", path);
    return false;
}
