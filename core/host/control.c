#include "control.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "host_api.h"
#include "log.h"
#include "setup.h"
#include "timers.h"
#include "upstream.h"

#define PROBE_BODY_MAX (64 * 1024)

/* Timers and requests are listed per control so stopping can cancel them. */

struct probe {
    struct control *c;
    struct upstream_xfer *xfer;
    sy_http_cb cb;
    void *arg;
    int status;
    char *body;
    size_t len;
    char *req_body; /* a copy: upstream borrows it until done */
    LIST_ENTRY(probe) link;
};

struct control {
    struct setup *setup;
    struct event_base *base;
    struct upstream_pool *pool;
    struct event *kick;        /* runs the start() hooks on the thread */
    pthread_t thread;
    int running;
    struct timer_list timers;
    pthread_mutex_t lock;      /* `started`, for control_start's wait */
    pthread_cond_t cond;
    int started;
    LIST_HEAD(, probe) probes;
};

sy_timer *control_timer_add(struct host_ctx *h, double seconds, sy_timer_cb cb, void *arg)
{
    struct control *c = h->setup->control;

    return c != NULL ? timers_add(&c->timers, c->base, seconds, cb, arg) : NULL;
}

void control_timer_cancel(sy_timer *t)
{
    timers_cancel(t);
}

/* --- HTTP for plugins: the upstream module, answers kept to 64 KiB --- */

static enum upstream_body_mode probe_head(void *arg, const struct upstream_response *r)
{
    struct probe *p = arg;
    p->status = r->status;
    return UP_BODY_DELIVER;
}

static int probe_body(void *arg, const char *data, size_t len)
{
    struct probe *p = arg;
    size_t room = PROBE_BODY_MAX - p->len;

    if (len > room)
        len = room;
    if (len > 0) {
        char *nb = realloc(p->body, p->len + len + 1);
        if (nb == NULL)
            return 0;
        p->body = nb;
        memcpy(p->body + p->len, data, len);
        p->len += len;
        p->body[p->len] = '\0';
    }
    return 0;
}

static void probe_free(struct probe *p)
{
    LIST_REMOVE(p, link);
    free(p->body);
    free(p->req_body);
    free(p);
}

static void probe_done(void *arg, enum upstream_result res, const char *detail)
{
    struct probe *p = arg;
    sy_http_cb cb = p->cb;
    void *cb_arg = p->arg;
    int status = res == UP_OK ? p->status : 0;
    char error[160] = "";

    p->xfer = NULL;
    if (res != UP_OK)
        snprintf(error, sizeof error, "%s: %s", upstream_result_name(res), detail);
    /* detach first: the callback may start the next probe */
    LIST_REMOVE(p, link);
    LIST_INSERT_HEAD(&p->c->probes, p, link);
    cb(cb_arg, status, p->body ? p->body : "", p->len, status ? NULL : error);
    probe_free(p);
}

static const struct upstream_ops probe_ops = { probe_head, probe_body, probe_done };

int control_http(struct host_ctx *h, const char *url, const char *body, size_t len,
                 const char *const *headers, double timeout, sy_http_cb cb, void *arg)
{
    struct control *c = h->setup->control;
    struct upstream_request r;
    struct upstream_headers *l = NULL;
    size_t lines = 1, bytes = upstream_header_size("Expect:", NULL);
    struct probe *p;

    if (c == NULL || url == NULL || cb == NULL || !(timeout > 0))
        return SY_ERROR;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return SY_ERROR;
    p->c = c;
    p->cb = cb;
    p->arg = arg;
    if (body != NULL && (p->req_body = malloc(len + 1)) == NULL)
        goto fail;
    if (body != NULL) {
        memcpy(p->req_body, body, len);
        p->req_body[len] = '\0';
    }
    for (size_t i = 0; headers && headers[i]; i++, lines++)
        bytes += upstream_header_size(headers[i], NULL);
    if ((l = upstream_headers_new(lines, bytes)) == NULL)
        goto fail;
    for (size_t i = 0; headers && headers[i]; i++)
        upstream_headers_add(l, headers[i], NULL);
    upstream_headers_add(l, "Expect:", NULL);
    memset(&r, 0, sizeof r);
    r.url = url;
    r.body = p->req_body;
    r.body_len = len;
    r.headers = l;
    r.connect_timeout = timeout;
    r.first_byte_timeout = timeout;
    r.idle_timeout = timeout;
    r.ca_file = h->setup->cfg->ca_file;
    LIST_INSERT_HEAD(&c->probes, p, link);
    p->xfer = upstream_start(c->pool, &r, &probe_ops, p); /* frees l on failure */
    if (p->xfer == NULL) {
        probe_free(p);
        return SY_ERROR;
    }
    return SY_OK;
fail:
    upstream_headers_free(l);
    free(p->req_body);
    free(p);
    return SY_ERROR;
}

