#include "request_stats.h"

#include <stdlib.h>
#include <string.h>

#include "setup.h"

#define NBUCKETS (REQUEST_STATS_SPAN + 1)
#define RELAXED memory_order_relaxed

int request_stats_init(struct setup *s)
{
    size_t n = s->nbackends * (size_t)s->nworkers;
    struct request_stats_cell *cells;

    if (n == 0)
        return 0;
    cells = aligned_alloc(64, n * sizeof *cells);
    if (cells == NULL)
        return -1;
    memset(cells, 0, n * sizeof *cells);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < NBUCKETS; k++)
            atomic_init(&cells[i].b[k].epoch, -1);
    s->rstats = cells;
    for (size_t i = 0; i < s->nbackends; i++)
        s->backends[i].rstats = &cells[i * (size_t)s->nworkers];
    return 0;
}

void request_stats_free(struct setup *s)
{
    free(s->rstats);
    s->rstats = NULL;
}

void request_stats_carry_over(struct backend *to, const struct backend *from)
{
    int n = to->setup->nworkers < from->setup->nworkers ? to->setup->nworkers
                                                        : from->setup->nworkers;
    /* the same window length, or the buckets mean other times */
    if (to->rstats == NULL || from->rstats == NULL ||
        to->setup->cfg->request_stats_window != from->setup->cfg->request_stats_window)
        return;
    for (int w = 0; w < n; w++)
        for (int i = 0; i < NBUCKETS; i++) {
            const struct rs_bucket *f = &from->rstats[w].b[i];
            struct rs_bucket *t = &to->rstats[w].b[i];
            const atomic_uint_fast64_t *src[] = { &f->started, &f->finished, &f->latency_us,
                                                  &f->ttft_n, &f->ttft_us, &f->itl_n,
                                                  &f->itl_us, &f->decode_n, &f->decode_events };
            atomic_uint_fast64_t *dst[] = { &t->started, &t->finished, &t->latency_us,
                                            &t->ttft_n, &t->ttft_us, &t->itl_n, &t->itl_us,
                                            &t->decode_n, &t->decode_events };
            for (size_t k = 0; k < sizeof src / sizeof src[0]; k++)
                atomic_store_explicit(dst[k], atomic_load_explicit(src[k], RELAXED), RELAXED);
            atomic_store_explicit(&t->epoch, atomic_load_explicit(&f->epoch, RELAXED),
                                  memory_order_release);
        }
}

/* A bucket is the window over the span, in milliseconds. */
static long long bucket_ms(const struct backend *b)
{
    long long ms = (long long)(b->setup->cfg->request_stats_window * 1000 / REQUEST_STATS_SPAN);
    return ms > 0 ? ms : 1;
}

static void add(atomic_uint_fast64_t *c, unsigned long long v)
{
    /* one writer per cell: a plain load and store, no locked instruction */
    atomic_store_explicit(c, atomic_load_explicit(c, RELAXED) + v, RELAXED);
}

/* The worker's bucket for now, emptied first when it held older time. */
static struct rs_bucket *bucket_now(struct backend *b, int w, double now)
{
    long long epoch = (long long)(now * 1000) / bucket_ms(b);
    struct rs_bucket *k = &b->rstats[w].b[epoch % NBUCKETS];

    if (atomic_load_explicit(&k->epoch, RELAXED) != epoch) {
        /* readers skip a bucket whose epoch changes under them */
        atomic_store_explicit(&k->epoch, -1, memory_order_release);
        atomic_uint_fast64_t *f[] = { &k->started, &k->finished, &k->latency_us,
                                      &k->ttft_n, &k->ttft_us, &k->itl_n, &k->itl_us,
                                      &k->decode_n, &k->decode_events };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            atomic_store_explicit(f[i], 0, RELAXED);
        atomic_store_explicit(&k->epoch, epoch, memory_order_release);
    }
    return k;
}

static unsigned long long us(double seconds)
{
    return seconds > 0 ? (unsigned long long)(seconds * 1e6) : 0;
}

void request_stats_sent(struct backend *b, int w, struct rs_attempt *a, double now)
{
    memset(a, 0, sizeof *a);
    a->sent = now;
    if (b->rstats == NULL)
        return;
    add(&bucket_now(b, w, now)->started, 1);
    atomic_fetch_add_explicit(&b->rstats[w].in_prefill, 1, RELAXED);
}

