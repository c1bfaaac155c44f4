/* A valid routing plugin: picks the last candidate; create() reads `fail`. */
#include <stdlib.h>
#include <switchyard/plugin.h>

static int create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                  char *err, size_t errlen)
{
    *inst = malloc(1);
    return *inst ? SY_OK : SY_ERROR;
}
static void destroy(void *inst) { free(inst); }
static int route(void *inst, const sy_request *req, const sy_backend *const *c, size_t n,
                 size_t *pick)
{
    *pick = n - 1;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_ROUTING, .name = "good", .version = "1",
    .create = create, .destroy = destroy, .route = route,
};
