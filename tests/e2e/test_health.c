/* Health checking as a client and an operator see it (docs/health.md):
 * active probes (http_probe) and outlier detection (passive) taking
 * backends out and bringing them back, what /engines, /metrics and the log
 * say about it, and that health checking never slows a client down.
 *
 * Every test starts its own router with short intervals (100-200 ms) and
 * waits for a change by polling /engines with a deadline, never by a blind
 * sleep long enough "to be safe".
 *
 *   probe outage      /health fails: out within interval x fall, no traffic
 *                     while out, back within interval x rise; /engines,
 *                     /metrics and one log line per change
 *   passive           503s: cooldown, no traffic during it, one trial after
 *                     it, a doubled cooldown when the trial fails, recovery
 *   retry-after       a 429 with Retry-After: 2 cools the backend for ~2 s
 *   slow probes       probes that hang never delay client requests
 *   fallback          a model whose backends are all down is served by its
 *                     fallback at once; without one, 503 at once
 *   static flags      --static-backend-health-checks probes with inference
 *                     requests of the model's type (transcription's form,
 *                     vision's image and messages' shape too)
 *   under load        120 requests in flight do not slow the probes down
 *   probe + passive   a probe's verdict holds against passive's trial
 *   reloads           SIGHUP keeps a backend's state and its way back;
 *                     reloads back to back never hang the health thread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"

/* --- helpers --- */

/* Slower everything under valgrind or the sanitizers' wrapper. */
static double slack(void)
{
    const char *w = getenv("SY_TEST_WRAPPER");
    return w != NULL && *w != '\0' ? 5.0 : 1.0;
}

/* One buffer per thread: the shots of fire() run at once, and libcurl
 * sends from the buffer while another thread would write it (a torn body,
 * 400: the flake of "probes keep interval under load"). */
static char *chat_body(const char *model)
{
    static _Thread_local char body[256];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
    return body;
}

/* POST a chat request; returns the status (0 when none came). */
static long chat(int port, const char *model, struct resp *r)
{
    if (http_post(port, CHAT, chat_body(model), NULL, r) != 0)
        return 0;
    return r->status;
}

static long chat_status(int port, const char *model)
{
    struct resp r;
    long st = chat(port, model, &r);
    resp_free(&r);
    return st;
}

/* One backend's entry of /engines. */
struct engine {
    int found;
    char state[32];
    int usable;
    long long since;
    int has_last_error;
    char last_error[256];
    int in_flight;
    char models[128]; /* "a,b" */
    int has_all_fields;
};

static int engine_get(int port, const char *url, struct engine *e)
{
    struct resp r;
    json_object *root, *list, *v;

    memset(e, 0, sizeof *e);
    if (http_get(port, "/engines", &r) != 0 || r.status != 200) {
        resp_free(&r);
        return -1;
    }
    root = json_tokener_parse(r.body);
    resp_free(&r);
    if (root == NULL)
        return -1;
    list = root; /* vllm_router's shape: an array of engines */
    if (json_object_is_type(list, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *it = json_object_array_get_idx(list, i);
            if (!json_object_object_get_ex(it, "url", &v) ||
                strcmp(json_object_get_string(v), url) != 0)
                continue;
            e->found = 1;
            e->has_all_fields = 1;
            static const char *const keys[] = { "engine_id", "serving_models", "created",
                                                "url", "models", "state", "usable", "since",
                                                "last_error", "in_flight" };
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                e->has_all_fields &= json_object_object_get_ex(it, keys[k], NULL);
            if (json_object_object_get_ex(it, "state", &v))
                snprintf(e->state, sizeof e->state, "%s", json_object_get_string(v));
            if (json_object_object_get_ex(it, "usable", &v))
                e->usable = json_object_get_boolean(v);
            if (json_object_object_get_ex(it, "since", &v))
                e->since = json_object_get_int64(v);
            if (json_object_object_get_ex(it, "in_flight", &v))
                e->in_flight = json_object_get_int(v);
            if (json_object_object_get_ex(it, "last_error", &v) && v != NULL) {
                e->has_last_error = 1;
                snprintf(e->last_error, sizeof e->last_error, "%s", json_object_get_string(v));
            }
            if (json_object_object_get_ex(it, "models", &v) && json_object_is_type(v, json_type_array))
                for (size_t k = 0; k < json_object_array_length(v); k++) {
                    size_t used = strlen(e->models);
                    snprintf(e->models + used, sizeof e->models - used, "%s%s", k ? "," : "",
                             json_object_get_string(json_object_array_get_idx(v, k)));
                }
        }
    }
    json_object_put(root);
    return e->found ? 0 : -1;
}

/* Poll /engines until the backend's state is `state` (and, when usable is
 * 0 or 1, its usable flag is that); seconds it took, or -1 at the
 * deadline. */
static double wait_engine(int port, const char *url, const char *state, int usable,
                          double deadline)
{
    double start = mono_seconds();
    struct engine e;

    deadline *= slack();
    for (;;) {
        if (engine_get(port, url, &e) == 0 && strcmp(e.state, state) == 0 &&
            (usable < 0 || e.usable == usable))
            return mono_seconds() - start;
        if (mono_seconds() - start > deadline) {
            fprintf(stderr, "\n    %s: still '%s' (usable %d) after %.1fs, waiting for '%s'\n",
                    url, e.state, e.usable, deadline, state);
            return -1;
        }
        sleep_ms(20);
    }
}

static double wait_state(int port, const char *url, const char *state, double deadline)
{
    return wait_engine(port, url, state, -1, deadline);
}

/* A port that accepts connections (the kernel does) but never answers:
 * nothing ever calls accept(). */
static int blackhole(int *fd_out)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *fd_out = fd;
    return ntohs(a.sin_port);
}

