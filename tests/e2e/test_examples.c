/* The SDK's examples and the host API's contract, in the real daemon:
 *
 *   long_generation       requests asking for many tokens go to the backend
 *                         named by backend_match; the rest, and all when no
 *                         backend matches, go on to roundrobin; bad settings
 *                         stop --check-config with file:line and the key
 *   least_inflight        while one backend holds a slow request, the next
 *                         requests go to the other one
 *   host API contract     tests/plugins/contract.c (routing) and
 *                         contract_health.c (health) call every host
 *                         function and log what disagrees with the setup
 *                         written here; the log must say "0 failed" and
 *                         what they did must show in the mocks and /metrics
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"
#define BODY "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

static const char *const example_args[] = { "--plugin-dir", EXAMPLE_PLUGIN_DIR, "--plugin-dir",
                                            BUILT_PLUGIN_DIR, NULL };
static const char *const test_plugin_args[] = { "--plugin-dir", TEST_PLUGIN_DIR, "--plugin-dir",
                                                BUILT_PLUGIN_DIR, NULL };


/* Print the lines of the log holding `text` (to see why a test failed). */
static void log_show(const char *path, const char *text)
{
    char line[4096];
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, text) != NULL)
            fprintf(stderr, "\n    %s", line);
    fclose(f);
}

/* The mock that served one POST of `body` with `headers`, into name ("" when
 * none answered 200). */
static void served_by(int port, const char *body, const char *const *headers, char *name,
                      size_t len)
{
    struct resp r;

    name[0] = '\0';
    if (http_post(port, CHAT, body, headers, &r) == 0 && r.status == 200 &&
        resp_header(&r, "X-Mock-Backend") != NULL)
        snprintf(name, len, "%s", resp_header(&r, "X-Mock-Backend"));
    resp_free(&r);
}

static int one_line(const char *out)
{
    const char *nl = strchr(out, '\n');
    return out[0] != '\0' && nl != NULL && nl[1] == '\0';
}

/* A mock's requests in flight (GET /_mock/stats), or -1. */
static int mock_inflight(const struct mock *m)
{
    struct resp r;
    int n = -1;

    if (http_get(m->port, "/_mock/stats", &r) == 0 && r.body != NULL) {
        const char *p = strstr(r.body, "\"inflight\"");
        if (p != NULL && (p = strchr(p, ':')) != NULL)
            n = atoi(p + 1);
    }
    resp_free(&r);
    return n;
}

/* A request sent from a thread of its own, e.g. a slow one. */
struct bg {
    pthread_t t;
    int port;
    const char *body;
    const char *headers[4];
    long status;
    char served[64];
};

static void *bg_run(void *arg)
{
    struct bg *b = arg;
    struct resp r;

    if (http_post(b->port, CHAT, b->body, b->headers, &r) == 0) {
        b->status = r.status;
        if (resp_header(&r, "X-Mock-Backend") != NULL)
            snprintf(b->served, sizeof b->served, "%s", resp_header(&r, "X-Mock-Backend"));
    }
    resp_free(&r);
    return NULL;
}

/* Wait until one of n mocks has a request in flight: its position, or -1. */
static int wait_busy(const struct mock *m, int n)
{
    for (int tries = 0; tries < 200; tries++) {
        for (int i = 0; i < n; i++)
            if (mock_inflight(&m[i]) == 1)
                return i;
        sleep_ms(10);
    }
    return -1;
}

/* --- long_generation --- */

#define LG_LONG 0
#define LG_SHORT1 1
#define LG_SHORT2 2
static const char *const lg_names[3] = { "lg-long", "lg-short1", "lg-short2" };

/* Of n requests with `body`, how many each mock served; -1 when one failed. */
static int lg_spread(int port, const char *body, int n, int count[3])
{
    char name[64];

    count[0] = count[1] = count[2] = 0;
    for (int i = 0; i < n; i++) {
        int who = -1;
        served_by(port, body, NULL, name, sizeof name);
        for (int k = 0; k < 3; k++)
            if (strcmp(name, lg_names[k]) == 0)
                who = k;
        if (who < 0)
            return -1;
        count[who]++;
    }
    return 0;
}

