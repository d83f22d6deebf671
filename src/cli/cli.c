/* cli.c: option parsing and dispatch.
 *
 * `--name value` and `--name=value` both work, anywhere after the command
 * words. An option not given on the command line comes from the config
 * file, from the section and key the option table (options.c) names, e.g.
 * `max_per_ip` in [serve]; the command line wins. The whole file is checked
 * whatever the command, so that a typo is an error (naming the file and the
 * line) rather than a setting silently ignored.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static const char usage[] =
    "usage: attachd COMMAND [OPTIONS]\n"
    "\n"
    "attachd serves the Hostway volume-attachment API and the OpenStack Compute\n"
    "/v2.1 API over one SQLite or PostgreSQL database. With --driver libvirt it\n"
    "attaches volumes for real: servers are libvirt domains, volumes are files\n"
    "hot-plugged into them; with --driver none (the default) it records state only.\n"
    "\n"
    "commands:\n"
    "  serve [--listen ADDR:PORT] [--db PATH] [--threads N]\n"
    "        [--timeout SECONDS] [--header-timeout SECONDS]\n"
    "        [--max-connections N] [--max-per-ip N] [--synchronous full|normal]\n"
    "        [--tls-cert FILE --tls-key FILE] [--public-url URL] [--trusted-proxy ADDRS]\n"
    "        [--metrics-listen ADDR:PORT] [--log-format text|json]\n"
    "        [--demo] [--demo-image NAME] [--standby] [--hypervisor-lease SECONDS]\n"
    "        [HYPERVISOR OPTIONS]\n"
    "      run the API server (defaults: 127.0.0.1:8774, the database below, one HTTP\n"
    "      thread per core, 30 s, 10 s, 1024 connections, 64 per client address, full).\n"
    "      --timeout: seconds of silence, and for a whole request body; --header-timeout:\n"
    "      seconds for a request head from its first byte. At --max-connections a new\n"
    "      connection closes the oldest one without a whole request head, else the\n"
    "      kept-alive one idle longest, else is refused. The default cap shrinks to\n"
    "      what the open-files limit allows; an explicit one that does not fit is a\n"
    "      usage error.\n"
    "      --tls-cert/--tls-key: HTTPS only (TLS 1.2 and 1.3). --public-url: the base of\n"
    "      links in answers; else the scheme and Host the client used, or what a\n"
    "      --trusted-proxy says in X-Forwarded-Proto/-Host. GET /healthcheck needs no\n"
    "      credentials; GET /metrics answers admins, and anyone on --metrics-listen.\n"
    "      SIGTERM or SIGINT: finish the requests in flight and exit 0; SIGHUP: read the\n"
    "      TLS certificate and key again. Under systemd (Type=notify) it reports\n"
    "      readiness and keeps the watchdog.\n"
    "      --demo creates a demo account and user on first start, prints them, and\n"
    "      gives the account the Hostway example's server and volume, attached (with\n"
    "      --driver libvirt the server is a VM created from the image --demo-image,\n"
    "      demo-guest, with the smallest flavor).\n"
    "      With --driver libvirt on PostgreSQL one serve drives the hypervisor, under a\n"
    "      lease (default 10 s); another refuses to start, or with --standby waits\n"
    "      without serving and takes over once the first is gone (exit status 75: the\n"
    "      lease ran out; docs/scale-out.md).\n"
    "  config check [--config FILE] [--quiet]\n"
    "      check a configuration file (every section, key and value) and print the\n"
    "      effective configuration (--quiet: only whether it is valid; a database\n"
    "      password shows as ***); exit 0 when it is valid, 2 when not.\n"
    "  config reference [--format markdown|man]\n"
    "      print every configuration key with its option, values and default.\n"
    "  db migrate [--db PATH]\n"
    "      create or upgrade the database schema.\n"
    "  db backup FILE [--db PATH]\n"
    "      copy the database, while attachd serves it, into FILE (one consistent\n"
    "      snapshot, with every change committed before it began).\n"
    "  db restore FILE [--db PATH]\n"
    "      put the backup FILE in place of the database; refused while a daemon\n"
    "      serves it (stop attachd first).\n"
    "  account add [--id ID] NAME\n"
    "      create an account; prints its id (32 hex digits unless --id).\n"
    "  account quota ACCOUNT [--instances N] [--cores N] [--ram MB] [--volumes N]\n"
    "        [--gigabytes GB]\n"
    "      set an account's quotas (-1: no limit; \"default\": Nova's and Cinder's\n"
    "      defaults, 10 instances, 20 cores, 51200 MB, 10 volumes, 1000 GB), then show\n"
    "      them with what the account uses.\n"
    "  account list | account show ACCOUNT | account del ACCOUNT\n"
    "      list the accounts; show one with its quotas and usage; delete one that\n"
    "      has no users, servers or volumes left.\n"
    "  user add --account ACCOUNT --role member|admin USERNAME\n"
    "      create a user; the password is read from standard input (one line).\n"
    "  user passwd USERNAME      set a new password, read from standard input.\n"
    "  user del USERNAME         delete a user.\n"
    "  user list [--account ACCOUNT] | user show USERNAME\n"
    "  server add --account ACCOUNT [--id ID] --name NAME [--domain NAME|UUID]\n"
    "        [HYPERVISOR OPTIONS]\n"
    "      create a server; prints its id. With --driver libvirt it is an existing\n"
    "      domain (--domain is required; the id defaults to the domain's UUID).\n"
    "  server list [--account ACCOUNT] | server show ID\n"
    "  server del ID [HYPERVISOR OPTIONS]\n"
    "      delete a server, as DELETE /servers/ID does (its volumes are detached).\n"
    "  volume add --account ACCOUNT [--id ID] (--size GB | --path FILE) [--name NAME]\n"
    "        [HYPERVISOR OPTIONS]\n"
    "      create a volume; prints its id. With --driver libvirt it is a sparse file\n"
    "      in the volume directory, or --path adopts a file or block device (its\n"
    "      size read from it; never deleted).\n"
    "  volume list [--account ACCOUNT] | volume show ID\n"
    "  volume del ID [HYPERVISOR OPTIONS]\n"
    "      delete a volume that is not attached.\n"
    "  image add --name NAME --file FILE [--id ID] [--image-dir DIR]\n"
    "        [--kernel FILE [--initrd FILE] [--cmdline TEXT]]\n"
    "      add an image servers can be made from (a raw or qcow2 disk, the format\n"
    "      read from the file); the file is copied into the image directory\n"
    "      (default %s). --kernel, --initrd, --cmdline: a kernel booted\n"
    "      directly, with the image as its disk. Prints the image's id.\n"
    "  image list | image show ID|NAME\n"
    "  image del ID|NAME\n"
    "      delete an image no server was made from, and its files.\n"
    "  check [HYPERVISOR OPTIONS]\n"
    "      compare the store with the hypervisor and print every disagreement;\n"
    "      changes nothing. Exit status 0: they agree, 1: they do not, 3: the store\n"
    "      or the hypervisor could not be asked.\n"
    "\n"
    "list and show take --format table|json (default table).\n"
    "\n"
    "HYPERVISOR OPTIONS (config sections [driver] and [volumes]):\n"
    "  --driver none|libvirt          [driver] kind (default none)\n"
    "  --libvirt-uri URI              [driver] uri (default qemu:///system)\n"
    "  --volume-dir DIR               [volumes] dir (default " "%s" ")\n"
    "  --disk-bus scsi|virtio         [driver] disk_bus (default scsi)\n"
    "  --detach-timeout SECONDS       [driver] detach_timeout (default 20)\n"
    "  --hostway-detach-wait SECONDS  [driver] hostway_detach_wait (default 20)\n"
    "  --reconcile-interval SECONDS   [driver] reconcile_interval (default 60)\n"
    "  --instance-dir DIR             [driver] instance_dir (default %s): the root\n"
    "                                 disks and console logs of the servers it creates\n"
    "  --virt-type auto|kvm|qemu      [driver] virt_type (default auto: KVM if usable)\n"
    "  --shutdown-timeout SECONDS     [driver] shutdown_timeout (default 60)\n"
    "\n"
    "every command also takes:\n"
    "  --db PATH        the database (default %s): an SQLite file, or a PostgreSQL\n"
    "                   connection string (postgresql://... or key=value); commands\n"
    "                   other than serve and db migrate refuse a file that does not exist\n"
    "  --config FILE    an INI file (%s): [db] path, [serve] listen/threads/timeout/\n"
    "                   header_timeout/max_connections/max_per_ip/synchronous/public_url/\n"
    "                   trusted_proxy/demo/demo_domain, [tls] cert/key, [metrics] listen,\n"
    "                   [log] format, and the hypervisor options above; an unknown\n"
    "                   section or key, a key given twice or a bad value is an error.\n"
    "                   `attachd config reference` lists every key.\n"
    "  --help           this text\n"
    "\n"
    "ACCOUNT is an account id or name. Exit status: 0 done; 1 failed (the database,\n"
    "the hypervisor or the system failed); 2 usage error: an unknown command, option\n"
    "or config key, a bad value, a database that does not exist, an unknown account,\n"
    "user, server or volume, or a change refused as things stand (for check, as\n"
    "above). Errors are one line on standard error.\n";

/* The installed build's configuration file, read when --config is not
 * given; a development build has none. */
