/* validate.c: request bodies checked as Nova's jsonschema checks them.
 *
 * Request bodies are validated the way Nova's jsonschema does it, in the same
 * order (each present property, then required, then additional properties)
 * and with the same messages, so that clients that show Nova's errors show
 * ours unchanged. Python's repr() of a JSON value, which those messages
 * show, is here too. Parsing a body and writing JSON are json.c's; the
 * declarations are call.h's.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/call.h"
#include "util/utf8.h"

/* ---- Python repr, for Nova's "Value: ..." ----------------------------------- */

static void repr(struct arena *ar, json_t *v, char **buf, size_t *len, size_t *cap);

/* Python's float repr: the shortest digits that read back the same, fixed
 * notation for exponents -4..15, else d.ddde+XX. (JSON has no inf or nan.) */
static void py_float(double d, char *out, size_t size)
{
    char e[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    snprintf(e, sizeof e, "%.*e", prec - 1, d);
    char *exp_at = strchr(e, 'e');
    int exp = atoi(exp_at + 1);
    *exp_at = '\0';
    char digits[32];
    size_t nd = 0;
    bool neg = e[0] == '-';
    for (char *p = e; *p; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    digits[nd] = '\0';
    char *o = out;
    size_t left = size;
#define EMIT(...) do { int w_ = snprintf(o, left, __VA_ARGS__); o += w_; left -= (size_t)w_; } while (0)
    if (neg)
        EMIT("-");
    if (exp < -4 || exp >= 16) {
        EMIT("%c", digits[0]);
        if (nd > 1)
            EMIT(".%s", digits + 1);
        EMIT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        EMIT("0.");
        for (int i = -1; i > exp; i--)
            EMIT("0");
        EMIT("%s", digits);
    } else {
        for (int i = 0; i <= exp; i++)
            EMIT("%c", (size_t)i < nd ? digits[i] : '0');
        EMIT(".");
        if ((size_t)exp + 1 < nd)
            EMIT("%s", digits + exp + 1);
        else
            EMIT("0");
    }
#undef EMIT
}

/* Messages show at most this much of a value; appending stops past it, so
 * a huge value costs no more than a small one. */
#define REPR_MAX 512

static void put(struct arena *ar, char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len > REPR_MAX)
        return;
    if (*len + n + 1 > *cap) {
        size_t ncap = (*cap ? *cap : 64);
        while (ncap < *len + n + 1)
            ncap *= 2;
        char *nb = arena_alloc(ar, ncap);
        if (*buf)
            memcpy(nb, *buf, *len);
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

#define PUTS(s) put(ar, buf, len, cap, (s), strlen(s))

static void repr_str(struct arena *ar, const char *s, char **buf, size_t *len, size_t *cap)
{
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    put(ar, buf, len, cap, &q, 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char tmp[8];
        if (ch == '\\' || ch == (unsigned char)q) {
            tmp[0] = '\\', tmp[1] = (char)ch;
            put(ar, buf, len, cap, tmp, 2);
        } else if (ch == '\n') {
            PUTS("\\n");
        } else if (ch == '\r') {
            PUTS("\\r");
        } else if (ch == '\t') {
            PUTS("\\t");
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", ch);
            PUTS(tmp);
        } else {
            put(ar, buf, len, cap, (const char *)&ch, 1);
        }
    }
    put(ar, buf, len, cap, &q, 1);
}

static void repr(struct arena *ar, json_t *v, char **buf, size_t *len, size_t *cap)
{
    char tmp[64];
    switch (json_typeof(v)) {
    case JSON_NULL: PUTS("None"); break;
    case JSON_TRUE: PUTS("True"); break;
    case JSON_FALSE: PUTS("False"); break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        PUTS(tmp);
        break;
    case JSON_REAL:
        py_float(json_real_value(v), tmp, sizeof tmp);
        PUTS(tmp);
        break;
    case JSON_STRING: repr_str(ar, json_string_value(v), buf, len, cap); break;
    case JSON_ARRAY: {
        PUTS("[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                PUTS(", ");
            repr(ar, json_array_get(v, i), buf, len, cap);
        }
        PUTS("]");
        break;
    }
    case JSON_OBJECT: {
        PUTS("{");
        const char *k;
        json_t *val;
        bool first = true;
        json_object_foreach(v, k, val) {
            if (!first)
                PUTS(", ");
            first = false;
            repr_str(ar, k, buf, len, cap);
            PUTS(": ");
            repr(ar, val, buf, len, cap);
        }
        PUTS("}");
        break;
    }
    }
}

/* readable and bounded, and cut between characters */
static char *bounded(char *buf, size_t len)
{
    if (len > REPR_MAX)
        strcpy(buf + utf8_cut(buf, len, REPR_MAX - 12), "...");
    return buf;
}

char *py_repr(struct arena *ar, json_t *v)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    repr(ar, v, &buf, &len, &cap);
    return bounded(buf, len);
}

int py_bool(const char *s)
{
    static const char *const yes[] = {"1", "t", "true", "on", "y", "yes"};
    static const char *const no[] = {"0", "f", "false", "off", "n", "no"};
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == n && !strncasecmp(s, yes[i], n))
            return 1;
        if (strlen(no[i]) == n && !strncasecmp(s, no[i], n))
            return 0;
    }
    return -1;
}

