/* libvirt_domain.c: the domains attachd defines for its servers
 * (driver.h: domain_define, domain_undefine, domain_power, console_log,
 * domain_list), on libvirt.c's connection (libvirt_int.h).
 *
 * A server's domain is named "attachd-<server id>" and is persistent; its
 * metadata names the server and the owner (the database), its files are in
 * <instance dir>/<domain UUID>/:
 *   disk.qcow2    the root disk: a copy-on-write overlay of the image file,
 *                 made by qemu-img (the image itself is never written)
 *   console.log   what the guest writes on its serial console (virtlogd
 *                 writes it; `virsh console` still reaches the console)
 *
 * Invariants:
 *  - The overlay appears whole or not at all: qemu-img writes a temporary
 *    name, renamed into place. A define that fails removes the server's
 *    directory: nothing uses it while no domain is defined.
 *  - A power change is confirmed by the state libvirt reports after the
 *    call, never by the call's return alone.
 *  - undefine never touches a domain that has the UUID but is not the
 *    server's (another name, another owner), nor define one, nor power one
 *    that another attachd defined: DRIVER_REFUSED. (power takes any other
 *    domain: a server bound to an existing one with `server add --domain`.)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver/libvirt_int.h"
#include "driver/libvirt_xml.h"
#include "driver/volfile.h"
#include "util/log.h"

/* What console_log returns at most: the end of the log (as Nova). */
#define CONSOLE_MAX (100 * 1024)
#define OVERLAY "disk.qcow2"
#define CONSOLE "console.log"

extern char **environ;

/* ------------------------------------------------------------------ */
/* files                                                               */

static bool instance_path(const struct lv_settings *s, const char *uuid, const char *file,
                          char out[PATH_MAX])
{
    return snprintf(out, PATH_MAX, "%s/%s%s%s", s->instance_dir, uuid, file ? "/" : "",
                    file ? file : "") < PATH_MAX;
}

/* Remove a server's directory and whatever is in it (the overlay, the
 * console log and the copies virtlogd rotated, a temporary overlay). */
static void remove_instance(const struct lv_settings *s, const char *uuid)
{
    char dir[PATH_MAX], path[PATH_MAX + 256];
    if (!instance_path(s, uuid, NULL, dir))
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0)
                log_warn("libvirt driver: cannot remove %s: %s", path, strerror(errno));
        }
    closedir(d);
    if (rmdir(dir) != 0)
        log_warn("libvirt driver: cannot remove %s: %s", dir, strerror(errno));
}

/* Run qemu-img with argv (argv[0] "qemu-img"); its own words in err when
 * it fails. */
static enum driver_rc qemu_img(char *const argv[], struct driver_error *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return driver_fail(err, DRIVER_REFUSED, "cannot run qemu-img: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (e != 0) {
        close(fds[0]);
        return driver_fail(err, DRIVER_REFUSED, "cannot run qemu-img: %s (install qemu-utils)",
                           strerror(e));
    }
    char out[sizeof err->message];
    size_t n = 0;
    ssize_t r;
    char sink[256];
    while ((r = read(fds[0], n < sizeof out - 1 ? out + n : sink,
                     n < sizeof out - 1 ? sizeof out - 1 - n : sizeof sink)) > 0 ||
           (r < 0 && errno == EINTR))
        if (r > 0 && n < sizeof out - 1)
            n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return DRIVER_OK;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return driver_fail(err, DRIVER_REFUSED, "qemu-img could not make the root disk: %s",
                       n ? out : "it failed without a message");
}

/* The size of the disk an image is: a raw file's (or block device's) own
 * size, a qcow2 file's virtual size (its header's big-endian size field,
 * at offset 24). */
