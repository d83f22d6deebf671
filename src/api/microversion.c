/* microversion.c: OpenStack-API-Version negotiation (docs/api.md,
 * "Microversions" under "Common rules").
 * "OpenStack-API-Version: compute 2.79" wins over the legacy
 * "X-OpenStack-Nova-API-Version: 2.79"; none means 2.1; "latest" the max. */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/call.h"

/* ^([1-9]\d*)\.([1-9]\d*|0)$ with bounded numbers. */
enum mv_result mv_parse(const char *s, int *major, int *minor)
{
    const char *p = s;
    long v[2];
    bool huge = false;
    for (int i = 0; i < 2; i++) {
        if (!isdigit((unsigned char)*p) || (*p == '0' && i == 0))
            return MV_MALFORMED;
        if (*p == '0' && isdigit((unsigned char)p[1]))
            return MV_MALFORMED;
        const char *start = p;
        while (isdigit((unsigned char)*p))
            p++;
        huge |= p - start > 6;
        v[i] = huge ? 0 : strtol(start, NULL, 10);
        if (i == 0 && *p++ != '.')
            return MV_MALFORMED;
    }
    if (*p)
        return MV_MALFORMED;
    if (huge)
        return MV_UNSUPPORTED;      /* well-formed but far out of range */
    *major = (int)v[0];
    *minor = (int)v[1];
    return MV_OK;
}

/* Find "compute <version>" in a comma-separated OpenStack-API-Version value. */
static const char *compute_entry(struct arena *ar, const char *value)
{
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 8 && !strncasecmp(p, "compute", 7) && (p[7] == ' ' || p[7] == '\t')) {
            const char *v = p + 8;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vlen = len - (size_t)(v - p);
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            return arena_strndup(ar, v, vlen);
        }
        p += len;
    }
    return NULL;
}

enum mv_result mv_negotiate(struct request *req, struct arena *ar, int *version,
                            const char **bad)
{
    const char *text = NULL, *h = req->header(req->http, "OpenStack-API-Version");
    if (h)
        text = compute_entry(ar, h);
    if (!text && (h = req->header(req->http, "X-OpenStack-Nova-API-Version")))
        text = arena_strdup(ar, h);
    *version = 1;
    if (!text)
        return MV_OK;
    *bad = text;
    if (!strcasecmp(text, "latest")) {
        *version = MAX_VERSION;
        return MV_OK;
    }
    int major, minor;
    enum mv_result r = mv_parse(text, &major, &minor);
    if (r != MV_OK)
        return r;
    if (major != 2 || minor < 1 || minor > MAX_VERSION)
        return MV_UNSUPPORTED;
    *version = minor;
    return MV_OK;
}

/* Nova's proxy APIs (os-volumes, images) are gone from 2.36 on: 404 as if
 * the path did not exist. */
bool proxy_available(struct call *c)
{
    if (c->dialect == DIALECT_NOVA && c->version > 35) {
        reply_error(c, 404, "The resource could not be found.");
        return false;
    }
    return true;
}
