/* test_basic.c: auth_parse_basic and utf8_valid. Every byte of an
 * Authorization header comes from the network: base64 is strict, lengths
 * are bounded, names and passwords are UTF-8 without NUL. And the ids
 * attachd makes (util/id.h). */
#include "helpers.h"
#include "util/id.h"
#include "util/utf8.h"

#include <pthread.h>

#define USER_SIZE (AUTH_NAME_MAX + 1)
#define PASS_SIZE AUTH_HEADER_MAX

/* "Basic " + base64 of n raw bytes (which may hold NUL or invalid UTF-8). */
static char *header_of(struct arena *ar, const char *scheme, const void *raw, size_t n)
{
    size_t b64len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = arena_alloc(ar, b64len);
    sodium_bin2base64(b64, b64len, raw, n, sodium_base64_VARIANT_ORIGINAL);
    return arena_printf(ar, "%s %s", scheme, b64);
}

struct parsed {
    bool ok;
    char user[USER_SIZE];
    char pass[PASS_SIZE];
};

static struct parsed parse(const char *header)
{
    struct parsed p;
    memset(&p, 0x5a, sizeof p);
    p.ok = auth_parse_basic(header, p.user, sizeof p.user, p.pass, sizeof p.pass);
    return p;
}

static void expect_ok(const char *header, const char *user, const char *pass)
{
    struct parsed p = parse(header);
    if (!p.ok)
        fail_msg("auth_parse_basic(\"%s\") refused", header);
    assert_string_equal(p.user, user);
    assert_string_equal(p.pass, pass);
}

static void expect_refused(const char *header)
{
    struct parsed p = parse(header);
    if (p.ok)
        fail_msg("auth_parse_basic(\"%s\") accepted user \"%s\"", header ? header : "(null)",
                 p.user);
}

static void test_valid(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    expect_ok(basic_header(&ar, "alice", "secret"), "alice", "secret");
    /* "alice:secret" in base64, written out, so the helper is checked too */
    expect_ok("Basic YWxpY2U6c2VjcmV0", "alice", "secret");
    /* padding of one and two characters */
    expect_ok("Basic YWxpY2U6c2VjcmU=", "alice", "secre");
    expect_ok("Basic YWxpY2U6c2Vjcg==", "alice", "secr");
    arena_release(&ar);
}

static void test_scheme_case_and_blanks(void **state)
{
    (void)state;
    expect_ok("basic YWxpY2U6c2VjcmV0", "alice", "secret");
    expect_ok("BASIC YWxpY2U6c2VjcmV0", "alice", "secret");
    expect_ok("bAsIc YWxpY2U6c2VjcmV0", "alice", "secret");
    expect_ok("Basic\tYWxpY2U6c2VjcmV0", "alice", "secret");
    expect_ok("Basic    YWxpY2U6c2VjcmV0", "alice", "secret");
    expect_ok("Basic YWxpY2U6c2VjcmV0  \t", "alice", "secret");
}

static void test_wrong_scheme(void **state)
{
    (void)state;
    expect_refused(NULL);
    expect_refused("");
    expect_refused("Basic");
    expect_refused("Basic ");
    expect_refused("Basic   \t ");
    expect_refused("BasicYWxpY2U6c2VjcmV0");
    expect_refused("Bearer YWxpY2U6c2VjcmV0");
    expect_refused("Digest YWxpY2U6c2VjcmV0");
    expect_refused(" Basic YWxpY2U6c2VjcmV0");
    expect_refused("YWxpY2U6c2VjcmV0");
}

static void test_missing_colon(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    expect_refused(header_of(&ar, "Basic", "alice", 5));
    expect_refused(header_of(&ar, "Basic", "alicesecret", 11));
    arena_release(&ar);
}

static void test_empty_user(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    expect_refused(basic_header(&ar, "", "secret"));
    expect_refused(header_of(&ar, "Basic", ":", 1));
    arena_release(&ar);
}

static void test_empty_password_is_parsed(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    /* Syntactically fine; whether it verifies is the hash's business. */
    expect_ok(basic_header(&ar, "alice", ""), "alice", "");
    arena_release(&ar);
}

