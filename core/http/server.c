#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "http_conn.h"
#include "http_headers.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "plugin_chains.h"
#include "setup.h"
#include "timers.h"
#include "upstream.h"


struct server {
    struct worker *workers;
    int nworkers;
    time_t started;
    atomic_int nconns; /* client connections open, all workers */
};

void reply_json(struct http_req *req, int code, const char *json)
{
    http_resp_send(req, code, "application/json", json, strlen(json));
}

int server_connection_cap(int configured)
{
    struct rlimit rl;

    if (configured > 0)
        return configured;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > 2000000)
        return 1000000;
    /* the rest: listeners, probes, logs, plugin files */
    return rl.rlim_cur > 256 ? (int)(rl.rlim_cur - 64) / 2 : 64;
}

static void limits_of_cfg(const struct sy_cfg *cfg, struct http_limits *lim)
{
    lim->max_head = cfg->max_header_size;
    lim->max_fields = (size_t)cfg->max_headers;
    lim->max_body = cfg->max_body;
    lim->client_timeout = cfg->client_timeout;
    lim->request_timeout = cfg->client_request_timeout;
    lim->idle_timeout = cfg->client_idle_timeout > 0 ? cfg->client_idle_timeout
                                                     : cfg->client_timeout;
    lim->high_water = cfg->stream_buffer;
    lim->max_connections = server_connection_cap(cfg->max_client_connections);
}

static void reply_buffer(struct http_req *req, const char *type, struct evbuffer *b)
{
    size_t len = evbuffer_get_length(b);
    http_resp_send(req, 200, type, (const char *)evbuffer_pullup(b, -1), len);
}

