#include "dispatch.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_conn.h"
#include "http_headers.h"
#include "multipart.h"
#include "log.h"
#include "plugin_chains.h"
#include "proxy_headers.h"
#include "request.h"
#include "retry.h"
#include "server.h"
#include "setup.h"
#include "upstream.h"
#include "trace.h"
#include "upstream_error.h"
#include "usage_scan.h"

#define MAX_MODELS_TRIED 17

static const struct {
    const char *path;
    int method; /* 1: POST, 2: GET */
} proxied_paths[] = {
    {"/v1/chat/completions", 1}, {"/v1/completions", 1}, {"/v1/embeddings", 1},
    {"/v1/responses", 1}, {"/v1/messages", 1}, {"/v1/rerank", 1}, {"/rerank", 1},
    {"/v1/score", 1}, {"/score", 1}, {"/tokenize", 1}, {"/detokenize", 1},
    /* vllm_router's audio and image routes; three take multipart forms */
    {"/v1/audio/transcriptions", 1}, {"/v1/audio/translations", 1}, {"/v1/audio/speech", 1},
    {"/v1/images/generations", 1}, {"/v1/images/edits", 1}, {"/v1/audio/voices", 2},
};

int dispatch_proxied_path(const char *path)
{
    for (size_t i = 0; i < sizeof proxied_paths / sizeof proxied_paths[0]; i++)
        if (strcmp(path, proxied_paths[i].path) == 0)
            return proxied_paths[i].method;
    return 0;
}

enum dispatch_engine_op dispatch_engine_path(const char *path, int *get)
{
    *get = 0;
    if (strcmp(path, "/sleep") == 0)
        return ENGINE_OP_SLEEP;
    if (strcmp(path, "/wake_up") == 0)
        return ENGINE_OP_WAKE;
    if (strcmp(path, "/is_sleeping") == 0) {
        *get = 1;
        return ENGINE_OP_IS_SLEEPING;
    }
    return ENGINE_OP_NONE;
}

#define STREAM_RECV_BUFFER 1024
/* What is kept of a failed attempt's answer body, for fallback plugins
 * (the type, code and message of its error); a longer body is cut there. */
#define ERROR_BODY_KEEP (16 * 1024)

struct proxy {
    struct sy_request view;     /* what plugins see; first for the cast */
    struct worker *w;
    struct setup *s;
    struct http_req *req;       /* dead once the answer ends or the client left */
    const char *uri;            /* path and query, appended to backend URLs */
    const char *body;           /* the bytes sent upstream */
    size_t body_len;
    char *rewritten;            /* body after a fallback rewrite, owned */
    struct model *asked;
    char *asked_name;           /* the body's model, even when unknown; owned */
    struct model *model;        /* being served now */
    const char *tried_names[MAX_MODELS_TRIED];
    struct model *tried[MAX_MODELS_TRIED];
    int ntried;
    struct backend **tried_backends; /* of the current model */
    struct backend *tried_inline[16]; /* tried_backends, unless more attempts */
    int ntried_backends;
    int attempts_total;
    int attempts_model;
    struct upstream_xfer *xfer;
    struct backend *backend;
    double attempt_start;
    double start;
    int wants_stream;           /* the body says "stream": true */
    int committed;              /* status and headers sent to the client */
    int sse;                    /* the answer is text/event-stream */
    int paused;
    int delayed_attempt;        /* the delay timer starts an attempt */
    int trial;                  /* this attempt is a backend's post-cooldown trial */
    int reported;               /* the attempt was told to health plugins */
    enum sy_attempt_error last_error;
    int last_status;
    int failing;                /* this attempt's answer is a 5xx/429 */
    char *err_body;             /* its first bytes, for attempts[] */
    size_t err_len;
    int err_cut;                /* ... not all of it: longer than ERROR_BODY_KEEP */
    int err_complete;           /* ... its answer ended well (all of it read) */
    char *err_type;             /* its Content-Type and Retry-After, or NULL */
    char *err_retry_after;
    /* The last answer a backend gave that failed the request (a 5xx or
     * 429, its body whole): what the client gets when nothing serves it */
    struct {
        int status;             /* 0: none yet */
        char *body, *type, *retry_after;
        size_t len;
        const struct backend *backend;
    } kept;
    double head_at;             /* seconds from the attempt's start to its head, or -1 */
    struct rs_attempt rs;       /* the attempt, for the backend's request stats */
    struct usage_scan usage;    /* its answer's token counts */
    struct backend *pinned;     /* ?id=ENGINE, or an engine's own endpoint:
                                   this backend only, no fallback */
    enum dispatch_engine_op op; /* an engine's own endpoint (/sleep, ...) */
    const char *boundary;       /* a multipart/form-data body's, in its header */
    size_t blen;
    int get;                    /* forwarded as a GET */
    char *uri_owned;            /* the target without ?id=, when it had one */
    /* tracing (trace.h), when on and sampled: the request span's ids, its
     * parent (the client's span), and the attempt's span */
    int traced;
    struct trace_ctx trace;
    uint8_t trace_parent[8];
    int trace_has_parent;
    long long trace_start_ns, attempt_start_ns;
    uint8_t attempt_span[8];
    char trace_method[16];
    /* every failed attempt, in order, as fallback plugins see them, and the
     * error strings each points to */
    struct sy_attempt *attempts;
    struct upstream_error *attempt_errors;
    size_t nattempts;
    int routed;                 /* the routing chain was asked: request_done is due */
    int last_malformed;         /* the last attempt's answer was malformed */
    char last_detail[160];
    const char *router_error;   /* the router's own answer's message, while it is logged */
    double retry_after;         /* the wait honoured before the next try */
    double retry_after_asked;   /* Retry-After as the backend said it */
    struct event delay;         /* Retry-After wait before the next attempt */
    /* for the access log */
    int status;                 /* what the client was sent */
    unsigned long long bytes;   /* body bytes handed to the client */
    double ttfb;                /* seconds to the answer's head, or -1 */
};

