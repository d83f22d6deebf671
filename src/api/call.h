/* call.h: the state of one API call, shared by the router, the dialects and
 * the resource handlers. Internal to src/api. */
#ifndef ATTACHD_CALL_H
#define ATTACHD_CALL_H

#include <jansson.h>

#include "api/api.h"
#include "core/core.h"

enum dialect { DIALECT_HOSTWAY, DIALECT_NOVA };

#define MAX_VERSION 89          /* the newest 2.x served */

struct call {
    struct api *api;
    struct request *req;
    struct response *res;
    struct arena *arena;
    enum dialect dialect;
    bool cinder;                /* /v3: the block-storage API, in Nova's error shape */
    bool glance;                /* /image: the image API, in Glance's shapes */
    int version;                /* 2.<version>; 1 in the Hostway dialect */
    bool versioned;             /* send the microversion headers */
    const char *version_echo;   /* an unsupported version, echoed on its 406 */
    struct core_ctx core;
    struct core_op op;          /* the change in progress, if any */
    struct auth_check auth;     /* the credential check */
    void (*then)(struct call *c);   /* runs once the work handed on is done */
    bool suspended;             /* waiting for work on another thread */
    bool done_inline;           /* the work finished before it was handed on */
    bool head;                  /* api_head(): the credentials only, the body unread */
    char oom_body[256];         /* the answer when the call ran out of memory */
    int n_segments;             /* of the path after the prefix; -1: unroutable */
    char **segments;
    /* what a change made, for its answer */
    union {
        struct server server;
        struct volume volume;
        struct attachment attachment;
        const char *console;    /* os-getConsoleOutput's text */
    } made;
    const char *base;           /* scheme://host */
    const char *prefix;         /* the path prefix used: "", "/v2.1", "/accounts/x/flexcloud" */
    const char *account_in_path;/* the account the path named, or NULL */
    const char *param[3];       /* ids from the path, in order */
    json_t *body;               /* the parsed request body, if any */
    /* The query's arguments as webob parses them, for the dialects other
     * than Hostway's; made on first use (query.c). */
    struct query_arg *args;
    size_t n_args;
    bool args_read;
    bool args_utf8;             /* each name and value, once decoded */
    /* /healthcheck and /metrics (ops.c) */
    int ops;                    /* OPS_HEALTHCHECK, OPS_METRICS, or 0 */
    struct call *health_next;   /* the checks waiting for one store probe */
    int health_rc;              /* its outcome */
};

typedef void (*handler_fn)(struct call *c);

/* ---- operators' routes, outside both dialects (ops.c) ------------------- */
enum { OPS_HEALTHCHECK = 1, OPS_METRICS = 2 };
struct health;
struct health *health_new(struct store *store);
void health_free(struct health *h);
/* GET /healthcheck: the store answers a read and accepts a write. */
void ops_healthcheck(struct call *c, struct health *h, struct store *store);
void ops_health_stopping(struct call *c);
/* GET /metrics, once authenticated: admins only. */
void ops_metrics(struct call *c);

/* Start a change for this call: returns the op to start it on. If the
 * change goes to another thread the connection waits meanwhile; `then` runs
 * on an HTTP thread when the change is done, with c->op.ok and c->op.err,
 * and makes the answer. Nothing may be allocated after the op is started. */
struct core_op *call_op(struct call *c, void (*then)(struct call *c));

/* The Hostway detach's wait for the hypervisor (router.c). */
unsigned api_detach_wait(const struct api *a);

/* JSON memory: inside a call's step jansson allocates from the call's
 * arena, so that an abandoned step leaks nothing (json.c). */
void json_memory_use(struct arena *ar);

