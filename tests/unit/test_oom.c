/* test_oom.c: running out of memory fails the request, not the daemon
 * (util/oom.h). Allocations are made to fail on purpose, at every point a
 * request allocates in turn; each run must answer (the request's own answer
 * or a 503 in the dialect's shape), leave nothing half-done behind (the
 * thread's reader reset, no write half-committed), and the next request must
 * be served normally. Under ASan and LeakSanitizer this also proves that an
 * abandoned request leaks nothing. */
#include "helpers.h"

#include "util/oom.h"

static void make_servers(struct api_world *w, int n)
{
    for (int i = 0; i < n; i++) {
        struct fake f;
        char *body = arena_printf(&w->ar, "{\"server\": {\"name\": \"m%d\", \"flavorRef\": \"1\", "
                                          "\"imageRef\": \"i\", \"metadata\": {\"k\": \"%0200d\"}}}",
                                  i, i);
        fake_request(&f, METHOD_POST, "/v2.1/servers", body, w->alice);
        api_expect(w, &f, 202);
        fake_release(&f);
    }
}

/* Fail the n-th chunk allocation of a request; its status (0: none). */
static int run_failing(struct api_world *w, int n, enum method m, const char *path,
                       const char *body, bool *failed)
{
    struct fake f;
    fake_request(&f, m, path, body, w->alice);
    oom_test_fail_after(n);
    fake_run(w->api, &f);
    *failed = f.res.status == 503;
    oom_test_fail_after(0);
    int status = f.res.status;
    if (status == 503) {
        json_t *j = res_json(&f);
        json_t *inner = fault_inner(j, "serviceUnavailable");
        assert_int_equal(json_integer_value(json_object_get(inner, "code")), 503);
        json_t *text = json_object_get(inner, "details");   /* Hostway's reason */
        if (!text)
            text = json_object_get(inner, "message");
        assert_non_null(strstr(json_string_value(text), "ran out of memory"));
        assert_string_equal(res_header(&f.res, "Retry-After"), "1");
        assert_non_null(res_header(&f.res, "x-openstack-request-id"));
        json_decref(j);
    }
    fake_release(&f);
    return status;
}

static void test_reads_run_out_of_memory(void **state)
{
    struct api_world *w = *state;
    quiet_logs();
    make_servers(w, 40);
    int failures = 0;
    for (int n = 1; n < 60; n++) {
        bool failed;
        int status = run_failing(w, n, METHOD_GET, "/v2.1/servers/detail", NULL, &failed);
        assert_true(status == 200 || status == 503);
        failures += failed;
        /* and the next one, without failures, is whole */
        struct fake f;
        fake_request(&f, METHOD_GET, "/v2.1/servers/detail", NULL, w->alice);
        api_expect(w, &f, 200);
        json_t *j = res_json(&f);
        assert_int_equal(json_array_size(json_object_get(j, "servers")), 40);
        json_decref(j);
        fake_release(&f);
    }
    assert_true(failures > 0);     /* the failures did happen */
}

static void test_writes_run_out_of_memory(void **state)
{
    struct api_world *w = *state;
    quiet_logs();
    int failures = 0, made = 0;
    for (int n = 1; n < 12; n++) {
        bool failed;
        const char *name = world_id(w, "w");
        char *body = arena_printf(&w->ar, "{\"server\": {\"name\": \"%s\", \"flavorRef\": \"1\", "
                                          "\"imageRef\": \"i\", \"metadata\": {\"k\": \"%0250d\"}}}",
                                  name, n);
        int status = run_failing(w, n, METHOD_POST, "/servers", body, &failed);
        assert_true(status == 202 || status == 503);
        failures += failed;
        made += status == 202;
    }
    assert_true(failures > 0);
    /* exactly the servers answered 202 exist: nothing half-made */
    struct fake f;
    fake_request(&f, METHOD_GET, "/v2.1/servers", NULL, w->alice);
    fake_query(&f, "name", "w-");
    api_expect(w, &f, 200);
    json_t *j = res_json(&f);
    assert_int_equal((int)json_array_size(json_object_get(j, "servers")), made);
    json_decref(j);
    fake_release(&f);
}

/* A write job that runs out of memory on the writer thread is answered as
 * not committed, and the writer goes on. */
static int job_runs_out(struct store_conn *w, void *arg)
{
    struct arena *ar = arg;
    char now[32];
    store_now(now);
    struct account a = {.id = "oom-acct", .name = "oom-acct", .created_at = now};
    if (store_account_add(w, &a) != STORE_OK)
        return 1;
    oom_test_fail_after(1);
    arena_alloc(ar, 1 << 20);
    return 0;
}

static int job_add_images(struct store_conn *w, void *arg)
{
    (void)arg;
    for (int i = 0; i < 40; i++) {
        char id[40], name[40];
        snprintf(id, sizeof id, "oom-image-%02d", i);
        snprintf(name, sizeof name, "oom image %02d", i);
        struct image img = {.id = id, .name = name, .disk_format = "raw", .size = 1 << 20,
                            .virtual_size = 1 << 20, .checksum = "0", .hash_value = "0",
                            .path = "/nowhere", .created_at = "2026-12-05T00:00:00.000000",
                            .updated_at = "2026-12-05T00:00:00.000000"};
        if (store_image_add(w, &img) != STORE_OK)
            return 1;
    }
    return 0;
}

/* Under /image the 503 is Glance's (webob's) shape, as every error there. */
static void test_glance_runs_out_of_memory(void **state)
{
    struct api_world *w = *state;
    quiet_logs();
    assert_int_equal(store_write(w->t.store, job_add_images, NULL), 0);
    int failures = 0;
    for (int n = 1; n < 30; n++) {
        struct fake f;
        fake_request(&f, METHOD_GET, "/image/v2/images", NULL, w->alice);
        oom_test_fail_after(n);
        fake_run(w->api, &f);
        oom_test_fail_after(0);
        assert_true(f.res.status == 200 || f.res.status == 503);
        if (f.res.status == 503) {
            failures++;
            json_t *j = res_json(&f);
            assert_int_equal(json_object_size(j), 3);
            assert_string_equal(json_string_value(json_object_get(j, "code")),
                                "503 Service Unavailable");
            assert_string_equal(json_string_value(json_object_get(j, "title")),
                                "Service Unavailable");
            assert_non_null(strstr(json_string_value(json_object_get(j, "message")),
                                   "ran out of memory"));
            assert_string_equal(res_header(&f.res, "Retry-After"), "1");
            json_decref(j);
        }
        fake_release(&f);
    }
    assert_true(failures > 0);
}

static void test_write_job_runs_out_of_memory(void **state)
{
    struct api_world *w = *state;
    struct arena ar;
    quiet_logs();
    arena_init(&ar);
    assert_int_equal(store_write(w->t.store, job_runs_out, &ar), -STORE_ERROR);
    arena_release(&ar);
    struct account a;
    struct store_conn *r = store_reader(w->t.store);
    assert_int_equal(store_account_get(r, &w->ar, "oom-acct", &a), STORE_NOTFOUND);
    add_account(w->t.store, "after-oom", "after-oom");
    assert_int_equal(store_account_get(r, &w->ar, "after-oom", &a), STORE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_run_out_of_memory),
        cmocka_unit_test(test_writes_run_out_of_memory),
        cmocka_unit_test(test_write_job_runs_out_of_memory),
        cmocka_unit_test(test_glance_runs_out_of_memory),
    };
    return cmocka_run_group_tests(tests, api_group_setup, api_group_teardown);
}
