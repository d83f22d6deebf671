/* records.c: the record functions of store.h (accounts, users, servers,
 * volumes, attachments, images, the auth epoch), written once for every
 * engine over the statement interface of store_int.h (its engine-neutral
 * helpers are stmt.c's). Every statement has bound parameters and is
 * prepared once per connection; its SQL text is the engine's
 * (sqlite_sql.c, pg_engine.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* ---------------------------------------------------------------------------
 * The shapes most record functions take
 * ------------------------------------------------------------------------- */

/* KEYS(a, b, ...): text parameters ?1, ?2, ... as an array and its length. */
#define KEYS(...) (const char *const[]){__VA_ARGS__}, \
    (int)(sizeof (const char *const[]){__VA_ARGS__} / sizeof(const char *))

/* Statement `id` with keys[i] bound to ?i+1 (NULL binds NULL), or NULL. */
static struct store_stmt *keyed(struct store_conn *c, enum stmt_id id, const char *const *keys,
                                int n)
{
    struct store_stmt *st = stmt_get(c, id);
    for (int i = 0; st && i < n; i++)
        stmt_bind_text(st, i + 1, keys[i]);
    return st;
}

/* The one row that `id` finds by its keys, read into *out. */
static enum store_rc get_row(struct store_conn *c, struct arena *ar, stmt_row_reader read,
                             void *out, enum stmt_id id, const char *const *keys, int n)
{
    struct store_stmt *st = keyed(c, id, keys, n);
    return st ? stmt_get_row(st, ar, read, out) : STORE_ERROR;
}

/* A change that `id` makes to exactly one row found by its keys. */
static enum store_rc change_row(struct store_conn *w, enum stmt_id id, const char *const *keys,
                                int n)
{
    struct store_stmt *st = keyed(w, id, keys, n);
    return st ? stmt_exec_one(st) : STORE_ERROR;
}

/* Every row of `id` (no parameters), into a new array of *n records. */
static enum store_rc all_rows(struct store_conn *c, enum stmt_id id, struct arena *ar,
                              size_t size, stmt_row_reader read, void **out, int *n)
{
    struct store_stmt *st = stmt_get(c, id);
    return st ? stmt_collect(st, ar, size, read, out, n) : STORE_ERROR;
}

