/* fuzz_json.c: py_repr(), validate_object() and body_object() (src/api/validate.c)
 * on arbitrary JSON, with field tables like the handlers' (every field type,
 * length bounds, patterns, microversion ranges), and the metadata rules:
 * server_metadata_ok() (Nova's parameter_types.metadata), volume_metadata_ok()
 * (Cinder's), metadata_count_ok().
 *
 * Input: byte 0 picks the microversion (2.1 to 2.89), byte 1 bit 0 the
 * dialect (1: Nova), bit 1 whether the object is named ("thing") or is the
 * top level, bit 2 whether the body goes through body_object() (the text
 * as a request body, the object under "thing") instead, bit 3 whether it
 * runs as a request's step does (inside a recovery point, jansson
 * allocating from the arena: json_memory_use()) or with jansson on malloc
 * (so that ASan and LeakSanitizer see its references), bits 4-5 the
 * metadata check the JSON also goes through when it is an object (0 none,
 * 1 servers, 2 volumes, 3 the count); the rest is JSON.
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
 *  - the metadata checks accept exactly what a reference of their rules
 *    accepts (servers: every key of 1-255 characters of [a-zA-Z0-9-_:. ]
 *    with a string value of at most 255 characters; volumes: keys of 1-255
 *    characters, string values of at most 255; at most 128 items), and
 *    refuse with 400 (403 for the count) whose message names what the
 *    reference says failed first (volumes: the whole message, the key shown
 *    up to 255 characters);
 *  - no message has a U+FFFD that the input did not (the input is valid
 *    JSON, so valid UTF-8: a replacement character in a message means the
 *    text was cut inside a character).
 * FUZZ_JSON_ALLOW=truncate lets a truncated py_repr() ("...") be invalid
 * UTF-8, and =fallback lets the fallback body pass (both: a known finding,
 * see README.md), to look for other failures.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_utf8.h"
#include "api/call.h"
#include "util/arena.h"
#include "util/oom.h"

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

/* The message of an error response (Hostway: its details), in ar. */
static const char *error_message(struct call *c, struct arena *ar)
{
    json_t *j = json_loadb(c->res->body, c->res->body_len, 0, NULL);
    CHECK(j && json_object_size(j) == 1, "error body: %.*s", (int)c->res->body_len, c->res->body);
    json_t *inner = json_object_iter_value(json_object_iter(j));
    json_t *m = json_object_get(inner, c->dialect == DIALECT_NOVA ? "message" : "details");
    CHECK(json_is_string(m), "error without a message: %.*s", (int)c->res->body_len,
          c->res->body);
    const char *msg = arena_strdup(ar, json_string_value(m));
    json_decref(j);
    return msg;
}

static bool has_replacement(const char *s, size_t n)
{
    return memmem(s, n, "\xef\xbf\xbd", 3) != NULL;
}

/* ---- metadata: references of the rules ------------------------------------------- */

static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* The first n characters of s (valid UTF-8), in ar. */
static char *first_chars(struct arena *ar, const char *s, size_t n)
{
    const char *e = s;
    for (size_t k = 0; *e && k <= n; e++)
        if (((unsigned char)*e & 0xc0) != 0x80 && k++ == n)
            break;
    return arena_strndup(ar, s, (size_t)(e - s));
}

static bool server_key_ok(const char *k)
{
    size_t n = chars(k);
    if (n < 1 || n > 255)
        return false;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) && (unsigned char)*k < 0x80) && !strchr("-_:. ", *k))
            return false;
    return true;
}

/* Nova: the values of matching keys first (jsonschema's patternProperties),
 * in order, then the keys that match nothing. NULL: accepted; else the
 * start of the message. */
static const char *ref_server_metadata(struct arena *ar, json_t *md)
{
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        if (server_key_ok(k) && (!json_is_string(v) || chars(json_string_value(v)) > 255))
            return arena_printf(ar, "Invalid input for field/attribute %s. Value: ", k);
    }
    json_object_foreach(md, k, v) {
        if (!server_key_ok(k))
            return "Invalid input for field/attribute metadata. Value: ";
    }
    return NULL;
}

/* Cinder: each item in order, the key then the value. NULL: accepted;
 * else the whole message. */
static const char *ref_volume_metadata(struct arena *ar, json_t *md)
{
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        if (!*k)
            return "Invalid metadata: Metadata key:  has a minimum character requirement of 1.";
        if (chars(k) > 255)
            return arena_printf(ar, "Invalid metadata: Metadata key: %s... has more than 255 "
                                    "characters.", first_chars(ar, k, 255));
        if (!json_is_string(v))
            return arena_printf(ar, "Invalid metadata: Value for metadata key: %s is not a "
                                    "string or unicode", k);
        if (chars(json_string_value(v)) > 255)
            return arena_printf(ar, "Invalid metadata: Value for metadata key: %s has more "
                                    "than 255 characters.", k);
    }
    return NULL;
}

/* ---- the harness ------------------------------------------------------------------ */

struct run {
    const uint8_t *data;
    size_t size;
    struct arena *ar;
    json_t *v;                  /* the input as any JSON value, or NULL */
    struct call c, mc;          /* validation, metadata */
    struct request req, mreq;
    struct response res, mres;
    int md_mode;
    bool via_body, named, accepted, md_ran, md_ok;
};

