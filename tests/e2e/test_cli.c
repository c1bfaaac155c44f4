/* The command line as an operator sees it: exit status and the one-line
 * message for every kind of bad input (flags, config file, plugins), and
 * the vllm_router way of starting the daemon with flags only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* --- a daemon started by hand --- */

struct daemon {
    pid_t pid;
    int port;
    char log[256];
};

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Fork/exec switchyard with args (argv[0] is added); wait until /health on
 * port answers 200.  0 on success; -1 when it exited or never answered. */
static int daemon_start(struct daemon *d, int port, const char *const *args)
{
    static int seq;
    const char *argv[48];
    const char *path;
    char name[64];
    int n = 0;

    memset(d, 0, sizeof *d);
    d->port = port;
    snprintf(name, sizeof name, "cli-daemon-%d.log", ++seq);
    path = write_temp(name, "");
    if (path == NULL)
        return -1;
    snprintf(d->log, sizeof d->log, "%s", path);
    argv[n++] = SWITCHYARD_BIN;
    for (int i = 0; args[i] && n < 47; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        struct resp h;
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return -1;
        }
        if (http_raw(port, "GET", "/health", NULL, NULL, 200, &h) == 0 && h.status == 200) {
            resp_free(&h);
            return 0;
        }
        resp_free(&h);
        nap_ms(10);
    }
    return -1;
}

/* SIGTERM; the exit status (-1: did not exit within 10 s, killed). */
static int daemon_stop(struct daemon *d)
{
    int st;

    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    for (int waited = 0; waited < 10000; waited += 10) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        nap_ms(10);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return -1;
}

/* Is anyone listening on 127.0.0.1:port? */
static int listening(int port)
{
    int fd = tcp_connect(port);

    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* --- checks --- */

/* Exactly one line, ending in a newline. */
static int one_line(const char *out)
{
    const char *nl = strchr(out, '\n');
    return out[0] != '\0' && nl != NULL && nl[1] == '\0';
}

/* Run with args; expect exit 2 and one line holding every string of must. */
static void expect_fail(const char *const *args, const char *const *must)
{
    char *out = NULL;
    int st = router_run(args, &out);

    CU_ASSERT_EQUAL(st, 2);
    CU_ASSERT_TRUE(one_line(out));
    for (int i = 0; must[i]; i++) {
        if (strstr(out, must[i]) == NULL) {
            fprintf(stderr, "\n  output lacks '%s': %s", must[i], out);
            CU_FAIL("the message does not say what is wrong");
        }
    }
    if (st != 2 || !one_line(out)) {
        fprintf(stderr, "\n  args:");
        for (int i = 0; args[i]; i++)
            fprintf(stderr, " %s", args[i]);
        fprintf(stderr, "\n  exit %d, output: %s\n", st, out);
    }
    free(out);
}

/* The ids of GET /v1/models as one sorted-by-arrival ","-joined string. */
static void model_ids(int port, char *buf, size_t len)
{
    struct resp r;
    struct json_object *root = NULL, *data, *obj;

    buf[0] = '\0';
    if (http_get(port, "/v1/models", &r) != 0 || r.status != 200) {
        resp_free(&r);
        return;
    }
    root = json_tokener_parse(r.body);
    if (root != NULL && json_object_object_get_ex(root, "object", &obj) &&
        strcmp(json_object_get_string(obj), "list") == 0 &&
        json_object_object_get_ex(root, "data", &data) &&
        json_object_is_type(data, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(data); i++) {
            struct json_object *m = json_object_array_get_idx(data, i), *id;
            if (json_object_object_get_ex(m, "id", &id)) {
                size_t used = strlen(buf);
                snprintf(buf + used, len - used, "%s%s", used ? "," : "",
                         json_object_get_string(id));
            }
        }
    }
    json_object_put(root);
    resp_free(&r);
}

/* Does the ","-joined list hold exactly these names, in any order? */
static int same_set(const char *list, const char *const *names)
{
    char copy[1024];
    int n = 0, count = 0;

    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        count++;
        for (int i = 0; names[i]; i++)
            found |= strcmp(names[i], t) == 0;
        if (!found)
            return 0;
    }
    while (names[n])
        n++;
    return count == n;
}

static void post_model(int port, const char *model, long status, struct resp *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"messages\":[]}", model);
    CU_ASSERT_EQUAL(http_post(port, "/v1/chat/completions", body, NULL, r), 0);
    CU_ASSERT_EQUAL(r->status, status);
}

/* --- --version, --help --- */

