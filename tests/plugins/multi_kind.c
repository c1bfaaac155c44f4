/*
 * One plugin, two kinds (ABI 1.2): listed under both routing: and health:,
 * it has one instance serving both chains.  Its health part (start) holds
 * its flag on the backend named by `drain`; its routing part picks the
 * first candidate and logs how many attempts its health part (attempt_done)
 * has seen, which only one shared instance can know.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

struct multi {
    const struct sy_host_api *host;
    char drain[256];
    atomic_int attempts;
};

static int mk_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct multi *m = calloc(1, sizeof *m);
    const char *drain = NULL;

    if (m == NULL)
        return SY_ERROR;
    if (host->config_string(cfg, "drain", &drain) == SY_OK)
        snprintf(m->drain, sizeof m->drain, "%s", drain);
    m->host = host;
    host->log(host, SY_LOG_INFO, "multi_kind: created");
    *inst = m;
    return SY_OK;
}

static void mk_destroy(void *inst)
{
    free(inst);
}

static int mk_route(void *inst, const sy_request *req, const sy_backend *const *c, size_t n,
                    size_t *pick)
{
    struct multi *m = inst;

    m->host->log(m->host, SY_LOG_INFO, "multi_kind: route %s after %d attempts seen",
                 m->host->request_id(req), atomic_load(&m->attempts));
    *pick = 0;
    return SY_OK;
}

static int mk_start(void *inst)
{
    struct multi *m = inst;
    const struct sy_host_api *h = m->host;

    for (size_t i = 0; i < h->backend_count(h); i++)
        if (strcmp(h->backend_url(h->backend_at(h, i)), m->drain) == 0)
            h->backend_set_flag(h, h->backend_at(h, i), 1, "multi_kind drains it");
    return SY_OK;
}

static void mk_attempt_done(void *inst, const struct sy_attempt_report *r)
{
    struct multi *m = inst;
    atomic_fetch_add(&m->attempts, 1);
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_ROUTING, .flags = SY_PLUGIN_F_SHARED,
    .name = "multi_kind", .version = "1",
    .create = mk_create, .destroy = mk_destroy, .route = mk_route,
    .start = mk_start, .attempt_done = mk_attempt_done,
};