/* A single-row query of one integer column: its value into *out. */
static enum store_rc get_int64(struct store_conn *c, enum stmt_id id, int64_t *out)
{
    struct store_stmt *st = stmt_get(c, id);
    if (!st)
        return STORE_ERROR;
    enum store_rc rc = stmt_row(st);
    if (rc == STORE_OK) {
        *out = stmt_col_int64(st, 0);
        stmt_reset(st);
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * Meta
 * ------------------------------------------------------------------------- */

enum store_rc store_auth_epoch(struct store_conn *c, int64_t *epoch)
{
    return get_int64(c, S_AUTH_EPOCH, epoch);
}

enum store_rc store_auth_epoch_bump(struct store_conn *w)
{
    w->epoch_bumped = true;     /* counted if its transaction commits */
    struct store_stmt *st = stmt_get(w, S_AUTH_EPOCH_BUMP);
    return st ? stmt_exec(st) : STORE_ERROR;
}

/* ---------------------------------------------------------------------------
 * Accounts and users
 * ------------------------------------------------------------------------- */

enum store_rc store_account_add(struct store_conn *w, const struct account *a)
{
    struct store_stmt *st = stmt_get(w, S_ACCOUNT_ADD);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, a->id);
    stmt_bind_text(st, 2, a->name);
    stmt_bind_text(st, 3, a->created_at);
    return stmt_exec(st);
}

enum store_rc store_account_get(struct store_conn *c, struct arena *ar, const char *key,
                                struct account *out)
{
    struct store_stmt *st = stmt_get(c, S_ACCOUNT_GET);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, key);
    enum store_rc rc = stmt_row(st);
    if (rc == STORE_OK) {
        out->id = stmt_col_text(st, 0, ar);
        out->name = stmt_col_text(st, 1, ar);
        out->created_at = stmt_col_text(st, 2, ar);
        stmt_reset(st);
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * Quotas and usage
 * ------------------------------------------------------------------------- */

static int64_t col_quota(struct store_stmt *st, int i)
{
    return stmt_col_null(st, i) ? QUOTA_UNSET : stmt_col_int64(st, i);
}

static void bind_quota(struct store_stmt *st, int i, int64_t v)
{
    if (v == QUOTA_UNSET)
        stmt_bind_null(st, i);
    else
        stmt_bind_int64(st, i, v);
}

enum store_rc store_quota_get(struct store_conn *c, const char *account, struct quota *out)
{
    struct store_stmt *st = stmt_get(c, S_QUOTA_GET);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, account);
    enum store_rc rc = stmt_row(st);
    *out = (struct quota){QUOTA_UNSET, QUOTA_UNSET, QUOTA_UNSET, QUOTA_UNSET, QUOTA_UNSET};
    if (rc == STORE_OK) {
        *out = (struct quota){col_quota(st, 0), col_quota(st, 1), col_quota(st, 2),
                              col_quota(st, 3), col_quota(st, 4)};
        stmt_reset(st);
    }
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

enum store_rc store_quota_set(struct store_conn *w, const char *account, const struct quota *q)
{
    struct store_stmt *st = stmt_get(w, S_QUOTA_SET);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, account);
    bind_quota(st, 2, q->instances);
    bind_quota(st, 3, q->cores);
    bind_quota(st, 4, q->ram);
    bind_quota(st, 5, q->volumes);
    bind_quota(st, 6, q->gigabytes);
    return stmt_exec(st);
}

static void read_flavor_count(struct store_stmt *st, struct arena *ar, void *out)
{
    struct flavor_count *f = out;
    f->flavor_ref = stmt_col_text(st, 0, ar);
    f->servers = stmt_col_int64(st, 1);
}

enum store_rc store_server_usage(struct store_conn *c, struct arena *ar, const char *account,
                                 struct flavor_count **out, int *n)
{
    struct store_stmt *st = stmt_get(c, S_SERVER_USAGE);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, account);
    return stmt_collect(st, ar, sizeof **out, read_flavor_count, (void **)out, n);
}

enum store_rc store_volume_usage(struct store_conn *c, const char *account, int64_t *volumes,
                                 int64_t *gigabytes)
{
    struct store_stmt *st = stmt_get(c, S_VOLUME_USAGE);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, account);
    enum store_rc rc = stmt_row(st);
    if (rc == STORE_OK) {
        *volumes = stmt_col_int64(st, 0);
        *gigabytes = stmt_col_int64(st, 1);
        stmt_reset(st);
    }
    return rc;
}

enum store_rc store_user_add(struct store_conn *w, const struct user *u)
{
    struct store_stmt *st = stmt_get(w, S_USER_ADD);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, u->name);
    stmt_bind_text(st, 2, u->account_id);
    stmt_bind_text(st, 3, u->role == ROLE_ADMIN ? "admin" : "member");
    stmt_bind_text(st, 4, u->pwhash);
    stmt_bind_text(st, 5, u->created_at);
    return stmt_exec(st);
}

enum store_rc store_user_get(struct store_conn *c, struct arena *ar, const char *name,
                             struct user *out)
{
    struct store_stmt *st = stmt_get(c, S_USER_GET);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, name);
    enum store_rc rc = stmt_row(st);
    if (rc == STORE_OK) {
        out->id = stmt_col_int64(st, 0);
        out->name = stmt_col_text(st, 1, ar);
        out->account_id = stmt_col_text(st, 2, ar);
        const char *role = stmt_col_text(st, 3, ar);
        out->role = role && !strcmp(role, "admin") ? ROLE_ADMIN : ROLE_MEMBER;
        out->pwhash = stmt_col_text(st, 4, ar);
        out->created_at = stmt_col_text(st, 5, ar);
        stmt_reset(st);
    }
    return rc;
}

enum store_rc store_user_set_pwhash(struct store_conn *w, const char *name, const char *pwhash)
{
    return change_row(w, S_USER_SET_PWHASH, KEYS(name, pwhash));
}

enum store_rc store_user_del(struct store_conn *w, const char *name)
{
    return change_row(w, S_USER_DEL, KEYS(name));
}