static void test_password_with_colons(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    expect_ok(basic_header(&ar, "alice", "a:b:c"), "alice", "a:b:c");
    expect_ok(basic_header(&ar, "alice", ":"), "alice", ":");
    expect_ok(basic_header(&ar, "alice", "::pw::"), "alice", "::pw::");
    arena_release(&ar);
}

static void test_bad_base64(void **state)
{
    (void)state;
    expect_refused("Basic !!!!");
    expect_refused("Basic YWxpY2U6c2VjcmV0!");
    expect_refused("Basic YWxp Y2U6c2VjcmV0");         /* blank inside */
    expect_refused("Basic YWxpY2U6c2VjcmU");           /* missing padding */
    expect_refused("Basic YWxpY2U6c2Vjcg=");           /* short padding */
    expect_refused("Basic YWxpY2U6c2VjcmV0=");         /* padding where none belongs */
    expect_refused("Basic YWxpY2U6c2VjcmV0====");
    expect_refused("Basic YWxpY2U6c2VjcmV0\n");
    expect_refused("Basic YWxpY2U_c2VjcmV0");          /* URL-safe alphabet */
    expect_refused("Basic =");
    expect_refused("Basic ====");
    /* libsodium 1.0.18 decodes a byte >= 0x80 as '/': "bzp\xff" was "o:" + junk
     * (found by fuzz/fuzz_basic) */
    expect_refused("Basic bzp\xff");
    expect_refused("Basic YWxpY2U6c2Vj\xe9mV0");
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    expect_refused("Basic YWxpY2U6c2VjcmV0 extra");
    expect_refused("Basic YWxpY2U6c2VjcmV0,Basic YWxpY2U6c2VjcmV0");
    expect_refused("Basic YWxpY2U6c2VjcmV0 YWxpY2U6c2VjcmV0");
    expect_refused("Basic YWxpY2U6c2VjcmU=x");
}

static void test_non_utf8(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    expect_refused(header_of(&ar, "Basic", "\xff" "ali:pw", 7));
    expect_refused(header_of(&ar, "Basic", "alice:\xc3\x28", 8));
    expect_refused(header_of(&ar, "Basic", "al\xc0\xafice:pw", 10));    /* overlong '/' */
    expect_refused(header_of(&ar, "Basic", "alice:pw\xed\xa0\x80", 11)); /* surrogate */
    expect_refused(header_of(&ar, "Basic", "alice\xe2\x82:pw", 10));     /* truncated */
    /* valid UTF-8 on both sides is fine */
    expect_ok(basic_header(&ar, "j\xc3\xbcrgen", "p\xe2\x82\xac\xf0\x9f\x98\x80"),
              "j\xc3\xbcrgen", "p\xe2\x82\xac\xf0\x9f\x98\x80");
    arena_release(&ar);
}

static void test_nul_inside(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    expect_refused(header_of(&ar, "Basic", "al\0ice:pw", 9));
    expect_refused(header_of(&ar, "Basic", "alice:p\0w", 9));
    expect_refused(header_of(&ar, "Basic", "alice:pw\0", 9));
    expect_refused(header_of(&ar, "Basic", "\0:pw", 4));
    arena_release(&ar);
}

static void test_lengths(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    /* 768 raw bytes are exactly AUTH_HEADER_MAX (1024) base64 characters */
    char raw[1024];
    memset(raw, 'p', sizeof raw);
    memcpy(raw, "u:", 2);
    char *h = header_of(&ar, "Basic", raw, 768);
    assert_int_equal(strlen(h), 6 + AUTH_HEADER_MAX);
    struct parsed p = parse(h);
    assert_true(p.ok);
    assert_string_equal(p.user, "u");
    assert_int_equal(strlen(p.pass), 766);
    /* one base64 quantum more is too long */
    expect_refused(header_of(&ar, "Basic", raw, 771));
    expect_refused(header_of(&ar, "Basic", raw, 1000));
    arena_release(&ar);
}

