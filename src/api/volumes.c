/* volumes.c: Nova's os-volumes proxy (camelCase, 2.1-2.35) and Hostway's
 * /volumes (snake_case with links), over the same core (docs/api.md, the
 * volume sections of both dialects). */
#include <stdlib.h>
#include <string.h>

#include "api/call.h"
#include "util/id.h"

/* A volume in the dialect's form: Hostway snake_case with links, or Nova's
 * camelCase os-volumes; NULL (err set) if its attachment cannot be read. */
json_t *render_volume(struct call *c, const struct volume *v, struct core_error *err)
{
    struct attachment at;
    bool attached;
    if (!core_volume_attachment(&c->core, v->id, &at, &attached, err))
        return NULL;
    json_t *metadata = json_loads(v->metadata, 0, NULL);
    if (!metadata)
        metadata = json_object();
    if (c->dialect == DIALECT_HOSTWAY) {
        json_t *atts = json_array();
        if (attached)
            json_array_append_new(atts, json_pack("{s:s, s:s, s:s, s:s}", "id", at.volume_id,
                                                  "server_id", at.server_id, "volume_id",
                                                  at.volume_id, "device", at.device));
        return json_pack("{s:s, s:s, s:o, s:o, s:I, s:s, s:o, s:o, s:s, s:o, s:o, s:s, s:s}",
                         "id", v->id, "status", v->status,
                         "display_name", json_string(v->name ? v->name : ""),
                         "display_description", json_string(v->description ? v->description : ""),
                         "size", (json_int_t)v->size,
                         "volume_type", v->volume_type ? v->volume_type : "",
                         "metadata", metadata, "attachments", atts,
                         "availability_zone", v->availability_zone,
                         "links", render_links(c, "volumes", v->id),
                         "snapshot_id", json_string(v->snapshot_id ? v->snapshot_id : ""),
                         "created_at", render_time(c->arena, v->created_at, TIME_SPACE),
                         "attach_status", attached ? "attached" : "detached");
    }
    json_t *att = attached ? json_pack("{s:s, s:s, s:s, s:s}", "id", at.volume_id, "volumeId",
                                       at.volume_id, "serverId", at.server_id, "device",
                                       at.device)
                           : json_object();
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:[o]}",
                     "id", v->id, "status", v->status, "size", (json_int_t)v->size,
                     "availabilityZone", v->availability_zone,
                     "createdAt", render_time(c->arena, v->created_at, TIME_ISO_MICRO),
                     "displayName", json_str_or_null(v->name),
                     "displayDescription", json_str_or_null(v->description),
                     "volumeType", json_str_or_null(v->volume_type),
                     "snapshotId", json_str_or_null(v->snapshot_id),
                     "metadata", metadata, "attachments", att);
}

/* Render each volume with `render` into {"volumes": [...]}, or the error.
 * A page that would pass API_MAX_ANSWER is cut at a volume; the Hostway and
 * Cinder shapes then carry a next link (with the offset to go on from),
 * Nova's os-volumes (whose schema has no links) only what fits. */
static void reply_volumes(struct call *c, const struct volume *v, int n, bool detail,
                          const struct paging *p,
                          json_t *(*render)(struct call *, const struct volume *, bool,
                                            struct core_error *))
{
    struct core_error err;
    json_t *items = json_array();
    size_t size = 0;
    int shown = 0;
    for (; shown < n; shown++) {
        size += answer_estimate(1024, v[shown].metadata, v[shown].name);
        if (shown > 0 && size > API_MAX_ANSWER)
            break;
        json_t *item = render(c, &v[shown], detail, &err);
        if (!item) {
            json_decref(items);
            reply_core_error(c, &err);
            return;
        }
        json_array_append_new(items, item);
    }
    json_t *body = json_pack("{s:o}", "volumes", items);
    if (shown < n && (c->dialect == DIALECT_HOSTWAY || c->cinder)) {
        const char *path = c->cinder && detail ? "/volumes/detail" : "/volumes";
        json_object_set_new(body, "volumes_links",
                            json_pack("[{s:s, s:s}]", "rel", "next", "href",
                                      arena_printf(c->arena, "%s%s%s?limit=%d&offset=%lld",
                                                   c->base, c->prefix, path,
                                                   p->limit < 0 ? 1000 : p->limit,
                                                   (long long)(p->offset + shown))));
    }
    reply_json(c, 200, body);
}

static json_t *render_any(struct call *c, const struct volume *v, bool detail,
                          struct core_error *err)
{
    (void)detail;       /* both dialects show the same fields in lists and details */
    return render_volume(c, v, err);
}

