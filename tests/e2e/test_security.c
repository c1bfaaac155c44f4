/* Security as a client, a backend and an operator see it (docs/security.md):
 * client keys (api_keys, api_keys_file, reload), upstream credentials
 * (api_key_env, models.M.headers), the admin listener, limits
 * (max_inflight, max_header_size, client_timeout), request smuggling, and
 * the logs (JSON lines, one access line per request, SIGUSR1 reopen). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"
#define BODY_A "{\"model\":\"model-a\",\"messages\":[]}"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* The router's config file again, with its listen line. */
static int write_config(const struct router *r, const char *yaml)
{
    FILE *f = fopen(r->config, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "listen: 127.0.0.1:%d\n%s", r->port, yaml);
    return fclose(f);
}

/* A whole file, malloc'd ("" when unreadable). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f != NULL) {
        do {
            if (len + 4096 + 1 > cap) {
                char *nb = realloc(buf, cap = (len + 4096 + 1) * 2);
                if (nb == NULL)
                    break;
                buf = nb;
            }
            n = fread(buf + len, 1, cap - len - 1, f);
            len += n;
        } while (n > 0);
        fclose(f);
    }
    if (buf == NULL)
        return strdup("");
    buf[len] = '\0';
    return buf;
}

static int file_contains(const char *path, const char *needle)
{
    char *s = slurp(path);
    int found = strstr(s, needle) != NULL;
    free(s);
    return found;
}

/* Wait up to ms for needle to show up in the file. */
static int wait_file_contains(const char *path, const char *needle, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        if (file_contains(path, needle))
            return 1;
        sleep_ms(20);
    }
    return 0;
}

/* No ASan/UBSan/LSan report in a daemon's output. */
static void check_no_sanitizer_report(const char *log)
{
    char *s = slurp(log);
    if (strstr(s, "AddressSanitizer") || strstr(s, "LeakSanitizer") ||
        strstr(s, "runtime error:") || strstr(s, "UndefinedBehaviorSanitizer")) {
        fprintf(stderr, "\n  sanitizer report in %s\n", log);
        CU_FAIL("sanitizer report in the router's output");
    }
    free(s);
}

/* {"error":{"message":...,"type":type,"code":status}} and JSON content. */
static void check_error_json(const struct resp *r, long status, const char *type)
{
    struct json_object *root = json_tokener_parse(r->body), *err, *v;

    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    if (json_object_object_get_ex(root, "error", &err) && json_object_is_type(err, json_type_object)) {
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "message", &v) &&
                       json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0);
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "code", &v) &&
                       json_object_get_int(v) == (int)status);
        if (type != NULL)
            CU_ASSERT_TRUE(json_object_object_get_ex(err, "type", &v) &&
                           strcmp(json_object_get_string(v), type) == 0);
    } else {
        CU_FAIL("no \"error\" object in the body");
    }
    json_object_put(root);
    CU_ASSERT_TRUE(resp_header(r, "Content-Type") != NULL &&
                   strstr(resp_header(r, "Content-Type"), "application/json") != NULL);
}

/* A header the backend received (from GET /_mock/last), malloc'd or NULL. */
static char *backend_header(const struct mock *m, const char *name)
{
    struct resp r;
    struct json_object *root, *h;
    char *out = NULL;

    if (mock_last(m, &r) != 0 || (root = json_tokener_parse(r.body)) == NULL) {
        resp_free(&r);
        return NULL;
    }
    if (json_object_object_get_ex(root, "headers", &h)) {
        json_object_object_foreach(h, k, v) {
            if (strcasecmp(k, name) == 0) {
                free(out);
                out = strdup(json_object_get_string(v));
            }
        }
    }
    json_object_put(root);
    resp_free(&r);
    return out;
}

static int backend_header_is(const struct mock *m, const char *name, const char *want)
{
    char *v = backend_header(m, name);
    int ok = v != NULL && strcmp(v, want) == 0;
    if (!ok)
        fprintf(stderr, "\n  %s got %s: %s, expected %s\n", m->name, name, v ? v : "(none)", want);
    free(v);
    return ok;
}

static int backend_lacks_header(const struct mock *m, const char *name)
{
    char *v = backend_header(m, name);
    int ok = v == NULL;
    if (!ok)
        fprintf(stderr, "\n  %s got %s: %s\n", m->name, name, v);
    free(v);
    return ok;
}

static long post_status(int port, const char *body, const char *const *headers)
{
    struct resp r;
    long st;
    http_post(port, CHAT, body, headers, &r);
    st = r.status;
    resp_free(&r);
    return st;
}

/* Raw HTTP over TCP, the socket left open for reading later. */
static int tcp_send(int port, const char *data)
{
    int fd = tcp_connect(port);
    size_t len = strlen(data);

    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* "POST path HTTP/1.1" with a JSON body and extra header lines (each ending
 * in CRLF, may be ""). */
static void build_post(char *buf, size_t len, const char *path, const char *body,
                       const char *extra)
{
    snprintf(buf, len,
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n%s\r\n%s",
             path, strlen(body), extra, body);
}

/* ------------------------------------------------------------------ */
/* client keys                                                         */

static struct mock ka;
static struct router kr;
static char keys_file[256];

#define KEY_INLINE "sk-inline-7f3a9c0d51"
#define KEY_FILE1 "sk-file-one-4b8e2a"
#define KEY_FILE2 "sk-file-two-c91d77"
#define KEY_WRONG "sk-wrong-0000aaaa"

static const char *const auth_inline[] = { "Authorization: Bearer " KEY_INLINE, NULL };
static const char *const auth_file1[] = { "Authorization: Bearer " KEY_FILE1, NULL };
static const char *const auth_file2[] = { "Authorization: Bearer " KEY_FILE2, NULL };

static int keys_setup(void)
{
    char yaml[2048];
    const char *p;

    if (mock_start(&ka, "sec-keys", "model-a", NULL))
        return -1;
    p = write_temp("sec-keys.txt", "# client keys\n\n" KEY_FILE1 "\n");
    if (p == NULL)
        return -1;
    snprintf(keys_file, sizeof keys_file, "%s", p);
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "log_level: debug\n"
             "api_keys: [" KEY_INLINE "]\n"
             "api_keys_file: %s\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             keys_file, ka.url);
    return router_start(&kr, yaml, NULL);
}

static int keys_teardown(void)
{
    int st = router_stop(&kr);
    check_no_sanitizer_report(kr.log);
    mock_stop(&ka);
    return st == 0 ? 0 : -1;
}

static void check_401(const struct resp *r)
{
    const char *id;
    CU_ASSERT_EQUAL(r->curl_error, 0);
    check_error_json(r, 401, "authentication_error");
    CU_ASSERT_TRUE(resp_header(r, "WWW-Authenticate") != NULL &&
                   strncmp(resp_header(r, "WWW-Authenticate"), "Bearer", 6) == 0);
    id = resp_header(r, "X-Request-Id");
    CU_ASSERT_TRUE(id != NULL && *id != '\0');
}

static void test_keys_missing(void)
{
    struct resp r;
    int before = mock_requests(&ka);

    CU_ASSERT_EQUAL(http_post(kr.port, CHAT, BODY_A, NULL, &r), 0);
    check_401(&r);
    resp_free(&r);
    /* the GET endpoints other than /health and /version want it too */
    CU_ASSERT_EQUAL(http_get(kr.port, "/v1/models", &r), 0);
    check_401(&r);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(kr.port, "/metrics", &r), 0);
    check_401(&r);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(kr.port, "/engines", &r), 0);
    check_401(&r);
    resp_free(&r);
    /* nothing reached the backend */
    CU_ASSERT_EQUAL(mock_requests(&ka), before);
}

