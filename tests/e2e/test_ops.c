/* Operations: hot reload under load, a broken config on reload, graceful
 * shutdown with a stream running. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct mock ma, mb;

static int setup_suite(void)
{
    if (mock_start(&ma, "ops-a", "m", NULL) || mock_start(&mb, "ops-b", "m", NULL))
        return -1;
    return 0;
}

static int teardown_suite(void)
{
    mock_stop(&ma);
    mock_stop(&mb);
    return 0;
}

static int write_config(const struct router *r, const char *yaml)
{
    char text[4096];
    FILE *f = fopen(r->config, "w");
    if (f == NULL)
        return -1;
    snprintf(text, sizeof text, "listen: 127.0.0.1:%d\n%s", r->port, yaml);
    fputs(text, f);
    fclose(f);
    return 0;
}

struct load {
    int port;
    volatile int stop;
    int ok, failed, on_b;
};

static void *request_loop(void *arg)
{
    struct load *l = arg;
    while (!l->stop) {
        struct resp r;
        int rc = http_post(l->port, "/v1/chat/completions", "{\"model\":\"m\"}", NULL, &r);
        if (rc == 0 && r.status == 200) {
            l->ok++;
            const char *b = resp_header(&r, "X-Mock-Backend");
            l->on_b += b != NULL && strcmp(b, "ops-b") == 0;
        } else {
            l->failed++;
        }
        resp_free(&r);
    }
    return NULL;
}

struct stream {
    int port;
    struct resp r;
    int rc;
};

static void *long_stream(void *arg)
{
    struct stream *s = arg;
    const char *h[] = { "X-Mock-Chunks: 12", "X-Mock-Chunk-Delay-Ms: 100", NULL };
    s->rc = http_post(s->port, "/v1/chat/completions", "{\"model\":\"m\",\"stream\":true}", h, &s->r);
    return NULL;
}

/* An answer whose head comes 900 ms after the request. */
static void *slow_request(void *arg)
{
    struct stream *s = arg;
    const char *h[] = { "X-Mock-Delay-Ms: 900", NULL };
    s->rc = http_post(s->port, "/v1/chat/completions", "{\"model\":\"m\"}", h, &s->r);
    return NULL;
}

static void test_reload_under_load(void)
{
    struct router rt;
    char yaml[1024];
    pthread_t loop, stream, slow;
    struct load l = { 0 };
    struct stream st = { 0 }, sl = { 0 };
    struct resp r;

    snprintf(yaml, sizeof yaml, "workers: 2\nmodels:\n  m: {backends: [%s]}\n", ma.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    l.port = st.port = sl.port = rt.port;
    pthread_create(&loop, NULL, request_loop, &l);
    pthread_create(&stream, NULL, long_stream, &st);
    pthread_create(&slow, NULL, slow_request, &sl);
    usleep(300 * 1000);
    /* the new setup: m served by ops-b, and a model that falls back to m */
    snprintf(yaml, sizeof yaml,
             "workers: 2\nmodels:\n  m: {backends: [%s]}\n"
             "  big: {backends: [http://127.0.0.1:%d], fallback_model: m}\n",
             mb.url, free_port());
    CU_ASSERT_EQUAL(write_config(&rt, yaml), 0);
    kill(rt.pid, SIGHUP);
    usleep(600 * 1000);
    l.stop = 1;
    pthread_join(loop, NULL);
    pthread_join(stream, NULL);
    pthread_join(slow, NULL);
    /* answered by the old setup after the new one took over */
    CU_ASSERT_EQUAL(sl.rc, 0);
    CU_ASSERT_EQUAL(sl.r.status, 200);
    resp_free(&sl.r);
    /* zero failed requests, and the later ones went to the new backend */
    CU_ASSERT_TRUE(l.ok > 20);
    CU_ASSERT_EQUAL(l.failed, 0);
    CU_ASSERT_TRUE(l.on_b > 0);
    /* the stream that started before the reload finished on the old setup */
    CU_ASSERT_EQUAL(st.rc, 0);
    CU_ASSERT_EQUAL(st.r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.r.body ? st.r.body : "", "tok11"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st.r.body ? st.r.body : "", "data: [DONE]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st.r.body ? st.r.body : "", "\"backend\":\"ops-a\""));
    resp_free(&st.r);
    /* the new fallback works */
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "{\"model\":\"big\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Fallback") ? resp_header(&r, "X-Switchyard-Fallback") : "", "big>m");
    resp_free(&r);
    CU_ASSERT_TRUE(router_log_lines(&rt, "configuration reloaded: 2 models", NULL));
    /* every request counted once, those that straddled the reload too: the
     * old setup's counts move over when its last request is done (the
     * daemon looks for that every 0.2 s) */
    double counted = -1;
    for (int i = 0; i < 30 && counted != l.ok + 2; i++) {
        usleep(100 * 1000);
        counted = metric_value(rt.port, "switchyard_requests_total{model=\"m\",status=\"200\"}", -1);
    }
    CU_ASSERT_EQUAL(counted, l.ok + 2); /* the loop's, the stream, the slow one */
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}

