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

#include "dns_resolve.h"
#include "engine_stats.h"
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

/* A long GET for a plugin (http_stream). */
struct stream {
    struct control *c;
    struct upstream_xfer *xfer;
    sy_stream_head_cb on_head;
    sy_stream_data_cb on_data;
    sy_stream_end_cb on_end;
    void *arg;
    int status;
    int stopped;               /* on_data asked to stop: no on_end */
    struct upstream_tls tls;   /* copies of the plugin's options */
    char *ca_pem, *cert_file, *key_file, *cert_pem, *key_pem;
    LIST_ENTRY(stream) link;
};

struct control {
    struct plugin_slot *slots; /* whose start() hooks run on the thread */
    size_t nslots;
    char *ca_file;             /* the router's, for plugins' requests */
    const char *what;          /* "health", "discovery": for messages */
    struct event_base *base;
    struct upstream_pool *pool;
    struct event *kick;        /* runs the start() hooks on the thread */
    struct event *call;        /* runs call_cb(call_arg) there (control_call) */
    sy_timer_cb call_cb;
    void *call_arg;
    pthread_t thread;
    int running;
    struct timer_list timers;
    pthread_mutex_t lock;      /* `started`, for control_start's wait */
    pthread_cond_t cond;
    int started;
    LIST_HEAD(, probe) probes;
    LIST_HEAD(, stream) streams;
    struct dns_resolver *dns;  /* made on the first dns_resolve() */
};

