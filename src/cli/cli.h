/* cli.h: the command line. One binary, subcommands; every option an
 * operator sets once (the database, the listener, the hypervisor, TLS, ...)
 * can also come from an INI file (--config). One table (options.c) says, for
 * every option, its config section and key, the values it takes, its default
 * and what it means: the parser checks the command line and the file
 * against it, and `attachd config reference` prints it, which is where the
 * documentation's reference comes from.
 *
 * Exit status, everywhere: 0 done; 1 failed (the database, the hypervisor or
 * the system failed; the message says what); 2 the command cannot be done as
 * asked (unknown command, option or config key, a bad value, a database that
 * does not exist, an unknown account/user/server/volume, a change refused as
 * things stand). `check` adds its own (see --help). Errors are one line on
 * stderr. */
#ifndef ATTACHD_CLI_H
#define ATTACHD_CLI_H

#include <stdbool.h>

#include "core/core.h"
#include "util/config.h"

#define CLI_MAX_POSITIONAL 4
/* The exit statuses (see above). */
#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

enum cli_type {
    CLI_STRING,     /* any non-empty text */
    CLI_PATH,       /* a file or directory name */
    CLI_UINT,       /* a whole number in [min, max] */
    CLI_FLAG,       /* no value on the command line; true/false, yes/no, on/off, 1/0 in a file */
    CLI_ENUM,       /* one of `choices`, in any case */
    CLI_LISTEN,     /* ADDR:PORT or [ADDR6]:PORT, the port 1-65535 */
    CLI_URL,        /* http(s)://HOST[:PORT][/PATH] */
    CLI_ADDRS,      /* IP addresses or CIDR ranges, comma-separated */
};

struct cli_spec {
    const char *name;           /* the option, without the leading "--" */
    const char *section, *key;  /* where a config file has it; NULL: the command line only */
    enum cli_type type;
    unsigned min, max;          /* CLI_UINT */
    const char *choices;        /* CLI_ENUM: "full|normal" */
    const char *arg;            /* the value's name in the reference: "ADDR:PORT" */
    const char *def;            /* the default the commands apply, as a value; NULL: none */
    const char *def_doc;        /* the default as the reference shows it, when `def` is
                                 * computed or differs between builds */
    const char *help;           /* what it does, for the reference */
};

/* Every option (options.c), ending with a NULL name. */
extern const struct cli_spec cli_specs[];
#define CLI_MAX_SPECS 64
#define CLI_MAX_FLAVORS 256

enum cli_source { CLI_FROM_DEFAULT, CLI_FROM_ARGV, CLI_FROM_FILE };

struct cli {
    const char *command;        /* "serve", "user add", ... */
    const char *const *names;   /* the options the command takes, NULL-terminated */
    const char *positional[CLI_MAX_POSITIONAL];
    int n_positional;
    /* after parsing, by index in cli_specs: the value given (NULL: none)
     * and where it came from */
    const char *value[CLI_MAX_SPECS];
    enum cli_source source[CLI_MAX_SPECS];
    int line[CLI_MAX_SPECS];
    char *owned[CLI_MAX_SPECS];
    const char *config_path;    /* the file read, or NULL */
    struct config config;
    /* the file's [flavor ID] sections, in its order (strings in config) */
    struct flavor flavors[CLI_MAX_FLAVORS];
    int n_flavors;
};

/* Parse argv (after the command words) into c, and the config file (--config,
 * or the installed default when there is one): false after an error was
 * printed (exit status 2). Every key of the file is checked, whatever the
 * command: an unknown section or key, a key given twice, or a bad value is
 * an error naming the file and the line. */
bool cli_parse(struct cli *c, int argc, char **argv, int min_pos, int max_pos);
/* An option's value: as given, else its default (NULL when it has none). */
const char *cli_get(const struct cli *c, const char *name);
/* Was the option given (on the command line or in the file)? */
bool cli_given(const struct cli *c, const char *name);
bool cli_flag(const struct cli *c, const char *name);
/* A CLI_UINT option's value (its default when not given; 0 when none). */
unsigned cli_uint(const struct cli *c, const char *name);
/* A one-line error on stderr; returns 2, the exit status for usage errors. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_done(struct cli *c);
/* The spec of an option by name (NULL: none). */
const struct cli_spec *cli_spec(const char *name);

int cli_main(int argc, char **argv);

/* Is a config file's section one of its [flavor ID] sections? */
bool cli_flavor_section(const char *section);
/* Read the file's [flavor ID] sections into c->flavors (options.c): false
 * after an error naming the file and the line was printed. */
bool cli_read_flavors(struct cli *c, const char *path);

/* A whole number in [min, max]; a name of 1-255 printable characters. */
bool cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
bool cli_name_ok(const char *s);
/* Check a value against an option's type; NULL when it is fine (*norm
 * then holds its normal form, malloc'd, or NULL when it is the value as
 * given), else why not, e.g. "a whole number from 1 to 256". */
