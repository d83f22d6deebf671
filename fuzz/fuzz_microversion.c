/* fuzz_microversion.c: mv_parse() and mv_negotiate() (src/api/microversion.c).
 *
 * mv_parse(text) against a reference of its contract,
 * ^([1-9]\d*)\.([1-9]\d*|0)$ with numbers of at most 6 digits:
 *  - MV_OK exactly when the text matches with both numbers <= 6 digits, and
 *    then "%d.%d" of the result is the text again (round trip);
 *  - MV_UNSUPPORTED exactly when it matches with a longer number;
 *  - MV_MALFORMED otherwise.
 * mv_negotiate() with the input as the OpenStack-API-Version value (and,
 * when the first byte is odd, the rest also as X-OpenStack-Nova-API-Version):
 *  - MV_OK gives 1 <= version <= 89;
 *  - otherwise *bad is set, NUL-terminated, and is the "compute" entry's
 *    value (or the legacy header's) that was refused;
 *  - "latest" (any case) is 89.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/call.h"
#include "util/arena.h"

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "fuzz_microversion: CHECK FAILED (%s): ", #cond);   \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* 0: no match, 1: match with small numbers, 2: match with a number of more
 * than 6 digits. */
static int ref_match(const char *s, long *major, long *minor)
{
    const char *p = s;
    size_t n1 = strspn(p, "0123456789");
    if (n1 == 0 || p[0] == '0' || p[n1] != '.')
        return 0;
    const char *q = p + n1 + 1;
    size_t n2 = strspn(q, "0123456789");
    if (n2 == 0 || q[n2] != '\0' || (q[0] == '0' && n2 > 1))
        return 0;
    if (n1 > 6 || n2 > 6)
        return 2;
    *major = strtol(p, NULL, 10);
    *minor = strtol(q, NULL, 10);
    return 1;
}

struct hdrs {
    const char *osapi, *xnova;
};

static const char *get_header(void *http, const char *name)
{
    struct hdrs *h = http;
    if (!strcasecmp(name, "OpenStack-API-Version"))
        return h->osapi;
    if (!strcasecmp(name, "X-OpenStack-Nova-API-Version"))
        return h->xnova;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';

    /* mv_parse */
    int major = -7, minor = -7;
    enum mv_result r = mv_parse(s, &major, &minor);
    long rmaj = 0, rmin = 0;
    int m = ref_match(s, &rmaj, &rmin);
    CHECK(r == MV_OK || r == MV_MALFORMED || r == MV_UNSUPPORTED, "result %d", (int)r);
    if (m == 0)
        CHECK(r == MV_MALFORMED, "\"%s\": not of the form, but result %d", s, (int)r);
    if (m == 2)
        CHECK(r == MV_UNSUPPORTED, "\"%s\": huge, but result %d", s, (int)r);
    if (m == 1) {
        CHECK(r == MV_OK, "\"%s\": well-formed, but result %d", s, (int)r);
        CHECK(major == rmaj && minor == rmin, "\"%s\" parsed as %d.%d", s, major, minor);
        char back[32];
        snprintf(back, sizeof back, "%d.%d", major, minor);
        CHECK(!strcmp(back, s), "\"%s\" does not round-trip (%s)", s, back);
    }

    /* mv_negotiate: the whole input as OpenStack-API-Version; the legacy
     * header too when the first byte is odd */
    struct arena ar;
    arena_init(&ar);
    struct hdrs h = {s, size && (data[0] & 1) ? s + 1 : NULL};
    struct request req = {.arena = &ar, .method = METHOD_GET, .path = "/v2.1/servers",
                          .header = get_header, .http = &h, .request_id = "req-fuzz"};
    int version = -1;
    const char *bad = NULL;
    enum mv_result n = mv_negotiate(&req, &ar, &version, &bad);
    CHECK(n == MV_OK || n == MV_MALFORMED || n == MV_UNSUPPORTED, "negotiate %d", (int)n);
    if (n == MV_OK) {
        CHECK(version >= 1 && version <= MAX_VERSION, "version 2.%d", version);
    } else {
        CHECK(bad != NULL, "refused without naming what");
        /* what was refused came from one of the two headers */
        CHECK(strstr(s, bad) != NULL || (h.xnova && strstr(h.xnova, bad) != NULL),
              "bad \"%s\" is not in the input", bad);
        CHECK(strcasecmp(bad, "latest") != 0, "\"latest\" refused");
        int a, b;
        enum mv_result again = mv_parse(bad, &a, &b);
        CHECK(again != MV_OK || a != 2 || b < 1 || b > MAX_VERSION || n == MV_MALFORMED,
              "\"%s\" refused but it is 2.%d", bad, b);
        CHECK(again == n || (again == MV_OK && n == MV_UNSUPPORTED),
              "\"%s\": negotiate %d, parse %d", bad, (int)n, (int)again);
    }
    arena_release(&ar);
    free(s);
    return 0;
}
