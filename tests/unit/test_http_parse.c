/* http_parse: strict request heads (every refusal rule), incremental
 * reading, limits, and the chunked body decoder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "unit.h"

#define NF 16
/* a string, safe to compare when there is none (a refusal's message) */
#define WHY(w) ((w) ? (w) : "(none)")

/* One parse of an exact-size copy of s[0..n) (so reads past the end are
 * caught under ASan); the copy stays for the test to look at. */
struct parsed {
    char *buf;
    size_t len;
    struct http_head h;
    struct http_field f[NF];
    const char *why;
    enum http_parse_result r;
};

static enum http_parse_result parse_n(struct parsed *p, const char *s, size_t n,
                                      size_t max_head, size_t max_fields)
{
    size_t scanned = 0;

    memset(p, 0, sizeof *p);
    p->buf = malloc(n ? n : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->buf);
    memcpy(p->buf, s, n);
    p->len = n;
    p->r = http_parse_head(p->buf, n, max_head, &p->h, p->f, max_fields, &scanned, &p->why);
    /* only a complete head changes the buffer */
    if (p->r != HTTP_PARSE_DONE)
        CU_ASSERT(memcmp(p->buf, s, n) == 0);
    return p->r;
}

static enum http_parse_result parse(struct parsed *p, const char *s)
{
    return parse_n(p, s, strlen(s), 8192, NF);
}

static const char *field_name(const struct parsed *p, size_t k)
{
    return p->buf + p->f[k].name;
}

static const char *field_value(const struct parsed *p, size_t k)
{
    return p->buf + p->f[k].value;
}

static void test_simple_get(void)
{
    struct parsed p;
    const char *req = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";

    CU_ASSERT_EQUAL_FATAL(parse(&p, req), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.method, HTTP_METHOD_GET);
    CU_ASSERT_EQUAL(p.h.method_off, 0);
    CU_ASSERT_STRING_EQUAL(p.buf + p.h.method_off, "GET");
    CU_ASSERT_EQUAL(p.h.target, 4);
    CU_ASSERT_EQUAL(p.h.target_len, 10);
    CU_ASSERT_STRING_EQUAL(p.buf + p.h.target, "/v1/models");
    CU_ASSERT_EQUAL(p.h.minor, 1);
    CU_ASSERT_EQUAL(p.h.nfields, 1);
    CU_ASSERT_EQUAL(p.h.head_len, strlen(req));
    CU_ASSERT_STRING_EQUAL(field_name(&p, 0), "Host");
    CU_ASSERT_STRING_EQUAL(field_value(&p, 0), "x");
    free(p.buf);
}

static void test_post_with_fields(void)
{
    struct parsed p;
    const char *req = "POST /v1/chat/completions?x=1 HTTP/1.0\r\n"
                      "Host: a.example\r\n"
                      "Content-Type:application/json \t\r\n"
                      "X-Empty:   \r\n"
                      "X-Inner:  a  b\t c \r\n"
                      "Content-Length: 2\r\n"
                      "\r\n"
                      "{}";
    size_t head = strlen(req) - 2;

    CU_ASSERT_EQUAL_FATAL(parse(&p, req), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.method, HTTP_METHOD_POST);
    CU_ASSERT_STRING_EQUAL(p.buf + p.h.method_off, "POST");
    CU_ASSERT_STRING_EQUAL(p.buf + p.h.target, "/v1/chat/completions?x=1");
    CU_ASSERT_EQUAL(p.h.target_len, 24);
    CU_ASSERT_EQUAL(p.h.minor, 0);
    CU_ASSERT_EQUAL(p.h.head_len, head);
    CU_ASSERT_EQUAL_FATAL(p.h.nfields, 5);
    /* offsets are where the bytes were sent */
    CU_ASSERT_EQUAL(p.f[0].name, strstr(req, "Host") - req);
    CU_ASSERT_EQUAL(p.f[0].name_len, 4);
    CU_ASSERT_EQUAL(p.f[0].value, strstr(req, "a.example") - req);
    CU_ASSERT_EQUAL(p.f[0].value_len, 9);
    CU_ASSERT_STRING_EQUAL(field_value(&p, 0), "a.example");
    CU_ASSERT_STRING_EQUAL(field_name(&p, 1), "Content-Type");
    CU_ASSERT_EQUAL(p.f[1].value, strstr(req, "application") - req);
    CU_ASSERT_EQUAL(p.f[1].value_len, 16);
    CU_ASSERT_STRING_EQUAL(field_value(&p, 1), "application/json");
    CU_ASSERT_STRING_EQUAL(field_name(&p, 2), "X-Empty");
    CU_ASSERT_EQUAL(p.f[2].value_len, 0);
    CU_ASSERT_STRING_EQUAL(field_value(&p, 2), "");
    CU_ASSERT_STRING_EQUAL(field_value(&p, 3), "a  b\t c");
    CU_ASSERT_EQUAL(p.f[3].value_len, 7);
    CU_ASSERT_STRING_EQUAL(field_name(&p, 4), "Content-Length");
    CU_ASSERT_STRING_EQUAL(field_value(&p, 4), "2");
    /* the body is not touched */
    CU_ASSERT(memcmp(p.buf + p.h.head_len, "{}", 2) == 0);
    free(p.buf);
}