static void test_keys_wrong(void)
{
    static const char *const bad[][2] = {
        { "Authorization: Bearer " KEY_WRONG, NULL },
        { "Authorization: Basic " KEY_INLINE, NULL },          /* not a bearer token */
        { "Authorization: " KEY_INLINE, NULL },                /* no scheme */
        { "Authorization: Bearer " KEY_INLINE "x", NULL },     /* longer */
        { "Authorization: Bearer sk-inline-7f3a9c0d5", NULL }, /* a prefix */
        { "Authorization: Bearer ", NULL },                    /* empty */
        { "X-Api-Key: " KEY_INLINE, NULL },                    /* elsewhere */
    };
    int before = mock_requests(&ka);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct resp r;
        CU_ASSERT_EQUAL(http_post(kr.port, CHAT, BODY_A, bad[i], &r), 0);
        if (r.status != 401)
            fprintf(stderr, "\n  '%s' got %ld\n", bad[i][0], r.status);
        check_401(&r);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(mock_requests(&ka), before);
}

static void test_keys_right(void)
{
    struct resp r;

    CU_ASSERT_EQUAL(http_post(kr.port, CHAT, BODY_A, auth_inline, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"backend\":\"sec-keys\""));
    CU_ASSERT_PTR_NULL(resp_header(&r, "WWW-Authenticate"));
    resp_free(&r);
    /* the key for the router is not passed on */
    CU_ASSERT_TRUE(backend_lacks_header(&ka, "Authorization"));

    /* a key from api_keys_file works the same; "bearer" in any case */
    {
        const char *const lower[] = { "Authorization: bearer " KEY_FILE1, NULL };
        CU_ASSERT_EQUAL(post_status(kr.port, BODY_A, auth_file1), 200);
        CU_ASSERT_TRUE(backend_lacks_header(&ka, "Authorization"));
        CU_ASSERT_EQUAL(post_status(kr.port, BODY_A, lower), 200);
    }
    /* GET endpoints with a key */
    CU_ASSERT_EQUAL(http_raw(kr.port, "GET", "/v1/models", NULL, auth_inline, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "model-a"));
    resp_free(&r);
}

static void test_keys_public_endpoints(void)
{
    struct resp r;

    CU_ASSERT_EQUAL(http_get(kr.port, "/health", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "healthy"));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(kr.port, "/version", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"version\""));
    resp_free(&r);
    /* a wrong key does not spoil them */
    {
        const char *const wrong[] = { "Authorization: Bearer " KEY_WRONG, NULL };
        CU_ASSERT_EQUAL(http_raw(kr.port, "GET", "/health", NULL, wrong, 5000, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
}

static void test_keys_file_reload(void)
{
    FILE *f = fopen(keys_file, "w");
    long st = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("# rotated\n" KEY_FILE2 "\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(post_status(kr.port, BODY_A, auth_file2), 401); /* not before the reload */
    CU_ASSERT_EQUAL_FATAL(kill(kr.pid, SIGHUP), 0);
    for (int i = 0; i < 150 && st != 200; i++) {
        st = post_status(kr.port, BODY_A, auth_file2);
        if (st != 200)
            sleep_ms(20);
    }
    CU_ASSERT_EQUAL(st, 200);
    /* all workers serve the new setup: the removed key is refused everywhere */
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(post_status(kr.port, BODY_A, auth_file1), 401);
        CU_ASSERT_EQUAL(post_status(kr.port, BODY_A, auth_file2), 200);
    }
    CU_ASSERT_EQUAL(post_status(kr.port, BODY_A, auth_inline), 200); /* inline keys stay */
    CU_ASSERT_TRUE(wait_file_contains(kr.log, "configuration reloaded", 2000));
    CU_ASSERT_TRUE(backend_lacks_header(&ka, "Authorization"));
}

static void test_keys_never_shown(void)
{
    static const char *const keys[] = { KEY_INLINE, KEY_FILE1, KEY_FILE2, KEY_WRONG, NULL };
    struct resp e, m;
    char *log;

    CU_ASSERT_EQUAL(http_raw(kr.port, "GET", "/engines", NULL, auth_inline, 5000, &e), 0);
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.body, "engine_id"));
    CU_ASSERT_EQUAL(http_raw(kr.port, "GET", "/metrics", NULL, auth_inline, 5000, &m), 0);
    CU_ASSERT_EQUAL(m.status, 200);
    sleep_ms(100); /* let the last log lines land */
    log = slurp(kr.log);
    CU_ASSERT_TRUE(strlen(log) > 0);
    for (int i = 0; keys[i]; i++) {
        if (strstr(log, keys[i]) || strstr(e.body, keys[i]) || strstr(m.body, keys[i]) ||
            strstr(e.headers, keys[i])) {
            fprintf(stderr, "\n  key %s shown in the log, /engines or /metrics\n", keys[i]);
            CU_FAIL("a client key leaked");
        }
    }
    /* even a fragment of a key */
    CU_ASSERT_PTR_NULL(strstr(log, "7f3a9c0d"));
    free(log);
    resp_free(&e);
    resp_free(&m);
}

/* ------------------------------------------------------------------ */
/* upstream credentials                                                */

static struct mock ua, ub1, ub2, uc;
static struct router ur;

#define SECRET_A "upstream-secret-a-5d1e"
#define SECRET_B "upstream-secret-b-93f0"

static int creds_setup(void)
{
    char yaml[4096];

    if (mock_start(&ua, "sec-cred-a", "model-a", NULL) ||
        mock_start(&ub1, "sec-cred-b1", "model-b", NULL) ||
        mock_start(&ub2, "sec-cred-b2", "model-b", NULL) ||
        mock_start(&uc, "sec-cred-c", "model-c", NULL))
        return -1;
    setenv("SY_SEC_TEST_KEY_A", SECRET_A, 1);
    setenv("SY_SEC_TEST_KEY_B", SECRET_B, 1);
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "log_level: debug\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n"
             "    api_key_env: SY_SEC_TEST_KEY_A\n"
             "  model-b:\n"
             "    backends:\n"
             "      - {url: %s, api_key_env: SY_SEC_TEST_KEY_B}\n"
             "      - %s\n"
             "  model-c:\n"
             "    backends: [%s]\n"
             "    headers:\n"
             "      OpenAI-Organization: org-config-1\n"
             "      X-Sec-Extra: from-config\n",
             ua.url, ub1.url, ub2.url, uc.url);
    return router_start(&ur, yaml, NULL);
}

