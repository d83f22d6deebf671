/* dialect.c: how a response looks in each dialect
 * (docs/api.md, decisions D2 and D3, and "Errors" under "Common rules").
 *
 * Handlers state what happened (a status and Nova's text); this file alone
 * decides the fault name and body shape:
 *   Nova:    {"<name>": {"code": N, "message": "<Nova text>"}}
 *   Hostway: {"<name>": {"message": "<title>", "code": N, "details": "<reason>",
 *             "errorid": "<uuid4>"}}, a 404 exactly as Hostway's
 *             DetachVolumeFromServer page shows it (docs/api.md).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/call.h"
#include "util/id.h"
#include "util/utf8.h"

/* Hostway's 401 text (its DetachVolumeFromServer page, docs/api.md): its
 * five lines, each ending in a newline (docs/api.md, decision D6). */
static const char unauthorized_body[] =
    "401 Unauthorized\n"
    "This server could not verify that you are authorized to\n"
    "access the document you requested.  Either you supplied the\n"
    "wrong credentials (e.g., bad password), or your browser\n"
    "does not understand how to supply the credentials required.\n";

void api_add_header(struct response *res, const char *name, const char *value)
{
    if (res->n_headers < API_MAX_HEADERS)
        res->headers[res->n_headers++] = (struct response_header){name, value};
}

void reply_json(struct call *c, int status, json_t *body)
{
    struct response *res = c->res;
    res->status = status;
    res->content_type = "application/json";
    res->body = json_render(c->arena, body, &res->body_len);
    json_decref(body);
}

void reply_raw_json(struct call *c, int status, const char *body, size_t len)
{
    struct response *res = c->res;
    res->status = status;
    res->content_type = "application/json";
    res->body = body;
    res->body_len = len;
}

void reply_empty(struct call *c, int status)
{
    c->res->status = status;
    c->res->content_type = NULL;
    c->res->body = NULL;
    c->res->body_len = 0;
}

static const char *nova_name(int status)
{
    switch (status) {
    case 400: return "badRequest";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "itemNotFound";
    case 405: return "badMethod";
    case 409: return "conflictingRequest";
    case 413: case 429: return "overLimit";
    case 415: return "badMediaType";
    case 501: return "notImplemented";
    case 503: return "serviceUnavailable";
    default: return "computeFault";
    }
}

static const char *hostway_title(int status)
{
    switch (status) {
    case 400: return "Bad request";
    case 403: return "Forbidden";
    case 404: return "Resource not found";
    case 405: return "Method not allowed";
    case 406: return "Not acceptable";
    case 409: return "Conflict";
    case 413: return "Request entity too large";
    case 415: return "Unsupported media type";
    case 501: return "Not implemented";
    case 429: return "Too many requests";
    case 503: return "Service unavailable";
    default: return "Internal server error";
    }
}

/* Glance's errors are webob's, in JSON: the explanation with webob's
 * trailing markup, the status line and its reason. */
static void glance_fault(struct call *c, int status, const char *message)
{
    static const struct { int status; const char *title; } titles[] = {
        {400, "Bad Request"}, {403, "Forbidden"}, {404, "Not Found"},
        {405, "Method Not Allowed"}, {413, "Request Entity Too Large"},
        {429, "Too Many Requests"}, {503, "Service Unavailable"},
    };
    const char *title = "Internal Server Error";
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
        if (titles[i].status == status)
            title = titles[i].title;
    reply_json(c, status, json_pack("{s:s, s:s, s:s}", "message",
                                    arena_printf(c->arena, "%s<br /><br />\n\n\n", message),
                                    "code", arena_printf(c->arena, "%d %s", status, title),
                                    "title", title));
}

/* The one place an error body is built. title: the Hostway message (NULL
 * for the status's default); retry_after >= 0 adds Nova's retryAfter. */
