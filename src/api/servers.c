/* servers.c: /servers in both dialects (docs/api.md, decision D9). One body
 * shape, Nova's, with fields chosen by microversion. The lists are
 * server_list.c's. */
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

void jw_server_summary(struct jw *w, struct call *c, const struct server *s)
{
    jw_object(w, NULL);
    jw_string(w, "id", s->id);
    jw_string(w, "name", s->name);
    jw_links(w, c, "links", "servers", s->id);
    jw_end_object(w);
}

bool jw_server(struct jw *w, struct call *c, const struct server *s, bool show,
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

/* ---- show, delete ------------------------------------------------------------ */

void servers_show(struct call *c)
{
    struct server s;
    struct core_error err;
    struct jw w;
    jw_init(&w, c->arena, 2048);
    jw_object(&w, NULL);
    if (!core_server_get(&c->core, c->param[0], &s, &err) ||
        !jw_server(&w, c, &s, true, &err)) {
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
