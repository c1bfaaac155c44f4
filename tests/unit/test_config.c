/* config: the YAML file into struct sy_cfg, config_finish, and log.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "settings.h"
#include "log.h"
#include "server.h"
#include "unit.h"

#define HAS(hay, needle) CU_ASSERT_PTR_NOT_NULL(strstr((hay), (needle)))

/* Load and finish; both must succeed. */
static struct sy_cfg *load_ok(const char *yaml)
{
    char err[512] = "";
    struct sy_cfg *cfg = NULL;
    int rc = config_load_string(yaml, "t.yaml", &cfg, err, sizeof err);
    if (rc == 0 && (rc = config_finish(cfg, err, sizeof err)) < 0) {
        config_free(cfg);
        cfg = NULL;
    }
    if (rc != 0)
        fprintf(stderr, "\nunexpected config error: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    return cfg;
}

/* Load (and finish) fails; the message contains every wanted piece. */
static void load_fails(const char *yaml, const char *want1, const char *want2)
{
    char err[512] = "";
    struct sy_cfg *cfg = NULL;
    int rc = config_load_string(yaml, "t.yaml", &cfg, err, sizeof err);
    if (rc == 0) {
        rc = config_finish(cfg, err, sizeof err);
        config_free(cfg);
    }
    CU_ASSERT_EQUAL(rc, -1);
    const char *wants[] = {want1, want2};
    for (size_t i = 0; i < 2; i++) {
        if (!wants[i])
            continue;
        if (!strstr(err, wants[i]))
            fprintf(stderr, "\nerror '%s' lacks '%s'\n", err, wants[i]);
        HAS(err, wants[i]);
    }
}

static const char full_yaml[] =
    "listen: 127.0.0.1:9000\n"                                   /* 1 */
    "workers: 4\n"
    "log_level: warning\n"
    "plugin_dir: /opt/sy/plugins\n"
    "max_body_size: 64KiB\n"                                     /* 5 */
    "upstream_timeout: 1.5m\n"
    "connect_timeout: 250ms\n"
    "reroute_attempts: 5\n"
    "routing: least_loaded\n"
    "health: [http_probe, passive]\n"                            /* 10 */
    "fallback: [model_map, default_model]\n"
    "plugin_config:\n"
    "  default_model: {model: small}\n"
    "  http_probe:\n"
    "    interval: 5s\n"                                         /* 15 */
    "  passive:\n"
    "models:\n"
    "  llama-70b:\n"
    "    backends:\n"
    "      - http://10.0.0.1:8000/\n"                            /* 20 */
    "      - {url: \"http://10.0.0.2:8000\", weight: 3, api_key_env: K2}\n"
    "    type: chat\n"
    "    aliases: [llama, big]\n"
    "    fallback_model: llama-8b\n"
    "    api_key_env: GATEWAY_KEY\n"                             /* 25 */
    "  llama-8b:\n"
    "    backends: [http://10.0.0.3:8000]\n"
    "    fallback_model: gpt-4\n"
    "  small:\n"
    "    backends: https://gw.example.com/v1/\n"                 /* 30 */
    "    type: embeddings\n"
    "    aliases: tiny\n"
    "aliases:\n"
    "  gpt-4: small\n";

static void test_config_full(void)
{
    struct sy_cfg *cfg = load_ok(full_yaml);
    if (!cfg)
        return;
    CU_ASSERT_STRING_EQUAL(cfg->source, "t.yaml");
    CU_ASSERT_STRING_EQUAL(cfg->host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->port, 9000);
    CU_ASSERT_EQUAL(cfg->workers, 4);
    CU_ASSERT_EQUAL(cfg->log_level, SY_LOG_WARNING);
    CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "/opt/sy/plugins");
    CU_ASSERT_EQUAL(cfg->max_body, 65536);
    CU_ASSERT_DOUBLE_EQUAL(cfg->upstream_timeout, 90, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(cfg->connect_timeout, 0.25, 1e-9);
    CU_ASSERT_EQUAL(cfg->reroute_attempts, 5);

    CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "least_loaded");
    CU_ASSERT_EQUAL(cfg->routing.line, 9);
    CU_ASSERT_EQUAL_FATAL(cfg->health.n, 2);
    CU_ASSERT_STRING_EQUAL(cfg->health.names[0], "http_probe");
    CU_ASSERT_STRING_EQUAL(cfg->health.names[1], "passive");
    CU_ASSERT_EQUAL_FATAL(cfg->fallback.n, 2);
    CU_ASSERT_STRING_EQUAL(cfg->fallback.names[0], "model_map");
    CU_ASSERT_STRING_EQUAL(cfg->fallback.names[1], "default_model");
    CU_ASSERT_EQUAL(cfg->fallback.line, 11);

    const struct cfg_node *dm = config_plugin_section(cfg, "default_model");
    CU_ASSERT_EQUAL(dm->kind, CFG_MAP);
    CU_ASSERT_STRING_EQUAL(cfg_map_get(dm, "model")->scalar, "small");
    CU_ASSERT_EQUAL(dm->line, 13);
    const struct cfg_node *hp = config_plugin_section(cfg, "http_probe");
    CU_ASSERT_STRING_EQUAL(cfg_map_get(hp, "interval")->scalar, "5s");
    CU_ASSERT_EQUAL(cfg_map_get(hp, "interval")->line, 15);
    /* "passive:" with nothing under it, and an absent section: empty maps */
    CU_ASSERT_PTR_EQUAL(config_plugin_section(cfg, "passive"), cfg_empty_map());
    CU_ASSERT_PTR_EQUAL(config_plugin_section(cfg, "session"), cfg_empty_map());