/* Requests sent from threads, to have many in flight at once. */
struct shot {
    pthread_t t;
    int port;
    const char *model;
    const char *const *headers;
    long status;
    char backend[32];
};

static void *shoot(void *arg)
{
    struct shot *s = arg;
    struct resp r;

    if (http_raw(s->port, "POST", CHAT, chat_body(s->model), s->headers, 20000, &r) == 0)
        s->status = r.status;
    /* resp_header's static buffer is not for threads: look by hand */
    const char *h = r.headers ? strcasestr(r.headers, "\nX-Mock-Backend: ") : NULL;
    if (h != NULL)
        sscanf(h + 17, "%31[^\r\n]", s->backend);
    resp_free(&r);
    return NULL;
}

static void fire(struct shot *s, int n, int port, const char *model, const char *const *headers)
{
    for (int i = 0; i < n; i++) {
        s[i].port = port;
        s[i].model = model;
        s[i].headers = headers;
        s[i].status = 0;
        s[i].backend[0] = '\0';
        pthread_create(&s[i].t, NULL, shoot, &s[i]);
    }
}

/* Joins them; how many got `status`. */
static int land(struct shot *s, int n, long status)
{
    int got = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(s[i].t, NULL);
        got += s[i].status == status;
        if (s[i].status != status)
            fprintf(stderr, "\n    shot %d: status %ld, want %ld\n", i, s[i].status, status);
    }
    return got;
}

#define CHECK_RANGE(what, v, lo, hi)                                                   \
    do {                                                                               \
        double v_ = (v);                                                               \
        if (!(v_ >= (lo) && v_ <= (hi)))                                               \
            fprintf(stderr, "\n    %s = %.3f, want %.3f..%.3f\n", (what), v_,          \
                    (double)(lo), (double)(hi));                                       \
        CU_ASSERT_TRUE(v_ >= (lo) && v_ <= (hi));                                      \
    } while (0)

/* --- active probes: out, no traffic, back --- */

static void test_probe_outage_and_recovery(void)
{
    struct mock a, b;
    struct router rt;
    struct engine e;
    char yaml[1024], sample[256];
    double dt;
    int n0;

    CU_ASSERT_FATAL(mock_start(&a, "hp-a", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "hp-b", "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "health: [http_probe]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 200ms, timeout: 150ms, rise: 2, fall: 2}\n"
             "models:\n"
             "  m: {backends: [%s, %s]}\n",
             a.url, b.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);

    /* healthy at first, every field there */
    CU_ASSERT_EQUAL(engine_get(rt.port, a.url, &e), 0);
    CU_ASSERT_TRUE(e.has_all_fields);
    CU_ASSERT_STRING_EQUAL(e.state, "healthy");
    CU_ASSERT_TRUE(e.usable);
    CU_ASSERT_FALSE(e.has_last_error); /* null */
    CU_ASSERT_STRING_EQUAL(e.models, "m");
    CU_ASSERT_EQUAL(e.in_flight, 0);
    CU_ASSERT_TRUE(e.since > 1600000000LL && e.since <= (long long)time(NULL));

    /* /health fails: out after `fall` probes, 2 x 200 ms (+ jitter, slack) */
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{\"health_status\":500}"), 0);
    dt = wait_state(rt.port, a.url, "unhealthy", 3);
    CU_ASSERT_TRUE(dt >= 0);
    CHECK_RANGE("seconds to unhealthy", dt, 0.1, 1.0 * slack());
    CU_ASSERT_EQUAL(engine_get(rt.port, a.url, &e), 0);
    CU_ASSERT_FALSE(e.usable);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "answered 500"));
    CU_ASSERT_PTR_NULL(strstr(e.last_error, "\"")); /* plain text */
    CU_ASSERT_TRUE(e.since >= (long long)time(NULL) - 3);
    CU_ASSERT_EQUAL(engine_get(rt.port, b.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "healthy");

    /* /metrics agrees */
    snprintf(sample, sizeof sample, "switchyard_backend_up{backend=\"%s\",model=\"m\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 0);
    snprintf(sample, sizeof sample, "switchyard_backend_up{backend=\"%s\",model=\"m\"}", b.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 1);
    snprintf(sample, sizeof sample, "switchyard_backend_state_changes_total{backend=\"%s\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 1);
    snprintf(sample, sizeof sample, "switchyard_probe_latency_seconds_count{backend=\"%s\"}", a.url);
    CU_ASSERT_TRUE(metric_value(rt.port, sample, -1) >= 2);
    snprintf(sample, sizeof sample, "switchyard_probe_latency_seconds_count{backend=\"%s\"}", b.url);
    CU_ASSERT_TRUE(metric_value(rt.port, sample, -1) >= 1);

    /* no request reaches it while it is out; the client never notices */
    n0 = mock_requests(&a);
    for (int i = 0; i < 20; i++) {
        struct resp r;
        CU_ASSERT_EQUAL(chat(rt.port, "m", &r), 200);
        CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Mock-Backend") ? resp_header(&r, "X-Mock-Backend") : "", "hp-b");
        CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Attempts") ? resp_header(&r, "X-Switchyard-Attempts") : "", "1");
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(mock_requests(&a), n0);

    /* recovered: back after `rise` good probes, and gets traffic again */
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{}"), 0);
    dt = wait_state(rt.port, a.url, "healthy", 3);
    CU_ASSERT_TRUE(dt >= 0);
    CHECK_RANGE("seconds to healthy", dt, 0.1, 1.0 * slack());
    CU_ASSERT_EQUAL(engine_get(rt.port, a.url, &e), 0);
    CU_ASSERT_TRUE(e.usable);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "answered 500")); /* the last error stays */
    n0 = mock_requests(&a);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(chat_status(rt.port, "m"), 200);
    CU_ASSERT_TRUE(mock_requests(&a) - n0 >= 3);
    snprintf(sample, sizeof sample, "switchyard_backend_up{backend=\"%s\",model=\"m\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 1);
    snprintf(sample, sizeof sample, "switchyard_backend_state_changes_total{backend=\"%s\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 2);

    /* one log line per change, however many probes failed */
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, a.url, "-> unhealthy"), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, a.url, "unhealthy -> healthy"), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, b.url, "->"), 0);
    mock_stop(&a);
    mock_stop(&b);
}