enum store_rc store_user_count(struct store_conn *c, int64_t *n)
{
    return get_int64(c, S_USER_COUNT, n);
}

/* ---------------------------------------------------------------------------
 * Servers
 * ------------------------------------------------------------------------- */

static void bind_server(struct store_stmt *st, const struct server *s)
{
    stmt_bind_text(st, 1, s->id);
    stmt_bind_text(st, 2, s->account_id);
    stmt_bind_text(st, 3, s->user_id);
    stmt_bind_text(st, 4, s->name);
    stmt_bind_text(st, 5, s->vm_state);
    stmt_bind_text(st, 6, s->task_state);
    stmt_bind_int64(st, 7, s->power_state);
    stmt_bind_int64(st, 8, s->locked);
    stmt_bind_text(st, 9, s->locked_by);
    stmt_bind_text(st, 10, s->image_ref);
    stmt_bind_text(st, 11, s->flavor_ref);
    stmt_bind_text(st, 12, s->availability_zone);
    stmt_bind_text(st, 13, s->key_name);
    stmt_bind_text(st, 14, s->metadata ? s->metadata : "{}");
    stmt_bind_text(st, 15, s->created_at);
    stmt_bind_text(st, 16, s->updated_at);
    stmt_bind_text(st, 17, s->launched_at);
    stmt_bind_text(st, 18, s->domain);
    stmt_bind_text(st, 19, s->fault);
    stmt_bind_int64(st, 20, s->own_domain);
}

static void read_server_at(struct store_stmt *st, int b, struct arena *ar, void *out)
{
    struct server *s = out;
    s->id = stmt_col_text(st, b, ar);
    s->account_id = stmt_col_text(st, b + 1, ar);
    s->user_id = stmt_col_text(st, b + 2, ar);
    s->name = stmt_col_text(st, b + 3, ar);
    s->vm_state = stmt_col_text(st, b + 4, ar);
    s->task_state = stmt_col_text(st, b + 5, ar);
    s->power_state = (int)stmt_col_int64(st, b + 6);
    s->locked = stmt_col_int64(st, b + 7) != 0;
    s->locked_by = stmt_col_text(st, b + 8, ar);
    s->image_ref = stmt_col_text(st, b + 9, ar);
    s->flavor_ref = stmt_col_text(st, b + 10, ar);
    s->availability_zone = stmt_col_text(st, b + 11, ar);
    s->key_name = stmt_col_text(st, b + 12, ar);
    s->metadata = stmt_col_text(st, b + 13, ar);
    s->created_at = stmt_col_text(st, b + 14, ar);
    s->updated_at = stmt_col_text(st, b + 15, ar);
    s->launched_at = stmt_col_text(st, b + 16, ar);
    s->domain = stmt_col_text(st, b + 17, ar);
    s->fault = stmt_col_text(st, b + 18, ar);
    s->own_domain = stmt_col_int64(st, b + 19) != 0;
}

static void read_server(struct store_stmt *st, struct arena *ar, void *out)
{
    read_server_at(st, 0, ar, out);
}

enum store_rc store_server_add(struct store_conn *w, const struct server *srv)
{
    struct store_stmt *st = stmt_get(w, S_SERVER_ADD);
    if (!st)
        return STORE_ERROR;
    bind_server(st, srv);
    return stmt_exec(st);
}

enum store_rc store_server_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct server *out)
{
    return get_row(c, ar, read_server, out, S_SERVER_GET, KEYS(id, account));
}

