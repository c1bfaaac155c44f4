/* dynconf: production-stack's dynamic router config over struct sy_cfg. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "dynconf.h"
#include "log.h"
#include "setup.h"
#include "unit.h"

#define HAS(hay, needle)                                                      \
    do {                                                                      \
        const char *h_ = (hay), *n_ = (needle);                               \
        if (!h_ || !strstr(h_, n_))                                           \
            fprintf(stderr, "\n'%s' lacks '%s'\n", h_ ? h_ : "(null)", n_);   \
        CU_ASSERT_PTR_NOT_NULL(h_ ? strstr(h_, n_) : NULL);                   \
    } while (0)

/* unit_base_config(native) + the dynamic YAML + config_finish; NULL on error
 * (printed unless quiet). */
static struct sy_cfg *dyn_cfg(const char *native, const char *dyn)
{
    char err[512];
    struct sy_cfg *cfg = unit_base_config(native);
    if (!cfg)
        return NULL;
    if (dynconf_apply_string(dyn, "dyn.yaml", cfg, err, sizeof err) < 0 ||
        config_finish(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "\ndynamic config: %s\n", err);
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Applying `dyn` (then config_finish) fails with an error containing
 * `want`. */
static void dyn_fails(const char *native, const char *dyn, const char *want)
{
    char err[512] = "";
    struct sy_cfg *cfg = unit_base_config(native);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    int rc = dynconf_apply_string(dyn, "dyn.yaml", cfg, err, sizeof err);
    if (rc == 0)
        rc = config_finish(cfg, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    if (rc == 0)
        fprintf(stderr, "\naccepted:\n%s\n", dyn);
    else
        HAS(err, want);
    config_free(cfg);
}

static const struct model_cfg *model(const struct sy_cfg *cfg, const char *n)
{
    return config_find_model(cfg, n);
}

static const char *alias_of(const struct sy_cfg *cfg, const char *alias)
{
    for (size_t i = 0; i < cfg->naliases; i++)
        if (strcmp(cfg->aliases[i].alias, alias) == 0)
            return cfg->aliases[i].model;
    return NULL;
}

static const char *plugin_value(const struct sy_cfg *cfg, const char *plugin,
                                const char *key)
{
    const struct cfg_node *v =
        cfg_map_get(config_plugin_section(cfg, plugin), key);
    return v && v->kind == CFG_SCALAR ? v->scalar : NULL;
}

static int in_plugins(const struct plugin_list *pl, const char *name)
{
    for (size_t i = 0; i < pl->n; i++)
        if (strcmp(pl->names[i], name) == 0)
            return 1;
    return 0;
}

/* ---- what stderr got while running fn (the log's warnings) ---- */

static char *capture_stderr(int (*fn)(void *), void *arg, int *rc)
{
    char path[] = "/tmp/sy-dynconf-XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    char *out = NULL;
    if (fd < 0 || saved < 0)
        return NULL;
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    *rc = fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    if (len >= 0 && (out = calloc(1, (size_t)len + 1)) != NULL &&
        pread(fd, out, (size_t)len, 0) < 0) {
        free(out);
        out = NULL;
    }
    close(fd);
    unlink(path);
    return out;
}

struct apply_arg {
    const char *text;
    struct sy_cfg *cfg;
    char err[512];
};

static int apply_fn(void *p)
{
    struct apply_arg *a = p;
    return dynconf_apply_string(a->text, "dyn.yaml", a->cfg, a->err,
                                sizeof a->err) < 0 ||
           config_finish(a->cfg, a->err, sizeof a->err) < 0 ? -1 : 0;
}

/* ---- tests ---- */

static void test_dynconf_string_form(void)
{
    struct sy_cfg *cfg = dyn_cfg(NULL,
        "service_discovery: static\n"
        "routing_logic: roundrobin\n"
        "static_backends: \"http://a:8000, http://b:8000/,http://c:8000/v1\"\n"
        "static_models: \"llama,llama,small\"\n"
        "static_model_types: \"chat,chat,completion\"\n"
        "static_aliases: \"gpt4:llama,org/m:v1=small\"\n"
        "static_fallback_models: \"llama:small\"\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->nmodels, 2);
    const struct model_cfg *l = model(cfg, "llama"), *s = model(cfg, "small");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(l->nbackends, 2);
    CU_ASSERT_STRING_EQUAL(l->backends[0].url, "http://a:8000");
    CU_ASSERT_STRING_EQUAL(l->backends[1].url, "http://b:8000");
    CU_ASSERT_EQUAL(l->backends[0].weight, 1);
    CU_ASSERT_STRING_EQUAL(l->type, "chat");
    CU_ASSERT_STRING_EQUAL(l->fallback_model, "small");
    CU_ASSERT_EQUAL_FATAL(s->nbackends, 1);
    CU_ASSERT_STRING_EQUAL(s->backends[0].url, "http://c:8000/v1");
    CU_ASSERT_STRING_EQUAL(s->type, "completion");
    CU_ASSERT_PTR_NULL(s->fallback_model);
    CU_ASSERT_EQUAL(cfg->naliases, 2);
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "gpt4"), "llama");
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "org/m:v1"), "small");
    CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "roundrobin");
    /* a fallback_model turns model_map on, as in the native file */
    CU_ASSERT_TRUE(in_plugins(&cfg->fallback, "model_map"));
    config_free(cfg);

    /* YAML lists instead of comma strings */
    cfg = dyn_cfg(NULL,
        "static_backends: [http://a:8000, 'http://b:8000']\n"
        "static_models: [llama, small]\n"
        "static_model_types: [chat, embeddings]\n"
        "static_aliases: ['gpt4:llama']\n"
        "static_fallback_models: ['small=llama']\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->nmodels, 2);
    CU_ASSERT_STRING_EQUAL(model(cfg, "small")->type, "embeddings");
    CU_ASSERT_STRING_EQUAL(model(cfg, "small")->fallback_model, "llama");
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "gpt4"), "llama");
    config_free(cfg);

    /* vllm_router's other types, in both forms */
    cfg = dyn_cfg(NULL,
        "static_backends: http://a:1,http://b:1\n"
        "static_models: whisper,llava\n"
        "static_model_types: transcription,vision\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(model(cfg, "whisper")->type, "transcription");
    CU_ASSERT_STRING_EQUAL(model(cfg, "llava")->type, "vision");
    config_free(cfg);
    cfg = dyn_cfg(NULL,
        "static_models:\n"
        "  claude:\n"
        "    static_backends: http://a:1\n"
        "    static_model_type: messages\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(model(cfg, "claude")->type, "messages");
    config_free(cfg);

    /* JSON is YAML too; null is "not given" */
    cfg = dyn_cfg(NULL,
        "{\"service_discovery\": \"static\", \"routing_logic\": \"roundrobin\",\n"
        " \"static_backends\": \"http://a:1,http://b:2\",\n"
        " \"static_models\": \"m1,m2\", \"static_aliases\": null,\n"
        " \"session_key\": null, \"k8s_namespace\": null}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->nmodels, 2);
    CU_ASSERT_EQUAL(cfg->naliases, 0);
    config_free(cfg);

    /* empty lists are "not given" too: the native models stay */
    cfg = dyn_cfg("models: {m: {backends: [http://a:1]}}\n",
                  "static_backends: []\nstatic_models: []\n"
                  "static_model_types: []\nstatic_aliases: []\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->nmodels, 1);
    CU_ASSERT_PTR_NOT_NULL(model(cfg, "m"));
    config_free(cfg);
}

static void test_dynconf_map_form(void)
{
    struct sy_cfg *cfg = dyn_cfg(NULL,
        "service_discovery: static\n"
        "routing_logic: roundrobin\n"
        "static_models:\n"
        "  llama:\n"
        "    static_backends: [\"http://a:8000\", \"http://b:8000\"]\n"
        "    static_model_type: chat\n"
        "    fallback_model: small\n"
        "  org/m:v1:\n"
        "    static_backends: \"http://c:8000, http://e:8000\"\n"
        "    static_model_type: rerank\n"
        "    fallback_model: gpt4\n"
        "  small:\n"
        "    static_backends: http://d:8000\n"
        "    fallback_model:\n"
        "static_aliases:\n"
        "  gpt4: llama\n"
        "  \"team:fast\": org/m:v1\n"
        "max_instance_failover_reroute_attempts: 2\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->nmodels, 3);
    const struct model_cfg *l = model(cfg, "llama"), *o = model(cfg, "org/m:v1"),
                           *s = model(cfg, "small");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(l->nbackends, 2);
    CU_ASSERT_STRING_EQUAL(l->fallback_model, "small");
    CU_ASSERT_EQUAL(l->line, 4);
    CU_ASSERT_EQUAL_FATAL(o->nbackends, 2);
    CU_ASSERT_STRING_EQUAL(o->backends[1].url, "http://e:8000");
    CU_ASSERT_STRING_EQUAL(o->type, "rerank");
    /* an alias as the target resolves to its model, as in the native file */
    CU_ASSERT_STRING_EQUAL(o->fallback_model, "llama");
    CU_ASSERT_PTR_NULL(s->fallback_model);
    CU_ASSERT_STRING_EQUAL(s->type, "chat");
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "gpt4"), "llama");
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "team:fast"), "org/m:v1");
    CU_ASSERT_EQUAL(cfg->reroute_attempts, 2);
    config_free(cfg);

    /* static_fallback_models still works with the map, by name or alias */
    cfg = dyn_cfg(NULL,
        "static_models:\n"
        "  a: {static_backends: 'http://a:1'}\n"
        "  b: {static_backends: 'http://b:1'}\n"
        "static_aliases: {bee: b}\n"
        "static_fallback_models: {bee: a, a: bee}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(model(cfg, "a")->fallback_model, "b");
    CU_ASSERT_STRING_EQUAL(model(cfg, "b")->fallback_model, "a");
    config_free(cfg);
}

static void test_dynconf_colon_names(void)
{
    struct sy_cfg *cfg = dyn_cfg(NULL,
        "static_backends: http://a:1,http://b:1,http://c:1\n"
        "static_models: org/m:v1,org/m:v2,plain\n"
        "static_aliases: 'x:y=org/m:v1,short:plain,a:b:plain'\n"
        "static_fallback_models: 'org/m:v1=org/m:v2,org/m:v2=x:y,plain=org/m:v2'\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->nmodels, 3);
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "x:y"), "org/m:v1");
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "short"), "plain");
    /* no '=': split at the last ':' */
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "a:b"), "plain");
    CU_ASSERT_STRING_EQUAL(model(cfg, "org/m:v1")->fallback_model, "org/m:v2");
    CU_ASSERT_STRING_EQUAL(model(cfg, "org/m:v2")->fallback_model, "org/m:v1");
    CU_ASSERT_STRING_EQUAL(model(cfg, "plain")->fallback_model, "org/m:v2");
    config_free(cfg);
}