/* --- passive: cooldown, trial, longer cooldown, recovery --- */

static void test_passive_cooldown_and_trial(void)
{
    static const char *const held[] = { NULL };
    struct mock c, d;
    struct router rt;
    struct engine e;
    struct shot shots[20];
    char yaml[1024];
    double t_eject = 0, dt, t_fire;
    int nc, ejected = 0;

    CU_ASSERT_FATAL(mock_start(&c, "pv-c", "p", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&d, "pv-d", "p", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "health: [passive]\n"
             "plugin_config:\n"
             "  passive: {consecutive: 3, cooldown: 1s, max_cooldown: 2s, min_requests: 1000}\n"
             "models:\n"
             "  p: {backends: [%s, %s]}\n",
             c.url, d.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);

    /* c answers 503 to live traffic (its /health is fine: nobody asks) */
    CU_ASSERT_EQUAL(mock_set_mode(&c, "{\"status\":503}"), 0);
    for (int i = 0; i < 20 && !ejected; i++) {
        t_eject = mono_seconds();
        CU_ASSERT_EQUAL(chat_status(rt.port, "p"), 200); /* retried on d */
        ejected = engine_get(rt.port, c.url, &e) == 0 && strcmp(e.state, "cooldown") == 0;
    }
    CU_ASSERT_FATAL(ejected);
    CU_ASSERT_EQUAL(mock_requests(&c), 3);
    CU_ASSERT_FALSE(e.usable);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "3 failed attempts in a row"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "503"));

    /* nothing reaches it during the cooldown */
    nc = mock_requests(&c);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(chat_status(rt.port, "p"), 200);
    CU_ASSERT_EQUAL(mock_requests(&c), nc);
    CU_ASSERT_TRUE(mono_seconds() - t_eject < 0.9 * slack());

    /* the cooldown ends (the state says so until the trial is judged) */
    CU_ASSERT_EQUAL(mock_set_mode(&c, "{\"status\":503,\"delay_ms\":300}"), 0);
    dt = wait_engine(rt.port, c.url, "cooldown", 1, 3);
    CU_ASSERT_TRUE(dt >= 0);
    CHECK_RANGE("cooldown seconds", mono_seconds() - t_eject, 0.8, 1.6 * slack());

    /* 20 requests at once: exactly one trial reaches c (held 300 ms, fails) */
    t_fire = mono_seconds();
    fire(shots, 20, rt.port, "p", held);
    CU_ASSERT_EQUAL(land(shots, 20, 200), 20);
    CU_ASSERT_EQUAL(mock_requests(&c), nc + 1);
    CU_ASSERT_EQUAL(engine_get(rt.port, c.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "cooldown");
    CU_ASSERT_FALSE(e.usable);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "trial request failed"));

    /* the failed trial doubled the cooldown: 2 s from the trial's end */
    CU_ASSERT_EQUAL(mock_set_mode(&c, "{}"), 0);
    dt = wait_engine(rt.port, c.url, "cooldown", 1, 4);
    CU_ASSERT_TRUE(dt >= 0);
    CHECK_RANGE("second cooldown seconds", mono_seconds() - t_fire, 1.9, 3.2 * slack());

    /* the next trial succeeds: healthy, and c gets its share again */
    nc = mock_requests(&c);
    for (int i = 0; i < 10 && mock_requests(&c) == nc; i++)
        CU_ASSERT_EQUAL(chat_status(rt.port, "p"), 200);
    CU_ASSERT_EQUAL(mock_requests(&c), nc + 1);
    CU_ASSERT_EQUAL(engine_get(rt.port, c.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "healthy");
    CU_ASSERT_TRUE(e.usable);
    nc = mock_requests(&c);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(chat_status(rt.port, "p"), 200);
    CU_ASSERT_TRUE(mock_requests(&c) - nc >= 4);

    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    /* a renewed cooldown is no change of state: one line each way */
    CU_ASSERT_EQUAL(router_log_lines(&rt, c.url, "healthy -> cooldown"), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, c.url, "cooldown -> healthy"), 1);
    mock_stop(&c);
    mock_stop(&d);
}

static void test_passive_retry_after(void)
{
    struct mock c, d;
    struct router rt;
    struct engine e;
    char yaml[1024];
    double t0 = 0, dt;

    CU_ASSERT_FATAL(mock_start(&c, "ra-c", "r", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&d, "ra-d", "r", NULL) == 0);
    /* a base cooldown of 20 s: a ~2 s one can only come from Retry-After */
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "health: [passive]\n"
             "plugin_config:\n"
             "  passive: {consecutive: 1, cooldown: 20s, max_cooldown: 60s}\n"
             "models:\n"
             "  r: {backends: [%s, %s]}\n",
             c.url, d.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    CU_ASSERT_EQUAL(mock_set_mode(&c, "{\"status\":429,\"retry_after\":\"2\"}"), 0);
    for (int i = 0; i < 4 && mock_requests(&c) == 0; i++) {
        t0 = mono_seconds();
        CU_ASSERT_EQUAL(chat_status(rt.port, "r"), 200); /* retried on d */
    }
    CU_ASSERT_EQUAL_FATAL(mock_requests(&c), 1);
    CU_ASSERT_EQUAL(engine_get(rt.port, c.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "cooldown");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "429"));
    dt = wait_engine(rt.port, c.url, "cooldown", 1, 5);
    CU_ASSERT_TRUE(dt >= 0);
    CHECK_RANGE("Retry-After cooldown seconds", mono_seconds() - t0, 1.8, 3.0 * slack());
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&c);
    mock_stop(&d);
}

