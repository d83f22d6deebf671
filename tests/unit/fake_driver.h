/* fake_driver.h: an in-process hypervisor for the core's unit tests
 * (driver.h's contract, no libvirt): domains with disks, and knobs to make
 * it slow, refuse, be unreachable, and confirm a detach at once, by an
 * event after a delay, or never (a virtio-blk disk in a VM without a guest
 * OS). It counts its calls and the most it saw running at once, per domain
 * and in all. Header-only, like helpers.h. */
#ifndef ATTACHD_TEST_FAKE_DRIVER_H
#define ATTACHD_TEST_FAKE_DRIVER_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver/driver.h"

#define FAKE_DOMAINS 8
#define FAKE_DISKS 32

enum fake_detach { DETACH_AT_ONCE, DETACH_BY_EVENT, DETACH_NEVER };

struct fake_disk {
    char alias[DRIVER_ALIAS_MAX + 1], target[DRIVER_TARGET_MAX], serial[256], path[256];
    bool live, config, used;
};

struct fake_domain {
    char uuid[DRIVER_UUID_LEN + 1], name[DRIVER_NAME_MAX + 1];
    enum driver_state state;
    bool persistent, used;
    struct fake_disk disks[FAKE_DISKS];
    int busy;                           /* calls running on it now */
};

struct fake_hv {
    struct driver base;
    pthread_mutex_t lock;
    struct fake_domain domains[FAKE_DOMAINS];
    /* knobs */
    int delay_ms;                       /* every disk call takes this long */
    enum fake_detach detach;
    int event_delay_ms;
    char refuse[256];                   /* non-empty: attach refuses with this */
    bool unavailable;
    bool volume_fails;
    char domain_refuse[256];            /* non-empty: define and power refuse with this */
    bool acpi_ignored;                  /* a shutdown stays pending (no guest OS) */
    int powered[DP_SAVE + 1];           /* domain_power() calls that changed a state */
    /* counters */
    int attaches, detaches, lists, volumes_made, volumes_deleted;
    char attached_to[FAKE_DISKS][DRIVER_NAME_MAX + 1];   /* the domain of each attach call, in order */
    int max_busy_domain, busy_all, max_busy_all;
};

static inline struct fake_hv *fake_of(struct driver *d)
{
    return (struct fake_hv *)d;
}

static inline void fake_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ;
}

static inline struct fake_domain *fake_domain(struct fake_hv *f, const char *key)
{
    for (int i = 0; i < FAKE_DOMAINS; i++)
        if (f->domains[i].used &&
            (!strcmp(f->domains[i].uuid, key) || !strcmp(f->domains[i].name, key)))
            return &f->domains[i];
    return NULL;
}

static inline struct fake_disk *fake_disk(struct fake_domain *dom, const char *alias)
{
    for (int i = 0; i < FAKE_DISKS; i++)
        if (dom->disks[i].used && !strcmp(dom->disks[i].alias, alias))
            return &dom->disks[i];
    return NULL;
}

/* A disk call begins (under f->lock): counts, and what runs at once. */
static inline void fake_enter(struct fake_hv *f, struct fake_domain *dom)
{
    dom->busy++;
    f->busy_all++;
    if (dom->busy > f->max_busy_domain)
        f->max_busy_domain = dom->busy;
    if (f->busy_all > f->max_busy_all)
        f->max_busy_all = f->busy_all;
}

static inline void fake_leave(struct fake_hv *f, struct fake_domain *dom)
{
    dom->busy--;
    f->busy_all--;
}

static inline enum driver_rc fake_fail(struct driver_error *err, enum driver_rc rc,
                                       const char *msg)
{
    snprintf(err->message, sizeof err->message, "%s", msg);
    return rc;
}

static inline enum driver_rc fake_volume_create(struct driver *d, const char *id, int64_t bytes,
                                                char *path, size_t size, struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    (void)bytes;
    if (f->volume_fails)
        return fake_fail(err, DRIVER_REFUSED, "No space left on device");
    pthread_mutex_lock(&f->lock);
    f->volumes_made++;
    pthread_mutex_unlock(&f->lock);
    snprintf(path, size, "/fake/vol-%s.img", id);
    return DRIVER_OK;
}

static inline enum driver_rc fake_volume_delete(struct driver *d, const char *path,
                                                struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    (void)path;
    (void)err;
    pthread_mutex_lock(&f->lock);
    f->volumes_deleted++;
    pthread_mutex_unlock(&f->lock);
    return DRIVER_OK;
}

