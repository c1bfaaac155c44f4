/* The OTLP receiver the tracing tests export to (tests/otlp_receiver.c),
 * tested on its own, so that a tracing test failing says the router is
 * wrong and not the receiver:
 *
 *   valid export      two spans, parent and child, one with times as
 *                     strings and one as numbers: 200 "{}", both flattened
 *                     with their parent, attributes, status and service
 *   invalid bodies    each break of OTLP/JSON's rules (hex ids, enums as
 *                     integers, lowerCamelCase keys, times) gets 400, a
 *                     Status {code 3, message} naming the first problem by
 *                     its path, and counts as rejected; no span is kept
 *   hex case          ids are hex of either case, kept lowercase
 *   content type      anything but application/json gets 415
 *   mode              {"status":503} fails the exports (Retry-After too),
 *                     {"count":N} the next N, {"status":0} ends it
 *   control paths     reset, 405 and 404
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define ROOT "00f067aa0ba902b7"
#define CHILD "b7ad6b7169203331"

/* Span 0 (the root) has its times as strings, span 1 (its child) as
 * numbers, as both are allowed for fixed64. */
static const char valid[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"switchyard\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"switchyard\",\"version\":\"1.0\"},\"spans\":["
    "{\"traceId\":\"" TRACE "\",\"spanId\":\"" ROOT "\",\"parentSpanId\":\"\","
    "\"name\":\"POST /v1/chat/completions\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":\"1700000000500000000\","
    "\"attributes\":[{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"POST\"}},"
    "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}},"
    "{\"key\":\"sy.retries\",\"value\":{\"intValue\":1}},"
    "{\"key\":\"sy.weight\",\"value\":{\"doubleValue\":0.5}},"
    "{\"key\":\"sy.stream\",\"value\":{\"boolValue\":false}}],"
    "\"status\":{}},"
    "{\"traceId\":\"" TRACE "\",\"spanId\":\"" CHILD "\",\"parentSpanId\":\"" ROOT "\","
    "\"name\":\"upstream attempt\",\"kind\":3,"
    "\"startTimeUnixNano\":1700000000100000000,\"endTimeUnixNano\":1700000000400000000,"
    "\"attributes\":[{\"key\":\"server.address\",\"value\":{\"stringValue\":\"127.0.0.1\"}}],"
    "\"status\":{\"code\":2,\"message\":\"backend 503\"}}"
    "]}]}]}";

static struct otlp rx;

static int suite_init(void)
{
    return otlp_start(&rx);
}

static int suite_clean(void)
{
    otlp_stop(&rx);
    return 0;
}

static void reset(void)
{
    struct resp r;
    CU_ASSERT_FATAL(http_post(rx.port, "/_otlp/reset", "{}", NULL, &r) == 0 && r.status == 200);
    resp_free(&r);
}

/* POST body to /v1/traces with this Content-Type; the status, 0 if none. */
static long send_export_as(const char *body, const char *type, struct resp *r)
{
    char ct[128];
    const char *h[] = { ct, NULL };

    snprintf(ct, sizeof ct, "Content-Type: %s", type);
    if (http_post(rx.port, "/v1/traces", body, h, r) != 0)
        return 0;
    return r->status;
}

static long send_export(const char *body, struct resp *r)
{
    return send_export_as(body, "application/json", r);
}

/* valid with span i's key set to the JSON text value, or removed (NULL);
 * malloc'd. */
static char *variant(int i, const char *key, const char *value)
{
    json_object *doc = json_tokener_parse(valid), *rs, *ss, *span;
    char *s;

    rs = json_object_array_get_idx(json_object_object_get(doc, "resourceSpans"), 0);
    ss = json_object_array_get_idx(json_object_object_get(rs, "scopeSpans"), 0);
    span = json_object_array_get_idx(json_object_object_get(ss, "spans"), (size_t)i);
    if (value == NULL)
        json_object_object_del(span, key);
    else
        json_object_object_add(span, key, json_tokener_parse(value));
    s = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    json_object_put(doc);
    return s;
}

/* The span of spans whose spanId is id (borrowed), or NULL. */
static json_object *span_by_id(json_object *spans, const char *id)
{
    for (size_t i = 0; spans != NULL && i < json_object_array_length(spans); i++) {
        json_object *s = json_object_array_get_idx(spans, i);
        if (!strcmp(json_object_get_string(json_object_object_get(s, "spanId")), id))
            return s;
    }
    return NULL;
}

static const char *str_at(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "(absent)";
}

static int64_t int_at(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

static const char *header_or_empty(const struct resp *r, const char *name)
{
    const char *v = resp_header(r, name);
    return v != NULL ? v : "";
}

static int64_t stat_of(const char *key)
{
    json_object *st = otlp_stats(&rx);
    int64_t n = st != NULL ? int_at(st, key) : -1;
    json_object_put(st);
    return n;
}

static void test_valid(void)
{
    struct resp r;
    json_object *spans, *root, *child, *attrs, *v;

    reset();
    CU_ASSERT_EQUAL(send_export(valid, &r), 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{}");
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "Content-Type"));
    CU_ASSERT(strstr(header_or_empty(&r, "Content-Type"), "application/json") != NULL);
    resp_free(&r);

    spans = otlp_wait_spans(&rx, 2, 2000);
    CU_ASSERT_FATAL(spans != NULL);
    CU_ASSERT_EQUAL(json_object_array_length(spans), 2);
    root = span_by_id(spans, ROOT);
    child = span_by_id(spans, CHILD);
    CU_ASSERT_FATAL(root != NULL && child != NULL);
    CU_ASSERT_STRING_EQUAL(str_at(root, "traceId"), TRACE);
    CU_ASSERT_STRING_EQUAL(str_at(child, "traceId"), TRACE);
    CU_ASSERT_STRING_EQUAL(str_at(root, "parentSpanId"), "");
    CU_ASSERT_STRING_EQUAL(str_at(child, "parentSpanId"), ROOT);
    CU_ASSERT_STRING_EQUAL(str_at(root, "name"), "POST /v1/chat/completions");
    CU_ASSERT_STRING_EQUAL(str_at(child, "name"), "upstream attempt");
    CU_ASSERT_EQUAL(int_at(root, "kind"), 2);
    CU_ASSERT_EQUAL(int_at(child, "kind"), 3);
    CU_ASSERT_EQUAL(int_at(root, "start"), 1700000000000000000LL);
    CU_ASSERT_EQUAL(int_at(root, "end"), 1700000000500000000LL);
    CU_ASSERT_EQUAL(int_at(child, "start"), 1700000000100000000LL);
    CU_ASSERT_EQUAL(int_at(child, "end"), 1700000000400000000LL);
    CU_ASSERT_EQUAL(int_at(root, "status_code"), 0);
    CU_ASSERT_EQUAL(int_at(child, "status_code"), 2);
    CU_ASSERT_STRING_EQUAL(str_at(child, "status_message"), "backend 503");
    CU_ASSERT_STRING_EQUAL(str_at(root, "service_name"), "switchyard");
    CU_ASSERT_STRING_EQUAL(str_at(child, "service_name"), "switchyard");
    CU_ASSERT_STRING_EQUAL(str_at(child, "scope_name"), "switchyard");

    attrs = json_object_object_get(root, "attributes");
    CU_ASSERT_STRING_EQUAL(str_at(attrs, "http.request.method"), "POST");
    v = json_object_object_get(attrs, "http.response.status_code");
    CU_ASSERT(json_object_is_type(v, json_type_int) && json_object_get_int(v) == 200);
    CU_ASSERT_EQUAL(int_at(attrs, "sy.retries"), 1);
    v = json_object_object_get(attrs, "sy.weight");
    CU_ASSERT(json_object_is_type(v, json_type_double) && json_object_get_double(v) == 0.5);
    v = json_object_object_get(attrs, "sy.stream");
    CU_ASSERT(json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v));
    CU_ASSERT_STRING_EQUAL(str_at(json_object_object_get(child, "attributes"), "server.address"),
                           "127.0.0.1");
    json_object_put(spans);

    CU_ASSERT_EQUAL(stat_of("requests"), 1);
    CU_ASSERT_EQUAL(stat_of("spans"), 2);
    CU_ASSERT_EQUAL(stat_of("rejected"), 0);
}