/* --- probes that hang never slow a client down --- */

static void test_slow_probes_do_not_delay_clients(void)
{
    struct mock f;
    struct router rt;
    struct engine e;
    char yaml[2048], bh_url[8][64];
    int bh_fd = -1, bh_port = blackhole(&bh_fd);
    double worst = 0, start;
    int n = 0;

    CU_ASSERT_FATAL(bh_port > 0);
    CU_ASSERT_FATAL(mock_start(&f, "sp-f", "fast", NULL) == 0);
    /* 8 backends behind a port that never answers: 8 probes stuck at once */
    for (int i = 0; i < 8; i++)
        snprintf(bh_url[i], sizeof bh_url[i], "http://127.0.0.1:%d/s%d", bh_port, i);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "health: [http_probe]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 100ms, timeout: 1s, fall: 1}\n"
             "models:\n"
             "  fast: {backends: [%s]}\n"
             "  stuck: {backends: [%s, %s, %s, %s, %s, %s, %s, %s]}\n",
             f.url, bh_url[0], bh_url[1], bh_url[2], bh_url[3], bh_url[4], bh_url[5],
             bh_url[6], bh_url[7]);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    /* one worker: were probes run there, requests would wait for them */
    start = mono_seconds();
    while (mono_seconds() - start < 2.5) {
        struct resp r;
        CU_ASSERT_EQUAL(chat(rt.port, "fast", &r), 200);
        if (r.total > worst)
            worst = r.total;
        resp_free(&r);
        n++;
    }
    CU_ASSERT_TRUE(n >= 10);
    CHECK_RANGE("slowest request seconds", worst, 0, 0.25 * slack());
    /* the probes did time out meanwhile */
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(engine_get(rt.port, bh_url[i], &e), 0);
        CU_ASSERT_STRING_EQUAL(e.state, "unhealthy");
        CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "timeout"));
    }
    CU_ASSERT_EQUAL(engine_get(rt.port, f.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "healthy");
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    close(bh_fd);
    mock_stop(&f);
}

/* --- a model that is all down: fallback at once, or 503 at once --- */

static void test_all_down_falls_back_at_once(void)
{
    static const char *const sick[] = { "--health-status", "500", NULL };
    struct mock f1, f2, f3;
    struct router rt;
    struct resp r;
    char yaml[1024];

    CU_ASSERT_FATAL(mock_start(&f1, "fb-big", "big", sick) == 0);
    CU_ASSERT_FATAL(mock_start(&f2, "fb-small", "small", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&f3, "fb-lonely", "lonely", sick) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "health: [http_probe]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 100ms, timeout: 2s, rise: 1, fall: 1}\n"
             "models:\n"
             "  big: {backends: [%s], fallback_model: small}\n"
             "  small: {backends: [%s]}\n"
             "  lonely: {backends: [%s]}\n",
             f1.url, f2.url, f3.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    CU_ASSERT_TRUE(wait_state(rt.port, f1.url, "unhealthy", 3) >= 0);
    CU_ASSERT_TRUE(wait_state(rt.port, f3.url, "unhealthy", 3) >= 0);

    CU_ASSERT_EQUAL(chat(rt.port, "big", &r), 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Model") ? resp_header(&r, "X-Switchyard-Model") : "", "small");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Fallback") ? resp_header(&r, "X-Switchyard-Fallback") : "", "big>small");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Attempts") ? resp_header(&r, "X-Switchyard-Attempts") : "", "1");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Mock-Backend") ? resp_header(&r, "X-Mock-Backend") : "", "fb-small");
    CHECK_RANGE("fallback seconds", r.total, 0, 0.3 * slack()); /* the probe timeout is 2 s */
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&f1), 0);

    CU_ASSERT_EQUAL(chat(rt.port, "lonely", &r), 503);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "Retry-After"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"error\""));
    CU_ASSERT_PTR_NULL(strstr(r.body, "127.0.0.1")); /* no backend address */
    CHECK_RANGE("503 seconds", r.total, 0, 0.3 * slack());
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&f3), 0);

    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&f1);
    mock_stop(&f2);
    mock_stop(&f3);
}

/* --- vllm_router's flags: inference probes of the model's type --- */

static int last_request(const struct mock *m, char *method, char *uri, json_object **body)
{
    struct resp r;
    json_object *root, *v;
    int rc = -1;

    *body = NULL;
    if (mock_last(m, &r) == 0 && r.status == 200 && (root = json_tokener_parse(r.body)) != NULL) {
        if (json_object_object_get_ex(root, "method", &v))
            snprintf(method, 16, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(root, "uri", &v))
            snprintf(uri, 128, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(root, "body", &v))
            *body = json_tokener_parse(json_object_get_string(v));
        rc = *body != NULL ? 0 : -1;
        json_object_put(root);
    }
    resp_free(&r);
    return rc;
}

