/* show.c: the inspecting commands (account|user|server|volume list and
 * show) and `account del`, with their output as a table for people or JSON
 * for scripts (--format table|json).
 *
 * They read through the core, as an admin, so that what they show is what
 * the API shows (a server's status, a volume's attachment); only what the
 * API has no use for (every account, every user) comes from the store's
 * listings. A list is one table; a show is one record, printed as
 * "field  value" lines, or one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "store/store.h"

/* ---- output ----------------------------------------------------------------------- */

#define MAX_COLUMNS 24

struct cli_table {
    bool json, record;          /* record: one row shown as field/value lines */
    int n_cols, n_rows, cap;
    const char *cols[MAX_COLUMNS];
    bool numeric[MAX_COLUMNS];  /* a column whose name ends in '#': a JSON number */
    char name[MAX_COLUMNS][40];
    char **cells;               /* n_rows x n_cols, malloc'd copies (NULL: none) */
};

struct cli_table *cli_table_new(const struct cli *c, const char *const *columns)
{
    struct cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->json = !strcmp(cli_get(c, "format"), "json");
    for (; *columns && t->n_cols < MAX_COLUMNS; columns++, t->n_cols++) {
        size_t n = strlen(*columns);
        t->numeric[t->n_cols] = n && (*columns)[n - 1] == '#';
        snprintf(t->name[t->n_cols], sizeof t->name[0], "%.*s",
                 (int)(n - t->numeric[t->n_cols]), *columns);
        t->cols[t->n_cols] = t->name[t->n_cols];
    }
    return t;
}

void cli_print_record(const struct cli *c, const char *const *columns, const char *const *cells)
{
    struct cli_table *t = cli_table_new(c, columns);
    if (t)
        t->record = true;
    cli_table_row(t, cells);
    cli_table_print(t);
}

bool cli_table_format_ok(const struct cli *c)
{
    const char *format = cli_get(c, "format");
    if (!strcmp(format, "table") || !strcmp(format, "json"))
        return true;
    cli_error("%s: --format is table or json", c->command);
    return false;
}

