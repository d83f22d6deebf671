/* fuzz_config.c: config_load() (src/util/config.c) on a temp file.
 *
 * The input is written to one file per process (in /dev/shm when it exists)
 * and loaded. The first byte picks the size of the error buffer (1..64, a heap
 * buffer of exactly that size so that ASan sees a write past it); the rest
 * is the file.
 *
 * On success: every entry has non-NULL section, key and value; the key is
 * non-empty, has no '=' and no leading or trailing white space; the section
 * has no leading or trailing white space; there are no more entries than
 * lines; config_get() of each entry's section and key gives the value of the
 * last entry with that pair. On failure: count 0, entries NULL, and a
 * NUL-terminated, non-empty reason in the error buffer. config_free() leaves
 * an empty config (and LeakSanitizer checks that it frees everything).
 * Each entry's line is that of its "key = value" (1-based, increasing).
 *
 * Then the file as `--config FILE` of a command that takes every option
 * (cli_parse(), src/cli/cli.c, with the option table of src/cli/options.c):
 *  - it is accepted exactly when a reference of the documented rules
 *    accepts it: the file loads; every [section] header, even one without
 *    keys, is a section of the option table or a [flavor ID]; every entry
 *    outside the flavors names an option by its section and key (or an
 *    alias of the database's: `path` before any section, [serve] db); no
 *    option is given twice; every value passes its option's check; the
 *    flavors are right (see ref_flavors()). Then each option the file gave
 *    has that value (in its normal form), from the file, with the entry's
 *    line; the others none; and the flavors are the reference's, in order;
 *  - cli_check_value() on every entry's value agrees with a reference of
 *    its type: a whole number in the option's range (strtoul's form:
 *    blanks and a '+' before the digits), true/false words in any case
 *    (normal form "true"/"false"), one of the choices in any case (normal
 *    form the choice), non-empty printable text, ADDR:PORT with the port
 *    1-65535 and IPv6 in brackets, an http(s) URL with a host and without
 *    blanks, quotes, query or fragment (normal form without trailing '/'),
 *    a comma list of IP addresses or CIDR ranges (normal form the items
 *    trimmed); a normal form is accepted again and is its own normal form;
 *    a refusal says why.
 * cli_parse()'s one-line errors go to /dev/null, not the fuzzer's log.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <strings.h>

#include "cli/cli.h"
#include "util/config.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_config: CHECK FAILED (%s): ", #cond);     \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

static char path[128];
static FILE *devnull;
static const char *all_names[CLI_MAX_SPECS + 1];   /* a command that takes every option */

static void cleanup(void)
{
    if (*path)
        unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/attachd-fuzz-config-XXXXXX", base);
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    close(fd);
    atexit(cleanup);
    devnull = fopen("/dev/null", "w");
    CHECK(devnull != NULL, "/dev/null");
    int n = 0;
    for (const struct cli_spec *sp = cli_specs; sp->name; sp++)
        all_names[n++] = sp->name;
    return 0;
}

/* ---- references of the option values ------------------------------------------------ */

static bool ref_uint(const char *v, unsigned min, unsigned max)
{
    /* strtoul's form: blanks, then a sign; "-0" after a blank passes
     * cli_parse_uint() (which refuses a '-' first) as 0 */
    bool blank = false;
    while (*v == ' ' || (*v >= '\t' && *v <= '\r'))
        v++, blank = true;
    bool minus = blank && *v == '-';
    if (*v == '+' || minus)
        v++;
    if (!isdigit((unsigned char)*v))
        return false;
    unsigned long long n = 0;
    for (; isdigit((unsigned char)*v); v++) {
        n = n * 10 + (unsigned)(*v - '0');
        if (n > 0xffffffffull)
            return false;
    }
    return !*v && (!minus || n == 0) && n >= min && n <= max;
}

static bool ref_printable(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v == 0x7f)
            return false;
    return true;
}

/* The choice of "a|b|c" that v is in any case, malloc'd; NULL if none. */
static char *ref_choice(const char *choices, const char *v)
{
    char *copy = strdup(choices), *save = NULL, *found = NULL;
    for (char *t = strtok_r(copy, "|", &save); t && !found; t = strtok_r(NULL, "|", &save))
        if (!strcasecmp(t, v))
            found = strdup(t);
    free(copy);
    return found;
}

static bool ref_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return false;
    if (v[0] == '[') {
        if (colon[-1] != ']')
            return false;
    } else if (memchr(v, ':', (size_t)(colon - v))) {
        return false;
    }
    return ref_uint(colon + 1, 1, 65535) && colon[1] != '-';
}

