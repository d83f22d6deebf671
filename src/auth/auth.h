/* auth.h: HTTP Basic authentication against the users in the store
 * (docs/api.md, decision D6).
 *
 * A check has a fast part and a slow part:
 *  - auth_check() runs on the caller's thread and never waits: it answers
 *    from the verified-credential cache, refuses a malformed header, and
 *    applies the throttles. When a password must be checked it returns
 *    AUTH_VERIFY, having already charged the attempt as a failure (so that
 *    concurrent guesses cannot slip past a limit; a success is refunded).
 *  - auth_verify() queues the check for the verifier threads (argon2id,
 *    19 MiB and ~20 ms each, at a low CPU priority so that requests answered
 *    from the cache keep their pace), and calls the check's done() there.
 *    Checks of the same header value at the same time share one verify
 *    (a client that opens eight connections at once costs one). An unknown
 *    user costs a verify too, so that timing does not tell which names
 *    exist.
 *
 * Throttles, per client address (an IPv6 client's /64):
 *  - a user name from one address: more than AUTH_MAX_FAILURES failures
 *    within AUTH_WINDOW seconds are AUTH_THROTTLED until the window passes.
 *    Other addresses that know the password are not locked out by it;
 *  - one address, all names: AUTH_ADDR_MAX_FAILURES per window, and at most
 *    AUTH_ADDR_PENDING checks queued at once;
 *  - everyone: at most AUTH_QUEUE_MAX checks queued; more are
 *    AUTH_UNAVAILABLE (503) until the verifiers catch up.
 *
 * The cache is shared by every thread and keyed by a keyed hash (auth_tag) of
 * the whole header value (no password or hash is kept in memory). An entry
 * is valid for AUTH_CACHE_TTL seconds and only while the store's auth epoch
 * is unchanged: any password change or user deletion, by this daemon or by
 * the CLI, bumps the epoch and so takes effect at once.
 */
#ifndef ATTACHD_AUTH_H
#define ATTACHD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "store/store.h"
#include "util/arena.h"

#define AUTH_CACHE_TTL 120
#define AUTH_CACHE_SLOTS 1024     /* verified credentials kept at once */
#define AUTH_MAX_FAILURES 10
#define AUTH_ADDR_MAX_FAILURES 100
#define AUTH_ADDR_PENDING 4
#define AUTH_QUEUE_MAX 64
#define AUTH_WINDOW 60
#define AUTH_VERIFIERS 2
#define AUTH_HEADER_MAX 1024    /* a longer Authorization header is refused */
#define AUTH_NAME_MAX 255
#define AUTH_TAG_KEY_BYTES 16   /* auth_tag()'s key and tag */
#define AUTH_TAG_BYTES 16

struct principal {
    const char *user;
    const char *account;
    bool admin;
};

enum auth_result { AUTH_OK, AUTH_DENIED, AUTH_THROTTLED, AUTH_UNAVAILABLE, AUTH_VERIFY };

/* Why a check was throttled, for the message. */
enum auth_throttle { THROTTLE_USER, THROTTLE_ADDRESS, THROTTLE_CONCURRENT };

/* One check. The caller fills the first block and keeps the check valid
 * until it has its result (after done() when it was verified). */
struct auth_check {
    const char *header;                 /* the Authorization value, NULL if absent */
    const struct sockaddr *client;      /* NULL: no address (local callers) */
    struct arena *arena;                /* the principal's strings go here */
    void (*done)(struct auth_check *ck);
    void *cls;                          /* the caller's */

    enum auth_result result;
    struct principal principal;         /* when AUTH_OK */
    int retry_after;                    /* seconds, when AUTH_THROTTLED/UNAVAILABLE */
    enum auth_throttle throttle;        /* when AUTH_THROTTLED */

    /* the auth module's */
    char user[AUTH_NAME_MAX + 1];
    char pass[AUTH_HEADER_MAX];
    unsigned char tag[AUTH_TAG_BYTES];  /* the header's keyed hash (auth_tag) */
    uint64_t pair_key, addr_key;
    bool charged;                       /* counted against the throttles */
    struct auth_check *followers;       /* same header, waiting for this one */
    struct auth_check *next;
};

struct auth;

/* Start the verifier threads. */
struct auth *auth_new(struct store *store);
/* Stopping: every check from now on, queued or new, is answered
 * AUTH_UNAVAILABLE (with retry_after) without verifying its password. Call
 * it before waiting for the requests in flight, which may wait for checks. */
void auth_drain(struct auth *a);
/* auth_drain, then stop the verifiers. */
void auth_free(struct auth *a);

/* The fast part; sets and returns ck->result (AUTH_VERIFY: call
 * auth_verify). Never calls done(). */
enum auth_result auth_check(struct auth *a, struct auth_check *ck);
/* The slow part: ck->done(ck) runs on a verifier thread with ck->result
 * AUTH_OK, AUTH_DENIED or AUTH_UNAVAILABLE. */
void auth_verify(struct auth *a, struct auth_check *ck);

/* Split "Basic base64(user:password)". user and pass are NUL-terminated and
 * must be valid UTF-8, user non-empty; false for anything else. */
bool auth_parse_basic(const char *header, char *user, size_t user_size, char *pass,
                      size_t pass_size);

/* Hash a password for storage (argon2id, OWASP parameters). */
int auth_hash_password(const char *password, char *out, size_t out_size);

/* ---- the verified-credential cache (cache.c); safe to share between threads */

/* A header's tag: SipHash-2-4 with a 128-bit output under a per-process
 * random key (libsodium's crypto_shorthash_siphashx24), a MAC that is cheap
 * on a header of a few dozen bytes: some 25 ns where a keyed BLAKE2b takes
 * 450. Without the key, a header that shares another's tag is found only by
 * chance, one in 2^128 per try. */
void auth_tag(const unsigned char key[AUTH_TAG_KEY_BYTES], const char *header,
              unsigned char tag[AUTH_TAG_BYTES]);

struct auth_cache;
struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);
/* Look up a header value: true with the principal's fields copied into ar. */
bool auth_cache_get(struct auth_cache *c, const unsigned char key[AUTH_TAG_KEY_BYTES],
                    const char *header, int64_t epoch, int64_t now, struct arena *ar,
                    struct principal *out);
void auth_cache_put(struct auth_cache *c, const unsigned char key[AUTH_TAG_KEY_BYTES],
                    const char *header, int64_t epoch, int64_t now, const struct principal *p);

#endif
