/*
 * control: a thread plugins live on, away from the workers: a setup's
 * health plugins, and the discovery plugins (runtime/discovery.c).  It has
 * its own event loop and upstream pool, runs the plugins' start() hooks,
 * and serves their timers, HTTP requests and streams (host API), so probes
 * and watches never touch a worker.
 */
#ifndef SY_CONTROL_H
#define SY_CONTROL_H

#include <stddef.h>
#include <switchyard/plugin.h>

struct setup;
struct host_ctx;
struct control;
struct plugin_slot;
struct event_base;

/* Start a thread for the plugins of `slots` (their hosts' control is set)
 * and run their start() hooks there, waiting up to 5 s for them.  ca_file:
 * the router's, for the plugins' requests; idle_connections: kept open for
 * the next request (the scraper's one a backend).  NULL with the reason in err. */
struct control *control_run(struct plugin_slot *slots, size_t n, const char *ca_file,
                            const char *what, long idle_connections, char *err, size_t errlen);
/* Stop the thread and cancel every timer, request and stream still pending.
 * Before the plugins' instances are destroyed. */
void control_free(struct control *c);
/* The thread's loop, for events other threads post to it. */
struct event_base *control_base(struct control *c);

/* For the core's own work on the thread (the engine-stats scraper): a
 * GET whose body is handed over as it comes, with `timeout` seconds to
 * connect, for the head and between body bytes; cancel it with
 * control_stream_cancel().  A timer; and cb(arg) run once on the thread
 * soon (from any thread; one caller per control). */
sy_stream *control_get(struct control *c, const char *url, const char *const *headers,
                       double timeout, sy_stream_head_cb on_head, sy_stream_data_cb on_data,
                       sy_stream_end_cb on_end, void *arg);
sy_timer *control_timer(struct control *c, double seconds, sy_timer_cb cb, void *arg);
int control_call(struct control *c, sy_timer_cb cb, void *arg);

/* Start the thread, the health plugins of s and its engine-stats scraper
 * (s->control is set).
 * -1 with the reason in err. */
int control_start(struct setup *s, char *err, size_t errlen);
/* Stop the thread and cancel every timer and request still pending, then
 * free the scraper.  Before the plugins' instances are destroyed. */
void control_stop(struct setup *s);

/* Host API, control thread only. */
sy_timer *control_timer_add(struct host_ctx *h, double seconds, sy_timer_cb cb, void *arg);
void control_timer_cancel(sy_timer *t);
int control_http(struct host_ctx *h, const char *url, const char *body, size_t len,
                 const char *const *headers, double timeout, sy_http_cb cb, void *arg);
sy_stream *control_stream(struct host_ctx *h, const char *url,
                          const struct sy_http_options *opts, sy_stream_head_cb on_head,
                          sy_stream_data_cb on_data, sy_stream_end_cb on_end, void *arg);
void control_stream_cancel(sy_stream *s);
/* dns_resolve(): on the thread only. */
int control_dns(struct host_ctx *h, const char *name, int type, const char *resolver,
                double timeout, sy_dns_cb cb, void *arg);

#endif
