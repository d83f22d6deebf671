/* test_cache.c: the verified-credential cache (auth/cache.c), and the way
 * auth_check() uses it: a hit only for the same header, the same key, the
 * same auth epoch and before the entry expires; a password change or a user
 * deletion (which bump the epoch) takes effect at once. */
#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static const unsigned char key1[AUTH_TAG_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const unsigned char key2[AUTH_TAG_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11};

#define H1 "Basic YWxpY2U6c2VjcmV0"
#define H2 "Basic YWxpY2U6c2VjcmV1"

struct fixture {
    struct auth_cache *cache;
    struct arena ar;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->cache = auth_cache_new();
    arena_init(&f->ar);
    *state = f;
    return f->cache ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    auth_cache_free(f->cache);
    arena_release(&f->ar);
    free(f);
    return 0;
}

static const struct principal alice = {.user = "alice", .account = "acct-a", .admin = false};

static bool get(struct fixture *f, const unsigned char *key, const char *header, int64_t epoch,
                int64_t now, struct principal *out)
{
    memset(out, 0, sizeof *out);
    return auth_cache_get(f->cache, key, header, epoch, now, &f->ar, out);
}

static void test_empty_cache_misses(void **state)
{
    struct fixture *f = *state;
    struct principal p;
    assert_false(get(f, key1, H1, 1, 1000, &p));
    assert_false(get(f, key1, H1, 0, 0, &p));
    assert_false(get(f, key1, "", 0, 0, &p));
}

static void test_hit(void **state)
{
    struct fixture *f = *state;
    struct principal p;
    auth_cache_put(f->cache, key1, H1, 1, 1000, &alice);
    assert_true(get(f, key1, H1, 1, 1000, &p));
    assert_string_equal(p.user, "alice");
    assert_string_equal(p.account, "acct-a");
    assert_false(p.admin);
    /* copies in the caller's arena, not pointers into the cache or the input */
    assert_ptr_not_equal(p.user, alice.user);
    assert_ptr_not_equal(p.account, alice.account);
    struct principal again;
    assert_true(get(f, key1, H1, 1, 1001, &again));
    assert_ptr_not_equal(again.user, p.user);
}

static void test_admin_flag_kept(void **state)
{
    struct fixture *f = *state;
    struct principal root = {.user = "root", .account = "ops", .admin = true}, p;
    auth_cache_put(f->cache, key1, H2, 3, 50, &root);
    assert_true(get(f, key1, H2, 3, 50, &p));
    assert_true(p.admin);
    assert_string_equal(p.user, "root");
    assert_string_equal(p.account, "ops");
}

static void test_miss_on_different_header(void **state)
{
    struct fixture *f = *state;
    struct principal p;
    auth_cache_put(f->cache, key1, H1, 1, 1000, &alice);
    assert_false(get(f, key1, H2, 1, 1000, &p));
    assert_false(get(f, key1, "basic YWxpY2U6c2VjcmV0", 1, 1000, &p));   /* case matters */
    assert_false(get(f, key1, H1 " ", 1, 1000, &p));
    assert_false(get(f, key1, "Basic YWxpY2U6c2VjcmV", 1, 1000, &p));
    assert_true(get(f, key1, H1, 1, 1000, &p));
}

static void test_miss_on_epoch_change(void **state)
{
    struct fixture *f = *state;
    struct principal p;
    auth_cache_put(f->cache, key1, H1, 1, 1000, &alice);
    assert_false(get(f, key1, H1, 2, 1000, &p));
    assert_false(get(f, key1, H1, 0, 1000, &p));
    assert_true(get(f, key1, H1, 1, 1000, &p));
    /* a put under the new epoch replaces the old entry */
    auth_cache_put(f->cache, key1, H1, 2, 1000, &alice);
    assert_true(get(f, key1, H1, 2, 1000, &p));
    assert_false(get(f, key1, H1, 1, 1000, &p));
}

