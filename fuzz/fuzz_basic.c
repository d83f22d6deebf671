/* fuzz_basic.c: auth_parse_basic() and utf8_valid() (src/auth/basic.c), and
 * auth_check() / auth_verify() (src/auth/auth.c), which every request's
 * Authorization header goes through.
 *
 * The input, as raw bytes, is checked four ways:
 *  1. utf8_valid(data, size) must agree with an independent strict
 *     UTF-8 validator (RFC 3629: no overlongs, no surrogates, nothing above
 *     U+10FFFF, no truncated sequence) that also refuses NUL, as basic.c's
 *     contract says.
 *  2. auth_parse_basic(input) (the input up to its first NUL, as a header
 *     value) must agree with a reference parser written from RFC 7617 and
 *     basic.c's contract: scheme "Basic" (any case) then blanks, strict
 *     padded base64 up to trailing blanks, at most AUTH_HEADER_MAX characters,
 *     split at the first ':', user non-empty, both valid UTF-8 without NUL,
 *     each fitting its buffer. When it succeeds: user non-empty, user and
 *     password valid UTF-8 with no NUL inside, and user ":" password encodes
 *     back to the same bytes the header carried.
 *  3. The same with small output buffers whose sizes come from the input's
 *     first bytes (heap buffers of exactly that size, so that ASan sees any
 *     write past them).
 *  4. auth_check() with the input as the Authorization value (see
 *     check_auth()), against a store whose users have cheap argon2 hashes
 *     (so that a verify costs microseconds, not 20 ms): demo (acct-0001),
 *     ops (admin of ops-0001) and "caf\u00e9" (acct-0001). A header that
 *     does not parse is AUTH_DENIED, whatever the cache holds; one that
 *     parses is never AUTH_OK unless its credentials are right, and then with
 *     that user's principal; no password is left in the check's buffer
 *     unless it is to be verified. Credentials of a known user are verified
 *     (auth_verify(), on the verifier threads) from a fresh client address:
 *     right ones are AUTH_OK and from then on answered from the cache; wrong
 *     ones are AUTH_DENIED ten times, then AUTH_THROTTLED for that user from
 *     that address (and its /64, and its IPv4-mapped form) and only there.
 *     Other names are not verified (the dummy hash is the real cost); they
 *     all come from one address, whose checks in flight then stay at the
 *     limit (AUTH_ADDR_PENDING), so that each later one is refused without
 *     a charge and nothing grows.
 *
 * FUZZ_BASIC_ALLOW=highbit skips the comparison of 2 and 3 for headers whose
 * base64 part has a byte >= 0x80 (libsodium 1.0.18's sodium_base642bin()
 * decodes those as '/', see README.md), to look for anything else.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "store/store.h"
#include "util/arena.h"
#include "util/log.h"
#include "util/utf8.h"

#include "ref_utf8.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_basic: CHECK FAILED (%s): ", #cond);      \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* ---- references (ref_utf8() is in ref_utf8.h) ----------------------------- */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict RFC 4648 base64 with padding: length a multiple of 4, '=' only at
 * the end, unused bits zero. Returns the decoded length or -1. */
static long ref_b64(const char *s, size_t n, unsigned char *out, size_t cap)
{
    if (n == 0 || n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=') {
                if (i + 4 != n || k < 2)
                    return -1;
                pad++;
                v[k] = 0;
            } else {
                if (pad)
                    return -1;
                v[k] = b64val((unsigned char)s[i + k]);
                if (v[k] < 0)
                    return -1;
            }
        }
        unsigned triple = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
                          (unsigned)v[3];
        if (pad == 2 && (triple & 0xffff))
            return -1;
        if (pad == 1 && (triple & 0xff))
            return -1;
        if (o + 3 - (size_t)pad > cap)
            return -1;
        out[o++] = (unsigned char)(triple >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(triple >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)triple;
    }
    return (long)o;
}

