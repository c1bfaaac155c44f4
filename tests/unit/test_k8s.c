/*
 * The k8s discovery plugin.  Its pure parts (plugins/k8s_lib.h: label
 * selectors, the kubeconfig, the watch framing and events, the pod and
 * Service rules, /v1/models) are called directly; then the built plugin
 * (k8s.so) runs against a scripted host whose clock, timers and streams
 * the tests drive by hand: the LIST / WATCH / re-list state machine, the
 * backoff, and what gets published, with no network.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <switchyard/plugin.h>

#include "../../plugins/k8s_lib.h"
#include "unit.h"

/* ---- label selectors ---- */

static struct k8s_label L(const char *k, const char *v)
{
    return (struct k8s_label){ (char *)k, (char *)v };
}

/* Does `sel` match the labels "k=v,k2=v2" (no '=': no labels)? */
static int matches(const char *sel, const char *labels)
{
    struct k8s_selector s;
    struct k8s_label l[8];
    char buf[256], err[256] = "", *save = NULL;
    size_t n = 0;
    int m;

    if (k8s_selector_parse(sel, &s, err, sizeof err) != 0) {
        fprintf(stderr, "\n    selector '%s': %s\n", sel, err);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", labels);
    for (char *t = strtok_r(buf, ",", &save); t && n < 8; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        l[n++] = L(t, eq + 1);
    }
    m = k8s_selector_match(&s, l, n);
    k8s_selector_free(&s);
    return m;
}

static void test_selector_equality(void)
{
    CU_ASSERT_EQUAL(matches("", "a=b"), 1);
    CU_ASSERT_EQUAL(matches("   ", ""), 1);
    CU_ASSERT_EQUAL(matches("environment=test,release=test", "environment=test,release=test"), 1);
    CU_ASSERT_EQUAL(matches("environment=test,release=test", "environment=test,release=prod"), 0);
    CU_ASSERT_EQUAL(matches("environment=test,release=test", "environment=test"), 0);
    CU_ASSERT_EQUAL(matches("environment==test", "environment=test"), 1);
    CU_ASSERT_EQUAL(matches(" environment = test , release=test ", "release=test,environment=test"), 1);
    CU_ASSERT_EQUAL(matches("tier!=cache", "tier=web"), 1);
    CU_ASSERT_EQUAL(matches("tier!=cache", "tier=cache"), 0);
    CU_ASSERT_EQUAL(matches("tier!=cache", "x=y"), 1); /* no label: != holds */
    CU_ASSERT_EQUAL(matches("a=", "a="), 1);           /* an empty value */
    CU_ASSERT_EQUAL(matches("a=", "a=x"), 0);
    CU_ASSERT_EQUAL(matches("app.kubernetes.io/name=vllm", "app.kubernetes.io/name=vllm"), 1);
}

static void test_selector_sets(void)
{
    CU_ASSERT_EQUAL(matches("gpu", "gpu=a100"), 1);
    CU_ASSERT_EQUAL(matches("gpu", "cpu=x"), 0);
    CU_ASSERT_EQUAL(matches("!canary", "app=x"), 1);
    CU_ASSERT_EQUAL(matches("!canary", "canary=true"), 0);
    CU_ASSERT_EQUAL(matches("! canary", "canary="), 0);
    CU_ASSERT_EQUAL(matches("env in (prod,test)", "env=test"), 1);
    CU_ASSERT_EQUAL(matches("env in ( prod , test )", "env=prod"), 1);
    CU_ASSERT_EQUAL(matches("env in (prod,test)", "env=dev"), 0);
    CU_ASSERT_EQUAL(matches("env in (prod,test)", "x=y"), 0);
    CU_ASSERT_EQUAL(matches("zone notin (a)", "zone=b"), 1);
    CU_ASSERT_EQUAL(matches("zone notin (a,b)", "zone=b"), 0);
    CU_ASSERT_EQUAL(matches("zone notin (a)", "x=y"), 1); /* no label: notin holds */
    CU_ASSERT_EQUAL(matches("env in (prod),gpu,!canary,zone notin (z)", "env=prod,gpu=1"), 1);
    CU_ASSERT_EQUAL(matches("env in (prod),gpu,!canary", "env=prod,gpu=1,canary=1"), 0);
    /* "in" and "notin" as plain keys and values */
    CU_ASSERT_EQUAL(matches("in=notin", "in=notin"), 1);
    CU_ASSERT_EQUAL(matches("notin", "notin=x"), 1);
}

static void test_selector_errors(void)
{
    static const char *const bad[] = {
        "a=b,", ",a=b", "a=b c", "a in b", "a in (b", "a in ()", "a notin ()", "=b", "!",
        "a>1", "a=b=c", "-a=b", "a=-b", "a in (x y)", "a inx (b)", "a,,b", "a/b/c=d",
        "Example.com/a=b", "a=b)", "a=(b)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct k8s_selector s;
        char err[256] = "";
        int rc = k8s_selector_parse(bad[i], &s, err, sizeof err);
        if (rc == 0)
            fprintf(stderr, "\n    selector '%s' should not parse\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_NOT_EQUAL(err[0], '\0');
        CU_ASSERT_PTR_NULL(s.reqs);
    }
    char long_value[80];
    memset(long_value, 'v', 64);
    long_value[64] = '\0';
    char sel[100];
    snprintf(sel, sizeof sel, "a=%s", long_value);
    struct k8s_selector s;
    char err[256];
    CU_ASSERT_EQUAL(k8s_selector_parse(sel, &s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a valid label value"));
}

static void test_url_escape(void)
{
    char *e = k8s_url_escape("environment=test,release in (a b)/x~y_z.-");
    CU_ASSERT_STRING_EQUAL(e, "environment%3Dtest%2Crelease%20in%20%28a%20b%29%2Fx~y_z.-");
    free(e);
    e = k8s_url_escape("");
    CU_ASSERT_STRING_EQUAL(e, "");
    free(e);
}

/* ---- the watch framing ---- */

struct lines_seen {
    char all[4096];
    int n;
    int stop_at; /* return 7 at this line (1-based), 0: never */
};

static int collect_line(void *arg, const char *line, size_t len)
{
    struct lines_seen *s = arg;
    size_t o = strlen(s->all);

    snprintf(s->all + o, sizeof s->all - o, "[%.*s]", (int)len, line);
    s->n++;
    return s->n == s->stop_at ? 7 : 0;
}

static void test_lines_any_pieces(void)
{
    const char *text = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":\n3}\nlast";
    size_t len = strlen(text);

    /* every way of cutting it in two, then byte by byte */
    for (size_t cut = 0; cut <= len; cut++) {
        struct k8s_lines l = { 0 };
        struct lines_seen s = { "", 0, 0 };
        CU_ASSERT_EQUAL(k8s_lines_feed(&l, text, cut, collect_line, &s), 0);
        CU_ASSERT_EQUAL(k8s_lines_feed(&l, text + cut, len - cut, collect_line, &s), 0);
        CU_ASSERT_STRING_EQUAL(s.all, "[{\"a\":1}][{\"b\":2}][{\"c\":][3}]");
        CU_ASSERT_EQUAL(k8s_lines_finish(&l, collect_line, &s), 0);
        CU_ASSERT_STRING_EQUAL(s.all, "[{\"a\":1}][{\"b\":2}][{\"c\":][3}][last]");
        k8s_lines_reset(&l);
    }
    struct k8s_lines l = { 0 };
    struct lines_seen s = { "", 0, 0 };
    for (size_t i = 0; i < len; i++)
        CU_ASSERT_EQUAL(k8s_lines_feed(&l, text + i, 1, collect_line, &s), 0);
    CU_ASSERT_EQUAL(k8s_lines_finish(&l, collect_line, &s), 0);
    CU_ASSERT_STRING_EQUAL(s.all, "[{\"a\":1}][{\"b\":2}][{\"c\":][3}][last]");
    /* finishing twice, or with nothing left, sees nothing more */
    CU_ASSERT_EQUAL(k8s_lines_finish(&l, collect_line, &s), 0);
    CU_ASSERT_EQUAL(s.n, 5);
    k8s_lines_reset(&l);
}

static void test_lines_stop_and_cap(void)
{
    struct k8s_lines l = { 0 };
    struct lines_seen s = { "", 0, 2 };

    /* the callback's non-zero return stops the feed */
    CU_ASSERT_EQUAL(k8s_lines_feed(&l, "a\nb\nc\n", 6, collect_line, &s), 7);
    CU_ASSERT_STRING_EQUAL(s.all, "[a][b]");
    k8s_lines_reset(&l);

    /* a line past the cap, whole or in pieces, is an error */
    struct k8s_lines small = { .max = 8 };
    struct lines_seen t = { "", 0, 0 };
    CU_ASSERT_EQUAL(k8s_lines_feed(&small, "12345678\n", 9, collect_line, &t), 0);
    CU_ASSERT_EQUAL(k8s_lines_feed(&small, "123456789\n", 10, collect_line, &t), K8S_LINE_TOO_LONG);
    CU_ASSERT_EQUAL(k8s_lines_feed(&small, "12345", 5, collect_line, &t), 0);
    CU_ASSERT_EQUAL(k8s_lines_feed(&small, "6789", 4, collect_line, &t), K8S_LINE_TOO_LONG);
    CU_ASSERT_EQUAL(small.len, 0);
    CU_ASSERT_EQUAL(k8s_lines_feed(&small, "1234", 4, collect_line, &t), 0);
    CU_ASSERT_EQUAL(k8s_lines_feed(&small, "5678\nok\n", 8, collect_line, &t), 0);
    CU_ASSERT_STRING_EQUAL(t.all, "[12345678][12345678][ok]");
    k8s_lines_reset(&small);

    /* the default cap is 8 MiB */
    size_t big = K8S_MAX_LINE + 1;
    char *line = malloc(big + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    memset(line, 'x', big);
    line[big] = '\n';
    struct k8s_lines d = { 0 };
    struct lines_seen u = { "", 0, 0 };
    CU_ASSERT_EQUAL(k8s_lines_feed(&d, line, 1000, collect_line, &u), 0);
    CU_ASSERT_EQUAL(k8s_lines_feed(&d, line + 1000, big + 1 - 1000, collect_line, &u),
                    K8S_LINE_TOO_LONG);
    CU_ASSERT_EQUAL(u.n, 0);
    k8s_lines_reset(&d);
    free(line);
}

/* ---- objects, lists and events ---- */

/* A pod as the API server writes it; static buffers, rotated. */
static const char *pod(const char *name, const char *rv, const char *phase, const char *ip,
                       int ready, int deleting, const char *labels)
{
    static char bufs[8][2048];
    static int next;
    char *b = bufs[next++ % 8];

    snprintf(b, 2048,
             "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\",\"uid\":\"uid-%s\",\"resourceVersion\":\"%s\","
             "\"labels\":{%s}%s,\"managedFields\":[{\"fieldsV1\":{\"f:metadata\":{"
             "\"f:labels\":{\".\":{}}}}}]},\"spec\":{\"containers\":[{\"name\":\"vllm\"}]},"
             "\"status\":{\"phase\":\"%s\"%s%s%s,\"conditions\":[{\"type\":"
             "\"PodScheduled\",\"status\":\"True\"},{\"type\":\"Ready\",\"status\":\"%s\"}]}}",
             name, name, rv, labels,
             deleting ? ",\"deletionTimestamp\":\"2025-01-01T00:00:00Z\"" : "", phase,
             ip ? ",\"podIP\":\"" : "", ip ? ip : "", ip ? "\"" : "", ready ? "True" : "False");
    return b;
}

static const char *event(const char *type, const char *obj)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ % 4];

    snprintf(b, 4096, "{\"type\":\"%s\",\"object\":%s}", type, obj);
    return b;
}

static int apply(struct k8s_table *t, const char *line, struct k8s_event *ev)
{
    char err[256] = "";
    int rc = k8s_event_apply(t, line, strlen(line), ev, err, sizeof err);
    if (rc != 0 && getenv("K8S_TEST_VERBOSE"))
        fprintf(stderr, "\n    event: %s\n", err);
    return rc;
}

static void test_list_parse(void)
{
    char body[8192], err[256] = "";
    struct k8s_table t;
    size_t skipped = 9;

    snprintf(body, sizeof body,
             "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":"
             "\"1234\"},\"items\":[%s,%s,{\"metadata\":{}},%s]}",
             pod("b", "10", "Running", "10.0.0.2", 1, 0, "\"app\":\"vllm\",\"model\":\"llama\""),
             pod("a", "11", "Pending", NULL, 0, 0, "\"app\":\"vllm\""),
             pod("c", "12", "Running", "10.0.0.3", 1, 1, ""));
    CU_ASSERT_EQUAL_FATAL(k8s_list_parse(K8S_POD, body, strlen(body), &t, &skipped, err,
                                         sizeof err), 0);
    CU_ASSERT_EQUAL(skipped, 1);
    CU_ASSERT_STRING_EQUAL(t.rv, "1234");
    CU_ASSERT_EQUAL_FATAL(t.n, 3);
    /* sorted by name */
    CU_ASSERT_STRING_EQUAL(t.objs[0].name, "a");
    CU_ASSERT_STRING_EQUAL(t.objs[2].name, "c");
    const struct k8s_obj *b = k8s_table_find(&t, "b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(b->phase, "Running");
    CU_ASSERT_STRING_EQUAL(b->pod_ip, "10.0.0.2");
    CU_ASSERT_STRING_EQUAL(b->uid, "uid-b");
    CU_ASSERT_STRING_EQUAL(b->rv, "10");
    CU_ASSERT_EQUAL(b->ready, 1);
    CU_ASSERT_EQUAL(b->deleting, 0);
    CU_ASSERT_STRING_EQUAL(k8s_obj_label(b, "model"), "llama");
    CU_ASSERT_PTR_NULL(k8s_obj_label(b, "nope"));
    CU_ASSERT_PTR_NULL(k8s_table_find(&t, "a")->pod_ip);
    CU_ASSERT_EQUAL(k8s_table_find(&t, "c")->deleting, 1);
    CU_ASSERT_PTR_NULL(k8s_table_find(&t, "zz"));
    k8s_table_free(&t);

    /* "items": null is an empty list (Go's nil slice) */
    const char *empty = "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":null}";
    CU_ASSERT_EQUAL(k8s_list_parse(K8S_POD, empty, strlen(empty), &t, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(t.n, 0);
    k8s_table_free(&t);

    static const char *const bad[] = {
        "", "[]", "{\"items\":[]}", "{\"metadata\":{\"resourceVersion\":\"\"},\"items\":[]}",
        "{\"metadata\":{\"resourceVersion\":\"1\"}}",
        "{\"metadata\":{\"resourceVersion\":1},\"items\":[]}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]} x",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(k8s_list_parse(K8S_POD, bad[i], strlen(bad[i]), &t, NULL, err,
                                       sizeof err), -1);
        CU_ASSERT_NOT_EQUAL(err[0], '\0');
        CU_ASSERT_EQUAL(t.n, 0);
        CU_ASSERT_PTR_NULL(t.rv);
    }
}

static void test_events(void)
{
    struct k8s_table t;
    struct k8s_event ev;

    k8s_table_init(&t, K8S_POD);
    CU_ASSERT_EQUAL(apply(&t, event("ADDED", pod("p1", "20", "Pending", NULL, 0, 0, "")), &ev), 0);
    CU_ASSERT_EQUAL(ev.type, K8S_EV_ADDED);
    CU_ASSERT_STRING_EQUAL(ev.name, "p1");
    CU_ASSERT_STRING_EQUAL(t.rv, "20");
    CU_ASSERT_EQUAL(apply(&t, event("ADDED", pod("p0", "21", "Running", "10.1.0.1", 1, 0, "")), &ev), 0);
    CU_ASSERT_EQUAL(t.n, 2);
    CU_ASSERT_EQUAL(apply(&t, event("MODIFIED", pod("p1", "22", "Running", "10.1.0.2", 1, 0,
                                                    "\"a\":\"b\"")), &ev), 0);
    CU_ASSERT_EQUAL(ev.type, K8S_EV_MODIFIED);
    CU_ASSERT_EQUAL(t.n, 2);
    CU_ASSERT_STRING_EQUAL(k8s_table_find(&t, "p1")->pod_ip, "10.1.0.2");
    CU_ASSERT_STRING_EQUAL(k8s_obj_label(k8s_table_find(&t, "p1"), "a"), "b");
    /* a bookmark moves the resourceVersion only */
    CU_ASSERT_EQUAL(apply(&t, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\""
                              ":\"v1\",\"metadata\":{\"resourceVersion\":\"30\"}}}", &ev), 0);
    CU_ASSERT_EQUAL(ev.type, K8S_EV_BOOKMARK);
    CU_ASSERT_STRING_EQUAL(t.rv, "30");
    CU_ASSERT_EQUAL(t.n, 2);
    CU_ASSERT_EQUAL(apply(&t, event("DELETED", pod("p0", "31", "Running", "10.1.0.1", 1, 1, "")), &ev), 0);
    CU_ASSERT_EQUAL(ev.type, K8S_EV_DELETED);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_PTR_NULL(k8s_table_find(&t, "p0"));
    CU_ASSERT_STRING_EQUAL(t.rv, "31");
    /* deleting what is not there changes nothing but the version */
    CU_ASSERT_EQUAL(apply(&t, event("DELETED", pod("zz", "32", "Running", NULL, 0, 0, "")), &ev), 0);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_STRING_EQUAL(t.rv, "32");
    /* an ERROR event: the Status's code and message; the table as it was */
    CU_ASSERT_EQUAL(apply(&t, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
                              "\"v1\",\"status\":\"Failure\",\"message\":\"too old resource "
                              "version: 5 (40)\",\"reason\":\"Expired\",\"code\":410}}", &ev), 0);
    CU_ASSERT_EQUAL(ev.type, K8S_EV_ERROR);
    CU_ASSERT_EQUAL(ev.code, 410);
    CU_ASSERT_PTR_NOT_NULL(strstr(ev.message, "too old resource version"));
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_STRING_EQUAL(t.rv, "32");

    static const char *const bad[] = {
        "", "{", "null", "[]", "{\"type\":\"ADDED\"}", "{\"type\":\"WHAT\",\"object\":{}}",
        "{\"object\":{}}", "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}",
        "{\"type\":\"ADDED\",\"object\":[]}",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        CU_ASSERT_EQUAL(k8s_event_apply(&t, bad[i], strlen(bad[i]), &ev, err, sizeof err), -1);
        CU_ASSERT_NOT_EQUAL(err[0], '\0');
    }
    CU_ASSERT_EQUAL(t.n, 1);
    k8s_table_free(&t);
}

static void test_pod_rule(void)
{
    struct k8s_selector sel;
    struct k8s_table t;
    struct k8s_event ev;
    const char *why = NULL;
    char err[256];

    CU_ASSERT_EQUAL_FATAL(k8s_selector_parse("environment=test,release=test", &sel, err,
                                             sizeof err), 0);
    k8s_table_init(&t, K8S_POD);
    static const struct {
        const char *phase, *ip;
        int ready, deleting;
        const char *labels, *why;
    } cases[] = {
        { "Running", "10.0.0.1", 1, 0, "\"environment\":\"test\",\"release\":\"test\"", NULL },
        { "Running", "10.0.0.1", 0, 0, "\"environment\":\"test\",\"release\":\"test\"", "not Ready" },
        { "Pending", NULL, 0, 0, "\"environment\":\"test\",\"release\":\"test\"", "not Running" },
        { "Running", NULL, 1, 0, "\"environment\":\"test\",\"release\":\"test\"", "no pod IP" },
        { "Failed", "10.0.0.1", 0, 0, "\"environment\":\"test\",\"release\":\"test\"", "not Running" },
        { "Running", "10.0.0.1", 1, 1, "\"environment\":\"test\",\"release\":\"test\"", "terminating" },
        { "Running", "10.0.0.1", 1, 0, "\"environment\":\"test\",\"release\":\"old\"", "labels" },
        { "Succeeded", "10.0.0.1", 1, 0, "\"environment\":\"test\",\"release\":\"test\"", "not Running" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(apply(&t, event("MODIFIED", pod("p", "1", cases[i].phase, cases[i].ip,
                                                              cases[i].ready, cases[i].deleting,
                                                              cases[i].labels)), &ev), 0);
        const struct k8s_obj *o = k8s_table_find(&t, "p");
        int serving = k8s_pod_serving(o, &sel, &why);
        CU_ASSERT_EQUAL(serving, cases[i].why == NULL);
        if (cases[i].why == NULL) {
            CU_ASSERT_PTR_NULL(why);
        } else {
            CU_ASSERT_TRUE(why != NULL && strstr(why, cases[i].why) != NULL);
        }
    }
    /* podIPs when podIP is absent */
    const char *dual = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"d\"},\"status\":"
                       "{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"fd00::5\"}],\"conditions\":"
                       "[{\"type\":\"Ready\",\"status\":\"True\"}]}}}";
    CU_ASSERT_EQUAL(apply(&t, dual, &ev), 0);
    CU_ASSERT_STRING_EQUAL(k8s_table_find(&t, "d")->pod_ip, "fd00::5");
    CU_ASSERT_EQUAL(k8s_pod_serving(k8s_table_find(&t, "d"), &(struct k8s_selector){ 0 }, NULL), 1);
    k8s_table_free(&t);
    k8s_selector_free(&sel);
}

static void test_service_rule(void)
{
    struct k8s_table svcs, slices;
    struct k8s_selector sel;
    struct k8s_event ev;
    const char *why;
    char err[256];

    CU_ASSERT_EQUAL_FATAL(k8s_selector_parse("app=vllm", &sel, err, sizeof err), 0);
    k8s_table_init(&svcs, K8S_SERVICE);
    k8s_table_init(&slices, K8S_ENDPOINTSLICE);
    CU_ASSERT_EQUAL(apply(&svcs, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"llama\","
                                 "\"labels\":{\"app\":\"vllm\"}}}}", &ev), 0);
    const struct k8s_obj *svc = k8s_table_find(&svcs, "llama");
    CU_ASSERT_EQUAL(k8s_service_serving(svc, &sel, &slices, &why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no ready endpoint"));
    /* a slice with a not-ready endpoint, and one of another service */
    CU_ASSERT_EQUAL(apply(&slices, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"llama-x\","
                                   "\"labels\":{\"kubernetes.io/service-name\":\"llama\"}},"
                                   "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":"
                                   "{\"ready\":false}}]}}", &ev), 0);
    CU_ASSERT_EQUAL(apply(&slices, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"other-y\","
                                   "\"labels\":{\"kubernetes.io/service-name\":\"other\"}},"
                                   "\"endpoints\":[{\"addresses\":[\"10.0.0.9\"]}]}}", &ev), 0);
    CU_ASSERT_EQUAL(k8s_service_serving(svc, &sel, &slices, NULL), 0);
    /* an absent ready condition counts as ready, as the API says */
    CU_ASSERT_EQUAL(apply(&slices, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"llama-z\","
                                   "\"labels\":{\"kubernetes.io/service-name\":\"llama\"}},"
                                   "\"endpoints\":[{\"addresses\":[]},{\"addresses\":[\"10.0.0.2\"],"
                                   "\"conditions\":{}}]}}", &ev), 0);
    CU_ASSERT_EQUAL(k8s_table_find(&slices, "llama-z")->ready_endpoints, 1);
    CU_ASSERT_STRING_EQUAL(k8s_table_find(&slices, "llama-z")->service, "llama");
    CU_ASSERT_EQUAL(k8s_service_serving(svc, &sel, &slices, &why), 1);
    CU_ASSERT_EQUAL(apply(&slices, "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":"
                                   "\"llama-z\"}}}", &ev), 0);
    CU_ASSERT_EQUAL(k8s_service_serving(svc, &sel, &slices, NULL), 0);
    /* relabelled out */
    CU_ASSERT_EQUAL(apply(&slices, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"llama-z\","
                                   "\"labels\":{\"kubernetes.io/service-name\":\"llama\"}},"
                                   "\"endpoints\":[{\"addresses\":[\"10.0.0.2\"],"
                                   "\"conditions\":{\"ready\":true}}]}}", &ev), 0);
    CU_ASSERT_EQUAL(apply(&svcs, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"llama\","
                                 "\"labels\":{\"app\":\"other\"}}}}", &ev), 0);
    CU_ASSERT_EQUAL(k8s_service_serving(k8s_table_find(&svcs, "llama"), &sel, &slices, &why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "labels"));
    k8s_table_free(&svcs);
    k8s_table_free(&slices);
    k8s_selector_free(&sel);
}

static void test_status_message(void)
{
    char out[64];
    const char *st = "{\"kind\":\"Status\",\"message\":\"pods is forbidden\",\"code\":403}";

    k8s_status_message(st, strlen(st), out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "pods is forbidden");
    k8s_status_message("bad\ngateway", 11, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "bad gateway");
    k8s_status_message(NULL, 0, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "(empty)");
}

/* ---- /v1/models ---- */

static void test_models(void)
{
    struct k8s_models m, m2;
    char err[256] = "";
    const char *vllm =
        "{\"object\":\"list\",\"data\":[{\"id\":\"meta-llama/Llama-3.1-8B\",\"object\":\"model\","
        "\"owned_by\":\"vllm\",\"root\":\"/models/llama\",\"parent\":null,\"max_model_len\":8192,"
        "\"permission\":[{\"id\":\"modelperm-1\",\"allow_sampling\":true}]},{\"id\":\"sql-lora\","
        "\"object\":\"model\",\"root\":\"/adapters/sql\",\"parent\":\"meta-llama/Llama-3.1-8B\"}]}";

    CU_ASSERT_EQUAL_FATAL(k8s_models_parse(vllm, strlen(vllm), &m, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(m.n, 2);
    CU_ASSERT_STRING_EQUAL(m.ids[0], "meta-llama/Llama-3.1-8B");
    CU_ASSERT_PTR_NULL(m.parents[0]);
    CU_ASSERT_STRING_EQUAL(m.ids[1], "sql-lora");
    CU_ASSERT_STRING_EQUAL(m.parents[1], "meta-llama/Llama-3.1-8B");
    CU_ASSERT_EQUAL(m.skipped, 0);

    /* odd entries are skipped, not fatal */
    const char *odd = "{\"data\":[{\"id\":\"a\"},{\"id\":\"\"},{\"id\":\"a\"},{\"id\":7},\"x\","
                      "{\"nope\":1},{\"id\":\"bad\\nname\"},{\"id\":\"nul\\u0000x\"},{\"id\":\"b\"}]}";
    CU_ASSERT_EQUAL_FATAL(k8s_models_parse(odd, strlen(odd), &m2, err, sizeof err), 0);
    CU_ASSERT_EQUAL(m2.n, 2);
    CU_ASSERT_STRING_EQUAL(m2.ids[1], "b");
    CU_ASSERT_EQUAL(m2.skipped, 7);
    CU_ASSERT_FALSE(k8s_models_equal(&m, &m2));
    CU_ASSERT_TRUE(k8s_models_equal(&m, &m));
    k8s_models_free(&m);
    k8s_models_free(&m2);

    static const char *const bad[] = {
        "", "{}", "[]", "{\"data\":{}}", "{\"data\":[]}", "{\"data\":[{\"id\":\"\"}]}",
        "{\"data\":[{\"id\":\"a\"}", "<html>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(k8s_models_parse(bad[i], strlen(bad[i]), &m, err, sizeof err), -1);
        CU_ASSERT_NOT_EQUAL(err[0], '\0');
        CU_ASSERT_EQUAL(m.n, 0);
    }
    CU_ASSERT_TRUE(k8s_model_name_ok("a", 1));
    CU_ASSERT_FALSE(k8s_model_name_ok("a\x7f", 2));
}

/* ---- the kubeconfig ---- */

static void test_base64(void)
{
    size_t n;
    char *s = k8s_base64_decode("aGVsbG8gd29ybGQ=", 16, &n);
    CU_ASSERT_TRUE(s != NULL && n == 11 && strcmp(s, "hello world") == 0);
    free(s);
    s = k8s_base64_decode("aGVs\nbG8g\r\nd29y bGQ", 19, &n); /* unpadded, wrapped */
    CU_ASSERT_TRUE(s != NULL && n == 11 && strcmp(s, "hello world") == 0);
    free(s);
    s = k8s_base64_decode("", 0, &n);
    CU_ASSERT_TRUE(s != NULL && n == 0);
    free(s);
    static const char *const bad[] = { "a", "ab=c", "a===", "ab*d", "abc==", "=abc", "abcde" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_PTR_NULL(k8s_base64_decode(bad[i], strlen(bad[i]), &n));
}

#define PEM_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

static int kc(const char *text, const char *context, struct k8s_kubeconfig *out, char *err)
{
    return k8s_kubeconfig_parse(text, strlen(text), "/home/u/.kube", context, out, err, 512);
}

static void test_kubeconfig_forms(void)
{
    struct k8s_kubeconfig k;
    char err[512] = "";
    const char *text =
        "apiVersion: v1\n"
        "kind: Config\n"
        "preferences: {}\n"
        "current-context: prod\n"
        "clusters:\n"
        "- name: dev\n"
        "  cluster: {server: 'http://127.0.0.1:8080', insecure-skip-tls-verify: true}\n"
        "- name: prod-cluster\n"
        "  cluster:\n"
        "    server: https://10.0.0.1:6443/\n"
        "    certificate-authority-data: " PEM_B64 "\n"
        "    certificate-authority: ignored.crt\n"
        "contexts:\n"
        "- name: dev\n"
        "  context: {cluster: dev, user: dev-user, namespace: sandbox}\n"
        "- name: prod\n"
        "  context:\n"
        "    cluster: prod-cluster\n"
        "    user: admin\n"
        "    namespace: inference\n"
        "users:\n"
        "- name: admin\n"
        "  user:\n"
        "    client-certificate-data: " PEM_B64 "\n"
        "    client-key: keys/admin.key\n"
        "    token: abc.def\n"
        "- name: dev-user\n"
        "  user:\n"
        "    tokenFile: /var/run/token\n";

    CU_ASSERT_EQUAL_FATAL(kc(text, NULL, &k, err), 0);
    CU_ASSERT_STRING_EQUAL(k.context, "prod");
    CU_ASSERT_STRING_EQUAL(k.server, "https://10.0.0.1:6443");
    CU_ASSERT_STRING_EQUAL(k.namespace_, "inference");
    CU_ASSERT_STRING_EQUAL(k.ca_pem, PEM);
    CU_ASSERT_PTR_NULL(k.ca_file); /* -data wins */
    CU_ASSERT_EQUAL(k.insecure, 0);
    CU_ASSERT_STRING_EQUAL(k.cert_pem, PEM);
    CU_ASSERT_STRING_EQUAL(k.key_file, "/home/u/.kube/keys/admin.key");
    CU_ASSERT_STRING_EQUAL(k.token, "abc.def");
    CU_ASSERT_PTR_NULL(k.token_file);
    k8s_kubeconfig_free(&k);

    CU_ASSERT_EQUAL_FATAL(kc(text, "dev", &k, err), 0);
    CU_ASSERT_STRING_EQUAL(k.server, "http://127.0.0.1:8080");
    CU_ASSERT_EQUAL(k.insecure, 1);
    CU_ASSERT_STRING_EQUAL(k.namespace_, "sandbox");
    CU_ASSERT_STRING_EQUAL(k.token_file, "/var/run/token");
    CU_ASSERT_PTR_NULL(k.token);
    CU_ASSERT_PTR_NULL(k.ca_pem);
    k8s_kubeconfig_free(&k);

    /* kind's kubeconfig, in JSON (which is YAML too), no user */
    const char *json = "{\"current-context\":\"c\",\"contexts\":[{\"name\":\"c\",\"context\":"
                       "{\"cluster\":\"k\"}}],\"clusters\":[{\"name\":\"k\",\"cluster\":{\"server\":"
                       "\"https://127.0.0.1:1\",\"certificate-authority\":\"ca.crt\"}}]}";
    CU_ASSERT_EQUAL_FATAL(kc(json, NULL, &k, err), 0);
    CU_ASSERT_STRING_EQUAL(k.ca_file, "/home/u/.kube/ca.crt");
    CU_ASSERT_PTR_NULL(k.namespace_);
    CU_ASSERT_PTR_NULL(k.token);
    CU_ASSERT_PTR_NULL(k.cert_file);
    k8s_kubeconfig_free(&k);
}

static void test_kubeconfig_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "", "empty" },
        { "- a\n- b\n", "is a map" },
        { "clusters: []\n", "no current-context" },
        { "current-context: x\n", "no context 'x'" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n", "cluster 'c'" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
          "clusters: [{name: c, cluster: {server: https://h}}]\n", "user 'u'" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
          "clusters: [{name: c, cluster: {server: ftp://h}}]\n", "'server' must be" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
          "clusters: [{name: c, cluster: {}}]\n", "'server' must be" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
          "clusters: [{name: c, cluster: {server: https://h}}]\n"
          "users: [{name: u, user: {exec: {command: aws}}}]\n", "exec credential" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
          "clusters: [{name: c, cluster: {server: https://h}}]\n"
          "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n", "auth-provider" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
          "clusters: [{name: c, cluster: {server: https://h}}]\n"
          "users: [{name: u, user: {username: a, password: b}}]\n", "basic authentication" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
          "clusters: [{name: c, cluster: {server: https://h}}]\n"
          "users: [{name: u, user: {client-certificate: a.crt}}]\n", "needs its key" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
          "clusters: [{name: c, cluster: {server: https://h}}]\n"
          "users: [{name: u, user: {client-key-data: '!!!'}}]\n", "not base64" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
          "clusters: [{name: c, cluster: {server: https://h, insecure-skip-tls-verify: maybe}}]\n",
          "insecure-skip-tls-verify" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
          "clusters: [{name: c, cluster: {server: https://h, insecure-skip-tls-verify: true, "
          "certificate-authority: a}}]\n", "choose one" },
        { "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
          "clusters: [{name: c, cluster: {server: https://h, tls-server-name: k}}]\n",
          "tls-server-name" },
        { "current-context: &a x\ncontexts: [{name: *a, context: {cluster: c}}]\n", "aliases" },
        { "current-context: [x]\n", "must be text" },
        { "current-context: x\ncontexts: {x: 1}\n", "must be a list" },
        { "a: [\n", "line" },
        { "current-context: \"a\\0b\"\n", "NUL" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct k8s_kubeconfig k;
        char err[512] = "";
        int rc = kc(cases[i].text, NULL, &k, err);
        CU_ASSERT_EQUAL(rc, -1);
        if (rc != -1 || strstr(err, cases[i].want) == NULL)
            fprintf(stderr, "\n    kubeconfig case %zu: '%s' lacks '%s'\n", i, err, cases[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
        CU_ASSERT_PTR_NULL(k.server);
    }
}

/* ---- the plugin against a scripted host ---- */

/* Its config: "key=value" strings, NULL-terminated. */
struct fake_cfg {
    const char *kv[24];
};

static const char *cfg_value(const sy_config *c, const char *key)
{
    const struct fake_cfg *f = (const struct fake_cfg *)c;
    size_t n = strlen(key);

    for (size_t i = 0; f->kv[i]; i++)
        if (strncmp(f->kv[i], key, n) == 0 && f->kv[i][n] == '=')
            return f->kv[i] + n + 1;
    return NULL;
}

static int f_string(const sy_config *c, const char *key, const char **out)
{
    const char *v = cfg_value(c, key);
    if (v == NULL)
        return SY_DECLINED;
    *out = v;
    return SY_OK;
}

static int f_int(const sy_config *c, const char *key, long long *out)
{
    const char *v = cfg_value(c, key);
    char *end;
    if (v == NULL)
        return SY_DECLINED;
    *out = strtoll(v, &end, 10);
    return *v && !*end ? SY_OK : SY_ERROR;
}

static int f_seconds(const sy_config *c, const char *key, double *out)
{
    const char *v = cfg_value(c, key);
    char *end;
    if (v == NULL)
        return SY_DECLINED;
    *out = strtod(v, &end);
    if (end == v)
        return SY_ERROR;
    if (strcmp(end, "ms") == 0)
        *out /= 1000;
    else if (strcmp(end, "m") == 0)
        *out *= 60;
    else if (*end && strcmp(end, "s") != 0)
        return SY_ERROR;
    return SY_OK;
}

static int f_check_keys(const sy_config *c, const char *const *known, char *err, size_t errlen)
{
    const struct fake_cfg *f = (const struct fake_cfg *)c;
    for (size_t i = 0; f->kv[i]; i++) {
        int ok = 0;
        for (size_t j = 0; known[j] && !ok; j++)
            ok = strncmp(f->kv[i], known[j], strlen(known[j])) == 0 &&
                 f->kv[i][strlen(known[j])] == '=';
        if (!ok) {
            snprintf(err, errlen, "test.yaml:1: %s: unknown key", f->kv[i]);
            return SY_ERROR;
        }
    }
    return SY_OK;
}

static void f_where(const sy_config *c, const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "test.yaml:1");
}

/* The clock, timers and streams, driven by the tests. */
struct ftimer {
    double due;
    sy_timer_cb cb;
    void *arg;
    int live;
    struct ftimer *next;
};

struct fstream {
    char url[1024];
    char headers[2048]; /* "Name: value\n" each */
    double idle, connect;
    double created; /* the clock when it started */
    int insecure;
    char ca_file[512];
    int ca_pem;
    char cert_file[512], key_file[512];
    char cert_pem[256], key_pem[256]; /* their first bytes */
    sy_stream_head_cb head;
    sy_stream_data_cb data;
    sy_stream_end_cb end;
    void *arg;
    int live;
    struct fstream *next;
};

static struct {
    double now;
    struct ftimer *timers;
    struct fstream *streams;
    int in_callback;       /* inside a stream's callback */
    int bad_calls;         /* a stream started or cancelled from one */
    char log[1 << 16];
    int npublish;
    char published[8192];
    int publish_rc;
    struct {
        char name[48];
        double value;
    } numbers[16]; /* counters and gauges, by name */
} H;

static void f_log(const struct sy_host_api *h, int level, const char *fmt, ...)
{
    static const char *const names[] = { "debug", "info", "warning", "error" };
    size_t o = strlen(H.log);
    va_list ap;

    if (o + 600 > sizeof H.log) /* keep the last lines */
        H.log[o = 0] = '\0';
    o += (size_t)snprintf(H.log + o, sizeof H.log - o, "%s: ", names[level & 3]);
    va_start(ap, fmt);
    vsnprintf(H.log + o, sizeof H.log - o, fmt, ap);
    va_end(ap);
    if (getenv("K8S_TEST_VERBOSE"))
        fprintf(stderr, "\n    [%.3f] %s", H.now, H.log + o - strlen(names[level & 3]) - 2);
    strncat(H.log, "\n", sizeof H.log - strlen(H.log) - 1);
}

static double f_now(void)
{
    return H.now;
}

static sy_timer *f_timer_add(const struct sy_host_api *h, double seconds, sy_timer_cb cb,
                             void *arg)
{
    struct ftimer *t = calloc(1, sizeof *t);
    t->due = H.now + (seconds > 0 ? seconds : 0);
    t->cb = cb;
    t->arg = arg;
    t->live = 1;
    t->next = H.timers;
    H.timers = t;
    return (sy_timer *)t;
}

static void f_timer_cancel(sy_timer *st)
{
    struct ftimer *t = (struct ftimer *)st;
    CU_ASSERT_TRUE(t->live); /* a fired or cancelled timer is gone in the real host */
    t->live = 0;
}

static sy_stream *f_stream(const struct sy_host_api *h, const char *url,
                           const struct sy_http_options *o, sy_stream_head_cb head,
                           sy_stream_data_cb data, sy_stream_end_cb end, void *arg)
{
    struct fstream *s = calloc(1, sizeof *s);

    if (H.in_callback)
        H.bad_calls++;
    snprintf(s->url, sizeof s->url, "%s", url);
    for (size_t i = 0; o && o->headers && o->headers[i]; i++) {
        size_t n = strlen(s->headers);
        snprintf(s->headers + n, sizeof s->headers - n, "%s\n", o->headers[i]);
    }
    if (o != NULL) {
        s->idle = o->idle_timeout;
        s->connect = o->connect_timeout;
        s->insecure = o->insecure;
        snprintf(s->ca_file, sizeof s->ca_file, "%s", o->ca_file ? o->ca_file : "");
        s->ca_pem = o->ca_pem != NULL;
        snprintf(s->cert_file, sizeof s->cert_file, "%s", o->cert_file ? o->cert_file : "");
        snprintf(s->key_file, sizeof s->key_file, "%s", o->key_file ? o->key_file : "");
        snprintf(s->cert_pem, sizeof s->cert_pem, "%s", o->cert_pem ? o->cert_pem : "");
        snprintf(s->key_pem, sizeof s->key_pem, "%s", o->key_pem ? o->key_pem : "");
    }
    s->created = H.now;
    s->head = head;
    s->data = data;
    s->end = end;
    s->arg = arg;
    s->live = 1;
    s->next = H.streams;
    H.streams = s;
    return (sy_stream *)s;
}

static void f_stream_cancel(sy_stream *ss)
{
    struct fstream *s = (struct fstream *)ss;
    if (H.in_callback)
        H.bad_calls++;
    CU_ASSERT_TRUE(s->live);
    s->live = 0;
}

static int f_publish(const struct sy_host_api *h, const struct sy_discovered *set, size_t n)
{
    size_t o = 0;

    if (H.in_callback)
        H.bad_calls++; /* allowed by the SDK, but this plugin publishes from timers */
    if (H.publish_rc != SY_OK)
        return H.publish_rc;
    H.npublish++;
    H.published[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(set[i].size, sizeof set[i]);
        CU_ASSERT_EQUAL(set[i].ready, 1);
        o += (size_t)snprintf(H.published + o, sizeof H.published - o, "%s [", set[i].url);
        for (size_t j = 0; j < set[i].nmodels; j++)
            o += (size_t)snprintf(H.published + o, sizeof H.published - o, "%s%s", j ? "," : "",
                                  set[i].models[j]);
        o += (size_t)snprintf(H.published + o, sizeof H.published - o, "] {");
        for (size_t j = 0; j < set[i].nlabels; j++)
            o += (size_t)snprintf(H.published + o, sizeof H.published - o, "%s%s", j ? "," : "",
                                  set[i].labels[j]);
        o += (size_t)snprintf(H.published + o, sizeof H.published - o, "}\n");
    }
    return SY_OK;
}

static double *number(const char *name)
{
    for (size_t i = 0; i < 16; i++)
        if (H.numbers[i].name[0] == '\0' || strcmp(H.numbers[i].name, name) == 0) {
            snprintf(H.numbers[i].name, sizeof H.numbers[i].name, "%s", name);
            return &H.numbers[i].value;
        }
    CU_FAIL("more than 16 counters and gauges");
    static double spare;
    return &spare;
}

static void f_counter_add(const struct sy_host_api *h, const char *name, double delta)
{
    CU_ASSERT(strlen(name) <= 47 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") ==
                                        strlen(name));
    *number(name) += delta;
}

static void f_gauge_set(const struct sy_host_api *h, const char *name, double value)
{
    CU_ASSERT(strlen(name) <= 47 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") ==
                                        strlen(name));
    *number(name) = value;
}

/* A counter's or gauge's value, 0 when never set. */
static double metric(const char *name)
{
    for (size_t i = 0; i < 16; i++)
        if (strcmp(H.numbers[i].name, name) == 0)
            return H.numbers[i].value;
    return 0;
}

static struct sy_host_api host = {
    .size = sizeof(struct sy_host_api),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .log = f_log,
    .config_string = f_string,
    .config_int = f_int,
    .config_seconds = f_seconds,
    .config_where = f_where,
    .config_check_keys = f_check_keys,
    .now = f_now,
    .timer_add = f_timer_add,
    .timer_cancel = f_timer_cancel,
    .discovery_publish = f_publish,
    .http_stream = f_stream,
    .http_stream_cancel = f_stream_cancel,
    .counter_add = f_counter_add,
    .gauge_set = f_gauge_set,
};

static void host_reset(void)
{
    while (H.timers) {
        struct ftimer *t = H.timers;
        H.timers = t->next;
        free(t);
    }
    while (H.streams) {
        struct fstream *s = H.streams;
        H.streams = s->next;
        free(s);
    }
    memset(&H, 0, sizeof H);
    H.now = 1000;
}

/* Fire the timers due until `until` (the clock moves to each one). */
static void run_until(double until)
{
    for (int guard = 0; guard < 100000; guard++) {
        struct ftimer *next = NULL;
        for (struct ftimer *t = H.timers; t; t = t->next)
            if (t->live && t->due <= until && (next == NULL || t->due < next->due))
                next = t;
        if (next == NULL)
            break;
        if (next->due > H.now)
            H.now = next->due;
        next->live = 0;
        next->cb(next->arg);
    }
    if (until > H.now)
        H.now = until;
}

static void run_now(void)
{
    run_until(H.now);
}

/* The open stream whose URL holds `needle` (the newest), or NULL. */
static struct fstream *stream(const char *needle)
{
    for (struct fstream *s = H.streams; s; s = s->next)
        if (s->live && strstr(s->url, needle) != NULL)
            return s;
    return NULL;
}

static int nstreams(const char *needle)
{
    int n = 0;
    for (struct fstream *s = H.streams; s; s = s->next)
        n += s->live && strstr(s->url, needle) != NULL;
    return n;
}

static void s_head(struct fstream *s, int status)
{
    H.in_callback = 1;
    s->head(s->arg, status);
    H.in_callback = 0;
}

/* Body bytes in pieces of `piece` (0: at once); non-zero when the plugin
 * stopped the stream. */
static int s_data(struct fstream *s, const char *body, size_t len, size_t piece)
{
    int rc = 0;

    H.in_callback = 1;
    for (size_t o = 0; o < len && rc == 0; o += piece ? piece : len)
        rc = s->data(s->arg, body + o, piece && len - o > piece ? piece : len - o);
    H.in_callback = 0;
    if (rc != 0)
        s->live = 0;
    return rc;
}

static void s_end(struct fstream *s, int status, const char *error)
{
    s->live = 0;
    H.in_callback = 1;
    s->end(s->arg, status, error);
    H.in_callback = 0;
}

static void answer(struct fstream *s, int status, const char *body)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    s_head(s, status);
    if (s_data(s, body, strlen(body), 7) == 0)
        s_end(s, status, NULL);
}

static int log_has(const char *a)
{
    return strstr(H.log, a) != NULL;
}

static const char *pod_list(const char *rv, const char *items)
{
    static char b[16384];
    snprintf(b, sizeof b, "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":"
                          "{\"resourceVersion\":\"%s\"},\"items\":[%s]}", rv, items);
    return b;
}

static const char *models_json(const char *ids)
{
    static char b[4096];
    char copy[1024], *save = NULL;
    size_t o = 0;

    snprintf(copy, sizeof copy, "%s", ids);
    o += (size_t)snprintf(b, sizeof b, "{\"object\":\"list\",\"data\":[");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *parent = strchr(t, '<');
        if (parent)
            *parent++ = '\0';
        o += (size_t)snprintf(b + o, sizeof b - o, "%s{\"id\":\"%s\",\"object\":\"model\","
                              "\"parent\":%s%s%s}", o > 26 ? "," : "", t, parent ? "\"" : "",
                              parent ? parent : "null", parent ? "\"" : "");
    }
    snprintf(b + o, sizeof b - o, "]}");
    return b;
}

static char tmpdir[64];

static const char *tmpfile_with(const char *name, const char *text)
{
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    FILE *f;

    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/sy-k8s-unit-XXXXXX");
        if (mkdtemp(tmpdir) == NULL)
            return NULL;
    }
    snprintf(p, 256, "%s/%s", tmpdir, name);
    f = fopen(p, "w");
    if (f == NULL)
        return NULL;
    fputs(text, f);
    fclose(f);
    return p;
}

static void *plugin_handle;

static const struct sy_plugin *k8s_plugin(void)
{
    if (plugin_handle == NULL)
        plugin_handle = dlopen(BUILT_PLUGIN_DIR "/k8s.so", RTLD_NOW | RTLD_LOCAL);
    if (plugin_handle == NULL) {
        fprintf(stderr, "\n    %s\n", dlerror());
        return NULL;
    }
    return dlsym(plugin_handle, "sy_plugin_v1");
}

/* A kubeconfig for http://api.test with a token, and an instance of the
 * plugin with these settings (kubeconfig= added) started. */
static void *start_plugin(const char *const *settings, const char *user_yaml)
{
    const struct sy_plugin *p = k8s_plugin();
    struct fake_cfg cfg = { { NULL } };
    char kv[64], text[1024], err[512] = "";
    const char *path;
    void *inst = NULL;
    size_t n = 0;

    host_reset();
    unsetenv("KUBERNETES_SERVICE_HOST");
    snprintf(text, sizeof text,
             "apiVersion: v1\ncurrent-context: t\ncontexts:\n- name: t\n  context: {cluster: c, "
             "user: u}\nclusters:\n- name: c\n  cluster: {server: 'http://api.test'}\n"
             "users:\n- name: u\n  user: %s\n", user_yaml ? user_yaml : "{token: tok-1}");
    path = tmpfile_with("kubeconfig", text);
    if (p == NULL || path == NULL)
        return NULL;
    snprintf(kv, sizeof kv, "kubeconfig=%s", path);
    cfg.kv[n++] = kv;
    for (size_t i = 0; settings && settings[i] && n < 23; i++)
        cfg.kv[n++] = settings[i];
    if (p->create(&host, (const sy_config *)&cfg, &inst, err, sizeof err) != SY_OK) {
        fprintf(stderr, "\n    create: %s\n", err);
        return NULL;
    }
    CU_ASSERT_EQUAL(p->start(inst), SY_OK);
    return inst;
}

static void stop_plugin(void *inst)
{
    /* the host cancels every timer and stream before destroy() */
    for (struct ftimer *t = H.timers; t; t = t->next)
        t->live = 0;
    for (struct fstream *s = H.streams; s; s = s->next)
        s->live = 0;
    if (inst != NULL)
        k8s_plugin()->destroy(inst);
    CU_ASSERT_EQUAL(H.bad_calls, 0);
    host_reset();
}

#define LIST_URL "http://api.test/api/v1/namespaces/default/pods?labelSelector=app%3Dvllm"
#define RUNNING(name, ip, rv, extra) \
    pod(name, rv, "Running", ip, 1, 0, "\"app\":\"vllm\",\"model\":\"llama\"" extra)

/* LIST, WATCH, events in pieces, models, and what is published. */
static void test_plugin_pods(void)
{
    static const char *const settings[] = { "label_selector=app=vllm", "watcher_timeout_seconds=60",
                                            NULL };
    void *inst = start_plugin(settings, NULL);
    struct fstream *s, *w, *m;
    char ev[8192];

    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    /* the LIST, with the selector and the token */
    s = stream("/pods");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s->url, LIST_URL);
    CU_ASSERT_PTR_NOT_NULL(strstr(s->headers, "Authorization: Bearer tok-1\n"));
    char items[4096];
    snprintf(items, sizeof items, "%s,%s", RUNNING("p1", "10.0.0.1", "7", ""),
             pod("p2", "8", "Pending", NULL, 0, 0, "\"app\":\"vllm\""));
    answer(s, 200, pod_list("100", items));
    run_now();
    /* the WATCH from the list's version, and p1's models asked */
    w = stream("watch=1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_STRING_EQUAL(w->url, "http://api.test/api/v1/namespaces/default/pods?watch=1&"
                                   "resourceVersion=100&allowWatchBookmarks=true&"
                                   "timeoutSeconds=60&labelSelector=app%3Dvllm");
    CU_ASSERT_DOUBLE_EQUAL(w->idle, 65, 0.001);
    m = stream("http://10.0.0.1:8000/v1/models");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NULL(strstr(m->headers, "Authorization")); /* no VLLM_API_KEY */
    CU_ASSERT_EQUAL(H.npublish, 0); /* not before p1's models are known */
    answer(m, 200, models_json("llama,sql-lora<llama"));
    run_now();
    CU_ASSERT_EQUAL(H.npublish, 1);
    CU_ASSERT_STRING_EQUAL(H.published,
                           "http://10.0.0.1:8000 [llama,sql-lora] {app=vllm,model=llama}\n");

    /* p2 becomes ready: the event comes in pieces of 5 bytes */
    s_head(w, 200);
    snprintf(ev, sizeof ev, "%s\n", event("MODIFIED", RUNNING("p2", "10.0.0.2", "101", "")));
    CU_ASSERT_EQUAL(s_data(w, ev, strlen(ev), 5), 0);
    run_now();
    m = stream("http://10.0.0.2:8000/v1/models");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(H.npublish, 1);
    answer(m, 200, models_json("llama"));
    run_now();
    CU_ASSERT_EQUAL(H.npublish, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(H.published, "http://10.0.0.2:8000 [llama]"));

    /* each way out: not Ready, deletionTimestamp, evicted, relabelled, deleted */
    static const struct {
        const char *obj_fmt, *type, *log;
    } outs[] = {
        { "not-ready", "MODIFIED", "not Ready" },
        { "deleting", "MODIFIED", "terminating" },
        { "evicted", "MODIFIED", "no pod IP" },
        { "relabelled", "MODIFIED", "labels no longer match" },
        { "deleted", "DELETED", ": gone from the API" },
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        const char *obj;
        char rv[16];
        snprintf(rv, sizeof rv, "%zu", 110 + i * 3);
        /* p2 back in first */
        snprintf(ev, sizeof ev, "%s\n", event("MODIFIED", RUNNING("p2", "10.0.0.2", "109", "")));
        CU_ASSERT_EQUAL(s_data(w, ev, strlen(ev), 0), 0);
        run_now();
        if ((m = stream("http://10.0.0.2:8000/v1/models")) != NULL)
            answer(m, 200, models_json("llama"));
        run_now();
        CU_ASSERT_PTR_NOT_NULL(strstr(H.published, "http://10.0.0.2:8000"));
        int before = H.npublish;
        switch (i) {
        case 0: obj = pod("p2", rv, "Running", "10.0.0.2", 0, 0, "\"app\":\"vllm\""); break;
        case 1: obj = pod("p2", rv, "Running", "10.0.0.2", 1, 1, "\"app\":\"vllm\""); break;
        case 2: obj = pod("p2", rv, "Running", NULL, 1, 0, "\"app\":\"vllm\""); break;
        case 3: obj = pod("p2", rv, "Running", "10.0.0.2", 1, 0, "\"app\":\"other\""); break;
        default: obj = RUNNING("p2", "10.0.0.2", rv, ""); break;
        }
        snprintf(ev, sizeof ev, "%s\n", event(outs[i].type, obj));
        CU_ASSERT_EQUAL(s_data(w, ev, strlen(ev), 0), 0);
        run_now();
        CU_ASSERT_EQUAL(H.npublish, before + 1);
        CU_ASSERT_PTR_NULL(strstr(H.published, "10.0.0.2"));
        CU_ASSERT_PTR_NOT_NULL(strstr(H.published, "10.0.0.1"));
        if (!log_has(outs[i].log))
            fprintf(stderr, "\n    no log line with '%s'\n", outs[i].log);
        CU_ASSERT_TRUE(log_has(outs[i].log));
    }
    /* a bookmark changes nothing a router sees */
    int before = H.npublish;
    const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","
                     "\"metadata\":{\"resourceVersion\":\"200\"}}}\n";
    CU_ASSERT_EQUAL(s_data(w, bm, strlen(bm), 0), 0);
    run_now();
    CU_ASSERT_EQUAL(H.npublish, before);

    /* the watch ends (its timeout): LIST again at once, and the list wins:
     * p1 is gone (deleted while nobody watched), p3 came */
    run_until(H.now + 2);
    s_end(w, 200, NULL);
    run_now();
    s = stream("/pods?labelSelector");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(log_has("listing again"));
    answer(s, 200, pod_list("300", RUNNING("p3", "10.0.0.3", "250", "")));
    run_now();
    CU_ASSERT_PTR_NOT_NULL(stream("resourceVersion=300&"));
    m = stream("http://10.0.0.3:8000/v1/models");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    answer(m, 200, models_json("llama"));
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published, "http://10.0.0.3:8000 [llama] {app=vllm,model=llama}\n");
    CU_ASSERT_EQUAL(metric("lists"), 2);
    CU_ASSERT_EQUAL(metric("watch_restarts"), 1);
    CU_ASSERT_EQUAL(metric("api_errors"), 0);
    CU_ASSERT_EQUAL(metric("pods"), 1);
    CU_ASSERT_EQUAL(metric("backends"), 1);
    stop_plugin(inst);
}

/* Bring a started plugin to: listed (p1 serving, models known), watching. */
static struct fstream *to_watching(const char *rv)
{
    struct fstream *s = stream("/pods?labelSelector"), *m;

    answer(s, 200, pod_list(rv, RUNNING("p1", "10.0.0.1", "7", "")));
    run_now();
    if ((m = stream("10.0.0.1:8000/v1/models")) != NULL)
        answer(m, 200, models_json("llama"));
    run_now();
    s = stream("watch=1");
    if (s != NULL)
        s_head(s, 200);
    return s;
}

/* The API server goes away: the set stays, retries back off (with
 * jitter, up to backoff_max), and the set follows again when it is back. */
static void test_plugin_api_down(void)
{
    static const char *const settings[] = { "label_selector=app=vllm", "backoff_min=1s",
                                            "backoff_max=8s", NULL };
    void *inst = start_plugin(settings, NULL);
    struct fstream *w, *s;
    double last = 0, gaps[6];

    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    w = to_watching("100");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(H.npublish, 1);
    run_until(H.now + 30);
    s_end(w, 0, "Connection reset by peer");
    run_now();
    /* a watch that worked: LIST at once; then every LIST fails */
    for (int i = 0; i < 6; i++) {
        s = stream("/pods?labelSelector");
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        if (i > 0)
            gaps[i - 1] = s->created - last; /* from the last failure */
        last = H.now;
        s_end(s, 0, "Couldn't connect to server");
        /* the next try comes after the backoff, not before */
        run_until(H.now + 0.7);
        CU_ASSERT_PTR_NULL(stream("/pods?labelSelector"));
        run_until(H.now + 10);
    }
    CU_ASSERT_TRUE(log_has("retrying in"));
    CU_ASSERT_TRUE(log_has("the last known backends keep serving"));
    /* 1, 2, 4, 8, 8 seconds, each 80% to 120% of it, at most 8 */
    static const double want[] = { 1, 2, 4, 8, 8 };
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_TRUE(gaps[i] >= want[i] * 0.8 - 0.001 && gaps[i] <= want[i] * 1.2 + 0.001 &&
                       gaps[i] <= 8.001);
        if (!(gaps[i] >= want[i] * 0.8 - 0.001 && gaps[i] <= want[i] * 1.2 + 0.001))
            fprintf(stderr, "\n    retry %d after %.2fs\n", i + 1, gaps[i]);
    }
    /* nothing was published meanwhile: the last known set serves */
    CU_ASSERT_EQUAL(H.npublish, 1);
    CU_ASSERT_EQUAL(metric("api_errors"), 6);
    CU_ASSERT_EQUAL(metric("backends"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(H.published, "10.0.0.1"));
    /* errors with an answer: 403 and 500 also back off, with the message */
    s = stream("/pods?labelSelector");
    answer(s, 403, "{\"kind\":\"Status\",\"message\":\"pods is forbidden: User cannot list\","
                   "\"code\":403}");
    CU_ASSERT_TRUE(log_has("HTTP 403: pods is forbidden"));
    run_until(H.now + 10);
    s = stream("/pods?labelSelector");
    answer(s, 200, "{\"kind\":\"PodList\",\"items\":[]}"); /* no resourceVersion */
    CU_ASSERT_TRUE(log_has("no resourceVersion"));
    CU_ASSERT_EQUAL(H.npublish, 1);
    /* back: the list is the truth (p1 gone, p4 here) */
    run_until(H.now + 10);
    s = stream("/pods?labelSelector");
    answer(s, 200, pod_list("500", RUNNING("p4", "10.0.0.4", "450", "")));
    run_now();
    answer(stream("10.0.0.4:8000/v1/models"), 200, models_json("llama"));
    run_now();
    CU_ASSERT_PTR_NOT_NULL(strstr(H.published, "10.0.0.4"));
    CU_ASSERT_PTR_NULL(strstr(H.published, "10.0.0.1"));
    /* and the backoff starts over */
    w = stream("resourceVersion=500&");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    s_head(w, 200);
    run_until(H.now + 5);
    s_end(w, 200, NULL);
    run_now();
    CU_ASSERT_PTR_NOT_NULL(stream("/pods?labelSelector"));
    stop_plugin(inst);

    /* never reachable from the start: nothing is ever published, not even
     * an empty set */
    inst = start_plugin(settings, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    for (int i = 0; i < 5; i++) {
        s = stream("/pods?labelSelector");
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        s_end(s, 0, "SSL certificate problem: unable to get local issuer certificate");
        run_until(H.now + 10);
    }
    CU_ASSERT_EQUAL(H.npublish, 0);
    CU_ASSERT_TRUE(log_has("is the CA right?"));
    stop_plugin(inst);
}

/* How a watch can end, and what follows. */
static void test_plugin_watch_ends(void)
{
    static const char *const settings[] = { "label_selector=app=vllm", "watcher_timeout_seconds=2",
                                            NULL };
    void *inst = start_plugin(settings, NULL);
    struct fstream *w, *s;
    char *big;

    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    w = to_watching("100");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    /* a short timeout: the silence margin is as long as the timeout */
    CU_ASSERT_DOUBLE_EQUAL(w->idle, 4, 0.001);

    /* an ERROR event (410 Expired) after events: LIST at once */
    const char *expired = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                          "\"status\":\"Failure\",\"message\":\"too old resource version: 100 "
                          "(300)\",\"reason\":\"Expired\",\"code\":410}}\n";
    char ev[4096];
    snprintf(ev, sizeof ev, "%s\n", event("MODIFIED", RUNNING("p1", "10.0.0.1", "150", "")));
    CU_ASSERT_EQUAL(s_data(w, ev, strlen(ev), 0), 0);
    CU_ASSERT_NOT_EQUAL(s_data(w, expired, strlen(expired), 0), 0); /* it stops the stream */
    run_now();
    CU_ASSERT_TRUE(log_has("410"));
    s = stream("/pods?labelSelector");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    /* the pod deleted while the watch was down leaves with the LIST */
    answer(s, 200, pod_list("400", ""));
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published, "");
    w = stream("resourceVersion=400&");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    s_head(w, 200);

    /* a silent watch: the host ends it after `idle`; LIST at once */
    run_until(H.now + 4);
    s_end(w, 0, "Operation timed out after 4000 milliseconds with 0 bytes received");
    run_now();
    CU_ASSERT_TRUE(log_has("silent for longer than its timeout"));
    answer(stream("/pods?labelSelector"), 200,
           pod_list("500", RUNNING("p5", "10.0.0.5", "450", "")));
    run_now();
    answer(stream("10.0.0.5:8000/v1/models"), 200, models_json("llama"));
    run_now();
    CU_ASSERT_PTR_NOT_NULL(strstr(H.published, "10.0.0.5"));

    /* a line past 8 MiB stops the watch and lists again */
    w = stream("resourceVersion=500&");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    s_head(w, 200);
    run_until(H.now + 1.5);
    big = malloc(K8S_MAX_LINE + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', K8S_MAX_LINE + 1);
    CU_ASSERT_NOT_EQUAL(s_data(w, big, K8S_MAX_LINE + 1, 1 << 20), 0);
    free(big);
    run_now();
    CU_ASSERT_TRUE(log_has("longer than 8 MiB"));
    answer(stream("/pods?labelSelector"), 200,
           pod_list("600", RUNNING("p5", "10.0.0.5", "450", "")));
    run_now();

    /* a line that is no event: the same */
    w = stream("resourceVersion=600&");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    s_head(w, 200);
    run_until(H.now + 1.5);
    CU_ASSERT_NOT_EQUAL(s_data(w, "{\"type\":\"ADDED\"\n", 16, 0), 0);
    run_now();
    CU_ASSERT_TRUE(log_has("no watch event"));
    answer(stream("/pods?labelSelector"), 200,
           pod_list("700", RUNNING("p5", "10.0.0.5", "450", "")));
    run_now();

    /* a watch refused (500) or ending at once: after the backoff, not in a spin */
    int published = H.npublish;
    char before[sizeof H.published];
    memcpy(before, H.published, sizeof before);
    for (int i = 0; i < 3; i++) {
        w = stream("watch=1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        if (i == 0)
            answer(w, 500, "{\"kind\":\"Status\",\"message\":\"etcd is sad\",\"code\":500}");
        else if (i == 1)
            answer(w, 410, "{\"kind\":\"Status\",\"message\":\"too old\",\"code\":410}");
        else
            answer(w, 200, "");
        run_now();
        CU_ASSERT_PTR_NULL(stream("/pods?labelSelector"));
        run_until(H.now + 40);
        s = stream("/pods?labelSelector");
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        answer(s, 200, pod_list("800", RUNNING("p5", "10.0.0.5", "450", "")));
        run_now();
    }
    CU_ASSERT_TRUE(log_has("etcd is sad"));
    CU_ASSERT_TRUE(log_has("410 Gone"));
    /* each LIST publishes, the same set all along */
    CU_ASSERT_EQUAL(H.npublish, published + 3);
    CU_ASSERT_STRING_EQUAL(H.published, before);
    /* a last event without its newline at a clean end still counts */
    w = stream("watch=1");
    s_head(w, 200);
    snprintf(ev, sizeof ev, "%s", event("DELETED", RUNNING("p5", "10.0.0.5", "900", "")));
    CU_ASSERT_EQUAL(s_data(w, ev, strlen(ev), 0), 0);
    s_end(w, 200, NULL);
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published, "");
    stop_plugin(inst);
}

/* The periodic re-list, and a token file that rotates. */
static void test_plugin_resync_and_token(void)
{
    const char *tokfile = tmpfile_with("token", "first-token\n");
    char user[300];
    static const char *const settings[] = { "label_selector=app=vllm", "resync=60s", NULL };
    void *inst;
    struct fstream *w, *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tokfile);
    snprintf(user, sizeof user, "{tokenFile: %s}", tokfile);
    inst = start_plugin(settings, user);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    s = stream("/pods?labelSelector");
    CU_ASSERT_PTR_NOT_NULL(strstr(s->headers, "Authorization: Bearer first-token\n"));
    w = to_watching("100");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL(strstr(w->headers, "Bearer first-token\n"));
    /* rotated: the next request has the new one */
    CU_ASSERT_PTR_NOT_NULL(tmpfile_with("token", "second-token\n"));
    run_until(H.now + 40);
    CU_ASSERT_TRUE(w->live); /* not yet */
    run_until(H.now + 30);   /* 60s +-10% */
    CU_ASSERT_FALSE(w->live); /* the resync cancelled the watch ... */
    s = stream("/pods?labelSelector");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s); /* ... and lists */
    CU_ASSERT_PTR_NOT_NULL(strstr(s->headers, "Bearer second-token\n"));
    CU_ASSERT_TRUE(log_has("resync"));
    CU_ASSERT_TRUE(log_has("changed: using the new one"));
    CU_ASSERT_PTR_NULL(strstr(H.log, "second-token")); /* a secret */
    /* an unreadable token file: keep the last one */
    unlink(tokfile);
    answer(s, 401, "{\"kind\":\"Status\",\"message\":\"Unauthorized\",\"code\":401}");
    CU_ASSERT_TRUE(log_has("token is wrong or expired"));
    run_until(H.now + 40);
    s = stream("/pods?labelSelector");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s->headers, "Bearer second-token\n"));
    CU_ASSERT_TRUE(log_has("keeping the last one"));
    stop_plugin(inst);
}

/* Models: asked until they answer, read again, LoRA adapters coming and
 * going, the backends' key. */
static void test_plugin_models(void)
{
    static const char *const settings[] = { "label_selector=app=vllm", "models_interval=30s",
                                            "port=9000", NULL };
    void *inst;
    struct fstream *m, *s;

    setenv("VLLM_API_KEY", "sk-secret", 1);
    inst = start_plugin(settings, NULL);
    unsetenv("VLLM_API_KEY");
    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    s = stream("/pods?labelSelector");
    answer(s, 200, pod_list("100", RUNNING("p1", "10.0.0.1", "7", "")));
    run_now();
    /* not answering yet (vLLM loading its weights): asked again, quickly */
    for (int i = 0; i < 4; i++) {
        m = stream("http://10.0.0.1:9000/v1/models");
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_PTR_NOT_NULL(strstr(m->headers, "Authorization: Bearer sk-secret\n"));
        if (i < 2)
            s_end(m, 0, "Connection refused");
        else
            answer(m, 503, "loading");
        run_until(H.now + 6);
    }
    /* after the first try the (empty) set is out; p1 is not in it */
    CU_ASSERT_EQUAL(H.npublish, 1);
    CU_ASSERT_STRING_EQUAL(H.published, "");
    CU_ASSERT_TRUE(log_has("waiting for GET /v1/models"));
    CU_ASSERT_EQUAL(metric("models_errors"), 4);
    m = stream("http://10.0.0.1:9000/v1/models");
    answer(m, 200, models_json("llama"));
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published, "http://10.0.0.1:9000 [llama] {app=vllm,model=llama}\n");
    /* read again after models_interval: an adapter loaded */
    run_until(H.now + 25);
    CU_ASSERT_PTR_NULL(stream("10.0.0.1:9000/v1/models"));
    run_until(H.now + 10);
    m = stream("10.0.0.1:9000/v1/models");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    answer(m, 200, models_json("llama,sql-lora<llama"));
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published,
                           "http://10.0.0.1:9000 [llama,sql-lora] {app=vllm,model=llama}\n");
    CU_ASSERT_TRUE(log_has("sql-lora (LoRA of llama)"));
    /* a failed refresh keeps what is known */
    int n = H.npublish;
    run_until(H.now + 35);
    s_end(stream("10.0.0.1:9000/v1/models"), 0, "timeout");
    run_now();
    CU_ASSERT_EQUAL(H.npublish, n);
    CU_ASSERT_TRUE(log_has("keeping its last known models"));
    /* then the adapter is unloaded */
    run_until(H.now + 6);
    answer(stream("10.0.0.1:9000/v1/models"), 200, models_json("llama"));
    run_now();
    CU_ASSERT_EQUAL(H.npublish, n + 1);
    CU_ASSERT_STRING_EQUAL(H.published, "http://10.0.0.1:9000 [llama] {app=vllm,model=llama}\n");
    /* the router refusing a set is logged and tried again at the next change */
    H.publish_rc = SY_ERROR;
    run_until(H.now + 35);
    answer(stream("10.0.0.1:9000/v1/models"), 200, models_json("llama,x"));
    run_now();
    CU_ASSERT_TRUE(log_has("refused"));
    H.publish_rc = SY_OK;
    run_until(H.now + 35);
    answer(stream("10.0.0.1:9000/v1/models"), 200, models_json("llama,x,y"));
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published,
                           "http://10.0.0.1:9000 [llama,x,y] {app=vllm,model=llama}\n");
    /* a removed pod's models request is cancelled */
    struct fstream *w = stream("watch=1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    s_head(w, 200);
    run_until(H.now + 35);
    CU_ASSERT_EQUAL(nstreams("10.0.0.1:9000/v1/models"), 1);
    char ev[4096];
    snprintf(ev, sizeof ev, "%s\n", event("DELETED", RUNNING("p1", "10.0.0.1", "9", "")));
    CU_ASSERT_EQUAL(s_data(w, ev, strlen(ev), 0), 0);
    run_now();
    CU_ASSERT_EQUAL(nstreams("10.0.0.1:9000/v1/models"), 0);
    CU_ASSERT_STRING_EQUAL(H.published, "");
    stop_plugin(inst);
}

