/* libvirt_disks.c: the libvirt driver's disks: attach, detach and list,
 * each on both definitions of a domain (live and persistent), found again
 * by their user alias ("ua-<attachment id>"). The connection, its events
 * and its errors are libvirt.c's (libvirt_int.h).
 *
 * Invariants:
 *  - Attaches and detaches on one domain are serialised (lv_domain_lock),
 *    so two workers never pick the same target name.
 *  - A detach never reports DRIVER_OK while the alias is in the live XML.
 */
#include <libvirt/virterror.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/libvirt_int.h"
#include "driver/libvirt_xml.h"
#include "driver/volfile.h"
#include "util/arena.h"
#include "util/log.h"

/* A detach waits this long for DEVICE_REMOVED before answering PENDING:
 * SCSI unplugs and guests that answer take 50-400 ms here, so most
 * detaches finish in one call; a stuck virtio-blk costs a worker 1 s. */
#define DETACH_GRACE_MS 1000

/* How much of a domain's view to read:
 *  VIEW_WHOLE   both definitions, from libvirt: one call for a shut-off
 *               domain (its live XML is its definition: libvirt writes
 *               <domain id='N'> only for a running or paused one), three
 *               for a running one (its live XML; whether it is persistent,
 *               since libvirt gives a transient domain's live definition for
 *               VIR_DOMAIN_XML_INACTIVE; its definition)
 *  VIEW_GUESS   what the driver knows of a running persistent domain
 *               (lv_known_view: no call at all); else, for a running
 *               domain, its live XML only (a quick view), taking it as
 *               persistent with a definition that has the live disks (what
 *               attachd's own attaches leave). Either is conf_known false.
 * Under load every libvirt call waits in libvirtd's queue, so an attach or
 * a detach tries a guess first and reads the whole view only when libvirt
 * refused it. Whatever is read from libvirt becomes the known view. */
enum view_kind { VIEW_WHOLE, VIEW_GUESS };

static enum driver_rc dom_view(struct driver *d, virConnectPtr c, virDomainPtr dom,
                               const char *uuid, enum view_kind kind, struct arena *ar,
                               struct lv_view *out, struct driver_error *err)
{
    struct lv_known *known = lv_known_of(d);
    uint64_t version;
    if (lv_known_view(known, uuid, kind == VIEW_GUESS ? ar : NULL, out, &version) &&
        out->active && out->persistent)
        return DRIVER_OK;
    memset(out, 0, sizeof *out);
    char *xml = virDomainGetXMLDesc(dom, 0);
    if (!xml)
        return lv_error(d, c, err);
    struct lvxml_disk *disks;
    int n;
    bool active;
    bool ok = lvxml_domain_disks(xml, ar, &disks, &n, &active);
    free(xml);
    if (!ok)
        return driver_fail(err, DRIVER_REFUSED, "cannot parse the domain's XML");
    if (!active) {
        *out = (struct lv_view){.persistent = true, .conf_known = true, .conf = disks, .nconf = n};
    } else if (kind == VIEW_GUESS) {
        *out = (struct lv_view){.active = true, .persistent = true, .live = disks, .nlive = n};
        lv_known_set_view(known, uuid, &(struct lv_view){.active = true, .persistent = true,
                          .live = disks, .nlive = n, .conf = disks, .nconf = n}, version);
        return DRIVER_OK;
    } else {
        *out = (struct lv_view){.active = true, .conf_known = true, .live = disks, .nlive = n};
        int persistent = virDomainIsPersistent(dom);
        if (persistent < 0)
            return lv_error(d, c, err);
        if (persistent) {
            out->persistent = true;
            if (!(xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE)))
                return lv_error(d, c, err);
            ok = lvxml_disks(xml, ar, &out->conf, &out->nconf);
            free(xml);
            if (!ok)
                return driver_fail(err, DRIVER_REFUSED, "cannot parse the domain's XML");
        }
    }
    lv_known_set_view(known, uuid, out, version);
    return DRIVER_OK;
}