static const struct bad {
    int span;             /* -1: body is the whole body */
    const char *key;
    const char *value;    /* JSON text; NULL removes key */
    const char *message;  /* what the message starts with */
} bads[] = {
    { 1, "traceId", "\"4bf92f3577b34da6a3ce929d0e0e473\"",
      "resourceSpans[0].scopeSpans[0].spans[1].traceId: 31 hex digits, want 32" },
    { 0, "spanId", "\"00f067aa0ba902bz\"",
      "resourceSpans[0].scopeSpans[0].spans[0].spanId: 'z' is not a hex digit" },
    /* protobuf's own JSON mapping: bytes as base64 */
    { 0, "traceId", "\"S/kvNXezTaajzpKdDg5HNg==\"",
      "resourceSpans[0].scopeSpans[0].spans[0].traceId: 'S' is not a hex digit (OTLP/JSON ids "
      "are hex, not base64)" },
    { 0, "traceId", "\"00000000000000000000000000000000\"",
      "resourceSpans[0].scopeSpans[0].spans[0].traceId: all zero" },
    { 1, "parentSpanId", "\"abc\"",
      "resourceSpans[0].scopeSpans[0].spans[1].parentSpanId: 3 hex digits, want 16" },
    { 0, "spanId", NULL, "resourceSpans[0].scopeSpans[0].spans[0].spanId: missing" },
    { 1, "name", NULL, "resourceSpans[0].scopeSpans[0].spans[1].name: missing" },
    { 1, "name", "\"\"", "resourceSpans[0].scopeSpans[0].spans[1].name: empty" },
    { 0, "endTimeUnixNano", "\"1000\"",
      "resourceSpans[0].scopeSpans[0].spans[0].endTimeUnixNano: 1000 is before "
      "startTimeUnixNano 1700000000000000000" },
    { 0, "startTimeUnixNano", "\"12abc\"",
      "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: \"12abc\" is not a decimal" },
    { 1, "startTimeUnixNano", "1.7e18",
      "resourceSpans[0].scopeSpans[0].spans[1].startTimeUnixNano: double, want an integer" },
    { 0, "kind", "9", "resourceSpans[0].scopeSpans[0].spans[0].kind: 9 is not one of 0..5" },
    { 0, "kind", "\"SPAN_KIND_SERVER\"",
      "resourceSpans[0].scopeSpans[0].spans[0].kind: string, want an integer" },
    { 1, "kind", NULL, "resourceSpans[0].scopeSpans[0].spans[1].kind: missing" },
    { 0, "trace_id", "\"" TRACE "\"",
      "resourceSpans[0].scopeSpans[0].spans[0].trace_id: not a lowerCamelCase key" },
    { 1, "status", "{\"code\":3}",
      "resourceSpans[0].scopeSpans[0].spans[1].status.code: 3 is not one of 0..2" },
    { 0, "attributes", "[{\"key\":\"x\",\"value\":{\"intValue\":1.5}}]",
      "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue: double" },
    { 0, "attributes", "[{\"key\":\"x\",\"value\":{}}]",
      "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value: no value" },
    { 0, "attributes", "[{\"key\":\"x\",\"value\":{\"stringValue\":\"a\",\"boolValue\":true}}]",
      "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value: both stringValue and "
      "boolValue" },
    { 0, "attributes", "[{\"key\":\"x\",\"value\":{\"boolValue\":true}},"
      "{\"key\":\"x\",\"value\":{\"boolValue\":false}}]",
      "resourceSpans[0].scopeSpans[0].spans[0].attributes[1].key: \"x\" again" },
    { -1, NULL, "not json", "body: not JSON" },
    { -1, NULL, "[]", "body: array, want an object" },
    { -1, NULL, "{}", "resourceSpans: missing" },
    { -1, NULL, "{\"resource_spans\":[]}", "resource_spans: not a lowerCamelCase key" },
    { -1, NULL, "{\"resourceSpans\":[{\"scopeSpans\":[]}]}", "resourceSpans[0].scopeSpans: empty" },
    { -1, NULL, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":{}}]}]}",
      "resourceSpans[0].scopeSpans[0].spans: object, want an array" },
};

