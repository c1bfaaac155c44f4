/*
 * k8s: backends from Kubernetes, as vllm_router's `--service-discovery k8s`.
 *
 *   discovery: [k8s]
 *   plugin_config:
 *     k8s: {namespace: default, label_selector: "environment=test,release=test",
 *           port: 8000, service_discovery_type: pod-ip,
 *           watcher_timeout_seconds: 300, resync: 5m, models_interval: 30s}
 *
 * pod-ip: every pod the selector matches is a backend at http://podIP:port
 * while it is Running, has its IP, is Ready and is not being deleted.
 * service-name: every Service the selector matches is a backend at
 * http://NAME.NAMESPACE.svc:port while one of its EndpointSlices has a
 * ready endpoint.  A backend's models come from its GET /v1/models (LoRA
 * adapters included), read again every models_interval; it is published
 * once they are known.  Backends that stop serving leave the set at once
 * rather than staying with ready=0: a pod that is not Ready, terminating
 * or evicted may give its IP to another pod, and the core lets requests
 * in flight to a removed backend finish either way.
 *
 * The API: LIST, then WATCH from the list's resourceVersion (bookmarks on,
 * timeoutSeconds=watcher_timeout_seconds).  Whenever a watch ends (its
 * timeout, an ERROR event such as 410 Gone, a broken or silent stream, a
 * line that is no event), LIST again and publish the whole set, so what
 * changed while nobody watched is seen too; also every `resync`.  Failed
 * requests are retried with exponential backoff and jitter, and while the
 * API cannot be reached nothing is published: the last known set serves.
 *
 * Credentials: in a cluster (KUBERNETES_SERVICE_HOST and _PORT set) the
 * service account's token (read again whenever it changes: bound tokens
 * rotate), CA and namespace; else the kubeconfig at `kubeconfig`,
 * $KUBECONFIG or ~/.kube/config.
 *
 * /metrics (when the host has counter_add): counters lists, watch_restarts,
 * api_errors (each failed LIST or WATCH), models_errors; gauges pods (or
 * services and endpointslices: the objects in view) and backends (the set
 * published last).
 *
 * Everything runs on the discovery thread through the host's timers and
 * streams.  A stream's callbacks only record what came and set a 0 s timer
 * (kick): streams are started and cancelled from timers alone, never from
 * inside another stream's callback.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <switchyard/plugin.h>

#include "k8s_lib.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define MAX_LIST (256u * 1024 * 1024)   /* a LIST answer */
#define MAX_ERROR_BODY (64u * 1024)     /* what we keep of a failed answer */
#define MAX_MODELS_BODY (8u * 1024 * 1024)
#define MAX_FILE (1024 * 1024)          /* tokens, namespace, kubeconfig */
#define SETTLE_SECONDS 5.0              /* see publish() */

struct k8s;

struct buf {
    char *p;
    size_t len, cap;
};

enum phase { IDLE, LISTING, WATCHING, WAITING };

/* LIST and WATCH of one resource. */
struct informer {
    struct k8s *k;
    int kind;          /* enum k8s_kind */
    const char *what;  /* "pods", for logs */
    char *path;        /* "/api/v1/namespaces/NS/pods" */
    char *selector_q;  /* "&labelSelector=..." or "" */
    struct k8s_table table;
    int synced;        /* a LIST has come */
    int phase;
    sy_stream *stream;
    int status;        /* the current answer's status */
    struct buf body;   /* a LIST's answer, or the start of an error answer */
    struct k8s_lines lines;
    int changed;       /* events changed the table since the last recompute */
    int relist;        /* the watch is over: LIST again now (kick) */
    int start_watch;   /* the LIST came: WATCH from it (kick) */
    char over[300];    /* why the watch stopped from on_data */
    sy_timer *timer;   /* the backoff's */
    unsigned fails;    /* failed cycles in a row */
    double watch_started, last_data;
    double idle;       /* the watch's idle timeout */
    unsigned long events; /* events and bookmarks of this watch */
};

/* A backend this plugin sees, published once its models are known. */
struct backend {
    struct k8s *k;
    char *url, *name, *uid;
    char **labels; /* "key=value" */
    size_t nlabels;
    struct k8s_models models;
    int known;     /* models read at least once (for this uid) */
    int tried;     /* one models request finished, for the first publish */
    int warned;    /* the current streak of failures was logged */
    unsigned fails;
    sy_stream *stream;
    int status;
    struct buf body;
    sy_timer *timer;
    int keep;      /* recompute's mark */
};

struct k8s {
    const struct sy_host_api *host;
    /* settings */
    char *ns;
    char *selector_text;
    struct k8s_selector sel;
    long long port;
    int service_mode;
    long long watch_timeout;
    double resync, models_interval, request_timeout, backoff_min, backoff_max;
    /* the API server and how to talk to it */
    char *server;
    char *ca_file, *ca_pem, *cert_file, *key_file, *cert_pem, *key_pem;
    int insecure;
    char *token, *token_file;
    char *auth;        /* "Authorization: Bearer ..." or NULL: a secret */
    char *models_auth; /* the same from $VLLM_API_KEY, for the backends */
    struct informer inf[2];
    size_t ninf;
    struct backend **backends;
    size_t nbackends;
    sy_timer *kick, *resync_timer, *settle_timer;
    int settled;       /* past the first publish's wait for models */
    struct buf published; /* the set published last, as canonical text */
    int republish;     /* a LIST came: publish even the same set (the core
                          then knows discovery heard from the API) */
    unsigned long long rng;
};

/* ---- small things ---- */

static int buf_add(struct buf *b, const char *data, size_t n, size_t max)
{
    if (b->len + n > max)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static char *fmt(const char *f, ...) SY_PRINTF(1, 2);
static char *fmt(const char *f, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, f);
    n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
        return NULL;
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* A small file's text, trailing white space cut; NULL with errno. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct buf b = { 0 };
    char chunk[4096];
    size_t n;

    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_add(&b, chunk, n, MAX_FILE) != 0) {
            fclose(f);
            buf_free(&b);
            errno = EFBIG;
            return NULL;
        }
    fclose(f);
    if (b.p == NULL && (b.p = strdup("")) == NULL)
        return NULL;
    while (b.len > 0 && strchr(" \t\r\n", b.p[b.len - 1]) != NULL)
        b.p[--b.len] = '\0';
    return b.p;
}

static double unit_random(struct k8s *k)
{
    /* xorshift: spread, not secrecy */
    k->rng ^= k->rng << 13;
    k->rng ^= k->rng >> 7;
    k->rng ^= k->rng << 17;
    return (double)(k->rng % 10000) / 10000.0;
}