const char *cli_check_value(const struct cli_spec *s, const char *value, char **norm);

struct store;
/* A core over store with the configuration's flavors (NULL: out of memory). */
struct core *cli_core_new(const struct cli *c, struct store *store);
/* Open the store of a command's --db: the one place the CLI does. `serve`
 * (create: true) makes the database, its folder included, when there is
 * none; every other command refuses a database file that does not exist
 * (*status 2), so that a wrong --db never creates an empty one. NULL after
 * the reason was printed, with the exit status in *status. */
struct store *cli_open_store_at(const struct cli *c, bool create, int *status);
/* The database path a command uses. */
const char *cli_db_path(const struct cli *c);
/* mkdir -p DIR, then its absolute path into out: libvirt's QEMU opens the
 * files in it from elsewhere. */
bool cli_absolute_dir(const char *dir, char out[4096]);
/* Make the folders above a file, as a first start expects. */
void cli_make_parent(const char *path);
/* A flock(2) on the database file (backup.c): shared for serve, which holds
 * it while it runs (making the file, empty, if there is none), exclusive and
 * without waiting for db restore; its descriptor, or -1 with a reason. */
int cli_db_lock(const char *path, bool exclusive, char *err, int errlen);

struct driver;
struct driver_options;
struct core_options;
/* The hypervisor settings of a command (hypervisor.c): false after a usage
 * error was printed. */
struct hv_settings {
    const char *kind;           /* "none" or "libvirt" */
    char volume_dir[4096];      /* absolute */
    char instance_dir[4096];    /* absolute */
    char owner[4096];           /* the database's absolute path: whose domains */
    const char *uri;
    int disk_bus;               /* enum driver_bus */
    int virt;                   /* enum driver_virt */
    unsigned detach_timeout, hostway_detach_wait, reconcile_interval, shutdown_timeout;
};
/* The options of every command that works with the hypervisor. */
#define CLI_DRIVER_OPTIONS \
    "driver", "libvirt-uri", "volume-dir", "disk-bus", "detach-timeout", \
    "hostway-detach-wait", "reconcile-interval", "instance-dir", "virt-type", "shutdown-timeout"
bool cli_hv_settings(const struct cli *c, struct hv_settings *hv);
/* --virt-type's value as an enum driver_virt. */
int cli_virt(const char *name);
/* Open the driver (NULL for none, or after printing why it failed: *failed). */
struct driver *cli_open_driver(const struct hv_settings *hv, bool *failed);
void cli_core_options(const struct hv_settings *hv, bool daemon, struct core_options *o);

/* Output of the inspecting commands (--format table|json, show.c). */
struct cli_table;
struct cli_table *cli_table_new(const struct cli *c, const char *const *columns);
void cli_table_row(struct cli_table *t, const char *const *cells);
/* Print and free; for json, rows are objects of the columns' names. */
void cli_table_print(struct cli_table *t);
/* Print one record as "field  value" lines (or one JSON object). */
void cli_print_record(const struct cli *c, const char *const *columns, const char *const *cells);
/* A number as a cell. */
const char *cli_num(struct arena *ar, long long v);
/* Is --format table or json? False after saying it is not. */
bool cli_table_format_ok(const struct cli *c);

/* The subcommands. */
int cmd_serve(int argc, char **argv);           /* serve.c */
int cmd_db_migrate(int argc, char **argv);      /* commands.c */
int cmd_account_add(int argc, char **argv);
int cmd_account_quota(int argc, char **argv);
int cmd_user_add(int argc, char **argv);
int cmd_user_passwd(int argc, char **argv);
int cmd_user_del(int argc, char **argv);
int cmd_server_add(int argc, char **argv);      /* resources.c */
int cmd_volume_add(int argc, char **argv);
int cmd_server_del(int argc, char **argv);
int cmd_volume_del(int argc, char **argv);
int cmd_check(int argc, char **argv);           /* hypervisor.c */
int cmd_config_check(int argc, char **argv);    /* options.c */
int cmd_config_reference(int argc, char **argv);
int cmd_db_backup(int argc, char **argv);       /* backup.c */
int cmd_db_restore(int argc, char **argv);
int cmd_account_list(int argc, char **argv);    /* show.c */
int cmd_account_show(int argc, char **argv);
int cmd_account_del(int argc, char **argv);
int cmd_user_list(int argc, char **argv);
int cmd_user_show(int argc, char **argv);
int cmd_server_list(int argc, char **argv);
int cmd_server_show(int argc, char **argv);
int cmd_volume_list(int argc, char **argv);
int cmd_volume_show(int argc, char **argv);
/* An image by id, else by name: STORE_NOTFOUND when neither (images.c). */
enum store_rc cli_find_image(struct store_conn *r, struct arena *ar, const char *key,
                             struct image *out);
int cmd_image_add(int argc, char **argv);       /* images.c */
int cmd_image_del(int argc, char **argv);
int cmd_image_list(int argc, char **argv);
int cmd_image_show(int argc, char **argv);

#endif
