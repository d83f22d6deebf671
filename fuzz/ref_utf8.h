/* ref_utf8.h: an independent strict UTF-8 check (RFC 3629 table 3-7,
 * NUL refused) that the harnesses compare attachd's own against. Written
 * apart from src/util/utf8.c on purpose: an oracle must not share its bugs. */
#ifndef FUZZ_REF_UTF8_H
#define FUZZ_REF_UTF8_H

#include <stdbool.h>
#include <stddef.h>

static inline bool ref_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c == 0xe0) {
            need = 2, lo = 0xa0;
        } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
            need = 2;
        } else if (c == 0xed) {
            need = 2, hi = 0x9f;
        } else if (c == 0xf0) {
            need = 3, lo = 0x90;
        } else if (c >= 0xf1 && c <= 0xf3) {
            need = 3;
        } else if (c == 0xf4) {
            need = 3, hi = 0x8f;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return false;
        i += need + 1;
    }
    return true;
}

#endif
