/* fuzz_basic.c: auth_parse_basic() and utf8_valid() (src/auth/basic.c).
 *
 * The input, as raw bytes, is checked three ways:
 *  1. utf8_valid(data, size) must agree with an independent strict
 *     UTF-8 validator (RFC 3629: no overlongs, no surrogates, nothing above
 *     U+10FFFF, no truncated sequence) that also refuses NUL, as basic.c's
 *     contract says.
 *  2. auth_parse_basic(input) (the input up to its first NUL, as a header
 *     value) must agree with a reference parser written from RFC 7617 and
 *     basic.c's contract: scheme "Basic" (any case) then blanks, strict
 *     padded base64 up to trailing blanks, at most AUTH_HEADER_MAX characters,
 *     split at the first ':', user non-empty, both valid UTF-8 without NUL,
 *     each fitting its buffer. When it succeeds: user non-empty, user and
 *     password valid UTF-8 with no NUL inside, and user ":" password encodes
 *     back to the same bytes the header carried.
 *  3. The same with small output buffers whose sizes come from the input's
 *     first bytes (heap buffers of exactly that size, so that ASan sees any
 *     write past them).
 *
 * FUZZ_BASIC_ALLOW=highbit skips the comparison of 2 and 3 for headers whose
 * base64 part has a byte >= 0x80 (libsodium 1.0.18's sodium_base642bin()
 * decodes those as '/', see README.md), to look for anything else.
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "util/utf8.h"

#include "ref_utf8.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_basic: CHECK FAILED (%s): ", #cond);      \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* ---- references (ref_utf8() is in ref_utf8.h) ----------------------------- */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict RFC 4648 base64 with padding: length a multiple of 4, '=' only at
 * the end, unused bits zero. Returns the decoded length or -1. */
static long ref_b64(const char *s, size_t n, unsigned char *out, size_t cap)
{
    if (n == 0 || n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=') {
                if (i + 4 != n || k < 2)
                    return -1;
                pad++;
                v[k] = 0;
            } else {
                if (pad)
                    return -1;
                v[k] = b64val((unsigned char)s[i + k]);
                if (v[k] < 0)
                    return -1;
            }
        }
        unsigned triple = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
                          (unsigned)v[3];
        if (pad == 2 && (triple & 0xffff))
            return -1;
        if (pad == 1 && (triple & 0xff))
            return -1;
        if (o + 3 - (size_t)pad > cap)
            return -1;
        out[o++] = (unsigned char)(triple >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(triple >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)triple;
    }
    return (long)o;
}

struct ref_result {
    bool ok;
    bool b64_ok;                /* the base64 part decoded (for diagnosis) */
    size_t ulen, plen;
    unsigned char raw[AUTH_HEADER_MAX];
};

static void ref_parse(const char *h, size_t user_size, size_t pass_size, struct ref_result *r)
{
    memset(r, 0, sizeof *r);
    if (strncasecmp(h, "Basic", 5) != 0 || (h[5] != ' ' && h[5] != '\t'))
        return;
    const char *b = h + 5;
    while (*b == ' ' || *b == '\t')
        b++;
    size_t n = strlen(b);
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t'))
        n--;
    if (n == 0 || n > AUTH_HEADER_MAX)
        return;
    long len = ref_b64(b, n, r->raw, sizeof r->raw);
    if (len < 0)
        return;
    r->b64_ok = true;
    unsigned char *colon = memchr(r->raw, ':', (size_t)len);
    if (!colon)
        return;
    r->ulen = (size_t)(colon - r->raw);
    r->plen = (size_t)len - r->ulen - 1;
    r->ok = r->ulen > 0 && r->ulen < user_size && r->plen < pass_size &&
            ref_utf8(r->raw, r->ulen) && ref_utf8(colon + 1, r->plen);
}

/* ---- the harness ------------------------------------------------------------ */

static bool allow_highbit;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *a = getenv("FUZZ_BASIC_ALLOW");
    allow_highbit = a && strstr(a, "highbit");
    return 0;
}

static bool has_highbit(const char *h)
{
    for (; *h; h++)
        if ((unsigned char)*h >= 0x80)
            return true;
    return false;
}

static void one(const char *h, size_t user_size, size_t pass_size)
{
    char *user = malloc(user_size), *pass = malloc(pass_size);
    memset(user, 0x5a, user_size);
    memset(pass, 0x5a, pass_size);
    bool ok = auth_parse_basic(h, user, user_size, pass, pass_size);
    struct ref_result r;
    ref_parse(h, user_size, pass_size, &r);
    if (ok != r.ok && allow_highbit && has_highbit(h)) {
        free(user);
        free(pass);
        return;
    }
    if (ok != r.ok) {
        fprintf(stderr, "fuzz_basic: header \"");
        for (const char *p = h; *p; p++)
            fprintf(stderr, (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f ? "\\x%02x" : "%c",
                    (unsigned char)*p);
        fprintf(stderr, "\" user_size %zu pass_size %zu: parse %d, reference %d (base64 %d)\n",
                user_size, pass_size, ok, r.ok, r.b64_ok);
    }
    CHECK(ok == r.ok, "auth_parse_basic and the reference disagree");
    if (ok) {
        size_t ul = strnlen(user, user_size), pl = strnlen(pass, pass_size);
        CHECK(ul < user_size && pl < pass_size, "result not NUL-terminated in its buffer");
        CHECK(ul > 0, "empty user accepted");
        CHECK(utf8_valid(user, ul) && ref_utf8((unsigned char *)user, ul),
              "user is not valid UTF-8");
        CHECK(utf8_valid(pass, pl) && ref_utf8((unsigned char *)pass, pl),
              "password is not valid UTF-8");
        CHECK(!strchr(user, ':'), "user contains ':'");
        CHECK(ul == r.ulen && pl == r.plen && !memcmp(user, r.raw, ul) &&
                  !memcmp(pass, r.raw + ul + 1, pl),
              "user/password differ from the header's bytes (NUL inside?)");
    }
    free(user);
    free(pass);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. the UTF-8 validator on the raw bytes */
    bool a = utf8_valid((const char *)data, size), b = ref_utf8(data, size);
    CHECK(a == b, "utf8_valid says %d, the reference %d (size %zu)", a, b, size);

    /* 2. the header parser with the daemon's buffer sizes */
    char *h = malloc(size + 1);
    memcpy(h, data, size);
    h[size] = '\0';
    one(h, AUTH_NAME_MAX + 1, AUTH_HEADER_MAX);

    /* 3. small buffers, sized by the first bytes (the rest is the header) */
    if (size >= 2) {
        size_t us = (size_t)(data[0] % 16) + 1, ps = (size_t)(data[1] % 16) + 1;
        one(h + 2, us, ps);
    }
    free(h);
    return 0;
}
