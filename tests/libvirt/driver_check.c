/* driver_check: drive the real libvirt driver (src/driver/libvirt.c) from
 * the command line, for tests/libvirt/test_driver.py and for people.
 *
 *   driver_check URI VOLDIR COMMAND [ARGS...]   one command, then close
 *   driver_check URI VOLDIR shell               commands from stdin, one a line
 *
 * Commands:
 *   lookup DOMAIN
 *   attach DOMAIN ATTACHMENT_ID VOLUME_ID PATH scsi|virtio [TARGET]
 *   detach DOMAIN ATTACHMENT_ID
 *   list DOMAIN
 *   volume-create VOLUME_ID BYTES
 *   volume-delete PATH
 *   probe PATH
 *   concurrent DOMAIN N scsi|virtio
 *                          N volumes attached from N threads at once, then
 *                          detached from N threads at once (the driver's
 *                          callers are several workers)
 *   domain-locks UUID_A UUID_B
 *                          the driver's per-domain lock: while A's is held,
 *                          another thread takes B's ("others_ran") but not
 *                          A's ("same_waited")
 *   define UUID SERVER VCPUS RAM_MB IMAGE FORMAT DISK_BYTES [KERNEL INITRD CMDLINE...]
 *                          a server's domain (its files in VOLDIR/instances;
 *                          the owner is "driver_check", or $DRIVER_CHECK_OWNER)
 *   define-on-volume UUID SERVER VCPUS RAM_MB ATTACHMENT_ID VOLUME_ID PATH
 *                          the same, booted from a volume (its root disk)
 *   undefine UUID SERVER
 *   power DOMAIN start|shutdown|destroy|pause|unpause|save
 *   console DOMAIN         the console log: its length, last line and text
 *   domains                the server domains of this owner
 *   watch SECONDS          print events for that long
 *   sleep SECONDS
 *   virsh CMD ARGS...      a few domain operations on a connection of its own
 *                          (define FILE, start NAME, destroy NAME, undefine
 *                          NAME), for drivers that live in this process
 *                          (qemu:///embed), which no other process can reach
 *
 * Every result and every event is one JSON object on stdout, e.g.
 *   {"cmd": "attach", "rc": "OK", "ms": 14.2, "target": "sdb"}
 *   {"cmd": "detach", "rc": "REFUSED", "ms": 3.1, "error": "..."}
 *   {"event": "disk_removed", "domain": "...", "alias": "ua-...", "t": 1234.5}
 * ("ms": the driver call alone; "t": milliseconds since the driver opened).
 * A failed open prints {"cmd": "open", "rc": "FAILED", "error": ...} and
 * exits 3. One-shot mode exits 0 for OK and PENDING, 1 otherwise.
 */
#include <jansson.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver/driver.h"
#include "driver/libvirt_int.h"
#include "util/arena.h"

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static struct timespec t_open;
static const char *uri;
static virConnectPtr own;           /* for the `virsh` commands */

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    pthread_mutex_lock(&out_mu);
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    free(s);
    json_decref(o);
}

static const char *rc_name(enum driver_rc rc)
{
    static const char *const names[] = {"OK", "PENDING", "NOT_FOUND", "REFUSED", "UNAVAILABLE"};
    return (unsigned)rc < 5 ? names[rc] : "?";
}

static const char *state_name(enum driver_state s)
{
    static const char *const names[] = {"running", "paused", "shutoff", "crashed", "other",
                                        "saved"};
    return (unsigned)s < 6 ? names[s] : "?";
}

static void ev_removed(void *cls, const char *domain, const char *alias)
{
    (void)cls;
    emit(json_pack("{s:s, s:s, s:s, s:f}", "event", "disk_removed", "domain", domain,
                   "alias", alias, "t", ms_since(&t_open)));
}

static void ev_failed(void *cls, const char *domain, const char *alias)
{
    (void)cls;
    emit(json_pack("{s:s, s:s, s:s, s:f}", "event", "disk_removal_failed", "domain", domain,
                   "alias", alias, "t", ms_since(&t_open)));
}

