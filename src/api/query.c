/* query.c: a request's query parameters read as each dialect's service
 * reads them (webob's parse, Nova's query schemas, Cinder's and Glance's
 * pop()), and the query of a next link written as each writes it.
 *
 * The Hostway dialect reads the HTTP layer's parse (src/http/query.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/call.h"
#include "util/utf8.h"

/* ---- the arguments, as webob parses them -------------------------------- */

static bool py_space(char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* Python's int(x, 16) of the n (at most two) bytes at x: blanks around, a
 * sign, hex digits. */
static bool py_hex(const char *x, size_t n, int *v)
{
    size_t i = 0;
    while (i < n && py_space(x[i]))
        i++;
    while (n > i && py_space(x[n - 1]))
        n--;
    int sign = 1;
    if (i < n && (x[i] == '-' || x[i] == '+'))
        sign = x[i++] == '-' ? -1 : 1;
    if (i == n)
        return false;
    for (*v = 0; i < n; i++) {
        if (!isxdigit((unsigned char)x[i]))
            return false;
        *v = *v * 16 + (isdigit((unsigned char)x[i]) ? x[i] - '0' : (x[i] | 0x20) - 'a' + 10);
    }
    *v *= sign;
    return true;
}

/* webob's unquote() of the n bytes at s: each '%' with the up to two bytes
 * after it, before the next '%', that py_hex() reads as 1 to 255 becomes
 * that byte; else the '%' stays, and what follows is read as text. */
static char *webob_unquote(struct arena *ar, const char *s, size_t n)
{
    char *out = arena_alloc(ar, n + 1), *o = out;
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        while (s[i] == '%' && k < 2 && i + 1 + k < n && s[i + 1 + k] != '%')
            k++;
        int v;
        if (s[i] == '%' && py_hex(s + i + 1, k, &v) && v > 0) {
            *o++ = (char)v;
            i += 1 + k;
        } else {
            *o++ = s[i++];
        }
    }
    *o = '\0';
    return out;
}

size_t query_parse_webob(struct arena *ar, const char *raw, struct query_arg **args, bool *utf8)
{
    *args = NULL;
    *utf8 = true;
    if (!raw)
        return 0;
    char *q = arena_strdup(ar, raw);
    size_t most = 1, n = 0;
    for (char *p = q; *p; p++) {
        if (*p == '+')
            *p = ' ';
        most += *p == '&' || *p == ';';
    }
    struct query_arg *a = arena_alloc(ar, most * sizeof *a);
    for (char *arg = q;; arg++) {
        size_t len = strcspn(arg, "&;");
        if (len) {
            const char *eq = memchr(arg, '=', len);
            size_t key_len = eq ? (size_t)(eq - arg) : len;
            a[n].key = webob_unquote(ar, arg, key_len);
            a[n].value = eq ? webob_unquote(ar, eq + 1, len - key_len - 1) : "";
            *utf8 = *utf8 && utf8_valid(a[n].key, strlen(a[n].key)) &&
                    utf8_valid(a[n].value, strlen(a[n].value));
            n++;
        }
        arg += len;
        if (!*arg)
            break;
    }
    *args = a;
    return n;
}

/* The dialects webob serves read its parse, made once per call. */
static bool webob_read(struct call *c, bool *utf8)
{
    if (c->dialect != DIALECT_NOVA)
        return false;
    if (!c->args_read) {
        c->n_args = query_parse_webob(c->arena, c->req->query_string, &c->args, &c->args_utf8);
        c->args_read = true;
    }
    if (utf8)
        *utf8 = c->args_utf8;
    return true;
}

bool query_decodes(struct call *c)
{
    bool utf8;
    if (c->cinder || c->glance || !webob_read(c, &utf8) || utf8)
        return true;
    reply_error(c, 400, "Query string is not UTF-8 encoded");
    return false;
}

void query_each(struct call *c, bool (*fn)(void *cls, const char *key, const char *value),
                void *cls)
{
    if (!webob_read(c, NULL)) {
        c->req->each_query(c->req->http, fn, cls);
        return;
    }
    for (size_t i = 0; i < c->n_args; i++)
        if (!fn(cls, c->args[i].key, c->args[i].value))
            return;
}

