/* auth.c: see auth.h. The order matters: the cache first (no argon2 on the
 * steady path), then the header's form, then the throttles (no argon2 for a
 * throttled client), then the hash on a verifier thread. */
#include "auth/auth.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/oom.h"

/* ---- throttle tables ----------------------------------------------------------
 * Set-associative: a key lives in one set of WAYS buckets; a new key takes
 * the bucket whose window is oldest, never one with checks still queued. */

#define SETS 1024
#define WAYS 4

struct bucket {
    uint64_t key;               /* 0: empty */
    int64_t window_start;
    int failures;               /* in the current window, queued checks included */
    int pending;                /* checks queued (address buckets only) */
};

struct table {
    struct bucket sets[SETS][WAYS];
};

static void roll(struct bucket *b, int64_t now)
{
    if (now - b->window_start >= AUTH_WINDOW) {
        b->window_start = now;
        b->failures = 0;
    }
}

/* The bucket of key, current; NULL if there is none (and `create` is false,
 * or every bucket of its set has checks queued). */
static struct bucket *bucket(struct table *t, uint64_t key, int64_t now, bool create)
{
    struct bucket *set = t->sets[key % SETS], *victim = NULL;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].key == key) {
            roll(&set[i], now);
            return &set[i];
        }
        if (set[i].pending == 0 && (!victim || set[i].window_start < victim->window_start))
            victim = &set[i];
    }
    if (!create || !victim)
        return NULL;
    *victim = (struct bucket){.key = key, .window_start = now};
    return victim;
}

/* ---- the module ------------------------------------------------------------------- */

struct auth {
    struct store *store;
    struct auth_cache *cache;               /* shared by every thread */
    unsigned char cache_key[AUTH_TAG_KEY_BYTES];    /* per process, random */
    unsigned char throttle_key[crypto_shorthash_KEYBYTES];
    pthread_key_t thread_key;               /* -> struct thread_state */
    char dummy_hash[crypto_pwhash_STRBYTES];

    pthread_mutex_t lock;                   /* guards everything below */
    struct table pairs;                     /* (address, user name) */
    struct table addresses;
    struct auth_check *head, *tail;         /* queued checks, oldest first */
    int queued;                             /* queued or being verified */
    struct auth_check *leaders[AUTH_QUEUE_MAX];    /* those, by slot */
    bool stopping;
    pthread_cond_t work;
    pthread_t verifiers[AUTH_VERIFIERS];
    int n_verifiers;
    struct thread_state *threads;
};

/* The auth epoch as this thread's reader last saw it. */
struct thread_state {
    int64_t epoch;
    bool known;                 /* epoch was read at generation gen, second read_at */
    uint64_t gen;               /* store_auth_generation() then */
    int64_t read_at;
    struct thread_state *next;
};

static int64_t now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
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

static uint64_t short_hash(struct auth *a, const void *data, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, data, len, a->throttle_key);
    memcpy(&h, out, sizeof h);
    return h ? h : 1;
}

/* A client address as a throttle key: IPv4 whole (also when mapped into
 * IPv6), IPv6 by its /64, which one client usually owns entirely. */
static uint64_t address_key(struct auth *a, const struct sockaddr *sa)
{
    unsigned char buf[17] = {0};
    size_t n = 1;
    if (sa && sa->sa_family == AF_INET) {
        buf[0] = 4;
        memcpy(buf + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        n = 5;
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            buf[0] = 4;
            memcpy(buf + 1, in6->s6_addr + 12, 4);
            n = 5;
        } else {
            buf[0] = 6;
            memcpy(buf + 1, in6->s6_addr, 8);
            n = 9;
        }
    }
    return short_hash(a, buf, n);
}

static uint64_t pair_key(struct auth *a, uint64_t addr_key, const char *user)
{
    size_t ulen = strlen(user);
    unsigned char buf[8 + AUTH_NAME_MAX];
    memcpy(buf, &addr_key, 8);
    memcpy(buf + 8, user, ulen);
    return short_hash(a, buf, 8 + ulen);
}

/* ---- the fast part ---------------------------------------------------------------- */

