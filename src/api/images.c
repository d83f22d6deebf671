/* images.c: the images servers are made from, read-only, in two forms
 * (docs/api.md, decision D11):
 *   - Nova's image proxy, GET /images, /images/detail and /images/{id}, in
 *     both dialects as flavors are (nova/api/openstack/compute/images.py and
 *     views/images.py), for 2.1 to 2.35: from 2.36 Nova answers 404;
 *   - the part of Glance v2 that openstacksdk and the `openstack` CLI use to
 *     find an image by id or name: GET /image/v2/images and
 *     /image/v2/images/{id} (glance/api/v2/images.py), in Glance's shapes.
 * Both list the newest image first, as Glance does by default. Every image
 * is public, active, with no minimum disk or RAM and no properties. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "api/call.h"

/* ---- the query ------------------------------------------------------------- */

/* Glance's `limit` (the first, as its params.pop() takes it): digits, at
 * most `max` (a larger number is the maximum, as Glance caps it), else its
 * 400; absent: `absent`. */
static bool page_limit(struct call *c, int absent, int max, int *out)
{
    const char *s = query_first(c, "limit");
    *out = absent;
    if (!s)
        return true;
    const char *digits = s + (*s == '-');
    if (!*digits || strspn(digits, "0123456789") != strlen(digits)) {
        reply_error(c, 400, "limit param must be an integer");
        return false;
    }
    if (*s == '-' && strspn(digits, "0") != strlen(digits)) {
        reply_error(c, 400, "limit param must be positive");
        return false;
    }
    for (*out = 0; *digits && *out <= max; digits++)
        *out = *out * 10 + (*digits - '0');
    if (*out > max)
        *out = max;
    return true;
}

/* Nova's (images.py): its query schema's integers checked, every value;
 * then get_pagination_params() reads each as an int; the last limit, at
 * most 1000; absent: 1000. */
static bool nova_limit(struct call *c, int *out)
{
    int64_t v = 1000, unused;
    if (!query_digits(c, "limit") || !query_digits(c, "page_size") ||
        !query_digits(c, "offset") || !nova_number(c, "limit", &v) ||
        !nova_number(c, "page_size", &unused) || !nova_number(c, "offset", &unused))
        return false;
    *out = v > 1000 ? 1000 : (int)v;
    return true;
}

/* What an image shows for a filter Glance accepts, or NULL: the filter is
 * on a property no image has (Glance takes any other key for one). *fold:
 * compare in any case (Glance's booleans, Nova's status, which it
 * lowercases). */
static const char *field(const struct image *img, const char *key, bool *fold)
{
    static const struct { const char *key, *value; } fixed[] = {
        {"status", "active"}, {"visibility", "public"}, {"container_format", "bare"},
        {"protected", "false"}, {"os_hidden", "false"}, {"member_status", "accepted"},
    };
    *fold = true;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(key, fixed[i].key))
            return fixed[i].value;
    static const struct { const char *key; size_t at; } own[] = {
        {"name", offsetof(struct image, name)}, {"id", offsetof(struct image, id)},
        {"disk_format", offsetof(struct image, disk_format)},
        {"checksum", offsetof(struct image, checksum)},
        {"os_hash_value", offsetof(struct image, hash_value)},
    };
    *fold = false;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(key, own[i].key))
            return *(const char *const *)((const char *)img + own[i].at);
    return NULL;
}

/* The query keys that are not filters (paging, sorting: the order is always
 * the newest first). */
static bool not_a_filter(const char *key, bool glance)
{
    static const char *const nova[] = {"limit", "marker", "page_size", "offset", NULL};
    static const char *const glance_keys[] = {"limit", "marker", "sort", "sort_key", "sort_dir",
                                              NULL};
    for (const char *const *k = glance ? glance_keys : nova; *k; k++)
        if (!strcmp(key, *k))
            return true;
    return false;
}

struct filter_ctx {
    const struct image *img;
    bool glance;
    bool match;
};

/* Nova passes on name and status (lowercased) and ignores the rest; Glance
 * filters on every key. visibility=all is every image. */
static bool check_filter(void *cls, const char *key, const char *value)
{
    struct filter_ctx *f = cls;
    if (not_a_filter(key, f->glance))
        return true;
    if (!f->glance && strcmp(key, "name") != 0 && strcmp(key, "status") != 0)
        return true;
    if (f->glance && !strcmp(key, "visibility") && !strcmp(value, "all"))
        return true;
    bool fold;
    const char *have = field(f->img, key, &fold);
    f->match = have && (fold ? !strcasecmp(have, value) : !strcmp(have, value));
    return f->match;
}

static bool matches(struct call *c, const struct image *img, bool glance)
{
    struct filter_ctx f = {img, glance, true};
    query_each(c, check_filter, &f);
    return f.match;
}

/* One page of images, newest first, each rendered: NULL after the answer
 * (a 400 for a marker that names no image). *last: the last one's id
 * when the page is as long as the limit (a next page may follow). */
static json_t *page(struct call *c, bool glance, int limit,
                    json_t *(*render)(struct call *c, const struct image *img),
                    const char **last)
{
    struct core_error err;
    struct image *all;
    int total;
    if (!core_image_list(&c->core, &all, &total, &err)) {
        reply_core_error(c, &err);
        return NULL;
    }
    const char *marker = glance ? query_first(c, "marker") : query_last(c, "marker");
    int from = total - 1;
    if (marker) {
        while (from >= 0 && strcmp(all[from].id, marker) != 0)
            from--;
        if (from < 0) {
            if (glance)
                reply_error(c, 400, "No image found with ID %s", marker);
            else
                reply_error(c, 400, "marker [%s] not found", marker);
            return NULL;
        }
        from--;
    }
    json_t *items = json_array();
    int n = 0;
    *last = NULL;
    for (int i = from; i >= 0 && n < limit; i--) {
        if (matches(c, &all[i], glance)) {
            json_array_append_new(items, render(c, &all[i]));
            if (++n == limit)
                *last = all[i].id;
        }
    }
    return items;
}

