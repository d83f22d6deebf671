/* test_cache.c: the verified-credential cache (auth/cache.c), and the way
 * auth_check() uses it: a hit only for the same header, the same key, the
 * same auth epoch and before the entry expires; a password change or a user
 * deletion (which bump the epoch) takes effect at once. */
#include "helpers.h"

static const unsigned char key1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const unsigned char key2[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11};

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

static enum auth_result check(struct world *w, const char *header, struct principal *p)
{
    int retry = -1;
    memset(p, 0, sizeof *p);
    return auth_check(w->auth, header, &w->ar, p, &retry);
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
    int retry = -1;
    const char *bad = basic_header(&w->ar, "alice", "nope");
    for (int i = 0; i < AUTH_MAX_FAILURES; i++)
        assert_int_equal(check(w, bad, &p), AUTH_DENIED);
    /* now even the right password is refused until the window passes */
    assert_int_equal(auth_check(w->auth, basic_header(&w->ar, "alice", "alice-pw"), &w->ar, &p,
                                &retry), AUTH_THROTTLED);
    assert_in_range(retry, 1, AUTH_WINDOW);
    /* another name is not affected */
    assert_int_equal(check(w, basic_header(&w->ar, "root", "root-pw"), &p), AUTH_OK);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