/* Charge the attempt before it is checked, or refuse it. Under a.lock. */
static enum auth_result admit_attempt(struct auth *a, struct auth_check *ck, int64_t now)
{
    struct bucket *pair = bucket(&a->pairs, ck->pair_key, now, true);
    struct bucket *addr = bucket(&a->addresses, ck->addr_key, now, true);
    if (pair && pair->failures >= AUTH_MAX_FAILURES) {
        ck->retry_after = (int)(AUTH_WINDOW - (now - pair->window_start));
        ck->throttle = THROTTLE_USER;
        metrics_inc(METRIC_THROTTLE_USER);
        return AUTH_THROTTLED;
    }
    if (addr && addr->failures >= AUTH_ADDR_MAX_FAILURES) {
        ck->retry_after = (int)(AUTH_WINDOW - (now - addr->window_start));
        ck->throttle = THROTTLE_ADDRESS;
        metrics_inc(METRIC_THROTTLE_ADDRESS);
        return AUTH_THROTTLED;
    }
    if (!addr || addr->pending >= AUTH_ADDR_PENDING) {
        ck->retry_after = 1;
        ck->throttle = THROTTLE_CONCURRENT;
        metrics_inc(METRIC_THROTTLE_CONCURRENT);
        return AUTH_THROTTLED;
    }
    if (a->queued >= AUTH_QUEUE_MAX || a->stopping) {
        ck->retry_after = 1;
        metrics_inc(METRIC_THROTTLE_QUEUE);
        return AUTH_UNAVAILABLE;
    }
    if (pair)
        pair->failures++;
    addr->failures++;
    addr->pending++;
    ck->charged = true;
    return AUTH_VERIFY;
}

/* The check of the same header being verified now, if any. Under a.lock. */
static struct auth_check *leader_of(struct auth *a, const struct auth_check *ck)
{
    for (int i = 0; i < AUTH_QUEUE_MAX; i++)
        if (a->leaders[i] && !memcmp(a->leaders[i]->tag, ck->tag, sizeof ck->tag))
            return a->leaders[i];
    return NULL;
}

enum auth_result auth_check(struct auth *a, struct auth_check *ck)
{
    ck->retry_after = 0;
    if (!ck->header || strlen(ck->header) > AUTH_HEADER_MAX)
        return ck->result = AUTH_DENIED;
    struct thread_state *t = thread_state(a);
    if (!t)
        return ck->result = AUTH_UNAVAILABLE;
    /* The epoch is read again only when it may have changed: most requests
     * (a write among them) then open no read transaction here at all. And
     * in another second, should a change ever go unseen (the store's watch
     * on a file system without inotify): a stale epoch would keep a changed
     * password's old entries in the cache. */
    uint64_t gen = store_auth_generation(a->store);
    int64_t now = now_seconds();
    if (!t->known || t->gen != gen || t->read_at != now) {
        struct store_conn *r = store_reader(a->store);
        if (!r || store_read_begin(r) != STORE_OK)
            return ck->result = AUTH_UNAVAILABLE;
        t->known = store_auth_epoch(r, &t->epoch) == STORE_OK;
        store_read_end(r);
        if (!t->known)
            return ck->result = AUTH_UNAVAILABLE;
        t->gen = gen;
        t->read_at = now;
    }

    if (auth_cache_get(a->cache, a->cache_key, ck->header, t->epoch, now, ck->arena,
                       &ck->principal)) {
        metrics_inc(METRIC_AUTH_CACHED);
        return ck->result = AUTH_OK;
    }
    if (!auth_parse_basic(ck->header, ck->user, sizeof ck->user, ck->pass, sizeof ck->pass)) {
        sodium_memzero(ck->pass, sizeof ck->pass);
        return ck->result = AUTH_DENIED;
    }
    ck->addr_key = address_key(a, ck->client);
    ck->pair_key = pair_key(a, ck->addr_key, ck->user);
    auth_tag(a->cache_key, ck->header, ck->tag);
    ck->charged = false;
    ck->followers = NULL;
    pthread_mutex_lock(&a->lock);
    /* the same header is being checked: wait for that check, uncharged */
    ck->result = leader_of(a, ck) ? AUTH_VERIFY : admit_attempt(a, ck, now);
    pthread_mutex_unlock(&a->lock);
    if (ck->result != AUTH_VERIFY)
        sodium_memzero(ck->pass, sizeof ck->pass);
    return ck->result;
}

