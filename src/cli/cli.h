/* cli.h: the command line. One binary, subcommands; every option can also
 * come from an INI file given with --config (see cli.c for the mapping).
 * Errors are one line on stderr and exit status 2. */
#ifndef ATTACHD_CLI_H
#define ATTACHD_CLI_H

#include <stdbool.h>

#include "util/config.h"

#define CLI_MAX_POSITIONAL 4

struct cli_option {
    const char *name;           /* without the leading "--" */
    bool takes_value;
    const char *value;          /* after parsing: from argv, the config, or NULL */
    /* where the config file has it; NULL: the command's section, and the
     * name with dashes as underscores */
    const char *section, *key;
};

/* The options of every command that works with the hypervisor, and where
 * the config file has them (hypervisor.c reads them). */
#define CLI_DRIVER_OPTIONS                                                            \
    {"driver", true, NULL, "driver", "kind"}, {"libvirt-uri", true, NULL, "driver", "uri"}, \
    {"volume-dir", true, NULL, "volumes", "dir"},                                       \
    {"disk-bus", true, NULL, "driver", "disk_bus"},                                     \
    {"detach-timeout", true, NULL, "driver", "detach_timeout"},                         \
    {"hostway-detach-wait", true, NULL, "driver", "hostway_detach_wait"},               \
    {"reconcile-interval", true, NULL, "driver", "reconcile_interval"}

struct cli {
    const char *command;        /* "serve", "user add", ... */
    const char *section;        /* its config file section: "serve", "user", ... */
    struct cli_option *options; /* terminated by a NULL name */
    const char *positional[CLI_MAX_POSITIONAL];
    int n_positional;
    struct config config;
};

/* Parse argv (after the command words) into c. false: error printed. */
bool cli_parse(struct cli *c, int argc, char **argv, int min_pos, int max_pos);
const char *cli_get(const struct cli *c, const char *name);
bool cli_flag(const struct cli *c, const char *name);
/* A one-line error on stderr; returns 2, the exit status for usage errors. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_done(struct cli *c);

int cli_main(int argc, char **argv);

/* A whole number in [min, max]; a name of 1-255 printable characters. */
bool cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
bool cli_name_ok(const char *s);

struct store;
/* Open the store of a command's --db (create_dir: make its folder first). */
struct store *cli_open_store_at(const struct cli *c, bool create_dir);
#define cli_open_store(c) cli_open_store_at((c), false)

struct driver;
struct driver_options;
struct core_options;
/* The hypervisor settings of a command (hypervisor.c): false after a usage
 * error was printed. */
struct hv_settings {
    const char *kind;           /* "none" or "libvirt" */
    char volume_dir[4096];      /* absolute */
    const char *uri;
    int disk_bus;               /* enum driver_bus */
    unsigned detach_timeout, hostway_detach_wait, reconcile_interval;
};
bool cli_hv_settings(const struct cli *c, struct hv_settings *hv);
/* Open the driver (NULL for none, or after printing why it failed: *failed). */
struct driver *cli_open_driver(const struct hv_settings *hv, bool *failed);
void cli_core_options(const struct hv_settings *hv, bool daemon, struct core_options *o);

/* The subcommands (commands.c). */
int cmd_serve(int argc, char **argv);
int cmd_db_migrate(int argc, char **argv);
int cmd_account_add(int argc, char **argv);
int cmd_account_quota(int argc, char **argv);
int cmd_user_add(int argc, char **argv);
int cmd_user_passwd(int argc, char **argv);
int cmd_user_del(int argc, char **argv);
int cmd_server_add(int argc, char **argv);
int cmd_volume_add(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
