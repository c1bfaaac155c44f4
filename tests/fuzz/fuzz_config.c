/*
 * Fuzz the YAML config loader: config_load_string (cfg_tree + the loader),
 * then config_finish (the whole-picture checks), then config_free.  Also the
 * value parsers (cfg_parse_seconds/bytes/bool) on the input's first line.
 *
 * Invariants: a failure says why (err non-empty) and leaves no config; a
 * config that finishes has models, each with backends and a known type, at
 * least one routing plugin, aliases and fallbacks that name models.  ASan
 * and LeakSanitizer check that everything is freed, on every path.
 *
 * api_keys_file is dropped before config_finish: it names a file to read,
 * and reading files the fuzzer makes up (/dev/zero, /dev/stdin) is not
 * what this harness tests.
 */
#include <math.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

static void value_parsers(const char *text)
{
    char line[128];
    size_t n = strcspn(text, "\n");
    double secs = -1;
    size_t bytes = 0;
    int b = -1;

    if (n >= sizeof line)
        n = sizeof line - 1;
    memcpy(line, text, n);
    line[n] = '\0';
    if (cfg_parse_seconds(line, &secs) == 0)
        FUZZ_CHECK(isfinite(secs) && secs >= 0, "seconds '%s' -> %g", line, secs);
    (void)cfg_parse_bytes(line, &bytes);
    if (cfg_parse_bool(line, &b) == 0)
        FUZZ_CHECK(b == 0 || b == 1, "bool '%s' -> %d", line, b);
}

static void check_finished(const struct sy_cfg *cfg)
{
    FUZZ_CHECK(cfg->nmodels > 0, "finished config without models");
    FUZZ_CHECK(cfg->routing.n > 0, "finished config without routing");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct model_cfg *m = &cfg->models[i];
        FUZZ_CHECK(m->nbackends > 0, "model '%s' without backends", m->name);
        FUZZ_CHECK(m->type != NULL, "model '%s' without a type", m->name);
        FUZZ_CHECK(config_find_model(cfg, m->name) != NULL, "model lookup");
        if (m->fallback_model)
            FUZZ_CHECK(config_find_model(cfg, m->fallback_model) != NULL,
                       "model '%s' falls back to unknown '%s'", m->name,
                       m->fallback_model);
        for (size_t j = 0; j < m->nbackends; j++)
            FUZZ_CHECK(m->backends[j].url != NULL && m->backends[j].weight >= 1,
                       "backend %zu of '%s'", j, m->name);
    }
    for (size_t i = 0; i < cfg->naliases; i++)
        FUZZ_CHECK(config_find_model(cfg, cfg->aliases[i].model) != NULL,
                   "alias '%s' names unknown model '%s'", cfg->aliases[i].alias,
                   cfg->aliases[i].model);
    for (size_t i = 0; i < cfg->routing.n; i++)
        FUZZ_CHECK(config_plugin_section(cfg, cfg->routing.names[i]) != NULL,
                   "plugin section");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct sy_cfg *cfg = NULL;
    char err[512];

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    value_parsers(text);

    err[0] = '\0';
    if (config_load_string(text, "fuzz.yaml", &cfg, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] != '\0', "load failed without a reason");
        free(text);
        return 0;
    }
    FUZZ_CHECK(cfg != NULL, "load succeeded without a config");
    free(cfg->api_keys_file);
    cfg->api_keys_file = NULL;
    err[0] = '\0';
    if (config_finish(cfg, err, sizeof err) == 0)
        check_finished(cfg);
    else
        FUZZ_CHECK(err[0] != '\0', "config_finish failed without a reason");
    config_free(cfg);
    free(text);
    return 0;
}