static void test_version(void)
{
    char *out = NULL;
    const char *args[] = { "--version", NULL };

    CU_ASSERT_EQUAL(router_run(args, &out), 0);
    CU_ASSERT_TRUE(strncmp(out, "switchyard " PACKAGE_VERSION, strlen("switchyard " PACKAGE_VERSION)) == 0);
    CU_ASSERT_TRUE(one_line(out));
    free(out);
    /* --version wins over a config that does not exist: nothing is read */
    {
        const char *args2[] = { "--version", "-c", "/nonexistent/switchyard.yaml", NULL };
        CU_ASSERT_EQUAL(router_run(args2, &out), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, PACKAGE_VERSION));
        free(out);
    }
}

static void test_help(void)
{
    static const char *const flags[] = {
        "--config", "--check-config", "--version", "--host", "--port", "--workers",
        "--static-backends", "--static-models", "--static-aliases", "--static-model-types",
        "--static-fallback-models", "--routing-logic", "--session-key",
        "--static-backend-health-checks", "--static-backend-health-check-interval",
        "--max-instance-failover-reroute-attempts", "--log-level", "--upstream-timeout",
        "--plugin-dir", NULL,
    };
    char *out = NULL;
    const char *args[] = { "--help", NULL };

    CU_ASSERT_EQUAL(router_run(args, &out), 0);
    for (int i = 0; flags[i]; i++) {
        if (strstr(out, flags[i]) == NULL) {
            fprintf(stderr, "\n  --help does not list %s\n", flags[i]);
            CU_FAIL("--help misses a flag");
        }
    }
    free(out);
    {
        const char *args2[] = { "-h", NULL };
        CU_ASSERT_EQUAL(router_run(args2, &out), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "--static-backends"));
        free(out);
    }
}

/* --- bad flags --- */

static void test_unknown_flag(void)
{
    const char *a1[] = { "--no-such-flag", NULL };
    const char *m1[] = { "--no-such-flag", NULL };
    expect_fail(a1, m1);
    const char *a2[] = { "-Z", NULL };
    const char *m2[] = { "-Z", NULL };
    expect_fail(a2, m2);
    const char *a3[] = { "--port", "8001", "stray-operand", NULL };
    const char *m3[] = { "stray-operand", NULL };
    expect_fail(a3, m3);
    const char *a4[] = { "--help=yes", NULL };
    const char *m4[] = { "--help", NULL };
    expect_fail(a4, m4);
}

static void test_bad_values(void)
{
    const char *a1[] = { "--port", "abc", NULL };
    const char *m1[] = { "--port", "abc", NULL };
    expect_fail(a1, m1);
    const char *a2[] = { "--workers", "257", NULL };
    const char *m2[] = { "--workers", NULL };
    expect_fail(a2, m2);
    const char *a3[] = { "--port", "70000", NULL };
    const char *m3[] = { "--port", NULL };
    expect_fail(a3, m3);
    const char *a4[] = { "--port=12x", NULL };
    const char *m4[] = { "--port", NULL };
    expect_fail(a4, m4);
    const char *a5[] = { "--port", NULL };
    const char *m5[] = { "--port", NULL };
    expect_fail(a5, m5);
    const char *a6[] = { "--routing-logic", "random", NULL };
    const char *m6[] = { "--routing-logic", "random", NULL };
    expect_fail(a6, m6);
    const char *a7[] = { "--log-level", "loud", NULL };
    const char *m7[] = { "--log-level", NULL };
    expect_fail(a7, m7);
    const char *a8[] = { "--upstream-timeout", "-3", NULL };
    const char *m8[] = { "--upstream-timeout", NULL };
    expect_fail(a8, m8);
    const char *a9[] = { "--static-backend-health-check-interval", "soon", NULL };
    const char *m9[] = { "--static-backend-health-check-interval", NULL };
    expect_fail(a9, m9);
    const char *a10[] = { "--max-instance-failover-reroute-attempts", "-1", NULL };
    const char *m10[] = { "--max-instance-failover-reroute-attempts", NULL };
    expect_fail(a10, m10);
    const char *a11[] = { "--workers", "", NULL };
    const char *m11[] = { "--workers", NULL };
    expect_fail(a11, m11);
}

