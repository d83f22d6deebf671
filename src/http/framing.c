/* framing.c: see framing.h. */
#include "http/framing.h"

#include <string.h>
#include <strings.h>

static bool is_tchar(char ch)
{
    unsigned char c = (unsigned char)ch;
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool mangled_name(const char *name)
{
    static const struct {
        const char *name;
        bool any_suffix;        /* "Hostname" may be someone's header; "Host :" is not */
    } framing[] = {
        {"Content-Length", true},
        {"Transfer-Encoding", true},
        {"Host", false},
    };
    for (size_t i = 0; i < sizeof framing / sizeof framing[0]; i++) {
        size_t n = strlen(framing[i].name);
        if (!strncasecmp(name, framing[i].name, n) && name[n] &&
            (framing[i].any_suffix || !is_tchar(name[n])))
            return true;
    }
    return false;
}

void http_framing_field(struct http_framing_state *st, const char *name, const char *value)
{
    name = name ? name : "";
    value = value ? value : "";
    if (mangled_name(name)) {
        st->mangled = true;
    } else if (!strcasecmp(name, "Host")) {
        st->hosts++;
    } else if (!strcasecmp(name, "Content-Length")) {
        if (st->lengths++ && strcmp(value, st->length) != 0)
            st->lengths_differ = true;
        st->length = value;
    } else if (!strcasecmp(name, "Transfer-Encoding")) {
        st->codings++;
        st->coding = value;
    }
}

enum http_framing http_framing_verdict(const struct http_framing_state *st, const char *version)
{
    version = version ? version : "";
    if (st->mangled)
        return HTTP_FRAMING_MANGLED;
    if (st->hosts > 1)
        return HTTP_FRAMING_HOSTS;
    if (st->lengths_differ)
        return HTTP_FRAMING_LENGTHS;
    if (st->codings) {
        if (st->lengths)
            return HTTP_FRAMING_LENGTH_AND_CODING;
        if (st->codings > 1)
            return HTTP_FRAMING_CODINGS;
        if (strcasecmp(st->coding, "chunked") != 0)
            return HTTP_FRAMING_CODING;
        if (!strcmp(version, "HTTP/1.0"))
            return HTTP_FRAMING_CODING_IN_1_0;
    }
    if (!st->hosts && !strcmp(version, "HTTP/1.1"))
        return HTTP_FRAMING_NO_HOST;
    return HTTP_FRAMING_OK;
}

enum http_framing http_framing_check(const struct http_field *fields, size_t n,
                                     const char *version)
{
    struct http_framing_state st = {0};
    for (size_t i = 0; i < n; i++)
        http_framing_field(&st, fields[i].name, fields[i].value);
    return http_framing_verdict(&st, version);
}

const char *http_framing_reason(enum http_framing f)
{
    switch (f) {
    case HTTP_FRAMING_OK: return "ok";
    case HTTP_FRAMING_MANGLED: return "a framing header's name mangled";
    case HTTP_FRAMING_HOSTS: return "more than one Host";
    case HTTP_FRAMING_LENGTHS: return "Content-Lengths that differ";
    case HTTP_FRAMING_LENGTH_AND_CODING: return "both Content-Length and Transfer-Encoding";
    case HTTP_FRAMING_CODINGS: return "more than one Transfer-Encoding";
    case HTTP_FRAMING_CODING: return "a Transfer-Encoding other than chunked";
    case HTTP_FRAMING_CODING_IN_1_0: return "Transfer-Encoding in HTTP/1.0";
    case HTTP_FRAMING_NO_HOST: return "HTTP/1.1 without Host";
    }
    return "?";
}