enum store_rc store_server_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *marker, const struct server_filter *filter,
                                int limit, struct server **out, int *n)
{
    static const struct server_filter any;
    if (!filter)
        filter = &any;
    int64_t before = INT64_MAX;
    if (marker) {
        struct store_stmt *st = stmt_get(c, S_SERVER_SEQ);
        if (!st)
            return STORE_ERROR;
        stmt_bind_text(st, 1, marker);
        stmt_bind_text(st, 2, account);
        enum store_rc rc = stmt_row(st);
        if (rc != STORE_OK)
            return rc;
        before = stmt_col_int64(st, 0);
        stmt_reset(st);
    }
    struct store_stmt *st = stmt_get(c, account ? S_SERVER_LIST : S_SERVER_LIST_ALL);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, account);
    stmt_bind_int64(st, 2, before);
    stmt_bind_int64(st, 3, limit);
    stmt_bind_text(st, 4, filter->name_contains);
    stmt_bind_text(st, 5, filter->vm_states);
    stmt_bind_text(st, 6, filter->task_states);
    stmt_bind_text(st, 7, filter->image_ref);
    stmt_bind_text(st, 8, filter->flavor_ref);
    stmt_bind_int64(st, 9, filter->locked);
    stmt_bind_text(st, 10, filter->user_id);
    stmt_bind_text(st, 11, filter->key_name_contains);
    stmt_bind_text(st, 12, filter->zone_contains);
    stmt_bind_text(st, 13, filter->power_state_contains);
    stmt_bind_text(st, 14, filter->changed_since);
    stmt_bind_text(st, 15, filter->changed_before);
    return stmt_collect(st, ar, sizeof **out, read_server, (void **)out, n);
}

enum store_rc store_server_update(struct store_conn *w, const struct server *srv)
{
    struct store_stmt *st = stmt_get(w, S_SERVER_UPDATE);
    if (!st)
        return STORE_ERROR;
    bind_server(st, srv);
    return stmt_exec_one(st);
}

enum store_rc store_server_del(struct store_conn *w, const char *id)
{
    return change_row(w, S_SERVER_DEL, KEYS(id));
}

/* ---------------------------------------------------------------------------
 * Volumes
 * ------------------------------------------------------------------------- */

static void read_volume_at(struct store_stmt *st, int b, struct arena *ar, void *out)
{
    struct volume *v = out;
    v->id = stmt_col_text(st, b, ar);
    v->account_id = stmt_col_text(st, b + 1, ar);
    v->name = stmt_col_text(st, b + 2, ar);
    v->description = stmt_col_text(st, b + 3, ar);
    v->size = stmt_col_int64(st, b + 4);
    v->status = stmt_col_text(st, b + 5, ar);
    v->volume_type = stmt_col_text(st, b + 6, ar);
    v->availability_zone = stmt_col_text(st, b + 7, ar);
    v->snapshot_id = stmt_col_text(st, b + 8, ar);
    v->metadata = stmt_col_text(st, b + 9, ar);
    v->created_at = stmt_col_text(st, b + 10, ar);
    v->updated_at = stmt_col_text(st, b + 11, ar);
    v->path = stmt_col_text(st, b + 12, ar);
    v->adopted = stmt_col_int64(st, b + 13) != 0;
}

static void read_volume(struct store_stmt *st, struct arena *ar, void *out)
{
    read_volume_at(st, 0, ar, out);
}

enum store_rc store_volume_add(struct store_conn *w, const struct volume *v)
{
    struct store_stmt *st = stmt_get(w, S_VOLUME_ADD);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, v->id);
    stmt_bind_text(st, 2, v->account_id);
    stmt_bind_text(st, 3, v->name);
    stmt_bind_text(st, 4, v->description);
    stmt_bind_int64(st, 5, v->size);
    stmt_bind_text(st, 6, v->status);
    stmt_bind_text(st, 7, v->volume_type);
    stmt_bind_text(st, 8, v->availability_zone);
    stmt_bind_text(st, 9, v->snapshot_id);
    stmt_bind_text(st, 10, v->metadata ? v->metadata : "{}");
    stmt_bind_text(st, 11, v->created_at);
    stmt_bind_text(st, 12, v->updated_at);
    stmt_bind_text(st, 13, v->path);
    stmt_bind_int64(st, 14, v->adopted);
    return stmt_exec(st);
}

enum store_rc store_volume_get(struct store_conn *c, struct arena *ar, const char *account,
                               const char *id, struct volume *out)
{
    return get_row(c, ar, read_volume, out, S_VOLUME_GET, KEYS(id, account));
}

enum store_rc store_volume_list(struct store_conn *c, struct arena *ar, const char *account,
                                const char *name, int64_t offset, int limit,
                                struct volume **out, int *n)
{
    /* two statements, so that the name lookup uses its index */
    struct store_stmt *st = stmt_get(c, name ? S_VOLUME_LIST_NAME : S_VOLUME_LIST);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, account);
    if (name)
        stmt_bind_text(st, 4, name);
    stmt_bind_int64(st, 2, offset);
    stmt_bind_int64(st, 3, limit);
    return stmt_collect(st, ar, sizeof **out, read_volume, (void **)out, n);
}