static void test_static_flag_mismatches(void)
{
    const char *a1[] = { "--static-backends", "http://127.0.0.1:1,http://127.0.0.1:2",
                         "--static-models", "m", NULL };
    const char *m1[] = { "--static-models", NULL };
    expect_fail(a1, m1);
    const char *a2[] = { "--static-backends", "http://127.0.0.1:1",
                         "--static-models", "m,n", NULL };
    const char *m2[] = { "--static-models", NULL };
    expect_fail(a2, m2);
    const char *a3[] = { "--static-backends", "http://127.0.0.1:1", NULL };
    const char *m3[] = { "--static-models", NULL };
    expect_fail(a3, m3);
    const char *a4[] = { "--static-models", "m", NULL };
    const char *m4[] = { "--static-models", NULL };
    expect_fail(a4, m4);
    const char *a5[] = { "--static-backends", "ftp://127.0.0.1:1", "--static-models", "m", NULL };
    const char *m5[] = { "--static-backends", "ftp://127.0.0.1:1", NULL };
    expect_fail(a5, m5);
    const char *a6[] = { "--static-backends", "http://127.0.0.1:1,http://127.0.0.1:2",
                         "--static-models", "m,m", "--static-model-types", "chat", NULL };
    const char *m6[] = { "--static-model-types", NULL };
    expect_fail(a6, m6);
    const char *a7[] = { "--static-backends", "http://127.0.0.1:1", "--static-models", "m",
                         "--static-aliases", "nocolon", NULL };
    const char *m7[] = { "--static-aliases", "nocolon", NULL };
    expect_fail(a7, m7);
    const char *a8[] = { "--static-backends", "http://127.0.0.1:1", "--static-models", "m",
                         "--static-fallback-models", "ghost:m", NULL };
    const char *m8[] = { "--static-fallback-models", "ghost", NULL };
    expect_fail(a8, m8);
    const char *a9[] = { "--static-backends", "http://127.0.0.1:1,,http://127.0.0.1:2",
                         "--static-models", "m,m,m", NULL };
    const char *m9[] = { "--static-backends", NULL };
    expect_fail(a9, m9);
}

/* --- config file problems --- */

static void test_config_missing_file(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s", write_temp("cli-placeholder.yaml", ""));
    /* a sibling that does not exist */
    strcpy(strrchr(path, '/') + 1, "cli-no-such-file.yaml");
    const char *args[] = { "-c", path, NULL };
    const char *must[] = { path, NULL };
    expect_fail(args, must);
    const char *args2[] = { "--config", path, "--check-config", NULL };
    expect_fail(args2, must);
    /* a directory is not a config */
    char dir[300];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    const char *args3[] = { "-c", dir, NULL };
    const char *must3[] = { dir, NULL };
    expect_fail(args3, must3);
}

static void test_config_invalid_yaml(void)
{
    const char *p = write_temp("cli-invalid.yaml",
                               "workers: 1\n"
                               "models:\n"
                               "  m:\n"
                               "    backends: [http://127.0.0.1:1\n"
                               "  n: {\n");
    char want[320];
    snprintf(want, sizeof want, "%s:", p);
    const char *args[] = { "-c", p, NULL };
    const char *must[] = { want, NULL };
    expect_fail(args, must);
    /* the message has file:LINE with a real line number */
    {
        char *out = NULL;
        router_run(args, &out);
        const char *at = strstr(out, want);
        CU_ASSERT_TRUE(at != NULL && at[strlen(want)] >= '1' && at[strlen(want)] <= '9');
        free(out);
    }
    /* a tab-indented file is not YAML either */
    const char *p2 = write_temp("cli-tabs.yaml", "models:\n\tm:\n\t\tbackends: [http://127.0.0.1:1]\n");
    const char *args2[] = { "-c", p2, NULL };
    const char *must2[] = { p2, NULL };
    expect_fail(args2, must2);
}

static void test_config_unknown_key(void)
{
    const char *p = write_temp("cli-unknown-key.yaml",
                               "workers: 1\n"
                               "models:\n"
                               "  m:\n"
                               "    backends: [http://127.0.0.1:1]\n"
                               "bogus_setting: 7\n");
    char want[320];
    snprintf(want, sizeof want, "%s:5", p);
    const char *args[] = { "-c", p, NULL };
    const char *must[] = { want, "bogus_setting", NULL };
    expect_fail(args, must);

    /* a typo inside a model's section, named with its line */
    const char *p2 = write_temp("cli-unknown-model-key.yaml",
                                "models:\n"
                                "  m:\n"
                                "    backends: [http://127.0.0.1:1]\n"
                                "    fallbak_model: n\n");
    snprintf(want, sizeof want, "%s:4", p2);
    const char *args2[] = { "-c", p2, NULL };
    const char *must2[] = { want, "fallbak_model", NULL };
    expect_fail(args2, must2);
}

static void test_config_bad_backend_url(void)
{
    const char *p = write_temp("cli-bad-url.yaml",
                               "models:\n"
                               "  m:\n"
                               "    backends: [ftp://127.0.0.1:1]\n");
    char want[320];
    snprintf(want, sizeof want, "%s:3", p);
    const char *args[] = { "-c", p, NULL };
    const char *must[] = { want, "backends", "ftp://127.0.0.1:1", NULL };
    expect_fail(args, must);

    const char *p2 = write_temp("cli-bad-url2.yaml",
                                "models:\n"
                                "  m:\n"
                                "    backends:\n"
                                "      - http://127.0.0.1:1\n"
                                "      - not a url\n");
    snprintf(want, sizeof want, "%s:5", p2);
    const char *args2[] = { "-c", p2, NULL };
    const char *must2[] = { want, "backends", NULL };
    expect_fail(args2, must2);
}

