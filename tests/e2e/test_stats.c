/* Engine and request stats, and vllm_router's series (issue: the
 * vllm_router drop-in):
 *
 *   engine stats      each backend's /metrics is scraped every
 *                     engine_stats_interval; /engines and /metrics show
 *                     its queue and cache; an answer that is not
 *                     Prometheus text keeps the last values, stale, with
 *                     one warning, and a good one clears it
 *   request stats     requests, streams and their events give QPS,
 *                     latency, TTFT, ITL and decoding length per backend
 *   log stats         --log-stats writes one line per backend
 *   dashboards        every series production-stack's dashboard,
 *                     prom-adapter and KEDA read of the router is exported
 *                     with its labels after traffic
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"

static const char vllm_text[] =
    "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    "vllm:num_requests_running{engine=\"0\",model_name=\"llama\"} 3.0\n"
    "vllm:num_requests_running{engine=\"1\",model_name=\"llama\"} 2.0\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    "vllm:num_requests_waiting{engine=\"0\",model_name=\"llama\"} 7.0\n"
    "vllm:num_requests_waiting{engine=\"1\",model_name=\"llama\"} 0.0\n"
    "# TYPE vllm:kv_cache_usage_perc gauge\n"
    "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.5\n"
    "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"llama\"} 0.25\n"
    "# TYPE vllm:prefix_cache_hits_total counter\n"
    "vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"llama\"} 300.0\n"
    "# TYPE vllm:prefix_cache_queries_total counter\n"
    "vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"llama\"} 1200.0\n"
    "# TYPE vllm:cache_config_info gauge\n"
    "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",num_gpu_blocks=\"2048\"} 1.0\n"
    "# TYPE vllm:time_to_first_token_seconds histogram\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"0.001\",model_name=\"llama\"} 0.0\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"llama\"} 4.0\n"
    "vllm:time_to_first_token_seconds_sum{model_name=\"llama\"} 0.9\n"
    "vllm:time_to_first_token_seconds_count{model_name=\"llama\"} 4.0\n";

static int set_metrics(const struct mock *m, const char *text)
{
    struct resp r;
    int ok = http_post(m->port, "/_mock/metrics", text, NULL, &r) == 0 && r.status == 200;
    resp_free(&r);
    return ok ? 0 : -1;
}

/* The backend of /engines whose url is `url` (a new reference), or NULL. */
static json_object *engine_of(int port, const char *url)
{
    struct resp r;
    json_object *root = NULL, *list, *found = NULL;

    if (http_get(port, "/engines", &r) == 0 && r.status == 200)
        root = json_tokener_parse(r.body);
    resp_free(&r);
    if ((list = root) != NULL && json_object_is_type(list, json_type_array))
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *e = json_object_array_get_idx(list, i), *u;
            if (json_object_object_get_ex(e, "url", &u) &&
                strcmp(json_object_get_string(u), url) == 0)
                found = json_object_get(e);
        }
    json_object_put(root);
    return found;
}

/* A number of /engines' entry for url: "engine_stats.waiting"; NAN when absent. */
static double engine_number(int port, const char *url, const char *group, const char *key)
{
    json_object *e = engine_of(port, url), *g, *v;
    double d = NAN;

    if (e != NULL && json_object_object_get_ex(e, group, &g) && g != NULL &&
        json_object_object_get_ex(g, key, &v))
        d = json_object_get_double(v);
    json_object_put(e);
    return d;
}

static int engine_flag(int port, const char *url, const char *group, const char *key)
{
    json_object *e = engine_of(port, url), *g, *v;
    int b = -1;

    if (e != NULL && json_object_object_get_ex(e, group, &g) && g != NULL &&
        json_object_object_get_ex(g, key, &v))
        b = json_object_get_boolean(v);
    json_object_put(e);
    return b;
}

static int wait_engine_number(int port, const char *url, const char *key, double want)
{
    for (int i = 0; i < 300; i++) {
        if (engine_number(port, url, "engine_stats", key) == want)
            return 0;
        sleep_ms(20);
    }
    return -1;
}

static double server_metric(int port, const char *name, const char *url)
{
    char sample[256];
    snprintf(sample, sizeof sample, "%s{server=\"%s\"}", name, url);
    return metric_value(port, sample, NAN);
}