#ifdef ATTACHD_DEFAULT_CONFIG
static const char *const default_config = ATTACHD_DEFAULT_CONFIG;
#else
static const char *const default_config = NULL;
#endif

static void print_usage(FILE *f)
{
    const struct cli_spec *db = cli_spec("db"), *vd = cli_spec("volume-dir"),
                          *id = cli_spec("image-dir"), *inst = cli_spec("instance-dir");
    char conf[300];
    if (default_config)
        snprintf(conf, sizeof conf, "default %s when it exists", default_config);
    else
        snprintf(conf, sizeof conf, "none by default");
    fprintf(f, usage, id->def, vd->def, inst->def, db->def, conf);
}

int cli_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "attachd: %s\n", msg);
    return CLI_USAGE;
}

static int spec_index(const char *name, size_t len)
{
    for (int i = 0; cli_specs[i].name; i++)
        if (strlen(cli_specs[i].name) == len && !strncmp(cli_specs[i].name, name, len))
            return i;
    return -1;
}

static bool takes(const struct cli *c, int index)
{
    for (const char *const *n = c->names; *n; n++)
        if (!strcmp(*n, cli_specs[index].name))
            return true;
    return false;
}

/* Set option i from where it came, in its normal form. */
static void set(struct cli *c, int i, const char *value, char *norm, enum cli_source src,
                int line)
{
    free(c->owned[i]);
    c->owned[i] = norm;
    c->value[i] = norm ? norm : value;
    c->source[i] = src;
    c->line[i] = line;
}

