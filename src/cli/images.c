/* images.c: `image add|del|list|show`, the images servers are made from.
 *
 * `image add` copies the file into the image directory (--image-dir,
 * [images] dir) rather than pointing at it: the image must not change or go
 * away under the servers whose disks it backs, and attachd can only promise
 * that of a file it owns. The copy keeps holes (a sparse raw image stays
 * sparse), is written under a temporary name, synced, and renamed into
 * place before the record is committed; so a crash leaves at most a file
 * that no record names, never a record without its file. The format is read
 * from the file's header, never guessed from its name or taken from the
 * user: a qcow2 header makes a qcow2 image, anything else is raw, and
 * formats attachd does not take (or a qcow2 image that names a backing or
 * data file, which QEMU would open from the host) are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/store.h"
#include "util/id.h"

#define COPY_BLOCK (1 << 20)

/* ---- the file --------------------------------------------------------------------- */

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Formats QEMU would read as something other than raw: refused, by name. */
static const struct {
    size_t at;
    const char *magic;
    size_t len;
    const char *name;
} foreign[] = {
    {0, "KDMV", 4, "a vmdk image"}, {0, "# Disk DescriptorFile", 21, "a vmdk image"},
    {0, "conectix", 8, "a vpc (vhd) image"}, {0, "vhdxfile", 8, "a vhdx image"},
    {0, "QED\0", 4, "a qed image"}, {0, "LUKS\xba\xbe", 6, "a LUKS volume"},
    {0x40, "\x7f\x10\xda\xbe", 4, "a vdi image"},
    {0, "WithoutFreeSpace", 16, "a parallels image"}, {0, "cloop", 5, "a cloop image"},
};

/* The format and virtual size of the disk whose first bytes are head[n]:
 * NULL, or why the file is refused. */
static const char *probe(const unsigned char *head, size_t n, int64_t file_size,
                         const char **format, int64_t *virtual_size)
{
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        if (n >= foreign[i].at + foreign[i].len &&
            !memcmp(head + foreign[i].at, foreign[i].magic, foreign[i].len))
            return foreign[i].name;
    if (n < 4 || memcmp(head, "QFI\xfb", 4) != 0) {
        *format = "raw";
        *virtual_size = file_size;
        return NULL;
    }
    /* the qcow2 header: its version at 4, the backing file
     * offset at 8, virtual size at 24, encryption at 32, and from version 3
     * the incompatible features at 72 (bit 2: an external data file) */
    if (n < 104)
        return "a truncated qcow2 image";
    uint32_t version = be32(head + 4);
    if (version != 2 && version != 3)
        return "a qcow2 image of an unknown version";
    if (be64(head + 8) != 0)
        return "a qcow2 image with a backing file";
    if (be32(head + 32) != 0)
        return "an encrypted qcow2 image";
    if (version == 3 && (be64(head + 72) & 4))
        return "a qcow2 image with an external data file";
    *format = "qcow2";
    *virtual_size = (int64_t)be64(head + 24);
    return *virtual_size > 0 ? NULL : "a qcow2 image without a size";
}

struct copied {
    int64_t size;
    char md5[33], sha512[129];
};