static void test_engine_stats(void)
{
    struct mock a, b;
    struct router rt;
    char yaml[512];

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "es-a", "llama", NULL), 0);
    if (mock_start(&b, "es-b", "llama", NULL) != 0) {
        mock_stop(&a);
        CU_FAIL_FATAL("mock did not start");
    }
    CU_ASSERT_EQUAL(set_metrics(&a, vllm_text), 0);
    snprintf(yaml, sizeof yaml, "engine_stats_interval: 0.2\nmodels:\n  llama: {backends: [%s, %s]}\n",
             a.url, b.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);

    CU_ASSERT_EQUAL(wait_engine_number(rt.port, a.url, "waiting", 7), 0);
    /* data-parallel ranks: counts summed, the usage averaged */
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "engine_stats", "running"), 5);
    CU_ASSERT_DOUBLE_EQUAL(engine_number(rt.port, a.url, "engine_stats", "kv_usage"), 0.375, 1e-9);
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "engine_stats", "prefix_hits"), 300);
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "engine_stats", "prefix_queries"), 1200);
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "engine_stats", "block_size"), 16);
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "engine_stats", "gpu_blocks"), 2048);
    CU_ASSERT(engine_number(rt.port, a.url, "engine_stats", "age_seconds") < 5);
    CU_ASSERT_EQUAL(engine_flag(rt.port, a.url, "engine_stats", "stale"), 0);
    /* the other mock is an idle vLLM */
    CU_ASSERT_EQUAL(wait_engine_number(rt.port, b.url, "waiting", 0), 0);
    /* vllm_router's series */
    CU_ASSERT_EQUAL(server_metric(rt.port, "vllm:num_requests_waiting", a.url), 7);
    CU_ASSERT_DOUBLE_EQUAL(server_metric(rt.port, "vllm:gpu_prefix_cache_hit_rate", a.url), 0.25, 1e-9);
    CU_ASSERT_EQUAL(server_metric(rt.port, "vllm:gpu_prefix_cache_hits_total", a.url), 300);
    CU_ASSERT_EQUAL(server_metric(rt.port, "vllm:gpu_prefix_cache_queries_total", a.url), 1200);

    /* garbage: the last values stay, stale, with one warning */
    CU_ASSERT_EQUAL(set_metrics(&a, "vllm:num_requests_waiting{engine=\"0\" 9\n"), 0);
    int stale = 0;
    for (int i = 0; i < 300 && !stale; i++, sleep_ms(20))
        stale = engine_flag(rt.port, a.url, "engine_stats", "stale") == 1;
    CU_ASSERT(stale);
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "engine_stats", "waiting"), 7);
    sleep_ms(600); /* three more failed scrapes */
    CU_ASSERT_EQUAL(router_log_lines(&rt, "engine stats of", "not Prometheus text: line 1"), 1);
    /* and back */
    CU_ASSERT_EQUAL(set_metrics(&a, "vllm:num_requests_waiting 2\n"), 0);
    CU_ASSERT_EQUAL(wait_engine_number(rt.port, a.url, "waiting", 2), 0);
    CU_ASSERT_EQUAL(engine_flag(rt.port, a.url, "engine_stats", "stale"), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "engine stats of", "scraped again"), 1);
    /* a value no longer reported is gone */
    CU_ASSERT(isnan(engine_number(rt.port, a.url, "engine_stats", "running")));

    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    mock_stop(&b);
}

