#define _POSIX_C_SOURCE 200809L /* strdup */
#include "discovery.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "host_api.h"
#include "log.h"
#include "plugin_loader.h"
#include "setup.h"

/* What one plugin published last. */
struct source {
    char *name;
    struct discovered_set set;
    int published;     /* 0: nothing yet (the predecessor's set stands) */
};

struct discovery {
    struct sy_cfg *cfg;         /* a reference: the plugins' sections live there */
    struct plugin_slot *slots;
    size_t n;
    struct control *control;
    void (*changed)(void *arg);
    void *arg;
    pthread_mutex_t lock;       /* sources, counters */
    struct source *sources;     /* [n], in the order of cfg->discovery */
    unsigned long long changes;
    long long last_publish_ms;  /* 0: never */
    /* backends that failed (discovery_backend_failed), for the plugins'
     * backend_failed(), under `lock` */
    struct event *failed_ev;    /* on the plugins' thread */
    struct failed {
        char url[256];
        long long at_ms;        /* told the plugins; 0: not yet */
    } failed[32];
    size_t nfailed;
};

/* The daemon's current discovery, for workers that report failures; the
 * lock keeps it from being stopped while one reports. */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct discovery *current;

static void backend_clear(struct discovered_backend *b)
{
    free(b->url);
    for (size_t i = 0; i < b->nmodels; i++)
        free(b->models[i]);
    free(b->models);
    for (size_t i = 0; i < b->nlabels; i++)
        free(b->labels[i]);
    free(b->labels);
}

