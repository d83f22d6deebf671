/* bare.c: the baseline of bench/hypervisor/run. The same disk hot-plug that
 * attachd's libvirt driver makes, straight through the libvirt C API, with
 * nothing around it: one connection with keepalive and libvirt's default
 * event loop on a thread of its own, and per domain one thread doing N
 * cycles of
 *
 *   virDomainAttachDeviceFlags(dom, <disk> in Nova's shape, FLAGS)
 *   virDomainDetachDeviceAlias(dom, "ua-<uuid>", FLAGS)
 *   ... then waiting for VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED of that alias
 *
 * FLAGS are what the driver (src/driver/libvirt.c) uses: AFFECT_LIVE for a
 * running domain, AFFECT_CONFIG for a persistent one. The disk XML is
 * src/driver/libvirt_xml.c's: cache='none' io='native' when the file opens
 * with O_DIRECT (else writeback/threads, as the driver falls back), target
 * sdb (the first device attachd's core picks on a server without disks),
 * the volume id as <serial>, a fresh user alias per cycle ("ua-" and a
 * UUID, as an attachment id makes it).
 *
 *   bare [--uri URI] [--cycles N] [--warmup W] [--bus scsi|virtio]
 *        [--driver-reads] DOMAIN=FILE [DOMAIN=FILE...]
 *
 * --driver-reads also makes the read-only libvirt calls the driver made
 * before each attach (lookup by UUID, the live XML) and each detach
 * (lookup, the live XML, persistence, the inactive XML), without parsing
 * the XML, until it kept what it knows of each domain
 * (src/driver/libvirt_known.c: now it makes none on a running domain): how
 * much of attachd's added latency those calls were.
 *
 * Each domain's thread makes W untimed cycles, then all threads start
 * together (a barrier) and make N timed cycles each. Output, one line per
 * timed cycle, then one summary line (times in ms, monotonic clock):
 *
 *   go                                 (when the timed cycles start)
 *   cycle DOMAIN I ATTACH_MS DETACH_CALL_MS EVENT_MS
 *   wall SECONDS CYCLES
 *
 * EVENT_MS is from the start of the detach call to the arrival of the
 * DEVICE_REMOVED event on the event-loop thread. Errors go to stderr and
 * make the exit status 1. Built by bench/Makefile into bench/build/bare;
 * never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_DOMAINS 64
#define EVENT_TIMEOUT_S 30

struct slot {
    const char *name, *path;
    char serial[48];
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainPtr dom;
    unsigned flags;
    bool direct;
    /* the detach being waited for (under mu) */
    char alias[48];
    bool waiting, removed, failed;
    double event_at;
    pthread_cond_t cond;
    /* results */
    double *attach_ms, *detach_ms, *event_ms;
    bool error;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[MAX_DOMAINS];
static int nslots;
static virConnectPtr conn;
static atomic_bool loop_quit;
static const char *bus = "scsi";
static int cycles = 20, warmup = 1;
static bool driver_reads;
static pthread_barrier_t start_line;
static double t_start;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static void *loop_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&loop_quit))
        if (virEventRunDefaultImpl() < 0)
            usleep(10000);
    return NULL;
}

static void loop_wake(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

static void device_event(virDomainPtr dom, const char *alias, bool removed)
{
    double t = now_ms();
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nslots; i++) {
        struct slot *s = &slots[i];
        if (s->waiting && !strcmp(s->uuid, uuid) && !strcmp(s->alias, alias)) {
            s->removed = removed;
            s->failed = !removed;
            s->event_at = t;
            pthread_cond_signal(&s->cond);
        }
    }
    pthread_mutex_unlock(&mu);
}

static void on_removed(virConnectPtr c, virDomainPtr dom, const char *alias, void *opaque)
{
    (void)c;
    (void)opaque;
    device_event(dom, alias, true);
}

static void on_removal_failed(virConnectPtr c, virDomainPtr dom, const char *alias,
                              void *opaque)
{
    (void)c;
    (void)opaque;
    device_event(dom, alias, false);
}