/* The spec a config entry sets: by section and key, or by an alias kept
 * from before the table ([serve] db, and `path` before any section, for
 * the database). -1: none; *section_known says whether the section is. */
static int entry_spec(const struct config_entry *e, bool *section_known)
{
    *section_known = !e->section[0];
    if ((!strcmp(e->section, "serve") && !strcmp(e->key, "db")) ||
        (!e->section[0] && !strcmp(e->key, "path"))) {
        *section_known = true;
        return spec_index("db", 2);
    }
    for (int i = 0; cli_specs[i].name; i++) {
        if (!cli_specs[i].section || strcmp(cli_specs[i].section, e->section) != 0)
            continue;
        *section_known = true;
        if (!strcmp(cli_specs[i].key, e->key))
            return i;
    }
    return -1;
}

/* Check every entry of the file and take the values of the command's
 * options that the command line did not give. */
static bool apply_config(struct cli *c, const char *path)
{
    char err[512];
    if (config_load(&c->config, path, err, sizeof err) < 0) {
        cli_error("%s", err);
        return false;
    }
    c->config_path = path;
    for (int k = 0; k < c->config.n_sections; k++) {
        const struct config_section *sec = &c->config.sections[k];
        bool known = cli_flavor_section(sec->name);
        for (int i = 0; cli_specs[i].name && !known; i++)
            known = cli_specs[i].section && !strcmp(cli_specs[i].section, sec->name);
        if (!known) {
            cli_error("%s:%d: unknown section [%s] (see attachd config reference)", path,
                      sec->line, sec->name);
            return false;
        }
    }
    int first_line[CLI_MAX_SPECS] = {0};
    for (int k = 0; k < c->config.count; k++) {
        const struct config_entry *e = &c->config.entries[k];
        bool section_known;
        if (cli_flavor_section(e->section))
            continue;           /* cli_read_flavors' */
        int i = entry_spec(e, &section_known);
        if (i < 0 && !section_known) {
            cli_error("%s:%d: unknown section [%s] (see attachd config reference)", path,
                      e->line, e->section);
            return false;
        }
        if (i < 0 && !e->section[0]) {
            cli_error("%s:%d: \"%s\" is outside any section (see attachd config reference)",
                      path, e->line, e->key);
            return false;
        }
        if (i < 0) {
            cli_error("%s:%d: unknown key \"%s\" in section [%s] (see attachd config "
                      "reference)", path, e->line, e->key, e->section);
            return false;
        }
        const struct cli_spec *s = &cli_specs[i];
        if (first_line[i]) {
            cli_error("%s:%d: [%s] %s is given a second time (first on line %d)", path, e->line,
                      s->section, s->key, first_line[i]);
            return false;
        }
        first_line[i] = e->line;
        char *norm;
        const char *why = cli_check_value(s, e->value, &norm);
        if (why) {
            cli_error("%s:%d: [%s] %s = \"%s\": %s", path, e->line, s->section, s->key,
                      e->value, why);
            return false;
        }
        if (takes(c, i) && c->source[i] != CLI_FROM_ARGV)
            set(c, i, e->value, norm, CLI_FROM_FILE, e->line);
        else
            free(norm);
    }
    return cli_read_flavors(c, path);
}

