/* test_microversion.c: mv_parse (Nova's ^([1-9]\d*)\.([1-9]\d*|0)$) and
 * mv_negotiate (docs/api.md, "Microversions" under "Common rules":
 * OpenStack-API-Version "compute X.Y" wins over X-OpenStack-Nova-API-Version;
 * absent is 2.1; "latest" is the maximum). */
#include "helpers.h"

#include "api/call.h"

/* ---- mv_parse --------------------------------------------------------------- */

static void parse_ok(const char *s, int major, int minor)
{
    int ma = -1, mi = -1;
    enum mv_result r = mv_parse(s, &ma, &mi);
    if (r != MV_OK)
        fail_msg("mv_parse(\"%s\") = %d, want MV_OK", s, r);
    assert_int_equal(ma, major);
    assert_int_equal(mi, minor);
}

static void parse_bad(const char *s, enum mv_result want)
{
    int ma = -7, mi = -7;
    enum mv_result r = mv_parse(s, &ma, &mi);
    if (r != want)
        fail_msg("mv_parse(\"%s\") = %d, want %d", s, r, want);
    /* outputs untouched on failure */
    assert_int_equal(ma, -7);
    assert_int_equal(mi, -7);
}

static void test_parse_valid(void **state)
{
    (void)state;
    parse_ok("2.1", 2, 1);
    parse_ok("2.89", 2, 89);
    parse_ok("2.0", 2, 0);          /* minor 0 is well-formed (406 later, not 400) */
    parse_ok("1.0", 1, 0);
    parse_ok("10.5", 10, 5);
    parse_ok("3.0", 3, 0);
    parse_ok("2.104", 2, 104);
    parse_ok("2.999999", 2, 999999);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "02.1", "2.01", "2.00", "2", "2.", ".1", ".", "a.b", "2.x", "x.1", "2.1.1", " 2.1",
        "2.1 ", "2 .1", "2. 1", "", "-2.1", "2.-1", "+2.1", "2.+1", "0.1", "0.0", "00.1",
        "2..1", "2,1", "two", "latest", "2.1a", "2.1\n", "\t2.1", "２.1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(bad[i], MV_MALFORMED);
}

static void test_parse_huge_is_unsupported(void **state)
{
    (void)state;
    /* Well-formed but absurdly large: not an overflow, an unsupported version. */
    parse_bad("2.1234567", MV_UNSUPPORTED);
    parse_bad("99999999999999999999.1", MV_UNSUPPORTED);
    parse_bad("2.99999999999999999999", MV_UNSUPPORTED);
}

/* Regression (src/api/microversion.c, mv_parse): a run of more than 6 digits returns
 * MV_UNSUPPORTED before the rest of the string is checked, so text that does
 * not match ^([1-9]\d*)\.([1-9]\d*|0)$ at all is answered 406 instead of
 * Nova's 400 "API Version String ... is of invalid format". */
static void test_parse_huge_but_malformed_is_malformed(void **state)
{
    (void)state;
    parse_bad("2.1234567x", MV_MALFORMED);
    parse_bad("1234567.x", MV_MALFORMED);
    parse_bad("1234567", MV_MALFORMED);
}

/* ---- mv_negotiate -------------------------------------------------------------- */

struct neg {
    struct fake f;
    int version;
    const char *bad;
    enum mv_result r;
};

static void negotiate(struct neg *n, const char *standard, const char *legacy)
{
    fake_init(&n->f, METHOD_GET, "/v2.1/servers", NULL);
    if (standard)
        fake_header(&n->f, "OpenStack-API-Version", standard);
    if (legacy)
        fake_header(&n->f, "X-OpenStack-Nova-API-Version", legacy);
    n->version = -1;
    n->bad = NULL;
    n->r = mv_negotiate(&n->f.req, &n->f.arena, &n->version, &n->bad);
}

static void expect_version(const char *standard, const char *legacy, int version)
{
    struct neg n;
    negotiate(&n, standard, legacy);
    if (n.r != MV_OK || n.version != version)
        fail_msg("negotiate(%s | %s) = %d version %d, want MV_OK version %d",
                 standard ? standard : "-", legacy ? legacy : "-", n.r, n.version, version);
    fake_release(&n.f);
}

static void expect_failure(const char *standard, const char *legacy, enum mv_result want,
                           const char *bad)
{
    struct neg n;
    negotiate(&n, standard, legacy);
    if (n.r != want)
        fail_msg("negotiate(%s | %s) = %d, want %d", standard ? standard : "-",
                 legacy ? legacy : "-", n.r, want);
    assert_non_null(n.bad);
    assert_string_equal(n.bad, bad);
    fake_release(&n.f);
}

