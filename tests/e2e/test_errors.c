/* Errors as a client sees them: every error case of SPEC.md ("HTTP",
 * "Bad input and limits") with its status, its OpenAI-shaped JSON body and
 * X-Request-Id; hostile and vanishing clients; and after each, a daemon
 * that still serves everyone else. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct mock ma;
static struct router rt;
static int dead_port;

static int setup_suite(void)
{
    char yaml[2048];

    if (mock_start(&ma, "err-alpha", "model-a", NULL))
        return -1;
    dead_port = free_port(); /* nobody listens here */
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "max_body_size: 1KiB\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n"
             "    aliases: [alias-a]\n"
             "  dead-model:\n"
             "    backends: [http://127.0.0.1:%d]\n",
             ma.url, dead_port);
    return router_start(&rt, yaml, NULL);
}

static int teardown_suite(void)
{
    int st = router_stop(&rt);
    mock_stop(&ma);
    return st == 0 ? 0 : -1; /* SIGTERM must end it cleanly */
}

/* --- checks shared by the tests --- */

/* The body is {"error":{"message":"...","type":"...","code":status}}. */
static void check_error_body(const struct resp *r, long status)
{
    struct json_object *root, *err, *v;

    root = json_tokener_parse(r->body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_TRUE(json_object_is_type(root, json_type_object));
    CU_ASSERT_TRUE(json_object_object_get_ex(root, "error", &err));
    if (json_object_object_get_ex(root, "error", &err) && json_object_is_type(err, json_type_object)) {
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "message", &v) &&
                       json_object_is_type(v, json_type_string) &&
                       json_object_get_string_len(v) > 0);
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "type", &v) &&
                       json_object_is_type(v, json_type_string) &&
                       json_object_get_string_len(v) > 0);
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "code", &v) &&
                       json_object_is_type(v, json_type_int) &&
                       json_object_get_int(v) == (int)status);
    } else {
        CU_FAIL("no \"error\" object in the body");
    }
    json_object_put(root);
    CU_ASSERT_PTR_NOT_NULL(resp_header(r, "Content-Type"));
    if (resp_header(r, "Content-Type") != NULL)
        CU_ASSERT_PTR_NOT_NULL(strstr(resp_header(r, "Content-Type"), "application/json"));
}

/* A router-made error: status, JSON body, X-Request-Id. */
static void check_router_error(const struct resp *r, long status)
{
    const char *id;

    CU_ASSERT_EQUAL(r->curl_error, 0);
    CU_ASSERT_EQUAL(r->status, status);
    check_error_body(r, status);
    id = resp_header(r, "X-Request-Id");
    CU_ASSERT_TRUE(id != NULL && strlen(id) > 0);
    /* no backend address leaks into an error */
    CU_ASSERT_PTR_NULL(strstr(r->body, "127.0.0.1"));
    CU_ASSERT_PTR_NULL(strstr(r->headers, "127.0.0.1"));
}

/* The daemon still answers: /health and a real request. */
static void check_still_serving(void)
{
    struct resp r;

    CU_ASSERT_EQUAL(http_raw(rt.port, "GET", "/health", NULL, NULL, 3000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "healthy"));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_raw(rt.port, "POST", "/v1/chat/completions",
                             "{\"model\":\"model-a\",\"messages\":[]}", NULL, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"err-alpha\""));
    resp_free(&r);
}

static void post_expect(const char *body, long status)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", body, NULL, &r), 0);
    check_router_error(&r, status);
    resp_free(&r);
}

/* --- 400 --- */

static void test_400_not_json(void)
{
    int before = mock_requests(&ma);
    post_expect("this is not json", 400);
    post_expect("{\"model\":\"model-a\",", 400);         /* truncated */
    post_expect("{\"model\":\"model-a\"} trailing", 400); /* garbage after */
    /* nothing of it reached the backend */
    CU_ASSERT_EQUAL(mock_requests(&ma), before);
    check_still_serving();
}

/* JSON is read as RFC 8259 (and Python's json, which the backends use) says,
 * not as leniently as json-c: what a backend would refuse never leaves. */