static const struct lvxml_disk *find_alias(const struct lvxml_disk *d, int n, const char *alias)
{
    for (int i = 0; i < n; i++)
        if (d[i].alias[0] && !strcmp(d[i].alias, alias))
            return &d[i];
    return NULL;
}

/* The disk of either definition that uses target dev `name`, if any. */
static const struct lvxml_disk *target_user(const struct lvxml_disk *a, int na,
                                            const struct lvxml_disk *b, int nb,
                                            const char *name)
{
    for (int i = 0; i < na + nb; i++) {
        const struct lvxml_disk *x = i < na ? &a[i] : &b[i - na];
        if (!strcmp(x->target, name))
            return x;
    }
    return NULL;
}

/* The first sdX / vdX that no disk of either definition uses. */
static void free_target(enum driver_bus bus, const struct lvxml_disk *a, int na,
                        const struct lvxml_disk *b, int nb, char out[DRIVER_TARGET_MAX])
{
    const char *prefix = bus == BUS_VIRTIO ? "vd" : "sd";
    for (int idx = 0;; idx++) {
        lvxml_target_name(prefix, idx, out);
        if (!target_user(a, na, b, nb, out))
            return;
    }
}

static bool direct_io(struct driver *d, const struct driver_disk *disk)
{
    char why[PATH_MAX + 64];
    if (disk->block || volfile_direct_ok(disk->path, why, sizeof why))
        return true;
    if (!atomic_exchange(&lv_settings(d)->warned_direct, true))
        log_warn("libvirt driver: %s, so disks there attach with cache='writeback' "
                 "io='threads' instead of cache='none' io='native'", why);
    return false;
}

/* Undo what a failed attach left: the alias where it is now but was not
 * before (libvirt attaches live first and saves the definition after). */
static void attach_undo(virDomainPtr dom, const char *alias, bool live_added, bool conf_added)
{
    unsigned flags = (live_added ? VIR_DOMAIN_AFFECT_LIVE : 0) |
                     (conf_added ? VIR_DOMAIN_AFFECT_CONFIG : 0);
    if (flags && virDomainDetachDeviceAlias(dom, alias, flags) < 0)
        log_warn("libvirt driver: cannot undo a half-done attach of %s: %s", alias,
                 virGetLastErrorMessage());
}

