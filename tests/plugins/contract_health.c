/*
 * The host API's contract for health plugins: the control-thread functions
 * (timer_add, timer_cancel, http_request) and the backend states, checked
 * from start() and from the callbacks it sets off; contract.c checks the
 * rest.  The end-to-end test is tests/e2e/test_examples.c ("host API
 * contract, health").  Every check that fails logs
 *     contract: FAIL <what>: got ..., want ...
 * and each part ends with one line
 *     contract: N checks, M failed in start()   (or callbacks)
 *
 * plugin_config.contract_health: {backends: [A, B, C], closed: URL, key: K}
 * with the backends' URLs in the order of the setup (mocks; B's /health
 * answers 503, A's and C's 200), `closed` a URL where nothing listens, and
 * K the key of C (api_key_env).  start() also records one probe of 0.25 s
 * on A, and moves C through unhealthy, healthy, cooldown and healthy with
 * backend_set_state() and through out and back with backend_set_flag():
 * six changes the test sees in /metrics.  ABI 1.3: http_stream() of A's
 * /v1/models (head, body, end), one stream cancelled, discovery_publish()
 * refused to a health plugin, and counter "contract_counter" = 3, gauge
 * "contract_gauge" = 2.5 for /metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/plugin.h>

#include "contract_checks.h"

#define NBACKENDS 3
#define PROBE_BODY "{\"model\":\"n\",\"prompt\":\"contract probe\"}"

struct contract_health {
    const struct sy_host_api *host;
    char *url[NBACKENDS], *closed, *key;
    struct tally cb;  /* the callbacks' checks (control thread only) */
    int outstanding;  /* callbacks still to come */
    double started;   /* now() in start() */
    int fired;        /* the first timer ran */
    int cancelled_ran; /* the cancelled timer ran: it must not */
    int stream_status; /* what on_head saw */
    size_t stream_bytes;
    int stream_has_data; /* the body named the model */
};

static void ch_destroy(void *inst);

static int ch_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                     char *err, size_t errlen)
{
    struct contract_health *c;
    const sy_config *list = NULL, *item;
    const char *s;

    if (host->size < sizeof(struct sy_host_api)) {
        snprintf(err, errlen, "needs plugin ABI 1.2");
        return SY_ERROR;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return SY_ERROR;
    c->host = host;
    c->cb.h = host;
    if (host->config_section(cfg, "backends", &list) == SY_OK)
        for (size_t i = 0; i < NBACKENDS; i++)
            if (host->config_item(list, i, &item) == SY_OK &&
                host->config_string(item, NULL, &s) == SY_OK)
                c->url[i] = strdup(s);
    if (host->config_string(cfg, "closed", &s) == SY_OK)
        c->closed = strdup(s);
    if (host->config_string(cfg, "key", &s) == SY_OK)
        c->key = strdup(s);
    if (c->url[0] && c->url[1] && c->url[2] && c->closed && c->key) {
        *inst = c;
        return SY_OK;
    }
    snprintf(err, errlen, "backends (3 URLs), closed and key are required");
    ch_destroy(c); /* the host destroys no instance it did not get */
    return SY_ERROR;
}

static void ch_destroy(void *inst)
{
    struct contract_health *c = inst;

    for (size_t i = 0; i < NBACKENDS; i++)
        free(c->url[i]);
    free(c->closed);
    free(c->key);
    free(c);
}

/* One callback less to wait for; the last one logs the callbacks' tally. */
static void done_one(struct contract_health *c)
{
    if (--c->outstanding == 0)
        c->host->log(c->host, SY_LOG_INFO, "contract: %d checks, %d failed in callbacks",
                     c->cb.n, c->cb.failed);
}

static void on_timer(void *arg)
{
    struct contract_health *c = arg;
    double waited = c->host->now() - c->started;
    char got[64];

    snprintf(got, sizeof got, "%.3fs", waited);
    c->fired++;
    check_true(&c->cb, "timer_add(0.1s) fires after 0.1s, not much later",
               waited >= 0.095 && waited < 3, got);
    done_one(c);
}

static void on_cancelled(void *arg)
{
    struct contract_health *c = arg;

    c->cancelled_ran++;
}

/* After the cancelled timer's time: it did not run, the first one ran once. */
static void on_late(void *arg)
{
    struct contract_health *c = arg;
    /* the cancelled stream and the cancelled timer count here alike */

    check_int(&c->cb, "timer_cancel: the cancelled timer ran", c->cancelled_ran, 0);
    check_int(&c->cb, "timer_add: the first timer ran once", c->fired, 1);
    done_one(c);
}

static int has(const char *body, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; body != NULL && i + n <= len; i++)
        if (memcmp(body + i, needle, n) == 0)
            return 1;
    return 0;
}

