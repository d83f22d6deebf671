/* fuzz_framing.c: the HTTP layer's framing decision (src/http/framing.c),
 * which every request head from the network goes through before anything
 * else happens.
 *
 * Input: byte 0 picks the HTTP version of the request line (% 8: HTTP/1.1,
 * HTTP/1.0, HTTP/1.1, HTTP/1.0, HTTP/2.0, http/1.1, HTTP/1.10, ""); the
 * rest is header lines separated by '\n', each split at its first ':' into
 * name and value (no ':': all name, value NULL, which framing.h reads as
 * ""), the value without blanks at its ends, as libmicrohttpd hands them
 * over. At most 64 lines.
 *
 * Checks:
 *  - http_framing_check() agrees, reason included, with a reference written
 *    from RFC 9112 and framing.h's contract (below), in a different way: it
 *    first sorts the lines into what each is, then applies the rules;
 *  - the verdict does not depend on the order of the lines (reversed,
 *    rotated), on the case of the names (RFC 9110 5.1), on an unrelated
 *    header added, or on an identical copy of a Content-Length line added;
 *  - feeding the lines one at a time (http_framing_field(), as exchange.c
 *    does) gives the same verdict;
 *  - an accepted head has at most one Host (exactly one in HTTP/1.1), at
 *    most one distinct Content-Length value, and a Transfer-Encoding only
 *    alone, exactly "chunked", outside HTTP/1.0; http_framing_reason() is
 *    text for every verdict;
 *  - ASan/UBSan: no read past a name or value (each is a heap block of
 *    exactly its size).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/framing.h"

#define MAX_LINES 64

static const char *const versions[8] = {"HTTP/1.1", "HTTP/1.0", "HTTP/1.1", "HTTP/1.0",
                                        "HTTP/2.0", "http/1.1", "HTTP/1.10", ""};

/* framing.h: a NULL value is "" */
static const char *val(const char *v)
{
    return v ? v : "";
}

struct head {
    struct http_field f[MAX_LINES + 2];
    size_t n;
    const char *version;
};

static void show(const struct head *h)
{
    fprintf(stderr, "  version \"%s\", %zu lines:\n", h->version, h->n);
    for (size_t i = 0; i < h->n; i++) {
        fprintf(stderr, "    [");
        for (const char *p = h->f[i].name; *p; p++)
            fprintf(stderr, isprint((unsigned char)*p) ? "%c" : "\\x%02x", (unsigned char)*p);
        fprintf(stderr, "]: [");
        for (const char *p = val(h->f[i].value); *p; p++)
            fprintf(stderr, isprint((unsigned char)*p) ? "%c" : "\\x%02x", (unsigned char)*p);
        fprintf(stderr, "]\n");
    }
}

static void fail(const struct head *h, const char *what, enum http_framing got,
                 enum http_framing want)
{
    fprintf(stderr, "\n==== fuzz_framing: CHECK FAILED: %s: got %d (%s), want %d (%s)\n", what,
            got, http_framing_reason(got), want, http_framing_reason(want));
    show(h);
    abort();
}

/* ---- the reference ------------------------------------------------------------ */

enum kind { OTHER, HOST, LENGTH, CODING, MANGLED };

