/*
 * roundrobin: each request goes to the next candidate in turn.
 * One instance per worker (no locks); each keeps its own turn.
 */
#include <stdlib.h>
#include <switchyard/plugin.h>

struct roundrobin {
    size_t next;
};

static int rr_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    struct roundrobin *rr = calloc(1, sizeof *rr);
    if (rr == NULL)
        return SY_ERROR;
    *inst = rr;
    return SY_OK;
}

static void rr_destroy(void *inst)
{
    free(inst);
}

static int rr_route(void *inst, const sy_request *req,
                    const sy_backend *const *candidates, size_t n, size_t *pick)
{
    struct roundrobin *rr = inst;
    *pick = rr->next++ % n;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_ROUTING,
    .name = "roundrobin",
    .version = "1.0",
    .description = "each request to the next backend in turn",
    .create = rr_create,
    .destroy = rr_destroy,
    .route = rr_route,
};