static void test_config_bad_values(void)
{
    const char *p = write_temp("cli-bad-workers.yaml",
                               "workers: many\n"
                               "models:\n"
                               "  m:\n"
                               "    backends: [http://127.0.0.1:1]\n");
    char want[320];
    snprintf(want, sizeof want, "%s:1", p);
    const char *args[] = { "-c", p, NULL };
    const char *must[] = { want, "workers", NULL };
    expect_fail(args, must);

    const char *p2 = write_temp("cli-bad-fallback.yaml",
                                "models:\n"
                                "  m:\n"
                                "    backends: [http://127.0.0.1:1]\n"
                                "    fallback_model: ghost\n");
    const char *args2[] = { "-c", p2, NULL };
    const char *must2[] = { p2, "ghost", NULL };
    expect_fail(args2, must2);
}

/* --- --check-config --- */

static void test_check_config(void)
{
    int port = free_port();
    char yaml[512], *out = NULL;
    snprintf(yaml, sizeof yaml,
             "listen: 127.0.0.1:%d\n"
             "models:\n"
             "  m:\n"
             "    backends: [http://127.0.0.1:1, http://127.0.0.1:2]\n"
             "  n:\n"
             "    backends: [http://127.0.0.1:3]\n",
             port);
    const char *good = write_temp("cli-good.yaml", yaml);
    const char *args[] = { "-c", good, "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR, NULL };

    CU_ASSERT_EQUAL(router_run(args, &out), 0);
    CU_ASSERT_TRUE(strlen(out) > 0);
    free(out);
    /* it only checked: nothing listens */
    CU_ASSERT_FALSE(listening(port));

    const char *bad = write_temp("cli-bad.yaml", "models:\n  m:\n    backends: []\n    colour: blue\n");
    const char *args2[] = { "-c", bad, "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    const char *must2[] = { bad, NULL };
    expect_fail(args2, must2);

    /* flags are checked too */
    const char *args3[] = { "-c", good, "--check-config", "--workers", "257", NULL };
    const char *must3[] = { "--workers", NULL };
    expect_fail(args3, must3);

    /* and plugins are loaded: a missing one fails the check */
    const char *args4[] = { "-c", good, "--check-config", "--plugin-dir", "/nonexistent-plugin-dir", NULL };
    const char *must4[] = { "/nonexistent-plugin-dir", NULL };
    expect_fail(args4, must4);
}

/* --- plugins that break the loader's rules --- */

static void expect_plugin_fail(const char *yaml_head, const char *plugin, const char *const *reasons)
{
    char yaml[512], so[512], port[16], name[64];
    const char *must[8];
    int n = 0, p = free_port();

    snprintf(yaml, sizeof yaml,
             "%s"
             "models:\n"
             "  m:\n"
             "    backends: [http://127.0.0.1:1]\n",
             yaml_head);
    snprintf(name, sizeof name, "cli-plugin-%s.yaml", plugin);
    const char *file = write_temp(name, yaml);
    snprintf(so, sizeof so, "%s/%s.so", TEST_PLUGIN_DIR, plugin);
    snprintf(port, sizeof port, "%d", p);
    must[n++] = so;
    for (int i = 0; reasons[i] && n < 7; i++)
        must[n++] = reasons[i];
    must[n] = NULL;
    const char *args[] = { "-c", file, "--plugin-dir", TEST_PLUGIN_DIR, "--host", "127.0.0.1",
                           "--port", port, NULL };
    expect_fail(args, must);
    CU_ASSERT_FALSE(listening(p));
}

static void test_plugin_good_loads(void)
{
    /* the control: the test plugin dir is right, and a valid plugin loads */
    char *out = NULL;
    const char *file = write_temp("cli-plugin-good.yaml",
                                  "routing: good\n"
                                  "models:\n"
                                  "  m:\n"
                                  "    backends: [http://127.0.0.1:1]\n");
    const char *args[] = { "-c", file, "--plugin-dir", TEST_PLUGIN_DIR, "--check-config", NULL };
    CU_ASSERT_EQUAL(router_run(args, &out), 0);
    free(out);
}

static void test_plugin_bad_magic(void)
{
    const char *why[] = { "bad magic", NULL };
    expect_plugin_fail("routing: bad_magic\n", "bad_magic", why);
}

static void test_plugin_wrong_abi(void)
{
    const char *why[] = { "ABI 2.0", NULL };
    expect_plugin_fail("routing: wrong_abi\n", "wrong_abi", why);
}

static void test_plugin_newer_minor(void)
{
    char abi[32];
    const char *why[] = { "newer", abi, NULL };
    /* the plugin says 1.(host minor + 1); the message shows it */
    snprintf(abi, sizeof abi, "ABI %d.", 1);
    expect_plugin_fail("routing: newer_minor\n", "newer_minor", why);
}

static void test_plugin_no_symbol(void)
{
    const char *why[] = { "sy_plugin_v1", NULL };
    expect_plugin_fail("routing: no_symbol\n", "no_symbol", why);
}

static void test_plugin_create_fails(void)
{
    const char *why[] = { "create", "needs a 'shard' setting", NULL };
    expect_plugin_fail("routing: create_fails\n", "create_fails", why);
}

static void test_plugin_does_not_exist(void)
{
    const char *why[] = { "No such file", NULL };
    expect_plugin_fail("routing: does_not_exist\n", "does_not_exist", why);
}

static void test_plugin_wrong_kind(void)
{
    /* a routing plugin listed as a fallback plugin */
    const char *why[] = { "routing", "fallback", NULL };
    expect_plugin_fail("routing: good\nfallback: [good]\n", "good", why);
}

static void test_plugin_bad_in_list(void)
{
    /* a bad plugin second in a chain is found as well */
    const char *why[] = { "bad magic", NULL };
    expect_plugin_fail("routing: [good, bad_magic]\n", "bad_magic", why);
}

/* --- starting the vllm_router way --- */

/* Lines of a log file holding text (router_log_lines on a daemon's). */
static int count_in_file(const char *path, const char *text)
{
    struct router r;
    memset(&r, 0, sizeof r);
    if (strlen(path) >= sizeof r.log)
        return -1;
    memcpy(r.log, path, strlen(path) + 1);
    return router_log_lines(&r, text, NULL);
}

/* production-stack's own static e2e invocation
 * (tests/e2e/run-static-discovery-routing-test.sh) starts and serves. */
static void test_production_stack_static_invocation(void)
{
    struct mock m1, m2;
    struct daemon d;
    struct resp r;
    char backends[160], port[16], text[256];
    int p = free_port();

    CU_ASSERT_EQUAL_FATAL(mock_start(&m1, "ps-m1", "llama", NULL), 0);
    if (mock_start(&m2, "ps-m2", "llama", NULL) != 0) {
        mock_stop(&m1);
        CU_FAIL_FATAL("mock did not start");
    }
    snprintf(backends, sizeof backends, "%s,%s", m1.url, m2.url);
    snprintf(port, sizeof port, "%d", p);
    const char *args[] = { "--port", port, "--host", "127.0.0.1", "--workers", "1",
                           "--plugin-dir", BUILT_PLUGIN_DIR,
                           "--service-discovery", "static", "--static-backends", backends,
                           "--static-models", "llama,llama", "--static-model-types", "chat,chat",
                           "--log-stats", "--log-stats-interval", "10",
                           "--engine-stats-interval", "10", "--request-stats-window", "10",
                           "--prefill-model-labels", "prefill", "--decode-model-labels", "decode",
                           "--static-model-labels", "prefill,decode",
                           "--session-key", "x-user-id", "--routing-logic", "roundrobin", NULL };
    if (daemon_start(&d, p, args) != 0) {
        mock_stop(&m1);
        mock_stop(&m2);
        CU_FAIL_FATAL("switchyard did not start with production-stack's static flags");
    }
    post_model(p, "llama", 200, &r);
    resp_free(&r);
    /* the labels are the backends' own, with their roles */
    CU_ASSERT_EQUAL(http_get(p, "/engines", &r), 0);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "\"labels\":{\"model_label\":\"prefill\","
                                                   "\"role\":\"prefill\"}") : NULL);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "\"labels\":{\"model_label\":\"decode\","
                                                   "\"role\":\"decode\"}") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(daemon_stop(&d), 0);
    /* every one of these flags has its effect: none says it has none */
    static const char *const working[] = { "--log-stats", "--log-stats-interval",
                                           "--engine-stats-interval", "--request-stats-window",
                                           "--prefill-model-labels", "--decode-model-labels",
                                           "--static-model-labels", NULL };
    for (int i = 0; working[i]; i++) {
        snprintf(text, sizeof text, "command line: %s: accepted", working[i]);
        CU_ASSERT_EQUAL(count_in_file(d.log, text), 0);
    }
    mock_stop(&m1);
    mock_stop(&m2);
}

