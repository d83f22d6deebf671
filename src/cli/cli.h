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
};

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

#endif
