/* auth.c: see auth.h. The order matters: the cache first (no argon2 on the
 * steady path), then the throttle (no argon2 for a throttled name), then the
 * hash; an unknown user costs one verify too, so that timing does not tell
 * which names exist. */
#include "auth/auth.h"

#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THROTTLE_BUCKETS 4096
/* argon2id takes 19 MiB and ~20 ms a check: at most this many at once. */
#define VERIFY_SLOTS 2

struct bucket {
    uint64_t name_hash;
    int64_t window_start;
    int failures;
};

struct auth {
    struct store *store;
    struct auth_cache *cache;               /* shared by every thread */
    sem_t verify_slots;
    unsigned char cache_key[32];            /* per process, random */
    unsigned char throttle_key[crypto_shorthash_KEYBYTES];
    pthread_key_t thread_key;               /* -> struct thread_state */
    pthread_mutex_t lock;                   /* guards the buckets and the list */
    struct bucket buckets[THROTTLE_BUCKETS];
    char dummy_hash[crypto_pwhash_STRBYTES];
    struct thread_state *threads;
};

/* The auth epoch as this thread's reader last saw it. */
struct thread_state {
    int64_t epoch;
    struct thread_state *next;
};

static int64_t now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

struct auth *auth_new(struct store *store)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->store = store;
    a->cache = auth_cache_new();
    sem_init(&a->verify_slots, 0, VERIFY_SLOTS);
    randombytes_buf(a->cache_key, sizeof a->cache_key);
    randombytes_buf(a->throttle_key, sizeof a->throttle_key);
    pthread_key_create(&a->thread_key, NULL);
    pthread_mutex_init(&a->lock, NULL);
    char pw[33];
    randombytes_buf(pw, 16);
    sodium_bin2hex(pw, sizeof pw, (unsigned char *)pw, 16);
    if (!a->cache || auth_hash_password(pw, a->dummy_hash, sizeof a->dummy_hash) != 0) {
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    struct thread_state *t = a->threads;
    while (t) {
        struct thread_state *next = t->next;
        free(t);
        t = next;
    }
    auth_cache_free(a->cache);
    sem_destroy(&a->verify_slots);
    pthread_key_delete(a->thread_key);
    pthread_mutex_destroy(&a->lock);
    sodium_memzero(a, sizeof *a);
    free(a);
}

static struct thread_state *thread_state(struct auth *a)
{
    struct thread_state *t = pthread_getspecific(a->thread_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->epoch = -1;
    pthread_mutex_lock(&a->lock);
    t->next = a->threads;
    a->threads = t;
    pthread_mutex_unlock(&a->lock);
    pthread_setspecific(a->thread_key, t);
    return t;
}

/* ---- throttling ----------------------------------------------------------- */

static struct bucket *bucket_for(struct auth *a, const char *user, uint64_t *h)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)user, strlen(user), a->throttle_key);
    memcpy(h, out, sizeof *h);
    return &a->buckets[*h % THROTTLE_BUCKETS];
}

static int throttled_for(struct auth *a, const char *user, int64_t now)
{
    uint64_t h;
    int wait = 0;
    pthread_mutex_lock(&a->lock);
    struct bucket *b = bucket_for(a, user, &h);
    if (b->name_hash == h && now - b->window_start < AUTH_WINDOW &&
        b->failures >= AUTH_MAX_FAILURES)
        wait = (int)(AUTH_WINDOW - (now - b->window_start));
    pthread_mutex_unlock(&a->lock);
    return wait;
}

static void record_failure(struct auth *a, const char *user, int64_t now)
{
    uint64_t h;
    pthread_mutex_lock(&a->lock);
    struct bucket *b = bucket_for(a, user, &h);
    if (b->name_hash != h || now - b->window_start >= AUTH_WINDOW) {
        b->name_hash = h;
        b->window_start = now;
        b->failures = 0;
    }
    b->failures++;
    pthread_mutex_unlock(&a->lock);
}

/* ---- the check ------------------------------------------------------------ */

enum auth_result auth_check(struct auth *a, const char *header, struct arena *ar,
                            struct principal *out, int *retry_after)
{
    if (!header || strlen(header) > AUTH_HEADER_MAX)
        return AUTH_DENIED;
    struct thread_state *t = thread_state(a);
    struct store_conn *r = store_reader(a->store);
    if (!t || !r)
        return AUTH_UNAVAILABLE;
    if (store_changed(r) && store_auth_epoch(r, &t->epoch) != STORE_OK)
        return AUTH_UNAVAILABLE;

    int64_t now = now_seconds();
    if (auth_cache_get(a->cache, a->cache_key, header, t->epoch, now, ar, out))
        return AUTH_OK;

    char user[AUTH_NAME_MAX + 1], pass[AUTH_HEADER_MAX];
    if (!auth_parse_basic(header, user, sizeof user, pass, sizeof pass))
        return AUTH_DENIED;
    enum auth_result result = AUTH_DENIED;
    int wait = throttled_for(a, user, now);
    if (wait > 0) {
        *retry_after = wait;
        result = AUTH_THROTTLED;
        goto out;
    }
    struct user u;
    enum store_rc rc = store_user_get(r, ar, user, &u);
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        result = AUTH_UNAVAILABLE;
        goto out;
    }
    const char *hash = rc == STORE_OK ? u.pwhash : a->dummy_hash;
    sem_wait(&a->verify_slots);
    bool verified = crypto_pwhash_str_verify(hash, pass, strlen(pass)) == 0;
    sem_post(&a->verify_slots);
    if (rc != STORE_OK || !verified) {
        record_failure(a, user, now);
        goto out;
    }
    out->user = u.name;
    out->account = u.account_id;
    out->admin = u.role == ROLE_ADMIN;
    auth_cache_put(a->cache, a->cache_key, header, t->epoch, now, out);
    result = AUTH_OK;
out:
    sodium_memzero(pass, sizeof pass);
    return result;
}