const char *query_first(struct call *c, const char *name)
{
    if (!webob_read(c, NULL))
        return c->req->query(c->req->http, name);
    for (size_t i = 0; i < c->n_args; i++)
        if (!strcmp(c->args[i].key, name))
            return c->args[i].value;
    return NULL;
}

/* ---- reading them -------------------------------------------------------- */

bool parse_digits(const char *s, int64_t *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s))
        return false;
    *out = 0;
    for (; *s && *out < DIGITS_MAX; s++)
        *out = *out * 10 + (*s - '0');
    if (*out > DIGITS_MAX || *s)
        *out = DIGITS_MAX;
    return true;
}

struct last_ctx {
    const char *name, *value;
};

static bool last_value(void *cls, const char *key, const char *value)
{
    struct last_ctx *l = cls;
    if (!strcmp(key, l->name))
        l->value = value;
    return true;
}

const char *query_last(struct call *c, const char *name)
{
    struct last_ctx l = {name, NULL};
    query_each(c, last_value, &l);
    return l.value;
}

struct all_ctx {
    const char *name;
    const char **values;        /* NULL: only count them */
    int n;
};

static bool all_values(void *cls, const char *key, const char *value)
{
    struct all_ctx *a = cls;
    if (strcmp(key, a->name) != 0)
        return true;
    if (a->values)
        a->values[a->n] = value ? value : "";
    a->n++;
    return true;
}

int query_all(struct call *c, const char *name, const char ***values)
{
    struct all_ctx a = {name, NULL, 0};
    query_each(c, all_values, &a);
    *values = a.values = arena_alloc(c->arena, ((size_t)a.n + 1) * sizeof *a.values);
    a.n = 0;
    query_each(c, all_values, &a);
    return a.n;
}

struct bad_ctx {
    const char *name;
    bool (*ok)(const char *value, const void *arg);
    const void *arg;
    const char *bad;
};

static bool find_bad(void *cls, const char *key, const char *value)
{
    struct bad_ctx *b = cls;
    if (strcmp(key, b->name) != 0 || b->ok(value, b->arg))
        return true;
    b->bad = value;
    return false;
}

const char *query_first_bad(struct call *c, const char *name,
                            bool (*ok)(const char *value, const void *arg), const void *arg)
{
    struct bad_ctx b = {name, ok, arg, NULL};
    query_each(c, find_bad, &b);
    return b.bad;
}

/* '^[0-9]*$' as jsonschema searches with it: digits, and a last "\n" that
 * Python's `$` allows before the end; minLength 1. */
static bool digits(const char *value, const void *arg)
{
    (void)arg;
    size_t n = strspn(value, "0123456789");
    return *value && (!value[n] || (value[n] == '\n' && !value[n + 1]));
}

bool query_digits(struct call *c, const char *name)
{
    const char *bad = query_first_bad(c, name, digits, NULL);
    if (!bad)
        return true;
    const char *why = *bad ? arena_printf(c->arena, "%s does not match '^[0-9]*$'",
                                          py_repr_str(c->arena, bad))
                           : "'' is too short";
    reply_invalid_query(c, name, bad, why);
    return false;
}

static bool isotime(const char *value, const void *arg)
{
    (void)arg;
    int64_t us;
    return py_isotime(value, &us);
}

bool query_isotime(struct call *c, const char *name)
{
    const char *bad = query_first_bad(c, name, isotime, NULL);
    if (!bad)
        return true;
    reply_invalid_query(c, name, bad,
                        arena_printf(c->arena, "%s is not a 'date-time'",
                                     py_repr_str(c->arena, bad)));
    return false;
}

static bool regex(const char *value, const void *arena)
{
    return py_regex((struct arena *)arena, value);
}

bool query_regex(struct call *c, const char *name)
{
    const char *bad = query_first_bad(c, name, regex, c->arena);
    if (!bad)
        return true;
    reply_invalid_query(c, name, bad,
                        arena_printf(c->arena, "%s is not a 'regex'", py_repr_str(c->arena, bad)));
    return false;
}

