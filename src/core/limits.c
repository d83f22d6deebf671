/* limits.c: flavors and quotas. A server's size comes from its flavor;
 * an account may have so many servers, cores and MiB of RAM (Nova's quotas)
 * and so many volumes and gigabytes (Cinder's), checked in the transaction
 * that creates, so that concurrent creates cannot pass a limit together. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nova's classic flavors: the set when the configuration names none. */
static const struct flavor classic[] = {
    {"1", "m1.tiny", 1, 512, 1},
    {"2", "m1.small", 1, 2048, 20},
    {"3", "m1.medium", 2, 4096, 40},
    {"4", "m1.large", 4, 8192, 80},
    {"5", "m1.xlarge", 8, 16384, 160},
};

/* Nova's default quotas (instances, cores, ram) and Cinder's (volumes,
 * gigabytes). */
const struct quota core_default_quota = {10, 20, 50 * 1024, 10, 1000};

/* One block: the array, then the strings. Called before the core serves
 * (and by core_new and core_free), never while requests read the set. */
bool core_set_flavors(struct core *c, const struct flavor *f, int n)
{
    size_t size = (size_t)n * sizeof *f;
    for (int i = 0; i < n; i++)
        size += strlen(f[i].id) + strlen(f[i].name) + 2;
    struct flavor *copy = n > 0 ? malloc(size) : NULL;
    if (n > 0 && !copy)
        return false;
    char *text = n > 0 ? (char *)(copy + n) : NULL;
    for (int i = 0; i < n; i++) {
        copy[i] = f[i];
        copy[i].id = strcpy(text, f[i].id);
        text += strlen(text) + 1;
        copy[i].name = strcpy(text, f[i].name);
        text += strlen(text) + 1;
    }
    free(c->owned);
    c->owned = copy;
    c->flavors = n > 0 ? copy : classic;
    c->n_flavors = n > 0 ? n : (int)(sizeof classic / sizeof classic[0]);
    return true;
}

const struct flavor *core_flavor(const struct core *c, const char *id)
{
    for (int i = 0; id && i < c->n_flavors; i++)
        if (!strcmp(c->flavors[i].id, id))
            return &c->flavors[i];
    return NULL;
}

int core_flavors(const struct core *c, const struct flavor **out)
{
    *out = c->flavors;
    return c->n_flavors;
}

static int64_t either(int64_t set, int64_t dflt)
{
    return set == QUOTA_UNSET ? dflt : set;
}

/* The account's quotas with the defaults filled in, and its usage. */
static bool read_limits(struct core_ctx *c, struct store_conn *conn, const char *account,
                        struct limits *out, struct core_error *err)
{
    struct quota q;
    struct flavor_count *fc;
    int n;
    enum store_rc rc = store_quota_get(conn, account, &q);
    if (rc == STORE_OK)
        rc = store_server_usage(conn, c->arena, account, &fc, &n);
    if (rc == STORE_OK)
        rc = store_volume_usage(conn, account, &out->used.volumes, &out->used.gigabytes);
    if (rc != STORE_OK)
        return core_store_failed(err, rc);
    const struct quota *d = &core_default_quota;
    out->quota = (struct quota){either(q.instances, d->instances), either(q.cores, d->cores),
                                either(q.ram, d->ram), either(q.volumes, d->volumes),
                                either(q.gigabytes, d->gigabytes)};
    out->used.instances = out->used.cores = out->used.ram = 0;
    for (int i = 0; i < n; i++) {
        const struct flavor *f = core_flavor(c->core, fc[i].flavor_ref);
        out->used.instances += fc[i].servers;
        if (f) {
            out->used.cores += fc[i].servers * f->vcpus;
            out->used.ram += fc[i].servers * f->ram_mb;
        }
    }
    return true;
}

bool core_limits(struct core_ctx *c, struct limits *out, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    return r && read_limits(c, r, c->scope ? c->scope : c->account, out, err);
}

static bool over(int64_t limit, int64_t used, int64_t more)
{
    return limit >= 0 && used + more > limit;
}

bool core_check_server_quota(struct core_ctx *c, struct store_conn *w, const struct flavor *f,
                             struct core_error *err)
{
    struct limits l;
    if (!read_limits(c, w, c->account, &l, err))
        return false;
    /* Nova's TooManyInstances: the resources over, sorted, with what was
     * asked, used and allowed of each */
    const struct { const char *name; int64_t limit, used, more; } res[] = {
        {"cores", l.quota.cores, l.used.cores, f->vcpus},
        {"instances", l.quota.instances, l.used.instances, 1},
        {"ram", l.quota.ram, l.used.ram, f->ram_mb},
    };
    char names[64] = "", req[96] = "", used[96] = "", allowed[96] = "";
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
        if (!over(res[i].limit, res[i].used, res[i].more))
            continue;
        const char *sep = *names ? ", " : "";
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", sep, res[i].name);
        snprintf(req + strlen(req), sizeof req - strlen(req), "%s%lld", sep,
                 (long long)res[i].more);
        snprintf(used + strlen(used), sizeof used - strlen(used), "%s%lld", sep,
                 (long long)res[i].used);
        snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%lld", sep,
                 (long long)res[i].limit);
    }
    if (!*names)
        return true;
    return core_fail(err, CORE_FORBIDDEN,
                     "Quota exceeded for %s: Requested %s, but already used %s of %s %s", names,
                     req, used, allowed, names);
}

bool core_check_volume_quota(struct core_ctx *c, struct store_conn *w, int64_t size,
                             struct core_error *err)
{
    struct limits l;
    if (!read_limits(c, w, c->account, &l, err))
        return false;
    /* Cinder's messages, gigabytes first as its sorted overs put them */
    if (over(l.quota.gigabytes, l.used.gigabytes, size))
        return core_fail(err, CORE_VOLUME_QUOTA,
                         "Requested volume or snapshot exceeds allowed gigabytes quota. "
                         "Requested %lldG, quota is %lldG and %lldG has been consumed.",
                         (long long)size, (long long)l.quota.gigabytes,
                         (long long)l.used.gigabytes);
    if (over(l.quota.volumes, l.used.volumes, 1))
        return core_fail(err, CORE_VOLUME_QUOTA,
                         "Maximum number of volumes allowed (%lld) exceeded for quota 'volumes'.",
                         (long long)l.quota.volumes);
    return true;
}
