/* model.h: the records the store keeps; the core works on them.
 *
 * Plain data, no behaviour. Strings belong to whoever filled the record
 * (normally the request's arena); a NULL string means "not set" (JSON null).
 * Timestamps are UTC text "YYYY-MM-DDTHH:MM:SS.ffffff"; renderers derive the
 * forms each dialect shows.
 */
#ifndef ATTACHD_MODEL_H
#define ATTACHD_MODEL_H

#include <stdbool.h>
#include <stdint.h>

enum role { ROLE_MEMBER = 0, ROLE_ADMIN = 1 };

struct account {
    const char *id, *name, *created_at;
};

struct user {
    int64_t id;
    const char *name, *account_id, *pwhash, *created_at;
    enum role role;
};

/* Nova's power_state values. */
enum power_state {
    POWER_NOSTATE = 0, POWER_RUNNING = 1, POWER_PAUSED = 3,
    POWER_SHUTDOWN = 4, POWER_CRASHED = 6, POWER_SUSPENDED = 7,
};

struct server {
    const char *id, *account_id, *user_id, *name;
    const char *vm_state;       /* "active", "stopped", "paused", "suspended", ... */
    const char *task_state;     /* NULL when no task is in progress */
    int power_state;
    bool locked;
    const char *locked_by;      /* "owner" or "admin" when locked */
    const char *image_ref;      /* "" when booted from a volume */
    const char *flavor_ref;
    const char *availability_zone, *key_name;
    const char *metadata;       /* JSON object text */
    const char *created_at, *updated_at, *launched_at;
    const char *domain;         /* the hypervisor's domain (UUID) it is, or NULL */
    bool own_domain;            /* attachd defined the domain, and undefines it */
    const char *fault;          /* the last failure a client should see, or NULL */
};

struct volume {
    const char *id, *account_id, *name, *description;
    int64_t size;               /* GiB */
    const char *status;         /* creating, available, attaching, in-use, ...
                                   (docs/api.md, decision D8) */
    const char *volume_type, *availability_zone, *snapshot_id;
    const char *metadata;       /* JSON object text */
    const char *created_at, *updated_at;
    const char *path;           /* its storage (a file or block device), or NULL */
    bool adopted;               /* the storage was there before: never deleted */
};

/* An account's quotas: a limit per resource, -1 for no limit, QUOTA_UNSET
 * where the account keeps the default. */
#define QUOTA_UNSET INT64_MIN
struct quota {
    int64_t instances, cores, ram;      /* ram in MiB */
    int64_t volumes, gigabytes;
};

/* How many servers of one flavor an account has. */
struct flavor_count {
    const char *flavor_ref;
    int64_t servers;
};

/* An image servers are made from (`attachd image add`): a disk file of its
 * own, copied into the image directory and never changed after, so that a
 * server's disk may be an overlay backed by it. Every account sees every
 * image (Glance's "public"); names are unique. */
struct image {
    const char *id, *name;
    const char *disk_format;    /* "raw" or "qcow2", read from the file's header */
    int64_t size;               /* bytes of the file */
    int64_t virtual_size;       /* bytes of the disk it holds (qcow2: its header's; raw: size) */
    const char *checksum;       /* MD5 of the file, hex (Glance's checksum) */
    const char *hash_value;     /* SHA-512 of the file, hex (Glance's os_hash_value) */
    const char *path;           /* the file, absolute */
    /* Direct kernel boot, optional (NULL when not set): the kernel and the
     * initramfs (absolute paths of their copies beside the image file) and
     * the kernel's command line. A server of such an image boots that
     * kernel, its disk being the image's. */
    const char *kernel, *initrd, *cmdline;
    const char *created_at, *updated_at;
};

struct attachment {
    const char *id;             /* the attachment's own UUID (2.89 attachment_id) */
    const char *bdm_uuid;
    const char *server_id, *volume_id, *device, *tag;
    bool delete_on_termination;
    int boot_index;             /* 0 for the root volume, -1 otherwise */
    const char *created_at;
    /* "attached"; "attaching" or "detaching" while the hypervisor works (the
     * intent, until its completion is committed) */
    const char *status;
};

#endif
