/* unit_make_setup: what the plugin tests start from. */
#include "config.h"
#include "setup.h"
#include "unit.h"

struct setup *unit_make_setup(const char *yaml, char *err, size_t errlen)
{
    struct sy_cfg *cfg = NULL;
    struct setup *s = NULL;

    if (config_load_string(yaml, "test.yaml", &cfg, err, errlen) != 0)
        return NULL;
    if (config_finish(cfg, err, errlen) != 0) {
        config_free(cfg);
        return NULL;
    }
    if (setup_create(cfg, BUILT_PLUGIN_DIR, 2, &s, err, errlen) != 0)
        return NULL;
    return s;
}