/* Whether the n bytes at s are one of Python's whitespace characters
 * (str.isspace(): ASCII's, U+001C-U+001F, U+0085, U+00A0, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). */
static bool py_space(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1)
        return *u == ' ' || (*u >= '\t' && *u <= '\r') || (*u >= 0x1c && *u <= 0x1f);
    if (n == 2)
        return u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0);
    if (n != 3)
        return false;
    uint32_t cp = (uint32_t)(u[0] & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
    return (u[0] & 0xf0) == 0xe0 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80 &&
           (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
            cp == 0x202f || cp == 0x205f || cp == 0x3000);
}

const char *py_strip(struct arena *ar, const char *text)
{
    size_t at = 0, end = strlen(text);
    for (size_t n = 1; n <= 3 && at < end;)
        if (end - at >= n && py_space(text + at, n)) {
            at += n;
            n = 1;
        } else {
            n++;
        }
    for (size_t n = 1; n <= 3 && at < end;)
        if (end - at >= n && py_space(text + end - n, n)) {
            end -= n;
            n = 1;
        } else {
            n++;
        }
    return arena_strndup(ar, text + at, end - at);
}

char *py_repr_str(struct arena *ar, const char *s)
{
    return py_repr_strs(ar, &s, 1);
}

char *py_repr_strs(struct arena *ar, const char *const *s, size_t n)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(ar, &buf, &len, &cap, ", ", 2);
        repr_str(ar, s[i], &buf, &len, &cap);
    }
    return bounded(buf, len);
}

#undef PUTS

/* ---- booleans and fields -------------------------------------------------- */

/* Nova's parameter_types.boolean: a JSON boolean or one of these strings. */
static const char *const bool_yes[] = {"True", "TRUE", "true", "1", "ON", "On", "on",
                                       "YES", "Yes", "yes"};
static const char *const bool_no[] = {"False", "FALSE", "false", "0", "OFF", "Off", "off",
                                      "NO", "No", "no"};
#define BOOL_ENUM "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', " \
                  "'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', " \
                  "'No', 'no']"

bool json_boolish(json_t *v, bool *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    for (size_t i = 0; i < sizeof bool_yes / sizeof bool_yes[0]; i++) {
        if (!strcmp(json_string_value(v), bool_yes[i]))
            return *out = true, true;
        if (!strcmp(json_string_value(v), bool_no[i]))
            return *out = false, true;
    }
    return false;
}

static const char *type_names(struct arena *ar, unsigned types)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {FT_STRING, "'string'"}, {FT_INTEGER, "'integer'"}, {FT_NUMBER, "'number'"},
        {FT_BOOLEAN, "'boolean'"}, {FT_OBJECT, "'object'"}, {FT_ARRAY, "'array'"},
        {FT_NULL, "'null'"},
    };
    char *s = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (types & names[i].bit)
            s = arena_printf(ar, "%s%s%s", s, *s ? ", " : "", names[i].name);
    return s;
}

static bool type_ok(json_t *v, unsigned types)
{
    bool b;
    return ((types & FT_STRING) && json_is_string(v)) ||
           ((types & FT_NULL) && json_is_null(v)) ||
           ((types & FT_INTEGER) && json_is_integer(v)) ||
           ((types & FT_NUMBER) && json_is_number(v)) ||
           ((types & FT_BOOLEAN) && json_is_boolean(v)) ||
           ((types & FT_OBJECT) && json_is_object(v)) ||
           ((types & FT_ARRAY) && json_is_array(v)) ||
           ((types & FT_BOOLISH) && json_boolish(v, &b));
}

static bool field_exists(const struct call *c, const struct field *f)
{
    return (!f->since || c->version >= f->since) && (!f->until || c->version <= f->until);
}

/* Nova formats "Value: %s" with str(): a string shows bare, the rest as repr. */
static void invalid(struct call *c, const char *field, json_t *v, const char *msg)
{
    const char *value = json_is_string(v) ? json_string_value(v) : py_repr(c->arena, v);
    reply_error(c, 400, "Invalid input for field/attribute %s. Value: %s. %s", field, value,
                msg);
}