static void lg_start(struct mock mk[3], struct router *rt, const char *match)
{
    char yaml[1024];

    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "routing: [long_generation, roundrobin]\n"
             "plugin_config:\n"
             "  long_generation: {min_max_tokens: 1000, backend_match: \"%s\"}\n"
             /* the long backend in the middle: neither first nor last */
             "models:\n  m: {backends: [%s, %s, %s]}\n",
             match, mk[LG_SHORT1].url, mk[LG_LONG].url, mk[LG_SHORT2].url);
    CU_ASSERT_FATAL(router_start(rt, yaml, example_args) == 0);
}

static void test_long_generation_routes(void)
{
    struct mock mk[3];
    struct router rt;
    char match[16];
    int count[3];

    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(mock_start(&mk[i], lg_names[i], "m", NULL) == 0);
    snprintf(match, sizeof match, ":%d", mk[LG_LONG].port);
    /* the marker names the long backend alone */
    CU_ASSERT_PTR_NULL_FATAL(strstr(mk[LG_SHORT1].url, match));
    CU_ASSERT_PTR_NULL_FATAL(strstr(mk[LG_SHORT2].url, match));
    lg_start(mk, &rt, match);

    /* long: always the long backend */
    static const char *const longs[] = {
        "{\"model\":\"m\",\"max_tokens\":5000,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":1000,\"messages\":[]}", /* N itself */
        "{\"model\":\"m\",\"max_completion_tokens\":5000,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":null,\"max_completion_tokens\":2000,\"messages\":[]}",
    };
    for (size_t k = 0; k < sizeof longs / sizeof longs[0]; k++) {
        CU_ASSERT_EQUAL(lg_spread(rt.port, longs[k], 6, count), 0);
        if (count[LG_LONG] != 6)
            fprintf(stderr, "\n  %s: long %d, short %d and %d\n", longs[k], count[LG_LONG],
                    count[LG_SHORT1], count[LG_SHORT2]);
        CU_ASSERT_EQUAL(count[LG_LONG], 6);
    }
    /* short, none, not a number, or max_tokens short with the newer name
     * long (max_tokens wins): roundrobin over all three */
    static const char *const shorts[] = {
        "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":999,\"messages\":[]}",
        "{\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":\"5000\",\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":10,\"max_completion_tokens\":5000,\"messages\":[]}",
    };
    for (size_t k = 0; k < sizeof shorts / sizeof shorts[0]; k++) {
        CU_ASSERT_EQUAL(lg_spread(rt.port, shorts[k], 6, count), 0);
        if (count[LG_SHORT1] < 1 || count[LG_SHORT2] < 1 || count[LG_LONG] < 1)
            fprintf(stderr, "\n  %s: long %d, short %d and %d\n", shorts[k], count[LG_LONG],
                    count[LG_SHORT1], count[LG_SHORT2]);
        CU_ASSERT_TRUE(count[LG_SHORT1] >= 1);
        CU_ASSERT_TRUE(count[LG_SHORT2] >= 1);
        CU_ASSERT_TRUE(count[LG_LONG] >= 1);
    }
    CU_ASSERT_EQUAL(router_stop(&rt), 0);

    /* no backend matches: long requests are declined too */
    lg_start(mk, &rt, "no-such-backend");
    CU_ASSERT_EQUAL(lg_spread(rt.port, longs[0], 6, count), 0);
    CU_ASSERT_TRUE(count[LG_SHORT1] >= 1);
    CU_ASSERT_TRUE(count[LG_SHORT2] >= 1);
    CU_ASSERT_TRUE(count[LG_LONG] >= 1);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    for (int i = 0; i < 3; i++)
        mock_stop(&mk[i]);
}

/* --check-config with plugin_config.long_generation as `section` (block
 * lines, indented 4): exit 2, one line naming the file, `where` and every
 * string of must. */