/* engine_stats_interval: 0 scrapes nothing. */
static void test_engine_stats_off(void)
{
    struct mock a;
    struct router rt;
    char yaml[256];
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "es-off", "llama", NULL), 0);
    snprintf(yaml, sizeof yaml, "engine_stats_interval: 0\nmodels:\n  llama: {backends: [%s]}\n",
             a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    sleep_ms(300);
    json_object *e = engine_of(rt.port, a.url), *es = NULL;
    CU_ASSERT_PTR_NOT_NULL(e);
    CU_ASSERT(e != NULL && json_object_object_get_ex(e, "engine_stats", &es) && es == NULL);
    json_object_put(e);
    CU_ASSERT_EQUAL(http_get(a.port, "/_mock/stats", &r), 0);
    CU_ASSERT_PTR_NOT_NULL(r.body != NULL ? strstr(r.body, "\"scrapes\":0") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

static void test_request_stats(void)
{
    struct mock a;
    struct router rt;
    char yaml[256];
    struct resp r;
    static const char *const stream_hdr[] = { "X-Mock-Chunks: 5", "X-Mock-Chunk-Delay-Ms: 20",
                                              NULL };

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "rs-a", "llama", NULL), 0);
    snprintf(yaml, sizeof yaml, "request_stats_window: 30\nmodels:\n  llama: {backends: [%s]}\n",
             a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"llama\",\"messages\":[]}", NULL, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"llama\",\"stream\":true}",
                                  stream_hdr, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "request_stats", "finished"), 6);
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "request_stats", "in_prefill"), 0);
    CU_ASSERT_EQUAL(engine_number(rt.port, a.url, "request_stats", "in_decoding"), 0);
    double window = engine_number(rt.port, a.url, "request_stats", "window_seconds");
    CU_ASSERT(window >= 30 && window <= 32);
    CU_ASSERT_DOUBLE_EQUAL(engine_number(rt.port, a.url, "request_stats", "qps"), 6 / window, 0.01);
    CU_ASSERT(engine_number(rt.port, a.url, "request_stats", "avg_latency") > 0);
    CU_ASSERT(engine_number(rt.port, a.url, "request_stats", "avg_ttft") >= 0);
    /* the streams: 5 chunks and [DONE], 20 ms apart */
    double itl = engine_number(rt.port, a.url, "request_stats", "avg_itl");
    CU_ASSERT(itl >= 0.015 && itl < 0.5);
    double len = engine_number(rt.port, a.url, "request_stats", "avg_decoding_length");
    CU_ASSERT(len >= 5 && len <= 7);
    CU_ASSERT(server_metric(rt.port, "vllm:current_qps", a.url) > 0);
    CU_ASSERT(server_metric(rt.port, "vllm:avg_itl", a.url) >= 0.015);
    CU_ASSERT_EQUAL(server_metric(rt.port, "vllm:num_requests_running", a.url), 0);
    CU_ASSERT_EQUAL(metric_value(rt.port, "vllm:num_incoming_requests_total{model=\"llama\"}", -1), 6);
    /* the mock's answers say 1 prompt token and 3 completion tokens */
    char sample[256];
    snprintf(sample, sizeof sample, "vllm:input_tokens_total{server=\"%s\",model=\"llama\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 4);
    snprintf(sample, sizeof sample, "vllm:output_tokens_total{server=\"%s\",model=\"llama\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 12);
    snprintf(sample, sizeof sample,
             "vllm:request_latency_seconds_count{server=\"%s\",model=\"llama\",status=\"success\"}",
             a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 6);
    snprintf(sample, sizeof sample,
             "vllm:request_latency_seconds_bucket{server=\"%s\",model=\"llama\",status=\"success\","
             "le=\"120\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 6);
    /* failed attempts, by type */
    static const char *const h503[] = { "X-Mock-Status: 503", NULL };
    static const char *const h429[] = { "X-Mock-Status: 429", NULL };
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"llama\"}", h503, &r), 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"llama\"}", h429, &r), 0);
    resp_free(&r);
    snprintf(sample, sizeof sample,
             "vllm:request_errors_total{server=\"%s\",model=\"llama\",error_type=\"http_5xx\"}", a.url);
    CU_ASSERT(metric_value(rt.port, sample, -1) >= 1);
    snprintf(sample, sizeof sample,
             "vllm:request_errors_total{server=\"%s\",model=\"llama\",error_type=\"http_429\"}", a.url);
    CU_ASSERT(metric_value(rt.port, sample, -1) >= 1);
    snprintf(sample, sizeof sample,
             "vllm:request_latency_seconds_count{server=\"%s\",model=\"llama\",status=\"error\"}", a.url);
    CU_ASSERT(metric_value(rt.port, sample, -1) >= 2);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

static void test_log_stats(void)
{
    struct mock a;
    struct router rt;
    char yaml[256];
    static const char *const args[] = { "--log-stats", "--log-stats-interval", "1", NULL };

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "ls-a", "llama", NULL), 0);
    snprintf(yaml, sizeof yaml, "engine_stats_interval: 0.5\nmodels:\n  llama: {backends: [%s]}\n",
             a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, args), 0);
    int lines = 0;
    for (int i = 0; i < 300 && lines < 2; i++, sleep_ms(20))
        lines = router_log_lines(&rt, "stats: ", "engine: running 0 waiting 0");
    CU_ASSERT(lines >= 2);
    CU_ASSERT(router_log_lines(&rt, a.url, "requests: qps") >= 2);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