static bool check_field(struct call *c, const struct field *f, json_t *v)
{
    struct arena *ar = c->arena;
    if (f->types & FT_BOOLISH) {
        bool b;
        if (!json_is_boolean(v) && !json_is_string(v)) {
            invalid(c, f->name, v,
                    arena_printf(ar, "%s is not of type 'boolean', 'string'", py_repr(ar, v)));
            return false;
        }
        if (!json_boolish(v, &b)) {
            invalid(c, f->name, v,
                    arena_printf(ar, "%s is not one of " BOOL_ENUM, py_repr(ar, v)));
            return false;
        }
        return true;
    }
    if (f->types & FT_INTISH) {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        int64_t n = 0;
        if (!json_is_integer(v) && !json_is_string(v)) {
            invalid(c, f->name, v,
                    arena_printf(ar, "%s is not of type 'integer', 'string'", py_repr(ar, v)));
            return false;
        }
        if (s && !parse_digits(s, &n)) {
            invalid(c, f->name, v, arena_printf(ar, "%s does not match '%s'", py_repr(ar, v),
                                                f->pattern ? f->pattern : "^[0-9]*$"));
            return false;
        }
        if (!s)
            n = json_integer_value(v);
        if (n < 1) {
            invalid(c, f->name, v, arena_printf(ar, "%s is less than the minimum of 1",
                                                py_repr(ar, v)));
            return false;
        }
        return true;
    }
    if (!type_ok(v, f->types)) {
        invalid(c, f->name, v,
                arena_printf(ar, "%s is not of type %s", py_repr(ar, v),
                             f->type_list ? f->type_list : type_names(ar, f->types)));
        return false;
    }
    if (f->one_of && json_is_string(v)) {
        const char *const *o = f->one_of;
        while (*o && strcmp(*o, json_string_value(v)) != 0)
            o++;
        if (!*o) {
            char *list = "";
            for (o = f->one_of; *o; o++)
                list = arena_printf(ar, "%s%s'%s'", list, *list ? ", " : "", *o);
            invalid(c, f->name, v,
                    arena_printf(ar, "%s is not one of [%s]", py_repr(ar, v), list));
            return false;
        }
    }
    if (f->has_minimum && json_is_integer(v) && json_integer_value(v) < f->minimum) {
        invalid(c, f->name, v, arena_printf(ar, "%s is less than the minimum of %lld",
                                            py_repr(ar, v), f->minimum));
        return false;
    }
    if (f->check_value && !f->check_value(c, v))
        return false;
    if (json_is_string(v)) {
        /* jsonschema counts characters, not bytes */
        int chars = utf8_chars(json_string_value(v));
        if (f->min_len && chars < f->min_len) {
            invalid(c, f->name, v, arena_printf(ar, "%s is too short", py_repr(ar, v)));
            return false;
        }
        if (f->max_len && chars > f->max_len) {
            invalid(c, f->name, v, arena_printf(ar, "%s is too long", py_repr(ar, v)));
            return false;
        }
        if (f->check && !f->check(json_string_value(v))) {
            invalid(c, f->name, v,
                    f->pattern ? arena_printf(ar, "%s does not match '%s'", py_repr(ar, v),
                                              f->pattern)
                               : arena_printf(ar, "%s is not valid", py_repr(ar, v)));
            return false;
        }
    }
    return true;
}

/* ---- metadata ------------------------------------------------------------- */

#define METADATA_KEY "^[a-zA-Z0-9-_:. ]{1,255}$"

static bool metadata_key_ok(const char *k)
{
    int n = utf8_chars(k);
    return n >= 1 && n <= 255 &&
           strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:. ") ==
               strlen(k);
}

/* jsonschema's order: patternProperties (each matching key's value: type,
 * then maxLength), then additionalProperties; an error names the key
 * (Nova shows the last element of the error's path). */
bool server_metadata_ok(struct call *c, json_t *md)
{
    struct arena *ar = c->arena;
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        if (!metadata_key_ok(k))
            continue;
        if (!json_is_string(v)) {
            invalid(c, k, v, arena_printf(ar, "%s is not of type 'string'", py_repr(ar, v)));
            return false;
        }
        if (utf8_chars(json_string_value(v)) > 255) {
            invalid(c, k, v, arena_printf(ar, "%s is too long", py_repr(ar, v)));
            return false;
        }
    }
    char *bad = NULL;
    size_t len = 0, cap = 0;
    int n_bad = 0;
    json_object_foreach(md, k, v) {
        if (metadata_key_ok(k))
            continue;
        json_t *ks = json_string(k);
        if (n_bad++)
            put(ar, &bad, &len, &cap, ", ", 2);
        repr(ar, ks, &bad, &len, &cap);
        json_decref(ks);
    }
    if (!n_bad)
        return true;
    if (len > REPR_MAX)
        strcpy(bad + utf8_cut(bad, len, REPR_MAX - 12), "...");
    invalid(c, "metadata", md, arena_printf(ar, "%s %s not match any of the regexes: '%s'", bad,
                                            n_bad == 1 ? "does" : "do", METADATA_KEY));
    return false;
}