static void lg_check_fails(const char *name, const char *section, const char *where,
                           const char *const *must)
{
    char yaml[1024], *out = NULL, at[512];
    const char *file;

    snprintf(yaml, sizeof yaml,
             "routing: [long_generation, roundrobin]\n"
             "plugin_config:\n"
             "  long_generation:\n"
             "%s"
             "models:\n  m: {backends: [\"http://127.0.0.1:1\"]}\n",
             section);
    file = write_temp(name, yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    snprintf(at, sizeof at, "%s%s", file, where);
    const char *args[] = { "-c", file, "--check-config", "--plugin-dir", EXAMPLE_PLUGIN_DIR,
                           "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    int st = router_run(args, &out);
    int ok = st == 2 && one_line(out) && strstr(out, at) != NULL;
    for (int i = 0; must[i]; i++)
        ok &= strstr(out, must[i]) != NULL;
    if (!ok)
        fprintf(stderr, "\n  %s: exit %d, output: %s  (wanted %s and", name, st, out, at);
    for (int i = 0; !ok && must[i]; i++)
        fprintf(stderr, " '%s'", must[i]);
    CU_ASSERT_EQUAL(st, 2);
    CU_ASSERT_TRUE(one_line(out));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, at));
    for (int i = 0; must[i]; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(out, must[i]));
    free(out);
}

static void test_long_generation_config_errors(void)
{
    char *out = NULL;

    /* the control: a good section passes */
    const char *good = write_temp("lg-good.yaml",
                                  "routing: [long_generation, roundrobin]\n"
                                  "plugin_config:\n"
                                  "  long_generation:\n"
                                  "    min_max_tokens: 1000\n"
                                  "    backend_match: \":1\"\n"
                                  "models:\n  m: {backends: [\"http://127.0.0.1:1\"]}\n");
    const char *args[] = { "-c", good, "--check-config", "--plugin-dir", EXAMPLE_PLUGIN_DIR,
                           "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
    CU_ASSERT_EQUAL(router_run(args, &out), 0);
    free(out);

    const char *unknown[] = { "long_generation", "colour: unknown key", "min_max_tokens",
                              NULL };
    lg_check_fails("lg-unknown.yaml",
                   "    min_max_tokens: 1000\n"
                   "    backend_match: \":1\"\n"
                   "    colour: blue\n",
                   ":6:", unknown);
    /* a misspelt key is unknown, and the real one is then missing: the
     * misspelling is what is said */
    const char *typo[] = { "min_max_token: unknown key", NULL };
    lg_check_fails("lg-typo.yaml",
                   "    min_max_token: 1000\n"
                   "    backend_match: \":1\"\n",
                   ":4:", typo);
    /* missing: the section's place (its first line), and the key */
    const char *missing[] = { "backend_match", "required", NULL };
    lg_check_fails("lg-missing.yaml", "    min_max_tokens: 1000\n", ":4:", missing);
    const char *missing_n[] = { "min_max_tokens", "required", NULL };
    lg_check_fails("lg-missing-n.yaml", "    backend_match: \":1\"\n", ":4:", missing_n);
    /* not a whole number >= 1 */
    const char *zero[] = { "min_max_tokens", ">= 1", NULL };
    lg_check_fails("lg-zero.yaml",
                   "    min_max_tokens: 0\n"
                   "    backend_match: \":1\"\n",
                   ":4:", zero);
    lg_check_fails("lg-words.yaml",
                   "    min_max_tokens: lots\n"
                   "    backend_match: \":1\"\n",
                   ":4:", zero);
    const char *empty[] = { "backend_match", NULL };
    lg_check_fails("lg-empty.yaml",
                   "    min_max_tokens: 10\n"
                   "    backend_match: \"\"\n",
                   ":5:", empty);
}

/* --- least_inflight --- */

static void test_least_inflight_avoids_busy(void)
{
    struct mock mk[2];
    struct router rt;
    char yaml[1024], name[64];
    static const char *const names[2] = { "li-a", "li-b" };
    struct bg slow = { .body = BODY, .headers = { "X-Mock-Delay-Ms: 1500", NULL } };
    int busy, other_hits = 0;

    for (int i = 0; i < 2; i++)
        CU_ASSERT_FATAL(mock_start(&mk[i], names[i], "m", NULL) == 0);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "routing: [least_inflight, roundrobin]\n"
             "plugin_config:\n  least_inflight: {min_gap: 1}\n"
             "models:\n  m: {backends: [%s, %s]}\n",
             mk[0].url, mk[1].url);
    CU_ASSERT_FATAL(router_start(&rt, yaml, example_args) == 0);
    /* nothing in flight: least_inflight declines and roundrobin spreads */
    int seen[2] = { 0, 0 };
    for (int i = 0; i < 4; i++) {
        served_by(rt.port, BODY, NULL, name, sizeof name);
        for (int k = 0; k < 2; k++)
            seen[k] += strcmp(name, names[k]) == 0;
    }
    CU_ASSERT_EQUAL(seen[0], 2);
    CU_ASSERT_EQUAL(seen[1], 2);

    slow.port = rt.port;
    CU_ASSERT_FATAL(pthread_create(&slow.t, NULL, bg_run, &slow) == 0);
    busy = wait_busy(mk, 2);
    CU_ASSERT_TRUE(busy >= 0);
    if (busy >= 0) {
        /* roundrobin alone would send every other one to the busy one */
        for (int i = 0; i < 4; i++) {
            served_by(rt.port, BODY, NULL, name, sizeof name);
            other_hits += strcmp(name, names[1 - busy]) == 0;
        }
        CU_ASSERT_EQUAL(other_hits, 4);
        CU_ASSERT_EQUAL(mock_inflight(&mk[busy]), 1); /* still busy all along */
    }
    pthread_join(slow.t, NULL);
    CU_ASSERT_EQUAL(slow.status, 200);
    if (busy >= 0)
        CU_ASSERT_STRING_EQUAL(slow.served, names[busy]);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    for (int i = 0; i < 2; i++)
        mock_stop(&mk[i]);
}