    CU_ASSERT_EQUAL_FATAL(cfg->nmodels, 3);
    const struct model_cfg *big = config_find_model(cfg, "llama-70b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    CU_ASSERT_EQUAL(big->line, 18);
    CU_ASSERT_STRING_EQUAL(big->type, "chat");
    CU_ASSERT_STRING_EQUAL(big->api_key_env, "GATEWAY_KEY");
    CU_ASSERT_STRING_EQUAL(big->fallback_model, "llama-8b");
    CU_ASSERT_EQUAL(big->fallback_line, 24);
    CU_ASSERT_EQUAL_FATAL(big->nbackends, 2);
    CU_ASSERT_STRING_EQUAL(big->backends[0].url, "http://10.0.0.1:8000");
    CU_ASSERT_EQUAL(big->backends[0].weight, 1);
    CU_ASSERT_PTR_NULL(big->backends[0].api_key_env);
    CU_ASSERT_EQUAL(big->backends[0].line, 20);
    CU_ASSERT_STRING_EQUAL(big->backends[1].url, "http://10.0.0.2:8000");
    CU_ASSERT_EQUAL(big->backends[1].weight, 3);
    CU_ASSERT_STRING_EQUAL(big->backends[1].api_key_env, "K2");
    CU_ASSERT_EQUAL(big->backends[1].line, 21);

    const struct model_cfg *mid = config_find_model(cfg, "llama-8b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mid);
    CU_ASSERT_STRING_EQUAL(mid->type, "chat"); /* the default */
    CU_ASSERT_PTR_NULL(mid->api_key_env);
    /* fallback through an alias is resolved to the model */
    CU_ASSERT_STRING_EQUAL(mid->fallback_model, "small");

    const struct model_cfg *small = config_find_model(cfg, "small");
    CU_ASSERT_PTR_NOT_NULL_FATAL(small);
    CU_ASSERT_STRING_EQUAL(small->type, "embeddings");
    CU_ASSERT_EQUAL_FATAL(small->nbackends, 1);
    CU_ASSERT_STRING_EQUAL(small->backends[0].url, "https://gw.example.com/v1");
    CU_ASSERT_PTR_NULL(small->fallback_model);

    CU_ASSERT_PTR_NULL(config_find_model(cfg, "llama")); /* an alias */
    CU_ASSERT_PTR_NULL(config_find_model(cfg, "nope"));

    CU_ASSERT_EQUAL_FATAL(cfg->naliases, 4);
    const struct { const char *alias, *model; int line; } want[] = {
        {"llama", "llama-70b", 23}, {"big", "llama-70b", 23},
        {"tiny", "small", 32}, {"gpt-4", "small", 34},
    };
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_STRING_EQUAL(cfg->aliases[i].alias, want[i].alias);
        CU_ASSERT_STRING_EQUAL(cfg->aliases[i].model, want[i].model);
        CU_ASSERT_EQUAL(cfg->aliases[i].line, want[i].line);
    }
    config_free(cfg);
}

static void test_config_defaults(void)
{
    struct sy_cfg *cfg = config_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->source, "command line");
    CU_ASSERT_STRING_EQUAL(cfg->host, SY_DEFAULT_HOST);
    /* the documented defaults (docs/configuration.md, --help) */
    CU_ASSERT_EQUAL(cfg->port, 8001);
    CU_ASSERT_EQUAL(cfg->workers, 0);
    CU_ASSERT_EQUAL(cfg->log_level, SY_LOG_INFO);
    CU_ASSERT_PTR_NULL(cfg->plugin_dir);
    CU_ASSERT_EQUAL(cfg->max_body, (size_t)32 * 1024 * 1024);
    CU_ASSERT_EQUAL(cfg->max_headers, 100);
    CU_ASSERT_EQUAL(cfg->max_attempts, 8);
    CU_ASSERT_EQUAL(cfg->max_fallback_depth, 4);
    CU_ASSERT_EQUAL(cfg->upstream_max_connections, 256);
    CU_ASSERT_EQUAL(cfg->stream_buffer, (size_t)256 * 1024);
    CU_ASSERT_EQUAL(cfg->max_header_size, (size_t)64 * 1024);
    CU_ASSERT_EQUAL(cfg->access_log, 1);
    CU_ASSERT_EQUAL(cfg->log_format, LOG_FORMAT_TEXT);
    CU_ASSERT_DOUBLE_EQUAL(cfg->idle_timeout, 120, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg->request_deadline, 600, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg->retry_after_cap, 5, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg->drain_timeout, 30, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg->client_timeout, 120, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg->client_idle_timeout, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg->client_request_timeout, 300, 0);
    CU_ASSERT_EQUAL(cfg->max_client_connections, 0); /* half the open-files limit */
    CU_ASSERT_DOUBLE_EQUAL(cfg->upstream_timeout, 300, 0);
    CU_ASSERT_DOUBLE_EQUAL(cfg->connect_timeout, 10, 0);
    CU_ASSERT_EQUAL(cfg->reroute_attempts, 2);
    CU_ASSERT_EQUAL(cfg->nmodels, 0);
    CU_ASSERT_EQUAL(cfg->routing.n, 0);
    CU_ASSERT_PTR_EQUAL(config_plugin_section(cfg, "x"), cfg_empty_map());
    config_free(cfg);

