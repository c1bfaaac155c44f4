#include "metrics.h"

#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "discovery.h"
#include "host_api.h"
#include "http_conn.h"
#include "setup.h"
#include "trace.h"

void metrics_label(struct evbuffer *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(out, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, v, 1);
    }
}

static uint64_t load(const atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void render_requests(const struct setup *s, struct evbuffer *out)
{
    evbuffer_add_printf(out,
        "# HELP switchyard_requests_total Requests answered, by model asked and status.\n"
        "# TYPE switchyard_requests_total counter\n");
    for (size_t i = 0; i <= s->nmodels; i++) {
        const atomic_uint_fast64_t *by = i < s->nmodels ? s->models[i].stats.by_status
                                                       : s->unknown_model_by_status;
        for (int st = SY_STATUS_MIN; st <= SY_STATUS_MAX; st++) {
            uint64_t n = load(&by[st - SY_STATUS_MIN]);
            if (n == 0)
                continue;
            evbuffer_add_printf(out, "switchyard_requests_total{model=\"");
            metrics_label(out, i < s->nmodels ? s->models[i].name : "");
            evbuffer_add_printf(out, "\",status=\"%d\"} %llu\n", st, (unsigned long long)n);
        }
    }
}

static void render_model_counter(const struct setup *s, struct evbuffer *out,
                                 const char *name, const char *help, size_t offset)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < s->nmodels; i++) {
        const atomic_uint_fast64_t *c =
            (const atomic_uint_fast64_t *)((const char *)&s->models[i].stats + offset);
        evbuffer_add_printf(out, "%s{model=\"", name);
        metrics_label(out, s->models[i].name);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)load(c));
    }
}

static void render_fallbacks(const struct setup *s, struct evbuffer *out)
{
    evbuffer_add_printf(out,
        "# HELP switchyard_fallbacks_total Requests moved from one model to another.\n"
        "# TYPE switchyard_fallbacks_total counter\n");
    for (size_t i = 0; i < s->nmodels; i++) {
        for (size_t j = 0; j < s->nmodels; j++) {
            uint64_t n = load(&s->models[i].stats.fallbacks_to[j]);
            if (n == 0)
                continue;
            evbuffer_add_printf(out, "switchyard_fallbacks_total{from=\"");
            metrics_label(out, s->models[i].name);
            evbuffer_add_printf(out, "\",to=\"");
            metrics_label(out, s->models[j].name);
            evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)n);
        }
    }
}

static void render_histogram(struct evbuffer *out, const char *name, const struct backend *b,
                             const atomic_uint_fast64_t *buckets,
                             const atomic_uint_fast64_t *count, const atomic_uint_fast64_t *sum_us)
{
    uint64_t cum = 0;
    for (size_t k = 0; k <= SY_LATENCY_BUCKETS; k++) {
        cum += load(&buckets[k]);
        evbuffer_add_printf(out, "%s_bucket{backend=\"", name);
        metrics_label(out, b->url);
        if (k < SY_LATENCY_BUCKETS)
            evbuffer_add_printf(out, "\",le=\"%g\"} %llu\n", setup_latency_bounds[k],
                                (unsigned long long)cum);
        else
            evbuffer_add_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    evbuffer_add_printf(out, "%s_sum{backend=\"", name);
    metrics_label(out, b->url);
    evbuffer_add_printf(out, "\"} %.6f\n", (double)load(sum_us) / 1e6);
    evbuffer_add_printf(out, "%s_count{backend=\"", name);
    metrics_label(out, b->url);
    evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)load(count));
}