/* --- the host API contract --- */

#define CONTRACT_KEY_ENV "SY_E2E_CONTRACT_KEY"
#define CONTRACT_KEY "contract-secret-1234"
/* Byte for byte the CONTRACT_BODY of tests/plugins/contract.c. */
#define CONTRACT_BODY                                                                        \
    "{\"model\":\"m-alias\",\"max_tokens\":7,\"temperature\":0.5,\"stream\":false,"           \
    "\"stream_options\":{\"include_usage\":true},"                                           \
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"},"                               \
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"again\"}]}],"             \
    "\"tag\":\"x\",\"stop\":null,\"a/b\":\"slash\",\"nul\":\"a\\u0000b\"}"
#define PROBE_BODY "{\"model\":\"n\",\"prompt\":\"contract probe\"}" /* contract_health.c */
/* At least this many checks per hook run: fewer means a part was skipped. */
#define CREATE_CHECKS 157
#define ROUTE_CHECKS 72
#define START_CHECKS 29
#define CALLBACK_CHECKS 16

static const char *const ct_names[3] = { "ct-a", "ct-b", "ct-c" };

/* The models both contract tests use: m over A and B (weight 3), n over C
 * (with a key) and A. */
static void contract_models(char *buf, size_t len, struct mock mk[3])
{
    snprintf(buf, len,
             "models:\n"
             "  m:\n"
             "    backends: [%s, {url: %s, weight: 3}]\n"
             "    type: chat\n"
             "    fallback_model: n\n"
             "    aliases: [m-alias]\n"
             "  n:\n"
             "    backends: [{url: %s, api_key_env: " CONTRACT_KEY_ENV "}, %s]\n"
             "    type: completion\n",
             mk[0].url, mk[1].url, mk[2].url, mk[0].url);
}

/* The "contract: N checks, M failed in HOOK" lines of plugin `plugin`: how
 * many there are for HOOK, the fewest checks of one and the failures of all. */
