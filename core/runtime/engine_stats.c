#define _POSIX_C_SOURCE 200809L
#include "engine_stats.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "log.h"
#include "prom_text.h"
#include "setup.h"

/* Scrapes at once per setup: the rest wait their turn. */
#define SCRAPE_PARALLEL 64
/* The longest a scrape may take, whatever the interval. */
#define SCRAPE_TIMEOUT_MAX 10.0

/* --- the names engines use: newer names first, so that an engine that
 * exports both an old and a new name is read once --- */

enum agg { AGG_SUM, AGG_MEAN, AGG_LABEL_FIRST, AGG_LABEL_SUM };

static const struct source {
    const char *metric;
    enum engine_value value;
    enum agg agg;
    const char *label; /* AGG_LABEL_*: the label holding the number */
} sources[] = {
    {"vllm:num_requests_running", EV_RUNNING, AGG_SUM, NULL},
    {"vllm:num_requests_waiting", EV_WAITING, AGG_SUM, NULL},
    {"vllm:num_requests_swapped", EV_SWAPPED, AGG_SUM, NULL},
    {"vllm:kv_cache_usage_perc", EV_KV_USAGE, AGG_MEAN, NULL},
    {"vllm:gpu_cache_usage_perc", EV_KV_USAGE, AGG_MEAN, NULL},
    {"vllm:prefix_cache_hits_total", EV_PREFIX_HITS, AGG_SUM, NULL},
    {"vllm:gpu_prefix_cache_hits_total", EV_PREFIX_HITS, AGG_SUM, NULL},
    {"vllm:prefix_cache_queries_total", EV_PREFIX_QUERIES, AGG_SUM, NULL},
    {"vllm:gpu_prefix_cache_queries_total", EV_PREFIX_QUERIES, AGG_SUM, NULL},
    {"vllm:cache_config_info", EV_BLOCK_SIZE, AGG_LABEL_FIRST, "block_size"},
    {"vllm:cache_config_info", EV_GPU_BLOCKS, AGG_LABEL_SUM, "num_gpu_blocks"},
    /* SGLang's equivalents */
    {"sglang:num_running_reqs", EV_RUNNING, AGG_SUM, NULL},
    {"sglang:num_queue_reqs", EV_WAITING, AGG_SUM, NULL},
    {"sglang:token_usage", EV_KV_USAGE, AGG_MEAN, NULL},
};
#define NSOURCES (sizeof sources / sizeof sources[0])

static const char *const value_names[EV_COUNT] = {
    "running", "waiting", "swapped", "kv_usage", "prefix_hits", "prefix_queries",
    "block_size", "gpu_blocks",
};

const char *engine_value_name(enum engine_value v)
{
    return (unsigned)v < EV_COUNT ? value_names[v] : "?";
}

/* What one answer adds up to, source by source. */
struct tally {
    double sum[NSOURCES];
    unsigned n[NSOURCES];
};

/* Is name (len bytes) the metric of source i?  Lengths first: most
 * differ. */
static size_t source_len[NSOURCES];
/* The lengths of the table's names, as bits: most series of an answer
 * (histogram buckets) are turned away by their length alone. */
static uint64_t source_lengths;
static pthread_once_t source_len_once = PTHREAD_ONCE_INIT;

static void measure_sources(void)
{
    for (size_t i = 0; i < NSOURCES; i++) {
        source_len[i] = strlen(sources[i].metric);
        if (source_len[i] < 64)
            source_lengths |= 1ULL << source_len[i];
    }
}

static int name_is(const char *name, size_t len, size_t i)
{
    return len == source_len[i] && memcmp(name, sources[i].metric, len) == 0;
}

/* The parser reads only the series of the table. */
static int wanted(void *arg, const char *name, size_t len)
{
    (void)arg;
    if (len >= 64 || !(source_lengths >> len & 1) || (name[0] != 'v' && name[0] != 's'))
        return 0;
    for (size_t i = 0; i < NSOURCES; i++)
        if (name_is(name, len, i))
            return 1;
    return 0;
}

