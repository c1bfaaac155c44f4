/* Retries and fallback as a client sees them (SPEC.md "Retries and
 * fallback"): each row of the decision table against mock backends that
 * fail on demand, with what the client got (status, body, X-Switchyard-*
 * headers, Retry-After) and what every backend received (how many
 * requests, and the bytes of the forwarded body).
 *
 * Suites, one router each:
 *   retries       one model on two backends, one of which fails; 4xx
 *                 passed through; Retry-After on the only backend
 *   model_map     fallback_model: A>B, chains, cycles, 503/504, streams,
 *                 mid-stream death, /metrics
 *   default_model fallback: [default_model]
 *   chain         fallback: [model_map, default_model]
 *   limits        max_fallback_depth and request_deadline
 *   config        a fallback_model naming an unknown model
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"

/* --- helpers --- */

/* A response header equals `want` (NULL: is absent). */
static int header_is(const struct resp *r, const char *name, const char *want)
{
    const char *v = resp_header(r, name);
    if (want == NULL)
        return v == NULL;
    return v != NULL && strcmp(v, want) == 0;
}

#define CHECK_HEADER(r, name, want)                                              \
    do {                                                                         \
        int ok_ = header_is((r), (name), (want));                                \
        if (!ok_)                                                                \
            fprintf(stderr, "\n    %s: got '%s', want '%s'\n", (name),            \
                    resp_header((r), (name)) ? resp_header((r), (name)) : "(none)", \
                    (want) ? (want) : "(none)");                                 \
        CU_ASSERT_TRUE(ok_);                                                     \
    } while (0)

static int attempts_of(const struct resp *r)
{
    const char *v = resp_header(r, "X-Switchyard-Attempts");
    return v ? atoi(v) : -1;
}

/* The body the mock received last (malloc'd), or NULL. */
static char *last_body(const struct mock *m)
{
    struct resp r;
    struct json_object *root, *b;
    char *out = NULL;

    if (mock_last(m, &r) == 0 && r.status == 200 && (root = json_tokener_parse(r.body)) != NULL) {
        if (json_object_object_get_ex(root, "body", &b) && json_object_is_type(b, json_type_string))
            out = strdup(json_object_get_string(b));
        json_object_put(root);
    }
    resp_free(&r);
    return out;
}

/* The body `m` got last is exactly `want`. */
static void check_last_body(const struct mock *m, const char *want)
{
    char *got = last_body(m);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got != NULL) {
        if (strcmp(got, want) != 0)
            fprintf(stderr, "\n    %s got body:\n      %s\n    want:\n      %s\n", m->name, got, want);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
    free(got);
}

/* A router-made error: OpenAI-shaped JSON with this code; returns the
 * message (static copy) for further checks. */
static const char *check_router_error(const struct resp *r, long status)
{
    static char msg[1024];
    struct json_object *root, *err, *v;

    msg[0] = '\0';
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_TRUE(resp_header(r, "Content-Type") != NULL &&
                   strstr(resp_header(r, "Content-Type"), "application/json") != NULL);
    root = json_tokener_parse(r->body);
    CU_ASSERT_PTR_NOT_NULL(root);
    if (root != NULL && json_object_object_get_ex(root, "error", &err) &&
        json_object_is_type(err, json_type_object)) {
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "message", &v) &&
                       json_object_is_type(v, json_type_string));
        if (json_object_object_get_ex(err, "message", &v) && json_object_is_type(v, json_type_string))
            snprintf(msg, sizeof msg, "%s", json_object_get_string(v));
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "type", &v) &&
                       json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0);
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "code", &v) &&
                       json_object_get_int(v) == (int)status);
    } else {
        CU_FAIL("no \"error\" object in the router's answer");
    }
    json_object_put(root);
    /* backend addresses never reach the client */
    CU_ASSERT_PTR_NULL(strstr(r->body, "127.0.0.1"));
    CU_ASSERT_PTR_NULL(strstr(r->headers, "127.0.0.1"));
    return msg;
}

static void check_retry_after(const struct resp *r, int min, int max)
{
    const char *ra = resp_header(r, "Retry-After");
    CU_ASSERT_PTR_NOT_NULL(ra);
    if (ra != NULL)
        CU_ASSERT_TRUE(atoi(ra) >= min && atoi(ra) <= max);
}

/* A request in a thread, so the test can change a mock meanwhile. */
struct async_post {
    pthread_t th;
    int port;
    const char *body;
    const char *const *headers;
    struct resp r;
    int rc;
};

static void *async_post_run(void *arg)
{
    struct async_post *a = arg;
    a->rc = http_post(a->port, CHAT, a->body, a->headers, &a->r);
    return NULL;
}

/* A chat body with odd spacing, escapes, numbers in several spellings and
 * a nested "model": after a rewrite only the top-level value may differ. */
#define ODD_BODY(M)                                                                    \
    "{\"messages\": [{\"role\":\"user\",\"content\":\"caf\\u00e9 \\\"q\\\" \\n x\"}],\n" \
    "  \"model\" :  \"" M "\" , \"temperature\":0.50,\"n\":1e0,"                        \
    "\"metadata\":{\"model\":\"keep-me\"},\"stop\":[\"\\/\",null,true]}"

/* ===================================================================== */
/* Suite 1: retries within a model                                       */
/* ===================================================================== */

static struct mock r_good, r_bad, r_solo;
static struct router r_rt;
static int r_dead;

static int retries_setup(void)
{
    char yaml[2048];

    if (mock_start(&r_good, "fb-good", "pair", NULL) || mock_start(&r_bad, "fb-bad", "pair", NULL) ||
        mock_start(&r_solo, "fb-solo", "solo", NULL))
        return -1;
    r_dead = free_port();
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "upstream_timeout: 500ms\n"
             "connect_timeout: 500ms\n"
             "reroute_attempts: 1\n"
             "retry_after_cap: 1500ms\n"
             "models:\n"
             "  pair:\n"
             "    backends: [%s, %s]\n"
             "  refused:\n"
             "    backends: [http://127.0.0.1:%d, %s]\n"
             "  solo:\n"
             "    backends: [%s]\n",
             r_good.url, r_bad.url, r_dead, r_good.url, r_solo.url);
    return router_start(&r_rt, yaml, NULL);
}

