#include "host_api.h"

#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cfg_tree.h"
#include "control.h"
#include "discovery.h"
#include "http_conn.h"
#include "log.h"
#include "request.h"
#include "setup.h"
#include "timers.h"

static const struct host_ctx *ctx_of(const struct sy_host_api *api)
{
    return (const struct host_ctx *)api; /* api is the first member */
}

static void host_log(const struct sy_host_api *api, int level, const char *fmt, ...)
{
    va_list ap;

    if (level < log_level)
        return;
    va_start(ap, fmt);
    log_vmsg(level, ctx_of(api)->plugin_name, fmt, ap);
    va_end(ap);
}

/* --- config sections (sy_config is a cfg_node) --- */

static void cfg_where(const sy_config *cfg, const char *key, char *buf, size_t len);

static const struct cfg_node *node_at(const sy_config *cfg, const char *key)
{
    const struct cfg_node *n = (const struct cfg_node *)cfg;
    if (n == NULL)
        return NULL;
    return key == NULL ? n : cfg_map_get(n, key);
}

static int scalar_at(const sy_config *cfg, const char *key, const char **out)
{
    const struct cfg_node *n = node_at(cfg, key);
    if (n == NULL)
        return SY_DECLINED;
    if (n->kind != CFG_SCALAR)
        return SY_ERROR;
    *out = n->scalar;
    return SY_OK;
}

static int cfg_string(const sy_config *cfg, const char *key, const char **out)
{
    return scalar_at(cfg, key, out);
}

static int cfg_int(const sy_config *cfg, const char *key, long long *out)
{
    const char *s;
    char *end;
    int rc = scalar_at(cfg, key, &s);
    if (rc != SY_OK)
        return rc;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return SY_ERROR;
    *out = v;
    return SY_OK;
}

static int cfg_seconds(const sy_config *cfg, const char *key, double *out)
{
    const char *s;
    int rc = scalar_at(cfg, key, &s);
    if (rc != SY_OK)
        return rc;
    return cfg_parse_seconds(s, out) == 0 ? SY_OK : SY_ERROR;
}

static int cfg_double(const sy_config *cfg, const char *key, double *out)
{
    const char *s;
    char *end;
    int rc = scalar_at(cfg, key, &s);
    if (rc != SY_OK)
        return rc;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || v != v || v - v != 0) /* no NaN, no infinity */
        return SY_ERROR;
    *out = v;
    return SY_OK;
}

static int cfg_size(const sy_config *cfg, const char *key, size_t *out)
{
    const char *s;
    int rc = scalar_at(cfg, key, &s);
    if (rc != SY_OK)
        return rc;
    return cfg_parse_bytes(s, out) == 0 ? SY_OK : SY_ERROR;
}

static int cfg_check_keys(const sy_config *cfg, const char *const *known, char *err,
                          size_t errlen)
{
    const struct cfg_node *n = (const struct cfg_node *)cfg;

    if (n == NULL || n->kind != CFG_MAP)
        return SY_OK; /* an empty section: nothing unknown */
    for (size_t i = 0; i < n->n; i++) {
        size_t k = 0;
        while (known != NULL && known[k] != NULL && strcmp(known[k], n->keys[i]) != 0)
            k++;
        if (known != NULL && known[k] != NULL)
            continue;
        char where[256];
        size_t used;
        cfg_where(cfg, n->keys[i], where, sizeof where);
        used = (size_t)snprintf(err, errlen, "%s: %s: unknown key (known:", where, n->keys[i]);
        for (k = 0; known != NULL && known[k] != NULL && used < errlen; k++)
            used += (size_t)snprintf(err + used, errlen - used, "%s %s", k ? "," : "", known[k]);
        if (used < errlen)
            snprintf(err + used, errlen - used, "%s)", known == NULL || known[0] == NULL
                                                          ? " none" : "");
        return SY_ERROR;
    }
    return SY_OK;
}

static int cfg_bool(const sy_config *cfg, const char *key, int *out)
{
    const char *s;
    int rc = scalar_at(cfg, key, &s);
    if (rc != SY_OK)
        return rc;
    return cfg_parse_bool(s, out) == 0 ? SY_OK : SY_ERROR;
}

static int cfg_section(const sy_config *cfg, const char *key, const sy_config **out)
{
    const struct cfg_node *n = node_at(cfg, key);
    if (n == NULL)
        return SY_DECLINED;
    if (n->kind == CFG_SCALAR)
        return SY_ERROR;
    *out = (const sy_config *)n;
    return SY_OK;
}