static void test_buffer_bounds(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    char name[AUTH_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[AUTH_NAME_MAX] = '\0';                         /* 255 characters: fits */
    struct parsed p = parse(basic_header(&ar, name, "pw"));
    assert_true(p.ok);
    assert_int_equal(strlen(p.user), AUTH_NAME_MAX);
    name[AUTH_NAME_MAX] = 'n';
    name[AUTH_NAME_MAX + 1] = '\0';                     /* 256: does not */
    expect_refused(basic_header(&ar, name, "pw"));

    /* a password that does not fit the caller's buffer is refused, not cut */
    char user[8], pass[8];
    assert_true(auth_parse_basic(basic_header(&ar, "alice", "1234567"), user, sizeof user,
                                 pass, sizeof pass));
    assert_string_equal(pass, "1234567");
    assert_false(auth_parse_basic(basic_header(&ar, "alice", "12345678"), user, sizeof user,
                                  pass, sizeof pass));
    assert_true(auth_parse_basic(basic_header(&ar, "1234567", "x"), user, sizeof user, pass,
                                 sizeof pass));
    assert_false(auth_parse_basic(basic_header(&ar, "12345678", "x"), user, sizeof user, pass,
                                  sizeof pass));
    arena_release(&ar);
}

/* ---- utf8_valid ---------------------------------------------------------- */

static void utf8(const char *s, size_t len, bool want)
{
    if (utf8_valid(s, len) != want) {
        char hex[128] = "";
        for (size_t i = 0; i < len && i < 40; i++)
            snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%02x ", (unsigned char)s[i]);
        fail_msg("utf8_valid(%s) != %s", hex, want ? "true" : "false");
    }
}

#define U(lit, want) utf8((lit), sizeof(lit) - 1, (want))

static void test_utf8_valid(void **state)
{
    (void)state;
    U("", true);
    U("plain ascii ~!@#", true);
    U("\x7f", true);
    U("\xc2\x80", true);                    /* U+0080, smallest 2-byte */
    U("\xc3\xa9", true);
    U("\xdf\xbf", true);                    /* U+07FF */
    U("\xe0\xa0\x80", true);                /* U+0800, smallest 3-byte */
    U("\xe2\x82\xac", true);                /* euro sign */
    U("\xed\x9f\xbf", true);                /* U+D7FF, just below the surrogates */
    U("\xee\x80\x80", true);                /* U+E000, just above */
    U("\xef\xbf\xbf", true);                /* U+FFFF */
    U("\xf0\x90\x80\x80", true);            /* U+10000, smallest 4-byte */
    U("\xf0\x9f\x98\x80", true);
    U("\xf4\x8f\xbf\xbf", true);            /* U+10FFFF, the last code point */
    U("a\xc3\xa9z\xf0\x9f\x98\x80!", true);
}

static void test_utf8_overlong(void **state)
{
    (void)state;
    U("\xc0\x80", false);                   /* NUL, overlong */
    U("\xc0\xaf", false);
    U("\xc1\xbf", false);
    U("\xe0\x80\x80", false);
    U("\xe0\x80\xaf", false);
    U("\xe0\x9f\xbf", false);               /* U+07FF in 3 bytes */
    U("\xf0\x80\x80\x80", false);
    U("\xf0\x80\x80\xaf", false);
    U("\xf0\x8f\xbf\xbf", false);           /* U+FFFF in 4 bytes */
}

static void test_utf8_surrogates(void **state)
{
    (void)state;
    U("\xed\xa0\x80", false);               /* U+D800 */
    U("\xed\xad\xbf", false);
    U("\xed\xb0\x80", false);               /* U+DC00 */
    U("\xed\xbf\xbf", false);               /* U+DFFF */
    U("\xed\xa0\xbd\xed\xb8\x80", false);   /* a CESU-8 pair */
}

static void test_utf8_beyond_10ffff(void **state)
{
    (void)state;
    U("\xf4\x90\x80\x80", false);           /* U+110000 */
    U("\xf7\xbf\xbf\xbf", false);
    U("\xf5\x80\x80\x80", false);
    U("\xf8\x88\x80\x80\x80", false);       /* old 5-byte form */
    U("\xfc\x84\x80\x80\x80\x80", false);   /* old 6-byte form */
    U("\xfe", false);
    U("\xff", false);
}

static void test_utf8_truncated_and_broken(void **state)
{
    (void)state;
    U("\xc3", false);
    U("a\xc3", false);
    U("\xe2\x82", false);
    U("\xe2", false);
    U("\xf0\x9f\x98", false);
    U("\xf0\x9f", false);
    U("\xf0", false);
    U("\x80", false);                       /* lone continuation */
    U("a\xbf" "b", false);
    U("\xc3\x28", false);                   /* continuation missing */
    U("\xe2\x28\xa1", false);
    U("\xe2\x82\x28", false);
    U("\xf0\x28\x8c\xbc", false);
    U("\xf0\x9f\x98\x28", false);
    U("\xc3\xa9\xa9", false);               /* one continuation too many */
    /* the length given is what counts, not the NUL terminator */
    utf8("\xc3\xa9", 1, false);
    utf8("\xf0\x9f\x98\x80", 3, false);
    utf8("abc\xff", 3, true);
}

static void test_utf8_nul(void **state)
{
    (void)state;
    U("\0", false);
    U("a\0b", false);
    U("abc\0", false);
}

/* ---- generated ids --------------------------------------------------------------------- */

#define DRAWS 4096

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void assert_uuid4(const char *u)
{
    assert_int_equal(strlen(u), UUID_STR_LEN);
    for (int i = 0; i < UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else if (!strchr("0123456789abcdef", u[i]))
            fail_msg("\"%s\": not lowercase hex at %d", u, i);
    }
    assert_int_equal(u[14], '4');                       /* version 4 */
    assert_non_null(strchr("89ab", u[19]));             /* RFC 4122 variant */
    assert_true(id_valid(u, strlen(u)));
}

static void *draw_uuids(void *arg)
{
    char (*out)[UUID_STR_LEN + 1] = arg;
    for (int i = 0; i < DRAWS; i++)
        id_uuid4(out[i]);
    return NULL;
}

/* Well formed, and never the same twice: not within a thread (whose stream
 * moves on past each block), nor across threads (each keyed on its own). */
static void test_uuid4_unique(void **state)
{
    (void)state;
    static char ids[2 * DRAWS][UUID_STR_LEN + 1];
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, draw_uuids, ids[DRAWS]), 0);
    draw_uuids(ids[0]);
    pthread_join(t, NULL);
    int bits[128] = {0};
    for (int i = 0; i < 2 * DRAWS; i++) {
        assert_uuid4(ids[i]);
        for (int c = 0; c < 32; c++) {
            const char *hexes = "0123456789abcdef";
            int pos = c + (c >= 8) + (c >= 12) + (c >= 16) + (c >= 20);
            int v = (int)(strchr(hexes, ids[i][pos]) - hexes);
            for (int b = 0; b < 4; b++)
                bits[c * 4 + b] += (v >> b) & 1;
        }
    }
    qsort(ids, 2 * DRAWS, sizeof ids[0], cmp_ids);
    for (int i = 1; i < 2 * DRAWS; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("id %s drawn twice", ids[i]);
    /* every random bit is set in about half the draws (a stream that failed
     * to move on, or zeroes, would not be) */
    for (int b = 0; b < 128; b++) {
        bool fixed = (b >= 48 && b < 52) || b == 66 || b == 67;   /* version, variant */
        if (!fixed && (bits[b] < DRAWS * 2 * 4 / 10 || bits[b] > DRAWS * 2 * 6 / 10))
            fail_msg("bit %d set in %d of %d ids", b, bits[b], 2 * DRAWS);
    }
}

static void test_hex32(void **state)
{
    (void)state;
    char a[33], b[33];
    id_hex32(a);
    id_hex32(b);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_scheme_case_and_blanks),
        cmocka_unit_test(test_wrong_scheme),
        cmocka_unit_test(test_missing_colon),
        cmocka_unit_test(test_empty_user),
        cmocka_unit_test(test_empty_password_is_parsed),
        cmocka_unit_test(test_password_with_colons),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_non_utf8),
        cmocka_unit_test(test_nul_inside),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_buffer_bounds),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_overlong),
        cmocka_unit_test(test_utf8_surrogates),
        cmocka_unit_test(test_utf8_beyond_10ffff),
        cmocka_unit_test(test_utf8_truncated_and_broken),
        cmocka_unit_test(test_utf8_nul),
        cmocka_unit_test(test_uuid4_unique),
        cmocka_unit_test(test_hex32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