    /* a minimal file: defaults, routing filled, no fallback list */
    cfg = load_ok("models:\n  m:\n    backends: [http://h:1]\n");
    if (!cfg)
        return;
    CU_ASSERT_STRING_EQUAL(cfg->host, "0.0.0.0");
    CU_ASSERT_EQUAL(cfg->port, 8001);
    CU_ASSERT_EQUAL(cfg->max_body, (size_t)32 << 20);
    CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 1);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "roundrobin");
    CU_ASSERT_EQUAL(cfg->fallback.n, 0);
    CU_ASSERT_EQUAL(cfg->health.n, 0);
    CU_ASSERT_STRING_EQUAL(cfg->models[0].type, "chat");
    CU_ASSERT_PTR_NULL(cfg->plugin_config);
    config_free(cfg);

    CU_ASSERT_STRING_EQUAL(config_model_types[0], "chat");
    CU_ASSERT_STRING_EQUAL(config_model_types[1], "completion");
    CU_ASSERT_STRING_EQUAL(config_model_types[2], "embeddings");
    CU_ASSERT_STRING_EQUAL(config_model_types[3], "rerank");
    CU_ASSERT_STRING_EQUAL(config_model_types[4], "score");
    CU_ASSERT_STRING_EQUAL(config_model_types[5], "transcription");
    CU_ASSERT_STRING_EQUAL(config_model_types[6], "vision");
    CU_ASSERT_STRING_EQUAL(config_model_types[7], "messages");
    CU_ASSERT_PTR_NULL(config_model_types[8]);

    /* vllm_router's ModelType, every one of them */
    cfg = load_ok("models:\n"
                  "  t: {backends: [http://h:1], type: transcription}\n"
                  "  v: {backends: [http://h:2], type: vision}\n"
                  "  m: {backends: [http://h:3], type: messages}\n"
                  "  r: {backends: [http://h:4], type: rerank}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "t")->type, "transcription");
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "v")->type, "vision");
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "m")->type, "messages");
    CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "r")->type, "rerank");
    config_free(cfg);
}

static void test_config_fallback_defaults(void)
{
    /* a fallback_model and no fallback list: model_map is enabled */
    struct sy_cfg *cfg = load_ok("models:\n"
                                 "  a: {backends: [http://h:1], fallback_model: b}\n"
                                 "  b: {backends: [http://h:2]}\n");
    if (cfg) {
        CU_ASSERT_EQUAL_FATAL(cfg->fallback.n, 1);
        CU_ASSERT_STRING_EQUAL(cfg->fallback.names[0], "model_map");
        config_free(cfg);
    }
    /* an explicit empty list is kept empty */
    cfg = load_ok("fallback: []\n"
                  "models:\n"
                  "  a: {backends: [http://h:1], fallback_model: b}\n"
                  "  b: {backends: [http://h:2]}\n");
    if (cfg) {
        CU_ASSERT_EQUAL(cfg->fallback.n, 0);
        config_free(cfg);
    }
    /* an explicit list is kept as written */
    cfg = load_ok("fallback: default_model\nrouting: [session, roundrobin]\n"
                  "models:\n"
                  "  a: {backends: [http://h:1], fallback_model: b}\n"
                  "  b: {backends: [http://h:2]}\n");
    if (cfg) {
        CU_ASSERT_EQUAL_FATAL(cfg->fallback.n, 1);
        CU_ASSERT_STRING_EQUAL(cfg->fallback.names[0], "default_model");
        CU_ASSERT_EQUAL_FATAL(cfg->routing.n, 2);
        CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "session");
        CU_ASSERT_STRING_EQUAL(cfg->routing.names[1], "roundrobin");
        config_free(cfg);
    }
    /* an empty fallback_model is no fallback */
    cfg = load_ok("models:\n  a: {backends: [http://h:1], fallback_model: }\n");
    if (cfg) {
        CU_ASSERT_PTR_NULL(cfg->models[0].fallback_model);
        CU_ASSERT_EQUAL(cfg->fallback.n, 0);
        config_free(cfg);
    }
}

