/* The routing plugins as a client sees them: sticky sessions, load-aware
 * picks next to slow streams, prefix affinity of a conversation, and the
 * vllm_router flags that select them. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define NMOCKS 3

static struct mock mk[NMOCKS];
static const char *const mock_names[NMOCKS] = { "r-one", "r-two", "r-three" };

static int setup_suite(void)
{
    for (int i = 0; i < NMOCKS; i++)
        if (mock_start(&mk[i], mock_names[i], "chat,slow", NULL) != 0)
            return -1;
    return 0;
}

static int teardown_suite(void)
{
    for (int i = 0; i < NMOCKS; i++)
        mock_stop(&mk[i]);
    return 0;
}

/* The mock that answered (by X-Mock-Backend), or -1. */
static int answered_by(const struct resp *r)
{
    const char *name = resp_header(r, "X-Mock-Backend");
    for (int i = 0; name != NULL && i < NMOCKS; i++)
        if (strcmp(name, mock_names[i]) == 0)
            return i;
    return -1;
}

/* POST a chat request for `model`; the mock that answered, or -1. */
static int chat(int port, const char *model, const char *const *headers)
{
    char body[256];
    struct resp r;
    int who = -1;

    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
    if (http_post(port, "/v1/chat/completions", body, headers, &r) == 0 && r.status == 200)
        who = answered_by(&r);
    resp_free(&r);
    return who;
}

/* Sessions keyed by X-Session-Id: each key sticks to one backend, the keys
 * spread over all three, keyless requests still get served. */
static void check_sticky(int port)
{
    int count[NMOCKS] = { 0 }, sticky = 1, spread = 0;
    char h[64];
    const char *headers[] = { h, NULL };

    for (int k = 0; k < 40; k++) {
        snprintf(h, sizeof h, "X-Session-Id: session-%d-of-the-test", k);
        int first = chat(port, "chat", headers);
        CU_ASSERT_TRUE_FATAL(first >= 0);
        count[first]++;
        for (int i = 0; i < 3; i++)
            sticky &= chat(port, "chat", headers) == first;
    }
    CU_ASSERT_TRUE(sticky);
    for (int i = 0; i < NMOCKS; i++)
        CU_ASSERT_TRUE(count[i] >= 2);

    /* no key: the next plugin of the chain (least_loaded) spreads them */
    int seen[NMOCKS] = { 0 };
    for (int i = 0; i < 12; i++) {
        int who = chat(port, "chat", NULL);
        CU_ASSERT_TRUE_FATAL(who >= 0);
        seen[who]++;
    }
    for (int i = 0; i < NMOCKS; i++)
        spread += seen[i] > 0;
    CU_ASSERT_TRUE(spread >= 2);
}

static void test_sticky_sessions(void)
{
    struct router rt;
    char yaml[1024];

    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "routing: [session, least_loaded]\n"
             "plugin_config:\n"
             "  session: {key: X-Session-Id}\n"
             "models:\n"
             "  chat: {backends: [%s, %s, %s]}\n",
             mk[0].url, mk[1].url, mk[2].url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    check_sticky(rt.port);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}

static void test_cli_session_flags(void)
{
    struct router rt;
    char backends[256];

    snprintf(backends, sizeof backends, "%s,%s,%s", mk[0].url, mk[1].url, mk[2].url);
    const char *extra[] = { "--static-backends", backends, "--static-models", "chat,chat,chat",
                            "--routing-logic", "session", "--session-key", "X-Session-Id",
                            NULL };
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, "workers: 2\n", extra), 0);
    check_sticky(rt.port);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}

static void test_cli_routing_logic_names(void)
{
    static const char *const logic[] = { "roundrobin", "session", "least_loaded", "prefixaware" };
    char *out = NULL;

    for (size_t i = 0; i < sizeof logic / sizeof logic[0]; i++) {
        const char *args[] = { "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR,
                               "--static-backends", "http://127.0.0.1:9", "--static-models", "m",
                               "--routing-logic", logic[i], "--session-key", "user", NULL };
        CU_ASSERT_EQUAL(router_run(args, &out), 0);
        free(out);
    }
    /* session without its key: refused at start, saying which setting */
    const char *args[] = { "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR,
                           "--static-backends", "http://127.0.0.1:9", "--static-models", "m",
                           "--routing-logic", "session", NULL };
    CU_ASSERT_EQUAL(router_run(args, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "session.key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--session-key"));
    free(out);
}

/* A streaming request that takes a while, in its own thread. */
struct stream {
    pthread_t t;
    int port;
    long status;
    int who;
};

