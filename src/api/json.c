/* json.c: jansson's memory, request bodies parsed, JSON written, and
 * small renderers.
 *
 * Validating a body against its fields, with Nova's jsonschema order and
 * messages, is validate.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/call.h"

/* ---- memory ----------------------------------------------------------------
 * jansson allocates through these for the whole process. Inside a call's
 * step (json_memory_use() set) a block comes from the call's arena and is
 * freed with it: decref frees nothing, and a step that runs out of memory
 * and is abandoned (util/oom.h) leaks nothing. Elsewhere (the CLI, the
 * fuzzers) blocks come from malloc. A header says which. */

struct json_block {
    uint64_t from_arena;
    uint64_t pad;               /* keeps the payload 16-byte aligned */
};

static _Thread_local struct arena *json_arena;

void json_memory_use(struct arena *ar)
{
    json_arena = ar;
}

static void *json_block_alloc(size_t n)
{
    struct json_block *b;
    if (json_arena) {
        b = arena_alloc(json_arena, sizeof *b + n);
        b->from_arena = 1;
    } else {
        b = malloc(sizeof *b + n);
        if (!b)
            return NULL;
        b->from_arena = 0;
    }
    return b + 1;
}

static void json_block_free(void *p)
{
    if (!p)
        return;
    struct json_block *b = (struct json_block *)p - 1;
    if (!b->from_arena)
        free(b);
}

/* Before main, so that no block jansson hands out predates the header. */
__attribute__((constructor)) static void json_memory_init(void)
{
    json_set_alloc_funcs(json_block_alloc, json_block_free);
}

/* ---- bodies --------------------------------------------------------------- */

bool body_parse(struct call *c)
{
    if (c->req->body_len == 0) {
        c->body = json_null();
        return true;
    }
    json_error_t e;
    c->body = json_loadb(c->req->body, c->req->body_len, 0, &e);
    if (!c->body) {
        reply_error(c, 400, "Malformed request body");
        return false;
    }
    return true;
}

/* ---- writing JSON ----------------------------------------------------------
 * The exact bytes of json_dumpb(v, JSON_COMPACT) (jansson 2.14's dump.c:
 * objects in insertion order, "," and ":" without spaces, strings escaped
 * with \" \\ \b \f \n \r \t and \u00XX, upper case, for the other control
 * characters, everything else as is), written by a first pass that sizes
 * the text and a second that writes it into the arena: jansson's dump makes
 * a callback per token, which made up a fifth of a GET of a server. A tree
 * with a real number in it (no answer has one) is left to jansson. */

static const char HEX[] = "0123456789ABCDEF";

/* The escaped length of a string's text, without its quotes; writes it too
 * when out is not NULL. At most 6 * len. */
static size_t put_escaped(char *out, const char *str, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)str[i];
        const char *esc = NULL;
        if (ch == '"')
            esc = "\\\"";
        else if (ch == '\\')
            esc = "\\\\";
        else if (ch < 0x20) {
            switch (ch) {
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                n += 6;
                if (out) {
                    memcpy(out, "\\u00", 4);
                    out[4] = HEX[ch >> 4];
                    out[5] = HEX[ch & 15];
                    out += 6;
                }
                continue;
            }
        }
        if (esc) {
            n += 2;
            if (out) {
                *out++ = esc[0];
                *out++ = esc[1];
            }
        } else {
            n++;
            if (out)
                *out++ = (char)ch;
        }
    }
    return n;
}

/* The escaped length of a string, quoted; writes it too when out is not
 * NULL. */
static size_t put_string(char *out, const char *str, size_t len)
{
    size_t n = put_escaped(out ? out + 1 : NULL, str, len);
    if (out) {
        out[0] = '"';
        out[n + 1] = '"';
    }
    return n + 2;
}

/* Writes v at out (when not NULL) and returns its length; (size_t)-1 for a
 * value left to jansson. */
