/*
 * Per-worker timers (ABI 1.2): each worker's instance starts a 50 ms tick
 * in worker_start() with worker_timer_add(), on its own loop; route() logs
 * how many ticks its instance has had.  worker_timer_add() from create()
 * (the main thread) must give NULL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <switchyard/plugin.h>

struct ticks {
    const struct sy_host_api *host;
    int ticks;
    int started;
};

static void tick(void *arg)
{
    struct ticks *t = arg;

    t->ticks++;
    if (t->host->worker_timer_add(t->host, 0.05, tick, t) == NULL)
        t->host->log(t->host, SY_LOG_ERROR, "worker_ticks: FAIL no timer from a tick");
}

static int wt_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct ticks *t = calloc(1, sizeof *t);

    if (t == NULL)
        return SY_ERROR;
    t->host = host;
    if (host->worker_timer_add(host, 1, tick, t) != NULL) {
        snprintf(err, errlen, "worker_timer_add worked on the main thread");
        free(t);
        return SY_ERROR;
    }
    *inst = t;
    return SY_OK;
}

static void wt_destroy(void *inst)
{
    free(inst);
}

static int wt_worker_start(void *inst)
{
    struct ticks *t = inst;

    t->started++;
    return t->host->worker_timer_add(t->host, 0.05, tick, t) != NULL ? SY_OK : SY_ERROR;
}

static int wt_route(void *inst, const sy_request *req, const sy_backend *const *c, size_t n,
                    size_t *pick)
{
    struct ticks *t = inst;

    t->host->log(t->host, SY_LOG_INFO, "worker_ticks: started=%d ticks=%d", t->started,
                 t->ticks);
    *pick = 0;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_ROUTING, .name = "worker_ticks", .version = "1",
    .create = wt_create, .destroy = wt_destroy, .route = wt_route,
    .worker_start = wt_worker_start,
};
