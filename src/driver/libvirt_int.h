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
#include "driver/libvirt_xml.h"

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
/* Both at once, as most operations begin: the connection and the domain
 * (the handle a lookup by the same key found before, while the connection
 * lasts: lv_known_domain), or (not DRIVER_OK) neither. lv_release() gives
 * both back. */
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

/* Take the lock that serialises the disk operations on one domain (by
 * UUID), and give it back; operations on different domains never wait for
 * each other. */
struct lv_dlock;
struct lv_dlock *lv_domain_lock(struct driver *d, const char *uuid);
void lv_domain_unlock(struct driver *d, struct lv_dlock *l);

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

/* Both definitions of a domain, as its disks (libvirt_disks.c reads them).
 * conf_known false: the definition is a guess (it has the live disks, as
 * attachd's own attaches leave it), to be checked when libvirt refuses. */
struct lv_view {
    bool active, persistent;
    bool conf_known;
    struct lvxml_disk *live, *conf;     /* none when not running / when transient */
    int nlive, nconf;
};

/* What the driver knows of each domain without asking libvirt
 * (libvirt_known.c): the handle a lookup found, by the key (UUID or name)
 * it was looked up by, for the connection it came from; and the domain's
 * view as last read, with the driver's own changes since. A known view is
 * a guess that libvirt's refusal corrects, never a proof: it is used only
 * where a wrong guess makes libvirt refuse (libvirt_disks.c says where).
 * Every event on a domain moves its version; a lifecycle event forgets its
 * view, an undefine the whole domain, a DEVICE_REMOVED drops the alias
 * from the live disks. Thread-safe; no call does I/O. */
struct lv_known;
struct lv_known *lv_known_new(void);
void lv_known_free(struct lv_known *k);
/* Forget everything (the connection is being closed or was lost). */
void lv_known_flush(struct lv_known *k);
/* The handle looked up by `key` on connection c, with a reference for the
 * caller; NULL when none is known. */
virDomainPtr lv_known_domain(struct lv_known *k, virConnectPtr c, const char *key);
void lv_known_remember(struct lv_known *k, const char *key, virDomainPtr dom);
/* The known view of domain `uuid`, copied into the arena (conf_known
 * false); false when none is (or `ar` is NULL: only the version wanted).
 * *version: the domain's event count now, for lv_known_set_view. */
bool lv_known_view(struct lv_known *k, const char *uuid, struct arena *ar, struct lv_view *out,
                   uint64_t *version);
/* Keep a view read from libvirt, unless an event came since `version`
 * was taken (the view may predate it). */
void lv_known_set_view(struct lv_known *k, const char *uuid, const struct lv_view *v,
                       uint64_t version);
/* The driver's own change, done by libvirt: the disk is now in the live
 * XML and/or the definition; or the alias left them. */
void lv_known_added(struct lv_known *k, const char *uuid, const struct lvxml_disk *disk,
                    bool live, bool conf);
void lv_known_dropped(struct lv_known *k, const char *uuid, const char *alias, bool live,
                      bool conf);
/* An event on domain `uuid` (from libvirt's event thread): a DEVICE_REMOVED
 * of removed_alias; the domain undefined (gone); else a lifecycle event. */
void lv_known_event(struct lv_known *k, const char *uuid, const char *removed_alias, bool gone);
/* The driver's own table of known domains. */
struct lv_known *lv_known_of(struct driver *d);

/* libvirt's event loop, one thread per process (libvirt_loop.c): each
 * open driver starts using it (false, with the reason in err, when it
 * cannot run) and stops when it closes. The last user stops the thread;
 * any other returns once the loop has finished whatever callback it was
 * running, so that nothing of a closed driver is in use on it afterwards. */
bool lv_loop_start(char *err, size_t errlen);
void lv_loop_stop(void);

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