static enum driver_rc attach_locked(struct driver *d, virConnectPtr c, virDomainPtr dom,
                                    const char *uuid, const struct driver_disk *disk,
                                    char target[DRIVER_TARGET_MAX], struct driver_error *err)
{
    enum driver_rc rc = DRIVER_REFUSED;
    struct arena ar;
    arena_init(&ar);
    /* The first pass takes a guess (VIEW_GUESS); another, with the whole
     * view, only after a refusal that a concurrent change explains (the
     * domain started or stopped, the target was taken) or that proves the
     * guess wrong (a transient domain, a definition with the alias or the
     * target, a disk attached behind the driver's back). */
    for (int pass = 0; pass < 3; pass++) {
        struct lv_view info;
        if ((rc = dom_view(d, c, dom, uuid, pass == 0 ? VIEW_GUESS : VIEW_WHOLE, &ar, &info,
                           err)) != DRIVER_OK)
            break;
        const struct lvxml_disk *live = info.live, *conf = info.conf;
        int nlive = info.nlive, nconf = info.nconf;
        const struct lvxml_disk *in_live = find_alias(live, nlive, disk->alias);
        const struct lvxml_disk *in_conf = find_alias(conf, nconf, disk->alias);
        const struct lvxml_disk *found = in_live ? in_live : in_conf;
        if (found && !info.conf_known)
            continue;       /* a retry, part done: the whole view decides */
        char tgt[DRIVER_TARGET_MAX];
        if (found) {
            if (strcmp(found->path, disk->path) != 0) {
                rc = driver_fail(err, DRIVER_REFUSED, "alias %s is in use by another disk (%s)",
                                 disk->alias, found->path);
                break;
            }
            snprintf(tgt, sizeof tgt, "%s", found->target);
        } else if (disk->target && disk->target[0]) {
            const struct lvxml_disk *there = target_user(live, nlive, conf, nconf,
                                                         disk->target);
            if (there) {
                rc = driver_fail(err, DRIVER_REFUSED,
                                 "target %s is in use by another disk (%s%s%s)",
                                 disk->target, there->path, there->alias[0] ? ", alias " : "",
                                 there->alias);
                break;
            }
            snprintf(tgt, sizeof tgt, "%s", disk->target);
        } else {
            free_target(disk->bus, live, nlive, conf, nconf, tgt);
        }
        bool need_live = info.active && !in_live, need_conf = info.persistent && !in_conf;
        if (!need_live && !need_conf) {
            snprintf(target, DRIVER_TARGET_MAX, "%s", tgt);
            rc = DRIVER_OK;
            break;
        }
        const char *xml = lvxml_disk_xml(&ar, disk, tgt, direct_io(d, disk));
        unsigned flags = (need_live ? VIR_DOMAIN_AFFECT_LIVE : 0) |
                         (need_conf ? VIR_DOMAIN_AFFECT_CONFIG : 0);
        if (virDomainAttachDeviceFlags(dom, xml, flags) == 0) {
            lv_known_added(lv_known_of(d), uuid, &(struct lvxml_disk){disk->alias, tgt,
                           disk->serial ? disk->serial : "", disk->path}, need_live, need_conf);
            snprintf(target, DRIVER_TARGET_MAX, "%s", tgt);
            rc = DRIVER_OK;
            break;
        }
        if ((rc = lv_error(d, c, err)) != DRIVER_REFUSED)
            break;
        /* Refused. Look again: undo a half, or retry after a race. */
        struct driver_error again;
        struct lv_view now;
        if (dom_view(d, c, dom, uuid, VIEW_WHOLE, &ar, &now, &again) != DRIVER_OK)
            break;
        const struct lvxml_disk *live2 = now.live, *conf2 = now.conf;
        int nlive2 = now.nlive, nconf2 = now.nconf;
        bool live_added = need_live && find_alias(live2, nlive2, disk->alias);
        /* libvirt saves a definition only after the live attach worked, so
         * a refused attach never leaves the alias in the definition alone;
         * one that a guess did not see was there before */
        bool conf_added = info.conf_known && need_conf && find_alias(conf2, nconf2, disk->alias);
        bool raced = now.active != info.active || now.persistent != info.persistent ||
                     (!info.conf_known && find_alias(conf2, nconf2, disk->alias));
        for (int i = 0; !found && i < nlive2 + nconf2 && !raced; i++) {
            const struct lvxml_disk *x = i < nlive2 ? &live2[i] : &conf2[i - nlive2];
            raced = !strcmp(x->target, tgt) && strcmp(x->alias, disk->alias) != 0;
        }
        if (raced && !live_added && !conf_added)
            continue;
        if (live_added || conf_added)
            attach_undo(dom, disk->alias, live_added, conf_added);
        break;
    }
    arena_release(&ar);
    return rc;
}

enum driver_rc lv_disk_attach(struct driver *d, const struct driver_disk *disk,
                              char target[DRIVER_TARGET_MAX], struct driver_error *err)
{
    if (!lvxml_alias_ok(disk->alias))
        return driver_fail(err, DRIVER_REFUSED, "libvirt keeps only aliases of 'ua-' and "
                           "[A-Za-z0-9_-], not '%s'", disk->alias);
    if (disk->target && disk->target[0] &&
        (strlen(disk->target) >= DRIVER_TARGET_MAX ||
         (lvxml_target_index(disk->target, "sd") < 0 &&
          lvxml_target_index(disk->target, "vd") < 0)))
        return driver_fail(err, DRIVER_REFUSED, "invalid target '%.32s' (sdX or vdX)",
                           disk->target);
    virConnectPtr c;
    virDomainPtr dom;
    enum driver_rc rc = lv_open_domain(d, disk->domain, &c, &dom, err);
    if (rc != DRIVER_OK)
        return rc;
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(dom, uuid);
    struct lv_dlock *lock = lv_domain_lock(d, uuid);
    rc = attach_locked(d, c, dom, uuid, disk, target, err);
    lv_domain_unlock(d, lock);
    lv_release(c, dom);
    return rc;
}