static size_t put_value(char *out, json_t *v)
{
    char num[32];
    size_t n;
    switch (json_typeof(v)) {
    case JSON_NULL:
        if (out)
            memcpy(out, "null", 4);
        return 4;
    case JSON_TRUE:
        if (out)
            memcpy(out, "true", 4);
        return 4;
    case JSON_FALSE:
        if (out)
            memcpy(out, "false", 5);
        return 5;
    case JSON_INTEGER:
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (out)
            memcpy(out, num, n);
        return n;
    case JSON_STRING:
        return put_string(out, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        n = 1;
        if (out)
            out[0] = '[';
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) {
                if (out)
                    out[n] = ',';
                n++;
            }
            size_t k = put_value(out ? out + n : NULL, json_array_get(v, i));
            if (k == (size_t)-1)
                return k;
            n += k;
        }
        if (out)
            out[n] = ']';
        return n + 1;
    }
    case JSON_OBJECT: {
        n = 1;
        if (out)
            out[0] = '{';
        bool first = true;
        for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
            if (!first) {
                if (out)
                    out[n] = ',';
                n++;
            }
            first = false;
            n += put_string(out ? out + n : NULL, json_object_iter_key(it),
                            json_object_iter_key_len(it));
            if (out)
                out[n] = ':';
            n++;
            size_t k = put_value(out ? out + n : NULL, json_object_iter_value(it));
            if (k == (size_t)-1)
                return k;
            n += k;
        }
        if (out)
            out[n] = '}';
        return n + 1;
    }
    case JSON_REAL:
        break;
    }
    return (size_t)-1;
}

char *json_render(struct arena *ar, json_t *v, size_t *len)
{
    size_t n = put_value(NULL, v);
    char *buf;
    if (n != (size_t)-1) {
        buf = arena_alloc(ar, n + 1);
        put_value(buf, v);
    } else {
        n = json_dumpb(v, NULL, 0, JSON_COMPACT);
        buf = arena_alloc(ar, n + 1);
        json_dumpb(v, buf, n, JSON_COMPACT);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- writing JSON without a tree ------------------------------------------
 * The same bytes as json_render's of the tree the calls describe: the
 * escaping is put_escaped's, integers are JSON_INTEGER_FORMAT's. */

void jw_init(struct jw *w, struct arena *ar, size_t cap)
{
    *w = (struct jw){.arena = ar, .cap = cap ? cap : 256};
    w->buf = arena_alloc(ar, w->cap);
}

/* Room for n more bytes and the final NUL; returns where they go. */
static char *jw_room(struct jw *w, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap * 2;
        while (w->len + n + 1 > cap)
            cap *= 2;
        char *buf = arena_alloc(w->arena, cap);
        memcpy(buf, w->buf, w->len);
        w->buf = buf;
        w->cap = cap;
    }
    return w->buf + w->len;
}

static void jw_put(struct jw *w, const char *s, size_t n)
{
    memcpy(jw_room(w, n), s, n);
    w->len += n;
}

/* What comes before a value: the comma after the previous member or
 * element, and the key, if any. */
static void jw_lead(struct jw *w, const char *key)
{
    if (w->comma)
        jw_put(w, ",", 1);
    if (key) {
        size_t n = strlen(key);
        w->len += put_string(jw_room(w, 6 * n + 3), key, n);
        jw_put(w, ":", 1);
    }
    w->comma = true;
}

void jw_object(struct jw *w, const char *key)
{
    jw_lead(w, key);
    jw_put(w, "{", 1);
    w->comma = false;
}

void jw_array(struct jw *w, const char *key)
{
    jw_lead(w, key);
    jw_put(w, "[", 1);
    w->comma = false;
}

void jw_end_object(struct jw *w)
{
    jw_put(w, "}", 1);
    w->comma = true;
}

void jw_end_array(struct jw *w)
{
    jw_put(w, "]", 1);
    w->comma = true;
}

void jw_string(struct jw *w, const char *key, const char *s)
{
    if (!s) {
        jw_null(w, key);
        return;
    }
    jw_string_open(w, key);
    jw_string_part(w, s, strlen(s));
    jw_string_close(w);
}

void jw_string_open(struct jw *w, const char *key)
{
    jw_lead(w, key);
    jw_put(w, "\"", 1);
}

void jw_string_part(struct jw *w, const char *s, size_t len)
{
    w->len += put_escaped(jw_room(w, 6 * len), s, len);
}

void jw_string_close(struct jw *w)
{
    jw_put(w, "\"", 1);
}

void jw_int(struct jw *w, const char *key, json_int_t v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, v);
    jw_lead(w, key);
    jw_put(w, num, (size_t)n);
}

void jw_bool(struct jw *w, const char *key, bool v)
{
    jw_lead(w, key);
    if (v)
        jw_put(w, "true", 4);
    else
        jw_put(w, "false", 5);
}

void jw_null(struct jw *w, const char *key)
{
    jw_lead(w, key);
    jw_put(w, "null", 4);
}

void jw_value(struct jw *w, const char *key, json_t *v)
{
    jw_lead(w, key);
    size_t n = put_value(NULL, v);
    if (n != (size_t)-1) {
        put_value(jw_room(w, n), v);
    } else {
        n = json_dumpb(v, NULL, 0, JSON_COMPACT);
        json_dumpb(v, jw_room(w, n), n, JSON_COMPACT);
    }
    w->len += n;
}

