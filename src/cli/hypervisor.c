/* hypervisor.c: the hypervisor settings every command that needs them
 * shares (serve, server add, volume add, check), the same on the command
 * line and in the config file's [driver] and [volumes] sections, and the
 * `check` command. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "driver/driver.h"

bool cli_absolute_dir(const char *dir, char out[4096])
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
    return realpath(buf, out) != NULL;
}

bool cli_hv_settings(const struct cli *c, struct hv_settings *hv)
{
    /* the values were checked against the option table when parsed */
    *hv = (struct hv_settings){.kind = cli_get(c, "driver"), .uri = cli_get(c, "libvirt-uri"),
                               .disk_bus = strcmp(cli_get(c, "disk-bus"), "virtio") ? BUS_SCSI
                                                                                   : BUS_VIRTIO,
                               .detach_timeout = cli_uint(c, "detach-timeout"),
                               .hostway_detach_wait = cli_uint(c, "hostway-detach-wait"),
                               .reconcile_interval = cli_uint(c, "reconcile-interval"),
                               .shutdown_timeout = cli_uint(c, "shutdown-timeout"),
                               .virt = cli_virt(cli_get(c, "virt-type"))};
    if (strcmp(hv->kind, "libvirt") != 0)
        return true;
    static const struct { const char *option, *what; size_t at; } dirs[] = {
        {"volume-dir", "volume", offsetof(struct hv_settings, volume_dir)},
        {"instance-dir", "instance", offsetof(struct hv_settings, instance_dir)},
    };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        const char *dir = cli_get(c, dirs[i].option);
        if (!cli_absolute_dir(dir, (char *)hv + dirs[i].at)) {
            cli_error("%s: cannot make the %s directory %s: %s", c->command, dirs[i].what, dir,
                      strerror(errno));
            return false;
        }
    }
    /* the owner of the domains this database's servers are: its path, whole */
    const char *db = cli_get(c, "db");
    char cwd[4096] = "";
    if (db[0] != '/' && !getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    snprintf(hv->owner, sizeof hv->owner, "%s%s%s", cwd, cwd[0] ? "/" : "", db);
    return true;
}

int cli_virt(const char *name)
{
    return !strcmp(name, "kvm") ? VIRT_KVM : !strcmp(name, "qemu") ? VIRT_QEMU : VIRT_AUTO;
}

struct driver *cli_open_driver(const struct hv_settings *hv, bool *failed)
{
    *failed = false;
    if (!strcmp(hv->kind, "none"))
        return NULL;
    struct driver_options o = {.kind = hv->kind, .uri = hv->uri, .volume_dir = hv->volume_dir,
                               .bus = (enum driver_bus)hv->disk_bus,
                               .instance_dir = hv->instance_dir,
                               .virt = (enum driver_virt)hv->virt, .owner = hv->owner};
    char err[512];
    struct driver *d = driver_open(&o, err, sizeof err);
    if (!d) {
        fprintf(stderr, "attachd: %s\n", err);
        *failed = true;
    }
    return d;
}

void cli_core_options(const struct hv_settings *hv, bool daemon, struct core_options *o)
{
    /* Nova asks a detach again a few times within its timeout */
    *o = (struct core_options){.bus = (enum driver_bus)hv->disk_bus,
                               .detach_timeout = (int)hv->detach_timeout, .detach_attempts = 4,
                               .reconcile = daemon,
                               .reconcile_interval = (int)hv->reconcile_interval,
                               .shutdown_timeout = (int)hv->shutdown_timeout, .workers = 4};
}

/* ---- check ------------------------------------------------------------------------ */

static void print_disagreement(void *cls, const struct core_disagreement *d)
{
    int *n = cls;
    (*n)++;
    printf("server %s%s%s: %s\n", d->server ? d->server : "-", d->volume ? " volume " : "",
           d->volume ? d->volume : "", d->what);
}

int cmd_check(int argc, char **argv)
{
    static const char *const names[] = {"db", CLI_DRIVER_OPTIONS, NULL};
    struct cli c = {.command = "check", .names = names};
    if (!cli_parse(&c, argc, argv, 0, 0))
        return CLI_USAGE;
    struct hv_settings hv;
    int status = CLI_USAGE;
    struct driver *d = NULL;
    struct store *s = NULL;
    struct core *core = NULL;
    if (!cli_hv_settings(&c, &hv))
        goto out;
    /* the store first, so that a wrong --db is a usage error whatever the driver */
    int open_status;
    s = cli_open_store_at(&c, false, &open_status);
    if (!s) {
        status = open_status == CLI_USAGE ? CLI_USAGE : 3;
        goto out;
    }
    status = 3;
    bool failed;
    d = cli_open_driver(&hv, &failed);
    if (failed)
        goto out;
    if (!d) {
        puts("the none driver keeps no hypervisor: nothing to compare");
        status = 0;
        goto out;
    }
    core = cli_core_new(&c, s);
    if (core) {
        struct core_options o;
        int disagreements = 0;
        cli_core_options(&hv, false, &o);
        core_set_driver(core, d, &o);
        if (!core_reconcile(core, print_disagreement, &disagreements))
            fprintf(stderr, "attachd: check: the hypervisor could not be asked (see above)\n");
        else
            status = disagreements ? 1 : 0;
        if (status == 0)
            puts("the store and the hypervisor agree");
    }
out:
    core_free(core);
    driver_close(d);
    store_close(s);
    cli_done(&c);
    return status;
}
