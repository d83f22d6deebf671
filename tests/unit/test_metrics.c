/* test_metrics.c: util/metrics.c: counts from many threads add up, a
 * histogram's buckets are cumulative and end in its count, labels are
 * escaped, every family has its HELP and TYPE once, and collectors are
 * asked at scrape time. The exposition's form is checked by a real
 * Prometheus parser in tests/api/test_ops_observe.py. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/metrics.h"

/* The value of the one sample line that starts with `prefix` ("name{...}"). */
static double sample(const char *text, const char *prefix)
{
    const char *p = text;
    double v = -1;
    int found = 0;
    while ((p = strstr(p, prefix))) {
        if (p == text || p[-1] == '\n') {
            const char *sp = strchr(p, ' ');
            v = strtod(sp + 1, NULL);
            found++;
        }
        p++;
    }
    return found == 1 ? v : -1;
}

static char *render(void)
{
    size_t len;
    char *text = metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static const char *const route = "servers/*";       /* a static string, as the router's */

static void *counting(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        metrics_request(route, "nova", 0, 200, 0.0003);
        metrics_inc(METRIC_AUTH_CACHED);
    }
    return NULL;
}

static void test_threads_add_up(void **state)
{
    (void)state;
    char *before = render();
    double had = sample(before, "attachd_auth_cache_hits_total ");
    free(before);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, counting, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *text = render();
    assert_true(sample(text, "attachd_auth_cache_hits_total ") == had + 40000);
    assert_true(sample(text, "attachd_http_requests_total{route=\"servers/*\",method=\"GET\","
                             "status=\"200\",dialect=\"nova\"}") == 40000);
    /* 0.3 ms is in the 0.5 ms bucket and above, not in the 0.25 ms one */
    assert_true(sample(text, "attachd_http_request_duration_seconds_bucket{route=\"servers/*\","
                             "method=\"GET\",le=\"0.00025\"}") == 0);
    assert_true(sample(text, "attachd_http_request_duration_seconds_bucket{route=\"servers/*\","
                             "method=\"GET\",le=\"0.0005\"}") == 40000);
    assert_true(sample(text, "attachd_http_request_duration_seconds_bucket{route=\"servers/*\","
                             "method=\"GET\",le=\"+Inf\"}") == 40000);
    assert_true(sample(text, "attachd_http_request_duration_seconds_count{route=\"servers/*\","
                             "method=\"GET\"}") == 40000);
    free(text);
}

static void test_commits_and_cumulative_buckets(void **state)
{
    (void)state;
    unsigned batches[] = {1, 3, 3, 100, 5000};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++)
        metrics_commit(batches[i], 0.002);
    char *text = render();
    assert_true(sample(text, "attachd_store_commit_batch_size_bucket{le=\"1\"}") == 1);
    assert_true(sample(text, "attachd_store_commit_batch_size_bucket{le=\"4\"}") == 3);
    assert_true(sample(text, "attachd_store_commit_batch_size_bucket{le=\"128\"}") == 4);
    assert_true(sample(text, "attachd_store_commit_batch_size_bucket{le=\"4096\"}") == 4);
    assert_true(sample(text, "attachd_store_commit_batch_size_bucket{le=\"+Inf\"}") == 5);
    assert_true(sample(text, "attachd_store_commit_batch_size_sum ") == 5107);
    assert_true(sample(text, "attachd_store_commit_duration_seconds_count ") == 5);
    free(text);
}

static void collect(void *cls, struct metrics_out *o)
{
    int *asked = cls;
    char buf[64];
    char labels[128];
    (*asked)++;
    snprintf(labels, sizeof labels, "kind=\"%s\"", metrics_escape("a\"b\\c\nd", buf, sizeof buf));
    metrics_gauge(o, "test_gauge", "A test gauge.", labels, 2.5);
    metrics_gauge(o, "test_gauge", "A test gauge.", "kind=\"other\"", 3);
}

static void test_collectors_and_escaping(void **state)
{
    (void)state;
    int asked = 0;
    metrics_register(collect, &asked);
    char *text = render();
    assert_int_equal(asked, 1);
    assert_non_null(strstr(text, "test_gauge{kind=\"a\\\"b\\\\c\\nd\"} 2.5\n"));
    assert_non_null(strstr(text, "test_gauge{kind=\"other\"} 3\n"));
    /* HELP and TYPE once per family, whatever the number of samples */
    const char *first = strstr(text, "# TYPE test_gauge gauge\n");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE test_gauge"));
    assert_non_null(strstr(text, "# HELP test_gauge A test gauge.\n"));
    free(text);
    metrics_unregister(collect, &asked);
    text = render();
    assert_int_equal(asked, 1);
    assert_null(strstr(text, "test_gauge"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_add_up),
        cmocka_unit_test(test_commits_and_cumulative_buckets),
        cmocka_unit_test(test_collectors_and_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