static const struct retry_limits *limits_of(const struct setup *s,
                                            struct retry_limits *lim)
{
    const struct sy_cfg *c = s->cfg;
    lim->attempts_per_model = 1 + c->reroute_attempts;
    lim->max_attempts = c->max_attempts;
    lim->max_fallback_depth = c->max_fallback_depth;
    lim->deadline = c->request_deadline;
    lim->retry_after_cap = c->retry_after_cap;
    return lim;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void advance(struct proxy *p);
static int fallback_now(struct proxy *p);
static void tell_outcome(struct proxy *p, int error, int status);

/* --- end of a request --- */

static const char *fallback_path(const struct proxy *p, char *buf, size_t len);

/* The spans of a traced request: vllm_router's "process_request" per
 * attempt (CLIENT) and "router PATH" for the whole (SERVER). */
static void span_common(const struct proxy *p, struct trace_span *sp)
{
    memset(sp, 0, sizeof *sp);
    memcpy(sp->trace_id, p->trace.trace_id, sizeof sp->trace_id);
    snprintf(sp->method, sizeof sp->method, "%s", p->trace_method);
    snprintf(sp->request_id, sizeof sp->request_id, "%s", p->view.id);
    sp->streaming = p->wants_stream;
}

static void trace_attempt(struct proxy *p)
{
    struct trace_span sp;
    char url[512];

    span_common(p, &sp);
    memcpy(sp.span_id, p->attempt_span, sizeof sp.span_id);
    memcpy(sp.parent_id, p->trace.span_id, sizeof sp.parent_id);
    sp.has_parent = 1;
    sp.kind = TRACE_KIND_CLIENT;
    snprintf(sp.name, sizeof sp.name, "process_request");
    sp.start_ns = p->attempt_start_ns;
    sp.end_ns = trace_now_ns();
    sp.attempt = p->attempts_total;
    sp.http_status = p->committed ? p->status : p->last_status;
    sp.error = !p->committed || p->status >= 400;
    if (http_join_url(p->backend->url, p->uri, url, sizeof url) == 0)
        snprintf(sp.url, sizeof sp.url, "%s", url);
    snprintf(sp.backend, sizeof sp.backend, "%s", p->backend->url);
    snprintf(sp.model, sizeof sp.model, "%s", p->model ? p->model->name : "");
    if (sp.error)
        snprintf(sp.detail, sizeof sp.detail, "%s",
                 p->last_detail[0] ? p->last_detail : "cut short (the client left)");
    trace_submit(p->w->id, &sp);
}

static void trace_request(const struct proxy *p)
{
    struct trace_span sp;
    char path[512];

    span_common(p, &sp);
    memcpy(sp.span_id, p->trace.span_id, sizeof sp.span_id);
    memcpy(sp.parent_id, p->trace_parent, sizeof sp.parent_id);
    sp.has_parent = p->trace_has_parent;
    sp.kind = TRACE_KIND_SERVER;
    snprintf(sp.name, sizeof sp.name, "router %s", p->view.path ? p->view.path : "");
    sp.start_ns = p->trace_start_ns;
    sp.end_ns = trace_now_ns();
    sp.attempt = p->attempts_total;
    sp.http_status = p->status;
    sp.error = p->status == 0 || p->status >= 500;
    snprintf(sp.target, sizeof sp.target, "%s", p->uri ? p->uri : "");
    snprintf(sp.model, sizeof sp.model, "%s",
             p->asked ? p->asked->name : p->asked_name ? p->asked_name : "");
    if (p->backend != NULL)
        snprintf(sp.backend, sizeof sp.backend, "%s", p->backend->url);
    if (sp.error)
        snprintf(sp.detail, sizeof sp.detail, "%s",
                 p->router_error ? p->router_error : p->last_detail);
    else if (p->ntried > 1)
        snprintf(sp.detail, sizeof sp.detail, "%s", fallback_path(p, path, sizeof path));
    trace_submit(p->w->id, &sp);
}

/* The attempt's transfer is over or cancelled: the backend has one
 * request less, and its request stats learn how it went. */
static void attempt_ended(struct proxy *p)
{
    atomic_fetch_sub(&p->backend->inflight, 1);
    request_stats_done(p->backend, p->w->id, &p->rs, now_seconds());
    if (p->traced)
        trace_attempt(p);
}

static void proxy_free(struct proxy *p)
{
    if (p->xfer != NULL) {
        upstream_cancel(p->xfer);
        attempt_ended(p);
        if (p->trial) /* a trial cut short decides nothing */
            backend_trial_release(p->backend);
    }
    event_del(&p->delay);
    if (p->routed)
        chains_request_done(p->s, p->w->id, &p->view);
    for (size_t i = 0; i < p->nattempts; i++)
        upstream_error_free(&p->attempt_errors[i]);
    free(p->attempts);
    free(p->attempt_errors);
    free(p->err_body);
    free(p->err_type);
    free(p->err_retry_after);
    free(p->kept.body);
    free(p->kept.type);
    free(p->kept.retry_after);
    request_view_release(&p->view);
    free(p->asked_name);
    free(p->rewritten);
    free(p->uri_owned);
    if (p->tried_backends != p->tried_inline)
        free(p->tried_backends);
    atomic_fetch_sub(&p->s->refs, 1);
    atomic_fetch_sub(&p->w->active, 1);
    free(p);
}

/* "a>b>c": the models tried, in order (built when needed: a held stream
 * keeps no copy). */
static const char *fallback_path(const struct proxy *p, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < p->ntried && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ">" : "", p->tried_names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* switchyard_requests_total: requests for models, not an engine's own
 * endpoints. */
static void count_status(struct proxy *p, int status)
{
    if (p->op == ENGINE_OP_NONE)
        setup_count_status(p->s, p->asked, status);
}

/* One access-log line for the request. */
static void write_access_log(const struct proxy *p)
{
    char path[512];
    struct access_entry e = {
        .id = p->view.id, .method = "POST", .path = p->view.path,
        .model = p->asked ? p->asked->name : p->asked_name,
        .model_served = p->committed && p->model ? p->model->name : NULL,
        .backend = p->backend ? p->backend->url : NULL,
        .fallback = p->ntried > 1 ? fallback_path(p, path, sizeof path) : NULL,
        .status = p->status, .attempts = p->attempts_total, .bytes = p->bytes,
        .duration = now_seconds() - p->start, .ttfb = p->ttfb, .error = p->router_error,
    };
    log_access(&e);
    if (p->traced) /* the request's last moment with its path and head */
        trace_request(p);
}

/* The request is over: count it and log it, before its answer ends (the
 * request, its path and headers die there).
 * status: the router's own answer to count, or 0 when on_head counted it. */
static void proxy_account(struct proxy *p, int status)
{
    count_status(p, status);
    if (status != 0)
        p->status = status;
    write_access_log(p);
}

/* ... then end its answer with `end` (http_resp_finish or http_resp_abort)
 * and free it. */
static void proxy_finish(struct proxy *p, int status, void (*end)(struct http_req *))
{
    proxy_account(p, status);
    end(p->req);
    proxy_free(p);
}

/* The client went away (its connection read end of file or failed): stop
 * everything.  The request still reads during this call, not after. */
static void client_gone(void *arg)
{
    struct proxy *p = arg;

    if (http_req_cut_by_server(p->req)) {
        /* the client did not leave: the shutdown's drain time ran out.  A
         * started answer keeps its status; one never sent is a 503. */
        LOG_DEBUG("request %s: cut at shutdown", p->view.id);
        if (!p->committed) {
            count_status(p, 503);
            p->status = 503;
        }
        p->router_error = "cut at shutdown (drain_timeout ran out)";
        write_access_log(p);
        proxy_free(p);
        return;
    }
    LOG_DEBUG("request %s: client closed the connection", p->view.id);
    if (p->committed && p->xfer != NULL)
        tell_outcome(p, SY_ATTEMPT_NONE, p->status);
    /* an answer already started was counted with its status */
    if (!p->committed)
        count_status(p, 499);
    p->status = 499; /* nginx's word for it */
    write_access_log(p);
    proxy_free(p);
}

static void add_router_headers(struct proxy *p)
{
    char path[512];

    proxy_router_headers(p->req, p->view.id, p->model ? p->model->name : NULL, p->attempts_total,
                         p->ntried > 1 ? fallback_path(p, path, sizeof path) : NULL);
}

/* The router's own answer (OpenAI-shaped), and the end of the request. */
static void fail_request(struct proxy *p, int code, const char *msg,
                         int retry_after)
{
    add_router_headers(p);
    p->router_error = msg; /* lives until it is logged */
    proxy_account(p, code);
    http_resp_error(p->req, code, msg, retry_after);
    proxy_free(p);
}

/* --- attempts --- */

/* Tell the health plugins how the attempt went.  When none of them judged
 * a post-cooldown trial, the core does: success ends the cooldown, failure
 * lets the next request try again after it. */
static void report_attempt(struct proxy *p, int error, int status)
{
    struct backend *b = p->backend;
    struct sy_attempt_report r = {
        .size = sizeof r, .backend = (const sy_backend *)b, .model = p->model->name,
        .error = error, .status = status,
        .retry_after = error == SY_ATTEMPT_STATUS ? p->retry_after_asked : 0,
        .latency = now_seconds() - p->attempt_start, .trial = p->trial,
    };

    if (p->reported)
        return;
    p->reported = 1;
    chains_attempt_report(p->s, &r);
    if (p->trial && backend_state(b) == SY_BACKEND_COOLDOWN) {
        if (error == SY_ATTEMPT_NONE)
            backend_cooldown_end(b, "trial request succeeded");
        else
            backend_trial_release(b);
    }
    p->trial = 0;
}

/* Routing plugins learn how the attempt went (outcome). */
static void tell_outcome(struct proxy *p, int error, int status)
{
    struct sy_outcome o = {
        .size = sizeof o, .backend = (const sy_backend *)p->backend, .model = p->model->name,
        .error = error, .status = status, .latency = now_seconds() - p->attempt_start,
        .ttfb = p->head_at, .bytes = p->committed ? p->bytes : 0,
    };
    chains_outcome(p->s, p->w->id, &p->view, &o);
}

/* Keep the failed attempt for fallback plugins (struct sy_attempt), with
 * what its error body says. */
static void record_attempt(struct proxy *p)
{
    size_t n = p->nattempts + 1;
    struct sy_attempt *a = realloc(p->attempts, n * sizeof *a);
    struct upstream_error *e = a ? realloc(p->attempt_errors, n * sizeof *e) : NULL;

    if (a != NULL)
        p->attempts = a;
    if (e != NULL) {
        p->attempt_errors = e;
        e = &e[p->nattempts];
        upstream_error_parse(p->err_body, p->err_len, e);
        p->attempts[p->nattempts++] = (struct sy_attempt){
            .size = sizeof *a, .model = p->model->name,
            .backend = (const sy_backend *)p->backend, .error = p->last_error,
            .status = p->last_status,
            .retry_after = p->last_error == SY_ATTEMPT_STATUS ? p->retry_after_asked : 0,
            .error_type = e->type, .error_code = e->code,
            .error_message = e->message, .body_excerpt = e->excerpt,
        };
    }
    if (p->last_error == SY_ATTEMPT_STATUS && !p->err_cut && p->err_complete) {
        /* the newest answer of a backend: kept whole for the client */
        free(p->kept.body);
        free(p->kept.type);
        free(p->kept.retry_after);
        p->kept.status = p->last_status;
        p->kept.body = p->err_body;
        p->kept.len = p->err_len;
        p->kept.type = p->err_type;
        p->kept.retry_after = p->err_retry_after;
        p->kept.backend = p->backend;
        p->err_body = p->err_type = p->err_retry_after = NULL;
    }
    free(p->err_body);
    free(p->err_type);
    free(p->err_retry_after);
    p->err_body = p->err_type = p->err_retry_after = NULL;
    p->err_len = 0;
    p->err_cut = 0;
    p->err_complete = 0;
    p->failing = 0;
}

/* An engine that said yes to /sleep takes no request until it says yes
 * to /wake_up: its own health source holds it out (kept over reloads). */
static void mark_asleep(struct backend *b, int asleep)
{
    backend_flag_set(b, HEALTH_SOURCE_SLEEP, asleep,
                     asleep ? "asleep (POST /sleep)" : "woken (POST /wake_up)");
}

static enum upstream_body_mode on_head(void *arg,
                                       const struct upstream_response *r)
{
    struct proxy *p = arg;
    /* checked by upstream: the body that comes is exactly this long */
    long long length = r->content_length;

    if (retry_status_fails(r->status)) {
        p->last_status = r->status;
        p->last_error = SY_ATTEMPT_STATUS;
        p->retry_after = 0;
        p->retry_after_asked = 0;
        for (size_t i = 0; i < r->nheaders; i++) {
            if (strcasecmp(r->headers[i].name, "Retry-After") == 0) {
                struct retry_limits lim;
                limits_of(p->s, &lim);
                p->retry_after = retry_after_delay(
                    r->headers[i].value, time(NULL), lim.retry_after_cap,
                    lim.deadline - (now_seconds() - p->start));
                /* what the backend asked for, for health plugins */
                p->retry_after_asked = retry_after_delay(r->headers[i].value, time(NULL),
                                                         1e9, 1e9);
            }
        }
        /* its first bytes say why (the upstream error's type and code),
         * for fallback plugins; with its type, it may be the client's
         * answer in the end */
        for (size_t i = 0; i < r->nheaders; i++) {
            if (strcasecmp(r->headers[i].name, "Content-Type") == 0 && p->err_type == NULL)
                p->err_type = strdup(r->headers[i].value);
            else if (strcasecmp(r->headers[i].name, "Retry-After") == 0 &&
                     p->err_retry_after == NULL)
                p->err_retry_after = strdup(r->headers[i].value);
        }
        p->failing = 1;
        p->head_at = now_seconds() - p->attempt_start;
        return UP_BODY_DELIVER;
    }
    /* This attempt is the answer: from here on the client sees bytes. */
    p->committed = 1;
    p->head_at = now_seconds() - p->attempt_start;
    report_attempt(p, SY_ATTEMPT_NONE, r->status);
    backend_observe_latency(p->backend, now_seconds() - p->attempt_start);
    p->sse = proxy_response_headers(p->req, r);
    /* An SSE answer is framed by chunks: a length would be a lie if the
     * upstream dies mid-stream and we append an error event. */
    if (p->sse)
        length = -1;
    add_router_headers(p);
    count_status(p, r->status);
    if ((p->op == ENGINE_OP_SLEEP || p->op == ENGINE_OP_WAKE) && r->status >= 200 &&
        r->status < 300)
        mark_asleep(p->backend, p->op == ENGINE_OP_SLEEP);
    p->status = r->status;
    p->ttfb = now_seconds() - p->start;
    http_resp_start(p->req, r->status, length);
    return UP_BODY_DELIVER;
}

/* The client took what was waiting: the backend may go on. */
static void client_drained(void *arg)
{
    struct proxy *p = arg;

    if (p->paused && p->xfer != NULL) {
        p->paused = 0;
        upstream_resume(p->xfer);
    }
}

static int on_body(void *arg, const char *data, size_t len)
{
    struct proxy *p = arg;

    if (p->failing) { /* a failed attempt's error body: keep its start */
        size_t room = ERROR_BODY_KEEP - p->err_len;
        if (p->err_body == NULL && (p->err_body = malloc(ERROR_BODY_KEEP)) == NULL)
            return -1;
        memcpy(p->err_body + p->err_len, data, len < room ? len : room);
        p->err_len += len < room ? len : room;
        if (len <= room)
            return 0;
        p->err_cut = 1;
        return -1; /* enough: stop reading it */
    }

    /* Back-pressure: leave the bytes in curl until the client catches up. */
    if (http_resp_over_high_water(p->req)) {
        p->paused = 1;
        return 1;
    }
    http_resp_body(p->req, data, len);
    p->bytes += len;
    request_stats_body(p->backend, p->w->id, &p->rs, data, len, p->sse, now_seconds());
    if (p->status >= 200 && p->status < 300)
        usage_scan_feed(&p->usage, data, len);
    return 0;
}

/* vllm_router's {server,model} series: the attempt's latency and error
 * type, and the tokens its answer's usage says. */
static void count_attempt(struct proxy *p, enum upstream_result res)
{
    struct backend_model *bm = backend_model_of(p->backend, p->model);
    int error = -1;

    if (bm == NULL)
        return;
    if (p->committed && res == UP_OK) {
        if (p->usage.prompt >= 0)
            atomic_fetch_add_explicit(&bm->input_tokens, (uint_fast64_t)p->usage.prompt,
                                      memory_order_relaxed);
        if (p->usage.completion >= 0)
            atomic_fetch_add_explicit(&bm->output_tokens, (uint_fast64_t)p->usage.completion,
                                      memory_order_relaxed);
    } else if (!p->committed && p->last_error == SY_ATTEMPT_STATUS) {
        error = p->last_status == 429 ? AE_HTTP_429 : AE_HTTP_5XX;
    } else {
        error = res == UP_TIMEOUT ? AE_TIMEOUT : res == UP_CONNECT ? AE_CONNECT
              : res == UP_MALFORMED ? AE_MALFORMED : AE_CLOSED;
    }
    backend_model_observe(bm, error, p->committed && p->status >= 400,
                          now_seconds() - p->attempt_start);
}

static void on_done(void *arg, enum upstream_result res, const char *detail)
{
    struct proxy *p = arg;
    struct backend *b = p->backend;

    p->xfer = NULL;
    p->last_malformed = res == UP_MALFORMED;
    attempt_ended(p);
    count_attempt(p, res);
    if (p->committed) {
        tell_outcome(p, res == UP_OK ? SY_ATTEMPT_NONE : SY_ATTEMPT_CLOSED, p->status);
        if (res != UP_OK) {
            LOG_WARN("request %s: model %s backend %s failed mid-answer: %s (%s)",
                     p->view.id, p->model->name, b->url, upstream_result_name(res), detail);
            if (!p->sse) {
                /* No way to say it in-band: cut the connection so the
                 * client sees a truncated answer, not a complete one. */
                proxy_finish(p, 0, http_resp_abort);
                return;
            }
            char *e = http_error_json(502, "upstream_error",
                                      "the backend failed while streaming the answer");
            char event[1024];
            int n = snprintf(event, sizeof event, "data: %s\n\n", e ? e : "{\"error\":{}}");
            free(e);
            if (n > 0 && (size_t)n < sizeof event)
                http_resp_body(p->req, event, (size_t)n);
        }
        proxy_finish(p, 0, http_resp_finish);
        return;
    }
    /* The attempt failed before any byte reached the client. */
    switch (res) {
    case UP_TIMEOUT: p->last_error = SY_ATTEMPT_TIMEOUT; p->last_status = 0; break;
    case UP_MALFORMED: /* the backend answered, unreadably: for the plugins, a
                          connection that ended without a usable answer */
        p->last_error = SY_ATTEMPT_CLOSED; p->last_status = 0; break;
    case UP_CONNECT: p->last_error = SY_ATTEMPT_CONNECT; p->last_status = 0; break;
    case UP_OK:
    case UP_ABORTED:
        if (p->last_error == SY_ATTEMPT_STATUS)
            break; /* a 5xx/429 whose body we dropped */
        /* fall through */
    default: p->last_error = SY_ATTEMPT_CLOSED; p->last_status = 0; break;
    }
    if (p->last_error == SY_ATTEMPT_STATUS) {
        snprintf(p->last_detail, sizeof p->last_detail, "status %d", p->last_status);
        p->err_complete = res == UP_OK;
    }
    else
        snprintf(p->last_detail, sizeof p->last_detail, "%s: %s",
                 upstream_result_name(res), detail);
    LOG_INFO("request %s: model %s backend %s attempt %d failed: %s",
             p->view.id, p->model->name, b->url, p->attempts_total, p->last_detail);
    report_attempt(p, p->last_error, p->last_status);
    record_attempt(p);
    tell_outcome(p, p->last_error, p->last_status);
    if (fallback_now(p) < 0)
        return; /* answered */
    advance(p);
}

static const struct upstream_ops proxy_ops = { on_head, on_body, on_done };

static void start_attempt(struct proxy *p, struct backend *b)
{
    struct upstream_request r;
    struct retry_limits lim;
    char url[8192];
    double left;

    if (b == NULL) {
        /* the last usable backend went away since advance() counted it:
         * decide again from the loop, never recursively */
        struct timeval zero = { 0, 0 };
        p->delayed_attempt = 0;
        evtimer_add(&p->delay, &zero);
        return;
    }

    limits_of(p->s, &lim);
    left = lim.deadline - (now_seconds() - p->start);
    if (http_join_url(b->url, p->uri, url, sizeof url) != 0) {
        if (p->trial)
            backend_trial_release(b);
        fail_request(p, 414, "request target too long", 0);
        return;
    }
    memset(&r, 0, sizeof r);
    r.url = url;
    r.body = p->get && p->body_len == 0 ? NULL : p->body;
    r.body_len = p->body_len;
    r.get = p->get;
    char traceparent[56];
    if (p->traced) {
        trace_new_id(p->attempt_span, sizeof p->attempt_span);
        p->attempt_start_ns = trace_now_ns();
        trace_format_traceparent(p->trace.trace_id, p->attempt_span, p->trace.flags,
                                 traceparent);
    }
    r.headers = proxy_request_headers(p->req, p->model, b, p->s->cfg->napi_keys > 0, p->view.id,
                                      p->traced ? traceparent : NULL);
    r.connect_timeout = p->s->cfg->connect_timeout;
    r.first_byte_timeout = p->s->cfg->upstream_timeout < left ? p->s->cfg->upstream_timeout : left;
    r.idle_timeout = p->s->cfg->idle_timeout;
    r.ca_file = p->s->cfg->ca_file;
    /* a stream's events are small and each is sent on at once: a small
     * buffer per held stream, not curl's 16 KiB (10,000 streams: 140 MiB) */
    r.recv_buffer = p->wants_stream ? STREAM_RECV_BUFFER : 0;
    if (r.connect_timeout > r.first_byte_timeout)
        r.connect_timeout = r.first_byte_timeout;
    p->backend = b;
    p->reported = 0;
    p->attempts_total++;
    p->attempts_model++;
    p->tried_backends[p->ntried_backends++] = b;
    p->last_error = SY_ATTEMPT_NONE;
    p->last_status = 0;
    p->last_malformed = 0;
    p->failing = 0;
    p->err_cut = 0;
    p->err_complete = 0;
    p->head_at = -1;
    p->attempt_start = now_seconds();
    atomic_fetch_add(&b->inflight, 1);
    request_stats_sent(b, p->w->id, &p->rs, p->attempt_start);
    usage_scan_init(&p->usage);
    LOG_DEBUG("request %s: model %s attempt %d to backend %s",
              p->view.id, p->model->name, p->attempts_total, b->url);
    p->xfer = r.headers ? upstream_start(p->w->upstream, &r, &proxy_ops, p) : NULL;
    if (p->xfer == NULL) {
        attempt_ended(p);
        if (p->trial) {
            backend_trial_release(b);
            p->trial = 0;
        }
        p->last_error = SY_ATTEMPT_CONNECT;
        snprintf(p->last_detail, sizeof p->last_detail, "could not start the transfer");
        LOG_ERROR("request %s: could not start a transfer to %s", p->view.id, b->url);
        /* let the loop call advance, never recurse from here */
        struct timeval zero = { 0, 0 };
        p->delayed_attempt = 0;
        evtimer_add(&p->delay, &zero);
    }
}

static int backend_tried(const struct proxy *p, const struct backend *b)
{
    for (int i = 0; i < p->ntried_backends; i++)
        if (p->tried_backends[i] == b)
            return 1;
    return 0;
}

/* The backends the request may go to: the model's, or the one it is
 * pinned to. */
static struct backend *const *candidates(const struct proxy *p, size_t *n)
{
    if (p->pinned != NULL) {
        *n = 1;
        return &p->pinned;
    }
    *n = p->model->nbackends;
    return p->model->backends;
}

/* Usable for this request: an engine's own endpoint (/wake_up of a
 * sleeping engine) goes whatever its health. */
static int usable_for(const struct proxy *p, struct backend *b, long long now)
{
    return p->op != ENGINE_OP_NONE || backend_usable(b, now);
}

/* Pick with the routing chain among the model's usable backends not tried
 * yet; when every usable one was tried, among all of them.  A backend
 * coming out of a cooldown takes one trial request: when another request
 * got it first, it is dropped from the candidates and the chain asked
 * again.  NULL when no backend is usable.  A pinned request has one
 * candidate and asks no plugin. */
static struct backend *pick_backend(struct proxy *p)
{
    size_t all;
    struct backend *const *bs = candidates(p, &all);
    struct backend *cands[all];
    size_t n = 0;
    long long now = setup_now_ms();

    for (size_t i = 0; i < all; i++)
        if (!backend_tried(p, bs[i]) && usable_for(p, bs[i], now))
            cands[n++] = bs[i];
    if (n == 0)
        for (size_t i = 0; i < all; i++)
            if (usable_for(p, bs[i], now))
                cands[n++] = bs[i];
    if (p->op != ENGINE_OP_NONE)
        return n > 0 ? cands[0] : NULL;
    while (n > 0) {
        size_t pick = 0;
        if (p->pinned == NULL) {
            pick = chains_route(p->s, p->w->id, &p->view, cands, n);
            p->routed = 1;
        }
        if (backend_claim(cands[pick], now, &p->trial))
            return cands[pick];
        cands[pick] = cands[--n];
    }
    return NULL;
}

static int model_tried(const struct proxy *p, const struct model *m)
{
    for (int i = 0; i < p->ntried; i++)
        if (p->tried[i] == m)
            return 1;
    return 0;
}

/* Can the request move to the model a fallback plugin named? */
static int model_acceptable(void *ctx, const char *name)
{
    struct proxy *p = ctx;
    struct model *m = setup_find_model(p->s, name);

    if (m == NULL) {
        LOG_WARN("request %s: a fallback plugin named unknown model '%s'", p->view.id, name);
        return 0;
    }
    return !model_tried(p, m);
}

/* Ask the fallback chain which model comes next (after_attempt: its
 * attempt_failed hooks); NULL when none. */
static struct model *next_model(struct proxy *p, enum sy_fallback_reason why, int after_attempt)
{
    if (p->pinned != NULL)
        return NULL; /* that engine or nothing */
    struct sy_fallback_query q = {
        .size = sizeof q, .model = p->model->name, .reason = why,
        .last_error = p->last_error, .last_status = p->last_status,
        .tried = p->tried_names, .ntried = (size_t)p->ntried, .req = &p->view,
        .attempts = p->attempts, .nattempts = p->nattempts,
    };
    int retry;
    const char *name = chains_fallback(p->s, p->w->id, &q, after_attempt, model_acceptable, p,
                                       &retry);
    return name != NULL ? setup_find_model(p->s, name) : NULL;
}

/* The body with `model` set to `name`: a JSON body's member, or a
 * multipart form's field. */
static int rewrite_model(const struct proxy *p, const char *body, size_t len, const char *name,
                         char **out, size_t *outlen)
{
    if (p->boundary != NULL)
        return request_rewrite_model_form(body, len, p->boundary, p->blen, name, out, outlen);
    return request_rewrite_model(body, len, name, out, outlen);
}

/* Move the request to model m, rewriting `model` in the body. */
static int switch_model(struct proxy *p, struct model *m)
{
    char *nb = NULL;
    size_t nlen = 0;

    /* always from the client's bytes, so only `model` ever differs */
    if (rewrite_model(p, p->req->body, p->req->body_len, m->name, &nb, &nlen) != 0)
        return -1;
    free(p->rewritten);
    p->rewritten = nb;
    p->body = nb;
    p->body_len = nlen;
    atomic_fetch_add(&p->model->stats.fallbacks_to[m->index], 1);
    LOG_INFO("request %s: falling back from model %s to %s (%s)", p->view.id,
             p->model->name, m->name, p->last_detail[0] ? p->last_detail : "no usable backend");
    p->model = m;
    p->view.model = m->name;
    p->tried[p->ntried] = m;
    p->tried_names[p->ntried++] = m->name;
    p->attempts_model = 0;
    p->ntried_backends = 0;
    return 0;
}

/* Nothing served the request, but a backend answered: the client gets the
 * last such answer as it was sent (status, body, its type, Retry-After),
 * with the router's own X-Switchyard-* headers, not a made-up 503. */
static void pass_last_answer(struct proxy *p)
{
    LOG_WARN("request %s: giving up; passing on the last answer, %d from %s (%s)", p->view.id,
             p->kept.status, p->kept.backend ? p->kept.backend->url : "?", p->last_detail);
    add_router_headers(p);
    if (p->kept.retry_after != NULL)
        http_resp_header(p->req, "Retry-After", p->kept.retry_after);
    proxy_account(p, p->kept.status);
    http_resp_send(p->req, p->kept.status,
                   p->kept.type != NULL ? p->kept.type : "application/json",
                   p->kept.body != NULL ? p->kept.body : "", p->kept.len);
    proxy_free(p);
}

static void give_up(struct proxy *p)
{
    char msg[1024];
    size_t used;
    int code = retry_give_up_status(p->last_error == SY_ATTEMPT_TIMEOUT
                                        ? RETRY_LAST_TIMEOUT
                                        : p->last_malformed ? RETRY_LAST_MALFORMED
                                                            : RETRY_LAST_OTHER);

    atomic_fetch_add(&p->asked->stats.exhausted, 1);
    if (p->kept.status != 0) {
        pass_last_answer(p);
        return;
    }
    used = (size_t)snprintf(msg, sizeof msg, "no backend could serve model '%s' (tried: ",
                            p->asked->name);
    for (int i = 0; i < p->ntried && used < sizeof msg; i++)
        used += (size_t)snprintf(msg + used, sizeof msg - used, "%s%s",
                                 i ? ", " : "", p->tried_names[i]);
    if (used < sizeof msg)
        snprintf(msg + used, sizeof msg - used, ")%s%s",
                 p->last_detail[0] ? "; last error: " : "", p->last_detail);
    LOG_WARN("request %s: giving up with %d: %s", p->view.id, code, msg);
    fail_request(p, code, msg, p->retry_after > 1 ? (int)(p->retry_after + 0.999) : 1);
}

static void delay_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *p = arg;

    if (p->delayed_attempt)
        start_attempt(p, pick_backend(p));
    else
        advance(p);
}

static int usable_backends(const struct proxy *p)
{
    long long now = setup_now_ms();
    size_t all;
    struct backend *const *bs = candidates(p, &all);
    int n = 0;
    for (size_t i = 0; i < all; i++)
        n += usable_for(p, bs[i], now);
    return n;
}

/* Is a usable backend of the model left that this request has not tried? */
static int untried_usable(const struct proxy *p)
{
    long long now = setup_now_ms();
    size_t all;
    struct backend *const *bs = candidates(p, &all);
    for (size_t i = 0; i < all; i++)
        if (!backend_tried(p, bs[i]) && usable_for(p, bs[i], now))
            return 1;
    return 0;
}

/* After a failed attempt, fallback plugins that act on each attempt may
 * move the request to another model now, before the model's retries and
 * Retry-After waits.  1 when they did, 0 when not, -1 when the request was
 * answered (it could not be moved). */
static int fallback_now(struct proxy *p)
{
    struct retry_limits lim;
    struct model *m;

    if (!chains_has_attempt_hooks(p->s))
        return 0;
    limits_of(p->s, &lim);
    struct retry_state st = {
        .attempts_total = p->attempts_total, .attempts_model = p->attempts_model,
        .usable = usable_backends(p), .elapsed = now_seconds() - p->start,
    };
    if (!retry_may_fall_back(&lim, p->ntried - 1, &st) || p->ntried >= MAX_MODELS_TRIED)
        return 0;
    if ((m = next_model(p, SY_FALLBACK_ATTEMPT_FAILED, 1)) == NULL)
        return 0;
    if (switch_model(p, m) != 0) {
        fail_request(p, 500, "could not rewrite the request body", 0);
        return -1;
    }
    p->retry_after = 0;
    return 1;
}

/* Decide and start what comes next for a request with no attempt running. */
static void advance(struct proxy *p)
{
    struct retry_limits lim;

    limits_of(p->s, &lim);
    for (;;) {
        struct retry_state st = {
            .attempts_total = p->attempts_total,
            .attempts_model = p->attempts_model,
            .usable = usable_backends(p),
            .elapsed = now_seconds() - p->start,
            .untried_usable = untried_usable(p),
            .last_refused = p->last_error == SY_ATTEMPT_CONNECT,
            .last_answered = p->last_error == SY_ATTEMPT_STATUS,
            .retry_after = p->retry_after,
        };
        enum retry_step step = retry_next_step(&lim, &st);
        switch (step) {
        case STEP_WAIT: {
            struct timeval tv = { (time_t)p->retry_after,
                                  (suseconds_t)((p->retry_after - (time_t)p->retry_after) * 1e6) };
            atomic_fetch_add(&p->model->stats.retries, 1);
            LOG_INFO("request %s: waiting %.3fs (Retry-After) before retrying model %s",
                     p->view.id, p->retry_after, p->model->name);
            p->retry_after = 0;
            p->delayed_attempt = 1;
            evtimer_add(&p->delay, &tv);
            return;
        }
        case STEP_ATTEMPT:
            if (p->attempts_model > 0)
                atomic_fetch_add(&p->model->stats.retries, 1);
            p->retry_after = 0;
            start_attempt(p, pick_backend(p));
            return;
        case STEP_FALLBACK: {
            struct model *m;
            if (!retry_may_fall_back(&lim, p->ntried - 1, &st) ||
                p->ntried >= MAX_MODELS_TRIED) {
                give_up(p);
                return;
            }
            m = next_model(p, p->attempts_model ? SY_FALLBACK_EXHAUSTED : SY_FALLBACK_NO_BACKEND,
                           0);
            if (m == NULL) {
                give_up(p);
                return;
            }
            if (switch_model(p, m) != 0) {
                fail_request(p, 500, "could not rewrite the request body", 0);
                return;
            }
            p->retry_after = 0;
            continue;
        }
        case STEP_GIVE_UP:
            give_up(p);
            return;
        }
    }
}

/* --- arrival --- */

/* The request span: the client's trace continued (and its choice of
 * sampling obeyed), or a new trace. */
static void trace_begin(struct proxy *p)
{
    struct trace_ctx client;

    if (trace_parse_traceparent(http_req_header(p->req, "traceparent"), &client) == 0) {
        if (!(client.flags & 1))
            return; /* not sampled: its traceparent goes on as it came */
        p->trace = client;
        memcpy(p->trace_parent, client.span_id, sizeof p->trace_parent);
        p->trace_has_parent = 1;
    } else {
        trace_new_id(p->trace.trace_id, sizeof p->trace.trace_id);
        p->trace.flags = 1;
    }
    trace_new_id(p->trace.span_id, sizeof p->trace.span_id);
    snprintf(p->trace_method, sizeof p->trace_method, "%s", p->req->method_name);
    p->trace_start_ns = trace_now_ns();
    p->traced = 1;
}

/* A request's state, before its body is read; NULL (answered) when out of
 * memory. */
static struct proxy *proxy_new(struct worker *w, struct http_req *req)
{
    struct proxy *p = calloc(1, sizeof *p);