static void test_static_flags_probe_with_inference(void)
{
    struct mock g1, g2;
    struct router rt;
    struct engine e;
    char backends[256], method[16] = "", uri[128] = "";
    json_object *body, *v;
    double start;
    int c0, c1;

    CU_ASSERT_FATAL(mock_start(&g1, "st-chat", "chatm", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&g2, "st-emb", "embm", NULL) == 0);
    snprintf(backends, sizeof backends, "%s,%s", g1.url, g2.url);
    const char *const flags[] = { "--static-backends", backends,
                                  "--static-models", "chatm,embm",
                                  "--static-model-types", "chat,embeddings",
                                  "--static-backend-health-checks",
                                  "--static-backend-health-check-interval", "0.2",
                                  "--workers", "1", NULL };
    CU_ASSERT_FATAL(router_start(&rt, "", flags) == 0);
    /* no client traffic at all: whatever the mocks count are probes */
    start = mono_seconds();
    while ((mock_requests(&g1) < 2 || mock_requests(&g2) < 2) && mono_seconds() - start < 3 * slack())
        sleep_ms(20);
    CU_ASSERT_TRUE(mock_requests(&g1) >= 2);
    CU_ASSERT_TRUE(mock_requests(&g2) >= 2);

    CU_ASSERT_EQUAL_FATAL(last_request(&g1, method, uri, &body), 0);
    CU_ASSERT_STRING_EQUAL(method, "POST");
    CU_ASSERT_STRING_EQUAL(uri, "/v1/chat/completions");
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "model", &v) &&
                   strcmp(json_object_get_string(v), "chatm") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "max_tokens", &v) && json_object_get_int(v) == 1);
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "messages", &v) &&
                   json_object_is_type(v, json_type_array));
    json_object_put(body);

    CU_ASSERT_EQUAL_FATAL(last_request(&g2, method, uri, &body), 0);
    CU_ASSERT_STRING_EQUAL(method, "POST");
    CU_ASSERT_STRING_EQUAL(uri, "/v1/embeddings");
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "model", &v) &&
                   strcmp(json_object_get_string(v), "embm") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "input", &v));
    json_object_put(body);

    /* every 0.2 s (+-10% jitter): about 5 a second */
    c0 = mock_requests(&g1);
    sleep_ms(1000);
    c1 = mock_requests(&g1);
    CHECK_RANGE("inference probes per second", c1 - c0, 3, 7);

    /* a failing inference answer takes the backend out (default fall: 2) */
    CU_ASSERT_EQUAL(mock_set_mode(&g1, "{\"status\":503}"), 0);
    CU_ASSERT_TRUE(wait_state(rt.port, g1.url, "unhealthy", 3) >= 0);
    CU_ASSERT_EQUAL(engine_get(rt.port, g1.url, &e), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "answered 503"));
    CU_ASSERT_EQUAL(engine_get(rt.port, g2.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "healthy");
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&g1);
    mock_stop(&g2);
}

/* The last request a mock saw: its path, Content-Type and raw body
 * (malloc'd: a form's WAV holds NUL bytes). */
static int last_raw(const struct mock *m, char *uri, char *ctype, char **body, size_t *len)
{
    struct resp r;
    json_object *root, *v, *h;
    int rc = -1;

    *body = NULL;
    *len = 0;
    uri[0] = ctype[0] = '\0';
    if (mock_last(m, &r) == 0 && r.status == 200 && (root = json_tokener_parse(r.body)) != NULL) {
        if (json_object_object_get_ex(root, "uri", &v))
            snprintf(uri, 128, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(root, "headers", &h) &&
            json_object_object_get_ex(h, "Content-Type", &v))
            snprintf(ctype, 128, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(root, "body", &v) && (*len = (size_t)json_object_get_string_len(v)) > 0 &&
            (*body = malloc(*len + 1)) != NULL) {
            memcpy(*body, json_object_get_string(v), *len);
            (*body)[*len] = '\0'; /* also read as a string */
            rc = 0;
        }
        json_object_put(root);
    }
    resp_free(&r);
    return rc;
}

/* vllm_router's transcription, vision and messages types: each probe as
 * its backend sees it, and answers of 200 keep the backends in. */
