/*
 * A backend's answer is untrusted input.  A raw-socket backend (raw_backend.c)
 * answers with bytes the test scripts: malformed heads, ambiguous framing,
 * bodies shorter or longer than they say, forged answers hidden in bodies,
 * 1xx heads, trailers.  What the client sees on its own keep-alive
 * connection must be the router's: a malformed head is a failed attempt
 * (retried on another backend, else the router's 502 in JSON), nothing of it
 * reaches the client, and no byte of a backend's answer ever becomes, or
 * joins, another answer.  Also: the text access log quotes client-chosen
 * values, so a model name cannot forge fields or lines.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"
#include "raw_backend.h"

#define CHAT "/v1/chat/completions"
#define READ_MS 5000

/* What a backend might sneak in: none of it may reach a client. */
#define CT "Content-Type: application/json\r\n"
#define INJ_BODY "{\"injected\":\"yes!!\"}" /* 20 bytes */
#define FORGED "HTTP/1.1 200 OK\r\nX-Injected: yes\r\n" CT "Content-Length: 20\r\n\r\n" INJ_BODY
#define NORMAL "HTTP/1.1 200 OK\r\n" CT "Content-Length: 11\r\n\r\n{\"ok\":true}"

static struct raw_backend rb;
static struct mock good;
static struct router br;

/* An assertion that names the case it is about in CUnit's report. */
#define CHECK(what, cond)                                                           \
    do {                                                                            \
        char check_msg_[512];                                                       \
        snprintf(check_msg_, sizeof check_msg_, "[%s] %s", (what), #cond);          \
        CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, check_msg_,  \
                                __FILE__, "", CU_FALSE);                            \
    } while (0)

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* A whole file, malloc'd ("" when unreadable). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f != NULL) {
        do {
            if (len + 4096 + 1 > cap) {
                char *nb = realloc(buf, cap = (len + 4096 + 1) * 2);
                if (nb == NULL)
                    break;
                buf = nb;
            }
            n = fread(buf + len, 1, cap - len - 1, f);
            len += n;
        } while (n > 0);
        fclose(f);
    }
    if (buf == NULL)
        return strdup("");
    buf[len] = '\0';
    return buf;
}

static int wait_file_contains(const char *path, const char *needle, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        char *s = slurp(path);
        int found = strstr(s, needle) != NULL;
        free(s);
        if (found)
            return 1;
        sleep_ms(20);
    }
    return 0;
}

static void check_no_sanitizer_report(const char *log)
{
    char *s = slurp(log);
    if (strstr(s, "AddressSanitizer") || strstr(s, "LeakSanitizer") ||
        strstr(s, "runtime error:") || strstr(s, "UndefinedBehaviorSanitizer")) {
        fprintf(stderr, "\n  sanitizer report in %s\n", log);
        CU_FAIL("sanitizer report in the router's output");
    }
    free(s);
}

static int script1(const char *data, size_t split, int close_after)
{
    struct raw_answer a = { data, 0, split, 150, close_after };
    return raw_backend_script(&rb, &a, 1);
}

/* ------------------------------------------------------------------ */
/* the client's side: two pipelined requests, and the answers they got */

#define MAX_ANSWERS 8

struct answer {
    int status;
    const char *head;  /* status line to blank line, into the stream */
    size_t head_len;
    char *body;        /* decoded, malloc'd, NUL-terminated */
    size_t body_len;
    long long content_length; /* -1: none */
    int chunked;
    int complete;      /* the whole body as framed */
};

struct answers {
    struct answer a[MAX_ANSWERS];
    int n;
    char problem[256]; /* "" when every byte parsed as whole answers */
};

struct exchange {
    char *out;         /* every byte the client got, NUL-terminated */
    size_t len;
    int eof;           /* the router closed the connection */
    double took;
    struct answers ans;
};

/* A header of one answer (the first of that name), copied into buf; NULL
 * when absent. */
static const char *ans_header(const struct answer *a, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    const char *p = a->head, *end = a->head + a->head_len;

    p = memmem(p, (size_t)(end - p), "\r\n", 2); /* past the status line */
    while (p != NULL && p + 2 < end) {
        p += 2;
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t l = (size_t)(eol - v) < cap - 1 ? (size_t)(eol - v) : cap - 1;
            memcpy(buf, v, l);
            buf[l] = '\0';
            return buf;
        }
        p = eol;
    }
    return NULL;
}

static void answers_free(struct answers *as)
{
    for (int i = 0; i < as->n; i++)
        free(as->a[i].body);
    as->n = 0;
}