static bool in_list(const char *value, const void *list)
{
    for (const char *const *l = list; *l; l++)
        if (!strcmp(value, *l))
            return true;
    return false;
}

bool query_enum(struct call *c, const char *name, const char *const *values)
{
    const char *bad = query_first_bad(c, name, in_list, values);
    if (!bad)
        return true;
    /* the list as Python's repr() shows it, whole: the values are names */
    size_t len = 3;
    for (const char *const *v = values; *v; v++)
        len += strlen(*v) + 4;
    char *list = arena_alloc(c->arena, len), *o = list;
    *o++ = '[';
    for (const char *const *v = values; *v; v++)
        o += sprintf(o, "%s'%s'", v == values ? "" : ", ", *v);
    strcpy(o, "]");
    reply_invalid_query(c, name, bad,
                        arena_printf(c->arena, "%s is not one of %s", py_repr_str(c->arena, bad),
                                     list));
    return false;
}

void reply_invalid_query(struct call *c, const char *name, const char *value, const char *why)
{
    reply_error(c, 400, "Invalid input for query parameters %s. Value: %s. %s", name, value,
                why);
}

/* Cinder's paging (cinder/api/common.py): the first value of each, as its
 * params.pop() takes it, and its own words for a bad one. */
static bool cinder_number(struct call *c, const char *name, int64_t *v)
{
    const char *s = query_first(c, name);
    if (!s)
        return true;
    if (parse_digits(s, v))
        return true;
    reply_error(c, 400, *s == '-' && parse_digits(s + 1, v) ? "%s param must be positive"
                                                            : "%s param must be an integer",
                name);
    return false;
}

bool nova_number(struct call *c, const char *name, int64_t *v)
{
    if (!query_digits(c, name))
        return false;
    const char *s = query_last(c, name);
    if (!s)
        return true;
    /* then Nova's validate_integer(): Python's int(), which skips the "\n"
     * and finds no number in it alone */
    size_t n = strcspn(s, "\n");
    if (n == 0) {
        reply_error(c, 400, "Invalid input received: %s must be an integer", name);
        return false;
    }
    parse_digits(arena_strndup(c->arena, s, n), v);
    return true;
}

bool query_paging(struct call *c, struct paging *p, bool with_marker)
{
    bool (*number)(struct call *, const char *, int64_t *) = c->cinder ? cinder_number
                                                                       : nova_number;
    int64_t limit = -1, offset = 0;
    p->limit = -1;
    p->offset = 0;
    p->marker = NULL;
    if (!c->cinder && (!query_digits(c, "limit") || (!with_marker && !query_digits(c, "offset"))))
        return false;       /* Nova's schema checks both before it reads either */
    if (!number(c, "limit", &limit) || (!with_marker && !number(c, "offset", &offset)))
        return false;
    if (limit >= 0)     /* Nova's limited(): on offset-paged lists 0 means "no limit" */
        p->limit = limit > 1000 || (limit == 0 && !with_marker) ? 1000 : (int)limit;
    p->offset = offset;
    if (with_marker)
        p->marker = c->cinder ? query_first(c, "marker") : query_last(c, "marker");
    return true;
}

/* application/x-www-form-urlencoded, as Python's urlencode. */
static char *form_escape(struct arena *ar, const char *s)
{
    char *out = arena_alloc(ar, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')
            *o++ = (char)ch;
        else if (ch == ' ')
            *o++ = '+';
        else
            o += sprintf(o, "%%%02X", ch);
    }
    *o = '\0';
    return out;
}

struct query_item {
    const char *key, *value;
    size_t at;                  /* its place in the request */
};

struct query_copy {
    struct query_item *items;
    size_t n;
};

static bool count_param(void *cls, const char *key, const char *value)
{
    (void)key, (void)value;
    ++*(size_t *)cls;
    return true;
}

static bool copy_param(void *cls, const char *key, const char *value)
{
    struct query_copy *q = cls;
    q->items[q->n] = (struct query_item){key, value, q->n};
    q->n++;
    return true;
}

static int cmp_at(size_t a, size_t b)
{
    return (a > b) - (a < b);
}