/* Exponential backoff with jitter: min * 2^(fails-1), at most max, then
 * 80% to 120% of that (never past max), so that routers restarted
 * together do not retry together. */
static double backoff(struct k8s *k, unsigned fails)
{
    double d = k->backoff_min;

    for (unsigned i = 1; i < fails && d < k->backoff_max; i++)
        d *= 2;
    if (d > k->backoff_max)
        d = k->backoff_max;
    d *= 0.8 + 0.4 * unit_random(k);
    return d > k->backoff_max ? k->backoff_max : d;
}

/* The plugin's own numbers in /metrics (switchyard_plugin_counter_total
 * and switchyard_plugin_gauge{plugin="k8s",name}), when the host has them. */
static int has_metrics(const struct sy_host_api *h)
{
    return h->size >= offsetof(struct sy_host_api, gauge_set) + sizeof h->gauge_set;
}

static void count(struct k8s *k, const char *name)
{
    if (has_metrics(k->host))
        k->host->counter_add(k->host, name, 1);
}

static void gauge(struct k8s *k, const char *name, double value)
{
    if (has_metrics(k->host))
        k->host->gauge_set(k->host, name, value);
}

static void run_kick(void *arg);

/* Work for the next turn of the loop (see the top of the file). */
static void kick(struct k8s *k)
{
    if (k->kick == NULL)
        k->kick = k->host->timer_add(k->host, 0, run_kick, k);
    if (k->kick == NULL)
        k->host->log(k->host, SY_LOG_ERROR, "cannot add a timer: discovery is stuck");
}

/* ---- credentials ---- */

/* Read the token file again (bound service account tokens rotate); keep
 * the token we have when it cannot be read. */
static void refresh_token(struct k8s *k)
{
    char *t;

    if (k->token_file == NULL)
        return;
    t = read_file(k->token_file);
    if (t == NULL || t[0] == '\0' || strpbrk(t, "\r\n") != NULL) {
        k->host->log(k->host, SY_LOG_WARNING, "cannot read the token in %s (%s): %s",
                     k->token_file, t ? "not one line of text" : strerror(errno),
                     k->token ? "keeping the last one" : "asking without one");
        free(t);
        return;
    }
    if (k->token != NULL && strcmp(t, k->token) == 0) {
        free(t);
        return;
    }
    char *auth = fmt("Authorization: Bearer %s", t);
    if (auth == NULL) {
        free(t);
        return;
    }
    if (k->token != NULL)
        k->host->log(k->host, SY_LOG_INFO, "the token in %s changed: using the new one",
                     k->token_file);
    free(k->token);
    free(k->auth);
    k->token = t;
    k->auth = auth;
}

static void api_options(struct k8s *k, struct sy_http_options *o, const char **headers,
                        double idle)
{
    size_t n = 0;

    refresh_token(k);
    headers[n++] = "Accept: application/json";
    if (k->auth != NULL)
        headers[n++] = k->auth;
    headers[n] = NULL;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->headers = headers;
    o->connect_timeout = k->request_timeout;
    o->idle_timeout = idle;
    o->ca_file = k->ca_file;
    o->ca_pem = k->ca_pem;
    o->cert_file = k->cert_file;
    o->key_file = k->key_file;
    o->cert_pem = k->cert_pem;
    o->key_pem = k->key_pem;
    o->insecure = k->insecure;
}

/* ---- publishing ---- */

static int by_url(const void *a, const void *b)
{
    return strcmp((*(struct backend *const *)a)->url, (*(struct backend *const *)b)->url);
}

/* buf_add of a string and its NUL, for the canonical text. */
static int add_field(struct buf *b, char tag, const char *s)
{
    return buf_add(b, &tag, 1, SIZE_MAX) == 0 && buf_add(b, s, strlen(s) + 1, SIZE_MAX) == 0
               ? 0 : -1;
}

/* The whole set of backends whose models are known, when it differs from
 * the last one published, or after a LIST (the contract: a full re-list is
 * published; /metrics' last-publish age then tells how long ago discovery
 * last heard from the API).  Nothing before every informer has listed once;
 * and at first, for up to SETTLE_SECONDS, not before each backend's first
 * models request has finished: a new instance (after a reload) would
 * otherwise replace its predecessor's set with one that lacks every
 * backend for a moment. */
static void publish(struct k8s *k)
{
    const struct sy_host_api *h = k->host;
    struct sy_discovered *set = NULL;
    struct backend **sorted = NULL;
    struct buf text = { 0 };
    size_t n = 0;

    for (size_t i = 0; i < k->ninf; i++)
        if (!k->inf[i].synced)
            return;
    if (!k->settled) {
        for (size_t i = 0; i < k->nbackends; i++)
            if (!k->backends[i]->tried)
                return; /* the settle timer publishes at the latest */
        k->settled = 1;
    }
    sorted = malloc((k->nbackends ? k->nbackends : 1) * sizeof *sorted);
    set = calloc(k->nbackends ? k->nbackends : 1, sizeof *set);
    if (sorted == NULL || set == NULL || buf_add(&text, "", 0, SIZE_MAX) != 0)
        goto oom;
    if (k->nbackends > 0)
        memcpy(sorted, k->backends, k->nbackends * sizeof *sorted);
    qsort(sorted, k->nbackends, sizeof *sorted, by_url);
    for (size_t i = 0; i < k->nbackends; i++) {
        struct backend *b = sorted[i];
        if (!b->known)
            continue;
        set[n].size = sizeof set[n];
        set[n].url = b->url;
        set[n].models = (const char *const *)b->models.ids;
        set[n].nmodels = b->models.n;
        set[n].labels = (const char *const *)b->labels;
        set[n].nlabels = b->nlabels;
        set[n].ready = 1;
        n++;
        if (add_field(&text, 'u', b->url) != 0)
            goto oom;
        for (size_t j = 0; j < b->models.n; j++)
            if (add_field(&text, 'm', b->models.ids[j]) != 0)
                goto oom;
        for (size_t j = 0; j < b->nlabels; j++)
            if (add_field(&text, 'l', b->labels[j]) != 0)
                goto oom;
    }
    int same = k->published.p != NULL && k->published.len == text.len &&
               memcmp(k->published.p, text.p, text.len) == 0;
    if (same && !k->republish)
        goto out; /* nothing a router would see changed */
    if (h->discovery_publish(h, set, n) != SY_OK) {
        /* keep the old text: the next change tries again */
        h->log(h, SY_LOG_ERROR, "the router refused the set of %zu backends", n);
        goto out;
    }
    k->republish = 0;
    h->log(h, same ? SY_LOG_DEBUG : SY_LOG_INFO, "published %zu backend%s%s", n,
           n == 1 ? "" : "s", same ? " (unchanged, after a LIST)" : "");
    gauge(k, "backends", (double)n);
    buf_free(&k->published);
    k->published = text;
    text = (struct buf){ 0 };
    goto out;
oom:
    h->log(h, SY_LOG_ERROR, "out of memory: the set of backends is not published");
out:
    buf_free(&text);
    free(sorted);
    free(set);
}