void cli_table_row(struct cli_table *t, const char *const *cells)
{
    if (!t)
        return;
    if (t->n_rows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **bigger = realloc(t->cells, sizeof *bigger * (size_t)(cap * t->n_cols));
        if (!bigger)
            return;
        t->cells = bigger;
        t->cap = cap;
    }
    for (int i = 0; i < t->n_cols; i++)
        t->cells[t->n_rows * t->n_cols + i] = cells[i] ? strdup(cells[i]) : NULL;
    t->n_rows++;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Characters of UTF-8 text (bytes that do not continue a character). */
static int chars(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* A cell for a terminal, padded to width characters: control characters
 * (which would move the cursor) are shown as '?'. */
static void plain(const char *s, int width)
{
    for (const char *p = s; *p; p++)
        putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
    for (int n = chars(s); n < width; n++)
        putchar(' ');
}

static void print_json_row(const struct cli_table *t, int r, const char *indent)
{
    printf("%s{", indent);
    for (int i = 0; i < t->n_cols; i++) {
        const char *v = t->cells[r * t->n_cols + i];
        printf("%s\n%s  ", i ? "," : "", indent);
        json_string(t->cols[i]);
        fputs(": ", stdout);
        if (!v)
            fputs("null", stdout);
        else if (t->numeric[i])
            fputs(v, stdout);
        else
            json_string(v);
    }
    printf("\n%s}", indent);
}

void cli_table_print(struct cli_table *t)
{
    if (!t)
        return;
    if (t->json && t->record) {
        if (t->n_rows)
            print_json_row(t, 0, "");
        puts("");
    } else if (t->json) {
        puts("[");
        for (int r = 0; r < t->n_rows; r++) {
            print_json_row(t, r, "  ");
            puts(r + 1 < t->n_rows ? "," : "");
        }
        puts("]");
    } else if (t->record) {
        int w = 0;
        for (int i = 0; i < t->n_cols; i++)
            w = (int)strlen(t->cols[i]) > w ? (int)strlen(t->cols[i]) : w;
        for (int i = 0; t->n_rows && i < t->n_cols; i++) {
            const char *v = t->cells[i];
            plain(t->cols[i], w + 2);
            plain(v ? v : "-", 0);
            putchar('\n');
        }
    } else {
        int w[MAX_COLUMNS];
        for (int i = 0; i < t->n_cols; i++) {
            w[i] = (int)strlen(t->cols[i]);
            for (int r = 0; r < t->n_rows; r++) {
                const char *v = t->cells[r * t->n_cols + i];
                int n = v ? chars(v) : 1;
                w[i] = n > w[i] ? n : w[i];
            }
        }
        for (int i = 0; i < t->n_cols; i++)
            plain(t->cols[i], i + 1 < t->n_cols ? w[i] + 2 : 0);
        putchar('\n');
        for (int r = 0; r < t->n_rows; r++) {
            for (int i = 0; i < t->n_cols; i++) {
                const char *v = t->cells[r * t->n_cols + i];
                plain(v ? v : "-", i + 1 < t->n_cols ? w[i] + 2 : 0);
            }
            putchar('\n');
        }
    }
    for (int i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

/* ---- shared ------------------------------------------------------------------------------ */

/* An inspecting command's store, core and admin context. */
struct session {
    struct store *store;
    struct core *core;
    struct arena ar;
    struct core_ctx ctx;
};

static int session_open(struct cli *c, struct session *s)
{
    int status = CLI_OK;
    *s = (struct session){0};
    arena_init(&s->ar);
    if (!cli_table_format_ok(c))
        return CLI_USAGE;
    s->store = cli_open_store_at(c, false, &status);
    if (!s->store)
        return status;
    if (!(s->core = cli_core_new(c, s->store)))
        return CLI_FAILED;
    s->ctx = (struct core_ctx){.core = s->core, .arena = &s->ar, .user_id = "attachd-cli",
                               .admin = true, .version = 1};
    return CLI_OK;
}

static void session_close(struct session *s)
{
    core_free(s->core);
    store_close(s->store);
    arena_release(&s->ar);
}

const char *cli_num(struct arena *ar, long long v)
{
    return arena_printf(ar, "%lld", v);
}

/* An account by id or name: 0, or the exit status after saying why not. */
static int find_account(struct session *s, const char *key, struct account *out)
{
    struct store_conn *r = store_reader(s->store);
    enum store_rc rc = r ? store_account_get(r, &s->ar, key, out) : STORE_ERROR;
    if (rc == STORE_NOTFOUND)
        return cli_error("unknown account \"%s\"", key);
    if (rc != STORE_OK) {
        fprintf(stderr, "attachd: the database could not be read (see above)\n");
        return CLI_FAILED;
    }
    return CLI_OK;
}

static int core_failed(const struct core_error *err, const char *what)
{
    if (err->code == CORE_NOT_FOUND)
        return cli_error("%s", what);
    fprintf(stderr, "attachd: %s\n", err->message);
    return CLI_FAILED;
}

static const char *const list_names[] = {"db", "format", "account", NULL};
static const char *const show_names[] = {"db", "format", NULL};

/* The frame of every command here: its options (`positionals` of them, 0 or
 * 1), a session, body(c, s) on both, and the exit status. */
static int run_session(int argc, char **argv, const char *command, const char *const *names,
                       int positionals, int (*body)(struct cli *c, struct session *s))
{
    struct cli c = {.command = command, .names = names};
    if (!cli_parse(&c, argc, argv, positionals, positionals))
        return CLI_USAGE;
    struct session s;
    int status = session_open(&c, &s);
    if (status == CLI_OK)
        status = body(&c, &s);
    session_close(&s);
    cli_done(&c);
    return status;
}

/* ---- accounts ------------------------------------------------------------------------- */

static const char *const account_cols[] = {"id", "name", "created_at", "users#", "servers#",
                                           "volumes#", NULL};

static void account_row(struct session *s, struct cli_table *t, const struct account *a)
{
    int64_t users = 0, servers = 0, volumes = 0;
    store_account_counts(store_reader(s->store), a->id, &users, &servers, &volumes);
    const char *cells[] = {a->id, a->name, a->created_at, cli_num(&s->ar, users),
                           cli_num(&s->ar, servers), cli_num(&s->ar, volumes)};
    cli_table_row(t, cells);
}

static int account_list(struct cli *c, struct session *s)
{
    struct account *all;
    int n;
    if (store_account_list(store_reader(s->store), &s->ar, &all, &n) != STORE_OK)
        return CLI_FAILED;
    struct cli_table *t = cli_table_new(c, account_cols);
    for (int i = 0; i < n; i++)
        account_row(s, t, &all[i]);
    cli_table_print(t);
    return CLI_OK;
}

int cmd_account_list(int argc, char **argv)
{
    return run_session(argc, argv, "account list", show_names, 0, account_list);
}

static int account_show(struct cli *c, struct session *s)
{
    struct account a;
    int status = find_account(s, c->positional[0], &a);
    if (status != CLI_OK)
        return status;
    struct limits l;
    struct core_error err;
    s->ctx.account = s->ctx.scope = s->ctx.home = a.id;
    if (!core_limits(&s->ctx, &l, &err))
        return core_failed(&err, "account show: no limits");
    static const char *const cols[] = {
        "id", "name", "created_at", "users#", "servers#", "volumes#", "quota_instances#",
        "quota_cores#", "quota_ram_mb#", "quota_volumes#", "quota_gigabytes#",
        "used_instances#", "used_cores#", "used_ram_mb#", "used_gigabytes#", NULL};
    int64_t users = 0, servers = 0, volumes = 0;
    store_account_counts(store_reader(s->store), a.id, &users, &servers, &volumes);
    struct arena *ar = &s->ar;
    const char *cells[] = {
        a.id, a.name, a.created_at, cli_num(ar, users), cli_num(ar, servers),
        cli_num(ar, volumes), cli_num(ar, l.quota.instances), cli_num(ar, l.quota.cores),
        cli_num(ar, l.quota.ram), cli_num(ar, l.quota.volumes), cli_num(ar, l.quota.gigabytes),
        cli_num(ar, l.used.instances), cli_num(ar, l.used.cores), cli_num(ar, l.used.ram),
        cli_num(ar, l.used.gigabytes)};
    cli_print_record(c, cols, cells);
    return CLI_OK;
}

int cmd_account_show(int argc, char **argv)
{
    return run_session(argc, argv, "account show", show_names, 1, account_show);
}

struct account_del {
    const char *id;
    int64_t users, servers, volumes;
};

static int do_account_del(struct store_conn *w, void *arg)
{
    struct account_del *j = arg;
    enum store_rc rc = store_account_del(w, j->id);
    if (rc == STORE_EXISTS) {
        store_account_counts(w, j->id, &j->users, &j->servers, &j->volumes);
        return cli_error("account del: account %s still has %lld users, %lld servers and "
                         "%lld volumes; delete them first", j->id, (long long)j->users,
                         (long long)j->servers, (long long)j->volumes);
    }
    if (rc == STORE_NOTFOUND)
        return cli_error("unknown account \"%s\"", j->id);
    return rc == STORE_OK ? 0 : CLI_FAILED;
}

static int account_del(struct cli *c, struct session *s)
{
    struct account a;
    int status = find_account(s, c->positional[0], &a);
    if (status != CLI_OK)
        return status;
    struct account_del j = {.id = a.id};
    int rc = store_write(s->store, do_account_del, &j);
    if (rc < 0) {
        fprintf(stderr, "attachd: the database write failed\n");
        return CLI_FAILED;
    }
    if (rc == CLI_OK)
        printf("deleted account %s (%s)\n", a.id, a.name);
    return rc;
}

int cmd_account_del(int argc, char **argv)
{
    static const char *const names[] = {"db", NULL};
    return run_session(argc, argv, "account del", names, 1, account_del);
}

/* ---- users -------------------------------------------------------------------------------- */

static const char *const user_cols[] = {"name", "account", "role", "created_at", NULL};

static int user_list(struct cli *c, struct session *s)
{
    struct account a;
    if (cli_given(c, "account")) {
        int status = find_account(s, cli_get(c, "account"), &a);
        if (status != CLI_OK)
            return status;
    }
    struct user *users;
    int n;
    if (store_user_list(store_reader(s->store), &s->ar, cli_given(c, "account") ? a.id : NULL,
                        &users, &n) != STORE_OK)
        return CLI_FAILED;
    struct cli_table *t = cli_table_new(c, user_cols);
    for (int i = 0; i < n; i++) {
        const char *cells[] = {users[i].name, users[i].account_id,
                               users[i].role == ROLE_ADMIN ? "admin" : "member",
                               users[i].created_at};
        cli_table_row(t, cells);
    }
    cli_table_print(t);
    return CLI_OK;
}

int cmd_user_list(int argc, char **argv)
{
    return run_session(argc, argv, "user list", list_names, 0, user_list);
}

static int user_show(struct cli *c, struct session *s)
{
    struct user u;
    enum store_rc rc = store_user_get(store_reader(s->store), &s->ar, c->positional[0], &u);
    if (rc == STORE_NOTFOUND)
        return cli_error("user show: unknown user \"%s\"", c->positional[0]);
    if (rc != STORE_OK)
        return CLI_FAILED;
    const char *cells[] = {u.name, u.account_id, u.role == ROLE_ADMIN ? "admin" : "member",
                           u.created_at};
    cli_print_record(c, user_cols, cells);
    return CLI_OK;
}

int cmd_user_show(int argc, char **argv)
{
    return run_session(argc, argv, "user show", show_names, 1, user_show);
}

/* ---- servers ------------------------------------------------------------------------------- */

/* "volume:device,..." of a server's attachments (with the ones in flight
 * marked), or NULL. */
static const char *attachments_text(struct session *s, const char *server_id, int *count)
{
    struct attachment *at;
    int n = 0;
    struct core_error err;
    *count = 0;
    if (!core_server_attachments(&s->ctx, server_id, &at, &n, &err) || n == 0)
        return NULL;
    char *text = "";
    for (int i = 0; i < n; i++)
        text = arena_printf(&s->ar, "%s%s%s:%s%s", text, i ? "," : "", at[i].volume_id,
                            at[i].device ? at[i].device : "-",
                            at[i].status && strcmp(at[i].status, "attached") != 0
                                ? arena_printf(&s->ar, " (%s)", at[i].status) : "");
    *count = n;
    return text;
}

static const char *const server_list_cols[] = {"id", "account", "name", "status", "domain",
                                               "attachments#", "created_at", NULL};

static int list_servers(struct session *s, struct cli_table *t, const char *account)
{
    struct server *srv;
    int n;
    struct core_error err;
    s->ctx.account = account;
    if (!core_server_list(&s->ctx, NULL, NULL, -1, &srv, &n, &err))
        return core_failed(&err, "server list");
    for (int i = 0; i < n; i++) {
        int count;
        attachments_text(s, srv[i].id, &count);
        const char *cells[] = {srv[i].id, srv[i].account_id, srv[i].name,
                               core_server_status(srv[i].vm_state, srv[i].task_state), srv[i].domain,
                               cli_num(&s->ar, count), srv[i].created_at};
        cli_table_row(t, cells);
    }
    return CLI_OK;
}

/* A list over one account (--account) or all of them: cols its columns,
 * each() its rows of one account. */
static int list_each(struct cli *c, struct session *s, const char *const *cols,
                     int (*each)(struct session *s, struct cli_table *t, const char *account))
{
    struct account a, *all = &a;
    int n = 1, status = CLI_OK;
    if (cli_given(c, "account"))
        status = find_account(s, cli_get(c, "account"), &a);
    else if (store_account_list(store_reader(s->store), &s->ar, &all, &n) != STORE_OK)
        status = CLI_FAILED;
    if (status != CLI_OK)
        return status;
    struct cli_table *t = cli_table_new(c, cols);
    for (int i = 0; i < n && status == CLI_OK; i++)
        status = each(s, t, all[i].id);
    if (status == CLI_OK)
        cli_table_print(t);
    else if (t)
        t->n_rows = 0, cli_table_print(t);
    return status;
}

static int server_list(struct cli *c, struct session *s)
{
    return list_each(c, s, server_list_cols, list_servers);
}

int cmd_server_list(int argc, char **argv)
{
    return run_session(argc, argv, "server list", list_names, 0, server_list);
}

static int server_show(struct cli *c, struct session *s)
{
    struct server v;
    struct core_error err;
    if (!core_server_get(&s->ctx, c->positional[0], &v, &err))
        return core_failed(&err, arena_printf(&s->ar, "server show: unknown server \"%s\"",
                                              c->positional[0]));
    static const char *const cols[] = {
        "id", "account", "name", "status", "vm_state", "task_state", "power_state#",
        "locked", "flavor", "image", "domain", "fault", "attachments", "created_at",
        "updated_at", NULL};
    int count;
    const char *cells[] = {v.id, v.account_id, v.name, core_server_status(v.vm_state, v.task_state),
                           v.vm_state, v.task_state, cli_num(&s->ar, v.power_state),
                           v.locked ? "true" : "false", v.flavor_ref, v.image_ref, v.domain,
                           v.fault, attachments_text(s, v.id, &count), v.created_at,
                           v.updated_at};
    cli_print_record(c, cols, cells);
    return CLI_OK;
}

int cmd_server_show(int argc, char **argv)
{
    return run_session(argc, argv, "server show", show_names, 1, server_show);
}

/* ---- volumes ---------------------------------------------------------------------------------- */

static const char *const volume_list_cols[] = {"id", "account", "name", "size_gb#", "status",
                                               "attached_to", "path", "created_at", NULL};

static const char *attached_to(struct session *s, const char *volume_id, const char **device)
{
    struct attachment at;
    bool attached = false;
    struct core_error err;
    *device = NULL;
    if (!core_volume_attachment(&s->ctx, volume_id, &at, &attached, &err) || !attached)
        return NULL;
    *device = at.device;
    return at.server_id;
}

static int list_volumes(struct session *s, struct cli_table *t, const char *account)
{
    struct volume *v;
    int n;
    struct core_error err;
    s->ctx.account = account;
    if (!core_volume_list(&s->ctx, NULL, 0, -1, &v, &n, &err))
        return core_failed(&err, "volume list");
    for (int i = 0; i < n; i++) {
        const char *device;
        const char *cells[] = {v[i].id, v[i].account_id, v[i].name, cli_num(&s->ar, v[i].size),
                               v[i].status, attached_to(s, v[i].id, &device), v[i].path,
                               v[i].created_at};
        cli_table_row(t, cells);
    }
    return CLI_OK;
}

static int volume_list(struct cli *c, struct session *s)
{
    return list_each(c, s, volume_list_cols, list_volumes);
}

int cmd_volume_list(int argc, char **argv)
{
    return run_session(argc, argv, "volume list", list_names, 0, volume_list);
}

static int volume_show(struct cli *c, struct session *s)
{
    struct volume v;
    struct core_error err;
    if (!core_volume_get(&s->ctx, c->positional[0], &v, &err))
        return core_failed(&err, arena_printf(&s->ar, "volume show: unknown volume \"%s\"",
                                              c->positional[0]));
    static const char *const cols[] = {
        "id", "account", "name", "description", "size_gb#", "status", "volume_type",
        "availability_zone", "path", "adopted", "attached_to", "device", "created_at",
        "updated_at", NULL};
    const char *device;
    const char *server = attached_to(s, v.id, &device);
    const char *cells[] = {v.id, v.account_id, v.name, v.description, cli_num(&s->ar, v.size),
                           v.status, v.volume_type, v.availability_zone, v.path,
                           v.adopted ? "true" : "false", server, device, v.created_at,
                           v.updated_at};
    cli_print_record(c, cols, cells);
    return CLI_OK;
}

int cmd_volume_show(int argc, char **argv)
{
    return run_session(argc, argv, "volume show", show_names, 1, volume_show);
}