static int status_line_ok(const char *p, size_t rest)
{
    return rest >= 13 && strncmp(p, "HTTP/1.", 7) == 0 && isdigit((unsigned char)p[7]) &&
           p[8] == ' ' && isdigit((unsigned char)p[9]) && isdigit((unsigned char)p[10]) &&
           isdigit((unsigned char)p[11]) && (p[12] == ' ' || p[12] == '\r');
}

/* Decode a chunked body at s[*off, len) into a->body; 0 when whole. */
static int parse_chunked(const char *s, size_t len, size_t *off, struct answer *a,
                         char *problem, size_t plen, int idx)
{
    for (;;) {
        const char *p = s + *off;
        const char *eol = memmem(p, len - *off, "\r\n", 2);
        char *endp;
        if (eol == NULL) {
            snprintf(problem, plen, "answer %d: chunked body cut in a size line", idx);
            *off = len;
            return -1;
        }
        unsigned long long size = strtoull(p, &endp, 16);
        if (endp == p || (endp != eol && *endp != ';')) {
            snprintf(problem, plen, "answer %d: bad chunk size line at byte %zu", idx, *off);
            return -1;
        }
        *off = (size_t)(eol + 2 - s);
        if (size == 0) {
            /* trailer lines, then the blank line */
            for (;;) {
                p = s + *off;
                eol = memmem(p, len - *off, "\r\n", 2);
                if (eol == NULL) {
                    snprintf(problem, plen, "answer %d: trailer section cut", idx);
                    *off = len;
                    return -1;
                }
                *off = (size_t)(eol + 2 - s);
                if (eol == p) {
                    a->complete = 1;
                    return 0;
                }
            }
        }
        size_t have = len - *off;
        size_t take = size < have ? (size_t)size : have;
        memcpy(a->body + a->body_len, s + *off, take);
        a->body_len += take;
        a->body[a->body_len] = '\0';
        if (have < size + 2) {
            snprintf(problem, plen, "answer %d: chunk cut (%zu of %llu bytes)", idx, take, size);
            *off = len;
            return -1;
        }
        if (memcmp(s + *off + size, "\r\n", 2) != 0) {
            snprintf(problem, plen, "answer %d: no CRLF after a chunk", idx);
            return -1;
        }
        *off += (size_t)size + 2;
    }
}

/* Split the byte stream a client got into HTTP/1.1 answers by their framing
 * (Content-Length, chunked, or the close).  Whatever does not parse is said
 * in as->problem and ends the parse. */
static void parse_answers(const char *s, size_t len, int eof, struct answers *as)
{
    size_t off = 0;

    memset(as, 0, sizeof *as);
    while (off < len) {
        const char *p = s + off;
        size_t rest = len - off;
        if (as->n == MAX_ANSWERS) {
            snprintf(as->problem, sizeof as->problem, "more than %d answers", MAX_ANSWERS);
            return;
        }
        if (!status_line_ok(p, rest)) {
            snprintf(as->problem, sizeof as->problem,
                     "no status line at byte %zu (after %d answers): \"%.40s\"", off, as->n, p);
            return;
        }
        const char *end = memmem(p, rest, "\r\n\r\n", 4);
        if (end == NULL) {
            snprintf(as->problem, sizeof as->problem, "head %d not complete", as->n + 1);
            return;
        }
        struct answer *a = &as->a[as->n++];
        a->status = atoi(p + 9);
        a->head = p;
        a->head_len = (size_t)(end + 4 - p);
        a->content_length = -1;
        a->body = calloc(1, len + 1);
        if (a->body == NULL) {
            snprintf(as->problem, sizeof as->problem, "out of memory");
            return;
        }
        off += a->head_len;

        /* framing: Content-Length (one, digits), Transfer-Encoding */
        int ncl = 0;
        for (const char *l = memmem(p, a->head_len, "\r\n", 2) + 2; l < end;) {
            const char *eol = memmem(l, (size_t)(end + 2 - l), "\r\n", 2);
            if (eol == NULL)
                break;
            if (strncasecmp(l, "Content-Length:", 15) == 0) {
                const char *v = l + 15;
                while (*v == ' ')
                    v++;
                ncl++;
                a->content_length = isdigit((unsigned char)*v) ? strtoll(v, NULL, 10) : -2;
            } else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0) {
                a->chunked = 1;
            }
            l = eol + 2;
        }
        if (ncl > 1 || a->content_length == -2 || (ncl > 0 && a->chunked)) {
            snprintf(as->problem, sizeof as->problem, "answer %d: ambiguous framing", as->n);
            return;
        }
        if (a->status < 200 || a->status == 204 || a->status == 304) {
            a->complete = 1;
            continue;
        }
        if (a->chunked) {
            if (parse_chunked(s, len, &off, a, as->problem, sizeof as->problem, as->n) != 0)
                return;
        } else if (a->content_length >= 0) {
            size_t have = len - off;
            size_t take = (unsigned long long)a->content_length < have ? (size_t)a->content_length
                                                                      : have;
            memcpy(a->body, s + off, take);
            a->body_len = take;
            off += take;
            a->complete = take == (size_t)a->content_length;
            if (!a->complete) {
                snprintf(as->problem, sizeof as->problem,
                         "answer %d: body cut after %zu of %lld bytes", as->n, take,
                         a->content_length);
                return;
            }
        } else {
            /* delimited by the close */
            memcpy(a->body, s + off, len - off);
            a->body_len = len - off;
            off = len;
            a->complete = eof;
        }
    }
}