/* --- the thread --- */

static void run_starts(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    const struct chain *health = &c->setup->health;

    for (size_t i = 0; i < health->n; i++) {
        const struct plugin_slot *slot = &health->slots[i];
        if (slot->plugin->desc->start != NULL &&
            slot->plugin->desc->start(slot->inst[0]) != SY_OK)
            LOG_ERROR("health plugin %s: start() failed; its checks do not run",
                      slot->plugin->name);
    }
    pthread_mutex_lock(&c->lock);
    c->started = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *control_main(void *arg)
{
    struct control *c = arg;
    /* keep the loop alive while plugins only wait on timers */
    struct event *keep = event_new(c->base, -1, EV_PERSIST, NULL, NULL);
    struct timeval hour = { 3600, 0 };

    if (keep != NULL)
        event_add(keep, &hour);
    event_base_dispatch(c->base);
    if (keep != NULL)
        event_free(keep);
    return NULL;
}

int control_start(struct setup *s, char *err, size_t errlen)
{
    struct control *c;
    struct timeval now = { 0, 0 };
    sigset_t all, old;

    if (s->health.n == 0)
        return 0; /* nothing to run */
    c = calloc(1, sizeof *c);
    if (c == NULL)
        goto oom;
    c->setup = s;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    timers_init(&c->timers);
    LIST_INIT(&c->probes);
    c->base = event_base_new();
    c->pool = c->base ? upstream_pool_new(c->base, 64) : NULL;
    c->kick = c->base ? evtimer_new(c->base, run_starts, c) : NULL;
    if (c->pool == NULL || c->kick == NULL)
        goto fail;
    s->control = c;
    evtimer_add(c->kick, &now);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    c->running = pthread_create(&c->thread, NULL, control_main, c) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!c->running)
        goto fail;
    /* What start() hooks decide (a drained backend's flag, say) holds
     * before a request is served from this setup.  Hooks never block; a
     * few seconds bound the wait all the same. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&c->lock);
    while (!c->started)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &until) != 0)
            break;
    if (!c->started)
        LOG_WARN("health plugins' start() hooks still running after 5s; serving meanwhile");
    pthread_mutex_unlock(&c->lock);
    return 0;
fail:
    s->control = c;
    control_stop(s);
oom:
    snprintf(err, errlen, "cannot start the health-check thread");
    return -1;
}

void control_stop(struct setup *s)
{
    struct control *c = s->control;

    if (c == NULL)
        return;
    if (c->running) {
        /* loopexit, not loopbreak: it is an event, so it also ends a loop
         * that has not started yet (event_base_loop clears a break flag set
         * before it runs, and the join would wait for ever) */
        event_base_loopexit(c->base, NULL);
        pthread_join(c->thread, NULL);
    }
    timers_clear(&c->timers);
    while (!LIST_EMPTY(&c->probes)) {
        struct probe *p = LIST_FIRST(&c->probes);
        upstream_cancel(p->xfer);
        probe_free(p);
    }
    if (c->kick != NULL)
        event_free(c->kick);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    upstream_pool_free(c->pool);
    if (c->base != NULL)
        event_base_free(c->base);
    free(c);
    s->control = NULL;
}