static void ev_state(void *cls, const char *domain, enum driver_state state)
{
    (void)cls;
    emit(json_pack("{s:s, s:s, s:s, s:f}", "event", "domain_state", "domain", domain,
                   "state", state_name(state), "t", ms_since(&t_open)));
}

static void ev_connection(void *cls, bool up)
{
    (void)cls;
    emit(json_pack("{s:s, s:b, s:f}", "event", "connection", "up", up, "t", ms_since(&t_open)));
}

static json_t *result(const char *cmd, enum driver_rc rc, double ms,
                      const struct driver_error *err)
{
    json_t *o = json_pack("{s:s, s:s, s:f}", "cmd", cmd, "rc", rc_name(rc), "ms", ms);
    if (rc != DRIVER_OK && rc != DRIVER_PENDING)
        json_object_set_new(o, "error", json_string(err->message));
    return o;
}

/* Add the members of `more` to o, and drop `more`. */
static void merge(json_t *o, json_t *more)
{
    json_object_update(o, more);
    json_decref(more);
}

static json_t *usage_error(const char *cmd, const char *msg)
{
    return json_pack("{s:s, s:s, s:s}", "cmd", cmd, "rc", "USAGE", "error", msg);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static json_t *virsh(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("virsh", "virsh define FILE | start|destroy|undefine NAME");
    if (!own && !(own = virConnectOpen(uri)))
        return json_pack("{s:s, s:s, s:s}", "cmd", "virsh", "rc", "FAILED", "error",
                         virGetLastErrorMessage());
    const char *op = argv[0], *arg = argv[1];
    int r = -1;
    if (!strcmp(op, "define")) {
        FILE *f = fopen(arg, "r");
        char *xml = NULL;
        size_t n = 0;
        if (f && getdelim(&xml, &n, '\0', f) > 0) {
            virDomainPtr d = virDomainDefineXML(own, xml);
            r = d ? 0 : -1;
            if (d)
                virDomainFree(d);
        }
        if (f)
            fclose(f);
        free(xml);
    } else {
        virDomainPtr d = virDomainLookupByName(own, arg);
        if (d) {
            if (!strcmp(op, "start"))
                r = virDomainCreate(d);
            else if (!strcmp(op, "destroy"))
                r = virDomainDestroy(d);
            else if (!strcmp(op, "undefine"))
                r = virDomainUndefine(d);
            else
                return usage_error("virsh", "unknown virsh operation");
            virDomainFree(d);
        }
    }
    if (r < 0)
        return json_pack("{s:s, s:s, s:s}", "cmd", "virsh", "rc", "FAILED", "error",
                         virGetLastErrorMessage());
    return json_pack("{s:s, s:s}", "cmd", "virsh", "rc", "OK");
}

struct job {
    struct driver *d;
    const char *domain;
    enum driver_bus bus;
    char volume_id[64], attachment_id[64], alias[DRIVER_ALIAS_MAX + 1], serial[256];
    char path[4096], target[DRIVER_TARGET_MAX];
    enum driver_rc attach_rc, detach_rc;
    struct driver_error err;
    double attach_ms, detach_ms;
};

static void *job_attach(void *arg)
{
    struct job *j = arg;
    struct driver_disk disk = {.domain = j->domain, .alias = j->alias, .serial = j->serial,
                               .path = j->path, .bus = j->bus};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j->attach_rc = j->d->ops->disk_attach(j->d, &disk, j->target, &j->err);
    j->attach_ms = ms_since(&t0);
    return NULL;
}

static void *job_detach(void *arg)
{
    struct job *j = arg;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j->detach_rc = j->d->ops->disk_detach(j->d, j->domain, j->alias, &j->err);
    j->detach_ms = ms_since(&t0);
    return NULL;
}

struct locker {
    struct driver *d;
    const char *uuid;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool took;
};

static void *take_domain_lock(void *arg)
{
    struct locker *k = arg;
    struct lv_dlock *l = lv_domain_lock(k->d, k->uuid);
    pthread_mutex_lock(&k->mu);
    k->took = true;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->mu);
    lv_domain_unlock(k->d, l);
    return NULL;
}

