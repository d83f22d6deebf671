/* attachments.c: /servers/{id}/os-volume_attachments (docs/api.md,
 * the os-volume_attachments sections of both dialects).
 *
 * Nova dialect: fields by microversion: tag from 2.70,
 * delete_on_termination from 2.79, attachment_id and bdm_uuid instead of id
 * from 2.89; detach 202. Hostway dialect: the 2.1 fields, show returns the
 * volume ({"volume": ...}), detach 204 (docs/api.md, decision D2).
 */
#include <string.h>

#include "api/call.h"
#include "util/id.h"

/* An attachment, written into w (`key`: its key in the enclosing object,
 * NULL in an array). */
static void write_attachment(struct jw *w, struct call *c, const char *key,
                             const struct attachment *a, bool on_create)
{
    jw_object(w, key);
    if (c->version < 89 || on_create)
        jw_string(w, "id", a->volume_id);
    jw_string(w, "serverId", a->server_id);
    jw_string(w, "volumeId", a->volume_id);
    jw_string(w, "device", a->device);
    if (c->version >= 70)
        jw_string(w, "tag", a->tag);
    if (c->version >= 79)
        jw_bool(w, "delete_on_termination", a->delete_on_termination);
    if (c->version >= 89 && !on_create) {
        jw_string(w, "attachment_id", a->id);
        jw_string(w, "bdm_uuid", a->bdm_uuid);
    }
    jw_end_object(w);
}

/* {"volumeAttachment": ...} of one attachment. */
static void reply_attachment(struct call *c, const struct attachment *a, bool on_create)
{
    struct jw w;
    size_t len;
    jw_init(&w, c->arena, 512);
    jw_object(&w, NULL);
    write_attachment(&w, c, "volumeAttachment", a, on_create);
    jw_end_object(&w);
    const char *body = jw_finish(&w, &len);
    reply_raw_json(c, 200, body, len);
}

void attachments_list(struct call *c)
{
    static const char *const allowed[] = {"limit", "offset", NULL};
    struct paging p;
    struct core_error err;
    struct attachment *at;
    int n;
    /* as jsonschema checks Nova's: the parameters', then unknown ones;
     * then limited() reads the numbers */
    if (!query_digits(c, "limit") || !query_digits(c, "offset") ||
        (c->version >= 75 && !query_only(c, allowed)) || !query_paging(c, &p, false))
        return;
    if (!core_attachment_list(&c->core, c->param[0], p.offset, p.limit < 0 ? 1000 : p.limit,
                              &at, &n, &err)) {
        reply_core_error(c, &err);
        return;
    }
    struct jw w;
    size_t len;
    jw_init(&w, c->arena, 256 + 256 * (size_t)n);
    jw_object(&w, NULL);
    jw_array(&w, "volumeAttachments");
    for (int i = 0; i < n; i++)
        write_attachment(&w, c, NULL, &at[i], false);
    jw_end_array(&w);
    jw_end_object(&w);
    const char *body = jw_finish(&w, &len);
    reply_raw_json(c, 200, body, len);
}

void attachments_show(struct call *c)
{
    struct attachment a;
    struct core_error err;
    if (!core_attachment_get(&c->core, c->param[0], c->param[1], &a, &err)) {
        reply_core_error(c, &err);
        return;
    }
    /* Hostway: the attached volume (docs/api.md, decision D2) */
    if (c->dialect == DIALECT_HOSTWAY) {
        struct volume v;
        json_t *o = core_volume_get(&c->core, a.volume_id, &v, &err)
                        ? render_volume(c, &v, &err) : NULL;
        if (!o) {
            reply_core_error(c, &err);
            return;
        }
        reply_json(c, 200, json_pack("{s:o}", "volume", o));
        return;
    }
    reply_attachment(c, &a, false);
}

static bool id_ok(const char *s)
{
    return id_valid(s, strlen(s));
}

static bool tag_ok(const char *s)
{
    return !strpbrk(s, ",/");
}

#define DEVICE_PATTERN "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"