struct ref_result {
    bool ok;
    bool b64_ok;                /* the base64 part decoded (for diagnosis) */
    size_t ulen, plen;
    unsigned char raw[AUTH_HEADER_MAX];
};

static void ref_parse(const char *h, size_t user_size, size_t pass_size, struct ref_result *r)
{
    memset(r, 0, sizeof *r);
    if (strncasecmp(h, "Basic", 5) != 0 || (h[5] != ' ' && h[5] != '\t'))
        return;
    const char *b = h + 5;
    while (*b == ' ' || *b == '\t')
        b++;
    size_t n = strlen(b);
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t'))
        n--;
    if (n == 0 || n > AUTH_HEADER_MAX)
        return;
    long len = ref_b64(b, n, r->raw, sizeof r->raw);
    if (len < 0)
        return;
    r->b64_ok = true;
    unsigned char *colon = memchr(r->raw, ':', (size_t)len);
    if (!colon)
        return;
    r->ulen = (size_t)(colon - r->raw);
    r->plen = (size_t)len - r->ulen - 1;
    r->ok = r->ulen > 0 && r->ulen < user_size && r->plen < pass_size &&
            ref_utf8(r->raw, r->ulen) && ref_utf8(colon + 1, r->plen);
}

/* ---- the harness ------------------------------------------------------------ */

static bool allow_highbit;

/* ---- 4. auth_check ------------------------------------------------------------- */

static const struct known {
    const char *user, *password, *account;
    bool admin;
} known_users[] = {
    {"demo", "secret", "acct-0001", false},
    {"ops", "0ps-secret", "ops-0001", true},
    {"caf\xc3\xa9", "p\xc3\xa4ss:word", "acct-0001", false},
};

static struct {
    char dir[96], path[160];
    struct store *store;
    struct auth *auth;
    uint32_t next_address;      /* each known user's check gets a fresh one */
} A;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_basic: setup failed: %s\n", what);
    abort();
}

static int job_account(struct store_conn *w, void *arg)
{
    return (int)store_account_add(w, arg);
}

static int job_user(struct store_conn *w, void *arg)
{
    return (int)store_user_add(w, arg);
}

static void auth_cleanup(void)
{
    auth_free(A.auth);
    if (A.store)
        store_close(A.store);
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[200];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", A.path, suffix[i]);
        unlink(p);
    }
    rmdir(A.dir);
}

/* A crash ends the process without atexit(): remove the stores of
 * fuzz_basic processes that are gone ("attachd-fuzzbasic-<pid>-XXXXXX"). */
static void sweep_stale(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        char rest[32];
        if (sscanf(e->d_name, "attachd-fuzzbasic-%ld-%31s", &pid, rest) != 2 || pid <= 0 ||
            strlen(rest) != 6 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        static const char *const files[] = {"attachd.db", "attachd.db-wal", "attachd.db-shm",
                                            "attachd.db-journal"};
        char p[512];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(p, sizeof p, "%s/%s/%s", base, e->d_name, files[i]);
            unlink(p);
        }
        snprintf(p, sizeof p, "%s/%s", base, e->d_name);
        rmdir(p);
    }
    closedir(d);
}