static bool all_zero(const unsigned char *p, size_t n)
{
    return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static void hex(const unsigned char *raw, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
}

/* Copy from (open) to a new file dest, keeping holes, hashing as it goes;
 * synced. 0, or -1 with a reason in err (dest removed). */
static int copy_file(int from, const char *dest, struct copied *out, char *err, size_t errlen)
{
    unsigned char *buf = malloc(COPY_BLOCK);
    gnutls_hash_hd_t md5 = NULL, sha = NULL;
    int to = -1, rc = -1;
    out->size = 0;
    unlink(dest);       /* what an interrupted add left */
    if (!buf || gnutls_hash_init(&md5, GNUTLS_DIG_MD5) < 0 ||
        gnutls_hash_init(&sha, GNUTLS_DIG_SHA512) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((to = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        snprintf(err, errlen, "%s: %s", dest, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(from, buf, COPY_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "reading: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        gnutls_hash(md5, buf, (size_t)n);
        gnutls_hash(sha, buf, (size_t)n);
        if (all_zero(buf, (size_t)n)) {
            if (lseek(to, n, SEEK_CUR) < 0)
                goto io_error;
        } else {
            for (ssize_t done = 0; done < n;) {
                ssize_t w = write(to, buf + done, (size_t)(n - done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0)
                    goto io_error;
                done += w;
            }
        }
        out->size += n;
    }
    if (ftruncate(to, out->size) < 0 || fsync(to) < 0)
        goto io_error;
    unsigned char d5[16], d512[64];
    gnutls_hash_output(md5, d5);
    gnutls_hash_output(sha, d512);
    hex(d5, sizeof d5, out->md5);
    hex(d512, sizeof d512, out->sha512);
    rc = 0;
    goto out;
io_error:
    snprintf(err, errlen, "%s: %s", dest, strerror(errno));
out:
    if (to >= 0 && close(to) < 0 && rc == 0) {
        snprintf(err, errlen, "%s: %s", dest, strerror(errno));
        rc = -1;
    }
    if (rc < 0 && to >= 0)
        unlink(dest);
    if (md5)
        gnutls_hash_deinit(md5, NULL);
    if (sha)
        gnutls_hash_deinit(sha, NULL);
    free(buf);
    return rc;
}

/* A regular file to read, open; -1 after saying why not. */
static int open_source(const char *what, const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_error("image add: %s %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        cli_error("image add: %s %s is not a regular file", what, path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Copy the file `path` to dir/id.suffix (absolute, in ar) through a
 * temporary name. NULL after saying why not. */
static const char *copy_in(struct arena *ar, const char *what, const char *path,
                           const char *dir, const char *id, const char *suffix,
                           struct copied *made)
{
    struct stat st;
    int fd = open_source(what, path, &st);
    if (fd < 0)
        return NULL;
    const char *dest = arena_printf(ar, "%s/%s.%s", dir, id, suffix);
    const char *part = arena_printf(ar, "%s.part", dest);
    char err[600];
    int rc = copy_file(fd, part, made, err, sizeof err);
    close(fd);
    if (rc == 0 && rename(part, dest) != 0) {
        snprintf(err, sizeof err, "%s: %s", dest, strerror(errno));
        unlink(part);
        rc = -1;
    }
    if (rc < 0) {
        fprintf(stderr, "attachd: image add: copying %s %s: %s\n", what, path, err);
        return NULL;
    }
    return dest;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---- add -------------------------------------------------------------------------- */

enum store_rc cli_find_image(struct store_conn *r, struct arena *ar, const char *key,
                             struct image *out)
{
    enum store_rc rc = store_image_get(r, ar, key, out);
    if (rc != STORE_NOTFOUND)
        return rc;
    struct image *all;
    int n;
    if ((rc = store_image_list(r, ar, &all, &n)) != STORE_OK)
        return rc;
    for (int i = 0; i < n; i++) {
        if (!strcmp(all[i].name, key)) {
            *out = all[i];
            return STORE_OK;
        }
    }
    return STORE_NOTFOUND;
}

static int do_add(struct store_conn *w, void *arg)
{
    enum store_rc rc = store_image_add(w, arg);
    return rc == STORE_OK ? 0 : rc == STORE_EXISTS ? CLI_USAGE : CLI_FAILED;
}

static void remove_copies(const struct image *img)
{
    const char *files[] = {img->path, img->kernel, img->initrd};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i])
            unlink(files[i]);
}

/* The file's format and virtual size, from its header: 0, or the exit
 * status after saying why not. */
static int read_header(const char *path, struct image *img)
{
    struct stat st;
    unsigned char head[512];
    int fd = open_source("--file", path, &st);
    if (fd < 0)
        return CLI_USAGE;
    ssize_t n = pread(fd, head, sizeof head, 0);
    close(fd);
    if (n < 0)
        return cli_error("image add: --file %s: %s", path, strerror(errno));
    if (n == 0)
        return cli_error("image add: --file %s is empty", path);
    const char *why = probe(head, (size_t)n, st.st_size, &img->disk_format, &img->virtual_size);
    if (why)
        return cli_error("image add: --file %s is %s; attachd takes raw and qcow2 images "
                         "(without backing or data files): convert it with qemu-img convert "
                         "-O qcow2", path, why);
    return CLI_OK;
}

static int add(struct cli *c, struct store *s, struct arena *ar, struct image *img)
{
    char dir[4096];
    const char *dir_opt = cli_get(c, "image-dir");
    if (!cli_absolute_dir(dir_opt, dir))
        return cli_error("image add: cannot make the image directory %s: %s", dir_opt,
                         strerror(errno));
    struct image old;
    struct store_conn *r = store_reader(s);
    enum store_rc rc = r ? cli_find_image(r, ar, img->id, &old) : STORE_ERROR;
    if (rc == STORE_NOTFOUND && r)
        rc = cli_find_image(r, ar, img->name, &old);
    if (rc == STORE_OK)
        return cli_error("image add: image %s (%s) exists already; the id and the name of an "
                         "image are its own", old.id, old.name);
    if (rc != STORE_NOTFOUND)
        return CLI_FAILED;
    int status = read_header(cli_get(c, "file"), img);
    if (status != CLI_OK)
        return status;
    /* every file readable before anything is copied: a wrong name is the
     * user's (exit 2), a failed copy the system's (exit 1) */
    static const char *const extra[] = {"--kernel", "--initrd"};
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        const char *name = extra[i] + 2;
        int fd = cli_given(c, name) ? open_source(extra[i], cli_get(c, name), &st) : -2;
        if (fd == -1)
            return CLI_USAGE;
        if (fd >= 0)
            close(fd);
    }
    struct copied disk, other;
    img->path = copy_in(ar, "--file", cli_get(c, "file"), dir, img->id, img->disk_format, &disk);
    bool ok = img->path != NULL;
    if (ok && cli_given(c, "kernel"))
        ok = (img->kernel = copy_in(ar, "--kernel", cli_get(c, "kernel"), dir, img->id,
                                    "kernel", &other)) != NULL;
    if (ok && cli_given(c, "initrd"))
        ok = (img->initrd = copy_in(ar, "--initrd", cli_get(c, "initrd"), dir, img->id,
                                    "initrd", &other)) != NULL;
    if (!ok) {
        remove_copies(img);
        return CLI_FAILED;
    }
    sync_dir(dir);
    img->size = disk.size;
    if (!strcmp(img->disk_format, "raw"))
        img->virtual_size = disk.size;
    img->checksum = arena_strdup(ar, disk.md5);
    img->hash_value = arena_strdup(ar, disk.sha512);
    int wrc = store_write(s, do_add, img);
    if (wrc != 0) {
        remove_copies(img);
        if (wrc == CLI_USAGE)
            return cli_error("image add: the id %s or the name \"%s\" was taken meanwhile",
                             img->id, img->name);
        fprintf(stderr, "attachd: image add: the database write failed\n");
        return CLI_FAILED;
    }
    printf("%s\n", img->id);
    return CLI_OK;
}

int cmd_image_add(int argc, char **argv)
{
    static const char *const names[] = {"id", "name", "file", "kernel", "initrd", "cmdline",
                                        "image-dir", "db", NULL};
    struct cli c = {.command = "image add", .names = names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    struct arena ar;
    arena_init(&ar);
    char now[32];
    store_now(now);
    struct image img = {.id = cli_get(&c, "id"), .name = cli_get(&c, "name"),
                        .cmdline = cli_get(&c, "cmdline"), .created_at = now,
                        .updated_at = now};
    int status = CLI_USAGE;
    if (!img.name || !cli_given(&c, "file"))
        cli_error("image add: --name and --file are required");
    else if (!cli_name_ok(img.name))
        cli_error("image add: --name must be 1-255 printable characters");
    else if (img.id && !id_valid(img.id, strlen(img.id)))
        cli_error("image add: --id must be 1-255 characters of A-Z a-z 0-9 . _ ~ : -");
    else if ((cli_given(&c, "initrd") || cli_given(&c, "cmdline")) && !cli_given(&c, "kernel"))
        cli_error("image add: --initrd and --cmdline describe a direct kernel boot: they need "
                  "--kernel");
    else if (img.cmdline && strlen(img.cmdline) > 4096)
        cli_error("image add: --cmdline is longer than 4096 characters");
    else
        status = CLI_OK;
    struct store *s = status == CLI_OK ? cli_open_store_at(&c, false, &status) : NULL;
    if (s) {
        if (!img.id) {
            char *id = arena_alloc(&ar, UUID_STR_LEN + 1);
            id_uuid4(id);
            img.id = id;
        }
        status = add(&c, s, &ar, &img);
    }
    store_close(s);
    arena_release(&ar);
    cli_done(&c);
    return status;
}

/* ---- del ---------------------------------------------------------------------------- */

struct del_job {
    const char *id;
    int64_t servers;
};

static int do_del(struct store_conn *w, void *arg)
{
    struct del_job *j = arg;
    enum store_rc rc = store_image_del(w, j->id);
    if (rc == STORE_EXISTS) {
        store_image_users(w, j->id, &j->servers);
        return CLI_USAGE;
    }
    return rc == STORE_OK ? 0 : rc == STORE_NOTFOUND ? CLI_USAGE : CLI_FAILED;
}

int cmd_image_del(int argc, char **argv)
{
    static const char *const names[] = {"db", NULL};
    struct cli c = {.command = "image del", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    int status = CLI_OK;
    struct arena ar;
    arena_init(&ar);
    struct store *s = cli_open_store_at(&c, false, &status);
    struct image img;
    struct store_conn *r = s ? store_reader(s) : NULL;
    enum store_rc rc = r ? cli_find_image(r, &ar, c.positional[0], &img) : STORE_ERROR;
    if (s && rc == STORE_NOTFOUND) {
        status = cli_error("image del: unknown image \"%s\"", c.positional[0]);
    } else if (s && rc != STORE_OK) {
        status = CLI_FAILED;
    } else if (s) {
        struct del_job j = {.id = img.id};
        int wrc = store_write(s, do_del, &j);
        if (wrc == CLI_USAGE && j.servers > 0)
            status = cli_error("image del: image %s is in use by %lld servers, whose disks "
                               "may be backed by its file; delete them first", img.id,
                               (long long)j.servers);
        else if (wrc == CLI_USAGE)
            status = cli_error("image del: unknown image \"%s\"", c.positional[0]);
        else if (wrc != 0)
            status = CLI_FAILED;
        if (wrc == 0) {
            /* the record first: a crash now leaves files nobody names */
            remove_copies(&img);
            printf("deleted image %s (%s)\n", img.id, img.name);
        }
    }
    store_close(s);
    arena_release(&ar);
    cli_done(&c);
    return status;
}

/* ---- list, show ------------------------------------------------------------------- */

int cmd_image_list(int argc, char **argv)
{
    static const char *const names[] = {"db", "format", NULL};
    static const char *const cols[] = {"id", "name", "disk_format", "size#", "virtual_size#",
                                       "kernel_boot", "created_at", NULL};
    struct cli c = {.command = "image list", .names = names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    int status = CLI_OK;
    struct arena ar;
    arena_init(&ar);
    struct store *s = cli_table_format_ok(&c) ? cli_open_store_at(&c, false, &status) : NULL;
    struct image *all;
    int n;
    if (!s && status == CLI_OK)
        status = CLI_USAGE;
    else if (s && store_image_list(store_reader(s), &ar, &all, &n) != STORE_OK)
        status = CLI_FAILED;
    if (s && status == CLI_OK) {
        struct cli_table *t = cli_table_new(&c, cols);
        for (int i = 0; i < n; i++) {
            const char *cells[] = {all[i].id, all[i].name, all[i].disk_format,
                                   cli_num(&ar, all[i].size), cli_num(&ar, all[i].virtual_size),
                                   all[i].kernel ? "true" : "false", all[i].created_at};
            cli_table_row(t, cells);
        }
        cli_table_print(t);
    }
    store_close(s);
    arena_release(&ar);
    cli_done(&c);
    return status;
}

int cmd_image_show(int argc, char **argv)
{
    static const char *const names[] = {"db", "format", NULL};
    static const char *const cols[] = {"id", "name", "disk_format", "size#", "virtual_size#",
                                       "checksum", "sha512", "path", "kernel", "initrd",
                                       "cmdline", "servers#", "created_at", "updated_at", NULL};
    struct cli c = {.command = "image show", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    int status = CLI_OK;
    struct arena ar;
    arena_init(&ar);
    struct store *s = cli_table_format_ok(&c) ? cli_open_store_at(&c, false, &status) : NULL;
    struct store_conn *r = s ? store_reader(s) : NULL;
    struct image img;
    int64_t servers = 0;
    enum store_rc rc = r ? cli_find_image(r, &ar, c.positional[0], &img) : STORE_ERROR;
    if (rc == STORE_OK)
        rc = store_image_users(r, img.id, &servers);
    if (!s && status == CLI_OK)
        status = CLI_USAGE;
    else if (s && rc == STORE_NOTFOUND)
        status = cli_error("image show: unknown image \"%s\"", c.positional[0]);
    else if (s && rc != STORE_OK)
        status = CLI_FAILED;
    if (s && status == CLI_OK) {
        const char *cells[] = {img.id, img.name, img.disk_format, cli_num(&ar, img.size),
                               cli_num(&ar, img.virtual_size), img.checksum, img.hash_value,
                               img.path, img.kernel, img.initrd, img.cmdline,
                               cli_num(&ar, servers), img.created_at, img.updated_at};
        cli_print_record(&c, cols, cells);
    }
    store_close(s);
    arena_release(&ar);
    cli_done(&c);
    return status;
}