static enum driver_rc image_bytes(const char *path, const char *format, int64_t *bytes,
                                  struct driver_error *err)
{
    bool block;
    enum driver_rc rc = volfile_probe(path, bytes, &block, err);
    if (rc != DRIVER_OK) {
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", err->message);
        return driver_fail(err, DRIVER_REFUSED, "the image: %s", why);
    }
    if (strcmp(format, "qcow2") != 0)
        return DRIVER_OK;
    unsigned char h[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : pread(fd, h, sizeof h, 0);
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof h || memcmp(h, "QFI\xfb", 4) != 0)
        return driver_fail(err, DRIVER_REFUSED, "the image %s is not a qcow2 file", path);
    uint64_t v = 0;
    for (int i = 24; i < 32; i++)
        v = v << 8 | h[i];
    if (v > INT64_MAX)
        return driver_fail(err, DRIVER_REFUSED, "the image %s has an impossible size", path);
    *bytes = (int64_t)v;
    return DRIVER_OK;
}

/* The overlay of spec's image at path, as large as spec->disk_bytes but
 * never smaller than the image (the guest would find its file system cut
 * short). An existing one is kept: an earlier define made it whole. */
static enum driver_rc make_overlay(const struct driver_domain_spec *spec, const char *path,
                                   struct driver_error *err)
{
    if (access(path, F_OK) == 0)
        return DRIVER_OK;
    int64_t bytes;
    enum driver_rc rc = image_bytes(spec->image, spec->image_format, &bytes, err);
    if (rc != DRIVER_OK)
        return rc;
    if (spec->disk_bytes > bytes)
        bytes = spec->disk_bytes;
    char tmp[PATH_MAX + 16], size[32];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    snprintf(size, sizeof size, "%lld", (long long)bytes);
    char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", (char *)spec->image_format,
                    "-b", (char *)spec->image, tmp, size, NULL};
    unlink(tmp);
    rc = qemu_img(argv, err);
    if (rc == DRIVER_OK && rename(tmp, path) != 0)
        rc = driver_fail(err, DRIVER_REFUSED, "cannot make %s: %s", path, strerror(errno));
    if (rc != DRIVER_OK)
        unlink(tmp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* domains                                                             */

/* Whether this machine's CPU has hardware virtualization (vmx or svm in
 * /proc/cpuinfo's flags). Some virtual machines offer /dev/kvm without it,
 * and libvirt then calls KVM usable while its guests never boot. */
static bool cpu_virtualizes(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return true;            /* cannot tell: believe libvirt */
    char line[8192];
    bool flags = false, has = false;
    while (!has && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        char *list = strchr(line, ':'), *save = NULL;
        flags = list != NULL;
        for (char *tok = list ? strtok_r(list + 1, " \t\n", &save) : NULL; tok && !has;
             tok = strtok_r(NULL, " \t\n", &save))
            has = !strcmp(tok, "vmx") || !strcmp(tok, "svm");
    }
    fclose(f);
    return has || !flags;
}

/* Is the URI's libvirt on this machine (its CPU is this one's)? */
static bool local_uri(const char *uri)
{
    return !strncmp(uri, "qemu:///", 8) || !strncmp(uri, "qemu+unix:///", 13);
}

/* KVM or TCG: as configured, else KVM when libvirt can run it here (its
 * domain capabilities for kvm; asked until libvirt answers either way,
 * then kept) and, for a libvirt on this machine, its CPU virtualizes. */
static const char *virt_type(struct driver *d, virConnectPtr c)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct lv_settings *s = lv_settings(d);
    pthread_mutex_lock(&mu);
    if (s->virt == VIRT_AUTO) {
        char *caps = virConnectGetDomainCapabilities(c, NULL, "x86_64", "q35", "kvm", 0);
        if (caps || virConnectIsAlive(c) == 1) {     /* a lost connection tells nothing */
            bool cpu = !local_uri(s->uri) || cpu_virtualizes();
            s->virt = caps && cpu ? VIRT_KVM : VIRT_QEMU;
            log_info("libvirt driver: new domains use %s",
                     s->virt == VIRT_KVM ? "KVM"
                     : caps ? "TCG (this CPU has no vmx or svm flag: KVM guests would not run)"
                            : "TCG (KVM is not usable here)");
        }
        free(caps);
    }
    enum driver_virt v = s->virt == VIRT_KVM ? VIRT_KVM : VIRT_QEMU;
    pthread_mutex_unlock(&mu);
    return v == VIRT_KVM ? "kvm" : "qemu";     /* unknown yet: TCG runs anywhere */
}

