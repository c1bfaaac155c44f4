/*
 * The router's HTTP/1.1 server as clients see it on the wire: pipelining,
 * Expect: 100-continue, HTTP/1.0, HEAD, keep-alive across requests, and the
 * cap on client connections (max_client_connections: 503 in JSON).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"
#define BODY "{\"model\":\"model-a\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
#define CAP 4

static struct mock hm;
static struct router hr;

static int http_setup(void)
{
    char yaml[1024];

    if (mock_start(&hm, "http-a", "model-a", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "max_client_connections: %d\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             CAP, hm.url);
    return router_start(&hr, yaml, NULL);
}

static int http_teardown(void)
{
    int st = router_stop(&hr);
    mock_stop(&hm);
    return st == 0 ? 0 : -1;
}

/* "POST ... HTTP/1.<minor>" with the chat body and extra header lines. */
static int chat_request(char *buf, size_t len, int minor, const char *extra)
{
    return snprintf(buf, len,
                    "POST " CHAT " HTTP/1.%d\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n%s\r\n%s",
                    minor, strlen(BODY), extra, BODY);
}

/* Two requests in one write: two answers, in order, on one connection. */
static void test_pipelined_requests(void)
{
    char req[2048], out[16384];
    int n = chat_request(req, sizeof req, 1, "X-Request-Id: pipe-1\r\n");

    n += chat_request(req + n, sizeof req - (size_t)n, 1,
                      "X-Request-Id: pipe-2\r\nConnection: close\r\n");
    CU_ASSERT_TRUE(tcp_exchange(hr.port, req, (size_t)n, out, sizeof out, 5000) > 0);
    CU_ASSERT_EQUAL(count_substr(out, "HTTP/1.1 200 OK\r\n"), 2);
    char *first = strstr(out, "X-Request-Id: pipe-1");
    char *second = strstr(out, "X-Request-Id: pipe-2");
    CU_ASSERT_PTR_NOT_NULL(first);
    CU_ASSERT_PTR_NOT_NULL(second);
    CU_ASSERT_TRUE(first != NULL && second != NULL && first < second);
    CU_ASSERT_EQUAL(count_substr(out, "chat.completion"), 2);
}

/* A client that waits for leave to send its body gets "100 Continue". */
static void test_expect_continue(void)
{
    char head[512], out[8192];
    int fd = tcp_connect(hr.port);
    int n = snprintf(head, sizeof head,
                     "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
                     strlen(BODY));

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, head, (size_t)n), n);
    struct pollfd p = { fd, POLLIN, 0 };
    CU_ASSERT_EQUAL_FATAL(poll(&p, 1, 3000), 1);
    ssize_t got = read(fd, out, sizeof out - 1);
    CU_ASSERT_TRUE_FATAL(got > 0);
    out[got] = '\0';
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    CU_ASSERT_EQUAL(write(fd, BODY, strlen(BODY)), (ssize_t)strlen(BODY));
    CU_ASSERT_TRUE(tcp_read_close(fd, out, sizeof out, 5000) > 0); /* closes fd */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "HTTP/1.1 200 OK"));
}

/* HTTP/1.0: closed after the answer unless keep-alive was asked for; no
 * chunked framing. */
static void test_http10(void)
{
    char req[2048], out[16384];
    int n = chat_request(req, sizeof req, 0, "Connection: keep-alive\r\n");

    n += chat_request(req + n, sizeof req - (size_t)n, 0, "");
    double t0 = mono_seconds();
    CU_ASSERT_TRUE(tcp_exchange(hr.port, req, (size_t)n, out, sizeof out, 5000) > 0);
    CU_ASSERT_TRUE(mono_seconds() - t0 < 3); /* closed by the router, not timed out */
    CU_ASSERT_EQUAL(count_substr(out, " 200 OK\r\n"), 2);
    CU_ASSERT_EQUAL(count_substr(out, "Connection: keep-alive\r\n"), 1);
    CU_ASSERT_EQUAL(count_substr(out, "Connection: close\r\n"), 1);
    CU_ASSERT_PTR_NULL(strstr(out, "Transfer-Encoding"));
}