static void serve_models(struct worker *w, struct http_req *req)
{
    const struct setup *s = w->setup;
    struct json_object *root = json_object_new_object();
    struct json_object *data = json_object_new_array();

    for (size_t i = 0; i < s->nnames; i++) {
        struct json_object *m = json_object_new_object();
        json_object_object_add(m, "id", json_object_new_string(s->names[i].name));
        json_object_object_add(m, "object", json_object_new_string("model"));
        json_object_object_add(m, "created", json_object_new_int64(0));
        json_object_object_add(m, "owned_by", json_object_new_string("switchyard"));
        if (strcmp(s->names[i].name, s->names[i].model->name) != 0)
            json_object_object_add(m, "root", json_object_new_string(s->names[i].model->name));
        json_object_array_add(data, m);
    }
    json_object_object_add(root, "object", json_object_new_string("list"));
    json_object_object_add(root, "data", data);
    reply_json(req, 200, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static void serve_get(struct worker *w, struct http_req *req, const char *path)
{
    struct evbuffer *b;

    if (strcmp(path, "/health") == 0) {
        reply_json(req, 200, "{\"status\":\"healthy\"}");
    } else if (strcmp(path, "/version") == 0) {
        reply_json(req, 200, "{\"version\":\"" PACKAGE_VERSION "\"}");
    } else if (strcmp(path, "/v1/models") == 0) {
        serve_models(w, req);
    } else if (strcmp(path, "/metrics") == 0 || strcmp(path, "/engines") == 0) {
        b = evbuffer_new();
        if (b == NULL) {
            http_refuse(req, 500, "out of memory", 0);
            return;
        }
        if (path[1] == 'm') {
            metrics_render(w->setup, b);
            reply_buffer(req, "text/plain; version=0.0.4; charset=utf-8", b);
        } else {
            metrics_render_engines(w->setup, b);
            reply_buffer(req, "application/json", b);
        }
        evbuffer_free(b);
    } else {
        http_refuse(req, 404, "no such endpoint", 0);
    }
}

static int is_get_path(const char *path)
{
    return strcmp(path, "/health") == 0 || strcmp(path, "/version") == 0 ||
           strcmp(path, "/v1/models") == 0 || strcmp(path, "/metrics") == 0 ||
           strcmp(path, "/engines") == 0;
}

/* vllm_router's endpoints for features switchyard does not have (its
 * batch and files API, behind --enable-batch-api): a client hears so, 501,
 * rather than a 404 that reads like a typo. */
static const char *unsupported_feature(const char *path)
{
    static const struct { const char *prefix, *what; } paths[] = {
        {"/v1/files", "the files API"},
        {"/v1/batches", "the batch API"},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        size_t n = strlen(paths[i].prefix);
        if (strncmp(path, paths[i].prefix, n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return paths[i].what;
    }
    return NULL;
}

/* With api_keys set, everything but /health and /version wants a key; with
 * an admin listener, /metrics and /engines live only there.  Answers and
 * returns 0 when the request may not go on. */
static int authorized(const struct sy_cfg *cfg, struct http_req *req, const char *path)
{
    int admin = strcmp(path, "/metrics") == 0 || strcmp(path, "/engines") == 0;

    if (admin && cfg->admin_listen != NULL) {
        http_refuse(req, 404, "no such endpoint", 0);
        return 0;
    }
    if (cfg->napi_keys == 0 || strcmp(path, "/health") == 0 || strcmp(path, "/version") == 0)
        return 1;
    if (http_bearer_matches(http_req_header(req, "Authorization"), cfg->api_keys,
                            cfg->napi_keys))
        return 1;
    http_resp_header(req, "WWW-Authenticate", "Bearer");
    http_refuse(req, 401, "Incorrect or missing API key: send Authorization: Bearer <key>", 0);
    return 0;
}

/* vllm_router's --root-path: a front proxy mounts the router at a prefix
 * and may pass it on; routes are served with it and without.  The path and
 * target the request goes on with. */
static const char *strip_root_path(const struct sy_cfg *cfg, struct http_req *req)
{
    size_t n = cfg->root_path != NULL ? strlen(cfg->root_path) : 0;

    if (n == 0 || strncmp(req->path, cfg->root_path, n) != 0 ||
        (req->path[n] != '/' && req->path[n] != '\0'))
        return req->path;
    if (req->path[n] == '\0') {
        req->path = "/";
        req->target = "/"; /* the mount point itself: its root */
    } else {
        req->path += n;
        req->target += n;
    }
    return req->path;
}

/* A request read whole by http_conn, its framing checked there. */
static void handle_request(struct http_req *req, void *arg)
{
    struct worker *w = arg;
    const char *path = req->path;

    atomic_fetch_add_explicit(&w->setup->worker_requests[w->id], 1, memory_order_relaxed);
    /* only origin-form targets: an absolute URI is a proxy request, which
     * this is not */
    if (path[0] != '/') {
        http_resp_close_after(req);
        http_refuse(req, 400, "malformed request target: expected a path such as /v1/chat/completions", 0);
        return;
    }
    path = strip_root_path(w->setup->cfg, req);
    if (!authorized(w->setup->cfg, req, path))
        return;
    int proxied = dispatch_proxied_path(path), get = 0;
    enum dispatch_engine_op op = dispatch_engine_path(path, &get);
    if (proxied || op != ENGINE_OP_NONE) {
        enum http_method want = proxied == 2 || get ? HTTP_METHOD_GET : HTTP_METHOD_POST;
        if (req->method != want) {
            http_resp_header(req, "Allow", want == HTTP_METHOD_GET ? "GET" : "POST");
            http_refuse(req, 405, want == HTTP_METHOD_GET ? "method not allowed; use GET"
                                                           : "method not allowed; use POST", 0);
            return;
        }
        int limit = w->setup->cfg->max_inflight;
        if (limit > 0 && server_active(w->srv) >= limit) {
            http_refuse(req, 503, "the router is at its limit of requests in flight; retry later", 1);
            return;
        }
        if (op != ENGINE_OP_NONE)
            dispatch_engine_request(w, req, op);
        else
            dispatch_request(w, req);
        return;
    }
    if (is_get_path(path)) {
        if (req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD) {
            serve_get(w, req, path);
            return;
        }
        http_resp_header(req, "Allow", "GET");
        http_refuse(req, 405, "method not allowed; use GET", 0);
        return;
    }
    const char *feature = unsupported_feature(path);
    if (feature != NULL) {
        char why[160];
        snprintf(why, sizeof why, "not supported by switchyard: %s (vllm_router's)", feature);
        http_refuse(req, 501, why, 0);
        return;
    }
    http_refuse(req, 404, "no such endpoint", 0);
}

/* A listening socket of its own per worker: the kernel spreads new
 * connections over them (SO_REUSEPORT).  `exclusive` binds without
 * SO_REUSEPORT, to find out whether someone else holds the port. */
static int open_listener(const char *host, int port, int exclusive, char *err,
                         size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char service[16];
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen address %s:%d: %s", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (!exclusive)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        /* accepted sockets inherit it: small SSE chunks leave at once */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        snprintf(err, errlen, "listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0 && err[0] == '\0')
        snprintf(err, errlen, "listen on %s:%d: no usable address", host, port);
    return fd;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    timers_worker_here(w->id, w->base, w->setup);
    chains_worker_start(w->setup, w->id);
    event_base_dispatch(w->base);
    /* the instances' timers on this loop go with it */
    timers_clear(&w->setup->worker_timers[w->id]);
    return NULL;
}

/* A worker's loop: with epoll, interest changes made and undone within one
 * turn of the loop (libcurl's socket callbacks do that) cost no syscall. */
static struct event_base *worker_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

static void adopt_cb(evutil_socket_t fd, short what, void *arg);

static int worker_init(struct worker *w, struct setup *s, int id, int fd,
                       char *err, size_t errlen)
{
    w->id = id;
    w->setup = s;
    w->listen_fd = fd;
    w->base = worker_base_new();
    w->upstream = w->base ? upstream_pool_new(w->base, s->cfg->upstream_max_connections) : NULL;
    w->adopt_ev = w->base ? event_new(w->base, -1, 0, adopt_cb, w) : NULL;
    if (w->upstream == NULL || w->adopt_ev == NULL) {
        snprintf(err, errlen, "worker %d: out of memory", id);
        return -1;
    }
    struct http_limits lim;
    limits_of_cfg(s->cfg, &lim);
    w->http = http_server_new(w->base, fd, &lim, &w->srv->nconns, handle_request, w);
    if (w->http == NULL) {
        snprintf(err, errlen, "worker %d: cannot accept on the listening socket", id);
        return -1;
    }
    w->listen_fd = -1; /* the HTTP server owns it now */
    return 0;
}

static void worker_free(struct worker *w)
{
    /* connections first: closing them cancels their transfers */
    if (w->http != NULL)
        http_server_free(w->http);
    if (w->upstream != NULL)
        upstream_pool_free(w->upstream);
    if (w->adopt_ev != NULL)
        event_free(w->adopt_ev);
    if (w->base != NULL)
        event_base_free(w->base);
    if (w->listen_fd >= 0)
        close(w->listen_fd);
}

int server_start(struct setup *s, const char *host, int port, int nworkers,
                 struct server **out, char *err, size_t errlen)
{
    struct server *srv = calloc(1, sizeof *srv);
    sigset_t all, old;

    *out = NULL;
    if (srv == NULL || (srv->workers = calloc((size_t)nworkers, sizeof *srv->workers)) == NULL) {
        free(srv);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->started = time(NULL);
    /* SO_REUSEPORT would let a second router share a busy port: bind once
     * alone first, so a port in use is an error as with any server. */
    int probe = open_listener(host, port, 1, err, errlen);
    if (probe < 0) {
        free(srv->workers);
        free(srv);
        return -1;
    }
    close(probe);
    for (int i = 0; i < nworkers; i++) {
        int fd;
        srv->workers[i].listen_fd = -1;
        err[0] = '\0';
        fd = open_listener(host, port, 0, err, errlen);
        srv->workers[i].srv = srv;
        if (fd < 0 || worker_init(&srv->workers[i], s, i, fd, err, errlen) != 0) {
            if (fd >= 0 && srv->workers[i].listen_fd < 0 && srv->workers[i].base == NULL)
                close(fd);
            srv->nworkers = i + 1;
            server_stop(srv);
            return -1;
        }
        srv->nworkers = i + 1;
    }
    /* Signals are the main thread's business. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) == 0) {
            srv->workers[i].running = 1;
        } else {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            server_stop(srv);
            return -1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* each worker holds the setup it serves from */
    atomic_fetch_add(&s->refs, nworkers);
    *out = srv;
    return 0;
}

/* One reload's hand-over: the main thread waits until every worker took
 * the new setup, so "reloaded" means new requests use it. */
struct handover {
    struct setup *s;
    pthread_mutex_t lock;
    pthread_cond_t done;
    int left;
};

/* On the worker's thread: serve new requests from the new setup.  The
 * worker's reference on the old one goes; requests keep theirs. */
static void adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct handover *h = w->handover;
    struct setup *old = w->setup;
    struct http_limits lim;

    /* the old instances' timers stop here, on their own thread */
    timers_clear(&old->worker_timers[w->id]);
    w->setup = h->s;
    timers_worker_here(w->id, w->base, w->setup);
    chains_worker_start(w->setup, w->id);
    limits_of_cfg(h->s->cfg, &lim);
    http_server_set_limits(w->http, &lim);
    atomic_fetch_sub(&old->refs, 1);
    pthread_mutex_lock(&h->lock);
    if (--h->left == 0)
        pthread_cond_signal(&h->done);
    pthread_mutex_unlock(&h->lock);
}

void server_adopt(struct server *srv, struct setup *s)
{
    struct handover h = { .s = s, .left = srv->nworkers };

    pthread_mutex_init(&h.lock, NULL);
    pthread_cond_init(&h.done, NULL);
    /* the workers' references, taken before any worker can see s */
    atomic_fetch_add(&s->refs, srv->nworkers);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        /* read by adopt_cb on the worker, after event_active's lock */
        w->handover = &h;
        event_active(w->adopt_ev, EV_TIMEOUT, 0);
    }
    /* workers never block, so this is a matter of one loop turn each */
    pthread_mutex_lock(&h.lock);
    while (h.left > 0)
        pthread_cond_wait(&h.done, &h.lock);
    pthread_mutex_unlock(&h.lock);
    pthread_cond_destroy(&h.done);
    pthread_mutex_destroy(&h.lock);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    http_server_drain(w->http);
}

void server_drain(struct server *srv)
{
    struct timeval now = { 0, 0 };

    for (int i = 0; i < srv->nworkers; i++)
        event_base_once(srv->workers[i].base, -1, EV_TIMEOUT, drain_cb, &srv->workers[i], &now);
}

int server_active(struct server *srv)
{
    int n = 0;
    for (int i = 0; i < srv->nworkers; i++)
        n += atomic_load(&srv->workers[i].active);
    return n;
}

void server_stop(struct server *srv)
{
    if (srv == NULL)
        return;
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].running)
            event_base_loopexit(srv->workers[i].base, NULL); /* ends a loop not yet started too */
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].running)
            pthread_join(srv->workers[i].thread, NULL);
    for (int i = 0; i < srv->nworkers; i++)
        worker_free(&srv->workers[i]);
    free(srv->workers);
    free(srv);
}