/* Is dom the server's domain: its name, and attachd's metadata naming the
 * server and this owner? */
static enum driver_rc ours(struct driver *d, virConnectPtr c, virDomainPtr dom,
                           const char *server, struct driver_error *err)
{
    char name[DRIVER_NAME_MAX + 1];
    driver_domain_name(server, name);
    const char *has = virDomainGetName(dom);
    if (!has || strcmp(has, name) != 0)
        return driver_fail(err, DRIVER_REFUSED, "the domain with that UUID is %s, not %s",
                           has ? has : "?", name);
    char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LVXML_NS, 0);
    if (!xml) {
        if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN_METADATA)
            return lv_error(d, c, err);
        return driver_fail(err, DRIVER_REFUSED, "domain %s was not defined by attachd", name);
    }
    struct arena ar;
    arena_init(&ar);
    const char *id, *owner;
    enum driver_rc rc = DRIVER_OK;
    if (!lvxml_metadata(xml, &ar, &id, &owner) || strcmp(id, server) != 0)
        rc = driver_fail(err, DRIVER_REFUSED, "domain %s is not server %s's", name, server);
    else if (strcmp(owner, lv_settings(d)->owner) != 0)
        rc = driver_fail(err, DRIVER_REFUSED, "domain %s belongs to another attachd (%s)",
                         name, owner);
    arena_release(&ar);
    free(xml);
    return rc;
}

/* The domain of that UUID, if any: *dom NULL when there is none. */
static enum driver_rc by_uuid(struct driver *d, virConnectPtr c, const char *uuid,
                              virDomainPtr *dom, struct driver_error *err)
{
    if ((*dom = virDomainLookupByUUIDString(c, uuid)))
        return DRIVER_OK;
    return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? DRIVER_OK : lv_error(d, c, err);
}

enum driver_rc lv_domain_define(struct driver *d, const struct driver_domain_spec *spec,
                                struct driver_error *err)
{
    const struct lv_settings *s = lv_settings(d);
    if (!s->instance_dir)
        return driver_fail(err, DRIVER_REFUSED, "no instance directory: servers cannot be made");
    if ((!spec->image || !spec->image_format) && !spec->root_volume)
        return driver_fail(err, DRIVER_REFUSED, "a server needs an image or a root volume");
    if (!spec->uuid || !driver_uuid_ok(spec->uuid))
        return driver_fail(err, DRIVER_REFUSED, "invalid domain UUID '%.64s'",
                           spec->uuid ? spec->uuid : "");
    virConnectPtr c = lv_connection(d, err);
    if (!c)
        return DRIVER_UNAVAILABLE;
    virDomainPtr dom;
    enum driver_rc rc = by_uuid(d, c, spec->uuid, &dom, err);
    if (rc == DRIVER_OK && dom) {               /* defined already */
        rc = ours(d, c, dom, spec->server, err);
        virDomainFree(dom);
        virConnectClose(c);
        return rc;
    }
    /* none defined: from here on, what fails leaves no directory */
    bool fresh = rc == DRIVER_OK;
    char dir[PATH_MAX], overlay[PATH_MAX], console[PATH_MAX], name[DRIVER_NAME_MAX + 1];
    if (rc == DRIVER_OK && (!instance_path(s, spec->uuid, NULL, dir) ||
                            !instance_path(s, spec->uuid, OVERLAY, overlay) ||
                            !instance_path(s, spec->uuid, CONSOLE, console)))
        rc = driver_fail(err, DRIVER_REFUSED, "instance directory path too long");
    if (rc == DRIVER_OK && (rc = volfile_dir(dir, s->hv_user, err)) == DRIVER_OK && spec->image)
        rc = make_overlay(spec, overlay, err);
    if (rc == DRIVER_OK) {
        struct arena ar;
        arena_init(&ar);
        char why[PATH_MAX + 64];
        driver_domain_name(spec->server, name);
        bool direct = spec->image ? volfile_direct_ok(overlay, why, sizeof why)
                                  : spec->root_volume->block ||
                                        volfile_direct_ok(spec->root_volume->path, why,
                                                          sizeof why);
        struct lvxml_domain x = {.spec = spec, .name = name, .owner = s->owner,
                                 .type = virt_type(d, c), .overlay = spec->image ? overlay : NULL,
                                 .console = console, .direct = direct};
        if (!(dom = virDomainDefineXML(c, lvxml_domain_xml(&ar, &x))))
            rc = lv_error(d, c, err);
        else
            virDomainFree(dom);
        arena_release(&ar);
    }
    if (fresh && rc != DRIVER_OK && rc != DRIVER_UNAVAILABLE)
        remove_instance(s, spec->uuid);     /* UNAVAILABLE: defined or not, a retry tells */
    virConnectClose(c);
    return rc;
}

