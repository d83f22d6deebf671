/* test_json.c: json_render (src/api/json.c) writes exactly the bytes of
 * jansson's json_dumpb(v, JSON_COMPACT), which it replaced on every answer:
 * on hand-made trees with every kind of value and every character that is
 * escaped, and on random ones. The writer without a tree (struct jw)
 * writes exactly json_render's bytes of the tree its calls describe. */
#include "helpers.h"
#include "api/call.h"

static void same(json_t *v)
{
    struct arena ar;
    arena_init(&ar);
    size_t want_len = json_dumpb(v, NULL, 0, JSON_COMPACT);
    char *want = malloc(want_len + 1);
    json_dumpb(v, want, want_len, JSON_COMPACT);
    want[want_len] = '\0';
    size_t len;
    char *got = json_render(&ar, v, &len);
    if (len != want_len || memcmp(got, want, len) != 0)
        fail_msg("json_render wrote\n%s\njansson\n%s", got, want);
    assert_int_equal(got[len], '\0');
    free(want);
    arena_release(&ar);
}

static void test_values(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:n, s:b, s:b, s:I, s:I, s:I, s:s, s:[], s:{}, s:[i, [], {}, s]}",
                          "null", "t", 1, "f", 0, "zero", (json_int_t)0,
                          "min", (json_int_t)INT64_MIN, "max", (json_int_t)INT64_MAX,
                          "s", "plain", "ea", "eo", "mixed", -7, "x");
    same(v);
    json_decref(v);
    v = json_array();
    same(v);
    json_decref(v);
}

static void test_escapes(void **state)
{
    (void)state;
    char all[128];
    for (int i = 0; i < 127; i++)
        all[i] = (char)(i + 1);             /* every ASCII character but NUL, DEL too */
    all[127] = '\0';
    json_t *v = json_pack("{s:s, s:s, s:s, s:s%}", "ascii", all, "quote\"\\/key\n", "slash/",
                          "utf8", "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8",
                          "nul", "a\0b", (size_t)3);
    same(v);
    json_decref(v);
}

/* Random trees: strings of random bytes made valid UTF-8 by jansson's own
 * check (invalid ones are skipped), integers of any size, nesting. */
static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static json_t *random_string(void)
{
    static const char *pieces[] = {"a", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f",
                                   "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ", "{}",
                                   "\\u0000"};
    char buf[64];
    size_t n = 0, k = next() % 8;
    for (size_t i = 0; i < k; i++) {
        const char *p = pieces[next() % (sizeof pieces / sizeof *pieces)];
        size_t l = strlen(p);
        if (n + l >= sizeof buf)
            break;
        memcpy(buf + n, p, l);
        n += l;
    }
    return json_stringn(buf, n);
}

