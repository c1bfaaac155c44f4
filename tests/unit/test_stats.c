/* Engine stats from /metrics answers (names, versions, ranks) and request
 * stats over their window (buckets, averages, the window's edge). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine_stats.h"
#include "request_stats.h"
#include "setup.h"
#include "usage_scan.h"
#include "unit.h"

static int parse(const char *text, struct engine_stats *st)
{
    char err[256] = "";
    int rc = engine_stats_parse(text, strlen(text), st, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n    %s\n", err);
    return rc;
}

#define HAS(st, v) ((st).present >> (v) & 1)

/* vLLM V1 (0.10 on), two data-parallel ranks. */
static void test_vllm_v1(void)
{
    struct engine_stats st;
    CU_ASSERT_EQUAL_FATAL(parse(
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 4.0\n"
        "vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 1.0\n"
        "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2.0\n"
        "vllm:num_requests_waiting{engine=\"1\",model_name=\"m\"} 3.0\n"
        "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.9\n"
        "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.1\n"
        "vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 10.0\n"
        "vllm:prefix_cache_hits_total{engine=\"1\",model_name=\"m\"} 30.0\n"
        "vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 100.0\n"
        "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\",engine=\"0\"} 1.0\n"
        "vllm:cache_config_info{block_size=\"32\",num_gpu_blocks=\"500\",engine=\"1\"} 1.0\n"
        "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 4.0\n",
        &st), 0);
    CU_ASSERT_EQUAL(st.v[EV_RUNNING], 5);
    CU_ASSERT_EQUAL(st.v[EV_WAITING], 5);
    CU_ASSERT_DOUBLE_EQUAL(st.v[EV_KV_USAGE], 0.5, 1e-12);
    CU_ASSERT_EQUAL(st.v[EV_PREFIX_HITS], 40);
    CU_ASSERT_EQUAL(st.v[EV_PREFIX_QUERIES], 100);
    CU_ASSERT_EQUAL(st.v[EV_BLOCK_SIZE], 16); /* the first rank's */
    CU_ASSERT_EQUAL(st.v[EV_GPU_BLOCKS], 1500);
    CU_ASSERT_FALSE(HAS(st, EV_SWAPPED));
}

/* vLLM before 0.10 (V0): gpu_ names, swapped requests; a version that
 * exports both names is read once, by the newer. */
static void test_vllm_old_names(void)
{
    struct engine_stats st;
    CU_ASSERT_EQUAL_FATAL(parse(
        "vllm:num_requests_running{model_name=\"m\"} 1\n"
        "vllm:num_requests_swapped{model_name=\"m\"} 2\n"
        "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.75\n"
        "vllm:gpu_prefix_cache_hits_total{model_name=\"m\"} 5\n"
        "vllm:gpu_prefix_cache_queries_total{model_name=\"m\"} 50\n",
        &st), 0);
    CU_ASSERT_EQUAL(st.v[EV_SWAPPED], 2);
    CU_ASSERT_DOUBLE_EQUAL(st.v[EV_KV_USAGE], 0.75, 1e-12);
    CU_ASSERT_EQUAL(st.v[EV_PREFIX_HITS], 5);
    CU_ASSERT_EQUAL(st.v[EV_PREFIX_QUERIES], 50);
    CU_ASSERT_FALSE(HAS(st, EV_WAITING));

    CU_ASSERT_EQUAL_FATAL(parse("vllm:gpu_cache_usage_perc 0.2\n"
                                "vllm:kv_cache_usage_perc 0.6\n"
                                "vllm:gpu_prefix_cache_hits_total 7\n"
                                "vllm:prefix_cache_hits_total 9\n", &st), 0);
    CU_ASSERT_DOUBLE_EQUAL(st.v[EV_KV_USAGE], 0.6, 1e-12);
    CU_ASSERT_EQUAL(st.v[EV_PREFIX_HITS], 9);
}

static void test_sglang(void)
{
    struct engine_stats st;
    CU_ASSERT_EQUAL_FATAL(parse("sglang:num_running_reqs{model_name=\"m\"} 6\n"
                                "sglang:num_queue_reqs{model_name=\"m\"} 11\n"
                                "sglang:token_usage{model_name=\"m\"} 0.3\n", &st), 0);
    CU_ASSERT_EQUAL(st.v[EV_RUNNING], 6);
    CU_ASSERT_EQUAL(st.v[EV_WAITING], 11);
    CU_ASSERT_DOUBLE_EQUAL(st.v[EV_KV_USAGE], 0.3, 1e-12);
}

