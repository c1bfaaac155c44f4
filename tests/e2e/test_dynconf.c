/* --dynamic-config-yaml: a production-stack router config (static_models as
 * a map with fallback_model, static_aliases with ':' in names) served
 * exactly as the equivalent native config is: the same answers, headers
 * and forwarded bodies, with a backend up and with it failing; unknown keys
 * only warn, also on reload; a bad file stops --check-config with
 * file:line. */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"

static struct mock d_big, d_small;
static struct router d_native, d_dyn;
static char d_dyn_path[256];

static const char *dyn_text(const char *alias_target, const char *extra)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "# production-stack dynamic config\n"
             "service_discovery: static\n"
             "routing_logic: roundrobin\n"
             "static_models:\n"
             "  big:\n"
             "    static_backends: \"%s\"\n"
             "    static_model_type: chat\n"
             "    fallback_model: org/small:q4\n"
             "  org/small:q4:\n"
             "    static_backends: [\"%s\"]\n"
             "static_aliases:\n"
             "  \"gpt-4:latest\": %s\n"
             "max_instance_failover_reroute_attempts: 0\n"
             "sentry_dsn: https://key@sentry.invalid/1\n"
             "%s",
             d_big.url, d_small.url, alias_target, extra);
    return text;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int dyn_setup(void)
{
    char yaml[2048];
    const char *p;

    if (mock_start(&d_big, "dyn-big", "big", NULL) ||
        mock_start(&d_small, "dyn-small", "org/small:q4", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "upstream_timeout: 2s\n"
             "reroute_attempts: 0\n"
             "models:\n"
             "  big:\n"
             "    backends: [%s]\n"
             "    type: chat\n"
             "    fallback_model: org/small:q4\n"
             "  org/small:q4:\n"
             "    backends: [%s]\n"
             "aliases:\n"
             "  \"gpt-4:latest\": big\n",
             d_big.url, d_small.url);
    if (router_start(&d_native, yaml, NULL) != 0)
        return -1;
    p = write_temp("dynamic.yaml", dyn_text("big", ""));
    if (p == NULL)
        return -1;
    snprintf(d_dyn_path, sizeof d_dyn_path, "%s", p);
    {
        /* the native file gives only what the dynamic one does not have */
        const char *extra[] = { "--dynamic-config-yaml", d_dyn_path, NULL };
        if (router_start(&d_dyn, "workers: 1\nupstream_timeout: 2s\n", extra) != 0)
            return -1;
    }
    return 0;
}

static int dyn_teardown(void)
{
    int a = router_stop(&d_native), b = router_stop(&d_dyn);
    mock_stop(&d_big);
    mock_stop(&d_small);
    return a == 0 && b == 0 ? 0 : -1;
}

/* What a client and the backends see of one request. */
struct seen {
    long status;
    char model[128], fallback[128], attempts[16];
    char body_big[1024], body_small[1024];
    int reqs_big, reqs_small;
};

static void header_copy(const struct resp *r, const char *name, char *out, size_t len)
{
    const char *v = resp_header(r, name);
    snprintf(out, len, "%s", v ? v : "(none)");
}

/* The "body" of the mock's last request (what the router forwarded). */
static void last_body(const struct mock *m, char *out, size_t len)
{
    struct resp r;
    struct json_object *root, *b;

    snprintf(out, len, "(none)");
    if (mock_last(m, &r) == 0 && r.status == 200 && (root = json_tokener_parse(r.body)) != NULL) {
        if (json_object_object_get_ex(root, "body", &b) && json_object_is_type(b, json_type_string))
            snprintf(out, len, "%s", json_object_get_string(b));
        json_object_put(root);
    }
    resp_free(&r);
}

static void ask(int port, const char *model, struct seen *s)
{
    char body[512];
    struct resp r;
    int big0 = mock_requests(&d_big), small0 = mock_requests(&d_small);

    memset(s, 0, sizeof *s);
    snprintf(body, sizeof body,
             "{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
             " \"metadata\": {\"model\": \"keep\"}}", model);
    CU_ASSERT_EQUAL(http_post(port, CHAT, body, NULL, &r), 0);
    s->status = r.status;
    header_copy(&r, "X-Switchyard-Model", s->model, sizeof s->model);
    header_copy(&r, "X-Switchyard-Fallback", s->fallback, sizeof s->fallback);
    header_copy(&r, "X-Switchyard-Attempts", s->attempts, sizeof s->attempts);
    resp_free(&r);
    s->reqs_big = mock_requests(&d_big) - big0;
    s->reqs_small = mock_requests(&d_small) - small0;
    last_body(&d_big, s->body_big, sizeof s->body_big);
    last_body(&d_small, s->body_small, sizeof s->body_small);
}

#define SAME_STR(a, b, what)                                                       \
    do {                                                                           \
        if (strcmp((a), (b)) != 0)                                                 \
            fprintf(stderr, "\n    %s: native '%s', dynamic '%s'\n", (what), (a), (b)); \
        CU_ASSERT_STRING_EQUAL((a), (b));                                          \
    } while (0)

/* The same request to both routers gives the same result; returns the
 * dynamic router's. */
static struct seen compare(const char *model)
{
    struct seen n, d;
    ask(d_native.port, model, &n);
    ask(d_dyn.port, model, &d);
    CU_ASSERT_EQUAL(n.status, d.status);
    SAME_STR(n.model, d.model, "X-Switchyard-Model");
    SAME_STR(n.fallback, d.fallback, "X-Switchyard-Fallback");
    SAME_STR(n.attempts, d.attempts, "X-Switchyard-Attempts");
    CU_ASSERT_EQUAL(n.reqs_big, d.reqs_big);
    CU_ASSERT_EQUAL(n.reqs_small, d.reqs_small);
    SAME_STR(n.body_big, d.body_big, "body at big");
    SAME_STR(n.body_small, d.body_small, "body at small");
    return d;
}

static void test_dyn_served_as_native(void)
{
    struct seen s;

    s = compare("big");
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_STRING_EQUAL(s.model, "big");
    CU_ASSERT_STRING_EQUAL(s.fallback, "(none)");
    CU_ASSERT_EQUAL(s.reqs_big, 1);
    /* an alias whose name has ':' */
    s = compare("gpt-4:latest");
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_STRING_EQUAL(s.model, "big");
    s = compare("org/small:q4");
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_STRING_EQUAL(s.model, "org/small:q4");
    CU_ASSERT_EQUAL(s.reqs_small, 1);
    s = compare("nope");
    CU_ASSERT_EQUAL(s.status, 404);
}

static void test_dyn_fallback_as_native(void)
{
    struct seen s;

    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&d_big, "{\"status\":503}"), 0);
    s = compare("big");
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_STRING_EQUAL(s.model, "org/small:q4");
    CU_ASSERT_STRING_EQUAL(s.fallback, "big>org/small:q4");
    CU_ASSERT_EQUAL(s.reqs_big, 1);
    CU_ASSERT_EQUAL(s.reqs_small, 1);
    /* the model field is rewritten, the nested one kept */
    CU_ASSERT_PTR_NOT_NULL(strstr(s.body_small, "\"model\": \"org/small:q4\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.body_small, "{\"model\": \"keep\"}"));
    /* through the alias too */
    s = compare("gpt-4:latest");
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_STRING_EQUAL(s.model, "org/small:q4");
    CU_ASSERT_STRING_EQUAL(s.fallback, "big>org/small:q4");
    /* nothing left: the last backend's own answer, from both */
    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&d_small, "{\"status\":502}"), 0);
    s = compare("big");
    CU_ASSERT_EQUAL(s.status, 502);
    CU_ASSERT_EQUAL(mock_set_mode(&d_small, "{}"), 0);
    CU_ASSERT_EQUAL(mock_set_mode(&d_big, "{}"), 0);
}