static void test_400_json_read_strictly(void)
{
    int before = mock_requests(&ma);
    struct resp r;
    char deep[1024];
    size_t n;

    post_expect("{\"model\":\"model-a\",\"temperature\":NaN}", 400);
    post_expect("{\"model\":\"model-a\",\"n\":Infinity}", 400);
    post_expect("{\"model\":\"model-a\",}", 400);            /* trailing comma */
    post_expect("{'model':\"model-a\"}", 400);                   /* single quotes */
    post_expect("{\"model\":\"model-a\",\"x\":\"a\tb\"}", 400); /* raw tab in a string */
    post_expect("{\"model\":\"model-a\",\"n\":01}", 400);         /* leading zero */
    post_expect("{\"model\":\"model-a\"/* note */}", 400);        /* comment */
    CU_ASSERT_EQUAL(mock_requests(&ma), before);
    /* deeper than json-c's 32 levels (a JSON schema can be): served */
    n = (size_t)snprintf(deep, sizeof deep, "{\"model\":\"model-a\",\"response_format\":");
    for (int i = 0; i < 200; i++)
        deep[n++] = '[';
    for (int i = 0; i < 200; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", deep, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&ma), before + 1);
}

/* Is s[0..n) UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF, nothing cut short)? */
static int is_utf8(const char *s, size_t n)
{
    const unsigned char *b = (const unsigned char *)s;

    for (size_t p = 0; p < n;) {
        unsigned cp;
        size_t len;
        if (b[p] < 0x80) {
            p++;
            continue;
        }
        if ((b[p] & 0xE0) == 0xC0)
            len = 2, cp = b[p] & 0x1Fu;
        else if ((b[p] & 0xF0) == 0xE0)
            len = 3, cp = b[p] & 0x0Fu;
        else if ((b[p] & 0xF8) == 0xF0)
            len = 4, cp = b[p] & 0x07u;
        else
            return 0;
        if (len > n - p)
            return 0;
        for (size_t i = 1; i < len; i++) {
            if ((b[p + i] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (b[p + i] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return 0;
        p += len;
    }
    return 1;
}

/* A 400 whose message has `want` in it, in a body that is UTF-8. */
static void post_expect_400_saying(int port, const char *body, const char *want)
{
    struct resp r;
    struct json_object *root, *err, *msg;

    CU_ASSERT_EQUAL(http_post(port, "/v1/chat/completions", body, NULL, &r), 0);
    check_router_error(&r, 400);
    CU_ASSERT_TRUE(r.body != NULL && is_utf8(r.body, r.len));
    root = r.body ? json_tokener_parse(r.body) : NULL;
    if (root != NULL && json_object_object_get_ex(root, "error", &err) &&
        json_object_object_get_ex(err, "message", &msg)) {
        const char *m = json_object_get_string(msg);
        if (strstr(m, want) == NULL)
            fprintf(stderr, "\n    message '%s', want '%s'\n", m, want);
        CU_ASSERT_PTR_NOT_NULL(strstr(m, want));
    } else {
        CU_FAIL("no error message");
    }
    json_object_put(root);
    resp_free(&r);
}

/* The body is UTF-8 or it is refused, as Python (which decodes it before
 * it reads JSON) refuses it: in the model, in any other string, anywhere.
 * Before, such a model came back raw in the 404's message, and the answer
 * was not UTF-8. */
static void test_400_invalid_utf8(void)
{
    static const char *const bodies[] = {
        /* the model: a byte that starts nothing, an overlong '/', an encoded
         * surrogate, past U+10FFFF, cut short */
        "{\"model\":\"model-\xff\",\"messages\":[]}",
        "{\"model\":\"model\xc0\xaf" "a\",\"messages\":[]}",
        "{\"model\":\"model-a\xed\xa0\x80\",\"messages\":[]}",
        "{\"model\":\"\xf4\x90\x80\x80\"}",
        "{\"model\":\"model-a\xe2\x82\"}",
        /* another string, a known model */
        "{\"model\":\"model-a\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\xc3\"}]}",
        "{\"model\":\"model-a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\x80y\"}]}",
        "{\"model\":\"model-a\",\"user\":\"\xed\xbf\xbf\"}",
        "{\"model\":\"model-a\",\"\xfe\":1}",
        /* outside the strings, and with other errors after it */
        "{\"model\":\"model-a\"}\xe2\x80",
        "{\"model\":\"model-a\",\"x\":\"\xc1\xbf\",}",
        NULL,
    };
    int before = mock_requests(&ma);
    struct resp r;

    for (int i = 0; bodies[i]; i++)
        post_expect_400_saying(rt.port, bodies[i], "not valid UTF-8 (at byte ");
    post_expect_400_saying(rt.port, "{\"model\":\"model-\xff\"}", "(at byte 16)");
    CU_ASSERT_EQUAL(mock_requests(&ma), before);
    /* UTF-8 of every length is served; a lone surrogate escape is JSON */
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions",
                              "{\"model\":\"model-a\",\"messages\":[{\"role\":\"user\",\"content\":"
                              "\"caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b \xf0\x9f\x98\x80 \\ud800\"}]}",
                              NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&ma), before + 1);
    /* an unknown model that is UTF-8 comes back in the 404 as it is */
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions",
                              "{\"model\":\"mod\xc3\xa8le-\xf0\x9f\xa6\x99\"}", NULL, &r), 0);
    check_router_error(&r, 404);
    CU_ASSERT_TRUE(r.body != NULL && is_utf8(r.body, r.len));
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "mod\xc3\xa8le-\xf0\x9f\xa6\x99") : NULL);
    resp_free(&r);
    check_still_serving();
}

static void test_400_not_an_object(void)
{
    post_expect("[{\"model\":\"model-a\"}]", 400);
    post_expect("\"model-a\"", 400);
    post_expect("42", 400);
    post_expect("null", 400);
    check_still_serving();
}