static void test_invalid(void)
{
    reset();
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        char *body = b->span >= 0 ? variant(b->span, b->key, b->value) : strdup(b->value);
        json_object *err, *st;
        struct resp r;
        long status = send_export(body, &r);
        const char *msg;

        err = json_tokener_parse(r.body);
        msg = err != NULL ? str_at(err, "message") : "(no JSON)";
        if (status != 400 || strncmp(msg, b->message, strlen(b->message)) != 0)
            fprintf(stderr, "\n  case %zu: %ld %s\n   want 400 %s\n", i, status, msg, b->message);
        CU_ASSERT_EQUAL(status, 400);
        CU_ASSERT(strncmp(msg, b->message, strlen(b->message)) == 0);
        CU_ASSERT_EQUAL(err != NULL ? int_at(err, "code") : -1, 3);
        st = otlp_stats(&rx);
        CU_ASSERT_EQUAL(int_at(st, "rejected"), (int64_t)i + 1);
        CU_ASSERT_EQUAL(int_at(st, "spans"), 0);
        CU_ASSERT_STRING_EQUAL(str_at(st, "last_error"), msg);
        json_object_put(st);
        json_object_put(err);
        resp_free(&r);
        free(body);
    }
}

static void test_hex_case(void)
{
    char *body = variant(0, "traceId", "\"4BF92F3577B34DA6A3CE929D0E0E4736\"");
    json_object *spans;
    struct resp r;

    reset();
    CU_ASSERT_EQUAL(send_export(body, &r), 200);
    resp_free(&r);
    free(body);
    spans = otlp_spans(&rx);
    CU_ASSERT_STRING_EQUAL(str_at(span_by_id(spans, ROOT), "traceId"), TRACE);
    json_object_put(spans);
}

