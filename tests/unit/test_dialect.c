/* test_dialect.c: how each dialect shows what happened (api/dialect.c), and
 * Nova's request-body validation messages (api/validate.c): fault names and body
 * shapes, the Hostway superset body, py_repr, validate_object, and the
 * attachment representation by dialect and microversion. */
#include "helpers.h"

#include "api/call.h"

/* One request as alice (or auth), with an optional microversion. */
static void call(struct api_world *w, struct fake *f, enum method m, const char *path,
                 const char *body, const char *version, int status)
{
    fake_request(f, m, path, body, w->alice);
    if (version)
        fake_header(f, "OpenStack-API-Version", version);
    api_expect(w, f, status);
}

/* On a wrong message, f and the body are released before the test fails. */
static void expect_nova_error(struct fake *f, const char *name, int code, const char *message)
{
    json_t *body = res_json(f);
    json_t *inner = fault_inner(body, name);
    assert_int_equal(json_object_size(inner), 2);
    assert_int_equal(json_integer_value(json_object_get(inner, "code")), code);
    const char *got = json_string_value(json_object_get(inner, "message"));
    assert_non_null(got);
    if (strcmp(got, message) != 0) {
        char msg[1200];
        snprintf(msg, sizeof msg, "message:\n  got  \"%s\"\n  want \"%s\"", got, message);
        json_decref(body);
        fake_release(f);
        fail_msg("%s", msg);
    }
    json_decref(body);
}

static void expect_hostway_error(struct fake *f, const char *name, int code, const char *title,
                                 const char *details)
{
    json_t *body = res_json(f);
    json_t *inner = fault_inner(body, name);
    const char *k, *keys[4];
    json_t *v;
    int i = 0;
    json_object_foreach(inner, k, v) {
        if (i < 4)
            keys[i] = k;
        i++;
    }
    assert_int_equal(i, 4);
    assert_string_equal(keys[0], "message");
    assert_string_equal(keys[1], "code");
    assert_string_equal(keys[2], "details");
    assert_string_equal(keys[3], "errorid");
    assert_string_equal(json_string_value(json_object_get(inner, "message")), title);
    assert_int_equal(json_integer_value(json_object_get(inner, "code")), code);
    const char *got = json_string_value(json_object_get(inner, "details"));
    if (strcmp(got, details) != 0)
        fail_msg("details:\n  got  \"%s\"\n  want \"%s\"", got, details);
    assert_true(is_uuid4(json_string_value(json_object_get(inner, "errorid"))));
    json_decref(body);
}

/* ---- 409: "conflict" (Hostway) vs "conflictingRequest" (Nova) --------------------------- */

static void test_409_names(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    struct fake f;
    const char *hw = arena_printf(&w->ar, "/servers/%s/action", srv);
    const char *nova = arena_printf(&w->ar, "/v2.1/servers/%s/action", srv);
    call(w, &f, METHOD_POST, hw, "{\"os-stop\": null}", NULL, 202);
    assert_null(f.res.body);
    assert_int_equal(f.res.body_len, 0);
    fake_release(&f);
    const char *msg = arena_printf(&w->ar,
                                   "Cannot 'stop' instance %s while it is in vm_state stopped", srv);
    call(w, &f, METHOD_POST, hw, "{\"os-stop\": null}", NULL, 409);
    expect_hostway_error(&f, "conflict", 409, "Conflict", msg);
    fake_release(&f);
    call(w, &f, METHOD_POST, nova, "{\"os-stop\": {}}", NULL, 409);
    expect_nova_error(&f, "conflictingRequest", 409, msg);
    fake_release(&f);
}

static void test_locked_409_both(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    const char *vol = world_volume(w, "acct-a");
    struct fake f;
    fake_request(&f, METHOD_POST, arena_printf(&w->ar, "/v2.1/servers/%s/action", srv),
                 "{\"lock\": null}", w->root);
    api_expect(w, &f, 202);
    fake_release(&f);
    const char *body = arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\"}}", vol);
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments", srv),
         body, NULL, 409);
    expect_nova_error(&f, "conflictingRequest", 409,
                      arena_printf(&w->ar, "Instance %s is locked", srv));
    fake_release(&f);
    /* alice may not lift an admin's lock: 403 */
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/v2.1/servers/%s/action", srv),
         "{\"unlock\": null}", NULL, 403);
    expect_nova_error(&f, "forbidden", 403,
                      "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override "
                      "to be performed.");
    fake_release(&f);
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/servers/%s/action", srv), "{\"unlock\": null}",
         NULL, 403);
    expect_hostway_error(&f, "forbidden", 403, "Forbidden",
                         "Policy doesn't allow os_compute_api:os-lock-server:unlock:"
                         "unlock_override to be performed.");
    fake_release(&f);
}

/* ---- already attached, volume in use: docs/api.md, decision D2 ------------------------------ */