static void fault(struct call *c, int status, const char *title, const char *message,
                  int retry_after)
{
    json_t *inner;
    const char *name;
    /* Messages quote what the client sent, which need not be UTF-8. */
    message = utf8_clean(c->arena, message);
    if (c->glance) {
        glance_fault(c, status, message);
        return;
    }
    if (c->dialect == DIALECT_HOSTWAY) {
        char errorid[UUID_STR_LEN + 1];
        id_uuid4(errorid);
        name = status == 409 ? "conflict" : nova_name(status);
        inner = json_pack("{s:s, s:i, s:s, s:s}",
                          "message", title ? title : hostway_title(status),
                          "code", status,
                          "details", status == 404 ? "" : message,
                          "errorid", errorid);
    } else {
        name = nova_name(status);
        inner = json_pack("{s:i, s:s}", "code", status, "message", message);
        if (retry_after >= 0)
            json_object_set_new(inner, "retryAfter", json_sprintf("%d", retry_after));
    }
    reply_json(c, status, json_pack("{s:o}", name, inner));
}

void reply_error(struct call *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = arena_vprintf(c->arena, fmt, ap);
    va_end(ap);
    fault(c, status, NULL, message, -1);
}

void reply_core_error(struct call *c, const struct core_error *err)
{
    bool hostway = c->dialect == DIALECT_HOSTWAY;
    int status = 500, retry_after = -1;
    const char *title = NULL;
    switch (err->code) {
    case CORE_OK: status = 500; break;
    case CORE_BAD_REQUEST: status = 400; break;
    case CORE_FORBIDDEN: status = 403; break;
    case CORE_NOT_FOUND: status = 404; break;
    case CORE_CONFLICT: status = 409; break;
    case CORE_UNAVAILABLE: status = 503; break;
    case CORE_ALREADY_ATTACHED:     /* Hostway 409 (docs/api.md, decision D2);
                                       * Nova (as Cinder) 400 */
        status = hostway ? 409 : 400;
        title = "VolumeAlreadyAttached";
        break;
    case CORE_VOLUME_BUSY:
        status = hostway ? 409 : 400;
        title = "VolumeInUse";
        break;
    case CORE_OTHER_ACCOUNT:        /* Nova has no such rule: a bad request there */
        status = hostway ? 409 : 400;
        break;
    case CORE_DETACHING:            /* Nova (as Cinder): 400; Hostway: a conflict */
        status = hostway ? 409 : 400;
        break;
    case CORE_HYPERVISOR:
        status = 409;
        break;
    case CORE_NOT_IMPLEMENTED:
        status = 501;
        break;
    case CORE_VOLUME_QUOTA:
        /* Cinder's OverLimit (413, Retry-After 0); Nova's os-volumes turns
         * it into a 403 */
        status = c->dialect == DIALECT_NOVA && !c->cinder ? 403 : 413;
        title = "Quota exceeded";
        if (c->cinder)
            retry_after = 0;
        break;
    }
    fault(c, status, title, err->message, retry_after);
    if (err->retry_after > 0)
        api_add_header(c->res, "Retry-After", arena_printf(c->arena, "%d", err->retry_after));
}

void reply_unauthorized(struct call *c)
{
    struct response *res = c->res;
    res->status = 401;
    res->content_type = "text/plain; charset=UTF-8";
    res->body = unauthorized_body;
    res->body_len = sizeof unauthorized_body - 1;
    api_add_header(res, "WWW-Authenticate", "Basic realm=\"attachd\"");
}

void reply_throttled(struct call *c, enum auth_throttle why, int retry_after)
{
    static const char *const reasons[] = {
        [THROTTLE_USER] = "Too many failed authentication attempts for this user",
        [THROTTLE_ADDRESS] = "Too many failed authentication attempts from this address",
        [THROTTLE_CONCURRENT] = "Too many authentication attempts at once from this address",
    };
    char *s = arena_printf(c->arena, "%d", retry_after);
    fault(c, 429, NULL,
          arena_printf(c->arena, "%s; retry after %d seconds.", reasons[why], retry_after),
          retry_after);
    api_add_header(c->res, "Retry-After", s);
}