static size_t cfg_count(const sy_config *cfg)
{
    const struct cfg_node *n = (const struct cfg_node *)cfg;
    return n && n->kind != CFG_SCALAR ? n->n : 0;
}

static int cfg_entry(const sy_config *cfg, size_t i, const char **key, const sy_config **value)
{
    const struct cfg_node *n = (const struct cfg_node *)cfg;
    if (n == NULL || n->kind != CFG_MAP)
        return SY_ERROR;
    if (i >= n->n)
        return SY_DECLINED;
    *key = n->keys[i];
    *value = (const sy_config *)n->vals[i];
    return SY_OK;
}

static int cfg_item(const sy_config *cfg, size_t i, const sy_config **out)
{
    const struct cfg_node *n = (const struct cfg_node *)cfg;
    if (n == NULL || n->kind != CFG_LIST)
        return SY_ERROR;
    if (i >= n->n)
        return SY_DECLINED;
    *out = (const sy_config *)n->vals[i];
    return SY_OK;
}

static void cfg_where(const sy_config *cfg, const char *key, char *buf, size_t len)
{
    const struct cfg_node *n = (const struct cfg_node *)cfg;
    if (len == 0)
        return;
    if (n == NULL || n->file == NULL) {
        snprintf(buf, len, "config");
        return;
    }
    int line = key && n->kind == CFG_MAP ? cfg_map_key_line(n, key) : n->line;
    if (line > 0)
        snprintf(buf, len, "%s:%d", n->file, line);
    else
        snprintf(buf, len, "%s", n->file);
}

/* --- models --- */

/* Discovery plugins have no setup: they see no model and no backend. */
static size_t model_count(const struct sy_host_api *api)
{
    const struct setup *s = ctx_of(api)->setup;
    return s != NULL ? s->nmodels : 0;
}

static const char *model_name(const struct sy_host_api *api, size_t i)
{
    const struct setup *s = ctx_of(api)->setup;
    return s != NULL && i < s->nmodels ? s->models[i].name : NULL;
}

static const struct model *find_model(const struct sy_host_api *api, const char *name)
{
    const struct setup *s = ctx_of(api)->setup;
    return s != NULL && name != NULL ? setup_find_model(s, name) : NULL;
}

static int model_exists(const struct sy_host_api *api, const char *name)
{
    const struct model *m = find_model(api, name);
    return m != NULL && strcmp(m->name, name) == 0 ? SY_OK : SY_DECLINED;
}

static const char *model_option(const struct sy_host_api *api, const char *model, const char *key)
{
    const struct model *m = find_model(api, model);
    if (m == NULL || key == NULL)
        return NULL;
    if (strcmp(key, "type") == 0)
        return m->cfg->type;
    if (strcmp(key, "fallback_model") == 0)
        return m->cfg->fallback_model;
    return NULL;
}

/* --- requests --- */

static const char *req_id(const sy_request *r) { return r->id; }
static const char *req_model(const sy_request *r) { return r->model; }
static const char *req_path(const sy_request *r) { return r->path; }

static const char *req_header(const sy_request *r, const char *name)
{
    return r->http ? http_req_header(r->http, name) : NULL;
}

static const char *req_body_string(const sy_request *r, const char *field)
{
    /* the cache lives in the request, which only its worker touches */
    return request_body_string((struct sy_request *)r, field);
}

/* --- the body by JSON pointer (1.2); the tree is the request's, which
 * only its worker touches --- */

static int req_field_type(const sy_request *r, const char *pointer)
{
    struct json_object *o;
    if (!request_field((struct sy_request *)r, pointer, &o))
        return SY_JSON_ABSENT;
    switch (json_object_get_type(o)) {
    case json_type_null: return SY_JSON_NULL;
    case json_type_boolean: return SY_JSON_BOOL;
    case json_type_double:
    case json_type_int: return SY_JSON_NUMBER;
    case json_type_string: return SY_JSON_STRING;
    case json_type_array: return SY_JSON_ARRAY;
    case json_type_object: return SY_JSON_OBJECT;
    }
    return SY_JSON_ABSENT;
}

/* The value at pointer when it has json-c type t: SY_OK and *o, else
 * SY_DECLINED (nothing there) or SY_ERROR (another type). */
