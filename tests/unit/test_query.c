/* test_query.c: the query arguments as attachd parses them
 * (src/http/query.h) against libmicrohttpd's own parse, which the daemon
 * used before: a real MHD daemon on a loopback port, given the same
 * unescape callback as attachd's, parses each query sent to it, and both
 * parses must give the same arguments in the same order (a NULL value and
 * an empty one told apart) and the same lookups by exact name. Chosen
 * queries first, then random ones over the characters the parse treats
 * specially. Then the API's own parse for the dialects webob serves
 * (test_query_webob), and its reading of Nova's times and regular
 * expressions (test_query_isotime, test_query_regex). */
#include "helpers.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/call.h"
#include "http/query.h"

/* What MHD made of one request: each argument as "key=value" or "key"
 * (no '='), one per line, then each lookup as "name->value" or
 * "name->(null)": the first argument of exactly that name in MHD's list
 * (MHD's own lookup ignores ASCII case; attachd's, like Nova's, does not). */
struct seen {
    char text[65536];
    size_t len;
};

static const char *const lookups[] = {"a", "A", "b", "limit", "", "a b", "+"};

static void put(struct seen *s, const char *fmt, const char *x, const char *y)
{
    int n = snprintf(s->text + s->len, sizeof s->text - s->len, fmt, x, y);
    assert_true(n >= 0 && (size_t)n < sizeof s->text - s->len);
    s->len += (size_t)n;
}

static void put_arg(struct seen *s, const char *key, const char *value)
{
    if (value)
        put(s, "%s=%s\n", key, value);
    else
        put(s, "%s%s\n", key, "");
}

static enum MHD_Result mhd_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    put_arg(cls, key, value);
    return MHD_YES;
}

struct first {
    const char *name, *value;
    bool found;
};

static enum MHD_Result mhd_first(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct first *f = cls;
    if (f->found || strcmp(key, f->name) != 0)
        return MHD_YES;
    f->found = true;
    f->value = value;
    return MHD_NO;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)url, (void)method, (void)version, (void)upload_data, (void)upload_size;
    (void)con_cls;
    struct seen *s = cls;
    s->len = 0;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, mhd_arg, s);
    for (size_t i = 0; i < sizeof lookups / sizeof *lookups; i++) {
        struct first f = {lookups[i], NULL, false};
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, mhd_first, &f);
        put(s, "%s->%s\n", lookups[i], f.value ? f.value : "(null)");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* attachd's unescape callback (exchange_unescape) */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    return http_unescape(s);
}

struct peer {
    struct MHD_Daemon *d;
    uint16_t port;
    struct seen seen;
};

static int setup(void **state)
{
    struct peer *p = calloc(1, sizeof *p);
    p->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handler, &p->seen, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024,
                            MHD_OPTION_END);
    assert_non_null(p->d);
    p->port = MHD_get_daemon_info(p->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct peer *p = *state;
    MHD_stop_daemon(p->d);
    free(p);
    return 0;
}

/* What MHD parsed of "GET /p?query" (it answers before the handler
 * returns: the handler ran when the answer is read). */
static const char *mhd_parse(struct peer *p, const char *query)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "GET /p?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", query);
    assert_true(n > 0 && (size_t)n < sizeof req);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
        fail_msg("MHD answered %.60s for ?%s", buf, query);
    return p->seen.text;
}

static const char *our_parse(struct arena *ar, const char *query, struct seen *s)
{
    struct http_query q;
    http_query_parse(&q, ar, query);
    s->len = 0;
    s->text[0] = '\0';
    for (size_t i = 0; i < q.n; i++)
        put_arg(s, q.args[i].key, q.args[i].value);
    for (size_t i = 0; i < sizeof lookups / sizeof *lookups; i++) {
        const char *v = http_query_get(&q, lookups[i]);
        put(s, "%s->%s\n", lookups[i], v ? v : "(null)");
    }
    return s->text;
}

static void same(struct peer *p, const char *query)
{
    struct arena ar;
    arena_init(&ar);
    static struct seen ours;
    const char *want = mhd_parse(p, query);
    const char *got = our_parse(&ar, query, &ours);
    if (strcmp(got, want) != 0)
        fail_msg("?%s\nlibmicrohttpd:\n%s\nattachd:\n%s", query, want, got);
    arena_release(&ar);
}