/* HEAD: the head of the GET answer, its length, no body. */
static void test_head_request(void)
{
    char out[4096];
    static const char req[] = "HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    CU_ASSERT_TRUE(tcp_exchange(hr.port, req, sizeof req - 1, out, sizeof out, 3000) > 0);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Length: 20\r\n"));
    char *end = strstr(out, "\r\n\r\n");
    CU_ASSERT_TRUE(end != NULL && end[4] == '\0');
}

/* Only CAP client connections at once: the next one is told 503 in JSON
 * with Retry-After, and served again once one closes. */
static void test_connection_cap(void)
{
    int fds[CAP];
    char out[4096];
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    for (int i = 0; i < CAP; i++) {
        fds[i] = tcp_connect(hr.port);
        CU_ASSERT_FATAL(fds[i] >= 0);
    }
    sleep_ms(200); /* all accepted */
    CU_ASSERT_TRUE(tcp_exchange(hr.port, req, sizeof req - 1, out, sizeof out, 3000) > 0);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 503", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Retry-After: 1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"code\":503"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "limit of client connections"));
    /* the held connections still work */
    CU_ASSERT_EQUAL(write(fds[0], req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    CU_ASSERT_TRUE(tcp_read_close(fds[0], out, sizeof out, 3000) > 0);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200", 12) == 0);
    for (int i = 1; i < CAP; i++)
        close(fds[i]);
    /* room again once the router has seen them go */
    int served = 0;
    for (int i = 0; i < 40 && !served; i++) {
        sleep_ms(50);
        served = tcp_exchange(hr.port, req, sizeof req - 1, out, sizeof out, 3000) > 0 &&
                 strncmp(out, "HTTP/1.1 200", 12) == 0;
    }
    CU_ASSERT_TRUE(served);
    /* counted: the refusal, and the open connections (this one at least) */
    CU_ASSERT_TRUE(metric_value(hr.port, "switchyard_client_connections_refused_total", 0) >= 1);
    CU_ASSERT_TRUE(metric_value(hr.port, "switchyard_client_connections", 0) >= 1);
}

/* Many requests on one keep-alive connection, answered one by one. */
static void test_keep_alive_many(void)
{
    int fd = tcp_connect(hr.port);
    char req[2048], out[8192];
    int ok = 0;

    CU_ASSERT_FATAL(fd >= 0);
    for (int i = 0; i < 50; i++) {
        int n = chat_request(req, sizeof req, 1, "");
        if (write(fd, req, (size_t)n) != n)
            break;
        /* one whole answer: its head, then Content-Length bytes */
        size_t got = 0;
        char *end = NULL;
        long want = -1;
        while (got + 1 < sizeof out) {
            struct pollfd p = { fd, POLLIN, 0 };
            if (poll(&p, 1, 3000) != 1)
                break;
            ssize_t r = read(fd, out + got, sizeof out - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            out[got] = '\0';
            if (end == NULL && (end = strstr(out, "\r\n\r\n")) != NULL) {
                char *cl = strcasestr(out, "Content-Length: ");
                want = cl ? strtol(cl + 16, NULL, 10) : -1;
            }
            if (end != NULL && want >= 0 && (long)(got - (size_t)(end + 4 - out)) >= want)
                break;
        }
        if (end == NULL || strncmp(out, "HTTP/1.1 200", 12) != 0 || strstr(out, "Connection: close"))
            break;
        ok++;
    }
    close(fd);
    CU_ASSERT_EQUAL(ok, 50);
}

/* A JSON chat body of about `size` bytes. */
static char *big_body(size_t size)
{
    char *b = malloc(size + 64);
    int n = snprintf(b, size + 64, "{\"model\":\"model-a\",\"pad\":\"");
    memset(b + n, 'x', size);
    strcpy(b + n + size, "\"}");
    return b;
}

/* Bodies far past the first read: read whole (the buffer grows under the
 * head), forwarded whole. */
static void test_large_bodies(void)
{
    struct resp r;
    char *b = big_body(300 * 1024);

    CU_ASSERT_EQUAL(http_post(hr.port, CHAT, b, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    /* the backend got every byte, unchanged */
    CU_ASSERT_EQUAL(mock_last(&hm, &r), 0);
    struct json_object *last = r.body ? json_tokener_parse(r.body) : NULL, *got;
    CU_ASSERT_TRUE(last != NULL && json_object_object_get_ex(last, "body", &got) &&
                   strcmp(json_object_get_string(got), b) == 0);
    json_object_put(last);
    resp_free(&r);
    free(b);

    /* chunked, in many chunks, arriving in pieces */
    b = big_body(100 * 1024);
    size_t blen = strlen(b), n = 0, cap = blen + 4096;
    char *raw = malloc(cap), out[8192];
    n += (size_t)snprintf(raw, cap, "POST " CHAT " HTTP/1.1\r\nHost: x\r\n"
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n");
    for (size_t off = 0; off < blen; off += 7000) {
        size_t len = blen - off < 7000 ? blen - off : 7000;
        n += (size_t)snprintf(raw + n, cap - n, "%zx\r\n", len);
        memcpy(raw + n, b + off, len);
        n += len;
        memcpy(raw + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)snprintf(raw + n, cap - n, "0\r\n\r\n");
    CU_ASSERT_TRUE(tcp_exchange(hr.port, raw, n, out, sizeof out, 5000) > 0);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200", 12) == 0);
    free(raw);
    free(b);
}

/* client_idle_timeout cuts idle keep-alive connections; a client in the
 * middle of its request has client_timeout. */
static void test_idle_timeout(void)
{
    struct router r2;
    char yaml[1024], out[8192];
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char rest[] = "Host: x\r\nConnection: close\r\n\r\n";

    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "client_timeout: 30s\n"
             "client_idle_timeout: 1s\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             hm.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&r2, yaml, NULL), 0);
    int idle = tcp_connect(r2.port), partial = tcp_connect(r2.port);
    CU_ASSERT_FATAL(idle >= 0 && partial >= 0);
    CU_ASSERT_EQUAL(write(idle, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    CU_ASSERT_EQUAL(write(partial, "GET /health HTTP/1.1\r\n", 22), 22);
    double t0 = mono_seconds();
    /* the answer, then the close after a second of idleness */
    CU_ASSERT_TRUE(tcp_read_close(idle, out, sizeof out, 5000) > 0);
    double took = mono_seconds() - t0;
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_TRUE(took > 0.8 && took < 3.0);
    /* the half-sent request is still welcome */
    CU_ASSERT_EQUAL(write(partial, rest, sizeof rest - 1), (ssize_t)(sizeof rest - 1));
    CU_ASSERT_TRUE(tcp_read_close(partial, out, sizeof out, 3000) > 0);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_EQUAL(router_stop(&r2), 0);
}

void register_http_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e http: the client side of HTTP/1.1", http_setup, http_teardown);
    CU_add_test(s, "pipelined requests answered in order", test_pipelined_requests);
    CU_add_test(s, "Expect: 100-continue", test_expect_continue);
    CU_add_test(s, "HTTP/1.0 with and without keep-alive", test_http10);
    CU_add_test(s, "HEAD: head and length, no body", test_head_request);
    CU_add_test(s, "50 requests on one keep-alive connection", test_keep_alive_many);
    CU_add_test(s, "large bodies, by length and chunked", test_large_bodies);
    CU_add_test(s, "client_idle_timeout apart from client_timeout", test_idle_timeout);
    CU_add_test(s, "max_client_connections: 503 JSON past the cap", test_connection_cap);
}