static void test_already_attached_by_dialect(void **state)
{
    struct api_world *w = *state;
    const char *s1 = world_server(w, "acct-a"), *s2 = world_server(w, "acct-a");
    const char *vol = world_volume(w, "acct-a");
    world_attach(w, "acct-a", s1, vol);
    const char *body = arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\"}}", vol);
    const char *msg = arena_printf(&w->ar,
                                   "Invalid volume: volume %s is already attached to instances: %s",
                                   vol, s1);
    struct fake f;
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/servers/%s/os-volume_attachments", s2), body,
         NULL, 409);
    expect_hostway_error(&f, "conflict", 409, "VolumeAlreadyAttached", msg);
    fake_release(&f);
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments", s2),
         body, NULL, 400);
    expect_nova_error(&f, "badRequest", 400, msg);
    fake_release(&f);

    /* deleting the attached volume: Hostway 409 VolumeInUse, Nova 400 */
    call(w, &f, METHOD_DELETE, arena_printf(&w->ar, "/volumes/%s", vol), NULL, NULL, 409);
    json_t *j = res_json(&f);
    json_t *inner = fault_inner(j, "conflict");
    assert_string_equal(json_string_value(json_object_get(inner, "message")), "VolumeInUse");
    json_decref(j);
    fake_release(&f);
    call(w, &f, METHOD_DELETE, arena_printf(&w->ar, "/v2.1/os-volumes/%s", vol), NULL, NULL, 400);
    j = res_json(&f);
    inner = fault_inner(j, "badRequest");
    assert_non_null(strstr(json_string_value(json_object_get(inner, "message")),
                           "Invalid volume: Volume status must be available"));
    json_decref(j);
    fake_release(&f);
}

/* ---- success shapes by dialect ------------------------------------------------------------------- */

static void test_attach_detach_by_dialect(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    const char *v1 = world_volume(w, "acct-a"), *v2 = world_volume(w, "acct-a");
    struct fake f;
    const char *body = arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\"}}", v1);
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments", srv),
         body, NULL, 200);
    json_t *j = res_json(&f);
    json_t *a = json_object_get(j, "volumeAttachment");
    assert_int_equal(json_object_size(a), 4);               /* the 2.1 fields */
    assert_string_equal(json_string_value(json_object_get(a, "id")), v1);
    assert_string_equal(json_string_value(json_object_get(a, "volumeId")), v1);
    assert_string_equal(json_string_value(json_object_get(a, "serverId")), srv);
    assert_string_equal(json_string_value(json_object_get(a, "device")), "/dev/vdb");
    json_decref(j);
    fake_release(&f);

    body = arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\"}}", v2);
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/servers/%s/os-volume_attachments", srv), body,
         NULL, 200);
    fake_release(&f);

    /* Hostway show: the volume, snake_case */
    call(w, &f, METHOD_GET, arena_printf(&w->ar, "/servers/%s/os-volume_attachments/%s", srv, v2),
         NULL, NULL, 200);
    j = res_json(&f);
    json_t *v = json_object_get(j, "volume");
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "id")), v2);
    assert_string_equal(json_string_value(json_object_get(v, "display_name")), v2);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "in-use");
    json_t *att = json_array_get(json_object_get(v, "attachments"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "server_id")), srv);
    assert_string_equal(json_string_value(json_object_get(att, "device")), "/dev/vdc");
    json_decref(j);
    fake_release(&f);

    /* detach: Hostway 204, Nova 202, both without a body */
    call(w, &f, METHOD_DELETE,
         arena_printf(&w->ar, "/servers/%s/os-volume_attachments/%s", srv, v2), NULL, NULL, 204);
    assert_null(f.res.body);
    assert_null(f.res.content_type);
    fake_release(&f);
    call(w, &f, METHOD_DELETE,
         arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments/%s", srv, v1), NULL, NULL,
         202);
    assert_null(f.res.body);
    fake_release(&f);

    /* detaching again: the 404 of Hostway's DetachVolumeFromServer page
     * (docs/api.md), Nova's specific text */
    call(w, &f, METHOD_DELETE,
         arena_printf(&w->ar, "/servers/%s/os-volume_attachments/%s", srv, v2), NULL, NULL, 404);
    expect_hostway_error(&f, "itemNotFound", 404, "Resource not found", "");
    fake_release(&f);
    call(w, &f, METHOD_DELETE,
         arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments/%s", srv, v1), NULL, NULL,
         404);
    expect_nova_error(&f, "itemNotFound", 404,
                      arena_printf(&w->ar, "Instance %s is not attached to volume %s", srv, v1));
    fake_release(&f);
}