static void test_miss_after_expiry(void **state)
{
    struct fixture *f = *state;
    struct principal p;
    auth_cache_put(f->cache, key1, H1, 1, 1000, &alice);
    assert_true(get(f, key1, H1, 1, 1000 + AUTH_CACHE_TTL - 1, &p));
    assert_false(get(f, key1, H1, 1, 1000 + AUTH_CACHE_TTL, &p));
    assert_false(get(f, key1, H1, 1, 1000 + AUTH_CACHE_TTL + 3600, &p));
    /* a fresh put starts a fresh lifetime */
    auth_cache_put(f->cache, key1, H1, 1, 5000, &alice);
    assert_true(get(f, key1, H1, 1, 5000 + AUTH_CACHE_TTL - 1, &p));
    assert_false(get(f, key1, H1, 1, 5000 + AUTH_CACHE_TTL, &p));
}

static void test_miss_on_different_key(void **state)
{
    struct fixture *f = *state;
    struct principal p;
    auth_cache_put(f->cache, key1, H1, 1, 1000, &alice);
    assert_false(get(f, key2, H1, 1, 1000, &p));
    assert_true(get(f, key1, H1, 1, 1000, &p));
}

/* auth_tag is SipHash-2-4 with a 128-bit output: the reference vector of
 * its authors (key 00..0f, the empty message), and a tag that follows every
 * byte of the header. */
static void test_tag_is_siphash_128(void **state)
{
    (void)state;
    unsigned char key[AUTH_TAG_KEY_BYTES], tag[AUTH_TAG_BYTES], other[AUTH_TAG_BYTES];
    for (int i = 0; i < AUTH_TAG_KEY_BYTES; i++)
        key[i] = (unsigned char)i;
    static const unsigned char empty[AUTH_TAG_BYTES] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25,
                                                        0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14,
                                                        0xc7, 0x55, 0x02, 0x93};
    auth_tag(key, "", tag);
    assert_memory_equal(tag, empty, sizeof tag);
    auth_tag(key, H1, tag);
    auth_tag(key, H2, other);
    assert_memory_not_equal(tag, other, sizeof tag);
}

static void test_overlong_names_not_cached(void **state)
{
    struct fixture *f = *state;
    char longname[AUTH_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct principal big = {.user = longname, .account = "acct-a"}, p;
    auth_cache_put(f->cache, key1, H1, 1, 1000, &big);
    assert_false(get(f, key1, H1, 1, 1000, &p));
    big = (struct principal){.user = "alice", .account = longname};
    auth_cache_put(f->cache, key1, H1, 1, 1000, &big);
    assert_false(get(f, key1, H1, 1, 1000, &p));
    /* the longest name that fits is kept whole */
    longname[AUTH_NAME_MAX] = '\0';
    big = (struct principal){.user = longname, .account = "acct-a"};
    auth_cache_put(f->cache, key1, H1, 1, 1000, &big);
    assert_true(get(f, key1, H1, 1, 1000, &p));
    assert_string_equal(p.user, longname);
}

/* Direct-mapped: colliding headers evict each other, but a hit must never
 * return another header's principal. */
static void test_collisions_never_confuse(void **state)
{
    struct fixture *f = *state;
    enum { N = 2000 };
    char header[64], user[32];
    for (int i = 0; i < N; i++) {
        snprintf(header, sizeof header, "Basic header-%d", i);
        snprintf(user, sizeof user, "user-%d", i);
        struct principal pr = {.user = user, .account = "acct", .admin = (i % 2) != 0};
        auth_cache_put(f->cache, key1, header, 7, 100, &pr);
    }
    int hits = 0;
    for (int i = 0; i < N; i++) {
        struct principal p;
        snprintf(header, sizeof header, "Basic header-%d", i);
        snprintf(user, sizeof user, "user-%d", i);
        if (get(f, key1, header, 7, 100, &p)) {
            hits++;
            assert_string_equal(p.user, user);
            assert_int_equal(p.admin, (i % 2) != 0);
        }
    }
    /* the most recent put always survives; the slots bound the rest */
    struct principal p;
    assert_true(get(f, key1, "Basic header-1999", 7, 100, &p));
    assert_true(hits >= 1);
    assert_true(hits <= AUTH_CACHE_SLOTS);
}

/* ---- auth_check: the cache in use ------------------------------------------------ */

struct world {
    struct tmp_store t;
    struct auth *auth;
    struct arena ar;
};

static int world_setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    tmp_store_open(&w->t);
    add_account(w->t.store, "acct-a", "alpha");
    add_user(w->t.store, "alice", "acct-a", "alice-pw", ROLE_MEMBER);
    add_user(w->t.store, "root", "acct-a", "root-pw", ROLE_ADMIN);
    w->auth = auth_new(w->t.store);
    assert_non_null(w->auth);
    arena_init(&w->ar);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    struct world *w = *state;
    auth_free(w->auth);
    tmp_store_close(&w->t);
    arena_release(&w->ar);
    free(w);
    return 0;
}

