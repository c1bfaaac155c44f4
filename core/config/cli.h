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
    /* Overrides; NULL / -1 when not given.  Strings point into argv. */
    const char *host;
    int port;
    int workers;
    const char *log_level;
    const char *log_format;      /* "text" or "json" */
    const char *log_file;
    const char *plugin_dirs[16]; /* --plugin-dir, repeatable: a search list */
    int nplugin_dirs;
    double upstream_timeout;     /* < 0: not given */
    int reroute_attempts;
    const char *static_backends;
    const char *static_models;
    const char *static_aliases;
    const char *static_model_types;
    const char *static_fallback_models;
    const char *routing_logic;
    const char *session_key;
    int health_checks;           /* --static-backend-health-checks given */
    double health_check_interval; /* < 0: not given */
    const char *dynamic_config;  /* --dynamic-config-yaml FILE (dynconf.h) */
};

/* Parse argv.  Returns 0, or -1 with "flag: why" in err (exit status 2). */
int cli_parse(int argc, char **argv, struct cli_opts *o, char *err,
              size_t errlen);
/* Apply the flags to cfg (from the file, or config_new()).  When
 * --static-backends is given the flags define every model and backend and the
 * file's models and aliases are dropped.  -1 with "flag: why" in err. */
int cli_apply(const struct cli_opts *o, struct sy_cfg *cfg, char *err,
              size_t errlen);
void cli_usage(FILE *out, const char *argv0);

#endif