static void test_config_host_port(void)
{
    char host[64];
    int port = 0;
    CU_ASSERT_EQUAL(config_host_port("127.0.0.1:9090", host, sizeof host, &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
    CU_ASSERT_EQUAL(port, 9090);
    CU_ASSERT_EQUAL(config_host_port("[::1]:1", host, sizeof host, &port), 0);
    CU_ASSERT_STRING_EQUAL(host, "::1");
    CU_ASSERT_EQUAL(port, 1);
    CU_ASSERT_EQUAL(config_host_port(":9090", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(config_host_port("h:0", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(config_host_port("h:", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(config_host_port("[]:80", host, sizeof host, &port), -1);
    CU_ASSERT_EQUAL(config_host_port("[::1]80", host, sizeof host, &port), -1);
}

static void test_config_listen_forms(void)
{
    static const struct { const char *yaml; const char *host; int port; } cases[] = {
        {"listen: \"[::1]:9001\"\n", "::1", 9001},
        {"listen: 10.1.2.3:80\n", "10.1.2.3", 80},
        {"listen: 8080\n", "0.0.0.0", 8080},
        {"listen: \":7000\"\n", "0.0.0.0", 7000},
        {"listen: localhost\n", "localhost", 8001},
        {"host: 127.0.0.1\nport: 1234\n", "127.0.0.1", 1234},
        {"port: 65535\n", "0.0.0.0", 65535},
        {"host: \"::\"\n", "::", 8001},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "%smodels: {m: {backends: [http://h]}}\n",
                 cases[i].yaml);
        struct sy_cfg *cfg = load_ok(yaml);
        if (!cfg)
            continue;
        CU_ASSERT_STRING_EQUAL(cfg->host, cases[i].host);
        CU_ASSERT_EQUAL(cfg->port, cases[i].port);
        config_free(cfg);
    }
    load_fails("listen: 0.0.0.0:8001\nport: 9000\n", "t.yaml:2: port:",
               "either listen or host/port");
    load_fails("host: a\nlisten: b:1\n", "t.yaml:1: host:", "listen is at line 2");
    load_fails("listen: \"::1:8001\"\n", "t.yaml:1: listen:", "brackets");
    load_fails("listen: host:0\n", "t.yaml:1: listen:", "got 'host:0'");
    load_fails("listen: host:99999\n", "t.yaml:1: listen:", "1..65535");
    load_fails("listen: \"[::1]\"\n", "t.yaml:1: listen:", "expected host:port");
    load_fails("listen: \"[]:80\"\n", "t.yaml:1: listen:", "expected host:port");
    load_fails("listen: [a, b]\n", "t.yaml:1: listen:", "expected a single value");
    load_fails("port: 0\n", "t.yaml:1: port:", "1..65535, got '0'");
    load_fails("port: http\n", "t.yaml:1: port:", "got 'http'");
    load_fails("port: 80.5\n", "t.yaml:1: port:", "got '80.5'");
    load_fails("host: \"\"\n", "t.yaml:1: host:", "empty value");
}

/* max_client_connections: as set, or half the open-files limit. */
static void test_connection_cap(void)
{
    struct sy_cfg *cfg = load_ok("max_client_connections: 5000\n"
                                 "models:\n  m:\n    backends: [http://h:1]\n");
    struct rlimit rl;

    if (cfg == NULL)
        return;
    CU_ASSERT_EQUAL(cfg->max_client_connections, 5000);
    CU_ASSERT_EQUAL(cfg->stream_buffer, 256 * 1024); /* the default */
    CU_ASSERT_DOUBLE_EQUAL(cfg->client_idle_timeout, 0, 0); /* follows client_timeout */
    CU_ASSERT_EQUAL(server_connection_cap(cfg->max_client_connections), 5000);
    config_free(cfg);
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &rl), 0);
    int cap = server_connection_cap(0);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 256 && rl.rlim_cur <= 2000000)
        CU_ASSERT_EQUAL(cap, (int)(rl.rlim_cur - 64) / 2);
    CU_ASSERT_TRUE(cap >= 64);
}

static void test_client_buffers_and_idle(void)
{
    struct sy_cfg *cfg = load_ok("stream_buffer_size: 64KiB\nclient_idle_timeout: 15s\n"
                                 "models:\n  m:\n    backends: [http://h:1]\n");
    if (cfg == NULL)
        return;
    CU_ASSERT_EQUAL(cfg->stream_buffer, 64 * 1024);
    CU_ASSERT_DOUBLE_EQUAL(cfg->client_idle_timeout, 15, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(cfg->client_request_timeout, 300, 1e-9); /* the default */
    config_free(cfg);
    cfg = load_ok("client_request_timeout: 1.5s\nmodels:\n  m:\n    backends: [http://h:1]\n");
    if (cfg == NULL)
        return;
    CU_ASSERT_DOUBLE_EQUAL(cfg->client_request_timeout, 1.5, 1e-9);
    config_free(cfg);
}

static void test_config_scalar_errors(void)
{
    load_fails("\n\nworkers: 300\n", "t.yaml:3: workers:", "0..256, got '300'");
    load_fails("workers: -1\n", "t.yaml:1: workers:", "got '-1'");
    load_fails("workers: many\n", "t.yaml:1: workers:", "got 'many'");
    load_fails("log_level: loud\n", "t.yaml:1: log_level:", "got 'loud'");
    load_fails("max_body_size: lots\n", "t.yaml:1: max_body_size:", "got 'lots'");
    load_fails("max_body_size: 0\n", "t.yaml:1: max_body_size:", "more than 0");
    load_fails("max_headers: 0\n", "t.yaml:1: max_headers:", "1..10000, got '0'");
    load_fails("max_headers: 20000\n", "t.yaml:1: max_headers:", "1..10000, got '20000'");
    load_fails("max_client_connections: -1\n", "t.yaml:1: max_client_connections:", "got '-1'");
    load_fails("stream_buffer_size: 1KiB\n", "t.yaml:1: stream_buffer_size:",
               "4KiB to 1GiB, got '1KiB'");
    load_fails("client_idle_timeout: soon\n", "t.yaml:1: client_idle_timeout:", "got 'soon'");
    load_fails("plugin_path: [/a, /b:c]\n", "t.yaml:1: plugin_path:", "':' in its name");
    load_fails("plugin_path: []\n", "t.yaml:1: plugin_path:", "an empty list");
    load_fails("plugin_path: {a: 1}\n", "t.yaml:1: plugin_path:", "got a map");
    load_fails("plugin_dir: /a:b\n", "t.yaml:1: plugin_dir:", "':' in its name");
    load_fails("admin_listen: nonsense\n", "t.yaml:1: admin_listen:", "expected host:port");
    load_fails("admin_listen: 9090\n", "t.yaml:1: admin_listen:", "got '9090'");
    load_fails("admin_listen: \"127.0.0.1:99999\"\n", "t.yaml:1: admin_listen:", "host:port");
    load_fails("admin_listen: \"::1:9090\"\n", "t.yaml:1: admin_listen:", "[::1]:9090");
    load_fails("routing: [/opt/p/x.txt]\n", "t.yaml:1: routing:", "absolute path to NAME.so");
    load_fails("routing: [p/x.so]\n", "t.yaml:1: routing:", "bad plugin name");
    load_fails("client_request_timeout: 0\n", "t.yaml:1: client_request_timeout:", "more than 0");
    load_fails("max_client_connections: lots\n", "t.yaml:1: max_client_connections:",
               "got 'lots'");
    load_fails("upstream_timeout: 0\n", "t.yaml:1: upstream_timeout:",
               "more than 0");
    load_fails("upstream_timeout: -5s\n", "t.yaml:1: upstream_timeout:",
               "got '-5s'");
    load_fails("connect_timeout: soon\n", "t.yaml:1: connect_timeout:",
               "got 'soon'");
    load_fails("reroute_attempts: 101\n", "t.yaml:1: reroute_attempts:",
               "0..100");
    load_fails("plugin_dir: {a: b}\n", "t.yaml:1: plugin_dir:",
               "expected a directory or a list of directories, got a map");
    load_fails("plugin_dir: /a\nplugin_path: [/b]\n", "t.yaml:1: plugin_dir:",
               "give either plugin_path or plugin_dir, not both (plugin_path is at line 2)");
    /* accepted edge values */
    struct sy_cfg *cfg = load_ok("workers: 0\nreroute_attempts: 0\n"
                                 "max_body_size: 1\nlog_level: DEBUG\n"
                                 "upstream_timeout: 0.001\n"
                                 "models: {m: {backends: [http://h]}}\n");
    if (cfg) {
        CU_ASSERT_EQUAL(cfg->workers, 0);
        CU_ASSERT_EQUAL(cfg->reroute_attempts, 0);
        CU_ASSERT_EQUAL(cfg->max_body, 1);
        CU_ASSERT_EQUAL(cfg->log_level, SY_LOG_DEBUG);
        CU_ASSERT_DOUBLE_EQUAL(cfg->upstream_timeout, 0.001, 1e-12);
        config_free(cfg);
    }
}

static void test_config_unknown_keys(void)
{
    load_fails("listen: 0.0.0.0:8001\nworkerz: 2\n", "t.yaml:2: workerz:",
               "unknown setting");
    load_fails("models:\n  llama:\n    backends: [http://h]\n    tpye: chat\n",
               "t.yaml:4: models.llama.tpye:", "unknown key");
    load_fails("models:\n  m:\n    backends:\n      - {url: http://h, wieght: 2}\n",
               "t.yaml:4: models.m.backends.wieght:", "unknown key");
}

static void test_config_plugin_lists(void)
{
    load_fails("routing: ../evil\n", "t.yaml:1: routing:", "bad plugin name '../evil'");
    load_fails("health:\n  - ok\n  - a/b\n", "t.yaml:3: health:", "'a/b'");
    load_fails("fallback: [model_map, model_map]\n", "t.yaml:1: fallback:",
               "listed twice");
    load_fails("routing: {roundrobin: {}}\n", "t.yaml:1: routing:",
               "plugin_config");
    load_fails("health: [[x]]\n", "t.yaml:1: health:", "expected a plugin name");
    load_fails("plugin_config:\n  ../x: {a: 1}\n", "t.yaml:2: plugin_config.../x:",
               "bad plugin name");
    load_fails("plugin_config:\n  http_probe: 5s\n", "t.yaml:2: plugin_config.http_probe:",
               "expected a map");
    load_fails("plugin_config: [a]\n", "t.yaml:1: plugin_config:",
               "expected a map");
    /* a plugin by absolute path reads the section of its own name */
    struct sy_cfg *cfg = unit_base_config("routing: [/opt/p/long_generation.so, roundrobin]\n"
                                          "plugin_config:\n  long_generation: {min_max_tokens: 9}\n"
                                          "plugin_path: [/opt/p, /usr/lib/x]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->routing.n, 2);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "/opt/p/long_generation.so");
    CU_ASSERT_PTR_NOT_NULL(cfg_map_get(config_plugin_section(cfg, cfg->routing.names[0]),
                                       "min_max_tokens"));
    CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "/opt/p:/usr/lib/x");
    config_free(cfg);
    /* and a finished config keeps it (config_finish checks the names again) */
    char err[512] = "";
    cfg = unit_base_config("routing: [/opt/p/long_generation.so]\n"
                           "models:\n  m:\n    backends: [http://h:1]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), 0);
    if (err[0])
        fprintf(stderr, "\n%s\n", err);
    config_free(cfg);
}

static void test_config_models_shape_errors(void)
{
    load_fails("models:\n  llama:\n    backends: {a: b}\n",
               "t.yaml:3: models.llama.backends:", "expected a list of URLs");
    load_fails("models: [a, b]\n", "t.yaml:1: models:", "expected a map");
    load_fails("models:\n  m: http://h\n", "t.yaml:2: models.m:",
               "expected a map with backends");
    load_fails("models:\n  m:\n    backends: [[http://h]]\n",
               "t.yaml:3: models.m.backends:", "expected a URL");
    load_fails("models:\n  m:\n    backends:\n      - {weight: 2}\n",
               "t.yaml:4: models.m.backends:", "needs a url");
    load_fails("models:\n  m:\n    backends:\n      - {url: http://h, weight: 0}\n",
               "t.yaml:4: models.m.backends.weight:", "got '0'");
    load_fails("models:\n  m:\n    type: audio\n    backends: [http://h]\n",
               "t.yaml:3: models.m.type:",
               "expected chat, completion, embeddings, rerank, score, "
               "transcription, vision or messages, got 'audio'");
    load_fails("models:\n  m:\n    backends: [http://h]\n    api_key_env: sk-123\n",
               "t.yaml:4: models.m.api_key_env:", "environment variable");
    load_fails("models:\n  m:\n    backends:\n      - {url: http://h, api_key_env: \"$K\"}\n",
               "t.yaml:4: models.m.backends.api_key_env:", "environment variable");
    load_fails("models:\n  m:\n    backends: [http://h]\n    aliases: {a: b}\n",
               "t.yaml:4: models.m.aliases:", "got a map");
    load_fails("models:\n  m:\n    backends: [http://h]\n    fallback_model: [a]\n",
               "t.yaml:4: models.m.fallback_model:", "expected a single value");
    load_fails("aliases: [a]\n", "t.yaml:1: aliases:", "expected a map");
    load_fails("aliases:\n  a: {b: c}\n", "t.yaml:2: aliases.a:",
               "expected a single value");
    load_fails("aliases:\n  a:\n", "t.yaml:2: aliases.a:", "expected a model name");
}

static void test_config_urls(void)
{
    static const struct { const char *in, *want; } good[] = {
        {"http://10.0.0.1:8000", "http://10.0.0.1:8000"},
        {"http://10.0.0.1:8000/", "http://10.0.0.1:8000"},
        {"https://gw.example.com/v1", "https://gw.example.com/v1"},
        {"https://gw.example.com/v1/", "https://gw.example.com/v1"},
        {"http://[::1]:8000", "http://[::1]:8000"},
        {"http://[fe80::1]/", "http://[fe80::1]"},
        {"HTTP://Host", "HTTP://Host"},
        {"http://h//", "http://h/"}, /* one slash only */
    };
    static const struct { const char *in, *why; } bad[] = {
        {"ftp://h", "http:// or https://"},
        {"10.0.0.1:8000", "http:// or https://"},
        {"http://", "no host"},
        {"http:///v1", "no host"},
        {"http://:8000", "no host"},
        {"http://h:0", "bad port"},
        {"http://h:99999", "bad port"},
        {"http://h:80x", "bad port"},
        {"http://h:", "bad port"},
        {"http://user:pw@h", "user:password@"},
        {"http://h/v1?x=1", "query"},
        {"http://h#frag", "query or fragment"},
        {"http://h /v1", "space"},
        {"http://::1:8000", "brackets"},
        {"http://[::1", "unclosed"},
        {"http://[::1]x", "after ']'"},
        {"http://[]:80", "no host"},
    };
    char why[128];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *out = NULL;
        CU_ASSERT_EQUAL(config_parse_url(good[i].in, &out, why, sizeof why), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        CU_ASSERT_STRING_EQUAL(out, good[i].want);
        free(out);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        why[0] = '\0';
        CU_ASSERT_EQUAL(config_parse_url(bad[i].in, &out, why, sizeof why), -1);
        CU_ASSERT_PTR_NULL(out);
        if (!strstr(why, bad[i].why))
            fprintf(stderr, "\n'%s': '%s' lacks '%s'\n", bad[i].in, why,
                    bad[i].why);
        HAS(why, bad[i].why);
    }
    /* in a file: file:line, the key and the URL */
    load_fails("models:\n  m:\n    backends:\n      - http://ok\n      - ftp://x\n",
               "t.yaml:5: models.m.backends:", "'ftp://x': must start with");
    load_fails("models:\n  m:\n    backends: [http://a:1/, http://a:1]\n",
               "t.yaml:3: models.m.backends:", "listed twice");
}

static void test_config_finish_errors(void)
{
    load_fails("workers: 2\n", "t.yaml: no models", NULL);
    load_fails("models:\n", "t.yaml: no models", NULL);
    load_fails("models:\n  ok: {backends: [http://h]}\n  empty:\n    type: chat\n",
               "t.yaml:3: models.empty:", "model 'empty' has no backends");
    load_fails("models:\n  m:\n    backends: []\n", "t.yaml:2: models.m:",
               "no backends");
    /* aliases */
    load_fails("models:\n  m: {backends: [http://h]}\naliases:\n  gpt-4: nope\n",
               "t.yaml:4: aliases.gpt-4:", "alias 'gpt-4' names unknown model 'nope'");
    load_fails("models:\n  m: {backends: [http://h]}\n  n: {backends: [http://i]}\n"
               "aliases:\n  n: m\n",
               "t.yaml:5: aliases.n:", "alias 'n' is also the name of a model");
    load_fails("models:\n  m:\n    backends: [http://h]\n    aliases: [x, m]\n",
               "t.yaml:4: models.m.aliases:", "alias 'm' is also the name");
    load_fails("models:\n  m:\n    backends: [http://h]\n    aliases: [x]\n"
               "aliases:\n  x: m\n",
               "t.yaml:6: aliases.x:", "alias 'x' is declared twice (first at line 4)");
    load_fails("models:\n  m:\n    backends: [http://h]\n    aliases:\n"
               "      - x\n      - x\n",
               "t.yaml:6: models.m.aliases:", "declared twice (first at line 5)");
    /* fallbacks */
    load_fails("models:\n  m:\n    backends: [http://h]\n    fallback_model: ghost\n",
               "t.yaml:4: models.m.fallback_model:",
               "model 'm' falls back to unknown model 'ghost'");
    load_fails("models:\n  m:\n    backends: [http://h]\n    fallback_model: m\n",
               "t.yaml:4: models.m.fallback_model:", "model 'm' falls back to itself");
    load_fails("models:\n  m:\n    backends: [http://h]\n    aliases: [me]\n"
               "    fallback_model: me\n",
               "t.yaml:5: models.m.fallback_model:", "itself (through alias 'me')");
    /* a fallback may point to a model that itself falls back */
    struct sy_cfg *cfg = load_ok("models:\n"
                                 "  a: {backends: [http://h:1], fallback_model: b}\n"
                                 "  b: {backends: [http://h:2], fallback_model: a}\n");
    if (cfg) {
        CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "a")->fallback_model, "b");
        CU_ASSERT_STRING_EQUAL(config_find_model(cfg, "b")->fallback_model, "a");
        config_free(cfg);
    }
}

/* config_finish on a config built by hand (the command line's way). */
static void test_config_finish_built(void)
{
    char err[256];
    struct sy_cfg *cfg = config_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    HAS(err, "command line: no models");

    struct model_cfg *m = config_add_model(cfg, "m", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(m->type, "chat");
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    HAS(err, "command line: --static-models: model 'm' has no backends");

    CU_ASSERT_EQUAL(config_add_backend(m, "http://h:1", 1, NULL, 0), 0);
    CU_ASSERT_EQUAL(config_add_alias(cfg, "x", "y", 0), 0);
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    HAS(err, "command line: --static-aliases: alias 'x' names unknown model 'y'");

    free(cfg->aliases[0].model);
    cfg->aliases[0].model = strdup("m");
    cfg->models[0].fallback_model = strdup("zz");
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    HAS(err, "command line: --static-fallback-models: model 'm' falls back to "
             "unknown model 'zz'");

    free(cfg->models[0].fallback_model);
    cfg->models[0].fallback_model = NULL;
    cfg->port = 0;
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    HAS(err, "port: must be 1..65535");
    cfg->port = 70000;
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    cfg->port = 80;
    cfg->max_body = 0;
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    HAS(err, "max_body_size: must be more than 0");
    cfg->max_body = 10;

    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg->routing.names[0], "roundrobin");
    CU_ASSERT_EQUAL(cfg->fallback.n, 0);

    config_clear_models(cfg);
    CU_ASSERT_EQUAL(cfg->nmodels, 0);
    CU_ASSERT_EQUAL(cfg->naliases, 0);
    config_free(cfg);
}

static void test_config_load_file(void)
{
    char path[] = "/tmp/sy_config_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    const char *text = "port: 8123\nmodels:\n  m:\n    backends: [http://h:1]\n"
                       "    fallback_model: missing\n";
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    char err[512] = "", want[256];
    struct sy_cfg *cfg = NULL;
    CU_ASSERT_EQUAL_FATAL(config_load_file(path, &cfg, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg->source, path);
    CU_ASSERT_EQUAL(cfg->port, 8123);
    CU_ASSERT_EQUAL(config_finish(cfg, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:5: models.m.fallback_model:", path);
    HAS(err, want);
    config_free(cfg);
    unlink(path);

    cfg = NULL;
    CU_ASSERT_EQUAL(config_load_file("/nonexistent.yaml", &cfg, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(cfg);
    HAS(err, "/nonexistent.yaml");
    /* a YAML syntax error keeps its file:line */
    load_fails("models:\n  m: [\n", "t.yaml:", NULL);
}

/* ---- log ---- */

/* Run log calls with stderr sent to a file; return what was written. */
static char *capture_log(void (*fn)(void))
{
    char path[] = "/tmp/sy_log_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    static char buf[16384];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void log_some(void)
{
    log_level = SY_LOG_INFO;
    log_msg(SY_LOG_INFO, "hello %d", 42);
    log_msg(SY_LOG_DEBUG, "dropped");
    LOG_DEBUG("dropped too");
    LOG_WARN("careful");
}

static void log_prefixed(const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(SY_LOG_ERROR, prefix, fmt, ap);
    va_end(ap);
}

static void log_prefix_and_newline(void)
{
    log_level = SY_LOG_ERROR;
    log_msg(SY_LOG_WARNING, "below the level");
    log_prefixed("roundrobin", "bad %s", "thing\ninjected");
}

static void log_long(void)
{
    static char big[10000];
    memset(big, 'x', sizeof big - 1);
    log_level = SY_LOG_DEBUG;
    log_msg(SY_LOG_DEBUG, "%s", big);
}

static void test_log_format(void)
{
    int saved_level = log_level;
    char *out = capture_log(log_some);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    /* 2026-11-25T01:02:03.123Z INFO hello 42 */
    CU_ASSERT(strlen(out) > 25);
    CU_ASSERT_EQUAL(out[4], '-');
    CU_ASSERT_EQUAL(out[10], 'T');
    CU_ASSERT_EQUAL(out[19], '.');
    CU_ASSERT_EQUAL(out[23], 'Z');
    CU_ASSERT_EQUAL(strncmp(out + 24, " INFO hello 42\n", 15), 0);
    char *second = strchr(out, '\n') + 1;
    CU_ASSERT_EQUAL(strncmp(second + 24, " WARNING careful\n", 17), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "dropped"));
    CU_ASSERT_EQUAL(strchr(second, '\n')[1], '\0'); /* exactly two lines */

    out = capture_log(log_prefix_and_newline);
    CU_ASSERT_PTR_NULL(strstr(out, "below the level"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Z ERROR [roundrobin] bad thing injected\n"));
    CU_ASSERT_EQUAL(strchr(out, '\n')[1], '\0'); /* one line */

    out = capture_log(log_long);
    size_t len = strlen(out);
    CU_ASSERT(len <= 4096);
    CU_ASSERT(len > 4000);
    CU_ASSERT_EQUAL(out[len - 1], '\n');
    CU_ASSERT_EQUAL(strncmp(out + len - 4, "...\n", 4), 0);
    CU_ASSERT_PTR_EQUAL(strchr(out, '\n'), out + len - 1); /* one line */
    log_level = saved_level;
}

static void test_log_levels(void)
{
    CU_ASSERT_EQUAL(log_parse_level("debug"), SY_LOG_DEBUG);
    CU_ASSERT_EQUAL(log_parse_level("info"), SY_LOG_INFO);
    CU_ASSERT_EQUAL(log_parse_level("warning"), SY_LOG_WARNING);
    CU_ASSERT_EQUAL(log_parse_level("warn"), SY_LOG_WARNING);
    CU_ASSERT_EQUAL(log_parse_level("error"), SY_LOG_ERROR);
    CU_ASSERT_EQUAL(log_parse_level("ERROR"), SY_LOG_ERROR);
    CU_ASSERT_EQUAL(log_parse_level("verbose"), -1);
    CU_ASSERT_EQUAL(log_parse_level(""), -1);
    CU_ASSERT_EQUAL(log_parse_level(NULL), -1);
}

/* The settings table: each key named once per source, a help line for
 * every flag, and one parser behind the file and the flags: the same value
 * gets the same answer from both. */
static void test_settings_table(void)
{
    static const unsigned sources[] = {SETTING_FILE, SETTING_FLAG, SETTING_DYNAMIC};
    size_t rows = 0;
    for (const struct setting *a = settings_table; a->key; a++, rows++) {
        CU_ASSERT(a->where != 0);
        if (a->where & SETTING_FLAG)
            CU_ASSERT_PTR_NOT_NULL(a->help);
        if (a->type == SETTING_CUSTOM)
            CU_ASSERT_PTR_NOT_NULL(a->set);
        for (size_t s = 0; s < 3; s++)
            if (a->where & sources[s])
                CU_ASSERT_PTR_EQUAL(settings_find(a->key, sources[s]), a);
        for (const struct setting *b = a + 1; b->key; b++)
            if (strcmp(a->key, b->key) == 0)
                CU_ASSERT((a->where & b->where) == 0);
    }
    CU_ASSERT(rows > 40);
    CU_ASSERT_PTR_NULL(settings_find("models", SETTING_FLAG));
    CU_ASSERT_PTR_NULL(settings_find("static_backends", SETTING_FILE));

    static const char *const values[][2] = {
        {"stream_buffer_size", "1KiB"}, {"port", "0"}, {"workers", "x"},
        {"connect_timeout", "0"}, {"retry_after_cap", "soon"},
        {"access_log", "maybe"}, {"log_level", "loud"}, {"max_body_size", "0"},
        {"admin_listen", "nowhere"}, {"log_file", ""},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char yaml[128], flag[96], file_err[256], flag_err[256];
        struct sy_cfg *cfg = NULL;
        snprintf(yaml, sizeof yaml, "%s: '%s'\n", values[i][0], values[i][1]);
        CU_ASSERT_EQUAL(config_load_string(yaml, "t.yaml", &cfg, file_err,
                                           sizeof file_err), -1);
        struct sy_cfg *base = config_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(base);
        struct cfg_node *map = cfg_node_new(CFG_MAP, "command line", 0);
        CU_ASSERT_EQUAL_FATAL(cfg_map_set(map, values[i][0],
                              cfg_node_new_scalar(values[i][1], "command line", 0)), 0);
        struct setter st = {.cfg = base, .map = map, .src = SETTING_FLAG,
                            .file = "command line", .err = flag_err,
                            .errlen = sizeof flag_err};
        CU_ASSERT_EQUAL(settings_apply(&st), -1);
        /* "t.yaml:1: key: why" and "command line: --key: why" */
        const char *why_file = strstr(file_err, ": ");
        why_file = why_file ? strstr(why_file + 2, ": ") : NULL;
        const char *why_flag = strstr(flag_err, ": ");
        why_flag = why_flag ? strstr(why_flag + 2, ": ") : NULL;
        snprintf(flag, sizeof flag, "command line: --%s: ", values[i][0]);
        for (char *p = flag + 16; *p; p++)
            if (*p == '_')
                *p = '-';
        HAS(flag_err, flag);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why_file);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why_flag);
        if (strcmp(why_file, why_flag) != 0)
            fprintf(stderr, "\n'%s' vs '%s'\n", file_err, flag_err);
        CU_ASSERT_STRING_EQUAL(why_file, why_flag);
        cfg_tree_free(map);
        config_free(base);
    }
}

void register_config_tests(void)
{
    UNIT_SUITE("config",
               UNIT_TEST(test_config_full),
               UNIT_TEST(test_config_defaults),
               UNIT_TEST(test_settings_table),
               UNIT_TEST(test_connection_cap),
               UNIT_TEST(test_client_buffers_and_idle),
               UNIT_TEST(test_config_fallback_defaults),
               UNIT_TEST(test_config_listen_forms), UNIT_TEST(test_config_host_port),
               UNIT_TEST(test_config_scalar_errors),
               UNIT_TEST(test_config_unknown_keys),
               UNIT_TEST(test_config_plugin_lists),
               UNIT_TEST(test_config_models_shape_errors),
               UNIT_TEST(test_config_urls),
               UNIT_TEST(test_config_finish_errors),
               UNIT_TEST(test_config_finish_built),
               UNIT_TEST(test_config_load_file),
               UNIT_TEST(test_log_format),
               UNIT_TEST(test_log_levels));
}
