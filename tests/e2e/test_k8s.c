/*
 * e2e: the k8s discovery plugin against the fake Kubernetes API server
 * (tests/fake_kube_apiserver, scripted through its /_fake/ control port)
 * and the real daemon.  Pods are mock backends on 127.0.0.2, 127.0.0.3,
 * ... all on one port, as pods of a Deployment are.  Each change a test
 * makes in the API must show in what a client sees (which mocks answer a
 * model) within 2 s (times slack() under a wrapper such as valgrind).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"
#define SELECTOR "environment=test,release=test"
#define LABELS "\"environment\":\"test\",\"release\":\"test\",\"model\":\"llama\""

static double slack(void)
{
    const char *w = getenv("SY_TEST_WRAPPER");
    return w != NULL && *w != '\0' ? 5.0 : 1.0;
}

/* ---- the fake API server ---- */

struct fake {
    pid_t pid;
    int port, control; /* the API (HTTP or HTTPS), /_fake/ on plain HTTP */
};

/* Everything one test starts, stopped by the teardown whatever happened. */
static struct {
    struct fake fake;
    struct mock mocks[6];
    int nmocks;
    struct router rt;
    int pod_port;
} T;

static char certs[2][300]; /* two unrelated CAs and their certificates */

/* The build tree's tests/ directory, from MOCK_BIN. */
static const char *tests_bin(const char *name)
{
    static char path[600];
    const char *slash = strrchr(MOCK_BIN, '/');

    snprintf(path, sizeof path, "%.*s/%s", (int)(slash - MOCK_BIN), MOCK_BIN, name);
    return path;
}

/* The source tree: $top_srcdir (make check), else from this file's name
 * as the compiler saw it (relative to the build tree in a VPATH build). */
static const char *srcdir(void)
{
    static char dir[600];
    const char *env = getenv("top_srcdir"), *file = __FILE__;
    const char *tail = strstr(file, "tests/e2e/test_k8s.c");
    char build[600];

    if (env != NULL && *env != '\0')
        return env;
    if (file[0] == '/') {
        snprintf(dir, sizeof dir, "%.*s", tail ? (int)(tail - file) : 0, file);
        return dir;
    }
    snprintf(build, sizeof build, "%s", tests_bin(""));
    build[strlen(build) - strlen("/tests/")] = '\0';
    snprintf(dir, sizeof dir, "%s/%.*s", build, tail ? (int)(tail - file) : 0, file);
    return dir;
}

/* The scratch directory the harness made (write_temp's). */
static const char *scratch(void)
{
    static char dir[200];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "%s", write_temp("k8s-scratch", ""));
        *strrchr(dir, '/') = '\0';
    }
    return dir;
}

static void write_file(const char *path, const char *text)
{
    char tmp[700];
    FILE *f;

    /* whole or not at all, as kubelet swaps a projected token */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_EQUAL(rename(tmp, path), 0);
}

/* fake_kube_apiserver ARGS...; port 0: any.  0 when it is listening. */
static int fake_start(struct fake *f, int port, const char *const *extra)
{
    static int seq;
    char portfile[400], log[400], portarg[16];
    const char *argv[32];
    int n = 0;

    snprintf(portfile, sizeof portfile, "%s/fake-%d.port", scratch(), ++seq);
    snprintf(log, sizeof log, "%s/fake-%d.log", scratch(), seq);
    snprintf(portarg, sizeof portarg, "%d", port);
    unlink(portfile);
    argv[n++] = tests_bin("fake_kube_apiserver");
    argv[n++] = "--port";
    argv[n++] = portarg;
    argv[n++] = "--control-port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    memset(f, 0, sizeof *f);
    f->pid = fork();
    if (f->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500 && f->pid > 0; i++) {
        FILE *pf = fopen(portfile, "r");
        if (pf != NULL) {
            int ok = fscanf(pf, "%d %d", &f->port, &f->control) == 2;
            fclose(pf);
            if (ok)
                return 0;
        }
        sleep_ms(10);
    }
    return -1;
}

