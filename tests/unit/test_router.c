/* test_router.c: api_handle() from path to handler (api/router.c) with a fake
 * request against a real store: version discovery without credentials, 401
 * before any lookup, account prefixes, 404 / 405, microversion negotiation
 * and its headers, request ids. */
#include "helpers.h"

#include "api/call.h"

static const char seed_401[] =
    "401 Unauthorized\n"
    "This server could not verify that you are authorized to\n"
    "access the document you requested.  Either you supplied the\n"
    "wrong credentials (e.g., bad password), or your browser\n"
    "does not understand how to supply the credentials required.\n";

static void expect_request_ids(struct fake *f)
{
    const char *a = res_header(&f->res, "x-openstack-request-id");
    const char *b = res_header(&f->res, "x-compute-request-id");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, f->request_id);
    assert_string_equal(b, f->request_id);
    assert_int_equal(strncmp(a, "req-", 4), 0);
    assert_true(is_uuid4(a + 4));
}

/* GET path as `auth` and expect status (the body is not looked at). */
static void expect_status(struct api_world *w, enum method m, const char *path, const char *auth,
                          int status)
{
    struct fake f;
    fake_request(&f, m, path, NULL, auth);
    api_expect(w, &f, status);
    fake_release(&f);
}

/* A Nova error body, exactly. */
static void expect_nova_error(struct fake *f, const char *name, int code, const char *message)
{
    json_t *body = res_json(f);
    json_t *inner = fault_inner(body, name);
    assert_int_equal(json_object_size(inner), 2);
    assert_int_equal(json_integer_value(json_object_get(inner, "code")), code);
    assert_string_equal(json_string_value(json_object_get(inner, "message")), message);
    json_decref(body);
}

/* ---- version discovery ------------------------------------------------------------- */

static void test_discovery_root_without_auth(void **state)
{
    struct api_world *w = *state;
    struct fake f;
    fake_request(&f, METHOD_GET, "/", NULL, NULL);
    fake_header(&f, "Host", "api.example.test:8774");
    api_expect(w, &f, 200);
    expect_request_ids(&f);
    json_t *body = res_json(&f);
    json_t *v = json_array_get(json_object_get(body, "versions"), 0);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "id")), "v2.1");
    assert_string_equal(json_string_value(json_object_get(v, "status")), "CURRENT");
    assert_string_equal(json_string_value(json_object_get(v, "version")), "2.89");
    assert_string_equal(json_string_value(json_object_get(v, "min_version")), "2.1");
    assert_string_equal(json_string_value(json_object_get(v, "updated")), "2013-07-23T11:33:21Z");
    json_t *link = json_array_get(json_object_get(v, "links"), 0);
    assert_string_equal(json_string_value(json_object_get(link, "rel")), "self");
    assert_string_equal(json_string_value(json_object_get(link, "href")),
                        "http://api.example.test:8774/v2.1/");
    /* discovery is not versioned */
    assert_null(res_header(&f.res, "OpenStack-API-Version"));
    json_decref(body);
    fake_release(&f);
}

static void test_discovery_v21(void **state)
{
    struct api_world *w = *state;
    static const char *const paths[] = {"/v2.1", "/v2.1/"};
    for (int i = 0; i < 2; i++) {
        struct fake f;
        fake_request(&f, METHOD_GET, paths[i], NULL, NULL);
        fake_header(&f, "Host", "cloud.test");
        api_expect(w, &f, 200);
        json_t *body = res_json(&f);
        json_t *v = json_object_get(body, "version");
        assert_string_equal(json_string_value(json_object_get(v, "id")), "v2.1");
        assert_string_equal(json_string_value(json_object_get(v, "version")), "2.89");
        json_t *links = json_object_get(v, "links");
        assert_int_equal(json_array_size(links), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(links, 0), "href")),
                            "http://cloud.test/v2.1/");
        assert_string_equal(json_string_value(json_object_get(json_array_get(links, 1), "rel")),
                            "describedby");
        json_t *mt = json_array_get(json_object_get(v, "media-types"), 0);
        assert_string_equal(json_string_value(json_object_get(mt, "type")),
                            "application/vnd.openstack.compute+json;version=2.1");
        json_decref(body);
        fake_release(&f);
    }
}