static void set_clear(struct discovered_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        backend_clear(&s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

void discovered_set_free(struct discovered_set *s)
{
    if (s != NULL) {
        set_clear(s);
        free(s);
    }
}

static char **copy_strings(const char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; out != NULL && i < n; i++) {
        if ((out[i] = strdup(v[i])) == NULL) {
            while (i > 0)
                free(out[--i]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static int backend_copy(struct discovered_backend *to, const struct discovered_backend *from)
{
    memset(to, 0, sizeof *to);
    to->ready = from->ready;
    to->nmodels = from->nmodels;
    to->nlabels = from->nlabels;
    to->url = strdup(from->url);
    to->models = copy_strings((const char *const *)from->models, from->nmodels);
    to->labels = copy_strings((const char *const *)from->labels, from->nlabels);
    if (to->url == NULL || to->models == NULL || to->labels == NULL) {
        if (to->models == NULL)
            to->nmodels = 0;
        if (to->labels == NULL)
            to->nlabels = 0;
        backend_clear(to);
        return -1;
    }
    return 0;
}

static int set_copy(struct discovered_set *to, const struct discovered_set *from)
{
    to->n = 0;
    to->v = calloc(from->n ? from->n : 1, sizeof *to->v);
    if (to->v == NULL)
        return -1;
    for (size_t i = 0; i < from->n; i++) {
        if (backend_copy(&to->v[i], &from->v[i]) < 0) {
            set_clear(to);
            return -1;
        }
        to->n++;
    }
    return 0;
}

/* --- publishing --- */

static int strings_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static int sets_equal(const struct discovered_set *a, const struct discovered_set *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct discovered_backend *x = &a->v[i], *y = &b->v[i];
        if (strcmp(x->url, y->url) != 0 || x->ready != y->ready ||
            !strings_equal(x->models, x->nmodels, y->models, y->nmodels) ||
            !strings_equal(x->labels, x->nlabels, y->labels, y->nlabels))
            return 0;
    }
    return 1;
}

/* Backends by URL, then by position: sorting finds repeats in n log n (a
 * fleet publishes thousands, many times a second). */
struct by_url {
    const char *url;
    size_t at;
};

static int by_url_cmp(const void *a, const void *b)
{
    const struct by_url *x = a, *y = b;
    int c = strcmp(x->url, y->url);
    return c != 0 ? c : (x->at > y->at) - (x->at < y->at);
}

/* A URL set holds twice, or NULL (also when out of memory: then unchecked,
 * as the copy that follows fails the same way). */
static const char *first_repeat(const struct discovered_set *set)
{
    struct by_url *v = calloc(set->n ? set->n : 1, sizeof *v);
    const char *twice = NULL;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < set->n; i++)
        v[i] = (struct by_url){ set->v[i].url, i };
    qsort(v, set->n, sizeof *v, by_url_cmp);
    for (size_t i = 1; i < set->n && twice == NULL; i++)
        if (strcmp(v[i - 1].url, v[i].url) == 0)
            twice = set->v[v[i].at].url;
    free(v);
    return twice;
}

/* The plugin's entries, checked and copied: URLs as the config checks
 * them, model names as well, one entry per URL. */
static int take_set(const char *name, const struct sy_discovered *in, size_t n,
                    struct discovered_set *out)
{
    char why[128];

    out->n = 0;
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (out->v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        /* a plugin built against a later, larger struct: read our part */
        const struct sy_discovered *e =
            (const struct sy_discovered *)((const char *)in + i * (in->size ? in->size : sizeof *in));
        struct discovered_backend b = { 0 };
        char *url = NULL;
        if (e->url == NULL || config_parse_url(e->url, &url, why, sizeof why) < 0) {
            LOG_ERROR("discovery plugin %s: backend '%s': %s; nothing published", name,
                      e->url ? e->url : "(null)", e->url ? why : "no URL");
            goto fail;
        }
        for (size_t j = 0; j < e->nmodels; j++)
            if (e->models == NULL || !config_model_name_ok(e->models[j])) {
                LOG_ERROR("discovery plugin %s: backend %s: bad model name; nothing published",
                          name, url);
                free(url);
                goto fail;
            }
        b.url = url;
        b.ready = e->ready != 0;
        b.nmodels = e->nmodels;
        b.nlabels = e->labels ? e->nlabels : 0;
        b.models = copy_strings(e->models, e->nmodels);
        b.labels = copy_strings(e->labels, b.nlabels);
        if (b.models == NULL || b.labels == NULL) {
            if (b.models == NULL)
                b.nmodels = 0;
            if (b.labels == NULL)
                b.nlabels = 0;
            backend_clear(&b);
            goto fail;
        }
        out->v[out->n++] = b;
    }
    const char *twice = first_repeat(out);
    if (twice != NULL) {
        LOG_ERROR("discovery plugin %s: backend %s published twice; nothing published", name,
                  twice);
        goto fail;
    }
    return 0;
fail:
    set_clear(out);
    return -1;
}

int discovery_publish(struct discovery *d, const char *name, const struct sy_discovered *set,
                      size_t n)
{
    struct discovered_set fresh;
    struct source *src = NULL;
    int changed;

    if (n > 0 && set == NULL)
        return SY_ERROR;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->sources[i].name, name) == 0)
            src = &d->sources[i];
    if (src == NULL || take_set(name, set, n, &fresh) < 0)
        return SY_ERROR;
    pthread_mutex_lock(&d->lock);
    changed = !src->published || !sets_equal(&src->set, &fresh);
    if (changed) {
        set_clear(&src->set);
        src->set = fresh;
        src->published = 1;
        d->changes++;
    }
    d->last_publish_ms = setup_now_ms();
    pthread_mutex_unlock(&d->lock);
    if (!changed) {
        set_clear(&fresh);
        return SY_OK;
    }
    LOG_INFO("discovery plugin %s: %zu backend%s", name, n, n == 1 ? "" : "s");
    if (d->changed != NULL)
        d->changed(d->arg);
    return SY_OK;
}

struct discovered_set *discovery_snapshot(struct discovery *d)
{
    struct discovered_set *out = calloc(1, sizeof *out);
    struct by_url *all = NULL;
    size_t total = 0, n = 0;

    if (out == NULL || d == NULL)
        return out;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n; i++)
        total += d->sources[i].set.n;
    out->v = calloc(total ? total : 1, sizeof *out->v);
    all = calloc(total ? total : 1, sizeof *all);
    if (out->v == NULL || all == NULL)
        goto oom;
    /* every source's backends in the order of the discovery list; a URL
     * two sources publish is the first one's */
    const struct discovered_backend **src = calloc(total ? total : 1, sizeof *src);
    if (src == NULL)
        goto oom;
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = 0; j < d->sources[i].set.n; j++, n++) {
            src[n] = &d->sources[i].set.v[j];
            all[n] = (struct by_url){ src[n]->url, n };
        }
    qsort(all, n, sizeof *all, by_url_cmp);
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && strcmp(all[k - 1].url, all[k].url) == 0)
            continue;
        if (backend_copy(&out->v[out->n], src[all[k].at]) < 0) {
            free(src);
            goto oom;
        }
        out->n++;
    }
    free(src);
    pthread_mutex_unlock(&d->lock);
    free(all);
    return out;
