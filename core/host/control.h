/*
 * control: the thread health plugins live on.  It has its own event loop
 * and upstream pool, runs the plugins' start() hooks, and serves their
 * timers and HTTP requests (host API), so probes never touch a worker.
 */
#ifndef SY_CONTROL_H
#define SY_CONTROL_H

#include <stddef.h>
#include <switchyard/plugin.h>

struct setup;
struct host_ctx;
struct control;

/* Start the thread and the health plugins of s (s->control is set).
 * -1 with the reason in err. */
int control_start(struct setup *s, char *err, size_t errlen);
/* Stop the thread and cancel every timer and request still pending.
 * Before the plugins' instances are destroyed. */
void control_stop(struct setup *s);

/* Host API, control thread only. */
sy_timer *control_timer_add(struct host_ctx *h, double seconds, sy_timer_cb cb, void *arg);
void control_timer_cancel(sy_timer *t);
int control_http(struct host_ctx *h, const char *url, const char *body, size_t len,
                 const char *const *headers, double timeout, sy_http_cb cb, void *arg);

#endif