static void test_400_no_string_model(void)
{
    post_expect("{\"messages\":[]}", 400);
    post_expect("{}", 400);
    post_expect("{\"model\":42}", 400);
    post_expect("{\"model\":null}", 400);
    post_expect("{\"model\":[\"model-a\"]}", 400);
    post_expect("{\"model\":{\"id\":\"model-a\"}}", 400);
    post_expect("{\"model\":\"\"}", 400); /* an empty name names nothing */
    check_still_serving();
}

static void test_400_empty_body(void)
{
    post_expect("", 400);
    check_still_serving();
}

static void test_400_on_every_proxied_path(void)
{
    static const char *const paths[] = { "/v1/completions", "/v1/embeddings", "/v1/responses",
                                         "/v1/messages", "/v1/rerank", "/rerank", "/v1/score",
                                         "/score", "/tokenize", "/detokenize", NULL };
    for (int i = 0; paths[i]; i++) {
        struct resp r;
        CU_ASSERT_EQUAL(http_post(rt.port, paths[i], "not json", NULL, &r), 0);
        check_router_error(&r, 400);
        resp_free(&r);
    }
}

/* --- 404, 405 --- */

static void test_404_unknown_model(void)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions",
                              "{\"model\":\"no-such-model\",\"messages\":[]}", NULL, &r), 0);
    check_router_error(&r, 404);
    /* the message names the model asked for */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "no-such-model"));
    resp_free(&r);
    /* names are exact: case and whitespace matter */
    post_expect("{\"model\":\"MODEL-A\"}", 404);
    post_expect("{\"model\":\"model-a \"}", 404);
    check_still_serving();
}

static void test_404_unknown_path(void)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_get(rt.port, "/nope", &r), 0);
    check_router_error(&r, 404);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/nope", "{\"model\":\"model-a\"}", NULL, &r), 0);
    check_router_error(&r, 404);
    resp_free(&r);
    check_still_serving();
}

/* vllm_router's batch and files API: not a typo, a feature switchyard
 * does not have: 501, OpenAI-shaped, never 404 */
static void test_501_vllm_router_features(void)
{
    static const char *const paths[] = { "/v1/files", "/v1/files/file-abc/content",
                                         "/v1/batches", "/v1/batches/batch-1/cancel" };
    struct resp r;

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        CU_ASSERT_EQUAL(http_post(rt.port, paths[i], "{}", NULL, &r), 0);
        check_router_error(&r, 501);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "not supported by switchyard"));
        resp_free(&r);
        CU_ASSERT_EQUAL(http_get(rt.port, paths[i], &r), 0);
        check_router_error(&r, 501);
        resp_free(&r);
    }
    /* a path that only starts alike is no such endpoint */
    CU_ASSERT_EQUAL(http_get(rt.port, "/v1/filesystem", &r), 0);
    check_router_error(&r, 404);
    resp_free(&r);
    check_still_serving();
}

static void test_405_wrong_method(void)
{
    struct resp r;
    const char *allow;

    CU_ASSERT_EQUAL(http_get(rt.port, "/v1/chat/completions", &r), 0);
    check_router_error(&r, 405);
    allow = resp_header(&r, "Allow");
    CU_ASSERT_TRUE(allow != NULL && strstr(allow, "POST") != NULL);
    resp_free(&r);
    /* and the other way round: POST on a GET endpoint */
    CU_ASSERT_EQUAL(http_post(rt.port, "/health", "{}", NULL, &r), 0);
    check_router_error(&r, 405);
    allow = resp_header(&r, "Allow");
    CU_ASSERT_TRUE(allow != NULL && strstr(allow, "GET") != NULL);
    resp_free(&r);
    check_still_serving();
}

/* --- 413 --- */

static void test_413_body_over_limit(void)
{
    char *big = malloc(4096);
    struct resp r;
    int before = mock_requests(&ma);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    /* valid JSON, model known: only its size is wrong */
    int n = snprintf(big, 4096, "{\"model\":\"model-a\",\"pad\":\"");
    memset(big + n, 'x', 2000);
    strcpy(big + n + 2000, "\"}");
    http_raw(rt.port, "POST", "/v1/chat/completions", big, NULL, 5000, &r);
    CU_ASSERT_EQUAL(r.status, 413);
    CU_ASSERT_TRUE(r.total < 3.0); /* answered, not left hanging */
    /* the router's own JSON, like every error it makes */
    check_error_body(&r, 413);
    CU_ASSERT_PTR_NOT_NULL(resp_header(&r, "X-Request-Id"));
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&ma), before);

    /* just under the limit still goes through */
    n = snprintf(big, 4096, "{\"model\":\"model-a\",\"pad\":\"");
    memset(big + n, 'x', 900);
    strcpy(big + n + 900, "\"}");
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", big, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    free(big);
    check_still_serving();
}