oom:
    pthread_mutex_unlock(&d->lock);
    free(all);
    discovered_set_free(out);
    return NULL;
}

void discovery_stats(struct discovery *d, unsigned long long *changes, double *since_publish)
{
    *changes = 0;
    *since_publish = -1;
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    *changes = d->changes;
    if (d->last_publish_ms > 0)
        *since_publish = (double)(setup_now_ms() - d->last_publish_ms) / 1000.0;
    pthread_mutex_unlock(&d->lock);
}

size_t discovery_hosts(struct discovery *d, struct host_ctx **hosts, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; d != NULL && i < d->n && n < max; i++)
        if (d->slots[i].host != NULL)
            hosts[n++] = d->slots[i].host;
    return n;
}

/* --- failures: hints for the plugins --- */

void discovery_set_current(struct discovery *d)
{
    pthread_mutex_lock(&current_lock);
    current = d;
    pthread_mutex_unlock(&current_lock);
}

void discovery_backend_failed(const char *url)
{
    long long now = setup_now_ms();

    pthread_mutex_lock(&current_lock);
    struct discovery *d = current;
    if (d != NULL && d->failed_ev != NULL && strlen(url) < sizeof d->failed[0].url) {
        pthread_mutex_lock(&d->lock);
        struct failed *f = NULL;
        for (size_t i = 0; i < d->nfailed && f == NULL; i++)
            if (strcmp(d->failed[i].url, url) == 0)
                f = &d->failed[i];
        /* once a second a URL at most: a dead backend fails every attempt */
        int tell = f == NULL || (f->at_ms != 0 && now - f->at_ms >= 1000);
        if (f == NULL && d->nfailed < sizeof d->failed / sizeof d->failed[0]) {
            f = &d->failed[d->nfailed++];
            snprintf(f->url, sizeof f->url, "%s", url);
        }
        if (f != NULL && tell) {
            f->at_ms = 0; /* pending */
            event_active(d->failed_ev, EV_TIMEOUT, 0);
        }
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_unlock(&current_lock);
}

/* On the plugins' thread: each failure not told yet, to every plugin that
 * listens. */
static void tell_failed(evutil_socket_t fd, short what, void *arg)
{
    struct discovery *d = arg;
    char urls[sizeof d->failed / sizeof d->failed[0]][sizeof d->failed[0].url];
    size_t n = 0;

    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->nfailed; i++)
        if (d->failed[i].at_ms == 0) {
            d->failed[i].at_ms = setup_now_ms();
            memcpy(urls[n++], d->failed[i].url, sizeof urls[0]);
        }
    pthread_mutex_unlock(&d->lock);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < d->n; i++)
            if (d->slots[i].plugin->desc->backend_failed != NULL)
                d->slots[i].plugin->desc->backend_failed(d->slots[i].inst[0], urls[k]);
}

/* --- life --- */