static void settle_done(void *arg)
{
    struct k8s *k = arg;

    k->settle_timer = NULL;
    if (!k->settled) {
        k->settled = 1;
        publish(k);
    }
}

/* ---- backends and their models ---- */

static const char *noun(const struct k8s *k)
{
    return k->service_mode ? "service" : "pod";
}

static void backend_free(struct backend *b, int cancel)
{
    const struct sy_host_api *h = b->k->host;

    /* destroy() must not cancel: the host has done it */
    if (cancel && b->timer != NULL)
        h->timer_cancel(b->timer);
    if (cancel && b->stream != NULL)
        h->http_stream_cancel(b->stream);
    free(b->url);
    free(b->name);
    free(b->uid);
    for (size_t i = 0; i < b->nlabels; i++)
        free(b->labels[i]);
    free(b->labels);
    k8s_models_free(&b->models);
    buf_free(&b->body);
    free(b);
}

static void models_fetch(void *arg);

static void models_later(struct backend *b, double seconds)
{
    const struct sy_host_api *h = b->k->host;

    b->timer = h->timer_add(h, seconds, models_fetch, b);
    if (b->timer == NULL)
        h->log(h, SY_LOG_ERROR, "%s %s: cannot add a timer: its models are no longer read",
               noun(b->k), b->name);
}

static void models_failed(struct backend *b, const char *why)
{
    struct k8s *k = b->k;
    const struct sy_host_api *h = k->host;
    double d = 0.5;

    b->fails++;
    count(k, "models_errors");
    for (unsigned i = 1; i < b->fails && d < 5; i++)
        d *= 2;
    if (d > 5)
        d = 5;
    if (!b->warned) {
        /* once per streak: a pod still loading its model fails for minutes */
        if (b->known)
            h->log(h, SY_LOG_WARNING, "%s %s (%s): GET /v1/models failed (%s): keeping its "
                   "last known models, asking again", noun(k), b->name, b->url, why);
        else
            h->log(h, SY_LOG_INFO, "%s %s (%s): waiting for GET /v1/models to answer (%s)",
                   noun(k), b->name, b->url, why);
        b->warned = 1;
    }
    if (!b->tried) {
        b->tried = 1;
        kick(k);
    }
    models_later(b, d * (0.8 + 0.4 * unit_random(k)));
}

static void models_head(void *arg, int status)
{
    struct backend *b = arg;

    b->status = status;
}

static int models_data(void *arg, const char *data, size_t len)
{
    struct backend *b = arg;

    if (buf_add(&b->body, data, len, MAX_MODELS_BODY) != 0) {
        b->stream = NULL; /* returning 1 ends it, without on_end */
        models_failed(b, "the answer is larger than 8 MiB");
        return 1;
    }
    return 0;
}

/* "a, b, lora (of a)" for a log line. */
static void describe_models(const struct k8s_models *m, char *out, size_t outlen)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < m->n && o + 1 < outlen; i++) {
        int w = m->parents[i] != NULL
                    ? snprintf(out + o, outlen - o, "%s%s (LoRA of %s)", i ? ", " : "",
                               m->ids[i], m->parents[i])
                    : snprintf(out + o, outlen - o, "%s%s", i ? ", " : "", m->ids[i]);
        if (w < 0 || (size_t)w >= outlen - o) {
            if (outlen > 4)
                snprintf(out + outlen - 4, 4, "...");
            return;
        }
        o += (size_t)w;
    }
}

static void models_end(void *arg, int status, const char *error)
{
    struct backend *b = arg;
    struct k8s *k = b->k;
    const struct sy_host_api *h = k->host;
    struct k8s_models m;
    char err[300], msg[200], list[600];

    b->stream = NULL;
    if (status != 200 || error != NULL) {
        if (error != NULL) {
            snprintf(err, sizeof err, "%s", error);
        } else {
            k8s_status_message(b->body.p, b->body.len, msg, sizeof msg);
            snprintf(err, sizeof err, "HTTP %d: %s", status, msg);
        }
        models_failed(b, err);
        return;
    }
    if (k8s_models_parse(b->body.p ? b->body.p : "", b->body.len, &m, msg, sizeof msg) != 0) {
        models_failed(b, msg);
        return;
    }
    if (!b->known || !k8s_models_equal(&m, &b->models)) {
        describe_models(&m, list, sizeof list);
        h->log(h, SY_LOG_INFO, "%s %s (%s) %s: %s", noun(k), b->name, b->url,
               b->known ? "now serves" : "is ready with models", list);
        if (m.skipped)
            h->log(h, SY_LOG_WARNING, "%s %s: %zu entries of /v1/models skipped (no usable "
                   "id, or a duplicate)", noun(k), b->name, m.skipped);
        k8s_models_free(&b->models);
        b->models = m;
        b->known = 1;
        kick(k);
    } else {
        k8s_models_free(&m);
    }
    if (b->warned && b->fails > 0)
        h->log(h, SY_LOG_INFO, "%s %s: GET /v1/models answers again", noun(k), b->name);
    b->fails = 0;
    b->warned = 0;
    if (!b->tried) {
        b->tried = 1;
        kick(k);
    }
    /* adapters load and unload at run time: read them again */
    models_later(b, k->models_interval * (0.9 + 0.2 * unit_random(k)));
}

static void models_fetch(void *arg)
{
    struct backend *b = arg;
    struct k8s *k = b->k;
    const struct sy_host_api *h = k->host;
    const char *headers[3] = { "Accept: application/json", k->models_auth, NULL };
    struct sy_http_options o = {
        .size = sizeof o,
        .headers = headers,
        .connect_timeout = k->request_timeout,
        .idle_timeout = k->request_timeout,
    };
    char *url = fmt("%s/v1/models", b->url);

    b->timer = NULL;
    b->status = 0;
    b->body.len = 0;
    if (url != NULL)
        b->stream = h->http_stream(h, url, &o, models_head, models_data, models_end, b);
    free(url);
    if (b->stream == NULL)
        models_failed(b, "the request could not start");
}

