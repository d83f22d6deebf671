/* cache.c: the verified-credential cache. Direct-mapped, fixed size, one per
 * thread (so no lock on the hot path). A slot holds the keyed BLAKE2b-256 tag
 * of the Authorization header value, never the header itself. */
#include "auth/auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 256

struct slot {
    unsigned char tag[32];
    int64_t expires, epoch;     /* expires == 0: empty */
    bool admin;
    char user[AUTH_NAME_MAX + 1];
    char account[AUTH_NAME_MAX + 1];
};

struct auth_cache {
    struct slot slots[CACHE_SLOTS];
};

struct auth_cache *auth_cache_new(void)
{
    return calloc(1, sizeof(struct auth_cache));
}

void auth_cache_free(struct auth_cache *c)
{
    if (c)
        sodium_memzero(c, sizeof *c);
    free(c);
}

static struct slot *lookup(struct auth_cache *c, const unsigned char key[32], const char *header,
                           unsigned char tag[32])
{
    crypto_generichash(tag, 32, (const unsigned char *)header, strlen(header), key, 32);
    uint32_t h;
    memcpy(&h, tag, sizeof h);
    return &c->slots[h % CACHE_SLOTS];
}

bool auth_cache_get(struct auth_cache *c, const unsigned char key[32], const char *header,
                    int64_t epoch, int64_t now, struct arena *ar, struct principal *out)
{
    unsigned char tag[32];
    struct slot *s = lookup(c, key, header, tag);
    if (s->expires <= now || s->epoch != epoch || sodium_memcmp(s->tag, tag, 32) != 0)
        return false;
    out->user = arena_strdup(ar, s->user);
    out->account = arena_strdup(ar, s->account);
    out->admin = s->admin;
    return true;
}

void auth_cache_put(struct auth_cache *c, const unsigned char key[32], const char *header,
                    int64_t epoch, int64_t now, const struct principal *p)
{
    unsigned char tag[32];
    struct slot *s = lookup(c, key, header, tag);
    if (strlen(p->user) > AUTH_NAME_MAX || strlen(p->account) > AUTH_NAME_MAX)
        return;
    memcpy(s->tag, tag, 32);
    s->expires = now + AUTH_CACHE_TTL;
    s->epoch = epoch;
    s->admin = p->admin;
    strcpy(s->user, p->user);
    strcpy(s->account, p->account);
}
