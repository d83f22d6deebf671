/* flavors.c: GET /flavors, /flavors/detail and /flavors/{flavor_id} in both
 * dialects: Nova's read-only flavor API over the flavors the core was given
 * (the configuration's [flavor ID] sections, or Nova's classic set), with
 * Nova's bodies, filters, sorting and paging (nova/api/openstack/compute/
 * flavors.py and views/flavors.py). Every flavor is public and enabled, with
 * no swap, no ephemeral disk, an rxtx_factor of 1.0, no description and no
 * extra specs, which os-extra_specs shows (Nova's flavors_extraspecs.py:
 * an empty set, and its 404 for any key). There is no write side: the
 * router answers 405 for POST, PUT and DELETE (flavors are configuration;
 * Nova lets only admins write extra specs). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/call.h"

/* ---- the query ------------------------------------------------------------- */

/* Python's int() of a string: surrounding white space, a sign, digits with
 * single underscores between them. A value past int64 is saturated (it
 * compares the same against any flavor's size). */
static bool py_int(const char *s, int64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    int64_t v = 0;
    for (; isdigit((unsigned char)*s) || (*s == '_' && isdigit((unsigned char)s[1])); s++) {
        if (*s == '_')
            continue;
        v = v > (INT64_MAX - 9) / 10 ? INT64_MAX : v * 10 + (*s - '0');
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s)
        return false;
    *out = neg ? -v : v;
    return true;
}

/* Nova's VALID_SORT_KEYS, in its order (the 400's message lists them). */
static const char *const sort_keys[] = {
    "created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id", "is_public",
    "memory_mb", "name", "root_gb", "rxtx_factor", "swap", "updated_at", "vcpu_weight", "vcpus",
    NULL,
};

static const char *const sort_dirs[] = {"asc", "desc", NULL};

struct listing {
    int limit;                  /* at most 1000 */
    const char *marker;
    int is_public;              /* 1 public only, 0 private only, -1 all */
    bool min_ram_given, min_disk_given;
    int64_t min_ram, min_disk;
    const char *sort_key;
    bool desc;
};

/* Nova's _get_flavors: the query schema (every value of limit, sort_key
 * and sort_dir; from 2.75 nothing else), the last value of each counting,
 * then is_public (an admin's only: other users see the
 * public flavors whatever they ask), minRam and minDisk. False after a 400. */
static bool parse_listing(struct call *c, struct listing *l)
{
    static const char *const allowed[] = {"limit", "marker", "is_public", "minRam", "minDisk",
                                          "sort_key", "sort_dir", NULL};
    *l = (struct listing){.limit = 1000, .is_public = 1, .sort_key = "flavorid"};
    int64_t v = 1000;
    if (!query_digits(c, "limit") || !query_enum(c, "sort_key", sort_keys) ||
        !query_enum(c, "sort_dir", sort_dirs) || (c->version >= 75 && !query_only(c, allowed)) ||
        !nova_number(c, "limit", &v))
        return false;
    const char *key = query_last(c, "sort_key"), *dir = query_last(c, "sort_dir");
    l->limit = v > 1000 ? 1000 : (int)v;        /* Nova's max_limit */
    l->marker = query_last(c, "marker");
    if (key && *key)
        l->sort_key = key;      /* Nova: `or 'flavorid'` */
    l->desc = dir && !strcmp(dir, "desc");
    const char *pub = query_last(c, "is_public");
    if (c->core.admin && pub) {
        if (!strcasecmp(pub, "none")) {
            l->is_public = -1;
        } else if ((l->is_public = py_bool(pub)) < 0) {
            reply_error(c, 400, "Invalid is_public filter [%s]", pub);
            return false;
        }
    }
    const char *ram = query_last(c, "minRam"), *disk = query_last(c, "minDisk");
    if (ram && !(l->min_ram_given = py_int(ram, &l->min_ram))) {
        reply_error(c, 400, "Invalid minRam filter [%s]", ram);
        return false;
    }
    if (disk && !(l->min_disk_given = py_int(disk, &l->min_disk))) {
        reply_error(c, 400, "Invalid minDisk filter [%s]", disk);
        return false;
    }
    return true;
}

/* ---- order ------------------------------------------------------------------ */

