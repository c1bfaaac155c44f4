/*
 * metrics_vllm: vllm_router's Prometheus series, with its names, types and
 * labels (production-stack src/vllm_router/services/metrics_service and
 * routers/metrics_router.py), so that its Grafana dashboard, its
 * prom-adapter rules and KEDA's triggers read switchyard as they read
 * vllm_router.  `server` is the backend's URL, as vllm_router writes it.
 */
#define _POSIX_C_SOURCE 200809L
#include <event2/buffer.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "setup.h"

static double seconds_of(const struct timespec *t)
{
    return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/* The router's CPU use, in percent of one core, over the time since the
 * previous look (at least a second: scrapes close together see the same
 * figure).  The first look has nothing to compare with: 0. */
static double cpu_percent(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static double last_wall = -1, last_cpu, last_percent;
    struct timespec wall, cpu;
    double percent;

    clock_gettime(CLOCK_MONOTONIC, &wall);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    pthread_mutex_lock(&lock);
    if (last_wall < 0) {
        last_wall = seconds_of(&wall);
        last_cpu = seconds_of(&cpu);
    } else if (seconds_of(&wall) - last_wall >= 1) {
        last_percent = (seconds_of(&cpu) - last_cpu) / (seconds_of(&wall) - last_wall) * 100;
        last_wall = seconds_of(&wall);
        last_cpu = seconds_of(&cpu);
    }
    percent = last_percent;
    pthread_mutex_unlock(&lock);
    return percent;
}

/* A number from a file's first line ("max" or none: -1). */
static double file_number(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[64];
    double v = -1;
    if (f == NULL)
        return -1;
    if (fgets(line, sizeof line, f) != NULL && strncmp(line, "max", 3) != 0)
        v = strtod(line, NULL);
    fclose(f);
    return v > 0 ? v : -1;
}

/* The router's resident memory, in percent of what it may use: its
 * cgroup's limit (a container's), else the machine's memory. */
static double memory_percent(void)
{
    double rss = -1, total = -1, limit;
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");

    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            rss = strtod(line + 6, NULL) * 1024;
    if (f != NULL)
        fclose(f);
    f = fopen("/proc/meminfo", "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "MemTotal:", 9) == 0)
            total = strtod(line + 9, NULL) * 1024;
    if (f != NULL)
        fclose(f);
    limit = file_number("/sys/fs/cgroup/memory.max"); /* cgroup v2 */
    if (limit < 0)
        limit = file_number("/sys/fs/cgroup/memory/memory.limit_in_bytes"); /* v1 */
    if (limit > 0 && (total < 0 || limit < total))
        total = limit;
    return rss > 0 && total > 0 ? rss / total * 100 : 0;
}

/* The root file system's use, as psutil (and so vllm_router) counts it. */
static double disk_percent(void)
{
    struct statvfs v;
    if (statvfs("/", &v) != 0)
        return 0;
    double used = (double)(v.f_blocks - v.f_bfree), avail = (double)v.f_bavail;
    return used + avail > 0 ? used / (used + avail) * 100 : 0;
}

static void type_line(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void server_sample(struct evbuffer *out, const char *name, const struct backend *b,
                          double v)
{
    evbuffer_add_printf(out, "%s{server=\"", name);
    metrics_label(out, b->url);
    evbuffer_add_printf(out, "\"} %.17g\n", v);
}

/* vllm_router's per-server gauges, and what each reads. */
enum series {
    S_QPS, S_LATENCY, S_ITL, S_DECODING_LENGTH, S_PREFILL, S_DECODING, S_RUNNING, S_HEALTHY,
    S_WAITING, S_SWAPPED, S_HIT_RATE, S_HITS, S_QUERIES
};

/* A gauge per backend from its request stats or engine stats. */
static const struct per_server {
    const char *name, *help;
    int from_engine;  /* only backends scraped at least once */
    enum series what;
} per_server[] = {
    {"vllm:current_qps", "Current Queries Per Second", 0, S_QPS},
    {"vllm:avg_latency", "Average end-to-end request latency", 0, S_LATENCY},
    {"vllm:avg_itl", "Average Inter-Token Latency", 0, S_ITL},
    {"vllm:avg_decoding_length", "Average Decoding Length", 0, S_DECODING_LENGTH},
    {"vllm:num_prefill_requests", "Number of Prefill Requests", 0, S_PREFILL},
    {"vllm:num_decoding_requests", "Number of Decoding Requests", 0, S_DECODING},
    {"vllm:num_requests_running", "Number of running requests", 0, S_RUNNING},
    {"vllm:healthy_pods_total", "Number of healthy vLLM pods", 0, S_HEALTHY},
    {"vllm:num_requests_waiting", "Number of waiting requests", 1, S_WAITING},
    {"vllm:num_requests_swapped", "Number of swapped requests", 1, S_SWAPPED},
    {"vllm:gpu_prefix_cache_hit_rate", "GPU Prefix Cache Hit Rate", 1, S_HIT_RATE},
    {"vllm:gpu_prefix_cache_hits_total", "Total GPU Prefix Cache Hits", 1, S_HITS},
    {"vllm:gpu_prefix_cache_queries_total", "Total GPU Prefix Cache Queries", 1, S_QUERIES},
};

static double engine_value(const struct engine_stats *e, enum engine_value v)
{
    return e->present >> v & 1 ? e->v[v] : 0;
}

static double series_value(enum series what, const struct request_stats *r,
                           const struct engine_stats *e, const struct backend *b)
{
    double q = engine_value(e, EV_PREFIX_QUERIES);

    switch (what) {
    case S_QPS: return r->qps;
    case S_LATENCY: return r->avg_latency;
    case S_ITL: return r->avg_itl;
    case S_DECODING_LENGTH: return r->avg_decoding_length;
    case S_PREFILL: return (double)r->in_prefill;
    case S_DECODING: return (double)r->in_decoding;
    case S_RUNNING: return (double)(r->in_prefill + r->in_decoding); /* as vllm_router counts it */
    case S_HEALTHY: return backend_usable((struct backend *)b, setup_now_ms());
    case S_WAITING: return engine_value(e, EV_WAITING);
    case S_SWAPPED: return engine_value(e, EV_SWAPPED);
    case S_HIT_RATE: return q > 0 ? engine_value(e, EV_PREFIX_HITS) / q : 0;
    case S_HITS: return engine_value(e, EV_PREFIX_HITS);
    case S_QUERIES: return q;
    }
    return 0;
}

static void pair_labels(struct evbuffer *out, const char *name, const struct backend *b,
                        const struct backend_model *bm)
{
    evbuffer_add_printf(out, "%s{server=\"", name);
    metrics_label(out, b->url);
    evbuffer_add_printf(out, "\",model=\"");
    metrics_label(out, bm->model->name);
    evbuffer_add_printf(out, "\"");
}

static uint64_t load(const atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* vllm_router's histogram bounds: a subset of switchyard's
 * (setup_latency_bounds), so its buckets are sums of ours. */
static const double vllm_latency_bounds[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120 };

static void render_latency(struct evbuffer *out, const struct backend *b,
                           const struct backend_model *bm, int failed)
{
    static const char *const status[2] = { "success", "error" };
    uint64_t count = load(&bm->latency_count[failed]), cum = 0;
    size_t k = 0;

    if (count == 0)
        return;
    for (size_t v = 0; v < sizeof vllm_latency_bounds / sizeof vllm_latency_bounds[0]; v++) {
        for (; k < SY_LATENCY_BUCKETS && setup_latency_bounds[k] <= vllm_latency_bounds[v]; k++)
            cum += load(&bm->latency_buckets[failed][k]);
        pair_labels(out, "vllm:request_latency_seconds_bucket", b, bm);
        evbuffer_add_printf(out, ",status=\"%s\",le=\"%g\"} %llu\n", status[failed],
                            vllm_latency_bounds[v], (unsigned long long)cum);
    }
    pair_labels(out, "vllm:request_latency_seconds_bucket", b, bm);
    evbuffer_add_printf(out, ",status=\"%s\",le=\"+Inf\"} %llu\n", status[failed],
                        (unsigned long long)count);
    pair_labels(out, "vllm:request_latency_seconds_sum", b, bm);
    evbuffer_add_printf(out, ",status=\"%s\"} %.6f\n", status[failed],
                        (double)load(&bm->latency_sum_us[failed]) / 1e6);
    pair_labels(out, "vllm:request_latency_seconds_count", b, bm);
    evbuffer_add_printf(out, ",status=\"%s\"} %llu\n", status[failed], (unsigned long long)count);
}

/* The {server,model} series: tokens, errors, latency. */
static void render_pairs(const struct setup *s, struct evbuffer *out)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } tokens[] = {
        {"vllm:input_tokens_total", "Total input tokens processed",
         offsetof(struct backend_model, input_tokens)},
        {"vllm:output_tokens_total", "Total output tokens generated",
         offsetof(struct backend_model, output_tokens)},
    };
    for (size_t t = 0; t < 2; t++) {
        type_line(out, tokens[t].name, "counter", tokens[t].help);
        for (size_t i = 0; i < s->nbackends; i++)
            for (size_t k = 0; k < s->backends[i].nserved; k++) {
                const struct backend_model *bm = &s->backends[i].served[k];
                pair_labels(out, tokens[t].name, &s->backends[i], bm);
                evbuffer_add_printf(out, "} %llu\n", (unsigned long long)load(
                    (const atomic_uint_fast64_t *)((const char *)bm + tokens[t].offset)));
            }
    }
    type_line(out, "vllm:request_errors_total", "counter", "Total request errors");
    for (size_t i = 0; i < s->nbackends; i++)
        for (size_t k = 0; k < s->backends[i].nserved; k++)
            for (int t = 0; t < AE_COUNT; t++) {
                uint64_t n = load(&s->backends[i].served[k].errors[t]);
                if (n == 0)
                    continue;
                pair_labels(out, "vllm:request_errors_total", &s->backends[i],
                            &s->backends[i].served[k]);
                evbuffer_add_printf(out, ",error_type=\"%s\"} %llu\n",
                                    attempt_error_type_name(t), (unsigned long long)n);
            }
    type_line(out, "vllm:request_latency_seconds", "histogram",
              "End-to-end request latency observed at the router");
    for (size_t i = 0; i < s->nbackends; i++)
        for (size_t k = 0; k < s->backends[i].nserved; k++)
            for (int failed = 0; failed < 2; failed++)
                render_latency(out, &s->backends[i], &s->backends[i].served[k], failed);
}

void metrics_render_vllm(const struct setup *s, struct evbuffer *out)
{
    double now = (double)setup_now_ms() / 1000;
    struct request_stats *rs = calloc(s->nbackends ? s->nbackends : 1, sizeof *rs);
    struct engine_stats *es = calloc(s->nbackends ? s->nbackends : 1, sizeof *es);
    int *scraped = calloc(s->nbackends ? s->nbackends : 1, sizeof *scraped);

    if (rs == NULL || es == NULL || scraped == NULL)
        goto done;
    for (size_t i = 0; i < s->nbackends; i++) {
        request_stats_get(&s->backends[i], now, &rs[i]);
        scraped[i] = engine_stats_get(&s->backends[i], &es[i]) == 0;
    }
    for (size_t k = 0; k < sizeof per_server / sizeof per_server[0]; k++) {
        const struct per_server *g = &per_server[k];
        type_line(out, g->name, "gauge", g->help);
        for (size_t i = 0; i < s->nbackends; i++)
            if (!g->from_engine || scraped[i])
                server_sample(out, g->name, &s->backends[i],
                              series_value(g->what, &rs[i], &es[i], &s->backends[i]));
    }
    type_line(out, "vllm:num_incoming_requests_total", "counter",
              "Total valid incoming requests to router (including when no backends available).");
    for (size_t i = 0; i < s->nmodels; i++) {
        evbuffer_add_printf(out, "vllm:num_incoming_requests_total{model=\"");
        metrics_label(out, s->models[i].name);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)atomic_load_explicit(
                                                   &s->models[i].stats.incoming, memory_order_relaxed));
    }
    render_pairs(s, out);
    type_line(out, "router_cpu_usage_percent", "gauge", "CPU usage percent");
    evbuffer_add_printf(out, "router_cpu_usage_percent %.3f\n", cpu_percent());
    type_line(out, "router_memory_usage_percent", "gauge", "Memory usage percent");
    evbuffer_add_printf(out, "router_memory_usage_percent %.3f\n", memory_percent());
    type_line(out, "router_disk_usage_percent", "gauge", "Disk usage percent");
    evbuffer_add_printf(out, "router_disk_usage_percent %.3f\n", disk_percent());
done:
    free(rs);
    free(es);
    free(scraped);
}