/* Start a thread that takes uuid's lock; wait up to ms for it to have. */
static bool took_within(struct locker *k, pthread_t *th, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cond, NULL);
    pthread_create(th, NULL, take_domain_lock, k);
    pthread_mutex_lock(&k->mu);
    while (!k->took && pthread_cond_timedwait(&k->cond, &k->mu, &until) == 0)
        ;
    bool took = k->took;
    pthread_mutex_unlock(&k->mu);
    return took;
}

static json_t *domain_locks(struct driver *d, const char *a, const char *b)
{
    struct lv_dlock *held = lv_domain_lock(d, a);
    pthread_t other_th, same_th;
    struct locker other = {.d = d, .uuid = b}, same = {.d = d, .uuid = a};
    bool others_ran = took_within(&other, &other_th, 10000);
    bool same_waited = !took_within(&same, &same_th, 300);
    lv_domain_unlock(d, held);
    pthread_join(other_th, NULL);
    pthread_join(same_th, NULL);
    return json_pack("{s:s, s:s, s:b, s:b, s:b}", "cmd", "domain-locks", "rc", "OK",
                     "others_ran", others_ran, "same_waited", same_waited,
                     "same_ran_after", same.took);
}

static json_t *concurrent(struct driver *d, const char *domain, int n, enum driver_bus bus,
                          enum driver_rc *rc)
{
    struct job *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    json_t *o = json_pack("{s:s, s:s}", "cmd", "concurrent", "rc", "OK");
    json_t *list = json_array();
    unsigned tag = (unsigned)getpid() ^ (unsigned)time(NULL);
    *rc = DRIVER_OK;
    for (int i = 0; i < n; i++) {
        struct job *j = &jobs[i];
        j->d = d;
        j->domain = domain;
        j->bus = bus;
        /* '.' and '~' in the volume id: the file name and the serial cope */
        snprintf(j->volume_id, sizeof j->volume_id, "cc.%x~%d", tag, i);
        snprintf(j->attachment_id, sizeof j->attachment_id, "cc-%x-%d", tag, i);
        driver_alias(j->attachment_id, j->alias);
        driver_serial(j->volume_id, j->serial);
        if (d->ops->volume_create(d, j->volume_id, 16 << 20, j->path, sizeof j->path,
                                  &j->err) != DRIVER_OK) {
            *rc = DRIVER_REFUSED;
            json_object_set_new(o, "error", json_string(j->err.message));
            n = i;
            break;
        }
    }
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, job_attach, &jobs[i]);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, job_detach, &jobs[i]);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++) {
        struct job *j = &jobs[i];
        if (j->attach_rc != DRIVER_OK ||
            (j->detach_rc != DRIVER_OK && j->detach_rc != DRIVER_PENDING))
            *rc = DRIVER_REFUSED;
        json_array_append_new(list, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:f, s:s}", "volume_id", j->volume_id,
            "alias", j->alias, "path", j->path, "target", j->target, "attach",
            rc_name(j->attach_rc), "attach_ms", j->attach_ms, "detach", rc_name(j->detach_rc),
            "detach_ms", j->detach_ms, "error", j->err.message));
    }
    json_object_set_new(o, "rc", json_string(rc_name(*rc)));
    json_object_set_new(o, "jobs", list);
    free(jobs);
    free(th);
    return o;
}

