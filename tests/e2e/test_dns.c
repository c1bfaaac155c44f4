/*
 * e2e: discovery from DNS (plugins/dns.c) against a real DNS server.
 * dnsmasq (Debian's dnsmasq-base) runs on 127.0.0.1 and a free port,
 * answering for sy.test only (--local: a name it does not know is
 * NXDOMAIN).  A records come from an --addn-hosts file, which dnsmasq
 * reads again on SIGHUP; SRV records are --srv-host lines of the config
 * file written for it, which it reads at start only, so an SRV change
 * restarts it on the same port.  The backends are mock backends on
 * 127.0.0.2, .3 and .4.  Without /usr/sbin/dnsmasq the suite says so and
 * its tests pass without running.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define CHAT "/v1/chat/completions"

static int have_dnsmasq;

struct dnsmasq {
    pid_t pid;
    int port;
    char hosts[256], conf[300], log[300];
};

static double slack(void)
{
    const char *w = getenv("SY_TEST_WRAPPER");
    return w != NULL && *w != '\0' ? 5.0 : 1.0;
}

/* ---- dnsmasq ---- */

/* 1 when 127.0.0.1:port is free for `type` (dnsmasq takes UDP and TCP). */
static int port_free(int port, int type)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, type, 0), ok;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void write_text(const char *path, const char *text)
{
    char tmp[320];
    FILE *f;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_EQUAL(rename(tmp, path), 0); /* whole, whenever it is read */
}

/* Start dnsmasq on d->port (0: a free one) with the hosts file as it is
 * and `srv` (--srv-host values, one a line) in its config file. */
static int dnsmasq_start(struct dnsmasq *d, const char *srv)
{
    char conf[1024] = "", port[32], hosts[300], cfile[320];
    const char *at = srv;

    while (at != NULL && *at) {
        size_t len = strcspn(at, "\n");
        size_t used = strlen(conf);
        snprintf(conf + used, sizeof conf - used, "srv-host=%.*s\n", (int)len, at);
        at += len + (at[len] == '\n');
    }
    write_text(d->conf, conf);
    for (int i = 0; d->port == 0 && i < 50; i++) {
        int p = free_port();
        if (p > 0 && port_free(p, SOCK_DGRAM))
            d->port = p;
    }
    snprintf(port, sizeof port, "--port=%d", d->port);
    snprintf(hosts, sizeof hosts, "--addn-hosts=%s", d->hosts);
    snprintf(cfile, sizeof cfile, "--conf-file=%s", d->conf);
    d->pid = fork();
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(DNSMASQ, DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", cfile, hosts,
              "--listen-address=127.0.0.1", "--bind-interfaces", port, "--local=/sy.test/",
              "--no-negcache", "--log-facility=-", "--log-queries", (char *)NULL);
        _exit(127);
    }
    /* up when its port is taken */
    for (int i = 0; i < 300; i++) {
        if (!port_free(d->port, SOCK_DGRAM))
            return 0;
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
            break;
        sleep_ms(10);
    }
    d->pid = 0;
    return -1;
}

static void dnsmasq_stop(struct dnsmasq *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGCONT);
        kill(d->pid, SIGTERM);
        for (int i = 0; i < 300 && waitpid(d->pid, NULL, WNOHANG) != d->pid; i++)
            sleep_ms(10);
        if (kill(d->pid, 0) == 0) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
        }
        d->pid = 0;
    }
}

/* New A records: the hosts file, re-read on SIGHUP. */
static void dnsmasq_hosts(struct dnsmasq *d, const char *text)
{
    write_text(d->hosts, text);
    if (d->pid > 0)
        kill(d->pid, SIGHUP);
}

static void dnsmasq_init(struct dnsmasq *d, const char *tag)
{
    memset(d, 0, sizeof *d);
    snprintf(d->hosts, sizeof d->hosts, "%s", write_temp("dns-hosts", ""));
    /* write_temp's names are fixed: the config and log are per test */
    snprintf(d->conf, sizeof d->conf, "%s.%s.conf", d->hosts, tag);
    snprintf(d->log, sizeof d->log, "%s.%s.log", d->hosts, tag);
}

/* ---- mocks and the router ---- */

/* A mock on host:port (port 0: one free on all our addresses). */
static int mock_on(struct mock *m, const char *name, const char *models, const char *host,
                   int port)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    const char *extra[] = { "--host", host, "--port", p, NULL };
    return mock_start(m, name, models, extra);
}

/* The status of one request for model, and which mock served it. */
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

/* Which mocks served 8 requests for model, sorted: "m2 m3" ("!" when one
 * failed). */
