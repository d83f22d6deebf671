/* servers.c: /servers in both dialects (docs/api.md, decision D9). One body
 * shape, Nova's, with fields chosen by microversion. */
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/call.h"
#include "util/id.h"
#include "util/utf8.h"

/* ---- rendering ------------------------------------------------------------ *
 * Written straight into the answer's text (json.c's struct jw), in the
 * order of Nova's keys, with the bytes json_render gave the trees these
 * functions once built. */

/* Nova's links of a server's image or flavor: a bookmark alone. */
static void write_bookmark(struct jw *w, struct call *c, const char *collection,
                           const char *id)
{
    jw_array(w, "links");
    jw_object(w, NULL);
    jw_string(w, "rel", "bookmark");
    jw_string_open(w, "href");
    jw_string_part(w, c->base, strlen(c->base));
    jw_string_part(w, "/", 1);
    jw_string_part(w, collection, strlen(collection));
    jw_string_part(w, "/", 1);
    jw_string_part(w, id, strlen(id));
    jw_string_close(w);
    jw_end_object(w);
    jw_end_array(w);
}

static void write_flavor(struct jw *w, struct call *c, const struct server *s)
{
    const struct flavor *f = core_flavor(c->core.core, s->flavor_ref);
    if (c->version >= 47) {
        jw_object(w, "flavor");
        jw_int(w, "vcpus", f ? f->vcpus : 1);
        jw_int(w, "ram", (json_int_t)(f ? f->ram_mb : 512));
        jw_int(w, "disk", (json_int_t)(f ? f->disk_gb : 1));
        jw_int(w, "ephemeral", 0);
        jw_int(w, "swap", 0);
        jw_string(w, "original_name", f ? f->name : s->flavor_ref);
        jw_object(w, "extra_specs");
        jw_end_object(w);
        jw_end_object(w);
        return;
    }
    jw_object(w, "flavor");
    jw_string(w, "id", s->flavor_ref);
    write_bookmark(w, c, "flavors", s->flavor_ref);
    jw_end_object(w);
}

static void write_image(struct jw *w, struct call *c, const struct server *s)
{
    if (!*s->image_ref) {
        jw_string(w, "image", "");      /* booted from a volume */
        return;
    }
    jw_object(w, "image");
    jw_string(w, "id", s->image_ref);
    write_bookmark(w, c, "images", s->image_ref);
    jw_end_object(w);
}

static void write_summary(struct jw *w, struct call *c, const struct server *s)
{
    jw_object(w, NULL);
    jw_string(w, "id", s->id);
    jw_string(w, "name", s->name);
    jw_links(w, c, "links", "servers", s->id);
    jw_end_object(w);
}

/* A server, as an element of w's array or its "server" (`show`: the body of
 * GET /servers/{id}, which alone carries server_groups). False (and err
 * set) if the server's volumes cannot be read. */