static void test_attachment_fields_by_microversion(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    const char *vol = world_volume(w, "acct-a");
    world_attach(w, "acct-a", srv, vol);
    const char *path = arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments/%s", srv, vol);
    static const struct {
        const char *version;
        size_t n;
        bool id, tag, dot, new_ids;
    } cases[] = {
        {"compute 2.1", 4, true, false, false, false},
        {"compute 2.69", 4, true, false, false, false},
        {"compute 2.70", 5, true, true, false, false},
        {"compute 2.79", 6, true, true, true, false},
        {"compute 2.88", 6, true, true, true, false},
        {"compute 2.89", 7, false, true, true, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake f;
        call(w, &f, METHOD_GET, path, NULL, cases[i].version, 200);
        json_t *j = res_json(&f);
        json_t *a = json_object_get(j, "volumeAttachment");
        assert_int_equal(json_object_size(a), cases[i].n);
        assert_int_equal(json_object_get(a, "id") != NULL, cases[i].id);
        assert_int_equal(json_object_get(a, "tag") != NULL, cases[i].tag);
        assert_int_equal(json_object_get(a, "delete_on_termination") != NULL, cases[i].dot);
        assert_int_equal(json_object_get(a, "attachment_id") != NULL, cases[i].new_ids);
        assert_int_equal(json_object_get(a, "bdm_uuid") != NULL, cases[i].new_ids);
        if (cases[i].new_ids)
            assert_true(is_uuid4(json_string_value(json_object_get(a, "attachment_id"))));
        if (cases[i].tag)
            assert_true(json_is_null(json_object_get(a, "tag")));
        json_decref(j);
        fake_release(&f);
    }
}

/* ---- Nova body validation messages ------------------------------------------------------------ */

static void expect_attach_400(struct api_world *w, const char *srv, const char *version,
                              const char *body, const char *message)
{
    struct fake f;
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments", srv),
         body, version, 400);
    expect_nova_error(&f, "badRequest", 400, message);
    fake_release(&f);
}

static void test_validation_messages(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    expect_attach_400(w, srv, NULL, "{}", "'volumeAttachment' is a required property");
    expect_attach_400(w, srv, NULL, "{\"volumeattachment\": {\"volumeId\": \"v\"}}",
                      "'volumeAttachment' is a required property");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {}}",
                      "Invalid input for field/attribute volumeAttachment. Value: {}. "
                      "'volumeId' is a required property");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {\"device\": \"/dev/vdb\"}}",
                      "Invalid input for field/attribute volumeAttachment. Value: "
                      "{'device': '/dev/vdb'}. 'volumeId' is a required property");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {\"volumeId\": \"v\", \"x\": 1}}",
                      "Invalid input for field/attribute volumeAttachment. Value: "
                      "{'volumeId': 'v', 'x': 1}. Additional properties are not allowed "
                      "('x' was unexpected)");
    expect_attach_400(w, srv, NULL,
                      "{\"volumeAttachment\": {\"volumeId\": \"v\", \"a\": 1, \"b\": null}}",
                      "Invalid input for field/attribute volumeAttachment. Value: "
                      "{'volumeId': 'v', 'a': 1, 'b': None}. Additional properties are not "
                      "allowed ('a', 'b' were unexpected)");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {\"volumeId\": \"v\"}, \"x\": true}",
                      "Additional properties are not allowed ('x' was unexpected)");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {\"volumeId\": 5}}",
                      "Invalid input for field/attribute volumeId. Value: 5. "
                      "5 is not of type 'string'");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {\"volumeId\": null}}",
                      "Invalid input for field/attribute volumeId. Value: None. "
                      "None is not of type 'string'");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {\"volumeId\": [true, false]}}",
                      "Invalid input for field/attribute volumeId. Value: [True, False]. "
                      "[True, False] is not of type 'string'");
    expect_attach_400(w, srv, NULL,
                      "{\"volumeAttachment\": {\"volumeId\": \"v\", \"device\": 7}}",
                      "Invalid input for field/attribute device. Value: 7. "
                      "7 is not of type 'string', 'null'");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": []}",
                      "Invalid input for field/attribute volumeAttachment. Value: []. "
                      "[] is not of type 'object'");
    expect_attach_400(w, srv, NULL, "[]", "[] is not of type 'object'");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {\"volumeId\": \"v\"",
                      "Malformed request body");
    /* an empty body is None to Nova's validator */
    expect_attach_400(w, srv, NULL, "", "None is not of type 'object'");
    /* tag exists from 2.49, delete_on_termination from 2.79 */
    expect_attach_400(w, srv, "compute 2.48",
                      "{\"volumeAttachment\": {\"volumeId\": \"v\", \"tag\": \"t\"}}",
                      "Invalid input for field/attribute volumeAttachment. Value: "
                      "{'volumeId': 'v', 'tag': 't'}. Additional properties are not allowed "
                      "('tag' was unexpected)");
    expect_attach_400(w, srv, "compute 2.78",
                      "{\"volumeAttachment\": {\"volumeId\": \"v\", "
                      "\"delete_on_termination\": true}}",
                      "Invalid input for field/attribute volumeAttachment. Value: "
                      "{'volumeId': 'v', 'delete_on_termination': True}. Additional properties "
                      "are not allowed ('delete_on_termination' was unexpected)");
    expect_attach_400(w, srv, "compute 2.79",
                      "{\"volumeAttachment\": {\"volumeId\": \"v\", "
                      "\"delete_on_termination\": 3}}",
                      "Invalid input for field/attribute delete_on_termination. Value: 3. "
                      "3 is not of type 'boolean', 'string'");
}

static void test_validation_hostway_shape(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    struct fake f;
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/servers/%s/os-volume_attachments", srv), "{}",
         NULL, 400);
    expect_hostway_error(&f, "badRequest", 400, "Bad request",
                         "'volumeAttachment' is a required property");
    fake_release(&f);
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/servers/%s/os-volume_attachments", srv),
         "not json", NULL, 400);
    expect_hostway_error(&f, "badRequest", 400, "Bad request", "Malformed request body");
    fake_release(&f);
}