static void render_health(const struct setup *s, struct evbuffer *out)
{
    long long now = setup_now_ms();

    evbuffer_add_printf(out,
        "# HELP switchyard_backend_up 1 when the backend takes requests for the model.\n"
        "# TYPE switchyard_backend_up gauge\n");
    for (size_t m = 0; m < s->nmodels; m++) {
        for (size_t k = 0; k < s->models[m].nbackends; k++) {
            struct backend *b = s->models[m].backends[k];
            evbuffer_add_printf(out, "switchyard_backend_up{backend=\"");
            metrics_label(out, b->url);
            evbuffer_add_printf(out, "\",model=\"");
            metrics_label(out, s->models[m].name);
            evbuffer_add_printf(out, "\"} %d\n", backend_usable(b, now));
        }
    }
    evbuffer_add_printf(out,
        "# HELP switchyard_backend_state_changes_total Changes of a backend's health state.\n"
        "# TYPE switchyard_backend_state_changes_total counter\n");
    for (size_t i = 0; i < s->nbackends; i++) {
        evbuffer_add_printf(out, "switchyard_backend_state_changes_total{backend=\"");
        metrics_label(out, s->backends[i].url);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)load(&s->backends[i].state_changes));
    }
    evbuffer_add_printf(out,
        "# HELP switchyard_backend_health_flag 1 while the source (a health plugin, "
        "or operator for a drain) holds the backend out.\n"
        "# TYPE switchyard_backend_health_flag gauge\n");
    for (size_t i = 0; i < s->nbackends; i++) {
        unsigned long long flags = backend_flags(&s->backends[i]);
        for (unsigned f = 0; f < s->nsources; f++) {
            evbuffer_add_printf(out, "switchyard_backend_health_flag{backend=\"");
            metrics_label(out, s->backends[i].url);
            evbuffer_add_printf(out, "\",source=\"");
            metrics_label(out, s->sources[f]);
            evbuffer_add_printf(out, "\"} %d\n", (int)(flags >> f & 1));
        }
    }
    evbuffer_add_printf(out,
        "# HELP switchyard_probe_latency_seconds Duration of health probes.\n"
        "# TYPE switchyard_probe_latency_seconds histogram\n");
    for (size_t i = 0; i < s->nbackends; i++) {
        const struct backend *b = &s->backends[i];
        render_histogram(out, "switchyard_probe_latency_seconds", b, b->probe_buckets,
                         &b->probe_count, &b->probe_sum_us);
    }
}

static void render_backends(const struct setup *s, struct evbuffer *out)
{
    evbuffer_add_printf(out,
        "# HELP switchyard_backend_inflight Requests in flight to a backend.\n"
        "# TYPE switchyard_backend_inflight gauge\n");
    for (size_t i = 0; i < s->nbackends; i++) {
        evbuffer_add_printf(out, "switchyard_backend_inflight{backend=\"");
        metrics_label(out, s->backends[i].url);
        evbuffer_add_printf(out, "\"} %u\n", atomic_load(&s->backends[i].inflight));
    }
    evbuffer_add_printf(out,
        "# HELP switchyard_upstream_latency_seconds Time from an attempt's start to its response head.\n"
        "# TYPE switchyard_upstream_latency_seconds histogram\n");
    for (size_t i = 0; i < s->nbackends; i++) {
        const struct backend *b = &s->backends[i];
        render_histogram(out, "switchyard_upstream_latency_seconds", b, b->latency_buckets,
                         &b->latency_count, &b->latency_sum_us);
    }
}

/* Discovery: what it found, how lately it spoke; and every plugin's own
 * numbers (counter_add, gauge_set). */
