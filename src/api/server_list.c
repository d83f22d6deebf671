/* server_list.c: GET /servers and /servers/detail in both dialects
 * (docs/api.md): Nova's query read as Nova reads it (its query schema, then
 * _get_servers() and compute/api.py's get_all(), in their order), the
 * filters attachd applies handed to the store, the page rendered with
 * servers.c's renderers. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "api/call.h"

/* The parameters of Nova's query schema for the list (index_query_v275,
 * schemas/servers.py): from 2.75 any other is 400. The filters attachd
 * applies are docs/api.md's; Nova ignores most of the rest for a member. */
#define JOINED_TABLES "block_device_mapping", "services", "metadata", "system_metadata", \
                      "info_cache", "security_groups", "pci_devices"
static const char *const list_query[] = {
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
    "node", "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone",
    "name", "display_name", "description", "display_description", "locked_by", "uuid",
    "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status",
    "changes-since", "ip", "ip6", "created_at", JOINED_TABLES, "limit", "marker", "tags",
    "tags-any", "not-tags", "not-tags-any", "changes-before", "locked",
    "_*",                       /* patternProperties "^_" */
    NULL,
};

/* Nova's sort keys for the list (VALID_SORT_KEYS and the keys it ignores,
 * schemas/servers.py), which its query schema holds every sort_key to:
 * before 2.73 in this order; from 2.73 'locked' first, and from 2.75 without
 * the keys Nova ignores. Nova builds the lists of 2.73 on from Python sets,
 * whose order changes from one Nova process to the next; attachd shows
 * them in this one. It sorts by none of them (docs/api.md). */
#define SORT_KEYS "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", \
                  "config_drive", "created_at", "display_description", "display_name", "host", \
                  "hostname", "image_ref", "instance_type_id", "kernel_id", "key_name", \
                  "launch_index", "launched_at", "locked_by", "node", "power_state", "progress", \
                  "project_id", "ramdisk_id", "root_device_name", "task_state", "terminated_at", \
                  "updated_at", "user_id", "uuid", "vm_state"
#define IGNORED_BEFORE_LOCKED "architecture", "cell_name", "cleaned", \
                              "default_ephemeral_device", "default_swap_device", "deleted", \
                              "deleted_at", "disable_terminate", "ephemeral_gb", \
                              "ephemeral_key_uuid", "id", "key_data", "launched_on"
#define IGNORED_AFTER_LOCKED "memory_mb", "os_type", "reservation_id", "root_gb", \
                             "shutdown_terminate", "user_data", "vcpus", "vm_mode"
static const char *const sort_keys_v21[] = {
    SORT_KEYS, IGNORED_BEFORE_LOCKED, "locked", IGNORED_AFTER_LOCKED, NULL,
};
static const char *const sort_keys_v273[] = {
    "locked", SORT_KEYS, IGNORED_BEFORE_LOCKED, IGNORED_AFTER_LOCKED, NULL,
};
static const char *const sort_keys_v275[] = {"locked", SORT_KEYS, NULL};

/* Nova's query schema for the list (index_query and its versions,
 * schemas/servers.py): the parameters it checks, in its order, for
 * jsonschema reports the first that fails; each from a version on. The
 * rest of its parameters are strings of any kind. */
enum check { REGEX, SORT_KEY, TIME, DIGITS };
static const struct {
    const char *name;
    enum check check;
    int since;
} list_schema[] = {
    {"kernel_id", REGEX, 0}, {"ramdisk_id", REGEX, 0}, {"hostname", REGEX, 0},
    {"key_name", REGEX, 0}, {"power_state", REGEX, 0}, {"node", REGEX, 0},
    {"flavor", REGEX, 0}, {"reservation_id", REGEX, 0}, {"launched_at", REGEX, 0},
    {"terminated_at", REGEX, 0}, {"availability_zone", REGEX, 0}, {"name", REGEX, 0},
    {"display_name", REGEX, 0}, {"description", REGEX, 0}, {"display_description", REGEX, 0},
    {"locked_by", REGEX, 0}, {"root_device_name", REGEX, 0}, {"config_drive", REGEX, 0},
    {"access_ip_v4", REGEX, 0}, {"access_ip_v6", REGEX, 0}, {"auto_disk_config", REGEX, 0},
    {"progress", REGEX, 0}, {"sort_key", SORT_KEY, 0}, {"changes-since", TIME, 0},
    {"ip", REGEX, 0}, {"ip6", REGEX, 0}, {"created_at", REGEX, 0}, {"limit", DIGITS, 0},
    {"tags", REGEX, 26}, {"tags-any", REGEX, 26}, {"not-tags", REGEX, 26},
    {"not-tags-any", REGEX, 26}, {"changes-before", TIME, 66},
};