static void test_query_chosen(void **state)
{
    static const char *const cases[] = {
        "a=1", "a", "a=", "=1", "=", "&", "&&", "a&", "&a", "a&&b", "a=1&a=2", "A=1&a=2",
        "a=b=c", "a=1&b", "b&a=1", "a+b=c+d", "a%20b=%41", "%2B=%2b", "a=%00", "%00=1",
        "a=%4", "a=%zz", "a=%", "limit=1&LIMIT=2", "a=1&%41=2", "+=x", "%2b=y",
        "a=%C3%A9", "a=1&&", "==", "a==1", "%26=%3D",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        same(*state, cases[i]);
}

static void test_query_random(void **state)
{
    static const char *const bits[] = {"a", "A", "b", "=", "&", "+", "%", "%2", "%20", "%41",
                                       "%00", "%2B", "%26", "%3D", "limit", "x"};
    unsigned seed = 20261205;
    char q[256];
    for (int i = 0; i < 2000; i++) {
        size_t len = 0;
        int parts = (int)(rand_r(&seed) % 12);
        for (int k = 0; k < parts; k++) {
            const char *b = bits[rand_r(&seed) % (sizeof bits / sizeof *bits)];
            memcpy(q + len, b, strlen(b));
            len += strlen(b);
        }
        q[len] = '\0';
        same(*state, q);
    }
}

/* Many arguments, as many as a request line holds: all of them count. */
static void test_query_many(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    char raw[6000];
    size_t len = 0;
    for (int i = 0; i < 1500; i++)
        len += (size_t)snprintf(raw + len, sizeof raw - len, "%sa", i ? "&" : "");
    memcpy(raw + len, "&limit=7", 9);
    struct http_query q;
    http_query_parse(&q, &ar, raw);
    assert_int_equal(q.n, 1501);
    assert_null(http_query_get(&q, "a"));
    assert_string_equal(http_query_get(&q, "limit"), "7");
    assert_null(http_query_get(&q, "LIMIT"));    /* names match exactly, as in Nova */
    http_query_parse(&q, &ar, NULL);
    assert_int_equal(q.n, 0);
    assert_null(http_query_get(&q, "a"));
    arena_release(&ar);
}

/* The API's parse for the dialects webob serves (src/api/call.h,
 * query_parse_webob()): each expected result is what webob 1.8's
 * Request.GET made of the query (python3-webob), but for a byte 0, which
 * stays as its text. tests/api/test_query_webob.py checks random queries
 * against webob itself. */
static void test_query_webob(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *args;     /* args: "key=value\n" each; NULL: not UTF-8 */
    } cases[] = {
        {"", ""}, {"a", "a=\n"}, {"a=1;b=2", "a=1\nb=2\n"}, {"&&;;", ""}, {"=", "=\n"},
        {"=x", "=x\n"}, {"a=b=c", "a=b=c\n"}, {"a&a=&a==", "a=\na=\na==\n"},
        {"%", "%=\n"}, {"%%", "%%=\n"}, {"%%41", "%A=\n"}, {"x%4", "x\x04=\n"},
        {"%4%1", "\x04\x01=\n"}, {"%+4", "\x04=\n"}, {"a+b=c+d", "a b=c d\n"},
        {"%-1", "%-1=\n"}, {"%-0", "%-0=\n"}, {"%00", "%00=\n"}, {"%6g", "%6g=\n"},
        {"%0x", "%0x=\n"}, {"%a%", "\n%=\n"}, {"%41%", "A%=\n"},
        {"k%3D=v%26w%3Bz", "k==v&w;z\n"}, {"%C3%A9=%e2%82%ac", "\xc3\xa9=\xe2\x82\xac\n"},
        {"x=%FF", NULL}, {"%C3=%A9", NULL}, {"%f0%9f%98%80", "\xf0\x9f\x98\x80=\n"},
        {"a=%ED%A0%80", NULL}, {"%\t1", "\x01=\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct arena ar;
        arena_init(&ar);
        struct query_arg *args;
        bool utf8;
        size_t n = query_parse_webob(&ar, cases[i].raw, &args, &utf8);
        assert_int_equal(utf8, cases[i].args != NULL);
        if (utf8) {
            char got[256] = "";
            for (size_t k = 0; k < n; k++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s=%s\n", args[k].key,
                         args[k].value);
            if (strcmp(got, cases[i].args) != 0)
                fail_msg("query \"%s\": got \"%s\", webob \"%s\"", cases[i].raw, got,
                         cases[i].args);
        }
        arena_release(&ar);
    }
    struct arena ar;
    arena_init(&ar);
    struct query_arg *args;
    bool utf8;
    assert_int_equal(query_parse_webob(&ar, NULL, &args, &utf8), 0);
    assert_true(utf8);
    arena_release(&ar);
}

/* Times as Nova's "date-time" reads them (src/api/isotime.c): each
 * expected value is what the iso8601 library's parse_date() (1.0.2,
 * python3-iso8601) made of the string, in microseconds since 1970 UTC, or
 * its ParseError. tests/api/test_servers.py checks generated strings
 * against the library itself. Then the text a list compares. */
static void test_query_isotime(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool ok;
        int64_t us;
    } cases[] = {
        {"2026", true, INT64_C(1767225600000000)}, {"2026-12", true, INT64_C(1796083200000000)},
        {"2026-1", true, INT64_C(1767225600000000)}, {"202612", false, 0},
        {"20261206", true, INT64_C(1796515200000000)},
        {"2026-12-06", true, INT64_C(1796515200000000)},
        {"2026-1-6", true, INT64_C(1767657600000000)},
        {"2026-1205", true, INT64_C(1796428800000000)},
        {"2026-12-06T10", true, INT64_C(1796551200000000)},
        {"2026-12-06 10:20", true, INT64_C(1796552400000000)},
        {"2026-12-06T1020", true, INT64_C(1796552400000000)},
        {"2026-12-06T102030", true, INT64_C(1796552430000000)},
        {"2026-12-06T105", true, INT64_C(1796551205000000)},
        {"2026-12-06T10:20:30.5", true, INT64_C(1796552430500000)},
        {"2026-12-06T10:20:30,1234567Z", true, INT64_C(1796552430123456)},
        {"2026-12-06T10:20:30+01:00", true, INT64_C(1796548830000000)},
        {"2026-12-06T10:20:30-0130", true, INT64_C(1796557830000000)},
        {"2026-12-06T10+01", true, INT64_C(1796547600000000)},
        {"2026-12-06T10+01:", true, INT64_C(1796547600000000)},
        {"2026-12-06T10-23:99", false, 0}, {"2026-12-06T10+23:99", false, 0},
        {"2026\n", true, INT64_C(1767225600000000)}, {"2026\n\n", false, 0},
        {"2024-02-29", true, INT64_C(1709164800000000)}, {"2023-02-29", false, 0},
        {"0000-01-01", false, 0},
        {"0001-01-01T00:00:00+01:00", true, INT64_C(-62135600400000000)},
        {"9999-12-31T23:59:59-23:59", true, INT64_C(253402387139000000)},
        {"2026-13-01", false, 0}, {"2026-12-06T24", false, 0},
        {"2026-12-06T23:59:60", false, 0}, {"2026-12-06T", false, 0},
        {"2026-12-06T10:20:30.Z", false, 0}, {"", false, 0}, {"x2026", false, 0},
        {"2026-", false, 0}, {"2026-12-06T10:20Zx", false, 0}, {"2026-12-06t10", false, 0}
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t us = 0;
        bool ok = py_isotime(cases[i].text, &us);
        if (ok != cases[i].ok || (ok && us != cases[i].us))
            fail_msg("\"%s\": got %d %" PRId64 ", iso8601 %d %" PRId64, cases[i].text, ok,
                     us, cases[i].ok, cases[i].us);
    }
    char text[20];
    isotime_text(1796552430, text);
    assert_string_equal(text, "2026-12-06T10:20:30");
    isotime_text(-62135600400, text);           /* before year 1: year 1 */
    assert_string_equal(text, "0001-01-01T00:00:00");
    isotime_text(253402387139, text);           /* after 9999: its last second */
    assert_string_equal(text, "9999-12-31T23:59:59");
    isotime_text(-1, text);
    assert_string_equal(text, "1969-12-31T23:59:59");
    isotime_text(951782400, text);              /* a leap day */
    assert_string_equal(text, "2000-02-29T00:00:00");
}

