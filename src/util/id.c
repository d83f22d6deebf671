/* id.c: see id.h. */
#include "util/id.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

/* Each thread draws from a ChaCha20 key stream of its own, keyed once from
 * the kernel (libsodium's randombytes_buf): a request id then costs no system
 * call, where randombytes_buf makes one (getrandom) per call. The stream's
 * nonce counts the blocks drawn, so no block is ever used twice. attachd
 * never forks, which is what would make two processes share a stream. */
struct stream {
    bool keyed;
    unsigned char key[crypto_stream_chacha20_KEYBYTES];
    uint64_t nonce;
    unsigned char buf[512];
    size_t used;
};

static _Thread_local struct stream stream;

static void random_bytes(unsigned char *out, size_t n)
{
    struct stream *s = &stream;
    if (!s->keyed) {
        randombytes_buf(s->key, sizeof s->key);
        s->keyed = true;
        s->used = sizeof s->buf;
    }
    while (n > 0) {
        if (s->used == sizeof s->buf) {
            unsigned char nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
            memcpy(nonce, &s->nonce, sizeof s->nonce);
            s->nonce++;
            crypto_stream_chacha20(s->buf, sizeof s->buf, nonce, s->key);
            s->used = 0;
        }
        size_t take = sizeof s->buf - s->used;
        if (take > n)
            take = n;
        memcpy(out, s->buf + s->used, take);
        sodium_memzero(s->buf + s->used, take);     /* drawn bytes are not kept */
        s->used += take;
        out += take;
        n -= take;
    }
}

static char *hex(char *out, const unsigned char *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[b[i] >> 4];
        *out++ = digits[b[i] & 15];
    }
    return out;
}

void id_uuid4(char out[UUID_STR_LEN + 1])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    char *p = hex(out, b, 4);
    *p++ = '-';
    p = hex(p, b + 4, 2);
    *p++ = '-';
    p = hex(p, b + 6, 2);
    *p++ = '-';
    p = hex(p, b + 8, 2);
    *p++ = '-';
    p = hex(p, b + 10, 6);
    *p = '\0';
}

void id_hex32(char out[33])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    *hex(out, b, sizeof b) = '\0';
}

bool id_valid(const char *s, size_t len)
{
    if (len == 0 || len > ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
                  c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}