/* The model ids of /v1/models, sorted into one string. */
static void model_ids(int port, char *out, size_t len)
{
    struct resp r;
    struct json_object *root, *data, *id;
    const char *ids[16];
    size_t n = 0;

    out[0] = '\0';
    CU_ASSERT_EQUAL_FATAL(http_get(port, "/v1/models", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    root = json_tokener_parse(r.body);
    if (root != NULL && json_object_object_get_ex(root, "data", &data) &&
        json_object_is_type(data, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(data) && n < 16; i++)
            if (json_object_object_get_ex(json_object_array_get_idx(data, i), "id", &id))
                ids[n++] = json_object_get_string(id);
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
                const char *t = ids[j];
                ids[j] = ids[j - 1];
                ids[j - 1] = t;
            }
        for (size_t i = 0; i < n; i++)
            snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", ids[i]);
    }
    json_object_put(root);
    resp_free(&r);
}

static void test_dyn_models_list(void)
{
    char a[512], b[512];
    model_ids(d_native.port, a, sizeof a);
    model_ids(d_dyn.port, b, sizeof b);
    SAME_STR(a, b, "/v1/models");
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "big"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "org/small:q4"));
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t len = 0;
    if (f != NULL && buf != NULL) {
        len = fread(buf, 1, (1 << 20) - 1, f);
        buf[len] = '\0';
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

static void test_dyn_unknown_keys_and_reload(void)
{
    char *log = read_all(d_dyn.log);
    char want[512];
    struct seen s;
    int ok = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    snprintf(want, sizeof want, "%s:14: sentry_dsn: not supported by switchyard, ignored",
             d_dyn_path);
    if (strstr(log, want) == NULL)
        fprintf(stderr, "\n    log lacks '%s':\n%s\n", want, log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, want));
    free(log);

    /* a changed file with one more unknown key is picked up on SIGHUP */
    CU_ASSERT_EQUAL_FATAL(write_file(d_dyn_path, dyn_text("org/small:q4", "callbacks: x.y\nnew_key: 1\n")), 0);
    CU_ASSERT_EQUAL_FATAL(kill(d_dyn.pid, SIGHUP), 0);
    for (int i = 0; i < 300 && !ok; i++) {
        struct resp r;
        if (http_post(d_dyn.port, CHAT, "{\"model\":\"gpt-4:latest\"}", NULL, &r) == 0 && r.status == 200 &&
            resp_header(&r, "X-Switchyard-Model") != NULL &&
            strcmp(resp_header(&r, "X-Switchyard-Model"), "org/small:q4") == 0)
            ok = 1;
        resp_free(&r);
        if (!ok)
            sleep_ms(20);
    }
    CU_ASSERT_TRUE(ok);
    /* the main thread logs the reload once the workers took it: a request
     * may be served from the new setup a moment before the line is written */
    for (int i = 0; i < 100; i++) {
        log = read_all(d_dyn.log);
        if (log == NULL || strstr(log, "configuration reloaded") != NULL)
            break;
        free(log);
        log = NULL;
        sleep_ms(20);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "new_key: unknown setting, ignored"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "callbacks: not supported by switchyard, ignored"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "configuration reloaded"));
    free(log);
    s = (struct seen){0};
    ask(d_dyn.port, "big", &s);
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_STRING_EQUAL(s.model, "big");

    /* a broken file keeps the running configuration */
    CU_ASSERT_EQUAL_FATAL(write_file(d_dyn_path, "service_discovery: consul\n"), 0);
    CU_ASSERT_EQUAL_FATAL(kill(d_dyn.pid, SIGHUP), 0);
    sleep_ms(300);
    ask(d_dyn.port, "gpt-4:latest", &s);
    CU_ASSERT_EQUAL(s.status, 200);
    CU_ASSERT_STRING_EQUAL(s.model, "org/small:q4");
    log = read_all(d_dyn.log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    snprintf(want, sizeof want, "%s:1: service_discovery: expected static or k8s, got 'consul'",
             d_dyn_path);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, want));
    free(log);
}