static void test_broken_reload_changes_nothing(void)
{
    struct router rt;
    char yaml[512];
    struct resp r;

    snprintf(yaml, sizeof yaml, "models:\n  m: {backends: [%s]}\n", ma.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    /* a YAML error, then a plugin that does not exist */
    CU_ASSERT_EQUAL(write_config(&rt, "models:\n  m: {backends: [\n"), 0);
    kill(rt.pid, SIGHUP);
    usleep(300 * 1000);
    snprintf(yaml, sizeof yaml, "routing: nosuchplugin\nmodels:\n  other: {backends: [%s]}\n", mb.url);
    CU_ASSERT_EQUAL(write_config(&rt, yaml), 0);
    kill(rt.pid, SIGHUP);
    usleep(300 * 1000);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/chat/completions", "{\"model\":\"m\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Mock-Backend") ? resp_header(&r, "X-Mock-Backend") : "", "ops-a");
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rt.port, "/v1/models", &r), 0);
    CU_ASSERT_PTR_NULL(strstr(r.body, "\"other\""));
    resp_free(&r);
    CU_ASSERT_TRUE(router_log_lines(&rt, "reload failed, keeping the running configuration", NULL));
    CU_ASSERT_TRUE(router_log_lines(&rt, "nosuchplugin", NULL));
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}

static void test_sigterm_lets_a_stream_finish(void)
{
    struct router rt;
    char yaml[512];
    pthread_t stream;
    struct stream st = { 0 };
    struct resp r;

    snprintf(yaml, sizeof yaml, "drain_timeout: 10s\nmodels:\n  m: {backends: [%s]}\n", ma.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    st.port = rt.port;
    pthread_create(&stream, NULL, long_stream, &st);
    usleep(300 * 1000);
    kill(rt.pid, SIGTERM);
    usleep(200 * 1000);
    /* no new connections while draining */
    CU_ASSERT_NOT_EQUAL(http_raw(rt.port, "GET", "/health", NULL, NULL, 500, &r), 0);
    resp_free(&r);
    pthread_join(stream, NULL);
    CU_ASSERT_EQUAL(st.rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.r.body ? st.r.body : "", "data: [DONE]"));
    resp_free(&st.r);
    CU_ASSERT_EQUAL(router_wait(&rt, 3000), 0); /* it exits 0 by itself */
    CU_ASSERT_TRUE(router_log_lines(&rt, "drained: stopping", NULL));
}

/* An answer whose head comes 5 s after the request. */
static void *hung_request(void *arg)
{
    struct stream *s = arg;
    const char *h[] = { "X-Mock-Delay-Ms: 5000", NULL };
    s->rc = http_post(s->port, "/v1/chat/completions", "{\"model\":\"m\"}", h, &s->r);
    return NULL;
}

/* Requests cut when drain_timeout runs out were not left by their
 * clients: the access log says so, never 499. */