static void test_413_chunked_body_over_limit(void)
{
    /* no Content-Length: the limit must hold while the body streams in */
    char req[8192], out[4096];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "800\r\n");
    memset(req + n, 'x', 0x800);
    n += 0x800;
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n800\r\n");
    memset(req + n, 'y', 0x800);
    n += 0x800;
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n0\r\n\r\n");
    double t0 = mono_seconds();
    int got = tcp_exchange(rt.port, req, (size_t)n, out, sizeof out, 3000);
    CU_ASSERT_TRUE(mono_seconds() - t0 < 2.5);
    /* a 413 in JSON, the connection closed after it, never a 200 */
    CU_ASSERT_TRUE(got > 0);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 413", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"code\":413"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Connection: close"));
    check_still_serving();
}

/* max_body_size counts the body, not its chunk framing: a body under the
 * limit in 1-byte chunks with long extensions (~100x its size) is served. */
static void test_chunked_framing_not_counted(void)
{
    static const char body[] = "{\"model\":\"model-a\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    size_t cap = 200000, n = 0;
    char *req = malloc(cap), out[4096], ext[128];

    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    memset(ext, 'e', sizeof ext - 1);
    ext[sizeof ext - 1] = '\0';
    n += (size_t)snprintf(req, cap, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n");
    for (size_t i = 0; i + 1 < sizeof body; i++)
        n += (size_t)snprintf(req + n, cap - n, "1;%s\r\n%c\r\n", ext, body[i]);
    n += (size_t)snprintf(req + n, cap - n, "0\r\n\r\n");
    CU_ASSERT_TRUE(n > 20 * 1024); /* far past max_body_size (1KiB) */
    CU_ASSERT_TRUE(tcp_exchange(rt.port, req, n, out, sizeof out, 5000) > 0);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200", 12) == 0);
    free(req);
}

/* --- 503 --- */

static void test_503_backend_refuses(void)
{
    struct resp r;
    const char *ra;

    CU_ASSERT_EQUAL(http_raw(rt.port, "POST", "/v1/chat/completions",
                             "{\"model\":\"dead-model\",\"messages\":[]}", NULL, 10000, &r), 0);
    check_router_error(&r, 503);
    ra = resp_header(&r, "Retry-After");
    CU_ASSERT_PTR_NOT_NULL(ra);
    if (ra != NULL)
        CU_ASSERT_TRUE(atoi(ra) >= 1);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Model") ? resp_header(&r, "X-Switchyard-Model") : "", "dead-model");
    CU_ASSERT_TRUE(resp_header(&r, "X-Switchyard-Attempts") != NULL &&
                   atoi(resp_header(&r, "X-Switchyard-Attempts")) >= 1);
    /* the refused address is not told to the client */
    {
        char port[16];
        snprintf(port, sizeof port, "%d", dead_port);
        CU_ASSERT_PTR_NULL(strstr(r.body, port));
    }
    CU_ASSERT_TRUE(r.total < 5.0);
    resp_free(&r);
    check_still_serving();
}

/* --- X-Request-Id on errors --- */

static void test_errors_keep_client_request_id(void)
{
    static const char *const h[] = { "X-Request-Id: err-test-4711", NULL };
    static const char *const bodies[] = { "nope", "{\"model\":\"no-such-model\"}",
                                          "{\"model\":\"dead-model\"}", NULL };
    static const long codes[] = { 400, 404, 503 };

    for (int i = 0; bodies[i]; i++) {
        struct resp r;
        CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", bodies[i], h, &r), 0);
        CU_ASSERT_EQUAL(r.status, codes[i]);
        CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Request-Id") ? resp_header(&r, "X-Request-Id") : "",
                               "err-test-4711");
        resp_free(&r);
    }
}

static void test_generated_request_ids_differ(void)
{
    struct resp a, b;
    char ida[256] = "";

    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "nope", NULL, &a), 0);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "nope", NULL, &b), 0);
    if (resp_header(&a, "X-Request-Id"))
        snprintf(ida, sizeof ida, "%s", resp_header(&a, "X-Request-Id"));
    CU_ASSERT_TRUE(ida[0] != '\0');
    CU_ASSERT_TRUE(resp_header(&b, "X-Request-Id") != NULL &&
                   strcmp(ida, resp_header(&b, "X-Request-Id")) != 0);
    resp_free(&a);
    resp_free(&b);
}

/* --- hostile input --- */

/* Send raw bytes; the answer must be a 4xx, or 505 for a version the
 * router does not speak (or a closed connection), and come promptly,
 * never a hang. */
static void raw_expect_rejected(const char *data, size_t len, const char *what)
{
    char out[4096];
    double t0 = mono_seconds();
    int got = tcp_exchange(rt.port, data, len, out, sizeof out, 3000);
    double took = mono_seconds() - t0;

    CU_ASSERT_TRUE(got >= 0);
    if (took >= 2.5)
        fprintf(stderr, "\n  %s: connection left open (%.1fs)\n", what, took);
    CU_ASSERT_TRUE(took < 2.5);
    if (got > 0) {
        int ok = strncmp(out, "HTTP/1.", 7) == 0 &&
                 (out[9] == '4' || strncmp(out + 9, "505", 3) == 0);
        if (!ok)
            fprintf(stderr, "\n  %s: answered '%.40s'\n", what, out);
        CU_ASSERT_TRUE(ok);
    }
}

