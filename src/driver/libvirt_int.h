/* libvirt_int.h: what the libvirt driver's files share. libvirt.c owns the
 * connection (its reconnects, events and errors); libvirt_disks.c the
 * disks; libvirt_domain.c the domains attachd defines for its servers. The
 * last two reach the connection through the few functions below. Not part
 * of the driver's interface (driver.h). */
#ifndef ATTACHD_DRIVER_LIBVIRT_INT_H
#define ATTACHD_DRIVER_LIBVIRT_INT_H

#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdatomic.h>

#include "driver/driver.h"

struct lv;

/* What domain_define() needs of the driver's options. */
struct lv_settings {
    const char *uri;
    const char *instance_dir;   /* absolute, or NULL: servers cannot be made */
    const char *owner;          /* "" when none was given */
    const char *hv_user;        /* who must reach instance_dir, when local */
    enum driver_virt virt;
    atomic_bool warned_direct;  /* the fallback from O_DIRECT was logged */
};
struct lv_settings *lv_settings(struct driver *d);

/* The connection for one call, with a reference of its own (release it
 * with virConnectClose); NULL with DRIVER_UNAVAILABLE's message while down. */
virConnectPtr lv_connection(struct driver *d, struct driver_error *err);
/* A domain by UUID or name (virDomainFree it). */
enum driver_rc lv_domain(struct driver *d, virConnectPtr c, const char *name_or_uuid,
                         virDomainPtr *out, struct driver_error *err);
/* Both at once, as most operations begin: the connection and the domain,
 * or (not DRIVER_OK) neither. lv_release() gives both back. */
enum driver_rc lv_open_domain(struct driver *d, const char *name_or_uuid, virConnectPtr *c,
                              virDomainPtr *dom, struct driver_error *err);
void lv_release(virConnectPtr c, virDomainPtr dom);
/* A libvirt call on c failed: libvirt's message into err, and what it
 * means (a lost connection is noticed here). Call it first: any libvirt
 * call resets the thread's last error. */
enum driver_rc lv_error(struct driver *d, virConnectPtr c, struct driver_error *err);
/* A domain's state as driver.h says it (a shut-off domain with a managed
 * save image is DOMAIN_SAVED). */
enum driver_rc lv_state(struct driver *d, virConnectPtr c, virDomainPtr dom,
                        enum driver_state *out, struct driver_error *err);

/* The lock that serialises the disk operations on one domain (by UUID). */
pthread_mutex_t *lv_domain_lock(struct driver *d, const char *uuid);

/* A detach's wait for libvirt's DEVICE_REMOVED (or DEVICE_REMOVAL_FAILED)
 * of `alias` on the domain `uuid`: lv_listen() before asking for the
 * removal, so that a fast event is not missed; lv_wait() then waits up to
 * `ms` (0: not at all) and stops listening. The outcome stays W_WAITING
 * when no event came, W_LOST when the connection was lost meanwhile. */
enum { W_WAITING, W_REMOVED, W_FAILED, W_LOST };
struct lv_waiter {
    struct lv_waiter *next;
    const char *uuid, *alias;
    int outcome;
};
void lv_listen(struct driver *d, struct lv_waiter *w);
void lv_wait(struct driver *d, struct lv_waiter *w, long ms);

/* The disk operations (libvirt_disks.c), for the driver's table. */
enum driver_rc lv_disk_attach(struct driver *d, const struct driver_disk *disk,
                              char target[DRIVER_TARGET_MAX], struct driver_error *err);
enum driver_rc lv_disk_detach(struct driver *d, const char *domain, const char *alias,
                              struct driver_error *err);
enum driver_rc lv_disk_list(struct driver *d, const char *domain, struct arena *ar,
                            struct driver_present **out, int *n, struct driver_error *err);

/* The domain operations (libvirt_domain.c), for the driver's table. */
enum driver_rc lv_domain_define(struct driver *d, const struct driver_domain_spec *spec,
                                struct driver_error *err);
enum driver_rc lv_domain_undefine(struct driver *d, const char *uuid, const char *server,
                                  struct driver_error *err);
enum driver_rc lv_domain_power(struct driver *d, const char *domain, enum driver_power what,
                               struct driver_error *err);
enum driver_rc lv_console_log(struct driver *d, const char *domain, struct arena *ar, char **out,
                              size_t *len, struct driver_error *err);
enum driver_rc lv_domain_list(struct driver *d, struct arena *ar, struct driver_domain **out,
                              int *n, struct driver_error *err);

#endif