/* ---- responses (dialect.c) ------------------------------------------------ */
void reply_json(struct call *c, int status, json_t *body);   /* steals body */
/* A JSON body already written (a struct jw's text, in the call's arena). */
void reply_raw_json(struct call *c, int status, const char *body, size_t len);
void reply_empty(struct call *c, int status);
/* An error with Nova's text; the dialect picks name, shape and Hostway title. */
void reply_error(struct call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void reply_core_error(struct call *c, const struct core_error *err);
void reply_unauthorized(struct call *c);
void reply_throttled(struct call *c, enum auth_throttle why, int retry_after);

/* ---- microversions (microversion.c) --------------------------------------- */
enum mv_result { MV_OK, MV_MALFORMED, MV_UNSUPPORTED };
/* Parse the request's version headers: *version is the 2.x minor. On error
 * *bad points at the offending text (in arena). */
enum mv_result mv_negotiate(struct request *req, struct arena *ar, int *version,
                            const char **bad);
enum mv_result mv_parse(const char *text, int *major, int *minor);
/* False after a 404 from 2.36 on, where Nova removed its proxy APIs
 * (os-volumes, images); true in the Hostway dialect. */
bool proxy_available(struct call *c);

/* ---- request bodies validated (validate.c) ------------------------------- */

enum field_type {
    FT_STRING = 1, FT_NULL = 2, FT_INTEGER = 4, FT_BOOLEAN = 8, FT_OBJECT = 16,
    FT_ARRAY = 32, FT_NUMBER = 64,
    FT_BOOLISH = 128,           /* Nova's boolean: a bool or "true"/"1"/"yes"/... */
    FT_INTISH = 256,            /* an integer >= 1 or a string of digits (`pattern`) */
};

/* A field named FIELD_ANY_OTHER (last) lets an object have members no
 * field names, as a schema with additionalProperties true does. */
#define FIELD_ANY_OTHER "*"

struct field {
    const char *name;
    unsigned types;
    int min_len, max_len;       /* strings; 0 = no bound */
    const char *pattern;        /* shown in messages; checked by `check` */
    bool (*check)(const char *s);
    bool required;
    int since, until;           /* microversions where the field exists; 0 = always */
    /* a further check of a value of the right type; false after a 400 */
    bool (*check_value)(struct call *c, json_t *v);
    const char *const *one_of;  /* jsonschema's enum of strings (NULL-ended) */
    bool has_minimum;           /* jsonschema's minimum, for integers */
    long long minimum;
    /* the types as the schema lists them, where its order is not
     * type_names()'s (string, integer, number, boolean, object, array, null) */
    const char *type_list;
};

/* The object under `key` of the body, validated against fields
 * (Nova's jsonschema order and messages); NULL after a 400. `also` names
 * further top-level members the body may carry (NULL: none). */
json_t *body_object(struct call *c, const char *key, const struct field *fields,
                    const struct field *also);
/* Validate obj against fields; false after a 400. `at` names obj. */
bool validate_object(struct call *c, json_t *obj, const char *at, const struct field *fields);
bool json_boolish(json_t *v, bool *out);
/* Metadata: Nova's parameter_types.metadata for servers (keys of
 * [a-zA-Z0-9-_:. ]{1,255}, string values of at most 255 characters, with
 * jsonschema's messages), Cinder's check_metadata_properties for volumes. */
bool server_metadata_ok(struct call *c, json_t *md);
bool volume_metadata_ok(struct call *c, json_t *md);
/* At most CORE_MAX_METADATA_ITEMS items: Nova's 403 otherwise. */
bool metadata_count_ok(struct call *c, json_t *md);
/* Python's repr() of a JSON value, as Nova's messages show it; of a
 * string (any bytes: a query's). */
char *py_repr(struct arena *ar, json_t *v);
char *py_repr_str(struct arena *ar, const char *s);
/* The strings' repr()s joined by ", " (n > 0), bounded as one. */
char *py_repr_strs(struct arena *ar, const char *const *s, size_t n);
/* oslo's bool_from_string(strict=True): 1 true, 0 false, -1 neither. */
int py_bool(const char *s);
/* Python's str.strip() of UTF-8 text: its whitespace (str.isspace())
 * taken from both ends (the copy is ar's). */
const char *py_strip(struct arena *ar, const char *text);
/* The 400 of its -1 (Nova's InvalidInput of oslo's ValueError). */
#define PY_BOOL_UNRECOGNIZED "Invalid input received: Unrecognized value '%s', acceptable " \
                             "values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', " \
                             "'t', 'true', 'y', 'yes'"
/* oslo's parse_isotime() (the iso8601 library's parse_date(), isotime.c):
 * true and the time in *us (microseconds since 1970, UTC; no zone given is
 * UTC) when Python reads s as one, false when it raises ValueError. */
bool py_isotime(const char *s, int64_t *us);
/* The "regex" of Nova's query schemas (pyregex.c): text that is not empty
 * and that Python's re.compile() takes without raising re.error (its
 * working memory, 4 bytes a character and some 50 a parenthesis, is
 * ar's). */
bool py_regex(struct arena *ar, const char *text);
/* A time (seconds since 1970, UTC) as "YYYY-MM-DDTHH:MM:SS", the stored
 * times' first 19 characters; outside years 1 to 9999, the nearer end. */
void isotime_text(int64_t sec, char out[20]);

/* ---- request bodies parsed, JSON written, queries (json.c) --------------- */

/* Parse the body as JSON: false (and 400 sent) if it is not. */
bool body_parse(struct call *c);
/* A JSON value's compact text, in an arena (NUL-terminated; its length in
 * *len). */
char *json_render(struct arena *ar, json_t *v, size_t *len);
/* A JSON object's text, in the call's arena. */
char *json_text(struct call *c, json_t *v);

/* JSON written as it goes, without a tree: the bytes json_render writes for
 * the tree the calls describe. A text grows in an arena (`cap`: its first
 * size, 0 for a default). Every value takes the key it has in the enclosing
 * object, or NULL in an array (or at the top); commas are the writer's. */
struct jw {
    struct arena *arena;
    char *buf;
    size_t len, cap;
    bool comma;                 /* a value before: the next one needs a comma */
};
void jw_init(struct jw *w, struct arena *ar, size_t cap);
void jw_object(struct jw *w, const char *key);
void jw_end_object(struct jw *w);
void jw_array(struct jw *w, const char *key);
void jw_end_array(struct jw *w);
void jw_string(struct jw *w, const char *key, const char *s);   /* NULL: null */
/* A string written in parts: open, any number of parts, close. */
void jw_string_open(struct jw *w, const char *key);
void jw_string_part(struct jw *w, const char *s, size_t len);
void jw_string_close(struct jw *w);
void jw_int(struct jw *w, const char *key, json_int_t v);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_null(struct jw *w, const char *key);
/* A tree, as json_render writes it (v is not stolen). */
void jw_value(struct jw *w, const char *key, json_t *v);
/* Stored JSON text (metadata) as json_render writes what json_loads makes
 * of it; {} for NULL or text that does not parse. */
void jw_json_text(struct jw *w, const char *key, const char *text);
/* The text written (NUL-terminated; its length in *len). */
char *jw_finish(struct jw *w, size_t *len);

/* A string of digits, of any number, as Python's int() reads it (Nova's
 * limits, offsets and counts); a value past DIGITS_MAX is read as
 * DIGITS_MAX. False: empty, or not digits only. */
#define DIGITS_MAX 1000000000000000
bool parse_digits(const char *s, int64_t *out);

/* ---- query parameters (query.c) ------------------------------------------
 *
 * Nova, Cinder and Glance read a query with webob (webob/compat.py's
 * parse_qsl_text): the arguments are separated by '&' or ';', and empty
 * ones skipped; each is split at its first '=' (one without has the value
 * ""); '+' is a space; '%' and the up to two characters after it, before
 * the next '%', are a byte if Python's int(x, 16) reads them as one, else
 * the '%' stays as it is ("%a" is a newline, "%-1" stays). A byte 0 stays
 * as the characters that made it, as in src/http/query.h. The Hostway
 * dialect reads libmicrohttpd's parse, the HTTP layer's. */
struct query_arg {
    const char *key, *value;
};
/* webob's parse of raw (NULL: no query) into *args, in the arena; the
 * number of arguments. *utf8: every name and value is UTF-8 once decoded
 * (else webob's req.GET raises UnicodeDecodeError). */
size_t query_parse_webob(struct arena *ar, const char *raw, struct query_arg **args,
                         bool *utf8);
/* Nova's check before a GET's query schema (validation.query_schema): a
 * query whose arguments are not UTF-8 is 400 "Query string is not UTF-8
 * encoded". True in the other dialects; false after the 400. */
bool query_decodes(struct call *c);
/* Call fn for each argument, in order, as the dialect reads them; stop when
 * it returns false. */
void query_each(struct call *c, bool (*fn)(void *cls, const char *key, const char *value),
                void *cls);
/* The first value given for name, as Cinder's and Glance's params.pop()
 * takes it (and the Hostway dialect); NULL when absent. In the Hostway
 * dialect an argument without '=' has none. */
const char *query_first(struct call *c, const char *name);
/* A query parameter as Nova reads it, webob's req.GET[name]: the last
 * value given, "" for one without '=', NULL when absent. */
const char *query_last(struct call *c, const char *name);
/* Every value given for name, in order, as webob's req.GET.getall(name)
 * (the Hostway dialect's argument without '=' as ""): their number, and
 * the values in *values (the call's arena). */
int query_all(struct call *c, const char *name, const char ***values);
/* The first value given for name that ok() refuses (a query schema's
 * check of each value), or NULL. */
const char *query_first_bad(struct call *c, const char *name,
                            bool (*ok)(const char *value, const void *arg), const void *arg);
/* Nova's query schema for a parameter of non-negative integers
 * (multi_params(non_negative_integer)): every value given is digits (and
 * perhaps a last "\n", which the pattern's `$` lets by), at least one
 * character; else the 400 of the first that is not, in jsonschema's words.
 * False after the 400. */
bool query_digits(struct call *c, const char *name);
/* The same for a parameter of strings from a list (an enum of the schema):
 * every value given is one of values (NULL-terminated). */
bool query_enum(struct call *c, const char *name, const char *const *values);
/* The same for a "date-time" (multi_params of a string of that format):
 * every value given is one that py_isotime() reads. */
bool query_isotime(struct call *c, const char *name);
/* The same for a "regex": every value given is one that py_regex() takes. */
bool query_regex(struct call *c, const char *name);
/* A number as Nova reads one: every value passes query_digits(), then the
 * last counts (*v untouched when there is none) as Python's int() reads
 * it: "\n" alone is 400 "... must be an integer". False after the 400. */
bool nova_number(struct call *c, const char *name, int64_t *v);
/* The 400 of a query parameter that fails Nova's query schema, as Nova
 * words it (why: jsonschema's message). */
void reply_invalid_query(struct call *c, const char *name, const char *value, const char *why);

/* Paging: `limit` and `offset`/`marker` from the query; false after a 400.
 * Nova's lists check every value (query_digits()) and take the last;
 * Cinder's (c->cinder) take the first, with Cinder's 400s. */
struct paging {
    int limit;                  /* -1: none given */
    int64_t offset;
    const char *marker;
};
bool query_paging(struct call *c, struct paging *p, bool with_marker);
/* The query string of a next link (query.c: Nova's or Glance's form). */
const char *query_with_marker(struct call *c, const char *marker, bool sorted);
/* From 2.75 unknown query parameters are 400 on some lists: every name not
 * in allowed (NULL-terminated; a last '*' allows any name of that prefix,
 * as a schema's patternProperties "^_" does). False after the 400. */
bool query_only(struct call *c, const char *const *allowed);

/* ---- renderers shared by handlers ---------------------------------------- */

/* No answer is built much larger than this: a list that would pass it is cut
 * at an item, with a next link where the dialect has one, so that a page of
 * 1000 servers with 128 metadata items each cannot take hundreds of MB. */
#define API_MAX_ANSWER (4u << 20)
/* A generous estimate of an item's rendered size: a fixed part, its JSON
 * text (metadata) and text that JSON may escape six-fold. */
size_t answer_estimate(size_t fixed, const char *json_text, const char *text);
json_t *render_links(struct call *c, const char *collection, const char *id);
/* A server (servers.c), as an element of w's array or its "server"
 * (`show`: the body of GET /servers/{id}, which alone carries
 * server_groups). False (and err set) if its volumes cannot be read. The
 * summary: id, name and links. */
bool jw_server(struct jw *w, struct call *c, const struct server *s, bool show,
               struct core_error *err);
void jw_server_summary(struct jw *w, struct call *c, const struct server *s);
/* render_links's and render_time's values, written (render_time's NULL:
 * null). */
void jw_links(struct jw *w, struct call *c, const char *key, const char *collection,
              const char *id);
void jw_time(struct jw *w, const char *key, const char *stored, int style);
json_t *json_str_or_null(const char *s);
/* Percent-encode everything but RFC 3986's unreserved characters. */
char *url_escape(struct arena *ar, const char *s);
char *render_time(struct arena *ar, const char *stored, int style);
/* A volume in the dialect's form (volumes.c); NULL with err set on failure. */
json_t *render_volume(struct call *c, const struct volume *v, struct core_error *err);
enum { TIME_ISO_Z, TIME_ISO_MICRO, TIME_SPACE };

/* ---- resources ------------------------------------------------------------ */
void versions_root(struct call *c);
void versions_v21(struct call *c);
void versions_v3(struct call *c);

void servers_list(struct call *c);
void servers_detail(struct call *c);
void servers_create(struct call *c);
void servers_show(struct call *c);
void servers_delete(struct call *c);
void servers_action(struct call *c);
/* A server's addresses (by network), one network's, its security groups:
 * always none, as of a Nova server without network ports. */
void servers_ips(struct call *c);
void servers_ips_network(struct call *c);
void servers_security_groups(struct call *c);

void volumes_list(struct call *c);
void volumes_detail(struct call *c);
void volumes_create(struct call *c);
void volumes_show(struct call *c);
void volumes_delete(struct call *c);
void cinder_volumes_list(struct call *c);
void cinder_volumes_detail(struct call *c);
void cinder_volumes_show(struct call *c);
void cinder_volumes_create(struct call *c);
void cinder_volumes_update(struct call *c);
void cinder_volumes_delete(struct call *c);

void flavors_list(struct call *c);
void flavors_detail(struct call *c);
void flavors_show(struct call *c);
void flavors_extra_specs(struct call *c);
void flavors_extra_spec(struct call *c);

void images_list(struct call *c);
void images_detail(struct call *c);
void images_show(struct call *c);
void glance_images_list(struct call *c);
void glance_images_show(struct call *c);
void versions_glance(struct call *c);

void limits_show(struct call *c);
void cinder_limits(struct call *c);

void attachments_list(struct call *c);
void attachments_create(struct call *c);
void attachments_show(struct call *c);
void attachments_update(struct call *c);
void attachments_delete(struct call *c);

#endif
