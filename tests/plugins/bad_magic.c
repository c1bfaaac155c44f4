/* Loader test: a descriptor with a wrong magic number.  Its create() must never run. */
#include <stdlib.h>
#include <switchyard/plugin.h>

static int create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                  char *err, size_t errlen)
{
    abort();
}
static void destroy(void *inst) { abort(); }
static int route(void *inst, const sy_request *req, const sy_backend *const *c, size_t n,
                 size_t *pick)
{
    abort();
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    .magic = 0x12345678u, .abi_major = SY_ABI_MAJOR, .abi_minor = SY_ABI_MINOR, .size = sizeof(struct sy_plugin),
    .kind = SY_KIND_ROUTING, .name = "bad_magic", .version = "1",
    .create = create, .destroy = destroy, .route = route,
};