/* Every flag of vllm_router (main, and PR 921's) starts switchyard:
 * --check-config with each one and a value it takes. */
static void test_every_vllm_router_flag(void)
{
    static const char *const flags[][2] = {
        {"--host", "127.0.0.1"}, {"--port", "8001"}, {"--service-discovery", "static"},
        {"--k8s-service-discovery-type", "pod-ip"}, {"--static-aliases", "a:m"},
        {"--static-model-types", "chat,chat"}, {"--static-model-labels", "x,y"},
        {"--static-backend-health-checks", NULL}, {"--k8s-port", "8000"},
        {"--k8s-namespace", "default"}, {"--k8s-label-selector", "app=x"},
        {"--k8s-watcher-timeout-seconds", "30"},
        {"--backend-health-check-timeout-seconds", "10"},
        {"--static-backend-health-check-timeout-seconds", "10"},
        {"--static-backend-health-check-interval", "30"},
        {"--routing-logic", "roundrobin"}, {"--lmcache-controller-port", "9000"},
        {"--session-key", "x-user-id"}, {"--callbacks", "my.cb"},
        {"--request-rewriter", "noop"}, {"--enable-batch-api", NULL},
        {"--file-storage-class", "local_file"}, {"--file-storage-path", "/tmp/f"},
        {"--batch-processor", "local"}, {"--engine-stats-interval", "30"},
        {"--request-stats-window", "60"}, {"--log-stats", NULL},
        {"--log-stats-interval", "10"}, {"--feature-gates", "SemanticCache=true"},
        {"--log-level", "critical"}, {"--log-level", "trace"},
        {"--sentry-dsn", "https://k@sentry.example/1"},
        {"--sentry-traces-sample-rate", "0.1"}, {"--sentry-profile-session-sample-rate", "1"},
        {"--otel-endpoint", "localhost:4317"}, {"--otel-service-name", "vllm-router"},
        {"--otel-secure", NULL}, {"--prefill-model-labels", "prefill"},
        {"--decode-model-labels", "decode"}, {"--kv-aware-threshold", "2000"},
        {"--prefix-min-match-length", "8"}, {"--lmcache-health-check-interval", "5"},
        {"--lmcache-worker-timeout", "30"}, {"--static-fallback-models", "m:m2"},
        {"--max-instance-failover-reroute-attempts", "2"},
        {"--routing-logic", "kvaware"}, {"--routing-logic", "disaggregated_prefill"},
        {"--routing-logic", "priority"}, {"--root-path", "/llm"},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const char *args[16];
        char *out = NULL;
        int n = 0;
        args[n++] = "--check-config";
        args[n++] = "--plugin-dir";
        args[n++] = BUILT_PLUGIN_DIR;
        args[n++] = "--static-backends";
        args[n++] = "http://127.0.0.1:9,http://127.0.0.1:10";
        args[n++] = "--static-models";
        args[n++] = "m,m2";
        args[n++] = flags[i][0];
        if (flags[i][1] != NULL)
            args[n++] = flags[i][1];
        args[n] = NULL;
        int rc = router_run(args, &out);
        if (rc != 0)
            fprintf(stderr, "\n    %s %s: exit %d: %s\n", flags[i][0],
                    flags[i][1] ? flags[i][1] : "", rc, out ? out : "");
        CU_ASSERT_EQUAL(rc, 0);
        free(out);
    }
    /* a logic without a plugin yet says which one serves instead */
    const char *kv[] = { "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR, "--static-backends",
                         "http://127.0.0.1:9", "--static-models", "m", "--routing-logic",
                         "kvaware", NULL };
    char *said = NULL;
    CU_ASSERT_EQUAL(router_run(kv, &said), 0);
    CU_ASSERT_PTR_NOT_NULL(said && strstr(said, "--routing-logic: 'kvaware' has no plugin in "
                                                "switchyard yet: prefixaware serves instead"));
    free(said);
    /* one no vllm_router version has stays an error */
    const char *bad[] = { "--check-config", "--no-such-vllm-router-flag", "1", NULL };
    char *out = NULL;
    CU_ASSERT_EQUAL(router_run(bad, &out), 2);
    free(out);
}