/* ---- the set: which objects are backends ---- */

static char *backend_url(const struct k8s *k, const struct k8s_obj *o)
{
    if (k->service_mode)
        return fmt("http://%s.%s.svc:%lld", o->name, k->ns, k->port);
    /* an IPv6 pod IP goes in brackets */
    return strchr(o->pod_ip, ':') != NULL ? fmt("http://[%s]:%lld", o->pod_ip, k->port)
                                          : fmt("http://%s:%lld", o->pod_ip, k->port);
}

static int set_labels(struct backend *b, const struct k8s_obj *o)
{
    char **labels = calloc(o->nlabels ? o->nlabels : 1, sizeof *labels);

    if (labels == NULL)
        return -1;
    for (size_t i = 0; i < o->nlabels; i++)
        if ((labels[i] = fmt("%s=%s", o->labels[i].key, o->labels[i].value)) == NULL) {
            while (i > 0)
                free(labels[--i]);
            free(labels);
            return -1;
        }
    for (size_t i = 0; i < b->nlabels; i++)
        free(b->labels[i]);
    free(b->labels);
    b->labels = labels;
    b->nlabels = o->nlabels;
    return 0;
}

static int same_labels(const struct backend *b, const struct k8s_obj *o)
{
    char kv[1024];

    if (b->nlabels != o->nlabels)
        return 0;
    for (size_t i = 0; i < o->nlabels; i++) {
        snprintf(kv, sizeof kv, "%s=%s", o->labels[i].key, o->labels[i].value);
        if (strcmp(kv, b->labels[i]) != 0)
            return 0;
    }
    return 1;
}

static struct backend *find_backend(const struct k8s *k, const char *url)
{
    for (size_t i = 0; i < k->nbackends; i++)
        if (strcmp(k->backends[i]->url, url) == 0)
            return k->backends[i];
    return NULL;
}

/* Take in a serving object: a new backend, or news of a known one. */
static int want(struct k8s *k, const struct k8s_obj *o)
{
    const struct sy_host_api *h = k->host;
    char *url = backend_url(k, o);
    struct backend *b;

    if (url == NULL)
        return -1;
    b = find_backend(k, url);
    if (b != NULL && b->keep) {
        /* two pods at one address (host network): the first one counts */
        free(url);
        return 0;
    }
    if (b != NULL) {
        free(url);
        b->keep = 1;
        if (!same_labels(b, o) && set_labels(b, o) != 0)
            return -1;
        if ((b->uid == NULL) != (o->uid == NULL) ||
            (b->uid != NULL && strcmp(b->uid, o->uid) != 0)) {
            /* another pod at this address: its models are its own */
            h->log(h, SY_LOG_INFO, "%s %s (%s) replaces %s there: reading its models",
                   noun(k), o->name, b->url, b->name);
            char *name = strdup(o->name), *uid = o->uid ? strdup(o->uid) : NULL;
            if (name == NULL || (o->uid != NULL && uid == NULL)) {
                free(name);
                free(uid);
                return -1;
            }
            free(b->name);
            free(b->uid);
            b->name = name;
            b->uid = uid;
            k8s_models_free(&b->models);
            b->known = 0;
            b->fails = 0;
            b->warned = 0;
            if (b->timer != NULL)
                h->timer_cancel(b->timer);
            if (b->stream != NULL)
                h->http_stream_cancel(b->stream);
            b->timer = NULL;
            b->stream = NULL;
            models_later(b, 0);
        }
        return 0;
    }
    struct backend **nb = realloc(k->backends, (k->nbackends + 1) * sizeof *nb);
    if (nb == NULL) {
        free(url);
        return -1;
    }
    k->backends = nb;
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        free(url);
        return -1;
    }
    b->k = k;
    b->url = url;
    b->keep = 1;
    b->tried = k->settled; /* only the first publish waits for models */
    if ((b->name = strdup(o->name)) == NULL || (o->uid && (b->uid = strdup(o->uid)) == NULL) ||
        set_labels(b, o) != 0) {
        backend_free(b, 0);
        return -1;
    }
    k->backends[k->nbackends++] = b;
    h->log(h, SY_LOG_INFO, "%s %s (%s) is serving: reading its models", noun(k), b->name,
           b->url);
    models_later(b, 0);
    return 0;
}

/* Why a backend left the set, for its log line. */
static const char *gone_why(const struct k8s *k, const struct backend *b)
{
    const struct k8s_obj *o = k8s_table_find(&k->inf[0].table, b->name);
    const char *why = NULL;

    if (o == NULL) /* a server filtering by the selector sends DELETED for both */
        return "gone from the API (deleted, or relabelled out of the selector)";
    if (k->service_mode)
        k8s_service_serving(o, &k->sel, &k->inf[1].table, &why);
    else
        k8s_pod_serving(o, &k->sel, &why);
    return why != NULL ? why : "its address changed";
}

/* The tables changed: which objects are backends now? */
static void recompute(struct k8s *k)
{
    const struct sy_host_api *h = k->host;
    const struct k8s_table *t = &k->inf[0].table;
    size_t kept = 0;
    int oom = 0;

    for (size_t i = 0; i < k->nbackends; i++)
        k->backends[i]->keep = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct k8s_obj *o = &t->objs[i];
        int serving = k->service_mode ? k8s_service_serving(o, &k->sel, &k->inf[1].table, NULL)
                                      : k8s_pod_serving(o, &k->sel, NULL);
        if (serving && want(k, o) != 0)
            oom = 1;
    }
    if (oom) {
        /* keep every backend rather than drop some for want of memory */
        h->log(h, SY_LOG_ERROR, "out of memory while reading the %s", k->inf[0].what);
        return;
    }
    for (size_t i = 0; i < k->nbackends; i++) {
        struct backend *b = k->backends[i];
        if (b->keep) {
            k->backends[kept++] = b;
            continue;
        }
        h->log(h, SY_LOG_INFO, "%s %s (%s) %s: %s", noun(k), b->name, b->url,
               b->known ? "removed" : "dropped before its models were known",
               gone_why(k, b));
        backend_free(b, 1);
    }
    k->nbackends = kept;
}

/* ---- LIST and WATCH ---- */

static void inf_list(struct informer *inf);

static void retry_now(void *arg)
{
    struct informer *inf = arg;

    inf->timer = NULL;
    inf_list(inf);
}

/* A request to the API failed: LIST again after the backoff.  Safe in a
 * stream's callback (a timer and a log line). */
