/*
 * least_inflight: an example switchyard routing plugin, built out of tree:
 *
 *     make                      # uses only `pkg-config switchyard`
 *     sudo make install         # copies least_inflight.so to the plugin dir
 *
 * and enabled in switchyard.yaml:
 *
 *     routing: [least_inflight, roundrobin]
 *     plugin_config:
 *       least_inflight: {min_gap: 2}
 *
 * It sends a request to the candidate with the fewest requests in flight,
 * but only when that one is at least `min_gap` requests less busy than the
 * busiest; otherwise it declines and the next routing plugin decides.
 * Declining is how plugins chain: say only what you have an opinion on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <switchyard/plugin.h>

struct least_inflight {
    const struct sy_host_api *host;
    long long min_gap;
};

static int li_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    struct least_inflight *li;
    long long gap = 1;
    char where[256];

    /* SY_DECLINED: the key is absent, keep the default */
    if (host->config_int(cfg, "min_gap", &gap) == SY_ERROR || gap < 1) {
        host->config_where(cfg, "min_gap", where, sizeof where);
        snprintf(err, errlen, "%s: min_gap: expected a whole number >= 1", where);
        return SY_ERROR;
    }
    li = calloc(1, sizeof *li);
    if (li == NULL)
        return SY_ERROR;
    li->host = host;
    li->min_gap = gap;
    *inst = li;
    return SY_OK;
}

static void li_destroy(void *inst)
{
    free(inst);
}

static int li_route(void *inst, const sy_request *req,
                    const sy_backend *const *candidates, size_t n, size_t *pick)
{
    struct least_inflight *li = inst;
    unsigned least = ~0u, most = 0;
    size_t best = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned load = li->host->backend_inflight(candidates[i]);
        if (load < least) {
            least = load;
            best = i;
        }
        if (load > most)
            most = load;
    }
    if ((long long)(most - least) < li->min_gap)
        return SY_DECLINED;
    li->host->log(li->host, SY_LOG_DEBUG, "request %s: %s has %u in flight, the busiest %u",
                  li->host->request_id(req), li->host->backend_url(candidates[best]), least, most);
    *pick = best;
    return SY_OK;
}

/* The one symbol switchyard looks for; checked before any code above runs. */
SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_ROUTING,
    .flags = 0, /* one instance per worker: no locks needed */
    .name = "least_inflight",
    .version = "1.0",
    .description = "fewest requests in flight, when the difference matters",
    .create = li_create,
    .destroy = li_destroy,
    .route = li_route,
};