static int contract_tallies(const char *log, const char *plugin, const char *hook, int *least,
                            int *failed)
{
    char line[4096], prefix[64], tail[64];
    int lines = 0;
    FILE *f = fopen(log, "r");

    *least = -1;
    *failed = 0;
    snprintf(prefix, sizeof prefix, "[%s] contract: ", plugin);
    snprintf(tail, sizeof tail, " failed in %s", hook);
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, prefix);
        int n, m;
        if (p == NULL || strstr(line, tail) == NULL ||
            sscanf(p + strlen(prefix), "%d checks, %d failed", &n, &m) != 2)
            continue;
        lines++;
        if (*least < 0 || n < *least)
            *least = n;
        *failed += m;
    }
    fclose(f);
    return lines;
}

/* The 1-based line of `key` in the router's config file (listen: is line 1). */
static int line_of(const char *yaml, const char *key)
{
    const char *at = strstr(yaml, key);
    int line = 2;

    for (const char *p = yaml; at != NULL && p < at; p++)
        line += *p == '\n';
    return at ? line : -1;
}

/* POST /admin/drain or /admin/undrain?backend=URL on the admin listener
 * (which opens just after the proxy's): the status. */
static long admin_drain(int admin, const char *what, const char *url)
{
    char path[256];
    long status = 0;

    snprintf(path, sizeof path, "/admin/%s?backend=%s", what, url);
    for (int i = 0; i < 100 && status == 0; i++) {
        struct resp r;
        if (http_raw(admin, "POST", path, "", NULL, 3000, &r) == 0)
            status = r.status;
        else
            sleep_ms(20);
        resp_free(&r);
    }
    return status;
}