static void list(struct call *c)
{
    struct paging p;
    struct core_error err;
    struct volume *v;
    int n;
    if (!query_paging(c, &p, false))
        return;
    if (!core_volume_list(&c->core, NULL, p.offset, p.limit < 0 ? 1000 : p.limit, &v, &n, &err))
        reply_core_error(c, &err);
    else
        reply_volumes(c, v, n, false, &p, render_any);
}

void volumes_list(struct call *c)
{
    list(c);
}

void volumes_detail(struct call *c)
{
    list(c);
}

void volumes_show(struct call *c)
{
    struct volume v;
    struct core_error err;
    json_t *o = core_volume_get(&c->core, c->param[0], &v, &err) ? render_volume(c, &v, &err)
                                                                   : NULL;
    if (!o) {
        reply_core_error(c, &err);
        return;
    }
    reply_json(c, 200, json_pack("{s:o}", "volume", o));
}

static void deleted(struct call *c)
{
    if (c->op.ok)
        reply_empty(c, c->dialect == DIALECT_HOSTWAY ? 204 : 202);
    else
        reply_core_error(c, &c->op.err);
}

void volumes_delete(struct call *c)
{
    core_volume_delete(call_op(c, deleted), c->param[0]);
}

#define MAX_SIZE_GB (1024 * 1024)

/* The schema has checked the form; this reads it and bounds it above. */
static bool size_ok(json_t *v, int64_t *size)
{
    if (json_is_integer(v))
        *size = json_integer_value(v);
    else if (!json_is_string(v) || !parse_digits(json_string_value(v), size))
        return false;
    return *size >= 1 && *size <= MAX_SIZE_GB;
}

static const struct field nova_fields[] = {
    {.name = "volume_type", .types = FT_STRING | FT_NULL},
    {.name = "metadata", .types = FT_OBJECT | FT_NULL, .check_value = volume_metadata_ok},
    {.name = "snapshot_id", .types = FT_STRING | FT_NULL},
    {.name = "size", .types = FT_INTISH, .pattern = "^[0-9]+$", .required = true},
    {.name = "availability_zone", .types = FT_STRING | FT_NULL},
    {.name = "display_name", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "display_description", .types = FT_STRING | FT_NULL, .max_len = 255},
    {0},
};

/* The size of a create (the schema has checked its form), bounded above;
 * false after the 400. */
static bool sized(struct call *c, json_t *o, struct volume_spec *spec)
{
    json_t *size = json_object_get(o, "size");
    if (size_ok(size, &spec->size))
        return true;
    reply_error(c, 400, "Invalid input for field/attribute size. Value: %s. %s is greater "
                        "than the maximum of %d", py_repr(c->arena, size),
                py_repr(c->arena, size), MAX_SIZE_GB);
    return false;
}

/* A create's volume type ("" is none) and metadata (at most 128 items);
 * false after the 403. */
static bool typed(struct call *c, json_t *o, struct volume_spec *spec)
{
    if (spec->volume_type && *spec->volume_type == '\0')
        spec->volume_type = NULL;
    json_t *md = json_object_get(o, "metadata");
    if (!metadata_count_ok(c, md))
        return false;
    if (json_is_object(md))
        spec->metadata = json_text(c, md);
    return true;
}

static void volume_created(struct call *c);

void volumes_create(struct call *c)
{
    json_t *o = body_object(c, "volume", nova_fields, NULL);
    if (!o)
        return;
    struct volume_spec *spec = arena_alloc(c->arena, sizeof *spec);
    *spec = (struct volume_spec){
        .name = json_string_value(json_object_get(o, "display_name")),
        .description = json_string_value(json_object_get(o, "display_description")),
        .volume_type = json_string_value(json_object_get(o, "volume_type")),
        .availability_zone = json_string_value(json_object_get(o, "availability_zone")),
    };
    const char *snap = json_string_value(json_object_get(o, "snapshot_id"));
    if (!sized(c, o, spec))
        return;
    if (snap) {
        reply_error(c, 404, "Snapshot %s could not be found.", snap);
        return;
    }
    if (typed(c, o, spec))
        core_volume_create(call_op(c, volume_created), spec, &c->made.volume);
}

static void volume_created(struct call *c)
{
    const struct volume *v = &c->made.volume;
    struct core_error err;
    json_t *made = c->op.ok ? render_volume(c, v, &err) : NULL;
    if (!made) {
        reply_core_error(c, c->op.ok ? &err : &c->op.err);
        return;
    }
    api_add_header(c->res, "Location",
                   arena_printf(c->arena, "%s%s%s/%s", c->base, c->prefix,
                                c->dialect == DIALECT_NOVA ? "/os-volumes" : "/volumes", v->id));
    reply_json(c, 200, json_pack("{s:o}", "volume", made));
}