    if (p == NULL) {
        http_refuse(req, 500, "out of memory", 0);
        return NULL;
    }
    p->w = w;
    p->s = w->setup; /* this request's setup, even if a reload comes */
    atomic_fetch_add(&p->s->refs, 1);
    atomic_fetch_add(&w->active, 1);
    p->req = req;
    p->start = now_seconds();
    p->ttfb = -1;
    request_make_id(http_req_header(req, "X-Request-Id"), p->view.id);
    p->view.path = req->path;
    p->view.http = req;
    p->uri = req->target;
    p->get = req->method == HTTP_METHOD_GET;
    if (trace_enabled())
        trace_begin(p);
    evtimer_assign(&p->delay, w->base, delay_done_cb, p);
    if ((size_t)p->s->cfg->max_attempts + 1 <= sizeof p->tried_inline / sizeof p->tried_inline[0])
        p->tried_backends = p->tried_inline;
    else
        p->tried_backends = calloc((size_t)p->s->cfg->max_attempts + 1, sizeof *p->tried_backends);
    if (p->tried_backends == NULL) {
        fail_request(p, 500, "out of memory", 0);
        return NULL;
    }
    p->body_len = req->body_len;
    p->body = req->body ? req->body : "";
    return p;
}

/* vllm_router's ?id=ENGINE (an engine_id of /engines): the request is
 * pinned to that engine and the parameter is not forwarded.  1 when
 * pinned, 0 when there is none (and it is not required), -1 when the
 * request was answered (400, in vllm_router's words). */
static int take_engine_id(struct proxy *p, int required)
{
    if (!required && strchr(p->req->target, '?') == NULL)
        return 0; /* no query, no id: no copy of the target on the hot path */
    size_t rlen = strlen(p->req->target) + 1;
    char id[64], msg[160], *rest = malloc(rlen);
    int rc = rest ? request_query_take(p->req->target, "id", id, sizeof id, rest, rlen) : -1;

    if (rc <= 0)
        free(rest);
    if (rc < 0) {
        fail_request(p, 400, "Invalid request: ?id= is not an engine id", 0);
        return -1;
    }
    if (rc == 0 && !required)
        return 0;
    if (rc == 0) {
        fail_request(p, 400, "Invalid request: missing target Engine Id.", 0);
        return -1;
    }
    p->uri = p->uri_owned = rest;
    if ((p->pinned = setup_find_engine(p->s, id)) == NULL) {
        snprintf(msg, sizeof msg, "Engine with Id %s not found.", id);
        fail_request(p, 400, msg, 0);
        return -1;
    }
    return 1;
}

/* The body's model (and whether it asks for a stream): a JSON body's, a
 * multipart form's field, or for a GET without a body the query's
 * ?model=.  0, or -1 when the request was answered (400). */
static int read_body(struct proxy *p, struct body_info *info)
{
    const char *ctype = http_req_header(p->req, "Content-Type");
    char err[256];
    enum body_error rc;

    memset(info, 0, sizeof *info);
    if (ctype != NULL && multipart_boundary(ctype, &p->boundary, &p->blen) == 0) {
        rc = request_parse_form(p->body, p->body_len, p->boundary, p->blen, info, err,
                                sizeof err);
    } else if (p->get && p->body_len == 0) {
        char model[1024];
        size_t rlen = strlen(p->req->target) + 1;
        char *rest = malloc(rlen);
        int found = rest ? request_query_take(p->req->target, "model", model, sizeof model, rest,
                                              rlen) : -1;
        free(rest);
        if (found <= 0 || model[0] == '\0') {
            fail_request(p, 400, "Invalid request: missing 'model' (a GET takes it as ?model=)", 0);
            return -1;
        }
        if ((info->model = strdup(model)) == NULL) {
            fail_request(p, 500, "out of memory", 0);
            return -1;
        }
        info->models = 1;
        return 0;
    } else {
        rc = request_parse_body(p->body, p->body_len, info, err, sizeof err);
    }
    if (rc != BODY_OK) {
        fail_request(p, 400, err, 0);
        return -1;
    }
    return 0;
}

/* The request's model is known: its first attempt (or fallback) goes. */
static void serve(struct proxy *p)
{
    p->view.model = p->model->name;
    p->tried[0] = p->model;
    p->tried_names[0] = p->model->name;
    p->ntried = 1;
    /* from here the answer may come later: the connection tells us when
     * the client leaves, and when a slow one has taken its bytes */
    http_req_set_owner(p->req, client_gone, client_drained, p);
    advance(p);
}

void dispatch_request(struct worker *w, struct http_req *req)
{
    struct proxy *p = proxy_new(w, req);
    const char *model = NULL;
    struct body_info info;

    if (p == NULL || take_engine_id(p, 0) < 0 || read_body(p, &info) != 0)
        return;
    p->view.body = p->body;
    p->view.body_len = p->body_len;
    p->wants_stream = info.stream;
    p->asked_name = info.model;
    model = info.model;
    p->asked = setup_find_model(p->s, model);
    if (p->asked == NULL) {
        char msg[512];
        size_t shown = strlen(model);
        if (shown > 300) { /* cut, but never inside a UTF-8 sequence */
            shown = 300;
            while (shown > 0 && ((unsigned char)model[shown] & 0xC0) == 0x80)
                shown--;
        }
        snprintf(msg, sizeof msg, "The model '%.*s' does not exist", (int)shown, model);
        fail_request(p, 404, msg, 0);
        return;
    }
    atomic_fetch_add_explicit(&p->asked->stats.incoming, 1, memory_order_relaxed);
    if (p->pinned != NULL && backend_model_of(p->pinned, p->asked) == NULL) {
        char msg[512];
        snprintf(msg, sizeof msg, "Engine with Id %s does not serve model '%s'",
                 p->pinned->engine_id, p->asked->name);
        fail_request(p, 400, msg, 0);
        return;
    }
    /* An alias is served by its model: the body says the model's name.  A
     * body that repeats "model" is routed on the last: the backend gets
     * only that one, whichever of duplicates it would keep.  A GET's
     * ?model= stays as the client wrote it. */
    p->model = p->asked;
    if ((strcmp(model, p->asked->name) != 0 || info.models > 1) && p->body_len > 0) {
        char *nb = NULL;
        size_t nlen = 0;
        if (rewrite_model(p, p->body, p->body_len, p->asked->name, &nb, &nlen) != 0) {
            fail_request(p, 500, "could not rewrite the request body", 0);
            return;
        }
        p->rewritten = nb;
        p->body = nb;
        p->body_len = nlen;
    }
    serve(p);
}

void dispatch_engine_request(struct worker *w, struct http_req *req, enum dispatch_engine_op op)
{
    struct proxy *p = proxy_new(w, req);
    char msg[160];

    if (p == NULL)
        return;
    p->op = op;
    if (take_engine_id(p, 1) < 0)
        return;
    if (p->pinned->nserved == 0) {
        snprintf(msg, sizeof msg, "Engine with Id %s serves no model yet", p->pinned->engine_id);
        fail_request(p, 503, msg, 1);
        return;
    }
    /* the engine's first model stands for it in logs and headers */
    p->asked = p->model = p->pinned->served[0].model;
    if ((p->asked_name = strdup(p->model->name)) == NULL) {
        fail_request(p, 500, "out of memory", 0);
        return;
    }
    p->view.body = p->body;
    p->view.body_len = p->body_len;
    serve(p);
}
