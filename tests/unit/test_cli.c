/* cli: flags, their checks, and how they land on the config. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "unit.h"

#define HAS(hay, needle) CU_ASSERT_PTR_NOT_NULL(strstr((hay), (needle)))
#define MAX_ARGS 64

/* cli_parse over "switchyard" + the NULL-terminated arguments. */
static int parse_args(struct cli_opts *o, char *err, size_t errlen, ...)
{
    static char *argv[MAX_ARGS + 2];
    int argc = 0;
    va_list ap;
    argv[argc++] = "switchyard";
    va_start(ap, errlen);
    for (char *a; argc <= MAX_ARGS && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    cli_free(o); /* the previous parse's */
    return cli_parse(argc, argv, o, err, errlen);
}

/* A flag's value as parsed (NULL: not given). */
static const char *given(const struct cli_opts *o, const char *key)
{
    const struct cfg_node *v = cfg_map_get(o->flags, key);
    return v && v->kind == CFG_SCALAR ? v->scalar : NULL;
}

#define PARSE(o, err, ...) parse_args((o), (err), sizeof(err), __VA_ARGS__, (char *)NULL)

/* Parsing, or applying the flags to a new config, fails with a message
 * containing `want`. */
#define PARSE_FAILS(want, ...)                                                \
    do {                                                                      \
        struct cli_opts o_ = {0};                                             \
        char e_[256];                                                         \
        int rc_ = PARSE(&o_, e_, __VA_ARGS__);                                \
        if (rc_ == 0) {                                                       \
            struct sy_cfg *c_ = config_new();                                 \
            CU_ASSERT_PTR_NOT_NULL_FATAL(c_);                                 \
            rc_ = cli_apply(&o_, c_, e_, sizeof e_);                          \
            config_free(c_);                                                  \
        }                                                                     \
        CU_ASSERT_EQUAL(rc_, -1);                                             \
        if (!strstr(e_, (want)))                                              \
            fprintf(stderr, "\nerror '%s' lacks '%s'\n", e_, (want));         \
        HAS(e_, (want));                                                      \
        cli_free(&o_);                                                        \
    } while (0)

static const char file_yaml[] =
    "listen: 10.0.0.9:7000\n"
    "workers: 3\n"
    "log_level: error\n"
    "upstream_timeout: 30\n"
    "reroute_attempts: 1\n"
    "plugin_dir: /file/plugins\n"
    "routing: least_loaded\n"
    "health: [http_probe]\n"
    "plugin_config:\n"
    "  session: {ttl: 60s}\n"
    "  default_model: {model: file-b}\n"
    "  http_probe:\n"
    "models:\n"
    "  file-a:\n"
    "    backends: [http://f:1]\n"
    "    aliases: [fa]\n"
    "  file-b:\n"
    "    backends: [http://f:2]\n"
    "aliases:\n"
    "  gpt: file-a\n";

static void test_cli_defaults(void)
{
    struct cli_opts o = {0};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, NULL), 0);
    CU_ASSERT_EQUAL(o.action, CLI_RUN);
    CU_ASSERT_PTR_NULL(o.config_path);
    CU_ASSERT_PTR_NULL(o.dynamic_config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o.flags);
    CU_ASSERT_EQUAL(o.flags->n, 0);
    CU_ASSERT_FALSE(cli_given(&o, "static_backends"));

    /* nothing given changes nothing */
    struct sy_cfg *cfg = unit_base_config(file_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cli_apply(&o, cfg, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg->host, "10.0.0.9");
    CU_ASSERT_EQUAL(cfg->port, 7000);
    CU_ASSERT_EQUAL(cfg->workers, 3);
    CU_ASSERT_EQUAL(cfg->nmodels, 2);
    CU_ASSERT_EQUAL(cfg->naliases, 2);
    CU_ASSERT_PTR_NULL(cfg->extra);
    config_free(cfg);
    cli_free(&o);
}

