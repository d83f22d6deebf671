/* libvirt.c: the libvirt driver (not written yet). */
#include "driver/driver.h"

#include <stdio.h>

struct driver *driver_libvirt_open(const struct driver_options *o, char *err, size_t errlen)
{
    (void)o;
    snprintf(err, errlen, "the libvirt driver is not built yet");
    return NULL;
}