static void inf_retry(struct informer *inf, const char *what, const char *why)
{
    struct k8s *k = inf->k;
    const struct sy_host_api *h = k->host;
    double d = backoff(k, ++inf->fails);

    inf->phase = WAITING;
    count(k, "api_errors");
    h->log(h, SY_LOG_WARNING, "%s %s at %s: %s; retrying in %.1fs%s", what, inf->what,
           k->server, why, d,
           inf->synced ? " (the last known backends keep serving)" : "");
    inf->timer = h->timer_add(h, d, retry_now, inf);
    if (inf->timer == NULL)
        h->log(h, SY_LOG_ERROR, "cannot add a timer: %s are no longer watched", inf->what);
}

/* "HTTP 403: pods is forbidden: ..." with a hint for the usual causes. */
static void answer_error(const struct informer *inf, int status, const char *error, char *out,
                         size_t outlen)
{
    char msg[300];

    if (error != NULL) {
        int tls = strstr(error, "SSL") != NULL || strstr(error, "certificate") != NULL ||
                  strstr(error, "TLS") != NULL;
        snprintf(out, outlen, "%s%s", error,
                 tls ? " (is the CA right? in a cluster: ca.crt of the service account; "
                       "else the kubeconfig's certificate-authority)" : "");
        return;
    }
    k8s_status_message(inf->body.p, inf->body.len, msg, sizeof msg);
    snprintf(out, outlen, "HTTP %d: %s%s", status, msg,
             status == 401 ? " (the token is wrong or expired)"
             : status == 403 ? " (the service account may list and watch it: see the RBAC "
                               "Role of the Helm chart)" : "");
}

static void list_head(void *arg, int status)
{
    struct informer *inf = arg;

    inf->status = status;
}

static int list_data(void *arg, const char *data, size_t len)
{
    struct informer *inf = arg;

    if (inf->status != 200) {
        (void)buf_add(&inf->body, data, len, MAX_ERROR_BODY); /* the start is enough */
        return 0;
    }
    if (buf_add(&inf->body, data, len, MAX_LIST) != 0) {
        inf->stream = NULL; /* returning 1 ends it, without on_end */
        buf_free(&inf->body);
        inf_retry(inf, "LIST", "the answer is larger than 256 MiB");
        return 1;
    }
    return 0;
}

static void list_end(void *arg, int status, const char *error)
{
    struct informer *inf = arg;
    struct k8s *k = inf->k;
    const struct sy_host_api *h = k->host;
    struct k8s_table fresh;
    char why[600];
    size_t skipped;

    inf->stream = NULL;
    if (status != 200 || error != NULL) {
        answer_error(inf, status, error, why, sizeof why);
        buf_free(&inf->body);
        inf_retry(inf, "LIST", why);
        return;
    }
    if (k8s_list_parse(inf->kind, inf->body.p ? inf->body.p : "", inf->body.len, &fresh,
                       &skipped, why, sizeof why) != 0) {
        buf_free(&inf->body);
        inf_retry(inf, "LIST", why);
        return;
    }
    buf_free(&inf->body);
    h->log(h, SY_LOG_INFO, "listed %zu %s (resourceVersion %s)%s", fresh.n, inf->what, fresh.rv,
           skipped ? "; some items had no name and were skipped" : "");
    /* the whole truth replaces what the watch had built: what changed
     * while nobody watched shows now */
    k8s_table_swap_in(&inf->table, &fresh);
    count(k, "lists");
    /* Prometheus' way to say "time since the last good list":
     * time() - this gauge */
    gauge(k, "last_list_timestamp_seconds", (double)time(NULL));
    k->republish = 1;
    inf->synced = 1;
    inf->changed = 1;
    inf->phase = IDLE;
    inf->start_watch = 1;
    kick(k);
}

static void inf_list(struct informer *inf)
{
    struct k8s *k = inf->k;
    const struct sy_host_api *h = k->host;
    struct sy_http_options o;
    const char *headers[3];
    char *url;

    if (inf->stream != NULL)
        h->http_stream_cancel(inf->stream);
    inf->stream = NULL;
    inf->phase = LISTING;
    inf->status = 0;
    buf_free(&inf->body);
    api_options(k, &o, headers, k->request_timeout);
    url = fmt("%s%s%s%s", k->server, inf->path, inf->selector_q[0] ? "?" : "",
              inf->selector_q[0] ? inf->selector_q + 1 : "");
    if (url != NULL)
        inf->stream = h->http_stream(h, url, &o, list_head, list_data, list_end, inf);
    free(url);
    if (inf->stream == NULL)
        inf_retry(inf, "LIST", "the request could not start");
}

/* The watch is over (its end, an ERROR event, a bad line): LIST again,
 * at once after a watch that worked, else after the backoff (a watch that
 * fails as it starts must not spin).  Safe in a stream's callback. */
static void watch_over(struct informer *inf, const char *why, int warn)
{
    struct k8s *k = inf->k;
    const struct sy_host_api *h = k->host;
    double lasted = h->now() - inf->watch_started;

    inf->phase = IDLE;
    k8s_lines_reset(&inf->lines);
    count(k, "watch_restarts");
    if (inf->status == 200 && (inf->events > 0 || lasted >= 1.0)) {
        inf->fails = 0;
        h->log(h, warn ? SY_LOG_WARNING : SY_LOG_INFO,
               "the watch of %s ended after %.1fs (%s): listing again", inf->what, lasted, why);
        inf->relist = 1;
        kick(k);
    } else {
        inf_retry(inf, "WATCH", why);
    }
}

static int on_line(void *arg, const char *line, size_t len)
{
    struct informer *inf = arg;
    struct k8s *k = inf->k;
    const struct sy_host_api *h = k->host;
    struct k8s_event ev;
    char err[200];

    if (k8s_event_apply(&inf->table, line, len, &ev, err, sizeof err) != 0) {
        snprintf(inf->over, sizeof inf->over, "a line that is no watch event: %s", err);
        return 1;
    }
    if (ev.type == K8S_EV_ERROR) {
        snprintf(inf->over, sizeof inf->over, "an ERROR event: %d %s", ev.code, ev.message);
        return ev.code == 410 ? 2 : 1; /* 410: our resourceVersion is too old */
    }
    inf->events++;
    if (ev.type != K8S_EV_BOOKMARK) {
        static const char *const names[] = { "ADDED", "MODIFIED", "DELETED" };
        h->log(h, SY_LOG_DEBUG, "%s %s %s", names[ev.type], noun(k), ev.name);
        inf->changed = 1;
    }
    return 0;
}

