/*
 * plugin_chains: the core's calls into the configured plugin chains.  A
 * chain is asked in config order; a plugin that declines passes to the
 * next (nginx's NGX_DECLINED).  Worker thread, the request's worker; the
 * instance is the worker's own (or the one shared instance).
 */
#ifndef SY_PLUGIN_CHAINS_H
#define SY_PLUGIN_CHAINS_H

#include <stddef.h>
#include <switchyard/plugin.h>

struct setup;
struct backend;
struct sy_request;

/* The routing chain picks one of n candidates: its index, 0 when every
 * plugin declined (or failed). */
size_t chains_route(const struct setup *s, int worker, struct sy_request *req,
                    struct backend *const *cands, size_t n);

/* Which model next?  after_attempt: the fallback plugins' attempt_failed()
 * hooks (SY_RETRY stops the asking and sets *retry), else their
 * fallback() hooks.  accept(ctx, name) says whether a named model can be
 * taken (known, not tried yet); when not, the next plugin is asked.  The
 * accepted name, or NULL. */
const char *chains_fallback(const struct setup *s, int worker, const struct sy_fallback_query *q,
                            int after_attempt, int (*accept)(void *ctx, const char *name),
                            void *ctx, int *retry);
/* Is any fallback plugin asked after each failed attempt? */
int chains_has_attempt_hooks(const struct setup *s);

/* Health plugins are told every attempt (attempt_done). */
void chains_attempt_report(const struct setup *s, const struct sy_attempt_report *r);

/* Routing plugins learn how an attempt went (outcome), and that the
 * request is over (request_done, with their request_slot()). */
void chains_outcome(const struct setup *s, int worker, const struct sy_request *req,
                    const struct sy_outcome *o);
void chains_request_done(const struct setup *s, int worker, struct sy_request *req);

/* A worker begins serving from s (at start, or after a reload): the
 * worker_start() hooks of its routing and fallback instances, on its
 * thread. */
void chains_worker_start(const struct setup *s, int worker);

#endif