/* A figure of the stats log: "-" when there is nothing to average. */
static const char *figure(char *buf, size_t len, double v, const char *fmt)
{
    if (v < 0)
        return "-";
    snprintf(buf, len, fmt, v);
    return buf;
}

void metrics_log_stats(const struct setup *s)
{
    long long now_ms = setup_now_ms();

    for (size_t i = 0; i < s->nbackends; i++) {
        const struct backend *b = &s->backends[i];
        struct request_stats rs;
        struct engine_stats es;
        char engine[256] = "engine: no stats", f[6][32];

        request_stats_get(b, (double)now_ms / 1000, &rs);
        if (engine_stats_get(b, &es) == 0) {
            double q = engine_value(&es, EV_PREFIX_QUERIES);
            snprintf(engine, sizeof engine,
                     "engine: running %s waiting %s kv_usage %s prefix_hit_rate %s "
                     "(%.1fs ago%s)",
                     figure(f[0], sizeof f[0], es.present >> EV_RUNNING & 1 ? es.v[EV_RUNNING] : -1, "%.0f"),
                     figure(f[1], sizeof f[1], es.present >> EV_WAITING & 1 ? es.v[EV_WAITING] : -1, "%.0f"),
                     figure(f[2], sizeof f[2], es.present >> EV_KV_USAGE & 1 ? es.v[EV_KV_USAGE] : -1, "%.3f"),
                     figure(f[3], sizeof f[3], q > 0 ? engine_value(&es, EV_PREFIX_HITS) / q : -1, "%.3f"),
                     (double)(now_ms - es.scraped_ms) / 1000, es.stale ? ", stale" : "");
        }
        LOG_INFO("stats: %s: %s; requests: qps %.2f latency %s ttft %s itl %s prefill %ld "
                 "decoding %ld finished %llu (last %.0fs)",
                 b->url, engine, rs.qps, figure(f[4], sizeof f[4], rs.avg_latency, "%.3fs"),
                 figure(f[5], sizeof f[5], rs.avg_ttft, "%.3fs"),
                 figure(f[0], sizeof f[0], rs.avg_itl, "%.4fs"), rs.in_prefill, rs.in_decoding,
                 rs.finished, rs.window);
    }
}