static int creds_teardown(void)
{
    int st = router_stop(&ur);
    check_no_sanitizer_report(ur.log);
    mock_stop(&ua);
    mock_stop(&ub1);
    mock_stop(&ub2);
    mock_stop(&uc);
    unsetenv("SY_SEC_TEST_KEY_A");
    unsetenv("SY_SEC_TEST_KEY_B");
    return st == 0 ? 0 : -1;
}

static const char *const client_auth[] = { "Authorization: Bearer client-token-42",
                                           "X-Client-Header: kept", NULL };

static void test_model_key_replaces_client(void)
{
    CU_ASSERT_EQUAL(post_status(ur.port, BODY_A, client_auth), 200);
    CU_ASSERT_TRUE(backend_header_is(&ua, "Authorization", "Bearer " SECRET_A));
    CU_ASSERT_TRUE(backend_header_is(&ua, "X-Client-Header", "kept"));
    /* and without a client key, the backend's key is still sent */
    CU_ASSERT_EQUAL(post_status(ur.port, BODY_A, NULL), 200);
    CU_ASSERT_TRUE(backend_header_is(&ua, "Authorization", "Bearer " SECRET_A));
}

static void test_backend_key_only_for_that_backend(void)
{
    int n1 = mock_requests(&ub1), n2 = mock_requests(&ub2);

    /* round robin: four requests reach both backends */
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(post_status(ur.port, "{\"model\":\"model-b\"}", client_auth), 200);
    CU_ASSERT_TRUE(mock_requests(&ub1) > n1);
    CU_ASSERT_TRUE(mock_requests(&ub2) > n2);
    CU_ASSERT_TRUE(backend_header_is(&ub1, "Authorization", "Bearer " SECRET_B));
    /* the other backend has no key of its own: the client's goes through */
    CU_ASSERT_TRUE(backend_header_is(&ub2, "Authorization", "Bearer client-token-42"));
}

