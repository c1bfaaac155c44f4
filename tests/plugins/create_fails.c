/* Loader test: create() refuses with a reason. */
#include <stdio.h>
#include <switchyard/plugin.h>

static int create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                  char *err, size_t errlen)
{
    snprintf(err, errlen, "needs a 'shard' setting");
    return SY_ERROR;
}
static void destroy(void *inst) { }
static int route(void *inst, const sy_request *req, const sy_backend *const *c, size_t n,
                 size_t *pick)
{
    return SY_DECLINED;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_ROUTING, .name = "create_fails", .version = "1",
    .create = create, .destroy = destroy, .route = route,
};
