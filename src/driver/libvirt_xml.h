/* libvirt_xml.h: the XML the libvirt driver writes (a disk, a server's
 * domain) and reads (a domain's disks, its console log, its metadata). */
#ifndef ATTACHD_DRIVER_LIBVIRT_XML_H
#define ATTACHD_DRIVER_LIBVIRT_XML_H

#include <stdbool.h>

#include "driver/driver.h"
#include "util/arena.h"

/* One <disk> of a domain XML; strings in the arena, "" when absent. */
struct lvxml_disk {
    const char *alias;          /* a user alias ("ua-..."), else "" */
    const char *target;         /* target/@dev */
    const char *serial;
    const char *path;           /* source/@file, @dev or @name */
};

/* Every <disk> of a domain XML. false when the XML does not parse. */
bool lvxml_disks(const char *xml, struct arena *ar, struct lvxml_disk **out, int *n);
/* The same, and whether the XML is a running domain's: libvirt writes
 * <domain id='N'> only for a domain that runs (or is paused), so the live
 * XML also tells the state the driver needs, without another call. */
bool lvxml_domain_disks(const char *xml, struct arena *ar, struct lvxml_disk **out, int *n,
                        bool *active);

/* The <disk> element to attach `disk` as `target`. direct: cache='none'
 * io='native' (the file system supports O_DIRECT), else cache='writeback'
 * io='threads'. */
char *lvxml_disk_xml(struct arena *ar, const struct driver_disk *disk, const char *target,
                     bool direct);

/* The namespace of the metadata attachd puts in the domains it defines:
 * <attachd:server xmlns:attachd=LVXML_NS id=SERVER owner=OWNER/>. */
#define LVXML_NS "http://attachd.invalid/xmlns/server/1"

/* A server's domain, as domain_define() has it made. */
struct lvxml_domain {
    const struct driver_domain_spec *spec;
    const char *name;           /* "attachd-<server id>" */
    const char *owner;          /* the metadata's owner */
    const char *type;           /* "kvm" or "qemu" */
    const char *overlay;        /* the root disk's overlay file; NULL: spec->root_volume */
    const char *console;        /* the serial console's log file */
    bool direct;                /* the overlay's file system supports O_DIRECT */
};
/* The <domain> element to define. */
char *lvxml_domain_xml(struct arena *ar, const struct lvxml_domain *d);
/* The file a domain's serial console is logged to ("" when none) from its
 * XML; false when the XML does not parse. */
bool lvxml_console_path(const char *xml, struct arena *ar, const char **path);
/* The server id and the owner of attachd's metadata element (as
 * virDomainGetMetadata returns it); false when it does not parse. */
bool lvxml_metadata(const char *xml, struct arena *ar, const char **server, const char **owner);

/* Disk names as libvirt and Linux count them: 0 -> "sda", 25 -> "sdz",
 * 26 -> "sdaa". */
void lvxml_target_name(const char *prefix, int index, char out[DRIVER_TARGET_MAX]);
/* The index of "sdaa" with prefix "sd" (26), or -1 when the name is not
 * the prefix followed by lowercase letters. */
int lvxml_target_index(const char *name, const char *prefix);

/* Whether libvirt keeps `alias` as a user alias: "ua-" then only
 * [A-Za-z0-9_-] (libvirt silently drops any other alias it is given). */
bool lvxml_alias_ok(const char *alias);

#endif
