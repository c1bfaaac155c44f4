/*
 * The host API's contract, checked from a plugin: a routing plugin that
 * calls every function of struct sy_host_api a routing plugin may call
 * (1.0, 1.1 and 1.2; the control-thread ones, timer_add, timer_cancel and
 * http_request, are contract_health.c's) and compares each answer with
 * what the end-to-end test configured and sent (tests/e2e/test_examples.c,
 * "host API contract").  Every check that fails logs
 *     contract: FAIL <what>: got ..., want ...
 * and each hook run ends with one line
 *     contract: N checks, M failed in create()   (or route())
 *
 * What the test sets up, and this plugin expects:
 *   plugin_config.contract: a map with one key of each type, in this order:
 *       string: hello world        int: -42          seconds: 250ms
 *       bool: off                  flag: yes         double: 0.25
 *       size: 64KiB                list: [one, two, three]
 *       map: {alpha: 1, beta: two}
 *       line: L        (the line of `string:` in the config file; the keys
 *                       above are on lines L..L+8, one a line)
 *       backends: [A, B, C]  (the backends' URLs, in the order of the setup)
 *       key: K         (the value of the api_key_env variable of C)
 *   models: m {backends: [A, {url: B, weight: 3}], type: chat,
 *              fallback_model: n, aliases: [m-alias]}
 *           n {backends: [{url: C, api_key_env: ...}, A], type: completion}
 *   workers: 1, routing: [contract]
 *   requests: POST /v1/chat/completions with CONTRACT_BODY below and the
 *   headers X-Contract: yes, X-Request-Id: contract-req-1, and
 *   X-Contract-Busy: N when candidate 1 (B) has N requests in flight, and
 *   X-Contract-Drained: yes while the operator drains C (/admin/drain).
 *   A request with X-Contract-Pick: I instead is a helper: it goes to
 *   candidate I, unchecked.  Checked requests go to the first candidate.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <switchyard/plugin.h>

#include "contract_checks.h"

/* The body the test sends, byte for byte. */
#define CONTRACT_BODY                                                                        \
    "{\"model\":\"m-alias\",\"max_tokens\":7,\"temperature\":0.5,\"stream\":false,"           \
    "\"stream_options\":{\"include_usage\":true},"                                           \
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"},"                               \
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"again\"}]}],"             \
    "\"tag\":\"x\",\"stop\":null,\"a/b\":\"slash\",\"nul\":\"a\\u0000b\"}"
#define CONTRACT_ID "contract-req-1"
#define NBACKENDS 3