void discovery_stop(struct discovery *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&current_lock);
    if (current == d)
        current = NULL;
    pthread_mutex_unlock(&current_lock);
    if (d->failed_ev != NULL)
        event_free(d->failed_ev); /* waits for a tell_failed running now */
    control_free(d->control); /* no hook runs after this */
    for (size_t i = 0; i < d->n; i++) {
        struct plugin_slot *slot = &d->slots[i];
        if (slot->inst != NULL && slot->inst[0] != NULL)
            slot->plugin->desc->destroy(slot->inst[0]);
        free(slot->inst);
        free(slot->host);
        if (slot->plugin != NULL)
            plugin_unload(slot->plugin);
        free(d->sources[i].name);
        set_clear(&d->sources[i].set);
    }
    free(d->slots);
    free(d->sources);
    pthread_mutex_destroy(&d->lock);
    config_free(d->cfg);
    free(d);
}

int discovery_start(struct sy_cfg *cfg, const char *plugin_dir, const struct discovery *prev,
                    int run, void (*changed)(void *arg), void *arg, struct discovery **out,
                    char *err, size_t errlen)
{
    const struct plugin_list *names = &cfg->discovery;
    struct discovery *d;

    *out = NULL;
    if (names->n == 0)
        return 0;
    if ((d = calloc(1, sizeof *d)) == NULL)
        goto oom;
    pthread_mutex_init(&d->lock, NULL);
    d->cfg = config_ref(cfg);
    d->changed = changed;
    d->arg = arg;
    d->slots = calloc(names->n, sizeof *d->slots);
    d->sources = calloc(names->n, sizeof *d->sources);
    if (d->slots == NULL || d->sources == NULL)
        goto oom_d;
    for (size_t i = 0; i < names->n; i++) {
        struct plugin_slot *slot = &d->slots[i];
        struct source *src = &d->sources[i];
        char why[512] = "";

        d->n++; /* counted first, so discovery_stop frees a partial one */
        if (plugin_load(plugin_dir, names->names[i], SY_KIND_DISCOVERY, &slot->plugin, err,
                        errlen) != 0)
            goto fail;
        if ((src->name = strdup(slot->plugin->name)) == NULL)
            goto oom_d;
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->sources[j].name, src->name) == 0) {
                snprintf(err, errlen, "discovery: plugin %s is listed twice", src->name);
                goto fail;
            }
        /* until it publishes, its predecessor's set stands */
        for (size_t j = 0; prev != NULL && j < prev->n; j++) {
            const struct source *was = &prev->sources[j];
            if (strcmp(was->name, src->name) != 0)
                continue;
            pthread_mutex_lock((pthread_mutex_t *)&prev->lock);
            int rc = set_copy(&src->set, &was->set);
            pthread_mutex_unlock((pthread_mutex_t *)&prev->lock);
            if (rc < 0)
                goto oom_d;
        }
        slot->host = calloc(1, sizeof *slot->host);
        slot->inst = calloc(1, sizeof *slot->inst);
        if (slot->host == NULL || slot->inst == NULL)
            goto oom_d;
        slot->ninst = 1;
        host_ctx_init(slot->host, NULL, slot->plugin->name, 0);
        slot->host->discovery = d;
        const sy_config *section =
            (const sy_config *)config_plugin_section(cfg, names->names[i]);
        if (slot->plugin->desc->create(&slot->host->api, section, &slot->inst[0], why,
                                       sizeof why) != SY_OK) {
            snprintf(err, errlen, "plugin %s: %s: create failed: %s", slot->plugin->name,
                     slot->plugin->path, why[0] ? why : "(no reason given)");
            slot->inst[0] = NULL;
            goto fail;
        }
    }
    if (run && (d->control = control_run(d->slots, d->n, cfg->ca_file, "discovery", 64, err,
                                         errlen)) == NULL)
        goto fail;
    if (run && (d->failed_ev = event_new(control_base(d->control), -1, 0, tell_failed, d)) == NULL)
        goto oom_d;
    *out = d;
    return 0;
oom_d:
    snprintf(err, errlen, "out of memory");
fail:
    discovery_stop(d);
    return -1;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}