static void test_leading_empty_lines(void)
{
    struct parsed p;
    const char *req = "\r\nGET / HTTP/1.1\r\n\r\n";

    /* one is a client's leftover after a body: skipped */
    CU_ASSERT_EQUAL_FATAL(parse(&p, req), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.method_off, 2);
    CU_ASSERT_STRING_EQUAL(p.buf + p.h.method_off, "GET");
    CU_ASSERT_STRING_EQUAL(p.buf + p.h.target, "/");
    CU_ASSERT_EQUAL(p.h.nfields, 0);
    CU_ASSERT_EQUAL(p.h.head_len, strlen(req));
    free(p.buf);
    CU_ASSERT_EQUAL(parse(&p, "\nGET / HTTP/1.1\n\n"), HTTP_PARSE_DONE);
    free(p.buf);
    /* one empty line alone: a request may still come */
    CU_ASSERT_EQUAL(parse(&p, "\r\n"), HTTP_PARSE_MORE);
    free(p.buf);
    CU_ASSERT_EQUAL(parse(&p, "\r\n\r"), HTTP_PARSE_MORE);
    free(p.buf);
    /* more are no request: refused at once, not waited on */
    CU_ASSERT_EQUAL(parse(&p, "\r\n\r\n\n"), HTTP_PARSE_BAD);
    free(p.buf);
    CU_ASSERT_EQUAL(parse(&p, "\n\nGET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
    free(p.buf);
}

static void test_bare_lf(void)
{
    struct parsed p;
    const char *req = "GET /a HTTP/1.1\nHost: h\r\nX: y\n\nrest";

    CU_ASSERT_EQUAL_FATAL(parse(&p, req), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.head_len, strlen(req) - 4);
    CU_ASSERT_EQUAL_FATAL(p.h.nfields, 2);
    CU_ASSERT_STRING_EQUAL(field_value(&p, 0), "h");
    CU_ASSERT_STRING_EQUAL(field_name(&p, 1), "X");
    CU_ASSERT_STRING_EQUAL(field_value(&p, 1), "y");
    free(p.buf);
    CU_ASSERT_EQUAL_FATAL(parse(&p, "GET / HTTP/1.0\n\r\n"), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.head_len, 17);
    free(p.buf);
}

/* Fed one more byte per call into the same buffer: MORE (the buffer left
 * alone) up to the last byte of the head, then what one call gives. */
static void feed_bytewise(const char *req, size_t n)
{
    struct parsed whole, p;
    size_t scanned = 0, k;
    char *buf = malloc(n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    parse_n(&whole, req, n, 8192, NF);
    memset(&p, 0, sizeof p);
    for (k = 1; k <= n; k++) {
        buf[k - 1] = req[k - 1];
        p.r = http_parse_head(buf, k, 8192, &p.h, p.f, NF, &scanned, &p.why);
        CU_ASSERT(scanned <= k);
        if (p.r != HTTP_PARSE_MORE)
            break;
        CU_ASSERT(memcmp(buf, req, k) == 0);
    }
    CU_ASSERT_EQUAL(p.r, whole.r);
    if (whole.r == HTTP_PARSE_DONE && p.r == HTTP_PARSE_DONE) {
        CU_ASSERT_EQUAL(k, whole.h.head_len);
        CU_ASSERT_EQUAL(p.h.method, whole.h.method);
        CU_ASSERT_EQUAL(p.h.method_off, whole.h.method_off);
        CU_ASSERT_EQUAL(p.h.target, whole.h.target);
        CU_ASSERT_EQUAL(p.h.target_len, whole.h.target_len);
        CU_ASSERT_EQUAL(p.h.minor, whole.h.minor);
        CU_ASSERT_EQUAL(p.h.nfields, whole.h.nfields);
        CU_ASSERT_EQUAL(p.h.head_len, whole.h.head_len);
        CU_ASSERT(memcmp(p.f, whole.f, whole.h.nfields * sizeof p.f[0]) == 0);
        CU_ASSERT(memcmp(buf, whole.buf, k) == 0);
    } else {
        CU_ASSERT_STRING_EQUAL(WHY(p.why), WHY(whole.why));
    }
    free(whole.buf);
    free(buf);
}

static void test_incremental(void)
{
    static const char *reqs[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
        "\r\n\r\n\nPUT /p HTTP/1.0\nA: 1\n\n",
        "GET / HTTP/1.1\r\nA: b\r\n\n",
        "GET / HTTP/1.1\r\nA\r\rb: c\r\n\r\n",      /* bare CR: BAD, at the end */
        "GET / HTTP/2.0\r\n\r\n",
        "\r\rGET / HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        feed_bytewise(reqs[i], strlen(reqs[i]));
}

static void test_max_head(void)
{
    struct parsed p;
    const char *req = "GET /0123456789 HTTP/1.1\r\nHost: example\r\n\r\n";
    size_t n = strlen(req);

    CU_ASSERT_EQUAL(parse_n(&p, req, n, n, NF), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.head_len, n);
    free(p.buf);
    CU_ASSERT_EQUAL(parse_n(&p, req, n, n - 1, NF), HTTP_PARSE_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(WHY(p.why), "request head too large");
    free(p.buf);
    /* incomplete: MORE up to max_head bytes, TOO_LARGE past them */
    CU_ASSERT_EQUAL(parse_n(&p, req, 20, 20, NF), HTTP_PARSE_MORE);
    free(p.buf);
    CU_ASSERT_EQUAL(parse_n(&p, req, 21, 20, NF), HTTP_PARSE_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(WHY(p.why), "request head too large");
    free(p.buf);
    /* a complete head with its body past max_head is fine */
    CU_ASSERT_EQUAL(parse_n(&p, "GET / HTTP/1.1\r\n\r\nbody bytes", 28, 18, NF),
                    HTTP_PARSE_DONE);
    free(p.buf);
}

static void test_too_many_fields(void)
{
    struct parsed p;
    const char *req = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";

    CU_ASSERT_EQUAL_FATAL(parse_n(&p, req, strlen(req), 8192, 3), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.nfields, 3);
    CU_ASSERT_STRING_EQUAL(field_name(&p, 2), "C");
    free(p.buf);
    CU_ASSERT_EQUAL(parse_n(&p, req, strlen(req), 8192, 2), HTTP_PARSE_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(WHY(p.why), "too many header lines");
    CU_ASSERT_EQUAL(p.f[2].name, 0); /* nothing stored past max_fields */
    free(p.buf);
    CU_ASSERT_EQUAL(parse_n(&p, "GET / HTTP/1.1\r\n\r\n", 18, 8192, 0), HTTP_PARSE_DONE);
    free(p.buf);
}

static void test_bad_heads(void)
{
    static const struct {
        const char *in;
        size_t len; /* 0: strlen */
        const char *why;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0, "whitespace before the colon of a header name"},
        {"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 0, "whitespace before the colon of a header name"},
        {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 0, "obsolete line folding in a header"},
        {"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", 0, "obsolete line folding in a header"},
        {"GET / HTTP/1.1\r\n x: y\r\n\r\n", 0, "obsolete line folding in a header"},
        {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 0, "bare CR in the request head"},
        {"GET / HTTP/1.1\r\nA\r: b\r\n\r\n", 0, "bare CR in the request head"},
        {"GET / HTTP/1.1\rX\r\n\r\n", 0, "bare CR in the request head"},
        {"GET /\r HTTP/1.1\r\n\r\n", 0, "bare CR in the request head"},
        {"\rGET / HTTP/1.1\r\n\r\n", 0, "bare CR in the request head"},
        {"GET / HTTP/1.1\r\nA: b\r\n\r\r\n\r\n", 0, "bare CR in the request head"},
        {"GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 26, "invalid character in a header value"},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 0, "invalid character in a header value"},
        {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", 0, "invalid character in a header value"},
        {"GET / HTTP/1.1\r\nA: \x1b[0m\r\n\r\n", 0, "invalid character in a header value"},
        {"GET  / HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET /  HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET / HTTP/1.1 \r\n\r\n", 0, "malformed request line"},
        {"GET /\r\n\r\n", 0, "malformed request line"},
        {"GET / \r\n\r\n", 0, "malformed request line"},
        {"GET / http/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET / HTTP/1.10\r\n\r\n", 0, "malformed request line"},
        {"GET / HTTP/11\r\n\r\n", 0, "malformed request line"},
        {"GET / HTTP/1.x\r\n\r\n", 0, "malformed request line"},
        {"GET / HTTP/1.\r\n\r\n", 0, "malformed request line"},
        {"GET /a b HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET /a\x7f HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET /a\0 HTTP/1.1\r\n\r\n", 20, "malformed request line"},
        {"GET\t/ HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {" / HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"/ HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GE(T / HTTP/1.1\r\n\r\n", 0, "malformed request line"},
        {"GET / HTTP/1.1\r\nA(b: c\r\n\r\n", 0, "invalid character in a header name"},
        {"GET / HTTP/1.1\r\nA b: c\r\n\r\n", 0, "whitespace before the colon of a header name"},
        {"GET / HTTP/1.1\r\n\xc3\xa9: c\r\n\r\n", 0, "invalid character in a header name"},
        {"GET / HTTP/1.1\r\n: c\r\n\r\n", 0, "empty header name"},
        {"GET / HTTP/1.1\r\nnocolon\r\n\r\n", 0, "header line without a colon"},
        /* malformed wins over an unsupported version */
        {"GET / HTTP/2.0\r\nA : b\r\n\r\n", 0, "whitespace before the colon of a header name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct parsed p;
        size_t n = cases[i].len ? cases[i].len : strlen(cases[i].in);
        CU_ASSERT_EQUAL(parse_n(&p, cases[i].in, n, 8192, NF), HTTP_PARSE_BAD);
        CU_ASSERT_PTR_NOT_NULL(p.why);
        if (p.why != NULL && strcmp(p.why, cases[i].why) != 0) {
            fprintf(stderr, "case %zu: '%s', want '%s'\n", i, p.why, cases[i].why);
            CU_FAIL("wrong message");
        }
        free(p.buf);
    }
}

static void test_versions(void)
{
    static const char *unsupported[] = {
        "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.2\r\n\r\n", "GET / HTTP/0.9\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    };
    struct parsed p;

    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        CU_ASSERT_EQUAL(parse(&p, unsupported[i]), HTTP_PARSE_VERSION);
        CU_ASSERT_STRING_EQUAL(WHY(p.why), "unsupported HTTP version");
        free(p.buf);
    }
    /* the version is read before the count of fields is */
    CU_ASSERT_EQUAL(parse_n(&p, "GET / HTTP/2.0\r\nA: b\r\n\r\n", 24, 8192, 0),
                    HTTP_PARSE_VERSION);
    free(p.buf);
    CU_ASSERT_EQUAL(parse(&p, "GET / HTTP/1.0\r\n\r\n"), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(p.h.minor, 0);
    free(p.buf);
}

static void test_methods(void)
{
    static const struct {
        const char *name;
        enum http_method m;
    } cases[] = {
        {"GET", HTTP_METHOD_GET},       {"HEAD", HTTP_METHOD_HEAD},
        {"POST", HTTP_METHOD_POST},     {"PUT", HTTP_METHOD_PUT},
        {"DELETE", HTTP_METHOD_DELETE}, {"OPTIONS", HTTP_METHOD_OPTIONS},
        {"PATCH", HTTP_METHOD_PATCH},   {"BREW", HTTP_METHOD_OTHER},
        {"get", HTTP_METHOD_OTHER},     {"GETS", HTTP_METHOD_OTHER},
        {"GE", HTTP_METHOD_OTHER},      {"M-SEARCH", HTTP_METHOD_OTHER},
        {"!#$%&'*+-.^_`|~09azAZ", HTTP_METHOD_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[128];
        struct parsed p;
        snprintf(req, sizeof req, "%s /x HTTP/1.1\r\n\r\n", cases[i].name);
        CU_ASSERT_EQUAL_FATAL(parse(&p, req), HTTP_PARSE_DONE);
        CU_ASSERT_EQUAL(p.h.method, cases[i].m);
        CU_ASSERT_STRING_EQUAL(p.buf + p.h.method_off, cases[i].name);
        free(p.buf);
    }
}

/* Every byte in a method, a target and a value, against the RFC's sets. */
static void test_byte_classes(void)
{
    const char *tchars = "!#$%&'*+-.^_`|~";

    for (int c = 0; c < 256; c++) {
        int tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                    (c >= 'A' && c <= 'Z') || (c && strchr(tchars, c));
        int vchar = c == '\t' || (c >= 0x20 && c != 0x7f);
        char req[64];
        struct parsed p;
        int n;

        n = snprintf(req, sizeof req, "GxT / HTTP/1.1\r\n\r\n");
        req[1] = (char)c;
        parse_n(&p, req, (size_t)n, 8192, NF);
        CU_ASSERT_EQUAL(p.r == HTTP_PARSE_DONE, tchar);
        free(p.buf);

        n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nNx: v\r\n\r\n");
        req[17] = (char)c;
        parse_n(&p, req, (size_t)n, 8192, NF);
        CU_ASSERT_EQUAL(p.r == HTTP_PARSE_DONE, tchar || c == ':'); /* "N:: v" */
        free(p.buf);

        n = snprintf(req, sizeof req, "GET /x HTTP/1.1\r\n\r\n");
        req[5] = (char)c;
        parse_n(&p, req, (size_t)n, 8192, NF);
        CU_ASSERT_EQUAL(p.r == HTTP_PARSE_DONE, c > 0x20 && c < 0x7f);
        free(p.buf);

        n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nN: axb\r\n\r\n");
        req[20] = (char)c;
        parse_n(&p, req, (size_t)n, 8192, NF);
        CU_ASSERT_EQUAL(p.r == HTTP_PARSE_DONE, vchar);
        if (p.r == HTTP_PARSE_DONE)
            CU_ASSERT_EQUAL(p.f[0].value_len, 3);
        free(p.buf);
    }
}

static void test_head_field(void)
{
    struct parsed p;
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\nx-key: 1\r\nX-Key: 2\r\nX-Keys: 3\r\n\r\n";

    CU_ASSERT_EQUAL_FATAL(parse(&p, req), HTTP_PARSE_DONE);
    CU_ASSERT_STRING_EQUAL(WHY(http_head_field(p.buf, p.f, p.h.nfields, "host")), "a");
    CU_ASSERT_STRING_EQUAL(WHY(http_head_field(p.buf, p.f, p.h.nfields, "X-KEY")), "1");
    CU_ASSERT_STRING_EQUAL(WHY(http_head_field(p.buf, p.f, p.h.nfields, "x-keys")), "3");
    CU_ASSERT_PTR_NULL(http_head_field(p.buf, p.f, p.h.nfields, "X-Ke"));
    CU_ASSERT_PTR_NULL(http_head_field(p.buf, p.f, p.h.nfields, "Connection"));
    CU_ASSERT_PTR_NULL(http_head_field(p.buf, p.f, 0, "Host"));
    free(p.buf);
}

static void test_keep_alive(void)
{
    CU_ASSERT_TRUE(http_keep_alive(1, NULL));
    CU_ASSERT_TRUE(http_keep_alive(1, "keep-alive"));
    CU_ASSERT_TRUE(http_keep_alive(1, "Upgrade"));
    CU_ASSERT_TRUE(http_keep_alive(1, "closed, x-close"));
    CU_ASSERT_FALSE(http_keep_alive(1, "close"));
    CU_ASSERT_FALSE(http_keep_alive(1, "Close"));
    CU_ASSERT_FALSE(http_keep_alive(1, "Upgrade, close"));
    CU_ASSERT_FALSE(http_keep_alive(1, "Upgrade,\tCLOSE\t"));
    CU_ASSERT_FALSE(http_keep_alive(1, ",,close,"));
    CU_ASSERT_FALSE(http_keep_alive(0, NULL));
    CU_ASSERT_FALSE(http_keep_alive(0, ""));
    CU_ASSERT_FALSE(http_keep_alive(0, "close"));
    CU_ASSERT_FALSE(http_keep_alive(0, "keep-alive2"));
    CU_ASSERT_TRUE(http_keep_alive(0, "keep-alive"));
    CU_ASSERT_TRUE(http_keep_alive(0, "Upgrade, Keep-Alive "));
    /* both listed: close */
    CU_ASSERT_FALSE(http_keep_alive(0, "keep-alive, close"));
    CU_ASSERT_FALSE(http_keep_alive(1, "keep-alive, close"));
}

/* --- chunked bodies --- */

#define PREFIX "HEAD:" /* a stand-in for the head the body follows */
#define START (sizeof PREFIX - 1)

struct decoded {
    char *buf;
    size_t in, out, len;
    const char *why;
    enum http_parse_result r;
};

/* Decode body[0..n) (n 0: strlen) after PREFIX, all at once. */
static enum http_parse_result decode_n(struct decoded *d, const char *body, size_t n,
                                       size_t max_body)
{
    struct http_chunked c;

    memset(&c, 0, sizeof c);
    memset(d, 0, sizeof *d);
    n = n ? n : strlen(body);
    d->len = START + n;
    d->buf = malloc(d->len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->buf);
    memcpy(d->buf, PREFIX, START);
    memcpy(d->buf + START, body, n);
    d->in = d->out = START;
    d->r = http_chunked_decode(&c, d->buf, &d->in, d->len, &d->out, max_body, &d->why);
    CU_ASSERT(d->out <= d->in);
    CU_ASSERT(d->out - START <= max_body);
    if (d->r == HTTP_PARSE_MORE)
        CU_ASSERT_EQUAL(d->in, d->len);
    return d->r;
}

static enum http_parse_result decode(struct decoded *d, const char *body)
{
    return decode_n(d, body, 0, 1 << 20);
}

/* The decoded body is `want`. */
static int body_is(const struct decoded *d, const char *want)
{
    return d->out - START == strlen(want) && memcmp(d->buf + START, want, strlen(want)) == 0;
}

static void test_chunked_simple(void)
{
    struct decoded d;
    const char *b = "5\r\nhello\r\n0\r\n\r\n";

    CU_ASSERT_EQUAL(decode(&d, b), HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "hello"));
    CU_ASSERT_EQUAL(d.in, d.len);
    CU_ASSERT(memcmp(d.buf, PREFIX, START) == 0);
    free(d.buf);
    CU_ASSERT_EQUAL(decode(&d, "0\r\n\r\n"), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(d.out, START);
    CU_ASSERT_EQUAL(d.in, START + 5);
    free(d.buf);
    CU_ASSERT_EQUAL(decode(&d, "5\nhello\n0\n\n"), HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "hello"));
    free(d.buf);
    CU_ASSERT_EQUAL(decode(&d, "5\r\nhel"), HTTP_PARSE_MORE);
    CU_ASSERT_TRUE(body_is(&d, "hel"));
    free(d.buf);
}

static void test_chunked_multiple(void)
{
    struct decoded d;

    CU_ASSERT_EQUAL(decode(&d, "5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"),
                    HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "hello world!"));
    CU_ASSERT_EQUAL(d.in, d.len);
    free(d.buf);
    /* upper and lower case hex, leading zeros */
    CU_ASSERT_EQUAL(decode(&d, "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0000000000000001\r\n!\r\n"
                               "0\r\n\r\n"),
                    HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "0123456789abcdefghijk!"));
    free(d.buf);
}

static void test_chunked_hex_sizes(void)
{
    char body[600];
    struct decoded d;
    int n = snprintf(body, sizeof body, "fF\r\n%0255d\r\n0\r\n\r\n", 0);

    CU_ASSERT_EQUAL(decode_n(&d, body, (size_t)n, 1 << 20), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(d.out - START, 255);
    free(d.buf);
    n = snprintf(body, sizeof body, "1Ab\r\n");
    CU_ASSERT_EQUAL(decode_n(&d, body, (size_t)n, 0x1ab), HTTP_PARSE_MORE);
    free(d.buf);
    CU_ASSERT_EQUAL(decode_n(&d, body, (size_t)n, 0x1aa), HTTP_PARSE_TOO_LARGE);
    free(d.buf);
}

/* Fed one more byte per call: MORE until the last byte, and the same body. */
static void test_chunked_every_split(void)
{
    const char *b = "4;x=\"y\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                    "0\r\nExpires: never\r\n\r\nGET";
    size_t n = strlen(b), end = n - 3;
    struct decoded whole;
    struct http_chunked c;
    char *buf = malloc(START + n);
    size_t in = START, out = START, k;
    enum http_parse_result r = HTTP_PARSE_MORE;
    const char *why;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL_FATAL(decode(&whole, b), HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&whole, "Wikipedia in\r\n\r\nchunks."));
    memset(&c, 0, sizeof c);
    memcpy(buf, PREFIX, START);
    for (k = 1; k <= n; k++) {
        buf[START + k - 1] = b[k - 1];
        r = http_chunked_decode(&c, buf, &in, START + k, &out, 1 << 20, &why);
        CU_ASSERT(out <= in);
        if (k < end) {
            CU_ASSERT_EQUAL(r, HTTP_PARSE_MORE);
            CU_ASSERT_EQUAL(in, START + k);
        } else {
            CU_ASSERT_EQUAL(r, HTTP_PARSE_DONE);
            CU_ASSERT_EQUAL(in, START + end);
        }
    }
    CU_ASSERT_EQUAL(out, whole.out);
    CU_ASSERT(memcmp(buf, whole.buf, out) == 0);
    free(whole.buf);
    free(buf);
}

static void test_chunked_extensions_and_trailers(void)
{
    struct decoded d;

    CU_ASSERT_EQUAL(decode(&d, "3;name=val;x\r\nabc\r\n0;last=\"a;b\"\r\n\r\n"), HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "abc"));
    free(d.buf);
    CU_ASSERT_EQUAL(decode(&d, "3\r\nabc\r\n0\r\nX-Trailer: v\r\nY:z\nZ: \t\r\n\r\n"),
                    HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "abc"));
    CU_ASSERT_EQUAL(d.in, d.len);
    free(d.buf);
}

static void test_chunked_pipelined(void)
{
    struct decoded d;
    const char *b = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";

    CU_ASSERT_EQUAL(decode(&d, b), HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "abc"));
    CU_ASSERT_EQUAL(d.in, START + (size_t)(strstr(b, "GET") - b));
    CU_ASSERT(memcmp(d.buf + d.in, "GET / HTTP/1.1\r\n\r\n", 18) == 0);
    free(d.buf);
}

static void test_chunked_done_stays(void)
{
    struct http_chunked c;
    char buf[] = "1\r\na\r\n0\r\n\r\n1\r\nb\r\n";
    size_t in = 0, out = 0, len = sizeof buf - 1;
    const char *why;

    memset(&c, 0, sizeof c);
    CU_ASSERT_EQUAL(http_chunked_decode(&c, buf, &in, len, &out, 100, &why), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(in, 11);
    CU_ASSERT_EQUAL(out, 1);
    CU_ASSERT_EQUAL(http_chunked_decode(&c, buf, &in, len, &out, 100, &why), HTTP_PARSE_DONE);
    CU_ASSERT_EQUAL(in, 11);
    CU_ASSERT_EQUAL(out, 1);
}

static void test_chunked_max_body(void)
{
    struct decoded d;

    CU_ASSERT_EQUAL(decode_n(&d, "5\r\nhello\r\n0\r\n\r\n", 0, 5), HTTP_PARSE_DONE);
    free(d.buf);
    CU_ASSERT_EQUAL(decode_n(&d, "5\r\nhello\r\n0\r\n\r\n", 0, 4), HTTP_PARSE_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(WHY(d.why), "request body too large");
    CU_ASSERT_EQUAL(d.out, START); /* refused at its size line, before the data */
    free(d.buf);
    CU_ASSERT_EQUAL(decode_n(&d, "3\r\nabc\r\n3;x\r\ndef\r\n0\r\n\r\n", 0, 5),
                    HTTP_PARSE_TOO_LARGE);
    CU_ASSERT_TRUE(body_is(&d, "abc"));
    free(d.buf);
    CU_ASSERT_EQUAL(decode_n(&d, "0\r\n\r\n", 0, 0), HTTP_PARSE_DONE);
    free(d.buf);
    /* within 63 bits: a size, past max_body */
    CU_ASSERT_EQUAL(decode_n(&d, "7fffffffffffffff\r\n", 0, 1 << 20), HTTP_PARSE_TOO_LARGE);
    free(d.buf);
}

static void test_chunked_bad(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *why;
    } cases[] = {
        {"8000000000000000\r\n", 0, "chunk size out of range"},   /* 2^63 */
        {"ffffffffffffffff\r\n", 0, "chunk size out of range"},
        {"00000000000000001\r\n", 0, "chunk size out of range"},  /* 17 digits */
        {"g\r\n", 0, "invalid chunk size"},
        {"\r\n", 0, "invalid chunk size"},
        {";x\r\n", 0, "invalid chunk size"},
        {"0x5\r\nhello\r\n", 0, "invalid chunk size"},
        {"-1\r\n", 0, "invalid chunk size"},
        {"+1\r\n", 0, "invalid chunk size"},
        {" 5\r\nhello\r\n", 0, "invalid chunk size"},
        {"5 \r\nhello\r\n0\r\n\r\n", 0, "whitespace after a chunk size"},
        {"5\t\r\nhello\r\n", 0, "whitespace after a chunk size"},
        {"5 ;x\r\nhello\r\n", 0, "whitespace after a chunk size"},
        {"5\r\nhelloX\r\n0\r\n\r\n", 0, "chunk data not followed by CRLF"},
        {"5\r\nhello\rX", 0, "chunk data not followed by CRLF"},
        {"5\r\nhello0\r\n\r\n", 0, "chunk data not followed by CRLF"},
        {"5\rX", 0, "bare CR in the chunked body"},
        {"5;ext\rX", 0, "bare CR in the chunked body"},
        {"5;e\0x\r\nhello\r\n", 8, "invalid character in a chunk extension"},
        {"0\r\nX: y\rZ\r\n\r\n", 0, "bare CR in the chunked body"},
        {"0\r\n\rX", 0, "bare CR in the chunked body"},
        {"0\r\nnocolon\r\n\r\n", 0, "malformed trailer line"},
        {"0\r\n: v\r\n\r\n", 0, "malformed trailer line"},
        {"0\r\nX : v\r\n\r\n", 0, "malformed trailer line"},
        {"0\r\nX: a\x01\r\n\r\n", 0, "malformed trailer line"},
        {"0\r\nX: a\r\n b\r\n\r\n", 0, "obsolete line folding in a trailer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct decoded d;
        CU_ASSERT_EQUAL(decode_n(&d, cases[i].in, cases[i].len, 1 << 20), HTTP_PARSE_BAD);
        CU_ASSERT_PTR_NOT_NULL(d.why);
        if (d.why != NULL && strcmp(d.why, cases[i].why) != 0) {
            fprintf(stderr, "case %zu: '%s', want '%s'\n", i, d.why, cases[i].why);
            CU_FAIL("wrong message");
        }
        free(d.buf);
    }
}

static void test_chunked_line_limits(void)
{
    size_t n = 8192 + 64;
    char *b = malloc(n + 1);
    struct decoded d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* a size line of 8192 bytes (CR LF not counted) passes, 8193 does not */
    memset(b, 'x', n);
    memcpy(b, "1;", 2);
    memcpy(b + 8192, "\r\na\r\n0\r\n\r\n", 11);
    CU_ASSERT_EQUAL(decode_n(&d, b, 0, 100), HTTP_PARSE_DONE);
    CU_ASSERT_TRUE(body_is(&d, "a"));
    free(d.buf);
    memset(b, 'x', n);
    memcpy(b, "1;", 2);
    memcpy(b + 8193, "\r\na\r\n0\r\n\r\n", 11);
    CU_ASSERT_EQUAL(decode_n(&d, b, 0, 100), HTTP_PARSE_BAD);
    CU_ASSERT_STRING_EQUAL(WHY(d.why), "chunk extension too long");
    free(d.buf);
    /* trailers: 8192 bytes, the blank line included */
    memset(b, 'v', n);
    memcpy(b, "0\r\nX:", 5);
    memcpy(b + 3 + 8192 - 4, "\r\n\r\n", 5);
    CU_ASSERT_EQUAL(decode_n(&d, b, 0, 100), HTTP_PARSE_DONE);
    free(d.buf);
    memset(b, 'v', n);
    memcpy(b, "0\r\nX:", 5);
    memcpy(b + 3 + 8192 - 3, "\r\n\r\n", 5);
    CU_ASSERT_EQUAL(decode_n(&d, b, 0, 100), HTTP_PARSE_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(WHY(d.why), "trailer section too large");
    free(d.buf);
    free(b);
}

/* --- response heads from backends --- */

static int status_of(const char *line, int *minor)
{
    const char *why = NULL;
    int st = http_parse_status_line(line, strlen(line), minor, &why);
    CU_ASSERT_TRUE(st >= 0 || why != NULL);
    return st;
}

static void test_status_lines(void)
{
    int minor = -1;

    CU_ASSERT_EQUAL(status_of("HTTP/1.1 200 OK", &minor), 200);
    CU_ASSERT_EQUAL(minor, 1);
    CU_ASSERT_EQUAL(status_of("HTTP/1.0 503 Service Unavailable", &minor), 503);
    CU_ASSERT_EQUAL(minor, 0);
    CU_ASSERT_EQUAL(status_of("HTTP/1.1 204", &minor), 204);   /* no reason */
    CU_ASSERT_EQUAL(status_of("HTTP/1.1 200 ", &minor), 200);  /* empty reason */
    CU_ASSERT_EQUAL(status_of("HTTP/1.1 200 caf\xc3\xa9\tok", &minor), 200);
    CU_ASSERT_EQUAL(status_of("HTTP/2 200", &minor), 200);     /* libcurl's https */
    CU_ASSERT_EQUAL(status_of("HTTP/1.1 100 Continue", &minor), 100);
    CU_ASSERT_EQUAL(status_of("HTTP/1.1 599 x", &minor), 599);
    const char *bad[] = {
        "", "HTTP/1.1", "HTTP/1.1 ", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 099 X",
        "HTTP/1.1 600 X", "HTTP/1.1  200 OK", "HTTP/1.1 200OK", "http/1.1 200 OK",
        "HTTP/1.x 200 OK", "FOO 200", "HTTP/0.9 200 OK", "HTTP/1.1 -20 OK",
        "HTTP/1.1 200 O\rK", "HTTP/1.1 200 O\x01K", "ICY 200 OK", "HTTP/11 200 OK",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        if (http_parse_status_line(bad[i], strlen(bad[i]), &minor, &why) != -1 || why == NULL)
            CU_FAIL(bad[i]);
    }
}

static void test_field_lines(void)
{
    size_t nl, vo, vl;
    const char *why = NULL;
    const char *l = "Content-Type:  text/event-stream \t";

    CU_ASSERT_EQUAL(http_parse_field_line(l, strlen(l), &nl, &vo, &vl, &why), 0);
    CU_ASSERT_EQUAL(nl, 12);
    CU_ASSERT_EQUAL(vl, 17);
    CU_ASSERT_EQUAL(strncmp(l + vo, "text/event-stream", vl), 0);
    l = "X-Empty:";
    CU_ASSERT_EQUAL(http_parse_field_line(l, strlen(l), &nl, &vo, &vl, &why), 0);
    CU_ASSERT_EQUAL(vl, 0);
    l = "X-Obs: caf\xc3\xa9";
    CU_ASSERT_EQUAL(http_parse_field_line(l, strlen(l), &nl, &vo, &vl, &why), 0);
    const char *bad[] = {
        "", " folded: x", "\tfolded", "Bad Name: x", "X(: y", "Name : x", "no colon",
        ":novalue", "X: a\rb", "X: a\0b", "X: a\x7f", "X\x80: y",
    };
    size_t lens[sizeof bad / sizeof bad[0]];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        lens[i] = strlen(bad[i]);
    lens[9] = 6; /* the NUL inside */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (http_parse_field_line(bad[i], lens[i], &nl, &vo, &vl, &why) != -1 || why == NULL)
            CU_FAIL(bad[i]);
    }
}

void register_http_parse_tests(void)
{
    UNIT_SUITE("http_parse", UNIT_TEST(test_simple_get), UNIT_TEST(test_post_with_fields),
               UNIT_TEST(test_leading_empty_lines), UNIT_TEST(test_bare_lf),
               UNIT_TEST(test_incremental), UNIT_TEST(test_max_head),
               UNIT_TEST(test_too_many_fields), UNIT_TEST(test_bad_heads),
               UNIT_TEST(test_versions), UNIT_TEST(test_methods),
               UNIT_TEST(test_byte_classes), UNIT_TEST(test_head_field),
               UNIT_TEST(test_keep_alive), UNIT_TEST(test_chunked_simple),
               UNIT_TEST(test_chunked_multiple), UNIT_TEST(test_chunked_hex_sizes),
               UNIT_TEST(test_chunked_every_split),
               UNIT_TEST(test_chunked_extensions_and_trailers),
               UNIT_TEST(test_chunked_pipelined), UNIT_TEST(test_chunked_done_stays),
               UNIT_TEST(test_chunked_max_body), UNIT_TEST(test_chunked_bad),
               UNIT_TEST(test_chunked_line_limits), UNIT_TEST(test_status_lines),
               UNIT_TEST(test_field_lines));
}