static void test_cli_actions(void)
{
    struct cli_opts o = {0};
    char err[256];
    CU_ASSERT_EQUAL(PARSE(&o, err, "--check-config", "-c", "/etc/x.yaml"), 0);
    CU_ASSERT_EQUAL(o.action, CLI_CHECK_CONFIG);
    CU_ASSERT_STRING_EQUAL(o.config_path, "/etc/x.yaml");
    CU_ASSERT_EQUAL(PARSE(&o, err, "--config", "a.yaml"), 0);
    CU_ASSERT_STRING_EQUAL(o.config_path, "a.yaml");
    CU_ASSERT_EQUAL(PARSE(&o, err, "--config=b.yaml"), 0);
    CU_ASSERT_STRING_EQUAL(o.config_path, "b.yaml");
    CU_ASSERT_EQUAL(PARSE(&o, err, "-cc.yaml"), 0);
    CU_ASSERT_STRING_EQUAL(o.config_path, "c.yaml");
    CU_ASSERT_EQUAL(PARSE(&o, err, "--version"), 0);
    CU_ASSERT_EQUAL(o.action, CLI_VERSION);
    CU_ASSERT_EQUAL(PARSE(&o, err, "-h"), 0);
    CU_ASSERT_EQUAL(o.action, CLI_HELP);
    CU_ASSERT_EQUAL(PARSE(&o, err, "--version", "--help"), 0);
    CU_ASSERT_EQUAL(o.action, CLI_HELP);
    cli_free(&o);
}

static void test_cli_each_flag(void)
{
    struct cli_opts o = {0};
    char err[256];
    int rc = PARSE(&o, err, "--host", "127.0.0.1", "--port", "9000",
                   "--workers", "8", "--log-level", "debug", "--plugin-dir",
                   "/p", "--upstream-timeout", "2.5",
                   "--max-instance-failover-reroute-attempts", "0",
                   "--static-backends", "http://a:1,http://b:2",
                   "--static-models", "m1,m2", "--static-aliases", "x:m1",
                   "--static-model-types", "chat,embeddings",
                   "--static-fallback-models", "m1:m2", "--routing-logic",
                   "session", "--session-key", "X-User",
                   "--static-backend-health-checks",
                   "--static-backend-health-check-interval", "0.5",
                   "--service-discovery", "static");
    if (rc != 0)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(o.action, CLI_RUN);
    CU_ASSERT_STRING_EQUAL(given(&o, "host"), "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(given(&o, "static_backends"), "http://a:1,http://b:2");
    CU_ASSERT_STRING_EQUAL(given(&o, "static_models"), "m1,m2");
    CU_ASSERT_STRING_EQUAL(given(&o, "static_aliases"), "x:m1");
    CU_ASSERT_STRING_EQUAL(given(&o, "static_model_types"), "chat,embeddings");
    CU_ASSERT_STRING_EQUAL(given(&o, "static_fallback_models"), "m1:m2");
    CU_ASSERT_STRING_EQUAL(given(&o, "session_key"), "X-User");
    /* a flag without a value means true */
    CU_ASSERT_STRING_EQUAL(given(&o, "static_backend_health_checks"), "true");
    struct sy_cfg *cfg = config_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    rc = cli_apply(&o, cfg, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(cfg->host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->port, 9000);
    CU_ASSERT_EQUAL(cfg->workers, 8);
    CU_ASSERT_EQUAL(cfg->log_level, SY_LOG_DEBUG);
    CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "/p");
    CU_ASSERT_DOUBLE_EQUAL(cfg->upstream_timeout, 2.5, 1e-9);
    CU_ASSERT_EQUAL(cfg->reroute_attempts, 0);
    CU_ASSERT_EQUAL(cfg->nmodels, 2);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "session");
    CU_ASSERT_STRING_EQUAL(cfg->health.names[0], "http_probe");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(config_plugin_section(cfg, "http_probe"),
                                       "interval")->scalar, "0.5");
    config_free(cfg);

    /* the = form, and units on durations */
    rc = PARSE(&o, err, "--port=81", "--workers=1", "--upstream-timeout=500ms",
               "--routing-logic=prefixaware", "--static-backends=http://c",
               "--max-instance-failover-reroute-attempts=100",
               "--static-backend-health-check-interval=2m",
               "--log-level=warn");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(given(&o, "static_backends"), "http://c");
    cfg = config_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    /* --static-backends without --static-models is refused: drop it */
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--port=81", "--workers=1",
                                "--upstream-timeout=500ms",
                                "--routing-logic=prefixaware",
                                "--max-instance-failover-reroute-attempts=100",
                                "--static-backend-health-check-interval=2m",
                                "--log-level=warn"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_apply(&o, cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg->port, 81);
    CU_ASSERT_EQUAL(cfg->workers, 1);
    CU_ASSERT_DOUBLE_EQUAL(cfg->upstream_timeout, 0.5, 1e-9);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "prefixaware");
    CU_ASSERT_EQUAL(cfg->reroute_attempts, 100);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(config_plugin_section(cfg, "http_probe"),
                                       "interval")->scalar, "120");
    CU_ASSERT_EQUAL(cfg->log_level, SY_LOG_WARNING);
    config_free(cfg);

    /* the last of a repeated flag wins */
    CU_ASSERT_EQUAL(PARSE(&o, err, "--port", "1", "--port", "2"), 0);
    CU_ASSERT_STRING_EQUAL(given(&o, "port"), "2");
    CU_ASSERT_EQUAL(PARSE(&o, err, "--routing-logic", "least_loaded",
                          "--routing-logic", "roundrobin"), 0);
    CU_ASSERT_STRING_EQUAL(given(&o, "routing_logic"), "roundrobin");
    cli_free(&o);
}

