/* metrics: the Prometheus text exposition of the setup's counters. */
#ifndef SY_METRICS_H
#define SY_METRICS_H

struct evbuffer;
struct setup;

void metrics_render(const struct setup *s, struct evbuffer *out);
/* vllm_router's series, with its names and labels (metrics_vllm.c), for
 * production-stack's dashboards and autoscalers. */
void metrics_render_vllm(const struct setup *s, struct evbuffer *out);
/* --log-stats: one line per backend, its engine and request stats. */
void metrics_log_stats(const struct setup *s);
/* A label value escaped as the text format wants: \\, \" and \n. */
void metrics_label(struct evbuffer *out, const char *v);
/* GET /engines: vllm_router's JSON array of {engine_id, serving_models,
 * created}, each with switchyard's fields: url, models, state, flags,
 * in_flight, engine and request stats. */
void metrics_render_engines(const struct setup *s, struct evbuffer *out);

#endif