static void watch_head(void *arg, int status)
{
    struct informer *inf = arg;

    inf->status = status;
}

static int watch_data(void *arg, const char *data, size_t len)
{
    struct informer *inf = arg;
    int rc;

    if (inf->status != 200) {
        (void)buf_add(&inf->body, data, len, MAX_ERROR_BODY);
        return 0;
    }
    inf->over[0] = '\0';
    inf->last_data = inf->k->host->now();
    rc = k8s_lines_feed(&inf->lines, data, len, on_line, inf);
    if (inf->changed)
        kick(inf->k);
    if (rc == 0)
        return 0;
    inf->stream = NULL; /* returning 1 ends it, without on_end */
    if (rc == K8S_LINE_TOO_LONG)
        snprintf(inf->over, sizeof inf->over, "a watch event longer than %u MiB",
                 K8S_MAX_LINE >> 20);
    watch_over(inf, inf->over, rc != 2);
    return 1;
}

static void watch_end(void *arg, int status, const char *error)
{
    struct informer *inf = arg;
    char why[600];

    inf->stream = NULL;
    if (status == 200 && error == NULL) {
        /* a last event without its newline still counts */
        inf->over[0] = '\0';
        int rc = k8s_lines_finish(&inf->lines, on_line, inf);
        if (inf->changed)
            kick(inf->k);
        watch_over(inf, rc != 0 ? inf->over : "the server ended it", rc == 1);
        return;
    }
    if (status == 410)
        snprintf(why, sizeof why, "410 Gone (resourceVersion %s is too old)",
                 inf->table.rv ? inf->table.rv : "?");
    else if (error != NULL && inf->status == 200)
        snprintf(why, sizeof why, "%s%s", error,
                 inf->k->host->now() - inf->last_data >= inf->idle - 0.5
                     ? " (silent for longer than its timeout)" : "");
    else
        answer_error(inf, status, error, why, sizeof why);
    buf_free(&inf->body);
    watch_over(inf, why, 1);
}

static void inf_watch(struct informer *inf)
{
    struct k8s *k = inf->k;
    const struct sy_host_api *h = k->host;
    struct sy_http_options o;
    const char *headers[3];
    char *rv = k8s_url_escape(inf->table.rv ? inf->table.rv : ""), *url = NULL;
    /* a watch that says nothing (not even a bookmark) for longer than its
     * timeout is dead, whatever TCP thinks */
    double margin = k->watch_timeout < 5 ? (double)k->watch_timeout : 5.0;

    inf->phase = WATCHING;
    inf->status = 0;
    inf->events = 0;
    inf->watch_started = inf->last_data = h->now();
    inf->idle = (double)k->watch_timeout + margin;
    buf_free(&inf->body);
    k8s_lines_reset(&inf->lines);
    api_options(k, &o, headers, inf->idle);
    if (rv != NULL)
        url = fmt("%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%lld%s",
                  k->server, inf->path, rv, k->watch_timeout, inf->selector_q);
    if (url != NULL)
        inf->stream = h->http_stream(h, url, &o, watch_head, watch_data, watch_end, inf);
    free(rv);
    free(url);
    if (inf->stream == NULL)
        inf_retry(inf, "WATCH", "the request could not start");
}

/* ---- the loop's work ---- */

static int all_synced(const struct k8s *k)
{
    for (size_t i = 0; i < k->ninf; i++)
        if (!k->inf[i].synced)
            return 0;
    return 1;
}

static void run_kick(void *arg)
{
    struct k8s *k = arg;
    const struct sy_host_api *h = k->host;
    int changed = 0;

    k->kick = NULL;
    for (size_t i = 0; i < k->ninf; i++) {
        if (k->inf[i].changed)
            gauge(k, k->inf[i].what, (double)k->inf[i].table.n);
        changed |= k->inf[i].changed;
        k->inf[i].changed = 0;
    }
    /* service-name mode needs both tables before it can say anything */
    if (changed && all_synced(k))
        recompute(k);
    if (all_synced(k) && !k->settled && k->settle_timer == NULL)
        k->settle_timer = h->timer_add(h, SETTLE_SECONDS, settle_done, k);
    publish(k);
    for (size_t i = 0; i < k->ninf; i++) {
        struct informer *inf = &k->inf[i];
        if (inf->relist) {
            inf->relist = 0;
            inf_list(inf);
        } else if (inf->start_watch) {
            inf->start_watch = 0;
            inf_watch(inf);
        }
    }
}

static void resync_now(void *arg)
{
    struct k8s *k = arg;
    const struct sy_host_api *h = k->host;

    k->resync_timer = h->timer_add(h, k->resync * (0.9 + 0.2 * unit_random(k)), resync_now, k);
    for (size_t i = 0; i < k->ninf; i++)
        if (k->inf[i].phase == WATCHING) {
            /* a safety net: a change the watch missed is seen now */
            h->log(h, SY_LOG_INFO, "periodic re-list of %s (resync)", k->inf[i].what);
            inf_list(&k->inf[i]);
        }
}

/* ---- settings and credentials ---- */