/* NaN values and unreadable labels are skipped; a bad line fails the whole
 * answer (its values are not half-read). */
static void test_odd_values(void)
{
    struct engine_stats st;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(parse("vllm:num_requests_waiting NaN\n"
                                "vllm:num_requests_running +Inf\n"
                                "vllm:cache_config_info{block_size=\"x16\"} 1\n"
                                "llama_cpp:whatever 3\n", &st), 0);
    CU_ASSERT_EQUAL(st.present, 0u);
    static const char broken[] = "vllm:num_requests_waiting 1\nvllm:num_requests_running{a=\"b} 2\n";
    CU_ASSERT_EQUAL(engine_stats_parse(broken, sizeof broken - 1, &st, err, sizeof err), -1);
    CU_ASSERT_EQUAL(strncmp(err, "line 2", 6), 0);
    /* a series it does not read is read up to its name only */
    static const char other[] = "vllm:num_requests_waiting 1\nvllm:x{a=\"b} 2\n9x 1\n";
    CU_ASSERT_EQUAL(engine_stats_parse(other, sizeof other - 1, &st, err, sizeof err), -1);
    CU_ASSERT_EQUAL(strncmp(err, "line 3", 6), 0);
    CU_ASSERT_EQUAL(engine_stats_parse("", 0, &st, err, sizeof err), 0);
    CU_ASSERT_EQUAL(st.present, 0u);
}

/* --- request stats, on a setup of one backend and two workers --- */

static struct setup *one_backend(const char *window)
{
    char yaml[256], err[256];
    snprintf(yaml, sizeof yaml,
             "request_stats_window: %s\nmodels:\n  m: {backends: [http://127.0.0.1:9]}\n", window);
    struct setup *s = unit_make_setup(yaml, err, sizeof err);
    if (s == NULL)
        fprintf(stderr, "\n    %s\n", err);
    return s;
}