/* The query as that schema checks it, and from 2.75 nothing else; the
 * Hostway dialect's checks the limit alone. False after the 400. */
static bool list_query_valid(struct call *c)
{
    if (c->dialect != DIALECT_NOVA)
        return query_digits(c, "limit");
    for (size_t i = 0; i < sizeof list_schema / sizeof *list_schema; i++) {
        const char *name = list_schema[i].name;
        if (c->version < list_schema[i].since)
            continue;
        bool ok = true;
        switch (list_schema[i].check) {
        case REGEX:
            ok = query_regex(c, name);
            break;
        case SORT_KEY:
            ok = query_enum(c, name, c->version >= 75   ? sort_keys_v275
                                     : c->version >= 73 ? sort_keys_v273
                                                        : sort_keys_v21);
            break;
        case TIME:
            ok = query_isotime(c, name);
            break;
        case DIGITS:
            ok = query_digits(c, name);
            break;
        }
        if (!ok)
            return false;
    }
    return c->version < 75 || query_only(c, list_query);
}

/* For query_each(): stops at a joined table or a name starting with '_',
 * kept in *(const char **)cls. */
static bool refused_filter(void *cls, const char *key, const char *value)
{
    (void)value;
    static const char *const joined[] = {JOINED_TABLES};
    bool refused = *key == '_';
    for (size_t i = 0; i < sizeof joined / sizeof *joined && !refused; i++)
        refused = !strcmp(key, joined[i]);
    if (refused)
        *(const char **)cls = key;
    return !refused;
}

/* Nova's _get_servers(): an admin's filters are all read, and a joined
 * table or a name starting with '_' (the first in the query) is 400; a
 * member's unknown filters are dropped unread. */
static bool filters_allowed(struct call *c)
{
    const char *bad = NULL;
    if (c->dialect != DIALECT_NOVA || !c->core.admin)
        return true;
    query_each(c, refused_filter, &bad);
    if (!bad)
        return true;
    reply_error(c, 400, "Invalid filter field: %s.", bad);
    return false;
}

/* Nova's filter by status (_get_servers()): every `status` given. One that
 * is none of Nova's statuses lists nothing at once (no other filter is
 * read), and from 2.38 is 400 "Invalid status value". False when answered
 * (*none: answer an empty list). */
