/*
 * dynconf: vllm_router's (production-stack's) dynamic config file, read as
 * it is (--dynamic-config-yaml FILE; JSON is YAML too) and laid over a
 * config that the native file and the command line have already made.
 *
 * Flat keys as vllm_router's flags (the rows of settings.c that say
 * SETTING_DYNAMIC, set by vllm_settings.c); static_models may also be a map
 * of model -> {static_backends, static_model_type, fallback_model}.  A key the file does not set
 * keeps its value; when the file gives models it gives the whole set of
 * models and aliases (as --static-backends does).  Unknown keys are logged
 * as warnings and ignored; values of the wrong kind are errors.
 */
#ifndef SY_DYNCONF_H
#define SY_DYNCONF_H

#include <stddef.h>
#include "config.h"

/* Read the file at `path` and apply it to cfg, before config_finish.  The
 * file's tree is kept in cfg->dyn_tree (plugin settings point into it) and
 * its path in cfg->dynamic_config.  -1 with "FILE:LINE: KEY: why" in err;
 * cfg may then be half changed and is only fit for config_free. */
int dynconf_apply(const char *path, struct sy_cfg *cfg, char *err,
                  size_t errlen);
/* The same from a string named `name` (tests). */
int dynconf_apply_string(const char *text, const char *name,
                         struct sy_cfg *cfg, char *err, size_t errlen);

#endif