static void test_dynconf_health(void)
{
    struct sy_cfg *cfg = dyn_cfg(NULL,
        "static_backends: http://a:1\n"
        "static_models: m\n"
        "static_backend_health_checks: true\n"
        "static_backend_health_check_interval: 2.5\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_TRUE(in_plugins(&cfg->health, "http_probe"));
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "http_probe", "probe"), "inference");
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "http_probe", "interval"), "2.5");
    /* a plugin's complaint names this file and line */
    const struct cfg_node *sec = config_plugin_section(cfg, "http_probe");
    CU_ASSERT_STRING_EQUAL(sec->file, "dyn.yaml");
    CU_ASSERT_EQUAL(cfg_map_key_line(sec, "interval"), 4);
    config_free(cfg);

    /* the interval alone sets the interval; "10" and "5s" both work */
    cfg = dyn_cfg("health: [passive, http_probe]\n"
                  "plugin_config:\n"
                  "  http_probe: {interval: 30s, timeout: 1s}\n"
                  "models: {m: {backends: [http://a:1]}}\n",
                  "static_backend_health_check_interval: 10\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "http_probe", "interval"), "10");
    /* the native file's other settings stay */
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "http_probe", "timeout"), "1s");
    CU_ASSERT_PTR_NULL(plugin_value(cfg, "http_probe", "probe"));
    CU_ASSERT_EQUAL(cfg->health.n, 2);
    config_free(cfg);

    /* false overrides the native file's http_probe (passive stays) */
    cfg = dyn_cfg("health: [passive, http_probe]\n"
                  "models: {m: {backends: [http://a:1]}}\n",
                  "static_backend_health_checks: false\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cfg->health.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->health.names[0], "passive");
    config_free(cfg);

    /* yes/no spellings, and http_probe is not listed twice */
    cfg = dyn_cfg("health: [http_probe]\n"
                  "models: {m: {backends: [http://a:1]}}\n",
                  "static_backend_health_checks: yes\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->health.n, 1);
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "http_probe", "probe"), "inference");
    config_free(cfg);
}