static int retries_teardown(void)
{
    int st = router_stop(&r_rt);
    mock_stop(&r_good);
    mock_stop(&r_bad);
    mock_stop(&r_solo);
    return st == 0 ? 0 : -1;
}

/*
 * One of two backends fails in `mode` (NULL: the refusing one).  Which
 * backend roundrobin picks first depends on the turn, so send until a
 * request met the failing one first (at most 4): that one took 2 attempts,
 * the others 1, all were served by the good backend, unchanged.
 */
static void one_of_two_fails(const char *model, const char *mode, double min_t, double max_t)
{
    char body[512];
    int good0 = mock_requests(&r_good), bad0 = mock_requests(&r_bad);
    int sent = 0, second = 0;

    snprintf(body, sizeof body, ODD_BODY("%s"), model);
    if (mode != NULL)
        CU_ASSERT_EQUAL_FATAL(mock_set_mode(&r_bad, mode), 0);
    /* under valgrind or the sanitizers' wrapper everything is slower */
    if (getenv("SY_TEST_WRAPPER") != NULL && *getenv("SY_TEST_WRAPPER") != '\0')
        max_t *= 5;
    while (sent < 4 && second == 0) {
        struct resp r;
        CU_ASSERT_EQUAL(http_post(r_rt.port, CHAT, body, NULL, &r), 0);
        sent++;
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"fb-good\""));
        CHECK_HEADER(&r, "X-Mock-Backend", "fb-good");
        CHECK_HEADER(&r, "X-Switchyard-Model", model);
        CHECK_HEADER(&r, "X-Switchyard-Fallback", NULL);
        if (attempts_of(&r) == 2) {
            second++;
            if (r.total < min_t || r.total > max_t)
                fprintf(stderr, "\n    took %.3fs, want %.2f..%.2f\n", r.total, min_t, max_t);
            CU_ASSERT_TRUE(r.total >= min_t && r.total <= max_t);
        } else {
            CU_ASSERT_EQUAL(attempts_of(&r), 1);
        }
        resp_free(&r);
    }
    if (mode != NULL)
        CU_ASSERT_EQUAL(mock_set_mode(&r_bad, "{}"), 0);
    CU_ASSERT_EQUAL(second, 1);
    CU_ASSERT_EQUAL(mock_requests(&r_good) - good0, sent);
    CU_ASSERT_EQUAL(mock_requests(&r_bad) - bad0, mode != NULL ? second : 0);
    /* a retry forwards the client's bytes as they were */
    check_last_body(&r_good, body);
}

static void test_one_refuses(void)
{
    one_of_two_fails("refused", NULL, 0, 0.4);
}

static void test_one_500(void)
{
    one_of_two_fails("pair", "{\"status\":500}", 0, 0.4);
}

static void test_one_503(void)
{
    one_of_two_fails("pair", "{\"status\":503}", 0, 0.4);
}

static void test_one_429(void)
{
    one_of_two_fails("pair", "{\"status\":429}", 0, 0.4);
}

static void test_one_closes(void)
{
    one_of_two_fails("pair", "{\"close\":1}", 0, 0.4);
}

static void test_one_hangs(void)
{
    /* upstream_timeout is 500ms */
    one_of_two_fails("pair", "{\"hang\":1}", 0.45, 1.2);
}

/* 400, 404, 422: the backend's answer, as it is, after one attempt. */
static void test_4xx_passed_through(void)
{
    static const int codes[] = { 400, 404, 422 };

    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char h0[64], want[160];
        const char *h[] = { h0, NULL };
        int before = mock_requests(&r_good) + mock_requests(&r_bad);
        struct resp r;

        snprintf(h0, sizeof h0, "X-Mock-Status: %d", codes[i]);
        snprintf(want, sizeof want,
                 "{\"error\":{\"message\":\"mock status %d\",\"type\":\"mock\",\"code\":%d}}",
                 codes[i], codes[i]);
        CU_ASSERT_EQUAL(http_post(r_rt.port, CHAT, "{\"model\":\"pair\",\"messages\":[]}", h, &r), 0);
        CU_ASSERT_EQUAL(r.status, codes[i]);
        CU_ASSERT_STRING_EQUAL(r.body, want);
        CU_ASSERT_TRUE(resp_header(&r, "X-Mock-Backend") != NULL);
        CHECK_HEADER(&r, "X-Switchyard-Attempts", "1");
        CHECK_HEADER(&r, "X-Switchyard-Model", "pair");
        CHECK_HEADER(&r, "X-Switchyard-Fallback", NULL);
        CU_ASSERT_EQUAL(mock_requests(&r_good) + mock_requests(&r_bad) - before, 1);
        resp_free(&r);
    }
}

/* 429 + Retry-After: 1 from the only backend: the same backend again,
 * about a second later. */
static void test_429_retry_after_only_backend(void)
{
    struct async_post a = { .port = r_rt.port, .body = "{\"model\":\"solo\",\"messages\":[]}" };
    int before = mock_requests(&r_solo);

    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&r_solo, "{\"status\":429,\"retry_after\":\"1\"}"), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&a.th, NULL, async_post_run, &a), 0);
    /* the first attempt got its 429; the backend recovers while the
     * router waits */
    sleep_ms(400);
    CU_ASSERT_EQUAL(mock_requests(&r_solo) - before, 1);
    CU_ASSERT_EQUAL(mock_set_mode(&r_solo, "{}"), 0);
    pthread_join(a.th, NULL);
    CU_ASSERT_EQUAL(a.rc, 0);
    CU_ASSERT_EQUAL(a.r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.r.body, "\"backend\":\"fb-solo\""));
    CHECK_HEADER(&a.r, "X-Switchyard-Attempts", "2");
    CHECK_HEADER(&a.r, "X-Switchyard-Model", "solo");
    CHECK_HEADER(&a.r, "X-Switchyard-Fallback", NULL);
    if (a.r.total < 0.9 || a.r.total > 1.6)
        fprintf(stderr, "\n    took %.3fs, want about 1s\n", a.r.total);
    CU_ASSERT_TRUE(a.r.total >= 0.9 && a.r.total <= 1.6);
    CU_ASSERT_EQUAL(mock_requests(&r_solo) - before, 2);
    resp_free(&a.r);
}