static void test_discovery_host_fallback(void **state)
{
    struct api_world *w = *state;
    char longhost[300];
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    const char *hosts[] = {NULL, "", "evil.test/path", "a b", "x\"y", "<h>", "a\\b", longhost,
                           "bad\xff"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        struct fake f;
        fake_request(&f, METHOD_GET, "/", NULL, NULL);
        if (hosts[i])
            fake_header(&f, "Host", hosts[i]);
        api_expect(w, &f, 200);
        json_t *body = res_json(&f);
        json_t *v = json_array_get(json_object_get(body, "versions"), 0);
        json_t *link = json_array_get(json_object_get(v, "links"), 0);
        assert_string_equal(json_string_value(json_object_get(link, "href")),
                            "http://localhost/v2.1/");
        json_decref(body);
        fake_release(&f);
    }
    /* a host with a port or an IPv6 literal is kept */
    struct fake f;
    fake_request(&f, METHOD_GET, "/v2.1", NULL, NULL);
    fake_header(&f, "Host", "[::1]:8774");
    api_expect(w, &f, 200);
    json_t *body = res_json(&f);
    json_t *link = json_array_get(json_object_get(json_object_get(body, "version"), "links"), 0);
    assert_string_equal(json_string_value(json_object_get(link, "href")), "http://[::1]:8774/v2.1/");
    json_decref(body);
    fake_release(&f);
}

static void test_discovery_head_and_other_methods(void **state)
{
    struct api_world *w = *state;
    expect_status(w, METHOD_HEAD, "/", NULL, 200);
    expect_status(w, METHOD_HEAD, "/v2.1", NULL, 200);
    /* only GET and HEAD are discovery: anything else wants credentials */
    expect_status(w, METHOD_POST, "/", NULL, 401);
    expect_status(w, METHOD_DELETE, "/v2.1/", NULL, 401);
}

/* ---- 401 ----------------------------------------------------------------------------- */

/* The seed's 401, byte for byte, with its challenge and the request ids. */
static void expect_seed_401(struct fake *f)
{
    assert_int_equal(f->res.status, 401);
    assert_non_null(f->res.content_type);
    assert_string_equal(f->res.content_type, "text/plain; charset=UTF-8");
    assert_int_equal(f->res.body_len, sizeof seed_401 - 1);
    assert_memory_equal(f->res.body, seed_401, sizeof seed_401 - 1);
    const char *www = res_header(&f->res, "WWW-Authenticate");
    assert_non_null(www);
    assert_string_equal(www, "Basic realm=\"attachd\"");
    expect_request_ids(f);
}

static void expect_401(struct api_world *w, enum method m, const char *path, const char *auth)
{
    struct fake f;
    fake_request(&f, m, path, NULL, auth);
    api_expect(w, &f, 401);
    expect_seed_401(&f);
    fake_release(&f);
}

static void test_401_missing_authorization(void **state)
{
    struct api_world *w = *state;
    expect_401(w, METHOD_GET, "/servers", NULL);
    expect_401(w, METHOD_GET, "/v2.1/servers", NULL);
    expect_401(w, METHOD_GET, "/accounts/acct-a/flexcloud/servers", NULL);
    expect_401(w, METHOD_DELETE, "/servers/x/os-volume_attachments/y", NULL);
    /* before any lookup: an unknown path or account is 401, not 404 */
    expect_401(w, METHOD_GET, "/no/such/path", NULL);
    expect_401(w, METHOD_GET, "/accounts/ghost/flexcloud/servers", NULL);
    expect_401(w, METHOD_GET, "/v2.1/ghost/servers", NULL);
}

static void test_401_bad_credentials(void **state)
{
    struct api_world *w = *state;
    expect_401(w, METHOD_GET, "/servers", basic_header(&w->ar, "alice", "wrong"));
    expect_401(w, METHOD_GET, "/servers/unknown", basic_header(&w->ar, "nobody", "x"));
    expect_401(w, METHOD_GET, "/v2.1/servers", "Bearer abc");
    expect_401(w, METHOD_GET, "/v2.1/servers", "Basic !!!");
    expect_401(w, METHOD_GET, "/v2.1/servers", "");
}

/* ---- credentials before the body (api_head()) ----------------------------------------- */

