/* test_framing.c: the HTTP layer's framing decision (src/http/framing.h),
 * each reason once, the cases tests/api/test_hostile_http.py sends over a
 * socket among them, and what must pass. fuzz/fuzz_framing.c checks it
 * against a reference on arbitrary heads. */
#include "helpers.h"

#include "http/framing.h"

#define H(...) ((const struct http_field[]){__VA_ARGS__})
#define N(...) (sizeof((const struct http_field[]){__VA_ARGS__}) / sizeof(struct http_field))
#define CHECK_HEAD(version, want, ...)                                                    \
    do {                                                                                  \
        enum http_framing got_ = http_framing_check(H(__VA_ARGS__), N(__VA_ARGS__), version); \
        if (got_ != (want))                                                               \
            fail_msg("line %d: %s, want %s", __LINE__, http_framing_reason(got_),         \
                     http_framing_reason(want));                                          \
    } while (0)

static void test_framing_ok(void **state)
{
    (void)state;
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_OK, {"Host", "x"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_OK, {"host", "x"}, {"Content-Length", "5"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_OK, {"Host", "x"}, {"Transfer-Encoding", "Chunked"});
    /* RFC 9112 6.3: identical repeats may pass */
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_OK, {"Content-Length", "5"}, {"Host", "x"},
               {"CONTENT-LENGTH", "5"});
    /* HTTP/1.0 needs no Host */
    CHECK_HEAD("HTTP/1.0", HTTP_FRAMING_OK, {"Content-Length", "0"});
    /* a name that only begins like Host is someone's own header */
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_OK, {"Host", "x"}, {"Hostname", "y"},
               {"Host-Name", "z"});
    /* the folded "Charset=UTF-8" of Hostway's DetachVolumeFromServer page
     * (docs/api.md) is left alone */
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_OK, {"Host", "x"},
               {"Content-Type: application/json; Charset=UTF-8", ""});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_OK, {"Host", NULL});
}

static void test_framing_refused(void **state)
{
    (void)state;
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_MANGLED, {"Host", "x"}, {"Content-Length ", "5"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_MANGLED, {"Host", "x"}, {"Transfer-Encoding\t", "chunked"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_MANGLED, {"Host", "x"}, {"Content-Length0", "5"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_MANGLED, {"Host ", "y"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_HOSTS, {"Host", "x"}, {"HOST", "y"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_LENGTHS, {"Host", "x"}, {"Content-Length", "5"},
               {"Content-Length", "05"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_LENGTH_AND_CODING, {"Host", "x"},
               {"Transfer-Encoding", "chunked"}, {"Content-Length", "5"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_CODINGS, {"Host", "x"},
               {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_CODING, {"Host", "x"}, {"Transfer-Encoding", "gzip"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_CODING, {"Host", "x"},
               {"Transfer-Encoding", "gzip, chunked"});
    CHECK_HEAD("HTTP/1.0", HTTP_FRAMING_CODING_IN_1_0, {"Transfer-Encoding", "chunked"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_NO_HOST, {"Content-Length", "5"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_NO_HOST, {"X", "y"});
}

/* Several reasons: the first in framing.h's order, whatever the order of
 * the lines. */
static void test_framing_first_reason(void **state)
{
    (void)state;
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_MANGLED, {"Host", "a"}, {"Host", "b"},
               {"Content-Length :", "1"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_HOSTS, {"Content-Length", "1"}, {"Content-Length", "2"},
               {"Host", "a"}, {"Host", "b"});
    CHECK_HEAD("HTTP/1.1", HTTP_FRAMING_LENGTHS, {"Transfer-Encoding", "gzip"},
               {"Content-Length", "1"}, {"Content-Length", "2"});
}

/* Fed one line at a time, as server.c does. */
static void test_framing_one_at_a_time(void **state)
{
    (void)state;
    struct http_framing_state st = {0};
    http_framing_field(&st, "Host", "x");
    http_framing_field(&st, "Content-Length", "3");
    assert_int_equal(http_framing_verdict(&st, "HTTP/1.1"), HTTP_FRAMING_OK);
    http_framing_field(&st, "Transfer-Encoding", "chunked");
    assert_int_equal(http_framing_verdict(&st, "HTTP/1.1"), HTTP_FRAMING_LENGTH_AND_CODING);
    assert_string_equal(http_framing_reason(HTTP_FRAMING_OK), "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_ok),
        cmocka_unit_test(test_framing_refused),
        cmocka_unit_test(test_framing_first_reason),
        cmocka_unit_test(test_framing_one_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
