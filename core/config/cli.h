/*
 * cli: the command line.  Native flags plus vllm_router's static flags, with
 * the same meaning, so a deployment can switch by changing the binary name.
 */
#ifndef SY_CLI_H
#define SY_CLI_H

#include <stdio.h>
#include "config.h"

enum cli_action { CLI_RUN, CLI_CHECK_CONFIG, CLI_VERSION, CLI_HELP };

struct cli_opts {
    enum cli_action action;
    const char *config_path;     /* -c/--config; NULL: default file if it exists */
    const char *dynamic_config;  /* --dynamic-config-yaml FILE (dynconf.h) */
    /* The settings given, as a map of key -> value, file "command line",
     * line 0: each flag is a row of the settings table (settings.h), its
     * key spelt with '_' for '-'; a repeatable flag's values are a list. */
    struct cfg_node *flags;
};

/* Parse argv: which flags, and that each has a value when it takes one.
 * The values are checked when applied (cli_apply).  Returns 0, or -1 with
 * "flag: why" in err (exit status 2); call cli_free either way. */
int cli_parse(int argc, char **argv, struct cli_opts *o, char *err,
              size_t errlen);
/* Was the setting `key` given as a flag? */
int cli_given(const struct cli_opts *o, const char *key);
/* Apply the flags to cfg (from the file, or config_new()), checking each
 * value.  When --static-backends is given the flags define every model and
 * backend and the file's models and aliases are dropped.  -1 with
 * "--flag: why" in err. */
int cli_apply(const struct cli_opts *o, struct sy_cfg *cfg, char *err,
              size_t errlen);
void cli_free(struct cli_opts *o);
void cli_usage(FILE *out, const char *argv0);

#endif