/* api_head() on a request with a body, to its verdict. */
static enum api_status head_verdict(struct api_world *w, struct fake *f)
{
    int base = f->suspended;
    enum api_status st = api_head(w->api, &f->req, &f->res);
    return fake_settle(w->api, f, base, st);
}

static void expect_head_refused(struct api_world *w, const char *path, const char *auth)
{
    struct fake f;
    fake_request(&f, METHOD_POST, path, "{}", auth);
    assert_int_equal(head_verdict(w, &f), API_DONE);
    expect_seed_401(&f);
    fake_release(&f);
}

static void test_head_refuses_before_the_body(void **state)
{
    struct api_world *w = *state;
    expect_head_refused(w, "/servers", NULL);
    expect_head_refused(w, "/v2.1/servers", NULL);
    expect_head_refused(w, "/v2.1/servers", "Basic !!!");
    /* a password checked on a verifier thread: the call suspends at its head */
    struct fake f;
    fake_request(&f, METHOD_POST, "/v2.1/servers", "{}",
                 basic_header(&w->ar, "alice", "not-alice-pw"));
    assert_int_equal(head_verdict(w, &f), API_DONE);
    expect_seed_401(&f);
    assert_int_equal(f.suspended, 1);
    fake_release(&f);
    /* before any lookup, as without a body: an unknown account is 401 */
    expect_head_refused(w, "/accounts/ghost/flexcloud/servers", NULL);
}

static void test_head_admits_good_credentials(void **state)
{
    struct api_world *w = *state;
    /* good credentials: nothing answered, the body is read, and the request
     * then runs as any other (here to its body's 400, past its credentials) */
    struct fake f;
    fake_request(&f, METHOD_POST, "/v2.1/servers", "{}", w->alice);
    assert_int_equal(head_verdict(w, &f), API_ADMITTED);
    assert_int_equal(f.res.status, 0);
    api_expect(w, &f, 400);
    fake_release(&f);
}

static void test_head_answers_paths_without_credentials(void **state)
{
    struct api_world *w = *state;
    /* their answers need no body: given from the head, the body unread */
    static const struct { const char *path; int status; } open_paths[] = {
        {"/", 200}, {"/v2.1", 200}, {"/v3", 200}, {"/image", 300}, {"/healthcheck", 200},
    };
    for (size_t i = 0; i < sizeof open_paths / sizeof open_paths[0]; i++) {
        struct fake f;
        fake_request(&f, METHOD_GET, open_paths[i].path, "{}", NULL);
        assert_int_equal(head_verdict(w, &f), API_DONE);
        assert_int_equal(f.res.status, open_paths[i].status);
        expect_request_ids(&f);
        fake_release(&f);
    }
}

/* ---- 404 ---------------------------------------------------------------------------- */

/* Hostway 404: keys message, code, details, errorid in that order. Returns the errorid. */
static char *expect_hostway_404(struct api_world *w, const char *path)
{
    struct fake f;
    fake_request(&f, METHOD_GET, path, NULL, w->alice);
    api_expect(w, &f, 404);
    expect_request_ids(&f);
    const char *text = res_body(&f);
    static const char prefix[] =
        "{\"itemNotFound\":{\"message\":\"Resource not found\",\"code\":404,\"details\":\"\","
        "\"errorid\":\"";
    if (strncmp(text, prefix, sizeof prefix - 1) != 0)
        fail_msg("%s: body %s", path, text);
    json_t *body = res_json(&f);
    json_t *inner = fault_inner(body, "itemNotFound");
    const char *keys[4], *k;
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
    assert_int_equal(json_integer_value(json_object_get(inner, "code")), 404);
    const char *errorid = json_string_value(json_object_get(inner, "errorid"));
    assert_true(is_uuid4(errorid));
    char *copy = strdup(errorid);
    json_decref(body);
    fake_release(&f);
    return copy;
}

static void test_404_hostway_shape(void **state)
{
    struct api_world *w = *state;
    char *e1 = expect_hostway_404(w, "/nothing");
    char *e2 = expect_hostway_404(w, "/nothing");
    assert_string_not_equal(e1, e2);                /* a fresh errorid per error */
    free(e1);
    free(e2);
    free(expect_hostway_404(w, "/servers/x/y/z"));
    free(expect_hostway_404(w, "/servers/nope"));   /* a core 404 looks the same */
    free(expect_hostway_404(w, "/accounts/acct-a/flexcloud/nothing"));
}

