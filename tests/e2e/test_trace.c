/* Tracing (vllm_router's --otel-endpoint), against tests/otlp_receiver,
 * which holds every export to OTLP/JSON's rules:
 *
 *   spans              a request whose first attempt fails: one SERVER span
 *                      and two CLIENT spans of one trace, each attempt's
 *                      traceparent sent to its backend
 *   client context     a client's traceparent is the parent; one that says
 *                      "not sampled" is obeyed and passed on as it came
 *   endpoint, retries  host:port works; an endpoint that fails is retried
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"
#define BODY "{\"model\":\"m\",\"messages\":[]}"
#define CLIENT_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define CLIENT_SPAN "00f067aa0ba902b7"

static const char *str(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v != NULL ? json_object_get_string(v) : "";
}

static json_object *attrs(json_object *span)
{
    json_object *a = NULL;
    json_object_object_get_ex(span, "attributes", &a);
    return a;
}

/* The traceparent header the mock got last ("" when none). */
static void last_traceparent(const struct mock *m, char *out, size_t len)
{
    struct resp r;
    json_object *o = NULL, *h;

    out[0] = '\0';
    if (mock_last(m, &r) == 0 && r.status == 200)
        o = json_tokener_parse(r.body);
    resp_free(&r);
    if (o != NULL && json_object_object_get_ex(o, "headers", &h))
        snprintf(out, len, "%s", str(h, "traceparent"));
    json_object_put(o);
}

static void test_spans(void)
{
    struct otlp ot;
    struct mock bad, good;
    struct router rt;
    struct resp r;
    char yaml[512], tp[128];
    static const char *const hdr[] = { "traceparent: 00-" CLIENT_TRACE "-" CLIENT_SPAN "-01",
                                       NULL };

    CU_ASSERT_EQUAL_FATAL(otlp_start(&ot), 0);
    CU_ASSERT_EQUAL_FATAL(mock_start(&bad, "tr-bad", "m", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(mock_start(&good, "tr-good", "m", NULL), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&bad, "{\"status\":503}"), 0);
    snprintf(yaml, sizeof yaml,
             "otel_endpoint: %s\notel_service_name: router-under-test\n"
             "routing: roundrobin\nmodels:\n  m: {backends: [%s, %s]}\n", ot.url, bad.url, good.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    /* roundrobin starts at the first: it fails, the second answers */
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, BODY, hdr, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);

    json_object *spans = otlp_wait_spans(&ot, 3, 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(spans);
    CU_ASSERT_EQUAL(json_object_array_length(spans), 3);
    json_object *server = NULL, *client[2] = { NULL, NULL };
    int nclient = 0;
    for (size_t i = 0; i < json_object_array_length(spans); i++) {
        json_object *s = json_object_array_get_idx(spans, i), *k;
        CU_ASSERT_STRING_EQUAL(str(s, "traceId"), CLIENT_TRACE);
        CU_ASSERT_STRING_EQUAL(str(s, "service_name"), "router-under-test");
        if (json_object_object_get_ex(s, "kind", &k) && json_object_get_int(k) == 2)
            server = s;
        else if (nclient < 2)
            client[nclient++] = s;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(server);
    CU_ASSERT_EQUAL_FATAL(nclient, 2);
    CU_ASSERT_STRING_EQUAL(str(server, "name"), "router " CHAT);
    CU_ASSERT_STRING_EQUAL(str(server, "parentSpanId"), CLIENT_SPAN);
    CU_ASSERT_STRING_EQUAL(str(attrs(server), "vllm.model"), "m");
    CU_ASSERT_STRING_EQUAL(str(attrs(server), "http.status_code"), "200");
    CU_ASSERT_STRING_EQUAL(str(attrs(server), "vllm.backend_url"), good.url);
    /* the attempts, in either order: children of the request span */
    json_object *failed = strcmp(str(attrs(client[0]), "vllm.backend_url"), bad.url) == 0
                              ? client[0] : client[1];
    json_object *ok = failed == client[0] ? client[1] : client[0];
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_STRING_EQUAL(str(client[i], "name"), "process_request");
        CU_ASSERT_STRING_EQUAL(str(client[i], "parentSpanId"), str(server, "spanId"));
        CU_ASSERT_STRING_EQUAL(str(attrs(client[i]), "http.method"), "POST");
    }
    CU_ASSERT_STRING_EQUAL(str(attrs(failed), "http.status_code"), "503");
    CU_ASSERT_STRING_EQUAL(str(failed, "status_code"), "2");
    CU_ASSERT_STRING_EQUAL(str(attrs(failed), "switchyard.attempt"), "1");
    CU_ASSERT_STRING_EQUAL(str(attrs(ok), "http.status_code"), "200");
    CU_ASSERT_STRING_EQUAL(str(attrs(ok), "switchyard.attempt"), "2");
    char want[128];
    snprintf(want, sizeof want, "%s" CHAT, good.url);
    CU_ASSERT_STRING_EQUAL(str(attrs(ok), "http.url"), want);
    /* each backend heard of its own attempt's span */
    last_traceparent(&good, tp, sizeof tp);
    snprintf(want, sizeof want, "00-" CLIENT_TRACE "-%s-01", str(ok, "spanId"));
    CU_ASSERT_STRING_EQUAL(tp, want);
    last_traceparent(&bad, tp, sizeof tp);
    snprintf(want, sizeof want, "00-" CLIENT_TRACE "-%s-01", str(failed, "spanId"));
    CU_ASSERT_STRING_EQUAL(tp, want);
    json_object_put(spans);

    /* without a client context: a trace of its own */
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, BODY, NULL, &r), 0);
    resp_free(&r);
    spans = otlp_wait_spans(&ot, 5, 5000);
    CU_ASSERT(spans != NULL && json_object_array_length(spans) >= 5);
    if (spans != NULL && json_object_array_length(spans) >= 5) {
        json_object *s = json_object_array_get_idx(spans, 4);
        CU_ASSERT(strcmp(str(s, "traceId"), CLIENT_TRACE) != 0 && strlen(str(s, "traceId")) == 32);
    }
    json_object_put(spans);
    CU_ASSERT(metric_value(rt.port, "switchyard_trace_spans_total{result=\"exported\"}", -1) >= 3);
    json_object *st = otlp_stats(&ot);
    CU_ASSERT(st != NULL && strcmp(str(st, "rejected"), "0") == 0);
    json_object_put(st);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&bad);
    mock_stop(&good);
    otlp_stop(&ot);
}