/* Regression (src/api/json.c, invalid): Nova builds "Value: %(value)s" with
 * str(ex.instance) (nova/api/validation/validators.py), so a string value is
 * shown bare ("Value: foo."), not repr()'d ("Value: 'foo'."). Only the
 * jsonschema part after it uses repr. */
static void test_validation_string_value_is_str_not_repr(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    expect_attach_400(w, srv, NULL,
                      "{\"volumeAttachment\": {\"volumeId\": \"v\", \"device\": \"foo\"}}",
                      "Invalid input for field/attribute device. Value: foo. 'foo' does not match "
                      "'(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$'");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": \"x\"}",
                      "Invalid input for field/attribute volumeAttachment. Value: x. "
                      "'x' is not of type 'object'");
}

/* Regression (src/api/json.c, body_object): jsonschema checks a schema's keywords in
 * order (type, properties, required, additionalProperties), so Nova reports a
 * problem inside volumeAttachment ("properties") before an extra key beside
 * it ("additionalProperties"). body_object checks the whole top level,
 * extra keys included, before it looks inside. */
static void test_validation_inner_error_before_top_level_extra(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    expect_attach_400(w, srv, NULL, "{\"volumeAttachment\": {}, \"x\": 1}",
                      "Invalid input for field/attribute volumeAttachment. Value: {}. "
                      "'volumeId' is a required property");
}

/* Regression (src/api/json.c, json_boolish): Nova's parameter_types.boolean is an
 * enum of True/False and the strings 'True','TRUE','true','1','ON','On','on',
 * 'YES','Yes','yes' (and their negatives). attachd
 * also takes "t", "y", "f", "n" and any mixed case ("tRuE"), where Nova
 * answers 400. */
static void test_delete_on_termination_accepts_too_much(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    static const char *const values[] = {"t", "y", "f", "n", "tRuE", "yES"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        const char *vol = world_volume(w, "acct-a");
        struct fake f;
        call(w, &f, METHOD_POST,
             arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments", srv),
             arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\", "
                                  "\"delete_on_termination\": \"%s\"}}", vol, values[i]),
             "compute 2.79", 400);
        fake_release(&f);
    }
}

static void test_delete_on_termination_strings(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    static const struct { const char *text; bool value; } ok[] = {
        {"true", true}, {"True", true}, {"TRUE", true}, {"1", true}, {"on", true}, {"YES", true},
        {"false", false}, {"0", false}, {"off", false}, {"No", false},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *vol = world_volume(w, "acct-a");
        struct fake f;
        call(w, &f, METHOD_POST,
             arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments", srv),
             arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\", "
                                  "\"delete_on_termination\": \"%s\"}}", vol, ok[i].text),
             "compute 2.79", 200);
        json_t *j = res_json(&f);
        json_t *dot = json_object_get(json_object_get(j, "volumeAttachment"),
                                      "delete_on_termination");
        assert_true(json_is_boolean(dot));
        assert_int_equal(json_is_true(dot), ok[i].value);
        json_decref(j);
        fake_release(&f);
    }
    struct fake f;
    call(w, &f, METHOD_POST, arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments", srv),
         "{\"volumeAttachment\": {\"volumeId\": \"v\", \"delete_on_termination\": \"maybe\"}}",
         "compute 2.79", 400);
    json_t *j = res_json(&f);
    json_t *inner = fault_inner(j, "badRequest");
    assert_non_null(strstr(json_string_value(json_object_get(inner, "message")),
                           "Invalid input for field/attribute delete_on_termination."));
    json_decref(j);
    fake_release(&f);
}

static void test_update_at_2_85(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    const char *vol = world_volume(w, "acct-a");
    world_attach(w, "acct-a", srv, vol);
    const char *path = arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments/%s", srv, vol);
    struct fake f;
    call(w, &f, METHOD_PUT, path,
         arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\", "
                              "\"delete_on_termination\": true}}", vol),
         "compute 2.85", 202);
    assert_null(f.res.body);
    fake_release(&f);
    call(w, &f, METHOD_GET, path, NULL, "compute 2.85", 200);
    json_t *j = res_json(&f);
    assert_true(json_is_true(json_object_get(json_object_get(j, "volumeAttachment"),
                                             "delete_on_termination")));
    json_decref(j);
    fake_release(&f);
    call(w, &f, METHOD_PUT, path,
         arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\", "
                              "\"device\": \"/dev/vdz\"}}", vol),
         "compute 2.85", 400);
    expect_nova_error(&f, "badRequest", 400, "The device property is not mutable");
    fake_release(&f);
    /* before 2.85 a PUT is a swap: admins only */
    call(w, &f, METHOD_PUT, path,
         arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\"}}", vol),
         "compute 2.84", 403);
    expect_nova_error(&f, "forbidden", 403,
                      "Policy doesn't allow os_compute_api:os-volumes-attachments:swap to be "
                      "performed.");
    fake_release(&f);
    /* ... and at 2.84 the 2.85 fields are unknown */
    call(w, &f, METHOD_PUT, path,
         arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\", "
                              "\"delete_on_termination\": true}}", vol),
         "compute 2.84", 400);
    fake_release(&f);
}