/* One detach step under the domain's lock: ask for the removal
 * wherever the alias is. *asked_live: a live removal is under way. */
static enum driver_rc detach_locked(struct driver *d, virConnectPtr c, virDomainPtr dom,
                                    const char *uuid, const char *alias, bool *asked_live,
                                    struct driver_error *err)
{
    struct arena ar;
    arena_init(&ar);
    enum driver_rc rc;
    struct lv_view v;
    *asked_live = false;
    /* Known to be in both definitions of a running domain (as an attach
     * leaves it): ask for both at once. Had either lost it meanwhile,
     * libvirt refuses the whole request, and the whole view decides. */
    uint64_t version;
    if (lv_known_view(lv_known_of(d), uuid, &ar, &v, &version) && v.active && v.persistent &&
        find_alias(v.live, v.nlive, alias) && find_alias(v.conf, v.nconf, alias) &&
        virDomainDetachDeviceAlias(dom, alias, VIR_DOMAIN_AFFECT_LIVE |
                                   VIR_DOMAIN_AFFECT_CONFIG) == 0) {
        lv_known_dropped(lv_known_of(d), uuid, alias, false, true);
        *asked_live = true;
        rc = DRIVER_OK;
        goto out;
    }
    if ((rc = dom_view(d, c, dom, uuid, VIEW_WHOLE, &ar, &v, err)) != DRIVER_OK)
        goto out;
    bool in_live = find_alias(v.live, v.nlive, alias);
    bool in_conf = find_alias(v.conf, v.nconf, alias);
    if (!in_live && !in_conf) {
        rc = DRIVER_OK;
        goto out;
    }
    unsigned flags = (in_live ? VIR_DOMAIN_AFFECT_LIVE : 0) |
                     (in_conf ? VIR_DOMAIN_AFFECT_CONFIG : 0);
    if (virDomainDetachDeviceAlias(dom, alias, flags) == 0) {
        lv_known_dropped(lv_known_of(d), uuid, alias, false, in_conf);
        *asked_live = in_live;
        rc = DRIVER_OK;
        goto out;
    }
    if ((rc = lv_error(d, c, err)) != DRIVER_REFUSED)
        goto out;
    /* A live removal still under way (a guest that has not answered yet)
     * makes QEMU refuse another, and libvirt then leaves the definition
     * alone too: remove it from the definition by itself. The live removal
     * asked for before still stands. */
    if (in_live) {
        if (in_conf && virDomainDetachDeviceAlias(dom, alias, VIR_DOMAIN_AFFECT_CONFIG) < 0) {
            lv_error(d, c, err);
            goto out;
        }
        if (strstr(err->message, "in the process of unplug")) {
            *asked_live = true;
            rc = DRIVER_OK;
        }
    }
out:
    arena_release(&ar);
    return rc;
}

/* Where the alias is now: bit 1 live, bit 2 definition; -1 on failure. */
static int presence(struct driver *d, virConnectPtr c, virDomainPtr dom, const char *uuid,
                    const char *alias, enum driver_rc *rc, struct driver_error *err)
{
    struct arena ar;
    arena_init(&ar);
    struct lv_view v;
    int where = -1;
    if ((*rc = dom_view(d, c, dom, uuid, VIEW_WHOLE, &ar, &v, err)) == DRIVER_OK)
        where = (find_alias(v.live, v.nlive, alias) ? 1 : 0) |
                (find_alias(v.conf, v.nconf, alias) ? 2 : 0);
    arena_release(&ar);
    return where;
}

