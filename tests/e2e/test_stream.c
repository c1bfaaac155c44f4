/* Streaming under pressure: a client that stops reading pauses the upstream
 * transfer instead of growing the router's memory; and every worker thread
 * takes its share of connections. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct mock mk;
static struct router rt;

static int setup_suite(void)
{
    char yaml[1024];
    if (mock_start(&mk, "streamer", "s", NULL) != 0)
        return -1;
    snprintf(yaml, sizeof yaml, "workers: 2\nmodels:\n  s:\n    backends: [%s]\n", mk.url);
    return router_start(&rt, yaml, NULL);
}

static int teardown_suite(void)
{
    int st = router_stop(&rt);
    mock_stop(&mk);
    return st == 0 ? 0 : -1;
}

/* The router's resident memory, in KiB (VmRSS). */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Is the daemon running under ASan or valgrind? */
static int instrumented(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#else
    const char *w = getenv("SY_TEST_WRAPPER");
    return w != NULL && *w != '\0';
#endif
}

static int connect_router(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 16 * 1024;

    /* a small receive window, so the kernel does not soak up the stream */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads an HTTP/1.1 answer with a chunked body as it arrives: the body's
 * last bytes are kept in `tail`, so an event split over two chunks (the
 * router passes on what it read, wherever that ends) is seen whole. */
struct dechunk {
    int state;           /* 0 head, 1 size line, 2 data, 3 CRLF after data, 4 done */
    char line[64];       /* the head's last 4 bytes, or the size line */
    size_t line_len;
    size_t left;         /* data bytes left in this chunk */
    char tail[64];       /* the body's last bytes, NUL-terminated */
    size_t body;         /* body bytes so far */
};

static void tail_add(struct dechunk *d, const char *b, size_t n)
{
    size_t old = strlen(d->tail), room = sizeof d->tail - 1;
    if (n >= room) {
        memcpy(d->tail, b + n - room, room);
        d->tail[room] = '\0';
        return;
    }
    if (old + n > room) {
        memmove(d->tail, d->tail + old + n - room, room - n);
        old = room - n;
    }
    memcpy(d->tail + old, b, n);
    d->tail[old + n] = '\0';
}

/* -1: not chunked HTTP as expected */
static int dechunk_feed(struct dechunk *d, const char *b, size_t n)
{
    for (size_t i = 0; i < n && d->state != 4;) {
        char c = b[i];
        if (d->state == 0) { /* up to the blank line */
            d->line[d->line_len++ % 4] = c;
            i++;
            if (d->line_len >= 4 && c == '\n' && d->line[(d->line_len - 2) % 4] == '\r' &&
                d->line[(d->line_len - 3) % 4] == '\n' && d->line[(d->line_len - 4) % 4] == '\r') {
                d->state = 1;
                d->line_len = 0;
            }
        } else if (d->state == 1) { /* hex size, CRLF */
            i++;
            if (c == '\n') {
                d->line[d->line_len] = '\0';
                char *end;
                unsigned long size = strtoul(d->line, &end, 16);
                if (end == d->line)
                    return -1;
                d->left = size;
                d->line_len = 0;
                d->state = size == 0 ? 4 : 2;
            } else if (c != '\r') {
                if (d->line_len >= sizeof d->line - 1)
                    return -1;
                d->line[d->line_len++] = c;
            }
        } else if (d->state == 2) { /* data */
            size_t take = n - i < d->left ? n - i : d->left;
            tail_add(d, b + i, take);
            d->body += take;
            d->left -= take;
            i += take;
            if (d->left == 0)
                d->state = 3;
        } else { /* CRLF after the data */
            i++;
            if (c == '\n')
                d->state = 1;
        }
    }
    return 0;
}

/* A client that reads nothing for 2 s of a ~15 MB stream, then all of it:
 * the router's RSS growth meanwhile is within [min_kib, max_kib) (not
 * checked under ASan or valgrind), and nothing is lost. */
static void slow_reader(const struct router *r, long min_kib, long max_kib)
{
    const char *body = "{\"model\":\"s\",\"stream\":true}";
    char req[512], buf[65536];
    /* ~100,000 events of ~150 bytes: some 15 MB, far over the router's
     * buffer cap and the sockets' buffers */
    const int chunks = 100000;
    long before, during;
    struct dechunk d;
    int fd, bad = 0;

    memset(&d, 0, sizeof d);
    fd = connect_router(r->port);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    before = rss_kib(r->pid);
    snprintf(req, sizeof req,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "X-Mock-Chunks: %d\r\nContent-Length: %zu\r\n\r\n%s", chunks, strlen(body), body);
    CU_ASSERT_EQUAL_FATAL(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    /* read nothing for a while: the backend keeps producing meanwhile */
    sleep(2);
    during = rss_kib(r->pid);
    CU_ASSERT_TRUE(before > 0 && during > 0);
    /* under ASan or valgrind the allocator's own bookkeeping blurs RSS */
    if (!instrumented()) {
        CU_ASSERT_TRUE(during - before >= min_kib && during - before < max_kib);
        if (during - before < min_kib || during - before >= max_kib)
            fprintf(stderr, "router RSS grew from %ld to %ld KiB\n", before, during);
    }
    /* now read it all: nothing lost while paused */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (d.state != 4 && !bad) {
        struct pollfd p = { fd, POLLIN, 0 };
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 30)
            break;
        if (poll(&p, 1, 1000) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        bad = dechunk_feed(&d, buf, (size_t)n) != 0;
    }
    close(fd);
    CU_ASSERT_FALSE(bad);
    CU_ASSERT_EQUAL(d.state, 4); /* the last chunk came */
    CU_ASSERT_PTR_NOT_NULL(strstr(d.tail, "data: [DONE]"));
    CU_ASSERT_TRUE(d.body > (size_t)chunks * 100);
}

/* Bounded by the default stream_buffer_size (256 KiB) plus slack, not
 * 15 MB. */
static void test_slow_reader_pauses_upstream(void)
{
    slow_reader(&rt, 0, 8 * 1024);
}

/* stream_buffer_size is the mark: at 32 MiB the router holds megabytes of
 * the same stream for its slow reader. */
static void test_stream_buffer_size(void)
{
    struct router r2;
    char yaml[1024];

    snprintf(yaml, sizeof yaml,
             "workers: 1\nstream_buffer_size: 32MiB\nmodels:\n  s:\n    backends: [%s]\n",
             mk.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&r2, yaml, NULL), 0);
    slow_reader(&r2, 4 * 1024, 64 * 1024);
    CU_ASSERT_EQUAL(router_stop(&r2), 0);
}

static void test_every_worker_serves(void)
{
    struct resp r;
    /* fresh connections spread over the workers' listening sockets */
    for (int i = 0; i < 64; i++) {
        CU_ASSERT_EQUAL(http_raw(rt.port, "GET", "/health", NULL, NULL, 2000, &r), 0);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL_FATAL(http_get(rt.port, "/metrics", &r), 0);
    for (int w = 0; w < 2; w++) {
        char key[64];
        snprintf(key, sizeof key, "switchyard_worker_requests_total{worker=\"%d\"} ", w);
        const char *p = strstr(r.body, key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_TRUE(atoll(p + strlen(key)) > 0);
    }
    resp_free(&r);
}

void register_stream_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e streaming and workers", setup_suite, teardown_suite);
    CU_add_test(s, "a slow reader pauses the upstream, memory stays bounded",
                test_slow_reader_pauses_upstream);
    CU_add_test(s, "stream_buffer_size sets how much a slow reader may hold",
                test_stream_buffer_size);
    CU_add_test(s, "every worker serves", test_every_worker_serves);
}
