/*
 * request_stats: what the router itself sees of each backend over a
 * sliding window (request_stats_window): requests per second, mean latency,
 * time to first token, inter-token latency and decoding length, and the
 * requests now waiting for their first token (prefill) or streaming
 * (decode), as vllm_router's request stats.
 *
 * Each worker writes its own cells (one per backend), so the request path
 * takes no lock and shares no cache line; a reader sums the workers'.  The
 * window is a ring of buckets: a bucket is REQUEST_STATS_SPAN-th of the
 * window, the oldest one drops out as time goes.
 */
#ifndef SY_REQUEST_STATS_H
#define SY_REQUEST_STATS_H

#include <stdatomic.h>
#include <stddef.h>

struct backend;
struct setup;

#define REQUEST_STATS_SPAN 15 /* buckets over the window, and one filling */

struct rs_bucket {
    atomic_llong epoch;  /* which bucket of time this holds; -1 while reset */
    atomic_uint_fast64_t started, finished, latency_us, ttft_n, ttft_us;
    atomic_uint_fast64_t itl_n, itl_us, decode_n, decode_events;
};

/* One worker's view of one backend. */
struct request_stats_cell {
    struct rs_bucket b[REQUEST_STATS_SPAN + 1];
    atomic_int in_prefill, in_decode;
} __attribute__((aligned(64)));

/* One attempt as the request path follows it. */
struct rs_attempt {
    double sent;         /* monotonic seconds */
    double first;        /* its first body byte; 0: none yet */
    double last;         /* its last body byte */
    unsigned long events; /* SSE events relayed (a blank line ends each) */
    int newline;         /* the last byte relayed was '\n' */
};

/* The stats of b over the window ending now. */
struct request_stats {
    double window;             /* seconds the figures cover */
    double qps;                /* attempts sent a second */
    double avg_latency;        /* seconds, finished attempts; -1: none */
    double avg_ttft;           /* seconds to the first body byte; -1 */
    double avg_itl;            /* seconds between SSE events; -1 */
    double avg_decoding_length; /* SSE events a streamed answer; -1 */
    long in_prefill;           /* sent, no answer byte yet */
    long in_decoding;          /* answering */
    unsigned long long finished; /* attempts ended in the window */
};

/* The setup's cells: [nbackends][nworkers], each backend's rstats set. */
int request_stats_init(struct setup *s);
void request_stats_free(struct setup *s);

/* After a reload: `to` takes the window `from` (the same URL) holds;
 * requests in flight on `from` are its own till they end. */
void request_stats_carry_over(struct backend *to, const struct backend *from);

/* The request path, on worker w. */
void request_stats_sent(struct backend *b, int w, struct rs_attempt *a, double now);
/* Bytes of the answer relayed (sse: an event stream, whose events count). */
void request_stats_body(struct backend *b, int w, struct rs_attempt *a, const char *data,
                        size_t len, int sse, double now);
/* The attempt ended, answered or not. */
void request_stats_done(struct backend *b, int w, struct rs_attempt *a, double now);

/* Any thread. */
void request_stats_get(const struct backend *b, double now, struct request_stats *out);

#endif
