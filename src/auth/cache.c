/* cache.c: the verified-credential cache. Direct-mapped and of fixed size,
 * shared by every thread; a slot is guarded by one of a few striped locks,
 * so lookups on different slots never wait for each other. A slot holds the
 * keyed tag of the Authorization header value (auth_tag), never the header
 * itself. */
#include "auth/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_STRIPES 64

_Static_assert(AUTH_TAG_KEY_BYTES == crypto_shorthash_siphashx24_KEYBYTES &&
                   AUTH_TAG_BYTES == crypto_shorthash_siphashx24_BYTES,
               "auth.h's sizes are SipHash-2-4-128's");

void auth_tag(const unsigned char key[AUTH_TAG_KEY_BYTES], const char *header,
              unsigned char tag[AUTH_TAG_BYTES])
{
    crypto_shorthash_siphashx24(tag, (const unsigned char *)header, strlen(header), key);
}

struct slot {
    unsigned char tag[AUTH_TAG_BYTES];
    int64_t expires, epoch;     /* expires == 0: empty */
    bool admin;
    char user[AUTH_NAME_MAX + 1];
    char account[AUTH_NAME_MAX + 1];
};

struct auth_cache {
    pthread_mutex_t stripes[CACHE_STRIPES];
    struct slot slots[AUTH_CACHE_SLOTS];
};

struct auth_cache *auth_cache_new(void)
{
    struct auth_cache *c = calloc(1, sizeof *c);
    for (int i = 0; c && i < CACHE_STRIPES; i++)
        pthread_mutex_init(&c->stripes[i], NULL);
    return c;
}

void auth_cache_free(struct auth_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_destroy(&c->stripes[i]);
    sodium_memzero(c->slots, sizeof c->slots);
    free(c);
}

/* The slot for a header, its tag in tag[], and the slot's lock, taken. */
static struct slot *lock_slot(struct auth_cache *c, const unsigned char key[AUTH_TAG_KEY_BYTES],
                              const char *header, unsigned char tag[AUTH_TAG_BYTES])
{
    auth_tag(key, header, tag);
    uint32_t h;
    memcpy(&h, tag, sizeof h);
    pthread_mutex_lock(&c->stripes[h % CACHE_STRIPES]);
    return &c->slots[h % AUTH_CACHE_SLOTS];
}

static void unlock_slot(struct auth_cache *c, const struct slot *s)
{
    pthread_mutex_unlock(&c->stripes[(size_t)(s - c->slots) % CACHE_STRIPES]);
}

bool auth_cache_get(struct auth_cache *c, const unsigned char key[AUTH_TAG_KEY_BYTES],
                    const char *header, int64_t epoch, int64_t now, struct arena *ar,
                    struct principal *out)
{
    unsigned char tag[AUTH_TAG_BYTES];
    char user[AUTH_NAME_MAX + 1], account[AUTH_NAME_MAX + 1];
    struct slot *s = lock_slot(c, key, header, tag);
    bool hit = s->expires > now && s->epoch == epoch && sodium_memcmp(s->tag, tag, sizeof tag) == 0;
    if (hit) {
        memcpy(user, s->user, sizeof user);
        memcpy(account, s->account, sizeof account);
        out->admin = s->admin;
    }
    unlock_slot(c, s);
    if (hit) {      /* the arena may unwind (util/oom.h): never under the lock */
        out->user = arena_strdup(ar, user);
        out->account = arena_strdup(ar, account);
    }
    return hit;
}

void auth_cache_put(struct auth_cache *c, const unsigned char key[AUTH_TAG_KEY_BYTES],
                    const char *header, int64_t epoch, int64_t now, const struct principal *p)
{
    if (strlen(p->user) > AUTH_NAME_MAX || strlen(p->account) > AUTH_NAME_MAX)
        return;
    unsigned char tag[AUTH_TAG_BYTES];
    struct slot *s = lock_slot(c, key, header, tag);
    memcpy(s->tag, tag, sizeof tag);
    s->expires = now + AUTH_CACHE_TTL;
    s->epoch = epoch;
    s->admin = p->admin;
    strcpy(s->user, p->user);
    strcpy(s->account, p->account);
    unlock_slot(c, s);
}
