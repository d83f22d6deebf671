/* driver.h: what really happens to a volume's storage and to a server's
 * disks. The core touches a hypervisor or storage only through this.
 *
 * Two drivers: `none` (the state-only mode, for people who test clients:
 * every operation but `name` and `close` is NULL, the domain operations
 * too: a caller checks before it calls, and the core then records each
 * change in one transaction, as if the hypervisor had done it at once) and
 * `libvirt` (files in a volume directory, libvirt domains, hot-plugged
 * disks).
 *
 * Rules for callers (the core):
 *  - Calls block, so they are made only on the core's driver workers: never
 *    on an HTTP thread, never on the store's writer, never inside a
 *    transaction.
 *  - Calls are idempotent: a disk is named by its alias, derived from its
 *    attachment's id (driver_alias()), so attaching what is attached or
 *    detaching what is gone is not an error. That is what lets the core
 *    retry and reconcile after a crash.
 *  - A detach is only a request. A disk is gone when the driver reports
 *    disk_removed() or when disk_list() no longer shows it: libvirt reports
 *    success for a virtio-blk detach that the guest never honours.
 *  - Likewise a domain's power changes are done when the domain is in the
 *    state they lead to, as the hypervisor reports it after the call: a
 *    shutdown the guest has not carried out yet is DRIVER_PENDING.
 *  - The domains attachd defines (domain_define) are named
 *    "attachd-<server id>" and carry, in their metadata, the server's id and
 *    the owner given at open (the database they belong to), so that one
 *    attachd never takes another's domains for its own.
 *  - Events that happen while the hypervisor is unreachable are lost: on
 *    connection(true), reconcile what is pending with disk_list().
 *
 * Events (disk_removed, domain_state, connection) come on the driver's own
 * thread; the receiver hands them on and returns quickly.
 */
#ifndef ATTACHD_DRIVER_H
#define ATTACHD_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"

enum driver_rc {
    DRIVER_OK = 0,
    DRIVER_PENDING,             /* asked; the outcome comes later (a live detach) */
    DRIVER_NOT_FOUND,           /* no such domain, disk or file */
    DRIVER_REFUSED,             /* the hypervisor or the file system said no: see err */
    DRIVER_UNAVAILABLE,         /* the hypervisor cannot be reached now: retry later */
};

struct driver_error {
    char message[512];          /* the hypervisor's own words where it gave any */
};