/* Regression (src/api/attachments.c, update_fields / attachments_update): Nova's
 * update_v285 schema types delete_on_termination as parameter_types.boolean,
 * which takes "true"/"false"/"1"/"yes"... as well as JSON booleans; attachd
 * declares FT_BOOLEAN (and reads it with json_is_true), so a PUT with
 * "delete_on_termination": "true" is 400 instead of 202. */
static void test_update_delete_on_termination_string(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    const char *vol = world_volume(w, "acct-a");
    world_attach(w, "acct-a", srv, vol);
    const char *path = arena_printf(&w->ar, "/v2.1/servers/%s/os-volume_attachments/%s", srv, vol);
    struct fake f;
    call(w, &f, METHOD_PUT, path,
         arena_printf(&w->ar, "{\"volumeAttachment\": {\"volumeId\": \"%s\", "
                              "\"delete_on_termination\": \"true\"}}", vol),
         "compute 2.85", 202);
    fake_release(&f);
    call(w, &f, METHOD_GET, path, NULL, "compute 2.85", 200);
    json_t *j = res_json(&f);
    assert_true(json_is_true(json_object_get(json_object_get(j, "volumeAttachment"),
                                             "delete_on_termination")));
    json_decref(j);
    fake_release(&f);
}

/* ---- reply_core_error, the fault table, 429 ----------------------------------------------------- */

struct bare {
    struct arena ar;
    struct request req;
    struct response res;
    struct call c;
};

static void bare_init(struct bare *b, enum dialect d)
{
    memset(b, 0, sizeof *b);
    arena_init(&b->ar);
    b->req = (struct request){.arena = &b->ar, .path = "/", .request_id = "req-x"};
    b->c = (struct call){.req = &b->req, .res = &b->res, .arena = &b->ar, .dialect = d,
                         .version = 1, .prefix = ""};
}

