/*
 * dns: discovery from DNS (ABI 1.3).  The backends are the addresses of a
 * name, looked up again every `interval` through the host's dns_resolve()
 * (never blocking): its A and AAAA records with `port`, or, for a name
 * that starts with '_', its SRV records (each target's addresses, with the
 * record's port).  A headless Kubernetes Service is the main use: its name
 * has an A record per ready pod, its _port._tcp name an SRV record each.
 *
 *   discovery: [dns]
 *   plugin_config:
 *     dns: {name: vllm.default.svc.cluster.local, port: 8000,
 *           resolver: 10.96.0.10:53, interval: 5s, models_interval: 30s,
 *           timeout: 2s}
 *
 * Each address is a backend http://ADDR:PORT (an IPv6 one in brackets).
 * Its models come from its GET /v1/models (with $VLLM_API_KEY as a bearer
 * token when set), asked until it answers, then again every
 * models_interval; until it has answered once it is published not ready.
 * The first publish waits until every address has answered or failed once
 * (at most SETTLE_MAX), so a reload does not drop the models for a moment.
 *
 * A lookup that fails (no answer, SERVFAIL, REFUSED; for A and AAAA, either
 * of the two) publishes nothing, so the last set stands; it is retried
 * later and later (to 30 s) and logged ever more rarely.  NXDOMAIN or an
 * answer with no records is an empty set: the Service has no endpoints.
 * Its numbers: counters resolves, resolve_errors, models_errors; gauge
 * addresses.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <switchyard/plugin.h>
#include <sys/queue.h>

#include "k8s_lib.h" /* k8s_models_parse: the /v1/models answer */

#define MAX_ADDRS 256    /* backends one name may give */
#define MAX_TARGETS 64   /* SRV targets followed */
#define URL_MAX 80       /* "http://[" 45 "]:65535" */
#define RETRY_CAP 30.0   /* seconds: the longest wait after failures */
#define MODELS_TIMEOUT 5.0
/* The first publish (at start, after a reload) waits until every address
 * has answered /v1/models or failed, at most this long: published at once,
 * they would all be not ready, and the set the instance before had would
 * lose its models for a moment. */
#define SETTLE_MAX (MODELS_TIMEOUT + 1.0)

struct backend {
    struct dnsd *d;
    char url[URL_MAX];
    struct k8s_models models;
    int known;             /* /v1/models has answered */
    int tried;             /* its first /v1/models has ended, either way */
    int failures;          /* /v1/models failures in a row */
    struct fetch *fetch;   /* its /v1/models in flight */
    sy_timer *timer;       /* its next /v1/models */
};

/* A /v1/models request: the host may drop it at the end without a
 * callback, so the plugin keeps it listed; b is NULL once the backend has
 * left. */
struct fetch {
    struct dnsd *d;
    struct backend *b;
    LIST_ENTRY(fetch) link;
};

struct round;

/* One query of a round: the name's, or an SRV target's. */
struct ask {
    struct round *r;
    int type;              /* enum sy_dns_type */
    size_t target;         /* SRV: which target; else unused */
};

struct target {
    char name[254];
    unsigned port;
};

/* One lookup of the name (and of its SRV targets). */
struct round {
    struct dnsd *d;
    int pending;           /* queries not answered yet */
    int failed;
    char error[600];       /* the first failure */
    struct ask first[2];   /* the name's: A and AAAA, or SRV */
    struct ask *asks;      /* the targets': A and AAAA each */
    struct target *targets;
    size_t ntargets;
    char (*urls)[URL_MAX]; /* what was found */
    size_t nurls;
    int capped;            /* more than MAX_ADDRS */
};

struct dnsd {
    const struct sy_host_api *h;
    char name[256];
    char resolver[128];    /* "" for the system's */
    int srv;               /* name starts with '_' */
    unsigned port;
    double interval, models_interval, timeout;
    char auth[512];        /* "Authorization: Bearer $VLLM_API_KEY", or "" */
    struct round *round;   /* the lookup under way */
    unsigned failures;     /* lookups failed in a row */
    int empty;             /* the last lookup found nothing */
    int published;         /* published at least once */
    int settled;           /* past the first publish's wait for models */
    sy_timer *settle;      /* the end of that wait */
    struct backend **backends; /* sorted by URL */
    size_t nbackends;
    LIST_HEAD(, fetch) fetches;
    sy_timer *next;        /* the next lookup */
    double done_at;        /* when the last lookup ended (host now()) */
};

static void resolve_start(void *arg);
static void models_start(void *arg);

