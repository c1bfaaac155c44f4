#include "setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "discovery.h"
#include "host_api.h"
#include "log.h"
#include "timers.h"

const double setup_latency_bounds[SY_LATENCY_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct name_entry *)a)->name, ((const struct name_entry *)b)->name);
}

struct model *setup_find_model(const struct setup *s, const char *name)
{
    struct name_entry key = { name, NULL }, *e;

    e = bsearch(&key, s->names, s->nnames, sizeof *s->names, name_cmp);
    return e ? e->model : NULL;
}

void setup_count_status(struct setup *s, struct model *m, int status)
{
    if (status < SY_STATUS_MIN || status > SY_STATUS_MAX)
        return;
    atomic_uint_fast64_t *slot = m ? &m->stats.by_status[status - SY_STATUS_MIN]
                                   : &s->unknown_model_by_status[status - SY_STATUS_MIN];
    atomic_fetch_add_explicit(slot, 1, memory_order_relaxed);
}

static void observe(atomic_uint_fast64_t *buckets, atomic_uint_fast64_t *count,
                    atomic_uint_fast64_t *sum_us, double seconds)
{
    size_t i = 0;
    while (i < SY_LATENCY_BUCKETS && seconds > setup_latency_bounds[i])
        i++;
    atomic_fetch_add_explicit(&buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(sum_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

void backend_observe_latency(struct backend *b, double seconds)
{
    observe(b->latency_buckets, &b->latency_count, &b->latency_sum_us, seconds);
}

static const char *const attempt_error_names[AE_COUNT] = {
    "connect", "timeout", "closed", "malformed", "http_429", "http_5xx",
};

const char *attempt_error_type_name(enum attempt_error_type t)
{
    return (unsigned)t < AE_COUNT ? attempt_error_names[t] : "other";
}

struct backend_model *backend_model_of(struct backend *b, const struct model *m)
{
    for (size_t i = 0; i < b->nserved; i++)
        if (b->served[i].model == m)
            return &b->served[i];
    return NULL;
}

void backend_model_observe(struct backend_model *bm, int error, int status_error,
                           double seconds)
{
    int failed = error >= 0 || status_error;
    if (error >= 0 && error < AE_COUNT)
        atomic_fetch_add_explicit(&bm->errors[error], 1, memory_order_relaxed);
    observe(bm->latency_buckets[failed], &bm->latency_count[failed], &bm->latency_sum_us[failed],
            seconds);
}

void backend_observe_probe(struct backend *b, double seconds)
{
    observe(b->probe_buckets, &b->probe_count, &b->probe_sum_us, seconds);
}

long long setup_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Backends by URL: an open-addressing table of indexes + 1 (0: empty), so
 * building, carrying over and /admin/drain look a backend up at once even
 * with thousands discovered (a linear search made a rebuild quadratic). */
static uint64_t url_hash(const char *url)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static int url_index_init(struct setup *s, size_t backends)
{
    size_t cap = 16;
    while (cap < 2 * backends + 2)
        cap *= 2;
    s->url_slots = calloc(cap, sizeof *s->url_slots);
    s->url_cap = s->url_slots ? cap : 0;
    return s->url_slots ? 0 : -1;
}

static void url_index_add(struct setup *s, const struct backend *b)
{
    size_t i = (size_t)url_hash(b->url) & (s->url_cap - 1);
    while (s->url_slots[i] != 0)
        i = (i + 1) & (s->url_cap - 1);
    s->url_slots[i] = b->index + 1;
}

/* The next backend after slot *pos (start with *pos = SIZE_MAX) whose URL
 * is url, or NULL. */
static struct backend *url_index_next(const struct setup *s, const char *url, size_t *pos)
{
    size_t mask = s->url_cap - 1;
    size_t i = *pos == SIZE_MAX ? (size_t)url_hash(url) & mask : (*pos + 1) & mask;
    for (; s->url_slots[i] != 0; i = (i + 1) & mask) {
        struct backend *b = &s->backends[s->url_slots[i] - 1];
        if (strcmp(b->url, url) == 0) {
            *pos = i;
            return b;
        }
    }
    return NULL;
}

/* One backend per (URL, credential): the same server under two models is one
 * backend, so its in-flight count is shared. */
/* A backend's engine id, as vllm_router's /engines and ?id= name engines:
 * a UUID, here of version 8 (RFC 9562's own-derivation kind) made of two
 * FNV-1a hashes of the URL, so that it is the same for a URL across
 * reloads, restarts and replicas.  `nth` tells apart the rare backends
 * that share a URL (with different credentials). */
static void make_engine_id(const char *url, unsigned nth, char out[37])
{
    uint64_t h[2] = { 0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL };
    unsigned char b[16];

    for (int k = 0; k < 2; k++) {
        for (const char *c = url; *c; c++)
            h[k] = (h[k] ^ (unsigned char)*c) * 0x100000001b3ULL;
        for (unsigned n = nth; n > 0; n >>= 8)
            h[k] = (h[k] ^ (n & 0xff)) * 0x100000001b3ULL;
        for (int i = 0; i < 8; i++)
            b[k * 8 + i] = (unsigned char)(h[k] >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x80); /* version 8 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* the RFC's variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static struct backend *find_or_add_backend(struct setup *s, const char *url,
                                           const char *key_env, size_t cap,
                                           char *err, size_t errlen)
{
    char *auth = NULL;

    if (key_env != NULL) {
        const char *key = getenv(key_env);
        if (key == NULL || *key == '\0') {
            snprintf(err, errlen, "%s: backend %s: api_key_env: environment variable %s is not set",
                     s->cfg->source, url, key_env);
            return NULL;
        }
        size_t n = strlen(key) + 32;
        auth = malloc(n);
        if (auth == NULL)
            goto oom;
        snprintf(auth, n, "Authorization: Bearer %s", key);
    }
    size_t pos = SIZE_MAX;
    unsigned same_url = 0;
    for (struct backend *b; (b = url_index_next(s, url, &pos)) != NULL; same_url++) {
        if ((b->auth_header == NULL && auth == NULL) ||
            (b->auth_header && auth && strcmp(b->auth_header, auth) == 0)) {
            free(auth);
            return b;
        }
    }
    if (s->nbackends == cap) {
        free(auth);
        goto oom;
    }
    struct backend *b = &s->backends[s->nbackends];
    b->index = (unsigned)s->nbackends;
    b->setup = s;
    pthread_mutex_init(&b->info_lock, NULL);
    b->since = (long long)time(NULL);
    b->created = b->since;
    make_engine_id(url, same_url, b->engine_id);
    b->url = strdup(url);
    b->auth_header = auth;
    b->weight = 1;
    if (b->url == NULL)
        goto oom;
    s->nbackends++;
    url_index_add(s, b);
    return b;
oom:
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static int append_label(char **label, const char *name)
{
    size_t old = *label ? strlen(*label) : 0;
    char *n = realloc(*label, old + strlen(name) + 2);
    if (n == NULL)
        return -1;
    if (old)
        n[old++] = ',';
    strcpy(n + old, name);
    *label = n;
    return 0;
}

/* The models discovery knows and the config does not: each gets a
 * model_cfg of its own (type chat, no settings), kept by the setup. */
static int add_discovered_models(struct setup *s, const struct discovered_set *disc)
{
    const struct sy_cfg *c = s->cfg;
    size_t cap = 0;

    for (size_t i = 0; i < disc->n; i++)
        cap += disc->v[i].nmodels;
    s->discovered_models = calloc(cap ? cap : 1, sizeof *s->discovered_models);
    if (s->discovered_models == NULL)
        return -1;
    for (size_t i = 0; i < disc->n; i++) {
        for (size_t j = 0; j < disc->v[i].nmodels; j++) {
            const char *name = disc->v[i].models[j];
            int known = config_find_model(c, name) != NULL;
            for (size_t k = 0; k < s->ndiscovered_models && !known; k++)
                known = strcmp(s->discovered_models[k].name, name) == 0;
            if (known)
                continue;
            if (config_find_alias(c, name) != NULL) {
                LOG_WARN("discovered model %s of %s is an alias in the config: the alias wins",
                         name, disc->v[i].url);
                continue;
            }
            struct model_cfg *mc = &s->discovered_models[s->ndiscovered_models];
            mc->name = strdup(name);
            mc->type = strdup("chat");
            if (mc->name == NULL || mc->type == NULL) {
                free(mc->name);
                free(mc->type);
                return -1;
            }
            s->ndiscovered_models++;
        }
    }
    return 0;
}

static int serves(const struct discovered_backend *b, const char *model)
{
    for (size_t i = 0; i < b->nmodels; i++)
        if (strcmp(b->models[i], model) == 0)
            return 1;
    return 0;
}

/* A discovered backend's labels, copied once (its first model). */
static int take_labels(struct backend *b, const struct discovered_backend *d)
{
    if (b->labels != NULL || d->nlabels == 0)
        return 0;
    b->labels = calloc(d->nlabels + 1, sizeof *b->labels);
    for (size_t i = 0; b->labels != NULL && i < d->nlabels; i++)
        if ((b->labels[i] = strdup(d->labels[i])) == NULL)
            return -1;
    return b->labels != NULL ? 0 : -1;
}

/* Is `word` one of the comma-separated `list`'s items? */
static int list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p != NULL && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[0] == ' ')
            p++, len--;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        p = end ? end + 1 : p + len;
        if (end == NULL)
            break;
    }
    return 0;
}

/* vllm_router's static model label of a configured backend, as its
 * labels: model_label=L, and role=prefill or role=decode when L is one of
 * prefill_model_labels or decode_model_labels (for disaggregated prefill). */
static int take_model_label(const struct sy_cfg *c, struct backend *b, const char *label)
{
    const char *role = list_has(c->prefill_model_labels, label)  ? "prefill"
                       : list_has(c->decode_model_labels, label) ? "decode" : NULL;
    size_t n = strlen(label) + 16;

    if (b->labels != NULL)
        return 0;
    if ((b->labels = calloc(3, sizeof *b->labels)) == NULL ||
        (b->labels[0] = malloc(n)) == NULL)
        return -1;
    snprintf(b->labels[0], n, "model_label=%s", label);
    if (role != NULL) {
        if ((b->labels[1] = strdup(role[0] == 'p' ? "role=prefill" : "role=decode")) == NULL)
            return -1;
    }
    return 0;
}

/* Put b in model m (once), and m's name in b's label. */
static int attach(struct model *m, struct backend *b)
{
    for (size_t k = 0; k < m->nbackends; k++)
        if (m->backends[k] == b)
            return 0;
    struct backend_model *served = realloc(b->served, (b->nserved + 1) * sizeof *served);
    if (served == NULL)
        return -1;
    b->served = served;
    memset(&served[b->nserved], 0, sizeof *served);
    served[b->nserved++].model = m;
    m->backends[m->nbackends++] = b;
    return append_label(&b->models_label, m->name);
}

/* The models: the config's, with their backends and the discovered ones
 * that serve them (a model written without backends gives its settings
 * to those), then the models only discovery knows. */
static int build_models(struct setup *s, const struct discovered_set *disc, char *err,
                        size_t errlen)
{
    const struct sy_cfg *c = s->cfg;
    static const struct discovered_set none = { NULL, 0 };
    size_t total = 0, nmodels;
    int not_ready = -1;

    if (disc == NULL)
        disc = &none;
    else if ((not_ready = health_source(s, HEALTH_SOURCE_DISCOVERY)) < 0)
        goto oom;
    if (add_discovered_models(s, disc) != 0)
        goto oom;
    nmodels = c->nmodels + s->ndiscovered_models;
    for (size_t i = 0; i < c->nmodels; i++)
        total += c->models[i].nbackends;
    for (size_t i = 0; i < disc->n; i++)
        total += disc->v[i].nmodels ? disc->v[i].nmodels : 1;
    s->backends = calloc(total ? total : 1, sizeof *s->backends);
    if (url_index_init(s, total) != 0)
        goto oom;
    s->models = calloc(nmodels ? nmodels : 1, sizeof *s->models);
    s->names = calloc(nmodels + c->naliases ? nmodels + c->naliases : 1, sizeof *s->names);
    if (s->backends == NULL || s->models == NULL || s->names == NULL)
        goto oom;
    for (size_t i = 0; i < nmodels; i++) {
        const struct model_cfg *mc = i < c->nmodels ? &c->models[i]
                                                    : &s->discovered_models[i - c->nmodels];
        struct model *m = &s->models[i];
        size_t found = 0;
        for (size_t j = 0; j < disc->n; j++)
            found += serves(&disc->v[j], mc->name);
        m->index = (unsigned)i;
        m->cfg = mc;
        m->name = mc->name;
        m->backends = calloc(mc->nbackends + found ? mc->nbackends + found : 1,
                             sizeof *m->backends);
        m->stats.fallbacks_to = calloc(nmodels, sizeof *m->stats.fallbacks_to);
        s->nmodels++; /* counted first, so setup_destroy frees a partial one */
        if (m->backends == NULL || m->stats.fallbacks_to == NULL)
            goto oom;
        for (size_t j = 0; j < mc->nbackends; j++) {
            const struct backend_cfg *bc = &mc->backends[j];
            struct backend *b = find_or_add_backend(
                s, bc->url, bc->api_key_env ? bc->api_key_env : mc->api_key_env,
                total, err, errlen);
            if (b == NULL)
                return -1;
            if (bc->weight > b->weight)
                b->weight = bc->weight;
            if (attach(m, b) != 0 ||
                (bc->model_label != NULL && take_model_label(c, b, bc->model_label) != 0))
                goto oom;
        }
        for (size_t j = 0; j < disc->n; j++) {
            const struct discovered_backend *d = &disc->v[j];
            if (!serves(d, mc->name))
                continue;
            struct backend *b = find_or_add_backend(s, d->url, mc->api_key_env, total, err,
                                                    errlen);
            if (b == NULL)
                return -1;
            if (attach(m, b) != 0 || take_labels(b, d) != 0)
                goto oom;
            b->discovered = 1;
            if (!d->ready && !backend_flag_held(b, (unsigned)not_ready))
                backend_flag_set(b, (unsigned)not_ready, 1, "not ready (discovery)");
        }
        s->names[s->nnames++] = (struct name_entry){ m->name, m };
    }
    /* a discovered backend that serves no model yet (its models not known)
     * is in the table all the same: /engines shows it, held out */
    for (size_t j = 0; j < disc->n; j++) {
        const struct discovered_backend *d = &disc->v[j];
        if (d->nmodels > 0 || setup_find_backend(s, d->url) != NULL)
            continue;
        struct backend *b = find_or_add_backend(s, d->url, NULL, total, err, errlen);
        if (b == NULL)
            return -1;
        if (take_labels(b, d) != 0)
            goto oom;
        b->discovered = 1;
        if (!d->ready)
            backend_flag_set(b, (unsigned)not_ready, 1, "not ready (discovery)");
    }
    for (size_t i = 0; i < c->naliases; i++) {
        struct model *m = NULL;
        for (size_t j = 0; j < s->nmodels && m == NULL; j++)
            if (strcmp(s->models[j].name, c->aliases[i].model) == 0)
                m = &s->models[j];
        if (m == NULL) {
            snprintf(err, errlen, "alias '%s' names unknown model '%s'",
                     c->aliases[i].alias, c->aliases[i].model);
            return -1;
        }
        s->names[s->nnames++] = (struct name_entry){ c->aliases[i].alias, m };
    }
    qsort(s->names, s->nnames, sizeof *s->names, name_cmp);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Is a plugin of this name in the health chain too? */
static int in_health_chain(const struct setup *s, const char *name)
{
    char own[256];
    for (size_t i = 0; i < s->cfg->health.n; i++)
        if (plugin_name_of(s->cfg->health.names[i], own, sizeof own) == 0 &&
            strcmp(own, name) == 0)
            return 1;
    return 0;
}

/* Health plugins keep one instance: their state is about shared backends.
 * So does a plugin that serves the health chain too. */
static size_t instances_of(const struct setup *s, const struct loaded_plugin *p)
{
    if (p->desc->kind == SY_KIND_HEALTH || (p->desc->flags & SY_PLUGIN_F_SHARED) ||
        in_health_chain(s, p->name))
        return 1;
    return (size_t)s->nworkers;
}

/* A slot of an earlier chain for the plugin configured as `configured`. */
static const struct plugin_slot *earlier_slot(const struct setup *s, const char *configured)
{
    const struct chain *chains[] = { &s->routing, &s->fallback, &s->health };
    char own[256];

    if (plugin_name_of(configured, own, sizeof own) != 0)
        return NULL;
    for (size_t c = 0; c < 3; c++)
        for (size_t i = 0; i < chains[c]->n; i++)
            if (!chains[c]->slots[i].borrowed && chains[c]->slots[i].plugin != NULL &&
                strcmp(chains[c]->slots[i].plugin->name, own) == 0)
                return &chains[c]->slots[i];
    return NULL;
}

static int build_chain(struct setup *s, const struct plugin_list *names,
                       enum sy_plugin_kind kind, const char *dir,
                       struct chain *out, char *err, size_t errlen)
{
    out->slots = calloc(names->n ? names->n : 1, sizeof *out->slots);
    if (out->slots == NULL)
        goto oom;
    for (size_t i = 0; i < names->n; i++) {
        struct plugin_slot *slot = &out->slots[i];
        char why[512] = "";
        /* one plugin in several chains (ABI 1.2): one set of instances */
        const struct plugin_slot *first = earlier_slot(s, names->names[i]);
        if (first != NULL) {
            if (plugin_check_kind(first->plugin, kind, err, errlen) != 0)
                return -1;
            if (kind == SY_KIND_HEALTH && first->ninst != 1) {
                snprintf(err, errlen, "plugin %s: serves the health chain too, so it needs one "
                         "instance (SY_PLUGIN_F_SHARED)", first->plugin->name);
                return -1;
            }
            *slot = *first;
            slot->borrowed = 1;
            out->n++;
            continue;
        }
        if (plugin_load(dir, names->names[i], kind, &slot->plugin, err, errlen) != 0)
            return -1;
        out->n++;
        slot->host = calloc(1, sizeof *slot->host);
        if (slot->host == NULL)
            goto oom;
        int source = health_source(s, slot->plugin->name);
        if (source < 0) {
            snprintf(err, errlen, "plugin %s: more than %d plugins", slot->plugin->name,
                     HEALTH_MAX_SOURCES - 1);
            return -1;
        }
        host_ctx_init(slot->host, s, slot->plugin->name, (unsigned)source);
        slot->ninst = instances_of(s, slot->plugin);
        slot->inst = calloc(slot->ninst, sizeof *slot->inst);
        if (slot->inst == NULL)
            goto oom;
        const sy_config *section = (const sy_config *)config_plugin_section(s->cfg, names->names[i]);
        for (size_t w = 0; w < slot->ninst; w++) {
            if (slot->plugin->desc->create(&slot->host->api, section, &slot->inst[w], why,
                                           sizeof why) != SY_OK) {
                snprintf(err, errlen, "plugin %s: %s: create failed: %s", slot->plugin->name,
                         slot->plugin->path, why[0] ? why : "(no reason given)");
                slot->inst[w] = NULL;
                return -1;
            }
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static void free_chain(struct chain *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct plugin_slot *slot = &c->slots[i];
        if (slot->borrowed)
            continue; /* its first chain frees it */
        for (size_t w = 0; slot->inst && w < slot->ninst; w++)
            if (slot->inst[w] != NULL)
                slot->plugin->desc->destroy(slot->inst[w]);
        free(slot->inst);
        free(slot->host);
        plugin_unload(slot->plugin);
    }
    free(c->slots);
}

int setup_create(struct sy_cfg *cfg, const char *plugin_dir, int nworkers,
                 struct setup **out, char *err, size_t errlen)
{
    return setup_build(cfg, plugin_dir, nworkers, NULL, out, err, errlen);
}

int setup_build(struct sy_cfg *cfg, const char *plugin_dir, int nworkers,
                const struct discovered_set *disc, struct setup **out, char *err,
                size_t errlen)
{
    struct setup *s = calloc(1, sizeof *s);

    *out = NULL;
    if (s == NULL) {
        config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = cfg;
    s->nworkers = nworkers;
    health_source(s, "operator"); /* HEALTH_SOURCE_OPERATOR */
    health_source(s, "sleep");    /* HEALTH_SOURCE_SLEEP */
    s->worker_requests = calloc((size_t)nworkers, sizeof *s->worker_requests);
    s->worker_timers = calloc((size_t)nworkers, sizeof *s->worker_timers);
    for (int w = 0; s->worker_timers != NULL && w < nworkers; w++)
        timers_init(&s->worker_timers[w]);
    if (s->worker_requests == NULL || s->worker_timers == NULL) {
        snprintf(err, errlen, "out of memory");
        setup_destroy(s);
        return -1;
    }
    if (build_models(s, disc, err, errlen) != 0 || request_stats_init(s) != 0 ||
        build_chain(s, &cfg->routing, SY_KIND_ROUTING, plugin_dir, &s->routing, err, errlen) != 0 ||
        build_chain(s, &cfg->fallback, SY_KIND_FALLBACK, plugin_dir, &s->fallback, err, errlen) != 0) {
        setup_destroy(s);
        return -1;
    }
    if (build_chain(s, &cfg->health, SY_KIND_HEALTH, plugin_dir, &s->health, err, errlen) != 0) {
        setup_destroy(s);
        return -1;
    }
    *out = s;
    return 0;
}

void setup_destroy(struct setup *s)
{
    if (s == NULL)
        return;
    free_chain(&s->routing);
    free_chain(&s->fallback);
    free_chain(&s->health);
    for (size_t i = 0; i < s->nmodels; i++) {
        free(s->models[i].backends);
        free(s->models[i].stats.fallbacks_to);
    }
    for (size_t i = 0; i < s->nbackends; i++) {
        pthread_mutex_destroy(&s->backends[i].info_lock);
        free(s->backends[i].url);
        free(s->backends[i].auth_header);
        free(s->backends[i].models_label);
        free(s->backends[i].served);
        for (char **l = s->backends[i].labels; l != NULL && *l != NULL; l++)
            free(*l);
        free(s->backends[i].labels);
    }
    for (size_t i = 0; i < s->ndiscovered_models; i++) {
        free(s->discovered_models[i].name);
        free(s->discovered_models[i].type);
    }
    free(s->discovered_models);
    free(s->models);
    free(s->backends);
    free(s->url_slots);
    free(s->names);
    free(s->worker_requests);
    request_stats_free(s);
    /* each worker cleared its list when it moved on or stopped */
    for (int w = 0; s->worker_timers != NULL && w < s->nworkers; w++)
        timers_clear(&s->worker_timers[w]);
    free(s->worker_timers);
    config_free(s->cfg);
    free(s);
}

/* Take what `from` counted and add it to `to`: an exchange, so a count
 * that lands on `from` meanwhile is moved later, never lost or doubled. */
static void move_counters(atomic_uint_fast64_t *to, atomic_uint_fast64_t *from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add_explicit(&to[i], atomic_exchange_explicit(&from[i], 0, memory_order_relaxed),
                                  memory_order_relaxed);
}

struct backend *setup_find_engine(const struct setup *s, const char *engine_id)
{
    for (size_t i = 0; i < s->nbackends; i++)
        if (strcmp(s->backends[i].engine_id, engine_id) == 0)
            return &s->backends[i];
    return NULL;
}

struct backend *setup_find_backend(const struct setup *s, const char *url)
{
    size_t pos = SIZE_MAX;
    if (s->url_cap > 0)
        return url_index_next(s, url, &pos);
    for (size_t i = 0; i < s->nbackends; i++)
        if (strcmp(s->backends[i].url, url) == 0)
            return &s->backends[i];
    return NULL;
}

void setup_move_counters(struct setup *to, struct setup *from)
{
    for (size_t i = 0; i < to->nbackends; i++) {
        struct backend *b = &to->backends[i];
        struct backend *o = (struct backend *)setup_find_backend(from, b->url);
        if (o == NULL)
            continue;
        move_counters(b->latency_buckets, o->latency_buckets, SY_LATENCY_BUCKETS + 1);
        move_counters(&b->latency_count, &o->latency_count, 1);
        move_counters(&b->latency_sum_us, &o->latency_sum_us, 1);
        move_counters(b->probe_buckets, o->probe_buckets, SY_LATENCY_BUCKETS + 1);
        move_counters(&b->probe_count, &o->probe_count, 1);
        move_counters(&b->probe_sum_us, &o->probe_sum_us, 1);
        move_counters(&b->state_changes, &o->state_changes, 1);
        for (size_t k = 0; k < b->nserved; k++) {
            struct backend_model *t = &b->served[k], *f = NULL;
            for (size_t j = 0; j < o->nserved && f == NULL; j++)
                if (strcmp(o->served[j].model->name, t->model->name) == 0)
                    f = &o->served[j];
            if (f == NULL)
                continue;
            move_counters(&t->input_tokens, &f->input_tokens, 1);
            move_counters(&t->output_tokens, &f->output_tokens, 1);
            move_counters(t->errors, f->errors, AE_COUNT);
            for (int x = 0; x < 2; x++) {
                move_counters(t->latency_buckets[x], f->latency_buckets[x], SY_LATENCY_BUCKETS + 1);
                move_counters(&t->latency_count[x], &f->latency_count[x], 1);
                move_counters(&t->latency_sum_us[x], &f->latency_sum_us[x], 1);
            }
        }
    }
    for (size_t i = 0; i < to->nmodels; i++) {
        struct model *m = &to->models[i];
        struct model *o = NULL;
        for (size_t j = 0; j < from->nmodels && o == NULL; j++)
            if (strcmp(from->models[j].name, m->name) == 0)
                o = &from->models[j];
        if (o == NULL)
            continue;
        move_counters(m->stats.by_status, o->stats.by_status, SY_STATUS_MAX - SY_STATUS_MIN + 1);
        move_counters(&m->stats.retries, &o->stats.retries, 1);
        move_counters(&m->stats.incoming, &o->stats.incoming, 1);
        move_counters(&m->stats.exhausted, &o->stats.exhausted, 1);
        for (size_t j = 0; j < to->nmodels; j++)
            for (size_t k = 0; k < from->nmodels; k++)
                if (strcmp(from->models[k].name, to->models[j].name) == 0)
                    move_counters(&m->stats.fallbacks_to[j], &o->stats.fallbacks_to[k], 1);
    }
    move_counters(to->unknown_model_by_status, from->unknown_model_by_status,
                  SY_STATUS_MAX - SY_STATUS_MIN + 1);
    for (int w = 0; w < to->nworkers && w < from->nworkers; w++)
        move_counters(&to->worker_requests[w], &from->worker_requests[w], 1);
}

void setup_carry_over(struct setup *to, struct setup *from)
{
    for (size_t i = 0; i < to->nbackends; i++) {
        struct backend *b = &to->backends[i];
        const struct backend *o = setup_find_backend(from, b->url);
        if (o != NULL) {
            b->created = o->created;
            backend_health_carry_over(b, to, o, from);
            engine_stats_carry_over(b, o);
            request_stats_carry_over(b, o);
        }
    }
    setup_move_counters(to, from);
}