static json_t *bare_json(struct bare *b)
{
    assert_string_equal(b->res.content_type, "application/json");
    json_t *j = json_loadb(b->res.body, b->res.body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_core_error_mapping(void **state)
{
    (void)state;
    static const struct {
        enum core_code code;
        int nova_status;
        const char *nova_name;
        int hw_status;
        const char *hw_name, *hw_title;
    } cases[] = {
        {CORE_BAD_REQUEST, 400, "badRequest", 400, "badRequest", "Bad request"},
        {CORE_FORBIDDEN, 403, "forbidden", 403, "forbidden", "Forbidden"},
        {CORE_NOT_FOUND, 404, "itemNotFound", 404, "itemNotFound", "Resource not found"},
        {CORE_CONFLICT, 409, "conflictingRequest", 409, "conflict", "Conflict"},
        {CORE_ALREADY_ATTACHED, 400, "badRequest", 409, "conflict", "VolumeAlreadyAttached"},
        {CORE_VOLUME_BUSY, 400, "badRequest", 409, "conflict", "VolumeInUse"},
        {CORE_UNAVAILABLE, 503, "serviceUnavailable", 503, "serviceUnavailable",
         "Service unavailable"},
        {CORE_OK, 500, "computeFault", 500, "computeFault", "Internal server error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct core_error err = {.code = cases[i].code};
        snprintf(err.message, sizeof err.message, "reason %zu", i);
        struct bare b;
        bare_init(&b, DIALECT_NOVA);
        reply_core_error(&b.c, &err);
        assert_int_equal(b.res.status, cases[i].nova_status);
        json_t *j = bare_json(&b);
        json_t *inner = fault_inner(j, cases[i].nova_name);
        assert_int_equal(json_object_size(inner), 2);
        assert_int_equal(json_integer_value(json_object_get(inner, "code")), cases[i].nova_status);
        assert_string_equal(json_string_value(json_object_get(inner, "message")), err.message);
        json_decref(j);
        arena_release(&b.ar);

        bare_init(&b, DIALECT_HOSTWAY);
        reply_core_error(&b.c, &err);
        assert_int_equal(b.res.status, cases[i].hw_status);
        j = bare_json(&b);
        inner = fault_inner(j, cases[i].hw_name);
        assert_int_equal(json_object_size(inner), 4);
        assert_string_equal(json_string_value(json_object_get(inner, "message")),
                            cases[i].hw_title);
        assert_int_equal(json_integer_value(json_object_get(inner, "code")), cases[i].hw_status);
        assert_string_equal(json_string_value(json_object_get(inner, "details")),
                            cases[i].hw_status == 404 ? "" : err.message);
        json_decref(j);
        arena_release(&b.ar);
    }
}

static void test_fault_names(void **state)
{
    (void)state;
    static const struct { int status; const char *name; } cases[] = {
        {400, "badRequest"}, {401, "unauthorized"}, {403, "forbidden"}, {404, "itemNotFound"},
        {405, "badMethod"}, {409, "conflictingRequest"}, {413, "overLimit"}, {429, "overLimit"},
        {415, "badMediaType"}, {501, "notImplemented"}, {503, "serviceUnavailable"},
        {406, "computeFault"}, {500, "computeFault"}, {502, "computeFault"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bare b;
        bare_init(&b, DIALECT_NOVA);
        reply_error(&b.c, cases[i].status, "text %d", cases[i].status);
        assert_int_equal(b.res.status, cases[i].status);
        json_t *j = bare_json(&b);
        json_t *inner = fault_inner(j, cases[i].name);
        char want[32];
        snprintf(want, sizeof want, "text %d", cases[i].status);
        assert_string_equal(json_string_value(json_object_get(inner, "message")), want);
        json_decref(j);
        arena_release(&b.ar);
    }
}

static void test_throttled(void **state)
{
    (void)state;
    struct bare b;
    bare_init(&b, DIALECT_NOVA);
    reply_throttled(&b.c, THROTTLE_USER, 42);
    assert_int_equal(b.res.status, 429);
    assert_string_equal(res_header(&b.res, "Retry-After"), "42");
    json_t *j = bare_json(&b);
    json_t *inner = fault_inner(j, "overLimit");
    assert_int_equal(json_integer_value(json_object_get(inner, "code")), 429);
    assert_string_equal(json_string_value(json_object_get(inner, "retryAfter")), "42");
    assert_non_null(strstr(json_string_value(json_object_get(inner, "message")), "42 seconds"));
    json_decref(j);
    arena_release(&b.ar);

    bare_init(&b, DIALECT_HOSTWAY);
    reply_throttled(&b.c, THROTTLE_USER, 7);
    j = bare_json(&b);
    inner = fault_inner(j, "overLimit");
    assert_string_equal(json_string_value(json_object_get(inner, "message")), "Too many requests");
    assert_null(json_object_get(inner, "retryAfter"));
    assert_string_equal(res_header(&b.res, "Retry-After"), "7");
    json_decref(j);
    arena_release(&b.ar);
}

static void test_reply_json_and_empty(void **state)
{
    (void)state;
    struct bare b;
    bare_init(&b, DIALECT_NOVA);
    reply_json(&b.c, 200, json_pack("{s:s, s:i, s:[]}", "b", "x", "a", 1, "c"));
    assert_int_equal(b.res.status, 200);
    assert_int_equal(b.res.body_len, strlen("{\"b\":\"x\",\"a\":1,\"c\":[]}"));
    assert_memory_equal(b.res.body, "{\"b\":\"x\",\"a\":1,\"c\":[]}", b.res.body_len);
    assert_int_equal(b.res.body[b.res.body_len], '\0');
    reply_empty(&b.c, 204);
    assert_int_equal(b.res.status, 204);
    assert_null(b.res.body);
    assert_null(b.res.content_type);
    assert_int_equal(b.res.body_len, 0);
    /* headers beyond the table's room are dropped, not overflowed */
    for (int i = 0; i < API_MAX_HEADERS + 5; i++)
        api_add_header(&b.res, "X-Test", "v");
    assert_int_equal(b.res.n_headers, API_MAX_HEADERS);
    arena_release(&b.ar);
}

/* ---- py_repr ------------------------------------------------------------------------------ */

static void repr_is(const char *json, const char *want)
{
    json_error_t e;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", json, e.text);
    struct arena ar;
    arena_init(&ar);
    const char *got = py_repr(&ar, v);
    bool same = !strcmp(got, want);
    if (!same) {
        char msg[600];
        snprintf(msg, sizeof msg, "py_repr(%s) = %s, want %s", json, got, want);
        json_decref(v);
        arena_release(&ar);
        fail_msg("%s", msg);
    }
    json_decref(v);
    arena_release(&ar);
}

static void test_py_repr_scalars(void **state)
{
    (void)state;
    repr_is("null", "None");
    repr_is("true", "True");
    repr_is("false", "False");
    repr_is("0", "0");
    repr_is("-17", "-17");
    repr_is("9007199254740993", "9007199254740993");
    repr_is("1.5", "1.5");
    repr_is("2.0", "2.0");
    repr_is("-0.25", "-0.25");
    repr_is("1e22", "1e+22");
}

static void test_py_repr_strings(void **state)
{
    (void)state;
    repr_is("\"abc\"", "'abc'");
    repr_is("\"\"", "''");
    repr_is("\"it's\"", "\"it's\"");
    repr_is("\"say \\\"hi\\\"\"", "'say \"hi\"'");
    repr_is("\"it's \\\"x\\\"\"", "'it\\'s \"x\"'");
    repr_is("\"a\\\\b\"", "'a\\\\b'");
    repr_is("\"l1\\nl2\\tx\\r\"", "'l1\\nl2\\tx\\r'");
    repr_is("\"\\u0001\\u001f\\u007f\"", "'\\x01\\x1f\\x7f'");
    repr_is("\"caf\\u00e9 \\u20ac\"", "'caf\xc3\xa9 \xe2\x82\xac'");
}

static void test_py_repr_containers(void **state)
{
    (void)state;
    repr_is("[]", "[]");
    repr_is("{}", "{}");
    repr_is("[1, \"a\", null, true]", "[1, 'a', None, True]");
    repr_is("{\"a\": 1}", "{'a': 1}");
    repr_is("{\"volumeId\": \"v\", \"x\": {\"y\": [false, null, \"it's\"]}}",
            "{'volumeId': 'v', 'x': {'y': [False, None, \"it's\"]}}");
    repr_is("{\"k'\": \"v\"}", "{\"k'\": 'v'}");
    repr_is("[[[]], {}]", "[[[]], {}]");
}

static void test_py_repr_bounded(void **state)
{
    (void)state;
    char json[2100];
    json[0] = '"';
    memset(json + 1, 'a', 2000);
    json[2001] = '"';
    json[2002] = '\0';
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    struct arena ar;
    arena_init(&ar);
    const char *r = py_repr(&ar, v);
    assert_int_equal(strlen(r), 503);
    assert_string_equal(r + 500, "...");
    assert_int_equal(r[0], '\'');
    json_decref(v);
    arena_release(&ar);
}

/* Regression (src/api/json.c, repr): Python's repr(float) is the shortest text that
 * reads back as the same double (and uses exponent form from 1e16), while
 * attachd prints "%.17g": 0.1 comes out as 0.10000000000000001, so a message
 * such as "Value: 0.1. 0.1 is not of type 'string'" differs from Nova's. */
static void test_py_repr_float_shortest(void **state)
{
    (void)state;
    repr_is("0.1", "0.1");
    repr_is("[0.1, 0.2]", "[0.1, 0.2]");
    repr_is("1e16", "1e+16");
    repr_is("123456789.123", "123456789.123");
    repr_is("1e300", "1e+300");
}

/* ---- validate_object directly ------------------------------------------------------------------ */

static bool no_x(const char *s)
{
    return !strchr(s, 'x');
}

static const struct field fields[] = {
    {.name = "name", .types = FT_STRING, .min_len = 2, .max_len = 4, .required = true},
    {.name = "count", .types = FT_INTEGER | FT_NULL},
    {.name = "word", .types = FT_STRING, .check = no_x, .pattern = "^[^x]*$"},
    {.name = "plain", .types = FT_STRING, .check = no_x},
    {.name = "newer", .types = FT_BOOLEAN, .since = 10},
    {.name = "older", .types = FT_BOOLEAN, .until = 5},
    {.name = "num", .types = FT_INTISH},
    {0},
};

static void validate_ok(int version, const char *json)
{
    struct bare b;
    bare_init(&b, DIALECT_NOVA);
    b.c.version = version;
    json_t *obj = json_loads(json, 0, NULL);
    assert_non_null(obj);
    bool ok = validate_object(&b.c, obj, "thing", fields);
    char body[300] = "";
    if (!ok)
        snprintf(body, sizeof body, "%.*s", (int)b.res.body_len, b.res.body);
    json_decref(obj);
    arena_release(&b.ar);
    if (!ok)
        fail_msg("validate_object(%s) refused: %s", json, body);
}

/* Expect a 400 whose message is "Invalid input for field/attribute <field>.
 * Value: <v>. <tail>". The Value part is not compared here: how a string
 * value is shown is test_validation_string_value_is_str_not_repr's business. */
static void validate_bad(int version, const char *json, const char *field, const char *tail)
{
    struct bare b;
    bare_init(&b, DIALECT_NOVA);
    b.c.version = version;
    json_t *obj = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(obj);
    bool ok = validate_object(&b.c, obj, "thing", fields);
    json_decref(obj);
    if (ok) {
        arena_release(&b.ar);
        fail_msg("validate_object(%s) accepted", json);
    }
    assert_int_equal(b.res.status, 400);
    json_t *j = bare_json(&b);
    char got[600];
    snprintf(got, sizeof got, "%s",
             json_string_value(json_object_get(json_object_get(j, "badRequest"), "message")));
    json_decref(j);
    arena_release(&b.ar);
    char head[100];
    snprintf(head, sizeof head, "Invalid input for field/attribute %s. Value: ", field);
    size_t lg = strlen(got), lt = strlen(tail);
    bool good = !strncmp(got, head, strlen(head)) && lg >= strlen(head) + lt &&
                !strcmp(got + lg - lt, tail) && (lt == 0 || !strncmp(got + lg - lt - 2, ". ", 2));
    if (!good)
        fail_msg("validate_object(%s):\n  got  \"%s\"\n  want \"%s... %s\"", json, got, head,
                 tail);
}

static void test_validate_object(void **state)
{
    (void)state;
    validate_ok(1, "{\"name\": \"ab\"}");
    validate_ok(1, "{\"name\": \"abcd\", \"count\": null, \"word\": \"ok\", \"num\": \"12\"}");
    validate_ok(1, "{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}");  /* 4 characters */
    validate_ok(10, "{\"name\": \"ab\", \"newer\": true}");
    validate_ok(5, "{\"name\": \"ab\", \"older\": false}");
    validate_ok(1, "{\"name\": \"ab\", \"num\": 12}");

    validate_bad(1, "{}", "thing", "'name' is a required property");
    validate_bad(1, "{\"name\": \"a\"}", "name", "'a' is too short");
    validate_bad(1, "{\"name\": \"abcde\"}", "name", "'abcde' is too long");
    validate_bad(1, "{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", "name",
                 "'\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9' is too long");
    validate_bad(1, "{\"name\": \"ab\", \"count\": \"3\"}", "count",
                 "'3' is not of type 'integer', 'null'");
    validate_bad(1, "{\"name\": \"ab\", \"count\": 1.5}", "count",
                 "1.5 is not of type 'integer', 'null'");
    validate_bad(1, "{\"name\": \"ab\", \"word\": \"box\"}", "word",
                 "'box' does not match '^[^x]*$'");
    validate_bad(1, "{\"name\": \"ab\", \"plain\": \"x\"}", "plain", "'x' is not valid");
    validate_bad(9, "{\"name\": \"ab\", \"newer\": true}", "thing",
                 "Additional properties are not allowed ('newer' was unexpected)");
    validate_bad(6, "{\"name\": \"ab\", \"older\": true}", "thing",
                 "Additional properties are not allowed ('older' was unexpected)");
    validate_bad(1, "{\"name\": \"ab\", \"num\": \"-1\"}", "num", "");
    validate_bad(1, "{\"name\": \"ab\", \"num\": true}", "num", "");
    /* a present field's error comes before a missing required one */
    validate_bad(1, "{\"count\": true}", "count", "True is not of type 'integer', 'null'");
    validate_bad(1, "\"str\"", "thing", "'str' is not of type 'object'");

    /* the exact text where no string value is involved */
    struct bare b;
    bare_init(&b, DIALECT_NOVA);
    json_t *obj = json_loads("{\"count\": 2, \"name\": \"ab\", \"zz\": [1]}", 0, NULL);
    assert_false(validate_object(&b.c, obj, "thing", fields));
    json_t *j = bare_json(&b);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "badRequest"), "message")),
        "Invalid input for field/attribute thing. Value: {'count': 2, 'name': 'ab', 'zz': [1]}. "
        "Additional properties are not allowed ('zz' was unexpected)");
    json_decref(j);
    json_decref(obj);
    arena_release(&b.ar);
    /* without a name for the object (the top level), the bare jsonschema text */
    bare_init(&b, DIALECT_NOVA);
    obj = json_loads("{\"name\": \"ab\", \"q\": 1}", 0, NULL);
    assert_false(validate_object(&b.c, obj, NULL, fields));
    j = bare_json(&b);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "badRequest"), "message")),
        "Additional properties are not allowed ('q' was unexpected)");
    json_decref(j);
    json_decref(obj);
    arena_release(&b.ar);
}

