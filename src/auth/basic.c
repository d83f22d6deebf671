/* basic.c: parsing "Authorization: Basic ..." and hashing passwords. Every
 * byte here came from the network: lengths are bounded, base64 is strict,
 * names and passwords must be valid UTF-8 without NUL. */
#include "auth/auth.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

bool auth_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;       /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

bool auth_parse_basic(const char *header, char *user, size_t user_size, char *pass,
                      size_t pass_size)
{
    if (!header || strncasecmp(header, "Basic", 5) != 0 || (header[5] != ' ' && header[5] != '\t'))
        return false;
    const char *b64 = header + 5;
    while (*b64 == ' ' || *b64 == '\t')
        b64++;
    size_t len = strlen(b64);
    while (len && (b64[len - 1] == ' ' || b64[len - 1] == '\t'))
        len--;
    if (len == 0 || len > AUTH_HEADER_MAX)
        return false;
    unsigned char raw[AUTH_HEADER_MAX];
    size_t raw_len;
    const char *end;
    if (sodium_base642bin(raw, sizeof raw, b64, len, NULL, &raw_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || end != b64 + len)
        return false;
    unsigned char *colon = memchr(raw, ':', raw_len);
    if (!colon)
        return false;
    size_t ulen = (size_t)(colon - raw), plen = raw_len - ulen - 1;
    if (ulen == 0 || ulen >= user_size || plen >= pass_size ||
        !auth_utf8_valid((char *)raw, ulen) || !auth_utf8_valid((char *)colon + 1, plen))
        return false;
    memcpy(user, raw, ulen);
    user[ulen] = '\0';
    memcpy(pass, colon + 1, plen);
    pass[plen] = '\0';
    sodium_memzero(raw, sizeof raw);
    return true;
}

int auth_hash_password(const char *password, char *out, size_t out_size)
{
    if (out_size < crypto_pwhash_STRBYTES)
        return -1;
    /* argon2id, t=2, m=19 MiB: the OWASP minimum (research/c-stack.md 3). */
    return crypto_pwhash_str(out, password, strlen(password), 2, 19u * 1024 * 1024);
}