void jw_json_text(struct jw *w, const char *key, const char *text)
{
    /* most servers have no metadata: its text needs no parse */
    if (text && !strcmp(text, "{}")) {
        jw_lead(w, key);
        jw_put(w, "{}", 2);
        return;
    }
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    if (v)
        jw_value(w, key, v);
    else {
        jw_object(w, key);
        jw_end_object(w);
    }
    json_decref(v);
}

char *jw_finish(struct jw *w, size_t *len)
{
    *jw_room(w, 0) = '\0';
    *len = w->len;
    return w->buf;
}

char *json_text(struct call *c, json_t *v)
{
    size_t n;
    return json_render(c->arena, v, &n);
}

/* ---- renderers ------------------------------------------------------------ */

size_t answer_estimate(size_t fixed, const char *json_text, const char *text)
{
    return fixed + (json_text ? strlen(json_text) : 0) + 6 * (text ? strlen(text) : 0);
}

json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

char *url_escape(struct arena *ar, const char *s)
{
    char *out = arena_alloc(ar, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            *o++ = (char)ch;
        else
            o += sprintf(o, "%%%02X", ch);
    }
    *o = '\0';
    return out;
}

char *render_time(struct arena *ar, const char *t, int style)
{
    if (!t)
        return NULL;
    switch (style) {
    case TIME_ISO_Z: return arena_printf(ar, "%.19sZ", t);
    case TIME_SPACE: {
        char *s = arena_printf(ar, "%.19s", t);
        if (strlen(s) > 10)
            s[10] = ' ';
        return s;
    }
    default: return arena_strdup(ar, t);
    }
}

json_t *render_links(struct call *c, const char *collection, const char *id)
{
    /* Hostway's documented volume links end in a slash; its server links
     * are not documented, and the Location header must name the server. */
    if (c->dialect == DIALECT_HOSTWAY)
        return json_pack("[{s:s, s:s}]", "href",
                         arena_printf(c->arena, "%s%s/%s/%s%s", c->base, c->prefix, collection,
                                      id, strcmp(collection, "volumes") ? "" : "/"),
                         "rel", "self");
    const char *bookmark_prefix = c->account_in_path
                                      ? arena_printf(c->arena, "/%s", c->account_in_path) : "";
    return json_pack("[{s:s, s:s}, {s:s, s:s}]",
                     "rel", "self", "href",
                     arena_printf(c->arena, "%s%s/%s/%s", c->base, c->prefix, collection, id),
                     "rel", "bookmark", "href",
                     arena_printf(c->arena, "%s%s/%s/%s", c->base, bookmark_prefix, collection, id));
}

void jw_time(struct jw *w, const char *key, const char *t, int style)
{
    if (!t) {
        jw_null(w, key);
        return;
    }
    size_t n = style == TIME_ISO_MICRO ? strlen(t) : strnlen(t, 19);
    if (style == TIME_SPACE && n > 10) {
        /* render_time's text: the space in place of the 'T' */
        jw_string_open(w, key);
        jw_string_part(w, t, 10);
        jw_string_part(w, " ", 1);
        jw_string_part(w, t + 11, n - 11);
        jw_string_close(w);
        return;
    }
    jw_string_open(w, key);
    jw_string_part(w, t, n);
    if (style == TIME_ISO_Z)
        jw_string_part(w, "Z", 1);
    jw_string_close(w);
}

/* A string made of parts (NULL-ended), as if concatenated. */
static void jw_string_cat(struct jw *w, const char *key, const char *const *parts)
{
    jw_string_open(w, key);
    for (; *parts; parts++)
        jw_string_part(w, *parts, strlen(*parts));
    jw_string_close(w);
}

void jw_links(struct jw *w, struct call *c, const char *key, const char *collection,
              const char *id)
{
    jw_array(w, key);
    jw_object(w, NULL);
    if (c->dialect == DIALECT_HOSTWAY) {
        jw_string_cat(w, "href", (const char *const[]){
            c->base, c->prefix, "/", collection, "/", id,
            strcmp(collection, "volumes") ? "" : "/", NULL});
        jw_string(w, "rel", "self");
    } else {
        const char *account = c->account_in_path;
        jw_string(w, "rel", "self");
        jw_string_cat(w, "href", (const char *const[]){
            c->base, c->prefix, "/", collection, "/", id, NULL});
        jw_end_object(w);
        jw_object(w, NULL);
        jw_string(w, "rel", "bookmark");
        jw_string_cat(w, "href", (const char *const[]){
            c->base, account ? "/" : "", account ? account : "", "/", collection, "/", id,
            NULL});
    }
    jw_end_object(w);
    jw_end_array(w);
}
