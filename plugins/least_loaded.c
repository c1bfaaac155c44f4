/*
 * least_loaded: each request to the candidate with the fewest requests in
 * flight, as the core counts them over all workers (streams count until
 * their last byte).  Among equally loaded candidates the choice rotates, so
 * an idle fleet is not all sent to the first backend of the list.
 *
 *   routing: least_loaded            # or last in a chain: [session, least_loaded]
 *
 * No settings.  Always decides, so it belongs at the end of a chain.
 * One instance per worker (no locks); each keeps its own turn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#include "least.h"

struct least_loaded {
    const struct sy_host_api *host;
    unsigned turn;
};

static int ll_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    struct least_loaded *ll;
    const char *name;
    const sy_config *v;
    char where[256];

    if (host->config_entry(cfg, 0, &name, &v) == SY_OK) {
        host->config_where(cfg, name, where, sizeof where);
        snprintf(err, errlen, "%s: least_loaded.%s: unknown key (least_loaded has no settings)",
                 where, name);
        return SY_ERROR;
    }
    ll = calloc(1, sizeof *ll);
    if (ll == NULL) {
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    ll->host = host;
    *inst = ll;
    return SY_OK;
}

static void ll_destroy(void *inst)
{
    free(inst);
}

static int ll_route(void *inst, const sy_request *req,
                    const sy_backend *const *candidates, size_t n, size_t *pick)
{
    struct least_loaded *ll = inst;

    *pick = least_loaded_pick(ll->host, candidates, n, ll->turn++);
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_ROUTING,
    .name = "least_loaded",
    .version = "1.0",
    .description = "fewest requests in flight, ties taken in turn",
    .create = ll_create,
    .destroy = ll_destroy,
    .route = ll_route,
};
