/*
 * engine_stats: what each inference engine says of its own load, scraped
 * from its /metrics (Prometheus text) every engine_stats_interval seconds
 * on the setup's control thread: requests running, waiting and swapped,
 * KV-cache usage, prefix-cache hits and queries, the cache's geometry.
 *
 * The values live in each backend (struct engine_stats_cell), written by
 * the control thread only and read by any thread without locks (a sequence
 * count makes a read consistent); they carry over a reload by URL, so a
 * setup that discovery rebuilds keeps what was learned.  A scrape that
 * fails keeps the last values, marked stale.
 */
#ifndef SY_ENGINE_STATS_H
#define SY_ENGINE_STATS_H

#include <stdatomic.h>
#include <stddef.h>

struct setup;
struct backend;
struct control;

/* Which values the engine reported in its last good scrape. */
enum engine_value {
    EV_RUNNING,        /* vllm:num_requests_running */
    EV_WAITING,        /* vllm:num_requests_waiting */
    EV_SWAPPED,        /* vllm:num_requests_swapped */
    EV_KV_USAGE,       /* vllm:kv_cache_usage_perc (gpu_ before 0.10), 0..1 */
    EV_PREFIX_HITS,    /* vllm:prefix_cache_hits_total (gpu_ before), tokens */
    EV_PREFIX_QUERIES, /* vllm:prefix_cache_queries_total (gpu_ before) */
    EV_BLOCK_SIZE,     /* vllm:cache_config_info{block_size} */
    EV_GPU_BLOCKS,     /* vllm:cache_config_info{num_gpu_blocks} */
    EV_COUNT
};

/* A snapshot of one backend's engine stats. */
struct engine_stats {
    double v[EV_COUNT];
    unsigned present;        /* bit i: v[i] was reported */
    long long scraped_ms;    /* monotonic ms of the last good scrape; 0: never */
    int stale;               /* the last scrape failed, or is overdue */
};

/* In struct backend. */
struct engine_stats_cell {
    atomic_uint seq;         /* odd while the control thread writes */
    _Atomic double v[EV_COUNT];
    atomic_uint present;
    atomic_llong scraped_ms;
    atomic_llong tried_ms;   /* the start of the last scrape that ended,
                                good or not (a scrape cancelled by a reload
                                is done again) */
    atomic_int failing;      /* the last scrape failed */
};

/* The stats of b now; 0 when it was scraped at least once, else -1 (the
 * snapshot then says so: present 0, scraped_ms 0). */
int engine_stats_get(const struct backend *b, struct engine_stats *out);
/* A value's name in /engines and the log ("running", "kv_usage", ...). */
const char *engine_value_name(enum engine_value v);

/* After a reload: `to` takes what `from` (the same URL) had learned. */
void engine_stats_carry_over(struct backend *to, const struct backend *from);

/* Start scraping s's backends on its control thread (s->control), when
 * the config's engine_stats_interval is above 0.  -1 on failure. */
int engine_scraper_start(struct setup *s);
/* Free the scraper once the control thread has stopped (its pending
 * requests and timers were cancelled with it). */
void engine_scraper_free(struct setup *s);

/* For the scraper and tests: parse one /metrics answer into *out (values
 * aggregated over the engine's data-parallel ranks: counts summed, the
 * usage averaged).  0, or -1 with "line N: why" in err. */
int engine_stats_parse(const char *text, size_t len, struct engine_stats *out, char *err,
                       size_t errlen);

#endif