static inline enum driver_rc fake_volume_probe(struct driver *d, const char *path, int64_t *bytes,
                                               bool *block, struct driver_error *err)
{
    (void)d;
    (void)err;
    *bytes = (int64_t)1 << 30;
    *block = !strncmp(path, "/dev/", 5);
    return DRIVER_OK;
}

static inline enum driver_rc fake_domain_lookup(struct driver *d, const char *key,
                                                struct driver_domain *out,
                                                struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    if (f->unavailable)
        return fake_fail(err, DRIVER_UNAVAILABLE, "the fake hypervisor is away");
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, key);
    if (dom) {
        snprintf(out->uuid, sizeof out->uuid, "%s", dom->uuid);
        snprintf(out->name, sizeof out->name, "%s", dom->name);
        out->state = dom->state;
        out->persistent = dom->persistent;
    }
    pthread_mutex_unlock(&f->lock);
    return dom ? DRIVER_OK : fake_fail(err, DRIVER_NOT_FOUND, "no such domain");
}

static inline enum driver_rc fake_disk_attach(struct driver *d, const struct driver_disk *disk,
                                              char target[DRIVER_TARGET_MAX],
                                              struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    if (f->unavailable)
        return fake_fail(err, DRIVER_UNAVAILABLE, "the fake hypervisor is away");
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, disk->domain);
    if (!dom) {
        pthread_mutex_unlock(&f->lock);
        return fake_fail(err, DRIVER_NOT_FOUND, "no such domain");
    }
    fake_enter(f, dom);
    if (f->attaches < FAKE_DISKS)
        snprintf(f->attached_to[f->attaches], sizeof f->attached_to[0], "%s", dom->name);
    f->attaches++;
    pthread_mutex_unlock(&f->lock);
    fake_sleep_ms(f->delay_ms);
    pthread_mutex_lock(&f->lock);
    enum driver_rc rc = DRIVER_OK;
    struct fake_disk *k = fake_disk(dom, disk->alias);
    if (f->refuse[0]) {
        rc = fake_fail(err, DRIVER_REFUSED, f->refuse);
    } else if (!k) {
        for (int i = 0; i < FAKE_DISKS && !k; i++)
            if (!dom->disks[i].used)
                k = &dom->disks[i];
        *k = (struct fake_disk){.used = true, .live = dom->state != DOMAIN_SHUTOFF,
                                .config = dom->persistent};
        snprintf(k->alias, sizeof k->alias, "%s", disk->alias);
        snprintf(k->target, sizeof k->target, "%s", disk->target ? disk->target : "sdz");
        snprintf(k->serial, sizeof k->serial, "%s", disk->serial);
        snprintf(k->path, sizeof k->path, "%s", disk->path);
    }
    if (rc == DRIVER_OK)
        snprintf(target, DRIVER_TARGET_MAX, "%s", k->target);
    fake_leave(f, dom);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

struct fake_removal {
    struct fake_hv *f;
    char domain[DRIVER_UUID_LEN + 1], alias[DRIVER_ALIAS_MAX + 1];
};

/* The "guest" releases the disk after a while, and the hypervisor says so. */
static inline void *fake_remove_later(void *arg)
{
    struct fake_removal *r = arg;
    struct fake_hv *f = r->f;
    fake_sleep_ms(f->event_delay_ms);
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, r->domain);
    struct fake_disk *k = dom ? fake_disk(dom, r->alias) : NULL;
    if (k)
        k->used = false;
    pthread_mutex_unlock(&f->lock);
    if (k && f->base.events.disk_removed)
        f->base.events.disk_removed(f->base.events.cls, r->domain, r->alias);
    free(r);
    return NULL;
}