static void test_cli_bad_values(void)
{
    PARSE_FAILS("command line: --port: expected a whole number 1..65535, got 'abc'",
                "--port", "abc");
    PARSE_FAILS("--port: expected a whole number 1..65535, got '0'", "--port", "0");
    PARSE_FAILS("got '65536'", "--port=65536");
    PARSE_FAILS("got '80x'", "--port", "80x");
    PARSE_FAILS("--workers: expected a whole number 0..256, got '-1'", "--workers", "-1");
    PARSE_FAILS("--workers: expected a whole number 0..256, got '257'", "--workers=257");
    PARSE_FAILS("--log-level: expected debug, info, warning or error, got 'loud'",
                "--log-level", "loud");
    PARSE_FAILS("--upstream-timeout: must be more than 0, got '0'", "--upstream-timeout", "0");
    PARSE_FAILS("got '-1'", "--upstream-timeout", "-1");
    PARSE_FAILS("got 'soon'", "--upstream-timeout", "soon");
    PARSE_FAILS("--max-instance-failover-reroute-attempts: expected a whole number "
                "0..100, got '101'",
                "--max-instance-failover-reroute-attempts", "101");
    PARSE_FAILS("--static-backend-health-check-interval: expected seconds > 0",
                "--static-backend-health-check-interval", "0");
    PARSE_FAILS("--routing-logic: expected roundrobin, session, least_loaded, prefixaware, "
                "kvaware, disaggregated_prefill or priority, got 'random'", "--routing-logic", "random");
    PARSE_FAILS("--service-discovery: expected static or k8s, got 'dns'",
                "--service-discovery", "dns");
    PARSE_FAILS("--host: empty value", "--host", "");
    PARSE_FAILS("--static-backends: empty value", "--static-backends=");
    /* flags themselves */
    PARSE_FAILS("unknown or ambiguous flag '--frobnicate'", "--frobnicate");
    PARSE_FAILS("unknown or ambiguous flag '--nope=1'", "--nope=1");
    PARSE_FAILS("unknown flag '-x'", "-x");
    PARSE_FAILS("--port: missing value", "--port");
    PARSE_FAILS("--static-models: missing value", "--workers", "2",
                "--static-models");
    PARSE_FAILS("-c: missing value", "-c");
    PARSE_FAILS("--config: missing value", "--config");
    PARSE_FAILS("--check-config: takes no value", "--check-config=yes");
    PARSE_FAILS("--static-backend-health-checks: takes no value",
                "--static-backend-health-checks=1");
    PARSE_FAILS("--help: takes no value", "--help=me");
    PARSE_FAILS("unexpected argument 'extra'", "--port", "80", "extra");
    /* a value that looks like the next flag is still the value */
    PARSE_FAILS("--port: expected a whole number 1..65535, got '--workers'", "--port",
                "--workers");
}

/* --plugin-dir is repeatable: the dirs, in order, replace the file's. */
static void test_cli_plugin_dirs(void)
{
    struct cli_opts o = {0};
    char err[512];
    struct sy_cfg *cfg = unit_base_config("plugin_path: [/from/file]\n");

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "/from/file");
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--plugin-dir", "/a", "--plugin-dir", "/b"), 0);
    CU_ASSERT_EQUAL(cfg_map_get(o.flags, "plugin_dir")->n, 2);
    CU_ASSERT_EQUAL(cli_apply(&o, cfg, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "/a:/b");
    config_free(cfg);
    PARSE_FAILS("--plugin-dir: a directory with ':'", "--plugin-dir", "/a:b");
    cli_free(&o);
}

