/* core.h: the domain. Servers, volumes, attachments, their states and rules.
 *
 * No HTTP, no SQL, no JSON: callers pass plain values and get records or a
 * typed error back.
 *
 * Reads are plain calls on the caller's thread (the store's reader of that
 * thread). Changes are operations: core_<verb>(op, ...) starts one and
 * returns at once; the core finishes it later by calling op->done(op),
 * exactly once, on whatever thread finished the work (possibly inside the
 * starting call, when a check fails before anything was queued). Each change
 * runs as one store transaction, checks included, so a rule checked is
 * still true when the change commits, and readers see the old state or the
 * new one, never a mix. A caller that may block (the CLI, tests) waits with
 * core_sync.
 *
 * Messages are OpenStack Nova's texts; api/dialect.c decides how each
 * dialect shows them.
 */
#ifndef ATTACHD_CORE_H
#define ATTACHD_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

#include "driver/driver.h"
#include "store/model.h"
#include "store/store.h"
#include "util/arena.h"

enum core_code {
    CORE_OK = 0,
    CORE_BAD_REQUEST,       /* the request is not acceptable as it stands */
    CORE_FORBIDDEN,         /* the caller may not do this */
    CORE_NOT_FOUND,         /* a named resource does not exist (in scope) */
    CORE_CONFLICT,          /* the resource's state forbids it */
    CORE_ALREADY_ATTACHED,  /* the volume has an attachment already */
    CORE_VOLUME_BUSY,       /* the volume is attached and cannot be deleted */
    CORE_UNAVAILABLE,       /* the store failed; try again */
    CORE_OTHER_ACCOUNT,     /* a volume and a server of different accounts */
    CORE_VOLUME_QUOTA,      /* a volume would pass its account's quota */
    CORE_DETACHING,         /* the volume is being detached already */
    CORE_HYPERVISOR,        /* the hypervisor refused, or did not confirm in time */
    CORE_NOT_IMPLEMENTED,   /* not with this driver (yet) */
};

struct core_error {
    enum core_code code;
    char message[512];
    int retry_after;            /* seconds, when worth retrying (CORE_UNAVAILABLE) */
};

/* The long-lived domain: what every request works against. */
struct core;
/* A core that records state only (the none driver). */
struct core *core_new(struct store *store);
void core_free(struct core *c);

/* ---- the hypervisor -------------------------------------------------------
 * With a driver, a change that touches the hypervisor is an intent committed
 * first, a driver call on a worker (outside any transaction), and a
 * completion committed after it (tasks.c). */

struct core_options {
    enum driver_bus bus;        /* of new disks */
    int detach_timeout;         /* seconds until an unconfirmed detach is given up */
    int detach_attempts;        /* the removal is asked this often within it */
    bool reconcile;             /* at start and every reconcile_interval (the daemon) */
    int reconcile_interval;     /* seconds between reconciliations; 0: only at start */
    int shutdown_timeout;       /* seconds a guest has to power off before it is destroyed */
    int workers;                /* threads that call the driver */
};

/* Give the core a hypervisor: reconcile once if asked (every intent a
 * crash left is finished or undone), then start the workers. */
bool core_start_driver(struct core *c, struct driver *d, const struct core_options *o,
                       char *err, size_t errlen);
/* Give the core a hypervisor to look at only (attachd check): no workers,
 * core_reconcile() then reports and changes nothing. */
void core_set_driver(struct core *c, struct driver *d, const struct core_options *o);
/* Stopping: answer every requester still waiting for a confirmation as
 * "pending", and wait no more from now on. */
void core_drain(struct core *c);
/* Stop the workers; intents not completed stay for the next start. */
void core_stop_driver(struct core *c);
/* Is the hypervisor reachable now (always true without a driver)? */
bool core_hypervisor_up(struct core *c);
/* For the metrics: hypervisor operations queued or in progress, counted by
 * kind into counts[] (names[] gets each kind's name), and the age in
 * seconds of the oldest (0 when there is none). */
#define CORE_TASK_KINDS 9
double core_tasks_pending(struct core *c, const char *names[CORE_TASK_KINDS],
                          int counts[CORE_TASK_KINDS]);

/* A disagreement between the store and the hypervisor. */
struct core_disagreement {
    const char *server, *volume;        /* ids; NULL when none applies */
    const char *what;
};
/* Compare every server that is a domain with the hypervisor. With a core
 * running its driver, intents nobody works on are finished or undone;
 * `report` (if set) gets each disagreement, and the log too. False when
 * the hypervisor could not be asked. */
bool core_reconcile(struct core *c, void (*report)(void *cls, const struct core_disagreement *d),
                    void *cls);