static void test_negotiate_absent_is_2_1(void **state)
{
    (void)state;
    expect_version(NULL, NULL, 1);
}

static void test_negotiate_standard_header(void **state)
{
    (void)state;
    expect_version("compute 2.1", NULL, 1);
    expect_version("compute 2.60", NULL, 60);
    expect_version("compute 2.89", NULL, 89);
    expect_version("Compute 2.12", NULL, 12);           /* service name is case-insensitive */
    expect_version("compute   2.7  ", NULL, 7);         /* extra blanks around the version */
}

static void test_negotiate_legacy_header(void **state)
{
    (void)state;
    expect_version(NULL, "2.53", 53);
    expect_version(NULL, "2.1", 1);
}

static void test_negotiate_standard_wins(void **state)
{
    (void)state;
    expect_version("compute 2.79", "2.5", 79);
    expect_version("compute 2.70", "2.3", 70);
    /* a bad legacy value does not matter when the standard header decides */
    expect_version("compute 2.10", "garbage", 10);
}

static void test_negotiate_latest(void **state)
{
    (void)state;
    expect_version("compute latest", NULL, MAX_VERSION);
    expect_version(NULL, "latest", MAX_VERSION);
    assert_int_equal(MAX_VERSION, 89);
    expect_version("compute latest", "2.3", 89);
}

static void test_negotiate_other_services(void **state)
{
    (void)state;
    expect_version("volume 3.0, compute 2.5", NULL, 5);
    expect_version("compute 2.5, volume 3.0", NULL, 5);
    expect_version("volume 3.0,compute 2.6", NULL, 6);
    expect_version("identity 3.0, volume 3.27, compute 2.44, placement 1.10", NULL, 44);
    /* no compute entry: the legacy header, else 2.1 */
    expect_version("volume 3.0", "2.7", 7);
    expect_version("volume 3.0", NULL, 1);
    /* a service whose name only starts with "compute" is not compute */
    expect_version("computer 2.50", NULL, 1);
    expect_version("compute-x 2.50", "2.8", 8);
    /* an unsupported version of another service is not our business */
    expect_version("volume 99.0, compute 2.11", NULL, 11);
}

static void test_negotiate_out_of_range(void **state)
{
    (void)state;
    expect_failure("compute 2.90", NULL, MV_UNSUPPORTED, "2.90");
    expect_failure("compute 2.0", NULL, MV_UNSUPPORTED, "2.0");
    expect_failure("compute 3.0", NULL, MV_UNSUPPORTED, "3.0");
    expect_failure("compute 1.1", NULL, MV_UNSUPPORTED, "1.1");
    expect_failure("compute 10.5", NULL, MV_UNSUPPORTED, "10.5");
    expect_failure(NULL, "2.104", MV_UNSUPPORTED, "2.104");
    expect_failure(NULL, "1.0", MV_UNSUPPORTED, "1.0");
    expect_failure("compute 2.1234567", NULL, MV_UNSUPPORTED, "2.1234567");
}

static void test_negotiate_malformed(void **state)
{
    (void)state;
    expect_failure("compute 2.x", NULL, MV_MALFORMED, "2.x");
    expect_failure("compute 2", NULL, MV_MALFORMED, "2");
    expect_failure("compute 02.1", NULL, MV_MALFORMED, "02.1");
    expect_failure("compute 2.01", NULL, MV_MALFORMED, "2.01");
    expect_failure("compute 2.1.1", NULL, MV_MALFORMED, "2.1.1");
    expect_failure(NULL, "two", MV_MALFORMED, "two");
    expect_failure(NULL, "-2.1", MV_MALFORMED, "-2.1");
    expect_failure(NULL, ".1", MV_MALFORMED, ".1");
    expect_failure("volume 3.0, compute 2.y", "2.5", MV_MALFORMED, "2.y");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_huge_is_unsupported),
        cmocka_unit_test(test_parse_huge_but_malformed_is_malformed),
        cmocka_unit_test(test_negotiate_absent_is_2_1),
        cmocka_unit_test(test_negotiate_standard_header),
        cmocka_unit_test(test_negotiate_legacy_header),
        cmocka_unit_test(test_negotiate_standard_wins),
        cmocka_unit_test(test_negotiate_latest),
        cmocka_unit_test(test_negotiate_other_services),
        cmocka_unit_test(test_negotiate_out_of_range),
        cmocka_unit_test(test_negotiate_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