void request_stats_body(struct backend *b, int w, struct rs_attempt *a, const char *data,
                        size_t len, int sse, double now)
{
    if (a->first == 0) {
        a->first = now;
        if (b->rstats != NULL) {
            struct rs_bucket *k = bucket_now(b, w, now);
            add(&k->ttft_n, 1);
            add(&k->ttft_us, us(now - a->sent));
            atomic_fetch_sub_explicit(&b->rstats[w].in_prefill, 1, RELAXED);
            atomic_fetch_add_explicit(&b->rstats[w].in_decode, 1, RELAXED);
        }
    }
    a->last = now;
    if (!sse)
        return;
    /* an event ends at a blank line ("\n\n"; a '\r' before either '\n' is
     * not looked at: vLLM and SGLang write "\n\n") */
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            if (a->newline)
                a->events++;
            a->newline = 1;
        } else if (data[i] != '\r') {
            a->newline = 0;
        }
    }
}

void request_stats_done(struct backend *b, int w, struct rs_attempt *a, double now)
{
    struct rs_bucket *k;

    if (b->rstats == NULL)
        return;
    k = bucket_now(b, w, now);
    atomic_fetch_sub_explicit(a->first ? &b->rstats[w].in_decode : &b->rstats[w].in_prefill, 1,
                              RELAXED);
    add(&k->finished, 1);
    add(&k->latency_us, us(now - a->sent));
    if (a->events > 0) {
        add(&k->decode_n, 1);
        add(&k->decode_events, a->events);
    }
    if (a->events > 1) {
        add(&k->itl_n, a->events - 1);
        add(&k->itl_us, us(a->last - a->first));
    }
}

static double mean(unsigned long long sum_us, unsigned long long n)
{
    return n > 0 ? (double)sum_us / 1e6 / (double)n : -1;
}

void request_stats_get(const struct backend *b, double now, struct request_stats *out)
{
    long long width = bucket_ms(b);
    long long epoch = (long long)(now * 1000) / width;
    unsigned long long started = 0, lat = 0, ttft_n = 0, ttft = 0, itl_n = 0, itl = 0;
    unsigned long long dec_n = 0, dec = 0;

    memset(out, 0, sizeof *out);
    for (int w = 0; b->rstats != NULL && w < b->setup->nworkers; w++) {
        const struct request_stats_cell *c = &b->rstats[w];
        out->in_prefill += atomic_load_explicit(&c->in_prefill, RELAXED);
        out->in_decoding += atomic_load_explicit(&c->in_decode, RELAXED);
        for (int i = 0; i < NBUCKETS; i++) {
            const struct rs_bucket *k = &c->b[i];
            long long e = atomic_load_explicit(&k->epoch, memory_order_acquire);
            /* the span's whole buckets before this one, and this one filling */
            if (e < 0 || e > epoch || e <= epoch - NBUCKETS)
                continue;
            unsigned long long v[9] = {
                atomic_load_explicit(&k->started, RELAXED),
                atomic_load_explicit(&k->finished, RELAXED),
                atomic_load_explicit(&k->latency_us, RELAXED),
                atomic_load_explicit(&k->ttft_n, RELAXED),
                atomic_load_explicit(&k->ttft_us, RELAXED),
                atomic_load_explicit(&k->itl_n, RELAXED),
                atomic_load_explicit(&k->itl_us, RELAXED),
                atomic_load_explicit(&k->decode_n, RELAXED),
                atomic_load_explicit(&k->decode_events, RELAXED),
            };
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&k->epoch, RELAXED) != e)
                continue; /* emptied while read: its time is past */
            started += v[0];
            out->finished += v[1];
            lat += v[2];
            ttft_n += v[3];
            ttft += v[4];
            itl_n += v[5];
            itl += v[6];
            dec_n += v[7];
            dec += v[8];
        }
    }
    /* a span of whole buckets and the one filling: a little over the window */
    out->window = (double)(REQUEST_STATS_SPAN * width + (long long)(now * 1000) % width + 1) /
                  1000;
    out->qps = (double)started / out->window;
    out->avg_latency = mean(lat, out->finished);
    out->avg_ttft = mean(ttft, ttft_n);
    out->avg_itl = mean(itl, itl_n);
    out->avg_decoding_length = dec_n > 0 ? (double)dec / (double)dec_n : -1;
    if (out->in_prefill < 0)
        out->in_prefill = 0; /* a reader between a worker's two stores */
    if (out->in_decoding < 0)
        out->in_decoding = 0;
}