/* Who is asking, and where. */
struct core_ctx {
    struct core *core;
    struct arena *arena;        /* results are allocated here (by whichever
                                   thread runs the work: one at a time) */
    const char *scope;          /* lookups only see this account; NULL: any (admin) */
    const char *account;        /* new resources belong to this account */
    const char *home;           /* the caller's own account */
    const char *user_id;
    bool admin;
    int version;                /* Nova microversion 2.<version>; 1 for Hostway */
};

/* Everything read between these two sees one snapshot of the store (pairs
 * nest); the API opens one around each read request. */
bool core_read_begin(struct core_ctx *c, struct core_error *err);
void core_read_end(struct core_ctx *c);

/* A change in progress. The caller fills ctx, done and (if it likes) cls
 * and handoff, keeps the op and every argument valid until done() has run,
 * and reads ok and err there. handoff(), if set, is called on the starting
 * thread right before the work goes to another thread (and not at all when
 * a check fails at once and done() runs inside the starting call). */
struct core_op {
    struct core_ctx *ctx;
    void (*done)(struct core_op *op);
    void (*handoff)(struct core_op *op);
    void *cls;                  /* the caller's */
    /* how long the caller waits for the hypervisor's confirmation of a
     * detach (seconds; 0: answer once the intent is recorded) */
    double wait;
    bool ok;
    bool pending;               /* answered before the hypervisor confirmed */
    struct core_error err;
    struct store_job job;       /* the core's */
    void (*then)(struct core_op *op, bool ok);  /* the core's */
};

/* Waiting for an operation, for callers that may block. */
struct core_sync {
    struct core_op op;
    pthread_mutex_t lock;
    pthread_cond_t finished_cond;
    bool finished;
};
/* Make s.op ready to be started with ctx; then core_sync_wait(). */
void core_sync_init(struct core_sync *s, struct core_ctx *ctx);
/* Wait until s.op is done; its outcome, with the error copied into err. */
bool core_sync_wait(struct core_sync *s, struct core_error *err);

/* Metadata items a server or a volume may have (Nova's default quota). */
#define CORE_MAX_METADATA_ITEMS 128

/* ---- flavors and quotas -------------------------------------------------- */

struct flavor {
    const char *id, *name;
    int vcpus;
    int64_t ram_mb, disk_gb;
};

/* The flavors servers are made with: the configuration's ([flavor ID]
 * sections, in the file's order), or Nova's classic set when it has none
 * (m1.tiny, m1.small, m1.medium, m1.large, m1.xlarge: ids 1 to 5).
 * core_set_flavors copies them (false: out of memory; the set is then
 * unchanged). */
bool core_set_flavors(struct core *c, const struct flavor *f, int n);
/* The flavor of that id, or NULL. */
const struct flavor *core_flavor(const struct core *c, const char *id);
/* Every flavor, in their order: their number, the array in *out. */
int core_flavors(const struct core *c, const struct flavor **out);

/* Nova's default quotas for servers, Cinder's for volumes. */
extern const struct quota core_default_quota;

/* An account's quotas (defaults filled in, -1 for none) and its usage. */
struct limits {
    struct quota quota, used;
};
/* The limits of the account the caller acts in. */
bool core_limits(struct core_ctx *c, struct limits *out, struct core_error *err);

/* ---- images ----------------------------------------------------------- */

/* An image by id (CORE_NOT_FOUND: none), or every image, oldest first.
 * Images are public: any caller sees each one. */
bool core_image_get(struct core_ctx *c, const char *id, struct image *out,
                    struct core_error *err);
bool core_image_list(struct core_ctx *c, struct image **out, int *n, struct core_error *err);

/* ---- servers ---------------------------------------------------------- */

struct server_spec {
    const char *id;             /* NULL: generate a UUID4 */
    /* the hypervisor's domain it is (server add --domain): its UUID and state */
    const struct driver_domain *domain;
    /* image_ref: NULL for "" (none); flavor_ref: NULL for the first flavor */
    const char *name, *image_ref, *flavor_ref, *availability_zone, *key_name;
    const char *metadata;       /* JSON object text, NULL: {} */
    const char *root_volume_id; /* boot from this volume (boot_index 0) */
    bool root_delete_on_termination;
};

enum server_action {
    ACTION_STOP, ACTION_START, ACTION_LOCK, ACTION_UNLOCK,
    ACTION_PAUSE, ACTION_UNPAUSE, ACTION_SUSPEND, ACTION_RESUME,
    ACTION_REBOOT_SOFT, ACTION_REBOOT_HARD,
};