static void test_dyn_check_config(void)
{
    const char *good = write_temp("dyn-good.yaml",
                                  "static_backends: http://127.0.0.1:9,http://127.0.0.1:10\n"
                                  "static_models: a:1,b\n"
                                  "static_fallback_models: a:1=b\n");
    const char *args[] = { "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR,
                           "--dynamic-config-yaml", good, NULL };
    char *out = NULL;

    CU_ASSERT_EQUAL(router_run(args, &out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "configuration OK (2 models, 2 backends)"));
    free(out);

    const char *bad = write_temp("dyn-bad.yaml", "routing_logic: roundrobin\nservice_discovery: dns\n");
    char want[512];
    args[4] = bad;
    CU_ASSERT_EQUAL(router_run(args, &out), 2);
    snprintf(want, sizeof want, "%s:2: service_discovery: expected static or k8s, got 'dns'", bad);
    if (strstr(out, want) == NULL)
        fprintf(stderr, "\n    output lacks '%s': %s\n", want, out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    free(out);
}

void register_dynconf_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("dynconf_e2e", dyn_setup, dyn_teardown);
    if (s == NULL)
        return;
    CU_add_test(s, "dyn_served_as_native", test_dyn_served_as_native);
    CU_add_test(s, "dyn_fallback_as_native", test_dyn_fallback_as_native);
    CU_add_test(s, "dyn_models_list", test_dyn_models_list);
    CU_add_test(s, "dyn_unknown_keys_and_reload", test_dyn_unknown_keys_and_reload);
    CU_add_test(s, "dyn_check_config", test_dyn_check_config);
}
