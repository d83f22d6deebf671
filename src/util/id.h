/* id.h: identifiers. Generated ids come from a ChaCha20 stream per thread,
 * keyed from the kernel's random source (id.c). */
#ifndef ATTACHD_ID_H
#define ATTACHD_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_MAX 255              /* ids are 1..255 characters (docs/api.md, decision D5) */
#define UUID_STR_LEN 36

/* Write a random UUID4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") into out[37]. */
void id_uuid4(char out[UUID_STR_LEN + 1]);
/* Write 32 random lowercase hex digits into out[33] (OpenStack project ids). */
void id_hex32(char out[33]);
/* 1-255 characters of [A-Za-z0-9._~:-] (docs/api.md, decision D5). */
bool id_valid(const char *s, size_t len);

#endif