static void *stream_run(void *arg)
{
    struct stream *s = arg;
    struct resp r;
    const char *h[] = { "X-Mock-Chunks: 15", "X-Mock-Chunk-Delay-Ms: 100", NULL };

    s->status = -1;
    s->who = -1;
    if (http_post(s->port, "/v1/chat/completions",
                  "{\"model\":\"slow\",\"stream\":true,\"messages\":[]}", h, &r) == 0) {
        s->status = r.status;
        s->who = answered_by(&r);
    }
    resp_free(&r);
    return NULL;
}

/* Backend r-one serves two models; three slow streams of "slow" keep it
 * busy, so least_loaded sends "chat" (r-one, r-two) to r-two meanwhile. */
static void test_least_loaded_avoids_busy_backend(void)
{
    struct router rt;
    struct stream st[3];
    char yaml[1024];

    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "routing: least_loaded\n"
             "models:\n"
             "  slow: {backends: [%s]}\n"
             "  chat: {backends: [%s, %s]}\n",
             mk[0].url, mk[0].url, mk[1].url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);

    /* idle: both get requests */
    int seen[NMOCKS] = { 0 };
    for (int i = 0; i < 8; i++) {
        int who = chat(rt.port, "chat", NULL);
        CU_ASSERT_TRUE_FATAL(who == 0 || who == 1);
        seen[who]++;
    }
    CU_ASSERT_TRUE(seen[0] >= 2 && seen[1] >= 2);

    int before = mock_requests(&mk[0]);
    for (int i = 0; i < 3; i++) {
        st[i].port = rt.port;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&st[i].t, NULL, stream_run, &st[i]), 0);
    }
    /* wait until r-one has all three */
    for (int i = 0; i < 300 && mock_requests(&mk[0]) < before + 3; i++)
        sleep_ms(10);
    CU_ASSERT_EQUAL(mock_requests(&mk[0]), before + 3);

    int to_two = 0;
    for (int i = 0; i < 8; i++)
        to_two += chat(rt.port, "chat", NULL) == 1;
    CU_ASSERT_EQUAL(to_two, 8);

    for (int i = 0; i < 3; i++) {
        pthread_join(st[i].t, NULL);
        CU_ASSERT_EQUAL(st[i].status, 200);
        CU_ASSERT_EQUAL(st[i].who, 0);
    }
    /* the streams are over: r-one gets its share again */
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 8; i++) {
        int who = chat(rt.port, "chat", NULL);
        CU_ASSERT_TRUE_FATAL(who == 0 || who == 1);
        seen[who]++;
    }
    CU_ASSERT_TRUE(seen[0] >= 2);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}

/* A chat body: a system prompt and `turns` user/assistant exchanges, the
 * last user message unanswered. */
static void conversation(char *buf, size_t len, int conv, int turns)
{
    int n = snprintf(buf, len,
                     "{\"model\":\"chat\",\"messages\":[{\"role\":\"system\",\"content\":"
                     "\"You are assistant number %d of this test. Answer every question "
                     "briefly, politely and in plain English, without any markup at all.\"}",
                     conv);
    for (int t = 0; t < turns && n > 0 && (size_t)n < len; t++) {
        n += snprintf(buf + n, len - (size_t)n,
                      ",{\"role\":\"user\",\"content\":\"Question %d of conversation %d: "
                      "what is %d times %d?\"}",
                      t, conv, t + 3, conv + 7);
        if (t + 1 < turns)
            n += snprintf(buf + n, len - (size_t)n,
                          ",{\"role\":\"assistant\",\"content\":\"It is %d.\"}",
                          (t + 3) * (conv + 7));
    }
    snprintf(buf + n, len - (size_t)n, "]}");
}

static void test_prefix_keeps_conversation(void)
{
    struct router rt;
    char yaml[1024], body[8192];
    int home[4], sticky = 1, distinct = 0, used[NMOCKS] = { 0 };

    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "routing: prefixaware\n"
             "models:\n"
             "  chat: {backends: [%s, %s, %s]}\n",
             mk[0].url, mk[1].url, mk[2].url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    /* four conversations, their turns interleaved, each growing */
    for (int turn = 1; turn <= 5; turn++) {
        for (int c = 0; c < 4; c++) {
            struct resp r;
            conversation(body, sizeof body, c, turn);
            CU_ASSERT_EQUAL_FATAL(http_post(rt.port, "/v1/chat/completions", body, NULL, &r), 0);
            CU_ASSERT_EQUAL(r.status, 200);
            int who = answered_by(&r);
            resp_free(&r);
            CU_ASSERT_TRUE_FATAL(who >= 0);
            if (turn == 1) {
                home[c] = who;
                used[who]++;
            } else {
                sticky &= who == home[c];
            }
        }
    }
    CU_ASSERT_TRUE(sticky);
    /* new conversations went to the least loaded, ties in turn */
    for (int i = 0; i < NMOCKS; i++)
        distinct += used[i] > 0;
    CU_ASSERT_TRUE(distinct >= 2);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}