static void render_discovery_and_plugins(const struct setup *s, struct evbuffer *out)
{
    struct host_ctx *hosts[3 * HEALTH_MAX_SOURCES + 16];
    const struct chain *chains[] = { &s->routing, &s->fallback, &s->health };
    size_t n = 0;

    if (s->discovery != NULL) {
        unsigned long long changes;
        double since;
        size_t ready = 0, not_ready = 0;
        discovery_stats(s->discovery, &changes, &since);
        for (size_t i = 0; i < s->nbackends; i++)
            if (s->backends[i].discovered)
                *(backend_health_flagged_by(&s->backends[i], HEALTH_SOURCE_DISCOVERY)
                      ? &not_ready : &ready) += 1;
        evbuffer_add_printf(out,
            "# HELP switchyard_discovered_backends Backends discovery publishes, by state.\n"
            "# TYPE switchyard_discovered_backends gauge\n"
            "switchyard_discovered_backends{state=\"ready\"} %zu\n"
            "switchyard_discovered_backends{state=\"not_ready\"} %zu\n"
            "# HELP switchyard_discovery_changes_total Publishes that changed the backends.\n"
            "# TYPE switchyard_discovery_changes_total counter\n"
            "switchyard_discovery_changes_total %llu\n"
            "# HELP switchyard_discovery_last_publish_age_seconds Seconds since a discovery "
            "plugin last published (-1: never).\n"
            "# TYPE switchyard_discovery_last_publish_age_seconds gauge\n"
            "switchyard_discovery_last_publish_age_seconds %.3f\n",
            ready, not_ready, changes, since);
        n = discovery_hosts(s->discovery, hosts, 16);
    }
    for (size_t c = 0; c < 3; c++)
        for (size_t i = 0; i < chains[c]->n; i++)
            if (!chains[c]->slots[i].borrowed && n < sizeof hosts / sizeof hosts[0])
                hosts[n++] = chains[c]->slots[i].host;
    evbuffer_add_printf(out,
        "# HELP switchyard_plugin_counter_total A plugin's own counter.\n"
        "# TYPE switchyard_plugin_counter_total counter\n");
    host_metrics_render(hosts, n, 0, out);
    evbuffer_add_printf(out,
        "# HELP switchyard_plugin_gauge A plugin's own gauge.\n"
        "# TYPE switchyard_plugin_gauge gauge\n");
    host_metrics_render(hosts, n, 1, out);
}