static bool write_server(struct jw *w, struct call *c, const struct server *s, bool show,
                         struct core_error *err)
{
    struct attachment *at = NULL;
    int n = 0;
    if (!core_server_attachments(&c->core, s->id, &at, &n, err))
        return false;
    jw_object(w, show ? "server" : NULL);
    jw_string(w, "id", s->id);
    jw_string(w, "name", s->name);
    jw_string(w, "status", core_server_status(s->vm_state, s->task_state));
    jw_string(w, "tenant_id", s->account_id);
    jw_string(w, "user_id", s->user_id);
    jw_json_text(w, "metadata", s->metadata);
    jw_string(w, "hostId", "");
    write_image(w, c, s);
    write_flavor(w, c, s);
    jw_time(w, "created", s->created_at, TIME_ISO_Z);
    jw_time(w, "updated", s->updated_at, TIME_ISO_Z);
    jw_object(w, "addresses");
    jw_end_object(w);
    jw_string(w, "accessIPv4", "");
    jw_string(w, "accessIPv6", "");
    jw_links(w, c, "links", "servers", s->id);
    jw_string(w, "OS-DCF:diskConfig", "MANUAL");
    jw_int(w, "progress", 0);
    jw_string(w, "OS-EXT-AZ:availability_zone", s->availability_zone);
    jw_string(w, "config_drive", "");
    jw_string(w, "key_name", s->key_name);
    jw_time(w, "OS-SRV-USG:launched_at", s->launched_at, TIME_ISO_MICRO);
    jw_null(w, "OS-SRV-USG:terminated_at");
    jw_string(w, "OS-EXT-STS:task_state", s->task_state);
    jw_string(w, "OS-EXT-STS:vm_state", s->vm_state);
    jw_int(w, "OS-EXT-STS:power_state", s->power_state);
    jw_array(w, "security_groups");
    jw_object(w, NULL);
    jw_string(w, "name", "default");
    jw_end_object(w);
    jw_end_array(w);
    jw_array(w, "os-extended-volumes:volumes_attached");
    for (int i = 0; i < n; i++) {
        jw_object(w, NULL);
        jw_string(w, "id", at[i].volume_id);
        if (c->version >= 3)
            jw_bool(w, "delete_on_termination", at[i].delete_on_termination);
        jw_end_object(w);
    }
    jw_end_array(w);
    if (c->version >= 9)
        jw_bool(w, "locked", s->locked);
    if (c->version >= 19)
        jw_null(w, "description");
    if (c->version >= 26) {
        jw_array(w, "tags");
        jw_end_array(w);
    }
    if (c->version >= 63)
        jw_null(w, "trusted_image_certificates");
    if (c->version >= 71 && show) {
        jw_array(w, "server_groups");
        jw_end_array(w);
    }
    if (c->version >= 73)
        jw_null(w, "locked_reason");
    /* what the hypervisor last refused or did not confirm, as Nova shows a
     * server's fault: 500 for a server in error (its build failed). Its
     * text need not be UTF-8: none then, as when jansson refused it. */
    if (s->fault && utf8_valid(s->fault, strlen(s->fault))) {
        jw_object(w, "fault");
        jw_int(w, "code", strcmp(s->vm_state, "error") ? 409 : 500);
        jw_time(w, "created", s->updated_at, TIME_ISO_Z);
        jw_string(w, "message", s->fault);
        jw_end_object(w);
    }
    jw_end_object(w);
    return true;
}

/* ---- list ----------------------------------------------------------------- */

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

/* Whether the n bytes at s are one of Python's whitespace characters
 * (str.isspace(): ASCII's, U+001C-U+001F, U+0085, U+00A0, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). */
static bool py_space(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1)
        return *u == ' ' || (*u >= '\t' && *u <= '\r') || (*u >= 0x1c && *u <= 0x1f);
    if (n == 2)
        return u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0);
    if (n != 3)
        return false;
    uint32_t cp = (uint32_t)(u[0] & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
    return (u[0] & 0xf0) == 0xe0 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80 &&
           (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
            cp == 0x202f || cp == 0x205f || cp == 0x3000);
}