static void test_404_nova_shape(void **state)
{
    struct api_world *w = *state;
    static const char *const paths[] = {
        "/v2.1/servers/x/nothing", "/v2.1/os-nothing", "/v2.1/acct-a/servers/x/y/z",
        "/v2.1/extensions", "/v2.1/flavors/1/os-flavor-access",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct fake f;
        fake_request(&f, METHOD_GET, paths[i], NULL, w->alice);
        api_expect(w, &f, 404);
        assert_string_equal(res_body(&f),
                            "{\"itemNotFound\":{\"code\":404,"
                            "\"message\":\"The resource could not be found.\"}}");
        fake_release(&f);
    }
    struct fake f;
    fake_request(&f, METHOD_GET, "/v2.1/servers/nope", NULL, w->alice);
    api_expect(w, &f, 404);
    expect_nova_error(&f, "itemNotFound", 404, "Instance nope could not be found.");
    fake_release(&f);
}

static void test_404_unroutable_paths(void **state)
{
    struct api_world *w = *state;
    expect_status(w, METHOD_GET, "/servers//x", w->alice, 404);
    expect_status(w, METHOD_GET, "//", w->alice, 404);
    expect_status(w, METHOD_GET, "servers", w->alice, 404);
    expect_status(w, METHOD_GET, "", w->alice, 404);
    expect_status(w, METHOD_GET, "/accounts", w->alice, 404);
    expect_status(w, METHOD_GET, "/accounts/acct-a", w->alice, 404);
    expect_status(w, METHOD_GET, "/accounts/acct-a/flexcloud", w->alice, 404);
    expect_status(w, METHOD_GET, "/accounts/acct-a/other/servers", w->alice, 404);
    expect_status(w, METHOD_GET, "/os-volumes", w->alice, 404);       /* Nova-only route */
    expect_status(w, METHOD_GET, "/v2.1/acct-a/volumes", w->alice, 404); /* Hostway-only */
    /* 16 segments are fine to route (and not found), 17 are not routable at all */
    expect_status(w, METHOD_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", w->alice, 404);
    expect_status(w, METHOD_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", w->alice, 404);
    /* a single trailing slash is ignored */
    expect_status(w, METHOD_GET, "/servers/", w->alice, 200);
    expect_status(w, METHOD_GET, "/v2.1/servers/", w->alice, 200);
}

/* ids are ASCII (docs/api.md, decision D5); a path segment that is not even UTF-8 names nothing,
 * and the 404 is still well-formed JSON. */
static void test_non_utf8_id_is_404(void **state)
{
    struct api_world *w = *state;
    struct fake f;
    fake_request(&f, METHOD_GET, "/v2.1/servers/\xff\xfe", NULL, w->alice);
    api_expect(w, &f, 404);
    expect_nova_error(&f, "itemNotFound", 404, "The resource could not be found.");
    fake_release(&f);
    fake_request(&f, METHOD_DELETE, "/servers/ok/os-volume_attachments/\xc3", NULL, w->alice);
    api_expect(w, &f, 404);
    json_t *body = res_json(&f);
    fault_inner(body, "itemNotFound");
    json_decref(body);
    fake_release(&f);
}

static void test_routes_match_exactly(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    expect_status(w, METHOD_GET, "/servers", w->alice, 200);
    expect_status(w, METHOD_GET, "/servers/detail", w->alice, 200);  /* not servers/{id} */
    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/servers/%s", srv), w->alice, 200);
    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/servers/%s/os-volume_attachments", srv),
                  w->alice, 200);
    expect_status(w, METHOD_GET, "/volumes", w->alice, 200);
    expect_status(w, METHOD_GET, "/volumes/detail", w->alice, 200);
    expect_status(w, METHOD_GET, "/v2.1/os-volumes", w->alice, 200);
    expect_status(w, METHOD_GET, "/v2.1/os-volumes/detail", w->alice, 200);
    expect_status(w, METHOD_GET, "/SERVERS", w->alice, 404);          /* case matters */
    expect_status(w, METHOD_GET, "/serversx", w->alice, 404);
}

/* ---- 405 ------------------------------------------------------------------------------ */

static void expect_405(struct api_world *w, enum method m, const char *path, const char *allow)
{
    struct fake f;
    fake_request(&f, m, path, NULL, w->alice);
    api_expect(w, &f, 405);
    const char *got = res_header(&f.res, "Allow");
    assert_non_null(got);
    assert_string_equal(got, allow);
    fake_release(&f);
}

static void test_405_allow_header(void **state)
{
    struct api_world *w = *state;
    expect_405(w, METHOD_DELETE, "/servers", "GET, HEAD, POST");
    expect_405(w, METHOD_PUT, "/servers/x", "GET, HEAD, DELETE");
    expect_405(w, METHOD_GET, "/servers/x/action", "POST");
    expect_405(w, METHOD_PATCH, "/servers", "GET, HEAD, POST");
    expect_405(w, METHOD_OTHER, "/servers/x/os-volume_attachments/y", "GET, HEAD, PUT, DELETE");
    expect_405(w, METHOD_POST, "/v2.1/servers/detail", "GET, HEAD");
    expect_405(w, METHOD_PUT, "/v2.1/os-volumes", "GET, HEAD, POST");
}

static void test_405_bodies(void **state)
{
    struct api_world *w = *state;
    struct fake f;
    fake_request(&f, METHOD_DELETE, "/v2.1/servers", NULL, w->alice);
    api_expect(w, &f, 405);
    expect_nova_error(&f, "badMethod", 405,
                      "The method specified is not allowed for this resource.");
    fake_release(&f);

    fake_request(&f, METHOD_DELETE, "/servers", NULL, w->alice);
    api_expect(w, &f, 405);
    json_t *body = res_json(&f);
    json_t *inner = fault_inner(body, "badMethod");
    assert_string_equal(json_string_value(json_object_get(inner, "message")), "Method not allowed");
    assert_string_equal(json_string_value(json_object_get(inner, "details")),
                        "The method specified is not allowed for this resource.");
    json_decref(body);
    fake_release(&f);
}

/* ---- accounts in the path (docs/api.md, decisions D1 and D6) ---------------------------- */

static int count_servers(struct api_world *w, const char *path, const char *auth,
                         const char *want_id)
{
    struct fake f;
    fake_request(&f, METHOD_GET, path, NULL, auth);
    api_expect(w, &f, 200);
    json_t *body = res_json(&f);
    json_t *list = json_object_get(body, "servers");
    assert_true(json_is_array(list));
    int n = (int)json_array_size(list);
    bool seen = want_id == NULL;
    for (int i = 0; i < n; i++)
        if (want_id && !strcmp(json_string_value(json_object_get(json_array_get(list, i), "id")),
                               want_id))
            seen = true;
    if (!seen)
        fail_msg("%s: %s not listed", path, want_id);
    json_decref(body);
    fake_release(&f);
    return n;
}

static void test_account_prefix_own(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    count_servers(w, "/accounts/acct-a/flexcloud/servers", w->alice, srv);
    count_servers(w, "/v2.1/acct-a/servers", w->alice, srv);
    count_servers(w, "/servers", w->alice, srv);
    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/accounts/acct-a/flexcloud/servers/%s", srv),
                  w->alice, 200);
    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/v2.1/acct-a/servers/%s", srv), w->alice,
                  200);
}