static void test_static_flags_probe_other_types(void)
{
    struct mock tr, vi, me;
    struct router rt;
    struct engine e;
    char backends[256], uri[128], ctype[128], want[256];
    char *raw;
    size_t len;
    json_object *body, *v, *msg, *part;
    double start;

    CU_ASSERT_FATAL(mock_start(&tr, "st-tr", "whisper", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&vi, "st-vi", "llava", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&me, "st-me", "claude", NULL) == 0);
    snprintf(backends, sizeof backends, "%s,%s,%s", tr.url, vi.url, me.url);
    const char *const flags[] = { "--static-backends", backends,
                                  "--static-models", "whisper,llava,claude",
                                  "--static-model-types", "transcription,vision,messages",
                                  "--static-backend-health-checks",
                                  "--static-backend-health-check-interval", "0.1",
                                  "--workers", "1", NULL };
    CU_ASSERT_FATAL(router_start(&rt, "", flags) == 0);
    /* no client traffic: what the mocks count are probes; 3 each is past
     * fall (2), so a probe the mocks refused would show in /engines */
    start = mono_seconds();
    while ((mock_requests(&tr) < 3 || mock_requests(&vi) < 3 || mock_requests(&me) < 3) &&
           mono_seconds() - start < 3 * slack())
        sleep_ms(20);
    CU_ASSERT_TRUE(mock_requests(&tr) >= 3);
    CU_ASSERT_TRUE(mock_requests(&vi) >= 3);
    CU_ASSERT_TRUE(mock_requests(&me) >= 3);
    const struct mock *const all[] = { &tr, &vi, &me };
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(engine_get(rt.port, all[i]->url, &e), 0);
        CU_ASSERT_STRING_EQUAL(e.state, "healthy");
    }

    /* transcription: a form with the model and empty.wav, 0.1 s of silence */
    CU_ASSERT_EQUAL_FATAL(last_raw(&tr, uri, ctype, &raw, &len), 0);
    CU_ASSERT_STRING_EQUAL(uri, "/v1/audio/transcriptions");
    const char *b = strstr(ctype, "; boundary=");
    CU_ASSERT_EQUAL(strncmp(ctype, "multipart/form-data; boundary=", 30), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    b += strlen("; boundary=");
    snprintf(want, sizeof want, "--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
             "whisper\r\n--%s\r\n", b, b);
    CU_ASSERT_TRUE(len > strlen(want) && memcmp(raw, want, strlen(want)) == 0);
    static const char file_head[] = "Content-Disposition: form-data; name=\"file\"; "
                                    "filename=\"empty.wav\"\r\nContent-Type: audio/wav\r\n\r\n";
    const char *wav = memmem(raw, len, file_head, sizeof file_head - 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wav);
    wav += sizeof file_head - 1;
    snprintf(want, sizeof want, "\r\n--%s--\r\n", b);
    /* 44 bytes of header, 3200 of silence, the form's end */
    CU_ASSERT_EQUAL_FATAL((size_t)(raw + len - wav), 44 + 3200 + strlen(want));
    CU_ASSERT_EQUAL(memcmp(wav, "RIFF", 4), 0);
    CU_ASSERT_EQUAL(memcmp(wav + 8, "WAVEfmt ", 8), 0);
    CU_ASSERT_EQUAL(memcmp(wav + 36, "data", 4), 0);
    const unsigned char *u = (const unsigned char *)wav;
    CU_ASSERT_EQUAL(u[4] | u[5] << 8 | u[6] << 16 | u[7] << 24, 36 + 3200);      /* RIFF size */
    CU_ASSERT_EQUAL(u[22] | u[23] << 8, 1);                                        /* mono */
    CU_ASSERT_EQUAL(u[24] | u[25] << 8 | u[26] << 16 | u[27] << 24, 16000);      /* rate */
    CU_ASSERT_EQUAL(u[34] | u[35] << 8, 16);                                       /* bits */
    CU_ASSERT_EQUAL(u[40] | u[41] << 8 | u[42] << 16 | u[43] << 24, 3200);       /* data */
    size_t zeros = 0;
    while (zeros < 3200 && u[44 + zeros] == 0)
        zeros++;
    CU_ASSERT_EQUAL(zeros, 3200);
    CU_ASSERT_EQUAL(memcmp(wav + 44 + 3200, want, strlen(want)), 0);
    free(raw);

    /* vision: a chat completion with a text part and a data-URL image */
    CU_ASSERT_EQUAL_FATAL(last_raw(&vi, uri, ctype, &raw, &len), 0);
    CU_ASSERT_STRING_EQUAL(uri, "/v1/chat/completions");
    CU_ASSERT_STRING_EQUAL(ctype, "application/json");
    body = json_tokener_parse(raw);
    free(raw);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "model", &v) &&
                   strcmp(json_object_get_string(v), "llava") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "max_tokens", &v) && json_object_get_int(v) == 1);
    CU_ASSERT_FATAL(json_object_object_get_ex(body, "messages", &v) &&
                    (msg = json_object_array_get_idx(v, 0)) != NULL);
    CU_ASSERT_TRUE(json_object_object_get_ex(msg, "role", &v) &&
                   strcmp(json_object_get_string(v), "user") == 0);
    CU_ASSERT_FATAL(json_object_object_get_ex(msg, "content", &v) &&
                    json_object_is_type(v, json_type_array) && json_object_array_length(v) == 2);
    part = json_object_array_get_idx(v, 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(part, "type", &v) &&
                   strcmp(json_object_get_string(v), "text") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(part, "text", &v));
    CU_ASSERT_TRUE(json_object_object_get_ex(msg, "content", &v));
    part = json_object_array_get_idx(v, 1);
    CU_ASSERT_TRUE(json_object_object_get_ex(part, "type", &v) &&
                   strcmp(json_object_get_string(v), "image_url") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(part, "image_url", &v) &&
                   json_object_object_get_ex(v, "url", &v) &&
                   strncmp(json_object_get_string(v), "data:image/png;base64,iVBORw0KGgo", 33) == 0);
    json_object_put(body);

    /* messages: Anthropic's shape on /v1/messages */
    CU_ASSERT_EQUAL_FATAL(last_raw(&me, uri, ctype, &raw, &len), 0);
    CU_ASSERT_STRING_EQUAL(uri, "/v1/messages");
    CU_ASSERT_STRING_EQUAL(ctype, "application/json");
    body = json_tokener_parse(raw);
    free(raw);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "model", &v) &&
                   strcmp(json_object_get_string(v), "claude") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(body, "max_tokens", &v) && json_object_get_int(v) == 1);
    CU_ASSERT_FATAL(json_object_object_get_ex(body, "messages", &v) &&
                    (msg = json_object_array_get_idx(v, 0)) != NULL);
    CU_ASSERT_TRUE(json_object_object_get_ex(msg, "role", &v) &&
                   strcmp(json_object_get_string(v), "user") == 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(msg, "content", &v) &&
                   strcmp(json_object_get_string(v), "hi") == 0);
    json_object_put(body);

    /* a refused form takes the transcription backend out */
    CU_ASSERT_EQUAL(mock_set_mode(&tr, "{\"status\":400}"), 0);
    CU_ASSERT_TRUE(wait_state(rt.port, tr.url, "unhealthy", 3) >= 0);
    CU_ASSERT_EQUAL(engine_get(rt.port, tr.url, &e), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.last_error, "/v1/audio/transcriptions answered 400"));
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&tr);
    mock_stop(&vi);
    mock_stop(&me);
}

/* --check-config takes the new types, and http_probe builds their probes
 * there (it refuses a model name it cannot quote) */
