/* query.h: a request's query arguments, parsed by attachd rather than by
 * libmicrohttpd. Internal to src/http.
 *
 * libmicrohttpd 0.9.75 keeps each query argument as a record in the
 * connection's 16 KiB memory pool, beside the request line itself. When the
 * records fill the pool (some 220 short arguments do), it queues a 431 and
 * then goes on reading the head as if nothing had happened, with its read
 * buffer gone: the client gets no answer at all, and its connection is
 * held until the header timeout. So exchange.c hides the query from it (the
 * URI callback ends the string at the '?') and parses the raw query here,
 * in the request's arena, which a request line of at most 16 KiB bounds.
 *
 * The parse is libmicrohttpd's own (MHD_parse_arguments_), so that every
 * answer stays as it was: the arguments are separated by '&' (an empty one
 * counts, but for a last one), each split at its first '='; one without
 * '=' has a NULL value; '+' becomes a space, then %XX is decoded in key and
 * value, but for %00 (http_unescape()). A lookup by name takes the first
 * argument of that name, as libmicrohttpd's did, the name compared
 * exactly ("LIMIT" is not "limit"; MHD_lookup_connection_value() ignored
 * ASCII case, and so did attachd's lookups until 2026-12-05, while its
 * checks of which arguments are allowed compared exactly).
 *
 * The Hostway dialect reads this parse. The API parses the query again for
 * the dialects that webob serves, as webob does (src/api/query.c).
 */
#ifndef ATTACHD_HTTP_QUERY_H
#define ATTACHD_HTTP_QUERY_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

struct http_query_arg {
    const char *key;
    const char *value;      /* NULL: the argument had no '=' */
};

struct http_query {
    struct http_query_arg *args;
    size_t n;
};

/* End libmicrohttpd's request line at its '?', if it has one, so that MHD
 * finds no arguments to keep: uri is what MHD passes its URI callback, the
 * line in the connection's read buffer, from which it parses the query
 * next. The pointer is const in MHD's API, but the buffer is not, and
 * writing there is deliberate: if some later libmicrohttpd copied the line
 * first, the write would change nothing. Copy the query first, if needed. */
void http_query_hide(const char *uri);
/* Parse raw, the query string as sent (without its '?'; NULL: none), into
 * q, in the arena. */
void http_query_parse(struct http_query *q, struct arena *a, const char *raw);
/* The value of the first argument named exactly name; NULL when there is
 * none, or when it had no '='. */
const char *http_query_get(const struct http_query *q, const char *name);
/* Percent-decoding in place, but for %00, which stays as its three
 * characters (a NUL would cut the string short); the new length. */
size_t http_unescape(char *s);

#endif