/* RFC 9110 5.6.2: tchar. */
static bool tchar(unsigned char c)
{
    return isalnum(c) && c < 0x80 ? true : c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Does `name` begin with `word`, ASCII case-insensitively? */
static bool begins(const char *name, const char *word)
{
    for (; *word; name++, word++)
        if (!*name || tolower((unsigned char)*name) != tolower((unsigned char)*word))
            return false;
    return true;
}

/* What a header line is, by its name: a framing header, one whose name
 * libmicrohttpd mangled (a framing header's name with something after it:
 * anything for Content-Length and Transfer-Encoding, a non-tchar for Host),
 * or something else. */
static enum kind kind_of(const char *name)
{
    static const struct { const char *word; enum kind kind; bool any_suffix; } framing[] = {
        {"content-length", LENGTH, true},
        {"transfer-encoding", CODING, true},
        {"host", HOST, false},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(framing[i].word);
        if (!begins(name, framing[i].word))
            continue;
        if (name[n] == '\0')
            return framing[i].kind;
        if (framing[i].any_suffix || !tchar((unsigned char)name[n]))
            return MANGLED;
    }
    return OTHER;
}

static enum http_framing reference(const struct head *h)
{
    size_t count[5] = {0};
    const char *first_length = NULL, *coding = NULL;
    bool lengths_agree = true;
    for (size_t i = 0; i < h->n; i++) {
        enum kind k = kind_of(h->f[i].name);
        count[k]++;
        if (k == LENGTH) {
            if (!first_length)
                first_length = val(h->f[i].value);
            else if (strcmp(first_length, val(h->f[i].value)) != 0)
                lengths_agree = false;
        }
        if (k == CODING)
            coding = val(h->f[i].value);
    }
    /* the rules, in framing.h's order of reasons */
    if (count[MANGLED])
        return HTTP_FRAMING_MANGLED;
    if (count[HOST] >= 2)                               /* RFC 9112 3.2 */
        return HTTP_FRAMING_HOSTS;
    if (!lengths_agree)                                 /* 6.3 */
        return HTTP_FRAMING_LENGTHS;
    if (count[CODING] && count[LENGTH])                 /* 6.3 (MAY reject: does) */
        return HTTP_FRAMING_LENGTH_AND_CODING;
    if (count[CODING] >= 2)
        return HTTP_FRAMING_CODINGS;
    if (count[CODING] && strcasecmp(coding, "chunked") != 0)   /* 6.3: chunked final */
        return HTTP_FRAMING_CODING;
    if (count[CODING] && strcmp(h->version, "HTTP/1.0") == 0) /* 6.1 */
        return HTTP_FRAMING_CODING_IN_1_0;
    if (!count[HOST] && strcmp(h->version, "HTTP/1.1") == 0)  /* 3.2 */
        return HTTP_FRAMING_NO_HOST;
    return HTTP_FRAMING_OK;
}

/* ---- variants --------------------------------------------------------------------- */

static enum http_framing one_at_a_time(const struct head *h)
{
    struct http_framing_state st;
    memset(&st, 0, sizeof st);
    for (size_t i = 0; i < h->n; i++)
        http_framing_field(&st, h->f[i].name, h->f[i].value);
    return http_framing_verdict(&st, h->version);
}

static void check_variant(const struct head *orig, const struct head *v, const char *what,
                          enum http_framing want)
{
    enum http_framing got = http_framing_check(v->f, v->n, v->version);
    if (got != want) {
        fprintf(stderr, "  the original:\n");
        show(orig);
        fprintf(stderr, "  the variant:\n");
        fail(v, what, got, want);
    }
}

/* ---- the harness ------------------------------------------------------------------ */

static char *copy(const uint8_t *s, size_t n)
{
    char *p = malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct head h = {.version = versions[data[0] % 8]};
    char *owned[3 * MAX_LINES];
    size_t n_owned = 0;

    const uint8_t *p = data + 1, *end = data + size;
    while (p < end && h.n < MAX_LINES) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *stop = nl ? nl : end;
        const uint8_t *colon = memchr(p, ':', (size_t)(stop - p));
        const uint8_t *vs = colon ? colon + 1 : stop, *ve = stop;
        while (vs < ve && (*vs == ' ' || *vs == '\t'))
            vs++;
        while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        /* each a block of exactly its size (a NUL inside ends it early, as
         * a C string would) */
        char *name = copy(p, (size_t)((colon ? colon : stop) - p));
        char *value = colon ? copy(vs, (size_t)(ve - vs)) : NULL;
        owned[n_owned++] = name;
        owned[n_owned++] = value;
        h.f[h.n++] = (struct http_field){name, value};
        p = nl ? nl + 1 : end;
    }

    enum http_framing got = http_framing_check(h.f, h.n, h.version);
    enum http_framing want = reference(&h);
    if (got != want)
        fail(&h, "http_framing_check and the reference disagree", got, want);
    if (one_at_a_time(&h) != got)
        fail(&h, "fed one line at a time", one_at_a_time(&h), got);
    const char *why = http_framing_reason(got);
    if (!why || !*why || (got == HTTP_FRAMING_OK) != !strcmp(why, "ok"))
        fail(&h, "no reason text", got, got);

    /* what an accepted head is, stated directly */
    if (got == HTTP_FRAMING_OK) {
        int hosts = 0, codings = 0;
        const char *length = NULL;
        for (size_t i = 0; i < h.n; i++) {
            if (!strcasecmp(h.f[i].name, "Host"))
                hosts++;
            if (!strcasecmp(h.f[i].name, "Transfer-Encoding")) {
                codings++;
                if (strcasecmp(val(h.f[i].value), "chunked") != 0 || !strcmp(h.version, "HTTP/1.0"))
                    fail(&h, "accepted a coding other than chunked, or in HTTP/1.0", got, got);
            }
            if (!strcasecmp(h.f[i].name, "Content-Length")) {
                if (length && strcmp(length, val(h.f[i].value)) != 0)
                    fail(&h, "accepted two Content-Length values", got, got);
                length = val(h.f[i].value);
            }
        }
        if (hosts > 1 || (hosts == 0 && !strcmp(h.version, "HTTP/1.1")))
            fail(&h, "accepted without exactly one Host", got, got);
        if (codings > 1 || (codings && length))
            fail(&h, "accepted Transfer-Encoding with another framing header", got, got);
    }

    /* metamorphic variants: the same verdict */
    struct head v = h;
    for (size_t i = 0; i < h.n; i++)
        v.f[i] = h.f[h.n - 1 - i];
    check_variant(&h, &v, "reversed lines", got);
    if (h.n > 1) {
        size_t k = data[0] / 8 % h.n;
        for (size_t i = 0; i < h.n; i++)
            v.f[i] = h.f[(i + k) % h.n];
        check_variant(&h, &v, "rotated lines", got);
    }
    v = h;
    for (size_t i = 0; i < h.n; i++) {
        char *name = copy((const uint8_t *)h.f[i].name, strlen(h.f[i].name));
        for (char *c = name; *c; c++)
            if (isalpha((unsigned char)*c) && (unsigned char)*c < 0x80)
                *c = (char)(islower((unsigned char)*c) ? toupper((unsigned char)*c)
                                                       : tolower((unsigned char)*c));
        owned[n_owned++] = name;
        v.f[i].name = name;
    }
    check_variant(&h, &v, "names in the other case", got);
    v = h;
    v.f[v.n++] = (struct http_field){"X-Framing-Fuzz", "Content-Length: 0"};
    check_variant(&h, &v, "an unrelated header added", got);
    for (size_t i = 0; i < h.n; i++) {
        if (!strcasecmp(h.f[i].name, "Content-Length")) {
            v = h;
            v.f[v.n++] = h.f[i];
            check_variant(&h, &v, "a Content-Length repeated", got);
            break;
        }
    }

    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    return 0;
}