/* Parse, apply on cfg, finish.  Returns the first failing step's -1. */
static int run(struct sy_cfg *cfg, char *err, size_t errlen, struct cli_opts *o)
{
    if (cli_apply(o, cfg, err, errlen) < 0)
        return -1;
    return config_finish(cfg, err, errlen);
}

static void test_cli_static_models(void)
{
    struct cli_opts o = {0};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err,
        "--static-backends", "http://a:8000/,http://b:8000, https://gw.example.com/v1/",
        "--static-models", "llama,llama,embed",
        "--static-model-types", "chat,chat,embeddings",
        "--static-aliases", "big:llama,e=embed",
        "--static-fallback-models", "llama:embed"), 0);
    struct sy_cfg *cfg = unit_base_config(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    int rc = run(cfg, err, sizeof err, &o);
    if (rc)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(cfg->nmodels, 2);
    const struct model_cfg *llama = config_find_model(cfg, "llama");
    CU_ASSERT_PTR_NOT_NULL_FATAL(llama);
    CU_ASSERT_EQUAL(llama->line, 0);
    CU_ASSERT_STRING_EQUAL(llama->type, "chat");
    CU_ASSERT_EQUAL_FATAL(llama->nbackends, 2); /* replicas */
    CU_ASSERT_STRING_EQUAL(llama->backends[0].url, "http://a:8000");
    CU_ASSERT_STRING_EQUAL(llama->backends[1].url, "http://b:8000");
    CU_ASSERT_EQUAL(llama->backends[0].weight, 1);
    CU_ASSERT_STRING_EQUAL(llama->fallback_model, "embed");
    CU_ASSERT_EQUAL(llama->fallback_line, 0);
    const struct model_cfg *embed = config_find_model(cfg, "embed");
    CU_ASSERT_PTR_NOT_NULL_FATAL(embed);
    CU_ASSERT_STRING_EQUAL(embed->type, "embeddings");
    CU_ASSERT_EQUAL_FATAL(embed->nbackends, 1);
    CU_ASSERT_STRING_EQUAL(embed->backends[0].url, "https://gw.example.com/v1");
    CU_ASSERT_EQUAL_FATAL(cfg->naliases, 2);
    CU_ASSERT_STRING_EQUAL(cfg->aliases[0].alias, "big");
    CU_ASSERT_STRING_EQUAL(cfg->aliases[0].model, "llama");
    CU_ASSERT_STRING_EQUAL(cfg->aliases[1].alias, "e");
    CU_ASSERT_STRING_EQUAL(cfg->aliases[1].model, "embed");
    CU_ASSERT_EQUAL(cfg->aliases[1].line, 0);
    CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "roundrobin");
    CU_ASSERT_EQUAL_FATAL(cfg->fallback.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->fallback.names[0], "model_map");
    config_free(cfg);

    /* without types every model is chat */
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--static-backends", "http://a",
                                "--static-models", "m"), 0);
    cfg = unit_base_config(NULL);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_STRING_EQUAL(cfg->models[0].type, "chat");
    config_free(cfg);

    /* vllm_router's other types */
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--static-backends", "http://a,http://b,http://c",
                                "--static-models", "t,v,m",
                                "--static-model-types", "transcription,vision,messages"), 0);
    cfg = unit_base_config(NULL);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "t")->type, "transcription");
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "v")->type, "vision");
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "m")->type, "messages");
    config_free(cfg);
    cli_free(&o);
}

static void test_cli_names_with_colons(void)
{
    struct cli_opts o = {0};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err,
        "--static-backends", "http://a,http://b,http://c",
        "--static-models", "org/m:v1,org/m:v2,plain",
        "--static-fallback-models", "org/m:v1=org/m:v2,plain=org/m:v1",
        "--static-aliases", "latest=org/m:v2,p:plain"), 0);
    struct sy_cfg *cfg = unit_base_config(NULL);
    int rc = run(cfg, err, sizeof err, &o);
    if (rc)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "org/m:v1")->fallback_model,
                           "org/m:v2");
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "plain")->fallback_model,
                           "org/m:v1");
    CU_ASSERT_PTR_NULL(config_find_model(cfg, "org/m:v2")->fallback_model);
    CU_ASSERT_STRING_EQUAL(cfg->aliases[0].alias, "latest");
    CU_ASSERT_STRING_EQUAL(cfg->aliases[0].model, "org/m:v2");
    CU_ASSERT_STRING_EQUAL(cfg->aliases[1].alias, "p");
    config_free(cfg);

    /* without '=', the split is at the last ':' */
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err,
        "--static-backends", "http://a,http://b",
        "--static-models", "a:b,c",
        "--static-fallback-models", "a:b:c"), 0);
    cfg = unit_base_config(NULL);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "a:b")->fallback_model, "c");
    config_free(cfg);

    /* a fallback through an alias given on the command line */
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err,
        "--static-backends", "http://a,http://b", "--static-models", "a,b",
        "--static-aliases", "bee:b", "--static-fallback-models", "a:bee"), 0);
    cfg = unit_base_config(NULL);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "a")->fallback_model, "b");
    config_free(cfg);
    cli_free(&o);
}