/* A DNS label, as namespaces are: it goes into paths and host names. */
static int dns_label_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int read_settings(struct k8s *k, const sy_config *cfg, const char **ns,
                         const char **selector, const char **kubeconfig, const char **context,
                         const char **sa_dir, char *err, size_t errlen)
{
    static const char *const known[] = {
        "namespace", "label_selector", "port", "service_discovery_type",
        "watcher_timeout_seconds", "resync", "models_interval", "request_timeout",
        "backoff_min", "backoff_max", "kubeconfig", "context", "service_account_dir", NULL,
    };
    static const char *const want[][2] = {
        { "namespace", "a namespace name (lower-case letters, digits, '-')" },
        { "label_selector", "a label selector, e.g. environment=test,release=test" },
        { "port", "a port number from 1 to 65535" },
        { "service_discovery_type", "pod-ip or service-name" },
        { "watcher_timeout_seconds", "whole seconds >= 0 (0: 300)" },
        { "resync", "seconds >= 0, e.g. 5m (0: never)" },
        { "models_interval", "seconds > 0, e.g. 30s" },
        { "request_timeout", "seconds > 0, e.g. 10s" },
        { "backoff_min", "seconds > 0, e.g. 500ms" },
        { "backoff_max", "seconds >= backoff_min, e.g. 30s" },
        { "kubeconfig", "a file name" }, { "context", "a context's name" },
        { "service_account_dir", "a directory" },
    };
    const struct sy_host_api *h = k->host;
    const char *type = "pod-ip", *bad = NULL;
    double wt = 300;
    char where[256];

    if (h->config_check_keys(cfg, known, err, errlen) != SY_OK)
        return -1;
    k->port = 8000;
    k->resync = 300;
    k->models_interval = 30;
    k->request_timeout = 10;
    k->backoff_min = 0.5;
    k->backoff_max = 30;
    if (h->config_string(cfg, "namespace", ns) == SY_ERROR || (*ns && !dns_label_ok(*ns)))
        bad = "namespace";
    else if (h->config_string(cfg, "label_selector", selector) == SY_ERROR)
        bad = "label_selector";
    else if (h->config_int(cfg, "port", &k->port) == SY_ERROR || k->port < 1 || k->port > 65535)
        bad = "port";
    else if (h->config_string(cfg, "service_discovery_type", &type) == SY_ERROR ||
             (strcmp(type, "pod-ip") != 0 && strcmp(type, "service-name") != 0))
        bad = "service_discovery_type";
    else if (h->config_seconds(cfg, "watcher_timeout_seconds", &wt) == SY_ERROR || !(wt >= 0) ||
             wt > 86400 || wt != (double)(long long)wt)
        bad = "watcher_timeout_seconds";
    else if (h->config_seconds(cfg, "resync", &k->resync) == SY_ERROR || !(k->resync >= 0))
        bad = "resync";
    else if (h->config_seconds(cfg, "models_interval", &k->models_interval) == SY_ERROR ||
             !(k->models_interval > 0))
        bad = "models_interval";
    else if (h->config_seconds(cfg, "request_timeout", &k->request_timeout) == SY_ERROR ||
             !(k->request_timeout > 0))
        bad = "request_timeout";
    else if (h->config_seconds(cfg, "backoff_min", &k->backoff_min) == SY_ERROR ||
             !(k->backoff_min > 0))
        bad = "backoff_min";
    else if (h->config_seconds(cfg, "backoff_max", &k->backoff_max) == SY_ERROR ||
             !(k->backoff_max >= k->backoff_min))
        bad = "backoff_max";
    else if (h->config_string(cfg, "kubeconfig", kubeconfig) == SY_ERROR ||
             (*kubeconfig && !**kubeconfig))
        bad = "kubeconfig";
    else if (h->config_string(cfg, "context", context) == SY_ERROR || (*context && !**context))
        bad = "context";
    else if (h->config_string(cfg, "service_account_dir", sa_dir) == SY_ERROR || !**sa_dir)
        bad = "service_account_dir";
    if (bad != NULL) {
        const char *what = "";
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            if (strcmp(want[i][0], bad) == 0)
                what = want[i][1];
        h->config_where(cfg, bad, where, sizeof where);
        snprintf(err, errlen, "%s: plugin_config.k8s.%s: expected %s", where, bad, what);
        return -1;
    }
    /* vllm_router's 0 is "the server's choice"; ours must be known, for
     * the silence that means a dead watch */
    k->watch_timeout = wt > 0 ? (long long)wt : 300;
    k->service_mode = strcmp(type, "service-name") == 0;
    return 0;
}

/* Take a kubeconfig's -data or file form. */
static void take(char **dst, char **src)
{
    *dst = *src;
    *src = NULL;
}

/* The first file of a KUBECONFIG list that exists (kubectl merges them;
 * the first one that names a thing wins, which for the usual one-file
 * list is the same). */
static char *kubeconfig_path(const char *setting)
{
    const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");

    if (setting != NULL)
        return strdup(setting);
    if (env != NULL && env[0] != '\0') {
        for (const char *p = env; *p;) {
            size_t n = strcspn(p, ":");
            char *path = n ? fmt("%.*s", (int)n, p) : NULL;
            FILE *f = path ? fopen(path, "r") : NULL;
            if (f != NULL) {
                fclose(f);
                return path;
            }
            free(path);
            p += n + (p[n] == ':');
        }
        return fmt("%.*s", (int)strcspn(env, ":"), env);
    }
    return home != NULL ? fmt("%s/.kube/config", home) : NULL;
}