static void fake_stop(struct fake *f)
{
    int st;

    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    for (int i = 0; i < 300 && waitpid(f->pid, &st, WNOHANG) == 0; i++)
        sleep_ms(10);
    if (waitpid(f->pid, &st, WNOHANG) == 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &st, 0);
    }
    f->pid = 0;
}

/* A control call (POST /_fake/...): 0 on a 2xx answer. */
static int fake_control(const struct fake *f, const char *path, const char *body)
{
    struct resp r;
    int rc = http_raw(f->control, "POST", path, body, NULL, 5000, &r);

    rc = rc == 0 && r.status / 100 == 2 ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "\n    fake %s: %ld %s\n", path, r.status, r.body ? r.body : "");
    resp_free(&r);
    return rc;
}

/* An API call on a plain-HTTP fake without login (DELETE a pod). */
static int fake_api(const struct fake *f, const char *method, const char *path)
{
    struct resp r;
    int rc = http_raw(f->port, method, path, NULL, NULL, 5000, &r);

    rc = rc == 0 && r.status / 100 == 2 ? 0 : -1;
    resp_free(&r);
    return rc;
}

/* A pod as a kubelet would report it: phase, IP (NULL: none), Ready. */
static const char *pod(const char *name, const char *phase, const char *ip, int ready,
                       const char *labels)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];

    snprintf(b, 1024,
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\",\"labels\":{%s}},\"spec\":{\"containers\":[{\"name\":"
             "\"vllm\",\"image\":\"vllm/vllm-openai\"}]},\"status\":{\"phase\":\"%s\"%s%s%s,"
             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}]}}",
             name, labels, phase, ip ? ",\"podIP\":\"" : "", ip ? ip : "", ip ? "\"" : "",
             ready ? "True" : "False");
    return b;
}

static const char *ready_pod(const char *name, const char *ip)
{
    return pod(name, "Running", ip, 1, LABELS);
}

/* Create or replace pods (a MODIFIED event for the ones there). */
static int load(const char *a, const char *b)
{
    char body[4096];

    snprintf(body, sizeof body, "{\"items\":[%s%s%s]}", a, b ? "," : "", b ? b : "");
    return fake_control(&T.fake, "/_fake/load", body);
}

/* A mock backend as pod NAME at 127.0.0.OCTET:T.pod_port. */
static int pod_mock(const char *name, int octet, const char *models)
{
    char host[16], port[16];
    const char *extra[] = { "--host", host, "--port", port, NULL };

    snprintf(host, sizeof host, "127.0.0.%d", octet);
    snprintf(port, sizeof port, "%d", T.pod_port);
    return mock_start(&T.mocks[T.nmocks++], name, models, extra);
}

/* ---- what a client sees ---- */

/* The status of one request for model, and which mock answered. */
static long ask(int port, const char *model, char *who, size_t len)
{
    char body[256];
    struct resp r;
    long status;

    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
    who[0] = '\0';
    if (http_post(port, CHAT, body, NULL, &r) != 0) {
        resp_free(&r);
        return -1;
    }
    status = r.status;
    if (resp_header(&r, "X-Mock-Backend") != NULL)
        snprintf(who, len, "%s", resp_header(&r, "X-Mock-Backend"));
    resp_free(&r);
    return status;
}

/* Which mocks answer 8 requests for model: "m2,m3" (sorted, each once),
 * "" when the model is unknown (404), "?" on anything else. */
