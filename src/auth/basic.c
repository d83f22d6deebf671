/* basic.c: parsing "Authorization: Basic ..." and hashing passwords. Every
 * byte here came from the network: lengths are bounded, base64 is strict,
 * names and passwords must be valid UTF-8 without NUL. */
#include "auth/auth.h"

#include "util/utf8.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

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
    /* Only the base64 alphabet: libsodium 1.0.18 reads a byte >= 0x80 as a
     * signed char and decodes it as '/'. */
    if (len == 0 || len > AUTH_HEADER_MAX ||
        strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") < len)
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
        !utf8_valid((char *)raw, ulen) || !utf8_valid((char *)colon + 1, plen))
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
    /* argon2id, t=2, m=19 MiB: the OWASP minimum (OWASP Password
     * Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1). */
    return crypto_pwhash_str(out, password, strlen(password), 2, 19u * 1024 * 1024);
}
