/* resources.c: `server add|del` and `volume add|del`. Each runs the core's
 * own create or delete, as an admin of the account, so that the CLI and the
 * API change things by the same rules; with the libvirt driver a server is
 * an existing domain (--domain) and a volume is a file the driver makes in
 * the volume directory, or a file or block device adopted as it is
 * (--path, its size read from it). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "driver/driver.h"
#include "store/store.h"
#include "util/id.h"

#define GIB ((int64_t)1 << 30)

struct add_job {
    const char *account_key;
    struct server_spec server;
    struct volume_spec volume;
    bool is_volume;
    const char *domain_key;     /* server add --domain */
    struct driver_domain domain;
};

/* With a driver: the domain to bind, or the storage to adopt. */
static int prepare(struct add_job *j, struct driver *d)
{
    struct driver_error de;
    if (!j->is_volume) {
        if (j->domain_key && !d)
            return cli_error("server add: --domain needs --driver libvirt");
        if (!j->domain_key && d)
            return cli_error("server add: with the libvirt driver a server is a virtual "
                             "machine: --domain NAME|UUID is required");
        if (!d)
            return 0;
        enum driver_rc rc = d->ops->domain_lookup(d, j->domain_key, &j->domain, &de);
        if (rc == DRIVER_NOT_FOUND)
            return cli_error("server add: no domain \"%s\" on the hypervisor", j->domain_key);
        if (rc != DRIVER_OK) {
            fprintf(stderr, "attachd: server add: %s\n", de.message);
            return 1;
        }
        j->server.domain = &j->domain;
        return 0;
    }
    if (!j->volume.path)
        return 0;
    if (!d)
        return cli_error("volume add: --path needs --driver libvirt");
    static char real[PATH_MAX];
    if (!realpath(j->volume.path, real))
        return cli_error("volume add: --path %s: %s", j->volume.path, strerror(errno));
    int64_t bytes;
    bool block;
    if (d->ops->volume_probe(d, real, &bytes, &block, &de) != DRIVER_OK)
        return cli_error("volume add: --path %s: %s", real, de.message);
    if (bytes < GIB)
        return cli_error("volume add: --path %s is smaller than 1 GiB", real);
    j->volume.path = real;
    j->volume.size = bytes / GIB;       /* whole GiB, as volumes are sized */
    return 0;
}

static int run_add(struct cli *c, struct add_job *j, const struct hv_settings *hv)
{
    bool failed;
    struct driver *d = cli_open_driver(hv, &failed);
    if (failed)
        return 1;
    int status = prepare(j, d);
    struct store *s = status == 0 ? cli_open_store_at(c, false, &status) : NULL;
    struct core *core = s ? cli_core_new(c, s) : NULL;
    if (status == 0 && !core)
        status = CLI_FAILED;
    struct arena ar;
    arena_init(&ar);
    if (core && d) {
        struct core_options o;
        char err[256];
        cli_core_options(hv, false, &o);
        if (!core_start_driver(core, d, &o, err, sizeof err)) {
            fprintf(stderr, "attachd: %s: %s\n", c->command, err);
            status = 1;
        }
    }
    struct account a;
    struct store_conn *r = core && status == 0 ? store_reader(s) : NULL;
    enum store_rc rc = r ? store_account_get(r, &ar, j->account_key, &a) : STORE_ERROR;
    if (status == 0 && rc == STORE_NOTFOUND) {
        status = cli_error("%s: unknown account \"%s\"", c->command, j->account_key);
    } else if (status == 0 && rc == STORE_OK) {
        struct core_ctx ctx = {.core = core, .arena = &ar, .scope = NULL, .account = a.id,
                               .home = a.id, .user_id = "attachd-cli", .admin = true,
                               .version = 1};
        struct core_error err;
        struct server srv;
        struct volume vol;
        struct core_sync sync;
        core_sync_init(&sync, &ctx);
        if (j->is_volume)
            core_volume_create(&sync.op, &j->volume, &vol);
        else
            core_server_create(&sync.op, &j->server, &srv);
        if (!core_sync_wait(&sync, &err)) {
            status = err.code == CORE_CONFLICT ? cli_error("%s: %s", c->command, err.message) : 1;
            if (err.code != CORE_CONFLICT)
                fprintf(stderr, "attachd: %s: %s\n", c->command, err.message);
        } else if (j->is_volume && !strcmp(vol.status, "error")) {
            fprintf(stderr, "attachd: volume add: volume %s is in error: its file could not "
                    "be made (see above)\n", vol.id);
            status = 1;
        } else {
            printf("%s\n", j->is_volume ? vol.id : srv.id);
        }
    } else if (status == 0) {
        status = 1;
    }
    arena_release(&ar);
    core_free(core);
    driver_close(d);
    store_close(s);
    return status;
}