/* Python's str.strip() of UTF-8 text (the call's arena). */
static const char *py_strip(struct call *c, const char *text)
{
    size_t at = 0, end = strlen(text);
    for (size_t n = 1; n <= 3 && at < end;)
        if (end - at >= n && py_space(text + at, n)) {
            at += n;
            n = 1;
        } else {
            n++;
        }
    for (size_t n = 1; n <= 3 && at < end;)
        if (end - at >= n && py_space(text + end - n, n)) {
            end -= n;
            n = 1;
        } else {
            n++;
        }
    return arena_strndup(c->arena, text + at, end - at);
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
        dirs[i] = py_strip(c, given[i]);
    if (!ndirs)
        dirs[ndirs++] = "desc";
    /* the keys as given (the schema's enum has let only its own names by) */
    const char *const *ignored = c->version >= 75   ? (const char *const[]){NULL}
                                 : c->version >= 73 ? ignored_v273
                                                    : ignored_v21;
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
            ok = write_server(&w, c, &s[i], false, &err);
        else
            write_summary(&w, c, &s[i]);
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

/* ---- show, delete ------------------------------------------------------------ */

void servers_show(struct call *c)
{
    struct server s;
    struct core_error err;
    struct jw w;
    jw_init(&w, c->arena, 2048);
    jw_object(&w, NULL);
    if (!core_server_get(&c->core, c->param[0], &s, &err) ||
        !write_server(&w, c, &s, true, &err)) {
        reply_core_error(c, &err);
        return;
    }
    jw_end_object(&w);
    size_t len;
    const char *body = jw_finish(&w, &len);
    reply_raw_json(c, 200, body, len);
}

static void deleted(struct call *c)
{
    if (c->op.ok)
        reply_empty(c, 204);
    else
        reply_core_error(c, &c->op.err);
}

void servers_delete(struct call *c)
{
    core_server_delete(call_op(c, deleted), c->param[0]);
}

/* ---- addresses and security groups: none ---------------------------------------- */

/* attachd's servers have no network port: these are Nova's answers for a
 * server without one (docs/api.md, GET /servers/{server_id}/ips and
 * .../os-security-groups), once the server is found (else the 404 of
 * GET /servers/{server_id}). */
static bool server_found(struct call *c)
{
    struct server s;
    struct core_error err;
    if (core_server_get(&c->core, c->param[0], &s, &err))
        return true;
    reply_core_error(c, &err);
    return false;
}

void servers_ips(struct call *c)
{
    if (server_found(c))
        reply_json(c, 200, json_pack("{s:{}}", "addresses"));
}

void servers_ips_network(struct call *c)
{
    if (server_found(c))
        reply_error(c, 404, "Instance is not a member of specified network");
}

void servers_security_groups(struct call *c)
{
    if (server_found(c))
        reply_json(c, 200, json_pack("{s:[]}", "security_groups"));
}

/* ---- create --------------------------------------------------------------- */

/* Nova's 'name' format: printable, no leading or trailing white space. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ' || s[0] == '\t' || s[n - 1] == '\t')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static const struct field create_fields[] = {
    {.name = "name", .types = FT_STRING, .min_len = 1, .max_len = 255, .check = name_ok,
     .required = true},
    {.name = "imageRef", .types = FT_STRING, .max_len = 255},
    {.name = "flavorRef", .types = FT_STRING | FT_INTEGER, .min_len = 1, .max_len = 255,
     .required = true},
    {.name = "adminPass", .types = FT_STRING},
    {.name = "metadata", .types = FT_OBJECT, .check_value = server_metadata_ok},
    {.name = "networks", .types = FT_ARRAY | FT_STRING, .required = true, .since = 37},
    {.name = "networks", .types = FT_ARRAY, .until = 36},
    {.name = "security_groups", .types = FT_ARRAY},
    {.name = "availability_zone", .types = FT_STRING, .min_len = 1, .max_len = 255},
    {.name = "key_name", .types = FT_STRING, .min_len = 1, .max_len = 255},
    {.name = "user_data", .types = FT_STRING},
    /* files to inject (Nova up to 2.56): accepted and not kept, as attachd
     * injects nothing (docs/api.md, POST /servers) */
    {.name = "personality", .types = FT_ARRAY, .until = 56},
    {.name = "config_drive", .types = FT_BOOLISH},
    {.name = "min_count", .types = FT_INTISH},
    {.name = "max_count", .types = FT_INTISH},
    {.name = "return_reservation_id", .types = FT_BOOLISH},
    {.name = "block_device_mapping_v2", .types = FT_ARRAY},
    {.name = "OS-DCF:diskConfig", .types = FT_STRING},
    {.name = "accessIPv4", .types = FT_STRING},
    {.name = "accessIPv6", .types = FT_STRING},
    {.name = "description", .types = FT_STRING | FT_NULL, .max_len = 255, .since = 19},
    {.name = "tags", .types = FT_ARRAY, .since = 52},
    {0},
};

/* A count the schema has checked (a positive integer, or its digits), or
 * `absent`. */
static int64_t count_of(json_t *o, const char *key, int64_t absent)
{
    json_t *v = json_object_get(o, key);
    int64_t n = absent;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_string(v))
        parse_digits(json_string_value(v), &n);
    return n;
}

/* min_count and max_count as Nova checks them; and one server per request:
 * attachd does not make Nova's several (min_count at least, max_count at
 * most), and refuses a request for more rather than make one. */
static bool one_server(struct call *c, json_t *o)
{
    int64_t min = count_of(o, "min_count", 1), max = count_of(o, "max_count", min);
    if (min > max) {
        reply_error(c, 400, "min_count must be <= max_count");
        return false;
    }
    if (max > 1) {
        reply_error(c, 400, "Creating more than one server in a request is not supported: "
                            "min_count and max_count must be 1.");
        return false;
    }
    return true;
}