struct contract {
    const struct sy_host_api *host;
    char *url[NBACKENDS]; /* the backends' URLs as configured, in setup order */
    double created;       /* now() in create() */
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "file:line" split: the file into file (len bytes), the line returned (0
 * when there is none). */
static long split_where(const char *where, char *file, size_t len)
{
    const char *colon = strrchr(where, ':');
    char *end;
    long line = colon ? strtol(colon + 1, &end, 10) : 0;

    if (colon == NULL || colon[1] == '\0' || *end != '\0' || line <= 0) {
        snprintf(file, len, "%s", where);
        return 0;
    }
    snprintf(file, len, "%.*s", (int)(colon - where), where);
    return line;
}

/* --- config: create() --- */

static const char *const all_keys[] = { "string", "int",  "seconds", "bool",     "flag",
                                        "double", "size", "list",    "map",      "line",
                                        "backends", "key", NULL };
#define NKEYS 12

static void check_config(struct tally *t, const sy_config *cfg, long long *line_out)
{
    const struct sy_host_api *h = t->h;
    const char *s = NULL, *k = NULL;
    long long i = 0, line = 0;
    double d = 0;
    int b = -1;
    size_t z = 0;
    const sy_config *sec = NULL, *list = NULL, *map = NULL, *v = NULL;
    char where[512], file[512], file2[512], what[128], err[512];

    /* config_string */
    check_int(t, "config_string(string) status", h->config_string(cfg, "string", &s), SY_OK);
    check_str(t, "config_string(string)", s, "hello world");
    check_int(t, "config_string(absent)", h->config_string(cfg, "absent", &s), SY_DECLINED);
    check_int(t, "config_string(map) is not a scalar", h->config_string(cfg, "map", &s), SY_ERROR);
    check_int(t, "config_string(list) is not a scalar", h->config_string(cfg, "list", &s),
              SY_ERROR);
    /* config_int */
    check_int(t, "config_int(int) status", h->config_int(cfg, "int", &i), SY_OK);
    check_int(t, "config_int(int)", i, -42);
    check_int(t, "config_int(string)", h->config_int(cfg, "string", &i), SY_ERROR);
    check_int(t, "config_int(double) 0.25 is not whole", h->config_int(cfg, "double", &i),
              SY_ERROR);
    check_int(t, "config_int(absent)", h->config_int(cfg, "absent", &i), SY_DECLINED);
    check_int(t, "config_int(map)", h->config_int(cfg, "map", &i), SY_ERROR);
    /* config_seconds */
    check_int(t, "config_seconds(seconds) status", h->config_seconds(cfg, "seconds", &d), SY_OK);
    check_dbl(t, "config_seconds(seconds) 250ms", d, 0.25);
    check_int(t, "config_seconds(string)", h->config_seconds(cfg, "string", &d), SY_ERROR);
    check_int(t, "config_seconds(absent)", h->config_seconds(cfg, "absent", &d), SY_DECLINED);
    /* config_bool */
    check_int(t, "config_bool(bool) status", h->config_bool(cfg, "bool", &b), SY_OK);
    check_int(t, "config_bool(bool) off", b, 0);
    check_int(t, "config_bool(flag) status", h->config_bool(cfg, "flag", &b), SY_OK);
    check_int(t, "config_bool(flag) yes", b, 1);
    check_int(t, "config_bool(string)", h->config_bool(cfg, "string", &b), SY_ERROR);
    check_int(t, "config_bool(absent)", h->config_bool(cfg, "absent", &b), SY_DECLINED);
    /* config_double (1.2) */
    check_int(t, "config_double(double) status", h->config_double(cfg, "double", &d), SY_OK);
    check_dbl(t, "config_double(double)", d, 0.25);
    check_int(t, "config_double(int) status", h->config_double(cfg, "int", &d), SY_OK);
    check_dbl(t, "config_double(int)", d, -42);
    check_int(t, "config_double(string)", h->config_double(cfg, "string", &d), SY_ERROR);
    check_int(t, "config_double(absent)", h->config_double(cfg, "absent", &d), SY_DECLINED);
    /* config_size (1.2) */
    check_int(t, "config_size(size) status", h->config_size(cfg, "size", &z), SY_OK);
    check_int(t, "config_size(size) 64KiB", (long long)z, 65536);
    check_int(t, "config_size(string)", h->config_size(cfg, "string", &z), SY_ERROR);
    check_int(t, "config_size(absent)", h->config_size(cfg, "absent", &z), SY_DECLINED);

    /* config_section, config_count */
    check_int(t, "config_section(NULL) status", h->config_section(cfg, NULL, &sec), SY_OK);
    check_true(t, "config_section(NULL) is the section itself", sec == cfg, "another one");
    check_int(t, "config_count(section)", (long long)h->config_count(cfg), NKEYS);
    check_int(t, "config_section(list) status", h->config_section(cfg, "list", &list), SY_OK);
    check_int(t, "config_section(map) status", h->config_section(cfg, "map", &map), SY_OK);
    check_int(t, "config_section(string) is a scalar", h->config_section(cfg, "string", &sec),
              SY_ERROR);
    check_int(t, "config_section(absent)", h->config_section(cfg, "absent", &sec), SY_DECLINED);
    if (list == NULL || map == NULL) {
        failf(t, "config_section", "no list or map to go on with");
        return;
    }
    check_int(t, "config_count(list)", (long long)h->config_count(list), 3);
    check_int(t, "config_count(map)", (long long)h->config_count(map), 2);
    /* config_item */
    static const char *const items[] = { "one", "two", "three" };
    for (size_t n = 0; n < 3; n++) {
        v = NULL;
        s = NULL;
        snprintf(what, sizeof what, "config_item(list, %zu) status", n);
        check_int(t, what, h->config_item(list, n, &v), SY_OK);
        snprintf(what, sizeof what, "config_string(config_item(list, %zu), NULL)", n);
        check_int(t, what, v ? h->config_string(v, NULL, &s) : SY_ERROR, SY_OK);
        check_str(t, what, s, items[n]);
    }
    check_int(t, "config_item(list, 3) past the end", h->config_item(list, 3, &v), SY_DECLINED);
    check_int(t, "config_item(map, 0) not a list", h->config_item(map, 0, &v), SY_ERROR);
    /* config_entry */
    v = NULL;
    check_int(t, "config_entry(map, 0) status", h->config_entry(map, 0, &k, &v), SY_OK);
    check_str(t, "config_entry(map, 0) key", k, "alpha");
    i = 0;
    check_int(t, "config_int(config_entry(map, 0), NULL) status",
              v ? h->config_int(v, NULL, &i) : SY_ERROR, SY_OK);
    check_int(t, "config_int(config_entry(map, 0), NULL)", i, 1);
    check_int(t, "config_seconds(config_entry(map, 0), NULL) status",
              v ? h->config_seconds(v, NULL, &d) : SY_ERROR, SY_OK);
    check_dbl(t, "config_seconds(config_entry(map, 0), NULL) a plain number", d, 1);
    v = NULL;
    check_int(t, "config_entry(map, 1) status", h->config_entry(map, 1, &k, &v), SY_OK);
    check_str(t, "config_entry(map, 1) key", k, "beta");
    s = NULL;
    if (v != NULL)
        h->config_string(v, NULL, &s);
    check_str(t, "config_string(config_entry(map, 1), NULL)", s, "two");
    check_int(t, "config_entry(map, 2) past the end", h->config_entry(map, 2, &k, &v), SY_DECLINED);
    check_int(t, "config_entry(list, 0) not a map", h->config_entry(list, 0, &k, &v), SY_ERROR);
    k = NULL;
    check_int(t, "config_entry(section, 0) status", h->config_entry(cfg, 0, &k, &v), SY_OK);
    check_str(t, "config_entry(section, 0) key, in file order", k, "string");
    k = NULL;
    check_int(t, "config_entry(section, 11) status", h->config_entry(cfg, NKEYS - 1, &k, &v),
              SY_OK);
    check_str(t, "config_entry(section, 11) key", k, "key");

    /* config_where: file:line of each key */
    check_int(t, "config_int(line) status", h->config_int(cfg, "line", &line), SY_OK);
    *line_out = line;
    h->config_where(cfg, "string", where, sizeof where);
    check_int(t, "config_where(string) line", split_where(where, file, sizeof file), line);
    check_true(t, "config_where(string) names a .yaml file",
               strlen(file) > 5 && strcmp(file + strlen(file) - 5, ".yaml") == 0, where);
    h->log(h, SY_LOG_INFO, "contract: config file %s", file);
    for (size_t n = 1; n < 9; n++) {
        snprintf(what, sizeof what, "config_where(%s)", all_keys[n]);
        h->config_where(cfg, all_keys[n], where, sizeof where);
        check_int(t, what, split_where(where, file2, sizeof file2), line + (long long)n);
        check_str(t, what, file2, file);
    }
    h->config_where(list, NULL, where, sizeof where);
    check_int(t, "config_where(list section, NULL) line", split_where(where, file2, sizeof file2),
              line + 7);
    h->config_where(cfg, NULL, where, sizeof where);
    long sline = split_where(where, file2, sizeof file2);
    check_str(t, "config_where(section, NULL) file", file2, file);
    check_true(t, "config_where(section, NULL) line is at the section", sline > 0 && sline <= line,
               where);
    /* an absent key: the section's place */
    char absent[512];
    h->config_where(cfg, "absent", absent, sizeof absent);
    check_str(t, "config_where(absent) is the section's place", absent, where);
    memset(where, 'x', sizeof where);
    h->config_where(cfg, "string", where, 8);
    check_true(t, "config_where(len 8) terminated within 8 bytes", memchr(where, '\0', 8) != NULL,
               "no NUL");
    check_int(t, "config_where(len 8) keeps the start", strncmp(where, file, 7), 0);
    check_true(t, "config_where(len 8) writes no more", where[8] == 'x', "more");

    /* config_check_keys (1.2) */
    check_int(t, "config_check_keys(every key)", h->config_check_keys(cfg, all_keys, err, sizeof err),
              SY_OK);
    static const char *const but_size[] = { "string", "int",  "seconds", "bool", "flag",
                                            "double", "list", "map",     "line", "backends",
                                            "key",    NULL };
    err[0] = '\0';
    check_int(t, "config_check_keys(all but size)",
              h->config_check_keys(cfg, but_size, err, sizeof err), SY_ERROR);
    h->config_where(cfg, "size", where, sizeof where);
    check_true(t, "config_check_keys error starts with file:line of size",
               strncmp(err, where, strlen(where)) == 0, err);
    check_true(t, "config_check_keys error names size", strstr(err, ": size: unknown key") != NULL,
               err);
    check_true(t, "config_check_keys error lists the known keys", strstr(err, "backends") != NULL,
               err);
    static const char *const none[] = { NULL };
    err[0] = '\0';
    check_int(t, "config_check_keys(no keys)", h->config_check_keys(cfg, none, err, sizeof err),
              SY_ERROR);
    check_true(t, "config_check_keys(no keys) names the first key",
               strstr(err, ": string: unknown key") != NULL, err);
    static const char *const map_keys[] = { "alpha", "beta", NULL };
    static const char *const alpha_only[] = { "alpha", NULL };
    check_int(t, "config_check_keys(map, alpha beta)",
              h->config_check_keys(map, map_keys, err, sizeof err), SY_OK);
    err[0] = '\0';
    check_int(t, "config_check_keys(map, alpha)",
              h->config_check_keys(map, alpha_only, err, sizeof err), SY_ERROR);
    check_true(t, "config_check_keys(map, alpha) names beta",
               strstr(err, ": beta: unknown key") != NULL, err);
    memset(err, 'x', sizeof err);
    h->config_check_keys(cfg, none, err, 16);
    check_true(t, "config_check_keys(errlen 16) terminated within 16 bytes",
               memchr(err, '\0', 16) != NULL, "no NUL");
}

/* --- models and backends: create() --- */

static void check_models(struct tally *t)
{
    const struct sy_host_api *h = t->h;

    check_int(t, "model_count", (long long)h->model_count(h), 2);
    check_str(t, "model_name(0)", h->model_name(h, 0), "m");
    check_str(t, "model_name(1)", h->model_name(h, 1), "n");
    check_str(t, "model_name(2) past the end", h->model_name(h, 2), NULL);
    check_int(t, "model_exists(m)", h->model_exists(h, "m"), SY_OK);
    check_int(t, "model_exists(n)", h->model_exists(h, "n"), SY_OK);
    check_int(t, "model_exists(m-alias) an alias", h->model_exists(h, "m-alias"), SY_DECLINED);
    check_int(t, "model_exists(ghost)", h->model_exists(h, "ghost"), SY_DECLINED);
    check_str(t, "model_option(m, type)", h->model_option(h, "m", "type"), "chat");
    check_str(t, "model_option(m, fallback_model)", h->model_option(h, "m", "fallback_model"), "n");
    check_str(t, "model_option(n, type)", h->model_option(h, "n", "type"), "completion");
    check_str(t, "model_option(n, fallback_model) unset",
              h->model_option(h, "n", "fallback_model"), NULL);
    check_str(t, "model_option(m, colour) unknown", h->model_option(h, "m", "colour"), NULL);
    check_str(t, "model_option(ghost, type)", h->model_option(h, "ghost", "type"), NULL);
}

static void check_backends(struct tally *t, struct contract *c, const char *key)
{
    const struct sy_host_api *h = t->h;
    const sy_backend *b[NBACKENDS];
    static const char *const models[NBACKENDS][3] = { { "m", "n", NULL }, { "m", NULL, NULL },
                                                       { "n", NULL, NULL } };
    static const unsigned weights[NBACKENDS] = { 1, 3, 1 };
    char what[128], auth[512];
    unsigned seen = 0;

    check_int(t, "backend_count", (long long)h->backend_count(h), NBACKENDS);
    check_true(t, "backend_at(3) past the end is NULL", h->backend_at(h, NBACKENDS) == NULL,
               "a backend");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    for (size_t i = 0; i < NBACKENDS; i++) {
        b[i] = h->backend_at(h, i);
        snprintf(what, sizeof what, "backend_at(%zu)", i);
        check_true(t, what, b[i] != NULL, "NULL");
        if (b[i] == NULL)
            continue;
        snprintf(what, sizeof what, "backend_url(backend_at(%zu))", i);
        check_str(t, what, h->backend_url(b[i]), c->url[i]);
        unsigned idx = h->backend_index(b[i]);
        snprintf(what, sizeof what, "backend_index(backend_at(%zu)) small and unique", i);
        check_true(t, what, idx < NBACKENDS && !(seen & 1u << idx), "out of range or repeated");
        if (idx < NBACKENDS)
            seen |= 1u << idx;
        snprintf(what, sizeof what, "backend_weight(backend_at(%zu))", i);
        check_int(t, what, h->backend_weight(b[i]), weights[i]);
        for (size_t m = 0; m < 3; m++) {
            snprintf(what, sizeof what, "backend_model(backend_at(%zu), %zu)", i, m);
            check_str(t, what, h->backend_model(b[i], m), models[i][m]);
        }
        snprintf(what, sizeof what, "backend_authorization(backend_at(%zu))", i);
        check_str(t, what, h->backend_authorization(b[i]), i == 2 ? auth : NULL);
        snprintf(what, sizeof what, "backend_state(backend_at(%zu))", i);
        check_int(t, what, h->backend_state(b[i]), SY_BACKEND_HEALTHY);
        snprintf(what, sizeof what, "backend_inflight(backend_at(%zu))", i);
        check_int(t, what, h->backend_inflight(b[i]), 0);
        snprintf(what, sizeof what, "backend_flag(backend_at(%zu))", i);
        check_int(t, what, h->backend_flag(h, b[i]), 0);
    }
}

static void check_clock(struct tally *t, double *at)
{
    const struct sy_host_api *h = t->h;
    double mine = mono(), a = h->now(), b = h->now();
    char got[64];

    snprintf(got, sizeof got, "%.3f against CLOCK_MONOTONIC %.3f", a, mine);
    check_true(t, "now() is the monotonic clock in seconds", ABS(a - mine) < 0.05, got);
    check_true(t, "now() never goes back", b >= a, "an earlier time");
    *at = a;
}

static void c_destroy(void *inst);

static int c_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                    char *err, size_t errlen)
{
    struct contract *c = calloc(1, sizeof *c);
    struct tally t = { host, 0, 0 };
    const sy_config *urls = NULL;
    const char *key = "";
    long long line = 0;

    if (c == NULL)
        return SY_ERROR;
    c->host = host;
    /* the table: the size and version of this header's */
    check_int(&t, "host->size", (long long)host->size, (long long)sizeof(struct sy_host_api));
    check_int(&t, "host->abi_major", host->abi_major, SY_ABI_MAJOR);
    check_int(&t, "host->abi_minor", host->abi_minor, SY_ABI_MINOR);
    if (host->size < sizeof(struct sy_host_api)) {
        snprintf(err, errlen, "needs plugin ABI 1.2");
        free(c);
        return SY_ERROR;
    }
    /* a debug line: below the default level, never shown */
    host->log(host, SY_LOG_DEBUG, "contract: a debug line nobody sees");
    check_config(&t, cfg, &line);
    if (host->config_section(cfg, "backends", &urls) == SY_OK)
        for (size_t i = 0; i < NBACKENDS; i++) {
            const sy_config *item;
            const char *url = "";
            if (host->config_item(urls, i, &item) == SY_OK)
                host->config_string(item, NULL, &url);
            c->url[i] = strdup(url);
        }
    host->config_string(cfg, "key", &key);
    for (size_t i = 0; i < NBACKENDS; i++)
        if (c->url[i] == NULL) {
            c_destroy(c);
            snprintf(err, errlen, "backends: the list of %d URLs is required", NBACKENDS);
            return SY_ERROR;
        }
    check_models(&t);
    check_backends(&t, c, key);
    check_clock(&t, &c->created);
    summary(&t, "create()");
    *inst = c;
    return SY_OK;
}