/* Retry-After: 10 is capped by retry_after_cap (1.5s); when every attempt
 * is a 429 the client gets 503 with a Retry-After of its own. */
static void test_429_retry_after_capped(void)
{
    struct resp r;
    int before = mock_requests(&r_solo);

    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&r_solo, "{\"status\":429,\"retry_after\":\"10\"}"), 0);
    CU_ASSERT_EQUAL(http_post(r_rt.port, CHAT, "{\"model\":\"solo\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&r_solo, "{}"), 0);
    /* the backend's last answer, as it sent it: its 429, its Retry-After */
    CU_ASSERT_EQUAL(r.status, 429);
    CHECK_HEADER(&r, "Retry-After", "10");
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "mock status 429") : NULL);
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "2");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", NULL);
    if (r.total < 1.4 || r.total > 2.2)
        fprintf(stderr, "\n    took %.3fs, want about 1.5s\n", r.total);
    CU_ASSERT_TRUE(r.total >= 1.4 && r.total <= 2.2);
    CU_ASSERT_EQUAL(mock_requests(&r_solo) - before, 2);
    resp_free(&r);
}

/* The client leaves while the router waits out a Retry-After: the retry
 * never happens, and the router serves on. */
static void test_client_gone_during_retry_after(void)
{
    struct resp r;
    int before = mock_requests(&r_solo);

    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&r_solo, "{\"status\":429,\"retry_after\":\"1\"}"), 0);
    CU_ASSERT_NOT_EQUAL(http_raw(r_rt.port, "POST", CHAT, "{\"model\":\"solo\"}", NULL, 300, &r), 0);
    CU_ASSERT_EQUAL(r.status, 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_set_mode(&r_solo, "{}"), 0);
    sleep_ms(1200);
    CU_ASSERT_EQUAL(mock_requests(&r_solo) - before, 1);
    CU_ASSERT_EQUAL(http_post(r_rt.port, CHAT, "{\"model\":\"solo\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "1");
    resp_free(&r);
}

/* ===================================================================== */
/* Suite 2: model_map                                                    */
/* ===================================================================== */

static struct mock m_a1, m_a2, m_b, m_z, m_hang;
static struct router m_rt;
static int m_dead;

static int mm_setup(void)
{
    char yaml[4096];
    static const char *const hang[] = { "--hang", NULL };

    if (mock_start(&m_a1, "fb-a1", "A", NULL) || mock_start(&m_a2, "fb-a2", "A", NULL) ||
        mock_start(&m_b, "fb-b", "B", NULL) || mock_start(&m_z, "fb-z", "ch-z", NULL) ||
        mock_start(&m_hang, "fb-hang", "H", hang))
        return -1;
    m_dead = free_port();
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "upstream_timeout: 500ms\n"
             "connect_timeout: 500ms\n"
             "reroute_attempts: 1\n"
             "fallback: [model_map]\n"
             "models:\n"
             "  A:\n"
             "    backends: [%s, %s]\n"
             "    aliases: [a-alias]\n"
             "    fallback_model: B\n"
             "  B:\n"
             "    backends: [%s]\n"
             "  ch-x:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: ch-y\n"
             "  ch-y:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: ch-z\n"
             "  ch-z:\n"
             "    backends: [%s]\n"
             "  cyc-p:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: cyc-q\n"
             "  cyc-q:\n"
             "    backends: [http://127.0.0.1:%d/q]\n"
             "    fallback_model: cyc-p\n"
             "  hang-h:\n"
             "    backends: [%s]\n"
             "  hang-t:\n"
             "    backends: [%s]\n"
             "    fallback_model: dead-u\n"
             "  dead-u:\n"
             "    backends: [http://127.0.0.1:%d]\n",
             m_a1.url, m_a2.url, m_b.url, m_dead, m_dead, m_z.url, m_dead, m_dead,
             m_hang.url, m_hang.url, m_dead);
    return router_start(&m_rt, yaml, NULL);
}

static int mm_teardown(void)
{
    int st = router_stop(&m_rt);
    mock_stop(&m_a1);
    mock_stop(&m_a2);
    mock_stop(&m_b);
    mock_stop(&m_z);
    mock_stop(&m_hang);
    return st == 0 ? 0 : -1;
}

static int fail_a(const char *mode)
{
    return mock_set_mode(&m_a1, mode) || mock_set_mode(&m_a2, mode) ? -1 : 0;
}

/* Every backend of A fails: B serves, with the body's model rewritten and
 * nothing else touched. */
static void test_fallback_a_to_b(void)
{
    static const char *const modes[] = { "{\"status\":503}", "{\"status\":500}", "{\"close\":1}", NULL };

    for (int i = 0; modes[i]; i++) {
        int a1 = mock_requests(&m_a1), a2 = mock_requests(&m_a2), b = mock_requests(&m_b);
        struct resp r;

        CU_ASSERT_EQUAL_FATAL(fail_a(modes[i]), 0);
        CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, ODD_BODY("A"), NULL, &r), 0);
        CU_ASSERT_EQUAL(fail_a("{}"), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"fb-b\""));
        /* the mock echoes the model it was asked for */
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"model\":\"B\""));
        CHECK_HEADER(&r, "X-Switchyard-Model", "B");
        CHECK_HEADER(&r, "X-Switchyard-Fallback", "A>B");
        CHECK_HEADER(&r, "X-Switchyard-Attempts", "3");
        CHECK_HEADER(&r, "X-Mock-Backend", "fb-b");
        /* each backend of A once, then B */
        CU_ASSERT_EQUAL(mock_requests(&m_a1) - a1, 1);
        CU_ASSERT_EQUAL(mock_requests(&m_a2) - a2, 1);
        CU_ASSERT_EQUAL(mock_requests(&m_b) - b, 1);
        check_last_body(&m_a1, ODD_BODY("A"));
        check_last_body(&m_b, ODD_BODY("B"));
        resp_free(&r);
    }
}

