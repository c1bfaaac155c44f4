/* Health owned per source (core/runtime/backend_health.c): each health plugin and
 * the operator hold their own flag on a backend, so one source's "healthy"
 * never lets in a backend another holds out, and flags survive a reload
 * for the sources that stay.
 *
 *   drain file, reload    the drain_file example lists a backend, the file
 *                         is cleared and SIGHUP sent: it serves again
 *   drain + probes        with [drain_file, http_probe] and reloads back to
 *                         back, a drained backend whose probes pass never
 *                         takes a request
 *   operator drain        POST /admin/drain and /admin/undrain on the admin
 *                         listener: no traffic, /engines and /metrics say
 *                         so, a reload keeps it, errors are JSON
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"
#define BODY "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

static const char *const example_args[] = { "--plugin-dir", EXAMPLE_PLUGIN_DIR, "--plugin-dir",
                                            BUILT_PLUGIN_DIR, NULL };

static int wait_reloads(const struct router *rt, int n)
{
    for (int i = 0; i < 500; i++) {
        if (router_log_lines(rt, "configuration reloaded", NULL) >= n)
            return 0;
        sleep_ms(20);
    }
    return -1;
}

/* Which mock served: the X-Mock-Backend of one request ("" when none). */
static void served_by(int port, char *name, size_t len)
{
    struct resp r;

    name[0] = '\0';
    if (http_post(port, CHAT, BODY, NULL, &r) == 0 && r.status == 200 &&
        resp_header(&r, "X-Mock-Backend") != NULL)
        snprintf(name, len, "%s", resp_header(&r, "X-Mock-Backend"));
    resp_free(&r);
}

/* Of n requests, how many a mock of this name served. */
static int count_served(int port, const char *mock_name, int n)
{
    char name[64];
    int hits = 0;

    for (int i = 0; i < n; i++) {
        served_by(port, name, sizeof name);
        hits += strcmp(name, mock_name) == 0;
    }
    return hits;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* The first reproduction: a backend drained by a health plugin,
 * taken out of its file, and the config reloaded, serves again (it used
 * to stay out for ever: the state carried over and nothing cleared it). */
static void test_drain_file_cleared_then_reload(void)
{
    struct mock a, b;
    struct router rt;
    char yaml[1024], list[256];
    const char *path;

    CU_ASSERT_FATAL(mock_start(&a, "df-a", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "df-b", "m", NULL) == 0);
    snprintf(list, sizeof list, "# drained\n%s\n", a.url);
    path = write_temp("drained-1.txt", list);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    /* a long interval: only start() (at a reload) reads the file again */
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "health: [drain_file]\n"
             "plugin_config:\n  drain_file: {file: %s, interval: 60s}\n"
             "models:\n  m: {backends: [%s, %s]}\n",
             path, a.url, b.url);
    if (router_start(&rt, yaml, example_args) != 0) {
        mock_stop(&a); /* never left running behind a failed start */
        mock_stop(&b);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT_EQUAL(count_served(rt.port, "df-a", 6), 0);
    write_file(path, "");
    kill(rt.pid, SIGHUP);
    CU_ASSERT_EQUAL_FATAL(wait_reloads(&rt, 1), 0);
    /* round robin over both again: a serves half */
    CU_ASSERT_EQUAL(count_served(rt.port, "df-a", 6), 3);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "no longer listed in the drain file", NULL), 1);
    mock_stop(&a);
    mock_stop(&b);
}

struct load {
    int port;
    volatile int stop;
    int sent, ok;
};

static void *keep_sending(void *arg)
{
    struct load *l = arg;
    while (!l->stop) {
        struct resp r;
        if (http_post(l->port, CHAT, BODY, NULL, &r) == 0 && r.status == 200)
            l->ok++;
        l->sent++;
        resp_free(&r);
    }
    return NULL;
}

/* The second reproduction: with [drain_file, http_probe], a reload
 * used to let the probe mark the drained backend healthy (its probes pass)
 * and it took traffic until the drain plugin's next read.  Now the probe's
 * "healthy" is its own flag only: not one request reaches it. */