static void test_vllm_router_style_start(void)
{
    struct mock m1, m2;
    struct daemon d;
    struct resp r;
    char backends[160], port[16], ids[1024];
    int p = free_port();

    CU_ASSERT_EQUAL_FATAL(mock_start(&m1, "cli-m1", "m", NULL), 0);
    if (mock_start(&m2, "cli-m2", "m", NULL) != 0) {
        mock_stop(&m1);
        CU_FAIL_FATAL("mock did not start");
    }
    snprintf(backends, sizeof backends, "%s,%s", m1.url, m2.url);
    snprintf(port, sizeof port, "%d", p);
    const char *args[] = { "--static-backends", backends, "--static-models", "m,m",
                           "--static-aliases", "a:m", "--routing-logic", "roundrobin",
                           "--port", port, "--host", "127.0.0.1", "--workers", "1",
                           "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    if (daemon_start(&d, p, args) != 0) {
        mock_stop(&m1);
        mock_stop(&m2);
        CU_FAIL_FATAL("switchyard did not start from flags alone");
    }
    /* the model, spread over both replicas */
    int b1 = mock_requests(&m1), b2 = mock_requests(&m2);
    for (int i = 0; i < 4; i++) {
        post_model(p, "m", 200, &r);
        CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Model") ? resp_header(&r, "X-Switchyard-Model") : "", "m");
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(mock_requests(&m1) - b1, 2);
    CU_ASSERT_EQUAL(mock_requests(&m2) - b2, 2);
    /* the alias, served by its model under the model's name */
    post_model(p, "a", 200, &r);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Model") ? resp_header(&r, "X-Switchyard-Model") : "", "m");
    resp_free(&r);
    /* exactly what the flags named */
    model_ids(p, ids, sizeof ids);
    {
        const char *want[] = { "m", "a", NULL };
        if (!same_set(ids, want))
            fprintf(stderr, "\n  /v1/models ids: [%s]\n", ids);
        CU_ASSERT_TRUE(same_set(ids, want));
    }
    post_model(p, "other", 404, &r);
    resp_free(&r);
    /* /version agrees with --version */
    CU_ASSERT_EQUAL(http_get(p, "/version", &r), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"" PACKAGE_VERSION "\""));
    resp_free(&r);
    CU_ASSERT_EQUAL(daemon_stop(&d), 0);
    CU_ASSERT_FALSE(listening(p));
    mock_stop(&m1);
    mock_stop(&m2);
}