/* The root volume of a boot-from-volume request: boot_index 0, source volume. */
static bool root_volume(struct call *c, json_t *bdms, struct server_spec *spec)
{
    size_t i;
    json_t *b;
    json_array_foreach(bdms, i, b) {
        if (!json_is_object(b)) {
            reply_error(c, 400, "Invalid input for field/attribute block_device_mapping_v2. "
                                "Value: %s. %s is not of type 'object'",
                        py_repr(c->arena, bdms), py_repr(c->arena, b));
            return false;
        }
        json_t *idx = json_object_get(b, "boot_index");
        const char *src = json_string_value(json_object_get(b, "source_type"));
        bool root = (json_is_integer(idx) && json_integer_value(idx) == 0) ||
                    (json_is_string(idx) && !strcmp(json_string_value(idx), "0"));
        if (!root || !src || strcmp(src, "volume") != 0)
            continue;
        const char *uuid = json_string_value(json_object_get(b, "uuid"));
        if (!uuid || !id_valid(uuid, strlen(uuid))) {
            reply_error(c, 400, "Block Device Mapping is Invalid: the root volume needs a "
                                "valid uuid.");
            return false;
        }
        spec->root_volume_id = uuid;
        bool dot = false;
        json_t *d = json_object_get(b, "delete_on_termination");
        if (d && !json_boolish(d, &dot)) {
            reply_error(c, 400, "Block Device Mapping is Invalid: delete_on_termination "
                                "must be a boolean.");
            return false;
        }
        spec->root_delete_on_termination = dot;
    }
    return true;
}

static void created(struct call *c);

void servers_create(struct call *c)
{
    static const struct field hints[] = {
        {.name = "os:scheduler_hints", .types = FT_OBJECT},
        {.name = "OS-SCH-HNT:scheduler_hints", .types = FT_OBJECT},
        {0},
    };
    json_t *o = body_object(c, "server", create_fields, hints);
    if (!o || !one_server(c, o))
        return;
    struct server_spec *spec = arena_alloc(c->arena, sizeof *spec);
    *spec = (struct server_spec){
        .name = json_string_value(json_object_get(o, "name")),
        .image_ref = json_string_value(json_object_get(o, "imageRef")),
        .availability_zone = json_string_value(json_object_get(o, "availability_zone")),
        .key_name = json_string_value(json_object_get(o, "key_name")),
    };
    json_t *flavor = json_object_get(o, "flavorRef");
    spec->flavor_ref = json_is_integer(flavor)
                          ? arena_printf(c->arena, "%" JSON_INTEGER_FORMAT,
                                         json_integer_value(flavor))
                          : json_string_value(flavor);
    json_t *md = json_object_get(o, "metadata");
    if (md && !metadata_count_ok(c, md))
        return;
    if (md)
        spec->metadata = json_text(c, md);
    json_t *bdms = json_object_get(o, "block_device_mapping_v2");
    if (bdms && !root_volume(c, bdms, spec))
        return;
    if ((!spec->image_ref || !*spec->image_ref) && !spec->root_volume_id) {
        reply_error(c, 400, "Missing imageRef attribute");
        return;
    }
    if (spec->root_volume_id)
        spec->image_ref = "";
    core_server_create(call_op(c, created), spec, &c->made.server);
}

/* The answer to a create: Nova's 202 with the new server's id, links and
 * password (the one asked for, or a random one). */
static void created(struct call *c)
{
    if (!c->op.ok) {
        reply_core_error(c, &c->op.err);
        return;
    }
    const struct server *s = &c->made.server;
    json_t *o = json_object_get(c->body, "server");
    char pass[13];
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    for (int i = 0; i < 12; i++)
        pass[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    pass[12] = '\0';
    const char *admin_pass = json_string_value(json_object_get(o, "adminPass"));
    json_t *links = render_links(c, "servers", s->id);
    const char *location = json_string_value(json_object_get(json_array_get(links, 0), "href"));
    api_add_header(c->res, "Location", arena_strdup(c->arena, location));
    reply_json(c, 202, json_pack("{s:{s:s, s:o, s:s, s:s, s:[{s:s}]}}", "server", "id", s->id,
                                 "links", links, "adminPass", admin_pass ? admin_pass : pass,
                                 "OS-DCF:diskConfig", "MANUAL", "security_groups", "name",
                                 "default"));
}

/* ---- actions -------------------------------------------------------------- */

static void acted(struct call *c)
{
    if (c->op.ok)
        reply_empty(c, 202);
    else
        reply_core_error(c, &c->op.err);
}

/* os-getConsoleOutput's answer: Nova's {"output": ...}, without the
 * control characters Nova removes (all below 0x20 but tab and newline). */
static void console_answered(struct call *c)
{
    if (c->op.ok && c->op.pending) {
        struct core_error e = {.code = CORE_UNAVAILABLE, .retry_after = 5};
        snprintf(e.message, sizeof e.message, "The service is unavailable at this time.");
        reply_core_error(c, &e);
        return;
    }
    if (!c->op.ok) {
        reply_core_error(c, &c->op.err);
        return;
    }
    const char *text = c->made.console;
    char *out = arena_alloc(c->arena, strlen(text) + 1), *o = out;
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p >= 0x20 || *p == '\t' || *p == '\n')
            *o++ = *p;
    *o = '\0';
    reply_json(c, 200, json_pack("{s:s}", "output", utf8_clean(c->arena, out)));
}