enum driver_rc lv_domain_undefine(struct driver *d, const char *uuid, const char *server,
                                  struct driver_error *err)
{
    const struct lv_settings *s = lv_settings(d);
    if (!driver_uuid_ok(uuid))
        return driver_fail(err, DRIVER_REFUSED, "invalid domain UUID '%.64s'", uuid);
    virConnectPtr c = lv_connection(d, err);
    if (!c)
        return DRIVER_UNAVAILABLE;
    virDomainPtr dom;
    enum driver_rc rc = by_uuid(d, c, uuid, &dom, err);
    if (rc == DRIVER_OK && dom && (rc = ours(d, c, dom, server, err)) == DRIVER_OK) {
        /* undefined means gone: libvirt keeps a running domain as transient */
        if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0) {
            rc = lv_error(d, c, err);   /* its error, before the next call clears it */
            if (virDomainIsActive(dom) == 0)
                rc = DRIVER_OK;         /* it stopped all the same */
        }
        if (rc == DRIVER_OK &&
            virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                            VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                            VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
                                            VIR_DOMAIN_UNDEFINE_NVRAM) < 0)
            rc = lv_error(d, c, err);
        virDomainFree(dom);
        virDomainPtr again = NULL;
        if (rc == DRIVER_OK && (rc = by_uuid(d, c, uuid, &again, err)) == DRIVER_OK && again) {
            virDomainFree(again);
            rc = driver_fail(err, DRIVER_REFUSED, "domain %s is still defined after its undefine",
                             uuid);
        }
    }
    if (rc == DRIVER_OK && s->instance_dir)
        remove_instance(s, uuid);
    virConnectClose(c);
    return rc;
}

static int managed_save(virDomainPtr dom)
{
    return virDomainManagedSave(dom, 0);
}

/* Each change: the call, the state it leads to, and its name. */
static const struct {
    int (*call)(virDomainPtr dom);
    enum driver_state leads_to;
    const char *verb;
} powers[] = {
    [DP_START] = {virDomainCreate, DOMAIN_RUNNING, "start"},
    [DP_SHUTDOWN] = {virDomainShutdown, DOMAIN_SHUTOFF, "shut down"},
    [DP_DESTROY] = {virDomainDestroy, DOMAIN_SHUTOFF, "destroy"},
    [DP_PAUSE] = {virDomainSuspend, DOMAIN_PAUSED, "pause"},
    [DP_UNPAUSE] = {virDomainResume, DOMAIN_RUNNING, "unpause"},
    [DP_SAVE] = {managed_save, DOMAIN_SAVED, "save"},
};

/* Is a domain in `state` where `want` leads (off counts as off, saved or
 * not)? */