/* Parse and apply on a base config; expect -1 with `want` in the error. */
static void apply_fails(const char *yaml, const char *want, ...)
{
    static char *argv[MAX_ARGS + 2];
    int argc = 0;
    va_list ap;
    argv[argc++] = "switchyard";
    va_start(ap, want);
    for (char *a; argc <= MAX_ARGS && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    struct cli_opts o = {0};
    char err[512] = "";
    CU_ASSERT_EQUAL_FATAL(cli_parse(argc, argv, &o, err, sizeof err), 0);
    struct sy_cfg *cfg = unit_base_config(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(run(cfg, err, sizeof err, &o), -1);
    if (!strstr(err, want))
        fprintf(stderr, "\nerror '%s' lacks '%s'\n", err, want);
    HAS(err, want);
    config_free(cfg);
    cli_free(&o);
}

#define APPLY_FAILS(yaml, want, ...) apply_fails((yaml), (want), __VA_ARGS__, (char *)NULL)

static void test_cli_static_errors(void)
{
    APPLY_FAILS(NULL, "command line: --static-backends: needs --static-models "
                      "(the model each backend serves)",
                "--static-backends", "http://a");
    APPLY_FAILS(file_yaml, "--static-backends: needs --static-models",
                "--static-backends", "http://a");
    APPLY_FAILS(NULL, "--static-models: 1 model(s) for 2 backend(s)",
                "--static-backends", "http://a,http://b", "--static-models", "m");
    APPLY_FAILS(NULL, "--static-model-types: 1 type(s) for 2 backend(s)",
                "--static-backends", "http://a,http://b", "--static-models",
                "m,n", "--static-model-types", "chat");
    APPLY_FAILS(NULL, "--static-model-types: unknown type 'audio' (expected "
                      "chat, completion, embeddings, rerank, score, "
                      "transcription, vision or messages)",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-model-types", "audio");
    APPLY_FAILS(NULL, "--static-model-types: model 'm' is given types 'chat' "
                      "and 'embeddings'",
                "--static-backends", "http://a,http://b", "--static-models",
                "m,m", "--static-model-types", "chat,embeddings");
    APPLY_FAILS(NULL, "--static-backends: 'ftp://a': must start with http://",
                "--static-backends", "ftp://a", "--static-models", "m");
    APPLY_FAILS(NULL, "--static-backends: 'http://a' is given twice for model 'm'",
                "--static-backends", "http://a,http://a/", "--static-models", "m,m");
    APPLY_FAILS(NULL, "--static-backends: empty item in 'http://a,,http://b'",
                "--static-backends", "http://a,,http://b", "--static-models", "m,m");
    APPLY_FAILS(NULL, "--static-models: empty item", "--static-backends",
                "http://a,http://b", "--static-models", "m, ");
    /* flags that need --static-backends or models from the file */
    APPLY_FAILS(NULL, "--static-models: needs --static-backends",
                "--static-models", "m");
    APPLY_FAILS(file_yaml, "--static-models: needs --static-backends",
                "--static-models", "m");
    APPLY_FAILS(NULL, "--static-model-types: needs --static-backends and "
                      "--static-models",
                "--static-model-types", "chat");
    APPLY_FAILS(NULL, "command line: --static-aliases: alias 'a' names unknown "
                      "model 'm'", "--static-aliases", "a:m");
    APPLY_FAILS(NULL, "command line: --static-fallback-models: unknown model 'a' "
                      "(not in the config file's models)",
                "--static-fallback-models", "a:m");
    /* pairs */
    APPLY_FAILS(NULL, "--static-aliases: expected ALIAS:MODEL or ALIAS=MODEL, got 'x'",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-aliases", "x");
    APPLY_FAILS(NULL, "--static-fallback-models: expected MODEL:FALLBACK or "
                      "MODEL=FALLBACK, got 'm:'",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-fallback-models", "m:");
    APPLY_FAILS(NULL, "--static-aliases: alias 'x' is given twice",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-aliases", "x:m,x:m");
    APPLY_FAILS(NULL, "--static-fallback-models: model 'm' is given twice",
                "--static-backends", "http://a,http://b", "--static-models", "m,n",
                "--static-fallback-models", "m:n,m=n");
    APPLY_FAILS(NULL, "--static-fallback-models: unknown model 'q' (not in "
                      "--static-models)",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-fallback-models", "q:m");
    /* cross-checks in config_finish, marked as from the command line */
    APPLY_FAILS(NULL, "command line: --static-aliases: alias 'x' names unknown "
                      "model 'y'",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-aliases", "x:y");
    APPLY_FAILS(NULL, "command line: --static-aliases: alias 'm' is also the "
                      "name of a model",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-aliases", "m:m");
    APPLY_FAILS(NULL, "command line: --static-fallback-models: model 'm' falls "
                      "back to unknown model 'zz'",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-fallback-models", "m:zz");
    APPLY_FAILS(NULL, "command line: --static-fallback-models: model 'm' falls "
                      "back to itself",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-fallback-models", "m=m");
    /* the file's aliases are gone with --static-backends */
    APPLY_FAILS(file_yaml, "command line: --static-aliases: alias 'x' names "
                           "unknown model 'file-a'",
                "--static-backends", "http://a", "--static-models", "m",
                "--static-aliases", "x:file-a");
    /* nothing at all */
    APPLY_FAILS(NULL, "command line: no models", "--port", "80");
}

static void test_cli_static_replaces_file(void)
{
    struct cli_opts o = {0};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--static-backends", "http://s:1",
                                "--static-models", "cli-model"), 0);
    struct sy_cfg *cfg = unit_base_config(file_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    int rc = run(cfg, err, sizeof err, &o);
    if (rc)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(cfg->nmodels, 1);
    CU_ASSERT_STRING_EQUAL(cfg->models[0].name, "cli-model");
    CU_ASSERT_PTR_NULL(config_find_model(cfg, "file-a"));
    CU_ASSERT_EQUAL(cfg->naliases, 0);
    /* the file's other settings stay */
    CU_ASSERT_EQUAL(cfg->port, 7000);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "least_loaded");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(config_plugin_section(cfg, "default_model"),
                                       "model")->scalar, "file-b");
    config_free(cfg);
    cli_free(&o);
}

/* --prefix-min-match-length is prefixaware's threshold in bytes; a setup
 * of the plugin takes it; a bad one is an error naming the flag. */
static void test_cli_prefix_min_match(void)
{
    struct cli_opts o = {0};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--routing-logic", "prefixaware",
                                "--prefix-min-match-length", "300"), 0);
    struct sy_cfg *cfg = unit_base_config(file_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    const struct cfg_node *v = cfg_map_get(config_plugin_section(cfg, "prefixaware"),
                                           "min_match_length");
    CU_ASSERT(v != NULL && strcmp(v->scalar, "300") == 0);
    config_free(cfg);
    cli_free(&o);

    struct cli_opts bad = {0};
    CU_ASSERT_EQUAL_FATAL(PARSE(&bad, err, "--prefix-min-match-length", "-1"), 0);
    cfg = unit_base_config(file_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(run(cfg, err, sizeof err, &bad), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "command line: --prefix-min-match-length: expected a "
                                       "whole number from 0 to 100000000, got '-1'"));
    config_free(cfg);
    cli_free(&bad);
}

static void test_cli_overrides_file(void)
{
    struct cli_opts o = {0};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--host", "::1", "--port", "9999",
                                "--workers", "16", "--log-level", "debug",
                                "--plugin-dir", "/cli/plugins",
                                "--upstream-timeout", "12.5",
                                "--max-instance-failover-reroute-attempts", "7",
                                "--routing-logic", "session"), 0);
    struct sy_cfg *cfg = unit_base_config(file_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_STRING_EQUAL(cfg->host, "::1");
    CU_ASSERT_EQUAL(cfg->port, 9999);
    CU_ASSERT_EQUAL(cfg->workers, 16);
    CU_ASSERT_EQUAL(cfg->log_level, SY_LOG_DEBUG);
    CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "/cli/plugins");
    CU_ASSERT_DOUBLE_EQUAL(cfg->upstream_timeout, 12.5, 1e-9);
    CU_ASSERT_EQUAL(cfg->reroute_attempts, 7);
    /* session declines requests without the key: least_loaded takes them */
    CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 2);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "session");
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[1], "least_loaded");
    /* models stay the file's */
    CU_ASSERT_EQUAL(cfg->nmodels, 2);
    CU_ASSERT_EQUAL(cfg->naliases, 2);
    config_free(cfg);
    cli_free(&o);
}

static void test_cli_flags_on_file_models(void)
{
    struct cli_opts o = {0};
    char err[512];
    /* aliases and fallbacks apply to the file's models; a flag alias
     * overrides the file's alias of the same name */
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--static-aliases", "gpt:file-b,new:file-a",
                                "--static-fallback-models", "fa=file-b"), 0);
    struct sy_cfg *cfg = unit_base_config(file_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    int rc = run(cfg, err, sizeof err, &o);
    if (rc)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(cfg->naliases, 3);
    CU_ASSERT_STRING_EQUAL(cfg->aliases[1].alias, "gpt");
    CU_ASSERT_STRING_EQUAL(cfg->aliases[1].model, "file-b");
    CU_ASSERT_EQUAL(cfg->aliases[1].line, 0);
    CU_ASSERT_STRING_EQUAL(cfg->aliases[2].alias, "new");
    /* "fa" is an alias of file-a */
    const struct model_cfg *a = config_find_model(cfg, "file-a");
    CU_ASSERT_STRING_EQUAL(a->fallback_model, "file-b");
    CU_ASSERT_EQUAL(a->fallback_line, 0);
    CU_ASSERT_EQUAL_FATAL(cfg->fallback.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->fallback.names[0], "model_map");
    config_free(cfg);

    APPLY_FAILS(file_yaml, "--static-fallback-models: unknown model 'ghost' "
                           "(not in the config file's models)",
                "--static-fallback-models", "ghost:file-a");
    APPLY_FAILS(file_yaml, "command line: --static-fallback-models: model "
                           "'file-a' falls back to unknown model 'ghost'",
                "--static-fallback-models", "file-a:ghost");
    APPLY_FAILS(file_yaml, "command line: --static-aliases: alias 'file-b' is "
                           "also the name of a model",
                "--static-aliases", "file-b:file-a");
    cli_free(&o);
}

static void test_cli_plugin_settings(void)
{
    struct cli_opts o = {0};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--session-key", "X-Session",
                                "--static-backend-health-checks",
                                "--static-backend-health-check-interval", "2.5"),
                          0);
    struct sy_cfg *cfg = unit_base_config(file_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    const struct cfg_node *file_pc = cfg->plugin_config;
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_PTR_EQUAL(cfg->plugin_config, cfg->extra);

    const struct cfg_node *session = config_plugin_section(cfg, "session");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(session, "key")->scalar, "X-Session");
    CU_ASSERT_EQUAL(cfg_map_get(session, "key")->line, 0);
    /* the file's keys in the same section and other sections stay */
    CU_ASSERT_STRING_EQUAL(cfg_map_get(session, "ttl")->scalar, "60s");
    CU_ASSERT_EQUAL(cfg_map_get(session, "ttl")->line, 10);
    CU_ASSERT_EQUAL(cfg_map_key_line(session, "ttl"), 10);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(config_plugin_section(cfg, "default_model"),
                                       "model")->scalar, "file-b");
    /* "http_probe:" was empty in the file */
    const struct cfg_node *probe = config_plugin_section(cfg, "http_probe");
    const struct cfg_node *interval = cfg_map_get(probe, "interval");
    CU_ASSERT_PTR_NOT_NULL_FATAL(interval);
    CU_ASSERT_STRING_EQUAL(interval->scalar, "2.5");
    double secs = 0;
    CU_ASSERT_EQUAL(cfg_parse_seconds(interval->scalar, &secs), 0);
    CU_ASSERT_DOUBLE_EQUAL(secs, 2.5, 1e-9);
    /* the file's tree itself is untouched */
    CU_ASSERT_PTR_NULL(cfg_map_get(cfg_map_get(file_pc, "session"), "key"));
    /* http_probe was listed already: not twice */
    CU_ASSERT_EQUAL_FATAL(cfg->health.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->health.names[0], "http_probe");
    config_free(cfg);

    /* without a file: sections are made, health list gets http_probe */
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--static-backends", "http://a",
                                "--static-models", "m", "--session-key", "user",
                                "--routing-logic", "session",
                                "--static-backend-health-checks",
                                "--static-backend-health-check-interval", "10"),
                          0);
    cfg = unit_base_config(NULL);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(config_plugin_section(cfg, "session"),
                                       "key")->scalar, "user");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(config_plugin_section(cfg, "http_probe"),
                                       "interval")->scalar, "10");
    CU_ASSERT_EQUAL_FATAL(cfg->health.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->health.names[0], "http_probe");
    CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 2);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "session");
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[1], "least_loaded");
    CU_ASSERT_PTR_EQUAL(config_plugin_section(cfg, "other"), cfg_empty_map());
    /* applying twice reuses the merged map */
    CU_ASSERT_EQUAL(cli_apply(&o, cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg->health.n, 1);
    CU_ASSERT_EQUAL(cfg->plugin_config->n, 2);
    config_free(cfg);
    cli_free(&o);
}

