/*
 * long_generation: an example switchyard routing plugin, built out of tree:
 *
 *     make                      # uses only `pkg-config switchyard`
 *     sudo make install         # copies long_generation.so to the plugin dir
 *
 * and enabled in switchyard.yaml:
 *
 *     routing: [long_generation, roundrobin]
 *     plugin_config:
 *       long_generation: {min_max_tokens: 4096, backend_match: "gpu-big"}
 *
 * A request whose body asks for at least `min_max_tokens` tokens (its
 * "max_tokens", or OpenAI's newer "max_completion_tokens" when max_tokens
 * is absent, a JSON number) goes to the candidates whose URL contains
 * `backend_match`: the one of them with the fewest requests in flight (the
 * first on a tie).  Short requests, requests without such a number, and
 * long ones when no matching backend is usable are declined: the next
 * routing plugin decides.  Both settings are required; any other key is an
 * error, so a misspelt setting stops the router at start.
 *
 * It shows the request body by JSON pointer and config_check_keys() of
 * plugin ABI 1.2: the core parses the body only when a plugin asks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct long_generation {
    const struct sy_host_api *host;
    double min_tokens;
    const char *match; /* the config's string: the host's, valid until destroy() */
};

static const char *const known_keys[] = { "min_max_tokens", "backend_match", NULL };

static int lg_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct long_generation *lg;
    long long min = 0;
    const char *match = NULL;
    char where[256];
    int rc;

    /* the body by JSON pointer and config_check_keys() came with ABI 1.2 */
    if (host->size < offsetof(struct sy_host_api, config_check_keys) +
                         sizeof host->config_check_keys) {
        snprintf(err, errlen, "needs a switchyard with plugin ABI 1.2 (request_field_number)");
        return SY_ERROR;
    }
    if (host->config_check_keys(cfg, known_keys, err, errlen) != SY_OK)
        return SY_ERROR; /* err says "file:line: KEY: unknown key (known: ...)" */
    rc = host->config_int(cfg, "min_max_tokens", &min);
    if (rc != SY_OK || min < 1) {
        /* absent (SY_DECLINED): the section's place, else the key's */
        host->config_where(cfg, rc == SY_DECLINED ? NULL : "min_max_tokens", where, sizeof where);
        snprintf(err, errlen, "%s: min_max_tokens: %s", where,
                 rc == SY_DECLINED ? "required (a whole number >= 1)"
                                   : "expected a whole number >= 1");
        return SY_ERROR;
    }
    rc = host->config_string(cfg, "backend_match", &match);
    if (rc != SY_OK || match[0] == '\0') {
        host->config_where(cfg, rc == SY_DECLINED ? NULL : "backend_match", where, sizeof where);
        snprintf(err, errlen, "%s: backend_match: %s", where,
                 rc == SY_DECLINED ? "required (a part of the URLs of the backends for long "
                                     "generations)"
                                   : "expected a non-empty string");
        return SY_ERROR;
    }
    lg = calloc(1, sizeof *lg);
    if (lg == NULL) {
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    lg->host = host;
    lg->min_tokens = (double)min;
    lg->match = match;
    *inst = lg;
    return SY_OK;
}

static void lg_destroy(void *inst)
{
    free(inst);
}

/* The tokens the request asks for: SY_OK and *n, or SY_DECLINED. */
static int asked_tokens(const struct sy_host_api *h, const sy_request *req, double *n)
{
    int type = h->request_field_type(req, "/max_tokens");

    /* absent (or null, as some clients send it): the newer name */
    if (type == SY_JSON_ABSENT || type == SY_JSON_NULL)
        return h->request_field_number(req, "/max_completion_tokens", n) == SY_OK ? SY_OK
                                                                                  : SY_DECLINED;
    /* a string "5000" or anything else but a number: no opinion */
    return h->request_field_number(req, "/max_tokens", n) == SY_OK ? SY_OK : SY_DECLINED;
}

static int lg_route(void *inst, const sy_request *req, const sy_backend *const *candidates,
                    size_t n, size_t *pick)
{
    struct long_generation *lg = inst;
    const struct sy_host_api *h = lg->host;
    unsigned least = ~0u;
    size_t best = n;
    double tokens;

    if (asked_tokens(h, req, &tokens) != SY_OK || tokens < lg->min_tokens)
        return SY_DECLINED; /* a short request: the next plugin decides */
    for (size_t i = 0; i < n; i++) {
        if (strstr(h->backend_url(candidates[i]), lg->match) == NULL)
            continue;
        unsigned load = h->backend_inflight(candidates[i]);
        if (load < least) { /* strictly less: ties go to the first */
            least = load;
            best = i;
        }
    }
    if (best == n)
        return SY_DECLINED; /* no backend for long generations is usable */
    h->log(h, SY_LOG_DEBUG, "request %s: %.0f tokens: %s (%u in flight)", h->request_id(req),
           tokens, h->backend_url(candidates[best]), least);
    *pick = best;
    return SY_OK;
}

/* The one symbol switchyard looks for; checked before any code above runs. */
SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_ROUTING,
    .flags = SY_PLUGIN_F_SHARED, /* read-only after create(): one instance */
    .name = "long_generation",
    .version = "1.0",
    .description = "long generations to the backends meant for them",
    .create = lg_create,
    .destroy = lg_destroy,
    .route = lg_route,
};