enum store_rc store_volume_set_status(struct store_conn *w, const char *id, const char *status)
{
    char now[32];
    store_now(now);
    return change_row(w, S_VOLUME_SET_STATUS, KEYS(id, status, now));
}

enum store_rc store_volume_update(struct store_conn *w, const struct volume *v)
{
    return change_row(w, S_VOLUME_UPDATE,
                      KEYS(v->id, v->name, v->description, v->metadata ? v->metadata : "{}",
                           v->updated_at));
}

enum store_rc store_volume_del(struct store_conn *w, const char *id)
{
    return change_row(w, S_VOLUME_DEL, KEYS(id));
}

/* ---------------------------------------------------------------------------
 * Attachments
 * ------------------------------------------------------------------------- */

static void bind_attachment(struct store_stmt *st, const struct attachment *a)
{
    stmt_bind_text(st, 1, a->id);
    stmt_bind_text(st, 2, a->bdm_uuid);
    stmt_bind_text(st, 3, a->server_id);
    stmt_bind_text(st, 4, a->volume_id);
    stmt_bind_text(st, 5, a->device);
    stmt_bind_text(st, 6, a->tag);
    stmt_bind_int64(st, 7, a->delete_on_termination);
    stmt_bind_int64(st, 8, a->boot_index);
    stmt_bind_text(st, 9, a->created_at);
    stmt_bind_text(st, 10, a->status ? a->status : "attached");
}

static void read_attachment_at(struct store_stmt *st, int b, struct arena *ar, void *out)
{
    struct attachment *a = out;
    a->id = stmt_col_text(st, b, ar);
    a->bdm_uuid = stmt_col_text(st, b + 1, ar);
    a->server_id = stmt_col_text(st, b + 2, ar);
    a->volume_id = stmt_col_text(st, b + 3, ar);
    a->device = stmt_col_text(st, b + 4, ar);
    a->tag = stmt_col_text(st, b + 5, ar);
    a->delete_on_termination = stmt_col_int64(st, b + 6) != 0;
    a->boot_index = (int)stmt_col_int64(st, b + 7);
    a->created_at = stmt_col_text(st, b + 8, ar);
    a->status = stmt_col_text(st, b + 9, ar);
}

static void read_attachment(struct store_stmt *st, struct arena *ar, void *out)
{
    read_attachment_at(st, 0, ar, out);
}

enum store_rc store_attachment_add(struct store_conn *w, const struct attachment *at)
{
    struct store_stmt *st = stmt_get(w, S_ATTACH_ADD);
    if (!st)
        return STORE_ERROR;
    bind_attachment(st, at);
    return stmt_exec(st);
}

enum store_rc store_attachment_get(struct store_conn *c, struct arena *ar, const char *server_id,
                                   const char *volume_id, struct attachment *out)
{
    return get_row(c, ar, read_attachment, out, S_ATTACH_GET, KEYS(server_id, volume_id));
}

enum store_rc store_attachment_find(struct store_conn *c, struct arena *ar, const char *account,
                                    const char *server_id, const char *volume_id,
                                    bool *server_found, struct attachment *out)
{
    *server_found = false;
    struct store_stmt *st = stmt_get(c, S_ATTACH_FIND);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, server_id);
    stmt_bind_text(st, 2, volume_id);
    stmt_bind_text(st, 3, account);
    enum store_rc rc = stmt_row(st);
    if (rc != STORE_OK)
        return rc;
    *server_found = true;
    if (stmt_col_null(st, 0))
        rc = STORE_NOTFOUND;
    else
        read_attachment(st, ar, out);
    stmt_reset(st);
    return rc;
}

