/* The Prometheus text parser (core/runtime/prom_text.c) the router scrapes
 * backends' /metrics with: vLLM's exposition read sample by sample, the
 * same samples however the input is cut, and every malformed or oversized
 * input an error naming its line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_text.h"
#include "unit.h"

/* ---- samples recorded as text, to compare whole runs ---- */

#define REC_MAX 256
#define REC_LEN 512

struct rec {
    char s[REC_MAX][REC_LEN];
    size_t n;
    size_t stop_after; /* stop at this many samples; 0: never */
};

/* Shortest of %.15g and %.17g that reads back the same. */
static void fmt_value(char *out, size_t cap, double v)
{
    if (isnan(v))
        snprintf(out, cap, "NaN");
    else if (isinf(v))
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    else {
        snprintf(out, cap, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, cap, "%.17g", v);
    }
}

/* name{k="v",...} value [ts], values escaped back */
static void fmt_sample(char *out, size_t cap, const struct prom_sample *s)
{
    size_t o = 0;
    char v[64];

#define PUT(...) (o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, __VA_ARGS__))
    PUT("%.*s", (int)s->name_len, s->name);
    for (size_t i = 0; i < s->nlabels; i++) {
        const struct prom_label *l = &s->labels[i];
        PUT("%s%.*s=\"", i == 0 ? "{" : ",", (int)l->name_len, l->name);
        for (size_t j = 0; j < l->value_len; j++) {
            char c = l->value[j];
            if (c == '\n')
                PUT("\\n");
            else if (c == '"' || c == '\\')
                PUT("\\%c", c);
            else
                PUT("%c", c);
        }
        PUT("\"%s", i + 1 == s->nlabels ? "}" : "");
    }
    fmt_value(v, sizeof v, s->value);
    PUT(" %s", v);
    if (s->has_timestamp)
        PUT(" %lld", s->timestamp_ms);
#undef PUT
}

static int record(void *arg, const struct prom_sample *s)
{
    struct rec *r = arg;

    CU_ASSERT_FATAL(r->n < REC_MAX);
    fmt_sample(r->s[r->n], REC_LEN, s);
    r->n++;
    return r->stop_after != 0 && r->n >= r->stop_after;
}

static struct rec *rec_new(void)
{
    struct rec *r = calloc(1, sizeof *r);

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

static int parse_text(const char *text, const struct prom_limits *lim, struct rec *r, char *err,
                      size_t errlen)
{
    r->n = 0;
    return prom_parse(text, strlen(text), lim, record, r, err, errlen);
}

/* The input in pieces: cuts[] are the offsets where a feed ends. */
static int parse_cut(const char *text, size_t len, const struct prom_limits *lim,
                     const size_t *cuts, size_t ncuts, struct rec *r, char *err, size_t errlen)
{
    struct prom_parser *p = prom_parser_new(lim, record, r);
    size_t at = 0;
    int rc = PROM_OK;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    r->n = 0;
    for (size_t i = 0; i <= ncuts && rc == PROM_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = prom_feed(p, text + at, end - at);
        at = end;
    }
    if (rc == PROM_OK)
        rc = prom_finish(p);
    snprintf(err, errlen, "%s", prom_error(p));
    CU_ASSERT_EQUAL(rc == PROM_ERROR, prom_error(p)[0] != '\0');
    prom_parser_free(p);
    return rc;
}

/* One byte a feed. */
static int parse_bytewise(const char *text, size_t len, const struct prom_limits *lim,
                          struct rec *r, char *err, size_t errlen)
{
    struct prom_parser *p = prom_parser_new(lim, record, r);
    int rc = PROM_OK;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    r->n = 0;
    for (size_t i = 0; i < len && rc == PROM_OK; i++)
        rc = prom_feed(p, text + i, 1);
    if (rc == PROM_OK)
        rc = prom_finish(p);
    snprintf(err, errlen, "%s", prom_error(p));
    prom_parser_free(p);
    return rc;
}

static int same_run(const struct rec *a, const struct rec *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->s[i], b->s[i]) != 0) {
            fprintf(stderr, "\nsample %zu: '%s' != '%s'\n", i, a->s[i], b->s[i]);
            return 0;
        }
    return 1;
}

/* ---- a vLLM 0.8+ /metrics excerpt (prometheus_client's exposition) ---- */

#define MODEL "meta-llama/Llama-3.1-8B-Instruct"
#define ML "engine=\"0\",model_name=\"" MODEL "\""