static void test_account_prefix_other_is_404(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    /* bob, a member of acct-b, names acct-a: 404 as if it did not exist */
    struct fake f;
    fake_request(&f, METHOD_GET, "/accounts/acct-a/flexcloud/servers", NULL, w->bob);
    api_expect(w, &f, 404);
    json_t *body = res_json(&f);
    json_t *inner = fault_inner(body, "itemNotFound");
    assert_string_equal(json_string_value(json_object_get(inner, "message")), "Resource not found");
    json_decref(body);
    fake_release(&f);

    fake_request(&f, METHOD_GET, "/v2.1/acct-a/servers", NULL, w->bob);
    api_expect(w, &f, 404);
    expect_nova_error(&f, "itemNotFound", 404, "The resource could not be found.");
    fake_release(&f);

    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/accounts/acct-a/flexcloud/servers/%s", srv),
                  w->bob, 404);
    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/servers/%s", srv), w->bob, 404);
    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/v2.1/servers/%s", srv), w->bob, 404);
    expect_status(w, METHOD_GET, "/accounts/ghost/flexcloud/servers", w->bob, 404);
    /* an account's name is not its id */
    expect_status(w, METHOD_GET, "/accounts/alpha/flexcloud/servers", w->alice, 404);
    /* and bob does not see alice's server in his own list */
    assert_int_equal(count_servers(w, "/servers", w->bob, NULL), 0);
}