static void test_garbage_bytes(void)
{
    static const char garbage[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xff\xfe\x00\r\n\r\n";
    raw_expect_rejected(garbage, sizeof garbage - 1, "TLS hello");
    raw_expect_rejected("\r\n\r\n\r\n\r\n", 8, "blank lines");
    raw_expect_rejected("hello there\r\n\r\n", 15, "text");
    raw_expect_rejected("GET / HTTP/9.9\r\nHost: x\r\n\r\n", 27, "bad version");
    char binary[512];
    for (size_t i = 0; i < sizeof binary; i++)
        binary[i] = (char)((i * 7919u + 13u) & 0xff);
    memcpy(binary + sizeof binary - 4, "\r\n\r\n", 4);
    raw_expect_rejected(binary, sizeof binary, "binary");
    check_still_serving();
}

static void test_request_line_without_version(void)
{
    const char *req = "GET /health\r\n\r\n";
    char out[4096];
    double t0 = mono_seconds();
    int got = tcp_exchange(rt.port, req, strlen(req), out, sizeof out, 3000);

    CU_ASSERT_TRUE(got >= 0);
    CU_ASSERT_TRUE(mono_seconds() - t0 < 2.5);
    /* rejected (4xx or closed); an HTTP/0.9 style answer is not given */
    if (got > 0)
        CU_ASSERT_TRUE(strncmp(out, "HTTP/1.", 7) == 0 && out[9] == '4');
    raw_expect_rejected("POST\r\n\r\n", 8, "method only");
    check_still_serving();
}

static void test_header_without_colon(void)
{
    const char *req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      "ThisHeaderHasNoColon\r\nContent-Length: 19\r\n\r\n{\"model\":\"model-a\"}";
    int before = mock_requests(&ma);
    raw_expect_rejected(req, strlen(req), "header without colon");
    CU_ASSERT_EQUAL(mock_requests(&ma), before);
    check_still_serving();
}

static void test_oversized_headers(void)
{
    size_t big = 70 * 1024;
    char *req = malloc(big + 256);
    int n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    n = snprintf(req, 256, "GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ");
    memset(req + n, 'a', big);
    n += (int)big;
    n += snprintf(req + n, 256, "\r\n\r\n");
    raw_expect_rejected(req, (size_t)n, "one 70 KiB header");

    /* many smallish headers adding up to more than 64 KiB */
    n = snprintf(req, 256, "GET /health HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; (size_t)n + 128 < big; i++)
        n += snprintf(req + n, 128, "X-H%d: %050d\r\n", i, i);
    n += snprintf(req + n, 8, "\r\n");
    raw_expect_rejected(req, (size_t)n, "many headers");
    free(req);

    /* via curl too: a 4xx status, not a success */
    {
        char *h = malloc(70 * 1024 + 16);
        const char *hs[2] = { h, NULL };
        struct resp r;
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        strcpy(h, "X-Huge: ");
        memset(h + 8, 'b', 70 * 1024);
        h[8 + 70 * 1024] = '\0';
        http_raw(rt.port, "POST", "/v1/chat/completions", "{\"model\":\"model-a\"}", hs, 3000, &r);
        CU_ASSERT_TRUE(r.status == 0 || (r.status >= 400 && r.status < 500));
        CU_ASSERT_TRUE(r.total < 2.5);
        resp_free(&r);
        free(h);
    }
    check_still_serving();
}

static void test_half_request_then_disconnect(void)
{
    static const char *const halves[] = {
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\":\"mo",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le",
        "POST /v1/chat/compl",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"mod",
        NULL,
    };
    int before = mock_requests(&ma);

    for (int round = 0; round < 5; round++) {
        for (int i = 0; halves[i]; i++) {
            int fd = tcp_connect(rt.port);
            CU_ASSERT_TRUE_FATAL(fd >= 0);
            CU_ASSERT_EQUAL(write(fd, halves[i], strlen(halves[i])), (ssize_t)strlen(halves[i]));
            if (round % 2)
                shutdown(fd, SHUT_WR); /* a half-close first, then gone */
            close(fd);
        }
    }
    /* a connection that just sits there does not block anyone else */
    int idle = tcp_connect(rt.port);
    CU_ASSERT_TRUE(idle >= 0);
    if (idle >= 0)
        CU_ASSERT_EQUAL(write(idle, halves[0], strlen(halves[0])), (ssize_t)strlen(halves[0]));
    check_still_serving();
    if (idle >= 0)
        close(idle);
    /* none of the torn requests went upstream (check_still_serving sent one) */
    CU_ASSERT_EQUAL(mock_requests(&ma), before + 1);
    check_still_serving();
}

static void test_client_gone_while_backend_slow(void)
{
    static const char *const h[] = { "X-Mock-Delay-Ms: 2000", NULL };

    for (int i = 0; i < 3; i++) {
        struct resp r;
        double t0 = mono_seconds();
        /* the client gives up after 300 ms */
        CU_ASSERT_NOT_EQUAL(http_raw(rt.port, "POST", "/v1/chat/completions",
                                     "{\"model\":\"model-a\",\"messages\":[]}", h, 300, &r), 0);
        CU_ASSERT_EQUAL(r.status, 0);
        CU_ASSERT_TRUE(mono_seconds() - t0 < 1.5);
        resp_free(&r);
    }
    /* a streaming client that vanishes mid-stream */
    {
        static const char *const hs[] = { "X-Mock-Chunks: 20", "X-Mock-Chunk-Delay-Ms: 100", NULL };
        struct resp r;
        CU_ASSERT_NOT_EQUAL(http_raw(rt.port, "POST", "/v1/chat/completions",
                                     "{\"model\":\"model-a\",\"stream\":true}", hs, 400, &r), 0);
        resp_free(&r);
    }
    /* everyone else is served at once, while those upstream transfers
     * would still be running */
    {
        struct resp r;
        double t0 = mono_seconds();
        CU_ASSERT_EQUAL(http_raw(rt.port, "GET", "/health", NULL, NULL, 3000, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
        CU_ASSERT_EQUAL(http_raw(rt.port, "POST", "/v1/chat/completions",
                                 "{\"model\":\"model-a\"}", NULL, 3000, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_TRUE(mono_seconds() - t0 < 1.0);
        resp_free(&r);
    }
    /* and once the slow answers arrive (with nobody to take them) */
    usleep(2100 * 1000);
    check_still_serving();
}

/* --- many at once --- */

struct slot {
    struct resp r;
    int done;
};

static size_t slot_body(char *data, size_t size, size_t n, void *arg)
{
    struct slot *s = arg;
    size_t len = size * n;
    char *nb = realloc(s->r.body, s->r.len + len + 1);
    if (nb == NULL)
        return 0;
    s->r.body = nb;
    memcpy(nb + s->r.len, data, len);
    s->r.len += len;
    nb[s->r.len] = '\0';
    return len;
}

static void test_many_concurrent_keepalive(void)
{
    enum { N = 200, CONNS = 40 };
    static struct slot slots[N];
    static char bodies[N][96];
    CURLM *multi = curl_multi_init();
    CURL *easy[N];
    struct curl_slist *hdr = NULL;
    int running = 0, ok = 0, matched = 0, before = mock_requests(&ma);
    long conns = 0;
    double t0 = mono_seconds();

    CU_ASSERT_PTR_NOT_NULL_FATAL(multi);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    /* fewer connections than requests: each connection carries several
     * requests, one after another (keep-alive) */
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)CONNS);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CONNS);
    for (int i = 0; i < N; i++) {
        char url[128];
        memset(&slots[i], 0, sizeof slots[i]);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", rt.port);
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"model\":\"%s\",\"messages\":[],\"n\":%d}", i % 2 ? "model-a" : "alias-a", i);
        easy[i] = curl_easy_init();
        CU_ASSERT_PTR_NOT_NULL_FATAL(easy[i]);
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, slot_body);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &slots[i]);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 15000L);
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_PRIVATE, &slots[i]);
        curl_multi_add_handle(multi, easy[i]);
    }
    do {
        CURLMsg *m;
        int left;
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                struct slot *s = NULL;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                s->done = 1;
                s->r.curl_error = (int)m->data.result;
                curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &s->r.status);
            }
        }
        if (running)
            curl_multi_poll(multi, NULL, 0, 200, NULL);
    } while (running && mono_seconds() - t0 < 20);
    for (int i = 0; i < N; i++) {
        char want[48];
        long nc = 0;
        if (slots[i].done && slots[i].r.curl_error == 0 && slots[i].r.status == 200)
            ok++;
        /* each client got its own answer: the mock echoes nothing of n,
         * but the model is right and the body is a whole JSON object */
        snprintf(want, sizeof want, "\"backend\":\"err-alpha\"");
        if (slots[i].r.body != NULL && strstr(slots[i].r.body, want) != NULL) {
            struct json_object *j = json_tokener_parse(slots[i].r.body);
            if (j != NULL)
                matched++;
            json_object_put(j);
        }
        curl_easy_getinfo(easy[i], CURLINFO_NUM_CONNECTS, &nc);
        conns += nc;
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        free(slots[i].r.body);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(hdr);
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(matched, N);
    /* connections were reused */
    CU_ASSERT_TRUE(conns < N);
    CU_ASSERT_EQUAL(mock_requests(&ma) - before, N);
    CU_ASSERT_TRUE(mono_seconds() - t0 < 20);
    check_still_serving();
}