/* A client address 10.0.0.<n>. */
static struct sockaddr_in addr(int n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(40000)};
    sa.sin_addr.s_addr = htonl(0x0a000000u | (unsigned)n);
    return sa;
}

/* auth_check(), and when it asks for it, auth_verify() waited for. */
struct waited {
    struct auth_check ck;
    struct arena ar;            /* the check's own, as a request's: verifiers write to it */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void waited_done(struct auth_check *ck)
{
    struct waited *wt = ck->cls;
    pthread_mutex_lock(&wt->lock);
    wt->done = true;
    pthread_cond_signal(&wt->cond);
    pthread_mutex_unlock(&wt->lock);
}

static void start(struct world *w, struct waited *wt, const char *header,
                  const struct sockaddr_in *from)
{
    memset(wt, 0, sizeof *wt);
    pthread_mutex_init(&wt->lock, NULL);
    pthread_cond_init(&wt->cond, NULL);
    arena_init(&wt->ar);
    wt->ck = (struct auth_check){.header = header, .client = (const struct sockaddr *)from,
                                 .arena = &wt->ar, .done = waited_done, .cls = wt};
    if (auth_check(w->auth, &wt->ck) == AUTH_VERIFY)
        auth_verify(w->auth, &wt->ck);
    else
        wt->done = true;
}

/* The result, with the principal's strings copied into the world's arena. */
static enum auth_result finish(struct waited *wt, struct world *w, struct principal *p)
{
    pthread_mutex_lock(&wt->lock);
    while (!wt->done)
        pthread_cond_wait(&wt->cond, &wt->lock);
    pthread_mutex_unlock(&wt->lock);
    pthread_mutex_destroy(&wt->lock);
    pthread_cond_destroy(&wt->cond);
    *p = wt->ck.principal;
    p->user = arena_strdup(&w->ar, p->user);
    p->account = arena_strdup(&w->ar, p->account);
    arena_release(&wt->ar);
    return wt->ck.result;
}

static enum auth_result check_from(struct world *w, const char *header, int from,
                                   struct principal *p)
{
    struct waited wt;
    struct sockaddr_in sa = addr(from);
    start(w, &wt, header, &sa);
    return finish(&wt, w, p);
}

static enum auth_result check(struct world *w, const char *header, struct principal *p)
{
    return check_from(w, header, 1, p);
}

static void test_check_ok_and_denied(void **state)
{
    struct world *w = *state;
    struct principal p;
    assert_int_equal(check(w, basic_header(&w->ar, "alice", "alice-pw"), &p), AUTH_OK);
    assert_string_equal(p.user, "alice");
    assert_string_equal(p.account, "acct-a");
    assert_false(p.admin);
    assert_int_equal(check(w, basic_header(&w->ar, "root", "root-pw"), &p), AUTH_OK);
    assert_true(p.admin);
    assert_int_equal(check(w, basic_header(&w->ar, "alice", "wrong"), &p), AUTH_DENIED);
    assert_int_equal(check(w, basic_header(&w->ar, "nobody", "alice-pw"), &p), AUTH_DENIED);
    assert_int_equal(check(w, NULL, &p), AUTH_DENIED);
    assert_int_equal(check(w, "Bearer x", &p), AUTH_DENIED);
    /* the cached header still answers (and still only for its own bytes) */
    assert_int_equal(check(w, basic_header(&w->ar, "alice", "alice-pw"), &p), AUTH_OK);
    assert_string_equal(p.user, "alice");
}

static int job_set_alice_password(struct store_conn *wconn, void *arg)
{
    enum store_rc rc = store_user_set_pwhash(wconn, "alice", arg);
    return rc != STORE_OK ? (int)rc : (int)store_auth_epoch_bump(wconn);
}

static int job_delete_root(struct store_conn *wconn, void *arg)
{
    (void)arg;
    enum store_rc rc = store_user_del(wconn, "root");
    return rc != STORE_OK ? (int)rc : (int)store_auth_epoch_bump(wconn);
}

static void test_check_password_change_takes_effect(void **state)
{
    struct world *w = *state;
    struct principal p;
    const char *old = basic_header(&w->ar, "alice", "alice-pw");
    assert_int_equal(check(w, old, &p), AUTH_OK);          /* now cached */
    char hash[crypto_pwhash_STRBYTES];
    assert_int_equal(auth_hash_password("new-pw", hash, sizeof hash), 0);
    assert_int_equal(store_write(w->t.store, job_set_alice_password, hash), 0);
    assert_int_equal(check(w, old, &p), AUTH_DENIED);
    assert_int_equal(check(w, basic_header(&w->ar, "alice", "new-pw"), &p), AUTH_OK);
}

static void test_check_user_deletion_takes_effect(void **state)
{
    struct world *w = *state;
    struct principal p;
    const char *h = basic_header(&w->ar, "root", "root-pw");
    assert_int_equal(check(w, h, &p), AUTH_OK);
    assert_int_equal(store_write(w->t.store, job_delete_root, NULL), 0);
    assert_int_equal(check(w, h, &p), AUTH_DENIED);
}

static void test_check_throttles_after_failures(void **state)
{
    struct world *w = *state;
    struct principal p;
    const char *bad = basic_header(&w->ar, "alice", "nope");
    for (int i = 0; i < AUTH_MAX_FAILURES; i++)
        assert_int_equal(check(w, bad, &p), AUTH_DENIED);
    /* now even the right password is refused from that address until the
     * window passes, without a password check */
    struct waited wt;
    struct sockaddr_in one = addr(1);
    start(w, &wt, basic_header(&w->ar, "alice", "alice-pw"), &one);
    assert_int_equal(finish(&wt, w, &p), AUTH_THROTTLED);
    assert_in_range(wt.ck.retry_after, 1, AUTH_WINDOW);
    /* another name from that address is not affected */
    assert_int_equal(check(w, basic_header(&w->ar, "root", "root-pw"), &p), AUTH_OK);
    /* nor is alice from another address: a guesser cannot lock her out */
    assert_int_equal(check_from(w, basic_header(&w->ar, "alice", "alice-pw"), 2, &p), AUTH_OK);
}

/* Guesses sent at once cannot slip past the limit: each is charged before
 * it is checked, and one address has only a few checks queued at a time. */
static void test_concurrent_guesses_are_charged_first(void **state)
{
    struct world *w = *state;
    enum { N = 60 };
    struct waited *wt = calloc(N, sizeof *wt);
    assert_non_null(wt);
    struct sockaddr_in one = addr(7);
    int checked = 0, throttled = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++)
            start(w, &wt[i], basic_header(&w->ar, "alice", arena_printf(&w->ar, "guess-%d-%d",
                                                                          round, i)), &one);
        for (int i = 0; i < N; i++) {
            struct principal p;
            enum auth_result r = finish(&wt[i], w, &p);
            assert_true(r == AUTH_DENIED || r == AUTH_THROTTLED);
            checked += r == AUTH_DENIED;
            throttled += r == AUTH_THROTTLED;
        }
    }
    free(wt);
    assert_int_equal(checked, AUTH_MAX_FAILURES);
    assert_int_equal(throttled, 5 * N - AUTH_MAX_FAILURES);
}