static void test_drained_backend_untouched_by_probes_and_reloads(void)
{
    struct mock a, b;
    struct router rt;
    char yaml[1024], list[256];
    const char *path;
    pthread_t t;
    struct load l = { 0 };

    CU_ASSERT_FATAL(mock_start(&a, "dp-a", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "dp-b", "m", NULL) == 0);
    snprintf(list, sizeof list, "%s/\n", a.url); /* a trailing slash: the same URL */
    path = write_temp("drained-2.txt", list);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    snprintf(yaml, sizeof yaml,
             "health: [drain_file, http_probe]\n"
             "plugin_config:\n"
             "  drain_file: {file: %s, interval: 5s}\n"
             "  http_probe: {interval: 50ms, timeout: 500ms, rise: 1, fall: 1}\n"
             "models:\n  m: {backends: [%s, %s]}\n",
             path, a.url, b.url);
    if (router_start(&rt, yaml, example_args) != 0) {
        mock_stop(&a); /* never left running behind a failed start */
        mock_stop(&b);
        CU_FAIL_FATAL("the router did not start");
    }
    int before = mock_requests(&a);
    l.port = rt.port;
    pthread_create(&t, NULL, keep_sending, &l);
    for (int i = 1; i <= 6; i++) {
        kill(rt.pid, SIGHUP);
        CU_ASSERT_EQUAL(wait_reloads(&rt, i), 0);
        sleep_ms(150); /* probes of the new instance run meanwhile */
    }
    l.stop = 1;
    pthread_join(t, NULL);
    CU_ASSERT_TRUE(l.sent > 10);
    CU_ASSERT_EQUAL(l.ok, l.sent);
    CU_ASSERT_EQUAL(mock_requests(&a) - before, 0);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    mock_stop(&b);
}

/* One backend's drain state as /engines (on the admin listener) shows it:
 * 1 drained, 0 not, -1 not found; `flags` gets the sources holding it. */
static int engines_drained(int admin, const char *url, char *flags, size_t len)
{
    struct resp r;
    json_object *root, *list, *v;
    int drained = -1;

    flags[0] = '\0';
    if (http_get(admin, "/engines", &r) != 0 || r.status != 200) {
        resp_free(&r);
        return -1;
    }
    root = json_tokener_parse(r.body);
    resp_free(&r);
    if ((list = root) != NULL && json_object_is_type(list, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *e = json_object_array_get_idx(list, i);
            if (!json_object_object_get_ex(e, "url", &v) ||
                strcmp(json_object_get_string(v), url) != 0)
                continue;
            if (json_object_object_get_ex(e, "drained", &v))
                drained = json_object_get_boolean(v);
            if (json_object_object_get_ex(e, "flags", &v))
                for (size_t k = 0; k < json_object_array_length(v); k++) {
                    size_t used = strlen(flags);
                    snprintf(flags + used, len - used, "%s%s", k ? "," : "",
                             json_object_get_string(json_object_array_get_idx(v, k)));
                }
        }
    }
    json_object_put(root);
    return drained;
}

static long admin_post(int admin, const char *path, struct resp *r)
{
    if (http_raw(admin, "POST", path, "", NULL, 3000, r) != 0)
        return 0;
    return r->status;
}

static void test_operator_drain(void)
{
    struct mock a, b;
    struct router rt;
    struct resp r;
    char yaml[1024], path[256], flags[128], sample[512];
    int admin = free_port();

    CU_ASSERT_FATAL(mock_start(&a, "op-a", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "op-b", "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "admin_listen: 127.0.0.1:%d\n"
             "health: [http_probe]\n"
             "plugin_config:\n  http_probe: {interval: 100ms, timeout: 500ms}\n"
             "models:\n  m: {backends: [%s, %s]}\n",
             admin, a.url, b.url);
    if (router_start(&rt, yaml, NULL) != 0) {
        mock_stop(&a); /* never left running behind a failed start */
        mock_stop(&b);
        CU_FAIL_FATAL("the router did not start");
    }
    /* the admin listener opens just after the proxy's */
    for (int i = 0; i < 100 && engines_drained(admin, a.url, flags, sizeof flags) < 0; i++)
        sleep_ms(20);
    CU_ASSERT_EQUAL(engines_drained(admin, a.url, flags, sizeof flags), 0);

    snprintf(path, sizeof path, "/admin/drain?backend=%s", a.url);
    CU_ASSERT_EQUAL(admin_post(admin, path, &r), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body ? r.body : "", "\"drained\":true"));
    resp_free(&r);
    CU_ASSERT_EQUAL(engines_drained(admin, a.url, flags, sizeof flags), 1);
    CU_ASSERT_STRING_EQUAL(flags, "operator");
    snprintf(sample, sizeof sample,
             "switchyard_backend_health_flag{backend=\"%s\",source=\"operator\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(admin, sample, -1), 1);
    snprintf(sample, sizeof sample,
             "switchyard_backend_health_flag{backend=\"%s\",source=\"http_probe\"}", a.url);
    CU_ASSERT_EQUAL(metric_value(admin, sample, -1), 0);
    /* probes pass, yet nothing reaches it, also after a reload */
    sleep_ms(300);
    CU_ASSERT_EQUAL(count_served(rt.port, "op-a", 6), 0);
    kill(rt.pid, SIGHUP);
    CU_ASSERT_EQUAL_FATAL(wait_reloads(&rt, 1), 0);
    CU_ASSERT_EQUAL(engines_drained(admin, a.url, flags, sizeof flags), 1);
    CU_ASSERT_EQUAL(count_served(rt.port, "op-a", 6), 0);

    snprintf(path, sizeof path, "/admin/undrain?backend=%s/", a.url); /* slash: same URL */
    CU_ASSERT_EQUAL(admin_post(admin, path, &r), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body ? r.body : "", "\"drained\":false"));
    resp_free(&r);
    CU_ASSERT_EQUAL(engines_drained(admin, a.url, flags, sizeof flags), 0);
    CU_ASSERT_EQUAL(count_served(rt.port, "op-a", 6), 3);

    /* what an operator gets wrong, answered in JSON */
    CU_ASSERT_EQUAL(admin_post(admin, "/admin/drain?backend=http://127.0.0.1:1", &r), 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body ? r.body : "", "\"error\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(admin_post(admin, "/admin/drain", &r), 400);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_raw(admin, "GET", path, NULL, NULL, 3000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    resp_free(&r);
    /* the operator's drain is the admin listener's alone */
    CU_ASSERT_EQUAL(admin_post(rt.port, path, &r), 404);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "-> unhealthy (operator): drained by the operator", NULL), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "-> healthy (operator): undrained by the operator", NULL), 1);
    mock_stop(&a);
    mock_stop(&b);
}