/* service-name mode: Services and their EndpointSlices. */
static void test_plugin_services(void)
{
    static const char *const settings[] = { "label_selector=app=vllm", "namespace=llm",
                                            "service_discovery_type=service-name", NULL };
    void *inst = start_plugin(settings, NULL);
    struct fstream *svc, *eps, *m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    svc = stream("/api/v1/namespaces/llm/services?labelSelector=app%3Dvllm");
    eps = stream("/apis/discovery.k8s.io/v1/namespaces/llm/endpointslices?labelSelector="
                 "kubernetes.io%2Fservice-name");
    CU_ASSERT_PTR_NOT_NULL_FATAL(svc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(eps);
    answer(svc, 200, "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[{\"metadata\":"
                     "{\"name\":\"llama\",\"labels\":{\"app\":\"vllm\",\"model\":\"llama\"}}},"
                     "{\"metadata\":{\"name\":\"idle\",\"labels\":{\"app\":\"vllm\"}}}]}");
    run_now();
    CU_ASSERT_PTR_NULL(stream("/v1/models")); /* both lists first */
    answer(eps, 200, "{\"metadata\":{\"resourceVersion\":\"11\"},\"items\":[{\"metadata\":"
                     "{\"name\":\"llama-1\",\"labels\":{\"kubernetes.io/service-name\":\"llama\"}},"
                     "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":"
                     "true}}]}]}");
    run_now();
    m = stream("http://llama.llm.svc:8000/v1/models");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(nstreams("/v1/models"), 1); /* not idle: no ready endpoint */
    answer(m, 200, models_json("llama"));
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published, "http://llama.llm.svc:8000 [llama] {app=vllm,model=llama}\n");
    /* the slice loses its ready endpoint: the service leaves */
    struct fstream *w = stream("endpointslices?watch=1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL(strstr(w->url, "resourceVersion=11&"));
    CU_ASSERT_PTR_NOT_NULL(stream("services?watch=1&resourceVersion=10&"));
    s_head(w, 200);
    const char *ev = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"llama-1\","
                     "\"resourceVersion\":\"12\",\"labels\":{\"kubernetes.io/service-name\":"
                     "\"llama\"}},\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":"
                     "{\"ready\":false}}]}}\n";
    CU_ASSERT_EQUAL(s_data(w, ev, strlen(ev), 3), 0);
    run_now();
    CU_ASSERT_STRING_EQUAL(H.published, "");
    CU_ASSERT_TRUE(log_has("service llama (http://llama.llm.svc:8000) removed: no ready endpoint"));
    stop_plugin(inst);
}

/* A kubeconfig's client certificate (-data form) and key (a file) go
 * with every API request, and not to the backends. */
static void test_plugin_client_cert(void)
{
    static const char *const settings[] = { "label_selector=app=vllm", NULL };
    void *inst = start_plugin(settings, "{client-certificate-data: " PEM_B64 ", "
                                        "client-key: /keys/me.key}");
    struct fstream *s, *w, *m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    s = stream("/pods?labelSelector");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s->cert_pem, PEM);
    CU_ASSERT_STRING_EQUAL(s->key_file, "/keys/me.key");
    CU_ASSERT_STRING_EQUAL(s->cert_file, "");
    CU_ASSERT_PTR_NULL(strstr(s->headers, "Authorization"));
    answer(s, 200, pod_list("100", RUNNING("p1", "10.0.0.1", "7", "")));
    run_now();
    w = stream("watch=1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_STRING_EQUAL(w->cert_pem, PEM);
    m = stream("10.0.0.1:8000/v1/models");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(m->cert_pem, "");
    CU_ASSERT_STRING_EQUAL(m->key_file, "");
    stop_plugin(inst);
}

/* Settings and credentials that cannot work stop the router at start. */
static void test_plugin_create_errors(void)
{
    const struct sy_plugin *p = k8s_plugin();
    static const struct {
        const char *kv[4];
        const char *want;
    } cases[] = {
        { { "port=0" }, "plugin_config.k8s.port" },
        { { "port=http" }, "plugin_config.k8s.port" },
        { { "service_discovery_type=dns" }, "pod-ip or service-name" },
        { { "namespace=Bad_NS" }, "plugin_config.k8s.namespace" },
        { { "label_selector=a in (b" }, "label selector" },
        { { "watcher_timeout_seconds=1.5" }, "watcher_timeout_seconds" },
        { { "models_interval=0" }, "models_interval" },
        { { "backoff_min=2s", "backoff_max=1s" }, "backoff_max" },
        { { "lable_selector=a" }, "unknown key" },
        { { "kubeconfig=/nonexistent/kubeconfig" }, "cannot read the kubeconfig" },
    };
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    unsetenv("KUBERNETES_SERVICE_HOST");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake_cfg cfg = { { NULL } };
        char err[512] = "";
        void *inst = NULL;
        for (size_t j = 0; j < 4 && cases[i].kv[j]; j++)
            cfg.kv[j] = cases[i].kv[j];
        host_reset();
        CU_ASSERT_EQUAL(p->create(&host, (const sy_config *)&cfg, &inst, err, sizeof err),
                        SY_ERROR);
        if (strstr(err, cases[i].want) == NULL)
            fprintf(stderr, "\n    case %zu: '%s' lacks '%s'\n", i, err, cases[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
    }
    /* an older host */
    struct sy_host_api old = host;
    struct fake_cfg none = { { NULL } };
    char err[512] = "";
    void *inst = NULL;
    old.size = offsetof(struct sy_host_api, discovery_publish);
    CU_ASSERT_EQUAL(p->create(&old, (const sy_config *)&none, &inst, err, sizeof err), SY_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ABI 1.3"));
}

/* In a cluster: the service account's files, the namespace from there. */
static void test_plugin_in_cluster(void)
{
    const struct sy_plugin *p = k8s_plugin();
    struct fake_cfg cfg = { { NULL } };
    char sa[300], kv[340], err[512] = "";
    void *inst = NULL;
    const char *f;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    f = tmpfile_with("token", "sa-token\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    snprintf(sa, sizeof sa, "%s", f);
    *strrchr(sa, '/') = '\0';
    CU_ASSERT_PTR_NOT_NULL(tmpfile_with("namespace", "inference\n"));
    snprintf(kv, sizeof kv, "service_account_dir=%s", sa);
    cfg.kv[0] = kv;
    host_reset();
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    /* no ca.crt yet */
    unlink(strcat(strcpy(err, sa), "/ca.crt"));
    CU_ASSERT_EQUAL(p->create(&host, (const sy_config *)&cfg, &inst, err, sizeof err), SY_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ca.crt"));
    CU_ASSERT_PTR_NOT_NULL(tmpfile_with("ca.crt", PEM));
    CU_ASSERT_EQUAL_FATAL(p->create(&host, (const sy_config *)&cfg, &inst, err, sizeof err), SY_OK);
    CU_ASSERT_EQUAL(p->start(inst), SY_OK);
    struct fstream *s = stream("/pods");
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s != NULL) {
        CU_ASSERT_STRING_EQUAL(s->url, "https://10.96.0.1:443/api/v1/namespaces/inference/pods");
        CU_ASSERT_PTR_NOT_NULL(strstr(s->headers, "Authorization: Bearer sa-token\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(s->ca_file, "/ca.crt"));
        CU_ASSERT_EQUAL(s->insecure, 0);
    }
    stop_plugin(inst);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

static int cleanup_k8s(void)
{
    if (plugin_handle != NULL)
        dlclose(plugin_handle);
    plugin_handle = NULL;
    if (tmpdir[0] != '\0') {
        static const char *const names[] = { "kubeconfig", "token", "namespace", "ca.crt" };
        char p[300];
        for (size_t i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
            unlink(p);
        }
        rmdir(tmpdir);
    }
    host_reset();
    return 0;
}

void register_k8s_tests(void)
{
    UNIT_SUITE("k8s pure", UNIT_TEST(test_selector_equality), UNIT_TEST(test_selector_sets),
               UNIT_TEST(test_selector_errors), UNIT_TEST(test_url_escape),
               UNIT_TEST(test_lines_any_pieces), UNIT_TEST(test_lines_stop_and_cap),
               UNIT_TEST(test_list_parse), UNIT_TEST(test_events), UNIT_TEST(test_pod_rule),
               UNIT_TEST(test_service_rule), UNIT_TEST(test_status_message),
               UNIT_TEST(test_models), UNIT_TEST(test_base64), UNIT_TEST(test_kubeconfig_forms),
               UNIT_TEST(test_kubeconfig_errors));
    CU_pSuite s = CU_add_suite("k8s plugin", NULL, cleanup_k8s);
    CU_add_test(s, "test_plugin_pods", test_plugin_pods);
    CU_add_test(s, "test_plugin_api_down", test_plugin_api_down);
    CU_add_test(s, "test_plugin_watch_ends", test_plugin_watch_ends);
    CU_add_test(s, "test_plugin_resync_and_token", test_plugin_resync_and_token);
    CU_add_test(s, "test_plugin_models", test_plugin_models);
    CU_add_test(s, "test_plugin_services", test_plugin_services);
    CU_add_test(s, "test_plugin_client_cert", test_plugin_client_cert);
    CU_add_test(s, "test_plugin_create_errors", test_plugin_create_errors);
    CU_add_test(s, "test_plugin_in_cluster", test_plugin_in_cluster);
}