/* Found by tests/fuzz/fuzz_cli: the interval reaches http_probe as "%.6f"
 * text, so under a microsecond it became "0" (and http_probe refused its
 * own config); huge values were cut to 63 characters. */
static void test_cli_interval_range(void)
{
    struct cli_opts o = {0};
    char err[512];
    PARSE_FAILS("--static-backend-health-check-interval: expected 0.000001 to "
                "1000000000 seconds, got '.0000002'",
                "--static-backend-health-check-interval=.0000002");
    /* the fuzzer's abbreviation, ambiguous since the timeout flags came */
    PARSE_FAILS("unknown or ambiguous flag '--static-backend-health-check-=.0000002'",
                "--static-backend-health-check-=.0000002");
    PARSE_FAILS("got '0.0000001'", "--static-backend-health-check-interval", "0.0000001");
    PARSE_FAILS("got '1000000000000000000000000000000000000000000000000000000000000h'",
                "--static-backend-health-check-interval",
                "1000000000000000000000000000000000000000000000000000000000000h");
    CU_ASSERT_EQUAL_FATAL(PARSE(&o, err, "--static-backends", "http://a",
                                "--static-models", "m",
                                "--static-backend-health-check-interval", "0.000001"),
                          0);
    struct sy_cfg *cfg = unit_base_config(NULL);
    CU_ASSERT_EQUAL_FATAL(run(cfg, err, sizeof err, &o), 0);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(config_plugin_section(cfg, "http_probe"),
                                       "interval")->scalar, "0.000001");
    config_free(cfg);
    cli_free(&o);
}

