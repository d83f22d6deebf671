/* test_oom.c: running out of memory fails the request, not the daemon
 * (util/oom.h). Allocations are made to fail on purpose, at every point a
 * request allocates in turn; each run must answer (the request's own answer
 * or a 503 in the dialect's shape), leave nothing half-done behind (the
 * thread's reader reset, no write half-committed), and the next request must
 * be served normally. Under ASan and LeakSanitizer this also proves that an
 * abandoned request leaks nothing. The HTTP layer's own copies of a request
 * head and its buffer for the body are tested through a real server on a
 * loopback port, with every arena chunk, or every realloc() of attachd's
 * code, failing on every thread (this executable is linked with
 * --wrap=oom_test_should_fail and --wrap=realloc, tests/unit/meson.build). */
#include "helpers.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "http/server.h"
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

/* ---- the HTTP layer --------------------------------------------------------- */

static atomic_bool every_chunk_fails, every_realloc_fails;
static atomic_int large_mallocs_to_fail;

_Bool __real_oom_test_should_fail(void);
_Bool __wrap_oom_test_should_fail(void);
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

/* arena.c asks before each chunk it takes from the system */
_Bool __wrap_oom_test_should_fail(void)
{
    return atomic_load(&every_chunk_fails) || __real_oom_test_should_fail();
}

/* the body's buffer is the only realloc() of a request (exchange.c) */
void *__wrap_realloc(void *p, size_t n)
{
    return atomic_load(&every_realloc_fails) ? NULL : __real_realloc(p, n);
}

/* a request's exchange (exchange.c) is the first malloc() over 4 KiB of
 * a new server's first request */