/* A client that says "not sampled" is obeyed: no span, and its
 * traceparent goes on as it came. */
static void test_not_sampled(void)
{
    struct otlp ot;
    struct mock a;
    struct router rt;
    struct resp r;
    char yaml[256], tp[128];
    static const char *const hdr[] = { "traceparent: 00-" CLIENT_TRACE "-" CLIENT_SPAN "-00",
                                       NULL };

    CU_ASSERT_EQUAL_FATAL(otlp_start(&ot), 0);
    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "tr-ns", "m", NULL), 0);
    /* the host:port form */
    snprintf(yaml, sizeof yaml, "otel_endpoint: \"127.0.0.1:%d\"\nmodels:\n  m: {backends: [%s]}\n",
             ot.port, a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, BODY, hdr, &r), 0);
    resp_free(&r);
    last_traceparent(&a, tp, sizeof tp);
    CU_ASSERT_STRING_EQUAL(tp, "00-" CLIENT_TRACE "-" CLIENT_SPAN "-00");
    /* a sampled one afterwards does arrive, through host:port */
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, BODY, NULL, &r), 0);
    resp_free(&r);
    json_object *spans = otlp_wait_spans(&ot, 2, 5000);
    CU_ASSERT(spans != NULL && json_object_array_length(spans) == 2);
    for (size_t i = 0; spans != NULL && i < json_object_array_length(spans); i++)
        CU_ASSERT(strcmp(str(json_object_array_get_idx(spans, i), "traceId"), CLIENT_TRACE) != 0);
    json_object_put(spans);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    otlp_stop(&ot);
}

/* An endpoint that fails for a while: the export is tried again. */
static void test_export_retried(void)
{
    struct otlp ot;
    struct mock a;
    struct router rt;
    struct resp r;
    char yaml[256];

    CU_ASSERT_EQUAL_FATAL(otlp_start(&ot), 0);
    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "tr-rt", "m", NULL), 0);
    CU_ASSERT_EQUAL(otlp_set_mode(&ot, "{\"status\":503,\"count\":2}"), 0);
    snprintf(yaml, sizeof yaml, "otel_endpoint: %s/\nmodels:\n  m: {backends: [%s]}\n", ot.url,
             a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, BODY, NULL, &r), 0);
    resp_free(&r);
    /* two refusals, 1 s then 2 s apart, then it is taken */
    json_object *spans = otlp_wait_spans(&ot, 2, 10000);
    CU_ASSERT(spans != NULL && json_object_array_length(spans) == 2);
    json_object_put(spans);
    json_object *st = otlp_stats(&ot);
    CU_ASSERT(st != NULL && strcmp(str(st, "failed"), "2") == 0);
    json_object_put(st);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "trace export to", "trying again"), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "trace export to", "working again"), 1);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    otlp_stop(&ot);
}

void register_trace_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e tracing", NULL, NULL);
    CU_add_test(s, "a span per request and per attempt", test_spans);
    CU_add_test(s, "a client's not-sampled context", test_not_sampled);
    CU_add_test(s, "a failing endpoint is retried", test_export_retried);
}