void core_server_create(struct core_op *op, const struct server_spec *spec, struct server *out);
bool core_server_get(struct core_ctx *c, const char *id, struct server *out,
                     struct core_error *err);
/* Newest first; `marker` and `filter` as in store_server_list (an unknown
 * marker is 400). */
bool core_server_list(struct core_ctx *c, const char *marker, const struct server_filter *filter,
                      int limit, struct server **out, int *n, struct core_error *err);
/* The same across accounts, an admin's only (CORE_FORBIDDEN for others):
 * every account's servers, or `account`'s if set. */
bool core_server_list_all(struct core_ctx *c, const char *account, const char *marker,
                          const struct server_filter *filter, int limit, struct server **out,
                          int *n, struct core_error *err);
void core_server_delete(struct core_op *op, const char *id);
void core_server_action(struct core_op *op, const char *id, enum server_action action);
/* Nova's os-getConsoleOutput: what the server's domain wrote on its serial
 * console, its last `lines` lines (-1: all; as Nova, the text after the
 * last newline counts as a line), in *out (ctx->arena). Read by a worker:
 * the caller's op waits. No hypervisor: "". CORE_NOT_FOUND with Nova's
 * message for a console that is not logged to a file (a bound domain's). */
void core_server_console(struct core_op *op, const char *id, int lines, const char **out);
/* Nova's status for a vm_state and task_state ("ACTIVE", "REBOOT", ...). */
const char *core_server_status(const char *vm_state, const char *task_state);
/* Nova's filter by status (common.py's task_and_vm_state_from_status): the
 * vm_states and task_states of f whose status is one of the n `statuses`,
 * in any case. False if none is a status. */
bool core_server_status_filter(struct arena *ar, const char *const *statuses, int n,
                               struct server_filter *f);

/* ---- volumes ------------------------------------------------------------ */

struct volume_spec {
    const char *id;             /* NULL: generate a UUID4 */
    const char *path;           /* adopt this file or block device (volume add --path) */
    const char *name, *description, *volume_type, *availability_zone, *snapshot_id;
    const char *metadata;       /* JSON object text, NULL: {} */
    int64_t size;
};

void core_volume_create(struct core_op *op, const struct volume_spec *spec, struct volume *out);
/* Cinder's volume update: what is set replaces the volume's (a name or a
 * description may be set to NULL); the volume as it is then in *out. */
struct volume_update {
    bool name_set, description_set;
    const char *name, *description;
    const char *metadata;       /* JSON object text; NULL: unchanged */
};
void core_volume_update(struct core_op *op, const char *id, const struct volume_update *u,
                        struct volume *out);
bool core_volume_get(struct core_ctx *c, const char *id, struct volume *out,
                     struct core_error *err);
bool core_volume_list(struct core_ctx *c, const char *name, int64_t offset, int limit,
                      struct volume **out, int *n, struct core_error *err);
void core_volume_delete(struct core_op *op, const char *id);

/* ---- attachments -------------------------------------------------------- */

struct attach_spec {
    const char *volume_id;
    const char *device;         /* NULL: the next free /dev/vdX */
    const char *tag;
    bool delete_on_termination;
};

struct attach_update {
    const char *volume_id;      /* a different id than the URL's: a swap */
    bool set_delete_on_termination, delete_on_termination;
    /* Must equal the current values when given (2.85). */
    const char *device, *tag, *server_id, *id;
    bool has_device, has_tag, has_server_id, has_id;
};

void core_attach(struct core_op *op, const char *server_id, const struct attach_spec *spec,
                 struct attachment *out);
bool core_attachment_list(struct core_ctx *c, const char *server_id, int64_t offset, int limit,
                          struct attachment **out, int *n, struct core_error *err);
bool core_attachment_get(struct core_ctx *c, const char *server_id, const char *volume_id,
                         struct attachment *out, struct core_error *err);
void core_attachment_update(struct core_op *op, const char *server_id, const char *volume_id,
                            const struct attach_update *u);
void core_detach(struct core_op *op, const char *server_id, const char *volume_id);

/* The attachments of a server (all), and of a volume (0 or 1), for rendering;
 * read on the calling thread's reader, inside the caller's snapshot if any. */
bool core_server_attachments(struct core_ctx *c, const char *server_id, struct attachment **out,
                             int *n, struct core_error *err);
bool core_volume_attachment(struct core_ctx *c, const char *volume_id, struct attachment *out,
                            bool *attached, struct core_error *err);

/* Nova's device-name rule: "/dev/" then letters then digits. */
bool core_device_valid(const char *device);

/* Set err and return false: the common tail of every failing check. */
bool core_fail(struct core_error *err, enum core_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