/* The part that runs as a request's step does, in arena mode. */
static void run(struct run *r)
{
    int version = r->data[0] % MAX_VERSION + 1;
    bool nova = r->data[1] & 1;
    const char *text = (const char *)r->data + 2;
    size_t len = r->size - 2;
    r->v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    r->req = (struct request){.arena = r->ar, .method = METHOD_POST, .path = "/fuzz",
                              .request_id = "req-fuzz", .body = text, .body_len = len};
    r->c = (struct call){.req = &r->req, .res = &r->res, .arena = r->ar,
                         .dialect = nova ? DIALECT_NOVA : DIALECT_HOSTWAY, .version = version,
                         .prefix = ""};
    r->mreq = r->req;
    r->mc = r->c;
    r->mc.req = &r->mreq;
    r->mc.res = &r->mres;
    if (r->via_body) {
        r->accepted = body_object(&r->c, "thing", fields, NULL) != NULL;
        json_decref(r->c.body);
        r->c.body = NULL;
    } else if (r->v) {
        r->accepted = validate_object(&r->c, r->v, r->named ? "thing" : NULL, fields);
    }
    if (r->md_mode && json_is_object(r->v)) {
        r->md_ran = true;
        r->md_ok = r->md_mode == 1 ? server_metadata_ok(&r->mc, r->v)
                 : r->md_mode == 2 ? volume_metadata_ok(&r->mc, r->v)
                                   : metadata_count_ok(&r->mc, r->v);
    }
}

static void check_metadata(struct run *r)
{
    struct call *c = &r->mc;
    const char *want = r->md_mode == 1 ? ref_server_metadata(r->ar, r->v)
                     : r->md_mode == 2 ? ref_volume_metadata(r->ar, r->v)
                     : json_object_size(r->v) > 128
                         ? "Maximum number of metadata items exceeds 128" : NULL;
    static const char *const what[] = {"", "servers", "volumes", "count"};
    CHECK(r->md_ok == !want, "metadata (%s): %s, the reference %s", what[r->md_mode],
          r->md_ok ? "accepted" : "refused", want ? "refuses" : "accepts");
    if (r->md_ok) {
        CHECK(c->res->status == 0 && !c->res->body, "metadata accepted but answered %d",
              c->res->status);
        return;
    }
    int status = r->md_mode == 3 ? 403 : 400;
    CHECK(c->res->status == status && c->res->body, "metadata (%s) refused with %d",
          what[r->md_mode], c->res->status);
    const char *msg = error_message(c, r->ar);
    bool exact = r->md_mode != 1;
    CHECK(exact ? !strcmp(msg, want) : !strncmp(msg, want, strlen(want)),
          "metadata (%s): message\n  \"%s\"\nwant %s\n  \"%s\"", what[r->md_mode], msg,
          exact ? "" : "it to begin with", want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct arena ar;
    arena_init(&ar);
    struct run *r = arena_alloc(&ar, sizeof *r);
    *r = (struct run){.data = data, .size = size, .ar = &ar, .named = data[1] & 2,
                      .via_body = data[1] & 4, .md_mode = (data[1] >> 4) & 3};
    bool arena_mode = data[1] & 8;

    if (arena_mode) {
        /* as router.c's run_step(): out of memory would unwind here */
        struct oom_point p;
        json_memory_use(&ar);
        oom_enter(&p);
        if (setjmp(p.jb) == 0)
            run(r);
        else
            CHECK(false, "out of memory in a step");
        oom_leave(&p);
        json_memory_use(NULL);
    } else {
        run(r);
    }

    /* py_repr of anything */
    json_t *v = r->v;
    if (v) {
        char *rp = py_repr(&ar, v);
        CHECK(rp != NULL, "py_repr returned NULL");
        size_t n = strlen(rp);
        CHECK(n <= 512, "py_repr is %zu bytes", n);     /* > 512 is cut to 500 + "..." */
        for (size_t i = 0; i < n; i++)
            CHECK((unsigned char)rp[i] >= 0x20 && rp[i] != 0x7f,
                  "py_repr has a raw control byte 0x%02x at %zu", (unsigned char)rp[i], i);
        bool truncated = n == 503 && !strcmp(rp + 500, "...");
        CHECK(ref_utf8((const unsigned char *)rp, n) || (allow_truncate && truncated),
              "py_repr is not valid UTF-8 (%zu bytes, truncated: %s)", n,
              truncated ? "yes" : "no");
    }

    /* validate_object / body_object */
    const char *what = r->via_body ? "body_object" : "validate_object";
    bool input_fffd = has_replacement((const char *)data + 2, size - 2);
    if (r->via_body || v) {
        if (r->accepted)
            CHECK(r->res.status == 0 && !r->res.body && (r->via_body || json_is_object(v)),
                  "%s accepted but answered %d", what, r->res.status);
        else
            check_error(&r->c, what);
        CHECK(r->accepted || input_fffd || !has_replacement(r->res.body, r->res.body_len),
              "%s: a U+FFFD the input did not have: %.*s", what, (int)r->res.body_len,
              r->res.body);
    }

    /* metadata */
    if (r->md_ran) {
        check_metadata(r);
        CHECK(r->md_ok || input_fffd || !has_replacement(r->mres.body, r->mres.body_len),
              "metadata: a U+FFFD the input did not have: %.*s", (int)r->mres.body_len,
              r->mres.body);
    }
    if (!arena_mode)
        json_decref(v);     /* in arena mode its blocks go with the arena */
    arena_release(&ar);
    return 0;
}