/* Every series production-stack reads of the router, with where it is read
 * (production-stack main, 2026-08): each must be exported, with its labels,
 * after traffic.  The engines' own series in the same files
 * (vllm:kv_cache_usage_perc, vllm:e2e_request_latency_seconds_*,
 * vllm:time_to_first_token_seconds_*, ...) are scraped from the engines,
 * not the router. */
static const struct {
    const char *sample; /* name and labels; SERVER is the backend's URL */
    const char *where;
} read_by_production_stack[] = {
    {"vllm:healthy_pods_total{server=\"SERVER\"}", "helm/dashboards/vllm-dashboard.json"},
    {"vllm:current_qps{server=\"SERVER\"}", "helm/dashboards/vllm-dashboard.json"},
    {"vllm:num_requests_running{server=\"SERVER\"}", "helm/dashboards/vllm-dashboard.json"},
    {"vllm:num_requests_waiting{server=\"SERVER\"}",
     "helm/dashboards/vllm-dashboard.json, observability/prom-adapter.yaml, "
     "tutorials/assets/keda-scaled-object.yaml"},
    {"vllm:gpu_prefix_cache_hits_total{server=\"SERVER\"}", "helm/dashboards/vllm-dashboard.json"},
    {"vllm:gpu_prefix_cache_queries_total{server=\"SERVER\"}",
     "helm/dashboards/vllm-dashboard.json"},
    {"router_cpu_usage_percent", "helm/dashboards/vllm-dashboard.json"},
    {"router_memory_usage_percent", "helm/dashboards/vllm-dashboard.json"},
    {"router_disk_usage_percent", "helm/dashboards/vllm-dashboard.json"},
    {"vllm:num_incoming_requests_total{model=\"llama\"}",
     "observability/prom-adapter.yaml, tutorials/20-keda-autoscaling.md"},
    /* the rest of vllm_router's per-server gauges */
    {"vllm:avg_latency{server=\"SERVER\"}", "vllm_router metrics_service"},
    {"vllm:avg_itl{server=\"SERVER\"}", "vllm_router metrics_service"},
    {"vllm:avg_decoding_length{server=\"SERVER\"}", "vllm_router metrics_service"},
    {"vllm:num_prefill_requests{server=\"SERVER\"}", "vllm_router metrics_service"},
    {"vllm:num_decoding_requests{server=\"SERVER\"}", "vllm_router metrics_service"},
    {"vllm:num_requests_swapped{server=\"SERVER\"}", "vllm_router metrics_service"},
    {"vllm:gpu_prefix_cache_hit_rate{server=\"SERVER\"}", "vllm_router metrics_service"},
    {"vllm:input_tokens_total{server=\"SERVER\",model=\"llama\"}", "vllm_router metrics_service"},
    {"vllm:output_tokens_total{server=\"SERVER\",model=\"llama\"}", "vllm_router metrics_service"},
    {"vllm:request_latency_seconds_count{server=\"SERVER\",model=\"llama\",status=\"success\"}",
     "vllm_router metrics_service"},
};