static bool parse(struct cli *c, int argc, char **argv, int min_pos, int max_pos);

/* A command returns at once when parsing fails: what was kept is freed here. */
bool cli_parse(struct cli *c, int argc, char **argv, int min_pos, int max_pos)
{
    if (parse(c, argc, argv, min_pos, max_pos))
        return true;
    cli_done(c);
    return false;
}

static bool parse(struct cli *c, int argc, char **argv, int min_pos, int max_pos)
{
    const char *config = NULL;
    for (const char *const *n = c->names; *n; n++) {
        if (!cli_spec(*n)) {        /* a command naming an option the table lacks */
            cli_error("internal error: option --%s is not in the option table", *n);
            abort();
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (c->n_positional >= max_pos) {
                cli_error("%s: unexpected argument \"%s\"", c->command, a);
                return false;
            }
            c->positional[c->n_positional++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 4 && !strncmp(name, "help", 4)) {
            print_usage(stdout);
            exit(CLI_OK);
        }
        bool is_config = len == 6 && !strncmp(name, "config", 6);
        int idx = is_config ? -1 : spec_index(name, len);
        if (!is_config && (idx < 0 || !takes(c, idx))) {
            cli_error("%s: unknown option --%.*s (see attachd --help)", c->command, (int)len,
                      name);
            return false;
        }
        const struct cli_spec *s = is_config ? NULL : &cli_specs[idx];
        const char *value = NULL;
        if (is_config || s->type != CLI_FLAG) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                cli_error("%s: option --%.*s needs a value", c->command, (int)len, name);
                return false;
            }
        } else if (eq) {
            cli_error("%s: option --%.*s takes no value", c->command, (int)len, name);
            return false;
        } else {
            value = "true";
        }
        if (is_config) {
            config = value;
            continue;
        }
        char *norm;
        const char *why = cli_check_value(s, value, &norm);
        if (why) {
            cli_error("%s: --%s \"%s\": %s", c->command, s->name, value, why);
            return false;
        }
        set(c, idx, value, norm, CLI_FROM_ARGV, 0);
    }
    if (c->n_positional < min_pos) {
        cli_error("%s: missing argument (see attachd --help)", c->command);
        return false;
    }
    /* The installed build reads its configuration file by default, when
     * there is one; a development build has none. */