static void test_keepalive_errors_then_success(void)
{
    /* errors on a kept-alive connection do not poison it */
    CURL *e = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char url[128];
    static const char *const bodies[] = { "nope", "{\"model\":\"no-such-model\"}", "[]",
                                          "{\"model\":\"model-a\"}", "{}", "{\"model\":\"model-a\"}", NULL };
    static const long codes[] = { 400, 404, 400, 200, 400, 200 };
    long total_conns = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", rt.port);
    for (int i = 0; bodies[i]; i++) {
        struct slot s;
        long st = 0, nc = 0;
        memset(&s, 0, sizeof s);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, slot_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        CU_ASSERT_EQUAL(curl_easy_perform(e), CURLE_OK);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
        total_conns += nc;
        CU_ASSERT_EQUAL(st, codes[i]);
        free(s.r.body);
    }
    /* one connection for all of them */
    CU_ASSERT_EQUAL(total_conns, 1);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(e);
}

static void test_pipelined_requests(void)
{
    /* two requests in one write; both answered, in order */
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char out[8192];
    int got = tcp_exchange(rt.port, req, strlen(req), out, sizeof out, 3000);
    CU_ASSERT_TRUE(got > 0);
    if (got > 0) {
        char *first = strstr(out, "HTTP/1.1 200");
        char *second = strstr(out, "HTTP/1.1 404");
        CU_ASSERT_PTR_NOT_NULL(first);
        CU_ASSERT_PTR_NOT_NULL(second);
        CU_ASSERT_TRUE(first != NULL && second != NULL && first < second);
    }
}