static void who_serves(int port, const char *model, char *out, size_t len)
{
    char who[64], seen[4][64];
    int n = 0;

    out[0] = '\0';
    for (int i = 0; i < 8; i++) {
        if (ask(port, model, who, sizeof who) != 200) {
            snprintf(out, len, "!");
            return;
        }
        int k = 0;
        while (k < n && strcmp(seen[k], who) != 0)
            k++;
        if (k == n && n < 4)
            snprintf(seen[n++], sizeof seen[0], "%s", who);
    }
    /* sorted, so "m2 m3" whatever the order */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(seen[j], seen[i]) < 0) {
                char t[64];
                memcpy(t, seen[i], sizeof t);
                memcpy(seen[i], seen[j], sizeof t);
                memcpy(seen[j], t, sizeof t);
            }
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", i ? " " : "", seen[i]);
    }
}

/* Wait until model is served by exactly `want` (as who_serves says;
 * "404" for no such model); the seconds it took, or -1 after `within`. */
static double follows(int port, const char *model, const char *want, double within)
{
    double start = mono_seconds();
    char got[128];

    while (mono_seconds() - start < within * slack()) {
        if (strcmp(want, "404") == 0) {
            char who[64];
            if (ask(port, model, who, sizeof who) == 404)
                return mono_seconds() - start;
        } else {
            who_serves(port, model, got, sizeof got);
            if (strcmp(got, want) == 0)
                return mono_seconds() - start;
        }
        sleep_ms(20);
    }
    who_serves(port, model, got, sizeof got);
    fprintf(stderr, "\n  %s: wanted '%s', served by '%s'\n", model, want, got);
    return -1;
}

static int router_on(struct router *rt, const struct dnsmasq *d, const char *name, int port)
{
    char yaml[1024], portline[32] = "";

    if (port > 0)
        snprintf(portline, sizeof portline, " port: %d,", port);
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "discovery: [dns]\n"
             "plugin_config:\n"
             "  dns: {name: \"%s\",%s resolver: \"127.0.0.1:%d\", interval: 200ms,\n"
             "        timeout: 400ms, models_interval: 500ms}\n",
             name, portline, d->port);
    return router_start(rt, yaml, NULL);
}

/* The body of /engines (malloc'd, "" on failure). */
static char *engines(int port)
{
    struct resp r;
    char *body;

    if (http_get(port, "/engines", &r) != 0) {
        resp_free(&r);
        return strdup("");
    }
    body = r.body;
    r.body = NULL;
    resp_free(&r);
    return body;
}

/* ---- the tests ---- */

#define SKIP_WITHOUT_DNSMASQ()                                                    \
    do {                                                                          \
        if (!have_dnsmasq)                                                        \
            return;                                                               \
    } while (0)

/* A records: an address added and one removed are followed within 2 s;
 * no record at all is no backend. */
static void test_a_records(void)
{
    struct dnsmasq d;
    struct mock m2, m3;
    struct router rt;
    int port = free_port();
    char *e;

    SKIP_WITHOUT_DNSMASQ();
    dnsmasq_init(&d, "a");
    dnsmasq_hosts(&d, "127.0.0.2 vllm.sy.test\n");
    CU_ASSERT_EQUAL_FATAL(dnsmasq_start(&d, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m2, "m2", "llama", "127.0.0.2", port), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m3, "m3", "llama", "127.0.0.3", port), 0);
    if (router_on(&rt, &d, "vllm.sy.test", port) != 0) {
        mock_stop(&m2);
        mock_stop(&m3);
        dnsmasq_stop(&d);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(follows(rt.port, "llama", "m2", 2) >= 0);

    /* added */
    dnsmasq_hosts(&d, "127.0.0.2 vllm.sy.test\n127.0.0.3 vllm.sy.test\n");
    CU_ASSERT(follows(rt.port, "llama", "m2 m3", 2) >= 0);
    e = engines(rt.port);
    char url[64];
    snprintf(url, sizeof url, "\"http://127.0.0.3:%d\"", port);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, url));
    free(e);
    CU_ASSERT_EQUAL(metric_value(rt.port,
                                 "switchyard_plugin_gauge{plugin=\"dns\",name=\"addresses\"}",
                                 -1), 2);

    /* removed */
    dnsmasq_hosts(&d, "127.0.0.3 vllm.sy.test\n");
    CU_ASSERT(follows(rt.port, "llama", "m3", 2) >= 0);
    e = engines(rt.port);
    snprintf(url, sizeof url, "\"http://127.0.0.2:%d\"", port);
    CU_ASSERT_PTR_NULL(strstr(e, url));
    free(e);

    /* gone altogether (NXDOMAIN): no backend, no model */
    dnsmasq_hosts(&d, "");
    CU_ASSERT(follows(rt.port, "llama", "404", 2) >= 0);
    CU_ASSERT(router_log_lines(&rt, "vllm.sy.test: no addresses", NULL) >= 1);
    /* and back */
    dnsmasq_hosts(&d, "127.0.0.2 vllm.sy.test\n");
    CU_ASSERT(follows(rt.port, "llama", "m2", 2) >= 0);
    CU_ASSERT(metric_value(rt.port,
                           "switchyard_plugin_counter_total{plugin=\"dns\",name=\"resolves\"}",
                           -1) >= 5);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&m2);
    mock_stop(&m3);
    dnsmasq_stop(&d);
}