static void serving(int port, const char *model, char *out, size_t len)
{
    char names[8][32], who[32];
    int n = 0;

    out[0] = '\0';
    for (int i = 0; i < 8; i++) {
        long st = ask(port, model, who, sizeof who);
        if (st == 404 && i == 0)
            return;
        if (st != 200 || who[0] == '\0') {
            snprintf(out, len, "?");
            return;
        }
        int seen = 0;
        for (int j = 0; j < n; j++)
            seen |= strcmp(names[j], who) == 0;
        if (!seen)
            snprintf(names[n++], sizeof names[0], "%s", who);
    }
    /* sort: a handful of names */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char t[32];
                memcpy(t, names[i], sizeof t);
                memcpy(names[i], names[j], sizeof t);
                memcpy(names[j], t, sizeof t);
            }
    for (int i = 0; i < n; i++) {
        size_t o = strlen(out);
        snprintf(out + o, len - o, "%s%s", i ? "," : "", names[i]);
    }
}

/* Wait until `want` serves model (see serving()); the seconds it took, or
 * -1 after `limit` (times slack), saying what was seen. */
static double wait_for(const char *model, const char *want, double limit)
{
    double start = mono_seconds();
    char got[256] = "";

    while (mono_seconds() - start < limit * slack()) {
        serving(T.rt.port, model, got, sizeof got);
        if (strcmp(got, want) == 0)
            return mono_seconds() - start;
        sleep_ms(20);
    }
    fprintf(stderr, "\n    %s: wanted [%s], still [%s] after %.1fs\n", model, want, got,
            limit * slack());
    return -1;
}

#define FOLLOWS(model, want) CU_ASSERT(wait_for(model, want, 2.0) >= 0)
/* The first LIST over HTTPS must take no longer than any other change;
 * the test waits longer, so that what follows still runs, but a slow one
 * fails.  (The core's upstream once refused requests on fresh TLS
 * connections: the server's TLS 1.3 session tickets waited unread on the
 * socket and a peek took them for "bytes nobody asked for".) */
static void first_sync_tls(const char *model, const char *want)
{
    double t = wait_for(model, want, 30.0);

    CU_ASSERT(t >= 0 && t <= 2.0 * slack());
    CU_ASSERT_EQUAL(router_log_lines(&T.rt, "[k8s]", "bytes nobody asked for"), 0);
    if (t > 2.0 * slack() || t < 0)
        fprintf(stderr, "\n    the first LIST over HTTPS took %.1fs; the router's log has %d "
                        "'bytes nobody asked for' and %d 'SSL connect error'\n", t,
                router_log_lines(&T.rt, "[k8s]", "bytes nobody asked for"),
                router_log_lines(&T.rt, "[k8s]", "SSL connect error"));
}
#define FIRST_SYNC_TLS(model, want) first_sync_tls(model, want)

/* ---- routers ---- */

static const char *kubeconfig(const char *server, const char *cluster_extra,
                              const char *user_yaml)
{
    static int seq;
    char name[64], text[8192];

    snprintf(name, sizeof name, "kubeconfig-%d", ++seq);
    snprintf(text, sizeof text,
             "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
             "clusters:\n- name: fake\n  cluster:\n    server: %s\n%s"
             "contexts:\n- name: test\n  context: {cluster: fake, user: me, namespace: default}\n"
             "users:\n- name: me\n  user: %s\n",
             server, cluster_extra ? cluster_extra : "", user_yaml ? user_yaml : "{}");
    return write_temp(name, text);
}

/* A router discovering the fake's pods with the selector above; more:
 * extra plugin_config.k8s settings ("key: value, ..."). */
static int router(const char *kubeconfig_path, const char *more)
{
    char yaml[2048];

    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "discovery: [k8s]\n"
             "plugin_config:\n"
             "  k8s: {kubeconfig: '%s', label_selector: '" SELECTOR "', port: %d, "
             "backoff_max: 1s%s%s}\n",
             kubeconfig_path ? kubeconfig_path : "", T.pod_port, more ? ", " : "",
             more ? more : "");
    if (kubeconfig_path == NULL) /* in a cluster: no kubeconfig setting */
        snprintf(yaml, sizeof yaml,
                 "workers: 2\ndiscovery: [k8s]\nplugin_config:\n"
                 "  k8s: {label_selector: '" SELECTOR "', port: %d, backoff_max: 1s%s%s}\n",
                 T.pod_port, more ? ", " : "", more ? more : "");
    return router_start(&T.rt, yaml, NULL);
}

