/* libvirt_known.c: what the libvirt driver knows of each domain without
 * asking libvirt: the handle it looked the domain up with, and the disks
 * of both its definitions as last seen and changed since by the driver
 * itself (libvirt_int.h states the contract).
 *
 * Every libvirt call is a round trip through libvirtd's queue, where it
 * waits behind every other domain's hot-plug; an attach that first looked
 * the domain up and read its XML spent about as long on those two calls
 * as attachd spent on everything else. Knowing them makes the common
 * attach and detach one call each.
 *
 * Domains are hashed by UUID (events name a domain by UUID); the keys
 * callers look them up by (a UUID or a name) are hashed apart, each to the
 * UUID its lookup found (a name may come to mean another domain: a lookup
 * then says so again). One mutex
 * guards the table; it is never held across a libvirt call that does I/O
 * (virDomainFree of a handle only drops a reference: the connection it
 * holds is held by the driver too while the handle is usable).
 */
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driver/libvirt_int.h"

#define BUCKETS 256

struct known_disks {
    struct lvxml_disk *d;       /* each disk's strings in one block at d[i].alias */
    int n, cap;
};

struct entry {
    struct entry *next;
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainPtr dom;
    /* the disks: valid until an event says the domain changed */
    bool valid, active, persistent;
    uint64_t version;           /* moves with every event on the domain */
    struct known_disks live, conf;
};

/* A key a domain was looked up by. */
struct key {
    struct key *next;
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[];
};

struct lv_known {
    pthread_mutex_t mu;
    struct entry *by_uuid[BUCKETS];
    struct key *keys[BUCKETS];
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

static void disks_clear(struct known_disks *k)
{
    for (int i = 0; i < k->n; i++)
        free((char *)k->d[i].alias);
    k->n = 0;
}

/* Append a copy of x; false when out of memory. */
static bool disks_add(struct known_disks *k, const struct lvxml_disk *x)
{
    if (k->n == k->cap) {
        int cap = k->cap ? k->cap * 2 : 8;
        struct lvxml_disk *d = realloc(k->d, sizeof *d * (size_t)cap);
        if (!d)
            return false;
        k->d = d;
        k->cap = cap;
    }
    const char *s[4] = {x->alias, x->target, x->serial, x->path};
    size_t len[4], total = 0;
    for (int i = 0; i < 4; i++)
        total += (len[i] = strlen(s[i])) + 1;
    char *block = malloc(total), *p = block;
    if (!block)
        return false;
    const char *out[4];
    for (int i = 0; i < 4; i++) {
        memcpy(p, s[i], len[i] + 1);
        out[i] = p;
        p += len[i] + 1;
    }
    k->d[k->n++] = (struct lvxml_disk){out[0], out[1], out[2], out[3]};
    return true;
}

static void disks_drop(struct known_disks *k, const char *alias)
{
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->d[i].alias, alias)) {
            free((char *)k->d[i].alias);
            memmove(&k->d[i], &k->d[i + 1], sizeof *k->d * (size_t)(k->n - i - 1));
            k->n--;
            return;
        }
}

static bool disks_has(const struct known_disks *k, const char *alias)
{
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->d[i].alias, alias))
            return true;
    return false;
}

/* A copy of k in the arena. */
static struct lvxml_disk *disks_copy(const struct known_disks *k, struct arena *ar)
{
    struct lvxml_disk *d = arena_alloc(ar, sizeof *d * (size_t)(k->n + 1));
    for (int i = 0; i < k->n; i++)
        d[i] = (struct lvxml_disk){arena_strdup(ar, k->d[i].alias),
                                   arena_strdup(ar, k->d[i].target),
                                   arena_strdup(ar, k->d[i].serial),
                                   arena_strdup(ar, k->d[i].path)};
    return d;
}

static void forget_disks(struct entry *e)
{
    e->valid = false;
    disks_clear(&e->live);
    disks_clear(&e->conf);
}

static struct entry *find_uuid(struct lv_known *k, const char *uuid)
{
    for (struct entry *e = k->by_uuid[hash(uuid)]; e; e = e->next)
        if (!strcmp(e->uuid, uuid))
            return e;
    return NULL;
}

static struct key *find_key(struct lv_known *k, const char *name)
{
    for (struct key *x = k->keys[hash(name)]; x; x = x->next)
        if (!strcmp(x->name, name))
            return x;
    return NULL;
}

static void free_entry(struct entry *e)
{
    forget_disks(e);
    free(e->live.d);
    free(e->conf.d);
    if (e->dom)
        virDomainFree(e->dom);
    free(e);
}

struct lv_known *lv_known_new(void)
{
    struct lv_known *k = calloc(1, sizeof *k);
    if (k)
        pthread_mutex_init(&k->mu, NULL);
    return k;
}

void lv_known_flush(struct lv_known *k)
{
    pthread_mutex_lock(&k->mu);
    for (int b = 0; b < BUCKETS; b++) {
        for (struct entry *e = k->by_uuid[b], *next; e; e = next) {
            next = e->next;
            free_entry(e);
        }
        for (struct key *x = k->keys[b], *next; x; x = next) {
            next = x->next;
            free(x);
        }
        k->by_uuid[b] = NULL;
        k->keys[b] = NULL;
    }
    pthread_mutex_unlock(&k->mu);
}

