/*
 * default_model: one model (e.g. a hosted gateway) for anything the plugins
 * before it in the fallback chain declined.
 *
 *   plugin_config:
 *     default_model: {model: small-cloud}
 *
 * Read-only after create(), so one instance serves every worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct default_model {
    const char *model; /* owned by the host's config */
};

static int dm_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    struct default_model *dm;
    const char *model = NULL;
    char where[256];

    host->config_where(cfg, "model", where, sizeof where);
    if (host->config_string(cfg, "model", &model) != SY_OK || *model == '\0') {
        snprintf(err, errlen, "%s: plugin_config.default_model.model: a model name is required",
                 where);
        return SY_ERROR;
    }
    if (host->model_exists(host, model) != SY_OK) {
        snprintf(err, errlen, "%s: plugin_config.default_model.model: '%s' is not a configured model",
                 where, model);
        return SY_ERROR;
    }
    dm = calloc(1, sizeof *dm);
    if (dm == NULL)
        return SY_ERROR;
    dm->model = model;
    *inst = dm;
    return SY_OK;
}

static void dm_destroy(void *inst)
{
    free(inst);
}

static int dm_fallback(void *inst, const struct sy_fallback_query *q,
                       const char **next)
{
    struct default_model *dm = inst;

    if (strcmp(q->model, dm->model) == 0)
        return SY_DECLINED;
    *next = dm->model;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_FALLBACK,
    .flags = SY_PLUGIN_F_SHARED,
    .name = "default_model",
    .version = "1.0",
    .description = "a last-resort model for whatever the chain declined",
    .create = dm_create,
    .destroy = dm_destroy,
    .fallback = dm_fallback,
};