/* Each address's models come from its /v1/models; one that does not
 * answer yet is published not ready, and joins once it answers. */
static void test_models(void)
{
    struct dnsmasq d;
    struct mock m2, m3, m4;
    struct router rt;
    int port = free_port();
    char *e, url[64];

    SKIP_WITHOUT_DNSMASQ();
    dnsmasq_init(&d, "models");
    dnsmasq_hosts(&d, "127.0.0.2 vllm.sy.test\n127.0.0.3 vllm.sy.test\n127.0.0.4 vllm.sy.test\n");
    CU_ASSERT_EQUAL_FATAL(dnsmasq_start(&d, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m2, "m2", "llama", "127.0.0.2", port), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m3, "m3", "llama,lora-x", "127.0.0.3", port), 0);
    if (router_on(&rt, &d, "vllm.sy.test", port) != 0) {
        mock_stop(&m2);
        mock_stop(&m3);
        dnsmasq_stop(&d);
        CU_FAIL_FATAL("the router did not start");
    }
    /* an adapter one backend lists goes there alone */
    CU_ASSERT(follows(rt.port, "lora-x", "m3", 2) >= 0);
    CU_ASSERT(follows(rt.port, "llama", "m2 m3", 2) >= 0);
    /* 127.0.0.4 has no server yet: published not ready, with no model, so
     * it takes nothing; /engines shows it held out by discovery */
    snprintf(url, sizeof url, "http://127.0.0.4:%d", port);
    CU_ASSERT(router_log_lines(&rt, url, "not ready until it answers") >= 1);
    e = engines(rt.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, url));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "not ready (discovery)"));
    free(e);
    CU_ASSERT_EQUAL(metric_value(rt.port,
                                 "switchyard_plugin_gauge{plugin=\"dns\",name=\"addresses\"}",
                                 -1), 3);
    CU_ASSERT(metric_value(rt.port,
                           "switchyard_plugin_counter_total{plugin=\"dns\",name=\"models_errors\"}",
                           -1) >= 1);
    /* it starts, serving another model: it joins */
    CU_ASSERT_EQUAL_FATAL(mock_on(&m4, "m4", "llama,qwen", "127.0.0.4", port), 0);
    CU_ASSERT(follows(rt.port, "qwen", "m4", 4) >= 0);
    CU_ASSERT(follows(rt.port, "llama", "m2 m3 m4", 2) >= 0);
    e = engines(rt.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, url));
    free(e);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&m2);
    mock_stop(&m3);
    mock_stop(&m4);
    dnsmasq_stop(&d);
}

/* SRV records: each target's address with the record's port; a change
 * (dnsmasq restarted on the same port) is followed. */