static void test_request_window(void)
{
    struct setup *s = one_backend("15");
    struct request_stats rs;
    struct rs_attempt a, b;
    double t = 1000.0; /* a bucket is a second */

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct backend *be = &s->backends[0];
    request_stats_get(be, t, &rs);
    CU_ASSERT_EQUAL(rs.qps, 0);
    CU_ASSERT_EQUAL(rs.avg_latency, -1);
    CU_ASSERT_EQUAL(rs.avg_ttft, -1);

    /* worker 0: a plain answer; worker 1: a stream of 4 events 0.1 s apart */
    request_stats_sent(be, 0, &a, t);
    request_stats_sent(be, 1, &b, t);
    request_stats_get(be, t, &rs);
    CU_ASSERT_EQUAL(rs.in_prefill, 2);
    request_stats_body(be, 0, &a, "{}", 2, 0, t + 0.5);
    request_stats_done(be, 0, &a, t + 0.5);
    request_stats_body(be, 1, &b, "data: 1\n\nda", 11, 1, t + 0.2);
    request_stats_get(be, t + 0.2, &rs);
    CU_ASSERT_EQUAL(rs.in_prefill, 0);
    CU_ASSERT_EQUAL(rs.in_decoding, 1);
    /* an event split across reads, and CRLF line ends */
    request_stats_body(be, 1, &b, "ta: 2\n", 6, 1, t + 0.3);
    request_stats_body(be, 1, &b, "\ndata: 3\r\n\r\n", 12, 1, t + 0.4);
    request_stats_body(be, 1, &b, "data: [DONE]\n\n", 14, 1, t + 0.5);
    request_stats_done(be, 1, &b, t + 0.5);

    request_stats_get(be, t + 1, &rs);
    CU_ASSERT_EQUAL(rs.in_prefill, 0);
    CU_ASSERT_EQUAL(rs.in_decoding, 0);
    CU_ASSERT_EQUAL(rs.finished, 2);
    CU_ASSERT_DOUBLE_EQUAL(rs.window, 15.0, 0.01); /* 15 whole seconds and this one, just begun */
    CU_ASSERT_DOUBLE_EQUAL(rs.qps, 2 / rs.window, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(rs.avg_latency, 0.5, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(rs.avg_ttft, 0.35, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(rs.avg_itl, 0.1, 1e-5); /* (0.5 - 0.2) / 3 gaps */
    CU_ASSERT_DOUBLE_EQUAL(rs.avg_decoding_length, 4, 1e-9);

    /* 15 s on they are still in; 16 s on their bucket is out */
    request_stats_get(be, t + 15.9, &rs);
    CU_ASSERT_EQUAL(rs.finished, 2);
    request_stats_get(be, t + 16.0, &rs);
    CU_ASSERT_EQUAL(rs.finished, 0);
    CU_ASSERT_EQUAL(rs.avg_latency, -1);
    /* a worker writing later empties the bucket it reuses */
    request_stats_sent(be, 0, &a, t + 32);
    request_stats_done(be, 0, &a, t + 32.25);
    request_stats_get(be, t + 32.5, &rs);
    CU_ASSERT_EQUAL(rs.finished, 1);
    CU_ASSERT_DOUBLE_EQUAL(rs.avg_latency, 0.25, 1e-5);
    CU_ASSERT_EQUAL(rs.avg_ttft, -1); /* it never answered */
    setup_destroy(s);
}

/* A reload keeps the window of a backend that stays. */
static void test_request_carry_over(void)
{
    struct setup *s = one_backend("60"), *n = one_backend("60"), *other = one_backend("30");
    struct request_stats rs;
    struct rs_attempt a;
    double t = 5000;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    request_stats_sent(&s->backends[0], 1, &a, t);
    request_stats_done(&s->backends[0], 1, &a, t + 1);
    request_stats_carry_over(&n->backends[0], &s->backends[0]);
    request_stats_get(&n->backends[0], t + 2, &rs);
    CU_ASSERT_EQUAL(rs.finished, 1);
    /* another window length: its buckets would mean other times */
    request_stats_carry_over(&other->backends[0], &s->backends[0]);
    request_stats_get(&other->backends[0], t + 2, &rs);
    CU_ASSERT_EQUAL(rs.finished, 0);
    setup_destroy(s);
    setup_destroy(n);
    setup_destroy(other);
}

/* --- token counts from answers --- */

static void usage_of(const char *text, size_t cut, long long *prompt, long long *completion)
{
    struct usage_scan u;
    size_t len = strlen(text);
    usage_scan_init(&u);
    if (cut > len)
        cut = len;
    usage_scan_feed(&u, text, cut);
    usage_scan_feed(&u, text + cut, len - cut);
    *prompt = u.prompt;
    *completion = u.completion;
}

static void test_usage(void)
{
    static const char *const answers[] = {
        /* vLLM's JSON answer */
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
        "\"usage\":{\"prompt_tokens\":12,\"total_tokens\":19,\"completion_tokens\":7,"
        "\"prompt_tokens_details\":null}}",
        /* OpenAI's, pretty-printed */
        "{\n  \"usage\": {\n    \"prompt_tokens\": 12,\n    \"completion_tokens\" : 7\n  }\n}",
        /* a stream whose last event has the usage (include_usage) */
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7}}\n\n"
        "data: [DONE]\n\n",
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
        for (size_t cut = 0; cut <= strlen(answers[i]); cut++) {
            long long p, c;
            usage_of(answers[i], cut, &p, &c);
            if (p != 12 || c != 7)
                fprintf(stderr, "\n    answer %zu cut at %zu: %lld %lld\n", i, cut, p, c);
            CU_ASSERT(p == 12 && c == 7);
        }
    long long p, c;
    /* text that speaks of the keys is not a count */
    usage_of("{\"content\":\"say \\\"prompt_tokens\\\": 5\"}", 9, &p, &c);
    CU_ASSERT_EQUAL(p, -1);
    usage_of("{\"prompt_tokens\":\"5\",\"completion_tokens\":-3}", 4, &p, &c);
    CU_ASSERT(p == -1 && c == -1);
    usage_of("{\"prompt_tokens\":1234567890123456789012}", 10, &p, &c);
    CU_ASSERT_EQUAL(p, -1);
    usage_of("no usage at all", 3, &p, &c);
    CU_ASSERT(p == -1 && c == -1);
    /* the last count wins */
    usage_of("\"prompt_tokens\":1 \"prompt_tokens\":2 ", 18, &p, &c);
    CU_ASSERT_EQUAL(p, 2);
}

void register_stats_tests(void)
{
    UNIT_SUITE("stats", UNIT_TEST(test_vllm_v1), UNIT_TEST(test_vllm_old_names),
               UNIT_TEST(test_sglang), UNIT_TEST(test_odd_values),
               UNIT_TEST(test_request_window), UNIT_TEST(test_request_carry_over),
               UNIT_TEST(test_usage));
}