/* Nova's schema of os-getConsoleOutput: {"length": an integer >= -1, its
 * digits as a string, or null}, nothing else; -1 or null for all. */
static bool signed_digits(const char *s)
{
    s += *s == '-';
    return *s && strspn(s, "0123456789") == strlen(s);
}

static const struct field console_fields[] = {
    {.name = "length", .types = FT_INTEGER | FT_STRING | FT_NULL, .pattern = "^-?[0-9]+$",
     .check = signed_digits, .has_minimum = true, .minimum = -1,
     .type_list = "'integer', 'string', 'null'"},
    {0},
};

static bool console_length(struct call *c, json_t *arg, int *lines)
{
    if (!validate_object(c, arg, "os-getConsoleOutput", console_fields))
        return false;
    json_t *len = json_object_get(arg, "length");
    /* a string past the schema's pattern may still be below -1 (jsonschema's
     * minimum is for numbers): all, as for -1 */
    long long n = json_is_integer(len) ? json_integer_value(len)
                  : json_is_string(len) ? strtoll(json_string_value(len), NULL, 10)
                                        : -1;
    *lines = n < 0 ? -1 : n > INT_MAX ? INT_MAX : (int)n;
    return true;
}

/* Nova's reboot schema: {"type": "SOFT" or "HARD", in three cases}. */
static const char *const reboot_types[] = {"HARD", "Hard", "hard", "SOFT", "Soft", "soft", NULL};
static const struct field reboot_fields[] = {
    {.name = "type", .types = FT_STRING, .one_of = reboot_types, .required = true},
    {0},
};

static bool reboot_type(struct call *c, json_t *arg, enum server_action *action)
{
    if (!validate_object(c, arg, "reboot", reboot_fields))
        return false;
    const char *type = json_string_value(json_object_get(arg, "type"));
    *action = type[0] == 'H' || type[0] == 'h' ? ACTION_REBOOT_HARD : ACTION_REBOOT_SOFT;
    return true;
}

void servers_action(struct call *c)
{
    static const struct { const char *name; enum server_action action; } actions[] = {
        {"os-stop", ACTION_STOP}, {"os-start", ACTION_START}, {"lock", ACTION_LOCK},
        {"unlock", ACTION_UNLOCK}, {"pause", ACTION_PAUSE}, {"unpause", ACTION_UNPAUSE},
        {"suspend", ACTION_SUSPEND}, {"resume", ACTION_RESUME},
    };
    if (!body_parse(c))
        return;
    if (!json_is_object(c->body) || json_object_size(c->body) != 1) {
        reply_error(c, 400, "Malformed request body");
        return;
    }
    const char *key = json_object_iter_key(json_object_iter(c->body));
    json_t *arg = json_object_iter_value(json_object_iter(c->body));
    if (!strcmp(key, "reboot")) {
        enum server_action action;
        if (reboot_type(c, arg, &action))
            core_server_action(call_op(c, acted), c->param[0], action);
        return;
    }
    if (!strcmp(key, "os-getConsoleOutput")) {
        int lines;
        if (console_length(c, arg, &lines))
            core_server_console(call_op(c, console_answered), c->param[0], lines,
                                &c->made.console);
        return;
    }
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strcmp(actions[i].name, key) != 0)
            continue;
        if (!json_is_null(arg) && !json_is_object(arg)) {
            reply_error(c, 400, "Invalid input for field/attribute %s. Value: %s. %s is not "
                                "of type 'null', 'object'", key, py_repr(c->arena, arg),
                        py_repr(c->arena, arg));
            return;
        }
        core_server_action(call_op(c, acted), c->param[0], actions[i].action);
        return;
    }
    json_t *ks = json_string(key);
    reply_error(c, 400, "There is no such action: %s", ks ? json_string_value(ks) : "");
    json_decref(ks);
}