static inline enum driver_rc fake_disk_detach(struct driver *d, const char *domain,
                                              const char *alias, struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    if (f->unavailable)
        return fake_fail(err, DRIVER_UNAVAILABLE, "the fake hypervisor is away");
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, domain);
    if (!dom) {
        pthread_mutex_unlock(&f->lock);
        return fake_fail(err, DRIVER_NOT_FOUND, "no such domain");
    }
    fake_enter(f, dom);
    f->detaches++;
    pthread_mutex_unlock(&f->lock);
    fake_sleep_ms(f->delay_ms);
    pthread_mutex_lock(&f->lock);
    struct fake_disk *k = fake_disk(dom, alias);
    enum driver_rc rc = DRIVER_OK;
    if (k && f->detach == DETACH_AT_ONCE) {
        k->used = false;
    } else if (k && f->detach == DETACH_BY_EVENT) {
        struct fake_removal *r = calloc(1, sizeof *r);
        r->f = f;
        snprintf(r->domain, sizeof r->domain, "%s", dom->uuid);
        snprintf(r->alias, sizeof r->alias, "%s", alias);
        pthread_t t;
        pthread_create(&t, NULL, fake_remove_later, r);
        pthread_detach(t);
        rc = DRIVER_PENDING;
    } else if (k) {
        rc = DRIVER_PENDING;            /* asked; nobody ever answers */
    }
    fake_leave(f, dom);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static inline enum driver_rc fake_disk_list(struct driver *d, const char *domain,
                                            struct arena *ar, struct driver_present **out,
                                            int *n, struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    if (f->unavailable)
        return fake_fail(err, DRIVER_UNAVAILABLE, "the fake hypervisor is away");
    pthread_mutex_lock(&f->lock);
    f->lists++;
    struct fake_domain *dom = fake_domain(f, domain);
    *n = 0;
    *out = arena_alloc(ar, FAKE_DISKS * sizeof **out);
    for (int i = 0; dom && i < FAKE_DISKS; i++) {
        struct fake_disk *k = &dom->disks[i];
        if (k->used)
            (*out)[(*n)++] = (struct driver_present){
                .alias = arena_strdup(ar, k->alias), .target = arena_strdup(ar, k->target),
                .serial = arena_strdup(ar, k->serial), .path = arena_strdup(ar, k->path),
                .live = k->live, .config = k->config};
    }
    pthread_mutex_unlock(&f->lock);
    return dom ? DRIVER_OK : fake_fail(err, DRIVER_NOT_FOUND, "no such domain");
}

/* ---- the domains attachd defines ---- */

static inline void fake_add_domain(struct fake_hv *f, const char *uuid, const char *name,
                                   enum driver_state state);

/* What define and power answer first: not connected, or refused. */
static inline enum driver_rc fake_domain_refusal(struct fake_hv *f, struct driver_error *err)
{
    if (f->unavailable)
        return fake_fail(err, DRIVER_UNAVAILABLE, "not connected");
    if (f->domain_refuse[0])
        return fake_fail(err, DRIVER_REFUSED, f->domain_refuse);
    return DRIVER_OK;
}

static inline enum driver_rc fake_domain_define(struct driver *d,
                                                const struct driver_domain_spec *spec,
                                                struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    enum driver_rc rc = fake_domain_refusal(f, err);
    if (rc != DRIVER_OK)
        return rc;
    pthread_mutex_lock(&f->lock);
    bool there = fake_domain(f, spec->uuid) != NULL;
    pthread_mutex_unlock(&f->lock);
    if (!there) {
        char name[DRIVER_NAME_MAX + 1];
        driver_domain_name(spec->server, name);
        fake_add_domain(f, spec->uuid, name, DOMAIN_SHUTOFF);
    }
    return DRIVER_OK;
}

static inline enum driver_rc fake_domain_undefine(struct driver *d, const char *uuid,
                                                  const char *server, struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    (void)server;
    if (f->unavailable)
        return fake_fail(err, DRIVER_UNAVAILABLE, "not connected");
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, uuid);
    if (dom)
        dom->used = false;
    pthread_mutex_unlock(&f->lock);
    return DRIVER_OK;
}

static inline enum driver_rc fake_domain_power(struct driver *d, const char *uuid,
                                               enum driver_power what, struct driver_error *err)
{
    static const enum driver_state after[] = {
        [DP_START] = DOMAIN_RUNNING, [DP_SHUTDOWN] = DOMAIN_SHUTOFF,
        [DP_DESTROY] = DOMAIN_SHUTOFF, [DP_PAUSE] = DOMAIN_PAUSED,
        [DP_UNPAUSE] = DOMAIN_RUNNING, [DP_SAVE] = DOMAIN_SAVED,
    };
    struct fake_hv *f = fake_of(d);
    enum driver_rc rc = fake_domain_refusal(f, err);
    if (rc != DRIVER_OK)
        return rc;
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, uuid);
    rc = dom ? DRIVER_OK : DRIVER_NOT_FOUND;
    if (dom && what == DP_SHUTDOWN && f->acpi_ignored && dom->state != DOMAIN_SHUTOFF)
        rc = DRIVER_PENDING;
    else if (dom && dom->state != after[what])
        dom->state = after[what], f->powered[what]++;
    pthread_mutex_unlock(&f->lock);
    return rc == DRIVER_NOT_FOUND ? fake_fail(err, rc, "no such domain") : rc;
}

