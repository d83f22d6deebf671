/* commands.c: the small subcommands (db migrate, accounts, users) and what
 * every command shares: the one place the CLI opens the store, numbers,
 * names, passwords. Each command opens the store, does its work in one
 * transaction (so a refused command writes nothing), and reports. */
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "core/core.h"
#include "store/pg.h"
#include "store/store.h"
#include "util/id.h"
#include "util/utf8.h"

/* ---- helpers ---------------------------------------------------------------- */

const char *cli_db_path(const struct cli *c)
{
    return cli_get(c, "db");
}

/* Create the database's folder, as `make run` and a first start expect
 * (none for a PostgreSQL connection string: not a file). */
void cli_make_parent(const char *path)
{
    if (pg_is_conninfo(path))
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    }
    mkdir(dir, 0755);
}

struct core *cli_core_new(const struct cli *c, struct store *store)
{
    struct core *core = core_new(store);
    if (core && c->n_flavors > 0 && !core_set_flavors(core, c->flavors, c->n_flavors)) {
        core_free(core);
        core = NULL;
    }
    return core;
}

struct store *cli_open_store_at(const struct cli *c, bool create, int *status)
{
    char err[512];
    const char *path = cli_db_path(c);
    const char *sync = cli_get(c, "synchronous");
    struct stat st;
    if (create) {
        cli_make_parent(path);
    } else if (!pg_is_conninfo(path) && stat(path, &st) != 0) {
        /* a wrong --db must not leave an empty database behind */
        *status = cli_error("%s: the database %s does not exist (a wrong --db or [db] path? "
                            "`attachd db migrate` creates one)", c->command, path);
        return NULL;
    }
    struct store_options o = {.path = path,
                              .synchronous_full = !sync || strcmp(sync, "normal") != 0};
    struct store *s = store_open(&o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "attachd: %s\n", err);
        *status = CLI_FAILED;
    }
    return s;
}

bool cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < min || v > max || *s == '-')
        return false;
    *out = (unsigned)v;
    return true;
}

/* One line from stdin without its newline; false if none or empty. */
static bool read_password(char *buf, size_t size)
{
    if (!fgets(buf, (int)size, stdin))
        return false;
    size_t n = strlen(buf);
    if (n == size - 1 && buf[n - 1] != '\n')
        return false;   /* too long */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return n > 0 && utf8_valid(buf, n);
}

bool cli_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || !utf8_valid(s, n))
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Run fn in one transaction; a nonzero return from fn is an exit status. */
static int write_or_fail(struct store *s, store_write_fn fn, void *arg)
{
    int rc = store_write(s, fn, arg);
    if (rc < 0) {
        fprintf(stderr, "attachd: the database write failed (%s)\n",
                -rc == STORE_BUSY ? "database is locked" : "see the log above");
        return CLI_FAILED;
    }
    return rc;
}

/* Open the store, run fn in one transaction, close: the body of the small
 * commands. Returns the exit status. */
static int run_write(const struct cli *c, store_write_fn fn, void *arg)
{
    int status;
    struct store *s = cli_open_store_at(c, false, &status);
    if (!s)
        return status;
    status = write_or_fail(s, fn, arg);
    store_close(s);
    return status;
}

/* ---- db ----------------------------------------------------------------------- */

static const char *const db_only[] = {"db", NULL};

int cmd_db_migrate(int argc, char **argv)
{
    struct cli c = {.command = "db migrate", .names = db_only};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    char err[512];
    int from, to;
    const char *path = cli_db_path(&c);
    cli_make_parent(path);
    int rc = store_migrate(path, &from, &to, err, sizeof err);
    char shown[512];
    path = pg_describe(path, shown, sizeof shown);     /* never a password on the screen */
    if (rc < 0)
        fprintf(stderr, "attachd: %s\n", err);
    else if (from == to)
        printf("%s: schema version %d, up to date\n", path, to);
    else
        printf("%s: schema version %d -> %d\n", path, from, to);
    cli_done(&c);
    return rc < 0 ? CLI_FAILED : CLI_OK;
}

/* ---- accounts and users ------------------------------------------------------- */

struct account_job {
    struct account account;
};