static void test_account_prefix_admin(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    count_servers(w, "/accounts/acct-a/flexcloud/servers", w->root, srv);
    count_servers(w, "/v2.1/acct-a/servers", w->root, srv);
    expect_status(w, METHOD_GET, arena_printf(&w->ar, "/servers/%s", srv), w->root, 200);
    /* an account that does not exist is 404 for an admin too, by id only */
    expect_status(w, METHOD_GET, "/accounts/ghost/flexcloud/servers", w->root, 404);
    expect_status(w, METHOD_GET, "/accounts/alpha/flexcloud/servers", w->root, 404);
    expect_status(w, METHOD_GET, "/v2.1/ghost/servers", w->root, 404);
    /* a server created through an account's prefix belongs to that account */
    struct fake f;
    fake_request(&f, METHOD_POST, "/accounts/acct-b/flexcloud/servers",
                 "{\"server\": {\"name\": \"made-by-root\", \"flavorRef\": \"1\", "
                 "\"imageRef\": \"img\"}}", w->root);
    api_expect(w, &f, 202);
    json_t *body = res_json(&f);
    const char *id = json_string_value(json_object_get(json_object_get(body, "server"), "id"));
    assert_true(is_uuid4(id));
    count_servers(w, "/servers", w->bob, id);
    json_decref(body);
    fake_release(&f);
}

/* ---- microversions -------------------------------------------------------------------------- */

static void expect_echo(struct fake *f, const char *version)
{
    const char *std = res_header(&f->res, "OpenStack-API-Version");
    const char *legacy = res_header(&f->res, "X-OpenStack-Nova-API-Version");
    const char *vary = res_header(&f->res, "Vary");
    if (!version) {
        assert_null(std);
        assert_null(legacy);
        assert_null(vary);
        return;
    }
    assert_non_null(std);
    assert_non_null(legacy);
    assert_non_null(vary);
    char want[32];
    snprintf(want, sizeof want, "compute %s", version);
    assert_string_equal(std, want);
    assert_string_equal(legacy, version);
    assert_non_null(strcasestr(vary, "OpenStack-API-Version"));
    assert_non_null(strcasestr(vary, "X-OpenStack-Nova-API-Version"));
}

static void mv_request(struct api_world *w, struct fake *f, const char *path, const char *standard,
                       const char *legacy, int status)
{
    fake_request(f, METHOD_GET, path, NULL, w->alice);
    if (standard)
        fake_header(f, "OpenStack-API-Version", standard);
    if (legacy)
        fake_header(f, "X-OpenStack-Nova-API-Version", legacy);
    api_expect(w, f, status);
}

static void test_microversion_echoed(void **state)
{
    struct api_world *w = *state;
    struct fake f;
    mv_request(w, &f, "/v2.1/servers", NULL, NULL, 200);
    expect_echo(&f, "2.1");
    fake_release(&f);
    mv_request(w, &f, "/v2.1/servers", "compute 2.79", "2.5", 200);
    expect_echo(&f, "2.79");
    fake_release(&f);
    mv_request(w, &f, "/v2.1/acct-a/servers", NULL, "2.53", 200);
    expect_echo(&f, "2.53");
    fake_release(&f);
    mv_request(w, &f, "/v2.1/servers", "compute latest", NULL, 200);
    expect_echo(&f, "2.89");
    fake_release(&f);
    mv_request(w, &f, "/v2.1/servers", "volume 3.0, compute 2.60", NULL, 200);
    expect_echo(&f, "2.60");
    fake_release(&f);
}