/* Patterns as Nova's "regex" format takes them (src/api/pyregex.c): each
 * expected answer is whether Python 3.11's re.compile() took the pattern
 * (raising nothing) and it is not empty. tests/api/test_servers.py checks
 * generated patterns against Python itself. Then the bound on nesting. */
static void test_query_regex(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        bool ok;
    } cases[] = {
        {"a", true}, {"", false}, {"(", false}, {")", false}, {"a**", false}, {"a*?", true},
        {"a*+", true}, {"^*", false}, {"\\b+", false}, {"(?:a*)*", true}, {"a{2}{3}", false},
        {"a{3,2}", false}, {"a{,}", true}, {"{", true}, {"a{}", true}, {"x{4294967295}", false},
        {"x{4294967294}", true}, {"[", false}, {"[]", false}, {"[]]", true}, {"[^]]", true},
        {"[a-]", true}, {"[z-a]", false}, {"[\\d-z]", false}, {"[\\B]", false}, {"[\\b]", true},
        {"[\\777]", false}, {"[\\9]", false}, {"\\q", false}, {"\\-", true}, {"\\", false},
        {"a\\\\", true}, {"a\\\\\\", false}, {"\\x4", false}, {"\\x41", true},
        {"\\u00e9", true}, {"\\U0010ffff", true}, {"\\U00110000", false}, {"\\0", true},
        {"\\07", true}, {"\\377", true}, {"\\400", false}, {"\\1", false}, {"(a)\\1", true},
        {"(a\\1)", false}, {"(a)\\2", false}, {"(?P<n>a)(?P=n)", true},
        {"(?P<n>a)(?P<n>b)", false}, {"(?P<1>a)", false}, {"(?P<é>a)", true}, {"(?P=n)", false},
        {"(?#c)", true}, {"(?#c", false}, {"(?=a)", true}, {"(?<=a|bc)", false},
        {"(?<=a|b)", true}, {"(?<=(a)\\1)", false}, {"(a)(?<=\\1)", true},
        {"(?<=a{1,2})", false}, {"(?<=x{2147483647})", true}, {"(?<=x{2147483648})", false},
        {"(?(1)a|b)", false}, {"(a)(?(1)a|b|c)", false}, {"(?(1)a)(b)", true},
        {"(?(2)a)(b)", false}, {"(?(0)a)", false}, {"(?(n)a)", false},
        {"(?P<n>x)(?(n)a)", true}, {"(?( 1)a)(b)", true}, {"(?(+1)a)(b)", true},
        {"(?(-1)a)(b)", false}, {"(?(1_0)a)()()()()()()()()()()", true}, {"(?>a)", true},
        {"(?i)a", true}, {"a(?i)", false}, {"(?i)(?x)a", true}, {"a|(?i)b", false},
        {"(?x) a * # c", true}, {"(?x)a#b\n*", true}, {"(?a)(?u)", false}, {"(?au:a)", false},
        {"(?L)", false}, {"(?t)a", true}, {"(?t)a*", false}, {"(?t:a)", false},
        {"(?-t:a)", false}, {"(?i-i:a)", false}, {"(?a-i:a)", true}, {"(?-a:a)", false},
        {"(?-:a)", false}, {"(?i", false}, {"(?", false}, {"(?P", false}, {"(?Px)", false},
        {"(?<x)", false}, {"(?z)", false}, {"é+", true}, {"\\N{EM DASH}", true}, {"\\N", false},
        /* an escaped letter beyond ASCII is that letter */
        {"\\\xc5\x81*", true}, {"[\\\xc5\xa4-z]", false}, {"\\\xc5\xa1x", true},
    };
    struct arena ar;
    arena_init(&ar);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (py_regex(&ar, cases[i].pattern) != cases[i].ok)
            fail_msg("\"%s\": Python's re.compile() %s it", cases[i].pattern,
                     cases[i].ok ? "takes" : "refuses");
    char deep[2 * 201 + 1];
    for (int depth = 200; depth <= 201; depth++) {
        memset(deep, '(', depth);
        memset(deep + depth, ')', depth);
        deep[2 * depth] = '\0';
        assert_int_equal(py_regex(&ar, deep), depth == 200);
    }
    arena_release(&ar);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_chosen),
        cmocka_unit_test(test_query_random),
        cmocka_unit_test(test_query_many),
        cmocka_unit_test(test_query_webob),
        cmocka_unit_test(test_query_isotime),
        cmocka_unit_test(test_query_regex),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
