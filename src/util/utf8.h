/* utf8.h: UTF-8 checks for text that came from the network. Valid means
 * shortest-form, no surrogates, at most U+10FFFF, and no NUL. */
#ifndef ATTACHD_UTF8_H
#define ATTACHD_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"

bool utf8_valid(const char *s, size_t len);
/* s itself if valid, else a copy (in ar) with each bad byte replaced by
 * U+FFFD, so that it can go into JSON. */
const char *utf8_clean(struct arena *ar, const char *s);
/* The number of characters of valid UTF-8 text (what jsonschema counts). */
int utf8_chars(const char *s);
/* The largest length <= max that does not split a character of s[0..len). */
size_t utf8_cut(const char *s, size_t len, size_t max);

#endif