static void test_json_boolish(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "True", "TRUE", "1", "on", "On", "ON", "yes", "Yes",
                                      "YES"};
    static const char *const no[] = {"false", "False", "FALSE", "0", "off", "Off", "OFF", "no",
                                     "No", "NO"};
    bool b;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        json_t *v = json_string(yes[i]);
        b = false;
        assert_true(json_boolish(v, &b));
        assert_true(b);
        json_decref(v);
        v = json_string(no[i]);
        b = true;
        assert_true(json_boolish(v, &b));
        assert_false(b);
        json_decref(v);
    }
    b = false;
    assert_true(json_boolish(json_true(), &b));
    assert_true(b);
    assert_true(json_boolish(json_false(), &b));
    assert_false(b);
    json_t *v = json_integer(1);
    assert_false(json_boolish(v, &b));
    json_decref(v);
    v = json_string("maybe");
    assert_false(json_boolish(v, &b));
    json_decref(v);
    v = json_string("");
    assert_false(json_boolish(v, &b));
    json_decref(v);
    assert_false(json_boolish(json_null(), &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_409_names),
        cmocka_unit_test(test_locked_409_both),
        cmocka_unit_test(test_already_attached_by_dialect),
        cmocka_unit_test(test_attach_detach_by_dialect),
        cmocka_unit_test(test_attachment_fields_by_microversion),
        cmocka_unit_test(test_validation_messages),
        cmocka_unit_test(test_validation_hostway_shape),
        cmocka_unit_test(test_validation_string_value_is_str_not_repr),
        cmocka_unit_test(test_validation_inner_error_before_top_level_extra),
        cmocka_unit_test(test_delete_on_termination_accepts_too_much),
        cmocka_unit_test(test_delete_on_termination_strings),
        cmocka_unit_test(test_update_at_2_85),
        cmocka_unit_test(test_update_delete_on_termination_string),
        cmocka_unit_test(test_core_error_mapping),
        cmocka_unit_test(test_fault_names),
        cmocka_unit_test(test_throttled),
        cmocka_unit_test(test_reply_json_and_empty),
        cmocka_unit_test(test_py_repr_scalars),
        cmocka_unit_test(test_py_repr_strings),
        cmocka_unit_test(test_py_repr_containers),
        cmocka_unit_test(test_py_repr_bounded),
        cmocka_unit_test(test_py_repr_float_shortest),
        cmocka_unit_test(test_validate_object),
        cmocka_unit_test(test_json_boolish),
    };
    return cmocka_run_group_tests(tests, api_group_setup, api_group_teardown);
}
