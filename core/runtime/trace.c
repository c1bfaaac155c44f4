#define _GNU_SOURCE
#include "trace.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "config.h"
#include "log.h"

#define RING_SPANS 512       /* per worker */
#define BATCH_SPANS 512      /* a POST at most */
#define FLUSH_MS 200
#define POST_TIMEOUT_S 10L
#define MAX_TRIES 5

/* --- W3C trace context --- */

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* n bytes from 2n lowercase hex digits; -1 otherwise or all zero. */
static int hex_bytes(const char *s, uint8_t *out, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
        any |= out[i];
    }
    return any ? 0 : -1;
}

int trace_parse_traceparent(const char *v, struct trace_ctx *out)
{
    uint8_t version, flags;

    /* version 00 is exactly 55 characters; a later version may append
     * fields after a '-', which are ignored (W3C: parse what you know) */
    if (v == NULL || strlen(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -1;
    if (hex_digit(v[0]) < 0 || hex_digit(v[1]) < 0)
        return -1;
    version = (uint8_t)(hex_digit(v[0]) << 4 | hex_digit(v[1]));
    if (version == 0xff || (version == 0 && v[55] != '\0') || (v[55] != '\0' && v[55] != '-'))
        return -1;
    if (hex_bytes(v + 3, out->trace_id, 16) != 0 || hex_bytes(v + 36, out->span_id, 8) != 0)
        return -1;
    if (hex_digit(v[53]) < 0 || hex_digit(v[54]) < 0)
        return -1;
    flags = (uint8_t)(hex_digit(v[53]) << 4 | hex_digit(v[54]));
    out->flags = flags;
    return 0;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void trace_format_traceparent(const uint8_t trace_id[16], const uint8_t span_id[8],
                              uint8_t flags, char out[56])
{
    memcpy(out, "00-", 3);
    to_hex(trace_id, 16, out + 3);
    out[35] = '-';
    to_hex(span_id, 8, out + 36);
    out[52] = '-';
    to_hex(&flags, 1, out + 53);
}

void trace_new_id(uint8_t *id, size_t len)
{
    /* xorshift per thread, seeded from the kernel: ids need to be unique,
     * not secret */
    static _Thread_local uint64_t state;
    int any = 0;

    while (state == 0)
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state)
            state = (uint64_t)trace_now_ns() | 1;
    while (!any) {
        for (size_t i = 0; i < len; i++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            id[i] = (uint8_t)(state >> 24);
            any |= id[i];
        }
    }
}

long long trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --- the rings: one writer (a worker), one reader (the exporter) --- */

struct ring {
    atomic_size_t head;        /* spans written, ever */
    atomic_size_t tail;        /* spans taken, ever */
    struct trace_span slot[RING_SPANS];
};

static struct tracer {
    int on;
    char url[1024];
    char service[256];
    struct ring *rings;
    int nrings;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
    atomic_ullong exported, dropped;
} tr = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

int trace_enabled(void)
{
    return tr.on;
}

void trace_submit(int w, const struct trace_span *s)
{
    if (!tr.on || w < 0 || w >= tr.nrings)
        return;
    struct ring *r = &tr.rings[w];
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING_SPANS) {
        atomic_fetch_add_explicit(&tr.dropped, 1, memory_order_relaxed);
        return;
    }
    r->slot[head % RING_SPANS] = *s;
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

void trace_counts(unsigned long long *exported, unsigned long long *dropped)
{
    *exported = atomic_load(&tr.exported);
    *dropped = atomic_load(&tr.dropped);
}

/* --- OTLP/JSON --- */

static void attr(json_object *list, const char *key, json_object *value, const char *kind)
{
    json_object *a = json_object_new_object(), *v = json_object_new_object();
    json_object_object_add(v, kind, value);
    json_object_object_add(a, "key", json_object_new_string(key));
    json_object_object_add(a, "value", v);
    json_object_array_add(list, a);
}

static void attr_str(json_object *list, const char *key, const char *s)
{
    if (s != NULL && s[0] != '\0')
        attr(list, key, json_object_new_string(s), "stringValue");
}

/* int64 as proto3's JSON mapping writes it: a decimal string */
static void attr_int(json_object *list, const char *key, long long v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", v);
    attr(list, key, json_object_new_string(buf), "intValue");
}

static json_object *span_json(const struct trace_span *s)
{
    json_object *o = json_object_new_object(), *attrs = json_object_new_array();
    char hex[33], t[24];

    to_hex(s->trace_id, 16, hex);
    json_object_object_add(o, "traceId", json_object_new_string(hex));
    to_hex(s->span_id, 8, hex);
    json_object_object_add(o, "spanId", json_object_new_string(hex));
    if (s->has_parent) {
        to_hex(s->parent_id, 8, hex);
        json_object_object_add(o, "parentSpanId", json_object_new_string(hex));
    }
    json_object_object_add(o, "name", json_object_new_string(s->name));
    json_object_object_add(o, "kind", json_object_new_int(s->kind));
    snprintf(t, sizeof t, "%lld", s->start_ns);
    json_object_object_add(o, "startTimeUnixNano", json_object_new_string(t));
    snprintf(t, sizeof t, "%lld", s->end_ns > s->start_ns ? s->end_ns : s->start_ns);
    json_object_object_add(o, "endTimeUnixNano", json_object_new_string(t));
    /* vllm_router's attribute names, and switchyard's */
    attr_str(attrs, "http.method", s->method);
    if (s->kind == TRACE_KIND_SERVER) {
        attr_str(attrs, "http.target", s->target);
        attr_str(attrs, "vllm.model", s->model);
    } else {
        attr_str(attrs, "http.url", s->url);
        attr_str(attrs, "vllm.model", s->model);
        attr(attrs, "vllm.is_streaming", json_object_new_boolean(s->streaming), "boolValue");
        attr_int(attrs, "switchyard.attempt", s->attempt);
    }
    attr_str(attrs, "vllm.backend_url", s->backend);
    attr_str(attrs, "vllm.request_id", s->request_id);
    if (s->http_status > 0)
        attr_int(attrs, "http.status_code", s->http_status);
    if (s->kind == TRACE_KIND_SERVER && s->attempt > 0)
        attr_int(attrs, "switchyard.attempts", s->attempt);
    if (!s->error && s->detail[0] != '\0')
        attr_str(attrs, "switchyard.fallback", s->detail);
    json_object_object_add(o, "attributes", attrs);
    if (s->error) {
        json_object *st = json_object_new_object();
        json_object_object_add(st, "code", json_object_new_int(2));
        if (s->detail[0] != '\0')
            json_object_object_add(st, "message", json_object_new_string(s->detail));
        json_object_object_add(o, "status", st);
    }
    return o;
}

/* One ExportTraceServiceRequest holding the spans. */
static char *export_json(const struct trace_span *spans, size_t n)
{
    json_object *root = json_object_new_object(), *rs = json_object_new_array();
    json_object *r = json_object_new_object(), *res = json_object_new_object();
    json_object *rattrs = json_object_new_array(), *ss = json_object_new_array();
    json_object *scope_spans = json_object_new_object(), *scope = json_object_new_object();
    json_object *list = json_object_new_array();
    char *text;

    attr_str(rattrs, "service.name", tr.service);
    attr_str(rattrs, "service.version", PACKAGE_VERSION);
    json_object_object_add(res, "attributes", rattrs);
    json_object_object_add(r, "resource", res);
    json_object_object_add(scope, "name", json_object_new_string("switchyard"));
    json_object_object_add(scope, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(scope_spans, "scope", scope);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(list, span_json(&spans[i]));
    json_object_object_add(scope_spans, "spans", list);
    json_object_array_add(ss, scope_spans);
    json_object_object_add(r, "scopeSpans", ss);
    json_object_array_add(rs, r);
    json_object_object_add(root, "resourceSpans", rs);
    text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return text;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* POST one export: 1 sent, 0 to try again later, -1 refused for good. */
static int post(CURL *e, const char *body, long timeout, char *why, size_t whylen)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    long status = 0;
    CURLcode rc;

    h = curl_slist_append(h, "Expect:");
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, tr.url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc = curl_easy_perform(e);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return 1;
    snprintf(why, whylen, "answered %ld", status);
    /* OTLP/HTTP's retryable statuses */
    return status == 429 || status == 502 || status == 503 || status == 504 ? 0 : -1;
}

/* Take up to max spans from the rings. */
static size_t drain(struct trace_span *out, size_t max)
{
    size_t n = 0;
    for (int w = 0; w < tr.nrings && n < max; w++) {
        struct ring *r = &tr.rings[w];
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        while (tail != head && n < max)
            out[n++] = r->slot[tail++ % RING_SPANS];
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    return n;
}

static void *exporter(void *arg)
{
    CURL *e = curl_easy_init();
    struct trace_span *batch = calloc(BATCH_SPANS, sizeof *batch);
    char *pending = NULL, why[256] = "";
    size_t npending = 0;
    int tries = 0, failing = 0, stopping = 0;
    long long wait_ms = FLUSH_MS, next_try = 0;

    (void)arg;
    while (e != NULL && batch != NULL) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += wait_ms * 1000000;
        until.tv_sec += until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        pthread_mutex_lock(&tr.lock);
        if (!tr.stopping)
            pthread_cond_timedwait(&tr.cond, &tr.lock, &until);
        stopping = tr.stopping;
        pthread_mutex_unlock(&tr.lock);
        long long now_ms = trace_now_ns() / 1000000;
        if (pending == NULL) {
            npending = drain(batch, BATCH_SPANS);
            if (npending > 0)
                pending = export_json(batch, npending);
            tries = 0;
        }
        if (pending != NULL && (now_ms >= next_try || stopping)) {
            int rc = post(e, pending, stopping ? 2L : POST_TIMEOUT_S, why, sizeof why);
            if (rc == 0 && ++tries < MAX_TRIES && !stopping) {
                /* again after 1, 2, 4, 8 s */
                next_try = now_ms + (1000LL << (tries - 1));
                if (!failing++)
                    LOG_WARN("trace export to %s: %s; trying again", tr.url, why);
            } else {
                if (rc == 1) {
                    atomic_fetch_add(&tr.exported, npending);
                    if (failing)
                        LOG_INFO("trace export to %s: working again", tr.url);
                    failing = 0;
                } else {
                    atomic_fetch_add(&tr.dropped, npending);
                    LOG_WARN("trace export to %s: %s; %zu spans dropped", tr.url, why, npending);
                }
                free(pending);
                pending = NULL;
                next_try = 0;
            }
        }
        if (stopping) {
            /* what is left in the rings after the last POST goes too, once */
            size_t n = drain(batch, BATCH_SPANS);
            if (n > 0 && pending == NULL) {
                char *text = export_json(batch, n);
                if (text != NULL && post(e, text, 2L, why, sizeof why) == 1)
                    atomic_fetch_add(&tr.exported, n);
                else
                    atomic_fetch_add(&tr.dropped, n);
                free(text);
            }
            break;
        }
        wait_ms = pending != NULL && next_try > now_ms ? next_try - now_ms : FLUSH_MS;
        if (wait_ms > FLUSH_MS * 5)
            wait_ms = FLUSH_MS * 5; /* a stop is noticed soon */
    }
    free(pending);
    free(batch);
    if (e != NULL)
        curl_easy_cleanup(e);
    return NULL;
}

/* The export URL from --otel-endpoint: a URL as it is (with /v1/traces
 * when it has no path), or host:port, https with otel_secure.  4317 is
 * OTLP/gRPC's port (vllm_router's exporter): OTLP/HTTP's is 4318. */
static int export_url(const struct sy_cfg *cfg, char *out, size_t len, char *err, size_t errlen)
{
    const char *v = cfg->otel_endpoint, *scheme = strstr(v, "://");
    size_t n;

    if (scheme != NULL) {
        const char *path = strchr(scheme + 3, '/');
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
            snprintf(err, errlen, "otel_endpoint: expected http:// or https://, got '%s'", v);
            return -1;
        }
        if (path == NULL)
            n = (size_t)snprintf(out, len, "%s/v1/traces", v);
        else if (strcmp(path, "/") == 0)
            n = (size_t)snprintf(out, len, "%sv1/traces", v);
        else
            n = (size_t)snprintf(out, len, "%s", v);
        if (n >= len)
            snprintf(err, errlen, "otel_endpoint: too long");
        return n < len ? 0 : -1;
    }
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v || colon[1] == '\0' || strspn(colon + 1, "0123456789") !=
                                                              strlen(colon + 1)) {
        snprintf(err, errlen, "otel_endpoint: expected host:port or a URL, got '%s'", v);
        return -1;
    }
    const char *port = strcmp(colon + 1, "4317") == 0 ? "4318" : colon + 1;
    if (port != colon + 1)
        LOG_INFO("otel_endpoint %s: 4317 is OTLP/gRPC's port; switchyard speaks OTLP/HTTP, "
                 "so spans go to port 4318", v);
    n = (size_t)snprintf(out, len, "%s://%.*s:%s/v1/traces", cfg->otel_secure ? "https" : "http",
                         (int)(colon - v), v, port);
    return n < len ? 0 : -1;
}

int trace_start(const struct sy_cfg *cfg, int nworkers, char *err, size_t errlen)
{
    if (cfg->otel_endpoint == NULL)
        return 0;
    if (export_url(cfg, tr.url, sizeof tr.url, err, errlen) != 0)
        return -1;
    snprintf(tr.service, sizeof tr.service, "%s",
             cfg->otel_service_name != NULL ? cfg->otel_service_name : "switchyard");
    tr.rings = calloc((size_t)nworkers, sizeof *tr.rings);
    if (tr.rings == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    tr.nrings = nworkers;
    tr.stopping = 0;
    if (pthread_create(&tr.thread, NULL, exporter, NULL) != 0) {
        free(tr.rings);
        tr.rings = NULL;
        snprintf(err, errlen, "cannot start the trace exporter: %s", strerror(errno));
        return -1;
    }
    tr.on = 1;
    LOG_INFO("tracing: spans of service %s go to %s (OTLP/HTTP, JSON)", tr.service, tr.url);
    return 0;
}

void trace_stop(void)
{
    if (!tr.on)
        return;
    pthread_mutex_lock(&tr.lock);
    tr.stopping = 1;
    pthread_cond_signal(&tr.cond);
    pthread_mutex_unlock(&tr.lock);
    pthread_join(tr.thread, NULL);
    tr.on = 0;
    free(tr.rings);
    tr.rings = NULL;
    tr.nrings = 0;
}