/* Warn on the 1st, 2nd, 4th, 8th... failure in a row: what stays broken
 * is reported ever more rarely. */
static int worth_logging(unsigned n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

/* ---- settings ---- */

/* A DNS name as the host will take it: labels of letters, digits, '-'
 * and '_' (SRV), at most 253 bytes, one final '.' allowed. */
static int name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_') && ++label <= 63) {
            continue;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* "ADDRESS[:PORT]", numeric: 10.96.0.10, 10.96.0.10:53, [fd00::a]:53,
 * fd00::a. */
static int resolver_ok(const char *s)
{
    unsigned char addr[16];
    char host[64];
    const char *port = NULL;
    size_t len = strlen(s);

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || (size_t)(close - s - 1) >= sizeof host)
            return 0;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        if (close[1] != '\0' && close[1] != ':')
            return 0;
        port = close[1] ? close + 2 : NULL;
        if (inet_pton(AF_INET6, host, addr) != 1)
            return 0;
    } else if (inet_pton(AF_INET6, s, addr) == 1) {
        return 1;
    } else {
        const char *colon = strchr(s, ':');
        size_t hlen = colon ? (size_t)(colon - s) : len;
        if (hlen >= sizeof host)
            return 0;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        port = colon ? colon + 1 : NULL;
        if (inet_pton(AF_INET, host, addr) != 1)
            return 0;
    }
    if (port != NULL) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*port < '0' || *port > '9' || *end != '\0' || p < 1 || p > 65535)
            return 0;
    }
    return 1;
}

