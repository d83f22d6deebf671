/* internal.h: helpers shared by the core's files; not part of its interface. */
#ifndef ATTACHD_CORE_INTERNAL_H
#define ATTACHD_CORE_INTERNAL_H

#include "core/core.h"

struct core {
    struct store *store;
};

/* Map a failed store call to a core error (NOTFOUND is the caller's to map). */
bool core_store_failed(struct core_error *err, enum store_rc rc);
/* Run fn(writer, arg) as op's one transaction and finish op with the
 * outcome: fn returns 0 to commit, or nonzero after setting op->err. */
void core_submit(struct core_op *op, store_write_fn fn, void *arg);
/* Finish op now, with op->err already set: a check that failed before
 * anything was queued. */
void core_finish(struct core_op *op, bool ok);
/* The current time in the store's form, and a new UUID4, in c->arena. */
const char *core_now(struct core_ctx *c);
const char *core_new_id(struct core_ctx *c);
/* The calling thread's reader, or false with CORE_UNAVAILABLE. */
struct store_conn *core_reader(struct core_ctx *c, struct core_error *err);

/* Server lookups shared by the attachment rules; 404 with Nova's text. */
bool core_find_server(struct core_ctx *c, struct store_conn *conn, const char *id,
                      struct server *out, struct core_error *err);
bool core_find_volume(struct core_ctx *c, struct store_conn *conn, const char *id,
                      struct volume *out, struct core_error *err);
/* A volume is attached only to a server of its own account, whoever asks
 * (Nova has no such rule; an admin could otherwise hand one account's
 * volume to another's server, which could then delete it). */
bool core_same_account(const struct volume *v, const struct server *s, struct core_error *err);
/* Would one more server of flavor f, or a volume of size GiB, pass the
 * quotas of c->account? Read in the creating transaction. */
bool core_check_server_quota(struct core_ctx *c, struct store_conn *w, const struct flavor *f,
                             struct core_error *err);
bool core_check_volume_quota(struct core_ctx *c, struct store_conn *w, int64_t size,
                             struct core_error *err);
/* Nova's check_instance_lock: a locked server refuses non-admins. */
bool core_check_unlocked(struct core_ctx *c, const struct server *s, struct core_error *err);

#endif