static int do_account_add(struct store_conn *w, void *arg)
{
    struct account_job *j = arg;
    enum store_rc rc = store_account_add(w, &j->account);
    if (rc == STORE_EXISTS)
        return cli_error("account add: an account with id %s or name \"%s\" exists already",
                         j->account.id, j->account.name);
    return rc == STORE_OK ? 0 : 1;
}

int cmd_account_add(int argc, char **argv)
{
    static const char *const names[] = {"id", "db", NULL};
    struct cli c = {.command = "account add", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    char id[33], now[32];
    const char *given = cli_get(&c, "id"), *name = c.positional[0];
    int status = 2;
    if (given && !id_valid(given, strlen(given))) {
        cli_error("account add: --id must be 1-255 characters of A-Z a-z 0-9 . _ ~ : -");
        goto out;
    }
    if (!cli_name_ok(name)) {
        cli_error("account add: NAME must be 1-255 printable characters");
        goto out;
    }
    if (!given)
        id_hex32(id);
    store_now(now);
    struct account_job j = {{.id = given ? given : id, .name = name, .created_at = now}};
    status = run_write(&c, do_account_add, &j);
    if (status == 0)
        printf("%s\n", j.account.id);
out:
    cli_done(&c);
    return status;
}

/* account quota ACCOUNT [--instances N] ...: set the limits given (a number,
 * -1 for none, or "default"), then show them all with the account's usage. */
struct quota_job {
    const char *account_key;
    const char *account_id;
    struct arena *ar;
    struct quota set;           /* QUOTA_UNSET: "default"; unchanged where !given */
    bool given[5];
};

static int64_t *quota_field(struct quota *q, int i)
{
    int64_t *f[] = {&q->instances, &q->cores, &q->ram, &q->volumes, &q->gigabytes};
    return f[i];
}

static const char *const quota_names[] = {"instances", "cores", "ram", "volumes", "gigabytes"};

static int resolve_account(struct store_conn *w, struct arena *ar, const char *key,
                           const char **id);

static int do_account_quota(struct store_conn *w, void *arg)
{
    struct quota_job *j = arg;
    struct quota q;
    int rc = resolve_account(w, j->ar, j->account_key, &j->account_id);
    if (rc != 0)
        return rc;
    if (store_quota_get(w, j->account_id, &q) != STORE_OK)
        return 1;
    bool changed = false;
    for (int i = 0; i < 5; i++) {
        if (j->given[i]) {
            *quota_field(&q, i) = *quota_field(&j->set, i);
            changed = true;
        }
    }
    return !changed || store_quota_set(w, j->account_id, &q) == STORE_OK ? 0 : 1;
}

int cmd_account_quota(int argc, char **argv)
{
    static const char *const names[] = {"instances", "cores", "ram", "volumes", "gigabytes",
                                        "db", NULL};
    struct cli c = {.command = "account quota", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    struct arena ar;
    arena_init(&ar);
    struct quota_job j = {.account_key = c.positional[0], .ar = &ar};
    int status = 2;
    for (int i = 0; i < 5; i++) {
        const char *v = cli_get(&c, quota_names[i]);
        if (!v)
            continue;
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!strcmp(v, "default")) {
            n = QUOTA_UNSET;
        } else if (!*v || *end || errno || n < -1 || n > INT64_MAX / 2) {
            cli_error("account quota: --%s is a whole number, -1 for no limit, or \"default\"",
                      quota_names[i]);
            goto out;
        }
        *quota_field(&j.set, i) = n;
        j.given[i] = true;
    }
    struct store *s = cli_open_store_at(&c, false, &status);
    struct core *core = s ? cli_core_new(&c, s) : NULL;
    if (s)
        status = CLI_FAILED;
    if (core && (status = write_or_fail(s, do_account_quota, &j)) == 0) {
        struct core_ctx ctx = {.core = core, .arena = &ar, .scope = j.account_id,
                               .account = j.account_id, .home = j.account_id, .admin = true};
        struct limits l;
        struct core_error err;
        if (core_limits(&ctx, &l, &err)) {
            printf("%-10s %10s %10s\n", "resource", "limit", "in use");
            for (int i = 0; i < 5; i++)
                printf("%-10s %10lld %10lld\n", quota_names[i],
                       (long long)*quota_field(&l.quota, i), (long long)*quota_field(&l.used, i));
        } else {
            fprintf(stderr, "attachd: account quota: %s\n", err.message);
            status = 1;
        }
    }
    core_free(core);
    store_close(s);
out:
    arena_release(&ar);
    cli_done(&c);
    return status;
}

/* Resolve an account id or name on the writer, for the add commands. */
static int resolve_account(struct store_conn *w, struct arena *ar, const char *key,
                           const char **id)
{
    struct account a;
    enum store_rc rc = store_account_get(w, ar, key, &a);
    if (rc == STORE_NOTFOUND)
        return cli_error("unknown account \"%s\"", key);
    if (rc != STORE_OK)
        return 1;
    *id = a.id;
    return 0;
}

struct user_job {
    const char *account, *name;
    enum role role;
    char hash[crypto_pwhash_STRBYTES];
};

/* Read the new password from standard input, hash it into j->hash and run
 * fn: the tail of `user add` and `user passwd`. The password itself is wiped
 * as soon as it is hashed. */
static int with_new_password(const struct cli *c, struct user_job *j, store_write_fn fn)
{
    char password[1024];
    if (!read_password(password, sizeof password)) {
        sodium_memzero(password, sizeof password);
        return cli_error("%s: expected the password (one line, valid UTF-8) on standard input",
                         c->command);
    }
    bool hashed = sodium_init() >= 0 &&
                  auth_hash_password(password, j->hash, sizeof j->hash) == 0;
    sodium_memzero(password, sizeof password);
    return hashed ? run_write(c, fn, j) : 1;
}

static int do_user_add(struct store_conn *w, void *arg)
{
    struct user_job *j = arg;
    struct arena ar;
    arena_init(&ar);
    char now[32];
    store_now(now);
    struct user u = {.name = j->name, .role = j->role, .pwhash = j->hash, .created_at = now};
    int rc = resolve_account(w, &ar, j->account, &u.account_id);
    if (rc == 0) {
        enum store_rc src = store_user_add(w, &u);
        if (src == STORE_EXISTS)
            rc = cli_error("user add: user \"%s\" exists already", j->name);
        else if (src != STORE_OK)
            rc = 1;
    }
    arena_release(&ar);
    return rc;
}

int cmd_user_add(int argc, char **argv)
{
    static const char *const names[] = {"account", "role", "db", NULL};
    struct cli c = {.command = "user add", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    struct user_job j = {.account = cli_get(&c, "account"), .name = c.positional[0]};
    const char *role = cli_get(&c, "role");
    int status = 2;
    if (!j.account || !role) {
        cli_error("user add: --account and --role are required");
        goto out;
    }
    j.role = strcmp(role, "admin") ? ROLE_MEMBER : ROLE_ADMIN;
    if (!cli_name_ok(j.name) || strchr(j.name, ':')) {
        cli_error("user add: USERNAME must be 1-255 printable characters without ':'");
        goto out;
    }
    status = with_new_password(&c, &j, do_user_add);
out:
    cli_done(&c);
    return status;
}

/* Every change to a user bumps the auth epoch in the same transaction, so
 * that running daemons drop cached credentials at once. */
static int do_user_passwd(struct store_conn *w, void *arg)
{
    struct user_job *j = arg;
    enum store_rc rc = store_user_set_pwhash(w, j->name, j->hash);
    if (rc == STORE_NOTFOUND)
        return cli_error("user passwd: unknown user \"%s\"", j->name);
    return rc == STORE_OK && store_auth_epoch_bump(w) == STORE_OK ? 0 : 1;
}

int cmd_user_passwd(int argc, char **argv)
{
    struct cli c = {.command = "user passwd", .names = db_only};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    struct user_job j = {.name = c.positional[0]};
    int status = with_new_password(&c, &j, do_user_passwd);
    cli_done(&c);
    return status;
}

static int do_user_del(struct store_conn *w, void *arg)
{
    struct user_job *j = arg;
    enum store_rc rc = store_user_del(w, j->name);
    if (rc == STORE_NOTFOUND)
        return cli_error("user del: unknown user \"%s\"", j->name);
    return rc == STORE_OK && store_auth_epoch_bump(w) == STORE_OK ? 0 : 1;
}

int cmd_user_del(int argc, char **argv)
{
    struct cli c = {.command = "user del", .names = db_only};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    struct user_job j = {.name = c.positional[0]};
    int status = run_write(&c, do_user_del, &j);
    cli_done(&c);
    return status;
}
