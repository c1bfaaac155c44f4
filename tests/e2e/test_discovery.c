/*
 * e2e: discovery (ABI 1.3), through the example plugin discovery_file: the
 * backends are the lines of a file the test rewrites.  What a client sees
 * as backends come, go, turn not ready, serve new models, and as the
 * config gives discovered models their settings (fallback).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"

static const char *const args[] = { "--plugin-dir", EXAMPLE_PLUGIN_DIR, "--plugin-dir",
                                    BUILT_PLUGIN_DIR, NULL };

static double slack(void)
{
    const char *w = getenv("SY_TEST_WRAPPER");
    return w != NULL && *w != '\0' ? 5.0 : 1.0;
}

static void write_file(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    /* whole or not at all: the plugin may read at any moment */
    CU_ASSERT_EQUAL(rename(tmp, path), 0);
}

/* The status of one request for `model`, and which mock served it. */
static long ask(int port, const char *model, char *who, size_t len)
{
    char body[256];
    struct resp r;
    long status;

    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
    if (who != NULL)
        who[0] = '\0';
    if (http_post(port, CHAT, body, NULL, &r) != 0)
        return -1;
    status = r.status;
    if (who != NULL && resp_header(&r, "X-Mock-Backend") != NULL)
        snprintf(who, len, "%s", resp_header(&r, "X-Mock-Backend"));
    resp_free(&r);
    return status;
}

/* Of n requests for model, how many `name` served (-1: one failed). */
static int served(int port, const char *model, const char *name, int n)
{
    char who[64];
    int hits = 0;
    for (int i = 0; i < n; i++) {
        if (ask(port, model, who, sizeof who) != 200)
            return -1;
        hits += strcmp(who, name) == 0;
    }
    return hits;
}

/* Wait until n requests for model all go to `name` (all != 0) or none
 * does (all == 0), within 2 s (with slack); the seconds it took, or -1. */
static double wait_until(int port, const char *model, const char *name, int all)
{
    double start = mono_seconds();
    while (mono_seconds() - start < 2.0 * slack()) {
        int hits = served(port, model, name, 4);
        if (hits >= 0 && (all ? hits == 4 : hits == 0))
            return mono_seconds() - start;
        sleep_ms(20);
    }
    return -1;
}

static int start(struct router *rt, const char *file, const char *extra_yaml)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "discovery: [discovery_file]\n"
             "plugin_config:\n  discovery_file: {file: \"%s\", interval: 30ms}\n%s",
             file, extra_yaml ? extra_yaml : "");
    return router_start(rt, yaml, args);
}

/* Backends come and go; a model nobody wrote down is served; a backend
 * that is not ready takes nothing and shows in /engines. */