/* ---- Cinder v3 ---------------------------------------------------------------
 * What the `openstack` CLI, openstacksdk and libcloud call on volumes, in
 * Cinder's body shape: the reads that find a volume by id or name, and
 * create, update (name, description, metadata) and delete. */

static json_t *render_cinder(struct call *c, const struct volume *v, bool detail,
                            struct core_error *err)
{
    json_t *links = json_pack("[{s:s, s:s}, {s:s, s:s}]",
                              "rel", "self", "href",
                              arena_printf(c->arena, "%s%s/volumes/%s", c->base, c->prefix, v->id),
                              "rel", "bookmark", "href",
                              arena_printf(c->arena, "%s%s/volumes/%s", c->base,
                                           c->account_in_path
                                               ? arena_printf(c->arena, "/%s", c->account_in_path)
                                               : "", v->id));
    if (!detail)
        return json_pack("{s:s, s:o, s:o}", "id", v->id, "name", json_str_or_null(v->name),
                         "links", links);
    struct attachment at;
    bool attached;
    if (!core_volume_attachment(&c->core, v->id, &at, &attached, err)) {
        json_decref(links);
        return NULL;
    }
    json_t *atts = json_array();
    if (attached)
        json_array_append_new(atts, json_pack(
            "{s:s, s:s, s:s, s:s, s:n, s:s, s:s}", "id", at.volume_id, "attachment_id", at.id,
            "volume_id", at.volume_id, "server_id", at.server_id, "host_name", "device",
            at.device, "attached_at", render_time(c->arena, at.created_at, TIME_ISO_MICRO)));
    json_t *metadata = json_loads(v->metadata, 0, NULL);
    return json_pack("{s:s, s:o, s:o, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:n, s:s, s:b, s:b,"
                     " s:o, s:n, s:s, s:o, s:o}",
                     "id", v->id, "name", json_str_or_null(v->name),
                     "description", json_str_or_null(v->description),
                     "size", (json_int_t)v->size, "status", v->status,
                     "availability_zone", v->availability_zone,
                     "created_at", render_time(c->arena, v->created_at, TIME_ISO_MICRO),
                     "updated_at", render_time(c->arena, v->updated_at, TIME_ISO_MICRO),
                     "volume_type", json_str_or_null(v->volume_type),
                     "snapshot_id", json_str_or_null(v->snapshot_id), "source_volid",
                     "bootable", "false", "encrypted", 0, "multiattach", 0,
                     "metadata", metadata ? metadata : json_object(), "user_id",
                     "os-vol-tenant-attr:tenant_id", v->account_id,
                     "attachments", atts, "links", links);
}

static void cinder_list(struct call *c, bool detail)
{
    struct paging p;
    struct core_error err;
    struct volume *v;
    int n;
    if (!query_paging(c, &p, false))
        return;
    const char *name = query_first(c, "name");
    if (!core_volume_list(&c->core, name, p.offset, p.limit < 0 ? 1000 : p.limit, &v, &n, &err))
        reply_core_error(c, &err);
    else
        reply_volumes(c, v, n, detail, &p, render_cinder);
}

void cinder_volumes_list(struct call *c)
{
    cinder_list(c, false);
}

void cinder_volumes_detail(struct call *c)
{
    cinder_list(c, true);
}

void cinder_volumes_show(struct call *c)
{
    struct volume v;
    struct core_error err;
    json_t *o = core_volume_get(&c->core, c->param[0], &v, &err)
                    ? render_cinder(c, &v, true, &err) : NULL;
    if (!o) {
        reply_core_error(c, &err);
        return;
    }
    reply_json(c, 200, json_pack("{s:o}", "volume", o));
}

/* cinder/api/schemas/volumes.py: create (additionalProperties true) and
 * update (false). */