static void new_alias(char out[48])
{
    unsigned char b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (unsigned char)(random() & 0xff);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 48, "ua-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

/* src/driver/libvirt_xml.c's lvxml_disk_xml() for a file (bench paths and
 * serials need no escaping: checked in main). */
static void disk_xml(const struct slot *s, const char *alias, char *out, size_t size)
{
    snprintf(out, size,
             "<disk type='file' device='disk'>\n"
             "  <driver name='qemu' type='raw' %s/>\n"
             "  <source file='%s'/>\n"
             "  <target dev='%s' bus='%s'/>\n"
             "  <serial>%s</serial>\n"
             "  <alias name='%s'/>\n"
             "</disk>\n",
             s->direct ? "cache='none' io='native'" : "cache='writeback' io='threads'",
             s->path, !strcmp(bus, "virtio") ? "vdb" : "sdb", bus, s->serial, alias);
}

/* What the driver reads before a change (src/driver/libvirt.c: dom_get,
 * then dom_view): the live XML alone before an attach (its quick view),
 * the whole view before a detach (the live XML, whether the domain is
 * persistent, its definition). The XML is fetched, not parsed. */
static bool reads(struct slot *s, bool whole)
{
    virDomainPtr d = virDomainLookupByUUIDString(conn, s->uuid);
    if (!d)
        return false;
    char uuid[VIR_UUID_STRING_BUFLEN];
    char *xml = NULL;
    bool ok = virDomainGetUUIDString(d, uuid) == 0 && (xml = virDomainGetXMLDesc(d, 0));
    free(xml);
    if (ok && whole) {
        ok = virDomainIsPersistent(d) >= 0 && (xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE));
        free(xml);
    }
    virDomainFree(d);
    return ok;
}

/* One cycle; false (and a message) on failure. */
static bool cycle(struct slot *s, double *attach_ms, double *detach_ms, double *event_ms)
{
    char alias[48], xml[4096];
    new_alias(alias);
    disk_xml(s, alias, xml, sizeof xml);

    double t0 = now_ms();
    if (driver_reads && !reads(s, false))
        goto failed;
    if (virDomainAttachDeviceFlags(s->dom, xml, s->flags) < 0)
        goto failed;
    *attach_ms = now_ms() - t0;

    pthread_mutex_lock(&mu);
    snprintf(s->alias, sizeof s->alias, "%s", alias);
    s->waiting = true;
    s->removed = s->failed = false;
    pthread_mutex_unlock(&mu);
    double t1 = now_ms();
    if (driver_reads && !reads(s, true))
        goto failed_waiting;
    if (virDomainDetachDeviceAlias(s->dom, alias, s->flags) < 0)
        goto failed_waiting;
    *detach_ms = now_ms() - t1;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += EVENT_TIMEOUT_S;
    pthread_mutex_lock(&mu);
    while (!s->removed && !s->failed &&
           pthread_cond_timedwait(&s->cond, &mu, &until) != ETIMEDOUT)
        ;
    bool removed = s->removed, failed = s->failed;
    double at = s->event_at;
    s->waiting = false;
    pthread_mutex_unlock(&mu);
    if (!removed) {
        fprintf(stderr, "bare: %s: %s %s\n", s->name, alias,
                failed ? "DEVICE_REMOVAL_FAILED" : "no DEVICE_REMOVED within 30 s");
        return false;
    }
    *event_ms = at - t1;
    return true;

failed_waiting:
    pthread_mutex_lock(&mu);
    s->waiting = false;
    pthread_mutex_unlock(&mu);
failed:
    fprintf(stderr, "bare: %s: %s\n", s->name, virGetLastErrorMessage());
    return false;
}