/* A label's value as a finite number; -1 when absent or not one. */
static int label_number(const struct prom_sample *s, const char *label, double *out)
{
    size_t len = strlen(label);
    for (size_t i = 0; i < s->nlabels; i++) {
        const struct prom_label *l = &s->labels[i];
        char buf[32], *end;
        if (l->name_len != len || memcmp(l->name, label, len) != 0)
            continue;
        if (l->value_len == 0 || l->value_len >= sizeof buf)
            return -1;
        memcpy(buf, l->value, l->value_len);
        buf[l->value_len] = '\0';
        *out = strtod(buf, &end);
        return *end == '\0' && isfinite(*out) ? 0 : -1;
    }
    return -1;
}

static int tally_sample(void *arg, const struct prom_sample *s)
{
    struct tally *t = arg;
    for (size_t i = 0; i < NSOURCES; i++) {
        double v = s->value;
        if (!name_is(s->name, s->name_len, i))
            continue;
        if (sources[i].label != NULL && label_number(s, sources[i].label, &v) != 0)
            continue;
        if (!isfinite(v))
            continue;
        if (sources[i].agg == AGG_LABEL_FIRST && t->n[i] > 0)
            continue;
        t->sum[i] += v;
        t->n[i]++;
    }
    return 0;
}

static void tally_result(const struct tally *t, struct engine_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < NSOURCES; i++) {
        enum engine_value v = sources[i].value;
        if (t->n[i] == 0 || (out->present >> v & 1))
            continue; /* an older name of a value read already */
        out->v[v] = sources[i].agg == AGG_MEAN ? t->sum[i] / t->n[i] : t->sum[i];
        out->present |= 1u << v;
    }
}