static void on_health_a(void *arg, int status, const char *body, size_t len, const char *error)
{
    struct contract_health *c = arg;

    check_int(&c->cb, "http_request(GET A/health) status", status, 200);
    check_true(&c->cb, "http_request(GET A/health) body", has(body, len, "\"status\":\"ok\""),
               body ? body : "NULL");
    check_str(&c->cb, "http_request(GET A/health) error", error, NULL);
    done_one(c);
}

static void on_health_b(void *arg, int status, const char *body, size_t len, const char *error)
{
    struct contract_health *c = arg;

    check_int(&c->cb, "http_request(GET B/health) status", status, 503);
    check_true(&c->cb, "http_request(GET B/health) body", has(body, len, "\"code\":503"),
               body ? body : "NULL");
    done_one(c);
}

static void on_post_c(void *arg, int status, const char *body, size_t len, const char *error)
{
    struct contract_health *c = arg;

    check_int(&c->cb, "http_request(POST C/v1/completions) status", status, 200);
    check_true(&c->cb, "http_request(POST C/v1/completions) body: a completion",
               has(body, len, "\"choices\""), body ? body : "NULL");
    done_one(c);
}

static void on_closed(void *arg, int status, const char *body, size_t len, const char *error)
{
    struct contract_health *c = arg;

    check_int(&c->cb, "http_request(GET closed) status", status, 0);
    check_true(&c->cb, "http_request(GET closed) says why", error != NULL && error[0] != '\0',
               "no error");
    done_one(c);
}

static void on_stream_head(void *arg, int status)
{
    ((struct contract_health *)arg)->stream_status = status;
}

static int on_stream_data(void *arg, const char *data, size_t len)
{
    struct contract_health *c = arg;
    c->stream_bytes += len;
    c->stream_has_data |= has(data, len, "\"data\"");
    return 0;
}

static void on_stream_end(void *arg, int status, const char *error)
{
    struct contract_health *c = arg;
    check_int(&c->cb, "http_stream(A/v1/models) on_head status", c->stream_status, 200);
    check_int(&c->cb, "http_stream(A/v1/models) on_end status", status, 200);
    check_true(&c->cb, "http_stream(A/v1/models) on_end without error", error == NULL, error);
    check_true(&c->cb, "http_stream(A/v1/models) body came", c->stream_bytes > 0 &&
               c->stream_has_data, "no body");
    done_one(c);
}

static int on_cancelled_data(void *arg, const char *data, size_t len)
{
    (void)data;
    (void)len;
    ((struct contract_health *)arg)->cancelled_ran++;
    return 0;
}

static void on_cancelled_end(void *arg, int status, const char *error)
{
    (void)status;
    (void)error;
    ((struct contract_health *)arg)->cancelled_ran++;
}

/* ABI 1.3: streams, publishing (refused: not a discovery plugin), metrics. */
static void check_1_3(struct contract_health *c, struct tally *t)
{
    const struct sy_host_api *h = c->host;
    struct sy_http_options o = { .size = sizeof o, .connect_timeout = 2, .idle_timeout = 5 };
    const char *hdr[] = { "X-Contract-Stream: yes", NULL };
    char url[600];
    struct sy_discovered one = { .size = sizeof one, .url = c->url[0], .ready = 1 };

    check_true(t, "host of ABI 1.3", h->size >= offsetof(struct sy_host_api, gauge_set) +
               sizeof h->gauge_set, "smaller");
    o.headers = hdr;
    snprintf(url, sizeof url, "%s/v1/models", c->url[0]);
    sy_stream *st = h->http_stream(h, url, &o, on_stream_head, on_stream_data, on_stream_end, c);
    check_true(t, "http_stream(A/v1/models)", st != NULL, "NULL");
    if (st != NULL)
        c->outstanding++;
    sy_stream *gone = h->http_stream(h, url, NULL, NULL, on_cancelled_data, on_cancelled_end, c);
    check_true(t, "http_stream to cancel", gone != NULL, "NULL");
    h->http_stream_cancel(gone);
    check_true(t, "http_stream(no on_end) refused",
               h->http_stream(h, url, NULL, NULL, on_cancelled_data, NULL, c) == NULL, "a stream");
    check_int(t, "discovery_publish from a health plugin", h->discovery_publish(h, &one, 1),
              SY_ERROR);
    h->counter_add(h, "contract_counter", 1);
    h->counter_add(h, "contract_counter", 2);
    h->gauge_set(h, "contract_gauge", 7);
    h->gauge_set(h, "contract_gauge", 2.5);
}

static void start_http(struct contract_health *c, struct tally *t, const char *what,
                       const char *url, const char *body, const char *const *headers,
                       sy_http_cb cb)
{
    int rc = c->host->http_request(c->host, url, body, body ? strlen(body) : 0, headers, 2.0, cb, c);

    check_int(t, what, rc, SY_OK);
    if (rc == SY_OK)
        c->outstanding++;
}