/* --- JSON as Python reads it: a router with room for large bodies and a
 * fallback --- */

static struct mock jm_fb;
static struct router jrt;
static int jm_dead;

static int json_setup(void)
{
    char yaml[2048];

    if (mock_start(&jm_fb, "json-fb", "dup-fb", NULL))
        return -1;
    jm_dead = free_port(); /* nobody listens here */
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "max_body_size: 64KiB\n"
             "connect_timeout: 500ms\n"
             "fallback: [model_map]\n"
             "models:\n"
             "  dup-dead:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: dup-fb\n"
             "  dup-fb:\n"
             "    backends: [%s]\n",
             jm_dead, jm_fb.url);
    return router_start(&jrt, yaml, NULL);
}

static int json_teardown(void)
{
    int st = router_stop(&jrt);
    mock_stop(&jm_fb);
    return st == 0 ? 0 : -1;
}

/* {"model":"dup-fb","seed":<sign><digits>><tail>} (malloc'd) */
static char *long_number_body(const char *sign, size_t digits, const char *tail)
{
    char *b = malloc(digits + 128);
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    n = (size_t)sprintf(b, "{\"model\":\"dup-fb\",\"messages\":[],\"seed\":%s", sign);
    memset(b + n, '7', digits);
    sprintf(b + n + digits, "%s}", tail);
    return b;
}

/* Python 3.11+ refuses an integer of more than 4300 digits (ValueError);
 * floats of any length it takes. */
static void test_400_integer_over_4300_digits(void)
{
    static const struct {
        const char *sign;
        size_t digits;
        const char *tail;
        long status;
    } cases[] = {
        {"", 5000, "", 400}, {"-", 4301, "", 400}, {"", 4300, "", 200},
        {"-", 4300, "", 200}, {"", 5000, ".5", 200}, {"-", 5000, "e-7", 200},
    };
    int before = mock_requests(&jm_fb), served = 0;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *body = long_number_body(cases[i].sign, cases[i].digits, cases[i].tail);
        if (cases[i].status == 400) {
            post_expect_400_saying(jrt.port, body, "integer with more than 4300 digits");
        } else {
            struct resp r;
            CU_ASSERT_EQUAL(http_post(jrt.port, "/v1/chat/completions", body, NULL, &r), 0);
            CU_ASSERT_EQUAL(r.status, 200);
            resp_free(&r);
            served++;
        }
        free(body);
    }
    CU_ASSERT_EQUAL(mock_requests(&jm_fb) - before, served);
}

/* The body the mock received last (malloc'd), or NULL. */
static char *mock_last_body(const struct mock *m)
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

/* A body that names "model" twice is routed by the last (as Python's json
 * reads it); when that model falls back, every top-level "model" is
 * rewritten, so that a backend that keeps the first of duplicates does not
 * see the client's model; nested "model" keys stay. */
