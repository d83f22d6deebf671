/* driver.c: choosing a driver, and the names every driver gives disks. */
#include "driver/driver.h"

#include <stdio.h>
#include <string.h>

struct driver *driver_open(const struct driver_options *o, char *err, size_t errlen)
{
    if (!o->kind || !strcmp(o->kind, "none")) {
        struct driver *d = driver_none_open();
        if (!d)
            snprintf(err, errlen, "out of memory");
        return d;
    }
    if (!strcmp(o->kind, "libvirt"))
        return driver_libvirt_open(o, err, errlen);
    snprintf(err, errlen, "unknown driver \"%s\" (none or libvirt)", o->kind);
    return NULL;
}

void driver_close(struct driver *d)
{
    if (d)
        d->ops->close(d);
}

void driver_alias(const char *attachment_id, char out[DRIVER_ALIAS_MAX + 1])
{
    snprintf(out, DRIVER_ALIAS_MAX + 1, "ua-%s", attachment_id);
}

void driver_serial(const char *volume_id, char out[256])
{
    snprintf(out, 256, "%s", volume_id);
    for (char *p = out; *p; p++)
        if (*p == ':' || *p == '~')
            *p = '_';
}

void driver_domain_name(const char *server_id, char out[DRIVER_NAME_MAX + 1])
{
    snprintf(out, DRIVER_NAME_MAX + 1, "attachd-%s", server_id);
}