static int field_of_type(const sy_request *r, const char *pointer, json_type t,
                         struct json_object **o)
{
    if (!request_field((struct sy_request *)r, pointer, o))
        return SY_DECLINED;
    if (json_object_get_type(*o) == t ||
        (t == json_type_double && json_object_get_type(*o) == json_type_int))
        return SY_OK;
    return SY_ERROR;
}

static int req_field_string(const sy_request *r, const char *pointer, const char **out,
                            size_t *len)
{
    struct json_object *o;
    int rc = field_of_type(r, pointer, json_type_string, &o);
    if (rc == SY_OK) {
        *out = json_object_get_string(o);
        if (len != NULL)
            *len = (size_t)json_object_get_string_len(o);
    }
    return rc;
}

static int req_field_number(const sy_request *r, const char *pointer, double *out)
{
    struct json_object *o;
    int rc = field_of_type(r, pointer, json_type_double, &o);
    if (rc == SY_OK)
        *out = json_object_get_double(o);
    return rc;
}

static int req_field_bool(const sy_request *r, const char *pointer, int *out)
{
    struct json_object *o;
    int rc = field_of_type(r, pointer, json_type_boolean, &o);
    if (rc == SY_OK)
        *out = json_object_get_boolean(o);
    return rc;
}

static int req_body(const sy_request *r, const char **body, size_t *len)
{
    *body = r->body ? r->body : "";
    *len = r->body ? r->body_len : 0;
    return SY_OK;
}

static sy_timer *host_worker_timer_add(const struct sy_host_api *api, double seconds,
                                       sy_timer_cb cb, void *arg)
{
    const struct host_ctx *ctx = ctx_of(api);
    struct event_base *base;
    const void *serving;
    int w = timers_worker(&base, &serving);

    if (w < 0 || ctx->setup == NULL || serving != ctx->setup || w >= ctx->setup->nworkers)
        return NULL;
    return timers_add(&ctx->setup->worker_timers[w], base, seconds, cb, arg);
}

static void **req_slot(const struct sy_host_api *api, const sy_request *r)
{
    return r != NULL ? request_slot((struct sy_request *)r, ctx_of(api)->source) : NULL;
}

static int req_prompt(const sy_request *r, const char **text, size_t *len)
{
    /* the cache lives in the request, which only its worker touches */
    return request_prompt_text((struct sy_request *)r, text, len) == 0 ? SY_OK : SY_DECLINED;
}

/* --- backends --- */

static const char *be_url(const sy_backend *b) { return ((const struct backend *)b)->url; }
static unsigned be_index(const sy_backend *b) { return ((const struct backend *)b)->index; }
static unsigned be_weight(const sy_backend *b) { return ((const struct backend *)b)->weight; }
static unsigned be_inflight(const sy_backend *b)
{
    return atomic_load_explicit(&((struct backend *)b)->inflight, memory_order_relaxed);
}

static size_t be_count(const struct sy_host_api *api)
{
    const struct setup *s = ctx_of(api)->setup;
    return s != NULL ? s->nbackends : 0;
}

static const sy_backend *be_at(const struct sy_host_api *api, size_t i)
{
    const struct setup *s = ctx_of(api)->setup;
    return s != NULL && i < s->nbackends ? (const sy_backend *)&s->backends[i] : NULL;
}

/* The i-th model of a backend: walk the models that list it. */
static const char *be_model(const sy_backend *handle, size_t i)
{
    const struct backend *b = (const struct backend *)handle;
    const struct setup *s = b->setup;
    for (size_t m = 0; m < s->nmodels; m++)
        for (size_t k = 0; k < s->models[m].nbackends; k++)
            if (s->models[m].backends[k] == b && i-- == 0)
                return s->models[m].name;
    return NULL;
}

static int be_state(const sy_backend *b)
{
    return backend_state((const struct backend *)b);
}

/* ABI 1.1: a state, on the plugin's own flag and cooldown (see
 * backend_set_state_by). */
static void be_set_state(const struct sy_host_api *api, const sy_backend *b, int state,
                         double seconds, const char *reason)
{
    if (state < SY_BACKEND_HEALTHY || state > SY_BACKEND_COOLDOWN) {
        host_log(api, SY_LOG_ERROR, "backend_set_state: no state %d", state);
        return;
    }
    backend_set_state_by((struct backend *)b, ctx_of(api)->source, state, seconds, reason);
}

static void be_set_flag(const struct sy_host_api *api, const sy_backend *b, int on,
                        const char *reason)
{
    backend_flag_set((struct backend *)b, ctx_of(api)->source, on, reason);
}