static void auth_setup(void)
{
    if (sodium_init() < 0)
        die("sodium_init");
    log_set_level(LOG_WARN);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    sweep_stale(base);
    snprintf(A.dir, sizeof A.dir, "%s/attachd-fuzzbasic-%ld-XXXXXX", base, (long)getpid());
    if (!mkdtemp(A.dir))
        die("mkdtemp");
    snprintf(A.path, sizeof A.path, "%s/attachd.db", A.dir);
    char err[256] = "", now[32];
    struct store_options opts = {.path = A.path, .synchronous_full = false};
    if (!(A.store = store_open(&opts, err, sizeof err)))
        die(err);
    atexit(auth_cleanup);
    store_now(now);
    static const char *const accounts[] = {"acct-0001", "ops-0001"};
    for (size_t i = 0; i < 2; i++) {
        struct account acct = {.id = accounts[i], .name = accounts[i], .created_at = now};
        if (store_write(A.store, job_account, &acct) != 0)
            die("account");
    }
    for (size_t i = 0; i < sizeof known_users / sizeof known_users[0]; i++) {
        /* the cheapest argon2id libsodium allows: a verify in microseconds */
        char hash[crypto_pwhash_STRBYTES];
        const struct known *k = &known_users[i];
        if (crypto_pwhash_str(hash, k->password, strlen(k->password),
                              crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN) != 0)
            die("hash");
        struct user u = {.name = k->user, .account_id = k->account, .pwhash = hash,
                         .created_at = now, .role = k->admin ? ROLE_ADMIN : ROLE_MEMBER};
        if (store_write(A.store, job_user, &u) != 0)
            die("user");
    }
    if (!(A.auth = auth_new(A.store)))
        die("auth_new");
}

/* The client addresses: a fresh one for each known user's check, and its
 * sibling, which the throttles must take for the same client: the same
 * /64 for IPv6, the IPv4-mapped form of an IPv4 address and back. */
enum family { V4, V6, MAPPED };