/* For implementations: err's message from fmt, and rc returned. */
enum driver_rc driver_fail(struct driver_error *err, enum driver_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* DOMAIN_SAVED: shut off with a managed save image, which the next start
 * resumes from (Nova's suspend). */
enum driver_state {
    DOMAIN_RUNNING, DOMAIN_PAUSED, DOMAIN_SHUTOFF, DOMAIN_CRASHED, DOMAIN_OTHER, DOMAIN_SAVED,
};

/* What domain_power() asks of a domain, and the state each leads to. */
enum driver_power {
    DP_START,           /* start (from its managed save, if it has one): running */
    DP_SHUTDOWN,        /* ask the guest to power off (ACPI): shut off, once it has */
    DP_DESTROY,         /* pull the plug: shut off */
    DP_PAUSE,           /* stop its vCPUs: paused */
    DP_UNPAUSE,         /* running */
    DP_SAVE,            /* its memory to a managed save image, then off: saved */
};

/* KVM, or QEMU's own emulation (TCG). */
enum driver_virt { VIRT_AUTO, VIRT_QEMU, VIRT_KVM };

enum driver_bus { BUS_SCSI, BUS_VIRTIO };

#define DRIVER_UUID_LEN 36
#define DRIVER_NAME_MAX 255
#define DRIVER_TARGET_MAX 16
/* "ua-" and an id of at most ID_MAX characters */
#define DRIVER_ALIAS_MAX (3 + 255)

struct driver_domain {
    char uuid[DRIVER_UUID_LEN + 1];
    char name[DRIVER_NAME_MAX + 1];
    enum driver_state state;
    bool persistent;            /* has a definition that outlives a shutdown */
};

/* A volume's disk in a domain. */
struct driver_disk {
    const char *domain;         /* the domain's UUID */
    const char *alias;          /* driver_alias() of the attachment id */
    const char *serial;         /* driver_serial() of the volume id */
    const char *path;           /* the volume's file or block device */
    bool block;                 /* path is a block device */
    enum driver_bus bus;
    /* the target to use ("sdb"), chosen by the core so that the device it
     * answers with is the one the disk gets; a disk of another alias there
     * already is a refusal. NULL: the driver picks the next free one. */
    const char *target;
};

/* A domain attachd defines for a server. */
struct driver_domain_spec {
    const char *uuid;           /* the server's id when it is a UUID, else one made for it */
    const char *server;         /* the server's id: the domain is "attachd-<server>" */
    int vcpus;
    int64_t ram_mb;
    /* The root disk: a qcow2 overlay, made in the instance directory, of
     * the image file (of image_format, "raw" or "qcow2"), disk_bytes large
     * (0: as large as the image; never less, or the image is cut); or, when
     * root_volume is set, that volume's disk (virtio-blk, target "vda",
     * alias and serial as any disk's). */
    const char *image, *image_format;
    int64_t disk_bytes;
    const struct driver_disk *root_volume;
    /* Direct kernel boot (the image's record says so), else NULL: the
     * firmware boots the root disk. */
    const char *kernel, *initrd, *cmdline;
};

/* A disk that a domain has, as disk_list() finds it. */
struct driver_present {
    const char *alias;          /* "" for a disk without a user alias */
    const char *target;         /* "sdb", "vdc", ... */
    const char *serial;
    const char *path;
    bool live;                  /* in the running domain */
    bool config;                /* in its persistent definition */
};

struct driver;

/* What the driver reports; cls is handed back. Any may be NULL. */
struct driver_events {
    void *cls;
    void (*disk_removed)(void *cls, const char *domain, const char *alias);
    void (*disk_removal_failed)(void *cls, const char *domain, const char *alias);
    void (*domain_state)(void *cls, const char *domain, enum driver_state state);
    void (*connection)(void *cls, bool up);
};

struct driver_ops {
    const char *name;

    /* ---- storage: volume files in the volume directory */
    /* Make a sparse file of `bytes` for the volume; its path into path[]. A
     * file that exists already with that size is fine (idempotent). */
    enum driver_rc (*volume_create)(struct driver *d, const char *volume_id, int64_t bytes,
                                    char *path, size_t path_size, struct driver_error *err);
    /* Remove a file volume_create() made (never an adopted one: the caller
     * knows which). Gone already is fine. */
    enum driver_rc (*volume_delete)(struct driver *d, const char *path, struct driver_error *err);
    /* An existing file or block device to adopt: its size, and which it is. */
    enum driver_rc (*volume_probe)(struct driver *d, const char *path, int64_t *bytes,
                                   bool *block, struct driver_error *err);

    /* ---- domains */
    /* A domain by UUID or name. */
    enum driver_rc (*domain_lookup)(struct driver *d, const char *name_or_uuid,
                                    struct driver_domain *out, struct driver_error *err);
    /* Define a server's domain, persistent and not started: its root disk, a
     * virtio-scsi controller for the volumes (and free PCIe ports for
     * virtio-blk ones), its serial console logged to a file in the
     * instance directory, no network. Defined already with that UUID and
     * name: DRIVER_OK, unchanged. A failure leaves nothing behind. */
    enum driver_rc (*domain_define)(struct driver *d, const struct driver_domain_spec *spec,
                                    struct driver_error *err);
    /* Remove a server's domain as domain_define() made it: destroyed if it
     * runs, undefined (its managed save image too), its files removed. No
     * such domain: DRIVER_OK. A domain of that UUID that is not the
     * server's (another name, or another owner): DRIVER_REFUSED. */
    enum driver_rc (*domain_undefine)(struct driver *d, const char *uuid, const char *server,
                                      struct driver_error *err);
    /* Ask a domain for a power change (see enum driver_power). DRIVER_OK
     * once it is in the state the change leads to (in it already counts);
     * DRIVER_PENDING while a shutdown is up to the guest; DRIVER_REFUSED
     * with the hypervisor's words (pausing a shut-off domain), or for a
     * domain another owner defined. */
    enum driver_rc (*domain_power)(struct driver *d, const char *domain, enum driver_power what,
                                   struct driver_error *err);
    /* What the domain wrote on its serial console (a file: its log), in
     * ar: the whole file, or its last 100 KiB when it is larger (as Nova
     * answers); "" while nothing was written (never started). A console
     * not logged to a file: DRIVER_NOT_FOUND. */
    enum driver_rc (*console_log)(struct driver *d, const char *domain, struct arena *ar,
                                  char **out, size_t *len, struct driver_error *err);
    /* Every domain this owner defined with domain_define() (strings in ar;
     * the name is "attachd-<server id>"). */
    enum driver_rc (*domain_list)(struct driver *d, struct arena *ar, struct driver_domain **out,
                                  int *n, struct driver_error *err);

    /* ---- disks */
    /* Attach a disk: live if the domain runs or is paused, and in its
     * persistent definition if it has one (a shut-off domain: definition
     * only). Returns once attached, with the target the hypervisor chose in
     * target[] ("sdb"). Attached already (same alias): DRIVER_OK; the alias
     * in use for another path: DRIVER_REFUSED. */
    enum driver_rc (*disk_attach)(struct driver *d, const struct driver_disk *disk,
                                  char target[DRIVER_TARGET_MAX], struct driver_error *err);
    /* Ask for a disk's removal, live and from the definition. DRIVER_OK: it
     * is gone from both (or never was); DRIVER_PENDING: the live removal is
     * asked for, and disk_removed() or disk_list() will tell. No such
     * domain: DRIVER_NOT_FOUND. */
    enum driver_rc (*disk_detach)(struct driver *d, const char *domain, const char *alias,
                                  struct driver_error *err);
    /* Every disk of a domain, live and defined (strings in ar). */
    enum driver_rc (*disk_list)(struct driver *d, const char *domain, struct arena *ar,
                                struct driver_present **out, int *n, struct driver_error *err);

    void (*close)(struct driver *d);
};

struct driver {
    const struct driver_ops *ops;
    struct driver_events events;
};

struct driver_options {
    const char *kind;           /* "none" or "libvirt" */
    const char *uri;            /* libvirt: qemu:///system, qemu+ssh://..., qemu:///embed?root= */
    const char *volume_dir;     /* libvirt: where volume files live */
    enum driver_bus bus;        /* libvirt: the bus of new disks */
    const char *instance_dir;   /* libvirt: the domains' root disks and console logs */
    enum driver_virt virt;      /* libvirt: KVM or TCG; AUTO: KVM when /dev/kvm opens */
    const char *owner;          /* whose domains (the database's path) */
};

/* Open a driver; NULL with a reason in err. Events may be set on the
 * driver after it is opened, before the first call. */
struct driver *driver_open(const struct driver_options *o, char *err, size_t errlen);
void driver_close(struct driver *d);

struct driver *driver_none_open(void);
struct driver *driver_libvirt_open(const struct driver_options *o, char *err, size_t errlen);

/* The alias of an attachment's disk: "ua-<attachment id>" (libvirt's user
 * aliases start with "ua-"). libvirt keeps a user alias only when the rest
 * is [A-Za-z0-9_-] and silently replaces any other with its own, so the
 * libvirt driver refuses ids with '.', '~' or ':' (generated UUIDs have
 * none). */
void driver_alias(const char *attachment_id, char out[DRIVER_ALIAS_MAX + 1]);
/* A volume id as a disk serial: the characters libvirt refuses in a serial
 * (':' and '~' among the id's) become '_'. */
void driver_serial(const char *volume_id, char out[256]);
/* Is s a UUID as libvirt writes it (36 characters, hex either case)? A
 * domain's UUID names its instance directory: nothing else is let through. */
bool driver_uuid_ok(const char *s);
/* The name of a server's domain: "attachd-<server id>". */
void driver_domain_name(const char *server_id, char out[DRIVER_NAME_MAX + 1]);

#endif
