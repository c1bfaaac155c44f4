/*
 * A health plugin built against ABI 1.1's header (tests/plugins/abi_1_1, a
 * copy of plugin.h as 1.1 shipped it), to prove that such a binary loads
 * and behaves unchanged in a newer core.  plugin_config.legacy_v11:
 * {down: URL, heal_after: DURATION}: start() takes the backend out with
 * backend_set_state(UNHEALTHY); a timer brings it back (HEALTHY) after
 * heal_after.  Uses the 1.1 host API only: config, backends, states, timers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#if SY_ABI_MINOR != 1
#error "built against the ABI 1.1 header on purpose"
#endif

struct legacy {
    const struct sy_host_api *host;
    char down[512];
    double heal_after;
};

static int lg_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct legacy *lg = calloc(1, sizeof *lg);
    const char *down = NULL;

    if (lg == NULL)
        return SY_ERROR;
    if (host->config_string(cfg, "down", &down) != SY_OK ||
        host->config_seconds(cfg, "heal_after", &lg->heal_after) != SY_OK) {
        snprintf(err, errlen, "down and heal_after are required");
        free(lg);
        return SY_ERROR;
    }
    snprintf(lg->down, sizeof lg->down, "%s", down);
    lg->host = host;
    *inst = lg;
    return SY_OK;
}

static void lg_destroy(void *inst)
{
    free(inst);
}

static const sy_backend *find(struct legacy *lg)
{
    const struct sy_host_api *h = lg->host;
    for (size_t i = 0; i < h->backend_count(h); i++)
        if (strcmp(h->backend_url(h->backend_at(h, i)), lg->down) == 0)
            return h->backend_at(h, i);
    return NULL;
}

static void heal(void *arg)
{
    struct legacy *lg = arg;
    const sy_backend *b = find(lg);
    if (b != NULL)
        lg->host->backend_set_state(lg->host, b, SY_BACKEND_HEALTHY, 0, "legacy: healed");
}

static int lg_start(void *inst)
{
    struct legacy *lg = inst;
    const sy_backend *b = find(lg);

    if (b == NULL)
        return SY_ERROR;
    lg->host->backend_set_state(lg->host, b, SY_BACKEND_UNHEALTHY, 0, "legacy: down");
    if (lg->host->backend_state(b) != SY_BACKEND_UNHEALTHY)
        return SY_ERROR;
    return lg->host->timer_add(lg->host, lg->heal_after, heal, lg) != NULL ? SY_OK : SY_ERROR;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_HEALTH, .name = "legacy_v11", .version = "1",
    .description = "an ABI 1.1 health plugin", .create = lg_create, .destroy = lg_destroy,
    .start = lg_start,
};