#ifdef ATTACHD_DEFAULT_CONFIG
    if (!config && access(default_config, F_OK) == 0)
        config = default_config;
#endif
    return !config || apply_config(c, config);
}

const char *cli_get(const struct cli *c, const char *name)
{
    int i = spec_index(name, strlen(name));
    if (i < 0)
        return NULL;
    return c->value[i] ? c->value[i] : cli_specs[i].def;
}

bool cli_given(const struct cli *c, const char *name)
{
    int i = spec_index(name, strlen(name));
    return i >= 0 && c->value[i] != NULL;
}

bool cli_flag(const struct cli *c, const char *name)
{
    const char *v = cli_get(c, name);
    return v && !strcmp(v, "true");
}

unsigned cli_uint(const struct cli *c, const char *name)
{
    unsigned v = 0;
    const char *s = cli_get(c, name);
    if (s)
        cli_parse_uint(s, 0, ~0u, &v);
    return v;
}

void cli_done(struct cli *c)
{
    for (int i = 0; i < CLI_MAX_SPECS; i++) {
        free(c->owned[i]);
        c->owned[i] = NULL;
    }
    config_free(&c->config);
}

int cli_main(int argc, char **argv)
{
    static const struct {
        const char *word1, *word2;
        int (*fn)(int, char **);
    } commands[] = {
        {"serve", NULL, cmd_serve},
        {"check", NULL, cmd_check},
        {"config", "check", cmd_config_check},
        {"config", "reference", cmd_config_reference},
        {"db", "migrate", cmd_db_migrate},
        {"db", "backup", cmd_db_backup},
        {"db", "restore", cmd_db_restore},
        {"account", "add", cmd_account_add},
        {"account", "quota", cmd_account_quota},
        {"account", "list", cmd_account_list},
        {"account", "show", cmd_account_show},
        {"account", "del", cmd_account_del},
        {"user", "add", cmd_user_add},
        {"user", "passwd", cmd_user_passwd},
        {"user", "del", cmd_user_del},
        {"user", "list", cmd_user_list},
        {"user", "show", cmd_user_show},
        {"server", "add", cmd_server_add},
        {"server", "list", cmd_server_list},
        {"server", "show", cmd_server_show},
        {"server", "del", cmd_server_del},
        {"volume", "add", cmd_volume_add},
        {"volume", "list", cmd_volume_list},
        {"volume", "show", cmd_volume_show},
        {"volume", "del", cmd_volume_del},
        {"image", "add", cmd_image_add},
        {"image", "list", cmd_image_list},
        {"image", "show", cmd_image_show},
        {"image", "del", cmd_image_del},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("attachd " ATTACHD_VERSION);
        return CLI_OK;
    }
    /* Commands other than serve keep stderr for their one-line errors. */
    if (strcmp(argv[1], "serve") != 0)
        log_set_level(LOG_WARN);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].word1) != 0)
            continue;
        if (!commands[i].word2)
            return commands[i].fn(argc - 2, argv + 2);
        if (argc > 2 && !strcmp(argv[2], commands[i].word2))
            return commands[i].fn(argc - 3, argv + 3);
    }
    if (argc > 2)
        return cli_error("unknown command \"%s %s\" (see attachd --help)", argv[1], argv[2]);
    return cli_error("unknown command \"%s\" (see attachd --help)", argv[1]);
}
