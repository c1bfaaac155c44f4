/*
 * retry: the decisions of SPEC.md "Retries and fallback", as pure functions
 * so they are unit-tested apart from any socket.
 *
 * An attempt fails on a connection error, a timeout, a close before the
 * answer, or a 5xx/429 status.  Any other status is the answer.  After a
 * failure the request tries another backend of the same model while the
 * model's attempt budget lasts, then the fallback chain, within a total
 * attempt budget, a fallback depth and an overall deadline.
 */
#ifndef SY_RETRY_H
#define SY_RETRY_H

#include <time.h>

struct retry_limits {
    int attempts_per_model;  /* 1 + reroute attempts */
    int max_attempts;        /* over the whole request, fallbacks included */
    int max_fallback_depth;  /* models tried after the one asked */
    double deadline;         /* seconds since the request arrived */
    double retry_after_cap;  /* longest Retry-After wait honoured */
};

struct retry_state {
    int attempts_total;  /* attempts made for this request */
    int attempts_model;  /* attempts made for the current model */
    int usable;          /* backends of the model usable now (healthy) */
    double elapsed;      /* seconds since the request arrived */
    int untried_usable;  /* usable backends of the model this request has
                            not tried yet */
    int last_refused;    /* the last attempt's connection was refused */
    int last_answered;   /* the last attempt was answered with a 5xx or 429 */
    double retry_after;  /* the wait the last attempt's Retry-After asks
                            (capped), or 0 */
};

enum retry_step {
    STEP_ATTEMPT,  /* try (another) backend of the current model */
    STEP_WAIT,     /* wait st->retry_after, then try the model again */
    STEP_FALLBACK, /* ask the fallback chain for the next model */
    STEP_GIVE_UP   /* answer 503/504 */
};

/* Does this upstream status make the attempt fail (5xx, 429)? */
int retry_status_fails(int status);

/* What to do next for the current model.  Within the model's budget: a
 * backend that refused the connection is down, not busy, so with no other
 * backend left the request moves on (STEP_FALLBACK) instead of knocking
 * again; a Retry-After speaks for the backend that sent it, so it is waited
 * (STEP_WAIT) only when no other backend of the model is left to try. */
enum retry_step retry_next_step(const struct retry_limits *lim,
                                const struct retry_state *st);

/* May the request move to one more model (depth = fallbacks taken so far)? */
int retry_may_fall_back(const struct retry_limits *lim, int depth,
                        const struct retry_state *st);

/* Seconds to wait from a Retry-After value (delta-seconds or an HTTP-date),
 * capped at `cap` and at the time left before the deadline; 0 when absent
 * or unparsable. */
double retry_after_delay(const char *value, time_t now, double cap,
                         double time_left);

/* How the last attempt ended, for the router's own answer. */
enum retry_last {
    RETRY_LAST_OTHER,     /* refused, dropped, a 5xx/429, or no attempt */
    RETRY_LAST_TIMEOUT,   /* timed out */
    RETRY_LAST_MALFORMED  /* the backend answered, outside HTTP's grammar */
};

/* Status of the router's own answer when nothing served: 504 when the last
 * attempt timed out, 502 when its answer was malformed (a bad gateway, as
 * nginx says of an invalid upstream header), else 503. */
int retry_give_up_status(enum retry_last last);

#endif