static void test_static_flags_replace_file_models(void)
{
    struct mock mf, ms;
    struct daemon d;
    struct resp r;
    char yaml[1024], port[16], ids[1024];
    int file_port = free_port(), p = free_port();

    CU_ASSERT_EQUAL_FATAL(mock_start(&mf, "cli-file", "file-model", NULL), 0);
    if (mock_start(&ms, "cli-flag", "m", NULL) != 0) {
        mock_stop(&mf);
        CU_FAIL_FATAL("mock did not start");
    }
    snprintf(yaml, sizeof yaml,
             "listen: 127.0.0.1:%d\n"
             "workers: 1\n"
             "models:\n"
             "  file-model:\n"
             "    backends: [%s]\n"
             "    aliases: [file-alias]\n"
             "  m:\n"
             "    backends: [%s]\n"
             "aliases:\n"
             "  other-alias: file-model\n",
             file_port, mf.url, mf.url);
    const char *file = write_temp("cli-replace.yaml", yaml);
    snprintf(port, sizeof port, "%d", p);
    const char *args[] = { "-c", file, "--static-backends", ms.url, "--static-models", "m",
                           "--port", port, "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    if (daemon_start(&d, p, args) != 0) {
        mock_stop(&mf);
        mock_stop(&ms);
        CU_FAIL_FATAL("switchyard did not start with -c and static flags");
    }
    model_ids(p, ids, sizeof ids);
    {
        const char *want[] = { "m", NULL };
        if (!same_set(ids, want))
            fprintf(stderr, "\n  /v1/models ids: [%s]\n", ids);
        CU_ASSERT_TRUE(same_set(ids, want));
    }
    /* m is served by the flag's backend, not the file's */
    int before_f = mock_requests(&mf);
    post_model(p, "m", 200, &r);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Mock-Backend") ? resp_header(&r, "X-Mock-Backend") : "", "cli-flag");
    resp_free(&r);
    post_model(p, "file-model", 404, &r);
    resp_free(&r);
    post_model(p, "file-alias", 404, &r);
    resp_free(&r);
    post_model(p, "other-alias", 404, &r);
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&mf), before_f);
    /* the file's other settings still hold where no flag says otherwise,
     * but --port beat its listen: */
    CU_ASSERT_FALSE(listening(file_port));
    CU_ASSERT_EQUAL(daemon_stop(&d), 0);
    mock_stop(&mf);
    mock_stop(&ms);
}