static const char vllm_metrics[] =
    "# HELP python_gc_objects_collected_total Objects collected during gc\n"
    "# TYPE python_gc_objects_collected_total counter\n"
    "python_gc_objects_collected_total{generation=\"0\"} 12871.0\n"
    "python_gc_objects_collected_total{generation=\"1\"} 1771.0\n"
    "python_gc_objects_collected_total{generation=\"2\"} 112.0\n"
    "# HELP python_gc_collections_total Number of times this generation was collected\n"
    "# TYPE python_gc_collections_total counter\n"
    "python_gc_collections_total{generation=\"0\"} 1523.0\n"
    "# HELP python_info Python platform information\n"
    "# TYPE python_info gauge\n"
    "python_info{implementation=\"CPython\",major=\"3\",minor=\"12\",patchlevel=\"9\","
    "version=\"3.12.9\"} 1.0\n"
    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
    "# TYPE process_resident_memory_bytes gauge\n"
    "process_resident_memory_bytes 2.147483648e+09\n"
    "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
    "# TYPE process_start_time_seconds gauge\n"
    "process_start_time_seconds 1.74032165112e+09\n"
    "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    "vllm:num_requests_running{" ML "} 3.0\n"
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    "vllm:num_requests_waiting{" ML "} 0.0\n"
    "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
    "# TYPE vllm:kv_cache_usage_perc gauge\n"
    "vllm:kv_cache_usage_perc{" ML "} 0.0421875\n"
    "# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried "
    "tokens.\n"
    "# TYPE vllm:prefix_cache_queries_total counter\n"
    "vllm:prefix_cache_queries_total{" ML "} 48213.0\n"
    "# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.\n"
    "# TYPE vllm:prefix_cache_hits_total counter\n"
    "vllm:prefix_cache_hits_total{" ML "} 30976.0\n"
    "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
    "# TYPE vllm:prompt_tokens_total counter\n"
    "vllm:prompt_tokens_total{" ML "} 51294.0\n"
    "# HELP vllm:prompt_tokens_created Number of prefill tokens processed.\n"
    "# TYPE vllm:prompt_tokens_created gauge\n"
    "vllm:prompt_tokens_created{" ML "} 1.7403216634570613e+09\n"
    "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.\n"
    "# TYPE vllm:time_to_first_token_seconds histogram\n"
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"0.001\"} 0.0\n"
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"0.005\"} 2.0\n"
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"0.04\"} 17.0\n"
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"2.5\"} 41.0\n"
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"+Inf\"} 42.0\n"
    "vllm:time_to_first_token_seconds_count{" ML "} 42.0\n"
    "vllm:time_to_first_token_seconds_sum{" ML "} 3.2119319438934326\n"
    "\n"
    "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
    "# TYPE vllm:cache_config_info gauge\n"
    "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",calculate_kv_scales=\"False\","
    "enable_prefix_caching=\"True\",gpu_memory_utilization=\"0.9\",num_cpu_blocks=\"None\","
    "num_gpu_blocks=\"2048\",prefix_caching_hash_algo=\"builtin\",sliding_window=\"None\","
    "swap_space=\"4\"} 1.0\n";

static const char *const vllm_want[] = {
    "python_gc_objects_collected_total{generation=\"0\"} 12871",
    "python_gc_objects_collected_total{generation=\"1\"} 1771",
    "python_gc_objects_collected_total{generation=\"2\"} 112",
    "python_gc_collections_total{generation=\"0\"} 1523",
    "python_info{implementation=\"CPython\",major=\"3\",minor=\"12\",patchlevel=\"9\","
    "version=\"3.12.9\"} 1",
    "process_resident_memory_bytes 2147483648",
    "process_start_time_seconds 1740321651.12",
    "vllm:num_requests_running{" ML "} 3",
    "vllm:num_requests_waiting{" ML "} 0",
    "vllm:kv_cache_usage_perc{" ML "} 0.0421875",
    "vllm:prefix_cache_queries_total{" ML "} 48213",
    "vllm:prefix_cache_hits_total{" ML "} 30976",
    "vllm:prompt_tokens_total{" ML "} 51294",
    "vllm:prompt_tokens_created{" ML "} 1740321663.4570613",
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"0.001\"} 0",
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"0.005\"} 2",
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"0.04\"} 17",
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"2.5\"} 41",
    "vllm:time_to_first_token_seconds_bucket{" ML ",le=\"+Inf\"} 42",
    "vllm:time_to_first_token_seconds_count{" ML "} 42",
    "vllm:time_to_first_token_seconds_sum{" ML "} 3.2119319438934326",
    "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",calculate_kv_scales=\"False\","
    "enable_prefix_caching=\"True\",gpu_memory_utilization=\"0.9\",num_cpu_blocks=\"None\","
    "num_gpu_blocks=\"2048\",prefix_caching_hash_algo=\"builtin\",sliding_window=\"None\","
    "swap_space=\"4\"} 1",
};

#define NWANT (sizeof vllm_want / sizeof vllm_want[0])

static void check_want(const struct rec *r)
{
    CU_ASSERT_EQUAL_FATAL(r->n, NWANT);
    for (size_t i = 0; i < NWANT; i++) {
        if (strcmp(r->s[i], vllm_want[i]) != 0)
            fprintf(stderr, "\nsample %zu:\n got  %s\n want %s\n", i, r->s[i], vllm_want[i]);
        CU_ASSERT_STRING_EQUAL(r->s[i], vllm_want[i]);
    }
}

