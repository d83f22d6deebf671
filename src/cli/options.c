/* options.c: the table of every option, the checks of their values, and
 * the two commands that show it: `config check` (is this file right, and
 * what would attachd run with?) and `config reference` (every key, for the
 * documentation: docs/operations.md and attachd.conf(5) carry its output,
 * and a test keeps them equal, so that the reference cannot drift from the
 * parser).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "http/server.h"
#include "store/pg.h"
#include "util/id.h"

#ifndef ATTACHD_DEFAULT_DB
#define ATTACHD_DEFAULT_DB "data/attachd.db"
#endif
#ifndef ATTACHD_DEFAULT_VOLUME_DIR
#define ATTACHD_DEFAULT_VOLUME_DIR "data/volumes"
#endif

#ifndef ATTACHD_DEFAULT_IMAGE_DIR
#define ATTACHD_DEFAULT_IMAGE_DIR "data/images"
#endif
#ifndef ATTACHD_DEFAULT_INSTANCE_DIR
#define ATTACHD_DEFAULT_INSTANCE_DIR "data/instances"
#endif

#define DB_DOC "`/var/lib/attachd/attachd.db` (installed); `data/attachd.db` (built from source)"
#define VOLDIR_DOC "`/var/lib/attachd/volumes` (installed); `data/volumes` (built from source)"
#define IMGDIR_DOC "`/var/lib/attachd/images` (installed); `data/images` (built from source)"
#define INSTDIR_DOC \
    "`/var/lib/attachd/instances` (installed); `data/instances` (built from source)"

/* The order is the reference's: the sections an operator sets first. */
const struct cli_spec cli_specs[] = {
    {"db", "db", "path", CLI_PATH, 0, 0, NULL, "PATH", ATTACHD_DEFAULT_DB, DB_DOC,
     "The database: an SQLite file, or a PostgreSQL connection string (a `postgresql://` "
     "URI or libpq's `key=value` form; docs/scale-out.md). `serve` and `db migrate` create "
     "an SQLite file (and its folder) when it does not exist, and migrate either; every "
     "other command refuses a missing file. Also accepted as `db` in "
     "[serve], or as `path` before any section."},
    {"listen", "serve", "listen", CLI_LISTEN, 0, 0, NULL, "ADDR:PORT", "127.0.0.1:8774", NULL,
     "The address and port of the API (`[::1]:8774` for IPv6, `0.0.0.0:8774` for every "
     "address)."},
    {"threads", "serve", "threads", CLI_UINT, 1, 256, NULL, "N", NULL, "one per core",
     "HTTP worker threads, an epoll loop each; they never wait: work that takes time is "
     "handed on."},
    {"timeout", "serve", "timeout", CLI_UINT, 1, 3600, NULL, "SECONDS", "30", NULL,
     "Seconds a connection may stay silent, and a request body may take in all (from the "
     "end of its head)."},
    {"header-timeout", "serve", "header_timeout", CLI_UINT, 1, 3600, NULL, "SECONDS", "10", NULL,
     "Seconds a request head may take from its first byte."},
    {"max-connections", "serve", "max_connections", CLI_UINT, 1, 65536, NULL, "N", NULL,
     "1024, or what the open-files limit allows",
     "Connections at once. At the cap a new connection closes the oldest one that has not "
     "sent a whole request head, else the kept-alive one idle longest, or is refused. A cap "
     "the open-files limit cannot hold is refused at start."},
    {"max-per-ip", "serve", "max_per_ip", CLI_UINT, 1, 65536, NULL, "N", "64", NULL,
     "Connections at once from one client address."},
    {"synchronous", "serve", "synchronous", CLI_ENUM, 0, 0, "full|normal", "MODE", "full", NULL,
     "`full`: an acknowledged change survives a power cut; `normal` trades that for speed "
     "(a crash of attachd still loses nothing)."},
    {"public-url", "serve", "public_url", CLI_URL, 0, 0, NULL, "URL", NULL, NULL,
     "The base of every link in answers (`https://cloud.example.com/attachd`), for attachd "
     "behind a proxy. Without it links use the scheme and host the client used."},
    {"trusted-proxy", "serve", "trusted_proxy", CLI_ADDRS, 0, 0, NULL, "ADDRS", NULL, NULL,
     "Addresses (or CIDR ranges, comma-separated) of proxies whose `X-Forwarded-Proto`, "
     "`X-Forwarded-Host` and `X-Forwarded-For` are believed: links then use the first two, "
     "and the access log shows the third."},
    {"demo", "serve", "demo", CLI_FLAG, 0, 0, NULL, NULL, "false", NULL,
     "On first start, create account `demo` with user `demo` (password printed) and the "
     "Hostway example's server and volume, attached."},
    {"demo-image", "serve", "demo_image", CLI_STRING, 0, 0, NULL, "NAME", "demo-guest", NULL,
     "With `--driver libvirt`: the image (name or id) the demo server is created from "
     "(`scripts/demo-image` adds it)."},
    {"tls-cert", "tls", "cert", CLI_PATH, 0, 0, NULL, "FILE", NULL, NULL,
     "Serve HTTPS (TLS 1.2 and 1.3 only) with this PEM certificate chain, server "
     "certificate first. Read again on SIGHUP."},
    {"tls-key", "tls", "key", CLI_PATH, 0, 0, NULL, "FILE", NULL, NULL,
     "The PEM private key of `--tls-cert`. Read again on SIGHUP."},
    {"metrics-listen", "metrics", "listen", CLI_LISTEN, 0, 0, NULL, "ADDR:PORT", NULL, NULL,
     "Also serve `GET /metrics` (Prometheus text format) on this address, without "
     "credentials: to anyone who can reach it. On the API listener `/metrics` answers "
     "admins only."},
    {"log-format", "log", "format", CLI_ENUM, 0, 0, "text|json", "FORMAT", "text", NULL,
     "The log on standard error: `text` (key=value) or `json` (one object per line)."},
    {"driver", "driver", "kind", CLI_ENUM, 0, 0, "none|libvirt", "KIND", "none", NULL,
     "`libvirt` attaches for real (docs/hypervisor.md); `none` records state only. On a "
     "PostgreSQL database one `serve` at a time drives the hypervisor with `libvirt`; a "
     "second refuses to start, naming the first, unless it is a `standby` "
     "(docs/scale-out.md)."},
    {"standby", "driver", "standby", CLI_FLAG, 0, 0, NULL, NULL, "false", NULL,
     "With `libvirt` on PostgreSQL: when another `serve` drives the hypervisor, wait for its "
     "lease instead of refusing to start, and serve once it is taken (docs/scale-out.md)."},
    {"hypervisor-lease", "driver", "lease", CLI_UINT, 2, 600, NULL, "SECONDS", "10", NULL,
     "With `libvirt` on PostgreSQL: a node that cannot confirm its hold on the hypervisor for "
     "this long exits at once (status 75), and a node that takes it waits this long and 2 s "
     "before it drives anything. The same on every node."},
    {"libvirt-uri", "driver", "uri", CLI_STRING, 0, 0, NULL, "URI", NULL, "`qemu:///system`",
     "The libvirt connection (`qemu+ssh://HOST/system` for a remote host)."},
    {"disk-bus", "driver", "disk_bus", CLI_ENUM, 0, 0, "scsi|virtio", "BUS", "scsi", NULL,
     "The bus of new disks: virtio-scsi or virtio-blk."},
    {"detach-timeout", "driver", "detach_timeout", CLI_UINT, 1, 3600, NULL, "SECONDS", "20", NULL,
     "Seconds until an unconfirmed detach is given up."},
    {"hostway-detach-wait", "driver", "hostway_detach_wait", CLI_UINT, 0, 3600, NULL, "SECONDS",
     "20", NULL,
     "Seconds a Hostway detach waits for the hypervisor before it answers 202."},
    {"shutdown-timeout", "driver", "shutdown_timeout", CLI_UINT, 0, 3600, NULL, "SECONDS", "60",
     NULL,
     "Seconds a guest has to power off after `os-stop` (an ACPI shutdown) before its domain "
     "is destroyed, as Nova's `shutdown_timeout`."},
    {"reconcile-interval", "driver", "reconcile_interval", CLI_UINT, 0, 86400, NULL, "SECONDS",
     "60", NULL,
     "Seconds between comparisons of the store with the hypervisor (0: at start only)."},
    {"instance-dir", "driver", "instance_dir", CLI_PATH, 0, 0, NULL, "DIR",
     ATTACHD_DEFAULT_INSTANCE_DIR, INSTDIR_DOC,
     "Where the servers attachd creates keep their root disks (copy-on-write overlays of "
     "their images) and console logs (libvirt driver). Every directory above it must be "
     "traversable by QEMU's user."},
    {"virt-type", "driver", "virt_type", CLI_ENUM, 0, 0, "auto|kvm|qemu", "TYPE", "auto", NULL,
     "How the servers attachd creates run: `kvm`, `qemu` (QEMU's own emulation, TCG: slow, "
     "needs no /dev/kvm), or `auto`: KVM when libvirt can use it here, else TCG."},
    {"volume-dir", "volumes", "dir", CLI_PATH, 0, 0, NULL, "DIR", ATTACHD_DEFAULT_VOLUME_DIR,
     VOLDIR_DOC,
     "Where volume files are made (libvirt driver). Every directory above it must be "
     "traversable by QEMU's user."},
    {"image-dir", "images", "dir", CLI_PATH, 0, 0, NULL, "DIR", ATTACHD_DEFAULT_IMAGE_DIR,
     IMGDIR_DOC,
     "Where `attachd image add` copies image files (and their kernels and initramfs). Every "
     "directory above it must be traversable by QEMU's user."},
    /* the command line only */
    {"id", NULL, NULL, CLI_STRING, 0, 0, NULL, "ID", NULL, NULL, NULL},
    {"name", NULL, NULL, CLI_STRING, 0, 0, NULL, "NAME", NULL, NULL, NULL},
    {"account", NULL, NULL, CLI_STRING, 0, 0, NULL, "ACCOUNT", NULL, NULL, NULL},
    {"role", NULL, NULL, CLI_ENUM, 0, 0, "member|admin", "ROLE", NULL, NULL, NULL},
    {"size", NULL, NULL, CLI_STRING, 0, 0, NULL, "GB", NULL, NULL, NULL},
    {"path", NULL, NULL, CLI_PATH, 0, 0, NULL, "FILE", NULL, NULL, NULL},
    {"domain", NULL, NULL, CLI_STRING, 0, 0, NULL, "NAME|UUID", NULL, NULL, NULL},
    {"instances", NULL, NULL, CLI_STRING, 0, 0, NULL, "N", NULL, NULL, NULL},
    {"cores", NULL, NULL, CLI_STRING, 0, 0, NULL, "N", NULL, NULL, NULL},
    {"ram", NULL, NULL, CLI_STRING, 0, 0, NULL, "MB", NULL, NULL, NULL},
    {"volumes", NULL, NULL, CLI_STRING, 0, 0, NULL, "N", NULL, NULL, NULL},
    {"gigabytes", NULL, NULL, CLI_STRING, 0, 0, NULL, "GB", NULL, NULL, NULL},
    {"file", NULL, NULL, CLI_PATH, 0, 0, NULL, "FILE", NULL, NULL, NULL},
    {"kernel", NULL, NULL, CLI_PATH, 0, 0, NULL, "FILE", NULL, NULL, NULL},
    {"initrd", NULL, NULL, CLI_PATH, 0, 0, NULL, "FILE", NULL, NULL, NULL},
    {"cmdline", NULL, NULL, CLI_STRING, 0, 0, NULL, "TEXT", NULL, NULL, NULL},
    /* table|json for list and show; markdown|man for config reference */
    {"format", NULL, NULL, CLI_ENUM, 0, 0, "table|json|markdown|man", "FORMAT", "table", NULL,
     NULL},
    {"quiet", NULL, NULL, CLI_FLAG, 0, 0, NULL, NULL, "false", NULL, NULL},
    {NULL, NULL, NULL, CLI_STRING, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

_Static_assert(sizeof cli_specs / sizeof cli_specs[0] <= CLI_MAX_SPECS, "CLI_MAX_SPECS");

/* The keys of a [flavor ID] section, every one required. */
static const struct cli_spec flavor_specs[] = {
    {"name", "flavor ID", "name", CLI_STRING, 0, 0, NULL, "NAME", NULL, "required",
     "The flavor's name, unique among the flavors (a server's `flavor` shows it from "
     "microversion 2.47)."},
    {"vcpus", "flavor ID", "vcpus", CLI_UINT, 1, 1024, NULL, "N", NULL, "required",
     "Virtual CPUs."},
    {"ram_mb", "flavor ID", "ram_mb", CLI_UINT, 1, 16777216, NULL, "MB", NULL, "required",
     "Memory, in MiB."},
    {"disk_gb", "flavor ID", "disk_gb", CLI_UINT, 0, 1048576, NULL, "GB", NULL, "required",
     "The root disk, in GiB (0: as large as the image)."},
    {NULL, NULL, NULL, CLI_STRING, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

#define FLAVOR_DOC "Flavors, a section each, named by the flavor's id (`[flavor 1]`, " \
    "`[flavor gp.small]`: 1-255 characters of A-Z a-z 0-9 . _ ~ : -), the id a server's " \
    "`flavorRef` names; the first is the flavor of servers made without one. Without any, " \
    "Nova's classic set is built in: `1` m1.tiny (1 vCPU, 512 MiB, 1 GiB), `2` m1.small (1, " \
    "2048, 20), `3` m1.medium (2, 4096, 40), `4` m1.large (4, 8192, 80), `5` m1.xlarge (8, " \
    "16384, 160)."

const struct cli_spec *cli_spec(const char *name)
{
    for (const struct cli_spec *s = cli_specs; s->name; s++)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

/* ---- flavors ---------------------------------------------------------------------- */

bool cli_flavor_section(const char *section)
{
    return !strncmp(section, "flavor", 6) && (section[6] == '\0' || section[6] == ' ');
}

/* One [flavor ID] section's keys into f; false after an error. */
static bool read_flavor(struct cli *c, const char *path, const struct config_section *sec,
                        struct flavor *f)
{
    int given[4] = {0};
    for (int k = 0; k < c->config.count; k++) {
        const struct config_entry *e = &c->config.entries[k];
        if (strcmp(e->section, sec->name) != 0)
            continue;
        int i = 0;
        while (flavor_specs[i].name && strcmp(flavor_specs[i].key, e->key) != 0)
            i++;
        if (!flavor_specs[i].name) {
            cli_error("%s:%d: unknown key \"%s\" in section [%s] (a flavor has name, vcpus, "
                      "ram_mb and disk_gb)", path, e->line, e->key, sec->name);
            return false;
        }
        if (given[i]) {
            cli_error("%s:%d: [%s] %s is given a second time (first on line %d)", path, e->line,
                      sec->name, e->key, given[i]);
            return false;
        }
        given[i] = e->line;
        char *norm;
        const char *why = cli_check_value(&flavor_specs[i], e->value, &norm);
        if (!why && i == 0 && !cli_name_ok(e->value))
            why = "1-255 printable characters are expected";
        free(norm);
        if (why) {
            cli_error("%s:%d: [%s] %s = \"%s\": %s", path, e->line, sec->name, e->key,
                      e->value, why);
            return false;
        }
        unsigned v = 0;
        cli_parse_uint(e->value, 0, ~0u, &v);
        switch (i) {
        case 0: f->name = e->value; break;
        case 1: f->vcpus = (int)v; break;
        case 2: f->ram_mb = v; break;
        default: f->disk_gb = v; break;
        }
    }
    for (int i = 0; flavor_specs[i].name; i++) {
        if (!given[i]) {
            cli_error("%s:%d: [%s] has no %s (a flavor needs name, vcpus, ram_mb and disk_gb)",
                      path, sec->line, sec->name, flavor_specs[i].key);
            return false;
        }
    }
    return true;
}

bool cli_read_flavors(struct cli *c, const char *path)
{
    c->n_flavors = 0;
    for (int k = 0; k < c->config.n_sections; k++) {
        const struct config_section *sec = &c->config.sections[k];
        if (!cli_flavor_section(sec->name))
            continue;
        const char *id = sec->name + 6;
        while (*id == ' ')
            id++;
        if (!*id || !id_valid(id, strlen(id))) {
            cli_error("%s:%d: [%s]: a flavor's section is [flavor ID], ID 1-255 characters of "
                      "A-Z a-z 0-9 . _ ~ : -", path, sec->line, sec->name);
            return false;
        }
        if (c->n_flavors == CLI_MAX_FLAVORS) {
            cli_error("%s:%d: more than %d flavors", path, sec->line, CLI_MAX_FLAVORS);
            return false;
        }
        struct flavor *f = &c->flavors[c->n_flavors];
        *f = (struct flavor){.id = id};
        for (int i = 0; i < c->n_flavors; i++) {
            if (!strcmp(c->flavors[i].id, id)) {
                cli_error("%s:%d: [%s] is given a second time", path, sec->line, sec->name);
                return false;
            }
        }
        if (!read_flavor(c, path, sec, f))
            return false;
        for (int i = 0; i < c->n_flavors; i++) {
            if (!strcmp(c->flavors[i].name, f->name)) {
                cli_error("%s:%d: [%s]: the name \"%s\" is flavor %s's already", path,
                          sec->line, sec->name, f->name, c->flavors[i].id);
                return false;
            }
        }
        c->n_flavors++;
    }
    return true;
}

/* ---- values ---------------------------------------------------------------------- */

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* ADDR:PORT or [ADDR6]:PORT: the port 1-65535 (the listener would take a
 * larger one modulo 65536, and listen somewhere else than asked). */
static const char *check_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return "ADDR:PORT is expected (e.g. 127.0.0.1:8774, [::1]:8774)";
    if (v[0] == '[' && colon[-1] != ']')
        return "ADDR:PORT is expected; an IPv6 address goes in brackets ([::1]:8774)";
    if (v[0] != '[' && memchr(v, ':', (size_t)(colon - v)))
        return "an IPv6 address goes in brackets ([::1]:8774)";
    unsigned port;
    if (!cli_parse_uint(colon + 1, 1, 65535, &port))
        return "the port must be a whole number from 1 to 65535";
    return NULL;
}

static const char *check_url(const char *v, char **norm)
{
    const char *rest = !strncmp(v, "https://", 8) ? v + 8 : !strncmp(v, "http://", 7) ? v + 7
                                                                                        : NULL;
    if (!rest || !*rest || *rest == '/')
        return "an http:// or https:// URL with a host is expected";
    if (strpbrk(v, " \t\"'<>\\?#") || !printable(v))
        return "a URL without spaces, quotes, query or fragment is expected";
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    if (n != strlen(v))
        *norm = strndup(v, n);      /* links are built as base + "/v2.1/..." */
    return NULL;
}

static const char *check_addrs(const char *v, char **norm)
{
    char *copy = strdup(v), *out = calloc(1, strlen(v) + 1);
    const char *why = NULL;
    if (!copy || !out) {
        why = "out of memory";
        goto done;
    }
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (!*tok)
            continue;
        char addr[64];
        const char *slash = strchr(tok, '/');
        size_t alen = slash ? (size_t)(slash - tok) : strlen(tok);
        unsigned char buf[16];
        int family = memchr(tok, ':', alen) ? AF_INET6 : AF_INET;
        unsigned bits;
        if (alen >= sizeof addr) {
            why = "IP addresses or CIDR ranges, comma-separated, are expected";
            goto done;
        }
        memcpy(addr, tok, alen);
        addr[alen] = '\0';
        if (inet_pton(family, addr, buf) != 1 ||
            (slash && !cli_parse_uint(slash + 1, 0, family == AF_INET ? 32 : 128, &bits))) {
            why = "IP addresses or CIDR ranges, comma-separated, are expected";
            goto done;
        }
        if (n++)
            strcat(out, ",");
        strcat(out, tok);
    }
    if (n == 0)
        why = "at least one IP address or CIDR range is expected";
done:
    free(copy);
    if (why)
        free(out);
    else
        *norm = out;
    return why;
}

const char *cli_check_value(const struct cli_spec *s, const char *value, char **norm)
{
    static __thread char why[160];
    *norm = NULL;
    switch (s->type) {
    case CLI_STRING:
    case CLI_PATH:
        if (!*value || !printable(value))
            return "a non-empty value of printable characters is expected";
        return NULL;
    case CLI_UINT: {
        unsigned v;
        if (cli_parse_uint(value, s->min, s->max, &v))
            return NULL;
        snprintf(why, sizeof why, "a whole number from %u to %u is expected", s->min, s->max);
        return why;
    }
    case CLI_FLAG: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                  "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (!strcasecmp(value, yes[i])) {
                *norm = strdup("true");
                return NULL;
            }
            if (!strcasecmp(value, no[i])) {
                *norm = strdup("false");
                return NULL;
            }
        }
        return "true or false (yes/no, on/off, 1/0) is expected";
    }
    case CLI_ENUM: {
        const char *p = s->choices;
        size_t n = strlen(value);
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && !strncasecmp(p, value, n)) {
                *norm = strndup(p, len);    /* FULL is full */
                return NULL;
            }
            p += len + (bar ? 1 : 0);
        }
        snprintf(why, sizeof why, "one of %s is expected", s->choices);
        for (char *q = why; *q; q++)
            if (*q == '|')
                *q = ',';
        return why;
    }
    case CLI_LISTEN:
        return check_listen(value);
    case CLI_URL:
        return check_url(value, norm);
    case CLI_ADDRS:
        return check_addrs(value, norm);
    }
    return "a valid value is expected";
}

