/* Failure semantics (issue: failure semantics beyond every peer):
 *
 *   passed through   when every attempt failed and a backend answered, the
 *                    client gets the last such answer as it was sent
 *                    (status, body, its type, Retry-After), with the
 *                    router's X-Switchyard-* headers
 *   the last one     a 503 and then a timeout: the 503
 *   no answer        only when no backend answered does the router make
 *                    its own 503 (with Retry-After) or 504
 *   not at once      a backend that answered 5xx is not asked again at once
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"

static void check_header(const struct resp *r, const char *name, const char *want)
{
    const char *v = resp_header(r, name);
    if (want == NULL) {
        CU_ASSERT_PTR_NULL(v);
    } else {
        CU_ASSERT_PTR_NOT_NULL(v);
        if (v != NULL && strcmp(v, want) != 0)
            fprintf(stderr, "\n    %s: '%s', want '%s'\n", name, v, want);
        if (v != NULL)
            CU_ASSERT_STRING_EQUAL(v, want);
    }
}

static void test_last_answer_passed(void)
{
    struct mock a, b;
    struct router rt;
    struct resp r;
    char yaml[512];

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "fs-a", "m", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(mock_start(&b, "fs-b", "m", NULL), 0);
    /* no wait for Retry-After: the answer goes back at once */
    snprintf(yaml, sizeof yaml, "retry_after_cap: 0\nupstream_timeout: 1\nrouting: roundrobin\n"
                                "models:\n  m: {backends: [%s, %s]}\n  solo: {backends: [%s]}\n",
             a.url, b.url, a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);

    /* the only backend answers 500: that answer, once, as it was */
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{\"status\":500}"), 0);
    int before = mock_requests(&a);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"solo\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 500);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "mock status 500") : NULL);
    check_header(&r, "Content-Type", "application/json");
    check_header(&r, "X-Switchyard-Attempts", "1");
    check_header(&r, "X-Switchyard-Model", "solo");
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "X-Request-Id"));
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&a) - before, 1); /* not asked again at once */

    /* a 429 with Retry-After: its Retry-After reaches the client */
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{\"status\":429,\"retry_after\":\"7\"}"), 0);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"solo\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 429);
    check_header(&r, "Retry-After", "7");
    resp_free(&r);

    /* a 503, then a backend that says nothing in time: the 503 */
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{\"status\":503}"), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&b, "{\"hang\":1}"), 0);
    int passed = 0;
    for (int i = 0; i < 2; i++) { /* roundrobin: either may be first */
        CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"m\"}", NULL, &r), 0);
        passed += r.status == 503 && r.body && strstr(r.body, "mock status 503") != NULL;
        /* 2, or 3 when the backend that answered 503 came first: after the
         * other's timeout it may be asked again */
        const char *n = resp_header(&r, "X-Switchyard-Attempts");
        CU_ASSERT(n != NULL && (strcmp(n, "2") == 0 || strcmp(n, "3") == 0));
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(passed, 2);

    /* no backend answered at all: the router's own 504 */
    CU_ASSERT_EQUAL(mock_set_mode(&a, "{\"hang\":1}"), 0);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"solo\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 504);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "no backend could serve model 'solo'") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    mock_stop(&b);
}

/* Refused connections: nobody answered, the router's 503 with Retry-After. */
static void test_no_answer_router_503(void)
{
    struct router rt;
    struct resp r;
    char yaml[256];

    snprintf(yaml, sizeof yaml, "models:\n  m: {backends: [http://127.0.0.1:%d]}\n", free_port());
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, "{\"model\":\"m\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "Retry-After"));
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "no backend could serve model 'm'") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}

void register_failures_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e failure semantics", NULL, NULL);
    CU_add_test(s, "the last answer passed through", test_last_answer_passed);
    CU_add_test(s, "no answer: the router's 503", test_no_answer_router_503);
}
