/*
 * dynconf: production-stack's dynamic router config over struct sy_cfg:
 * its keys are rows of the settings table (settings.c), set by the same
 * setters as vllm_router's flags (vllm_settings.c).
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "dynconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

/* Takes ownership of tree (it goes to cfg->dyn_tree, also on failure). */
static int apply_tree(struct cfg_node *tree, const char *path,
                      struct sy_cfg *cfg, char *err, size_t errlen)
{
    struct setter st = {.cfg = cfg, .map = tree, .src = SETTING_DYNAMIC,
                        .file = tree->file, .err = err, .errlen = errlen};

    if (cfg->dyn_tree) {
        snprintf(err, errlen, "%s: a dynamic config was applied already",
                 tree->file);
        cfg_tree_free(tree);
        return -1;
    }
    cfg->dyn_tree = tree;
    if (path) {
        char *copy = strdup(path);
        if (!copy) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        free(cfg->dynamic_config);
        cfg->dynamic_config = copy;
    }
    return settings_apply(&st);
}

int dynconf_apply(const char *path, struct sy_cfg *cfg, char *err,
                  size_t errlen)
{
    struct cfg_node *tree;
    if (cfg_tree_load_file(path, &tree, err, errlen) < 0)
        return -1;
    return apply_tree(tree, path, cfg, err, errlen);
}

int dynconf_apply_string(const char *text, const char *name,
                         struct sy_cfg *cfg, char *err, size_t errlen)
{
    struct cfg_node *tree;
    if (cfg_tree_parse(text, strlen(text), name ? name : "<string>", &tree,
                       err, errlen) < 0)
        return -1;
    return apply_tree(tree, NULL, cfg, err, errlen);
}
