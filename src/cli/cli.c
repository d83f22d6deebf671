/* cli.c: option parsing and dispatch.
 *
 * `--name value` and `--name=value` both work, anywhere after the command
 * words. An option not given on the command line is looked up in the
 * --config file: --db as `path` in [db] (or before any section), else as
 * `db` in the command's section or in [serve]; any other option as its name
 * (dashes as underscores) in the section named after the command's first
 * word, e.g. `max_per_ip` in [serve]. The command line wins.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

static const char usage[] =
    "usage: attachd COMMAND [OPTIONS]\n"
    "\n"
    "attachd serves the Hostway volume-attachment API and the OpenStack Compute\n"
    "/v2.1 API over one SQLite database. With --driver libvirt it attaches volumes\n"
    "for real: servers are libvirt domains, volumes are files hot-plugged into them;\n"
    "with --driver none (the default) it records state only.\n"
    "\n"
    "commands:\n"
    "  serve [--listen ADDR:PORT] [--db PATH] [--threads N]\n"
    "        [--timeout SECONDS] [--header-timeout SECONDS]\n"
    "        [--max-connections N] [--max-per-ip N] [--synchronous full|normal]\n"
    "        [--demo] [--demo-domain NAME] [HYPERVISOR OPTIONS]\n"
    "      run the API server (defaults: 127.0.0.1:8774, data/attachd.db, one HTTP\n"
    "      thread per core, 30 s, 10 s, 1024 connections, 64 per client address, full).\n"
    "      --timeout: seconds of silence, and for a whole request body; --header-timeout:\n"
    "      seconds for a request head from its first byte. At --max-connections a new\n"
    "      connection closes the oldest one without a whole request head, else is\n"
    "      refused. The default cap shrinks to what the open-files limit allows; an\n"
    "      explicit one that does not fit is a usage error.\n"
    "      SIGTERM or SIGINT: finish the requests in flight and exit 0; SIGHUP: ignored.\n"
    "      --demo creates a demo account and user on first start, prints them, and\n"
    "      gives the account the seed page's server and volume, attached (with\n"
    "      --driver libvirt the server is the domain --demo-domain, attachd-demo).\n"
    "  db migrate [--db PATH]\n"
    "      create or upgrade the database schema.\n"
    "  account add [--id ID] NAME\n"
    "      create an account; prints its id (32 hex digits unless --id).\n"
    "  account quota ACCOUNT [--instances N] [--cores N] [--ram MB] [--volumes N]\n"
    "        [--gigabytes GB]\n"
    "      set an account's quotas (-1: no limit; \"default\": Nova's and Cinder's\n"
    "      defaults, 10 instances, 20 cores, 51200 MB, 10 volumes, 1000 GB), then show\n"
    "      them with what the account uses.\n"
    "  user add --account ACCOUNT --role member|admin USERNAME\n"
    "      create a user; the password is read from standard input (one line).\n"
    "  user passwd USERNAME      set a new password, read from standard input.\n"
    "  user del USERNAME         delete a user.\n"
    "  server add --account ACCOUNT [--id ID] --name NAME [--domain NAME|UUID]\n"
    "        [HYPERVISOR OPTIONS]\n"
    "      create a server; prints its id. With --driver libvirt it is an existing\n"
    "      domain (--domain is required; the id defaults to the domain's UUID).\n"
    "  volume add --account ACCOUNT [--id ID] (--size GB | --path FILE) [--name NAME]\n"
    "        [HYPERVISOR OPTIONS]\n"
    "      create a volume; prints its id. With --driver libvirt it is a sparse file\n"
    "      in the volume directory, or --path adopts a file or block device (its\n"
    "      size read from it; never deleted).\n"
    "  check [HYPERVISOR OPTIONS]\n"
    "      compare the store with the hypervisor and print every disagreement;\n"
    "      changes nothing. Exit status 0: they agree, 1: they do not, 3: the store\n"
    "      or the hypervisor could not be asked.\n"
    "\n"
    "HYPERVISOR OPTIONS (config sections [driver] and [volumes]):\n"
    "  --driver none|libvirt          [driver] kind (default none)\n"
    "  --libvirt-uri URI              [driver] uri (default qemu:///system)\n"
    "  --volume-dir DIR               [volumes] dir (default data/volumes)\n"
    "  --disk-bus scsi|virtio         [driver] disk_bus (default scsi)\n"
    "  --detach-timeout SECONDS       [driver] detach_timeout (default 20)\n"
    "  --hostway-detach-wait SECONDS  [driver] hostway_detach_wait (default 20)\n"
    "  --reconcile-interval SECONDS   [driver] reconcile_interval (default 60)\n"
    "\n"
    "every command also takes:\n"
    "  --db PATH        the database (default data/attachd.db)\n"
    "  --config FILE    an INI file: [db] path (or [serve] db), [serve] listen/threads/\n"
    "                   timeout/header_timeout/max_connections/max_per_ip/synchronous/demo,\n"
    "                   the hypervisor options above, and the options of the other\n"
    "                   commands under [account], [user], [server], [volume]\n"
    "  --help           this text\n"
    "\n"
    "ACCOUNT is an account id or name. Exit status: 0 done, 1 failed, 2 usage error\n"
    "(and for check, as above).\n";

int cli_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "attachd: %s\n", msg);
    return 2;
}

static struct cli_option *find(struct cli *c, const char *name, size_t len)
{
    for (struct cli_option *o = c->options; o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len))
            return o;
    return NULL;
}

bool cli_parse(struct cli *c, int argc, char **argv, int min_pos, int max_pos)
{
    const char *config = NULL;
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
            fputs(usage, stdout);
            exit(0);
        }
        bool is_config = len == 6 && !strncmp(name, "config", 6);
        struct cli_option *o = is_config ? NULL : find(c, name, len);
        if (!o && !is_config) {
            cli_error("%s: unknown option --%.*s", c->command, (int)len, name);
            return false;
        }
        const char *value = NULL;
        if (is_config || o->takes_value) {
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
        if (is_config)
            config = value;
        else
            o->value = value;
    }
    if (c->n_positional < min_pos) {
        cli_error("%s: missing argument (see attachd --help)", c->command);
        return false;
    }
    if (config) {
        char err[512];
        if (config_load(&c->config, config, err, sizeof err) < 0) {
            cli_error("%s", err);
            return false;
        }
        for (struct cli_option *o = c->options; o->name; o++) {
            if (o->value)
                continue;
            if (!strcmp(o->name, "db")) {
                const char *v = config_get(&c->config, "db", "path");
                if (!v)
                    v = config_get(&c->config, "", "path");
                if (!v)
                    v = config_get(&c->config, c->section, "db");
                if (!v)
                    v = config_get(&c->config, "serve", "db");
                o->value = v;
                continue;
            }
            char key[64];
            snprintf(key, sizeof key, "%s", o->key ? o->key : o->name);
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            o->value = config_get(&c->config, o->section ? o->section : c->section, key);
        }
    }
    return true;
}

const char *cli_get(const struct cli *c, const char *name)
{
    for (struct cli_option *o = c->options; o->name; o++)
        if (!strcmp(o->name, name))
            return o->value;
    return NULL;
}

bool cli_flag(const struct cli *c, const char *name)
{
    const char *v = cli_get(c, name);
    return v && (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"));
}

void cli_done(struct cli *c)
{
    config_free(&c->config);
}

int cli_main(int argc, char **argv)
{
    static const struct {
        const char *word1, *word2;
        int (*fn)(int, char **);
    } commands[] = {
        {"serve", NULL, cmd_serve},
        {"db", "migrate", cmd_db_migrate},
        {"account", "add", cmd_account_add},
        {"account", "quota", cmd_account_quota},
        {"user", "add", cmd_user_add},
        {"user", "passwd", cmd_user_passwd},
        {"user", "del", cmd_user_del},
        {"server", "add", cmd_server_add},
        {"volume", "add", cmd_volume_add},
        {"check", NULL, cmd_check},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("attachd " ATTACHD_VERSION);
        return 0;
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