/* ---- config reference ---------------------------------------------------------------- */

static const char *type_doc(const struct cli_spec *s, char *buf, size_t size)
{
    switch (s->type) {
    case CLI_UINT:
        snprintf(buf, size, "%u to %u", s->min, s->max);
        return buf;
    case CLI_FLAG:
        return "true or false";
    case CLI_ENUM: {
        snprintf(buf, size, "`%s`", s->choices);
        char out[256] = "";
        for (const char *p = buf; *p; p++) {
            if (*p == '|')
                strcat(out, "` or `");
            else
                strncat(out, p, 1);
        }
        snprintf(buf, size, "%s", out);
        return buf;
    }
    case CLI_LISTEN: return "ADDR:PORT";
    case CLI_URL: return "URL";
    case CLI_ADDRS: return "addresses";
    case CLI_PATH: return "path";
    case CLI_STRING: return "text";
    }
    return "";
}

static const char *default_doc(const struct cli_spec *s, char *buf, size_t size)
{
    if (s->def_doc)
        return s->def_doc;
    if (!s->def)
        return "none";
    snprintf(buf, size, "`%s`", s->def);
    return buf;
}

/* roff: the reference's backquotes become bold, and a leading dot or a
 * backslash cannot be read as a request. */
static void man_text(const char *s)
{
    bool bold = false;
    for (; *s; s++) {
        if (*s == '`') {
            fputs(bold ? "\\fR" : "\\fB", stdout);
            bold = !bold;
        } else if (*s == '\\') {
            fputs("\\e", stdout);
        } else {
            putchar(*s);
        }
    }
    if (bold)
        fputs("\\fR", stdout);
}