enum driver_rc lv_disk_detach(struct driver *d, const char *domain, const char *alias,
                              struct driver_error *err)
{
    virConnectPtr c;
    virDomainPtr dom;
    enum driver_rc rc = lv_open_domain(d, domain, &c, &dom, err);
    if (rc != DRIVER_OK)
        return rc;
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainGetUUIDString(dom, uuid);

    /* Listen before asking, so that a fast DEVICE_REMOVED is not missed. */
    struct lv_waiter w = {.uuid = uuid, .alias = alias};
    lv_listen(d, &w);
    bool asked_live = false;
    struct lv_dlock *lock = lv_domain_lock(d, uuid);
    rc = detach_locked(d, c, dom, uuid, alias, &asked_live, err);
    lv_domain_unlock(d, lock);
    lv_wait(d, &w, rc == DRIVER_OK && asked_live ? DETACH_GRACE_MS : 0);

    /* The answer comes from libvirt's word, never from the request alone:
     * DEVICE_REMOVED is libvirt's (sent once the live XML no longer has the
     * disk; the definition lost it when the call returned), and without it
     * the XML is read. */
    bool confirmed = asked_live && w.outcome == W_REMOVED;
    if (rc == DRIVER_OK && !confirmed) {
        int where = presence(d, c, dom, uuid, alias, &rc, err);
        if (where == 0)
            rc = DRIVER_OK;
        else if (where > 0 && w.outcome == W_FAILED)
            rc = driver_fail(err, DRIVER_REFUSED, "the hypervisor reported that removing %s failed",
                             alias);
        else if (where == 1 && asked_live)
            rc = DRIVER_PENDING;
        else if (where > 0)
            rc = driver_fail(err, DRIVER_REFUSED, "%s is still in the domain's %s after the detach",
                             alias, where & 2 ? "definition" : "live XML");
    }
    lv_release(c, dom);
    return rc;
}

enum driver_rc lv_disk_list(struct driver *d, const char *domain, struct arena *ar,
                            struct driver_present **out, int *n, struct driver_error *err)
{
    *out = NULL;
    *n = 0;
    virConnectPtr c;
    virDomainPtr dom;
    enum driver_rc rc = lv_open_domain(d, domain, &c, &dom, err);
    if (rc != DRIVER_OK)
        return rc;
    char uuid[VIR_UUID_STRING_BUFLEN];
    struct lv_view v;
    if (virDomainGetUUIDString(dom, uuid) < 0)
        rc = lv_error(d, c, err);
    else if ((rc = dom_view(d, c, dom, uuid, VIEW_WHOLE, ar, &v, err)) == DRIVER_OK) {
        const struct lvxml_disk *live = v.live, *conf = v.conf;
        int nlive = v.nlive, nconf = v.nconf;
        /* merged by user alias; disks without one by target */
        struct driver_present *p = arena_alloc(ar, sizeof *p * (size_t)(nlive + nconf + 1));
        int np = 0;
        for (int i = 0; i < nlive + nconf; i++) {
            bool is_live = i < nlive;
            const struct lvxml_disk *x = is_live ? &live[i] : &conf[i - nlive];
            struct driver_present *same = NULL;
            for (int j = 0; j < np && !same; j++)
                if (x->alias[0] ? !strcmp(p[j].alias, x->alias)
                                : !p[j].alias[0] && !strcmp(p[j].target, x->target))
                    same = &p[j];
            if (!same) {
                same = &p[np++];
                *same = (struct driver_present){.alias = x->alias, .target = x->target,
                                                .serial = x->serial, .path = x->path};
            }
            if (is_live)
                same->live = true;
            else
                same->config = true;
        }
        *out = p;
        *n = np;
    }
    lv_release(c, dom);
    return rc;
}

