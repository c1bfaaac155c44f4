/*
 * Fuzz the k8s discovery plugin's parsers (plugins/k8s_lib.h), each on the
 * whole input: the watch stream (framed in pieces whose sizes come from
 * the input, each line an event applied to a pod table), a LIST answer,
 * a kubeconfig, a /v1/models answer, base64, and the input's first line
 * as a label selector (matched against the pods the events left).
 *
 * Invariants: the table stays sorted with unique, named objects and has a
 * resourceVersion once an event set one; a kubeconfig that parses has an
 * http(s) server without a trailing '/', a client certificate only with
 * its key, and no CA beside insecure-skip-tls-verify; a models list that
 * parses has at least one id, each a usable name, none twice; URL
 * escaping leaves only unreserved bytes.  ASan and LeakSanitizer check
 * that every path frees what it took.
 */
#include <string.h>

#include "../../plugins/k8s_lib.h"
#include "fuzz.h"

static void check_table(const struct k8s_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        FUZZ_CHECK(t->objs[i].name != NULL && t->objs[i].name[0] != '\0', "object %zu unnamed", i);
        if (i > 0)
            FUZZ_CHECK(strcmp(t->objs[i - 1].name, t->objs[i].name) < 0,
                       "table not sorted at %zu: '%s' then '%s'", i, t->objs[i - 1].name,
                       t->objs[i].name);
        for (size_t j = 0; j < t->objs[i].nlabels; j++)
            FUZZ_CHECK(t->objs[i].labels[j].key && t->objs[i].labels[j].value, "label %zu", j);
    }
}

struct feed {
    struct k8s_table *t;
    int events;
};

static int on_line(void *arg, const char *line, size_t len)
{
    struct feed *f = arg;
    struct k8s_event ev;
    char err[256];

    FUZZ_CHECK(len > 0 && memchr(line, '\n', len) == NULL, "a line of %zu with a newline", len);
    if (k8s_event_apply(f->t, line, len, &ev, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "an event refused without a reason");
        return 1; /* the plugin stops the watch here */
    }
    if (ev.type != K8S_EV_ERROR)
        f->events++;
    check_table(f->t);
    return 0;
}

static void watch(const uint8_t *data, size_t size)
{
    struct k8s_table t;
    struct k8s_lines l = { .max = 64 * 1024 };
    struct feed f = { &t, 0 };
    size_t piece = size > 0 ? (size_t)data[0] % 17 + 1 : 1, o = 0;
    int rc = 0;

    k8s_table_init(&t, K8S_POD);
    while (o < size && rc == 0) {
        size_t n = size - o < piece ? size - o : piece;
        rc = k8s_lines_feed(&l, (const char *)data + o, n, on_line, &f);
        FUZZ_CHECK(l.len <= l.max, "kept %zu past the cap", l.len);
        o += n;
        piece = piece * 3 % 23 + 1; /* pieces of changing sizes */
    }
    if (rc == 0)
        (void)k8s_lines_finish(&l, on_line, &f);
    check_table(&t);

    /* the first line as a selector, against whatever pods are left */
    char sel[256], err[256];
    size_t n = 0;
    while (n < size && n + 1 < sizeof sel && data[n] != '\n' && data[n] != '\0') {
        sel[n] = (char)data[n];
        n++;
    }
    sel[n] = '\0';
    struct k8s_selector s;
    if (k8s_selector_parse(sel, &s, err, sizeof err) == 0) {
        for (size_t i = 0; i < t.n; i++) {
            const char *why = NULL;
            int serving = k8s_pod_serving(&t.objs[i], &s, &why);
            FUZZ_CHECK(serving == (why == NULL), "serving %d with reason %s", serving,
                       why ? why : "(none)");
        }
        k8s_selector_free(&s);
    } else {
        FUZZ_CHECK(err[0] != '\0' && s.reqs == NULL && s.n == 0, "selector refused badly");
    }
    char *esc = k8s_url_escape(sel);
    if (esc != NULL) {
        size_t len = strlen(esc);
        FUZZ_CHECK(strspn(esc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                               "-._~%") == len, "escaped '%s'", esc);
        free(esc);
    }
    k8s_lines_reset(&l);
    k8s_table_free(&t);
}

static void list(const uint8_t *data, size_t size)
{
    struct k8s_table t;
    char err[256];

    for (int kind = K8S_POD; kind <= K8S_ENDPOINTSLICE; kind++) {
        if (k8s_list_parse(kind, (const char *)data, size, &t, NULL, err, sizeof err) == 0) {
            FUZZ_CHECK(t.rv != NULL && t.rv[0] != '\0', "a list without resourceVersion");
            check_table(&t);
            k8s_table_free(&t);
        } else {
            FUZZ_CHECK(t.n == 0 && t.rv == NULL && err[0] != '\0', "a refused list kept things");
        }
    }
}

static void kubeconfig(const uint8_t *data, size_t size)
{
    struct k8s_kubeconfig kc;
    char err[512];

    if (k8s_kubeconfig_parse((const char *)data, size, "/dir", NULL, &kc, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0' && kc.server == NULL, "refused without a reason");
        return;
    }
    size_t n = strlen(kc.server);
    FUZZ_CHECK(strncmp(kc.server, "https://", 8) == 0 || strncmp(kc.server, "http://", 7) == 0,
               "server '%s'", kc.server);
    FUZZ_CHECK(n > 0 && kc.server[n - 1] != '/', "server '%s' ends with '/'", kc.server);
    FUZZ_CHECK((kc.cert_file || kc.cert_pem) == (kc.key_file || kc.key_pem),
               "a certificate without its key, or the reverse");
    FUZZ_CHECK(!(kc.insecure && (kc.ca_file || kc.ca_pem)), "insecure with a CA");
    FUZZ_CHECK(kc.context != NULL, "no context");
    FUZZ_CHECK(!kc.ca_file || kc.ca_file[0] == '/', "relative CA path '%s'", kc.ca_file);
    FUZZ_CHECK(!kc.token_file || kc.token_file[0] == '/', "relative token path");
    k8s_kubeconfig_free(&kc);
}

static void models(const uint8_t *data, size_t size)
{
    struct k8s_models m;
    char err[256];

    if (k8s_models_parse((const char *)data, size, &m, err, sizeof err) != 0) {
        FUZZ_CHECK(m.n == 0 && err[0] != '\0', "refused models kept %zu", m.n);
        return;
    }
    FUZZ_CHECK(m.n >= 1 && m.n <= K8S_MAX_MODELS, "%zu models", m.n);
    for (size_t i = 0; i < m.n; i++) {
        FUZZ_CHECK(k8s_model_name_ok(m.ids[i], strlen(m.ids[i])), "model %zu unusable", i);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(m.ids[i], m.ids[j]) != 0, "model '%s' twice", m.ids[i]);
    }
    FUZZ_CHECK(k8s_models_equal(&m, &m), "models differ from themselves");
    k8s_models_free(&m);
}

static void base64(const uint8_t *data, size_t size)
{
    size_t n = 0;
    char *out = k8s_base64_decode((const char *)data, size, &n);

    if (out != NULL) {
        FUZZ_CHECK(n <= size / 4 * 3 + 3 && out[n] == '\0', "decoded %zu of %zu", n, size);
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    watch(data, size);
    list(data, size);
    kubeconfig(data, size);
    models(data, size);
    base64(data, size);
    return 0;
}