/* A health plugin built against ABI 1.1's header loads in this core and
 * does what it did: its UNHEALTHY takes a backend out, its timer's HEALTHY
 * brings it back. */
static void test_abi_1_1_plugin_unchanged(void)
{
    struct mock a, b;
    struct router rt;
    char yaml[1024];
    const char *args[] = { "--plugin-dir", TEST_PLUGIN_DIR, "--plugin-dir", BUILT_PLUGIN_DIR,
                           NULL };
    int back = 0;

    CU_ASSERT_FATAL(mock_start(&a, "lg-a", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "lg-b", "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "health: [legacy_v11]\n"
             "plugin_config:\n  legacy_v11: {down: \"%s\", heal_after: 700ms}\n"
             "models:\n  m: {backends: [%s, %s]}\n",
             a.url, a.url, b.url);
    if (router_start(&rt, yaml, args) != 0) {
        mock_stop(&a); /* never left running behind a failed start */
        mock_stop(&b);
        CU_FAIL_FATAL("the router did not start");
    }
    /* start() runs on the health thread as serving begins */
    for (int i = 0; i < 100 && router_log_lines(&rt, "legacy: down", NULL) == 0; i++)
        sleep_ms(10);
    CU_ASSERT_EQUAL(count_served(rt.port, "lg-a", 4), 0);
    for (int i = 0; i < 100 && !back; i++) {
        sleep_ms(20);
        back = count_served(rt.port, "lg-a", 2) > 0;
    }
    CU_ASSERT_TRUE(back);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "(legacy_v11): legacy: down", NULL), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "(legacy_v11): legacy: healed", NULL), 1);
    mock_stop(&a);
    mock_stop(&b);
}

/* One plugin under routing: and health: (ABI 1.2) is one instance: its
 * health part's flag keeps a backend out, its routing part sees the
 * attempts its health part was told of; created once. */
static void test_one_plugin_two_kinds(void)
{
    struct mock a, b;
    struct router rt;
    char yaml[1024];
    const char *args[] = { "--plugin-dir", TEST_PLUGIN_DIR, "--plugin-dir", BUILT_PLUGIN_DIR,
                           NULL };

    CU_ASSERT_FATAL(mock_start(&a, "mk-a", "m", NULL) == 0);
    CU_ASSERT_FATAL(mock_start(&b, "mk-b", "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "routing: [multi_kind]\nhealth: [multi_kind]\n"
             "plugin_config:\n  multi_kind: {drain: \"%s\"}\n"
             "models:\n  m: {backends: [%s, %s]}\n",
             a.url, a.url, b.url);
    if (router_start(&rt, yaml, args) != 0) {
        mock_stop(&a);
        mock_stop(&b);
        CU_FAIL_FATAL("the router did not start");
    }
    for (int i = 0; i < 100 && router_log_lines(&rt, "multi_kind drains it", NULL) == 0; i++)
        sleep_ms(10);
    /* a is first among the candidates, but held out by the health part */
    CU_ASSERT_EQUAL(count_served(rt.port, "mk-a", 4), 0);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "multi_kind: created", NULL), 1);
    /* the 4th pick saw the 3 attempts before it: one instance for both */
    CU_ASSERT_EQUAL(router_log_lines(&rt, "after 3 attempts seen", NULL), 1);
    mock_stop(&a);
    mock_stop(&b);
}

void register_health_flags_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e health flags", NULL, NULL);
    CU_add_test(s, "a drained backend taken out of the file serves after a reload",
                test_drain_file_cleared_then_reload);
    CU_add_test(s, "probes and reloads never let a drained backend in",
                test_drained_backend_untouched_by_probes_and_reloads);
    CU_add_test(s, "operator drain and undrain", test_operator_drain);
    CU_add_test(s, "a plugin built for ABI 1.1 behaves unchanged", test_abi_1_1_plugin_unchanged);
    CU_add_test(s, "one plugin, routing and health, one instance", test_one_plugin_two_kinds);
}
