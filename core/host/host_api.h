/*
 * host_api: the function table plugins call the core through.  Each plugin
 * slot gets its own host_ctx, so host functions know the plugin's name (for
 * log prefixes) and the setup they serve.
 */
#ifndef SY_HOST_API_H
#define SY_HOST_API_H

#include <pthread.h>
#include <stddef.h>
#include <switchyard/plugin.h>

struct evbuffer;

#define HOST_MAX_METRICS 16

struct setup;
struct control;
struct discovery;

struct host_ctx {
    struct sy_host_api api;  /* first: plugins hold &ctx->api */
    struct setup *setup;     /* NULL for discovery plugins */
    struct control *control; /* the thread its timers, requests and streams
                                run on (health and discovery plugins) */
    struct discovery *discovery; /* a discovery plugin's: where it publishes */
    /* The plugin's own numbers (counter_add, gauge_set), for /metrics. */
    pthread_mutex_t metrics_lock;
    struct host_metric {
        char name[48];
        int gauge;
        double value;
    } metrics[HOST_MAX_METRICS];
    size_t nmetrics;
    const char *plugin_name;
    unsigned source;         /* the plugin's health source (backend_health.h) */
};

void host_ctx_init(struct host_ctx *ctx, struct setup *setup,
                   const char *plugin_name, unsigned source);
/* The plugins' own numbers as Prometheus lines: the counters, then (gauges
 * != 0) the gauges, of every host in hosts[n]. */
void host_metrics_render(struct host_ctx *const *hosts, size_t n, int gauges,
                         struct evbuffer *out);

#endif