void auth_verify(struct auth *a, struct auth_check *ck)
{
    pthread_mutex_lock(&a->lock);
    if (!ck->charged) {
        struct auth_check *leader = leader_of(a, ck);
        if (leader) {
            sodium_memzero(ck->pass, sizeof ck->pass);
            ck->next = leader->followers;
            leader->followers = ck;
            pthread_mutex_unlock(&a->lock);
            return;
        }
        /* it finished meanwhile: this one is a check of its own */
        ck->result = admit_attempt(a, ck, now_seconds());
        if (ck->result != AUTH_VERIFY) {
            pthread_mutex_unlock(&a->lock);
            sodium_memzero(ck->pass, sizeof ck->pass);
            ck->done(ck);
            return;
        }
    }
    for (int i = 0; i < AUTH_QUEUE_MAX; i++) {
        if (!a->leaders[i]) {
            a->leaders[i] = ck;
            break;
        }
    }
    ck->next = NULL;
    if (a->tail)
        a->tail->next = ck;
    else
        a->head = ck;
    a->tail = ck;
    a->queued++;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->lock);
}

/* ---- the slow part: verifier threads ------------------------------------------------ */

/* A check is over: its address has one check fewer queued, and a success
 * (or a failure that was ours, not the client's) takes its charge back. */
static void settle(struct auth *a, struct auth_check *ck, bool refund)
{
    int64_t now = now_seconds();
    pthread_mutex_lock(&a->lock);
    struct bucket *addr = bucket(&a->addresses, ck->addr_key, now, false);
    struct bucket *pair = bucket(&a->pairs, ck->pair_key, now, false);
    if (addr) {
        addr->pending--;
        if (refund && addr->failures > 0)
            addr->failures--;
    }
    if (pair && refund && pair->failures > 0)
        pair->failures--;
    pthread_mutex_unlock(&a->lock);
}

static void verify(struct auth *a, struct auth_check *ck)
{
    struct store_conn *r = store_reader(a->store);
    struct user u;
    int64_t epoch = 0;
    enum store_rc rc = STORE_ERROR;
    /* the epoch and the user from one snapshot: a credential is never
     * cached under an epoch newer than the hash it was checked against */
    if (r && store_read_begin(r) == STORE_OK) {
        rc = store_auth_epoch(r, &epoch);
        if (rc == STORE_OK)
            rc = store_user_get(r, ck->arena, ck->user, &u);
        store_read_end(r);
    }
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        metrics_inc(METRIC_AUTH_UNAVAILABLE);
        ck->result = AUTH_UNAVAILABLE;
        ck->retry_after = 1;
        sodium_memzero(ck->pass, sizeof ck->pass);
        settle(a, ck, true);
        return;
    }
    const char *hash = rc == STORE_OK ? u.pwhash : a->dummy_hash;
    bool verified = crypto_pwhash_str_verify(hash, ck->pass, strlen(ck->pass)) == 0;
    sodium_memzero(ck->pass, sizeof ck->pass);
    if (rc != STORE_OK || !verified) {
        metrics_inc(METRIC_AUTH_DENIED);
        ck->result = AUTH_DENIED;
        settle(a, ck, false);
        return;
    }
    ck->principal = (struct principal){.user = u.name, .account = u.account_id,
                                       .admin = u.role == ROLE_ADMIN};
    auth_cache_put(a->cache, a->cache_key, ck->header, epoch, now_seconds(), &ck->principal);
    metrics_inc(METRIC_AUTH_OK);
    ck->result = AUTH_OK;
    settle(a, ck, true);
}