unsigned store_attachment_parts(struct store_conn *c, struct arena *ar, const char *account,
                                const char *server_id, const char *volume_id, struct server *s,
                                struct volume *v, struct attachment *a, enum store_rc *rc)
{
    struct store_stmt *st = stmt_get(c, S_ATTACH_PARTS);
    if (!st) {
        *rc = STORE_ERROR;
        return 0;
    }
    stmt_bind_text(st, 1, server_id);
    stmt_bind_text(st, 2, volume_id);
    stmt_bind_text(st, 3, account);
    if ((*rc = stmt_row(st)) != STORE_OK)
        return 0;
    unsigned found = 0;
    if (!stmt_col_null(st, 0)) {
        read_server_at(st, 0, ar, s);
        found |= FOUND_SERVER;
    }
    if (!stmt_col_null(st, SERVER_NCOLS)) {
        read_volume_at(st, SERVER_NCOLS, ar, v);
        found |= FOUND_VOLUME;
    }
    if (!stmt_col_null(st, SERVER_NCOLS + VOLUME_NCOLS)) {
        read_attachment_at(st, SERVER_NCOLS + VOLUME_NCOLS, ar, a);
        found |= FOUND_ATTACHMENT;
    }
    stmt_reset(st);
    return found;
}

enum store_rc store_attachment_by_volume(struct store_conn *c, struct arena *ar,
                                         const char *volume_id, struct attachment *out)
{
    return get_row(c, ar, read_attachment, out, S_ATTACH_BY_VOLUME, KEYS(volume_id));
}

/* A server's attachments are few (core caps them), so the list is read
 * whole and put in order here: SQLite would sort even four rows in a
 * temporary b-tree of its own, which cost a GET of a server a tenth of its
 * CPU (the rows come in the order of the (server_id, device) key). */
struct attachment_seq {
    struct attachment at;
    int64_t seq;
};

static void read_attachment_seq(struct store_stmt *st, struct arena *ar, void *out)
{
    struct attachment_seq *x = out;
    read_attachment(st, ar, &x->at);
    x->seq = stmt_col_int64(st, ATTACH_NCOLS);
}

static int by_seq(const void *a, const void *b)
{
    int64_t x = ((const struct attachment_seq *)a)->seq, y = ((const struct attachment_seq *)b)->seq;
    return (x > y) - (x < y);
}

enum store_rc store_attachment_list(struct store_conn *c, struct arena *ar, const char *server_id,
                                    int64_t offset, int limit, struct attachment **out, int *n)
{
    struct store_stmt *st = stmt_get(c, S_ATTACH_LIST);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, server_id);
    struct attachment_seq *all;
    int count;
    enum store_rc rc = stmt_collect(st, ar, sizeof *all, read_attachment_seq, (void **)&all,
                                    &count);
    if (rc != STORE_OK)
        return rc;
    if (count > 1) /* all is NULL when there is no row */
        qsort(all, (size_t)count, sizeof *all, by_seq);
    int64_t from = offset > 0 ? offset : 0, to = count;
    if (limit >= 0 && from + limit < to)
        to = from + limit;
    *n = from < to ? (int)(to - from) : 0;
    *out = arena_alloc(ar, sizeof **out * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++)
        (*out)[i] = all[from + i].at;
    return STORE_OK;
}

enum store_rc store_attachment_update(struct store_conn *w, const struct attachment *at)
{
    struct store_stmt *st = stmt_get(w, S_ATTACH_UPDATE);
    if (!st)
        return STORE_ERROR;
    bind_attachment(st, at);
    return stmt_exec_one(st);
}

enum store_rc store_attachment_swap(struct store_conn *w, const char *attachment_id,
                                    const char *new_volume_id)
{
    return change_row(w, S_ATTACH_SWAP, KEYS(attachment_id, new_volume_id));
}

enum store_rc store_attachment_del(struct store_conn *w, const char *attachment_id)
{
    return change_row(w, S_ATTACH_DEL, KEYS(attachment_id));
}

enum store_rc store_attachment_by_id(struct store_conn *c, struct arena *ar, const char *id,
                                     struct attachment *out)
{
    return get_row(c, ar, read_attachment, out, S_ATTACH_BY_ID, KEYS(id));
}

enum store_rc store_attachment_set_status(struct store_conn *w, const char *id, const char *from,
                                          const char *to)
{
    return change_row(w, S_ATTACH_SET_STATUS, KEYS(id, to, from));
}

enum store_rc store_attachment_unsettled(struct store_conn *c, struct arena *ar,
                                         struct attachment **out, int *n)
{
    return all_rows(c, S_ATTACH_UNSETTLED, ar, sizeof **out, read_attachment, (void **)out, n);
}

