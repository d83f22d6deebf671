/* cache.c: the verified-credential cache. Direct-mapped and of fixed size,
 * shared by every thread; a slot is guarded by one of a few striped locks,
 * so lookups on different slots never wait for each other. A slot holds the
 * keyed BLAKE2b-256 tag of the Authorization header value, never the header
 * itself. */
#include "auth/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_STRIPES 64

struct slot {
    unsigned char tag[32];
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
static struct slot *lock_slot(struct auth_cache *c, const unsigned char key[32],
                              const char *header, unsigned char tag[32])
{
    crypto_generichash(tag, 32, (const unsigned char *)header, strlen(header), key, 32);
    uint32_t h;
    memcpy(&h, tag, sizeof h);
    pthread_mutex_lock(&c->stripes[h % CACHE_STRIPES]);
    return &c->slots[h % AUTH_CACHE_SLOTS];
}

static void unlock_slot(struct auth_cache *c, const struct slot *s)
{
    pthread_mutex_unlock(&c->stripes[(size_t)(s - c->slots) % CACHE_STRIPES]);
}

bool auth_cache_get(struct auth_cache *c, const unsigned char key[32], const char *header,
                    int64_t epoch, int64_t now, struct arena *ar, struct principal *out)
{
    unsigned char tag[32];
    char user[AUTH_NAME_MAX + 1], account[AUTH_NAME_MAX + 1];
    struct slot *s = lock_slot(c, key, header, tag);
    bool hit = s->expires > now && s->epoch == epoch && sodium_memcmp(s->tag, tag, 32) == 0;
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

void auth_cache_put(struct auth_cache *c, const unsigned char key[32], const char *header,
                    int64_t epoch, int64_t now, const struct principal *p)
{
    if (strlen(p->user) > AUTH_NAME_MAX || strlen(p->account) > AUTH_NAME_MAX)
        return;
    unsigned char tag[32];
    struct slot *s = lock_slot(c, key, header, tag);
    memcpy(s->tag, tag, 32);
    s->expires = now + AUTH_CACHE_TTL;
    s->epoch = epoch;
    s->admin = p->admin;
    strcpy(s->user, p->user);
    strcpy(s->account, p->account);
    unlock_slot(c, s);
}