sy_timer *control_timer_add(struct host_ctx *h, double seconds, sy_timer_cb cb, void *arg)
{
    struct control *c = h->control;

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
    struct control *c = h->control;
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
    r.ca_file = c->ca_file;
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

/* --- long GETs for plugins (a Kubernetes watch) --- */

static enum upstream_body_mode stream_head(void *arg, const struct upstream_response *r)
{
    struct stream *st = arg;
    st->status = r->status;
    if (st->on_head != NULL)
        st->on_head(st->arg, r->status);
    return UP_BODY_DELIVER;
}

static int stream_body(void *arg, const char *data, size_t len)
{
    struct stream *st = arg;
    if (st->on_data(st->arg, data, len) != 0) {
        st->stopped = 1;
        return -1;
    }
    return 0;
}

static void stream_free(struct stream *st)
{
    LIST_REMOVE(st, link);
    free(st->ca_pem);
    free(st->cert_file);
    free(st->key_file);
    free(st->cert_pem);
    free(st->key_pem);
    free(st);
}

static void stream_done(void *arg, enum upstream_result res, const char *detail)
{
    struct stream *st = arg;
    char error[200] = "";

    st->xfer = NULL;
    if (!st->stopped) {
        if (res != UP_OK)
            snprintf(error, sizeof error, "%s: %s", upstream_result_name(res), detail);
        /* a broken-off answer is an error even after its head */
        st->on_end(st->arg, res == UP_OK ? st->status : 0, res == UP_OK ? NULL : error);
    }
    stream_free(st);
}

static const struct upstream_ops stream_ops = { stream_head, stream_body, stream_done };

/* A copy of an optional string; -1 when out of memory. */
static int dup_opt(char **to, const char *from)
{
    *to = NULL;
    return from == NULL || (*to = strdup(from)) != NULL ? 0 : -1;
}

/* A GET on c's thread whose body is handed over as it comes.  The first
 * byte may take first_byte seconds; o: the caller's options (copied). */
static sy_stream *stream_open(struct control *c, const char *url,
                              const struct sy_http_options *o, double first_byte,
                              long recv_buffer, sy_stream_head_cb on_head, sy_stream_data_cb on_data,
                              sy_stream_end_cb on_end, void *arg)
{
    struct upstream_request r;
    struct upstream_headers *l = NULL;
    size_t lines = 0, bytes = 0;
    struct stream *st;

    if (c == NULL || url == NULL || on_data == NULL || on_end == NULL)
        return NULL;
    if ((st = calloc(1, sizeof *st)) == NULL)
        return NULL;
    st->c = c;
    st->on_head = on_head;
    st->on_data = on_data;
    st->on_end = on_end;
    st->arg = arg;
    LIST_INSERT_HEAD(&c->streams, st, link);
    if (dup_opt(&st->ca_pem, o->ca_pem) < 0 || dup_opt(&st->cert_file, o->cert_file) < 0 ||
        dup_opt(&st->key_file, o->key_file) < 0 || dup_opt(&st->cert_pem, o->cert_pem) < 0 ||
        dup_opt(&st->key_pem, o->key_pem) < 0)
        goto fail;
    st->tls = (struct upstream_tls){ st->ca_pem, st->cert_file, st->key_file,
                                     st->cert_pem, st->key_pem, o->insecure };
    for (size_t i = 0; o->headers && o->headers[i]; i++, lines++)
        bytes += upstream_header_size(o->headers[i], NULL);
    if ((l = upstream_headers_new(lines, bytes)) == NULL)
        goto fail;
    for (size_t i = 0; o->headers && o->headers[i]; i++)
        upstream_headers_add(l, o->headers[i], NULL);
    memset(&r, 0, sizeof r);
    r.url = url;
    r.headers = l;
    r.connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 10;
    r.first_byte_timeout = first_byte;
    r.idle_timeout = o->idle_timeout > 0 ? o->idle_timeout : 365.0 * 86400;
    r.ca_file = o->ca_file != NULL ? o->ca_file : c->ca_file;
    r.tls = &st->tls;
    r.recv_buffer = recv_buffer;
    st->xfer = upstream_start(c->pool, &r, &stream_ops, st); /* frees l on failure */
    if (st->xfer == NULL) {
        stream_free(st);
        return NULL;
    }
    return (sy_stream *)st;
fail:
    stream_free(st);
    return NULL;
}

sy_stream *control_stream(struct host_ctx *h, const char *url,
                          const struct sy_http_options *opts, sy_stream_head_cb on_head,
                          sy_stream_data_cb on_data, sy_stream_end_cb on_end, void *arg)
{
    struct sy_http_options o = { 0 };

    /* a plugin built against a smaller struct has the first fields only */
    if (opts != NULL)
        memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    /* the head comes at once from an API server; the body may take long */
    return stream_open(h->control, url, &o, (o.connect_timeout > 0 ? o.connect_timeout : 10) + 30,
                       0, on_head, on_data, on_end, arg);
}

sy_stream *control_get(struct control *c, const char *url, const char *const *headers,
                       double timeout, sy_stream_head_cb on_head, sy_stream_data_cb on_data,
                       sy_stream_end_cb on_end, void *arg)
{
    struct sy_http_options o = { .size = sizeof o, .headers = headers,
                                 .connect_timeout = timeout, .idle_timeout = timeout };
    /* an engine's /metrics (~60 KB for vLLM) in a read or two */
    return stream_open(c, url, &o, timeout, 64 * 1024, on_head, on_data, on_end, arg);
}

sy_timer *control_timer(struct control *c, double seconds, sy_timer_cb cb, void *arg)
{
    return timers_add(&c->timers, c->base, seconds, cb, arg);
}

static void run_call(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    (void)fd;
    (void)what;
    c->call_cb(c->call_arg);
}

int control_call(struct control *c, sy_timer_cb cb, void *arg)
{
    if (c->call_cb != NULL)
        return -1; /* one caller: the setup's scraper */
    c->call_cb = cb;
    c->call_arg = arg;
    event_active(c->call, EV_TIMEOUT, 0); /* thread-safe: libevent locks */
    return 0;
}

void control_stream_cancel(sy_stream *s)
{
    struct stream *st = (struct stream *)s;
    if (st == NULL)
        return;
    upstream_cancel(st->xfer);
    stream_free(st);
}

/* --- DNS for plugins (dns_resolve.c) --- */

/* The control this thread runs, if any: set by the thread itself. */
static _Thread_local struct control *this_thread;

int control_dns(struct host_ctx *h, const char *name, int type, const char *resolver,
                double timeout, sy_dns_cb cb, void *arg)
{
    struct control *c = h->control;

    /* the resolver is the thread's: its loop, no locks */
    if (c == NULL || this_thread != c)
        return SY_ERROR;
    if (c->dns == NULL && (c->dns = dns_resolver_new(c->base)) == NULL)
        return SY_ERROR;
    return dns_resolver_query(c->dns, name, type, resolver, timeout, cb, arg);
}

/* --- the thread --- */

static void run_starts(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;

    for (size_t i = 0; i < c->nslots; i++) {
        const struct plugin_slot *slot = &c->slots[i];
        /* a slot borrowed from the routing chain is the plugin's one
         * place in this chain: its start() runs here too */
        if (slot->plugin->desc->start == NULL)
            continue;
        if (slot->plugin->desc->start(slot->inst[0]) != SY_OK)
            LOG_ERROR("%s plugin %s: start() failed; it does not run", c->what,
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

    this_thread = c;
    if (keep != NULL)
        event_add(keep, &hour);
    event_base_dispatch(c->base);
    if (keep != NULL)
        event_free(keep);
    return NULL;
}

struct control *control_run(struct plugin_slot *slots, size_t n, const char *ca_file,
                            const char *what, long idle_connections, char *err, size_t errlen)
{
    struct control *c;
    struct timeval now = { 0, 0 };
    sigset_t all, old;

    c = calloc(1, sizeof *c);
    if (c == NULL)
        goto oom;
    c->slots = slots;
    c->nslots = n;
    c->what = what;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    timers_init(&c->timers);
    LIST_INIT(&c->probes);
    LIST_INIT(&c->streams);
    if (ca_file != NULL && (c->ca_file = strdup(ca_file)) == NULL)
        goto fail;
    c->base = event_base_new();
    c->pool = c->base ? upstream_pool_new(c->base, idle_connections) : NULL;
    c->kick = c->base ? evtimer_new(c->base, run_starts, c) : NULL;
    c->call = c->base ? evtimer_new(c->base, run_call, c) : NULL;
    if (c->pool == NULL || c->kick == NULL || c->call == NULL)
        goto fail;
    /* the plugins' host functions go to this thread from now on */
    for (size_t i = 0; i < n; i++)
        slots[i].host->control = c;
    evtimer_add(c->kick, &now);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    c->running = pthread_create(&c->thread, NULL, control_main, c) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!c->running)
        goto fail;
    /* What start() hooks decide (a drained backend's flag, say) holds
     * before a request is served.  Hooks never block; a few seconds bound
     * the wait all the same. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&c->lock);
    while (!c->started)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &until) != 0)
            break;
    if (!c->started)
        LOG_WARN("%s plugins' start() hooks still running after 5s; serving meanwhile", what);
    pthread_mutex_unlock(&c->lock);
    return c;
fail:
    control_free(c);
oom:
    snprintf(err, errlen, "cannot start the %s plugins' thread", what);
    return NULL;
}

void control_free(struct control *c)
{
    if (c == NULL)
        return;
    if (c->running) {
        /* loopexit, not loopbreak: it is an event, so it also ends a loop
         * that has not started yet (event_base_loop clears a break flag set
         * before it runs, and the join would wait for ever) */
        event_base_loopexit(c->base, NULL);
        pthread_join(c->thread, NULL);
    }
    for (size_t i = 0; i < c->nslots; i++)
        if (c->slots[i].host != NULL)
            c->slots[i].host->control = NULL;
    timers_clear(&c->timers);
    while (!LIST_EMPTY(&c->probes)) {
        struct probe *p = LIST_FIRST(&c->probes);
        upstream_cancel(p->xfer);
        probe_free(p);
    }
    while (!LIST_EMPTY(&c->streams))
        control_stream_cancel((sy_stream *)LIST_FIRST(&c->streams));
    dns_resolver_free(c->dns);
    if (c->kick != NULL)
        event_free(c->kick);
    if (c->call != NULL)
        event_free(c->call);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    upstream_pool_free(c->pool);
    if (c->base != NULL)
        event_base_free(c->base);
    free(c->ca_file);
    free(c);
}

struct event_base *control_base(struct control *c)
{
    return c->base;
}

int control_start(struct setup *s, char *err, size_t errlen)
{
    int scrape = s->cfg->engine_stats_interval > 0 && s->nbackends > 0;

    if (s->health.n == 0 && !scrape)
        return 0; /* nothing to run */
    /* a scrape a second of every backend reuses its connection */
    s->control = control_run(s->health.slots, s->health.n, s->cfg->ca_file, "health",
                             64 + (scrape ? (long)s->nbackends : 0), err, errlen);
    if (s->control == NULL)
        return -1;
    if (engine_scraper_start(s) != 0) {
        snprintf(err, errlen, "cannot start the engine-stats scraper");
        control_stop(s);
        return -1;
    }
    return 0;
}

void control_stop(struct setup *s)
{
    control_free(s->control);
    s->control = NULL;
    engine_scraper_free(s);
}