static const struct field attach_fields[] = {
    {.name = "volumeId", .types = FT_STRING, .check = id_ok, .pattern = "^[A-Za-z0-9._~:-]{1,255}$",
     .max_len = 255, .required = true},
    {.name = "device", .types = FT_STRING | FT_NULL, .check = core_device_valid,
     .pattern = DEVICE_PATTERN},
    {.name = "tag", .types = FT_STRING, .min_len = 1, .max_len = 60, .check = tag_ok,
     .pattern = "^[^,/]*$", .since = 49},
    {.name = "delete_on_termination", .types = FT_BOOLISH, .since = 79},
    {0},
};

static void attached(struct call *c)
{
    if (!c->op.ok)
        reply_core_error(c, &c->op.err);
    else
        reply_attachment(c, &c->made.attachment, true);
}

void attachments_create(struct call *c)
{
    json_t *o = body_object(c, "volumeAttachment", attach_fields, NULL);
    if (!o)
        return;
    struct attach_spec *spec = arena_alloc(c->arena, sizeof *spec);
    *spec = (struct attach_spec){
        .volume_id = json_string_value(json_object_get(o, "volumeId")),
        .device = json_string_value(json_object_get(o, "device")),
        .tag = json_string_value(json_object_get(o, "tag")),
    };
    json_t *dot = json_object_get(o, "delete_on_termination");
    if (dot)
        json_boolish(dot, &spec->delete_on_termination);
    core_attach(call_op(c, attached), c->param[0], spec, &c->made.attachment);
}

static const struct field update_fields[] = {
    {.name = "volumeId", .types = FT_STRING, .check = id_ok, .pattern = "^[A-Za-z0-9._~:-]{1,255}$",
     .max_len = 255, .required = true},
    {.name = "device", .types = FT_STRING | FT_NULL, .since = 85},
    {.name = "tag", .types = FT_STRING | FT_NULL, .since = 85},
    {.name = "delete_on_termination", .types = FT_BOOLISH, .since = 85},
    {.name = "serverId", .types = FT_STRING, .since = 85},
    {.name = "id", .types = FT_STRING, .since = 85},
    {0},
};

static void updated(struct call *c)
{
    if (c->op.ok)
        reply_empty(c, 202);
    else
        reply_core_error(c, &c->op.err);
}

void attachments_update(struct call *c)
{
    /* The Hostway dialect has no microversions; it updates as 2.85 does
     * (the answer is an empty 202, so nothing else depends on the version). */
    if (c->dialect == DIALECT_HOSTWAY)
        c->version = c->core.version = 85;
    json_t *o = body_object(c, "volumeAttachment", update_fields, NULL);
    if (!o)
        return;
    struct attach_update *u = arena_alloc(c->arena, sizeof *u);
    u->volume_id = json_string_value(json_object_get(o, "volumeId"));
    json_t *v;
    if ((v = json_object_get(o, "delete_on_termination")))
        u->set_delete_on_termination = json_boolish(v, &u->delete_on_termination);
    if ((v = json_object_get(o, "device")))
        u->has_device = true, u->device = json_string_value(v);
    if ((v = json_object_get(o, "tag")))
        u->has_tag = true, u->tag = json_string_value(v);
    if ((v = json_object_get(o, "serverId")))
        u->has_server_id = true, u->server_id = json_string_value(v);
    if ((v = json_object_get(o, "id")))
        u->has_id = true, u->id = json_string_value(v);
    core_attachment_update(call_op(c, updated), c->param[0], c->param[1], u);
}

/* Nova answers 202 once the detach is recorded; Hostway 204 once the disk
 * is gone from the VM, or 202 if the hypervisor has not confirmed it within
 * the wait (the attachment then shows as detaching). */
static void detached(struct call *c)
{
    if (!c->op.ok)
        reply_core_error(c, &c->op.err);
    else
        reply_empty(c, c->dialect == DIALECT_HOSTWAY && !c->op.pending ? 204 : 202);
}

void attachments_delete(struct call *c)
{
    struct core_op *op = call_op(c, detached);
    if (c->dialect == DIALECT_HOSTWAY)
        op->wait = api_detach_wait(c->api);
    core_detach(op, c->param[0], c->param[1]);
}