/* "POST /v1/chat/completions" for model with X-Request-Id: id. */
static int chat_request(char *buf, size_t cap, const char *model, const char *id, int close_it)
{
    char body[512];
    int bl = snprintf(body, sizeof body,
                      "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                      model);
    return snprintf(buf, cap,
                    "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "X-Request-Id: %s\r\nContent-Length: %d\r\n%s\r\n%s",
                    id, bl, close_it ? "Connection: close\r\n" : "", body);
}

/* Two requests (req-1, then req-2 with Connection: close) in one write on
 * one connection; read until the router closes it or READ_MS pass. */
static void pipeline(const char *model, struct exchange *x)
{
    char req[2048];
    int n = chat_request(req, sizeof req, model, "req-1", 0);
    size_t cap = 1 << 20;
    int fd = tcp_connect(br.port);
    double t0 = mono_seconds(), deadline = t0 + READ_MS / 1000.0;

    n += chat_request(req + n, sizeof req - (size_t)n, model, "req-2", 1);
    memset(x, 0, sizeof *x);
    x->out = calloc(1, cap + 1);
    if (fd >= 0 && x->out != NULL && write(fd, req, (size_t)n) == n) {
        while (x->len < cap && mono_seconds() < deadline) {
            struct pollfd p = { fd, POLLIN, 0 };
            if (poll(&p, 1, 50) <= 0)
                continue;
            ssize_t r = read(fd, x->out + x->len, cap - x->len);
            if (r <= 0) {
                x->eof = 1;
                break;
            }
            x->len += (size_t)r;
        }
    }
    if (fd >= 0)
        close(fd);
    x->took = mono_seconds() - t0;
    if (x->out == NULL)
        x->out = strdup("");
    parse_answers(x->out, x->len, x->eof, &x->ans);
}

static void exchange_free(struct exchange *x)
{
    answers_free(&x->ans);
    free(x->out);
    x->out = NULL;
}

/* On a failure: every byte the client got. */
static void dump(const char *what, const struct exchange *x)
{
    fprintf(stderr, "\n  [%s] the client got (%zu bytes, %s after %.2f s, problem: %s):\n%.2000s\n",
            what, x->len, x->eof ? "closed" : "still open", x->took,
            x->ans.problem[0] ? x->ans.problem : "none", x->out);
}

/* The end of a check: the stream in the report when an assertion failed
 * since `failures` (CU_get_number_of_failures() before it). */
static void exchange_done(const char *what, struct exchange *x, unsigned failures)
{
    if (CU_get_number_of_failures() != failures)
        dump(what, x);
    exchange_free(x);
}

/* What every answer must be: whole heads the router wrote (no 1xx), the
 * X-Request-Id of its own request, X-Switchyard-Attempts; nothing forged in
 * the stream; the backend got no more requests than the attempts said. */
static void check_common(const char *what, const struct exchange *x)
{
    char v[256];
    int attempts = 0;

    for (int i = 0; i < x->ans.n; i++) {
        const struct answer *a = &x->ans.a[i];
        char want[16];
        snprintf(want, sizeof want, "req-%d", i + 1);
        CHECK(what, a->status >= 200);
        const char *id = ans_header(a, "X-Request-Id", v, sizeof v);
        CHECK(what, id != NULL && strcmp(id, want) == 0);
        const char *at = ans_header(a, "X-Switchyard-Attempts", v, sizeof v);
        CHECK(what, at != NULL && atoi(at) >= 1);
        attempts += at != NULL ? atoi(at) : 0;
    }
    CHECK(what, strcasestr(x->out, "injected") == NULL);
    CHECK(what, strcasestr(x->out, "from-backend") == NULL);
    CHECK(what, strstr(x->out, "HTTP/1.1 101") == NULL);
    CHECK(what, raw_backend_requests(&rb) <= attempts);
}

/* The router's own JSON error: {"error":{"message","type","code"}}. */
static void check_error_json(const char *what, const struct answer *a, int status)
{
    struct json_object *root = a->body ? json_tokener_parse(a->body) : NULL, *err, *v;
    int ok_err = root != NULL && json_object_object_get_ex(root, "error", &err) &&
                 json_object_is_type(err, json_type_object);

    CHECK(what, a->status == status);
    CHECK(what, ok_err);
    if (ok_err) {
        CHECK(what, json_object_object_get_ex(err, "message", &v) &&
                        json_object_is_type(v, json_type_string) &&
                        json_object_get_string_len(v) > 0);
        CHECK(what, json_object_object_get_ex(err, "type", &v) &&
                        json_object_is_type(v, json_type_string));
        CHECK(what, json_object_object_get_ex(err, "code", &v) &&
                        json_object_get_int(v) == status);
    }
    json_object_put(root);
}

/* ------------------------------------------------------------------ */
/* the suite: a raw backend, a good mock, one router                   */

/*
 * Model m: [raw, good].  The session plugin alone declines requests
 * without its key, so the core takes the first candidate: raw first, then
 * good (reroute_attempts: 1, two attempts).  Model solo: [raw] alone, so
 * every attempt gets the raw backend's answer.  No engine-stats scrape:
 * the raw backend counts every request it reads, a GET /metrics too.
 */
static int backend_setup(void)
{
    struct raw_answer a = { NORMAL, 0, 0, 0, 0 };
    char yaml[2048];

    if (raw_backend_start(&rb, &a, 1) != 0)
        return -1;
    if (mock_start(&good, "bk-good", "m", NULL) != 0)
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "engine_stats_interval: 0\n"
             "upstream_timeout: 2s\n"
             "reroute_attempts: 1\n"
             "routing: [session]\n"
             "plugin_config:\n"
             "  session:\n"
             "    key: X-Session-Id\n"
             "models:\n"
             "  m:\n"
             "    backends: [%s, %s]\n"
             "  solo:\n"
             "    backends: [%s]\n",
             rb.url, good.url, rb.url);
    return router_start(&br, yaml, NULL);
}