static void test_contract_routing(void)
{
    struct mock mk[3];
    struct router rt;
    char yaml[4096], models[1024], sample[256], name[64], want[512];
    struct bg helper = { .body = BODY,
                         .headers = { "X-Contract-Pick: 1", "X-Mock-Delay-Ms: 1500", NULL } };
    const char *contract_headers[] = { "Content-Type: application/json", "X-Contract: yes",
                                       "X-Request-Id: contract-req-1", "X-Contract-Busy: 1",
                                       "X-Contract-Drained: yes", NULL };
    int n, least, failed, line, admin = free_port();

    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(mock_start(&mk[i], ct_names[i], "m,n", NULL) == 0);
    CU_ASSERT_EQUAL_FATAL(setenv(CONTRACT_KEY_ENV, CONTRACT_KEY, 1), 0); /* the router inherits it */
    contract_models(models, sizeof models, mk);
    for (int pass = 0; pass < 2; pass++) {
        line = pass == 0 ? 0 : line_of(yaml, "    string:");
        snprintf(yaml, sizeof yaml,
                 "workers: 1\n"
                 "admin_listen: 127.0.0.1:%d\n"
                 "routing: [contract]\n"
                 "plugin_config:\n"
                 "  contract:\n"
                 "    string: hello world\n"
                 "    int: -42\n"
                 "    seconds: 250ms\n"
                 "    bool: off\n"
                 "    flag: yes\n"
                 "    double: 0.25\n"
                 "    size: 64KiB\n"
                 "    list: [one, two, three]\n"
                 "    map: {alpha: 1, beta: two}\n"
                 "    line: %d\n"
                 "    backends: [%s, %s, %s]\n"
                 "    key: " CONTRACT_KEY "\n"
                 "%s",
                 admin, line, mk[0].url, mk[1].url, mk[2].url, models);
    }
    CU_ASSERT_FATAL(router_start(&rt, yaml, test_plugin_args) == 0);
    /* the operator holds C out (another source than the plugin) */
    CU_ASSERT_EQUAL(admin_drain(admin, "drain", mk[2].url), 200);

    /* a helper request holds B (candidate 1) for 1.5 s */
    helper.port = rt.port;
    CU_ASSERT_FATAL(pthread_create(&helper.t, NULL, bg_run, &helper) == 0);
    for (int i = 0; i < 200 && mock_inflight(&mk[1]) != 1; i++)
        sleep_ms(10);
    CU_ASSERT_EQUAL(mock_inflight(&mk[1]), 1);
    /* checked with B busy: served by the first candidate, A */
    served_by(rt.port, CONTRACT_BODY, contract_headers, name, sizeof name);
    CU_ASSERT_STRING_EQUAL(name, "ct-a");
    pthread_join(helper.t, NULL);
    CU_ASSERT_EQUAL(helper.status, 200);
    CU_ASSERT_STRING_EQUAL(helper.served, "ct-b");
    /* and again with nothing in flight, C back in */
    CU_ASSERT_EQUAL(admin_drain(admin, "undrain", mk[2].url), 200);
    contract_headers[3] = NULL;
    served_by(rt.port, CONTRACT_BODY, contract_headers, name, sizeof name);
    CU_ASSERT_STRING_EQUAL(name, "ct-a");
    /* C's changes: the drain, the undrain, and the flag round trip with C
     * in (with C drained, the plugin's flag changed nothing) */
    snprintf(sample, sizeof sample, "switchyard_backend_state_changes_total{backend=\"%s\"}",
             mk[2].url);
    CU_ASSERT_EQUAL(metric_value(admin, sample, -1), 4);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    unsetenv(CONTRACT_KEY_ENV);

    if (router_log_lines(&rt, "contract: FAIL", NULL) > 0)
        log_show(rt.log, "contract: FAIL");
    CU_ASSERT_EQUAL(router_log_lines(&rt, "contract: FAIL", NULL), 0);
    n = contract_tallies(rt.log, "contract", "create()", &least, &failed);
    CU_ASSERT_EQUAL(n, 1); /* workers: 1, one instance */
    CU_ASSERT_TRUE(least >= CREATE_CHECKS);
    CU_ASSERT_EQUAL(failed, 0);
    n = contract_tallies(rt.log, "contract", "route()", &least, &failed);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_TRUE(least >= ROUTE_CHECKS);
    CU_ASSERT_EQUAL(failed, 0);
    /* log(): the plugin's name in front, debug lines below the level kept out */
    snprintf(want, sizeof want, "[contract] contract: config file %s\n", rt.config);
    CU_ASSERT_EQUAL(router_log_lines(&rt, want, NULL), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "a debug line nobody sees", NULL), 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "-> unhealthy (contract): contract: round trip", NULL), 1);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "-> healthy (contract): contract: round trip done", NULL), 1);
    for (int i = 0; i < 3; i++)
        mock_stop(&mk[i]);
}

/* The value of a string member of a JSON object (into buf), or "". */
static const char *json_str(json_object *o, const char *a, const char *b, char *buf, size_t len)
{
    json_object *v = NULL;

    buf[0] = '\0';
    if (o != NULL && json_object_object_get_ex(o, a, &v) &&
        (b == NULL || json_object_object_get_ex(v, b, &v)) &&
        json_object_is_type(v, json_type_string))
        snprintf(buf, len, "%s", json_object_get_string(v));
    return buf;
}