static void test_check_config_other_types(void)
{
    const char *const ok[] = { "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR,
                               "--static-backends", "http://127.0.0.1:9,http://127.0.0.1:10",
                               "--static-models", "whisper,llava",
                               "--static-model-types", "transcription,vision",
                               "--static-backend-health-checks", NULL };
    const char *const quoted[] = { "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR,
                                   "--static-backends", "http://127.0.0.1:9",
                                   "--static-models", "wh\"isper",
                                   "--static-model-types", "transcription",
                                   "--static-backend-health-checks", NULL };
    char *out = NULL;

    CU_ASSERT_EQUAL(router_run(ok, &out), 0);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "configuration OK (2 models, 2 backends"));
    free(out);
    out = NULL;
    CU_ASSERT_EQUAL(router_run(quoted, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "cannot build an inference probe for model"));
    free(out);
}

/* --- probes keep their pace under load --- */

static void test_probes_keep_interval_under_load(void)
{
    static const char *const slow[] = { "X-Mock-Delay-Ms: 3000", NULL };
    enum { N = 120 };
    struct mock l, p;
    struct router rt;
    struct engine e;
    static struct shot shots[N];
    char yaml[1024];
    double start, t0;
    int c0, c1, peak = 0;

    CU_ASSERT_FATAL(mock_start(&l, "ld-load", "load", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&p, "ld-probed", "idle", NULL) == 0);
    /* inference probes: the mock counts them; nobody else talks to p */
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "health: [http_probe]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 200ms, timeout: 1s, probe: inference}\n"
             "models:\n"
             "  load: {backends: [%s]}\n"
             "  idle: {backends: [%s]}\n",
             l.url, p.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    /* the header holds client requests 3 s; the probes to l are not held */
    fire(shots, N, rt.port, "load", slow);
    start = mono_seconds();
    while (mono_seconds() - start < 2 * slack()) {
        if (engine_get(rt.port, l.url, &e) == 0 && e.in_flight > peak)
            peak = e.in_flight;
        if (peak >= 100)
            break;
        sleep_ms(10);
    }
    CU_ASSERT_TRUE(peak >= 100);
    t0 = mono_seconds();
    c0 = mock_requests(&p);
    sleep_ms(1500);
    c1 = mock_requests(&p);
    /* still in flight the whole time: the measure was under load */
    CU_ASSERT_EQUAL(engine_get(rt.port, l.url, &e), 0);
    CU_ASSERT_TRUE(e.in_flight >= 100 || mono_seconds() - start > 3);
    /* 5 a second expected; a wide band, so a loaded CI machine does not
     * fail it, yet a probe loop held up by the load (0-2 a second) does */
    CHECK_RANGE("probes per second under load", (c1 - c0) / (mono_seconds() - t0), 2.5, 7.5);
    CU_ASSERT_EQUAL(engine_get(rt.port, p.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "healthy");
    CU_ASSERT_EQUAL(engine_get(rt.port, l.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "healthy");
    CU_ASSERT_EQUAL(land(shots, N, 200), N);
    CU_ASSERT_EQUAL(engine_get(rt.port, l.url, &e), 0);
    CU_ASSERT_EQUAL(e.in_flight, 0);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&l);
    mock_stop(&p);
}

/* --- both plugins: the probe's verdict holds --- */

/* A request already in flight to a backend that the probe then takes out
 * fails late; passive must not turn "unhealthy" into a cooldown whose
 * trial would bring the backend back while /health still fails. */
static void test_probe_verdict_holds_against_passive(void)
{
    static const char *const failing[] = { "X-Mock-Delay-Ms: 800", "X-Mock-Status: 503", NULL };
    struct mock x;
    struct router rt;
    struct engine e;
    struct shot shot;
    char yaml[1024];
    int nx;

    CU_ASSERT_FATAL(mock_start(&x, "pp-x", "xo", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "health: [http_probe, passive]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 100ms, timeout: 500ms, rise: 1, fall: 1}\n"
             "  passive: {consecutive: 1, cooldown: 200ms, max_cooldown: 200ms}\n"
             "models:\n"
             "  xo: {backends: [%s]}\n",
             x.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    fire(&shot, 1, rt.port, "xo", failing);
    sleep_ms(100);
    CU_ASSERT_EQUAL(mock_set_mode(&x, "{\"health_status\":500}"), 0);
    CU_ASSERT_TRUE(wait_state(rt.port, x.url, "unhealthy", 2) >= 0);
    land(&shot, 1, 503);
    /* longer than passive's cooldown: no trial, it stays out */
    for (int i = 0; i < 6; i++) {
        sleep_ms(100);
        CU_ASSERT_EQUAL(engine_get(rt.port, x.url, &e), 0);
        CU_ASSERT_STRING_EQUAL(e.state, "unhealthy");
    }
    nx = mock_requests(&x);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(chat_status(rt.port, "xo"), 503);
    CU_ASSERT_EQUAL(mock_requests(&x), nx);
    CU_ASSERT_EQUAL(engine_get(rt.port, x.url, &e), 0);
    CU_ASSERT_STRING_EQUAL(e.state, "unhealthy");
    /* /health recovers: so does the backend */
    CU_ASSERT_EQUAL(mock_set_mode(&x, "{}"), 0);
    CU_ASSERT_TRUE(wait_state(rt.port, x.url, "healthy", 2) >= 0);
    CU_ASSERT_EQUAL(chat_status(rt.port, "xo"), 200);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&x);
}

/* --- reloads (SIGHUP) --- */

/* Wait until the log has `n` lines with `text`; 0, or -1 at the deadline. */
static int wait_log(const struct router *rt, const char *text, int n, double deadline)
{
    double start = mono_seconds();
    while (router_log_lines(rt, text, NULL) < n) {
        if (mono_seconds() - start > deadline * slack())
            return -1;
        sleep_ms(20);
    }
    return 0;
}

/* A backend that was out when the configuration was reloaded comes back
 * when its probes pass again: the new probe instance starts from the state
 * carried over, not from "up". */
static void test_reload_keeps_probe_state(void)
{
    struct mock a, b;
    struct router rt;
    char yaml[1024];

    CU_ASSERT_FATAL(mock_start(&a, "rl-a", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "rl-b", "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "health: [http_probe]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 100ms, timeout: 500ms, rise: 2, fall: 4}\n"
             "models:\n"
             "  m: {backends: [%s, %s]}\n",
             a.url, b.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{\"health_status\":503}"), 0);
    CU_ASSERT_TRUE(wait_state(rt.port, a.url, "unhealthy", 3) >= 0);
    kill(rt.pid, SIGHUP);
    CU_ASSERT_EQUAL(wait_log(&rt, "configuration reloaded", 1, 5), 0);
    /* still out after the reload; it recovers before the new instance
     * could have seen `fall` failures of its own */
    CU_ASSERT_TRUE(wait_state(rt.port, a.url, "unhealthy", 0.1) >= 0);
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{}"), 0);
    CU_ASSERT_TRUE(wait_state(rt.port, a.url, "healthy", 3) >= 0);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, a.url, "-> unhealthy"), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, a.url, "unhealthy -> healthy"), 1);
    mock_stop(&a);
    mock_stop(&b);
}