static json_t *random_value(int depth)
{
    switch (next() % (depth > 3 ? 4 : 6)) {
    case 0: return json_null();
    case 1: return json_boolean(next() % 2);
    case 2: return json_integer((json_int_t)next() >> (next() % 64));
    case 3: return random_string();
    case 4: {
        json_t *a = json_array();
        for (int i = (int)(next() % 5); i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int i = (int)(next() % 5); i > 0; i--) {
            json_t *k = random_string();
            json_object_set_new(o, json_string_value(k), random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_random_trees(void **state)
{
    (void)state;
    for (int i = 0; i < 20000; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "v", random_value(0));
        same(o);
        json_decref(o);
    }
}

/* A real number is left to jansson, with the same bytes. */
static void test_real_falls_back(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:f, s:[f]}", "r", 0.1, "a", 1e300);
    same(v);
    json_decref(v);
}

/* ---- the writer without a tree ------------------------------------------ */

/* w's text is json_render's of want (stolen). */
static void wrote(struct jw *w, json_t *want)
{
    struct arena ar;
    arena_init(&ar);
    size_t want_len, len;
    char *text = json_render(&ar, want, &want_len);
    char *got = jw_finish(w, &len);
    if (len != want_len || memcmp(got, text, len) != 0)
        fail_msg("the writer wrote\n%s\njson_render\n%s", got, text);
    assert_int_equal(got[len], '\0');
    json_decref(want);
    arena_release(&ar);
}

static void test_writer_values(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    struct jw w;
    jw_init(&w, &ar, 1);        /* grows from one byte */
    jw_object(&w, NULL);
    jw_null(&w, "null");
    jw_bool(&w, "t", true);
    jw_bool(&w, "f", false);
    jw_int(&w, "zero", 0);
    jw_int(&w, "min", INT64_MIN);
    jw_int(&w, "max", INT64_MAX);
    jw_int(&w, "neg", -7);
    jw_string(&w, "s", "plain");
    jw_string(&w, "none", NULL);
    jw_array(&w, "ea");
    jw_end_array(&w);
    jw_object(&w, "eo");
    jw_end_object(&w);
    jw_array(&w, "nested");
    jw_int(&w, NULL, 1);
    jw_array(&w, NULL);
    jw_object(&w, NULL);
    jw_array(&w, "deep");
    jw_string(&w, NULL, "x");
    jw_null(&w, NULL);
    jw_end_array(&w);
    jw_end_object(&w);
    jw_end_array(&w);
    jw_object(&w, NULL);
    jw_end_object(&w);
    jw_string(&w, NULL, "y");
    jw_end_array(&w);
    jw_end_object(&w);
    wrote(&w, json_pack("{s:n, s:b, s:b, s:I, s:I, s:I, s:i, s:s, s:n, s:[], s:{},"
                        " s:[i, [{s:[s, n]}], {}, s]}",
                        "null", "t", 1, "f", 0, "zero", (json_int_t)0,
                        "min", (json_int_t)INT64_MIN, "max", (json_int_t)INT64_MAX, "neg", -7,
                        "s", "plain", "none", "ea", "eo", "nested", 1, "deep", "x", "y"));
    arena_release(&ar);
}

static void test_writer_escapes(void **state)
{
    (void)state;
    char all[128];
    for (int i = 0; i < 127; i++)
        all[i] = (char)(i + 1);             /* every ASCII character but NUL, DEL too */
    all[127] = '\0';
    const char *utf8 = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8";
    struct arena ar;
    arena_init(&ar);
    struct jw w;
    jw_init(&w, &ar, 0);
    jw_object(&w, NULL);
    jw_string(&w, "ascii", all);
    jw_string(&w, "quote\"\\/key\n\x01", "slash/ \"q\" \\b\\ \x1f\x7f");
    jw_string(&w, "utf8", utf8);
    /* a string in parts is the string of their concatenation */
    jw_string_open(&w, "parts");
    jw_string_part(&w, all, 64);
    jw_string_part(&w, "", 0);
    jw_string_part(&w, all + 64, 63);
    jw_string_part(&w, utf8, strlen(utf8));
    jw_string_close(&w);
    jw_end_object(&w);
    wrote(&w, json_pack("{s:s, s:s, s:s, s:s+}", "ascii", all,
                        "quote\"\\/key\n\x01", "slash/ \"q\" \\b\\ \x1f\x7f", "utf8", utf8,
                        "parts", all, utf8));
    arena_release(&ar);
}

/* Stored JSON text: what json_loads makes of it, as json_render writes it;
 * {} for text that does not parse. And a tree, as json_render writes it. */
static void test_writer_json_text(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{}", "{\"a\":\"b\"}", "{ \"sp\" : \"x\" }", "{\"a\":\"\\u00e9\\/\\u0001\"}",
        "{\"d\":\"1\",\"d\":\"2\"}", "{\"n\":{\"x\":[1,-2,{\"y\":null,\"t\":true}]}}",
        "{\"r\":1.5,\"e\":1E2}", "[1,\"2\"]", "{\"u\":\"\\ud83d\\ude00\"}",
        "not json", "", "{\"z\":\"a\\u0000b\"}", "{\"big\":12345678901234567890}",
        "{\"x\":\"\xff\"}", NULL,
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct arena ar;
        arena_init(&ar);
        struct jw w;
        jw_init(&w, &ar, 0);
        jw_array(&w, NULL);
        jw_json_text(&w, NULL, texts[i]);
        json_t *v = texts[i] ? json_loads(texts[i], 0, NULL) : NULL;
        if (!v)
            v = json_object();
        jw_value(&w, NULL, v);
        jw_end_array(&w);
        wrote(&w, json_pack("[O, o]", v, v));
        arena_release(&ar);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_random_trees),
        cmocka_unit_test(test_real_falls_back),
        cmocka_unit_test(test_writer_values),
        cmocka_unit_test(test_writer_escapes),
        cmocka_unit_test(test_writer_json_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