static bool status_allowed(struct call *c, struct server_filter *f, bool *none)
{
    const char **statuses;
    int n = query_all(c, "status", &statuses);
    *none = false;
    if (!n || core_server_status_filter(c->arena, statuses, n, f))
        return true;
    if (c->version >= 38) {
        reply_error(c, 400, "Invalid status value");
        return false;
    }
    *none = true;
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* Nova's changes-since and changes-before (_get_servers()), the last of
 * each: the query schema has checked every value of changes-since, and of
 * changes-before from 2.66. A member's changes-before before 2.66 is
 * dropped; an admin's is read then, and one that is no time is 400
 * "Invalid filter field". A before earlier than the since is 400. The
 * servers kept are those whose updated_at, to the second that the API
 * shows, is at or after the since and at or before the before; attachd
 * keeps no deleted servers, which Nova's list would show with either.
 * The Hostway dialect has neither. False when answered. */
static bool changes_allowed(struct call *c, struct server_filter *f)
{
    if (c->dialect != DIALECT_NOVA)
        return true;
    const char *since = query_last(c, "changes-since");
    const char *before = c->version >= 66 || c->core.admin ? query_last(c, "changes-before")
                                                           : NULL;
    int64_t since_us = INT64_MIN, before_us = INT64_MAX;
    if (since)
        py_isotime(since, &since_us);
    if (before && !py_isotime(before, &before_us)) {
        reply_error(c, 400, "Invalid filter field: changes-before.");
        return false;
    }
    if (before_us < since_us) {
        reply_error(c, 400, "The value of changes-since must be less than or equal to "
                            "changes-before.");
        return false;
    }
    if (since) {
        char *text = arena_alloc(c->arena, 20);
        isotime_text(-floor_div(-since_us, 1000000), text);     /* rounded up */
        f->changed_since = text;
    }
    if (before) {
        char *text = arena_alloc(c->arena, 20);
        isotime_text(floor_div(before_us, 1000000), text);
        f->changed_before = text;
    }
    return true;
}

/* Nova's deleted servers (_get_servers()): status DELETED alone is a
 * member's 403; an admin's deleted=BOOL (oslo's bool_from_string(), false
 * when it is none) asks for the deleted servers only, and attachd keeps
 * none. False when answered. */
static bool deleted_allowed(struct call *c, const struct server_filter *f, bool *none)
{
    bool deleted_only = f->vm_states && !strcmp(f->vm_states, ",deleted,");
    if (deleted_only && !c->core.admin) {
        reply_error(c, 403, "Only administrators may list deleted instances");
        return false;
    }
    const char *deleted = c->dialect == DIALECT_NOVA && c->core.admin ? query_last(c, "deleted")
                                                                      : NULL;
    if (deleted && py_bool(deleted) == 1)
        *none = true;
    return true;
}

/* For query_each(): where project_id and tenant_id first stand. */
struct first_at {
    int at, project, tenant;    /* -1: not given */
};

static bool first_at(void *cls, const char *key, const char *value)
{
    (void)value;
    struct first_at *f = cls;
    if (f->project < 0 && !strcmp(key, "project_id"))
        f->project = f->at;
    if (f->tenant < 0 && !strcmp(key, "tenant_id"))
        f->tenant = f->at;
    f->at++;
    return true;
}

/* Nova's all_tenants and locked (common.py's is_all_tenants() and
 * is_locked()), in that order: each one of oslo's booleans (all_tenants
 * also empty, for true), else 400; locked is a member's from 2.73 only.
 * Then all_tenants is an admin's list of every account's servers, or of
 * project_id's (tenant_id's) alone, and a member's is 403. With both,
 * compute/api.py's get_all() copies its filters in the order their names
 * first stand in the query, tenant_id onto project_id, so the one named
 * later counts. *account: whose servers (every account's when *every and
 * NULL). The Hostway dialect has neither. False when answered. */
static bool accounts_and_lock(struct call *c, bool detail, struct server_filter *f, bool *every,
                              const char **account)
{
    *every = false;
    if (c->dialect != DIALECT_NOVA)
        return true;
    const char *all = query_last(c, "all_tenants");
    const char *locked = c->version >= 73 || c->core.admin ? query_last(c, "locked") : NULL;
    int yes = all && *all ? py_bool(all) : all != NULL;
    int lock = locked ? py_bool(locked) : 0;
    if (yes < 0 || lock < 0) {
        reply_error(c, 400, PY_BOOL_UNRECOGNIZED, yes < 0 ? all : locked);
        return false;
    }
    if (locked)
        f->locked = lock ? 1 : -1;
    if (!yes)
        return true;
    if (!c->core.admin) {
        reply_error(c, 403, "Policy doesn't allow os_compute_api:servers:%s:get_all_tenants to "
                            "be performed.", detail ? "detail" : "index");
        return false;
    }
    struct first_at names = {0, -1, -1};
    query_each(c, first_at, &names);
    *every = true;
    *account = query_last(c, names.tenant > names.project ? "tenant_id" : "project_id");
    return true;
}

/* A filter of Nova's regular expressions (name, key_name, ...), as
 * attachd applies it: literal text anywhere in the value, which is what
 * clients' look-ups need; an empty one keeps every server. */
static const char *contains(struct call *c, const char *name)
{
    const char *text = query_last(c, name);
    return text && *text ? text : NULL;
}

/* One of Nova's exact filters on a state, as store.h's list between
 * commas; a value with a comma in it is no state (*none). */
static const char *exactly(struct call *c, const char *name, bool *none)
{
    const char *value = query_last(c, name);
    if (!value)
        return NULL;
    if (strchr(value, ','))
        *none = true;
    return arena_printf(c->arena, ",%s,", value);
}

/* The rest of Nova's filters that attachd applies (_get_server_search_options(),
 * compute/api.py's get_all(), the DB's exact and regular-expression
 * filters). The image and the flavor are by id. An unknown flavor, or an
 * address (ip; ip6 from 2.5 or for an admin) lists nothing: no server of
 * attachd's has an address. An admin's filters, and a member's from 2.83,
 * also keep the servers of a user_id, a vm_state and a task_state (exactly;
 * a status given sets the vm_state, and the task_state unless it names no
 * task), and those whose key_name, availability_zone or power_state (its
 * number) contain the text given. */
static void other_filters(struct call *c, struct server_filter *f, bool *none)
{
    f->name_contains = contains(c, "name");
    f->image_ref = query_last(c, "image");
    f->flavor_ref = query_last(c, "flavor");
    if (f->flavor_ref && !core_flavor(c->core.core, f->flavor_ref))
        *none = true;
    if (query_last(c, "ip") || ((c->version >= 5 || c->core.admin) && query_last(c, "ip6")))
        *none = true;
    if (c->dialect != DIALECT_NOVA || (!c->core.admin && c->version < 83))
        return;
    f->user_id = query_last(c, "user_id");
    if (!f->vm_states)
        f->vm_states = exactly(c, "vm_state", none);
    if (!f->task_states)
        f->task_states = exactly(c, "task_state", none);
    f->key_name_contains = contains(c, "key_name");
    f->zone_contains = contains(c, "availability_zone");
    f->power_state_contains = contains(c, "power_state");
}

static bool listed(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

/* Takes out the i-th of n names. */
static void take_out(const char **names, int *n, int i)
{
    memmove(names + i, names + i + 1, (size_t)(*n - i - 1) * sizeof *names);
    (*n)--;
}

/* Nova's sort parameters past its schema: common.py's get_sort_params()
 * (every sort_key and sort_dir, stripped; created_at and desc when none),
 * _get_servers()'s remove_invalid_sort_keys() (before 2.75 a key that Nova
 * ignores goes, with the direction at its place; a member's host or node
 * is 403), then db/utils.py's process_sort_params(), which the API runs in
 * BuildRequestList.get_by_filters() unless the list is known empty by
 * then (`empty`: an unknown flavor, an address, a limit of 0, the deleted
 * servers only): each direction asc or desc, and no more directions than
 * keys, else 400. attachd sorts by none of them. False after the answer. */
static bool sort_allowed(struct call *c, bool empty)
{
    static const char *const ignored_v21[] = {IGNORED_BEFORE_LOCKED, "locked",
                                              IGNORED_AFTER_LOCKED, NULL};
    static const char *const ignored_v273[] = {IGNORED_BEFORE_LOCKED, IGNORED_AFTER_LOCKED,
                                               NULL};
    static const char *const ignored_v275[] = {NULL};  /* the schema refuses them */
    if (c->dialect != DIALECT_NOVA)
        return true;
    const char **given, **keys, **dirs;
    int nkeys = query_all(c, "sort_key", &given);
    keys = arena_alloc(c->arena, (size_t)(nkeys + 1) * sizeof *keys);
    memcpy(keys, given, (size_t)nkeys * sizeof *keys);
    if (!nkeys)
        keys[nkeys++] = "created_at";
    int ndirs = query_all(c, "sort_dir", &given);
    dirs = arena_alloc(c->arena, (size_t)(ndirs + 1) * sizeof *dirs);
    for (int i = 0; i < ndirs; i++)
        dirs[i] = py_strip(c->arena, given[i]);
    if (!ndirs)
        dirs[ndirs++] = "desc";
    const char *const *ignored = c->version >= 75   ? ignored_v275
                                 : c->version >= 73 ? ignored_v273
                                                    : ignored_v21;
    /* remove_invalid_sort_keys() walks a copy of the keys and takes out of
     * the list; the schema's enum has let only its own names by */
    int n = nkeys;
    const char **as_given = arena_alloc(c->arena, (size_t)n * sizeof *as_given);
    memcpy(as_given, keys, (size_t)n * sizeof *as_given);
    for (int k = 0; k < n; k++) {
        if (listed(ignored, as_given[k])) {
            int at = 0;         /* Python's list.index(): the first */
            while (strcmp(keys[at], as_given[k]) != 0)
                at++;
            if (ndirs > at)
                take_out(dirs, &ndirs, at);
            take_out(keys, &nkeys, at);
        } else if (!c->core.admin && (!strcmp(as_given[k], "host") ||
                                      !strcmp(as_given[k], "node"))) {
            reply_error(c, 403, "Only administrators can sort servers by %s", as_given[k]);
            return false;
        }
    }
    if (empty || !ndirs)
        return true;
    for (int i = 0; i < ndirs; i++) {
        if (strcmp(dirs[i], "asc") != 0 && strcmp(dirs[i], "desc") != 0) {
            reply_error(c, 400, "Invalid input received: Unknown sort direction, must be "
                                "'desc' or 'asc'");
            return false;
        }
    }
    if (ndirs > nkeys) {
        reply_error(c, 400, "Invalid input received: Sort direction size exceeds sort key size");
        return false;
    }
    return true;
}

/* Nova's tag filters (a member's from 2.26, an admin's at any version): no
 * server of attachd's has a tag, so tags or tags-any lists nothing, while
 * not-tags and not-tags-any keep every server. */
static bool asks_for_tags(struct call *c)
{
    return c->dialect == DIALECT_NOVA && (c->version >= 26 || c->core.admin) &&
           (query_last(c, "tags") || query_last(c, "tags-any"));
}

static void list(struct call *c, bool detail)
{
    struct paging p = {.limit = -1};
    struct core_error err;
    struct server_filter filter = {0};
    struct server *s = NULL;
    int n = 0;
    bool none, every = false;
    const char *account = NULL;
    /* in Nova's order (_get_servers()): the limit is read last */
    if (!list_query_valid(c) || !filters_allowed(c) || !status_allowed(c, &filter, &none) ||
        (!none && (!changes_allowed(c, &filter) || !deleted_allowed(c, &filter, &none) ||
                   !accounts_and_lock(c, detail, &filter, &every, &account) ||
                   !query_paging(c, &p, true))))
        return;
    bool early = none;          /* Nova has answered before it reads the rest */
    other_filters(c, &filter, &none);
    bool deleted_only = filter.vm_states && !strcmp(filter.vm_states, ",deleted,");
    if (!early && !sort_allowed(c, none || p.limit == 0 || deleted_only))
        return;
    none = none || asks_for_tags(c);
    int limit = p.limit < 0 ? 1000 : p.limit;
    bool ok = none ||
              (every ? core_server_list_all(&c->core, account, p.marker, &filter, limit, &s, &n,
                                            &err)
                     : core_server_list(&c->core, p.marker, &filter, limit, &s, &n, &err));
    struct jw w;
    jw_init(&w, c->arena, detail ? 4096 : 1024);
    jw_object(&w, NULL);
    jw_array(&w, "servers");
    size_t size = 0;
    bool cut = false;
    for (int i = 0; ok && i < n; i++) {
        size += answer_estimate(detail ? 1536 : 256, detail ? s[i].metadata : NULL, s[i].name);
        if (i > 0 && size > API_MAX_ANSWER) {
            n = i;      /* the rest comes with the next link */
            cut = true;
            break;
        }
        if (detail)
            ok = jw_server(&w, c, &s[i], false, &err);
        else
            jw_server_summary(&w, c, &s[i]);
    }
    if (!ok) {
        reply_core_error(c, &err);
        return;
    }
    jw_end_array(&w);
    if (n > 0 && (n == limit || cut)) {
        jw_array(&w, "servers_links");
        jw_object(&w, NULL);
        jw_string(&w, "rel", "next");
        jw_string(&w, "href",
                  arena_printf(c->arena, "%s%s/servers%s?%s", c->base, c->prefix,
                               detail ? "/detail" : "",
                               query_with_marker(c, s[n - 1].id, true)));
        jw_end_object(&w);
        jw_end_array(&w);
    }
    jw_end_object(&w);
    size_t len;
    const char *body = jw_finish(&w, &len);
    reply_raw_json(c, 200, body, len);
}

void servers_list(struct call *c)
{
    list(c, false);
}

void servers_detail(struct call *c)
{
    list(c, true);
}