/* A follower gets its leader's answer, its own copy of the principal. */
static void answer_follower(struct auth_check *f, const struct auth_check *leader)
{
    struct oom_point p;
    oom_enter(&p);
    f->result = leader->result;
    f->retry_after = leader->retry_after;
    if (setjmp(p.jb) == 0) {
        if (f->result == AUTH_OK)
            f->principal = (struct principal){
                .user = arena_strdup(f->arena, leader->principal.user),
                .account = arena_strdup(f->arena, leader->principal.account),
                .admin = leader->principal.admin};
    } else {
        f->result = AUTH_UNAVAILABLE;
        f->retry_after = 1;
    }
    oom_leave(&p);
}

/* A check not verified: answered AUTH_UNAVAILABLE, to be retried. */
static void give_up(struct auth *a, struct auth_check *ck)
{
    struct store_conn *r = store_reader(a->store);
    if (r)
        store_conn_reset(r);
    sodium_memzero(ck->pass, sizeof ck->pass);
    ck->result = AUTH_UNAVAILABLE;
    ck->retry_after = 1;
    settle(a, ck, true);
}

/* verify(), giving up if it runs out of memory or attachd is stopping (a
 * check still queued then is not worth its CPU: its client is answered 503
 * at once, and stopping takes no longer than the checks under way). */
static void verify_or_give_up(struct auth *a, struct auth_check *ck, bool stopping)
{
    if (stopping) {
        give_up(a, ck);
        return;
    }
    struct oom_point p;
    oom_enter(&p);
    if (setjmp(p.jb) == 0)
        verify(a, ck);
    else
        give_up(a, ck);
    oom_leave(&p);
}

static void *verifier_main(void *arg)
{
    pthread_setname_np(pthread_self(), "auth-verify");
    struct auth *a = arg;
    /* Password checks yield the CPU to everything else: requests answered
     * from the cache keep their pace while a flood of guesses waits. */
    setpriority(PRIO_PROCESS, 0, 19);
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->head && !a->stopping)
            pthread_cond_wait(&a->work, &a->lock);
        struct auth_check *ck = a->head;
        if (!ck)
            break;
        a->head = ck->next;
        if (!a->head)
            a->tail = NULL;
        bool stopping = a->stopping;
        pthread_mutex_unlock(&a->lock);
        verify_or_give_up(a, ck, stopping);
        pthread_mutex_lock(&a->lock);
        a->queued--;
        for (int i = 0; i < AUTH_QUEUE_MAX; i++)
            if (a->leaders[i] == ck)
                a->leaders[i] = NULL;
        struct auth_check *f = ck->followers;
        pthread_mutex_unlock(&a->lock);
        while (f) {
            struct auth_check *next = f->next;
            answer_follower(f, ck);
            f->done(f);
            f = next;
        }
        ck->done(ck);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- life ------------------------------------------------------------------------ */

struct auth *auth_new(struct store *store)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->store = store;
    a->cache = auth_cache_new();
    randombytes_buf(a->cache_key, sizeof a->cache_key);
    randombytes_buf(a->throttle_key, sizeof a->throttle_key);
    pthread_key_create(&a->thread_key, NULL);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->work, NULL);
    char pw[33];
    randombytes_buf(pw, 16);
    sodium_bin2hex(pw, sizeof pw, (unsigned char *)pw, 16);
    if (!a->cache || auth_hash_password(pw, a->dummy_hash, sizeof a->dummy_hash) != 0) {
        auth_free(a);
        return NULL;
    }
    while (a->n_verifiers < AUTH_VERIFIERS &&
           pthread_create(&a->verifiers[a->n_verifiers], NULL, verifier_main, a) == 0)
        a->n_verifiers++;
    if (a->n_verifiers == 0) {
        log_error("auth: cannot start a verifier thread");
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_drain(struct auth *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->work);
    pthread_mutex_unlock(&a->lock);
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    auth_drain(a);
    for (int i = 0; i < a->n_verifiers; i++)
        pthread_join(a->verifiers[i], NULL);
    struct thread_state *t = a->threads;
    while (t) {
        struct thread_state *next = t->next;
        free(t);
        t = next;
    }
    auth_cache_free(a->cache);
    pthread_key_delete(a->thread_key);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->work);
    sodium_memzero(a, sizeof *a);
    free(a);
}