static void c_destroy(void *inst)
{
    struct contract *c = inst;

    for (size_t i = 0; i < NBACKENDS; i++)
        free(c->url[i]);
    free(c);
}

/* --- the request: route() --- */

static void check_request(struct tally *t, const sy_request *req)
{
    const struct sy_host_api *h = t->h;
    const char *s;
    size_t len;
    double d;
    int b;

    check_str(t, "request_id", h->request_id(req), CONTRACT_ID);
    check_str(t, "request_model (the alias resolved)", h->request_model(req), "m");
    check_str(t, "request_path", h->request_path(req), "/v1/chat/completions");
    check_str(t, "request_header(X-Contract)", h->request_header(req, "X-Contract"), "yes");
    check_str(t, "request_header(x-cONTRACT) case-insensitive",
              h->request_header(req, "x-cONTRACT"), "yes");
    check_str(t, "request_header(X-Absent)", h->request_header(req, "X-Absent"), NULL);
    check_str(t, "request_body_string(model) as sent", h->request_body_string(req, "model"),
              "m-alias");
    check_str(t, "request_body_string(tag)", h->request_body_string(req, "tag"), "x");
    check_str(t, "request_body_string(max_tokens) a number",
              h->request_body_string(req, "max_tokens"), NULL);
    check_str(t, "request_body_string(nope)", h->request_body_string(req, "nope"), NULL);

    /* 1.1: the prompt, every message's text joined by newlines */
    s = NULL;
    len = 0;
    check_int(t, "request_prompt status", h->request_prompt(req, &s, &len), SY_OK);
    check_mem(t, "request_prompt", s, len, "hello\nagain", 11);

    /* 1.2: the body by JSON pointer */
    static const struct {
        const char *pointer;
        int type;
    } types[] = {
        { "", SY_JSON_OBJECT },
        { "/model", SY_JSON_STRING },
        { "/max_tokens", SY_JSON_NUMBER },
        { "/temperature", SY_JSON_NUMBER },
        { "/stream", SY_JSON_BOOL },
        { "/stream_options", SY_JSON_OBJECT },
        { "/stream_options/include_usage", SY_JSON_BOOL },
        { "/messages", SY_JSON_ARRAY },
        { "/messages/0", SY_JSON_OBJECT },
        { "/messages/0/content", SY_JSON_STRING },
        { "/messages/1/content", SY_JSON_ARRAY },
        { "/messages/1/content/0/text", SY_JSON_STRING },
        { "/stop", SY_JSON_NULL },
        { "/a~1b", SY_JSON_STRING },
        { "/nope", SY_JSON_ABSENT },
        { "/messages/2", SY_JSON_ABSENT },
        { "/stream_options/nope", SY_JSON_ABSENT },
        { "/tag/0", SY_JSON_ABSENT },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "request_field_type(\"%s\")", types[i].pointer);
        check_int(t, what, h->request_field_type(req, types[i].pointer), types[i].type);
    }
    s = NULL;
    len = 0;
    check_int(t, "request_field_string(/messages/0/content) status",
              h->request_field_string(req, "/messages/0/content", &s, &len), SY_OK);
    check_mem(t, "request_field_string(/messages/0/content)", s, len, "hello", 5);
    s = NULL;
    check_int(t, "request_field_string(/messages/1/content/0/text) status",
              h->request_field_string(req, "/messages/1/content/0/text", &s, &len), SY_OK);
    check_mem(t, "request_field_string(/messages/1/content/0/text)", s, len, "again", 5);
    s = NULL;
    check_int(t, "request_field_string(/a~1b) status",
              h->request_field_string(req, "/a~1b", &s, &len), SY_OK);
    check_mem(t, "request_field_string(/a~1b)", s, len, "slash", 5);
    s = NULL;
    check_int(t, "request_field_string(/nul) status", h->request_field_string(req, "/nul", &s, &len),
              SY_OK);
    check_mem(t, "request_field_string(/nul) holds a NUL", s, len, "a\0b", 3);
    check_int(t, "request_field_string(/max_tokens) a number",
              h->request_field_string(req, "/max_tokens", &s, &len), SY_ERROR);
    check_int(t, "request_field_string(/stop) null", h->request_field_string(req, "/stop", &s, &len),
              SY_ERROR);
    check_int(t, "request_field_string(/nope)", h->request_field_string(req, "/nope", &s, &len),
              SY_DECLINED);

    d = -1;
    check_int(t, "request_field_number(/max_tokens) status",
              h->request_field_number(req, "/max_tokens", &d), SY_OK);
    check_dbl(t, "request_field_number(/max_tokens)", d, 7);
    d = -1;
    check_int(t, "request_field_number(/temperature) status",
              h->request_field_number(req, "/temperature", &d), SY_OK);
    check_dbl(t, "request_field_number(/temperature)", d, 0.5);
    check_int(t, "request_field_number(/tag) a string", h->request_field_number(req, "/tag", &d),
              SY_ERROR);
    check_int(t, "request_field_number(/stream_options/include_usage) a bool",
              h->request_field_number(req, "/stream_options/include_usage", &d), SY_ERROR);
    check_int(t, "request_field_number(/nope)", h->request_field_number(req, "/nope", &d),
              SY_DECLINED);

    b = -1;
    check_int(t, "request_field_bool(/stream_options/include_usage) status",
              h->request_field_bool(req, "/stream_options/include_usage", &b), SY_OK);
    check_int(t, "request_field_bool(/stream_options/include_usage)", b, 1);
    b = -1;
    check_int(t, "request_field_bool(/stream) status", h->request_field_bool(req, "/stream", &b),
              SY_OK);
    check_int(t, "request_field_bool(/stream)", b, 0);
    check_int(t, "request_field_bool(/tag) a string", h->request_field_bool(req, "/tag", &b),
              SY_ERROR);
    check_int(t, "request_field_bool(/max_tokens) a number",
              h->request_field_bool(req, "/max_tokens", &b), SY_ERROR);
    check_int(t, "request_field_bool(/nope)", h->request_field_bool(req, "/nope", &b), SY_DECLINED);

    s = NULL;
    len = 0;
    check_int(t, "request_body status", h->request_body(req, &s, &len), SY_OK);
    check_mem(t, "request_body: the client's bytes", s, len, CONTRACT_BODY,
              sizeof CONTRACT_BODY - 1);
}