static int http_kubeconfig_router(const char *more)
{
    char server[64];

    snprintf(server, sizeof server, "http://127.0.0.1:%d", T.fake.port);
    return router(kubeconfig(server, NULL, NULL), more);
}

/* ---- the suite ---- */

static int suite_init(void)
{
    char cmd[1400];

    for (int i = 0; i < 2; i++) {
        snprintf(certs[i], sizeof certs[i], "%s/k8s-certs-%d", scratch(), i);
        snprintf(cmd, sizeof cmd, "sh '%s/tests/k8s/make_certs.sh' '%s' >/dev/null 2>&1",
                 srcdir(), certs[i]);
        if (system(cmd) != 0) {
            fprintf(stderr, "e2e k8s: %s failed\n", cmd);
            return -1;
        }
    }
    return 0;
}

static void test_setup(void)
{
    memset(&T, 0, sizeof T);
    T.pod_port = free_port();
}

static void test_teardown(void)
{
    if (T.rt.pid > 0)
        router_stop(&T.rt);
    for (int i = 0; i < T.nmocks; i++)
        mock_stop(&T.mocks[i]);
    fake_stop(&T.fake);
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    memset(&T, 0, sizeof T);
}

/* Pods come, go not Ready, get a deletionTimestamp, are evicted, are
 * relabelled out of the selector, are deleted: the router follows each. */
static void test_pods_follow(void)
{
    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m3", 3, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m4", 4, "llama"), 0);
    /* p3 still starting; p9 another app's pod at m4's address */
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), pod("p3", "Pending", NULL, 0, LABELS)), 0);
    CU_ASSERT_EQUAL_FATAL(load(pod("p9", "Running", "127.0.0.4", 1, "\"app\":\"other\""), NULL), 0);
    CU_ASSERT_EQUAL_FATAL(http_kubeconfig_router(NULL), 0);
    FOLLOWS("llama", "m2");

    /* added: p3 Ready */
    CU_ASSERT_EQUAL(load(ready_pod("p3", "127.0.0.3"), NULL), 0);
    FOLLOWS("llama", "m2,m3");
    /* not Ready, and back */
    CU_ASSERT_EQUAL(load(pod("p2", "Running", "127.0.0.2", 0, LABELS), NULL), 0);
    FOLLOWS("llama", "m3");
    CU_ASSERT_EQUAL(load(ready_pod("p2", "127.0.0.2"), NULL), 0);
    FOLLOWS("llama", "m2,m3");
    /* a third pod, then a deletionTimestamp (a graceful delete): it leaves
     * at once, long before the pod is gone from the API */
    CU_ASSERT_EQUAL(load(ready_pod("p4", "127.0.0.4"), NULL), 0);
    FOLLOWS("llama", "m2,m3,m4");
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/config", "{\"delete_grace_ms\":60000}"), 0);
    CU_ASSERT_EQUAL(fake_api(&T.fake, "DELETE", "/api/v1/namespaces/default/pods/p4"), 0);
    FOLLOWS("llama", "m2,m3");
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/config", "{\"delete_grace_ms\":0}"), 0);
    /* evicted: Failed, its IP cleared */
    CU_ASSERT_EQUAL(load(pod("p3", "Failed", NULL, 0, LABELS), NULL), 0);
    FOLLOWS("llama", "m2");
    /* back, then relabelled out of the selector (a MODIFIED, or a DELETED
     * from a server that filters: either way it leaves) */
    CU_ASSERT_EQUAL(load(ready_pod("p3", "127.0.0.3"), NULL), 0);
    FOLLOWS("llama", "m2,m3");
    CU_ASSERT_EQUAL(load(pod("p3", "Running", "127.0.0.3", 1,
                             "\"environment\":\"test\",\"release\":\"canary\""), NULL), 0);
    FOLLOWS("llama", "m2");
    /* deleted: the model has no backend left */
    CU_ASSERT_EQUAL(fake_api(&T.fake, "DELETE", "/api/v1/namespaces/default/pods/p2"), 0);
    FOLLOWS("llama", "");
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] pod p2", "not Ready") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] pod p4", "terminating") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] pod p3", "no pod IP") +
              router_log_lines(&T.rt, "[k8s] pod p3", "not Running") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] pod p3", "labels no longer match") +
              router_log_lines(&T.rt, "[k8s] pod p3", "relabelled out of the selector") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] pod p2", "gone from the API") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] pod p9", NULL) == 0);
    /* its own numbers in /metrics: p4 (terminating) and p3 (relabelled
     * out: the server filters by the selector) are still in the API */
    CU_ASSERT_EQUAL(metric_value(T.rt.port, "switchyard_plugin_gauge{plugin=\"k8s\","
                                            "name=\"backends\"}", -1), 0);
    CU_ASSERT_EQUAL(metric_value(T.rt.port, "switchyard_plugin_gauge{plugin=\"k8s\","
                                            "name=\"pods\"}", -1), 1);
    CU_ASSERT(metric_value(T.rt.port, "switchyard_plugin_counter_total{plugin=\"k8s\","
                                      "name=\"lists\"}", -1) >= 1);
    CU_ASSERT_EQUAL(metric_value(T.rt.port, "switchyard_plugin_counter_total{plugin=\"k8s\","
                                            "name=\"api_errors\"}", 0), 0);
    double listed = metric_value(T.rt.port, "switchyard_plugin_gauge{plugin=\"k8s\","
                                            "name=\"last_list_timestamp_seconds\"}", -1);
    CU_ASSERT(listed > (double)time(NULL) - 120 && listed <= (double)time(NULL) + 1);
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* A pod deleted while the watch was held up, then 410 Gone (the history
 * compacted past the watch): the LIST that follows takes it out. */