static void test_drain_timeout_cut_is_not_499(void)
{
    struct router rt;
    char yaml[512];
    pthread_t stream, hung;
    struct stream st = { 0 }, hu = { 0 };

    snprintf(yaml, sizeof yaml, "drain_timeout: 300ms\nmodels:\n  m: {backends: [%s]}\n",
             ma.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    st.port = hu.port = rt.port;
    pthread_create(&stream, NULL, long_stream, &st);
    pthread_create(&hung, NULL, hung_request, &hu);
    usleep(300 * 1000);
    kill(rt.pid, SIGTERM);
    pthread_join(stream, NULL);
    pthread_join(hung, NULL);
    resp_free(&st.r);
    resp_free(&hu.r);
    CU_ASSERT_EQUAL(router_wait(&rt, 3000), 0);
    CU_ASSERT_TRUE(router_log_lines(&rt, "drain timeout: stopping", NULL));
    /* the stream had its 200 sent; the hung request never got an answer */
    CU_ASSERT_TRUE(router_log_lines(&rt, "status=200 attempts=1", NULL));
    CU_ASSERT_TRUE(router_log_lines(&rt, "status=503 attempts=1", NULL));
    CU_ASSERT_TRUE(router_log_lines(&rt, "error=\"cut at shutdown (drain_timeout ran out)\"", NULL));
    CU_ASSERT_FALSE(router_log_lines(&rt, "status=499", NULL));
}

/* The admin listener closes a connection that stays silent for
 * client_timeout. */
static void test_admin_idle_timeout(void)
{
    struct router rt;
    char yaml[512], out[256];
    int admin = free_port();

    snprintf(yaml, sizeof yaml,
             "client_timeout: 1s\nadmin_listen: 127.0.0.1:%d\nmodels:\n  m: {backends: [%s]}\n",
             admin, ma.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    int fd = tcp_connect(admin);
    CU_ASSERT_FATAL(fd >= 0);
    double t0 = mono_seconds();
    tcp_read_close(fd, out, sizeof out, 5000);
    double took = mono_seconds() - t0;
    CU_ASSERT_TRUE(took > 0.5 && took < 3.5);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
}

static void test_dynamic_config_is_watched(void)
{
    struct router rt;
    char yaml[512], dyn[512];
    const char *path;
    struct resp r;
    int found = 0;

    snprintf(dyn, sizeof dyn, "static_backends: \"%s\"\nstatic_models: \"m\"\n", ma.url);
    path = write_temp("ops-dynamic.yaml", dyn);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    const char *extra[] = { "--dynamic-config-yaml", path, NULL };
    snprintf(yaml, sizeof yaml, "workers: 1\n");
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, extra), 0);
    /* a new model in the file, no signal: picked up within a few seconds */
    usleep(1100 * 1000); /* a modification time surely later than the first */
    snprintf(dyn, sizeof dyn, "static_backends: \"%s,%s\"\nstatic_models: \"m,n\"\n",
             ma.url, mb.url);
    CU_ASSERT_PTR_NOT_NULL(write_temp("ops-dynamic.yaml", dyn));
    for (int i = 0; i < 50 && !found; i++) {
        usleep(100 * 1000);
        if (http_post(rt.port, "/v1/chat/completions", "{\"model\":\"n\"}", NULL, &r) == 0)
            found = r.status == 200;
        resp_free(&r);
    }
    CU_ASSERT_TRUE(found);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_TRUE(router_log_lines(&rt, "ops-dynamic.yaml changed", NULL));
}

void register_ops_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e operations", setup_suite, teardown_suite);
    CU_add_test(s, "reload under load", test_reload_under_load);
    CU_add_test(s, "a broken config on reload changes nothing", test_broken_reload_changes_nothing);
    CU_add_test(s, "SIGTERM lets a stream finish", test_sigterm_lets_a_stream_finish);
    CU_add_test(s, "requests cut at the drain timeout are not 499", test_drain_timeout_cut_is_not_499);
    CU_add_test(s, "the admin listener closes idle connections", test_admin_idle_timeout);
    CU_add_test(s, "the dynamic config file is watched", test_dynamic_config_is_watched);
}