/* Python's sorted() of the (key, value) pairs */
static int by_key_and_value(const void *a, const void *b)
{
    const struct query_item *x = a, *y = b;
    int k = strcmp(x->key, y->key);
    return k ? k : strcmp(x->value, y->value);
}

static int by_key_then_place(const void *a, const void *b)
{
    const struct query_item *x = a, *y = b;
    int k = strcmp(x->key, y->key);
    return k ? k : cmp_at(x->at, y->at);
}

static int by_place(const void *a, const void *b)
{
    return cmp_at(((const struct query_item *)a)->at, ((const struct query_item *)b)->at);
}

/* The request's query again, as Python's urlencode writes a dict of it,
 * with the marker set (marker NULL: none). Nova's next links
 * (common.py's _get_next_link) are OrderedDict(sorted(params.items())): by
 * name, and of one name the largest value, the marker set in its place or
 * else added last. Glance's (images.py) are dict(params) without the
 * marker: the first place of each name, with its last value, and the
 * marker added last. Sorting keeps a long query's cost n log n. */
const char *query_with_marker(struct call *c, const char *marker, bool sorted)
{
    size_t most = 1;    /* room for a marker added */
    query_each(c, count_param, &most);
    struct query_copy q = {arena_alloc(c->arena, most * sizeof *q.items), 0};
    query_each(c, copy_param, &q);
    qsort(q.items, q.n, sizeof *q.items, sorted ? by_key_and_value : by_key_then_place);
    size_t n = 0;
    bool marker_kept = false;
    for (size_t i = 0; i < q.n; i++) {
        size_t last = i;
        while (last + 1 < q.n && !strcmp(q.items[last + 1].key, q.items[i].key))
            last++;
        struct query_item item = {q.items[i].key, q.items[last].value, q.items[i].at};
        i = last;
        if (!strcmp(item.key, "marker")) {
            if (!sorted)
                continue;
            item.value = marker ? marker : item.value;
            marker_kept = true;
        }
        q.items[n++] = item;
    }
    if (!sorted)
        qsort(q.items, n, sizeof *q.items, by_place);
    if (marker && !marker_kept)
        q.items[n++] = (struct query_item){"marker", marker, SIZE_MAX};
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        q.items[i].key = form_escape(c->arena, q.items[i].key);
        q.items[i].value = form_escape(c->arena, q.items[i].value);
        len += strlen(q.items[i].key) + strlen(q.items[i].value) + 2;
    }
    char *out = arena_alloc(c->arena, len + 1), *o = out;
    for (size_t i = 0; i < n; i++)
        o += sprintf(o, "%s%s=%s", i ? "&" : "", q.items[i].key, q.items[i].value);
    *o = '\0';
    return out;
}

struct only_ctx {
    const char *const *allowed;
    const char **bad;           /* the unknown names (NULL: only count them) */
    size_t n;
};

static bool unknown_key(void *cls, const char *key, const char *value)
{
    (void)value;
    struct only_ctx *o = cls;
    for (const char *const *a = o->allowed; *a; a++) {
        size_t len = strlen(*a);
        if (len && (*a)[len - 1] == '*' ? !strncmp(*a, key, len - 1) : !strcmp(*a, key))
            return true;
    }
    if (o->bad)
        o->bad[o->n] = key;
    o->n++;
    return true;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool query_only(struct call *c, const char *const *allowed)
{
    struct only_ctx o = {allowed, NULL, 0};
    query_each(c, unknown_key, &o);
    if (!o.n)
        return true;
    /* jsonschema's additionalProperties: each name once, sorted */
    o.bad = arena_alloc(c->arena, o.n * sizeof *o.bad);
    o.n = 0;
    query_each(c, unknown_key, &o);
    qsort(o.bad, o.n, sizeof *o.bad, by_name);
    size_t n = 0;
    for (size_t i = 0; i < o.n; i++)
        if (!n || strcmp(o.bad[n - 1], o.bad[i]) != 0)
            o.bad[n++] = o.bad[i];
    reply_error(c, 400, "Additional properties are not allowed (%s %s unexpected)",
                py_repr_strs(c->arena, o.bad, n), n == 1 ? "was" : "were");
    return false;
}