void metrics_render(const struct setup *s, struct evbuffer *out)
{
    evbuffer_add_printf(out,
        "# HELP switchyard_build_info switchyard version.\n"
        "# TYPE switchyard_build_info gauge\n"
        "switchyard_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
    int open;
    unsigned long long refused;
    http_conn_counts(&open, &refused);
    evbuffer_add_printf(out,
        "# HELP switchyard_client_connections Client connections open.\n"
        "# TYPE switchyard_client_connections gauge\n"
        "switchyard_client_connections %d\n"
        "# HELP switchyard_client_connections_refused_total Client connections refused at max_client_connections.\n"
        "# TYPE switchyard_client_connections_refused_total counter\n"
        "switchyard_client_connections_refused_total %llu\n", open, refused);
    render_requests(s, out);
    render_model_counter(s, out, "switchyard_retries_total",
                         "Attempts retried on another backend of the same model.",
                         offsetof(struct model_stats, retries));
    render_fallbacks(s, out);
    render_model_counter(s, out, "switchyard_exhausted_total",
                         "Requests for the model that nothing could serve.",
                         offsetof(struct model_stats, exhausted));
    render_backends(s, out);
    render_health(s, out);
    render_discovery_and_plugins(s, out);
    metrics_render_vllm(s, out);
    if (trace_enabled()) {
        unsigned long long exported, dropped;
        trace_counts(&exported, &dropped);
        evbuffer_add_printf(out,
            "# HELP switchyard_trace_spans_total Spans sent to the OTLP endpoint, or dropped.\n"
            "# TYPE switchyard_trace_spans_total counter\n"
            "switchyard_trace_spans_total{result=\"exported\"} %llu\n"
            "switchyard_trace_spans_total{result=\"dropped\"} %llu\n", exported, dropped);
    }
    evbuffer_add_printf(out,
        "# HELP switchyard_worker_requests_total Requests each worker thread took.\n"
        "# TYPE switchyard_worker_requests_total counter\n");
    for (int w = 0; w < s->nworkers; w++)
        evbuffer_add_printf(out, "switchyard_worker_requests_total{worker=\"%d\"} %llu\n", w,
                            (unsigned long long)load(&s->worker_requests[w]));
}

/* What the engine said in its last scrape, with its age; null when it
 * was never scraped. */
static struct json_object *engine_stats_json(const struct backend *b)
{
    struct engine_stats st;
    struct json_object *o;

    if (engine_stats_get(b, &st) != 0)
        return NULL;
    o = json_object_new_object();
    for (int v = 0; v < EV_COUNT; v++)
        if (st.present >> v & 1)
            json_object_object_add(o, engine_value_name(v), json_object_new_double(st.v[v]));
    json_object_object_add(o, "age_seconds",
                           json_object_new_double((double)(setup_now_ms() - st.scraped_ms) / 1000));
    json_object_object_add(o, "stale", json_object_new_boolean(st.stale));
    return o;
}

/* The router's own view over the window; -1: nothing to average. */
static struct json_object *request_stats_json(const struct backend *b)
{
    struct request_stats rs;
    struct json_object *o = json_object_new_object();

    request_stats_get(b, (double)setup_now_ms() / 1000, &rs);
    json_object_object_add(o, "window_seconds", json_object_new_double(rs.window));
    json_object_object_add(o, "qps", json_object_new_double(rs.qps));
    json_object_object_add(o, "avg_latency", json_object_new_double(rs.avg_latency));
    json_object_object_add(o, "avg_ttft", json_object_new_double(rs.avg_ttft));
    json_object_object_add(o, "avg_itl", json_object_new_double(rs.avg_itl));
    json_object_object_add(o, "avg_decoding_length", json_object_new_double(rs.avg_decoding_length));
    json_object_object_add(o, "in_prefill", json_object_new_int64(rs.in_prefill));
    json_object_object_add(o, "in_decoding", json_object_new_int64(rs.in_decoding));
    json_object_object_add(o, "finished", json_object_new_int64((int64_t)rs.finished));
    return o;
}

void metrics_render_engines(const struct setup *s, struct evbuffer *out)
{
    struct json_object *list = json_object_new_array();

    for (size_t i = 0; i < s->nbackends; i++) {
        const struct backend *b = &s->backends[i];
        struct json_object *e = json_object_new_object();
        struct json_object *models = json_object_new_array();
        for (size_t m = 0; m < b->nserved; m++)
            json_object_array_add(models, json_object_new_string(b->served[m].model->name));
        /* vllm_router's three fields first, then switchyard's */
        json_object_object_add(e, "engine_id", json_object_new_string(b->engine_id));
        json_object_object_add(e, "serving_models", json_object_get(models));
        json_object_object_add(e, "created", json_object_new_int64(b->created));
        json_object_object_add(e, "url", json_object_new_string(b->url));
        json_object_object_add(e, "models", models);
        json_object_object_add(e, "discovered", json_object_new_boolean(b->discovered));
        if (b->labels != NULL) {
            struct json_object *labels = json_object_new_object();
            for (char **l = b->labels; *l != NULL; l++) {
                const char *eq = strchr(*l, '=');
                char key[128];
                snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - *l) : (int)strlen(*l), *l);
                json_object_object_add(labels, key, json_object_new_string(eq ? eq + 1 : ""));
            }
            json_object_object_add(e, "labels", labels);
        }
        struct backend *mb = (struct backend *)b;
        char reason[sizeof mb->reason];
        long long since;
        int st = backend_state(mb);
        unsigned long long flags = backend_flags(mb);
        struct json_object *held = json_object_new_array();
        for (unsigned f = 0; f < s->nsources; f++)
            if (flags >> f & 1)
                json_object_array_add(held, json_object_new_string(s->sources[f]));
        pthread_mutex_lock(&mb->info_lock);
        memcpy(reason, mb->reason, sizeof reason);
        since = mb->since;
        pthread_mutex_unlock(&mb->info_lock);
        json_object_object_add(e, "state", json_object_new_string(
            s->health.n == 0 && st == SY_BACKEND_HEALTHY ? "unchecked" : backend_state_name(st)));
        /* who holds it out: "operator" (drained), or the plugins' names */
        json_object_object_add(e, "flags", held);
        json_object_object_add(e, "drained", json_object_new_boolean(
            (flags >> HEALTH_SOURCE_OPERATOR) & 1));
        json_object_object_add(e, "usable", json_object_new_boolean(backend_usable(mb, setup_now_ms())));
        json_object_object_add(e, "since", json_object_new_int64(since));
        json_object_object_add(e, "last_error", reason[0] ? json_object_new_string(reason) : NULL);
        json_object_object_add(e, "in_flight", json_object_new_int((int)atomic_load(&b->inflight)));
        json_object_object_add(e, "engine_stats", engine_stats_json(b));
        json_object_object_add(e, "request_stats", request_stats_json(b));
        json_object_array_add(list, e);
    }
    evbuffer_add_printf(out, "%s", json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(list);
}