/* NULL: refused; else the normal form (malloc'd). */
static char *ref_url(const char *v)
{
    size_t scheme = !strncmp(v, "https://", 8) ? 8 : !strncmp(v, "http://", 7) ? 7 : 0;
    if (!scheme || !v[scheme] || v[scheme] == '/' || !ref_printable(v))
        return NULL;
    for (const char *c = v; *c; c++)
        if (strchr(" \t\"'<>\\?#", *c))
            return NULL;
    size_t n = strlen(v);
    while (n && v[n - 1] == '/')
        n--;
    return strndup(v, n);
}

static bool ref_address(const char *item)
{
    char addr[64];
    const char *slash = strchr(item, '/');
    size_t alen = slash ? (size_t)(slash - item) : strlen(item);
    if (alen >= sizeof addr)
        return false;
    memcpy(addr, item, alen);
    addr[alen] = '\0';
    unsigned char buf[16];
    bool v6 = strchr(addr, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, buf) != 1)
        return false;
    return !slash || (ref_uint(slash + 1, 0, v6 ? 128 : 32) && slash[1] != '-');
}

/* NULL: refused; else the normal form (malloc'd): the items trimmed, the
 * empty ones gone. */
static char *ref_addrs(const char *v)
{
    char *copy = strdup(v), *out = calloc(1, strlen(v) + 2);
    int n = 0;
    bool ok = true;
    for (char *p = copy, *next; ok && p; p = next) {
        next = strchr(p, ',');
        if (next)
            *next++ = '\0';
        while (isspace((unsigned char)*p))
            p++;
        size_t len = strlen(p);
        while (len && isspace((unsigned char)p[len - 1]))
            p[--len] = '\0';
        if (!len)
            continue;
        ok = ref_address(p);
        if (n++)
            strcat(out, ",");
        strcat(out, p);
    }
    free(copy);
    if (!ok || !n) {
        free(out);
        return NULL;
    }
    return out;
}

/* cli_check_value() of one value against the reference of its type. */
static void check_value(const struct cli_spec *sp, const char *v)
{
    char *norm = NULL, *want = NULL;
    const char *why = cli_check_value(sp, v, &norm);
    bool ok;
    switch (sp->type) {
    case CLI_STRING:
    case CLI_PATH: ok = *v && ref_printable(v); break;
    case CLI_UINT: ok = ref_uint(v, sp->min, sp->max); break;
    case CLI_FLAG: {
        char *yes = ref_choice("true|yes|on|1", v), *no = ref_choice("false|no|off|0", v);
        want = yes ? strdup("true") : no ? strdup("false") : NULL;
        ok = want != NULL;
        free(yes);
        free(no);
        break;
    }
    case CLI_ENUM: ok = (want = ref_choice(sp->choices, v)) != NULL; break;
    case CLI_LISTEN: ok = ref_listen(v); break;
    case CLI_URL: ok = (want = ref_url(v)) != NULL; break;
    case CLI_ADDRS: ok = (want = ref_addrs(v)) != NULL; break;
    default: ok = why == NULL; break;
    }
    CHECK(!why == ok, "--%s = \"%s\": %s, the reference %s", sp->name, v,
          why ? why : "accepted", ok ? "accepts" : "refuses");
    CHECK(!why || *why, "--%s: an empty reason", sp->name);
    if (ok) {
        const char *got = norm ? norm : v;
        CHECK(!want || !strcmp(got, want), "--%s = \"%s\": normal form \"%s\", want \"%s\"",
              sp->name, v, got, want);
        if (!want)      /* the types without a normal form keep the value */
            CHECK(!norm || !strcmp(norm, v) || sp->type == CLI_FLAG || sp->type == CLI_ENUM,
                  "--%s = \"%s\": normal form \"%s\"", sp->name, v, norm);
        char *again = NULL;
        const char *why2 = cli_check_value(sp, got, &again);
        CHECK(!why2 && (!again || !strcmp(again, got)),
              "--%s: the normal form \"%s\" is not its own (%s)", sp->name, got,
              why2 ? why2 : again);
        free(again);
    }
    free(norm);
    free(want);
}

/* The option an entry sets (framework's documented mapping), or -1. */
static int ref_spec(const struct config_entry *e)
{
    const char *name = NULL;
    if ((!strcmp(e->section, "serve") && !strcmp(e->key, "db")) ||
        (!e->section[0] && !strcmp(e->key, "path")))
        name = "db";
    for (int i = 0; cli_specs[i].name; i++) {
        const struct cli_spec *sp = &cli_specs[i];
        if (name ? !strcmp(sp->name, name)
                 : sp->section && !strcmp(sp->section, e->section) && !strcmp(sp->key, e->key))
            return i;
    }
    return -1;
}

/* ---- [flavor ID] sections (src/cli/options.c, cli.h) ------------------------------- */

static bool ref_flavor_section(const char *name)
{
    return !strncmp(name, "flavor", 6) && (name[6] == '\0' || name[6] == ' ');
}