/* The same header at the same time: one password check, every caller
 * answered, none throttled (a client opening many connections at once). */
static void test_same_header_at_once_shares_one_check(void **state)
{
    struct world *w = *state;
    enum { N = 3 * AUTH_ADDR_PENDING };
    struct waited wt[N];
    struct sockaddr_in one = addr(8);
    const char *h = basic_header(&w->ar, "root", "root-pw");
    for (int i = 0; i < N; i++)
        start(w, &wt[i], h, &one);
    for (int i = 0; i < N; i++) {
        struct principal p;
        assert_int_equal(finish(&wt[i], w, &p), AUTH_OK);
        assert_string_equal(p.user, "root");
        assert_true(p.admin);
    }
    /* and the same wrong password repeated is one guess, not N */
    const char *bad = basic_header(&w->ar, "root", "not-it");
    for (int i = 0; i < N; i++)
        start(w, &wt[i], bad, &one);
    for (int i = 0; i < N; i++) {
        struct principal p;
        assert_int_equal(finish(&wt[i], w, &p), AUTH_DENIED);
    }
    /* had each been charged, root would now be throttled from here */
    struct principal p;
    assert_int_equal(check_from(w, basic_header(&w->ar, "root", "root-pw2"), 8, &p),
                     AUTH_DENIED);
}

