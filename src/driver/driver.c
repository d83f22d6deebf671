/* driver.c: choosing a driver, the names every driver gives disks, and
 * the error helper the implementations share. */
#include "driver/driver.h"

#include <stdarg.h>
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

enum driver_rc driver_fail(struct driver_error *err, enum driver_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return rc;
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

bool driver_uuid_ok(const char *s)
{
    for (int i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-'
                                                    : !strchr("0123456789abcdefABCDEF", s[i]) ||
                                                          !s[i])
            return false;
    return s[36] == '\0';
}

void driver_domain_name(const char *server_id, char out[DRIVER_NAME_MAX + 1])
{
    snprintf(out, DRIVER_NAME_MAX + 1, "attachd-%s", server_id);
}