/* The first n characters of valid UTF-8 text s (in ar): a message shows a
 * long key that far, and a cut inside a character would not be text. */
static const char *first_chars(struct arena *ar, const char *s, int n)
{
    const char *e = s;
    for (int k = 0; *e; e++)
        if (((unsigned char)*e & 0xc0) != 0x80 && k++ == n)
            break;
    return arena_strndup(ar, s, (size_t)(e - s));
}

bool volume_metadata_ok(struct call *c, json_t *md)
{
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        const char *key = utf8_clean(c->arena, k);
        if (!*k) {
            reply_error(c, 400, "Invalid metadata: Metadata key: %s has a minimum character "
                                "requirement of 1.", key);
            return false;
        }
        if (utf8_chars(k) > 255) {
            reply_error(c, 400, "Invalid metadata: Metadata key: %s... has more than 255 "
                                "characters.", first_chars(c->arena, key, 255));
            return false;
        }
        if (!json_is_string(v)) {
            reply_error(c, 400, "Invalid metadata: Value for metadata key: %s is not a string "
                                "or unicode", key);
            return false;
        }
        if (utf8_chars(json_string_value(v)) > 255) {
            reply_error(c, 400, "Invalid metadata: Value for metadata key: %s has more than 255 "
                                "characters.", key);
            return false;
        }
    }
    return true;
}

bool metadata_count_ok(struct call *c, json_t *md)
{
    if (!json_is_object(md) || json_object_size(md) <= CORE_MAX_METADATA_ITEMS)
        return true;
    reply_error(c, 403, "Maximum number of metadata items exceeds %d", CORE_MAX_METADATA_ITEMS);
    return false;
}

/* ---- objects -------------------------------------------------------------- */

bool validate_object(struct call *c, json_t *obj, const char *at, const struct field *fields)
{
    struct arena *ar = c->arena;
    if (!json_is_object(obj)) {
        if (at)
            invalid(c, at, obj, arena_printf(ar, "%s is not of type 'object'", py_repr(ar, obj)));
        else
            reply_error(c, 400, "%s is not of type 'object'", py_repr(ar, obj));
        return false;
    }
    for (const struct field *f = fields; f->name; f++) {
        json_t *v = json_object_get(obj, f->name);
        if (v && field_exists(c, f) && !check_field(c, f, v))
            return false;
    }
    for (const struct field *f = fields; f->name; f++) {
        if (f->required && field_exists(c, f) && !json_object_get(obj, f->name)) {
            const char *msg = arena_printf(ar, "'%s' is a required property", f->name);
            if (at)
                invalid(c, at, obj, msg);
            else
                reply_error(c, 400, "%s", msg);
            return false;
        }
    }
    const struct field *last = fields;
    while (last->name && last[1].name)
        last++;
    if (last->name && !strcmp(last->name, FIELD_ANY_OTHER))
        return true;
    const char *k;
    json_t *v;
    char *extra = NULL;     /* the unexpected names, bounded like any value */
    size_t len = 0, cap = 0;
    int n_extra = 0;
    json_object_foreach(obj, k, v) {
        const struct field *f = fields;
        while (f->name && (strcmp(f->name, k) != 0 || !field_exists(c, f)))
            f++;
        if (!f->name) {
            json_t *ks = json_string(k);
            if (n_extra++)
                put(ar, &extra, &len, &cap, ", ", 2);
            repr(ar, ks, &extra, &len, &cap);
            json_decref(ks);
        }
    }
    if (len > REPR_MAX)
        strcpy(extra + utf8_cut(extra, len, REPR_MAX - 12), "...");
    if (n_extra) {
        const char *msg = arena_printf(ar, "Additional properties are not allowed (%s %s unexpected)",
                                       extra, n_extra == 1 ? "was" : "were");
        if (at)
            invalid(c, at, obj, msg);
        else
            reply_error(c, 400, "%s", msg);
        return false;
    }
    return true;
}

json_t *body_object(struct call *c, const char *key, const struct field *fields,
                    const struct field *also)
{
    struct field top[4] = {{.name = key, .types = FT_OBJECT, .required = true}};
    for (int i = 1; also && also[i - 1].name && i < 3; i++)
        top[i] = also[i - 1];
    if (!body_parse(c))
        return NULL;
    /* jsonschema's order: the properties present (descending into them),
     * then required, then additional properties */
    json_t *obj = json_is_object(c->body) ? json_object_get(c->body, key) : NULL;
    if (obj && !validate_object(c, obj, key, fields))
        return NULL;
    return validate_object(c, c->body, NULL, top) ? obj : NULL;
}
