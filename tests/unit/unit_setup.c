/* What the tests start from: a config (unit_base_config) or a whole setup
 * (unit_make_setup). */
#include <stdio.h>

#include "config.h"
#include "setup.h"
#include "unit.h"

struct sy_cfg *unit_base_config(const char *yaml)
{
    char err[512];
    struct sy_cfg *cfg = NULL;

    if (yaml == NULL)
        return config_new();
    if (config_load_string(yaml, "base.yaml", &cfg, err, sizeof err) < 0)
        fprintf(stderr, "\nbase config: %s\n", err);
    return cfg;
}

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