static int backend_teardown(void)
{
    int st = router_stop(&br);

    check_no_sanitizer_report(br.log);
    mock_stop(&good);
    raw_backend_stop(&rb);
    return st == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* the reproductions                                                   */

/* Every attempt got a forged/malformed answer: each request gets the
 * router's 502 of its own, and nothing of the backend's bytes. */
static void check_all_502(const char *what, struct exchange *x)
{
    check_common(what, x);
    CHECK(what, x->ans.n == 2);
    CHECK(what, x->ans.problem[0] == '\0');
    for (int i = 0; i < x->ans.n; i++)
        check_error_json(what, &x->ans.a[i], 502);
}

/* Content-Length: 2 and chunked, the chunk holding "{}" then a whole
 * forged answer. */
static void test_repro_cl_and_te(void)
{
    char answer[1024];
    struct exchange x;

    snprintf(answer, sizeof answer,
             "HTTP/1.1 200 OK\r\n" CT "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
             "%zx\r\n{}" FORGED "\r\n0\r\n\r\n",
             strlen("{}" FORGED));
    CU_ASSERT_EQUAL_FATAL(script1(answer, 0, 0), 0);
    unsigned f0 = CU_get_number_of_failures();
    pipeline("solo", &x);
    check_all_502("CL+TE", &x);
    exchange_done("CL+TE", &x, f0);
}

/* Content-Length: 99999999999999999999 then "{}" and a forged answer. */
static void test_repro_huge_length(void)
{
    struct exchange x;

    CU_ASSERT_EQUAL_FATAL(script1("HTTP/1.1 200 OK\r\n" CT "Content-Length: 99999999999999999999\r\n"
                                  "\r\n{}" FORGED, 0, 0), 0);
    unsigned f0 = CU_get_number_of_failures();
    pipeline("solo", &x);
    check_all_502("CL 99999999999999999999", &x);
    exchange_done("CL 99999999999999999999", &x, f0);
}

/* 101 Switching Protocols to an ordinary POST, then raw bytes. */
static void test_repro_101(void)
{
    struct exchange x;

    CU_ASSERT_EQUAL_FATAL(script1("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n\r\n"
                                  "HTTP/1.1 200 OK\r\nSet-Cookie: from-backend=1\r\n" CT
                                  "Content-Length: 20\r\n\r\n" INJ_BODY, 0, 1), 0);
    unsigned f0 = CU_get_number_of_failures();
    pipeline("solo", &x);
    check_all_502("101", &x);
    exchange_done("101", &x, f0);
}

/* ------------------------------------------------------------------ */
/* malformed heads, one by one                                         */

#define OK_LINE "HTTP/1.1 200 OK\r\n"
#define TAIL "Content-Length: 20\r\n\r\n" INJ_BODY

struct variant {
    const char *name;
    const char *answer;
};

static const struct variant variants[] = {
    { "CL 99999999999999999999",
      OK_LINE CT "X-Injected: yes\r\nContent-Length: 99999999999999999999\r\n\r\n" INJ_BODY },
    { "CL 2^63", OK_LINE CT "X-Injected: yes\r\nContent-Length: 9223372036854775808\r\n\r\n" INJ_BODY },
    { "CL -1", OK_LINE CT "X-Injected: yes\r\nContent-Length: -1\r\n\r\n" INJ_BODY },
    { "CL \"1, 1\"", OK_LINE CT "X-Injected: yes\r\nContent-Length: 1, 1\r\n\r\n" INJ_BODY },
    { "CL empty", OK_LINE CT "X-Injected: yes\r\nContent-Length: \r\n\r\n" INJ_BODY },
    { "CL +20", OK_LINE CT "X-Injected: yes\r\nContent-Length: +20\r\n\r\n" INJ_BODY },
    { "CL 0x14", OK_LINE CT "X-Injected: yes\r\nContent-Length: 0x14\r\n\r\n" INJ_BODY },
    { "two CLs that differ",
      OK_LINE CT "X-Injected: yes\r\nContent-Length: 20\r\nContent-Length: 21\r\n\r\n" INJ_BODY " " },
    { "CL and TE",
      OK_LINE CT "X-Injected: yes\r\nContent-Length: 20\r\nTransfer-Encoding: chunked\r\n\r\n"
      "14\r\n" INJ_BODY "\r\n0\r\n\r\n" },
    { "TE gzip, chunked",
      OK_LINE CT "X-Injected: yes\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "14\r\n" INJ_BODY "\r\n0\r\n\r\n" },
    { "TE identity", OK_LINE CT "X-Injected: yes\r\nTransfer-Encoding: identity\r\n\r\n" INJ_BODY },
    { "101 Switching Protocols",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n" FORGED },
    { "104 interim", "HTTP/1.1 104 Odd\r\n\r\n" FORGED },
    { "199 interim", "HTTP/1.1 199 Odd\r\nX-Injected: yes\r\n\r\n" FORGED },
    { "status 2000", "HTTP/1.1 2000 OK\r\n" CT "X-Injected: yes\r\n" TAIL },
    { "status 20", "HTTP/1.1 20 OK\r\n" CT "X-Injected: yes\r\n" TAIL },
    { "FOO 200", "FOO 200\r\n" CT "X-Injected: yes\r\n" TAIL },
    { "status 099", "HTTP/1.1 099 X\r\n" CT "X-Injected: yes\r\n" TAIL },
    { "header name 'Bad Name'", OK_LINE CT "X-Injected: yes\r\nBad Name: x\r\n" TAIL },
    { "header name 'X('", OK_LINE CT "X-Injected: yes\r\nX(: y\r\n" TAIL },
    { "line without a colon", OK_LINE CT "X-Injected: yes\r\nNoColonHere\r\n" TAIL },
    { "obs-fold (space)", OK_LINE CT "X-Injected: yes\r\nX-A: 1\r\n continued\r\n" TAIL },
    { "obs-fold (tab)", OK_LINE CT "X-Injected: yes\r\nX-A: 1\r\n\tcontinued\r\n" TAIL },
};

/* 129 header lines, or a head over 64 KiB in fewer than 128 lines. */
static char *many_lines(void)
{
    size_t cap = 16384, n = 0;
    char *b = malloc(cap);

    n += (size_t)snprintf(b + n, cap - n, OK_LINE CT "X-Injected: yes\r\n");
    for (int i = 0; i < 126; i++)
        n += (size_t)snprintf(b + n, cap - n, "X-Pad-%d: %d\r\n", i, i);
    snprintf(b + n, cap - n, TAIL); /* the 129th line: Content-Length */
    return b;
}

static char *huge_head(void)
{
    size_t cap = 96 * 1024, n = 0;
    char *b = malloc(cap);

    n += (size_t)snprintf(b + n, cap - n, OK_LINE CT "X-Injected: yes\r\n");
    for (int i = 0; i < 17; i++) { /* 17 x 4 KiB: 68 KiB */
        n += (size_t)snprintf(b + n, cap - n, "X-Big-%02d: ", i);
        memset(b + n, 'a' + i, 4096);
        n += 4096;
        n += (size_t)snprintf(b + n, cap - n, "\r\n");
    }
    snprintf(b + n, cap - n, TAIL);
    return b;
}

/* One malformed answer: with a good backend next in line the client gets
 * the good one's 200 (2 attempts); with the raw backend alone, 502. */
static void check_variant(const char *name, const char *answer, int idx)
{
    const char *h[3];
    char id[64], idh[96];
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(script1(answer, 0, 1), 0);

    snprintf(id, sizeof id, "bad-%d-a", idx);
    snprintf(idh, sizeof idh, "X-Request-Id: %s", id);
    h[0] = "Content-Type: application/json";
    h[1] = idh;
    h[2] = NULL;
    http_raw(br.port, "POST", CHAT, "{\"model\":\"m\",\"messages\":[]}", h, READ_MS, &r);
    CHECK(name, r.status == 200);
    CHECK(name, resp_header(&r, "X-Request-Id") != NULL &&
                    strcmp(resp_header(&r, "X-Request-Id"), id) == 0);
    CHECK(name, resp_header(&r, "X-Switchyard-Attempts") != NULL &&
                    strcmp(resp_header(&r, "X-Switchyard-Attempts"), "2") == 0);
    CHECK(name, strstr(r.body, "chat.completion") != NULL);
    CHECK(name, strcasestr(r.headers, "injected") == NULL && strcasestr(r.body, "injected") == NULL);
    CHECK(name, raw_backend_requests(&rb) == 1);
    if (r.status != 200 || strcasestr(r.body, "injected") != NULL)
        fprintf(stderr, "\n  [%s] m: status %ld (curl %d), body %.300s\n", name, r.status,
                r.curl_error, r.body);
    resp_free(&r);

    CU_ASSERT_EQUAL(script1(answer, 0, 1), 0); /* the count back to 0 */
    snprintf(id, sizeof id, "bad-%d-b", idx);
    snprintf(idh, sizeof idh, "X-Request-Id: %s", id);
    http_raw(br.port, "POST", CHAT, "{\"model\":\"solo\",\"messages\":[]}", h, READ_MS, &r);
    struct answer a = { .status = (int)r.status, .body = r.body };
    check_error_json(name, &a, 502);
    CHECK(name, resp_header(&r, "X-Request-Id") != NULL &&
                    strcmp(resp_header(&r, "X-Request-Id"), id) == 0);
    const char *at = resp_header(&r, "X-Switchyard-Attempts");
    int attempts = at != NULL ? atoi(at) : 0;
    CHECK(name, attempts >= 1);
    CHECK(name, raw_backend_requests(&rb) >= 1 && raw_backend_requests(&rb) <= attempts);
    CHECK(name, strcasestr(r.headers, "injected") == NULL && strcasestr(r.body, "injected") == NULL);
    if (r.status != 502)
        fprintf(stderr, "\n  [%s] solo: status %ld (curl %d), body %.300s\n", name, r.status,
                r.curl_error, r.body);
    resp_free(&r);
}

static void test_malformed_heads(void)
{
    size_t n = sizeof variants / sizeof variants[0];
    char *lines = many_lines(), *big = huge_head();

    for (size_t i = 0; i < n; i++)
        check_variant(variants[i].name, variants[i].answer, (int)i);
    check_variant("129 header lines", lines, (int)n);
    check_variant("head over 64 KiB", big, (int)n + 1);
    free(lines);
    free(big);
}

/* ------------------------------------------------------------------ */
/* answers that are fine, and bodies that do not match their length    */

/* 100, 102 and 103 are interim: skipped, and the real head served. */
static void test_interim_answers(void)
{
    static const struct variant interim[] = {
        { "100 Continue", "HTTP/1.1 100 Continue\r\n\r\n" NORMAL },
        { "102 Processing", "HTTP/1.1 102 Processing\r\n\r\n" NORMAL },
        { "103 Early Hints",
          "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" NORMAL },
        { "100 then 103", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                          "Link: </a.js>; rel=preload\r\n\r\n" NORMAL },
    };
    char v[64];

    for (size_t i = 0; i < sizeof interim / sizeof interim[0]; i++) {
        const char *what = interim[i].name;
        struct exchange x;
        CU_ASSERT_EQUAL_FATAL(script1(interim[i].answer, 0, 0), 0);
        unsigned f0 = CU_get_number_of_failures();
    pipeline("solo", &x);
        check_common(what, &x);
        CHECK(what, x.ans.n == 2);
        CHECK(what, x.ans.problem[0] == '\0');
        CHECK(what, x.eof);
        for (int k = 0; k < x.ans.n; k++) {
            const struct answer *a = &x.ans.a[k];
            CHECK(what, a->status == 200);
            CHECK(what, a->complete && strcmp(a->body, "{\"ok\":true}") == 0);
            const char *at = ans_header(a, "X-Switchyard-Attempts", v, sizeof v);
            CHECK(what, at != NULL && strcmp(at, "1") == 0);
        }
        CHECK(what, raw_backend_requests(&rb) == 2);
        CHECK(what, strstr(x.out, "HTTP/1.1 1") == NULL);
        exchange_done(what, &x, f0);
    }
}

/* The backend closes before the body's length: the client gets the head
 * (with that length) and the bytes sent, then its connection is closed, and
 * the pipelined second request gets nothing on it. */
static void test_short_body(void)
{
    static const char head[] = "HTTP/1.1 200 OK\r\n" CT "Content-Length: 100\r\n\r\n";
    const char *what = "short body";
    char answer[512], v[64];
    struct exchange x;

    snprintf(answer, sizeof answer, "%s{\"partial\":", head);
    CU_ASSERT_EQUAL_FATAL(script1(answer, sizeof head - 1, 1), 0);
    unsigned f0 = CU_get_number_of_failures();
    pipeline("solo", &x);
    check_common(what, &x);
    CHECK(what, x.eof);
    CHECK(what, x.took < 3.0);
    CHECK(what, x.ans.n == 1);
    if (x.ans.n >= 1) {
        const struct answer *a = &x.ans.a[0];
        CHECK(what, a->status == 200);
        CHECK(what, a->content_length == 100);
        CHECK(what, !a->complete);
        CHECK(what, strcmp(a->body, "{\"partial\":") == 0);
        const char *at = ans_header(a, "X-Switchyard-Attempts", v, sizeof v);
        CHECK(what, at != NULL && strcmp(at, "1") == 0);
    }
    CHECK(what, strstr(x.out, "req-2") == NULL);
    CHECK(what, raw_backend_requests(&rb) == 1);
    exchange_done(what, &x, f0);
}

/* The backend sends more than its length ("{}" then a forged answer on the
 * same connection): the client gets the two bytes; the excess is never an
 * answer, nor part of one; the second request gets an answer of its own, or
 * the connection closes. */
static void test_long_body(void)
{
    const char *what = "long body";
    struct raw_answer a[2] = {
        { "HTTP/1.1 200 OK\r\n" CT "Content-Length: 2\r\n\r\n{}" FORGED, 0, 0, 0, 0 },
        { "HTTP/1.1 200 OK\r\n" CT "Content-Length: 12\r\n\r\n{\"second\":1}", 0, 0, 0, 0 },
    };
    struct exchange x;

    CU_ASSERT_EQUAL_FATAL(raw_backend_script(&rb, a, 2), 0);
    unsigned f0 = CU_get_number_of_failures();
    pipeline("solo", &x);
    check_common(what, &x);
    CHECK(what, x.ans.problem[0] == '\0');
    CHECK(what, x.ans.n >= 1 && x.ans.n <= 2);
    if (x.ans.n >= 1) {
        CHECK(what, x.ans.a[0].status == 200);
        CHECK(what, x.ans.a[0].complete && x.ans.a[0].body_len == 2 &&
                        strcmp(x.ans.a[0].body, "{}") == 0);
    }
    if (x.ans.n == 2 && x.ans.a[1].status == 200)
        CHECK(what, strcmp(x.ans.a[1].body, "{\"second\":1}") == 0);
    if (x.ans.n < 2)
        CHECK(what, x.eof);
    exchange_done(what, &x, f0);
}

/* A chunked answer with a trailer section: one answer each, no second head
 * made of the trailers. */
static void test_trailers(void)
{
    const char *what = "trailers";
    char v[64];
    struct exchange x;

    CU_ASSERT_EQUAL_FATAL(script1("HTTP/1.1 200 OK\r\n" CT "Transfer-Encoding: chunked\r\n\r\n"
                                  "b\r\n{\"ok\":true}\r\n0\r\nX-Trailer: 1\r\n\r\n", 0, 0), 0);
    unsigned f0 = CU_get_number_of_failures();
    pipeline("solo", &x);
    check_common(what, &x);
    CHECK(what, x.ans.problem[0] == '\0');
    CHECK(what, x.ans.n == 2);
    CHECK(what, count_substr(x.out, "HTTP/1.1 ") == 2);
    for (int k = 0; k < x.ans.n; k++) {
        const struct answer *a = &x.ans.a[k];
        CHECK(what, a->status == 200);
        CHECK(what, a->complete && strcmp(a->body, "{\"ok\":true}") == 0);
        const char *at = ans_header(a, "X-Switchyard-Attempts", v, sizeof v);
        CHECK(what, at != NULL && strcmp(at, "1") == 0);
    }
    CHECK(what, raw_backend_requests(&rb) == 2);
    exchange_done(what, &x, f0);
}

/* ------------------------------------------------------------------ */
/* the access log                                                      */

/* The router's log lines that hold "ACCESS id=<id> ", as one malloc'd
 * string each in lines[] (up to max); their count. */
static int access_lines(const char *id, char **lines, int max)
{
    char needle[128], *s, *save = NULL;
    int n = 0;

    snprintf(needle, sizeof needle, " ACCESS id=%s ", id);
    if (!wait_file_contains(br.log, needle, 2000))
        return 0;
    sleep_ms(50);
    s = slurp(br.log);
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strstr(l, needle) != NULL && n < max)
            lines[n++] = strdup(l);
    free(s);
    return n;
}

static int post_status(const char *body, const char *id)
{
    char idh[96];
    const char *h[] = { "Content-Type: application/json", idh, NULL };
    struct resp r;
    long st;

    snprintf(idh, sizeof idh, "X-Request-Id: %s", id);
    http_raw(br.port, "POST", CHAT, body, h, READ_MS, &r);
    st = r.status;
    resp_free(&r);
    return (int)st;
}

/* A model that spells out fields and a newline stays inside its own quoted
 * value: one line, one status, no forged line. */
static void test_access_log_forgery(void)
{
    static const char body[] =
        "{\"model\": \"nope served=a backend=http://127.0.0.1:1 status=200\\n... ACCESS id=FORGED\"}";
    static const char want[] =
        " model=\"nope served\\u003da backend\\u003dhttp://127.0.0.1:1 status\\u003d200\\n"
        "... ACCESS id\\u003dFORGED\" ";
    char *lines[4], *s, *save = NULL;
    int n;

    CU_ASSERT_EQUAL(post_status(body, "log-forge-1"), 404);
    n = access_lines("log-forge-1", lines, 4);
    CU_ASSERT_EQUAL(n, 1);
    if (n >= 1) {
        CU_ASSERT_PTR_NOT_NULL(strstr(lines[0], want));
        CU_ASSERT_EQUAL(count_substr(lines[0], " status="), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(lines[0], " status=404"));
        if (strstr(lines[0], want) == NULL)
            fprintf(stderr, "\n  access line: %s\n", lines[0]);
    }
    for (int i = 0; i < n; i++)
        free(lines[i]);
    /* no line of the log is a forged access line */
    s = slurp(br.log);
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *p = l;
        while (*p && (isdigit((unsigned char)*p) || strchr("-:.TZ", *p)))
            p++;
        CU_ASSERT_TRUE(strncmp(p, " ACCESS id=FORGED", 17) != 0);
        CU_ASSERT_TRUE(strncmp(l, "... ACCESS", 10) != 0);
    }
    free(s);
}

/* Bare when only 0x21-0x7E other than '"', '\' and '='; else quoted with
 * JSON escapes ('=' as \u003d). */
static void test_access_log_quoting(void)
{
    static const struct {
        const char *id, *body, *want;
    } cases[] = {
        { "log-q-bare", "{\"model\":\"m\",\"messages\":[]}", " model=m " },
        { "log-q-space", "{\"model\":\"a b\"}", " model=\"a b\" " },
        { "log-q-quote", "{\"model\":\"a\\\"b\\\\c\"}", " model=\"a\\\"b\\\\c\" " },
        { "log-q-eq", "{\"model\":\"x=y\"}", " model=\"x\\u003dy\" " },
    };
    char *lines[4];

    CU_ASSERT_EQUAL_FATAL(script1(NORMAL, 0, 0), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *what = cases[i].id;
        post_status(cases[i].body, cases[i].id);
        int n = access_lines(cases[i].id, lines, 4);
        CHECK(what, n == 1);
        if (n >= 1) {
            CHECK(what, strstr(lines[0], cases[i].want) != NULL);
            CHECK(what, count_substr(lines[0], " status=") == 1);
            if (strstr(lines[0], cases[i].want) == NULL)
                fprintf(stderr, "\n  [%s] access line: %s\n", what, lines[0]);
        }
        for (int k = 0; k < n; k++)
            free(lines[k]);
    }
}

void register_backend_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e backend: a backend's answer is untrusted input",
                               backend_setup, backend_teardown);
    CU_add_test(s, "repro: Content-Length and chunked hiding a forged answer", test_repro_cl_and_te);
    CU_add_test(s, "repro: Content-Length 99999999999999999999", test_repro_huge_length);
    CU_add_test(s, "repro: 101 to a POST, then raw bytes", test_repro_101);
    CU_add_test(s, "malformed heads: failed attempts (200 via the next, else 502)",
                test_malformed_heads);
    CU_add_test(s, "100, 102, 103: interim, skipped", test_interim_answers);
    CU_add_test(s, "body shorter than Content-Length: cut, connection closed", test_short_body);
    CU_add_test(s, "body longer than Content-Length: the excess never an answer", test_long_body);
    CU_add_test(s, "chunked with trailers: one answer", test_trailers);
    CU_add_test(s, "access log: a model cannot forge fields or lines", test_access_log_forgery);
    CU_add_test(s, "access log: bare or quoted with JSON escapes", test_access_log_quoting);
}
