/* fuzz_json.c: py_repr(), validate_object() and body_object() (src/api/json.c)
 * on arbitrary JSON, with field tables like the handlers' (every field type,
 * length bounds, patterns, microversion ranges).
 *
 * Input: byte 0 picks the microversion (2.1 to 2.89), byte 1 bit 0 the
 * dialect (1: Nova), bit 1 whether the object is named ("thing") or is the
 * top level, bit 2 whether the body goes through body_object() (the text
 * as a request body, the object under "thing") instead; the rest is JSON.
 *
 * Checks:
 *  - py_repr() of any JSON value (JSON_DECODE_ANY) is valid UTF-8 (JSON
 *    strings are), has no raw control character (repr escapes them), and is
 *    at most 512 bytes (longer is cut to 500 and "...");
 *  - validate_object() / body_object() either accept with no response made,
 *    or refuse with a 400 whose body is valid JSON with exactly one key, in
 *    the dialect's shape (Nova {"badRequest": {"code", "message"}}, Hostway
 *    {"badRequest": {"message", "code", "details", "errorid"}}), with
 *    a real message (not dialect.c's fallback for unencodable text) that
 *    starts as jsonschema's messages do.
 * FUZZ_JSON_ALLOW=truncate lets a truncated py_repr() ("...") be invalid
 * UTF-8, and =fallback lets the fallback body pass (both: a known finding,
 * see README.md), to look for other failures.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_utf8.h"
#include "api/call.h"
#include "util/arena.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_json: CHECK FAILED (%s): ", #cond);       \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

static bool allow_fallback, allow_truncate;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *a = getenv("FUZZ_JSON_ALLOW");
    allow_fallback = a && strstr(a, "fallback");
    allow_truncate = a && strstr(a, "truncate");
    return 0;
}

static bool no_x(const char *s)
{
    return !strchr(s, 'x');
}

static bool dev_ok(const char *s)
{
    return core_device_valid(s);
}

/* One field of every kind the handlers use. */
static const struct field fields[] = {
    {.name = "name", .types = FT_STRING, .min_len = 1, .max_len = 8, .required = true},
    {.name = "volumeId", .types = FT_STRING, .check = no_x, .pattern = "^[^x]*$", .max_len = 255},
    {.name = "device", .types = FT_STRING | FT_NULL, .check = dev_ok,
     .pattern = "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"},
    {.name = "tag", .types = FT_STRING, .min_len = 1, .max_len = 60, .since = 49},
    {.name = "flag", .types = FT_BOOLISH, .since = 79},
    {.name = "size", .types = FT_INTISH, .pattern = "^[0-9]+$"},
    {.name = "count", .types = FT_INTISH},
    {.name = "num", .types = FT_NUMBER | FT_NULL},
    {.name = "meta", .types = FT_OBJECT},
    {.name = "list", .types = FT_ARRAY | FT_STRING, .until = 36},
    {.name = "plain", .types = FT_STRING, .check = no_x},
    {.name = "desc", .types = FT_STRING | FT_NULL, .max_len = 255, .since = 19},
    {.name = "ref", .types = FT_STRING | FT_INTEGER, .min_len = 1, .max_len = 255},
    {.name = "b", .types = FT_BOOLEAN},
    {0},
};

static void check_error(struct call *c, const char *what)
{
    struct response *res = c->res;
    CHECK(res->status == 400, "%s refused with status %d", what, res->status);
    CHECK(res->body && res->content_type && !strcmp(res->content_type, "application/json"),
          "%s: no JSON body", what);
    json_error_t e;
    json_t *j = json_loadb(res->body, res->body_len, 0, &e);
    CHECK(j != NULL, "%s: body is not JSON (%s): %.*s", what, e.text, (int)res->body_len,
          res->body);
    CHECK(json_is_object(j) && json_object_size(j) == 1, "%s: not one key", what);
    json_t *inner = json_object_get(j, "badRequest");
    CHECK(json_is_object(inner), "%s: no badRequest object: %.*s", what, (int)res->body_len,
          res->body);
    const char *msg = json_string_value(json_object_get(inner, "message"));
    const char *details = json_string_value(json_object_get(inner, "details"));
    CHECK(msg != NULL, "%s: no message", what);
    bool fallback = !strcmp(msg, "The request could not be handled.");
    CHECK(!fallback || allow_fallback,
          "%s: fallback body, the real message could not be encoded: %.*s", what,
          (int)res->body_len, res->body);
    if (!fallback) {
        if (c->dialect == DIALECT_NOVA) {
            CHECK(json_object_size(inner) == 2, "%s: Nova body with %zu members", what,
                  json_object_size(inner));
        } else {
            CHECK(json_object_size(inner) == 4 && details &&
                      json_object_get(inner, "errorid"),
                  "%s: not Hostway's shape: %.*s", what, (int)res->body_len, res->body);
            msg = details;
        }
        CHECK(!strncmp(msg, "Invalid input for field/attribute ", 34) ||
                  strstr(msg, "is a required property") ||
                  strstr(msg, "Additional properties are not allowed") ||
                  strstr(msg, "is not of type 'object'") ||
                  !strcmp(msg, "Malformed request body"),
              "%s: unexpected message \"%s\"", what, msg);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int version = data[0] % MAX_VERSION + 1;
    bool nova = data[1] & 1, named = data[1] & 2, via_body = data[1] & 4;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;

    struct arena ar;
    arena_init(&ar);

    /* py_repr of anything */
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (v) {
        char *r = py_repr(&ar, v);
        CHECK(r != NULL, "py_repr returned NULL");
        size_t n = strlen(r);
        CHECK(n <= 512, "py_repr is %zu bytes", n);     /* > 512 is cut to 500 + "..." */
        for (size_t i = 0; i < n; i++)
            CHECK((unsigned char)r[i] >= 0x20 && r[i] != 0x7f,
                  "py_repr has a raw control byte 0x%02x at %zu", (unsigned char)r[i], i);
        bool truncated = n == 503 && !strcmp(r + 500, "...");
        CHECK(ref_utf8((const unsigned char *)r, n) || (allow_truncate && truncated),
              "py_repr is not valid UTF-8 (%zu bytes, truncated: %s)", n,
              truncated ? "yes" : "no");
    }

    /* validate_object / body_object */
    struct request req = {.arena = &ar, .method = METHOD_POST, .path = "/fuzz",
                          .request_id = "req-fuzz", .body = text, .body_len = len};
    struct response res;
    memset(&res, 0, sizeof res);
    struct call c = {.req = &req, .res = &res, .arena = &ar,
                     .dialect = nova ? DIALECT_NOVA : DIALECT_HOSTWAY, .version = version,
                     .prefix = ""};
    if (via_body) {
        json_t *o = body_object(&c, "thing", fields, NULL);
        if (o)
            CHECK(res.status == 0 && !res.body, "body_object accepted but answered %d",
                  res.status);
        else
            check_error(&c, "body_object");
        json_decref(c.body);
    } else if (v) {
        bool ok = validate_object(&c, v, named ? "thing" : NULL, fields);
        if (ok)
            CHECK(json_is_object(v) && res.status == 0 && !res.body,
                  "validate_object accepted but answered %d", res.status);
        else
            check_error(&c, "validate_object");
    }
    json_decref(v);
    arena_release(&ar);
    return 0;
}