/* The image the path names, or false after the dialect's 404 (Nova's
 * images.py, Glance's images.py). */
static bool find(struct call *c, struct image *img)
{
    struct core_error err;
    if (core_image_get(&c->core, c->param[0], img, &err))
        return true;
    if (err.code != CORE_NOT_FOUND)
        reply_core_error(c, &err);
    else if (c->glance)
        reply_error(c, 404, "No image found with ID %s", c->param[0]);
    else
        reply_error(c, 404, "Image not found.");
    return false;
}

/* ---- Nova's image proxy ------------------------------------------------------- */

/* Nova's links, with the alternate one to the image in Glance. */
static json_t *nova_links(struct call *c, const struct image *img)
{
    json_t *links = render_links(c, "images", img->id);
    if (c->dialect == DIALECT_NOVA)
        json_array_append_new(links, json_pack("{s:s, s:s, s:s}", "rel", "alternate", "type",
                                               "application/vnd.openstack.image", "href",
                                               arena_printf(c->arena, "%s/image/images/%s",
                                                            c->base, img->id)));
    return links;
}

/* views/images.py's basic() and show(), their keys in their order. */
static json_t *nova_brief(struct call *c, const struct image *img)
{
    return json_pack("{s:s, s:s, s:o}", "id", img->id, "name", img->name, "links",
                     nova_links(c, img));
}

static json_t *nova_image(struct call *c, const struct image *img)
{
    return json_pack("{s:s, s:s, s:i, s:i, s:{}, s:s, s:s, s:s, s:i, s:I, s:o}",
                     "id", img->id, "name", img->name, "minRam", 0, "minDisk", 0, "metadata",
                     "created", render_time(c->arena, img->created_at, TIME_ISO_Z),
                     "updated", render_time(c->arena, img->updated_at, TIME_ISO_Z),
                     "status", "ACTIVE", "progress", 100,
                     "OS-EXT-IMG-SIZE:size", (json_int_t)img->size,
                     "links", nova_links(c, img));
}

static void nova_list(struct call *c, bool detail)
{
    int limit;
    const char *last;
    if (!nova_limit(c, &limit))
        return;
    json_t *items = page(c, false, limit, detail ? nova_image : nova_brief, &last);
    if (!items)
        return;
    json_t *body = json_pack("{s:o}", "images", items);
    /* Nova's collection links: a full page has a next one */
    if (last)
        json_object_set_new(body, "images_links", json_pack(
            "[{s:s, s:s}]", "rel", "next", "href",
            arena_printf(c->arena, "%s%s/images%s?%s", c->base, c->prefix,
                         detail ? "/detail" : "", query_with_marker(c, last, true))));
    reply_json(c, 200, body);
}

void images_list(struct call *c)
{
    nova_list(c, false);
}

void images_detail(struct call *c)
{
    nova_list(c, true);
}

void images_show(struct call *c)
{
    struct image img;
    if (find(c, &img))
        reply_json(c, 200, json_pack("{s:o}", "image", nova_image(c, &img)));
}

/* ---- Glance v2 ------------------------------------------------------------------- */

/* glance/api/v2/images.py's _format_image: its keys in its order. */
static json_t *glance_image(struct call *c, const struct image *img)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:b, s:i, s:i, s:n, s:b, s:s, s:s,"
        " s:s, s:s, s:s, s:[], s:s, s:s, s:s}",
        "name", img->name, "disk_format", img->disk_format, "container_format", "bare",
        "visibility", "public", "size", (json_int_t)img->size,
        "virtual_size", (json_int_t)img->virtual_size, "status", "active",
        "checksum", img->checksum, "protected", 0, "min_ram", 0, "min_disk", 0, "owner",
        "os_hidden", 0, "os_hash_algo", "sha512", "os_hash_value", img->hash_value,
        "id", img->id, "created_at", render_time(c->arena, img->created_at, TIME_ISO_Z),
        "updated_at", render_time(c->arena, img->updated_at, TIME_ISO_Z), "tags",
        "self", arena_printf(c->arena, "/v2/images/%s", img->id),
        "file", arena_printf(c->arena, "/v2/images/%s/file", img->id),
        "schema", "/v2/schemas/image");
}

void glance_images_list(struct call *c)
{
    int limit;
    const char *last;
    if (!page_limit(c, 25, 1000, &limit))    /* Glance's limit_param_default, api_limit_max */
        return;
    json_t *items = page(c, true, limit, glance_image, &last);
    if (!items)
        return;
    const char *query = query_with_marker(c, NULL, false);
    json_t *body = json_pack("{s:o, s:s, s:s}", "images", items, "first",
                             *query ? arena_printf(c->arena, "/v2/images?%s", query)
                                    : "/v2/images",
                             "schema", "/v2/schemas/images");
    /* Glance: a page as long as the limit has a next one, even when it is
     * the last */
    if (last)
        json_object_set_new(body, "next",
                            json_sprintf("/v2/images?%s", query_with_marker(c, last, false)));
    reply_json(c, 200, body);
}

void glance_images_show(struct call *c)
{
    struct image img;
    if (find(c, &img))
        reply_json(c, 200, glance_image(c, &img));
}
