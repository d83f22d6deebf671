/* framing.h: may a request head be served, as far as where the request ends
 * is concerned (RFC 9112 3.2 and 6)? Internal to src/http.
 *
 * The decision only: the header lines as (name, value) pairs, in the order
 * they came, as libmicrohttpd hands them over (names as sent, values without
 * blanks at the ends), and the HTTP version of the request line. No I/O, no
 * allocation, so that the fuzzer and the unit tests can drive it alone.
 *
 * A request is refused when
 *  - a header name begins as a framing header's and is not one (MANGLED):
 *    libmicrohttpd 0.9.75 keeps "Content-Length : 5" as a header named
 *    "Content-Length " and appends a folded line (obs-fold, 5.2) to the name
 *    of the header before it ("Content-Length0"), and then frames the
 *    request without that header. Any name that starts with
 *    "Content-Length" or "Transfer-Encoding" (in any case) and is longer is
 *    MANGLED; a name "Host" followed by a character that is not a tchar
 *    (RFC 9110 5.6.2) is too ("Hostname" may be someone's header; "Host :"
 *    is not). Other odd names are left alone: the example of Hostway's
 *    DetachVolumeFromServer page (docs/api.md) folds a stray
 *    "Charset=UTF-8" onto Content-Type, and works;
 *  - there is more than one Host line (HOSTS, 3.2);
 *  - Content-Length lines disagree (LENGTHS, 6.3: identical repeats may
 *    pass; the values are compared as text);
 *  - there is a Transfer-Encoding and also a Content-Length (LENGTH_AND_CODING,
 *    6.3), more than one Transfer-Encoding line (CODINGS), a coding other
 *    than exactly "chunked" in any case (CODING: libmicrohttpd would read an
 *    unknown coding until the client closes, 6.3), or it comes in an HTTP/1.0
 *    request, which predates it (CODING_IN_1_0, 6.1);
 *  - an HTTP/1.1 request has no Host (NO_HOST, 3.2).
 * When several apply, the first in that order is the reason; the order of
 * the lines does not matter.
 *
 * Every refusal is a 400. All but NO_HOST also close the connection: the
 * client and a proxy in front may disagree about where the request ends.
 */
#ifndef ATTACHD_HTTP_FRAMING_H
#define ATTACHD_HTTP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

enum http_framing {
    HTTP_FRAMING_OK = 0,
    HTTP_FRAMING_MANGLED,
    HTTP_FRAMING_HOSTS,
    HTTP_FRAMING_LENGTHS,
    HTTP_FRAMING_LENGTH_AND_CODING,
    HTTP_FRAMING_CODINGS,
    HTTP_FRAMING_CODING,
    HTTP_FRAMING_CODING_IN_1_0,
    HTTP_FRAMING_NO_HOST,
};

struct http_field {
    const char *name, *value;       /* value NULL: as "" */
};

/* The decision, fed one line at a time (the HTTP layer walks
 * libmicrohttpd's list without copying it). Zero-initialise, call
 * http_framing_field() for each line, then http_framing_verdict(). The
 * state points into the values given until the verdict. */
struct http_framing_state {
    bool mangled;
    int hosts, lengths, codings;
    bool lengths_differ;
    const char *length, *coding;
};

void http_framing_field(struct http_framing_state *st, const char *name, const char *value);
enum http_framing http_framing_verdict(const struct http_framing_state *st, const char *version);

/* The same for n lines at once. */
enum http_framing http_framing_check(const struct http_field *fields, size_t n,
                                     const char *version);

/* A short reason for a log line ("ok" for HTTP_FRAMING_OK). */
const char *http_framing_reason(enum http_framing f);

#endif