static void test_contract_health(void)
{
    struct mock mk[3];
    struct router rt;
    struct resp r;
    char yaml[4096], models[1024], sample[256], buf[1024];
    int n, least, failed, closed = free_port();

    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(mock_start(&mk[i], ct_names[i], "m,n", NULL) == 0);
    CU_ASSERT_EQUAL_FATAL(mock_set_mode(&mk[1], "{\"health_status\":503}"), 0);
    CU_ASSERT_EQUAL_FATAL(setenv(CONTRACT_KEY_ENV, CONTRACT_KEY, 1), 0);
    contract_models(models, sizeof models, mk);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "health: [contract_health]\n"
             "plugin_config:\n"
             "  contract_health:\n"
             "    backends: [%s, %s, %s]\n"
             "    closed: http://127.0.0.1:%d\n"
             "    key: " CONTRACT_KEY "\n"
             "%s",
             mk[0].url, mk[1].url, mk[2].url, closed, models);
    CU_ASSERT_FATAL(router_start(&rt, yaml, test_plugin_args) == 0);
    unsetenv(CONTRACT_KEY_ENV);
    for (int i = 0; i < 500 && contract_tallies(rt.log, "contract_health", "callbacks", &least,
                                                &failed) == 0; i++)
        sleep_ms(10);

    /* what the plugin did shows outside it: a probe of 0.25 s on A, six
     * state changes of C, a POST with C's key */
    snprintf(sample, sizeof sample, "switchyard_probe_latency_seconds_count{backend=\"%s\"}",
             mk[0].url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 1);
    snprintf(sample, sizeof sample, "switchyard_probe_latency_seconds_sum{backend=\"%s\"}",
             mk[0].url);
    CU_ASSERT_DOUBLE_EQUAL(metric_value(rt.port, sample, -1), 0.25, 1e-6);
    snprintf(sample, sizeof sample, "switchyard_backend_state_changes_total{backend=\"%s\"}",
             mk[2].url);
    CU_ASSERT_EQUAL(metric_value(rt.port, sample, -1), 6);
    /* 1.3: its own numbers */
    CU_ASSERT_EQUAL(metric_value(rt.port, "switchyard_plugin_counter_total{plugin=\"contract_health\","
                                          "name=\"contract_counter\"}", -1), 3);
    CU_ASSERT_DOUBLE_EQUAL(metric_value(rt.port, "switchyard_plugin_gauge{plugin=\"contract_health\","
                                                 "name=\"contract_gauge\"}", -1), 2.5, 1e-9);
    CU_ASSERT_EQUAL(mock_last(&mk[2], &r), 0);
    json_object *last = json_tokener_parse(r.body ? r.body : "");
    CU_ASSERT_STRING_EQUAL(json_str(last, "method", NULL, buf, sizeof buf), "POST");
    CU_ASSERT_STRING_EQUAL(json_str(last, "uri", NULL, buf, sizeof buf), "/v1/completions");
    CU_ASSERT_STRING_EQUAL(json_str(last, "body", NULL, buf, sizeof buf), PROBE_BODY);
    CU_ASSERT_STRING_EQUAL(json_str(last, "headers", "Authorization", buf, sizeof buf),
                           "Bearer " CONTRACT_KEY);
    CU_ASSERT_STRING_EQUAL(json_str(last, "headers", "X-Contract-Probe", buf, sizeof buf), "yes");
    json_object_put(last);
    resp_free(&r);
    /* requests flow as usual */
    CU_ASSERT_EQUAL(http_post(rt.port, CHAT, BODY, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);

    if (router_log_lines(&rt, "contract: FAIL", NULL) > 0)
        log_show(rt.log, "contract: FAIL");
    CU_ASSERT_EQUAL(router_log_lines(&rt, "contract: FAIL", NULL), 0);
    n = contract_tallies(rt.log, "contract_health", "start()", &least, &failed);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_TRUE(least >= START_CHECKS);
    CU_ASSERT_EQUAL(failed, 0);
    n = contract_tallies(rt.log, "contract_health", "callbacks", &least, &failed);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_TRUE(least >= CALLBACK_CHECKS);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(router_log_lines(&rt, "-> cooldown for 30.0s (contract_health): contract: cooling", NULL),
                    1);
    for (int i = 0; i < 3; i++)
        mock_stop(&mk[i]);
}

void register_examples_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e sdk examples", NULL, NULL);
    CU_add_test(s, "long_generation: long requests to their backend, the rest to roundrobin",
                test_long_generation_routes);
    CU_add_test(s, "long_generation: bad settings stop --check-config",
                test_long_generation_config_errors);
    CU_add_test(s, "least_inflight: away from a busy backend", test_least_inflight_avoids_busy);
    CU_add_test(s, "host API contract, routing", test_contract_routing);
    CU_add_test(s, "host API contract, health", test_contract_health);
}
