/* limits.c: GET /limits, an account's quotas and usage: Nova's shape, with
 * the fields each microversion shows; the Hostway dialect adds the volume
 * quotas that it serves at /volumes; /v3/limits is Cinder's. */
#include <string.h>

#include "api/call.h"

/* The account whose limits are asked for: the caller's, or with
 * ?tenant_id= another one's (admins only, as Nova's policy). */
static bool limits_of(struct call *c, struct limits *l)
{
    static const char *const allowed[] = {"tenant_id", NULL};
    struct core_error err;
    if (c->version >= 75 && !query_only(c, allowed))
        return false;
    const char *tenant = query_last(c, "tenant_id");
    struct core_ctx ctx = c->core;
    if (tenant && *tenant && strcmp(tenant, c->core.home) != 0) {
        if (!c->core.admin) {
            reply_error(c, 403, "Policy doesn't allow os_compute_api:limits:other_project to "
                                "be performed.");
            return false;
        }
        ctx.scope = ctx.account = tenant;
    }
    if (!core_limits(&ctx, l, &err)) {
        reply_core_error(c, &err);
        return false;
    }
    return true;
}

static void set(json_t *o, const char *name, int64_t v)
{
    json_object_set_new(o, name, json_integer(v));
}

void limits_show(struct call *c)
{
    struct limits l;
    if (!limits_of(c, &l))
        return;
    const struct quota *q = &l.quota, *u = &l.used;
    bool network = c->version < 36, image_meta = c->version < 39, personality = c->version < 57;
    json_t *a = json_object();
    if (image_meta)
        set(a, "maxImageMeta", CORE_MAX_METADATA_ITEMS);
    if (personality) {
        set(a, "maxPersonality", 5);
        set(a, "maxPersonalitySize", 10240);
    }
    if (network) {
        set(a, "maxSecurityGroupRules", 20);
        set(a, "maxSecurityGroups", 10);
    }
    set(a, "maxServerMeta", CORE_MAX_METADATA_ITEMS);
    set(a, "maxTotalCores", q->cores);
    if (network)
        set(a, "maxTotalFloatingIps", 10);
    set(a, "maxTotalInstances", q->instances);
    set(a, "maxTotalKeypairs", 100);
    set(a, "maxTotalRAMSize", q->ram);
    set(a, "maxServerGroups", 10);
    set(a, "maxServerGroupMembers", 10);
    set(a, "totalCoresUsed", u->cores);
    set(a, "totalInstancesUsed", u->instances);
    set(a, "totalRAMUsed", u->ram);
    if (network) {
        set(a, "totalSecurityGroupsUsed", 0);
        set(a, "totalFloatingIpsUsed", 0);
    }
    set(a, "totalServerGroupsUsed", 0);
    if (c->dialect == DIALECT_HOSTWAY) {
        set(a, "maxTotalVolumes", q->volumes);
        set(a, "maxTotalVolumeGigabytes", q->gigabytes);
        set(a, "totalVolumesUsed", u->volumes);
        set(a, "totalGigabytesUsed", u->gigabytes);
    }
    reply_json(c, 200, json_pack("{s:{s:[], s:o}}", "limits", "rate", "absolute", a));
}

void cinder_limits(struct call *c)
{
    struct limits l;
    if (!limits_of(c, &l))
        return;
    json_t *a = json_object();
    set(a, "totalSnapshotsUsed", 0);
    set(a, "maxTotalBackups", 10);
    set(a, "maxTotalVolumeGigabytes", l.quota.gigabytes);
    set(a, "maxTotalSnapshots", 10);
    set(a, "maxTotalBackupGigabytes", 1000);
    set(a, "totalBackupGigabytesUsed", 0);
    set(a, "maxTotalVolumes", l.quota.volumes);
    set(a, "totalVolumesUsed", l.used.volumes);
    set(a, "totalBackupsUsed", 0);
    set(a, "totalGigabytesUsed", l.used.gigabytes);
    reply_json(c, 200, json_pack("{s:{s:[], s:o}}", "limits", "rate", "absolute", a));
}