static void client_address(struct sockaddr_storage *ss, enum family f, uint32_t n, bool sibling)
{
    memset(ss, 0, sizeof *ss);
    uint32_t v4 = htonl(0x0a000000u | (n & 0xffffffu));      /* 10.x.y.z */
    if (f == V6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        unsigned char *b = s6->sin6_addr.s6_addr;
        b[0] = 0x20, b[1] = 0x01, b[2] = 0x0d, b[3] = 0xb8;  /* 2001:db8:NNNN:NNNN::1 */
        memcpy(b + 4, &n, 4);
        b[15] = sibling ? 2 : 1;
        b[9] = sibling ? 0x77 : 0;
    } else if ((f == MAPPED) != sibling) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(s6->sin6_addr.s6_addr + 12, &v4, 4);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = v4;
    }
}

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void on_done(struct auth_check *ck)
{
    struct waiter *w = ck->cls;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static bool zeroed(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* One check of header h from sa; verified on the verifier threads if it
 * asks for that and `verify` is set. */
static enum auth_result run_check(struct arena *ar, const char *h, const struct sockaddr_storage *sa,
                                  bool verify, struct auth_check *ck)
{
    struct waiter w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    memset(ck, 0, sizeof *ck);
    ck->header = h;
    ck->client = (const struct sockaddr *)sa;
    ck->arena = ar;
    ck->done = on_done;
    ck->cls = &w;
    enum auth_result r = auth_check(A.auth, ck);
    CHECK(r == ck->result, "auth_check returned %d, set %d", r, ck->result);
    CHECK(r == AUTH_VERIFY || zeroed(ck->pass, sizeof ck->pass),
          "a password is left in the check (result %d)", r);
    if (r == AUTH_VERIFY && verify) {
        auth_verify(A.auth, ck);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 60;
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            CHECK(pthread_cond_timedwait(&w.cond, &w.lock, &until) == 0 || w.done,
                  "auth_verify: done() not called within 60 s");
        pthread_mutex_unlock(&w.lock);
        r = ck->result;
        CHECK(r == AUTH_OK || r == AUTH_DENIED, "verified: %d", r);
        CHECK(zeroed(ck->pass, sizeof ck->pass), "a password is left after the verify");
    }
    sodium_memzero(ck->pass, sizeof ck->pass);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return r;
}

static void check_principal(const struct auth_check *ck, const struct known *k)
{
    CHECK(ck->principal.user && !strcmp(ck->principal.user, k->user) && ck->principal.account &&
              !strcmp(ck->principal.account, k->account) && ck->principal.admin == k->admin,
          "AUTH_OK with the wrong principal (%s of %s, admin %d; want %s of %s)",
          ck->principal.user ? ck->principal.user : "(null)",
          ck->principal.account ? ck->principal.account : "(null)", ck->principal.admin,
          k->user, k->account);
}

static char *canonical_header(struct arena *ar, const struct known *k)
{
    char *raw = arena_printf(ar, "%s:%s", k->user, k->password);
    size_t n = strlen(raw), len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = arena_alloc(ar, len);
    sodium_bin2base64(b64, len, (const unsigned char *)raw, n, sodium_base64_VARIANT_ORIGINAL);
    return arena_printf(ar, "Basic %s", b64);
}

/* 4: auth_check() on the header h; `sel` picks the address family. */
static void check_auth(const char *h, uint8_t sel)
{
    struct ref_result r;
    ref_parse(h, AUTH_NAME_MAX + 1, AUTH_HEADER_MAX, &r);
    bool parses = r.ok && strlen(h) <= AUTH_HEADER_MAX;
    const struct known *k = NULL;
    bool right = false;
    for (size_t i = 0; parses && i < sizeof known_users / sizeof known_users[0]; i++) {
        const struct known *u = &known_users[i];
        if (r.ulen == strlen(u->user) && !memcmp(r.raw, u->user, r.ulen)) {
            k = u;
            right = r.plen == strlen(u->password) &&
                    !memcmp(r.raw + r.ulen + 1, u->password, r.plen);
        }
    }
    struct arena ar;
    arena_init(&ar);
    struct auth_check ck;
    struct sockaddr_storage sa, sib;
    enum family fam = (enum family)(sel % 3);
    uint32_t n = ++A.next_address;
    if (k) {
        client_address(&sa, fam, n, false);
    } else {
        /* every other name from one address: see the top of the file */
        client_address(&sa, V4, 0xc63364, false);
    }
    enum auth_result res = run_check(&ar, h, &sa, k != NULL, &ck);

    if (!parses) {
        CHECK(res == AUTH_DENIED, "a header that does not parse: result %d", res);
    } else if (!k) {
        CHECK(res == AUTH_VERIFY || (res == AUTH_THROTTLED && ck.throttle == THROTTLE_CONCURRENT &&
                                     ck.retry_after == 1),
              "an unknown user's header: result %d (throttle %d)", res, ck.throttle);
        CHECK(res != AUTH_VERIFY || (strlen(ck.user) == r.ulen && !memcmp(ck.user, r.raw, r.ulen)),
              "the check's user is not the header's");
    } else if (right) {
        CHECK(res == AUTH_OK, "right credentials of %s: result %d", k->user, res);
        check_principal(&ck, k);
        /* from now on from the cache, from any address */
        client_address(&sa, fam, ++A.next_address, false);
        res = run_check(&ar, h, &sa, false, &ck);
        CHECK(res == AUTH_OK, "verified credentials not answered from the cache: %d", res);
        check_principal(&ck, k);
    } else {
        CHECK(res == AUTH_DENIED, "wrong password of %s: result %d", k->user, res);
        /* AUTH_MAX_FAILURES failures from one address, then that user is
         * throttled from there */
        for (int i = 1; i < AUTH_MAX_FAILURES; i++) {
            res = run_check(&ar, h, &sa, true, &ck);
            CHECK(res == AUTH_DENIED, "failure %d of %s: result %d", i + 1, k->user, res);
        }
        res = run_check(&ar, h, &sa, true, &ck);
        CHECK(res == AUTH_THROTTLED && ck.throttle == THROTTLE_USER && ck.retry_after >= 1 &&
                  ck.retry_after <= AUTH_WINDOW,
              "after %d failures: result %d, throttle %d, retry after %d", AUTH_MAX_FAILURES, res,
              ck.throttle, ck.retry_after);
        client_address(&sib, fam, n, true);
        res = run_check(&ar, h, &sib, true, &ck);
        CHECK(res == AUTH_THROTTLED && ck.throttle == THROTTLE_USER,
              "the same client by another address (family %d): result %d", fam, res);
        /* another user from the same address is not locked out */
        const struct known *other = &known_users[(size_t)(k - known_users + 1) %
                                                 (sizeof known_users / sizeof known_users[0])];
        res = run_check(&ar, canonical_header(&ar, other), &sa, true, &ck);
        CHECK(res == AUTH_OK, "%s from an address that throttles %s: result %d", other->user,
              k->user, res);
        check_principal(&ck, other);
        /* nor is this user from elsewhere */
        client_address(&sa, fam, ++A.next_address, false);
        res = run_check(&ar, h, &sa, true, &ck);
        CHECK(res == AUTH_DENIED, "wrong password of %s from a new address: result %d",
              k->user, res);
    }
    arena_release(&ar);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *a = getenv("FUZZ_BASIC_ALLOW");
    allow_highbit = a && strstr(a, "highbit");
    auth_setup();
    return 0;
}

static bool has_highbit(const char *h)
{
    for (; *h; h++)
        if ((unsigned char)*h >= 0x80)
            return true;
    return false;
}

static void one(const char *h, size_t user_size, size_t pass_size)
{
    char *user = malloc(user_size), *pass = malloc(pass_size);
    memset(user, 0x5a, user_size);
    memset(pass, 0x5a, pass_size);
    bool ok = auth_parse_basic(h, user, user_size, pass, pass_size);
    struct ref_result r;
    ref_parse(h, user_size, pass_size, &r);
    if (ok != r.ok && allow_highbit && has_highbit(h)) {
        free(user);
        free(pass);
        return;
    }
    if (ok != r.ok) {
        fprintf(stderr, "fuzz_basic: header \"");
        for (const char *p = h; *p; p++)
            fprintf(stderr, (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f ? "\\x%02x" : "%c",
                    (unsigned char)*p);
        fprintf(stderr, "\" user_size %zu pass_size %zu: parse %d, reference %d (base64 %d)\n",
                user_size, pass_size, ok, r.ok, r.b64_ok);
    }
    CHECK(ok == r.ok, "auth_parse_basic and the reference disagree");
    if (ok) {
        size_t ul = strnlen(user, user_size), pl = strnlen(pass, pass_size);
        CHECK(ul < user_size && pl < pass_size, "result not NUL-terminated in its buffer");
        CHECK(ul > 0, "empty user accepted");
        CHECK(utf8_valid(user, ul) && ref_utf8((unsigned char *)user, ul),
              "user is not valid UTF-8");
        CHECK(utf8_valid(pass, pl) && ref_utf8((unsigned char *)pass, pl),
              "password is not valid UTF-8");
        CHECK(!strchr(user, ':'), "user contains ':'");
        CHECK(ul == r.ulen && pl == r.plen && !memcmp(user, r.raw, ul) &&
                  !memcmp(pass, r.raw + ul + 1, pl),
              "user/password differ from the header's bytes (NUL inside?)");
    }
    free(user);
    free(pass);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. the UTF-8 validator on the raw bytes */
    bool a = utf8_valid((const char *)data, size), b = ref_utf8(data, size);
    CHECK(a == b, "utf8_valid says %d, the reference %d (size %zu)", a, b, size);

    /* 2. the header parser with the daemon's buffer sizes */
    char *h = malloc(size + 1);
    memcpy(h, data, size);
    h[size] = '\0';
    one(h, AUTH_NAME_MAX + 1, AUTH_HEADER_MAX);

    /* 3. small buffers, sized by the first bytes (the rest is the header) */
    if (size >= 2) {
        size_t us = (size_t)(data[0] % 16) + 1, ps = (size_t)(data[1] % 16) + 1;
        one(h + 2, us, ps);
    }

    /* 4. the header as a request's Authorization */
    check_auth(h, size ? data[size - 1] : 0);
    free(h);
    return 0;
}