/* Reloads back to back start and stop health threads in quick succession:
 * the router keeps serving and reloading, and stops on SIGTERM. */
static void test_quick_reloads_do_not_hang(void)
{
    struct mock a;
    struct router rt;
    char yaml[1024];

    CU_ASSERT_FATAL(mock_start(&a, "qr-a", "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "health: [http_probe, passive]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 100ms, timeout: 500ms}\n"
             "models:\n"
             "  m: {backends: [%s]}\n",
             a.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    for (int i = 0; i < 10; i++) {
        kill(rt.pid, SIGHUP);
        kill(rt.pid, SIGHUP);
        sleep_ms(20);
    }
    /* signals may merge: at least the last one is served */
    CU_ASSERT_EQUAL(wait_log(&rt, "configuration reloaded", 1, 5), 0);
    sleep_ms(200);
    int n = router_log_lines(&rt, "configuration reloaded", NULL);
    kill(rt.pid, SIGHUP);
    CU_ASSERT_EQUAL(wait_log(&rt, "configuration reloaded", n + 1, 5), 0);
    CU_ASSERT_EQUAL(chat_status(rt.port, "m"), 200);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

/* A reload that drops the active checks does not leave a backend out for
 * good: nothing would ever bring it back. */
static void test_reload_without_probes_frees_backend(void)
{
    struct mock a;
    struct router rt;
    struct engine e;
    char yaml[1024];
    FILE *f;

    CU_ASSERT_FATAL(mock_start(&a, "rd-a", "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "health: [http_probe, passive]\n"
             "plugin_config:\n"
             "  http_probe: {interval: 100ms, timeout: 500ms, fall: 1}\n"
             "models:\n"
             "  m: {backends: [%s]}\n",
             a.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{\"health_status\":503}"), 0);
    CU_ASSERT_TRUE(wait_state(rt.port, a.url, "unhealthy", 3) >= 0);
    CU_ASSERT_EQUAL(chat_status(rt.port, "m"), 503);
    /* same file, passive only */
    f = fopen(rt.config, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "listen: 127.0.0.1:%d\nhealth: [passive]\nmodels:\n  m: {backends: [%s]}\n",
            rt.port, a.url);
    fclose(f);
    kill(rt.pid, SIGHUP);
    CU_ASSERT_EQUAL(wait_log(&rt, "configuration reloaded", 1, 5), 0);
    CU_ASSERT_EQUAL(engine_get(rt.port, a.url, &e), 0);
    CU_ASSERT_TRUE(e.usable);
    CU_ASSERT_EQUAL(chat_status(rt.port, "m"), 200);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

/* Without health plugins /engines says so. */
static void test_engines_unchecked_without_health(void)
{
    struct mock m;
    struct router rt;
    struct engine e;
    char yaml[512];

    CU_ASSERT_FATAL(mock_start(&m, "nh-m", "nh", NULL) == 0);
    snprintf(yaml, sizeof yaml, "models:\n  nh: {backends: [%s]}\n", m.url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, NULL) == 0);
    CU_ASSERT_EQUAL(engine_get(rt.port, m.url, &e), 0);
    CU_ASSERT_TRUE(e.has_all_fields);
    CU_ASSERT_STRING_EQUAL(e.state, "unchecked");
    CU_ASSERT_TRUE(e.usable);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&m);
}

void register_health_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e health", NULL, NULL);
    CU_add_test(s, "probe outage and recovery", test_probe_outage_and_recovery);
    CU_add_test(s, "passive cooldown and trial", test_passive_cooldown_and_trial);
    CU_add_test(s, "passive Retry-After", test_passive_retry_after);
    CU_add_test(s, "slow probes do not delay clients", test_slow_probes_do_not_delay_clients);
    CU_add_test(s, "all down falls back at once", test_all_down_falls_back_at_once);
    CU_add_test(s, "static flags probe with inference", test_static_flags_probe_with_inference);
    CU_add_test(s, "static flags probe transcription, vision and messages",
                test_static_flags_probe_other_types);
    CU_add_test(s, "--check-config with transcription and vision", test_check_config_other_types);
    CU_add_test(s, "probes keep interval under load", test_probes_keep_interval_under_load);
    CU_add_test(s, "probe verdict holds against passive", test_probe_verdict_holds_against_passive);
    CU_add_test(s, "engines unchecked without health", test_engines_unchecked_without_health);
    CU_add_test(s, "reload keeps probe state", test_reload_keeps_probe_state);
    CU_add_test(s, "quick reloads do not hang", test_quick_reloads_do_not_hang);
    CU_add_test(s, "reload without probes frees backend", test_reload_without_probes_frees_backend);
}