/* An alias of A falls back like A; the path names the model, not the alias. */
static void test_alias_falls_back(void)
{
    int b = mock_requests(&m_b);
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(fail_a("{\"status\":503}"), 0);
    CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, "{\"model\":\"a-alias\",\"max_tokens\":3}", NULL, &r), 0);
    CU_ASSERT_EQUAL(fail_a("{}"), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CHECK_HEADER(&r, "X-Switchyard-Model", "B");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "A>B");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "3");
    CU_ASSERT_EQUAL(mock_requests(&m_b) - b, 1);
    check_last_body(&m_a1, "{\"model\":\"A\",\"max_tokens\":3}");
    check_last_body(&m_b, "{\"model\":\"B\",\"max_tokens\":3}");
    resp_free(&r);
}

/* A 4xx from A is the answer: no retry, no fallback to B. */
static void test_4xx_no_fallback(void)
{
    static const int codes[] = { 400, 404, 422 };

    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char h0[64], want[160];
        const char *h[] = { h0, NULL };
        int a = mock_requests(&m_a1) + mock_requests(&m_a2), b = mock_requests(&m_b);
        struct resp r;

        snprintf(h0, sizeof h0, "X-Mock-Status: %d", codes[i]);
        snprintf(want, sizeof want,
                 "{\"error\":{\"message\":\"mock status %d\",\"type\":\"mock\",\"code\":%d}}",
                 codes[i], codes[i]);
        CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, "{\"model\":\"A\"}", h, &r), 0);
        CU_ASSERT_EQUAL(r.status, codes[i]);
        CU_ASSERT_STRING_EQUAL(r.body, want);
        CHECK_HEADER(&r, "X-Switchyard-Model", "A");
        CHECK_HEADER(&r, "X-Switchyard-Attempts", "1");
        CHECK_HEADER(&r, "X-Switchyard-Fallback", NULL);
        CU_ASSERT_EQUAL(mock_requests(&m_a1) + mock_requests(&m_a2) - a, 1);
        CU_ASSERT_EQUAL(mock_requests(&m_b) - b, 0);
        resp_free(&r);
    }
}

/* X>Y>Z: two models whose backends refuse, then one that serves. */
static void test_chain(void)
{
    struct resp r;
    int z = mock_requests(&m_z);

    CU_ASSERT_EQUAL(http_post(m_rt.port, "/v1/completions",
                              "{\"model\":\"ch-x\",\"prompt\":\"p\",\"max_tokens\":7}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "text_completion"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"fb-z\""));
    CHECK_HEADER(&r, "X-Switchyard-Model", "ch-z");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "ch-x>ch-y>ch-z");
    /* a refusing backend is down: one try each, no reroute to itself */
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "3");
    CU_ASSERT_TRUE(r.total < 0.5);
    CU_ASSERT_EQUAL(mock_requests(&m_z) - z, 1);
    check_last_body(&m_z, "{\"model\":\"ch-z\",\"prompt\":\"p\",\"max_tokens\":7}");
    resp_free(&r);
}

/* P>Q>P: the cycle ends, quickly, with a 503 naming what was tried. */
static void test_cycle_503(void)
{
    struct resp r;
    const char *msg;

    CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, "{\"model\":\"cyc-p\",\"messages\":[]}", NULL, &r), 0);
    msg = check_router_error(&r, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "cyc-p"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "cyc-q"));
    check_retry_after(&r, 1, 600);
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "cyc-p>cyc-q");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "2");
    if (r.total >= 0.5)
        fprintf(stderr, "\n    took %.3fs\n", r.total);
    CU_ASSERT_TRUE(r.total < 0.5);
    resp_free(&r);
}

/* Every attempt timed out: 504. */
static void test_all_timeouts_504(void)
{
    struct resp r;
    int before = mock_requests(&m_hang);

    CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, "{\"model\":\"hang-h\"}", NULL, &r), 0);
    check_router_error(&r, 504);
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "2");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", NULL);
    /* two attempts of upstream_timeout 500ms */
    CU_ASSERT_TRUE(r.total >= 0.9 && r.total < 1.8);
    CU_ASSERT_EQUAL(mock_requests(&m_hang) - before, 2);
    resp_free(&r);
}

/* Timeouts, then a refusal last: 503, not 504. */
static void test_timeout_then_refused_503(void)
{
    struct resp r;

    CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, "{\"model\":\"hang-t\"}", NULL, &r), 0);
    check_router_error(&r, 503);
    check_retry_after(&r, 1, 600);
    /* two timeouts on hang-t, one refusal on dead-u */
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "3");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "hang-t>dead-u");
    CU_ASSERT_TRUE(r.total >= 0.9 && r.total < 1.8);
    resp_free(&r);
}

/* A stream served by the fallback model is still a stream. */
static void test_stream_after_fallback(void)
{
    static const char *const h[] = { "X-Mock-Chunks: 4", "X-Mock-Chunk-Delay-Ms: 100", NULL };
    static const char body[] = "{\"model\":\"A\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"s\"}]}";
    int b = mock_requests(&m_b);
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(fail_a("{\"status\":500}"), 0);
    CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, body, h, &r), 0);
    CU_ASSERT_EQUAL(fail_a("{}"), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_TRUE(resp_header(&r, "Content-Type") != NULL &&
                   strstr(resp_header(&r, "Content-Type"), "text/event-stream") != NULL);
    CHECK_HEADER(&r, "X-Switchyard-Model", "B");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "A>B");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "3");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "data: {"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "chat.completion.chunk"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "tok0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "tok3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"model\":\"B\""));
    CU_ASSERT_TRUE(r.len >= 14 && strcmp(r.body + r.len - 14, "data: [DONE]\n\n") == 0);
    /* relayed as it came, not buffered whole */
    CU_ASSERT_TRUE(r.chunks >= 3);
    CU_ASSERT_TRUE(r.first_byte < r.total - 0.2);
    CU_ASSERT_EQUAL(mock_requests(&m_b) - b, 1);
    check_last_body(&m_b, "{\"model\":\"B\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"s\"}]}");
    resp_free(&r);
}

/* The backend dies after two events: the client keeps them, gets a final
 * error event, and the answer ends; nothing is retried. */