static void *domain_main(void *arg)
{
    struct slot *s = arg;
    double a, d, e;
    for (int i = 0; i < warmup && !s->error; i++)
        s->error = !cycle(s, &a, &d, &e);
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < cycles && !s->error; i++)
        s->error = !cycle(s, &s->attach_ms[i], &s->detach_ms[i], &s->event_ms[i]);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: bare [--uri URI] [--cycles N] [--warmup W] [--bus scsi|virtio] "
                    "[--driver-reads] DOMAIN=FILE [DOMAIN=FILE...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *uri = "qemu:///system";
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--driver-reads"))
            driver_reads = true;
        else if (i + 1 >= argc)
            return usage();
        else if (!strcmp(argv[i], "--uri"))
            uri = argv[++i];
        else if (!strcmp(argv[i], "--cycles"))
            cycles = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bus"))
            bus = argv[++i];
        else
            return usage();
    }
    if (i >= argc || cycles < 1 || warmup < 0 || argc - i > MAX_DOMAINS ||
        (strcmp(bus, "scsi") && strcmp(bus, "virtio")))
        return usage();
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());

    if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
        fprintf(stderr, "bare: cannot start libvirt's event loop\n");
        return 1;
    }
    virSetErrorFunc(NULL, quiet);
    pthread_t loop;
    pthread_create(&loop, NULL, loop_main, NULL);
    if (!(conn = virConnectOpen(uri))) {
        fprintf(stderr, "bare: cannot connect to %s: %s\n", uri, virGetLastErrorMessage());
        return 1;
    }
    /* as the driver: keepalive, and the removal events (the driver also
     * listens for lifecycle events, which these runs do not cause) */
    if (virConnectSetKeepAlive(conn, 3, 2) < 0 && virGetLastErrorCode() != VIR_ERR_NO_SUPPORT) {
        fprintf(stderr, "bare: keepalive: %s\n", virGetLastErrorMessage());
        return 1;
    }
    int cb_removed = virConnectDomainEventRegisterAny(
        conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(on_removed),
        NULL, NULL);
    int cb_failed = virConnectDomainEventRegisterAny(
        conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED,
        VIR_DOMAIN_EVENT_CALLBACK(on_removal_failed), NULL, NULL);
    if (cb_removed < 0 || cb_failed < 0) {
        fprintf(stderr, "bare: cannot register for events: %s\n", virGetLastErrorMessage());
        return 1;
    }

    for (; i < argc; i++) {
        struct slot *s = &slots[nslots];
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i] || !eq[1] || strpbrk(eq + 1, "&<>'\""))
            return usage();
        *eq = '\0';
        s->name = argv[i];
        s->path = eq + 1;
        if (!(s->dom = virDomainLookupByName(conn, s->name))) {
            fprintf(stderr, "bare: no domain %s: %s\n", s->name, virGetLastErrorMessage());
            return 1;
        }
        virDomainGetUUIDString(s->dom, s->uuid);
        int active = virDomainIsActive(s->dom), persistent = virDomainIsPersistent(s->dom);
        s->flags = (active == 1 ? VIR_DOMAIN_AFFECT_LIVE : 0) |
                   (persistent == 1 ? VIR_DOMAIN_AFFECT_CONFIG : 0);
        if (active != 1) {
            fprintf(stderr, "bare: %s is not running\n", s->name);
            return 1;
        }
        int fd = open(s->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
        s->direct = fd >= 0 || errno != EINVAL;     /* as volfile_direct_ok() */
        if (fd >= 0)
            close(fd);
        /* a volume id's shape: the driver uses it as the serial */
        char a[48];
        new_alias(a);
        snprintf(s->serial, sizeof s->serial, "%s", a + 3);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &ca);
        pthread_condattr_destroy(&ca);
        s->attach_ms = calloc((size_t)cycles, sizeof(double));
        s->detach_ms = calloc((size_t)cycles, sizeof(double));
        s->event_ms = calloc((size_t)cycles, sizeof(double));
        if (!s->attach_ms || !s->detach_ms || !s->event_ms)
            return 1;
        nslots++;
    }

    pthread_barrier_init(&start_line, NULL, (unsigned)nslots + 1);
    pthread_t th[MAX_DOMAINS];
    for (int k = 0; k < nslots; k++)
        pthread_create(&th[k], NULL, domain_main, &slots[k]);
    pthread_barrier_wait(&start_line);
    t_start = now_ms();
    puts("go");                 /* the warm-up is over: the timed cycles start */
    fflush(stdout);
    for (int k = 0; k < nslots; k++)
        pthread_join(th[k], NULL);
    double wall = (now_ms() - t_start) / 1e3;

    int status = 0, done = 0;
    for (int k = 0; k < nslots; k++) {
        struct slot *s = &slots[k];
        if (s->error) {
            status = 1;
            continue;
        }
        for (int c = 0; c < cycles; c++, done++)
            printf("cycle %s %d %.3f %.3f %.3f\n", s->name, c, s->attach_ms[c], s->detach_ms[c],
                   s->event_ms[c]);
    }
    printf("wall %.6f %d\n", wall, done);
    fflush(stdout);

    virConnectDomainEventDeregisterAny(conn, cb_removed);
    virConnectDomainEventDeregisterAny(conn, cb_failed);
    for (int k = 0; k < nslots; k++)
        virDomainFree(slots[k].dom);
    virConnectClose(conn);
    atomic_store(&loop_quit, true);
    virEventAddTimeout(0, loop_wake, NULL, NULL);
    pthread_join(loop, NULL);
    return status;
}