static void test_production_stack_series(void)
{
    struct mock a;
    struct router rt;
    char yaml[256];
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "ps-series", "llama", NULL), 0);
    CU_ASSERT_EQUAL(set_metrics(&a, vllm_text), 0);
    snprintf(yaml, sizeof yaml, "engine_stats_interval: 0.2\nmodels:\n  llama: {backends: [%s]}\n",
             a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    CU_ASSERT_EQUAL(wait_engine_number(rt.port, a.url, "waiting", 7), 0);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"llama\"}", NULL, &r), 0);
    resp_free(&r);
    sleep_ms(1100); /* the CPU figure needs a second between looks */
    for (size_t i = 0; i < sizeof read_by_production_stack / sizeof read_by_production_stack[0];
         i++) {
        char sample[256], *at;
        snprintf(sample, sizeof sample, "%s", read_by_production_stack[i].sample);
        if ((at = strstr(sample, "SERVER")) != NULL) {
            char tail[128];
            snprintf(tail, sizeof tail, "%s", at + 6);
            snprintf(at, sizeof sample - (size_t)(at - sample), "%s%s", a.url, tail);
        }
        double v = metric_value(rt.port, sample, NAN);
        if (isnan(v))
            fprintf(stderr, "\n    %s (read by %s) is not exported\n", sample,
                    read_by_production_stack[i].where);
        CU_ASSERT(!isnan(v));
    }
    /* plausible values */
    CU_ASSERT_EQUAL(server_metric(rt.port, "vllm:healthy_pods_total", a.url), 1);
    CU_ASSERT_EQUAL(metric_value(rt.port, "vllm:num_incoming_requests_total{model=\"llama\"}", -1), 1);
    double cpu = metric_value(rt.port, "router_cpu_usage_percent", -1);
    double mem = metric_value(rt.port, "router_memory_usage_percent", -1);
    double disk = metric_value(rt.port, "router_disk_usage_percent", -1);
    CU_ASSERT(cpu >= 0 && cpu <= 100.0 * 256);
    CU_ASSERT(mem > 0 && mem < 100);
    CU_ASSERT(disk > 0 && disk <= 100);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

/* /engines is vllm_router's array; an engine's id comes from its URL, so
 * it is the same after a reload and in another replica. */
static void test_engines_shape(void)
{
    struct mock a;
    struct router r1, r2;
    char yaml[256], id[64] = "";
    long long created = 0;

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "ids-a", "llama,llama-lora", NULL), 0);
    snprintf(yaml, sizeof yaml, "models:\n  llama: {backends: [%s]}\n"
                                "  llama-lora: {backends: [%s]}\n", a.url, a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&r1, yaml, NULL), 0);
    json_object *e = engine_of(r1.port, a.url), *v;
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT(json_object_object_get_ex(e, "engine_id", &v));
    snprintf(id, sizeof id, "%s", json_object_get_string(v));
    CU_ASSERT_EQUAL(strlen(id), 36);
    CU_ASSERT_EQUAL(id[14], '8'); /* a UUID of version 8 */
    CU_ASSERT(json_object_object_get_ex(e, "serving_models", &v) &&
              json_object_array_length(v) == 2 &&
              strcmp(json_object_get_string(json_object_array_get_idx(v, 1)), "llama-lora") == 0);
    CU_ASSERT(json_object_object_get_ex(e, "created", &v));
    created = json_object_get_int64(v);
    CU_ASSERT(created > 1700000000);
    json_object_put(e);

    /* another replica, a second later, names it the same */
    sleep_ms(1100);
    CU_ASSERT_EQUAL_FATAL(router_start(&r2, yaml, NULL), 0);
    e = engine_of(r2.port, a.url);
    CU_ASSERT(e != NULL && json_object_object_get_ex(e, "engine_id", &v) &&
              strcmp(json_object_get_string(v), id) == 0);
    json_object_put(e);
    /* a reload keeps the id and the time it joined */
    kill(r1.pid, SIGHUP);
    for (int i = 0; i < 100 && router_log_lines(&r1, "configuration reloaded", NULL) < 1; i++)
        sleep_ms(20);
    e = engine_of(r1.port, a.url);
    CU_ASSERT(e != NULL && json_object_object_get_ex(e, "engine_id", &v) &&
              strcmp(json_object_get_string(v), id) == 0);
    CU_ASSERT(e != NULL && json_object_object_get_ex(e, "created", &v) &&
              json_object_get_int64(v) == created);
    json_object_put(e);
    CU_ASSERT_EQUAL(router_stop(&r1), 0);
    CU_ASSERT_EQUAL(router_stop(&r2), 0);
    mock_stop(&a);
}

void register_stats_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e stats", NULL, NULL);
    CU_add_test(s, "engine stats scraped, stale, back", test_engine_stats);
    CU_add_test(s, "engine_stats_interval 0", test_engine_stats_off);
    CU_add_test(s, "request stats", test_request_stats);
    CU_add_test(s, "--log-stats", test_log_stats);
    CU_add_test(s, "production-stack's series", test_production_stack_series);
    CU_add_test(s, "/engines as vllm_router's, ids from URLs", test_engines_shape);
}