static void test_srv_records(void)
{
    struct dnsmasq d;
    struct mock a, b;
    struct router rt;
    int pa = free_port(), pb = free_port();
    char srv[256], *e, url[64];

    SKIP_WITHOUT_DNSMASQ();
    dnsmasq_init(&d, "srv");
    dnsmasq_hosts(&d, "127.0.0.2 a.sy.test\n127.0.0.3 b.sy.test\n");
    snprintf(srv, sizeof srv, "_vllm._tcp.sy.test,a.sy.test,%d,0,1\n"
                              "_vllm._tcp.sy.test,b.sy.test,%d,0,1\n", pa, pb);
    CU_ASSERT_EQUAL_FATAL(dnsmasq_start(&d, srv), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&a, "sa", "llama", "127.0.0.2", pa), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&b, "sb", "llama", "127.0.0.3", pb), 0);
    if (router_on(&rt, &d, "_vllm._tcp.sy.test", 0) != 0) {
        mock_stop(&a);
        mock_stop(&b);
        dnsmasq_stop(&d);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(follows(rt.port, "llama", "sa sb", 2) >= 0);
    e = engines(rt.port);
    snprintf(url, sizeof url, "\"http://127.0.0.2:%d\"", pa);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, url));
    snprintf(url, sizeof url, "\"http://127.0.0.3:%d\"", pb);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, url));
    free(e);

    /* no answer to the SRV query (its own UDP, not evdns): the set stands */
    kill(d.pid, SIGSTOP);
    double errors = 0;
    for (int i = 0; i < 200 && errors < 2; i++) {
        sleep_ms(20);
        errors = metric_value(
            rt.port, "switchyard_plugin_counter_total{plugin=\"dns\",name=\"resolve_errors\"}", 0);
    }
    CU_ASSERT(errors >= 2);
    CU_ASSERT(router_log_lines(&rt, "no answer from 127.0.0.1", NULL) >= 1);
    char got[128];
    who_serves(rt.port, "llama", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "sa sb");
    kill(d.pid, SIGCONT);

    /* b's record goes: dnsmasq reads --srv-host at start only */
    dnsmasq_stop(&d);
    snprintf(srv, sizeof srv, "_vllm._tcp.sy.test,a.sy.test,%d,0,1\n", pa);
    CU_ASSERT_EQUAL_FATAL(dnsmasq_start(&d, srv), 0);
    CU_ASSERT(follows(rt.port, "llama", "sa", 2 + 1) >= 0); /* and a lookup or two lost */
    /* no SRV record at all: no backend */
    dnsmasq_stop(&d);
    CU_ASSERT_EQUAL_FATAL(dnsmasq_start(&d, NULL), 0);
    CU_ASSERT(follows(rt.port, "llama", "404", 3) >= 0);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    mock_stop(&b);
    dnsmasq_stop(&d);
}

/* A resolver that does not answer (stopped), or is gone, changes
 * nothing: the last set keeps serving; it is followed again once back. */
static void test_resolver_silent(void)
{
    struct dnsmasq d;
    struct mock m2, m3;
    struct router rt;
    int port = free_port();

    SKIP_WITHOUT_DNSMASQ();
    dnsmasq_init(&d, "silent");
    dnsmasq_hosts(&d, "127.0.0.2 vllm.sy.test\n127.0.0.3 vllm.sy.test\n");
    CU_ASSERT_EQUAL_FATAL(dnsmasq_start(&d, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m2, "m2", "llama", "127.0.0.2", port), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m3, "m3", "llama", "127.0.0.3", port), 0);
    if (router_on(&rt, &d, "vllm.sy.test", port) != 0) {
        mock_stop(&m2);
        mock_stop(&m3);
        dnsmasq_stop(&d);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(follows(rt.port, "llama", "m2 m3", 2) >= 0);

    kill(d.pid, SIGSTOP);
    double errors = 0;
    for (int i = 0; i < 200 && errors < 3; i++) {
        sleep_ms(20);
        errors = metric_value(
            rt.port, "switchyard_plugin_counter_total{plugin=\"dns\",name=\"resolve_errors\"}", 0);
    }
    CU_ASSERT(errors >= 3);
    CU_ASSERT(router_log_lines(&rt, "vllm.sy.test: lookup failed", "the last set stands") >= 1);
    char got[128];
    who_serves(rt.port, "llama", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "m2 m3");
    CU_ASSERT_EQUAL(metric_value(rt.port,
                                 "switchyard_plugin_gauge{plugin=\"dns\",name=\"addresses\"}",
                                 -1), 2);

    /* back, with one record fewer: followed within the backoff */
    write_text(d.hosts, "127.0.0.2 vllm.sy.test\n");
    kill(d.pid, SIGCONT);
    kill(d.pid, SIGHUP);
    CU_ASSERT(follows(rt.port, "llama", "m2", 8) >= 0);
    CU_ASSERT(router_log_lines(&rt, "vllm.sy.test: resolved again", NULL) >= 1);

    /* gone: refused at once, or silent; the set stands all the same */
    dnsmasq_stop(&d);
    sleep_ms(1500);
    who_serves(rt.port, "llama", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "m2");
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&m2);
    mock_stop(&m3);
}