void lv_known_free(struct lv_known *k)
{
    if (!k)
        return;
    lv_known_flush(k);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

virDomainPtr lv_known_domain(struct lv_known *k, virConnectPtr c, const char *key)
{
    virDomainPtr dom = NULL;
    pthread_mutex_lock(&k->mu);
    struct key *x = find_key(k, key);
    struct entry *e = x ? find_uuid(k, x->uuid) : NULL;
    /* a handle of a connection since lost is of no use */
    if (e && e->dom && virDomainGetConnect(e->dom) == c && virDomainRef(e->dom) == 0)
        dom = e->dom;
    pthread_mutex_unlock(&k->mu);
    return dom;
}

void lv_known_remember(struct lv_known *k, const char *key, virDomainPtr dom)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return;
    pthread_mutex_lock(&k->mu);
    struct key *x = find_key(k, key);
    if (!x && (x = calloc(1, sizeof *x + strlen(key) + 1))) {
        strcpy(x->name, key);
        x->next = k->keys[hash(key)];
        k->keys[hash(key)] = x;
    }
    if (x)
        memcpy(x->uuid, uuid, sizeof uuid);
    struct entry *e = find_uuid(k, uuid);
    if (!e && (e = calloc(1, sizeof *e))) {
        memcpy(e->uuid, uuid, sizeof uuid);
        e->next = k->by_uuid[hash(uuid)];
        k->by_uuid[hash(uuid)] = e;
    }
    if (e && e->dom != dom && virDomainRef(dom) == 0) {
        if (e->dom) {
            /* events while the old connection was down were lost */
            if (virDomainGetConnect(e->dom) != virDomainGetConnect(dom))
                forget_disks(e);
            virDomainFree(e->dom);
        }
        e->dom = dom;
    }
    pthread_mutex_unlock(&k->mu);
}

bool lv_known_view(struct lv_known *k, const char *uuid, struct arena *ar, struct lv_view *out,
                   uint64_t *version)
{
    bool ok = false;
    pthread_mutex_lock(&k->mu);
    struct entry *e = find_uuid(k, uuid);
    if (e) {
        *version = e->version;
        if ((ok = e->valid && ar))
            *out = (struct lv_view){.active = e->active, .persistent = e->persistent,
                                    .conf_known = false,
                                    .live = disks_copy(&e->live, ar), .nlive = e->live.n,
                                    .conf = disks_copy(&e->conf, ar), .nconf = e->conf.n};
    } else {
        *version = 0;
    }
    pthread_mutex_unlock(&k->mu);
    return ok;
}

void lv_known_set_view(struct lv_known *k, const char *uuid, const struct lv_view *v,
                       uint64_t version)
{
    pthread_mutex_lock(&k->mu);
    struct entry *e = find_uuid(k, uuid);
    if (e && e->version == version) {
        forget_disks(e);
        bool ok = true;
        for (int i = 0; ok && i < v->nlive; i++)
            ok = disks_add(&e->live, &v->live[i]);
        for (int i = 0; ok && i < v->nconf; i++)
            ok = disks_add(&e->conf, &v->conf[i]);
        if (ok) {
            e->valid = true;
            e->active = v->active;
            e->persistent = v->persistent;
        } else {
            forget_disks(e);
        }
    }
    pthread_mutex_unlock(&k->mu);
}

void lv_known_added(struct lv_known *k, const char *uuid, const struct lvxml_disk *disk,
                    bool live, bool conf)
{
    pthread_mutex_lock(&k->mu);
    struct entry *e = find_uuid(k, uuid);
    if (e && e->valid &&
        ((live && !disks_has(&e->live, disk->alias) && !disks_add(&e->live, disk)) ||
         (conf && !disks_has(&e->conf, disk->alias) && !disks_add(&e->conf, disk))))
        forget_disks(e);
    pthread_mutex_unlock(&k->mu);
}

void lv_known_dropped(struct lv_known *k, const char *uuid, const char *alias, bool live,
                      bool conf)
{
    pthread_mutex_lock(&k->mu);
    struct entry *e = find_uuid(k, uuid);
    if (e && e->valid) {
        if (live)
            disks_drop(&e->live, alias);
        if (conf)
            disks_drop(&e->conf, alias);
    }
    pthread_mutex_unlock(&k->mu);
}

void lv_known_event(struct lv_known *k, const char *uuid, const char *removed_alias, bool gone)
{
    pthread_mutex_lock(&k->mu);
    struct entry *e = find_uuid(k, uuid);
    if (e) {
        e->version++;
        if (gone) {
            struct entry **p;
            for (p = &k->by_uuid[hash(uuid)]; *p != e; p = &(*p)->next)
                ;
            *p = e->next;
            free_entry(e);
        } else if (removed_alias) {
            if (e->valid)
                disks_drop(&e->live, removed_alias);
        } else {
            forget_disks(e);
        }
    }
    pthread_mutex_unlock(&k->mu);
}