static void test_microversion_echoed_on_errors(void **state)
{
    struct api_world *w = *state;
    struct fake f;
    mv_request(w, &f, "/v2.1/servers/none", "compute 2.60", NULL, 404);
    expect_nova_error(&f, "itemNotFound", 404, "Instance none could not be found.");
    expect_echo(&f, "2.60");
    fake_release(&f);
    /* os-volumes is gone from 2.36: 404, still versioned */
    mv_request(w, &f, "/v2.1/os-volumes", "compute 2.36", NULL, 404);
    expect_echo(&f, "2.36");
    fake_release(&f);
    mv_request(w, &f, "/v2.1/os-volumes", "compute 2.35", NULL, 200);
    fake_release(&f);
}

static void test_microversion_400(void **state)
{
    struct api_world *w = *state;
    static const char *const bad[] = {"2", "2.x", "two", "2.01", "02.1", "2.1.1", "2.", ".1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int legacy = 0; legacy < 2; legacy++) {
            struct fake f;
            const char *std = legacy ? NULL : arena_printf(&w->ar, "compute %s", bad[i]);
            mv_request(w, &f, "/v2.1/servers", std, legacy ? bad[i] : NULL, 400);
            char msg[160];
            snprintf(msg, sizeof msg,
                     "API Version String %s is of invalid format. Must be of format "
                     "MajorNum.MinorNum.", bad[i]);
            expect_nova_error(&f, "badRequest", 400, msg);
            /* Nova has no version for the request, so sends none back */
            expect_echo(&f, NULL);
            expect_request_ids(&f);
            fake_release(&f);
        }
    }
}

static void test_microversion_406(void **state)
{
    struct api_world *w = *state;
    static const char *const bad[] = {"2.90", "2.104", "3.0", "1.1", "2.0", "1.0", "10.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake f;
        mv_request(w, &f, "/v2.1/servers", arena_printf(&w->ar, "compute %s", bad[i]), NULL, 406);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Version %s is not supported by the API. Minimum is 2.1 and maximum is 2.89.",
                 bad[i]);
        expect_nova_error(&f, "computeFault", 406, msg);
        fake_release(&f);
    }
}

/* Regression (src/api/router.c, admit): Nova sets the request's version before it
 * checks the range (nova/api/openstack/wsgi.py Request.set_api_version_request
 * assigns api_version_request, then raises InvalidGlobalAPIVersion), and its
 * Fault adds OpenStack-API-Version / X-OpenStack-Nova-API-Version / Vary for
 * any non-null version; so a 406 echoes the version asked for
 * ("compute 2.90"). attachd sends no version headers on a 406 (Nova sends
 * them on error responses too). */
static void test_microversion_406_echoes_version(void **state)
{
    struct api_world *w = *state;
    struct fake f;
    mv_request(w, &f, "/v2.1/servers", "compute 2.90", NULL, 406);
    const char *std = res_header(&f.res, "OpenStack-API-Version");
    const char *legacy = res_header(&f.res, "X-OpenStack-Nova-API-Version");
    const char *vary = res_header(&f.res, "Vary");
    char got[200];
    snprintf(got, sizeof got, "OpenStack-API-Version: %s, X-OpenStack-Nova-API-Version: %s, "
             "Vary: %s", std ? std : "(none)", legacy ? legacy : "(none)", vary ? vary : "(none)");
    bool ok = std && !strcmp(std, "compute 2.90") && legacy && !strcmp(legacy, "2.90") && vary &&
              strcasestr(vary, "OpenStack-API-Version");
    fake_release(&f);
    if (!ok)
        fail_msg("406 for compute 2.90: %s; want compute 2.90, 2.90 and a Vary", got);
}

static void test_microversion_not_on_hostway(void **state)
{
    struct api_world *w = *state;
    static const char *const values[] = {"compute 9.9", "compute 2.x", "compute 2.79"};
    for (size_t i = 0; i < 3; i++) {
        struct fake f;
        mv_request(w, &f, "/servers", values[i], values[i] + 8, 200);
        expect_echo(&f, NULL);
        fake_release(&f);
        mv_request(w, &f, "/accounts/acct-a/flexcloud/servers", values[i], NULL, 200);
        expect_echo(&f, NULL);
        fake_release(&f);
    }
}