static int be_flag(const struct sy_host_api *api, const sy_backend *b)
{
    return backend_flag_held((const struct backend *)b, ctx_of(api)->source);
}

static void be_observe_probe(const sy_backend *b, double seconds)
{
    backend_observe_probe((struct backend *)b, seconds);
}

/* 1.4: the caller's struct may be older (smaller) than ours: fill what
 * fits, field by field through a full copy. */
static int be_engine_stats(const sy_backend *b, struct sy_engine_stats *out)
{
    struct engine_stats st;
    struct sy_engine_stats full = { .size = sizeof full };
    size_t n;
    int rc;

    if (out == NULL || out->size < sizeof out->size)
        return SY_ERROR;
    n = out->size < sizeof full ? out->size : sizeof full;
    rc = engine_stats_get((const struct backend *)b, &st);
    double *v[EV_COUNT] = { &full.running, &full.waiting, &full.swapped, &full.kv_usage,
                            &full.prefix_hits, &full.prefix_queries, &full.block_size,
                            &full.gpu_blocks };
    for (int i = 0; i < EV_COUNT; i++)
        *v[i] = st.present >> i & 1 ? st.v[i] : -1;
    full.age = rc == 0 ? (double)(setup_now_ms() - st.scraped_ms) / 1000 : -1;
    full.stale = rc == 0 ? st.stale : 1;
    full.size = out->size;
    memcpy(out, &full, n);
    return rc == 0 ? SY_OK : SY_DECLINED;
}

static void be_request_stats(const sy_backend *b, struct sy_request_stats *out)
{
    struct request_stats rs;
    struct sy_request_stats full;
    size_t n;

    if (out == NULL || out->size < sizeof out->size)
        return;
    n = out->size < sizeof full ? out->size : sizeof full;
    request_stats_get((const struct backend *)b, (double)setup_now_ms() / 1000, &rs);
    full = (struct sy_request_stats){
        .size = out->size, .window = rs.window, .qps = rs.qps, .avg_latency = rs.avg_latency,
        .avg_ttft = rs.avg_ttft, .avg_itl = rs.avg_itl,
        .avg_decoding_length = rs.avg_decoding_length, .in_prefill = rs.in_prefill,
        .in_decoding = rs.in_decoding, .finished = rs.finished,
    };
    memcpy(out, &full, n);
}

static const char *be_authorization(const sy_backend *b)
{
    return ((const struct backend *)b)->auth_header;
}

static double host_now(void)
{
    return (double)setup_now_ms() / 1000.0;
}

static sy_timer *host_timer_add(const struct sy_host_api *api, double seconds, sy_timer_cb cb,
                                void *arg)
{
    return control_timer_add((struct host_ctx *)api, seconds, cb, arg);
}

static int host_http(const struct sy_host_api *api, const char *url, const char *body, size_t len,
                     const char *const *headers, double timeout, sy_http_cb cb, void *arg)
{
    return control_http((struct host_ctx *)api, url, body, len, headers, timeout, cb, arg);
}

static sy_stream *host_stream(const struct sy_host_api *api, const char *url,
                              const struct sy_http_options *opts, sy_stream_head_cb on_head,
                              sy_stream_data_cb on_data, sy_stream_end_cb on_end, void *arg)
{
    return control_stream((struct host_ctx *)api, url, opts, on_head, on_data, on_end, arg);
}

static int host_dns(const struct sy_host_api *api, const char *name, int type,
                    const char *resolver, double timeout, sy_dns_cb cb, void *arg)
{
    return control_dns((struct host_ctx *)api, name, type, resolver, timeout, cb, arg);
}

static int host_publish(const struct sy_host_api *api, const struct sy_discovered *set, size_t n)
{
    struct host_ctx *ctx = (struct host_ctx *)api;
    if (ctx->discovery == NULL) {
        host_log(api, SY_LOG_ERROR, "discovery_publish: only discovery plugins publish");
        return SY_ERROR;
    }
    return discovery_publish(ctx->discovery, ctx->plugin_name, set, n);
}