static void test_deleted_while_watch_down(void)
{
    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m3", 3, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), ready_pod("p3", "127.0.0.3")), 0);
    CU_ASSERT_EQUAL_FATAL(http_kubeconfig_router(NULL), 0);
    FOLLOWS("llama", "m2,m3");
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/watches/stall", NULL), 0);
    CU_ASSERT_EQUAL(fake_api(&T.fake, "DELETE", "/api/v1/namespaces/default/pods/p3"), 0);
    sleep_ms(300);
    /* the router cannot know yet */
    char got[64];
    serving(T.rt.port, "llama", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "m2,m3");
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/compact", NULL), 0);
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/watches/resume", NULL), 0);
    FOLLOWS("llama", "m2");
    CU_ASSERT(router_log_lines(&T.rt, "[k8s]", "410") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] listed", NULL) >= 2);
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* A watch that says nothing for longer than its timeout (plus a margin)
 * is dead: LIST again, and what changed meanwhile shows. */
static void test_silent_watch(void)
{
    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m3", 3, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), ready_pod("p3", "127.0.0.3")), 0);
    /* timeoutSeconds=1: silent for 2 s is dead */
    CU_ASSERT_EQUAL_FATAL(http_kubeconfig_router("watcher_timeout_seconds: 1"), 0);
    FOLLOWS("llama", "m2,m3");
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/watches/stall", NULL), 0);
    CU_ASSERT_EQUAL(load(pod("p3", "Running", "127.0.0.3", 0, LABELS), NULL), 0);
    /* within the silence allowed (2 s) and the usual 2 s */
    CU_ASSERT(wait_for("llama", "m2", 4.0) >= 0);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s]", "silent for longer than its timeout") >= 1);
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/watches/resume", NULL), 0);
    CU_ASSERT_EQUAL(load(ready_pod("p3", "127.0.0.3"), NULL), 0);
    FOLLOWS("llama", "m2,m3");
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* The API server stops: the pods known keep serving, nothing is dropped;
 * it comes back (empty, as a restarted fake is) and the router follows. */
static void test_api_down_and_back(void)
{
    char got[64];

    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m3", 3, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), ready_pod("p3", "127.0.0.3")), 0);
    CU_ASSERT_EQUAL_FATAL(http_kubeconfig_router(NULL), 0);
    FOLLOWS("llama", "m2,m3");
    int api = T.fake.port;
    fake_stop(&T.fake);
    /* 3 s down: every request still served by both pods */
    double until = mono_seconds() + 3;
    while (mono_seconds() < until) {
        serving(T.rt.port, "llama", got, sizeof got);
        CU_ASSERT_STRING_EQUAL(got, "m2,m3");
        sleep_ms(200);
    }
    CU_ASSERT(router_log_lines(&T.rt, "[k8s]", "retrying in") >= 2);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s]", "the last known backends keep serving") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "published 0 backends", NULL) == 0);
    /* back on the same port, and p3 is gone (deleted while it was down) */
    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, api, NULL), 0);
    CU_ASSERT_EQUAL(load(ready_pod("p2", "127.0.0.2"), NULL), 0);
    /* within backoff_max (1 s) and the usual 2 s */
    CU_ASSERT(wait_for("llama", "m2", 3.0) >= 0);
    CU_ASSERT_EQUAL(load(ready_pod("p3", "127.0.0.3"), NULL), 0);
    FOLLOWS("llama", "m2,m3");
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* A LoRA adapter loaded on one pod is a model of its own, served there. */
static void test_lora_adapter(void)
{
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama,sql-lora"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m3", 3, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), ready_pod("p3", "127.0.0.3")), 0);
    CU_ASSERT_EQUAL_FATAL(http_kubeconfig_router(NULL), 0);
    FOLLOWS("llama", "m2,m3");
    FOLLOWS("sql-lora", "m2");
    CU_ASSERT_EQUAL(http_get(T.rt.port, "/v1/models", &r), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"sql-lora\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"llama\""));
    resp_free(&r);
    /* the pod with the adapter goes: the adapter with it */
    CU_ASSERT_EQUAL(load(pod("p2", "Running", "127.0.0.2", 0, LABELS), NULL), 0);
    FOLLOWS("sql-lora", "");
    FOLLOWS("llama", "m3");
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] pod p2", "sql-lora") >= 1);
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* HTTPS with the certificates of CA number `ca`, and a token to log in. */
static const char *const *tls_fake_args(int ca, const char *token_file)
{
    static const char *args[8];
    static char cert[400], key[400];

    snprintf(cert, sizeof cert, "%s/server.crt", certs[ca]);
    snprintf(key, sizeof key, "%s/server.key", certs[ca]);
    args[0] = "--tls-cert";
    args[1] = cert;
    args[2] = "--tls-key";
    args[3] = key;
    args[4] = "--token";
    args[5] = token_file;
    args[6] = NULL;
    return args;
}