static void test_fallback_rewrites_every_model(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{\"model\":\"dup-dead\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"model\":\"nested\"}],"
         "\"model\":\"dup-dead\"}",
         "{\"model\":\"dup-fb\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"model\":\"nested\"}],"
         "\"model\":\"dup-fb\"}"},
        {"{\"model\":\"client-first\", \"max_tokens\":3,\"meta\":{\"model\":\"x\"},\n \"model\" : \"dup-dead\"}",
         "{\"model\":\"dup-fb\", \"max_tokens\":3,\"meta\":{\"model\":\"x\"},\n \"model\" : \"dup-fb\"}"},
        {"{\"model\":42,\"mod\\u0065l\":null,\"model\":\"dup-dead\",\"stream\":false}",
         "{\"model\":\"dup-fb\",\"mod\\u0065l\":\"dup-fb\",\"model\":\"dup-fb\",\"stream\":false}"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = mock_requests(&jm_fb);
        struct resp r;
        const char *v;
        char *got;

        CU_ASSERT_EQUAL(http_post(jrt.port, "/v1/chat/completions", cases[i].in, NULL, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        v = resp_header(&r, "X-Switchyard-Fallback");
        CU_ASSERT_TRUE(v != NULL && strcmp(v, "dup-dead>dup-fb") == 0);
        v = resp_header(&r, "X-Switchyard-Model");
        CU_ASSERT_TRUE(v != NULL && strcmp(v, "dup-fb") == 0);
        resp_free(&r);
        CU_ASSERT_EQUAL(mock_requests(&jm_fb) - before, 1);
        got = mock_last_body(&jm_fb);
        CU_ASSERT_PTR_NOT_NULL(got);
        if (got != NULL && strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "\n    json-fb got body:\n      %s\n    want:\n      %s\n", got,
                    cases[i].want);
        CU_ASSERT_TRUE(got != NULL && strcmp(got, cases[i].want) == 0);
        /* and no parser, first-wins or last-wins, finds the client's model */
        CU_ASSERT_TRUE(got != NULL && strstr(got, "dup-dead") == NULL &&
                       strstr(got, "client-first") == NULL);
        free(got);
    }
}

/* No fallback: a body that repeats "model" is routed on the last, and the
 * backend gets that one in every place (a first-wins parser agrees). */
static void test_duplicate_model_forwarded_as_routed(void)
{
    const char *in = "{\"model\":\"client-first\",\"max_tokens\":3,\"model\":\"dup-fb\"}";
    const char *want = "{\"model\":\"dup-fb\",\"max_tokens\":3,\"model\":\"dup-fb\"}";
    struct resp r;
    char *got;

    CU_ASSERT_EQUAL(http_post(jrt.port, "/v1/chat/completions", in, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NULL(resp_header(&r, "X-Switchyard-Fallback"));
    resp_free(&r);
    got = mock_last_body(&jm_fb);
    CU_ASSERT_TRUE(got != NULL && strcmp(got, want) == 0);
    free(got);
}

void register_error_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e_errors", setup_suite, teardown_suite);
    CU_add_test(s, "400 body not JSON", test_400_not_json);
    CU_add_test(s, "501 for vllm_router's batch and files API", test_501_vllm_router_features);
    CU_add_test(s, "400 JSON read strictly, deep nesting served", test_400_json_read_strictly);
    CU_add_test(s, "400 body not UTF-8, in the model or any string", test_400_invalid_utf8);
    CU_add_test(s, "400 JSON not an object", test_400_not_an_object);
    CU_add_test(s, "400 no string model", test_400_no_string_model);
    CU_add_test(s, "400 empty body", test_400_empty_body);
    CU_add_test(s, "400 on every proxied path", test_400_on_every_proxied_path);
    CU_add_test(s, "404 unknown model", test_404_unknown_model);
    CU_add_test(s, "404 unknown path", test_404_unknown_path);
    CU_add_test(s, "405 wrong method, with Allow", test_405_wrong_method);
    CU_add_test(s, "413 body over max_body_size", test_413_body_over_limit);
    CU_add_test(s, "413 chunked body over max_body_size", test_413_chunked_body_over_limit);
    CU_add_test(s, "chunk framing not counted as body", test_chunked_framing_not_counted);
    CU_add_test(s, "503 with Retry-After when the backend refuses", test_503_backend_refuses);
    CU_add_test(s, "errors keep the client's X-Request-Id", test_errors_keep_client_request_id);
    CU_add_test(s, "generated request ids differ", test_generated_request_ids_differ);
    CU_add_test(s, "garbage bytes over TCP", test_garbage_bytes);
    CU_add_test(s, "request line without version", test_request_line_without_version);
    CU_add_test(s, "header line without colon", test_header_without_colon);
    CU_add_test(s, "headers over 64 KiB", test_oversized_headers);
    CU_add_test(s, "half a request, then gone", test_half_request_then_disconnect);
    CU_add_test(s, "client gone while the backend is slow", test_client_gone_while_backend_slow);
    CU_add_test(s, "200 concurrent keep-alive requests", test_many_concurrent_keepalive);
    CU_add_test(s, "errors on a keep-alive connection", test_keepalive_errors_then_success);
    CU_add_test(s, "pipelined requests", test_pipelined_requests);

    s = CU_add_suite("e2e_errors_json", json_setup, json_teardown);
    CU_add_test(s, "400 integer of more than 4300 digits, floats any length",
                test_400_integer_over_4300_digits);
    CU_add_test(s, "fallback rewrites every top-level model", test_fallback_rewrites_every_model);
    CU_add_test(s, "a repeated model is forwarded as routed", test_duplicate_model_forwarded_as_routed);
}
