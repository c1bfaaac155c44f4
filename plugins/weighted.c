/*
 * weighted: smooth weighted round robin (nginx's algorithm) by each
 * backend's configured weight.
 *
 *   routing: weighted
 *   models:
 *     llama: {backends: [{url: http://a:8000, weight: 3}, http://b:8000]}
 *
 * Every pick, each candidate's current value grows by its weight; the
 * largest wins and gives back the sum of the candidates' weights.  Over any
 * run of sum-of-weights picks each backend gets exactly its weight, spread
 * out (3:1 gives a a b a, not a a a b).  The current values are kept per
 * backend (by its index), so a candidate set that changes from request to
 * request (retries, unhealthy backends, models sharing backends) keeps each
 * backend's place; a backend that is not a candidate keeps its value.
 *
 * No settings.  Always decides.  One instance per worker (no locks), so
 * the exact proportions hold per worker and, summed, over the router.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#define MAX_INDEX (1u << 20) /* backend indexes are small; beyond, a bug */

struct weighted {
    const struct sy_host_api *host;
    long long *current; /* by backend index */
    size_t cap;
};

static int wrr_create(const struct sy_host_api *host, const sy_config *cfg,
                      void **inst, char *err, size_t errlen)
{
    struct weighted *w;
    const char *name;
    const sy_config *v;
    char where[256];

    if (host->config_entry(cfg, 0, &name, &v) == SY_OK) {
        host->config_where(cfg, name, where, sizeof where);
        snprintf(err, errlen,
                 "%s: weighted.%s: unknown key (weights are set per backend: "
                 "{url: ..., weight: N})", where, name);
        return SY_ERROR;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    w->host = host;
    *inst = w;
    return SY_OK;
}

static void wrr_destroy(void *inst)
{
    struct weighted *w = inst;
    free(w->current);
    free(w);
}

/* Room for backend index idx; 0, or -1 when it cannot be had. */
static int reserve(struct weighted *w, unsigned idx)
{
    size_t cap;
    long long *c;

    if (idx < w->cap)
        return 0;
    if (idx >= MAX_INDEX)
        return -1;
    cap = w->cap ? w->cap : 16;
    while (cap <= idx)
        cap *= 2;
    c = realloc(w->current, cap * sizeof *c);
    if (c == NULL)
        return -1;
    memset(c + w->cap, 0, (cap - w->cap) * sizeof *c);
    w->current = c;
    w->cap = cap;
    return 0;
}

static int wrr_route(void *inst, const sy_request *req,
                     const sy_backend *const *candidates, size_t n, size_t *pick)
{
    struct weighted *w = inst;
    const struct sy_host_api *h = w->host;
    long long total = 0;
    size_t best = 0;
    unsigned best_idx = 0;

    for (size_t i = 0; i < n; i++)
        if (reserve(w, h->backend_index(candidates[i])) != 0)
            return SY_ERROR;
    for (size_t i = 0; i < n; i++) {
        unsigned idx = h->backend_index(candidates[i]);
        long long weight = h->backend_weight(candidates[i]);
        w->current[idx] += weight;
        total += weight;
        if (i == 0 || w->current[idx] > w->current[best_idx]) {
            best = i;
            best_idx = idx;
        }
    }
    if (n == 0)
        return SY_DECLINED;
    w->current[best_idx] -= total;
    *pick = best;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_ROUTING,
    .name = "weighted",
    .version = "1.0",
    .description = "smooth weighted round robin by backend weight",
    .create = wrr_create,
    .destroy = wrr_destroy,
    .route = wrr_route,
};