/* A CA that did not sign the server's certificate: a clear error, no
 * backend, no crash.  The right CA (as -data) and a token: served.
 * (A client certificate as the login is left to the unit tests: the fake,
 * started with --client-ca, refuses every resumed TLS session, and
 * libcurl resumes sessions.) */
static void test_tls_wrong_ca(void)
{
    char server[64], extra[4096], user[900], token[400];
    struct resp r;

    snprintf(token, sizeof token, "%s/ca-test-token", scratch());
    write_file(token, "secret-token");
    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, tls_fake_args(0, token)), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), NULL), 0);
    snprintf(server, sizeof server, "https://127.0.0.1:%d", T.fake.port);
    snprintf(user, sizeof user, "{token: secret-token}");
    /* the other CA */
    snprintf(extra, sizeof extra, "    certificate-authority: '%s/ca.crt'\n", certs[1]);
    CU_ASSERT_EQUAL_FATAL(router(kubeconfig(server, extra, user), NULL), 0);
    double start = mono_seconds();
    while (mono_seconds() - start < 2 * slack() &&
           router_log_lines(&T.rt, "[k8s]", "is the CA right?") == 0)
        sleep_ms(50);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] LIST pods", "is the CA right?") >= 1);
    char got[64];
    serving(T.rt.port, "llama", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "");
    CU_ASSERT_EQUAL(http_get(T.rt.port, "/health", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);

    /* the right CA, as -data */
    char *pem = NULL, path[400], line[4096];
    snprintf(path, sizeof path, "%s/ca.crt", certs[0]);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* base64 by hand: the test has no encoder but this */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pem = calloc(1, n / 3 * 4 + 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)(unsigned char)line[i] << 16;
        v |= i + 1 < n ? (unsigned)(unsigned char)line[i + 1] << 8 : 0;
        v |= i + 2 < n ? (unsigned)(unsigned char)line[i + 2] : 0;
        pem[o++] = b64[v >> 18 & 63];
        pem[o++] = b64[v >> 12 & 63];
        pem[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        pem[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    snprintf(extra, sizeof extra, "    certificate-authority-data: %s\n", pem);
    free(pem);
    CU_ASSERT_EQUAL_FATAL(router(kubeconfig(server, extra, user), NULL), 0);
    FIRST_SYNC_TLS("llama", "m2");
    CU_ASSERT_EQUAL(load(pod("p2", "Running", "127.0.0.2", 0, LABELS), NULL), 0);
    FOLLOWS("llama", "");
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* In a cluster: the service account's token, CA and namespace; a token
 * that rotates is read again, and no request goes out with the old one. */
static void test_in_cluster_token_rotation(void)
{
    char sa[400], p[500], fake_token[400], portarg[16];
    struct resp r;

    snprintf(sa, sizeof sa, "%s/serviceaccount", scratch());
    mkdir(sa, 0700);
    snprintf(fake_token, sizeof fake_token, "%s/fake-token", scratch());
    write_file(fake_token, "token-one");
    snprintf(p, sizeof p, "%s/token", sa);
    write_file(p, "token-one\n");
    snprintf(p, sizeof p, "%s/namespace", sa);
    write_file(p, "default");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s/ca.crt' '%s/ca.crt'", certs[0], sa);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);

    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, tls_fake_args(0, fake_token)), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m3", 3, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), NULL), 0);
    snprintf(portarg, sizeof portarg, "%d", T.fake.port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", portarg, 1);
    char more[500];
    snprintf(more, sizeof more, "service_account_dir: '%s'", sa);
    CU_ASSERT_EQUAL_FATAL(router(NULL, more), 0);
    FIRST_SYNC_TLS("llama", "m2");
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] in a cluster", NULL) >= 1);

    /* rotate: the server wants the new one at once; the watch ends, and
     * the LIST and WATCH that follow carry the new token */
    int lists = router_log_lines(&T.rt, "[k8s] listed", NULL);
    write_file(fake_token, "token-two");
    snprintf(p, sizeof p, "%s/token", sa);
    write_file(p, "token-two\n");
    CU_ASSERT_EQUAL(fake_control(&T.fake, "/_fake/watches/close", NULL), 0);
    for (int i = 0; i < 500 && router_log_lines(&T.rt, "[k8s] listed", NULL) == lists; i++)
        sleep_ms(20);
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] listed", NULL) > lists);
    sleep_ms(100); /* the watch after it */
    CU_ASSERT_EQUAL(load(ready_pod("p3", "127.0.0.3"), NULL), 0);
    FOLLOWS("llama", "m2,m3");
    CU_ASSERT(router_log_lines(&T.rt, "[k8s]", "changed: using the new one") >= 1);
    CU_ASSERT(router_log_lines(&T.rt, "token-two", NULL) == 0); /* a secret */
    CU_ASSERT_EQUAL(http_raw(T.fake.control, "GET", "/_fake/state", NULL, NULL, 5000, &r), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"auth_failures\":0"));
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* A reload makes a new instance of the plugin: the pods serve on without
 * a gap (it publishes once it knows their models, not before). */
static void test_reload_no_gap(void)
{
    char got[64];

    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m3", 3, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), ready_pod("p3", "127.0.0.3")), 0);
    CU_ASSERT_EQUAL_FATAL(http_kubeconfig_router(NULL), 0);
    FOLLOWS("llama", "m2,m3");
    int starts = router_log_lines(&T.rt, "[k8s] discovering pods", NULL);
    CU_ASSERT_EQUAL(kill(T.rt.pid, SIGHUP), 0);
    double until = mono_seconds() + 1.5 * slack();
    while (mono_seconds() < until) {
        serving(T.rt.port, "llama", got, sizeof got);
        CU_ASSERT_STRING_EQUAL(got, "m2,m3");
        if (strcmp(got, "m2,m3") != 0)
            break;
    }
    CU_ASSERT(router_log_lines(&T.rt, "[k8s] discovering pods", NULL) == starts + 1);
    /* and the new instance follows changes */
    CU_ASSERT_EQUAL(load(pod("p3", "Running", "127.0.0.3", 0, LABELS), NULL), 0);
    FOLLOWS("llama", "m2");
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

/* vllm_router's flags, as production-stack's Helm chart passes them, and
 * a kubeconfig in $KUBECONFIG: no config file setting for discovery. */
static void test_helm_flags(void)
{
    char server[64], portarg[16];

    CU_ASSERT_EQUAL_FATAL(fake_start(&T.fake, 0, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pod_mock("m2", 2, "llama"), 0);
    CU_ASSERT_EQUAL_FATAL(load(ready_pod("p2", "127.0.0.2"), NULL), 0);
    snprintf(server, sizeof server, "http://127.0.0.1:%d", T.fake.port);
    setenv("KUBECONFIG", kubeconfig(server, NULL, NULL), 1);
    snprintf(portarg, sizeof portarg, "%d", T.pod_port);
    const char *const flags[] = {
        "--service-discovery", "k8s", "--k8s-namespace", "default",
        "--k8s-service-discovery-type", "pod-ip", "--k8s-label-selector", SELECTOR,
        "--k8s-port", portarg, NULL,
    };
    CU_ASSERT_EQUAL_FATAL(router_start(&T.rt, "", flags), 0);
    FOLLOWS("llama", "m2");
    CU_ASSERT_EQUAL(load(pod("p2", "Running", "127.0.0.2", 0, LABELS), NULL), 0);
    FOLLOWS("llama", "");
    CU_ASSERT_EQUAL(load(ready_pod("p2", "127.0.0.2"), NULL), 0);
    FOLLOWS("llama", "m2");
    CU_ASSERT_EQUAL(router_stop(&T.rt), 0);
}

void register_k8s_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite_with_setup_and_teardown("e2e k8s", suite_init, NULL, test_setup,
                                                       test_teardown);
    CU_add_test(s, "pods added, not ready, terminating, evicted, relabelled, deleted",
                test_pods_follow);
    CU_add_test(s, "a pod deleted while the watch was down, then 410 Gone",
                test_deleted_while_watch_down);
    CU_add_test(s, "a silent watch", test_silent_watch);
    CU_add_test(s, "the API server stopped and back", test_api_down_and_back);
    CU_add_test(s, "a LoRA adapter on one pod", test_lora_adapter);
    CU_add_test(s, "a wrong CA, then the right one", test_tls_wrong_ca);
    CU_add_test(s, "in a cluster, the token rotates", test_in_cluster_token_rotation);
    CU_add_test(s, "a reload: no gap", test_reload_no_gap);
    CU_add_test(s, "the Helm chart's flags and a kubeconfig", test_helm_flags);
}