/* The candidates of model m: A and B, in the model's order, and what is in
 * flight to them; a flag held and released on C (no candidate). */
static void check_candidates(struct tally *t, struct contract *c, const sy_request *req,
                             const sy_backend *const *cands, size_t n)
{
    const struct sy_host_api *h = t->h;
    const char *busy = h->request_header(req, "X-Contract-Busy");
    const sy_backend *other = h->backend_at(h, 2);
    double at = h->now();

    check_int(t, "ncandidates", (long long)n, 2);
    for (size_t i = 0; i < n && i < 2; i++) {
        char what[128];
        snprintf(what, sizeof what, "backend_url(candidates[%zu])", i);
        check_str(t, what, h->backend_url(cands[i]), c->url[i]);
        snprintf(what, sizeof what, "backend_index(candidates[%zu])", i);
        check_int(t, what, h->backend_index(cands[i]), h->backend_index(h->backend_at(h, i)));
        snprintf(what, sizeof what, "backend_inflight(candidates[%zu])", i);
        check_int(t, what, h->backend_inflight(cands[i]), i == 1 && busy ? atoll(busy) : 0);
        snprintf(what, sizeof what, "backend_weight(candidates[%zu])", i);
        check_int(t, what, h->backend_weight(cands[i]), i == 1 ? 3 : 1);
    }
    check_true(t, "now() in route() after create()", at >= c->created, "earlier");

    /* 1.2 health flags, a round trip on C, which m never routes to; with
     * X-Contract-Drained the operator holds C out meanwhile: that is not
     * this plugin's flag, and releasing its own leaves C out */
    if (other == NULL) {
        failf(t, "backend_at(2)", "got NULL, want C");
        return;
    }
    int out = h->request_header(req, "X-Contract-Drained") != NULL;
    int after = out ? SY_BACKEND_UNHEALTHY : SY_BACKEND_HEALTHY;
    check_int(t, out ? "backend_state(C) drained by the operator" : "backend_state(C) before",
              h->backend_state(other), after);
    check_int(t, "backend_flag(C) before: not held by this plugin", h->backend_flag(h, other), 0);
    h->backend_set_flag(h, other, 1, "contract: round trip");
    check_int(t, "backend_flag(C) held", h->backend_flag(h, other), 1);
    check_int(t, "backend_state(C) while held", h->backend_state(other), SY_BACKEND_UNHEALTHY);
    h->backend_set_flag(h, other, 0, "contract: round trip done");
    check_int(t, "backend_flag(C) released", h->backend_flag(h, other), 0);
    check_int(t, out ? "backend_state(C) released: still the operator's" : "backend_state(C) released",
              h->backend_state(other), after);
}

static int c_route(void *inst, const sy_request *req, const sy_backend *const *cands, size_t n,
                   size_t *pick)
{
    struct contract *c = inst;
    struct tally t = { c->host, 0, 0 };
    const char *helper = c->host->request_header(req, "X-Contract-Pick");

    if (helper != NULL) {
        *pick = (size_t)atoi(helper);
        return SY_OK; /* out of range: declined, the core takes the first */
    }
    if (c->host->request_header(req, "X-Contract") == NULL)
        return SY_DECLINED;
    check_request(&t, req);
    check_candidates(&t, c, req, cands, n);
    summary(&t, "route()");
    *pick = 0;
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER, .kind = SY_KIND_ROUTING, .name = "contract", .version = "1",
    .description = "checks every answer of the host API", .create = c_create,
    .destroy = c_destroy, .route = c_route,
};
