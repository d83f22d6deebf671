/* auth.h: HTTP Basic authentication against the users in the store (D6).
 *
 * Passwords are argon2id hashes (libsodium), checked at most two at a time
 * (each takes 19 MiB). A verified credential is kept in a cache shared by
 * every thread, keyed by a keyed BLAKE2b hash of the whole header value (no
 * password or hash is kept in memory), valid for AUTH_CACHE_TTL seconds and
 * only while the store's auth epoch is unchanged: any password change or
 * user deletion, by this daemon or by the CLI, bumps the epoch and so takes
 * effect at once. Failed attempts are counted per user name: more
 * than AUTH_MAX_FAILURES within AUTH_WINDOW seconds are refused with
 * AUTH_THROTTLED until the window has passed.
 */
#ifndef ATTACHD_AUTH_H
#define ATTACHD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/arena.h"

#define AUTH_CACHE_TTL 120
#define AUTH_CACHE_SLOTS 1024     /* verified credentials kept at once */
#define AUTH_MAX_FAILURES 10
#define AUTH_WINDOW 60
#define AUTH_HEADER_MAX 1024    /* a longer Authorization header is refused */
#define AUTH_NAME_MAX 255

struct principal {
    const char *user;
    const char *account;
    bool admin;
};

enum auth_result { AUTH_OK, AUTH_DENIED, AUTH_THROTTLED, AUTH_UNAVAILABLE };

struct auth;

struct auth *auth_new(struct store *store);
void auth_free(struct auth *a);

/* Check an Authorization header value (NULL if absent). On AUTH_OK fill
 * *out (strings in ar); on AUTH_THROTTLED set *retry_after in seconds. */
enum auth_result auth_check(struct auth *a, const char *header, struct arena *ar,
                            struct principal *out, int *retry_after);

/* Split "Basic base64(user:password)". user and pass are NUL-terminated and
 * must be valid UTF-8, user non-empty; false for anything else. */
bool auth_parse_basic(const char *header, char *user, size_t user_size, char *pass,
                      size_t pass_size);

/* Hash a password for storage (argon2id, OWASP parameters). */
int auth_hash_password(const char *password, char *out, size_t out_size);

/* ---- the verified-credential cache (cache.c); safe to share between threads */

struct auth_cache;
struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);
/* Look up a header value: true with the principal's fields copied into ar. */
bool auth_cache_get(struct auth_cache *c, const unsigned char key[32], const char *header,
                    int64_t epoch, int64_t now, struct arena *ar, struct principal *out);
void auth_cache_put(struct auth_cache *c, const unsigned char key[32], const char *header,
                    int64_t epoch, int64_t now, const struct principal *p);

#endif
