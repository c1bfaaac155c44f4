/*
 * fallback_429: an example switchyard fallback plugin, built out of tree:
 *
 *     make                      # uses only `pkg-config switchyard`
 *     sudo make install         # copies fallback_429.so to the plugin dir
 *
 * and enabled in switchyard.yaml:
 *
 *     fallback: [fallback_429, model_map]
 *     plugin_config:
 *       fallback_429: {model: small-cloud}
 *       # or only for one kind of 429, by the upstream error's type:
 *       # fallback_429: {model: small-cloud, error_type: insufficient_quota}
 *
 * On the first 429 of a model, the request falls back to `model` at once:
 * one attempt on the backend that said 429, no retry on the model's other
 * backends, no Retry-After wait.  Every other failure is declined, so the
 * next plugins and the usual retry rules decide (model_map still names a
 * model's own fallback when its retries are spent).
 *
 * It shows what plugin ABI 1.2 gives fallback plugins: attempt_failed(),
 * asked after every failed attempt rather than only once a model's retries
 * are spent, and the attempts themselves (struct sy_attempt: the backend,
 * the status, the upstream error's type, code and message, Retry-After).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct fallback_429 {
    const struct sy_host_api *host;
    char *model;
    char *error_type; /* NULL: any 429 */
};

static int f4_create(const struct sy_host_api *host, const sy_config *cfg,
                     void **inst, char *err, size_t errlen)
{
    static const char *const known[] = { "model", "error_type", NULL };
    struct fallback_429 *f;
    const char *model = NULL, *type = NULL;
    char where[256];

    /* attempt_failed() and config_check_keys() came with ABI 1.2 */
    if (host->size < offsetof(struct sy_host_api, config_check_keys) +
                         sizeof host->config_check_keys) {
        snprintf(err, errlen, "needs a switchyard with plugin ABI 1.2");
        return SY_ERROR;
    }
    if (host->config_check_keys(cfg, known, err, errlen) != SY_OK)
        return SY_ERROR;
    if (host->config_string(cfg, "model", &model) != SY_OK || model[0] == '\0') {
        host->config_where(cfg, "model", where, sizeof where);
        snprintf(err, errlen, "%s: model: the model to fall back to is required", where);
        return SY_ERROR;
    }
    if (host->model_exists(host, model) != SY_OK) {
        host->config_where(cfg, "model", where, sizeof where);
        snprintf(err, errlen, "%s: model: '%s' is not a configured model", where, model);
        return SY_ERROR;
    }
    if (host->config_string(cfg, "error_type", &type) == SY_ERROR) {
        host->config_where(cfg, "error_type", where, sizeof where);
        snprintf(err, errlen, "%s: error_type: expected a string", where);
        return SY_ERROR;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL || (f->model = strdup(model)) == NULL ||
        (type != NULL && (f->error_type = strdup(type)) == NULL)) {
        if (f != NULL)
            free(f->model);
        free(f);
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    f->host = host;
    *inst = f;
    return SY_OK;
}

static void f4_destroy(void *inst)
{
    struct fallback_429 *f = inst;

    free(f->model);
    free(f->error_type);
    free(f);
}

/* After each failed attempt: the one that just failed is the last. */
static int f4_attempt_failed(void *inst, const struct sy_fallback_query *q,
                             const char **next_model)
{
    struct fallback_429 *f = inst;
    const struct sy_attempt *last;

    if (q->nattempts == 0 || strcmp(q->model, f->model) == 0)
        return SY_DECLINED;
    last = &q->attempts[q->nattempts - 1];
    if (last->status != 429)
        return SY_DECLINED;
    if (f->error_type != NULL &&
        (last->error_type == NULL || strcmp(last->error_type, f->error_type) != 0))
        return SY_DECLINED;
    f->host->log(f->host, SY_LOG_INFO, "request %s: %s answered 429 (%s): falling back to %s",
                 f->host->request_id(q->req), q->model,
                 last->error_message ? last->error_message : "no message", f->model);
    *next_model = f->model;
    return SY_OK;
}

/* Once a model's attempts are spent: no opinion, the next plugin says. */
static int f4_fallback(void *inst, const struct sy_fallback_query *q, const char **next_model)
{
    return SY_DECLINED;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_FALLBACK,
    .name = "fallback_429",
    .version = "1.0",
    .description = "falls back at once on a model's first 429",
    .create = f4_create,
    .destroy = f4_destroy,
    .fallback = f4_fallback,
    .attempt_failed = f4_attempt_failed,
};
