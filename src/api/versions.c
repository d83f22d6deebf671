/* versions.c: version discovery without credentials (docs/api.md,
 * "Version discovery").
 * hrefs come from the request's Host, as Nova builds them. */
#include <string.h>

#include "api/call.h"

static json_t *v21(struct call *c, bool full)
{
    json_t *links = json_pack("[{s:s, s:s}]", "rel", "self", "href",
                              arena_printf(c->arena, "%s/v2.1/", c->base));
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", "v2.1", "status", "CURRENT",
                          "version", arena_printf(c->arena, "2.%d", MAX_VERSION),
                          "min_version", "2.1", "updated", "2013-07-23T11:33:21Z",
                          "links", links);
    if (full) {
        json_array_append_new(links, json_pack("{s:s, s:s, s:s}", "rel", "describedby",
                                               "type", "text/html",
                                               "href", "http://docs.openstack.org/"));
        json_object_set_new(v, "media-types",
                            json_pack("[{s:s, s:s}]", "base", "application/json", "type",
                                      "application/vnd.openstack.compute+json;version=2.1"));
    }
    return v;
}

void versions_root(struct call *c)
{
    reply_json(c, 200, json_pack("{s:[o]}", "versions", v21(c, false)));
}

void versions_v21(struct call *c)
{
    reply_json(c, 200, json_pack("{s:o}", "version", v21(c, true)));
}

/* The block-storage (Cinder v3) version document: `openstack server add
 * volume` discovers it before looking the volume up. */
void versions_v3(struct call *c)
{
    reply_json(c, 200, json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s}]}]}", "versions",
                                 "id", "v3.0", "status", "CURRENT", "version", "3.0",
                                 "min_version", "3.0", "updated", "2016-02-08T12:20:21Z",
                                 "links", "rel", "self", "href",
                                 arena_printf(c->arena, "%s/v3/", c->base)));
}

/* Glance's version list, which keystoneauth reads at the image endpoint
 * (docs/api.md, decision D11): 300 Multiple Choices at the root, as Glance
 * answers, 200 at /image/versions. Only v2.0 is claimed: the images are
 * read-only, and no later v2 feature is served. */
void versions_glance(struct call *c)
{
    const char *p = c->req->path;
    size_t len = strlen(p);
    bool listing = len >= 8 && !strcmp(p + len - 8, "versions");
    reply_json(c, listing ? 200 : 300,
               json_pack("{s:[{s:s, s:s, s:[{s:s, s:s}]}]}", "versions", "id", "v2.0", "status",
                         "CURRENT", "links", "rel", "self", "href",
                         arena_printf(c->arena, "%s/image/v2/", c->base)));
}