static int dns_create(const struct sy_host_api *h, const sy_config *cfg, void **inst, char *err,
                      size_t errlen)
{
    static const char *const known[] = { "name", "port", "resolver", "interval",
                                         "models_interval", "timeout", NULL };
    const char *name = NULL, *resolver = NULL, *key = getenv("VLLM_API_KEY");
    long long port = 0;
    int has_port;
    struct dnsd *d;

    if (h->size < offsetof(struct sy_host_api, dns_resolve) + sizeof h->dns_resolve) {
        snprintf(err, errlen, "needs switchyard with plugin ABI 1.3 (dns_resolve)");
        return SY_ERROR;
    }
    if (h->config_check_keys(cfg, known, err, errlen) != SY_OK)
        return SY_ERROR;
    if (h->config_string(cfg, "name", &name) != SY_OK || !name_ok(name)) {
        snprintf(err, errlen, "name: required, a DNS name (e.g. vllm.default.svc.cluster.local, "
                              "or _http._tcp.vllm.default.svc.cluster.local for SRV)");
        return SY_ERROR;
    }
    if ((d = calloc(1, sizeof *d)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return SY_ERROR;
    }
    d->h = h;
    LIST_INIT(&d->fetches);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->srv = name[0] == '_';
    d->interval = 5;
    d->models_interval = 30;
    d->timeout = 2;
    has_port = h->config_int(cfg, "port", &port);
    if (has_port == SY_ERROR || (has_port == SY_OK && (port < 1 || port > 65535))) {
        snprintf(err, errlen, "port: a TCP port, 1 to 65535");
        goto fail;
    }
    if (d->srv && has_port == SY_OK) {
        snprintf(err, errlen, "port: not with an SRV name (%s): its records give the ports",
                 name);
        goto fail;
    }
    if (!d->srv && has_port != SY_OK) {
        snprintf(err, errlen, "port: required (the backends' port) for A and AAAA records");
        goto fail;
    }
    d->port = (unsigned)port;
    if (h->config_string(cfg, "resolver", &resolver) == SY_ERROR ||
        (resolver != NULL && (strlen(resolver) >= sizeof d->resolver || !resolver_ok(resolver)))) {
        snprintf(err, errlen, "resolver: a numeric ADDRESS:PORT (10.96.0.10:53, [fd00::a]:53); "
                              "leave it out for the system's");
        goto fail;
    }
    if (resolver != NULL)
        snprintf(d->resolver, sizeof d->resolver, "%s", resolver);
    if (h->config_seconds(cfg, "interval", &d->interval) == SY_ERROR || !(d->interval > 0)) {
        snprintf(err, errlen, "interval: a duration above 0 (e.g. 5s)");
        goto fail;
    }
    if (h->config_seconds(cfg, "models_interval", &d->models_interval) == SY_ERROR ||
        !(d->models_interval > 0)) {
        snprintf(err, errlen, "models_interval: a duration above 0 (e.g. 30s)");
        goto fail;
    }
    if (h->config_seconds(cfg, "timeout", &d->timeout) == SY_ERROR || !(d->timeout > 0) ||
        d->timeout > 60) {
        snprintf(err, errlen, "timeout: a duration above 0, at most 60s (e.g. 2s)");
        goto fail;
    }
    if (key != NULL && *key != '\0') {
        if (strlen(key) + sizeof "Authorization: Bearer " > sizeof d->auth ||
            strpbrk(key, "\r\n") != NULL) {
            snprintf(err, errlen, "VLLM_API_KEY: too long, or holds a line break");
            goto fail;
        }
        snprintf(d->auth, sizeof d->auth, "Authorization: Bearer %s", key);
    }
    *inst = d;
    return SY_OK;
fail:
    free(d);
    return SY_ERROR;
}

/* ---- backends and their models ---- */

static void backend_free(struct dnsd *d, struct backend *b)
{
    if (b->timer != NULL)
        d->h->timer_cancel(b->timer);
    if (b->fetch != NULL)
        b->fetch->b = NULL; /* its answer, when it comes, is dropped */
    k8s_models_free(&b->models);
    free(b);
}

static void publish(struct dnsd *d)
{
    struct sy_discovered *set = calloc(d->nbackends ? d->nbackends : 1, sizeof *set);
    size_t ready = 0;

    if (set == NULL) {
        d->h->log(d->h, SY_LOG_ERROR, "%s: out of memory; nothing published", d->name);
        return;
    }
    for (size_t i = 0; i < d->nbackends; i++) {
        const struct backend *b = d->backends[i];
        set[i] = (struct sy_discovered){ .size = sizeof set[i], .url = b->url,
                                         .models = (const char *const *)b->models.ids,
                                         .nmodels = b->models.n, .ready = b->known };
        ready += b->known != 0;
    }
    if (d->h->discovery_publish(d->h, set, d->nbackends) == SY_OK)
        d->published = 1;
    else
        d->h->log(d->h, SY_LOG_ERROR, "%s: the set was refused (see above)", d->name);
    d->h->gauge_set(d->h, "addresses", (double)d->nbackends);
    d->h->log(d->h, SY_LOG_DEBUG, "%s: published %zu backends, %zu ready", d->name,
              d->nbackends, ready);
    free(set);
}

static int all_tried(const struct dnsd *d)
{
    for (size_t i = 0; i < d->nbackends; i++)
        if (!d->backends[i]->tried)
            return 0;
    return 1;
}

static void on_settle(void *arg)
{
    struct dnsd *d = arg;

    d->settle = NULL;
    d->settled = 1;
    publish(d);
}

/* Something changed: publish, unless the first publish still waits. */
static void changed(struct dnsd *d)
{
    if (d->settled) {
        publish(d);
        return;
    }
    if (all_tried(d)) {
        if (d->settle != NULL)
            d->h->timer_cancel(d->settle);
        on_settle(d);
    } else if (d->settle == NULL) {
        d->settle = d->h->timer_add(d->h, SETTLE_MAX, on_settle, d);
        if (d->settle == NULL)
            on_settle(d);
    }
}

static void models_later(struct dnsd *d, struct backend *b, double seconds)
{
    b->timer = d->h->timer_add(d->h, seconds, models_start, b);
    if (b->timer == NULL)
        d->h->log(d->h, SY_LOG_ERROR, "%s: no timer for %s's models", d->name, b->url);
}

static void on_models(void *arg, int status, const char *body, size_t len, const char *error)
{
    struct fetch *f = arg;
    struct dnsd *d = f->d;
    struct backend *b = f->b;
    struct k8s_models m;
    char why[200];
    double retry;

    LIST_REMOVE(f, link);
    free(f);
    if (b == NULL) /* it left meanwhile */
        return;
    b->fetch = NULL;
    if (status == 200 && k8s_models_parse(body, len, &m, why, sizeof why) == 0) {
        int news = !b->known || !k8s_models_equal(&m, &b->models);
        if (news || b->failures > 0)
            d->h->log(d->h, SY_LOG_INFO, "%s: %s serves %zu models%s", d->name, b->url, m.n,
                      b->failures > 0 && b->known ? " again" : "");
        k8s_models_free(&b->models);
        b->models = m;
        b->known = 1;
        b->tried = 1;
        b->failures = 0;
        models_later(d, b, d->models_interval);
        if (news || !d->settled)
            changed(d);
        return;
    }
    if (status != 200) {
        if (status == 0)
            snprintf(why, sizeof why, "%s", error ? error : "no answer");
        else
            snprintf(why, sizeof why, "HTTP %d", status);
    }
    b->failures++;
    d->h->counter_add(d->h, "models_errors", 1);
    if (worth_logging((unsigned)b->failures))
        d->h->log(d->h, b->known ? SY_LOG_WARNING : SY_LOG_INFO,
                  "%s: GET %s/v1/models: %s (%d in a row; %s)", d->name, b->url, why,
                  b->failures, b->known ? "its models stand" : "not ready until it answers");
    /* soon while it starts (a vLLM pod loads its model for minutes), never
     * slower than the regular re-read */
    retry = 0.5;
    for (int i = 1; i < b->failures && retry < d->models_interval; i++)
        retry *= 2;
    models_later(d, b, retry < d->models_interval ? retry : d->models_interval);
    if (!b->tried) {
        b->tried = 1;
        if (!d->settled)
            changed(d);
    }
}

static void models_start(void *arg)
{
    struct backend *b = arg;
    struct dnsd *d = b->d;
    struct fetch *f = calloc(1, sizeof *f);
    char url[URL_MAX + 16];
    const char *headers[2];

    b->timer = NULL;
    if (f == NULL) {
        b->tried = 1;
        models_later(d, b, d->models_interval);
        return;
    }
    f->d = d;
    f->b = b;
    headers[0] = d->auth[0] ? d->auth : NULL;
    headers[1] = NULL;
    snprintf(url, sizeof url, "%s/v1/models", b->url);
    LIST_INSERT_HEAD(&d->fetches, f, link);
    b->fetch = f;
    if (d->h->http_request(d->h, url, NULL, 0, headers, MODELS_TIMEOUT, on_models, f) != SY_OK) {
        LIST_REMOVE(f, link);
        free(f);
        b->fetch = NULL;
        b->tried = 1;
        models_later(d, b, d->models_interval);
    }
}

/* ---- the lookup ---- */

static void round_free(struct round *r)
{
    free(r->asks);
    free(r->targets);
    free(r->urls);
    free(r);
}

static void round_fail(struct round *r, const char *why)
{
    if (!r->failed)
        snprintf(r->error, sizeof r->error, "%s", why);
    r->failed = 1;
}

static void on_answer(void *arg, const struct sy_dns_record *recs, size_t n, const char *error);

static void ask(struct round *r, struct ask *a, const char *name)
{
    struct dnsd *d = r->d;
    char why[300];

    r->pending++;
    if (d->h->dns_resolve(d->h, name, a->type, d->resolver[0] ? d->resolver : NULL, d->timeout,
                          on_answer, a) != SY_OK) {
        r->pending--;
        snprintf(why, sizeof why, "%s: the lookup could not start", name);
        round_fail(r, why);
    }
}

/* An address the round found, as a backend URL (once each). */
static void found(struct round *r, const char *address, unsigned port)
{
    char url[URL_MAX];

    if (port == 0 || strncmp(address, "fe80:", 5) == 0) /* a link-local one needs a zone */
        return;
    snprintf(url, sizeof url, strchr(address, ':') ? "http://[%s]:%u" : "http://%s:%u", address,
             port);
    for (size_t i = 0; i < r->nurls; i++)
        if (strcmp(r->urls[i], url) == 0)
            return;
    if (r->nurls == MAX_ADDRS) {
        r->capped = 1;
        return;
    }
    memcpy(r->urls[r->nurls++], url, sizeof url);
}

/* SRV records: look each target up (A and AAAA), with its port. */
static void srv_answer(struct round *r, const struct sy_dns_record *recs, size_t n)
{
    if ((r->targets = calloc(n ? n : 1, sizeof *r->targets)) == NULL) {
        round_fail(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sy_dns_record *rec = SY_DNS_RECORD(recs, i);
        size_t k = 0;

        /* "." says the service is not offered there */
        if (rec->target == NULL || rec->target[0] == '\0' || rec->port == 0 ||
            strlen(rec->target) >= sizeof r->targets[0].name)
            continue;
        while (k < r->ntargets && !(r->targets[k].port == rec->port &&
                                    strcasecmp(r->targets[k].name, rec->target) == 0))
            k++;
        if (k < r->ntargets)
            continue;
        if (r->ntargets == MAX_TARGETS) {
            r->capped = 1;
            break;
        }
        snprintf(r->targets[r->ntargets].name, sizeof r->targets[0].name, "%s", rec->target);
        r->targets[r->ntargets++].port = rec->port;
    }
    if (r->ntargets == 0)
        return;
    if ((r->asks = calloc(2 * r->ntargets, sizeof *r->asks)) == NULL) {
        round_fail(r, "out of memory");
        return;
    }
    for (size_t t = 0; t < r->ntargets && !r->failed; t++) {
        r->asks[2 * t] = (struct ask){ r, SY_DNS_A, t };
        r->asks[2 * t + 1] = (struct ask){ r, SY_DNS_AAAA, t };
        ask(r, &r->asks[2 * t], r->targets[t].name);
        ask(r, &r->asks[2 * t + 1], r->targets[t].name);
    }
}

static int url_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Append " +URL" or " -URL" to a log line while there is room. */
static void note(char *line, size_t size, char sign, const char *url)
{
    size_t len = strlen(line);

    if (len + strlen(url) + 6 < size)
        snprintf(line + len, size - len, " %c%s", sign, url);
    else if (len + 5 < size && strcmp(line + len - 4, " ...") != 0)
        snprintf(line + len, size - len, " ...");
}

/* The round's addresses become the backends: new ones are published not
 * ready and their models asked for; gone ones leave. */
static void apply(struct dnsd *d, struct round *r)
{
    struct backend **next = calloc(r->nurls ? r->nurls : 1, sizeof *next);
    char changes[512] = "";
    size_t i = 0, j = 0, n = 0;

    if (next == NULL) {
        d->h->log(d->h, SY_LOG_ERROR, "%s: out of memory; the last set stands", d->name);
        return;
    }
    qsort(r->urls, r->nurls, sizeof r->urls[0], url_cmp);
    for (size_t k = 0; k < r->nurls; k++) {
        struct backend *b = calloc(1, sizeof *b);
        if (b == NULL) {
            for (size_t m = 0; m < k; m++)
                free(next[m]); /* no backend has been taken over yet */
            free(next);
            d->h->log(d->h, SY_LOG_ERROR, "%s: out of memory; the last set stands", d->name);
            return;
        }
        next[k] = b; /* a placeholder, kept only for a new URL */
    }
    while (i < d->nbackends || j < r->nurls) {
        int c = i == d->nbackends ? 1 : j == r->nurls ? -1 : strcmp(d->backends[i]->url, r->urls[j]);
        if (c < 0) { /* gone */
            note(changes, sizeof changes, '-', d->backends[i]->url);
            backend_free(d, d->backends[i++]);
        } else if (c == 0) { /* stays */
            free(next[n]);
            next[n++] = d->backends[i++];
            j++;
        } else { /* new: not ready until its models are known */
            struct backend *b = next[n++];
            b->d = d;
            memcpy(b->url, r->urls[j++], URL_MAX);
            note(changes, sizeof changes, '+', b->url);
            models_start(b);
        }
    }
    free(d->backends);
    d->backends = next;
    d->nbackends = n;
    if (changes[0] != '\0')
        d->h->log(d->h, SY_LOG_INFO, "%s: %zu addresses:%s", d->name, n, changes);
    if (n == 0 && !d->empty)
        d->h->log(d->h, SY_LOG_WARNING, "%s: no addresses (NXDOMAIN, or no records): no backends",
                  d->name);
    d->empty = n == 0;
    if (r->capped)
        d->h->log(d->h, SY_LOG_WARNING, "%s: more than %d addresses (or %d SRV targets); the "
                  "rest are left out", d->name, MAX_ADDRS, MAX_TARGETS);
    if (changes[0] != '\0' || !d->published)
        changed(d);
}

static void resolve_later(struct dnsd *d, double seconds)
{
    if ((d->next = d->h->timer_add(d->h, seconds, resolve_start, d)) == NULL)
        d->h->log(d->h, SY_LOG_ERROR, "%s: no timer: no more lookups", d->name);
}

static void round_done(struct round *r)
{
    struct dnsd *d = r->d;
    double delay = d->interval;

    d->round = NULL;
    d->done_at = d->h->now();
    d->h->counter_add(d->h, "resolves", 1);
    if (r->failed) {
        d->failures++;
        d->h->counter_add(d->h, "resolve_errors", 1);
        /* the next try later and later, to RETRY_CAP (or the interval) */
        for (unsigned i = 0; i < d->failures && delay < RETRY_CAP; i++)
            delay *= 2;
        if (delay > RETRY_CAP)
            delay = d->interval > RETRY_CAP ? d->interval : RETRY_CAP;
        if (worth_logging(d->failures))
            d->h->log(d->h, SY_LOG_WARNING,
                      "%s: lookup failed: %s (%u in a row); the last set stands (%zu "
                      "backends); next try in %.1fs", d->name, r->error, d->failures,
                      d->nbackends, delay);
    } else {
        if (d->failures > 0)
            d->h->log(d->h, SY_LOG_INFO, "%s: resolved again after %u failed lookups", d->name,
                      d->failures);
        d->failures = 0;
        apply(d, r);
    }
    round_free(r);
    resolve_later(d, delay);
}

static void on_answer(void *arg, const struct sy_dns_record *recs, size_t n, const char *error)
{
    struct ask *a = arg;
    struct round *r = a->r;
    struct dnsd *d = r->d;

    r->pending--;
    if (error != NULL) {
        round_fail(r, error);
    } else if (!r->failed && a->type == SY_DNS_SRV) {
        srv_answer(r, recs, n);
    } else if (!r->failed) {
        for (size_t i = 0; i < n; i++) {
            const struct sy_dns_record *rec = SY_DNS_RECORD(recs, i);
            if (rec->address != NULL)
                found(r, rec->address, d->srv ? r->targets[a->target].port : d->port);
        }
    }
    if (r->pending == 0)
        round_done(r);
}

static void resolve_start(void *arg)
{
    struct dnsd *d = arg;
    struct round *r = calloc(1, sizeof *r);

    d->next = NULL; /* fired, or cancelled by the caller */
    if (r == NULL || (r->urls = calloc(MAX_ADDRS, sizeof *r->urls)) == NULL) {
        free(r);
        d->h->log(d->h, SY_LOG_ERROR, "%s: out of memory; next lookup in %.1fs", d->name,
                  d->interval);
        resolve_later(d, d->interval);
        return;
    }
    r->d = d;
    d->round = r;
    if (d->srv) {
        r->first[0] = (struct ask){ r, SY_DNS_SRV, 0 };
        ask(r, &r->first[0], d->name);
    } else {
        r->first[0] = (struct ask){ r, SY_DNS_A, 0 };
        r->first[1] = (struct ask){ r, SY_DNS_AAAA, 0 };
        ask(r, &r->first[0], d->name);
        ask(r, &r->first[1], d->name);
    }
    if (r->pending == 0) /* nothing could start */
        round_done(r);
}

/* A backend of ours stopped answering: its record may have moved (a pod
 * replaced behind a headless Service).  Look again now rather than at the
 * interval, once a second at most. */
static void dns_backend_failed(void *inst, const char *url)
{
    struct dnsd *d = inst;
    int ours = 0;

    for (size_t i = 0; i < d->nbackends && !ours; i++)
        ours = strcmp(d->backends[i]->url, url) == 0;
    if (!ours || d->round != NULL || d->h->now() - d->done_at < 1.0)
        return;
    if (d->next != NULL)
        d->h->timer_cancel(d->next);
    d->h->log(d->h, SY_LOG_INFO, "%s: backend %s stopped answering; looking it up now", d->name,
              url);
    d->h->counter_add(d->h, "early_resolves", 1);
    resolve_start(d);
}

static int dns_start(void *inst)
{
    struct dnsd *d = inst;

    d->h->log(d->h, SY_LOG_INFO, "looking up %s (%s) every %.1fs through %s", d->name,
              d->srv ? "SRV" : "A and AAAA", d->interval,
              d->resolver[0] ? d->resolver : "the system's resolver");
    resolve_start(d);
    return SY_OK;
}

/* After the plugin's thread stopped: its timers, requests and lookups are
 * gone, without callbacks. */
static void dns_destroy(void *inst)
{
    struct dnsd *d = inst;
    struct fetch *f;

    if (d->round != NULL)
        round_free(d->round);
    for (size_t i = 0; i < d->nbackends; i++) {
        k8s_models_free(&d->backends[i]->models);
        free(d->backends[i]);
    }
    free(d->backends);
    while ((f = LIST_FIRST(&d->fetches)) != NULL) {
        LIST_REMOVE(f, link);
        free(f);
    }
    free(d);
}

SY_EXPORT const struct sy_plugin sy_plugin_v1 = {
    SY_PLUGIN_HEADER,
    .kind = SY_KIND_DISCOVERY,
    .name = "dns",
    .version = "1.0",
    .description = "backends from a name's A/AAAA or SRV records (a headless Service)",
    .create = dns_create,
    .destroy = dns_destroy,
    .start = dns_start,
    .backend_failed = dns_backend_failed,
};