static void test_cli_usage(void)
{
    static const char *const flags[] = {
        "--config", "-c", "--check-config", "--version", "--help", "--host",
        "--port", "--workers", "--log-level", "--plugin-dir",
        "--upstream-timeout", "--max-instance-failover-reroute-attempts",
        "--static-backends", "--static-models", "--static-aliases",
        "--static-model-types", "--static-fallback-models", "--routing-logic",
        "--session-key", "--static-backend-health-checks",
        "--static-backend-health-check-interval", "--service-discovery",
    };
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    cli_usage(f, "switchyard");
    long len = ftell(f);
    CU_ASSERT(len > 0);
    char *text = calloc(1, (size_t)len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    rewind(f);
    CU_ASSERT_EQUAL(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    HAS(text, "Usage: switchyard");
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (!strstr(text, flags[i]))
            fprintf(stderr, "\nusage lacks %s\n", flags[i]);
        HAS(text, flags[i]);
    }
    free(text);
}

void register_cli_tests(void)
{
    UNIT_SUITE("cli",
               UNIT_TEST(test_cli_defaults), UNIT_TEST(test_cli_plugin_dirs),
               UNIT_TEST(test_cli_actions),
               UNIT_TEST(test_cli_each_flag),
               UNIT_TEST(test_cli_bad_values),
               UNIT_TEST(test_cli_static_models),
               UNIT_TEST(test_cli_names_with_colons),
               UNIT_TEST(test_cli_static_errors),
               UNIT_TEST(test_cli_static_replaces_file),
               UNIT_TEST(test_cli_overrides_file), UNIT_TEST(test_cli_prefix_min_match),
               UNIT_TEST(test_cli_flags_on_file_models),
               UNIT_TEST(test_cli_plugin_settings),
               UNIT_TEST(test_cli_interval_range),
               UNIT_TEST(test_cli_usage));
}