/* Fields as the callback gets them, not only as text. */
struct fields {
    int seen;
    double running, kv;
    size_t nlabels;
    char model[64], le_last[16], blocks[16];
};

static int take_fields(void *arg, const struct prom_sample *s)
{
    struct fields *f = arg;

#define IS(lit) (s->name_len == sizeof lit - 1 && memcmp(s->name, lit, sizeof lit - 1) == 0)
    if (IS("vllm:num_requests_running")) {
        f->seen |= 1;
        f->running = s->value;
        f->nlabels = s->nlabels;
        CU_ASSERT_EQUAL(s->labels[1].name_len, 10);
        CU_ASSERT_EQUAL(memcmp(s->labels[1].name, "model_name", 10), 0);
        snprintf(f->model, sizeof f->model, "%.*s", (int)s->labels[1].value_len,
                 s->labels[1].value);
        CU_ASSERT_FALSE(s->has_timestamp);
    } else if (IS("vllm:kv_cache_usage_perc")) {
        f->seen |= 2;
        f->kv = s->value;
    } else if (IS("vllm:time_to_first_token_seconds_bucket")) {
        f->seen |= 4;
        CU_ASSERT_EQUAL_FATAL(s->nlabels, 3);
        snprintf(f->le_last, sizeof f->le_last, "%.*s", (int)s->labels[2].value_len,
                 s->labels[2].value);
    } else if (IS("vllm:cache_config_info")) {
        f->seen |= 8;
        for (size_t i = 0; i < s->nlabels; i++)
            if (s->labels[i].name_len == 14 && memcmp(s->labels[i].name, "num_gpu_blocks", 14) == 0)
                snprintf(f->blocks, sizeof f->blocks, "%.*s", (int)s->labels[i].value_len,
                         s->labels[i].value);
    }
#undef IS
    return 0;
}

static void test_vllm_metrics(void)
{
    struct rec *r = rec_new();
    struct fields f;
    char err[256] = "x";

    CU_ASSERT_EQUAL(parse_text(vllm_metrics, NULL, r, err, sizeof err), PROM_OK);
    CU_ASSERT_STRING_EQUAL(err, "");
    check_want(r);

    memset(&f, 0, sizeof f);
    CU_ASSERT_EQUAL(prom_parse(vllm_metrics, strlen(vllm_metrics), NULL, take_fields, &f, err,
                               sizeof err),
                    PROM_OK);
    CU_ASSERT_EQUAL(f.seen, 15);
    CU_ASSERT_EQUAL(f.running, 3.0);
    CU_ASSERT_EQUAL(f.nlabels, 2);
    CU_ASSERT_STRING_EQUAL(f.model, MODEL);
    CU_ASSERT_EQUAL(f.kv, 0.0421875);
    CU_ASSERT_STRING_EQUAL(f.le_last, "+Inf");
    CU_ASSERT_STRING_EQUAL(f.blocks, "2048");
    free(r);
}

/* Every cut in two, and a byte at a time: the same samples. */
static void test_splits(void)
{
    struct rec *r = rec_new();
    size_t len = strlen(vllm_metrics);
    char err[256];

    CU_ASSERT_EQUAL(parse_bytewise(vllm_metrics, len, NULL, r, err, sizeof err), PROM_OK);
    check_want(r);
    for (size_t cut = 0; cut <= len; cut++) {
        int rc = parse_cut(vllm_metrics, len, NULL, &cut, 1, r, err, sizeof err);
        CU_ASSERT_EQUAL(rc, PROM_OK);
        CU_ASSERT_EQUAL(r->n, NWANT);
        if (rc != PROM_OK || r->n != NWANT) {
            fprintf(stderr, "\ncut at %zu: %d, %zu samples, %s\n", cut, rc, r->n, err);
            break;
        }
        for (size_t i = 0; i < NWANT; i++)
            if (strcmp(r->s[i], vllm_want[i]) != 0) {
                CU_FAIL("a cut changed a sample");
                fprintf(stderr, "\ncut at %zu, sample %zu: %s\n", cut, i, r->s[i]);
                cut = len;
                break;
            }
    }
    free(r);
}

/* ---- errors ---- */

/* text (len bytes) fails at `line`, the message holding `why`, read whole,
 * a byte at a time and cut in three alike. */