/* C through every state, with backend_set_state and backend_set_flag. */
static void check_states(struct tally *t, const sy_backend *b)
{
    const struct sy_host_api *h = t->h;

    check_int(t, "backend_state(C) at start", h->backend_state(b), SY_BACKEND_HEALTHY);
    h->backend_set_state(h, b, SY_BACKEND_UNHEALTHY, 0, "contract: down");
    check_int(t, "backend_state(C) after UNHEALTHY", h->backend_state(b), SY_BACKEND_UNHEALTHY);
    check_int(t, "backend_flag(C) after UNHEALTHY", h->backend_flag(h, b), 1);
    h->backend_set_state(h, b, SY_BACKEND_HEALTHY, 0, "contract: up");
    check_int(t, "backend_state(C) after HEALTHY", h->backend_state(b), SY_BACKEND_HEALTHY);
    check_int(t, "backend_flag(C) after HEALTHY", h->backend_flag(h, b), 0);
    h->backend_set_state(h, b, SY_BACKEND_COOLDOWN, 30, "contract: cooling");
    check_int(t, "backend_state(C) after COOLDOWN", h->backend_state(b), SY_BACKEND_COOLDOWN);
    check_int(t, "backend_flag(C) in a cooldown", h->backend_flag(h, b), 0);
    h->backend_set_state(h, b, SY_BACKEND_HEALTHY, 0, "contract: cooled");
    check_int(t, "backend_state(C) HEALTHY ends the cooldown", h->backend_state(b),
              SY_BACKEND_HEALTHY);
    h->backend_set_flag(h, b, 1, "contract: flag");
    check_int(t, "backend_flag(C) after set_flag(1)", h->backend_flag(h, b), 1);
    check_int(t, "backend_state(C) after set_flag(1)", h->backend_state(b), SY_BACKEND_UNHEALTHY);
    h->backend_set_flag(h, b, 0, "contract: unflag");
    check_int(t, "backend_flag(C) after set_flag(0)", h->backend_flag(h, b), 0);
    check_int(t, "backend_state(C) after set_flag(0)", h->backend_state(b), SY_BACKEND_HEALTHY);
}

static int ch_start(void *inst)
{
    struct contract_health *c = inst;
    const struct sy_host_api *h = c->host;
    struct tally t = { h, 0, 0 };
    const sy_backend *b[NBACKENDS] = { NULL, NULL, NULL };
    char url[600], auth[600];
    sy_timer *cancelled;

    c->started = h->now();
    c->outstanding = 1; /* start() itself, until its end */
    check_int(&t, "backend_count", (long long)h->backend_count(h), NBACKENDS);
    for (size_t i = 0; i < NBACKENDS; i++) {
        b[i] = h->backend_at(h, i);
        check_str(&t, "backend_url(backend_at(i))", b[i] ? h->backend_url(b[i]) : NULL, c->url[i]);
    }
    if (b[0] == NULL || b[2] == NULL)
        return SY_ERROR;

    /* timers: one fires, one is cancelled, one looks after them */
    check_true(&t, "timer_add(0.1s)", h->timer_add(h, 0.1, on_timer, c) != NULL, "NULL");
    c->outstanding++;
    cancelled = h->timer_add(h, 0.2, on_cancelled, c);
    check_true(&t, "timer_add(0.2s) to cancel", cancelled != NULL, "NULL");
    if (cancelled != NULL)
        h->timer_cancel(cancelled);
    check_true(&t, "timer_add(0.6s)", h->timer_add(h, 0.6, on_late, c) != NULL, "NULL");
    c->outstanding++;

    /* HTTP: GET, an error status, POST with headers and the backend's key,
     * and a refused connection */
    snprintf(url, sizeof url, "%s/health", c->url[0]);
    start_http(c, &t, "http_request(GET A/health)", url, NULL, NULL, on_health_a);
    snprintf(url, sizeof url, "%s/health", c->url[1]);
    start_http(c, &t, "http_request(GET B/health)", url, NULL, NULL, on_health_b);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
    check_str(&t, "backend_authorization(C)", h->backend_authorization(b[2]), auth);
    const char *headers[] = { h->backend_authorization(b[2]), "Content-Type: application/json",
                              "X-Contract-Probe: yes", NULL };
    snprintf(url, sizeof url, "%s/v1/completions", c->url[2]);
    start_http(c, &t, "http_request(POST C/v1/completions)", url, PROBE_BODY,
               headers[0] ? headers : NULL, on_post_c);
    start_http(c, &t, "http_request(GET closed)", c->closed, NULL, NULL, on_closed);

    /* a probe's duration for /metrics, and C's states */
    h->backend_observe_probe(b[0], 0.25);
    check_states(&t, b[2]);
    check_1_3(c, &t);

    t.h->log(h, SY_LOG_INFO, "contract: %d checks, %d failed in start()", t.n, t.failed);
    done_one(c); /* start() is done; the callbacks come later */
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_HEALTH, .name = "contract_health", .version = "1",
    .description = "checks the host API's control-thread functions", .create = ch_create,
    .destroy = ch_destroy, .start = ch_start,
};