enum store_rc store_server_by_domain(struct store_conn *c, struct arena *ar, const char *domain,
                                     struct server *out)
{
    return get_row(c, ar, read_server, out, S_SERVER_BY_DOMAIN, KEYS(domain));
}

enum store_rc store_server_bound(struct store_conn *c, struct arena *ar, struct server **out,
                                 int *n)
{
    return all_rows(c, S_SERVER_BOUND, ar, sizeof **out, read_server, (void **)out, n);
}

enum store_rc store_volume_set_storage(struct store_conn *w, const char *id, const char *path,
                                       const char *status)
{
    char now[32];
    store_now(now);
    return change_row(w, S_VOLUME_SET_STORAGE, KEYS(id, path, status, now));
}

enum store_rc store_volume_unsettled(struct store_conn *c, struct arena *ar, struct volume **out,
                                     int *n)
{
    return all_rows(c, S_VOLUME_UNSETTLED, ar, sizeof **out, read_volume, (void **)out, n);
}

/* ---------------------------------------------------------------------------
 * Images
 * ------------------------------------------------------------------------- */

static void read_image(struct store_stmt *st, struct arena *ar, void *out)
{
    struct image *img = out;
    img->id = stmt_col_text(st, 0, ar);
    img->name = stmt_col_text(st, 1, ar);
    img->disk_format = stmt_col_text(st, 2, ar);
    img->size = stmt_col_int64(st, 3);
    img->virtual_size = stmt_col_int64(st, 4);
    img->checksum = stmt_col_text(st, 5, ar);
    img->hash_value = stmt_col_text(st, 6, ar);
    img->path = stmt_col_text(st, 7, ar);
    img->kernel = stmt_col_text(st, 8, ar);
    img->initrd = stmt_col_text(st, 9, ar);
    img->cmdline = stmt_col_text(st, 10, ar);
    img->created_at = stmt_col_text(st, 11, ar);
    img->updated_at = stmt_col_text(st, 12, ar);
}

enum store_rc store_image_add(struct store_conn *w, const struct image *img)
{
    struct store_stmt *st = stmt_get(w, S_IMAGE_ADD);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, img->id);
    stmt_bind_text(st, 2, img->name);
    stmt_bind_text(st, 3, img->disk_format);
    stmt_bind_int64(st, 4, img->size);
    stmt_bind_int64(st, 5, img->virtual_size);
    stmt_bind_text(st, 6, img->checksum);
    stmt_bind_text(st, 7, img->hash_value);
    stmt_bind_text(st, 8, img->path);
    stmt_bind_text(st, 9, img->kernel);
    stmt_bind_text(st, 10, img->initrd);
    stmt_bind_text(st, 11, img->cmdline);
    stmt_bind_text(st, 12, img->created_at);
    stmt_bind_text(st, 13, img->updated_at);
    return stmt_exec(st);
}

enum store_rc store_image_get(struct store_conn *c, struct arena *ar, const char *id,
                              struct image *out)
{
    return get_row(c, ar, read_image, out, S_IMAGE_GET, KEYS(id));
}

enum store_rc store_image_list(struct store_conn *c, struct arena *ar, struct image **out,
                               int *n)
{
    return all_rows(c, S_IMAGE_LIST, ar, sizeof **out, read_image, (void **)out, n);
}

enum store_rc store_image_users(struct store_conn *c, const char *id, int64_t *servers)
{
    struct store_stmt *st = stmt_get(c, S_IMAGE_USERS);
    if (!st)
        return STORE_ERROR;
    stmt_bind_text(st, 1, id);
    enum store_rc rc = stmt_row(st);
    if (rc == STORE_OK) {
        *servers = stmt_col_int64(st, 0);
        stmt_reset(st);
    }
    return rc;
}

enum store_rc store_image_del(struct store_conn *w, const char *id)
{
    int64_t servers = 0;
    enum store_rc rc = store_image_users(w, id, &servers);
    if (rc != STORE_OK)
        return rc;
    if (servers > 0)
        return STORE_EXISTS;
    return change_row(w, S_IMAGE_DEL, KEYS(id));
}
