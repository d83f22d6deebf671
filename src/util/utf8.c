/* utf8.c: see utf8.h. */
#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s[0..len), or 0 if there is none
 * (a stray, overlong, surrogate, out-of-range or truncated sequence, or NUL). */
static size_t sequence(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        n = 1, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
        n = 2, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0)
        n = 3, cp = c & 0x07;
    else
        return 0;
    if (n >= len)
        return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n + 1;
}

bool utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0, n; i < len; i += n)
        if (!(n = sequence(s + i, len - i)))
            return false;
    return true;
}

const char *utf8_clean(struct arena *ar, const char *str)
{
    size_t len = strlen(str);
    if (utf8_valid(str, len))
        return str;
    const unsigned char *s = (const unsigned char *)str;
    char *out = arena_alloc(ar, len * 3 + 1), *o = out;
    for (size_t i = 0, n; i < len; i += n) {
        if ((n = sequence(s + i, len - i))) {
            memcpy(o, s + i, n);
            o += n;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);   /* U+FFFD REPLACEMENT CHARACTER */
            o += 3;
            n = 1;
        }
    }
    *o = '\0';
    return out;
}

size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

int utf8_chars(const char *s)
{
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xc0) != 0x80;
    return n;
}