static void test_mid_stream_death(void)
{
    static const char *const h[] = { "X-Mock-Chunks: 5", "X-Mock-Chunk-Delay-Ms: 50",
                                     "X-Mock-Die-After: 2", NULL };
    int b = mock_requests(&m_b);
    struct resp r;
    const char *last;

    http_raw(m_rt.port, "POST", CHAT, "{\"model\":\"B\",\"stream\":true}", h, 5000, &r);
    CU_ASSERT_EQUAL(r.curl_error, 0); /* the chunked answer was ended properly */
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_TRUE(resp_header(&r, "Content-Type") != NULL &&
                   strstr(resp_header(&r, "Content-Type"), "text/event-stream") != NULL);
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "1");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "tok0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "tok1"));
    CU_ASSERT_PTR_NULL(strstr(r.body, "tok2"));
    CU_ASSERT_PTR_NULL(strstr(r.body, "[DONE]"));
    /* the last event is data: {"error":...} */
    last = NULL;
    for (const char *p = strstr(r.body, "data: "); p != NULL; p = strstr(p + 1, "data: "))
        last = p;
    CU_ASSERT_PTR_NOT_NULL(last);
    if (last != NULL) {
        CU_ASSERT_EQUAL(strncmp(last, "data: {\"error\":", 15), 0);
        CU_ASSERT_TRUE(r.len >= 2 && strcmp(r.body + r.len - 2, "\n\n") == 0);
        struct json_object *j = json_tokener_parse(last + 6);
        struct json_object *e;
        CU_ASSERT_TRUE(j != NULL && json_object_object_get_ex(j, "error", &e) &&
                       json_object_is_type(e, json_type_object));
        json_object_put(j);
    }
    CU_ASSERT_TRUE(r.total < 2.0);
    CU_ASSERT_EQUAL(mock_requests(&m_b) - b, 1);
    resp_free(&r);
}

/* /metrics counts retries, fallbacks and exhausted requests. */
static void test_metrics(void)
{
    double retries_a = metric_value(m_rt.port, "switchyard_retries_total{model=\"A\"}", 0);
    double retries_b = metric_value(m_rt.port, "switchyard_retries_total{model=\"B\"}", 0);
    double fb_ab = metric_value(m_rt.port, "switchyard_fallbacks_total{from=\"A\",to=\"B\"}", 0);
    double fb_pq = metric_value(m_rt.port, "switchyard_fallbacks_total{from=\"cyc-p\",to=\"cyc-q\"}", 0);
    double fb_qp = metric_value(m_rt.port, "switchyard_fallbacks_total{from=\"cyc-q\",to=\"cyc-p\"}", 0);
    double ex_a = metric_value(m_rt.port, "switchyard_exhausted_total{model=\"A\"}", 0);
    double ex_p = metric_value(m_rt.port, "switchyard_exhausted_total{model=\"cyc-p\"}", 0);
    double ex_q = metric_value(m_rt.port, "switchyard_exhausted_total{model=\"cyc-q\"}", 0);
    double ok_a = metric_value(m_rt.port, "switchyard_requests_total{model=\"A\",status=\"200\"}", 0);
    double e503_p = metric_value(m_rt.port, "switchyard_requests_total{model=\"cyc-p\",status=\"503\"}", 0);
    struct resp r, m;

    /* the suite's earlier tests were counted already */
    CU_ASSERT_TRUE(fb_ab >= 4);
    CU_ASSERT_TRUE(ex_p >= 1);
    CU_ASSERT_EQUAL(http_get(m_rt.port, "/metrics", &m), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.body, "# TYPE switchyard_retries_total counter"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.body, "# TYPE switchyard_fallbacks_total counter"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.body, "# TYPE switchyard_exhausted_total counter"));
    resp_free(&m);

    /* one A>B fallback: one retry on A (its second backend) */
    CU_ASSERT_EQUAL_FATAL(fail_a("{\"status\":503}"), 0);
    CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, "{\"model\":\"A\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(fail_a("{}"), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    /* one exhausted request through the cycle */
    CU_ASSERT_EQUAL(http_post(m_rt.port, CHAT, "{\"model\":\"cyc-p\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    resp_free(&r);

    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_retries_total{model=\"A\"}", 0) - retries_a, 1);
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_retries_total{model=\"B\"}", 0) - retries_b, 0);
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_fallbacks_total{from=\"A\",to=\"B\"}", 0) - fb_ab, 1);
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_fallbacks_total{from=\"cyc-p\",to=\"cyc-q\"}", 0) - fb_pq, 1);
    /* the cycle was cut, not followed */
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_fallbacks_total{from=\"cyc-q\",to=\"cyc-p\"}", 0) - fb_qp, 0);
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_exhausted_total{model=\"A\"}", 0) - ex_a, 0);
    /* exhausted is counted once, for the model asked for */
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_exhausted_total{model=\"cyc-p\"}", 0) - ex_p, 1);
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_exhausted_total{model=\"cyc-q\"}", 0) - ex_q, 0);
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_requests_total{model=\"A\",status=\"200\"}", 0) - ok_a, 1);
    CU_ASSERT_EQUAL(metric_value(m_rt.port, "switchyard_requests_total{model=\"cyc-p\",status=\"503\"}", 0) - e503_p, 1);
}

/* ===================================================================== */
/* Suite 3: fallback: [default_model]                                    */
/* ===================================================================== */

static struct mock d_b, d_c;
static struct router d_rt;

static int dm_setup(void)
{
    char yaml[2048];

    if (mock_start(&d_b, "dm-b", "B", NULL) || mock_start(&d_c, "dm-c", "C", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "reroute_attempts: 0\n"
             "fallback: [default_model]\n"
             "plugin_config:\n"
             "  default_model: {model: C}\n"
             "models:\n"
             "  A:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: B\n"
             "  B:\n"
             "    backends: [%s]\n"
             "  C:\n"
             "    backends: [%s]\n",
             free_port(), d_b.url, d_c.url);
    return router_start(&d_rt, yaml, NULL);
}

static int dm_teardown(void)
{
    int st = router_stop(&d_rt);
    mock_stop(&d_b);
    mock_stop(&d_c);
    return st == 0 ? 0 : -1;
}

/* default_model replaces model_map: A goes to C, not to its fallback_model. */
static void test_default_model_swaps_policy(void)
{
    int b = mock_requests(&d_b), c = mock_requests(&d_c);
    struct resp r;

    CU_ASSERT_EQUAL(http_post(d_rt.port, CHAT, ODD_BODY("A"), NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"dm-c\""));
    CHECK_HEADER(&r, "X-Switchyard-Model", "C");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "A>C");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "2");
    CU_ASSERT_EQUAL(mock_requests(&d_b) - b, 0);
    CU_ASSERT_EQUAL(mock_requests(&d_c) - c, 1);
    check_last_body(&d_c, ODD_BODY("C"));
    resp_free(&r);
}