static bool arrived(enum driver_state state, enum driver_state want)
{
    return state == want || (want == DOMAIN_SHUTOFF && state == DOMAIN_SAVED);
}

/* DRIVER_REFUSED when dom carries attachd's metadata naming another owner. */
static enum driver_rc not_foreign(struct driver *d, virConnectPtr c, virDomainPtr dom,
                                  struct driver_error *err)
{
    char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LVXML_NS, 0);
    if (!xml)
        return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN_METADATA ? DRIVER_OK
                                                                   : lv_error(d, c, err);
    struct arena ar;
    arena_init(&ar);
    const char *server, *owner;
    enum driver_rc rc = DRIVER_OK;
    if (lvxml_metadata(xml, &ar, &server, &owner) && strcmp(owner, lv_settings(d)->owner) != 0)
        rc = driver_fail(err, DRIVER_REFUSED, "domain %s belongs to another attachd (%s)",
                         virDomainGetName(dom), owner);
    arena_release(&ar);
    free(xml);
    return rc;
}

enum driver_rc lv_domain_power(struct driver *d, const char *domain, enum driver_power what,
                               struct driver_error *err)
{
    if ((unsigned)what >= sizeof powers / sizeof powers[0])
        return driver_fail(err, DRIVER_REFUSED, "unknown power change %d", (int)what);
    virConnectPtr c;
    virDomainPtr dom;
    enum driver_rc rc = lv_open_domain(d, domain, &c, &dom, err);
    if (rc != DRIVER_OK)
        return rc;
    enum driver_state state, want = powers[what].leads_to;
    if ((rc = not_foreign(d, c, dom, err)) == DRIVER_OK &&
        (rc = lv_state(d, c, dom, &state, err)) == DRIVER_OK && !arrived(state, want)) {
        struct driver_error refused;
        enum driver_rc called = powers[what].call(dom) == 0 ? DRIVER_OK
                                                             : lv_error(d, c, &refused);
        /* the answer is the state now (a refusal may only say that the
         * domain got there meanwhile) */
        if (called == DRIVER_UNAVAILABLE)
            rc = driver_fail(err, called, "%s", refused.message);
        else if ((rc = lv_state(d, c, dom, &state, err)) == DRIVER_OK && !arrived(state, want))
            rc = called != DRIVER_OK ? driver_fail(err, called, "%s", refused.message)
                 : what == DP_SHUTDOWN ? DRIVER_PENDING
                                       : driver_fail(err, DRIVER_REFUSED, "the domain did not %s",
                                                     powers[what].verb);
    }
    lv_release(c, dom);
    return rc;
}

/* The last CONSOLE_MAX bytes of a file ("" when there is no such file). */
static enum driver_rc tail_file(const char *path, struct arena *ar, char **out, size_t *len,
                                struct driver_error *err)
{
    *out = arena_strdup(ar, "");
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? DRIVER_OK
                               : driver_fail(err, DRIVER_REFUSED, "cannot read %s: %s", path,
                                             strerror(errno));
    struct stat st;
    enum driver_rc rc = DRIVER_OK;
    if (fstat(fd, &st) != 0) {
        rc = driver_fail(err, DRIVER_REFUSED, "cannot read %s: %s", path, strerror(errno));
    } else {
        off_t from = st.st_size > CONSOLE_MAX ? st.st_size - CONSOLE_MAX : 0;
        size_t want = (size_t)(st.st_size - from);
        char *buf = arena_alloc(ar, want + 1);
        ssize_t r = 0;
        size_t n = 0;
        while (n < want && ((r = pread(fd, buf + n, want - n, from + (off_t)n)) > 0 ||
                            (r < 0 && errno == EINTR)))
            n += r > 0 ? (size_t)r : 0;
        if (r < 0)
            rc = driver_fail(err, DRIVER_REFUSED, "cannot read %s: %s", path, strerror(errno));
        buf[n] = '\0';
        *out = buf;
        *len = n;
    }
    close(fd);
    return rc;
}

