/*
 * trace: OpenTelemetry traces of proxied requests, as vllm_router's
 * --otel-endpoint gives them: a span per request (SERVER, "router PATH")
 * and one per upstream attempt (CLIENT, "process_request"), exported over
 * OTLP/HTTP with the JSON encoding by libcurl on a thread of its own.
 *
 * W3C trace context: a client's `traceparent` is the parent of the request
 * span (its trace id kept, its sampled flag obeyed, as OpenTelemetry's
 * parent-based sampler does); each attempt's own span id goes to the
 * backend in a new `traceparent`, so the engine's spans join the trace.
 *
 * Workers never wait for the exporter: each writes finished spans into a
 * ring of its own (one writer, one reader, no lock); a full ring drops the
 * span and counts it.  The exporter drains the rings every 200 ms, sends at
 * most 512 spans a POST, retries a failed POST (connection errors, 429,
 * 502, 503, 504) up to 5 times with a growing wait, then drops it.
 */
#ifndef SY_TRACE_H
#define SY_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct sy_cfg;

/* A W3C trace context (traceparent: "00-TRACEID-SPANID-FLAGS"). */
struct trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;      /* bit 0: sampled */
};

/* 0 and *out from a traceparent header's value; -1 when it is not one
 * (version ff, an all-zero id, bad hex, a wrong length). */
int trace_parse_traceparent(const char *value, struct trace_ctx *out);
/* "00-TRACEID-SPANID-FLAGS", 55 characters and a NUL. */
void trace_format_traceparent(const uint8_t trace_id[16], const uint8_t span_id[8],
                              uint8_t flags, char out[56]);
/* Random ids (never all zero). */
void trace_new_id(uint8_t *id, size_t len);
/* The wall clock, nanoseconds since the epoch (span times). */
long long trace_now_ns(void);

enum trace_kind { TRACE_KIND_SERVER = 2, TRACE_KIND_CLIENT = 3 };

/* A finished span, copied into the exporter's ring by trace_submit(). */
struct trace_span {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    int has_parent;
    int kind;                  /* enum trace_kind */
    long long start_ns, end_ns;
    int http_status;           /* 0: no answer */
    int error;                 /* the span's status is ERROR */
    int attempt;               /* CLIENT spans: 1, 2, ... */
    int streaming;             /* the client asked for a stream */
    char name[80];
    char method[16];
    char target[256];          /* the request's path and query */
    char url[512];             /* CLIENT spans: the URL the attempt went to */
    char model[128];           /* the model asked (SERVER), served (CLIENT) */
    char backend[256];         /* the backend's base URL */
    char request_id[128];      /* SY_REQUEST_ID_MAX */
    char detail[160];          /* why it failed, or the fallback path */
};

/* Start the exporter when cfg->otel_endpoint is set (a URL, or host:port;
 * the OTLP/gRPC port 4317 becomes OTLP/HTTP's 4318), for nworkers rings.
 * 0 (also when tracing is off), or -1 with the reason in err. */
int trace_start(const struct sy_cfg *cfg, int nworkers, char *err, size_t errlen);
/* Is tracing on?  Cheap: the request path asks it on every request. */
int trace_enabled(void);
/* Hand a finished span over (worker w's ring; never blocks). */
void trace_submit(int w, const struct trace_span *s);
/* Send what is left (up to 2 s) and stop the exporter. */
void trace_stop(void);
/* Spans exported, dropped (a full ring, or a POST given up), for /metrics. */
void trace_counts(unsigned long long *exported, unsigned long long *dropped);

#endif