/* Many names from one address: bounded too. */
static void test_one_address_many_names(void **state)
{
    struct world *w = *state;
    struct waited wt[AUTH_ADDR_PENDING + 4];
    struct sockaddr_in from = addr(9);
    int queued = 0;
    for (size_t i = 0; i < sizeof wt / sizeof wt[0]; i++) {
        start(w, &wt[i], basic_header(&w->ar, arena_printf(&w->ar, "n%zu", i), "x"), &from);
        queued += !wt[i].done;
    }
    assert_true(queued <= AUTH_ADDR_PENDING);
    for (size_t i = 0; i < sizeof wt / sizeof wt[0]; i++) {
        struct principal p;
        enum auth_result r = finish(&wt[i], w, &p);
        assert_true(r == AUTH_DENIED || r == AUTH_THROTTLED);
    }
}

/* A cached credential is answered at once, on the calling thread. */
static void test_cached_check_never_queues(void **state)
{
    struct world *w = *state;
    struct principal p;
    const char *h = basic_header(&w->ar, "alice", "alice-pw");
    assert_int_equal(check(w, h, &p), AUTH_OK);
    struct auth_check ck = {.header = h, .arena = &w->ar};
    assert_int_equal(auth_check(w->auth, &ck), AUTH_OK);
    assert_string_equal(ck.principal.user, "alice");
}

static void test_check_overlong_header(void **state)
{
    struct world *w = *state;
    struct principal p;
    char *h = arena_alloc(&w->ar, AUTH_HEADER_MAX + 64);
    memset(h, 'A', AUTH_HEADER_MAX + 10);
    memcpy(h, "Basic ", 6);
    assert_int_equal(check(w, h, &p), AUTH_DENIED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_cache_misses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_flag_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_on_different_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_on_epoch_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_after_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_on_different_key, setup, teardown),
        cmocka_unit_test(test_tag_is_siphash_128),
        cmocka_unit_test_setup_teardown(test_overlong_names_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collisions_never_confuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_ok_and_denied, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_check_password_change_takes_effect, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_check_user_deletion_takes_effect, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_check_throttles_after_failures, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_check_overlong_header, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_guesses_are_charged_first, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_same_header_at_once_shares_one_check, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_one_address_many_names, world_setup,
                                        world_teardown),
        cmocka_unit_test_setup_teardown(test_cached_check_never_queues, world_setup,
                                        world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
