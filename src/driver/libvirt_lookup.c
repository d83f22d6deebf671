/* libvirt_lookup.c: the libvirt driver's domains found by UUID or name
 * (through what the driver knows of them: libvirt_known.c), their state as
 * driver.h says it, and the handles given back: libvirt_int.h's
 * lv_domain, lv_open_domain, lv_release and lv_state, for libvirt.c's
 * table, libvirt_disks.c and libvirt_domain.c. The connection they run on,
 * and what a failed call means, are libvirt.c's. */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "driver/libvirt_int.h"

static bool looks_like_uuid(const char *s)
{
    size_t n = strlen(s), hex = 0;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
            (s[i] >= 'A' && s[i] <= 'F'))
            hex++;
        else if (s[i] != '-')
            return false;
    }
    return hex == 32 && (n == 32 || n == 36);
}

/* A name may look like a UUID: both are tried. */
enum driver_rc lv_domain(struct driver *d, virConnectPtr c, const char *name_or_uuid,
                         virDomainPtr *out, struct driver_error *err)
{
    *out = NULL;
    if (looks_like_uuid(name_or_uuid)) {
        if ((*out = virDomainLookupByUUIDString(c, name_or_uuid)))
            return DRIVER_OK;
        if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN)
            return lv_error(d, c, err);
    }
    if ((*out = virDomainLookupByName(c, name_or_uuid)))
        return DRIVER_OK;
    enum driver_rc rc = lv_error(d, c, err);
    if (rc == DRIVER_NOT_FOUND)
        driver_fail(err, rc, "no domain with UUID or name '%s'", name_or_uuid);
    return rc;
}

enum driver_rc lv_open_domain(struct driver *d, const char *name_or_uuid, virConnectPtr *c,
                              virDomainPtr *dom, struct driver_error *err)
{
    *dom = NULL;
    if (!(*c = lv_connection(d, err)))
        return DRIVER_UNAVAILABLE;
    struct lv_known *known = lv_known_of(d);
    if ((*dom = lv_known_domain(known, *c, name_or_uuid)))
        return DRIVER_OK;
    enum driver_rc rc = lv_domain(d, *c, name_or_uuid, dom, err);
    if (rc == DRIVER_OK)
        lv_known_remember(known, name_or_uuid, *dom);
    else {
        virConnectClose(*c);
        *c = NULL;
    }
    return rc;
}

void lv_release(virConnectPtr c, virDomainPtr dom)
{
    if (dom)
        virDomainFree(dom);
    if (c)
        virConnectClose(c);
}

static enum driver_state state_of(int st)
{
    switch (st) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED: return DOMAIN_RUNNING;
    case VIR_DOMAIN_PAUSED: return DOMAIN_PAUSED;
    /* SHUTDOWN: on its way off, QEMU not gone yet (a start would be
     * refused): still running until libvirt says shut off */
    case VIR_DOMAIN_SHUTDOWN: return DOMAIN_RUNNING;
    case VIR_DOMAIN_SHUTOFF: return DOMAIN_SHUTOFF;
    case VIR_DOMAIN_CRASHED: return DOMAIN_CRASHED;
    default: return DOMAIN_OTHER;
    }
}

enum driver_rc lv_state(struct driver *d, virConnectPtr c, virDomainPtr dom,
                        enum driver_state *out, struct driver_error *err)
{
    int state, reason, saved = 0;
    if (virDomainGetState(dom, &state, &reason, 0) < 0 ||
        (state == VIR_DOMAIN_SHUTOFF && (saved = virDomainHasManagedSaveImage(dom, 0)) < 0))
        return lv_error(d, c, err);
    *out = saved ? DOMAIN_SAVED : state_of(state);
    return DRIVER_OK;
}