static void test_content_type(void)
{
    static const char *const refused[] = { "application/x-protobuf", "text/plain",
                                           "application/jsonl" };
    const char *gzip[] = { "Content-Type: application/json", "Content-Encoding: gzip", NULL };
    struct resp r;

    reset();
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        CU_ASSERT_EQUAL(send_export_as(valid, refused[i], &r), 415);
        CU_ASSERT(strstr(r.body, "application/json") != NULL);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(http_post(rx.port, "/v1/traces", valid, gzip, &r), 0);
    CU_ASSERT_EQUAL(r.status, 415);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_of("rejected"), 4);
    CU_ASSERT_EQUAL(stat_of("spans"), 0);
    CU_ASSERT_EQUAL(send_export_as(valid, "application/json; charset=utf-8", &r), 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_of("spans"), 2);
}

static void test_mode(void)
{
    json_object *err;
    struct resp r;

    reset();
    CU_ASSERT_EQUAL_FATAL(otlp_set_mode(&rx, "{\"status\":503,\"retry_after\":\"1\"}"), 0);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(send_export(valid, &r), 503);
        CU_ASSERT_STRING_EQUAL(header_or_empty(&r, "Retry-After"), "1");
        err = json_tokener_parse(r.body);
        CU_ASSERT_EQUAL(err != NULL ? int_at(err, "code") : -1, 14);
        json_object_put(err);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(stat_of("failed"), 2);
    CU_ASSERT_EQUAL(stat_of("spans"), 0);
    CU_ASSERT_EQUAL(otlp_set_mode(&rx, "{\"status\":0}"), 0);
    CU_ASSERT_EQUAL(send_export(valid, &r), 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_of("spans"), 2);

    /* the next two only */
    CU_ASSERT_EQUAL(otlp_set_mode(&rx, "{\"status\":429,\"count\":2}"), 0);
    CU_ASSERT_EQUAL(send_export(valid, &r), 429);
    CU_ASSERT_PTR_NULL(resp_header(&r, "Retry-After"));
    resp_free(&r);
    CU_ASSERT_EQUAL(send_export(valid, &r), 429);
    resp_free(&r);
    CU_ASSERT_EQUAL(send_export(valid, &r), 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_of("spans"), 4);
    CU_ASSERT_EQUAL(stat_of("requests"), 6);
    CU_ASSERT_EQUAL(stat_of("rejected"), 0);

    CU_ASSERT_NOT_EQUAL(otlp_set_mode(&rx, "{\"status\":200}"), 0);
    CU_ASSERT_NOT_EQUAL(otlp_set_mode(&rx, "{\"stauts\":503}"), 0);
}

static void test_control(void)
{
    json_object *spans;
    struct resp r;

    reset();
    CU_ASSERT_EQUAL(send_export(valid, &r), 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rx.port, "/_otlp/last", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strstr(r.body, "upstream attempt") != NULL);
    resp_free(&r);
    reset();
    spans = otlp_spans(&rx);
    CU_ASSERT(spans != NULL && json_object_array_length(spans) == 0);
    json_object_put(spans);
    CU_ASSERT_EQUAL(stat_of("requests"), 0);
    CU_ASSERT_EQUAL(http_get(rx.port, "/v1/traces", &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_post(rx.port, "/v1/logs", "{}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_of("requests"), 0);
}

void register_otlp_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e otlp receiver", suite_init, suite_clean);
    CU_add_test(s, "valid export", test_valid);
    CU_add_test(s, "invalid bodies", test_invalid);
    CU_add_test(s, "hex case", test_hex_case);
    CU_add_test(s, "content type", test_content_type);
    CU_add_test(s, "mode", test_mode);
    CU_add_test(s, "control paths", test_control);
}