/* B fails: C; C itself fails: nothing to fall back to. */
static void test_default_model_itself_fails(void)
{
    struct resp r;
    const char *msg;

    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&d_b, "{\"status\":502}"), 0);
    CU_ASSERT_EQUAL(http_post(d_rt.port, CHAT, "{\"model\":\"B\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&d_b, "{}"), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "B>C");
    resp_free(&r);

    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&d_c, "{\"status\":503}"), 0);
    CU_ASSERT_EQUAL(http_post(d_rt.port, CHAT, "{\"model\":\"C\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&d_c, "{}"), 0);
    /* nothing left: the client gets C's own answer (a backend answered) */
    msg = check_router_error(&r, 503);
    CU_ASSERT_STRING_EQUAL(msg, "mock status 503");
    CHECK_HEADER(&r, "Retry-After", NULL);
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "1");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", NULL);
    resp_free(&r);
}

/* ===================================================================== */
/* Suite 4: fallback: [model_map, default_model]                         */
/* ===================================================================== */

static struct mock c_c;
static struct router c_rt;

static int chain_setup(void)
{
    char yaml[2048];

    if (mock_start(&c_c, "chain-c", "C", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "reroute_attempts: 0\n"
             "fallback: [model_map, default_model]\n"
             "plugin_config:\n"
             "  default_model: {model: C}\n"
             "models:\n"
             "  A:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: B\n"
             "  B:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "  C:\n"
             "    backends: [%s]\n"
             "  D:\n"
             "    backends: [http://127.0.0.1:%d]\n",
             free_port(), free_port(), c_c.url, free_port());
    return router_start(&c_rt, yaml, NULL);
}

static int chain_teardown(void)
{
    int st = router_stop(&c_rt);
    mock_stop(&c_c);
    return st == 0 ? 0 : -1;
}

/* model_map first (A>B), default_model when it declines (B>C). */
static void test_chain_model_map_then_default(void)
{
    int c = mock_requests(&c_c);
    struct resp r;

    CU_ASSERT_EQUAL(http_post(c_rt.port, CHAT, ODD_BODY("A"), NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"chain-c\""));
    CHECK_HEADER(&r, "X-Switchyard-Model", "C");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "A>B>C");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "3");
    CU_ASSERT_EQUAL(mock_requests(&c_c) - c, 1);
    check_last_body(&c_c, ODD_BODY("C"));
    resp_free(&r);

    /* D has no fallback_model: straight to the default */
    CU_ASSERT_EQUAL(http_post(c_rt.port, CHAT, "{\"model\":\"D\",\"n\":2}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CHECK_HEADER(&r, "X-Switchyard-Model", "C");
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "D>C");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "2");
    check_last_body(&c_c, "{\"model\":\"C\",\"n\":2}");
    resp_free(&r);
    CU_ASSERT_EQUAL(metric_value(c_rt.port, "switchyard_fallbacks_total{from=\"A\",to=\"B\"}", 0), 1);
    CU_ASSERT_EQUAL(metric_value(c_rt.port, "switchyard_fallbacks_total{from=\"B\",to=\"C\"}", 0), 1);
    CU_ASSERT_EQUAL(metric_value(c_rt.port, "switchyard_fallbacks_total{from=\"D\",to=\"C\"}", 0), 1);
}

/* ===================================================================== */
/* Suite 5: limits                                                       */
/* ===================================================================== */

static struct mock l_hang, l_good;
static struct router l_rt;

static int limits_setup(void)
{
    char yaml[2048];
    static const char *const hang[] = { "--hang", NULL };

    if (mock_start(&l_hang, "lim-hang", "x", hang) || mock_start(&l_good, "lim-good", "x", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "upstream_timeout: 500ms\n"
             "connect_timeout: 500ms\n"
             "request_deadline: 800ms\n"
             "idle_timeout: 300ms\n"
             "reroute_attempts: 0\n"
             "max_fallback_depth: 1\n"
             "models:\n"
             "  d1:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: d2\n"
             "  d2:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: d3\n"
             "  d3:\n"
             "    backends: [%s]\n"
             "  t1:\n"
             "    backends: [%s]\n"
             "    fallback_model: t2\n"
             "  t2:\n"
             "    backends: [%s/t2]\n",
             free_port(), free_port(), l_good.url, l_hang.url, l_hang.url);
    return router_start(&l_rt, yaml, NULL);
}

static int limits_teardown(void)
{
    int st = router_stop(&l_rt);
    mock_stop(&l_hang);
    mock_stop(&l_good);
    return st == 0 ? 0 : -1;
}

/* max_fallback_depth 1: d1>d2, never d3 although it would serve. */
static void test_max_fallback_depth(void)
{
    int good = mock_requests(&l_good);
    struct resp r;
    const char *msg;

    CU_ASSERT_EQUAL(http_post(l_rt.port, CHAT, "{\"model\":\"d1\"}", NULL, &r), 0);
    msg = check_router_error(&r, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "d1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "d2"));
    CU_ASSERT_PTR_NULL(strstr(msg, "d3"));
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "d1>d2");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "2");
    CU_ASSERT_EQUAL(mock_requests(&l_good) - good, 0);
    resp_free(&r);
}

/* request_deadline 800ms holds across a fallback: the second attempt gets
 * only what is left of it, then 504. */
static void test_request_deadline(void)
{
    int before = mock_requests(&l_hang);
    struct resp r;

    CU_ASSERT_EQUAL(http_post(l_rt.port, CHAT, "{\"model\":\"t1\"}", NULL, &r), 0);
    check_router_error(&r, 504);
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "t1>t2");
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "2");
    if (r.total < 0.75 || r.total > 1.2)
        fprintf(stderr, "\n    took %.3fs, want about 0.8s\n", r.total);
    CU_ASSERT_TRUE(r.total >= 0.75 && r.total <= 1.2);
    CU_ASSERT_EQUAL(mock_requests(&l_hang) - before, 2);
    resp_free(&r);
}

