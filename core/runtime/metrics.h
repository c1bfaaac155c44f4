/* metrics: the Prometheus text exposition of the setup's counters. */
#ifndef SY_METRICS_H
#define SY_METRICS_H

struct evbuffer;
struct setup;

void metrics_render(const struct setup *s, struct evbuffer *out);
/* GET /engines: each backend with its models and in-flight count (JSON). */
void metrics_render_engines(const struct setup *s, struct evbuffer *out);

#endif