/* Settings are checked when the config is loaded. */
static void test_settings(void)
{
    static const struct {
        const char *yaml, *says;
    } cases[] = {
        { "  dns: {port: 8000}\n", "name: required" },
        { "  dns: {name: \"bad name\", port: 8000}\n", "name: required" },
        { "  dns: {name: vllm.sy.test}\n", "port: required" },
        { "  dns: {name: vllm.sy.test, port: 70000}\n", "port: a TCP port" },
        { "  dns: {name: _vllm._tcp.sy.test, port: 8000}\n", "port: not with an SRV name" },
        { "  dns: {name: vllm.sy.test, port: 1, resolver: dns.example:53}\n", "resolver:" },
        { "  dns: {name: vllm.sy.test, port: 1, interval: 0s}\n", "interval:" },
        { "  dns: {name: vllm.sy.test, port: 1, intervall: 1s}\n", "intervall: unknown key" },
    };
    char yaml[512], *out = NULL;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(yaml, sizeof yaml, "discovery: [dns]\nplugin_config:\n%s", cases[i].yaml);
        const char *cfg = write_temp("dns-settings.yaml", yaml);
        int st = router_run((const char *[]){ "--check-config", "-c", cfg, "--plugin-dir",
                                              BUILT_PLUGIN_DIR, NULL }, &out);
        CU_ASSERT_EQUAL(st, 2);
        if (out == NULL || strstr(out, cases[i].says) == NULL)
            fprintf(stderr, "\n  %s: wanted '%s' in: %s\n", cases[i].yaml, cases[i].says,
                    out ? out : "(nothing)");
        CU_ASSERT_PTR_NOT_NULL(out && strstr(out, cases[i].says));
        free(out);
    }
    const char *ok = write_temp("dns-settings.yaml",
                                "discovery: [dns]\nplugin_config:\n"
                                "  dns: {name: _http._tcp.vllm.default.svc.cluster.local.,"
                                " resolver: \"[fd00::a]:53\", interval: 5s, timeout: 2s,"
                                " models_interval: 30s}\n");
    CU_ASSERT_EQUAL(router_run((const char *[]){ "--check-config", "-c", ok, "--plugin-dir",
                                                 BUILT_PLUGIN_DIR, NULL }, &out), 0);
    free(out);
}

static int suite_init(void)
{
    have_dnsmasq = access(DNSMASQ, X_OK) == 0;
    if (!have_dnsmasq)
        fprintf(stderr, "\ne2e dns: %s not found (Debian: apt-get install dnsmasq-base); "
                        "the suite is skipped\n", DNSMASQ);
    return 0;
}

/* A backend that stops answering makes the plugin look the name up at
 * once, not at its (here long) interval: the record moved to another
 * address, as when a pod behind a headless Service is replaced. */
static void test_backend_failure(void)
{
    struct dnsmasq d;
    struct mock m2, m3;
    struct router rt;
    int port = free_port();
    char yaml[1024];

    SKIP_WITHOUT_DNSMASQ();
    dnsmasq_init(&d, "fail");
    dnsmasq_hosts(&d, "127.0.0.2 vllm.sy.test\n");
    CU_ASSERT_EQUAL_FATAL(dnsmasq_start(&d, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m2, "m2", "llama", "127.0.0.2", port), 0);
    CU_ASSERT_EQUAL_FATAL(mock_on(&m3, "m3", "llama", "127.0.0.3", port), 0);
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "discovery: [dns]\n"
             "plugin_config:\n"
             "  dns: {name: vllm.sy.test, port: %d, resolver: \"127.0.0.1:%d\", interval: 30s,\n"
             "        timeout: 400ms, models_interval: 500ms}\n",
             port, d.port);
    if (router_start(&rt, yaml, NULL) != 0) {
        mock_stop(&m2);
        mock_stop(&m3);
        dnsmasq_stop(&d);
        CU_FAIL_FATAL("the router did not start");
    }
    CU_ASSERT(follows(rt.port, "llama", "m2", 2) >= 0);
    /* the record moves, and the old address stops answering */
    dnsmasq_hosts(&d, "127.0.0.3 vllm.sy.test\n");
    mock_stop(&m2);
    CU_ASSERT(follows(rt.port, "llama", "m3", 2) >= 0);
    CU_ASSERT(metric_value(rt.port, "switchyard_plugin_counter_total{plugin=\"dns\","
                                    "name=\"early_resolves\"}", 0) >= 1);
    CU_ASSERT(router_log_lines(&rt, "stopped answering; looking it up now", NULL) >= 1);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&m3);
    dnsmasq_stop(&d);
}

void register_dns_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e dns", suite_init, NULL);
    CU_add_test(s, "A records added and removed", test_a_records);
    CU_add_test(s, "models from /v1/models; not ready until known", test_models);
    CU_add_test(s, "SRV records with their ports", test_srv_records);
    CU_add_test(s, "a resolver that does not answer", test_resolver_silent);
    CU_add_test(s, "settings", test_settings);
    CU_add_test(s, "a backend that stops answering: looked up at once", test_backend_failure);
}