static void expect_error_n(const char *text, size_t len, const struct prom_limits *lim,
                           unsigned line, const char *why)
{
    struct rec *r = rec_new(), *r2 = rec_new();
    char err[256], err2[256], prefix[32];
    size_t cuts[2] = { len / 3, 2 * len / 3 };
    int rc;

    snprintf(prefix, sizeof prefix, "line %u: ", line);
    rc = prom_parse(text, len, lim, record, r, err, sizeof err);
    CU_ASSERT_EQUAL(rc, PROM_ERROR);
    CU_ASSERT_EQUAL(strncmp(err, prefix, strlen(prefix)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, why));
    if (rc != PROM_ERROR || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, why))
        fprintf(stderr, "\n%.*s\n: %d '%s', want '%s...%s'\n", (int)len, text, rc, err, prefix,
                why);

    CU_ASSERT_EQUAL(parse_bytewise(text, len, lim, r2, err2, sizeof err2), PROM_ERROR);
    CU_ASSERT_STRING_EQUAL(err2, err);
    CU_ASSERT_TRUE(same_run(r, r2));
    CU_ASSERT_EQUAL(parse_cut(text, len, lim, cuts, 2, r2, err2, sizeof err2), PROM_ERROR);
    CU_ASSERT_STRING_EQUAL(err2, err);
    CU_ASSERT_TRUE(same_run(r, r2));
    free(r);
    free(r2);
}

static void expect_error(const char *text, unsigned line, const char *why)
{
    expect_error_n(text, strlen(text), NULL, line, why);
}

static void expect_error_lim(const char *text, const struct prom_limits *lim, unsigned line,
                             const char *why)
{
    expect_error_n(text, strlen(text), lim, line, why);
}

#define OKL "# TYPE a gauge\na 1\n" /* two good lines first */

static void test_syntax_errors(void)
{
    /* names */
    expect_error(OKL "1abc 1\n", 3, "metric name expected, found \"1\"");
    expect_error(OKL "a-b 1\n", 3, "invalid character \"-\" after metric name \"a\"");
    expect_error(OKL "{a=\"b\"} 1\n", 3, "metric name expected");
    expect_error(OKL "a{1x=\"b\"} 1\n", 3, "label name expected, found \"1\"");
    expect_error(OKL "a{l:x=\"b\"} 1\n", 3, "'=' expected after label \"l\"");
    expect_error(OKL "a{l=b} 1\n", 3, "'\"' expected to open the value of label \"l\"");
    expect_error(OKL "a{,} 1\n", 3, "label name expected, found \",\"");
    expect_error(OKL "a{x=\"1\" y=\"2\"} 1\n", 3, "',' or '}' expected, found \"y\"");
    expect_error(OKL "a{x=\"1\"\n", 3, "unterminated label set");
    expect_error(OKL "a{x=\"1\"} 1\nb{\n", 4, "unterminated label set");
    /* values of labels */
    expect_error(OKL "a{l=\"x\\ty\"} 1\n", 3,
                 "invalid escape \"\\x5ct\" in the value of label \"l\"");
    expect_error(OKL "a{l=\"x\\'\"} 1\n", 3, "invalid escape");
    expect_error(OKL "a{l=\"abc} 1\n", 3, "unterminated value of label \"l\"");
    expect_error(OKL "a{l=\"abc\\\"} 1\n", 3, "unterminated value of label \"l\"");
    expect_error(OKL "a{l=\"abc\\", 3, "unterminated value of label \"l\"");
    expect_error(OKL "a{l=\"1\",m=\"2\",l=\"3\"} 1\n", 3, "label \"l\" twice");
    /* values */
    expect_error(OKL "a\n", 3, "no value for \"a\"");
    expect_error(OKL "a{x=\"1\"}\n", 3, "no value for \"a\"");
    expect_error(OKL "a   \t\n", 3, "no value for \"a\"");
    expect_error(OKL "a{x=\"1\"}2\n", 3, "blank expected after the labels of \"a\", found \"2\"");
    expect_error(OKL "a 1.0abc\n", 3, "invalid value \"1.0abc\"");
    expect_error(OKL "a 0x1p3\n", 3, "invalid value \"0x1p3\"");
    expect_error(OKL "a 0x10\n", 3, "invalid value \"0x10\"");
    expect_error(OKL "a 1e\n", 3, "invalid value \"1e\"");
    expect_error(OKL "a .\n", 3, "invalid value \".\"");
    expect_error(OKL "a 1_000\n", 3, "invalid value \"1_000\"");
    expect_error(OKL "a nan(0x1)\n", 3, "invalid value \"nan(0x1)\"");
    expect_error(OKL "a -NaN\n", 3, "invalid value \"-NaN\"");
    expect_error(OKL "a Infin\n", 3, "invalid value \"Infin\"");
    expect_error(OKL "a 1e999\n", 3, "value \"1e999\" out of range");
    /* timestamps and what follows */
    expect_error(OKL "a 1 abc\n", 3, "invalid timestamp \"abc\"");
    expect_error(OKL "a 1 1.5\n", 3, "invalid timestamp \"1.5\"");
    expect_error(OKL "a 1 9223372036854775808\n", 3, "invalid timestamp");
    expect_error(OKL "a 1 - \n", 3, "invalid timestamp \"-\"");
    expect_error(OKL "a 1 2 3\n", 3, "junk after the timestamp: \"3\"");
    /* HELP and TYPE */
    expect_error(OKL "# TYPE b gauge\n# TYPE b counter\n", 4, "a second TYPE for \"b\"");
    expect_error(OKL "# TYPE a counter\n", 3, "a second TYPE for \"a\"");
    expect_error(OKL "# TYPE b gauges\n", 3, "unknown type \"gauges\" in TYPE");
    expect_error(OKL "# TYPE b Gauge\n", 3, "unknown type \"Gauge\"");
    expect_error(OKL "# TYPE b\n", 3, "TYPE of \"b\" without a type");
    expect_error(OKL "# TYPE b gauge extra\n", 3, "junk after the type in TYPE: \"extra\"");
    expect_error(OKL "# TYPE 9b gauge\n", 3, "invalid metric name \"9b\" in TYPE");
    expect_error(OKL "# TYPE b{} gauge\n", 3, "invalid metric name \"b{}\" in TYPE");
    expect_error(OKL "# TYPE\n", 3, "TYPE without a metric name");
    expect_error(OKL "# HELP \n", 3, "HELP without a metric name");
    expect_error(OKL "# HELP b-c text\n", 3, "invalid metric name \"b-c\" in HELP");
    expect_error(OKL "# HELP b say \\\"hi\\\"\n", 3,
                 "invalid escape \"\\x5c\\x22\" in HELP of \"b\"");
    expect_error(OKL "# HELP b trailing \\\n", 3, "invalid escape \"\\x5c\" in HELP of \"b\"");
    /* a bare '\r' is no line end */
    expect_error(OKL "a 1\rb 2\n", 3, "invalid value \"1\\x0db\"");
    /* an error on the last line, without '\n' */
    expect_error(OKL "\n\nbad!", 5, "invalid character \"!\"");
}