/* Every domain's console says the same; one without a log: unplugged. */
static inline enum driver_rc fake_console_log(struct driver *d, const char *uuid,
                                              struct arena *ar, char **out, size_t *len,
                                              struct driver_error *err)
{
    struct fake_hv *f = fake_of(d);
    if (f->unavailable)
        return fake_fail(err, DRIVER_UNAVAILABLE, "not connected");
    pthread_mutex_lock(&f->lock);
    bool there = fake_domain(f, uuid) != NULL;
    pthread_mutex_unlock(&f->lock);
    if (!there)
        return fake_fail(err, DRIVER_NOT_FOUND, "no such domain");
    static const char text[] = "boot\r\none\ntwo\nthree\n";
    *out = arena_alloc(ar, sizeof text);
    memcpy(*out, text, sizeof text);
    *len = sizeof text - 1;
    return DRIVER_OK;
}

static inline void fake_close(struct driver *d)
{
    pthread_mutex_destroy(&fake_of(d)->lock);
    free(d);
}

static const struct driver_ops fake_ops = {
    .name = "fake", .volume_create = fake_volume_create, .volume_delete = fake_volume_delete,
    .volume_probe = fake_volume_probe, .domain_lookup = fake_domain_lookup,
    .disk_attach = fake_disk_attach, .disk_detach = fake_disk_detach,
    .disk_list = fake_disk_list, .domain_define = fake_domain_define,
    .domain_undefine = fake_domain_undefine, .domain_power = fake_domain_power,
    .console_log = fake_console_log,
    .close = fake_close,
};

static inline struct fake_hv *fake_open(void)
{
    struct fake_hv *f = calloc(1, sizeof *f);
    f->base.ops = &fake_ops;
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

static inline void fake_add_domain(struct fake_hv *f, const char *uuid, const char *name,
                                   enum driver_state state)
{
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < FAKE_DOMAINS; i++) {
        if (!f->domains[i].used) {
            f->domains[i] = (struct fake_domain){.used = true, .state = state,
                                                 .persistent = true};
            snprintf(f->domains[i].uuid, sizeof f->domains[i].uuid, "%s", uuid);
            snprintf(f->domains[i].name, sizeof f->domains[i].name, "%s", name);
            break;
        }
    }
    pthread_mutex_unlock(&f->lock);
}

/* Put a disk in a domain behind attachd's back. */
static inline void fake_plant_disk(struct fake_hv *f, const char *uuid, const char *alias,
                                   const char *target)
{
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, uuid);
    for (int i = 0; dom && i < FAKE_DISKS; i++) {
        if (!dom->disks[i].used) {
            dom->disks[i] = (struct fake_disk){.used = true, .live = true, .config = true};
            snprintf(dom->disks[i].alias, sizeof dom->disks[i].alias, "%s", alias);
            snprintf(dom->disks[i].target, sizeof dom->disks[i].target, "%s", target);
            break;
        }
    }
    pthread_mutex_unlock(&f->lock);
}

static inline int fake_disks(struct fake_hv *f, const char *uuid)
{
    int n = 0;
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, uuid);
    for (int i = 0; dom && i < FAKE_DISKS; i++)
        n += dom->disks[i].used;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static inline bool fake_has_disk(struct fake_hv *f, const char *uuid, const char *alias,
                                 char *serial_out, size_t size)
{
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, uuid);
    struct fake_disk *k = dom ? fake_disk(dom, alias) : NULL;
    if (k && serial_out)
        snprintf(serial_out, size, "%s", k->serial);
    pthread_mutex_unlock(&f->lock);
    return k != NULL;
}

/* The domain's state changes, and the hypervisor says so. */
static inline void fake_set_state(struct fake_hv *f, const char *uuid, enum driver_state state)
{
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, uuid);
    if (dom)
        dom->state = state;
    pthread_mutex_unlock(&f->lock);
    if (dom && f->base.events.domain_state)
        f->base.events.domain_state(f->base.events.cls, uuid, state);
}

static inline void fake_remove_domain(struct fake_hv *f, const char *uuid)
{
    pthread_mutex_lock(&f->lock);
    struct fake_domain *dom = fake_domain(f, uuid);
    if (dom)
        dom->used = false;
    pthread_mutex_unlock(&f->lock);
}

#endif