static int cmp_int(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

/* Nova's paginate_query order: the sort key, then the flavor's row id (here
 * its place in the configuration), both in the one direction. */
static int compare(const struct flavor *all, int a, int b, const char *key, bool desc)
{
    const struct flavor *x = &all[a], *y = &all[b];
    int r = 0;
    if (!strcmp(key, "flavorid"))
        r = strcmp(x->id, y->id);
    else if (!strcmp(key, "name"))
        r = strcmp(x->name, y->name);
    else if (!strcmp(key, "memory_mb"))
        r = cmp_int(x->ram_mb, y->ram_mb);
    else if (!strcmp(key, "root_gb"))
        r = cmp_int(x->disk_gb, y->disk_gb);
    else if (!strcmp(key, "vcpus"))
        r = cmp_int(x->vcpus, y->vcpus);
    if (r == 0)
        r = cmp_int(a, b);      /* "id"; every other key is equal for all */
    return desc ? -r : r;
}

/* ---- rendering ---------------------------------------------------------------- */

static json_t *render_brief(struct call *c, const struct flavor *f)
{
    json_t *o = json_pack("{s:s, s:s, s:o}", "id", f->id, "name", f->name, "links",
                          render_links(c, "flavors", f->id));
    if (c->version >= 55)
        json_object_set_new(o, "description", json_null());
    return o;
}

/* views/flavors.py's show(): its keys in its order; swap "" for none until
 * 2.75, then 0. */
static json_t *render_flavor(struct call *c, const struct flavor *f)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:i, s:b, s:i, s:b, s:f, s:o}",
                          "id", f->id, "name", f->name, "ram", (json_int_t)f->ram_mb,
                          "disk", (json_int_t)f->disk_gb,
                          "swap", c->version >= 75 ? json_integer(0) : json_string(""),
                          "OS-FLV-EXT-DATA:ephemeral", 0, "OS-FLV-DISABLED:disabled", 0,
                          "vcpus", f->vcpus, "os-flavor-access:is_public", 1,
                          "rxtx_factor", 1.0, "links", render_links(c, "flavors", f->id));
    if (c->version >= 55)
        json_object_set_new(o, "description", json_null());
    if (c->version >= 61)
        json_object_set_new(o, "extra_specs", json_object());
    return o;
}

/* Nova's next link: the request's parameters sorted by name, with the
 * marker set to the last flavor shown. */
static const char *next_link(struct call *c, bool detail, const char *marker)
{
    return arena_printf(c->arena, "%s%s/flavors%s?%s", c->base, c->prefix,
                        detail ? "/detail" : "", query_with_marker(c, marker, true));
}

/* ---- the handlers ---------------------------------------------------------------- */

static void list(struct call *c, bool detail)
{
    struct listing l;
    if (!parse_listing(c, &l))
        return;
    const struct flavor *all;
    int n = core_flavors(c->core.core, &all);
    int *order = arena_alloc(c->arena, (size_t)(n > 0 ? n : 1) * sizeof *order);
    for (int i = 0; i < n; i++) {
        int j = i;
        for (; j > 0 && compare(all, order[j - 1], i, l.sort_key, l.desc) > 0; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    int from = 0;
    if (l.marker) {
        while (from < n && strcmp(all[order[from]].id, l.marker) != 0)
            from++;
        if (from == n) {
            reply_error(c, 400, "marker [%s] not found", l.marker);
            return;
        }
        from++;
    }
    json_t *items = json_array();
    const char *last = NULL;
    int shown = 0;
    for (int i = from; i < n && shown < l.limit; i++) {
        const struct flavor *f = &all[order[i]];
        if (l.is_public == 0 ||             /* every flavor is public */
            (l.min_ram_given && f->ram_mb < l.min_ram) ||
            (l.min_disk_given && f->disk_gb < l.min_disk))
            continue;
        json_array_append_new(items, detail ? render_flavor(c, f) : render_brief(c, f));
        last = f->id;
        shown++;
    }
    json_t *body = json_pack("{s:o}", "flavors", items);
    if (shown > 0 && shown == l.limit)
        json_object_set_new(body, "flavors_links",
                            json_pack("[{s:s, s:s}]", "rel", "next", "href",
                                      next_link(c, detail, last)));
    reply_json(c, 200, body);
}

void flavors_list(struct call *c)
{
    list(c, false);
}

void flavors_detail(struct call *c)
{
    list(c, true);
}

/* The flavor the path names, or NULL after Nova's 404. */
static const struct flavor *find(struct call *c)
{
    const struct flavor *f = core_flavor(c->core.core, c->param[0]);
    if (!f)
        reply_error(c, 404, "Flavor %s could not be found.", c->param[0]);
    return f;
}

void flavors_show(struct call *c)
{
    const struct flavor *f = find(c);
    if (f)
        reply_json(c, 200, json_pack("{s:o}", "flavor", render_flavor(c, f)));
}

void flavors_extra_specs(struct call *c)
{
    if (find(c))
        reply_json(c, 200, json_pack("{s:{}}", "extra_specs"));
}

/* No flavor has extra specs: every key is Nova's KeyError. */
void flavors_extra_spec(struct call *c)
{
    if (find(c))
        reply_error(c, 404, "Flavor %s has no extra specs with key %s.", c->param[0],
                    c->param[1]);
}