/* A stream that stalls past idle_timeout after its first event: the
 * client keeps that event and gets a final error event, without retry. */
static void test_idle_timeout_mid_stream(void)
{
    static const char *const h[] = { "X-Mock-Chunks: 3", "X-Mock-Chunk-Delay-Ms: 1500", NULL };
    int good = mock_requests(&l_good);
    struct resp r;

    http_raw(l_rt.port, "POST", CHAT, "{\"model\":\"d3\",\"stream\":true}", h, 5000, &r);
    CU_ASSERT_EQUAL(r.curl_error, 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CHECK_HEADER(&r, "X-Switchyard-Attempts", "1");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "tok0"));
    CU_ASSERT_PTR_NULL(strstr(r.body, "tok1"));
    CU_ASSERT_PTR_NULL(strstr(r.body, "[DONE]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\n\ndata: {\"error\":"));
    if (r.total < 0.25 || r.total > 1.2)
        fprintf(stderr, "\n    took %.3fs, want about 0.3s\n", r.total);
    CU_ASSERT_TRUE(r.total >= 0.25 && r.total < 1.2);
    CU_ASSERT_EQUAL(mock_requests(&l_good) - good, 1);
    resp_free(&r);
}

/* ===================================================================== */
/* Suite 6: config errors                                                */
/* ===================================================================== */

static void expect_config_error(const char *name, const char *yaml, int line, const char *what)
{
    char want[512];
    char *out = NULL;
    const char *path = write_temp(name, yaml);
    const char *args[] = { "--check-config", "-c", path, "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    int st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    snprintf(want, sizeof want, "%s:%d:", path, line);
    st = router_run(args, &out);
    CU_ASSERT_EQUAL(st, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, what));
    /* one line */
    CU_ASSERT_TRUE(strchr(out, '\n') == NULL || strchr(out, '\n')[1] == '\0');
    if (st != 2 || strstr(out, want) == NULL || strstr(out, what) == NULL)
        fprintf(stderr, "\n    exit %d, output: %s\n", st, out);
    free(out);
}

static void test_unknown_fallback_model(void)
{
    expect_config_error("fb-unknown.yaml",
                        "models:\n"
                        "  A:\n"
                        "    backends: [http://127.0.0.1:9]\n"
                        "    fallback_model: nope\n",
                        4, "nope");
    /* through a chain of known models, one bad link */
    expect_config_error("fb-unknown2.yaml",
                        "models:\n"
                        "  A:\n"
                        "    backends: [http://127.0.0.1:9]\n"
                        "    fallback_model: B\n"
                        "  B:\n"
                        "    backends: [http://127.0.0.1:9]\n"
                        "    fallback_model: C\n",
                        7, "'C'");
}

static void test_self_fallback_and_default_model(void)
{
    expect_config_error("fb-self.yaml",
                        "models:\n"
                        "  A:\n"
                        "    backends: [http://127.0.0.1:9]\n"
                        "    fallback_model: A\n",
                        4, "itself");
    expect_config_error("fb-default.yaml",
                        "fallback: [default_model]\n"
                        "plugin_config:\n"
                        "  default_model:\n"
                        "    model: ghost\n"
                        "models:\n"
                        "  A:\n"
                        "    backends: [http://127.0.0.1:9]\n",
                        4, "ghost");
}