static void test_nul_byte(void)
{
    static const char a[] = OKL "a{l=\"x\0y\"} 1\n";
    static const char b[] = OKL "# a comment \0 with a NUL\n";
    static const char c[] = OKL "a 1\n\0";

    expect_error_n(a, sizeof a - 1, NULL, 3, "a NUL byte");
    expect_error_n(b, sizeof b - 1, NULL, 3, "a NUL byte");
    expect_error_n(c, sizeof c - 1, NULL, 4, "a NUL byte");
}

/* A line of `n` bytes: "a 1" padded with blanks. */
static char *padded_line(size_t n, const char *end)
{
    char *s = malloc(n + strlen(end) + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(s, ' ', n);
    memcpy(s, "a 1", 3);
    strcpy(s + n, end);
    return s;
}

static void test_limits(void)
{
    struct prom_limits lim = { 16, 3, 0 };
    struct rec *r = rec_new();
    char err[256], *s;

    /* a line of max_line bytes, with "\n" or "\r\n", or last: fine */
    s = padded_line(16, "\n");
    CU_ASSERT_EQUAL(parse_text(s, &lim, r, err, sizeof err), PROM_OK);
    CU_ASSERT_EQUAL(r->n, 1);
    free(s);
    s = padded_line(16, "\r\n");
    CU_ASSERT_EQUAL(parse_text(s, &lim, r, err, sizeof err), PROM_OK);
    free(s);
    s = padded_line(16, "");
    CU_ASSERT_EQUAL(parse_text(s, &lim, r, err, sizeof err), PROM_OK);
    CU_ASSERT_EQUAL(r->n, 1);
    free(s);
    /* one byte more: an error, however it ends, on the line it is */
    s = padded_line(17, "\n");
    expect_error_n(s, strlen(s), &lim, 1, "longer than 16 bytes");
    free(s);
    s = padded_line(17, "\r\n");
    expect_error_n(s, strlen(s), &lim, 1, "longer than 16 bytes");
    free(s);
    s = padded_line(17, "");
    expect_error_n(s, strlen(s), &lim, 1, "longer than 16 bytes");
    free(s);
    expect_error_lim("b 2\n\na 1                                       1\n", &lim, 3,
                     "longer than 16 bytes");
    /* a comment is a line too */
    expect_error_lim("# a long comment line\n", &lim, 1, "longer than 16 bytes");

    /* labels: max_labels of them, not one more */
    CU_ASSERT_EQUAL(parse_text("a{x=\"\",y=\"\",z=\"\"} 1\n", NULL, r, err, sizeof err), PROM_OK);
    lim.max_line = 0;
    CU_ASSERT_EQUAL(parse_text("a{x=\"\",y=\"\",z=\"\"} 1\n", &lim, r, err, sizeof err), PROM_OK);
    CU_ASSERT_STRING_EQUAL(r->s[0], "a{x=\"\",y=\"\",z=\"\"} 1");
    expect_error_lim("b 1\na{x=\"\",y=\"\",z=\"\",w=\"\"} 1\n", &lim, 2, "more than 3 labels");

    /* the defaults: 64 labels, a line of 64 KiB */
    {
        char big[2048];
        size_t o = 0;
        o += (size_t)snprintf(big + o, sizeof big - o, "a{");
        for (int i = 0; i < 64; i++)
            o += (size_t)snprintf(big + o, sizeof big - o, "l%d=\"%d\",", i, i);
        snprintf(big + o, sizeof big - o, "} 7\n");
        CU_ASSERT_EQUAL(parse_text(big, NULL, r, err, sizeof err), PROM_OK);
        snprintf(big + o, sizeof big - o, "l64=\"\"} 7\n");
        expect_error_n(big, strlen(big), NULL, 1, "more than 64 labels");
    }
    s = padded_line(64 * 1024, "\n");
    CU_ASSERT_EQUAL(parse_text(s, NULL, r, err, sizeof err), PROM_OK);
    free(s);
    s = padded_line(64 * 1024 + 1, "\n");
    expect_error_n(s, strlen(s), NULL, 1, "longer than 65536 bytes");
    free(s);

    /* the whole input: max_bytes, not one more */
    lim.max_bytes = 12;
    CU_ASSERT_EQUAL(parse_text("a 1\nb 2\nc 3\n", &lim, r, err, sizeof err), PROM_OK);
    CU_ASSERT_EQUAL(r->n, 3);
    expect_error_lim("a 1\nb 2\nc 3\n\n", &lim, 4, "input longer than 12 bytes");
    expect_error_lim("a 1\nb 2\nc 33\n", &lim, 3, "input longer than 12 bytes");
    r->n = 0;
    CU_ASSERT_EQUAL(prom_parse("a 1\nb 2\nc 33\n", 13, &lim, record, r, err, sizeof err),
                    PROM_ERROR);
    CU_ASSERT_EQUAL(r->n, 2); /* the lines before it were read */
    free(r);
}

/* ---- what is accepted ---- */

static void expect_samples(const char *text, const char *const *want, size_t n)
{
    struct rec *r = rec_new(), *r2 = rec_new();
    char err[256];
    size_t len = strlen(text);

    CU_ASSERT_EQUAL(parse_text(text, NULL, r, err, sizeof err), PROM_OK);
    if (err[0] != '\0')
        fprintf(stderr, "\n%s: %s\n", text, err);
    CU_ASSERT_EQUAL(r->n, n);
    for (size_t i = 0; i < n && i < r->n; i++) {
        if (strcmp(r->s[i], want[i]) != 0)
            fprintf(stderr, "\nsample %zu: got '%s', want '%s'\n", i, r->s[i], want[i]);
        CU_ASSERT_STRING_EQUAL(r->s[i], want[i]);
    }
    CU_ASSERT_EQUAL(parse_bytewise(text, len, NULL, r2, err, sizeof err), PROM_OK);
    CU_ASSERT_TRUE(same_run(r, r2));
    free(r);
    free(r2);
}

#define EXPECT(text, ...)                                                                          \
    do {                                                                                           \
        static const char *const w_[] = { __VA_ARGS__ };                                           \
        expect_samples(text, w_, sizeof w_ / sizeof w_[0]);                                        \
    } while (0)

static void test_values(void)
{
    EXPECT("a NaN\nb nan\nc +Inf\nd -Inf\ne Inf\nf -inf\ng +Infinity\nh INFINITY\n", "a NaN",
           "b NaN", "c +Inf", "d -Inf", "e +Inf", "f -Inf", "g +Inf", "h +Inf");
    EXPECT("a 0\nb -0.5\nc +1.5\nd 1e3\ne 1E-3\nf .5\ng 5.\nh 1.5e+2\ni 007\nj 1e-400\n", "a 0",
           "b -0.5", "c 1.5", "d 1000", "e 0.001", "f 0.5", "g 5", "h 150", "i 7", "j 0");
    EXPECT("a 2.147483648e+09\nb 1.7976931348623157e308\n", "a 2147483648",
           "b 1.7976931348623157e+308");
}

static void test_timestamps(void)
{
    EXPECT("a 1 1740321651123\nb 2 -5\nc 3 +7\nd 4 0\n", "a 1 1740321651123", "b 2 -5", "c 3 7",
           "d 4 0");
    EXPECT("a 1 9223372036854775807\nb 1 -9223372036854775808\n", "a 1 9223372036854775807",
           "b 1 -9223372036854775808");
    EXPECT("a{x=\"1\"} NaN 12\n", "a{x=\"1\"} NaN 12");
}

static void test_labels(void)
{
    /* escapes, and the raw bytes a value may hold */
    EXPECT("a{p=\"C:\\\\dir\",q=\"say \\\"hi\\\"\",r=\"two\\nlines\",s=\"\",t=\"{}=, #\"} 1\n",
           "a{p=\"C:\\\\dir\",q=\"say \\\"hi\\\"\",r=\"two\\nlines\",s=\"\",t=\"{}=, #\"} 1");
    EXPECT("a{le=\"+Inf\",} 1\nb{} 2\nc{ x = \"1\" , y=\"2\" , } 3\n", "a{le=\"+Inf\"} 1", "b 2",
           "c{x=\"1\",y=\"2\"} 3");
    EXPECT("a{_x=\"1\",X9=\"2\"} 1\n", "a{_x=\"1\",X9=\"2\"} 1");
    EXPECT("a{l=\"caf\xc3\xa9\"} 1\n", "a{l=\"caf\xc3\xa9\"} 1");
}

static void test_lines(void)
{
    /* CRLF, blank lines, blanks around tokens, comments */
    EXPECT("# TYPE a gauge\r\na 1\r\n\r\n   \t\r\nb{x=\"1\"} 2 3\r\n", "a 1", "b{x=\"1\"} 2 3");
    EXPECT("  a 1  \n\tb\t2\t5\t\nc {x=\"1\"} 3\n", "a 1", "b 2 5", "c{x=\"1\"} 3");
    EXPECT("#\n# just a comment\n#TYPE a gauge\n# HELPER x y\n#   TYPE   b   counter  \nb 1\n",
           "b 1");
    EXPECT("# HELP a\n# HELP a\n# HELP b Some \\\\ text\\n here \" too\na 1\n", "a 1");
    EXPECT("# TYPE a histogram\n# TYPE b summary\n# TYPE c untyped\n# TYPE d counter\n"
           "# TYPE :e: gauge\n:e: 1\n",
           ":e: 1");
    /* the last line without '\n', read by finish */
    EXPECT("a 1\nb 2", "a 1", "b 2");
    EXPECT("a 1\nb 2\r", "a 1", "b 2");
    expect_samples("", NULL, 0);
    expect_samples("\n\n", NULL, 0);
}

/* A TYPE set past its bound is not checked, not an error. */
static void test_many_types(void)
{
    size_t cap = 5000 * 32, o = 0;
    char *s = malloc(cap), err[256];
    struct rec *r = rec_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (int i = 0; i < 5000; i++)
        o += (size_t)snprintf(s + o, cap - o, "# TYPE m%d gauge\n", i);
    CU_ASSERT_EQUAL(parse_text(s, NULL, r, err, sizeof err), PROM_OK);
    /* the first 4096 are checked */
    snprintf(s + o, cap - o, "# TYPE m4095 counter\n");
    expect_error_n(s, strlen(s), NULL, 5001, "a second TYPE for \"m4095\"");
    snprintf(s + o, cap - o, "# TYPE m4096 counter\n");
    CU_ASSERT_EQUAL(parse_text(s, NULL, r, err, sizeof err), PROM_OK);
    free(s);
    free(r);
}

/* ---- the parser's life ---- */

static void test_stop(void)
{
    struct rec *r = rec_new();
    struct prom_parser *p;
    char err[256] = "x";

    r->stop_after = 2;
    CU_ASSERT_EQUAL(parse_text("a 1\nb 2\nc 3\n", NULL, r, err, sizeof err), PROM_STOPPED);
    CU_ASSERT_EQUAL(r->n, 2);
    CU_ASSERT_STRING_EQUAL(err, "");

    /* stopped is final, and no error */
    p = prom_parser_new(NULL, record, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    r->n = 0;
    CU_ASSERT_EQUAL(prom_feed(p, "a 1\nb", 5), PROM_OK);
    CU_ASSERT_EQUAL(prom_feed(p, " 2\nc 3\n", 7), PROM_STOPPED);
    CU_ASSERT_EQUAL(prom_feed(p, "d 4\n", 4), PROM_STOPPED);
    CU_ASSERT_EQUAL(prom_finish(p), PROM_STOPPED);
    CU_ASSERT_EQUAL(r->n, 2);
    CU_ASSERT_STRING_EQUAL(prom_error(p), "");
    prom_parser_free(p);

    /* a stop on the last line, read by finish */
    r->stop_after = 1;
    CU_ASSERT_EQUAL(parse_text("a 1", NULL, r, err, sizeof err), PROM_STOPPED);
    free(r);
}

static void test_life(void)
{
    struct rec *r = rec_new();
    struct prom_parser *p = prom_parser_new(NULL, record, r);

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(prom_error(p), "");
    CU_ASSERT_EQUAL(prom_feed(p, "", 0), PROM_OK);
    CU_ASSERT_EQUAL(prom_feed(p, "a 1\n", 4), PROM_OK);
    CU_ASSERT_EQUAL(prom_feed(p, "b 2", 3), PROM_OK);
    CU_ASSERT_EQUAL(r->n, 1); /* b waits for its line's end */
    CU_ASSERT_EQUAL(prom_finish(p), PROM_OK);
    CU_ASSERT_EQUAL(r->n, 2);
    CU_ASSERT_STRING_EQUAL(r->s[1], "b 2");
    prom_parser_free(p);

    /* an error is final */
    p = prom_parser_new(NULL, record, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    r->n = 0;
    CU_ASSERT_EQUAL(prom_feed(p, "a 1\n", 4), PROM_OK);
    CU_ASSERT_EQUAL(prom_feed(p, "b x\nc 2\n", 8), PROM_ERROR);
    CU_ASSERT_STRING_EQUAL(prom_error(p), "line 2: invalid value \"x\"");
    CU_ASSERT_EQUAL(prom_feed(p, "d 3\n", 4), PROM_ERROR);
    CU_ASSERT_EQUAL(prom_finish(p), PROM_ERROR);
    CU_ASSERT_STRING_EQUAL(prom_error(p), "line 2: invalid value \"x\"");
    CU_ASSERT_EQUAL(r->n, 1);
    prom_parser_free(p);

    /* nothing after finish */
    p = prom_parser_new(NULL, record, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(prom_finish(p), PROM_OK);
    CU_ASSERT_EQUAL(prom_finish(p), PROM_OK);
    CU_ASSERT_EQUAL(prom_feed(p, "a 1\n", 4), PROM_ERROR);
    CU_ASSERT_STRING_EQUAL(prom_error(p), "line 1: input after its end");
    prom_parser_free(p);
    prom_parser_free(NULL);

    /* no callback: checked all the same */
    {
        char err[64];
        CU_ASSERT_EQUAL(prom_parse("a 1\n", 4, NULL, NULL, NULL, err, sizeof err), PROM_OK);
        CU_ASSERT_EQUAL(prom_parse("a 1\na\n", 6, NULL, NULL, NULL, err, sizeof err), PROM_ERROR);
        CU_ASSERT_STRING_EQUAL(err, "line 2: no value for \"a\"");
        /* a short err buffer is cut, still a string */
        CU_ASSERT_EQUAL(prom_parse("a 1\na\n", 6, NULL, NULL, NULL, err, 8), PROM_ERROR);
        CU_ASSERT_STRING_EQUAL(err, "line 2:");
        CU_ASSERT_EQUAL(prom_parse("a\n", 2, NULL, NULL, NULL, NULL, 0), PROM_ERROR);
    }
    free(r);
}

/* --- a reader that wants some series only --- */

static int count_cb(void *arg, const struct prom_sample *smp)
{
    double *sum = arg;
    *sum += smp->value;
    return 0;
}

static int want_w(void *arg, const char *name, size_t len)
{
    (void)arg;
    return len == 1 && name[0] == 'w';
}

static void test_want(void)
{
    double sum = 0;
    struct prom_parser *p = prom_parser_new(NULL, count_cb, &sum);
    /* other series are read up to their name only: labels and values that
     * would be errors pass; a bad name, a NUL, a bad wanted line do not */
    static const char text[] = "# HELP x docs \\q not checked\n# TYPE x bogus\n# TYPE x gauge\n"
                               "x{a=\"\\z\"} notanumber\nw 1\nw{l=\"v\"} 2\n";
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    prom_parser_want(p, want_w);
    CU_ASSERT_EQUAL(prom_feed(p, text, sizeof text - 1), PROM_OK);
    CU_ASSERT_EQUAL(prom_finish(p), PROM_OK);
    CU_ASSERT_EQUAL(sum, 3);
    /* the next input, the same parser */
    prom_parser_reset(p);
    sum = 0;
    CU_ASSERT_EQUAL(prom_feed(p, "w 5\n9bad 1\n", 11), PROM_ERROR);
    CU_ASSERT_STRING_EQUAL(prom_error(p), "line 2: metric name expected, found \"9\"");
    prom_parser_reset(p);
    CU_ASSERT_EQUAL(prom_feed(p, "x 1\0\n", 5), PROM_ERROR);
    CU_ASSERT_EQUAL(strncmp(prom_error(p), "line 1: a NUL byte", 18), 0);
    prom_parser_reset(p);
    CU_ASSERT_EQUAL(prom_feed(p, "w nope\n", 7), PROM_ERROR);
    prom_parser_reset(p);
    sum = 0;
    CU_ASSERT_EQUAL(prom_feed(p, "# TYPE w gauge\nw 7\n", 20), PROM_OK);
    CU_ASSERT_EQUAL(prom_feed(p, "# TYPE w gauge\n", 15), PROM_ERROR); /* a second TYPE */
    prom_parser_reset(p);
    CU_ASSERT_EQUAL(prom_feed(p, "# TYPE w gauge\n", 15), PROM_OK);       /* a new input */
    CU_ASSERT_EQUAL(sum, 7);
    prom_parser_free(p);
}

void register_prom_text_tests(void)
{
    UNIT_SUITE("prom_text", UNIT_TEST(test_vllm_metrics), UNIT_TEST(test_splits),
               UNIT_TEST(test_syntax_errors), UNIT_TEST(test_nul_byte), UNIT_TEST(test_limits),
               UNIT_TEST(test_values), UNIT_TEST(test_timestamps), UNIT_TEST(test_labels),
               UNIT_TEST(test_lines), UNIT_TEST(test_many_types), UNIT_TEST(test_stop),
               UNIT_TEST(test_life), UNIT_TEST(test_want));
}