static const struct field cinder_create_fields[] = {
    {.name = "name", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "description", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "display_name", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "display_description", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "size", .types = FT_INTISH, .pattern = "^[0-9]+$"},
    {.name = "availability_zone", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "volume_type", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "metadata", .types = FT_OBJECT | FT_NULL, .check_value = volume_metadata_ok},
    {.name = "snapshot_id", .types = FT_STRING | FT_NULL},
    {.name = "source_volid", .types = FT_STRING | FT_NULL},
    {.name = "backup_id", .types = FT_STRING | FT_NULL},
    {.name = "imageRef", .types = FT_STRING | FT_NULL},
    {.name = "consistencygroup_id", .types = FT_STRING | FT_NULL},
    {.name = "group_id", .types = FT_STRING | FT_NULL},
    {.name = "multiattach", .types = FT_BOOLEAN | FT_NULL},
    {.name = FIELD_ANY_OTHER},
    {0},
};
static const struct field cinder_create_also[] = {
    {.name = "OS-SCH-HNT:scheduler_hints", .types = FT_OBJECT | FT_NULL},
    {0},
};
static const struct field cinder_update_fields[] = {
    {.name = "name", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "description", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "display_name", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "display_description", .types = FT_STRING | FT_NULL, .max_len = 255},
    {.name = "metadata", .types = FT_OBJECT | FT_NULL, .check_value = volume_metadata_ok},
    {0},
};

/* A string member of o, or the older name's (Cinder's v1 display_*). */
static const char *either(json_t *o, const char *name, const char *v1_name)
{
    json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v)
                             : json_string_value(json_object_get(o, v1_name));
}

/* What a create may name that attachd has none of: Cinder's 404 for each
 * source it cannot find, a 400 for what it cannot do. False after it. */
static bool cinder_sources_ok(struct call *c, json_t *o)
{
    static const struct { const char *field, *what; } sources[] = {
        {"snapshot_id", "Snapshot"}, {"source_volid", "Volume"}, {"backup_id", "Backup"},
        {"consistencygroup_id", "ConsistencyGroup"}, {"group_id", "Group"},
    };
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        const char *id = json_string_value(json_object_get(o, sources[i].field));
        if (id) {
            reply_error(c, 404, "%s %s could not be found.", sources[i].what, id);
            return false;
        }
    }
    if (json_string_value(json_object_get(o, "imageRef"))) {
        reply_error(c, 400, "Invalid input received: attachd does not make volumes from "
                            "images.");
        return false;
    }
    if (json_is_true(json_object_get(o, "multiattach"))) {
        reply_error(c, 400, "Invalid input received: attachd does not make multiattach "
                            "volumes.");
        return false;
    }
    return true;
}

/* Cinder's answer to a create or an update: the volume in its detail shape. */
static void cinder_made(struct call *c, int status)
{
    struct core_error err;
    json_t *o = c->op.ok ? render_cinder(c, &c->made.volume, true, &err) : NULL;
    if (!o) {
        reply_core_error(c, c->op.ok ? &err : &c->op.err);
        return;
    }
    reply_json(c, status, json_pack("{s:o}", "volume", o));
}

static void cinder_created(struct call *c)
{
    cinder_made(c, 202);
}

static void cinder_updated(struct call *c)
{
    cinder_made(c, 200);
}

void cinder_volumes_create(struct call *c)
{
    json_t *o = body_object(c, "volume", cinder_create_fields, cinder_create_also);
    if (!o || !cinder_sources_ok(c, o))
        return;
    struct volume_spec *spec = arena_alloc(c->arena, sizeof *spec);
    *spec = (struct volume_spec){
        .name = either(o, "name", "display_name"),
        .description = either(o, "description", "display_description"),
        .volume_type = json_string_value(json_object_get(o, "volume_type")),
        .availability_zone = json_string_value(json_object_get(o, "availability_zone")),
    };
    if (!json_object_get(o, "size")) {
        reply_error(c, 400, "Invalid input received: a volume's size must be given (attachd "
                            "makes no volume from a snapshot, a volume or a backup).");
        return;
    }
    if (sized(c, o, spec) && typed(c, o, spec))
        core_volume_create(call_op(c, cinder_created), spec, &c->made.volume);
}

void cinder_volumes_update(struct call *c)
{
    json_t *o = body_object(c, "volume", cinder_update_fields, NULL);
    if (!o)
        return;
    json_t *md = json_object_get(o, "metadata");
    if (!metadata_count_ok(c, md))
        return;
    struct volume_update *u = arena_alloc(c->arena, sizeof *u);
    *u = (struct volume_update){
        .name_set = json_object_get(o, "name") || json_object_get(o, "display_name"),
        .description_set = json_object_get(o, "description") ||
                           json_object_get(o, "display_description"),
        .name = either(o, "name", "display_name"),
        .description = either(o, "description", "display_description"),
        .metadata = json_is_object(md) ? json_text(c, md) : NULL,
    };
    core_volume_update(call_op(c, cinder_updated), c->param[0], u, &c->made.volume);
}

void cinder_volumes_delete(struct call *c)
{
    core_volume_delete(call_op(c, deleted), c->param[0]);
}