/* A whole number as ref_uint() takes it, its value into *out. */
static bool ref_uint_value(const char *v, unsigned min, unsigned max, unsigned *out)
{
    if (!ref_uint(v, min, max))
        return false;
    while (!isdigit((unsigned char)*v))
        v++;
    unsigned long long n = 0;
    for (; isdigit((unsigned char)*v); v++)
        n = n * 10 + (unsigned)(*v - '0');
    *out = (unsigned)n;
    return true;
}

/* 1-255 bytes of valid UTF-8 without control characters. */
static bool ref_name(const char *v)
{
    size_t n = strlen(v);
    if (!n || n > 255 || !ref_printable(v))
        return false;
    const unsigned char *p = (const unsigned char *)v, *end = p + n;
    while (p < end) {
        int len = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3
                : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
        if (!len || end - p < len)
            return false;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
            (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
            return false;
        p += len;
    }
    return true;
}

static bool ref_id(const char *id)
{
    size_t n = strlen(id);
    if (!n || n > 255)
        return false;
    for (const char *c = id; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._~:-", *c))
            return false;
    return true;
}

/* The flavors the file's [flavor ID] sections make, in its order, or false
 * when one is wrong: ID 1-255 of [A-Za-z0-9._~:-] and not repeated; the
 * keys name, vcpus (1-1024), ram_mb (1-16777216), disk_gb (0-1048576),
 * each once and all four; the name 1-255 printable characters of UTF-8 and
 * not another flavor's; at most CLI_MAX_FLAVORS. */
static bool ref_flavors(const struct config *cfg, struct flavor *out, int *n_out)
{
    static const char *const keys[4] = {"name", "vcpus", "ram_mb", "disk_gb"};
    static const unsigned lo[4] = {0, 1, 1, 0}, hi[4] = {0, 1024, 16777216, 1048576};
    int n = 0;
    for (int k = 0; k < cfg->n_sections; k++) {
        const char *sec = cfg->sections[k].name;
        if (!ref_flavor_section(sec))
            continue;
        const char *id = sec + 6;
        while (*id == ' ')
            id++;
        if (!ref_id(id) || n == CLI_MAX_FLAVORS)
            return false;
        for (int i = 0; i < n; i++)
            if (!strcmp(out[i].id, id))
                return false;
        struct flavor f = {.id = id};
        bool given[4] = {false};
        for (int j = 0; j < cfg->count; j++) {
            const struct config_entry *e = &cfg->entries[j];
            if (strcmp(e->section, sec) != 0)
                continue;
            int i = 0;
            while (i < 4 && strcmp(keys[i], e->key) != 0)
                i++;
            if (i == 4 || given[i])
                return false;
            given[i] = true;
            unsigned v = 0;
            if (i == 0 ? !ref_name(e->value) : !ref_uint_value(e->value, lo[i], hi[i], &v))
                return false;
            if (i == 0)
                f.name = e->value;
            else if (i == 1)
                f.vcpus = (int)v;
            else if (i == 2)
                f.ram_mb = v;
            else
                f.disk_gb = v;
        }
        if (!given[0] || !given[1] || !given[2] || !given[3])
            return false;
        for (int i = 0; i < n; i++)
            if (!strcmp(out[i].name, f.name))
                return false;
        out[n++] = f;
    }
    *n_out = n;
    return true;
}

/* The file as --config of a command that takes every option. */
static void check_cli(void)
{
    struct config cfg;
    char err[256];
    bool want = config_load(&cfg, path, err, sizeof err) == 0;
    int first[CLI_MAX_SPECS] = {0};
    const char *value[CLI_MAX_SPECS] = {0};
    /* every [section] header names a section of the table or a flavor,
     * even one without keys */
    for (int k = 0; want && k < cfg.n_sections; k++) {
        bool known = ref_flavor_section(cfg.sections[k].name);
        for (int i = 0; cli_specs[i].name && !known; i++)
            known = cli_specs[i].section && !strcmp(cli_specs[i].section, cfg.sections[k].name);
        want = known;
    }
    static struct flavor flavors[CLI_MAX_FLAVORS];
    int n_flavors = 0;
    if (want)
        want = ref_flavors(&cfg, flavors, &n_flavors);
    for (int k = 0; want && k < cfg.count; k++) {
        const struct config_entry *e = &cfg.entries[k];
        if (ref_flavor_section(e->section))
            continue;           /* ref_flavors' */
        int i = ref_spec(e);
        if (i < 0 || first[i]) {
            want = false;
            break;
        }
        first[i] = e->line;
        value[i] = e->value;
        char *norm = NULL;
        check_value(&cli_specs[i], e->value);
        if (cli_check_value(&cli_specs[i], e->value, &norm))
            want = false;
        free(norm);
    }

    struct cli c;
    memset(&c, 0, sizeof c);
    c.command = "fuzz";
    c.names = all_names;
    char *argv[] = {"--config", path, NULL};
    FILE *saved = stderr;
    stderr = devnull;
    bool ok = cli_parse(&c, 2, argv, 0, 0);
    stderr = saved;
    CHECK(ok == want, "cli_parse %s the file, the reference %s it", ok ? "took" : "refused",
          want ? "takes" : "refuses");
    CHECK(!ok || c.n_flavors == n_flavors, "%d flavors, want %d", c.n_flavors, n_flavors);
    for (int i = 0; ok && i < n_flavors; i++) {
        const struct flavor *g = &c.flavors[i], *w = &flavors[i];
        CHECK(g->id && g->name && !strcmp(g->id, w->id) && !strcmp(g->name, w->name) &&
                  g->vcpus == w->vcpus && g->ram_mb == w->ram_mb && g->disk_gb == w->disk_gb,
              "flavor %d: %s \"%s\" %d/%lld/%lld, want %s \"%s\" %d/%lld/%lld", i,
              g->id ? g->id : "(null)", g->name ? g->name : "(null)", g->vcpus,
              (long long)g->ram_mb, (long long)g->disk_gb, w->id, w->name, w->vcpus,
              (long long)w->ram_mb, (long long)w->disk_gb);
    }
    for (int i = 0; ok && cli_specs[i].name; i++) {
        if (!first[i]) {
            CHECK(!c.value[i], "--%s set without an entry", cli_specs[i].name);
            continue;
        }
        char *norm = NULL;
        cli_check_value(&cli_specs[i], value[i], &norm);
        const char *v = norm ? norm : value[i];
        CHECK(c.value[i] && !strcmp(c.value[i], v) && c.source[i] == CLI_FROM_FILE &&
                  c.line[i] == first[i],
              "--%s: \"%s\" from line %d, want \"%s\" from line %d", cli_specs[i].name,
              c.value[i] ? c.value[i] : "(none)", c.line[i], v, first[i]);
        free(norm);
    }
    cli_done(&c);
    config_free(&cfg);
}

static bool blank_edges(const char *s)
{
    size_t n = strlen(s);
    return n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int errlen = data[0] % 64 + 1;
    data++;
    size--;
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    CHECK(fwrite(data, 1, size, f) == size, "short write");
    fclose(f);

    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';

    char *err = malloc((size_t)errlen);
    memset(err, 0x5a, (size_t)errlen);
    struct config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    int rc = config_load(&cfg, path, err, errlen);
    CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc == 0) {
        CHECK(cfg.count >= 0 && (size_t)cfg.count <= lines, "%d entries from %zu lines",
              cfg.count, lines);
        CHECK(cfg.count == 0 || cfg.entries != NULL, "entries NULL with a count");
        for (int i = 0; i < cfg.count; i++) {
            struct config_entry *e = &cfg.entries[i];
            CHECK(e->section && e->key && e->value, "entry %d has a NULL", i);
            CHECK(*e->key, "entry %d: empty key", i);
            CHECK(!strchr(e->key, '='), "entry %d: key \"%s\" has '='", i, e->key);
            CHECK(!strchr(e->key, '\n') && !strchr(e->value, '\n') && !strchr(e->section, '\n'),
                  "entry %d: a newline inside", i);
            CHECK(!blank_edges(e->key), "entry %d: key \"%s\" not trimmed", i, e->key);
            CHECK(!blank_edges(e->section), "entry %d: section \"%s\" not trimmed", i,
                  e->section);
            CHECK(strlen(e->section) < 256, "entry %d: section too long", i);
            const char *v = config_get(&cfg, e->section, e->key);
            const char *want = NULL;
            for (int k = cfg.count - 1; k >= 0 && !want; k--)
                if (!strcmp(cfg.entries[k].section, e->section) &&
                    !strcmp(cfg.entries[k].key, e->key))
                    want = cfg.entries[k].value;
            CHECK(v == want, "config_get(%s, %s) is not the last duplicate", e->section, e->key);
            CHECK(e->line >= 1 && (size_t)e->line <= lines &&
                      (i == 0 || e->line > cfg.entries[i - 1].line),
                  "entry %d: line %d (of %zu, the one before %d)", i, e->line, lines,
                  i ? cfg.entries[i - 1].line : 0);
        }
    } else {
        CHECK(cfg.count == 0 && cfg.entries == NULL, "a failed load left entries");
        CHECK(memchr(err, '\0', (size_t)errlen) != NULL, "error not NUL-terminated");
        CHECK(errlen == 1 || *err != '\0', "empty error reason");
    }
    config_free(&cfg);
    CHECK(cfg.count == 0 && cfg.entries == NULL, "config_free left entries");
    free(err);

    check_cli();
    return 0;
}
