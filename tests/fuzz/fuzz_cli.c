/*
 * Fuzz the command line: cli_parse, then cli_apply onto a config, then
 * config_finish, then config_free.
 *
 * Input: the arguments, separated by NUL or newline (argv[0] is added).
 * When the first argument is "@file" it is dropped and the flags apply on
 * top of a small config file with models, aliases and plugin settings (the
 * paths that merge into a file's config); otherwise onto config_new().
 *
 * getopt keeps state between calls: optind = 0 makes glibc reinitialise it
 * completely (cli_parse does so too; the harness does not rely on it).
 *
 * Invariants: every failure says why; --static-backend-health-check-interval
 * reaches plugin_config.http_probe.interval as text that reads back as the
 * same seconds; a config that finishes has models, each with backends, and
 * aliases and fallbacks that name models.
 */
#include <getopt.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "fuzz.h"

#define MAX_ARGS 64

static const char base_yaml[] =
    "port: 9000\n"
    "routing: [session, least_loaded]\n"
    "plugin_config:\n"
    "  session:\n"
    "    key: x-user\n"
    "  http_probe:\n"
    "models:\n"
    "  llama-70b:\n"
    "    backends: [http://10.0.0.1:8000, {url: http://10.0.0.2:8000, weight: 2}]\n"
    "    fallback_model: small\n"
    "  llama-8b:\n"
    "    backends: http://10.0.0.3:8000/v1\n"
    "    type: completion\n"
    "    aliases: [small, org/m:v1]\n"
    "aliases:\n"
    "  big: llama-70b\n";

static void check_finished(const struct sy_cfg *cfg)
{
    FUZZ_CHECK(cfg->nmodels > 0, "finished config without models");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct model_cfg *m = &cfg->models[i];
        FUZZ_CHECK(m->nbackends > 0, "model '%s' without backends", m->name);
        if (m->fallback_model)
            FUZZ_CHECK(config_find_model(cfg, m->fallback_model) != NULL,
                       "model '%s' falls back to unknown '%s'", m->name,
                       m->fallback_model);
    }
    for (size_t i = 0; i < cfg->naliases; i++)
        FUZZ_CHECK(config_find_model(cfg, cfg->aliases[i].model) != NULL,
                   "alias '%s' names unknown model '%s'", cfg->aliases[i].alias,
                   cfg->aliases[i].model);
}

/* The interval flag reaches http_probe as plugin_config text: it must read
 * back as the seconds given (to the microsecond). */
static void check_interval(const struct sy_cfg *cfg, double given)
{
    const struct cfg_node *iv =
        cfg_map_get(config_plugin_section(cfg, "http_probe"), "interval");
    double back = -1;
    FUZZ_CHECK(iv != NULL && iv->kind == CFG_SCALAR, "no http_probe.interval");
    FUZZ_CHECK(cfg_parse_seconds(iv->scalar, &back) == 0 && back > 0 &&
               fabs(back - given) <= 1e-6 * (given > 1 ? given : 1),
               "interval %.17g written as '%s'", given, iv->scalar);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0, from_file = 0;
    struct cli_opts o = {0};
    struct sy_cfg *cfg = NULL;
    char err[512];

    argv[argc++] = strdup("switchyard");
    /* each argument in its own allocation, so overreads are caught */
    for (size_t i = 0; i <= size && argc <= MAX_ARGS;) {
        size_t j = i;
        while (j < size && data[j] != '\0' && data[j] != '\n')
            j++;
        if (argc == 1 && j - i == 5 && memcmp(data + i, "@file", 5) == 0) {
            from_file = 1;
        } else if (j < size || j > i) {
            char *a = malloc(j - i + 1);
            if (a == NULL)
                break;
            memcpy(a, data + i, j - i);
            a[j - i] = '\0';
            argv[argc++] = a;
        }
        i = j + 1;
    }
    argv[argc] = NULL;

    optind = 0; /* a full reset of getopt's state */
    err[0] = '\0';
    if (cli_parse(argc, argv, &o, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] != '\0', "cli_parse failed without a reason");
        goto out;
    }
    FUZZ_CHECK(o.action >= CLI_RUN && o.action <= CLI_HELP, "action %d", (int)o.action);
    if (from_file) {
        FUZZ_CHECK(config_load_string(base_yaml, "base.yaml", &cfg, err, sizeof err) == 0,
                   "base config: %s", err);
    } else {
        cfg = config_new();
        if (cfg == NULL)
            goto out;
    }
    err[0] = '\0';
    if (cli_apply(&o, cfg, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] != '\0', "cli_apply failed without a reason");
        goto out;
    }
    const struct cfg_node *iv = cfg_map_get(o.flags, "static_backend_health_check_interval");
    double given;
    if (iv != NULL && iv->kind == CFG_SCALAR && cfg_parse_seconds(iv->scalar, &given) == 0)
        check_interval(cfg, given);
    err[0] = '\0';
    if (config_finish(cfg, err, sizeof err) == 0)
        check_finished(cfg);
    else
        FUZZ_CHECK(err[0] != '\0', "config_finish failed without a reason");
out:
    config_free(cfg);
    cli_free(&o);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return 0;
}