int engine_stats_parse(const char *text, size_t len, struct engine_stats *out, char *err,
                       size_t errlen)
{
    struct tally t;
    struct prom_parser *p;
    int rc;

    pthread_once(&source_len_once, measure_sources);
    memset(&t, 0, sizeof t);
    if ((p = prom_parser_new(NULL, tally_sample, &t)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    prom_parser_want(p, wanted);
    rc = prom_feed(p, text, len);
    if (rc == PROM_OK)
        rc = prom_finish(p);
    if (rc != PROM_OK)
        snprintf(err, errlen, "%s", prom_error(p));
    prom_parser_free(p);
    if (rc != PROM_OK)
        return -1;
    tally_result(&t, out);
    return 0;
}

/* --- the cell: one writer (the control thread), readers anywhere --- */

static void cell_write(struct engine_stats_cell *c, const struct engine_stats *st)
{
    unsigned seq = atomic_load_explicit(&c->seq, memory_order_relaxed);
    atomic_store_explicit(&c->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (int i = 0; i < EV_COUNT; i++)
        atomic_store_explicit(&c->v[i], st->v[i], memory_order_relaxed);
    atomic_store_explicit(&c->present, st->present, memory_order_relaxed);
    atomic_store_explicit(&c->scraped_ms, st->scraped_ms, memory_order_relaxed);
    atomic_store_explicit(&c->seq, seq + 2, memory_order_release);
}

int engine_stats_get(const struct backend *b, struct engine_stats *out)
{
    struct engine_stats_cell *c = (struct engine_stats_cell *)&b->estats;
    unsigned seq;

    do {
        seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        for (int i = 0; i < EV_COUNT; i++)
            out->v[i] = atomic_load_explicit(&c->v[i], memory_order_relaxed);
        out->present = atomic_load_explicit(&c->present, memory_order_relaxed);
        out->scraped_ms = atomic_load_explicit(&c->scraped_ms, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
    } while ((seq & 1) || seq != atomic_load_explicit(&c->seq, memory_order_relaxed));
    out->stale = atomic_load_explicit(&c->failing, memory_order_relaxed);
    if (out->scraped_ms > 0 && !out->stale) {
        /* overdue: two intervals and a timeout without a good scrape */
        double interval = b->setup->cfg->engine_stats_interval;
        long long age = setup_now_ms() - out->scraped_ms;
        if (interval <= 0 || age > (long long)((2 * interval + SCRAPE_TIMEOUT_MAX) * 1000))
            out->stale = 1;
    }
    return out->scraped_ms > 0 ? 0 : -1;
}

void engine_stats_carry_over(struct backend *to, const struct backend *from)
{
    struct engine_stats st;
    if (engine_stats_get(from, &st) == 0)
        cell_write(&to->estats, &st);
    atomic_store(&to->estats.tried_ms, atomic_load(&from->estats.tried_ms));
    atomic_store(&to->estats.failing, atomic_load(&from->estats.failing));
}

/* --- the scraper, on the control thread --- */

struct scrape {
    struct engine_scraper *sc;
    struct backend *b;
    sy_stream *stream;       /* while one runs */
    long long started_ms;    /* when it started */
    struct prom_parser *parser;
    struct tally tally;
    int status;
    int bad;                 /* the answer did not parse */
    char error[160];
};

struct engine_scraper {
    struct setup *s;
    struct control *c;
    double interval;
    struct scrape *scrapes;  /* [s->nbackends] */
    size_t running;
    size_t next;             /* where the round-robin of due scrapes stands */
    int backlog;             /* scrapes were due when SCRAPE_PARALLEL ran */
};

static void scrape_start(struct scrape *sp);
static void start_due(struct engine_scraper *sc);

/* The answer, as it comes, goes through the parser: nothing is kept but
 * the tally and the parser's line. */
static void on_head(void *arg, int status)
{
    struct scrape *sp = arg;
    sp->status = status;
}

static int on_data(void *arg, const char *data, size_t len)
{
    struct scrape *sp = arg;
    if (sp->status != 200 || sp->bad)
        return 0; /* read to the end: the connection stays usable */
    if (prom_feed(sp->parser, data, len) != PROM_OK) {
        sp->bad = 1;
        snprintf(sp->error, sizeof sp->error, "not Prometheus text: %s", prom_error(sp->parser));
    }
    return 0;
}

static void scrape_fail(struct scrape *sp, const char *why)
{
    struct engine_stats_cell *c = &sp->b->estats;
    atomic_store(&c->tried_ms, sp->started_ms);
    if (!atomic_exchange(&c->failing, 1))
        LOG_WARN("engine stats of %s: %s; its last values are kept, marked stale",
                 sp->b->url, why);
}

static void on_end(void *arg, int status, const char *error)
{
    struct scrape *sp = arg;
    struct engine_scraper *sc = sp->sc;
    char why[200];

    sp->stream = NULL;
    sc->running--;
    if (error != NULL) {
        scrape_fail(sp, error);
    } else if (status != 200) {
        snprintf(why, sizeof why, "GET /metrics answered %d", status);
        scrape_fail(sp, why);
    } else if (sp->bad || prom_finish(sp->parser) != PROM_OK) {
        if (!sp->bad)
            snprintf(sp->error, sizeof sp->error, "not Prometheus text: %s",
                     prom_error(sp->parser));
        scrape_fail(sp, sp->error);
    } else {
        struct engine_stats st;
        tally_result(&sp->tally, &st);
        st.scraped_ms = setup_now_ms();
        cell_write(&sp->b->estats, &st);
        atomic_store(&sp->b->estats.tried_ms, sp->started_ms);
        if (atomic_exchange(&sp->b->estats.failing, 0))
            LOG_INFO("engine stats of %s: scraped again", sp->b->url);
    }
    if (sc->backlog)
        start_due(sc); /* a slot is free for one that waits */
}

static void scrape_start(struct scrape *sp)
{
    struct engine_scraper *sc = sp->sc;
    const char *headers[2] = { sp->b->auth_header, NULL };
    double timeout = sc->interval < SCRAPE_TIMEOUT_MAX ? sc->interval : SCRAPE_TIMEOUT_MAX;
    char url[2048];

    if (timeout < 1)
        timeout = 1;
    sp->started_ms = setup_now_ms();
    if ((size_t)snprintf(url, sizeof url, "%s/metrics", sp->b->url) >= sizeof url) {
        scrape_fail(sp, "URL too long");
        return;
    }
    memset(&sp->tally, 0, sizeof sp->tally);
    sp->status = 0;
    sp->bad = 0;
    sp->error[0] = '\0';
    /* one parser a backend, its buffers kept from scrape to scrape */
    if (sp->parser == NULL && (sp->parser = prom_parser_new(NULL, tally_sample, &sp->tally)) != NULL)
        prom_parser_want(sp->parser, wanted);
    else if (sp->parser != NULL)
        prom_parser_reset(sp->parser);
    if (sp->parser != NULL)
        sp->stream = control_get(sc->c, url, headers, timeout, on_head, on_data, on_end, sp);
    if (sp->stream == NULL) {
        scrape_fail(sp, "cannot start the request");
        return;
    }
    sc->running++;
}

/* When backend sp's next scrape is due (monotonic ms). */
static long long due_ms(const struct engine_scraper *sc, const struct scrape *sp)
{
    return atomic_load(&sp->b->estats.tried_ms) + (long long)(sc->interval * 1000);
}

/* Start the scrapes that are due, in turn, up to SCRAPE_PARALLEL at once.
 * A backend carried over from the previous setup keeps its schedule. */
static void start_due(struct engine_scraper *sc)
{
    long long now = setup_now_ms();
    size_t n = sc->s->nbackends;

    sc->backlog = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (sc->next + k) % n;
        struct scrape *sp = &sc->scrapes[i];
        if (sp->stream == NULL && due_ms(sc, sp) <= now + 2) { /* a timer may run early */
            if (sc->running >= SCRAPE_PARALLEL) {
                sc->backlog = 1;
                break;
            }
            scrape_start(sp);
            sc->next = (i + 1) % n;
        }
    }
}

/* Start what is due, then wake when the next one is (a scrape that ends
 * starts the next waiting one itself), at most a second on. */
static void tick(void *arg)
{
    struct engine_scraper *sc = arg;
    long long now, next = -1;

    start_due(sc);
    now = setup_now_ms();
    for (size_t i = 0; i < sc->s->nbackends; i++) {
        const struct scrape *sp = &sc->scrapes[i];
        if (sp->stream == NULL && (next < 0 || due_ms(sc, sp) < next))
            next = due_ms(sc, sp);
    }
    /* at least 50 ms (a tenth of a short interval) between looks: a look
     * walks every backend, and a few ms late is no harm */
    double wait = next < 0 ? 1.0 : (double)(next - now) / 1000, least = sc->interval / 10;
    if (least > 0.05)
        least = 0.05;
    control_timer(sc->c, wait < least ? least : wait > 1 ? 1 : wait, tick, sc);
}

int engine_scraper_start(struct setup *s)
{
    struct engine_scraper *sc;
    double interval = s->cfg->engine_stats_interval;

    if (interval <= 0 || s->nbackends == 0 || s->control == NULL)
        return 0;
    pthread_once(&source_len_once, measure_sources);
    if ((sc = calloc(1, sizeof *sc)) == NULL ||
        (sc->scrapes = calloc(s->nbackends, sizeof *sc->scrapes)) == NULL) {
        free(sc);
        return -1;
    }
    sc->s = s;
    sc->c = s->control;
    sc->interval = interval;
    for (size_t i = 0; i < s->nbackends; i++) {
        sc->scrapes[i].sc = sc;
        sc->scrapes[i].b = &s->backends[i];
    }
    if (control_call(sc->c, tick, sc) != 0) {
        free(sc->scrapes);
        free(sc);
        return -1;
    }
    s->scraper = sc;
    return 0;
}

void engine_scraper_free(struct setup *s)
{
    struct engine_scraper *sc = s->scraper;
    if (sc == NULL)
        return;
    /* the thread is gone, and its streams with it: only parsers are left */
    for (size_t i = 0; i < s->nbackends; i++)
        prom_parser_free(sc->scrapes[i].parser);
    free(sc->scrapes);
    free(sc);
    s->scraper = NULL;
}