void *__wrap_malloc(size_t n)
{
    if (n > 4096 && atomic_load(&large_mallocs_to_fail) > 0 &&
        atomic_fetch_sub(&large_mallocs_to_fail, 1) > 0)
        return NULL;
    return __real_malloc(n);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* One request on a connection of its own (Connection: close); the whole
 * answer into buf (it allocates nothing: chunks may be failing). */
static const char *exchange(int port, const char *head, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t n = strlen(head);
    assert_int_equal(send(fd, head, n, MSG_NOSIGNAL), (ssize_t)n);
    size_t got = 0;
    ssize_t r;
    while (got < cap - 1 && (r = recv(fd, buf + got, cap - 1 - got, 0)) > 0)
        got += (size_t)r;
    close(fd);
    buf[got] = '\0';
    return buf;
}

/* A GET of target (the path with its query) as alice, from the client or
 * through the trusted proxy with X-Forwarded-Host: forwarded. */
static const char *get_head(struct api_world *w, const char *target, const char *forwarded)
{
    return arena_printf(&w->ar, "GET %s HTTP/1.1\r\nHost: h\r\nAuthorization: %s\r\n"
                                "%s%s%sConnection: close\r\n\r\n",
                        target, w->alice, forwarded ? "X-Forwarded-Host: " : "",
                        forwarded ? forwarded : "", forwarded ? "\r\n" : "");
}

static struct http_server *start_server(struct api_world *w, int *port)
{
    char listen[32], err[256];
    *port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", *port);
    struct http_options o = {.listen = listen, .threads = 1, .timeout = 10, .header_timeout = 10,
                             .max_connections = 16, .max_per_ip = 16,
                             .max_body = HTTP_MAX_BODY, .trusted_proxies = "127.0.0.1"};
    struct http_server *s = http_start(&o, w->api, err, sizeof err);
    if (!s)
        fail_msg("http_start: %s", err);
    return s;
}

static void expect_status(const char *answer, const char *status)
{
    if (strncmp(answer, "HTTP/1.1 ", 9) != 0 || strncmp(answer + 9, status, 3) != 0)
        fail_msg("expected %s, got: %.300s", status, answer);
}

/* The HTTP layer out of memory: a head too long for the arena's inline
 * buffer copied while every chunk fails, the layer's own answers, a body
 * whose buffer cannot grow. Each is a 503 in the dialect's shape (or the
 * answer, where it fitted), the daemon unharmed; then, with memory again,
 * the request's own answer. */
static void test_http_layer_runs_out_of_memory(void **state)
{
    struct api_world *w = *state;
    quiet_logs();
    int port;
    struct http_server *s = start_server(w, &port);
    char *long_id = arena_alloc(&w->ar, 5001);
    memset(long_id, 'x', 5000);
    static const struct {
        const char *target, *forwarded;     /* %s: 5,000 x's */
        const char *shape, *then;           /* the 503's outer key; the status after */
    } cases[] = {
        {"/v2.1/servers?name=%s", NULL, "{\"serviceUnavailable\":{\"code\":503", "200"},
        {"/v2.1/servers/%s", NULL, "{\"serviceUnavailable\":{\"code\":503", "404"},
        {"/servers/%s/os-volume_attachments", NULL,
         "{\"serviceUnavailable\":{\"message\":\"Service unavailable\"", "404"},
        {"/v3/acct-a/volumes?name=%s", NULL, "{\"serviceUnavailable\":{\"code\":503", "200"},
        {"/image/v2/images/%s", NULL, "{\"message\":\"The service ran out", "404"},
        {"/v2.1/servers", "%s", "{\"serviceUnavailable\":{\"code\":503", "200"},
    };
    static char buf[65536];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *head = get_head(w, arena_printf(&w->ar, cases[i].target, long_id),
                                    cases[i].forwarded ? long_id : NULL);
        atomic_store(&every_chunk_fails, true);
        const char *a = exchange(port, head, buf, sizeof buf);
        atomic_store(&every_chunk_fails, false);
        expect_status(a, "503");
        const char *body = strstr(a, "\r\n\r\n");
        assert_non_null(body);
        if (strncmp(body + 4, cases[i].shape, strlen(cases[i].shape)) != 0)
            fail_msg("case %zu: %s", i, body + 4);
        assert_non_null(strstr(body, "ran out of memory"));
        assert_non_null(strcasestr(a, "\r\nRetry-After: 1\r\n"));
        assert_non_null(strcasestr(a, "\r\nx-openstack-request-id: req-"));
        expect_status(exchange(port, head, buf, sizeof buf), cases[i].then);
    }
    /* The HTTP layer's own answers (here the 400 of an ambiguous framing)
     * with the inline buffer filled to every length by the path: the 400,
     * or the 503 when its copy or the answer ran out; the daemon goes on. */
    int refused = 0, answered = 0;
    for (size_t len = 0; len <= 4096; len += 8) {
        const char *head = arena_printf(&w->ar, "GET /v2.1/%.*s HTTP/1.1\r\nHost: h\r\n"
                                                "Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
                                        (int)len, long_id);
        atomic_store(&every_chunk_fails, true);
        const char *a = exchange(port, head, buf, sizeof buf);
        atomic_store(&every_chunk_fails, false);
        if (!strncmp(a, "HTTP/1.1 400", 12))
            answered++;
        else if (!strncmp(a, "HTTP/1.1 503", 12) && strstr(a, "ran out of memory"))
            refused++;
        else
            fail_msg("a %zu-byte path: %.300s", len, a);
    }
    assert_true(answered > 0 && refused > 0);
    /* A body with no buffer to hold it: read to its end, then the 503 */
    const char *create = "{\"server\": {\"name\": \"oom\", \"flavorRef\": \"1\", "
                         "\"imageRef\": \"i\"}}";
    const char *post = arena_printf(&w->ar, "POST /v2.1/servers HTTP/1.1\r\nHost: h\r\n"
                                            "Authorization: %s\r\nContent-Type: application/json\r\n"
                                            "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                    w->alice, strlen(create), create);
    atomic_store(&every_realloc_fails, true);
    const char *a = exchange(port, post, buf, sizeof buf);
    atomic_store(&every_realloc_fails, false);
    expect_status(a, "503");
    assert_non_null(strstr(a, "{\"serviceUnavailable\":{\"code\":503,\"message\":\"The service ran "
                              "out of memory"));
    expect_status(exchange(port, post, buf, sizeof buf), "202");
    http_stop(s);
}

/* The URI callback cannot make the exchange: the access handler makes it
 * then, from the path MHD decoded, which it must take whole: a '?' there
 * (%3F) is the path's, not a query's. */
static void test_exchange_made_late_keeps_the_path(void **state)
{
    struct api_world *w = *state;
    quiet_logs();
    int port;
    struct http_server *s = start_server(w, &port);     /* its thread has no spare exchange */
    static char buf[65536];
    const char *head = get_head(w, "/v2.1/servers/a%3Fb", NULL);
    atomic_store(&large_mallocs_to_fail, 1);
    const char *a = exchange(port, head, buf, sizeof buf);
    assert_int_equal(atomic_load(&large_mallocs_to_fail), 0);  /* it did fail */
    atomic_store(&large_mallocs_to_fail, 0);
    expect_status(a, "404");
    if (!strstr(a, "Instance a?b could not be found."))
        fail_msg("%s", a);
    http_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_run_out_of_memory),
        cmocka_unit_test(test_writes_run_out_of_memory),
        cmocka_unit_test(test_write_job_runs_out_of_memory),
        cmocka_unit_test(test_glance_runs_out_of_memory),
        cmocka_unit_test(test_http_layer_runs_out_of_memory),
        cmocka_unit_test(test_exchange_made_late_keeps_the_path),
    };
    return cmocka_run_group_tests(tests, api_group_setup, api_group_teardown);
}