static void test_flag_overrides_file(void)
{
    struct daemon d;
    struct resp r;
    struct mock failing;
    char yaml[512], port[16];
    int file_port = free_port(), p = free_port();
    const char *fail503[] = { "--close", NULL };

    /* a backend that drops the connection is retried at once (one that
     * refuses it, or answers 5xx, is not) */
    CU_ASSERT_EQUAL_FATAL(mock_start(&failing, "cli-503", "dead", fail503), 0);
    snprintf(yaml, sizeof yaml,
             "listen: 127.0.0.1:%d\n"
             "workers: 1\n"
             "reroute_attempts: 4\n"
             "models:\n"
             "  dead:\n"
             "    backends: [%s]\n",
             file_port, failing.url);
    const char *file = write_temp("cli-override.yaml", yaml);
    snprintf(port, sizeof port, "%d", p);

    /* the file alone: its port, its reroute_attempts (1 + 4 attempts) */
    const char *args0[] = { "-c", file, "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    CU_ASSERT_EQUAL_FATAL(daemon_start(&d, file_port, args0), 0);
    post_model(file_port, "dead", 503, &r);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Attempts") ? resp_header(&r, "X-Switchyard-Attempts") : "", "5");
    resp_free(&r);
    CU_ASSERT_EQUAL(daemon_stop(&d), 0);

    /* flags win */
    const char *args[] = { "-c", file, "--plugin-dir", BUILT_PLUGIN_DIR, "--port", port,
                           "--max-instance-failover-reroute-attempts", "0", NULL };
    CU_ASSERT_EQUAL_FATAL(daemon_start(&d, p, args), 0);
    CU_ASSERT_FALSE(listening(file_port));
    CU_ASSERT_EQUAL(http_get(p, "/health", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    post_model(p, "dead", 503, &r);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Attempts") ? resp_header(&r, "X-Switchyard-Attempts") : "", "1");
    resp_free(&r);
    CU_ASSERT_EQUAL(daemon_stop(&d), 0);
    mock_stop(&failing);
}

static void test_port_in_use(void)
{
    /* a second daemon on a busy port must not start quietly next to the
     * first (SO_REUSEPORT would let it share the port and take half the
     * connections) */
    struct daemon d, d2;
    char port[16];
    int p = free_port(), st = -1;
    const char *args[] = { "--static-backends", "http://127.0.0.1:1", "--static-models", "m",
                           "--host", "127.0.0.1", "--port", port, "--workers", "1",
                           "--plugin-dir", BUILT_PLUGIN_DIR, NULL };

    snprintf(port, sizeof port, "%d", p);
    CU_ASSERT_EQUAL_FATAL(daemon_start(&d, p, args), 0);
    /* the second: daemon_start returns once /health answers, which the
     * first one does; then see whether the second is still alive */
    daemon_start(&d2, p, args);
    for (int i = 0; i < 100 && d2.pid > 0; i++) {
        if (waitpid(d2.pid, &st, WNOHANG) == d2.pid) {
            d2.pid = 0;
            st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        } else {
            nap_ms(10);
        }
    }
    if (d2.pid > 0) {
        fprintf(stderr, "\n  a second switchyard started on busy port %d (log %s)\n", p, d2.log);
        CU_FAIL("a second daemon runs on the same port");
        daemon_stop(&d2);
    } else {
        CU_ASSERT_NOT_EQUAL(st, 0);
    }
    CU_ASSERT_EQUAL(daemon_stop(&d), 0);
}

void register_cli_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e_cli", NULL, NULL);
    CU_add_test(s, "--version", test_version);
    CU_add_test(s, "--help", test_help);
    CU_add_test(s, "unknown flag", test_unknown_flag);
    CU_add_test(s, "bad flag values", test_bad_values);
    CU_add_test(s, "static flag mismatches", test_static_flag_mismatches);
    CU_add_test(s, "config: missing file", test_config_missing_file);
    CU_add_test(s, "config: invalid YAML", test_config_invalid_yaml);
    CU_add_test(s, "config: unknown key", test_config_unknown_key);
    CU_add_test(s, "config: bad backend URL", test_config_bad_backend_url);
    CU_add_test(s, "config: bad values", test_config_bad_values);
    CU_add_test(s, "--check-config", test_check_config);
    CU_add_test(s, "plugin: a good one loads", test_plugin_good_loads);
    CU_add_test(s, "plugin: bad magic", test_plugin_bad_magic);
    CU_add_test(s, "plugin: wrong ABI major", test_plugin_wrong_abi);
    CU_add_test(s, "plugin: newer ABI minor", test_plugin_newer_minor);
    CU_add_test(s, "plugin: no descriptor symbol", test_plugin_no_symbol);
    CU_add_test(s, "plugin: create() fails", test_plugin_create_fails);
    CU_add_test(s, "plugin: does not exist", test_plugin_does_not_exist);
    CU_add_test(s, "plugin: wrong kind", test_plugin_wrong_kind);
    CU_add_test(s, "plugin: bad one later in a chain", test_plugin_bad_in_list);
    CU_add_test(s, "vllm_router style start", test_vllm_router_style_start);
    CU_add_test(s, "production-stack's static e2e invocation", test_production_stack_static_invocation);
    CU_add_test(s, "every vllm_router flag starts it", test_every_vllm_router_flag);
    CU_add_test(s, "static flags replace the file's models", test_static_flags_replace_file_models);
    CU_add_test(s, "a flag overrides the file", test_flag_overrides_file);
    CU_add_test(s, "busy port", test_port_in_use);
}