/* The plugin's own numbers. */
static void host_metric(const struct sy_host_api *api, const char *name, int gauge, double v)
{
    struct host_ctx *ctx = (struct host_ctx *)api;
    size_t len = name ? strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") : 0;
    struct host_metric *m = NULL;

    if (name == NULL || len == 0 || name[len] != '\0' || len >= sizeof m->name) {
        host_log(api, SY_LOG_ERROR, "metric name '%s': [a-z0-9_], 1 to 47 bytes",
                 name ? name : "(null)");
        return;
    }
    pthread_mutex_lock(&ctx->metrics_lock);
    for (size_t i = 0; i < ctx->nmetrics && m == NULL; i++)
        if (strcmp(ctx->metrics[i].name, name) == 0 && ctx->metrics[i].gauge == gauge)
            m = &ctx->metrics[i];
    if (m == NULL && ctx->nmetrics < HOST_MAX_METRICS) {
        m = &ctx->metrics[ctx->nmetrics++];
        snprintf(m->name, sizeof m->name, "%s", name);
        m->gauge = gauge;
        m->value = 0;
    }
    if (m != NULL)
        m->value = gauge ? v : m->value + v;
    pthread_mutex_unlock(&ctx->metrics_lock);
}

static void host_counter_add(const struct sy_host_api *api, const char *name, double delta)
{
    host_metric(api, name, 0, delta);
}

static void host_gauge_set(const struct sy_host_api *api, const char *name, double value)
{
    host_metric(api, name, 1, value);
}

void host_metrics_render(struct host_ctx *const *hosts, size_t n, int gauges,
                         struct evbuffer *out)
{
    for (size_t i = 0; i < n; i++) {
        struct host_ctx *ctx = hosts[i];
        pthread_mutex_lock(&ctx->metrics_lock);
        for (size_t k = 0; k < ctx->nmetrics; k++)
            if (ctx->metrics[k].gauge == gauges)
                evbuffer_add_printf(out, "%s{plugin=\"%s\",name=\"%s\"} %.17g\n",
                                    gauges ? "switchyard_plugin_gauge"
                                           : "switchyard_plugin_counter_total",
                                    ctx->plugin_name, ctx->metrics[k].name,
                                    ctx->metrics[k].value);
        pthread_mutex_unlock(&ctx->metrics_lock);
    }
}

void host_ctx_init(struct host_ctx *ctx, struct setup *setup, const char *plugin_name,
                   unsigned source)
{
    memset(ctx, 0, sizeof *ctx);
    pthread_mutex_init(&ctx->metrics_lock, NULL);
    ctx->setup = setup;
    ctx->plugin_name = plugin_name;
    ctx->source = source;
    ctx->api = (struct sy_host_api){
        .size = sizeof(struct sy_host_api),
        .abi_major = SY_ABI_MAJOR,
        .abi_minor = SY_ABI_MINOR,
        .log = host_log,
        .config_string = cfg_string,
        .config_int = cfg_int,
        .config_seconds = cfg_seconds,
        .config_bool = cfg_bool,
        .config_section = cfg_section,
        .config_count = cfg_count,
        .config_entry = cfg_entry,
        .config_item = cfg_item,
        .config_where = cfg_where,
        .model_count = model_count,
        .model_name = model_name,
        .model_exists = model_exists,
        .model_option = model_option,
        .request_id = req_id,
        .request_model = req_model,
        .request_header = req_header,
        .request_body_string = req_body_string,
        .request_path = req_path,
        .backend_url = be_url,
        .backend_index = be_index,
        .backend_inflight = be_inflight,
        .backend_weight = be_weight,
        .request_prompt = req_prompt,
        .backend_count = be_count,
        .backend_at = be_at,
        .backend_model = be_model,
        .backend_state = be_state,
        .backend_set_state = be_set_state,
        .backend_observe_probe = be_observe_probe,
        .now = host_now,
        .timer_add = host_timer_add,
        .timer_cancel = control_timer_cancel,
        .http_request = host_http,
        .backend_authorization = be_authorization,
        .backend_set_flag = be_set_flag,
        .backend_flag = be_flag,
        .request_field_type = req_field_type,
        .request_field_string = req_field_string,
        .request_field_number = req_field_number,
        .request_field_bool = req_field_bool,
        .request_body = req_body,
        .config_double = cfg_double,
        .config_size = cfg_size,
        .config_check_keys = cfg_check_keys,
        .request_slot = req_slot,
        .worker_timer_add = host_worker_timer_add,
        .discovery_publish = host_publish,
        .http_stream = host_stream,
        .http_stream_cancel = control_stream_cancel,
        .counter_add = host_counter_add,
        .gauge_set = host_gauge_set,
        .dns_resolve = host_dns,
        .backend_engine_stats = be_engine_stats,
        .backend_request_stats = be_request_stats,
    };
}