static void test_microversion_after_auth_and_account(void **state)
{
    struct api_world *w = *state;
    /* 401 comes before a bad version, and so does the account check */
    struct fake f;
    fake_request(&f, METHOD_GET, "/v2.1/servers", NULL, NULL);
    fake_header(&f, "OpenStack-API-Version", "compute 2.x");
    api_expect(w, &f, 401);
    fake_release(&f);
    fake_request(&f, METHOD_GET, "/v2.1/acct-b/servers", NULL, w->alice);
    fake_header(&f, "OpenStack-API-Version", "compute 9.0");
    api_expect(w, &f, 404);
    fake_release(&f);
}

/* ---- everything carries request ids ------------------------------------------------------------ */

static void test_request_ids_everywhere(void **state)
{
    struct api_world *w = *state;
    const char *srv = world_server(w, "acct-a");
    struct {
        enum method m;
        const char *path, *body, *auth;
        int status;
    } cases[] = {
        {METHOD_GET, "/", NULL, NULL, 200},
        {METHOD_GET, "/servers", NULL, NULL, 401},
        {METHOD_GET, "/servers", NULL, w->alice, 200},
        {METHOD_GET, "/nothing", NULL, w->alice, 404},
        {METHOD_DELETE, "/servers", NULL, w->alice, 405},
        {METHOD_POST, arena_printf(&w->ar, "/servers/%s/action", srv), "{\"lock\": null}",
         w->alice, 202},
        {METHOD_POST, arena_printf(&w->ar, "/servers/%s/action", srv), "{bad json", w->alice, 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake f;
        fake_request(&f, cases[i].m, cases[i].path, cases[i].body, cases[i].auth);
        api_expect(w, &f, cases[i].status);
        expect_request_ids(&f);
        fake_release(&f);
    }
}

static void test_api_http_error(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, METHOD_POST, "/v2.1/servers", NULL);
    api_http_error(&f.req, &f.res, 413);
    assert_int_equal(f.res.status, 413);
    expect_nova_error(&f, "overLimit", 413, "Request is too large.");
    expect_request_ids(&f);
    fake_release(&f);

    fake_init(&f, METHOD_POST, "/servers", NULL);
    api_http_error(&f.req, &f.res, 413);
    json_t *body = res_json(&f);
    json_t *inner = fault_inner(body, "overLimit");
    assert_string_equal(json_string_value(json_object_get(inner, "message")),
                        "Request entity too large");
    assert_string_equal(json_string_value(json_object_get(inner, "details")),
                        "Request is too large.");
    json_decref(body);
    fake_release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_root_without_auth),
        cmocka_unit_test(test_discovery_v21),
        cmocka_unit_test(test_discovery_host_fallback),
        cmocka_unit_test(test_discovery_head_and_other_methods),
        cmocka_unit_test(test_401_missing_authorization),
        cmocka_unit_test(test_401_bad_credentials),
        cmocka_unit_test(test_head_refuses_before_the_body),
        cmocka_unit_test(test_head_admits_good_credentials),
        cmocka_unit_test(test_head_answers_paths_without_credentials),
        cmocka_unit_test(test_404_hostway_shape),
        cmocka_unit_test(test_404_nova_shape),
        cmocka_unit_test(test_404_unroutable_paths),
        cmocka_unit_test(test_non_utf8_id_is_404),
        cmocka_unit_test(test_routes_match_exactly),
        cmocka_unit_test(test_405_allow_header),
        cmocka_unit_test(test_405_bodies),
        cmocka_unit_test(test_account_prefix_own),
        cmocka_unit_test(test_account_prefix_other_is_404),
        cmocka_unit_test(test_account_prefix_admin),
        cmocka_unit_test(test_microversion_echoed),
        cmocka_unit_test(test_microversion_echoed_on_errors),
        cmocka_unit_test(test_microversion_400),
        cmocka_unit_test(test_microversion_406),
        cmocka_unit_test(test_microversion_406_echoes_version),
        cmocka_unit_test(test_microversion_not_on_hostway),
        cmocka_unit_test(test_microversion_after_auth_and_account),
        cmocka_unit_test(test_request_ids_everywhere),
        cmocka_unit_test(test_api_http_error),
    };
    return cmocka_run_group_tests(tests, api_group_setup, api_group_teardown);
}
