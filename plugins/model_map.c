/*
 * model_map: a model that cannot be served falls back to the model named for
 * it, by the model's `fallback_model` in the config (or --static-fallback-
 * models), or by this plugin's own `map:` section, which wins.  Chains
 * (A>B>C) follow because the core asks again for each model it moves to; the
 * core also ends cycles and caps the depth.
 *
 *   plugin_config:
 *     model_map:
 *       map: {llama-70b: llama-8b}
 *
 * Read-only after create(), so one instance serves every worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct model_map {
    const struct sy_host_api *host;
    const sy_config *map; /* NULL when the section has no map */
};

static int mm_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    struct model_map *mm;
    const sy_config *map = NULL;
    char where[256];
    int rc = host->config_section(cfg, "map", &map);

    for (size_t i = 0; rc == SY_OK && i < host->config_count(map); i++) {
        const char *from, *to;
        const sy_config *v;
        if (host->config_entry(map, i, &from, &v) != SY_OK) {
            rc = SY_ERROR; /* a list, not a map */
            break;
        }
        host->config_where(map, from, where, sizeof where);
        if (host->config_string(v, NULL, &to) != SY_OK) {
            snprintf(err, errlen, "%s: model_map.map.%s: expected a model name", where, from);
            return SY_ERROR;
        }
        if (host->model_exists(host, from) != SY_OK || host->model_exists(host, to) != SY_OK) {
            snprintf(err, errlen, "%s: model_map.map.%s: '%s' is not a configured model", where,
                     from, host->model_exists(host, from) != SY_OK ? from : to);
            return SY_ERROR;
        }
    }
    if (rc == SY_ERROR) {
        host->config_where(cfg, "map", where, sizeof where);
        snprintf(err, errlen, "%s: model_map.map: expected a map of model: fallback model", where);
        return SY_ERROR;
    }
    mm = calloc(1, sizeof *mm);
    if (mm == NULL)
        return SY_ERROR;
    mm->host = host;
    mm->map = rc == SY_OK ? map : NULL;
    *inst = mm;
    return SY_OK;
}

static void mm_destroy(void *inst)
{
    free(inst);
}

static int mm_fallback(void *inst, const struct sy_fallback_query *q,
                       const char **next)
{
    struct model_map *mm = inst;
    const char *to = NULL;

    if (mm->map != NULL && mm->host->config_string(mm->map, q->model, &to) == SY_OK) {
        *next = to;
        return SY_OK;
    }
    to = mm->host->model_option(mm->host, q->model, "fallback_model");
    if (to == NULL || *to == '\0')
        return SY_DECLINED;
    *next = to;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_FALLBACK,
    .flags = SY_PLUGIN_F_SHARED,
    .name = "model_map",
    .version = "1.0",
    .description = "per-model fallback_model, followed as a chain",
    .create = mm_create,
    .destroy = mm_destroy,
    .fallback = mm_fallback,
};
