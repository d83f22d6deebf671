/* images.c: reading the images servers are made from. They are an
 * operator's (`attachd image add`) and public: every account sees every
 * one, so no lookup here is scoped. */
#include "core/internal.h"

bool core_image_get(struct core_ctx *c, const char *id, struct image *out,
                    struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    enum store_rc rc = store_image_get(r, c->arena, id, out);
    if (rc == STORE_NOTFOUND)
        return core_fail(err, CORE_NOT_FOUND, "Image %s could not be found.", id);
    return rc == STORE_OK || core_store_failed(err, rc);
}

bool core_image_list(struct core_ctx *c, struct image **out, int *n, struct core_error *err)
{
    struct store_conn *r = core_reader(c, err);
    if (!r)
        return false;
    enum store_rc rc = store_image_list(r, c->arena, out, n);
    return rc == STORE_OK || core_store_failed(err, rc);
}