static void test_model_headers(void)
{
    const char *const h[] = { "OpenAI-Organization: org-client", "x-sec-extra: from-client",
                              "X-Client-Header: kept", NULL };
    struct resp r;

    CU_ASSERT_EQUAL(http_post(ur.port, CHAT, "{\"model\":\"model-c\"}", h, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_TRUE(backend_header_is(&uc, "OpenAI-Organization", "org-config-1"));
    CU_ASSERT_TRUE(backend_header_is(&uc, "X-Sec-Extra", "from-config"));
    CU_ASSERT_TRUE(backend_header_is(&uc, "X-Client-Header", "kept"));
    /* only once, the config's: the mock keeps the last of repeated headers,
     * so look at the raw dump for the client's value */
    CU_ASSERT_EQUAL(mock_last(&uc, &r), 0);
    CU_ASSERT_PTR_NULL(strstr(r.body, "org-client"));
    CU_ASSERT_PTR_NULL(strstr(r.body, "from-client"));
    resp_free(&r);
    /* without the client's: sent all the same; no credential of another model */
    CU_ASSERT_EQUAL(post_status(ur.port, "{\"model\":\"model-c\"}", NULL), 200);
    CU_ASSERT_TRUE(backend_header_is(&uc, "OpenAI-Organization", "org-config-1"));
    CU_ASSERT_TRUE(backend_lacks_header(&uc, "Authorization"));
}

static void test_upstream_keys_never_shown(void)
{
    struct resp e;
    char *log;

    CU_ASSERT_EQUAL(http_get(ur.port, "/engines", &e), 0);
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_PTR_NULL(strstr(e.body, SECRET_A));
    CU_ASSERT_PTR_NULL(strstr(e.body, SECRET_B));
    resp_free(&e);
    sleep_ms(100);
    log = slurp(ur.log);
    CU_ASSERT_PTR_NULL(strstr(log, SECRET_A));
    CU_ASSERT_PTR_NULL(strstr(log, SECRET_B));
    CU_ASSERT_PTR_NULL(strstr(log, "client-token-42"));
    free(log);
}

static void test_unset_key_env_is_startup_error(void)
{
    char yaml[512], *out = NULL;
    const char *path;

    unsetenv("SY_SEC_TEST_UNSET_KEY");
    snprintf(yaml, sizeof yaml,
             "models:\n"
             "  model-a:\n"
             "    backends: [http://127.0.0.1:9]\n"
             "    api_key_env: SY_SEC_TEST_UNSET_KEY\n");
    path = write_temp("sec-unset-env.yaml", yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    {
        const char *args[] = { "-c", path, "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
        CU_ASSERT_EQUAL(router_run(args, &out), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "SY_SEC_TEST_UNSET_KEY"));
        free(out);
    }
    /* per backend too, and an empty value counts as unset */
    setenv("SY_SEC_TEST_EMPTY_KEY", "", 1);
    snprintf(yaml, sizeof yaml,
             "models:\n"
             "  model-a:\n"
             "    backends: [{url: http://127.0.0.1:9, api_key_env: SY_SEC_TEST_EMPTY_KEY}]\n");
    path = write_temp("sec-empty-env.yaml", yaml);
    {
        const char *args[] = { "-c", path, "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
        CU_ASSERT_EQUAL(router_run(args, &out), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "SY_SEC_TEST_EMPTY_KEY"));
        free(out);
    }
    unsetenv("SY_SEC_TEST_EMPTY_KEY");
    /* and set, it passes */
    setenv("SY_SEC_TEST_UNSET_KEY", "x", 1);
    snprintf(yaml, sizeof yaml,
             "models:\n"
             "  model-a:\n"
             "    backends: [http://127.0.0.1:9]\n"
             "    api_key_env: SY_SEC_TEST_UNSET_KEY\n");
    path = write_temp("sec-set-env.yaml", yaml);
    {
        const char *args[] = { "-c", path, "--check-config", "--plugin-dir", BUILT_PLUGIN_DIR, NULL };
        CU_ASSERT_EQUAL(router_run(args, &out), 0);
        free(out);
    }
    unsetenv("SY_SEC_TEST_UNSET_KEY");
}

/* ------------------------------------------------------------------ */
/* admin listener                                                      */

static struct mock aa;
static struct router ar;
static int admin_port;
static char admin_yaml[1024];

static int admin_setup(void)
{
    if (mock_start(&aa, "sec-admin", "model-a,model-b", NULL))
        return -1;
    admin_port = free_port();
    snprintf(admin_yaml, sizeof admin_yaml,
             "workers: 2\n"
             "admin_listen: 127.0.0.1:%d\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             admin_port, aa.url);
    return router_start(&ar, admin_yaml, NULL);
}

static int admin_teardown(void)
{
    int st = router_stop(&ar);
    check_no_sanitizer_report(ar.log);
    mock_stop(&aa);
    return st == 0 ? 0 : -1;
}

static void test_admin_endpoints_moved(void)
{
    struct resp r;

    CU_ASSERT_EQUAL(http_get(ar.port, "/metrics", &r), 0);
    check_error_json(&r, 404, NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(ar.port, "/engines", &r), 0);
    check_error_json(&r, 404, NULL);
    CU_ASSERT_PTR_NULL(strstr(r.body, "127.0.0.1"));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_post(ar.port, "/admin/reload", "{}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);

    CU_ASSERT_EQUAL(http_get(admin_port, "/metrics", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "switchyard_build_info"));
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(admin_port, "/engines", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, aa.url));
    resp_free(&r);
    /* the public endpoints stay public */
    CU_ASSERT_EQUAL(http_get(ar.port, "/health", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(post_status(ar.port, BODY_A, NULL), 200);
    /* reload wants POST */
    CU_ASSERT_EQUAL(http_get(admin_port, "/admin/reload", &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    resp_free(&r);
}

static void test_admin_reload(void)
{
    char yaml[4096];
    struct resp r;

    CU_ASSERT_EQUAL(post_status(ar.port, "{\"model\":\"model-b\"}", NULL), 404);
    snprintf(yaml, sizeof yaml, "%s  model-b:\n    backends: [%s]\n", admin_yaml, aa.url);
    CU_ASSERT_EQUAL_FATAL(write_config(&ar, yaml), 0);
    CU_ASSERT_EQUAL(http_post(admin_port, "/admin/reload", "", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"status\":\"reloaded\""));
    resp_free(&r);
    /* every worker took it (it is handed over asynchronously) */
    sleep_ms(100);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(post_status(ar.port, "{\"model\":\"model-b\"}", NULL), 200);

    /* a broken file: 409 with the reason, nothing changes */
    snprintf(yaml, sizeof yaml, "%sno_such_key_sec: 1\n", admin_yaml);
    CU_ASSERT_EQUAL_FATAL(write_config(&ar, yaml), 0);
    CU_ASSERT_EQUAL(http_post(admin_port, "/admin/reload", "", NULL, &r), 0);
    check_error_json(&r, 409, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "no_such_key_sec"));
    resp_free(&r);
    sleep_ms(100);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(post_status(ar.port, "{\"model\":\"model-b\"}", NULL), 200);
        CU_ASSERT_EQUAL(post_status(ar.port, BODY_A, NULL), 200);
    }
    /* a model whose key is missing: also refused, also nothing changes */
    unsetenv("SY_SEC_TEST_ADMIN_UNSET");
    snprintf(yaml, sizeof yaml, "%s  model-c:\n    backends: [%s]\n    api_key_env: SY_SEC_TEST_ADMIN_UNSET\n",
             admin_yaml, aa.url);
    CU_ASSERT_EQUAL_FATAL(write_config(&ar, yaml), 0);
    CU_ASSERT_EQUAL(http_post(admin_port, "/admin/reload", "", NULL, &r), 0);
    check_error_json(&r, 409, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "SY_SEC_TEST_ADMIN_UNSET"));
    resp_free(&r);
    CU_ASSERT_EQUAL(post_status(ar.port, "{\"model\":\"model-b\"}", NULL), 200);
    CU_ASSERT_EQUAL(post_status(ar.port, "{\"model\":\"model-c\"}", NULL), 404);
    /* the admin listener still serves */
    CU_ASSERT_EQUAL(http_get(admin_port, "/metrics", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    write_config(&ar, admin_yaml);
}

/* ------------------------------------------------------------------ */
/* limits                                                              */

static struct mock la;
static struct router lr, tr;

static int limits_setup(void)
{
    char yaml[2048];

    if (mock_start(&la, "sec-limits", "model-a", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "max_inflight: 2\n"
             "max_header_size: 4KiB\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             la.url);
    if (router_start(&lr, yaml, NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "client_timeout: 1s\n"
             "client_request_timeout: 2s\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             la.url);
    return router_start(&tr, yaml, NULL);
}

static int limits_teardown(void)
{
    int st = router_stop(&lr), st2 = router_stop(&tr);
    check_no_sanitizer_report(lr.log);
    check_no_sanitizer_report(tr.log);
    mock_stop(&la);
    return st == 0 && st2 == 0 ? 0 : -1;
}

static void still_serving(int port)
{
    struct resp r;
    CU_ASSERT_EQUAL(http_raw(port, "GET", "/health", NULL, NULL, 3000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_raw(port, "POST", CHAT, BODY_A, NULL, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
}

static void test_max_inflight(void)
{
    char req[1024], out1[8192], out2[8192];
    int fd1, fd2, before = mock_requests(&la);
    struct resp r;
    double t0;

    build_post(req, sizeof req, CHAT, BODY_A, "X-Mock-Delay-Ms: 1500\r\nConnection: close\r\n");
    fd1 = tcp_send(lr.port, req);
    fd2 = tcp_send(lr.port, req);
    CU_ASSERT_TRUE_FATAL(fd1 >= 0 && fd2 >= 0);
    /* both are at the backend */
    for (int i = 0; i < 300 && mock_requests(&la) < before + 2; i++)
        sleep_ms(10);
    CU_ASSERT_EQUAL(mock_requests(&la), before + 2);

    t0 = mono_seconds();
    CU_ASSERT_EQUAL(http_post(lr.port, CHAT, BODY_A, NULL, &r), 0);
    CU_ASSERT_TRUE(mono_seconds() - t0 < 1.0); /* at once, not after the 1.5 s replies */
    check_error_json(&r, 503, NULL);
    CU_ASSERT_TRUE(resp_header(&r, "Retry-After") != NULL &&
                   atoi(resp_header(&r, "Retry-After")) >= 1);
    CU_ASSERT_TRUE(resp_header(&r, "X-Request-Id") != NULL);
    resp_free(&r);
    /* GET endpoints are not counted */
    CU_ASSERT_EQUAL(http_get(lr.port, "/health", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&la), before + 2); /* the refused one never went upstream */

    tcp_read_close(fd1, out1, sizeof out1, 5000);
    tcp_read_close(fd2, out2, sizeof out2, 5000);
    CU_ASSERT_TRUE(strncmp(out1, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_TRUE(strncmp(out2, "HTTP/1.1 200", 12) == 0);
    /* the slots are free again */
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(post_status(lr.port, BODY_A, NULL), 200);
}

static void test_max_header_size(void)
{
    char *big = malloc(8300), hdr2k[2300];
    struct resp r;
    const char *h[2] = { big, NULL };
    int before = mock_requests(&la);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    strcpy(big, "X-Big: ");
    memset(big + 7, 'a', 8192);
    big[7 + 8192] = '\0';
    http_raw(lr.port, "POST", CHAT, BODY_A, h, 5000, &r);
    /* refused: a 4xx, or the connection closed without an answer */
    CU_ASSERT_TRUE((r.status >= 400 && r.status < 500) || (r.curl_error != 0 && r.status == 0));
    CU_ASSERT_TRUE(r.total < 3.0);
    resp_free(&r);
    CU_ASSERT_EQUAL(mock_requests(&la), before);
    /* the same, raw, many headers adding up */
    {
        char *raw = malloc(16384);
        char out[4096];
        size_t n;
        double t0 = mono_seconds();
        CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
        n = (size_t)sprintf(raw, "GET /health HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < 100; i++)
            n += (size_t)sprintf(raw + n, "X-Pad-%d: %080d\r\n", i, 0);
        strcpy(raw + n, "\r\n");
        tcp_exchange(lr.port, raw, strlen(raw), out, sizeof out, 3000);
        CU_ASSERT_TRUE(out[0] == '\0' || strncmp(out, "HTTP/1.1 4", 10) == 0);
        CU_ASSERT_TRUE(mono_seconds() - t0 < 2.5); /* closed, not left open */
        free(raw);
    }
    /* under the limit goes through */
    strcpy(hdr2k, "X-Medium: ");
    memset(hdr2k + 10, 'b', 2048);
    hdr2k[10 + 2048] = '\0';
    h[0] = hdr2k;
    CU_ASSERT_EQUAL(http_raw(lr.port, "POST", CHAT, BODY_A, h, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    free(big);
    still_serving(lr.port);
}

/* Many small header lines, well under max_header_size: refused by count. */
static void test_max_headers(void)
{
    char raw[8192], out[4096];
    size_t n;
    int before = mock_requests(&la);

    n = (size_t)snprintf(raw, sizeof raw,
                         "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n", strlen(BODY_A));
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(raw + n, sizeof raw - n, "X-H%d: 1\r\n", i);
    n += (size_t)snprintf(raw + n, sizeof raw - n, "\r\n%s", BODY_A);
    CU_ASSERT_FATAL(n < sizeof raw);
    tcp_exchange(lr.port, raw, n, out, sizeof out, 3000);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 431", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"code\":431"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "too many header lines (at most 100)"));
    CU_ASSERT_EQUAL(mock_requests(&la), before);
    still_serving(lr.port);
}

/* Send data, return how long until the router closed the connection. */
static double seconds_until_closed(int port, const char *data, char *out, size_t outlen)
{
    double t0 = mono_seconds();
    tcp_exchange(port, data, strlen(data), out, outlen, 6000);
    return mono_seconds() - t0;
}

static void test_client_timeout(void)
{
    char out[4096];
    double t;

    /* half a body */
    t = seconds_until_closed(tr.port,
                             "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 100\r\n\r\n{\"model\":",
                             out, sizeof out);
    CU_ASSERT_TRUE(t > 0.7 && t < 3.0);
    CU_ASSERT_PTR_NULL(strstr(out, "HTTP/1.1 200"));
    /* half a head */
    t = seconds_until_closed(tr.port, "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Le", out, sizeof out);
    CU_ASSERT_TRUE(t > 0.7 && t < 3.0);
    CU_ASSERT_PTR_NULL(strstr(out, "HTTP/1.1 200"));
    /* nothing at all */
    t = seconds_until_closed(tr.port, "", out, sizeof out);
    CU_ASSERT_TRUE(t > 0.7 && t < 3.0);
    /* idle after an answer on a keep-alive connection */
    {
        char req[1024];
        build_post(req, sizeof req, CHAT, BODY_A, "");
        t = seconds_until_closed(tr.port, req, out, sizeof out);
        CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200", 12) == 0);
        CU_ASSERT_TRUE(t > 0.7 && t < 3.0);
    }
    still_serving(tr.port);
}

/* A body that trickles in, never silent for client_timeout, is cut at
 * client_request_timeout all the same: 408. */
static void test_client_request_timeout(void)
{
    char out[4096];
    const char *head = "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 1000\r\n\r\n{\"model\":\"model-a\",\"pad\":\"";
    int fd = tcp_connect(tr.port);
    double t0 = mono_seconds(), t;
    int n = 0;

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    /* 10 bytes every 300 ms: never 1 s silent; until the answer comes, at
     * most 6 s */
    while (mono_seconds() - t0 < 6) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, 300) != 0)
            break;
        if (send(fd, "xxxxxxxxxx", 10, MSG_NOSIGNAL) != 10)
            break;
    }
    t = mono_seconds() - t0;
    n = tcp_read_close(fd, out, sizeof out, 3000);
    CU_ASSERT_TRUE(t > 1.5 && t < 5.0);
    CU_ASSERT_TRUE(n > 0 && strncmp(out, "HTTP/1.1 408", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "client_request_timeout"));
    still_serving(tr.port);
}

/* The client waits quietly for a slow backend: that is not the client's
 * silence (docs/security.md). */
static void test_client_timeout_spares_slow_backend(void)
{
    const char *const h[] = { "X-Mock-Delay-Ms: 1600", NULL };
    struct resp r;

    CU_ASSERT_EQUAL(http_raw(tr.port, "POST", CHAT, BODY_A, h, 6000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_TRUE(r.total > 1.5);
    resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* request smuggling                                                   */

static struct mock sa;
static struct router sr;

static int smuggle_setup(void)
{
    char yaml[1024];

    if (mock_start(&sa, "sec-smuggle", "model-a", NULL))
        return -1;
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             sa.url);
    return router_start(&sr, yaml, NULL);
}

static int smuggle_teardown(void)
{
    int st = router_stop(&sr);
    check_no_sanitizer_report(sr.log);
    mock_stop(&sa);
    return st == 0 ? 0 : -1;
}

/* A complete request to append: answered, it would show as a second
 * response and a request at the backend. */
#define SMUGGLED                                                                  \
    "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"     \
    "Content-Length: 33\r\n\r\n" BODY_A

/* 400, Connection: close, nothing else answered, nothing sent upstream. */
static void expect_refused(const char *what, const char *raw)
{
    char out[16384];
    int before = mock_requests(&sa);
    double t0 = mono_seconds();
    int n = tcp_exchange(sr.port, raw, strlen(raw), out, sizeof out, 3000);
    double t = mono_seconds() - t0;
    char *body;

    CU_ASSERT_EQUAL(strlen(BODY_A), 33);
    if (n <= 0 || strncmp(out, "HTTP/1.1 400", 12) != 0 || count_substr(out, "HTTP/1.") != 1 ||
        t > 2.0) {
        fprintf(stderr, "\n  %s: after %.2fs got: %.300s\n", what, t, n > 0 ? out : "(nothing)");
        CU_FAIL("framing not refused with one 400 and a closed connection");
        return;
    }
    /* closed it is (above); a Connection header, when there is one, says so.
     * The answer is the router's JSON error, or for some forms libevent's
     * own 400 page: its parser refuses them before the router sees them.
     * (For an absolute-form target libevent drops the router's
     * "Connection: close" from the answer, as it does for proxy requests,
     * but closes all the same.) */
    CU_ASSERT_PTR_NULL(strcasestr(out, "\r\nConnection: keep-alive"));
    body = strstr(out, "\r\n\r\n");
    CU_ASSERT_TRUE(body != NULL && body[4] != '\0');
    CU_ASSERT_EQUAL(mock_requests(&sa), before);
}

static void test_smuggle_cl_and_te(void)
{
    expect_refused("CL then TE",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED);
    expect_refused("TE then CL",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\nContent-Length: 39\r\n\r\n"
                   "21\r\n" BODY_A "\r\n0\r\n\r\n" SMUGGLED);
    still_serving(sr.port);
}

static void test_smuggle_differing_lengths(void)
{
    expect_refused("CL 33 and 0",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 33\r\nContent-Length: 0\r\n\r\n" BODY_A SMUGGLED);
    expect_refused("CL 0 and 33",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 0\r\nContent-Length: 33\r\n\r\n" SMUGGLED);
    still_serving(sr.port);
}

static void test_smuggle_two_te(void)
{
    expect_refused("two TE: chunked",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "21\r\n" BODY_A "\r\n0\r\n\r\n" SMUGGLED);
    expect_refused("TE chunked then identity",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
                   "21\r\n" BODY_A "\r\n0\r\n\r\n" SMUGGLED);
    still_serving(sr.port);
}

static void test_smuggle_te_not_chunked(void)
{
    expect_refused("TE gzip",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: gzip\r\n\r\n" SMUGGLED);
    expect_refused("TE gzip, chunked",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: gzip, chunked\r\n\r\n"
                   "21\r\n" BODY_A "\r\n0\r\n\r\n" SMUGGLED);
    expect_refused("TE xchunked",
                   "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: xchunked\r\n\r\n" SMUGGLED);
    still_serving(sr.port);
}

static void test_smuggle_absolute_target(void)
{
    char raw[1024];

    expect_refused("absolute-form",
                   "POST http://x" CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 33\r\n\r\n" BODY_A);
    /* naming the router itself changes nothing */
    snprintf(raw, sizeof raw,
             "POST http://127.0.0.1:%d" CHAT " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: application/json\r\nContent-Length: 33\r\n\r\n" BODY_A,
             sr.port);
    expect_refused("absolute-form, own address", raw);
    /* a proxy keep-alive does not keep the connection open for more */
    expect_refused("absolute-form, Proxy-Connection: keep-alive",
                   "POST http://x" CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Proxy-Connection: keep-alive\r\nContent-Length: 33\r\n\r\n" BODY_A SMUGGLED);
    expect_refused("absolute-form GET", "GET http://x/health HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_refused("asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    still_serving(sr.port);
}

/* Well-formed framing is not refused: chunked, and pipelining. */
static void test_framing_legit(void)
{
    char out[16384];

    tcp_exchange(sr.port,
                 "POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 "21\r\n" BODY_A "\r\n0\r\n\r\n",
                 strlen("POST " CHAT " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        "21\r\n" BODY_A "\r\n0\r\n\r\n"),
                 out, sizeof out, 5000);
    CU_ASSERT_TRUE(strncmp(out, "HTTP/1.1 200", 12) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "sec-smuggle"));
}

/* ------------------------------------------------------------------ */
/* logs                                                                */

static struct mock ga;
static struct router gr;
static char json_log[256];
static int dead_port;

static int logs_setup(void)
{
    char yaml[2048];
    const char *p;

    if (mock_start(&ga, "sec-logs", "model-a", NULL))
        return -1;
    p = write_temp("sy.log", "");
    if (p == NULL)
        return -1;
    snprintf(json_log, sizeof json_log, "%s", p);
    unlink(json_log);
    dead_port = free_port();
    snprintf(yaml, sizeof yaml,
             "workers: 2\n"
             "log_format: json\n"
             "log_file: %s\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n"
             "  model-x:\n"
             "    backends: [http://127.0.0.1:%d]\n"
             "    fallback_model: model-a\n",
             json_log, ga.url, dead_port);
    return router_start(&gr, yaml, NULL);
}

static int logs_teardown(void)
{
    int st = router_stop(&gr);
    check_no_sanitizer_report(gr.log);
    mock_stop(&ga);
    return st == 0 ? 0 : -1;
}

/* Every line of the file is a JSON object with ts; the access lines (type
 * "access") for request id `id` are counted and the last returned (owned by
 * the caller) in *found. */
static int json_lines(const char *path, const char *id, struct json_object **found,
                      int *nlines)
{
    char *s = slurp(path), *save = NULL;
    int n = 0, bad = 0;

    if (found)
        *found = NULL;
    *nlines = 0;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct json_object *o = json_tokener_parse(line), *v;
        (*nlines)++;
        if (o == NULL || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "ts", &v)) {
            if (!bad++)
                fprintf(stderr, "\n  not a JSON log line in %s: %s\n", path, line);
            json_object_put(o);
            continue;
        }
        if (id && json_object_object_get_ex(o, "type", &v) &&
            strcmp(json_object_get_string(v), "access") == 0 &&
            json_object_object_get_ex(o, "request_id", &v) &&
            strcmp(json_object_get_string(v), id) == 0) {
            n++;
            if (found) {
                json_object_put(*found);
                *found = json_object_get(o);
            }
        }
        json_object_put(o);
    }
    free(s);
    CU_ASSERT_EQUAL(bad, 0);
    return n;
}

/* a string field equals want (NULL-safe) */
#define STR_IS(got, want) CU_ASSERT_TRUE((got) != NULL && strcmp((got), (want)) == 0)

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int jnull(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && v == NULL;
}

static long jint(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return -12345;
    return (long)json_object_get_int64(v);
}

static int jnumber(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) &&
           (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) &&
           json_object_get_double(v) >= 0;
}

/* Send one request with a known id; its single access line, checked for
 * the fields every access line has.  NULL when there is not exactly one. */
static struct json_object *request_and_access(const char *path, const char *id, const char *body,
                                              const char *extra, long want_status,
                                              struct resp *out)
{
    char idh[128];
    const char *h[3] = { idh, extra, NULL };
    struct json_object *a = NULL;
    int lines, n = 0;

    snprintf(idh, sizeof idh, "X-Request-Id: %s", id);
    CU_ASSERT_EQUAL(http_post(gr.port, CHAT, body, h, out), 0);
    CU_ASSERT_EQUAL(out->status, want_status);
    CU_ASSERT_STRING_EQUAL(resp_header(out, "X-Request-Id") ? resp_header(out, "X-Request-Id") : "", id);
    for (int i = 0; i < 100 && n == 0; i++) {
        n = json_lines(path, id, NULL, &lines);
        if (n == 0)
            sleep_ms(20);
    }
    sleep_ms(50); /* a second line would have had time to show */
    n = json_lines(path, id, &a, &lines);
    if (n != 1) {
        fprintf(stderr, "\n  %d access lines for %s\n", n, id);
        CU_FAIL("not exactly one access line");
        json_object_put(a);
        return NULL;
    }
    STR_IS(jstr(a, "type"), "access");
    CU_ASSERT_PTR_NOT_NULL(jstr(a, "ts"));
    STR_IS(jstr(a, "method"), "POST");
    STR_IS(jstr(a, "path"), CHAT);
    CU_ASSERT_EQUAL(jint(a, "status"), want_status);
    CU_ASSERT_TRUE(jint(a, "attempts") >= 0);
    CU_ASSERT_TRUE(jint(a, "bytes") >= 0);
    CU_ASSERT_TRUE(jnumber(a, "latency_ms"));
    CU_ASSERT_TRUE(jnumber(a, "ttfb_ms") || jnull(a, "ttfb_ms"));
    {
        static const char *const keys[] = { "ts", "type", "request_id", "method", "path", "model",
                                            "model_served", "backend", "fallback", "status",
                                            "attempts", "bytes", "latency_ms", "ttfb_ms", NULL };
        struct json_object *v;
        for (int i = 0; keys[i]; i++)
            if (!json_object_object_get_ex(a, keys[i], &v)) {
                fprintf(stderr, "\n  access line lacks %s\n", keys[i]);
                CU_FAIL("access line lacks a field");
            }
    }
    return a;
}

static void test_json_access_lines(void)
{
    struct json_object *a;
    struct resp r;
    const char *fb;

    /* served */
    a = request_and_access(json_log, "sec-log-ok-1", BODY_A, NULL, 200, &r);
    if (a != NULL) {
        STR_IS(jstr(a, "model"), "model-a");
        STR_IS(jstr(a, "model_served"), "model-a");
        STR_IS(jstr(a, "backend"), ga.url);
        CU_ASSERT_TRUE(jnull(a, "fallback"));
        CU_ASSERT_EQUAL(jint(a, "attempts"), 1);
        CU_ASSERT_EQUAL(jint(a, "bytes"), (long)r.len);
        CU_ASSERT_TRUE(jnumber(a, "ttfb_ms"));
        json_object_put(a);
    }
    resp_free(&r);
    /* a 4xx from the backend is its answer */
    a = request_and_access(json_log, "sec-log-400", BODY_A, "X-Mock-Status: 400", 400, &r);
    if (a != NULL) {
        STR_IS(jstr(a, "model_served"), "model-a");
        CU_ASSERT_EQUAL(jint(a, "attempts"), 1);
        json_object_put(a);
    }
    resp_free(&r);
    /* after a fallback */
    a = request_and_access(json_log, "sec-log-fb", "{\"model\":\"model-x\"}", NULL, 200, &r);
    fb = resp_header(&r, "X-Switchyard-Fallback");
    CU_ASSERT_TRUE(fb != NULL && strcmp(fb, "model-x>model-a") == 0);
    if (a != NULL) {
        STR_IS(jstr(a, "model"), "model-x");
        STR_IS(jstr(a, "model_served"), "model-a");
        STR_IS(jstr(a, "fallback"), "model-x>model-a");
        STR_IS(jstr(a, "backend"), ga.url);
        /* the dead backend tried (1 + reroute_attempts), then model-a */
        CU_ASSERT_TRUE(jint(a, "attempts") >= 2);
        CU_ASSERT_EQUAL(jint(a, "attempts"), atol(resp_header(&r, "X-Switchyard-Attempts")
                                                       ? resp_header(&r, "X-Switchyard-Attempts")
                                                       : "0"));
        json_object_put(a);
    }
    resp_free(&r);
    /* the router's own answers are logged too */
    a = request_and_access(json_log, "sec-log-404", "{\"model\":\"no-such-model\"}", NULL, 404, &r);
    if (a != NULL) {
        STR_IS(jstr(a, "model"), "no-such-model");
        CU_ASSERT_TRUE(jnull(a, "model_served"));
        CU_ASSERT_TRUE(jnull(a, "backend"));
        CU_ASSERT_EQUAL(jint(a, "attempts"), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(jstr(a, "error") ? jstr(a, "error") : "", "no-such-model"));
        json_object_put(a);
    }
    resp_free(&r);
    a = request_and_access(json_log, "sec-log-bad", "not json", NULL, 400, &r);
    if (a != NULL) {
        CU_ASSERT_TRUE(jnull(a, "model"));
        /* why, for whoever reads the log */
        CU_ASSERT_PTR_NOT_NULL(strstr(jstr(a, "error") ? jstr(a, "error") : "", "not valid JSON"));
        json_object_put(a);
    }
    resp_free(&r);
    /* refused before any routing (here: a GET where POST is wanted): an
     * access line too, with the reason */
    {
        const char *h[] = { "X-Request-Id: sec-log-405", NULL };
        int lines = 0, n = 0;
        CU_ASSERT_EQUAL(http_raw(gr.port, "GET", CHAT, NULL, h, 5000, &r), 0);
        CU_ASSERT_EQUAL(r.status, 405);
        resp_free(&r);
        for (int i = 0; i < 100 && n == 0; i++) {
            n = json_lines(json_log, "sec-log-405", NULL, &lines);
            if (n == 0)
                sleep_ms(20);
        }
        a = NULL;
        CU_ASSERT_EQUAL(json_lines(json_log, "sec-log-405", &a, &lines), 1);
        if (a != NULL) {
            STR_IS(jstr(a, "type"), "access");
            STR_IS(jstr(a, "method"), "GET");
            CU_ASSERT_EQUAL(jint(a, "status"), 405);
            CU_ASSERT_PTR_NOT_NULL(strstr(jstr(a, "error") ? jstr(a, "error") : "", "method not allowed"));
            json_object_put(a);
        }
    }
    a = request_and_access(json_log, "sec-log-ok-2", BODY_A, NULL, 200, &r);
    if (a != NULL) {
        CU_ASSERT_TRUE(jnull(a, "error")); /* none for a served request */
        json_object_put(a);
    }
    resp_free(&r);
    /* a hostile model name stays inside its JSON string */
    a = request_and_access(json_log, "sec-log-evil", "{\"model\":\"evil\\n\\\"}{\\u0001\"}", NULL, 404,
                           &r);
    if (a != NULL) {
        STR_IS(jstr(a, "model"), "evil\n\"}{\001");
        json_object_put(a);
    }
    resp_free(&r);
    /* ten more requests: ten more access lines, each once */
    for (int i = 0; i < 10; i++) {
        char id[64], idh[96];
        const char *h[] = { idh, NULL };
        snprintf(id, sizeof id, "sec-log-many-%d", i);
        snprintf(idh, sizeof idh, "X-Request-Id: %s", id);
        CU_ASSERT_EQUAL(post_status(gr.port, BODY_A, h), 200);
    }
    sleep_ms(200);
    for (int i = 0; i < 10; i++) {
        char id[64];
        int lines;
        snprintf(id, sizeof id, "sec-log-many-%d", i);
        CU_ASSERT_EQUAL(json_lines(json_log, id, NULL, &lines), 1);
    }
    /* a 401-free, limit-free router: GETs make no access lines */
    {
        char *s = slurp(json_log);
        int lines, before = count_substr(s, "\"type\":\"access\"");
        free(s);
        CU_ASSERT_EQUAL(http_get(gr.port, "/health", &r), 0);
        resp_free(&r);
        sleep_ms(100);
        s = slurp(json_log);
        CU_ASSERT_EQUAL(count_substr(s, "\"type\":\"access\""), before);
        free(s);
        json_lines(json_log, NULL, NULL, &lines);
        CU_ASSERT_TRUE(lines > 0);
    }
    /* nothing went to stderr but, perhaps, sanitizer reports */
    {
        char *s = slurp(gr.log);
        CU_ASSERT_PTR_NULL(strstr(s, "sec-log-"));
        free(s);
    }
}

static void test_sigusr1_reopens(void)
{
    char rotated[300];
    struct json_object *a = NULL;
    struct resp r;
    int lines;

    snprintf(rotated, sizeof rotated, "%s.1", json_log);
    CU_ASSERT_EQUAL_FATAL(rename(json_log, rotated), 0);
    /* before the signal: still the old (renamed) file */
    a = request_and_access(rotated, "sec-rot-before", BODY_A, NULL, 200, &r);
    json_object_put(a);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(kill(gr.pid, SIGUSR1), 0);
    CU_ASSERT_TRUE(wait_file_contains(json_log, "log file reopened", 3000));
    a = request_and_access(json_log, "sec-rot-after", BODY_A, NULL, 200, &r);
    json_object_put(a);
    resp_free(&r);
    CU_ASSERT_EQUAL(json_lines(rotated, "sec-rot-after", NULL, &lines), 0);
    CU_ASSERT_EQUAL(json_lines(json_log, "sec-rot-before", NULL, &lines), 0);
    CU_ASSERT_EQUAL(json_lines(json_log, "sec-log-ok-1", NULL, &lines), 0);
    CU_ASSERT_EQUAL(json_lines(rotated, "sec-log-ok-1", NULL, &lines), 1);
    /* a fresh file, every line of it JSON too */
    json_lines(json_log, NULL, NULL, &lines);
    CU_ASSERT_TRUE(lines >= 2);
    /* twice in a row is harmless */
    CU_ASSERT_EQUAL(kill(gr.pid, SIGUSR1), 0);
    sleep_ms(100);
    CU_ASSERT_EQUAL(post_status(gr.port, BODY_A, NULL), 200);
}

static void test_access_log_off(void)
{
    struct router r2;
    char yaml[1024];
    const char *p = write_temp("sy-noaccess.log", "");
    char path[256], *s;
    const char *const h[] = { "X-Request-Id: sec-noaccess-1", NULL };
    int lines;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    snprintf(path, sizeof path, "%s", p);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "log_format: json\n"
             "log_file: %s\n"
             "access_log: false\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             path, ga.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&r2, yaml, NULL), 0);
    CU_ASSERT_EQUAL(post_status(r2.port, BODY_A, h), 200);
    CU_ASSERT_EQUAL(post_status(r2.port, "{\"model\":\"nope\"}", NULL), 404);
    sleep_ms(200);
    s = slurp(path);
    CU_ASSERT_PTR_NULL(strstr(s, "\"access\""));
    CU_ASSERT_PTR_NULL(strstr(s, "sec-noaccess-1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "listening")); /* other lines still there */
    free(s);
    json_lines(path, NULL, NULL, &lines);
    CU_ASSERT_TRUE(lines > 0);
    CU_ASSERT_EQUAL(router_stop(&r2), 0);
    check_no_sanitizer_report(r2.log);
}

static void test_log_format_flag_overrides(void)
{
    struct router r2;
    char yaml[1024], path[256], *s, *save = NULL;
    const char *p = write_temp("sy-text.log", "");
    const char *const extra[] = { "--log-format", "text", NULL };
    const char *const h[] = { "X-Request-Id: sec-text-1", NULL };
    int nlines = 0, json_like = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    snprintf(path, sizeof path, "%s", p);
    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "log_format: json\n"
             "log_file: %s\n"
             "models:\n"
             "  model-a:\n"
             "    backends: [%s]\n",
             path, ga.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&r2, yaml, extra), 0);
    CU_ASSERT_EQUAL(post_status(r2.port, BODY_A, h), 200);
    CU_ASSERT_TRUE(wait_file_contains(path, "sec-text-1", 2000));
    s = slurp(path);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " ACCESS id=sec-text-1 "));
    CU_ASSERT_EQUAL(count_substr(s, "id=sec-text-1 "), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " status=200 "));
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        nlines++;
        json_like += line[0] == '{';
        CU_ASSERT_TRUE(line[0] >= '0' && line[0] <= '9'); /* a timestamp first */
    }
    CU_ASSERT_TRUE(nlines >= 2);
    CU_ASSERT_EQUAL(json_like, 0);
    free(s);
    CU_ASSERT_EQUAL(router_stop(&r2), 0);
    check_no_sanitizer_report(r2.log);
}

/* ------------------------------------------------------------------ */

void register_security_e2e_tests(void)
{
    CU_pSuite s;

    s = CU_add_suite("e2e security: client keys", keys_setup, keys_teardown);
    CU_add_test(s, "no key: 401 authentication_error, WWW-Authenticate", test_keys_missing);
    CU_add_test(s, "wrong or malformed keys: 401", test_keys_wrong);
    CU_add_test(s, "inline and file keys: 200, not forwarded", test_keys_right);
    CU_add_test(s, "/health and /version need no key", test_keys_public_endpoints);
    CU_add_test(s, "SIGHUP re-reads api_keys_file", test_keys_file_reload);
    CU_add_test(s, "keys never in the log, /engines, /metrics", test_keys_never_shown);

    s = CU_add_suite("e2e security: upstream credentials", creds_setup, creds_teardown);
    CU_add_test(s, "model api_key_env replaces the client's Authorization", test_model_key_replaces_client);
    CU_add_test(s, "backend api_key_env only for that backend", test_backend_key_only_for_that_backend);
    CU_add_test(s, "models.M.headers sent, win over the client's", test_model_headers);
    CU_add_test(s, "upstream keys never in the log or /engines", test_upstream_keys_never_shown);
    CU_add_test(s, "unset api_key_env: exit 2 naming it", test_unset_key_env_is_startup_error);

    s = CU_add_suite("e2e security: admin listener", admin_setup, admin_teardown);
    CU_add_test(s, "/metrics, /engines only on admin_listen", test_admin_endpoints_moved);
    CU_add_test(s, "POST /admin/reload: 200 applies, 409 keeps", test_admin_reload);

    s = CU_add_suite("e2e security: limits", limits_setup, limits_teardown);
    CU_add_test(s, "max_inflight: 503 + Retry-After at once", test_max_inflight);
    CU_add_test(s, "max_header_size: refused, still serving", test_max_header_size);
    CU_add_test(s, "max_headers: 431 by count", test_max_headers);
    CU_add_test(s, "client_timeout: silent clients cut", test_client_timeout);
    CU_add_test(s, "client_request_timeout: a trickling body is cut", test_client_request_timeout);
    CU_add_test(s, "client_timeout: waiting on a slow backend is fine", test_client_timeout_spares_slow_backend);

    s = CU_add_suite("e2e security: request smuggling", smuggle_setup, smuggle_teardown);
    CU_add_test(s, "Content-Length and Transfer-Encoding", test_smuggle_cl_and_te);
    CU_add_test(s, "Content-Lengths that differ", test_smuggle_differing_lengths);
    CU_add_test(s, "two Transfer-Encodings", test_smuggle_two_te);
    CU_add_test(s, "Transfer-Encoding not chunked", test_smuggle_te_not_chunked);
    CU_add_test(s, "absolute-form and asterisk targets", test_smuggle_absolute_target);
    CU_add_test(s, "chunked request still served", test_framing_legit);

    s = CU_add_suite("e2e security: logs", logs_setup, logs_teardown);
    CU_add_test(s, "JSON lines, one access line per request", test_json_access_lines);
    CU_add_test(s, "SIGUSR1 reopens log_file", test_sigusr1_reopens);
    CU_add_test(s, "access_log: false", test_access_log_off);
    CU_add_test(s, "--log-format text overrides the file", test_log_format_flag_overrides);
}
