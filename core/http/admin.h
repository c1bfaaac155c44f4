/*
 * admin: an optional second listener (config admin_listen, meant for
 * 127.0.0.1) for operators: /metrics, /engines, /health, /version and
 * POST /admin/reload.  It runs on the main thread's loop, beside the
 * signal handlers, so a reload from it is the same as SIGHUP.
 */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

#include <stddef.h>

struct event_base;
struct setup;
struct admin;

struct admin_ops {
    struct setup *(*current)(void *arg);
    /* 0 when the new config took over, else -1 with why in err */
    int (*reload)(void *arg, char *err, size_t errlen);
    void *arg;
};

/* Listen on "host:port".  A connection silent for `timeout` seconds (idle
 * between requests, or stalled mid-request) is closed.  -1 with the reason
 * in err. */
int admin_start(struct event_base *base, const char *listen, double timeout,
                const struct admin_ops *ops, struct admin **out, char *err, size_t errlen);
/* A new timeout (after a reload), for connections accepted from now on. */
void admin_set_timeout(struct admin *a, double timeout);
void admin_stop(struct admin *a);

#endif