static void test_valid_fallback_config(void)
{
    char *out = NULL;
    const char *path = write_temp("fb-ok.yaml",
                                  "fallback: [model_map, default_model]\n"
                                  "plugin_config: {default_model: {model: C}}\n"
                                  "models:\n"
                                  "  A:\n"
                                  "    backends: [http://127.0.0.1:9]\n"
                                  "    fallback_model: b-alias\n"
                                  "  B:\n"
                                  "    backends: [http://127.0.0.1:9]\n"
                                  "    aliases: [b-alias]\n"
                                  "  C:\n"
                                  "    backends: [http://127.0.0.1:9]\n");
    const char *args[] = { "--check-config", "-c", path, "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    int st = router_run(args, &out);

    CU_ASSERT_EQUAL(st, 0);
    if (st != 0)
        fprintf(stderr, "\n    exit %d, output: %s\n", st, out);
    free(out);
}

/* --- fallback_429 (sdk/examples): a fallback plugin asked after each
 * failed attempt (ABI 1.2) --- */

static struct mock f4_a1, f4_a2, f4_b, f4_c;

static struct router f4_rt;

static int f4_setup(void)
{
    char yaml[2048];
    const char *args[] = { "--plugin-dir", EXAMPLE_PLUGIN_DIR, "--plugin-dir", BUILT_PLUGIN_DIR,
                           NULL };

    if (mock_start(&f4_a1, "f4-a1", "A", NULL) || mock_start(&f4_a2, "f4-a2", "A", NULL) ||
        mock_start(&f4_b, "f4-b", "B", NULL) || mock_start(&f4_c, "f4-c", "C", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "reroute_attempts: 2\n"
             "fallback: [fallback_429, model_map]\n"
             "plugin_config:\n"
             "  fallback_429: {model: B}\n"
             "models:\n"
             "  A: {backends: [%s, %s], fallback_model: C}\n"
             "  B: {backends: [%s]}\n"
             "  C: {backends: [%s]}\n",
             f4_a1.url, f4_a2.url, f4_b.url, f4_c.url);
    return router_start(&f4_rt, yaml, args);
}

static int f4_teardown(void)
{
    int st = router_stop(&f4_rt);
    mock_stop(&f4_a1);
    mock_stop(&f4_a2);
    mock_stop(&f4_b);
    mock_stop(&f4_c);
    return st == 0 ? 0 : -1;
}

static int f4_a_requests(void)
{
    return mock_requests(&f4_a1) + mock_requests(&f4_a2);
}

/* A's first 429 sends the request to B at once: one attempt on A, no
 * retry on A's other backend, no Retry-After wait. */
static void test_f4_first_429_falls_back_at_once(void)
{
    struct resp r;
    int before = f4_a_requests();
    double t0 = mono_seconds();

    CU_ASSERT_EQUAL(mock_set_mode(&f4_a1, "{\"status\":429,\"retry_after\":\"2\"}"), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&f4_a2, "{\"status\":429,\"retry_after\":\"2\"}"), 0);
    CU_ASSERT_EQUAL(http_post(f4_rt.port, CHAT, "{\"model\":\"A\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "A>B");
    CHECK_HEADER(&r, "X-Switchyard-Model", "B");
    CU_ASSERT_EQUAL(attempts_of(&r), 2);
    CU_ASSERT_TRUE(mono_seconds() - t0 < 1.5);
    resp_free(&r);
    CU_ASSERT_EQUAL(f4_a_requests() - before, 1);
    CU_ASSERT_TRUE(router_log_lines(&f4_rt, "A answered 429 (mock status 429): falling back to B", NULL) > 0);
    mock_set_mode(&f4_a1, "{}");
    mock_set_mode(&f4_a2, "{}");
}

/* Any other failure is declined: A's two backends (a backend that
 * answered 503 is not asked again at once), then model_map's C. */
static void test_f4_other_failures_declined(void)
{
    struct resp r;
    int before = f4_a_requests();

    CU_ASSERT_EQUAL(mock_set_mode(&f4_a1, "{\"status\":503}"), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&f4_a2, "{\"status\":503}"), 0);
    CU_ASSERT_EQUAL(http_post(f4_rt.port, CHAT, "{\"model\":\"A\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CHECK_HEADER(&r, "X-Switchyard-Fallback", "A>C");
    CU_ASSERT_EQUAL(attempts_of(&r), 3); /* A's two, then C */
    resp_free(&r);
    CU_ASSERT_EQUAL(f4_a_requests() - before, 2);
    mock_set_mode(&f4_a1, "{}");
    mock_set_mode(&f4_a2, "{}");
}

/* Its settings are checked: an unknown key stops --check-config. */
static void test_f4_config_checked(void)
{
    char yaml[512], *out = NULL;
    const char *path;

    snprintf(yaml, sizeof yaml,
             "fallback: [fallback_429]\n"
             "plugin_config:\n"
             "  fallback_429: {model: B, modle: C}\n"
             "models:\n  A: {backends: [%s]}\n  B: {backends: [%s]}\n",
             f4_a1.url, f4_b.url);
    path = write_temp("f4-bad.yaml", yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    const char *args[] = { "--check-config", "-c", path, "--plugin-dir", EXAMPLE_PLUGIN_DIR,
                           "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    CU_ASSERT_EQUAL(router_run(args, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(out != NULL ? strstr(out, "f4-bad.yaml:3") : NULL);
    CU_ASSERT_PTR_NOT_NULL(out != NULL ? strstr(out, "modle: unknown key") : NULL);
    free(out);
}

void register_fallback_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e fallback: retries", retries_setup, retries_teardown);
    CU_add_test(s, "one of two refuses: the other serves", test_one_refuses);
    CU_add_test(s, "one of two answers 500: the other serves", test_one_500);
    CU_add_test(s, "one of two answers 503: the other serves", test_one_503);
    CU_add_test(s, "one of two answers 429: the other serves", test_one_429);
    CU_add_test(s, "one of two closes: the other serves", test_one_closes);
    CU_add_test(s, "one of two hangs past upstream_timeout", test_one_hangs);
    CU_add_test(s, "400, 404, 422 passed through, one attempt", test_4xx_passed_through);
    CU_add_test(s, "429 Retry-After: 1 on the only backend", test_429_retry_after_only_backend);
    CU_add_test(s, "Retry-After capped by retry_after_cap", test_429_retry_after_capped);
    CU_add_test(s, "client gone during a Retry-After wait", test_client_gone_during_retry_after);

    s = CU_add_suite("e2e fallback: model_map", mm_setup, mm_teardown);
    CU_add_test(s, "all of A fail: B serves, body rewritten", test_fallback_a_to_b);
    CU_add_test(s, "an alias of A falls back like A", test_alias_falls_back);
    CU_add_test(s, "4xx from A: no fallback", test_4xx_no_fallback);
    CU_add_test(s, "chain X>Y>Z", test_chain);
    CU_add_test(s, "cycle P>Q>P: quick 503", test_cycle_503);
    CU_add_test(s, "every attempt timed out: 504", test_all_timeouts_504);
    CU_add_test(s, "timeouts then a refusal: 503", test_timeout_then_refused_503);
    CU_add_test(s, "a stream served by the fallback streams", test_stream_after_fallback);
    CU_add_test(s, "mid-stream death: error event, no retry", test_mid_stream_death);
    CU_add_test(s, "metrics count retries, fallbacks, exhausted", test_metrics);

    s = CU_add_suite("e2e fallback: default_model", dm_setup, dm_teardown);
    CU_add_test(s, "fallback: [default_model] swaps the policy", test_default_model_swaps_policy);
    CU_add_test(s, "the default model itself fails", test_default_model_itself_fails);

    s = CU_add_suite("e2e fallback: model_map then default_model", chain_setup, chain_teardown);
    CU_add_test(s, "model_map first, default_model when it declines", test_chain_model_map_then_default);

    s = CU_add_suite("e2e fallback: limits", limits_setup, limits_teardown);
    CU_add_test(s, "max_fallback_depth", test_max_fallback_depth);
    CU_add_test(s, "request_deadline across a fallback", test_request_deadline);
    CU_add_test(s, "idle_timeout mid-stream", test_idle_timeout_mid_stream);

    s = CU_add_suite("e2e fallback: config", NULL, NULL);
    CU_add_test(s, "fallback_model naming an unknown model", test_unknown_fallback_model);
    CU_add_test(s, "self fallback, unknown default_model", test_self_fallback_and_default_model);
    CU_add_test(s, "a valid fallback config checks OK", test_valid_fallback_config);

    s = CU_add_suite("e2e fallback: fallback_429 after each attempt", f4_setup, f4_teardown);
    CU_add_test(s, "the first 429 falls back at once", test_f4_first_429_falls_back_at_once);
    CU_add_test(s, "other failures declined: retries, then model_map",
                test_f4_other_failures_declined);
    CU_add_test(s, "unknown keys in its section stop the start", test_f4_config_checked);
}