static void test_dynconf_routing(void)
{
    struct sy_cfg *cfg = dyn_cfg("routing: prefixaware\n"
                                 "models: {m: {backends: [http://a:1]}}\n",
                                 "routing_logic: session\n"
                                 "session_key: x-user-id\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    /* session means [session, least_loaded], as the flag does */
    CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 2);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "session");
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[1], "least_loaded");
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "session", "key"), "x-user-id");
    /* models not in the file stay */
    CU_ASSERT_PTR_NOT_NULL(model(cfg, "m"));
    config_free(cfg);

    const char *names[] = {"roundrobin", "least_loaded", "prefixaware"};
    for (size_t i = 0; i < 3; i++) {
        char text[128];
        snprintf(text, sizeof text, "routing_logic: %s\n"
                 "static_backends: http://a:1\nstatic_models: m\n", names[i]);
        cfg = dyn_cfg(NULL, text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        CU_ASSERT_EQUAL(cfg->routing.n, 1);
        CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], names[i]);
        config_free(cfg);
    }
}

static void test_dynconf_unknown_keys_warn(void)
{
    struct apply_arg a = {.cfg = config_new()};
    int rc = -1;
    a.text = "service_discovery: static\n"
             "routing_logic: roundrobin\n"
             "sentry_dsn: https://key@sentry.invalid/1\n"
             "callbacks: my.module\n"
             "static_models:\n"
             "  llama:\n"
             "    static_backends: http://a:1\n"
             "    static_model_label: x\n"
             "future_thing: {a: [1, 2]}\n";
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.cfg);
    int saved_level = log_level, saved_format = log_format;
    log_level = SY_LOG_INFO;
    log_format = LOG_FORMAT_TEXT;
    char *out = capture_stderr(apply_fn, &a, &rc);
    log_level = saved_level;
    log_format = saved_format;
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        fprintf(stderr, "\n%s\n", a.err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    HAS(out, "dyn.yaml:3: sentry_dsn: not supported by switchyard, ignored");
    HAS(out, "dyn.yaml:4: callbacks: not supported by switchyard, ignored");
    HAS(out, "dyn.yaml:8: static_models.llama.static_model_label: unknown "
             "setting, ignored");
    HAS(out, "dyn.yaml:9: future_thing: unknown setting, ignored");
    HAS(out, "WARNING");
    CU_ASSERT_PTR_NULL(strstr(out, "routing_logic"));
    CU_ASSERT_EQUAL(a.cfg->nmodels, 1);
    free(out);
    config_free(a.cfg);
}