static void test_follow_changes(void)
{
    struct mock a, b;
    struct router rt;
    char text[512];
    const char *file = write_temp("disc-follow.txt", "");

    CU_ASSERT_FATAL(mock_start(&a, "da", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "db", "m,adapter", NULL) == 0);
    if (start(&rt, file, NULL) != 0) {
        mock_stop(&a);
        mock_stop(&b);
        CU_FAIL_FATAL("the router did not start");
    }
    /* nothing discovered yet: no such model */
    CU_ASSERT_EQUAL(ask(rt.port, "m", NULL, 0), 404);

    snprintf(text, sizeof text, "%s m\n", a.url);
    write_file(file, text);
    CU_ASSERT(wait_until(rt.port, "m", "da", 1) >= 0);

    /* b joins, serving an adapter too (a LoRA adapter by its own name),
     * with a label */
    snprintf(text, sizeof text, "%s m\n%s m,adapter role=decode\n", a.url, b.url);
    write_file(file, text);
    double t = -1, start_t = mono_seconds();
    while (mono_seconds() - start_t < 2.0 * slack() && t < 0) {
        int hits = served(rt.port, "m", "db", 6);
        if (hits > 0 && hits < 6)
            t = mono_seconds() - start_t;
        else
            sleep_ms(20);
    }
    CU_ASSERT(t >= 0);
    CU_ASSERT_EQUAL(served(rt.port, "adapter", "db", 4), 4);
    struct resp eng;
    CU_ASSERT_EQUAL_FATAL(http_get(rt.port, "/engines", &eng), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(eng.body, "\"labels\":{\"role\":\"decode\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eng.body, "\"discovered\":true"));
    resp_free(&eng);

    /* a not ready: everything to b; /engines says who holds it out */
    snprintf(text, sizeof text, "%s m notready\n%s m,adapter\n", a.url, b.url);
    write_file(file, text);
    CU_ASSERT(wait_until(rt.port, "m", "db", 1) >= 0);
    struct resp r;
    CU_ASSERT_EQUAL_FATAL(http_get(rt.port, "/engines", &r), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "discovery"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "not ready (discovery)"));
    resp_free(&r);
    CU_ASSERT_EQUAL(metric_value(rt.port, "switchyard_discovered_backends{state=\"ready\"}", -1),
                    1);
    CU_ASSERT_EQUAL(metric_value(rt.port, "switchyard_discovered_backends{state=\"not_ready\"}",
                                 -1), 1);
    CU_ASSERT(metric_value(rt.port, "switchyard_discovery_changes_total", -1) >= 3);
    double age = metric_value(rt.port, "switchyard_discovery_last_publish_age_seconds", -2);
    CU_ASSERT(age >= 0 && age < 2 * slack());
    CU_ASSERT(metric_value(rt.port, "switchyard_plugin_counter_total{plugin=\"discovery_file\","
                                    "name=\"reads\"}", -1) > 3);
    CU_ASSERT_EQUAL(metric_value(rt.port, "switchyard_plugin_gauge{plugin=\"discovery_file\","
                                          "name=\"lines\"}", -1), 2);

    /* a ready again, then b gone: everything to a, the adapter unknown */
    snprintf(text, sizeof text, "%s m ready\n", a.url);
    write_file(file, text);
    CU_ASSERT(wait_until(rt.port, "m", "da", 1) >= 0);
    CU_ASSERT_EQUAL(ask(rt.port, "adapter", NULL, 0), 404);
    CU_ASSERT(router_log_lines(&rt, "discovery: now", NULL) >= 4);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    mock_stop(&b);
}

struct slow {
    int port;
    long status;
};

static void *slow_request(void *arg)
{
    struct slow *s = arg;
    const char *hdr[] = { "X-Mock-Delay-Ms: 800", NULL };
    struct resp r;
    s->status = -1;
    if (http_post(s->port, CHAT,
                  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"slow\"}]}",
                  hdr, &r) == 0)
        s->status = r.status;
    resp_free(&r);
    return NULL;
}

/* A removed backend finishes the request it has. */
static void test_removed_finishes_inflight(void)
{
    struct mock a;
    struct router rt;
    char text[256];
    const char *file = write_temp("disc-inflight.txt", "");
    pthread_t th;
    struct slow s;

    CU_ASSERT_FATAL(mock_start(&a, "ia", "m", NULL) == 0);
    snprintf(text, sizeof text, "%s m\n", a.url);
    write_file(file, text);
    if (start(&rt, file, NULL) != 0) {
        mock_stop(&a);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(wait_until(rt.port, "m", "ia", 1) >= 0);
    s.port = rt.port;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, slow_request, &s), 0);
    sleep_ms(200);
    write_file(file, "");
    for (int i = 0; i < 100 && ask(rt.port, "m", NULL, 0) != 404; i++)
        sleep_ms(20);
    CU_ASSERT_EQUAL(ask(rt.port, "m", NULL, 0), 404);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

/* A model written in the config without backends gives its settings to
 * the discovered backends of that name: here its fallback, taken when
 * every backend of it is gone. */