int cmd_config_reference(int argc, char **argv)
{
    static const char *const names[] = {"format", NULL};
    struct cli c = {.command = "config reference", .names = names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    const char *format = cli_given(&c, "format") ? cli_get(&c, "format") : "markdown";
    bool man = !strcmp(format, "man");
    if (!man && strcmp(format, "markdown") != 0) {
        cli_done(&c);
        return cli_error("config reference: --format is markdown or man");
    }
    const char *section = NULL;
    char tbuf[256], dbuf[256];
    for (const struct cli_spec *s = cli_specs; s->name; s++) {
        if (!s->section)
            continue;
        bool new_section = !section || strcmp(section, s->section) != 0;
        section = s->section;
        if (man) {
            if (new_section)
                printf(".SS [%s]\n", section);
            printf(".TP\n\\fB%s\\fR = \\fI%s\\fR\n", s->key, s->arg ? s->arg : "true|false");
            man_text(s->help);
            fputs("\n.br\nOption \\fB\\-\\-", stdout);
            for (const char *p = s->name; *p; p++)
                fputs(*p == '-' ? "\\-" : (char[]){*p, 0}, stdout);
            fputs("\\fR; ", stdout);
            man_text(type_doc(s, tbuf, sizeof tbuf));
            fputs("; default ", stdout);
            man_text(default_doc(s, dbuf, sizeof dbuf));
            puts(".");
        } else {
            if (new_section)
                printf("%s### [%s]\n\n| key | option | values | default | meaning |\n"
                       "|---|---|---|---|---|\n", s == cli_specs ? "" : "\n", section);
            printf("| `%s` | `--%s` | %s | %s | %s |\n", s->key, s->name,
                   type_doc(s, tbuf, sizeof tbuf), default_doc(s, dbuf, sizeof dbuf), s->help);
        }
    }
    if (man) {
        puts(".SS [flavor ID]");
        man_text(FLAVOR_DOC);
        putchar('\n');
    } else {
        printf("\n### [flavor ID]\n\n%s\n\n| key | option | values | default | meaning |\n"
               "|---|---|---|---|---|\n", FLAVOR_DOC);
    }
    for (const struct cli_spec *s = flavor_specs; s->name; s++) {
        if (man) {
            printf(".TP\n\\fB%s\\fR = \\fI%s\\fR\n", s->key, s->arg);
            man_text(s->help);
            fputs("\n.br\n", stdout);
            man_text(type_doc(s, tbuf, sizeof tbuf));
            puts("; required.");
        } else {
            printf("| `%s` | none | %s | required | %s |\n", s->key,
                   type_doc(s, tbuf, sizeof tbuf), s->help);
        }
    }
    cli_done(&c);
    return CLI_OK;
}

/* ---- config check -------------------------------------------------------------------- */

/* Every option a config file can hold, so that `config check` sees them all. */
static const char *const config_names[] = {
    "quiet", "db", "listen", "threads", "timeout", "header-timeout", "max-connections", "max-per-ip",
    "synchronous", "public-url", "trusted-proxy", "demo", "demo-image", "tls-cert",
    "tls-key", "metrics-listen", "log-format", CLI_DRIVER_OPTIONS, "image-dir", "standby",
    "hypervisor-lease", NULL,
};

/* What serve would refuse at start, beyond each value's own form: a listener
 * that does not resolve, TLS files that do not load or do not match. */
static int deeper_checks(const struct cli *c)
{
    char err[512];
    struct sockaddr_storage ss;
    int bad = 0;
    const char *names[] = {"listen", "metrics-listen"};
    for (int i = 0; i < 2; i++) {
        const char *v = cli_get(c, names[i]);
        if (v && http_parse_listen(v, &ss, err, sizeof err) < 0) {
            cli_error("config check: %s", err);
            bad++;
        }
    }
    if (cli_given(c, "tls-cert") != cli_given(c, "tls-key")) {
        cli_error("config check: [tls] cert and key go together");
        bad++;
    } else if (cli_given(c, "tls-cert")) {
        struct http_tls *t = http_tls_load(cli_get(c, "tls-cert"), cli_get(c, "tls-key"), err,
                                           sizeof err);
        if (!t) {
            cli_error("config check: %s", err);
            bad++;
        }
        http_tls_free(t);
    }
    return bad;
}

int cmd_config_check(int argc, char **argv)
{
    struct cli c = {.command = "config check", .names = config_names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    int status = deeper_checks(&c) ? CLI_USAGE : CLI_OK;
    if (status == CLI_OK && !cli_flag(&c, "quiet")) {
        printf("# attachd %s: the effective configuration, from %s\n", ATTACHD_VERSION,
               c.config_path ? c.config_path : "the defaults and the command line (no file)");
        const char *section = NULL;
        for (const struct cli_spec *s = cli_specs; s->name; s++) {
            if (!s->section)
                continue;
            if (!section || strcmp(section, s->section) != 0)
                printf("%s[%s]\n", section ? "\n" : "", s->section);
            section = s->section;
            int i = (int)(s - cli_specs);
            const char *v = cli_get(&c, s->name);
            char where[64];
            if (c.source[i] == CLI_FROM_FILE)
                snprintf(where, sizeof where, "line %d", c.line[i]);
            else
                snprintf(where, sizeof where, "%s",
                         c.source[i] == CLI_FROM_ARGV ? "command line"
                         : v                          ? "default"
                                                      : s->def_doc ? s->def_doc : "not set");
            char redacted[4096];
            if (v && !strcmp(s->name, "db"))
                v = pg_redact(v, redacted, sizeof redacted);
            if (v)
                printf("%s = %s", s->key, v);
            else
                printf("# %s =", s->key);
            printf("    # %s\n", where);
        }
        for (int i = 0; i < c.n_flavors; i++) {
            const struct flavor *f = &c.flavors[i];
            printf("\n[flavor %s]\nname = %s\nvcpus = %d\nram_mb = %lld\ndisk_gb = %lld\n",
                   f->id, f->name, f->vcpus, (long long)f->ram_mb, (long long)f->disk_gb);
        }
        if (c.n_flavors == 0)
            puts("\n# [flavor ID]: none; Nova's classic set is built in (1 m1.tiny, 2 m1.small, "
                 "3 m1.medium, 4 m1.large, 5 m1.xlarge)");
        const char *db = cli_db_path(&c);
        struct stat st;
        if (!pg_is_conninfo(db) && stat(db, &st) != 0)
            fprintf(stderr, "attachd: config check: note: the database %s does not exist yet "
                    "(attachd serve or attachd db migrate creates it)\n", db);
    }
    if (status == CLI_OK)
        fprintf(stderr, "attachd: configuration %s is valid\n",
                c.config_path ? c.config_path : "(defaults)");
    cli_done(&c);
    return status;
}
