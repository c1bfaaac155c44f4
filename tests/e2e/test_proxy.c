/* Proxying as a client sees it: routing by model and alias, streaming,
 * headers passed and dropped, the GET endpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct mock ma, mb, mb2;
static struct router rt;

static int setup_suite(void)
{
    char yaml[2048];
    if (mock_start(&ma, "alpha", "model-a", NULL) || mock_start(&mb, "beta", "model-b", NULL) ||
        mock_start(&mb2, "beta2", "model-b", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n"
             "    aliases: [alias-a]\n"
             "  model-b:\n"
             "    backends: [%s, %s]\n",
             ma.url, mb.url, mb2.url);
    return router_start(&rt, yaml, NULL);
}

static int teardown_suite(void)
{
    int st = router_stop(&rt);
    mock_stop(&ma);
    mock_stop(&mb);
    mock_stop(&mb2);
    return st == 0 ? 0 : -1; /* SIGTERM must end it cleanly */
}

static void test_chat_routed_by_model(void)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions",
                              "{\"model\":\"model-a\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                              NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"alpha\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "chat.completion"));
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Model"), "model-a");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Attempts"), "1");
    CU_ASSERT_PTR_NULL(resp_header(&r, "X-Switchyard-Fallback"));
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Mock-Backend"), "alpha");
    CU_ASSERT_PTR_NOT_NULL(strstr(resp_header(&r, "Content-Type"), "application/json"));
    const char *id = resp_header(&r, "X-Request-Id");
    CU_ASSERT_TRUE(id != NULL && strlen(id) == 32);
    /* the backend's address is nowhere in the answer */
    CU_ASSERT_PTR_NULL(strstr(r.headers, "127.0.0.1"));
    CU_ASSERT_PTR_NULL(strstr(r.body, "127.0.0.1"));
    resp_free(&r);
}

static void test_completions_and_embeddings(void)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/completions", "{\"model\":\"model-b\",\"prompt\":\"x\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "text_completion"));
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Model"), "model-b");
    resp_free(&r);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/embeddings", "{\"model\":\"model-a\",\"input\":\"x\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"embedding\""));
    resp_free(&r);
}

static void test_alias_served_by_its_model(void)
{
    struct resp r, last;
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions",
                              "{\"model\":\"alias-a\",\"temperature\":0.25,\"messages\":[]}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Model"), "model-a");
    CU_ASSERT_EQUAL(mock_last(&ma, &last), 0);
    /* the backend gets the model's real name, every other byte kept */
    CU_ASSERT_PTR_NOT_NULL(strstr(last.body, "{\\\"model\\\":\\\"model-a\\\",\\\"temperature\\\":0.25,\\\"messages\\\":[]}"));
    resp_free(&last);
    resp_free(&r);
}

static void test_roundrobin_over_replicas(void)
{
    int before_b = mock_requests(&mb), before_b2 = mock_requests(&mb2);
    for (int i = 0; i < 8; i++) {
        struct resp r;
        CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "{\"model\":\"model-b\"}", NULL, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    int nb = mock_requests(&mb) - before_b, nb2 = mock_requests(&mb2) - before_b2;
    CU_ASSERT_EQUAL(nb + nb2, 8);
    /* two workers each keep their own turn: both replicas get traffic */
    CU_ASSERT_TRUE(nb >= 2 && nb2 >= 2);
}

static void test_streaming_arrives_incrementally(void)
{
    struct resp r;
    const char *h[] = { "X-Mock-Chunks: 5", "X-Mock-Chunk-Delay-Ms: 150", NULL };
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions",
                              "{\"model\":\"model-a\",\"stream\":true,\"messages\":[]}", h, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(resp_header(&r, "Content-Type"), "text/event-stream"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "tok0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "tok4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "data: [DONE]"));
    /* the first event reached the client long before the last was sent */
    CU_ASSERT_TRUE(r.chunks >= 4);
    CU_ASSERT_TRUE(r.first_byte < r.total - 0.4);
    resp_free(&r);
}

static void test_headers_passed_and_dropped(void)
{
    struct resp r, last;
    const char *h[] = { "Content-Type: application/json", "Authorization: Bearer client-key",
                        "X-Custom: kept", "Connection: keep-alive, X-Hop", "X-Hop: dropped",
                        "Proxy-Authorization: Basic secret", "X-Request-Id: my-request-42", NULL };
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions?api-version=2&x=y", "{\"model\":\"model-a\"}", h, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Request-Id"), "my-request-42");
    CU_ASSERT_EQUAL(mock_last(&ma, &last), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(last.body, "\"uri\":\"\\/v1\\/chat\\/completions?api-version=2&x=y\"") ||
                           strstr(last.body, "\"uri\":\"/v1/chat/completions?api-version=2&x=y\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(last.body, "Bearer client-key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(last.body, "\"X-Custom\":\"kept\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(last.body, "my-request-42"));
    CU_ASSERT_PTR_NULL(strstr(last.body, "X-Hop"));
    CU_ASSERT_PTR_NULL(strstr(last.body, "Proxy-Authorization"));
    CU_ASSERT_PTR_NULL(strstr(last.body, "keep-alive, X-Hop"));
    resp_free(&last);
    resp_free(&r);
}

static void test_get_endpoints(void)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_get(rt.port, "/health", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"status\":\"healthy\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rt.port, "/version", &r), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"version\":\"" PACKAGE_VERSION "\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rt.port, "/v1/models", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"object\":\"list\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"id\":\"model-a\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"id\":\"model-b\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"id\":\"alias-a\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"object\":\"model\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rt.port, "/engines", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"in_flight\":0"));
    resp_free(&r);
}

static void test_metrics_count_requests(void)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_get(rt.port, "/metrics", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(resp_header(&r, "Content-Type"), "text/plain"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "# TYPE switchyard_requests_total counter"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "switchyard_requests_total{model=\"model-a\",status=\"200\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "switchyard_upstream_latency_seconds_bucket{backend="));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "switchyard_backend_inflight{backend="));
    resp_free(&r);
}

void register_proxy_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e proxy", setup_suite, teardown_suite);
    CU_add_test(s, "chat routed by model", test_chat_routed_by_model);
    CU_add_test(s, "completions and embeddings", test_completions_and_embeddings);
    CU_add_test(s, "alias served by its model", test_alias_served_by_its_model);
    CU_add_test(s, "roundrobin over replicas", test_roundrobin_over_replicas);
    CU_add_test(s, "streaming arrives incrementally", test_streaming_arrives_incrementally);
    CU_add_test(s, "headers passed and dropped", test_headers_passed_and_dropped);
    CU_add_test(s, "GET endpoints", test_get_endpoints);
    CU_add_test(s, "metrics count requests", test_metrics_count_requests);
}