static void test_dynconf_wrong_types(void)
{
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"routing_logic: [roundrobin]\n",
         "dyn.yaml:1: routing_logic: expected a single value, got a list"},
        {"routing_logic: random\n",
         "dyn.yaml:1: routing_logic: expected roundrobin, session, "
         "least_loaded, prefixaware, kvaware, disaggregated_prefill or priority, "
         "got 'random'"},
        {"x: 1\nsession_key: {h: 1}\n",
         "dyn.yaml:2: session_key: expected a single value, got a map"},
        {"static_backend_health_checks: maybe\n",
         "dyn.yaml:1: static_backend_health_checks: expected true or false, "
         "got 'maybe'"},
        {"static_backend_health_check_interval: soon\n",
         "dyn.yaml:1: static_backend_health_check_interval: expected seconds"},
        {"static_backend_health_check_interval: 0\n",
         "dyn.yaml:1: static_backend_health_check_interval: expected seconds"},
        {"max_instance_failover_reroute_attempts: two\n",
         "dyn.yaml:1: max_instance_failover_reroute_attempts: expected a whole "
         "number 0..100, got 'two'"},
        {"max_instance_failover_reroute_attempts: 101\n",
         "dyn.yaml:1: max_instance_failover_reroute_attempts:"},
        {"static_backends: {a: b}\nstatic_models: m\n",
         "dyn.yaml:1: static_backends: expected a comma-separated string or a "
         "list, got a map"},
        {"static_backends:\n  - http://a:1\n  - {url: http://b:1}\n"
         "static_models: [a, b]\n",
         "dyn.yaml:3: static_backends: expected a list of strings, got a map"},
        {"static_backends: http://a:1,,http://b:1\nstatic_models: a,b\n",
         "dyn.yaml:1: static_backends: empty item"},
        {"static_backends: http://a:1,http://b:1\nstatic_models: a\n",
         "dyn.yaml:2: static_models: 1 model(s) for 2 backend(s)"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_model_types: chat,chat\n",
         "dyn.yaml:3: static_model_types: 2 type(s) for 1 backend(s)"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_model_types: chatty\n",
         "dyn.yaml:3: static_model_types: unknown type 'chatty' (expected "
         "chat, completion, embeddings, rerank, score, transcription, vision "
         "or messages)"},
        {"static_backends: http://a:1,http://b:1\nstatic_models: a,a\n"
         "static_model_types: chat,score\n",
         "dyn.yaml:3: static_model_types: model 'a' is given types"},
        {"static_backends: ftp://a:1\nstatic_models: a\n",
         "dyn.yaml:1: static_backends: 'ftp://a:1': must start with http://"},
        {"static_backends: http://a:1,http://a:1\nstatic_models: a,a\n",
         "dyn.yaml:1: static_backends: 'http://a:1' is given twice"},
        {"x: 1\nstatic_models: a\n",
         "dyn.yaml:2: static_models: needs static_backends"},
        {"static_backends: http://a:1\n",
         "dyn.yaml:1: static_backends: needs static_models"},
        {"static_model_types: chat\n",
         "dyn.yaml:1: static_model_types: needs static_backends"},
        {"static_models:\n  llama: [http://a:1]\n",
         "dyn.yaml:2: static_models.llama: expected a map with static_backends"},
        {"static_models:\n  llama:\n    static_backends: {u: 1}\n",
         "dyn.yaml:3: static_models.llama.static_backends: expected a "
         "comma-separated string or a list, got a map"},
        {"static_models:\n  llama:\n    static_model_type: chat\n",
         "dyn.yaml:2: static_models.llama: model 'llama' has no backends"},
        {"static_models:\n  llama:\n    static_backends: http://a:1\n"
         "    static_model_type: [chat]\n",
         "dyn.yaml:4: static_models.llama.static_model_type: expected a single "
         "value, got a list"},
        {"static_models:\n  llama:\n    static_backends: http://a:1\n"
         "    static_model_type: talk\n",
         "dyn.yaml:4: static_models.llama.static_model_type: expected chat, "
         "completion, embeddings, rerank, score, transcription, vision or "
         "messages, got 'talk'"},
        {"static_models:\n  llama:\n    static_backends: http://a:1\n"
         "    fallback_model: {m: 1}\n",
         "dyn.yaml:4: static_models.llama.fallback_model: expected a single "
         "value, got a map"},
        {"static_models:\n  llama:\n    static_backends: http://a:1\n"
         "    fallback_model: nope\n",
         "dyn.yaml:4: static_models.llama.fallback_model: model 'llama' falls "
         "back to unknown model 'nope'"},
        {"static_models:\n  llama:\n    static_backends: http://a:1\n"
         "    fallback_model: llama\n",
         "dyn.yaml:4: static_models.llama.fallback_model: model 'llama' falls "
         "back to itself"},
        {"static_models: {}\n", "dyn.yaml:1: static_models: no models"},
        {"static_backends: http://a:1\n"
         "static_models:\n  a: {static_backends: http://a:1}\n",
         "dyn.yaml:1: static_backends: with static_models as a map"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_aliases: gpt4\n",
         "dyn.yaml:3: static_aliases: expected ALIAS:MODEL or ALIAS=MODEL, "
         "got 'gpt4'"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_aliases: gpt4:b\n",
         "dyn.yaml:3: static_aliases: alias 'gpt4' names unknown model 'b'"},
        {"static_backends: http://a:1,http://b:1\nstatic_models: a,b\n"
         "static_aliases: b:a\n",
         "dyn.yaml:3: static_aliases: alias 'b' is also the name of a model"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_aliases: [x:a, x:a]\n",
         "dyn.yaml:3: static_aliases: alias 'x' is given twice"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_aliases:\n  x: [a]\n",
         "dyn.yaml:4: static_aliases.x: expected a single value, got a list"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_fallback_models: b:a\n",
         "dyn.yaml:3: static_fallback_models: unknown model 'b'"},
        {"static_backends: http://a:1,http://b:1\nstatic_models: a,b\n"
         "static_fallback_models: a:c\n",
         "dyn.yaml:3: static_fallback_models: model 'a' falls back to unknown "
         "model 'c'"},
        {"static_backends: http://a:1,http://b:1\nstatic_models: a,b\n"
         "static_aliases: x:a\nstatic_fallback_models: a:b,x:b\n",
         "dyn.yaml:4: static_fallback_models: model 'a' is given twice"},
        {"static_models:\n  a:\n    static_backends: http://a:1\n"
         "    fallback_model: b\n  b: {static_backends: http://b:1}\n"
         "static_fallback_models: a:b\n",
         "dyn.yaml:6: static_fallback_models: model 'a' already has a "
         "fallback_model (line 4)"},
        {"static_backends: http://a:1\nstatic_models: a\n"
         "static_aliases: x:a\nstatic_fallback_models: a:x\n",
         "dyn.yaml:4: static_fallback_models: model 'a' falls back to itself "
         "(through alias 'x')"},
        {"static_models: [a\n", "dyn.yaml:"}, /* not YAML */
        {"- a\n- b\n", "dyn.yaml:1: the top level must be a map"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        dyn_fails(NULL, bad[i].yaml, bad[i].want);

    /* on a native config: aliases and fallbacks over its models */
    const char *native = "models:\n  m: {backends: [http://a:1]}\n"
                         "  n: {backends: [http://b:1]}\n";
    dyn_fails(native, "static_aliases: m:n\n",
              "dyn.yaml:1: static_aliases: alias 'm' is also the name of a "
              "model");
    dyn_fails(native, "static_fallback_models: m=zz\n",
              "dyn.yaml:1: static_fallback_models: model 'm' falls back to "
              "unknown model 'zz'");
}

