/* query.c: a request's query arguments, parsed as libmicrohttpd 0.9.75
 * parses them (query.h says why attachd does it). */
#include "http/query.h"

#include <string.h>

#include "util/arena.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t http_unescape(char *s)
{
    char *r = s, *w = s;
    while (*r) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi << 4 | lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* '+' as a space, then percent-decoding: MHD_unescape_plus, then the
 * unescape callback libmicrohttpd is given (exchange.c's). */
static const char *decode(char *s)
{
    for (char *p = s; (p = strchr(p, '+')); p++)
        *p = ' ';
    http_unescape(s);
    return s;
}

void http_query_hide(const char *uri)
{
    char *q = uri ? strchr(uri, '?') : NULL;
    if (q)
        q[1] = '\0';
}

void http_query_parse(struct http_query *q, struct arena *a, const char *raw)
{
    *q = (struct http_query){0};
    if (!raw || !*raw)
        return;
    size_t most = 1;
    for (const char *p = raw; (p = strchr(p, '&')); p++)
        most++;
    q->args = arena_alloc(a, most * sizeof *q->args);
    char *s = arena_strdup(a, raw);
    while (*s) {                /* a last, empty argument is none */
        char *amp = strchr(s, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(s, '=');
        if (eq)
            *eq = '\0';
        q->args[q->n++] = (struct http_query_arg){decode(s), eq ? decode(eq + 1) : NULL};
        if (!amp)
            break;
        s = amp + 1;
    }
}

const char *http_query_get(const struct http_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (!strcmp(q->args[i].key, name))
            return q->args[i].value;
    return NULL;
}