enum driver_rc lv_console_log(struct driver *d, const char *domain, struct arena *ar, char **out,
                              size_t *len, struct driver_error *err)
{
    virConnectPtr c;
    virDomainPtr dom;
    enum driver_rc rc = lv_open_domain(d, domain, &c, &dom, err);
    if (rc != DRIVER_OK)
        return rc;
    char *xml = virDomainGetXMLDesc(dom, 0);
    const char *path = NULL;
    if (!xml)
        rc = lv_error(d, c, err);
    else if (!lvxml_console_path(xml, ar, &path))
        rc = driver_fail(err, DRIVER_REFUSED, "cannot parse the domain's XML");
    else if (!*path)
        rc = driver_fail(err, DRIVER_NOT_FOUND, "the domain's console is not logged to a file");
    else
        rc = tail_file(path, ar, out, len, err);
    free(xml);
    lv_release(c, dom);
    return rc;
}

/* Whether dom is one of this owner's server domains ("attachd-<server>"
 * with attachd's metadata naming that server and this owner). A domain that
 * vanished meanwhile, or has no such metadata, is not: *mine false. */
static enum driver_rc listed(struct driver *d, virConnectPtr c, virDomainPtr dom,
                             struct arena *ar, bool *mine, struct driver_error *err)
{
    *mine = false;
    const char *name = virDomainGetName(dom);
    if (!name || strncmp(name, "attachd-", 8) != 0)
        return DRIVER_OK;
    char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LVXML_NS, 0);
    if (!xml) {
        int code = virGetLastErrorCode();
        return code == VIR_ERR_NO_DOMAIN_METADATA || code == VIR_ERR_NO_DOMAIN
                   ? DRIVER_OK
                   : lv_error(d, c, err);
    }
    const char *server, *owner;
    char want[DRIVER_NAME_MAX + 1];
    if (lvxml_metadata(xml, ar, &server, &owner) && !strcmp(owner, lv_settings(d)->owner)) {
        driver_domain_name(server, want);
        *mine = !strcmp(want, name);
    }
    free(xml);
    return DRIVER_OK;
}

enum driver_rc lv_domain_list(struct driver *d, struct arena *ar, struct driver_domain **out,
                              int *n, struct driver_error *err)
{
    *out = NULL;
    *n = 0;
    virConnectPtr c = lv_connection(d, err);
    if (!c)
        return DRIVER_UNAVAILABLE;
    virDomainPtr *doms = NULL;
    int count = virConnectListAllDomains(c, &doms, 0);
    enum driver_rc rc = count < 0 ? lv_error(d, c, err) : DRIVER_OK;
    struct driver_domain *list = count > 0 ? arena_alloc(ar, sizeof *list * (size_t)count)
                                           : NULL;
    int found = 0;
    for (int i = 0; i < count; i++) {
        bool mine = false;
        if (rc == DRIVER_OK && (rc = listed(d, c, doms[i], ar, &mine, err)) == DRIVER_OK &&
            mine) {
            struct driver_domain *dd = &list[found];
            *dd = (struct driver_domain){0};
            int persistent = -1;
            snprintf(dd->name, sizeof dd->name, "%s", virDomainGetName(doms[i]));
            if (virDomainGetUUIDString(doms[i], dd->uuid) < 0 ||
                (persistent = virDomainIsPersistent(doms[i])) < 0)
                rc = lv_error(d, c, err);
            else
                rc = lv_state(d, c, doms[i], &dd->state, err);
            dd->persistent = persistent == 1;
            if (rc == DRIVER_NOT_FOUND)     /* undefined meanwhile: not listed */
                rc = DRIVER_OK;
            else if (rc == DRIVER_OK)
                found++;
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    virConnectClose(c);
    if (rc == DRIVER_OK) {
        *out = list;
        *n = found;
    }
    return rc;
}