/* Run one command; returns its JSON result and sets *rc. */
static json_t *run(struct driver *d, int argc, char **argv, enum driver_rc *rc)
{
    const struct driver_ops *ops = d->ops;
    struct driver_error err = {{0}};
    struct timespec t0;
    const char *cmd = argv[0];
    *rc = DRIVER_REFUSED;
#define NEED(n, use) do { if (argc != (n) + 1) return usage_error(cmd, "usage: " use); } while (0)
#define TIMED(call) (clock_gettime(CLOCK_MONOTONIC, &t0), *rc = (call), ms_since(&t0))

    if (!strcmp(cmd, "lookup")) {
        NEED(1, "lookup DOMAIN");
        struct driver_domain dom;
        double ms = TIMED(ops->domain_lookup(d, argv[1], &dom, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        if (*rc == DRIVER_OK)
            merge(o, json_pack("{s:s, s:s, s:s, s:b}", "uuid", dom.uuid, "name",
                                            dom.name, "state", state_name(dom.state),
                                            "persistent", dom.persistent));
        return o;
    }
    if (!strcmp(cmd, "attach")) {
        if (argc == 7)          /* a target of the caller's choosing */
            argc--;
        NEED(5, "attach DOMAIN ATTACHMENT_ID VOLUME_ID PATH scsi|virtio [TARGET]");
        char alias[DRIVER_ALIAS_MAX + 1], serial[256], target[DRIVER_TARGET_MAX] = "";
        driver_alias(argv[2], alias);
        driver_serial(argv[3], serial);
        int64_t bytes;
        bool block = false;
        if (ops->volume_probe(d, argv[4], &bytes, &block, &err) != DRIVER_OK)
            block = false;      /* let the hypervisor say what is wrong with it */
        struct driver_disk disk = {.domain = argv[1], .alias = alias, .serial = serial,
                                   .path = argv[4], .block = block,
                                   .bus = !strcmp(argv[5], "virtio") ? BUS_VIRTIO : BUS_SCSI,
                                   .target = argv[6]};
        double ms = TIMED(ops->disk_attach(d, &disk, target, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        json_object_set_new(o, "alias", json_string(alias));
        if (*rc == DRIVER_OK)
            json_object_set_new(o, "target", json_string(target));
        return o;
    }
    if (!strcmp(cmd, "detach")) {
        NEED(2, "detach DOMAIN ATTACHMENT_ID");
        char alias[DRIVER_ALIAS_MAX + 1];
        driver_alias(argv[2], alias);
        double ms = TIMED(ops->disk_detach(d, argv[1], alias, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        json_object_set_new(o, "alias", json_string(alias));
        return o;
    }
    if (!strcmp(cmd, "list")) {
        NEED(1, "list DOMAIN");
        struct arena ar;
        arena_init(&ar);
        struct driver_present *p;
        int n;
        double ms = TIMED(ops->disk_list(d, argv[1], &ar, &p, &n, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        if (*rc == DRIVER_OK) {
            json_t *disks = json_array();
            for (int i = 0; i < n; i++)
                json_array_append_new(disks, json_pack(
                    "{s:s, s:s, s:s, s:s, s:b, s:b}", "alias", p[i].alias, "target",
                    p[i].target, "serial", p[i].serial, "path", p[i].path, "live", p[i].live,
                    "config", p[i].config));
            json_object_set_new(o, "disks", disks);
        }
        arena_release(&ar);
        return o;
    }
    if (!strcmp(cmd, "volume-create")) {
        NEED(2, "volume-create VOLUME_ID BYTES");
        char path[4096] = "";
        double ms = TIMED(ops->volume_create(d, argv[1], strtoll(argv[2], NULL, 10), path,
                                             sizeof path, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        if (*rc == DRIVER_OK)
            json_object_set_new(o, "path", json_string(path));
        return o;
    }
    if (!strcmp(cmd, "volume-delete")) {
        NEED(1, "volume-delete PATH");
        double ms = TIMED(ops->volume_delete(d, argv[1], &err));
        return result(cmd, *rc, ms, &err);
    }
    if (!strcmp(cmd, "probe")) {
        NEED(1, "probe PATH");
        int64_t bytes = 0;
        bool block = false;
        double ms = TIMED(ops->volume_probe(d, argv[1], &bytes, &block, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        if (*rc == DRIVER_OK)
            merge(o, json_pack("{s:I, s:b}", "bytes", (json_int_t)bytes, "block",
                                            block));
        return o;
    }
    if (!strcmp(cmd, "concurrent")) {
        NEED(3, "concurrent DOMAIN N scsi|virtio");
        int n = atoi(argv[2]);
        if (n < 1 || n > 64)
            return usage_error(cmd, "N: 1 to 64");
        return concurrent(d, argv[1], n, !strcmp(argv[3], "virtio") ? BUS_VIRTIO : BUS_SCSI,
                          rc);
    }
    if (!strcmp(cmd, "domain-locks")) {
        NEED(2, "domain-locks UUID_A UUID_B");
        *rc = DRIVER_OK;
        return domain_locks(d, argv[1], argv[2]);
    }
    if (!strcmp(cmd, "define")) {
        /* the command line is the rest, so that a shell line can give one */
        if (argc != 8 && argc < 11)
            return usage_error(cmd, "usage: define UUID SERVER VCPUS RAM_MB IMAGE FORMAT "
                                    "DISK_BYTES [KERNEL INITRD CMDLINE...]");
        char cmdline[1024] = "";
        for (int i = 10, n = 0; i < argc && n < (int)sizeof cmdline; i++)
            n += snprintf(cmdline + n, sizeof cmdline - (size_t)n, "%s%s", i > 10 ? " " : "",
                          argv[i]);
        struct driver_domain_spec spec = {
            .uuid = argv[1], .server = argv[2], .vcpus = atoi(argv[3]),
            .ram_mb = strtoll(argv[4], NULL, 10), .image = argv[5], .image_format = argv[6],
            .disk_bytes = strtoll(argv[7], NULL, 10)};
        if (argc > 8) {
            spec.kernel = argv[8];
            spec.initrd = argv[9];
            spec.cmdline = cmdline;
        }
        double ms = TIMED(ops->domain_define(d, &spec, &err));
        return result(cmd, *rc, ms, &err);
    }
    if (!strcmp(cmd, "define-on-volume")) {
        NEED(7, "define-on-volume UUID SERVER VCPUS RAM_MB ATTACHMENT_ID VOLUME_ID PATH");
        char alias[DRIVER_ALIAS_MAX + 1], serial[256];
        driver_alias(argv[5], alias);
        driver_serial(argv[6], serial);
        struct driver_disk root = {.alias = alias, .serial = serial, .path = argv[7],
                                   .bus = BUS_VIRTIO};
        int64_t bytes;
        if ((*rc = ops->volume_probe(d, argv[7], &bytes, &root.block, &err)) != DRIVER_OK)
            return result(cmd, *rc, 0, &err);
        struct driver_domain_spec spec = {
            .uuid = argv[1], .server = argv[2], .vcpus = atoi(argv[3]),
            .ram_mb = strtoll(argv[4], NULL, 10), .root_volume = &root};
        double ms = TIMED(ops->domain_define(d, &spec, &err));
        return result(cmd, *rc, ms, &err);
    }
    if (!strcmp(cmd, "undefine")) {
        NEED(2, "undefine UUID SERVER");
        double ms = TIMED(ops->domain_undefine(d, argv[1], argv[2], &err));
        return result(cmd, *rc, ms, &err);
    }
    if (!strcmp(cmd, "power")) {
        NEED(2, "power DOMAIN start|shutdown|destroy|pause|unpause|save");
        static const char *const what[] = {[DP_START] = "start", [DP_SHUTDOWN] = "shutdown",
                                           [DP_DESTROY] = "destroy", [DP_PAUSE] = "pause",
                                           [DP_UNPAUSE] = "unpause", [DP_SAVE] = "save"};
        size_t i = 0;
        while (i < sizeof what / sizeof what[0] && strcmp(what[i], argv[2]) != 0)
            i++;
        if (i == sizeof what / sizeof what[0])
            return usage_error(cmd, "start|shutdown|destroy|pause|unpause|save");
        double ms = TIMED(ops->domain_power(d, argv[1], (enum driver_power)i, &err));
        return result(cmd, *rc, ms, &err);
    }
    if (!strcmp(cmd, "console")) {
        NEED(1, "console DOMAIN");
        struct arena ar;
        arena_init(&ar);
        char *text = NULL;
        size_t len = 0;
        double ms = TIMED(ops->console_log(d, argv[1], &ar, &text, &len, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        if (*rc == DRIVER_OK) {
            while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                text[--len] = '\0';
            const char *last = strrchr(text, '\n');
            merge(o, json_pack("{s:I, s:s%, s:s%}", "bytes", (json_int_t)len, "last",
                               last ? last + 1 : text, strlen(last ? last + 1 : text), "text",
                               text, len));
        }
        arena_release(&ar);
        return o;
    }
    if (!strcmp(cmd, "domains")) {
        NEED(0, "domains");
        struct arena ar;
        arena_init(&ar);
        struct driver_domain *doms;
        int n;
        double ms = TIMED(ops->domain_list(d, &ar, &doms, &n, &err));
        json_t *o = result(cmd, *rc, ms, &err);
        if (*rc == DRIVER_OK) {
            json_t *list = json_array();
            for (int i = 0; i < n; i++)
                json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "uuid", doms[i].uuid,
                                                      "name", doms[i].name, "state",
                                                      state_name(doms[i].state)));
            json_object_set_new(o, "domains", list);
        }
        arena_release(&ar);
        return o;
    }
    if (!strcmp(cmd, "watch") || !strcmp(cmd, "sleep")) {
        NEED(1, "watch|sleep SECONDS");
        sleep_s(atof(argv[1]));
        *rc = DRIVER_OK;
        return json_pack("{s:s, s:s}", "cmd", cmd, "rc", "OK");
    }
    if (!strcmp(cmd, "virsh")) {
        json_t *o = virsh(argc - 1, argv + 1);
        *rc = !strcmp(json_string_value(json_object_get(o, "rc")), "OK") ? DRIVER_OK
                                                                        : DRIVER_REFUSED;
        return o;
    }
    return usage_error(cmd, "unknown command");
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s URI VOLDIR COMMAND [ARGS...] | shell\n", argv[0]);
        return 2;
    }
    uri = argv[1];
    char instances[4096];
    snprintf(instances, sizeof instances, "%s/instances", argv[2]);
    const char *owner = getenv("DRIVER_CHECK_OWNER");
    struct driver_options o = {.kind = "libvirt", .uri = argv[1], .volume_dir = argv[2],
                               .instance_dir = instances, .virt = VIRT_QEMU,
                               .owner = owner ? owner : "driver_check"};
    char err[1024];
    clock_gettime(CLOCK_MONOTONIC, &t_open);
    struct driver *d = driver_open(&o, err, sizeof err);
    if (!d) {
        emit(json_pack("{s:s, s:s, s:s, s:f}", "cmd", "open", "rc", "FAILED", "error", err,
                       "ms", ms_since(&t_open)));
        return 3;
    }
    d->events = (struct driver_events){.disk_removed = ev_removed,
                                       .disk_removal_failed = ev_failed,
                                       .domain_state = ev_state, .connection = ev_connection};
    emit(json_pack("{s:s, s:s, s:f}", "cmd", "open", "rc", "OK", "ms", ms_since(&t_open)));

    int status = 0;
    enum driver_rc rc;
    if (strcmp(argv[3], "shell") != 0) {
        emit(run(d, argc - 3, argv + 3, &rc));
        status = rc == DRIVER_OK || rc == DRIVER_PENDING ? 0 : 1;
    } else {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, stdin) > 0) {
            char *words[16];
            int n = 0;
            for (char *save, *w = strtok_r(line, " \t\r\n", &save); w && n < 15;
                 w = strtok_r(NULL, " \t\r\n", &save))
                words[n++] = w;
            words[n] = NULL;    /* as in argv: optional arguments read NULL */
            if (n == 0)
                continue;
            if (!strcmp(words[0], "quit"))
                break;
            emit(run(d, n, words, &rc));
        }
        free(line);
    }
    if (own)
        virConnectClose(own);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    driver_close(d);
    emit(json_pack("{s:s, s:s, s:f}", "cmd", "close", "rc", "OK", "ms", ms_since(&t0)));
    return status;
}