int cmd_server_add(int argc, char **argv)
{
    static const char *const names[] = {"account", "id", "name", "domain", "db",
                                        CLI_DRIVER_OPTIONS, NULL};
    struct cli c = {.command = "server add", .names = names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    struct add_job j = {.account_key = cli_get(&c, "account"),
                        .domain_key = cli_get(&c, "domain")};
    j.server = (struct server_spec){.id = cli_get(&c, "id"), .name = cli_get(&c, "name")};
    struct hv_settings hv;
    int status = 2;
    if (!j.account_key || !j.server.name)
        cli_error("server add: --account and --name are required");
    else if (j.server.id && !id_valid(j.server.id, strlen(j.server.id)))
        cli_error("server add: --id must be 1-255 characters of A-Z a-z 0-9 . _ ~ : -");
    else if (!cli_name_ok(j.server.name))
        cli_error("server add: --name must be 1-255 printable characters");
    else if (cli_hv_settings(&c, &hv))
        status = run_add(&c, &j, &hv);
    cli_done(&c);
    return status;
}

int cmd_volume_add(int argc, char **argv)
{
    static const char *const names[] = {"account", "id", "size", "name", "path", "db",
                                        CLI_DRIVER_OPTIONS, NULL};
    struct cli c = {.command = "volume add", .names = names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    struct add_job j = {.account_key = cli_get(&c, "account"), .is_volume = true};
    unsigned size = 0;
    j.volume = (struct volume_spec){.id = cli_get(&c, "id"), .name = cli_get(&c, "name"),
                                    .path = cli_get(&c, "path")};
    struct hv_settings hv;
    int status = 2;
    if (!j.account_key || (!cli_get(&c, "size") && !j.volume.path))
        cli_error("volume add: --account and --size (or --path) are required");
    else if (cli_get(&c, "size") && j.volume.path)
        cli_error("volume add: --size and --path exclude each other (an adopted volume has "
                  "the size of its file or device)");
    else if (cli_get(&c, "size") && !cli_parse_uint(cli_get(&c, "size"), 1, 1024 * 1024, &size))
        cli_error("volume add: --size is a whole number of GiB, 1 or more");
    else if (j.volume.id && !id_valid(j.volume.id, strlen(j.volume.id)))
        cli_error("volume add: --id must be 1-255 characters of A-Z a-z 0-9 . _ ~ : -");
    else if (j.volume.name && !cli_name_ok(j.volume.name))
        cli_error("volume add: --name must be 1-255 printable characters");
    else if (cli_hv_settings(&c, &hv)) {
        j.volume.size = size;
        status = run_add(&c, &j, &hv);
    }
    cli_done(&c);
    return status;
}

/* ---- delete ------------------------------------------------------------------------- */

/* server del ID / volume del ID: the core's delete, as an admin, waiting
 * for the hypervisor's confirmation as long as a detach may take. */
static int run_del(struct cli *c, bool volume)
{
    struct hv_settings hv;
    if (!cli_hv_settings(c, &hv))
        return CLI_USAGE;
    bool failed;
    struct driver *d = cli_open_driver(&hv, &failed);
    if (failed)
        return CLI_FAILED;
    int status = CLI_OK;
    struct store *s = cli_open_store_at(c, false, &status);
    struct core *core = s ? cli_core_new(c, s) : NULL;
    if (s && !core)
        status = CLI_FAILED;
    if (core && d) {
        struct core_options o;
        char err[256];
        cli_core_options(&hv, false, &o);
        if (!core_start_driver(core, d, &o, err, sizeof err)) {
            fprintf(stderr, "attachd: %s: %s\n", c->command, err);
            status = CLI_FAILED;
        }
    }
    if (core && status == CLI_OK) {
        struct arena ar;
        arena_init(&ar);
        struct core_ctx ctx = {.core = core, .arena = &ar, .user_id = "attachd-cli",
                               .admin = true, .version = 1};
        struct core_sync sync;
        struct core_error err;
        const char *id = c->positional[0];
        core_sync_init(&sync, &ctx);
        sync.op.wait = hv.detach_timeout + 5;
        if (volume)
            core_volume_delete(&sync.op, id);
        else
            core_server_delete(&sync.op, id);
        if (!core_sync_wait(&sync, &err)) {
            bool usage = err.code == CORE_NOT_FOUND || err.code == CORE_CONFLICT ||
                         err.code == CORE_VOLUME_BUSY || err.code == CORE_BAD_REQUEST ||
                         err.code == CORE_DETACHING;
            fprintf(stderr, "attachd: %s %s: %s\n", c->command, id, err.message);
            status = usage ? CLI_USAGE : CLI_FAILED;
        } else if (sync.op.pending) {
            printf("%s %s is being deleted; the hypervisor has not confirmed yet (attachd "
                   "serve's reconciler finishes it)\n", volume ? "volume" : "server", id);
        } else {
            printf("deleted %s %s\n", volume ? "volume" : "server", id);
        }
        arena_release(&ar);
    }
    if (core)
        core_stop_driver(core);
    core_free(core);
    driver_close(d);
    store_close(s);
    return status;
}

int cmd_server_del(int argc, char **argv)
{
    static const char *const names[] = {"db", CLI_DRIVER_OPTIONS, NULL};
    struct cli c = {.command = "server del", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    int status = run_del(&c, false);
    cli_done(&c);
    return status;
}

int cmd_volume_del(int argc, char **argv)
{
    static const char *const names[] = {"db", CLI_DRIVER_OPTIONS, NULL};
    struct cli c = {.command = "volume del", .names = names};
    if (!cli_parse(&c, argc, argv, 1, 1))
        return CLI_USAGE;
    int status = run_del(&c, true);
    cli_done(&c);
    return status;
}