/* ABI 1.2: a routing plugin learns how each attempt it picked went
 * (outcome) and when the request is over (request_done, with its request
 * slot): a refused backend, then the answer with its bytes. */
static void test_outcome_and_request_done(void)
{
    struct router rt;
    struct resp r;
    char yaml[512], dead_url[64], want[160];
    int dead = free_port();
    const char *args[] = { "--plugin-dir", TEST_PLUGIN_DIR, "--plugin-dir", BUILT_PLUGIN_DIR,
                           NULL };
    const char *h[] = { "X-Request-Id: oc-1", NULL };

    snprintf(dead_url, sizeof dead_url, "http://127.0.0.1:%d", dead);
    snprintf(yaml, sizeof yaml,
             "workers: 1\nrouting: [outcome_probe]\n"
             "models:\n  oc: {backends: [%s, %s]}\n", dead_url, mk[0].url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, args) == 0);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "{\"model\":\"oc\"}", h, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    /* an unknown model is never routed: no request_done for it */
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "{\"model\":\"nope\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    snprintf(want, sizeof want, "outcome_probe: id=oc-1 backend=%s model=oc error=1 status=0 bytes=0",
             dead_url);
    CU_ASSERT_EQUAL(router_log_lines(&rt, want, NULL), 1);
    snprintf(want, sizeof want, "outcome_probe: id=oc-1 backend=%s model=oc error=0 status=200",
             mk[0].url);
    CU_ASSERT_EQUAL(router_log_lines(&rt, want, "ttfb_set=1 latency_ok=1"), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, want, "bytes=0 "), 0); /* the answer's bytes counted */
    CU_ASSERT_EQUAL(router_log_lines(&rt, "outcome_probe: done id=oc-1 outcomes=2", NULL), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "outcome_probe: done", NULL), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "outcome_probe: FAIL", NULL), 0);
}

/* The ticks a worker_ticks line of the log says, the last one; -1. */
static int last_ticks(const struct router *rt, int *started)
{
    char line[2048];
    int ticks = -1;
    FILE *f = fopen(rt->log, "r");

    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "worker_ticks: started=");
        if (p != NULL)
            sscanf(p, "worker_ticks: started=%d ticks=%d", started, &ticks);
    }
    if (f != NULL)
        fclose(f);
    return ticks;
}

/* ABI 1.2: a per-worker instance's timers run on its worker's loop from
 * worker_start(); a reload starts the new instances' and stops the old. */
static void test_worker_timers(void)
{
    struct router rt;
    struct resp r;
    char yaml[512];
    int started = 0, ticks;
    const char *args[] = { "--plugin-dir", BUILT_PLUGIN_DIR, NULL };

    /* named by its absolute path: no search, no symlink */
    snprintf(yaml, sizeof yaml, "workers: 1\nrouting: [" TEST_PLUGIN_DIR "/worker_ticks.so]\n"
                                "models:\n  wt: {backends: [%s]}\n", mk[0].url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, args) == 0);
    sleep_ms(400);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "{\"model\":\"wt\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    ticks = last_ticks(&rt, &started);
    CU_ASSERT_EQUAL(started, 1);
    CU_ASSERT_TRUE(ticks >= 3 && ticks <= 12);
    kill(rt.pid, SIGHUP);
    for (int i = 0; i < 200 && router_log_lines(&rt, "configuration reloaded", NULL) == 0; i++)
        sleep_ms(10);
    sleep_ms(300);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "{\"model\":\"wt\"}", NULL, &r), 0);
    resp_free(&r);
    ticks = last_ticks(&rt, &started);
    CU_ASSERT_EQUAL(started, 1); /* the new instance, started by the hand-over */
    CU_ASSERT_TRUE(ticks >= 2 && ticks <= 10);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "worker_ticks: FAIL", NULL), 0);
}

void register_routing_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e routing", setup_suite, teardown_suite);
    CU_add_test(s, "sticky sessions", test_sticky_sessions);
    CU_add_test(s, "--routing-logic session --session-key", test_cli_session_flags);
    CU_add_test(s, "--routing-logic names", test_cli_routing_logic_names);
    CU_add_test(s, "least_loaded avoids a busy backend", test_least_loaded_avoids_busy_backend);
    CU_add_test(s, "prefixaware keeps a conversation", test_prefix_keeps_conversation);
    CU_add_test(s, "outcome and request_done reach the routing plugin",
                test_outcome_and_request_done);
    CU_add_test(s, "worker timers from worker_start, across a reload", test_worker_timers);
}