static void test_dynconf_discovery(void)
{
    dyn_fails(NULL, "service_discovery: consul\nrouting_logic: roundrobin\n",
              "dyn.yaml:1: service_discovery: expected static or k8s, got 'consul'");
    /* k8s: the k8s discovery plugin, its settings from vllm_router's keys */
    struct sy_cfg *k8s = dyn_cfg(NULL, "service_discovery: k8s\n"
                                       "k8s_namespace: prod\n"
                                       "k8s_label_selector: app=vllm\n"
                                       "k8s_port: 8080\n"
                                       "k8s_service_discovery_type: pod-ip\n"
                                       "k8s_watcher_timeout_seconds: 30\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k8s);
    CU_ASSERT_EQUAL_FATAL(k8s->discovery.n, 1);
    CU_ASSERT_STRING_EQUAL(k8s->discovery.names[0], "k8s");
    const struct cfg_node *sec = config_plugin_section(k8s, "k8s");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(sec, "namespace")->scalar, "prod");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(sec, "label_selector")->scalar, "app=vllm");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(sec, "port")->scalar, "8080");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(sec, "service_discovery_type")->scalar, "pod-ip");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(sec, "watcher_timeout_seconds")->scalar, "30");
    /* no models written down: they come from the pods */
    CU_ASSERT_EQUAL(k8s->nmodels, 0);
    config_free(k8s);
    dyn_fails(NULL, "routing_logic: roundrobin\nservice_discovery: [static]\n",
              "dyn.yaml:2: service_discovery: expected a single value");
    struct sy_cfg *cfg = dyn_cfg(NULL, "service_discovery: static\n"
                                       "static_backends: http://a:1\n"
                                       "static_models: m\n");
    CU_ASSERT_PTR_NOT_NULL(cfg);
    config_free(cfg);
}