static int from_kubeconfig(struct k8s *k, const char *setting, const char *context,
                           const char **ns, char *err, size_t errlen)
{
    struct k8s_kubeconfig kc;
    char *path = kubeconfig_path(setting), *text, *dir, *slash;
    char why[400];

    if (path == NULL) {
        snprintf(err, errlen, "not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no "
                              "kubeconfig: set KUBECONFIG, HOME or plugin_config.k8s.kubeconfig");
        return -1;
    }
    if ((text = read_file(path)) == NULL) {
        snprintf(err, errlen, "not in a cluster (KUBERNETES_SERVICE_HOST is not set) and "
                              "cannot read the kubeconfig %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    dir = strdup(path);
    if (dir != NULL && (slash = strrchr(dir, '/')) != NULL)
        *slash = '\0';
    else if (dir != NULL)
        strcpy(dir, ".");
    if (dir == NULL ||
        k8s_kubeconfig_parse(text, strlen(text), dir, context, &kc, why, sizeof why) != 0) {
        snprintf(err, errlen, "kubeconfig %s: %s", path, dir ? why : "out of memory");
        free(dir);
        free(text);
        free(path);
        return -1;
    }
    free(dir);
    free(text);
    take(&k->server, &kc.server);
    take(&k->ca_file, &kc.ca_file);
    take(&k->ca_pem, &kc.ca_pem);
    take(&k->cert_file, &kc.cert_file);
    take(&k->key_file, &kc.key_file);
    take(&k->cert_pem, &kc.cert_pem);
    take(&k->key_pem, &kc.key_pem);
    take(&k->token_file, &kc.token_file);
    k->insecure = kc.insecure;
    if (kc.token != NULL && (k->auth = fmt("Authorization: Bearer %s", kc.token)) == NULL) {
        k8s_kubeconfig_free(&kc);
        free(path);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (*ns == NULL && kc.namespace_ != NULL && dns_label_ok(kc.namespace_))
        take(&k->ns, &kc.namespace_);
    k->host->log(k->host, SY_LOG_INFO, "using kubeconfig %s, context '%s'", path, kc.context);
    k8s_kubeconfig_free(&kc);
    free(path);
    if (k->token_file != NULL) {
        refresh_token(k);
        if (k->token == NULL) {
            snprintf(err, errlen, "cannot read the kubeconfig's tokenFile %s", k->token_file);
            return -1;
        }
    }
    return 0;
}

static int in_cluster(struct k8s *k, const char *host_env, const char *port_env,
                      const char *sa_dir, const char **ns, char *err, size_t errlen)
{
    FILE *f;

    k->server = strchr(host_env, ':') != NULL ? fmt("https://[%s]:%s", host_env, port_env)
                                              : fmt("https://%s:%s", host_env, port_env);
    k->ca_file = fmt("%s/ca.crt", sa_dir);
    k->token_file = fmt("%s/token", sa_dir);
    if (k->server == NULL || k->ca_file == NULL || k->token_file == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ((f = fopen(k->ca_file, "r")) == NULL) {
        snprintf(err, errlen, "in a cluster (KUBERNETES_SERVICE_HOST is set) but cannot read "
                              "%s: %s", k->ca_file, strerror(errno));
        return -1;
    }
    fclose(f);
    refresh_token(k);
    if (k->token == NULL) {
        snprintf(err, errlen, "in a cluster (KUBERNETES_SERVICE_HOST is set) but cannot read "
                              "the service account token %s", k->token_file);
        return -1;
    }
    if (*ns == NULL) {
        char *path = fmt("%s/namespace", sa_dir), *text = path ? read_file(path) : NULL;
        if (text != NULL && dns_label_ok(text))
            k->ns = text;
        else
            free(text);
        free(path);
    }
    k->host->log(k->host, SY_LOG_INFO, "in a cluster: API server %s, service account in %s",
                 k->server, sa_dir);
    return 0;
}

static int informer_init(struct k8s *k, struct informer *inf, int kind, const char *what,
                         const char *path_fmt, const char *selector)
{
    char *esc = selector[0] ? k8s_url_escape(selector) : strdup("");

    inf->k = k;
    inf->kind = kind;
    inf->what = what;
    k8s_table_init(&inf->table, kind);
    inf->path = fmt(path_fmt, k->ns);
    inf->selector_q = esc == NULL ? NULL : esc[0] ? fmt("&labelSelector=%s", esc) : strdup("");
    free(esc);
    return inf->path != NULL && inf->selector_q != NULL ? 0 : -1;
}

static void k8s_destroy(void *inst)
{
    struct k8s *k = inst;

    /* the host cancelled our timers and streams: free, cancel nothing */
    for (size_t i = 0; i < k->nbackends; i++)
        backend_free(k->backends[i], 0);
    free(k->backends);
    for (size_t i = 0; i < k->ninf; i++) {
        struct informer *inf = &k->inf[i];
        k8s_table_free(&inf->table);
        buf_free(&inf->body);
        k8s_lines_reset(&inf->lines);
        free(inf->path);
        free(inf->selector_q);
    }
    k8s_selector_free(&k->sel);
    free(k->ns);
    free(k->selector_text);
    free(k->server);
    free(k->ca_file);
    free(k->ca_pem);
    free(k->cert_file);
    free(k->key_file);
    free(k->cert_pem);
    free(k->key_pem);
    free(k->token);
    free(k->token_file);
    free(k->auth);
    free(k->models_auth);
    buf_free(&k->published);
    free(k);
}

static int k8s_create(const struct sy_host_api *host, const sy_config *cfg, void **inst,
                      char *err, size_t errlen)
{
    const char *ns = NULL, *selector = "", *kubeconfig = NULL, *context = NULL;
    const char *sa_dir = SA_DIR, *host_env = getenv("KUBERNETES_SERVICE_HOST"),
               *port_env = getenv("KUBERNETES_SERVICE_PORT"), *key = getenv("VLLM_API_KEY");
    struct k8s *k;
    int rc;

    if (host->size < offsetof(struct sy_host_api, http_stream_cancel) +
                         sizeof host->http_stream_cancel) {
        snprintf(err, errlen, "needs switchyard with plugin ABI 1.3 (discovery)");
        return SY_ERROR;
    }
    if ((k = calloc(1, sizeof *k)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    k->host = host;
    k->rng = 0x9E3779B97F4A7C15ull ^ (unsigned long long)(host->now() * 1e6);
    if (read_settings(k, cfg, &ns, &selector, &kubeconfig, &context, &sa_dir, err, errlen) != 0)
        goto fail;
    if (k8s_selector_parse(selector, &k->sel, err, errlen) != 0)
        goto fail;
    if (ns != NULL && (k->ns = strdup(ns)) == NULL)
        goto oom;
    if (kubeconfig == NULL && host_env != NULL && host_env[0] && port_env != NULL && port_env[0])
        rc = in_cluster(k, host_env, port_env, sa_dir, &ns, err, errlen);
    else
        rc = from_kubeconfig(k, kubeconfig, context, &ns, err, errlen);
    if (rc != 0)
        goto fail;
    if (k->ns == NULL && (k->ns = strdup("default")) == NULL)
        goto oom;
    if ((k->selector_text = strdup(selector)) == NULL)
        goto oom;
    if (key != NULL && key[0] != '\0' &&
        (k->models_auth = fmt("Authorization: Bearer %s", key)) == NULL)
        goto oom;
    if (!k->service_mode) {
        k->ninf = 1;
        if (informer_init(k, &k->inf[0], K8S_POD, "pods", "/api/v1/namespaces/%s/pods",
                          selector) != 0)
            goto oom;
    } else {
        k->ninf = 2;
        if (informer_init(k, &k->inf[0], K8S_SERVICE, "services",
                          "/api/v1/namespaces/%s/services", selector) != 0 ||
            informer_init(k, &k->inf[1], K8S_ENDPOINTSLICE, "endpointslices",
                          "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices",
                          "kubernetes.io/service-name") != 0)
            goto oom;
    }
    *inst = k;
    return SY_OK;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    k8s_destroy(k);
    return SY_ERROR;
}

static int k8s_start(void *inst)
{
    struct k8s *k = inst;
    const struct sy_host_api *h = k->host;

    h->log(h, SY_LOG_INFO, "discovering %s in namespace %s%s%s, port %lld, at %s",
           k->service_mode ? "services" : "pods", k->ns, k->selector_text[0] ? " with labels " : "",
           k->selector_text, k->port, k->server);
    for (size_t i = 0; i < k->ninf; i++)
        inf_list(&k->inf[i]);
    if (k->resync > 0)
        k->resync_timer = h->timer_add(h, k->resync * (0.9 + 0.2 * unit_random(k)), resync_now, k);
    return SY_OK;
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_DISCOVERY,
    .flags = SY_PLUGIN_F_SHARED,
    .name = "k8s",
    .version = "1.0",
    .description = "backends from Kubernetes pods or Services (vllm_router's k8s discovery)",
    .create = k8s_create,
    .destroy = k8s_destroy,
    .start = k8s_start,
};