static void test_config_settings_and_fallback(void)
{
    struct mock a, c;
    struct router rt;
    char text[512], who[64];
    const char *file = write_temp("disc-fallback.txt", "");

    CU_ASSERT_FATAL(mock_start(&a, "fa", "big", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&c, "fc", "small", NULL) == 0);
    snprintf(text, sizeof text, "%s big\n%s small\n", a.url, c.url);
    write_file(file, text);
    if (start(&rt, file, "models:\n  big: {fallback_model: small}\n") != 0) {
        mock_stop(&a);
        mock_stop(&c);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(wait_until(rt.port, "big", "fa", 1) >= 0);
    /* big's pods all gone: big falls back to small */
    snprintf(text, sizeof text, "%s small\n", c.url);
    write_file(file, text);
    double t0 = mono_seconds();
    long status = 0;
    while (mono_seconds() - t0 < 2.0 * slack()) {
        status = ask(rt.port, "big", who, sizeof who);
        if (status == 200 && strcmp(who, "fc") == 0)
            break;
        sleep_ms(20);
    }
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(who, "fc");
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    mock_stop(&c);
}

/* A reload makes a new plugin instance; until it publishes (here after
 * 1 s) the backends discovered before keep serving. */
static void test_reload_keeps_discovered(void)
{
    struct mock a;
    struct router rt;
    char text[256], yaml[1024];
    const char *file = write_temp("disc-reload.txt", "");

    CU_ASSERT_FATAL(mock_start(&a, "ra", "m", NULL) == 0);
    snprintf(text, sizeof text, "%s m\n", a.url);
    write_file(file, text);
    if (start(&rt, file, NULL) != 0) {
        mock_stop(&a);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(wait_until(rt.port, "m", "ra", 1) >= 0);
    /* the same, with a first read 1 s after start */
    snprintf(yaml, sizeof yaml,
             "listen: 127.0.0.1:%d\nworkers: 2\ndiscovery: [discovery_file]\n"
             "plugin_config:\n  discovery_file: {file: \"%s\", interval: 30ms, first_delay: 1s}\n",
             rt.port, file);
    FILE *f = fopen(rt.config, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(yaml, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(kill(rt.pid, SIGHUP), 0);
    for (int i = 0; i < 250 && router_log_lines(&rt, "configuration reloaded", NULL) == 0; i++)
        sleep_ms(20);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "configuration reloaded: 1 models, 1 backends", NULL),
                    1);
    CU_ASSERT_EQUAL(served(rt.port, "m", "ra", 4), 4);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

/* A bad publish changes nothing; --check-config creates the plugin but
 * runs nothing. */
static void test_bad_publish_and_check(void)
{
    struct mock a;
    struct router rt;
    char text[256], cfgtext[512], *out = NULL;
    const char *file = write_temp("disc-bad.txt", "");

    CU_ASSERT_FATAL(mock_start(&a, "ba", "m", NULL) == 0);
    snprintf(text, sizeof text, "%s m\n", a.url);
    write_file(file, text);
    if (start(&rt, file, NULL) != 0) {
        mock_stop(&a);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(wait_until(rt.port, "m", "ba", 1) >= 0);
    snprintf(text, sizeof text, "%s m\nftp://nope m\n", a.url);
    write_file(file, text);
    for (int i = 0; i < 100 && router_log_lines(&rt, "ftp://nope", NULL) == 0; i++)
        sleep_ms(20);
    CU_ASSERT(router_log_lines(&rt, "discovery plugin discovery_file: backend 'ftp://nope'",
                               NULL) >= 1);
    CU_ASSERT_EQUAL(served(rt.port, "m", "ba", 4), 4);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);

    snprintf(cfgtext, sizeof cfgtext,
             "discovery: [discovery_file]\nplugin_config:\n  discovery_file: {file: \"%s\"}\n",
             file);
    const char *cfg = write_temp("disc-check.yaml", cfgtext);
    const char *check[] = { "--check-config", "-c", cfg, "--plugin-dir", EXAMPLE_PLUGIN_DIR,
                            "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    CU_ASSERT_EQUAL(router_run(check, &out), 0);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "configuration OK (0 models, 0 backends, and "
                                              "those discovery finds)"));
    free(out);
    const char *bad = write_temp("disc-bad.yaml", "discovery: [discovery_file]\n");
    CU_ASSERT_EQUAL(router_run((const char *[]){ "--check-config", "-c", bad, "--plugin-dir",
                                                 EXAMPLE_PLUGIN_DIR, "--plugin-dir",
                                                 BUILT_PLUGIN_DIR, NULL }, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "discovery_file") && strstr(out, "file: required"));
    free(out);
    const char *wrong = write_temp("disc-wrong.yaml",
                                   "discovery: [roundrobin]\nmodels: {m: {backends: [http://a:1]}}\n");
    CU_ASSERT_EQUAL(router_run((const char *[]){ "--check-config", "-c", wrong, "--plugin-dir",
                                                 BUILT_PLUGIN_DIR, NULL }, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "configured as a discovery plugin"));
    free(out);
}

/* Router replicas share nothing: two routers that discovered the same
 * backends (in another order) send each session to the same backend. */
static void test_replicas_agree(void)
{
    struct mock m[3];
    struct router r1, r2;
    char text[512], who1[64], who2[64];
    const char *f1 = write_temp("disc-rep1.txt", ""), *f2 = write_temp("disc-rep2.txt", "");
    const char *routing = "routing: [session, least_loaded]\n"
                          "plugin_config:\n  session: {key: X-User}\n";
    char yaml1[1024], yaml2[1024];
    int same = 0, spread[3] = {0, 0, 0};

    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", i);
        CU_ASSERT_FATAL(mock_start(&m[i], name, "m", NULL) == 0);
    }
    snprintf(text, sizeof text, "%s m\n%s m\n%s m\n", m[0].url, m[1].url, m[2].url);
    write_file(f1, text);
    snprintf(text, sizeof text, "%s m\n%s m\n%s m\n", m[2].url, m[0].url, m[1].url);
    write_file(f2, text);
    snprintf(yaml1, sizeof yaml1,
             "workers: 2\ndiscovery: [discovery_file]\n%s"
             "  discovery_file: {file: \"%s\", interval: 30ms}\n", routing, f1);
    snprintf(yaml2, sizeof yaml2,
             "workers: 2\ndiscovery: [discovery_file]\n%s"
             "  discovery_file: {file: \"%s\", interval: 30ms}\n", routing, f2);
    CU_ASSERT_FATAL(router_start(&r1, yaml1, args) == 0);
    if (router_start(&r2, yaml2, args) != 0) {
        router_stop(&r1);
        CU_FAIL_FATAL("the second router did not start");
    }
    /* 48 users: the chance that one of three backends gets none of them
     * (rendezvous hashing over random ports) is 3 (2/3)^48, about 1e-8;
     * with 24 it was 2e-4, and it happened */
    for (int user = 0; user < 48; user++) {
        char hdr[64], body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                               "\"content\":\"hi\"}]}";
        const char *h[] = { hdr, NULL };
        struct resp a, b;
        snprintf(hdr, sizeof hdr, "X-User: user-%d", user);
        who1[0] = who2[0] = '\0';
        if (http_post(r1.port, CHAT, body, h, &a) == 0 && resp_header(&a, "X-Mock-Backend"))
            snprintf(who1, sizeof who1, "%s", resp_header(&a, "X-Mock-Backend"));
        if (http_post(r2.port, CHAT, body, h, &b) == 0 && resp_header(&b, "X-Mock-Backend"))
            snprintf(who2, sizeof who2, "%s", resp_header(&b, "X-Mock-Backend"));
        resp_free(&a);
        resp_free(&b);
        same += who1[0] != '\0' && strcmp(who1, who2) == 0;
        for (int i = 0; i < 3; i++)
            spread[i] += strcmp(who1, m[i].name) == 0;
    }
    CU_ASSERT_EQUAL(same, 48);
    /* and the sessions spread over all three */
    CU_ASSERT(spread[0] > 0 && spread[1] > 0 && spread[2] > 0);
    CU_ASSERT_EQUAL(router_stop(&r1), 0);
    CU_ASSERT_EQUAL(router_stop(&r2), 0);
    for (int i = 0; i < 3; i++)
        mock_stop(&m[i]);
}

void register_discovery_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e discovery", NULL, NULL);
    CU_add_test(s, "backends follow what discovery publishes", test_follow_changes);
    CU_add_test(s, "a removed backend finishes its request", test_removed_finishes_inflight);
    CU_add_test(s, "config settings and fallback for discovered models",
                test_config_settings_and_fallback);
    CU_add_test(s, "a reload keeps what was discovered", test_reload_keeps_discovered);
    CU_add_test(s, "a bad publish changes nothing; --check-config", test_bad_publish_and_check);
    CU_add_test(s, "router replicas send a session to the same backend", test_replicas_agree);
}