/* Two configs have the same models, backends, aliases and fallbacks. */
static void same_models(const struct sy_cfg *a, const struct sy_cfg *b)
{
    CU_ASSERT_EQUAL_FATAL(a->nmodels, b->nmodels);
    for (size_t i = 0; i < a->nmodels; i++) {
        const struct model_cfg *x = &a->models[i];
        const struct model_cfg *y = config_find_model(b, x->name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(y);
        CU_ASSERT_STRING_EQUAL(x->type, y->type);
        CU_ASSERT_EQUAL((x->fallback_model == NULL), (y->fallback_model == NULL));
        if (x->fallback_model && y->fallback_model)
            CU_ASSERT_STRING_EQUAL(x->fallback_model, y->fallback_model);
        CU_ASSERT_EQUAL((x->api_key_env == NULL), (y->api_key_env == NULL));
        CU_ASSERT_EQUAL_FATAL(x->nbackends, y->nbackends);
        for (size_t j = 0; j < x->nbackends; j++) {
            CU_ASSERT_STRING_EQUAL(x->backends[j].url, y->backends[j].url);
            CU_ASSERT_EQUAL(x->backends[j].weight, y->backends[j].weight);
            CU_ASSERT_EQUAL((x->backends[j].api_key_env == NULL),
                            (y->backends[j].api_key_env == NULL));
        }
    }
    CU_ASSERT_EQUAL_FATAL(a->naliases, b->naliases);
    for (size_t i = 0; i < a->naliases; i++) {
        const char *m = alias_of(b, a->aliases[i].alias);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_STRING_EQUAL(m, a->aliases[i].model);
    }
}

static void same_lists(const struct plugin_list *a, const struct plugin_list *b)
{
    CU_ASSERT_EQUAL_FATAL(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        CU_ASSERT_STRING_EQUAL(a->names[i], b->names[i]);
}

static void test_dynconf_equivalent_native(void)
{
    static const char native[] =
        "routing: [session, least_loaded]\n"
        "health: [http_probe]\n"
        "reroute_attempts: 1\n"
        "plugin_config:\n"
        "  session: {key: x-user-id}\n"
        "  http_probe: {probe: inference, interval: 10}\n"
        "models:\n"
        "  llama-70b:\n"
        "    backends: [http://10.0.0.1:8000, http://10.0.0.2:8000]\n"
        "    type: chat\n"
        "    fallback_model: llama-8b\n"
        "  llama-8b:\n"
        "    backends: [http://10.0.0.3:8000]\n"
        "    fallback_model: org/tiny:q4\n"
        "  org/tiny:q4:\n"
        "    backends: [http://10.0.0.4:8000/v1]\n"
        "    type: completion\n"
        "aliases:\n"
        "  gpt-4: llama-70b\n"
        "  small:latest: llama-8b\n";
    /* the structured form */
    static const char dyn_map[] =
        "service_discovery: static\n"
        "routing_logic: session\n"
        "session_key: x-user-id\n"
        "static_backend_health_checks: true\n"
        "static_backend_health_check_interval: 10\n"
        "max_instance_failover_reroute_attempts: 1\n"
        "static_models:\n"
        "  llama-70b:\n"
        "    static_backends: [http://10.0.0.1:8000, http://10.0.0.2:8000]\n"
        "    static_model_type: chat\n"
        "    fallback_model: llama-8b\n"
        "  llama-8b:\n"
        "    static_backends: http://10.0.0.3:8000\n"
        "    fallback_model: org/tiny:q4\n"
        "  org/tiny:q4:\n"
        "    static_backends: http://10.0.0.4:8000/v1\n"
        "    static_model_type: completion\n"
        "static_aliases:\n"
        "  gpt-4: llama-70b\n"
        "  small:latest: llama-8b\n";
    /* the flat form, as vllm_router's flags */
    static const char dyn_flat[] =
        "service_discovery: static\n"
        "routing_logic: session\n"
        "session_key: x-user-id\n"
        "static_backend_health_checks: true\n"
        "static_backend_health_check_interval: 10\n"
        "max_instance_failover_reroute_attempts: 1\n"
        "static_backends: \"http://10.0.0.1:8000,http://10.0.0.2:8000,"
        "http://10.0.0.3:8000,http://10.0.0.4:8000/v1\"\n"
        "static_models: \"llama-70b,llama-70b,llama-8b,org/tiny:q4\"\n"
        "static_model_types: \"chat,chat,chat,completion\"\n"
        "static_aliases: \"gpt-4:llama-70b,small:latest=llama-8b\"\n"
        "static_fallback_models: \"llama-70b:llama-8b,llama-8b=org/tiny:q4\"\n";
    char err[512];
    struct sy_cfg *want = unit_base_config(native);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_EQUAL_FATAL(config_finish(want, err, sizeof err), 0);
    const char *dyns[] = {dyn_map, dyn_flat};
    for (size_t i = 0; i < 2; i++) {
        struct sy_cfg *got = dyn_cfg(NULL, dyns[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        same_models(want, got);
        same_lists(&want->routing, &got->routing);
        same_lists(&want->health, &got->health);
        same_lists(&want->fallback, &got->fallback);
        CU_ASSERT_EQUAL(want->reroute_attempts, got->reroute_attempts);
        CU_ASSERT_STRING_EQUAL(plugin_value(got, "session", "key"), "x-user-id");
        CU_ASSERT_STRING_EQUAL(plugin_value(got, "http_probe", "probe"),
                               plugin_value(want, "http_probe", "probe"));
        CU_ASSERT_STRING_EQUAL(plugin_value(got, "http_probe", "interval"),
                               plugin_value(want, "http_probe", "interval"));
        config_free(got);
    }
    config_free(want);
}

/* native file < command-line flags < the dynamic file, key by key */
static void test_dynconf_precedence(void)
{
    static char *argv[] = {
        "switchyard", "--routing-logic", "least_loaded",
        "--max-instance-failover-reroute-attempts", "5",
        "--session-key", "x-flag", "--static-aliases", "fa:file-a",
        "--upstream-timeout", "7", NULL,
    };
    struct cli_opts o;
    char err[512];
    struct sy_cfg *cfg = unit_base_config("workers: 3\n"
                                  "upstream_timeout: 30\n"
                                  "routing: prefixaware\n"
                                  "plugin_config:\n"
                                  "  session: {ttl: 60s}\n"
                                  "models:\n"
                                  "  file-a: {backends: [http://f:1]}\n"
                                  "  file-b: {backends: [http://f:2]}\n"
                                  "aliases: {gpt: file-a}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cli_parse(11, argv, &o, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(cli_apply(&o, cfg, err, sizeof err), 0);
    cli_free(&o);
    CU_ASSERT_EQUAL_FATAL(dynconf_apply_string(
        "routing_logic: roundrobin\n"
        "session_key: x-dyn\n"
        "static_aliases: gpt:file-b\n"
        "static_fallback_models: file-a:file-b\n", "dyn.yaml", cfg, err,
        sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(config_finish(cfg, err, sizeof err), 0);
    /* the dynamic file's keys win */
    CU_ASSERT_EQUAL(cfg->routing.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "roundrobin");
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "session", "key"), "x-dyn");
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "gpt"), "file-b");
    CU_ASSERT_STRING_EQUAL(model(cfg, "file-a")->fallback_model, "file-b");
    /* what it does not say keeps the flags' and the file's values */
    CU_ASSERT_EQUAL(cfg->reroute_attempts, 5);
    CU_ASSERT_TRUE(cfg->upstream_timeout == 7);
    CU_ASSERT_EQUAL(cfg->workers, 3);
    CU_ASSERT_STRING_EQUAL(plugin_value(cfg, "session", "ttl"), "60s");
    CU_ASSERT_STRING_EQUAL(alias_of(cfg, "fa"), "file-a");
    CU_ASSERT_EQUAL(cfg->nmodels, 2);
    config_free(cfg);

    /* models in the dynamic file are the whole set: the file's and the
     * flags' models and aliases go */
    cfg = unit_base_config("models:\n  file-a: {backends: [http://f:1]}\n"
                   "aliases: {gpt: file-a}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(cli_parse(9, argv, &o, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(cli_apply(&o, cfg, err, sizeof err), 0);
    cli_free(&o);
    CU_ASSERT_EQUAL_FATAL(dynconf_apply_string(
        "static_backends: http://d:1\nstatic_models: dyn-m\n", "dyn.yaml",
        cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(config_finish(cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg->nmodels, 1);
    CU_ASSERT_PTR_NOT_NULL(model(cfg, "dyn-m"));
    CU_ASSERT_EQUAL(cfg->naliases, 0);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "least_loaded");
    config_free(cfg);
}

static void test_dynconf_file(void)
{
    char path[] = "/tmp/sy-dynconf-XXXXXX";
    char err[512];
    int fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    static const char text[] =
        "{\n"
        "  \"service_discovery\": \"static\",\n"
        "  \"routing_logic\": \"roundrobin\",\n"
        "  \"static_backends\": \"http://a:1,http://b:1\",\n"
        "  \"static_models\": \"m,m\",\n"
        "  \"static_aliases\": \"gpt:m\"\n"
        "}\n";
    CU_ASSERT_EQUAL_FATAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct sy_cfg *cfg = config_new();
    CU_ASSERT_EQUAL(dynconf_apply(path, cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(cfg->dynamic_config);
    if (cfg->dynamic_config)
        CU_ASSERT_STRING_EQUAL(cfg->dynamic_config, path);
    CU_ASSERT_PTR_NOT_NULL(cfg->dyn_tree);
    CU_ASSERT_EQUAL(cfg->nmodels, 1);
    CU_ASSERT_EQUAL(cfg->models[0].nbackends, 2);
    /* a second one on the same config is refused */
    CU_ASSERT_EQUAL(dynconf_apply(path, cfg, err, sizeof err), -1);
    config_free(cfg);

    /* errors name the file */
    fd = open(path, O_WRONLY | O_TRUNC);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_TRUE(write(fd, "routing_logic: x\n", 17) == 17);
    close(fd);
    cfg = config_new();
    CU_ASSERT_EQUAL(dynconf_apply(path, cfg, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:1: routing_logic:", path);
    HAS(err, want);
    config_free(cfg);
    unlink(path);

    cfg = config_new();
    CU_ASSERT_EQUAL(dynconf_apply("/nonexistent/dyn.yaml", cfg, err,
                                  sizeof err), -1);
    HAS(err, "/nonexistent/dyn.yaml: cannot open");
    CU_ASSERT_PTR_NULL(cfg->dynamic_config);
    config_free(cfg);
}

static void test_dynconf_cli_flag(void)
{
    static char *argv[] = {"switchyard", "--dynamic-config-yaml", "/x/dyn.yaml",
                           NULL};
    static char *argv2[] = {"switchyard", "--dynamic-config-json=/x/d.json",
                            NULL};
    static char *argv3[] = {"switchyard", "--dynamic-config-yaml", NULL};
    struct cli_opts o;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cli_parse(3, argv, &o, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(o.dynamic_config, "/x/dyn.yaml");
    cli_free(&o);
    CU_ASSERT_EQUAL_FATAL(cli_parse(2, argv2, &o, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(o.dynamic_config, "/x/d.json");
    cli_free(&o);
    CU_ASSERT_EQUAL(cli_parse(2, argv3, &o, err, sizeof err), -1);
    HAS(err, "--dynamic-config-yaml: missing value");
    cli_free(&o);
    CU_ASSERT_EQUAL(cli_parse(1, argv, &o, err, sizeof err), 0);
    CU_ASSERT_PTR_NULL(o.dynamic_config);
    cli_free(&o);
}

/* The real plugins take what the dynamic file set up. */
static void test_dynconf_setup(void)
{
    char err[512];
    struct setup *s = NULL;
    struct sy_cfg *cfg = dyn_cfg(NULL,
        "routing_logic: session\n"
        "session_key: x-user-id\n"
        "static_backend_health_checks: true\n"
        "static_backend_health_check_interval: 0.5\n"
        "static_models:\n"
        "  a: {static_backends: 'http://127.0.0.1:9', fallback_model: b}\n"
        "  b: {static_backends: 'http://127.0.0.1:10'}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    int rc = setup_create(cfg, BUILT_PLUGIN_DIR, 1, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\nsetup: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc == 0)
        setup_destroy(s);
}

void register_dynconf_tests(void)
{
    UNIT_SUITE("dynconf",
               UNIT_TEST(test_dynconf_string_form),
               UNIT_TEST(test_dynconf_map_form),
               UNIT_TEST(test_dynconf_colon_names),
               UNIT_TEST(test_dynconf_health),
               UNIT_TEST(test_dynconf_routing),
               UNIT_TEST(test_dynconf_unknown_keys_warn),
               UNIT_TEST(test_dynconf_wrong_types),
               UNIT_TEST(test_dynconf_discovery),
               UNIT_TEST(test_dynconf_equivalent_native),
               UNIT_TEST(test_dynconf_precedence),
               UNIT_TEST(test_dynconf_file),
               UNIT_TEST(test_dynconf_cli_flag),
               UNIT_TEST(test_dynconf_setup));
}
