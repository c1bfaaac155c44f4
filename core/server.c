#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "http_headers.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "setup.h"
#include "upstream.h"


struct server {
    struct worker *workers;
    int nworkers;
    time_t started;
};

void reply_json(struct evhttp_request *req, int code, const char *json)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    if (b != NULL)
        evbuffer_add(b, json, strlen(json));
    /* libevent 2.1 knows no reason phrase past 417 */
    evhttp_send_reply(req, code, code == 431 ? "Request Header Fields Too Large" : NULL, b);
    if (b != NULL)
        evbuffer_free(b);
}

void reply_error(struct evhttp_request *req, int code, const char *message,
                 int retry_after)
{
    char *body = http_error_json(code, NULL, message);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);

    /* every answer carries a request id, the router's own errors too */
    if (evhttp_find_header(out, "X-Request-Id") == NULL) {
        char id[SY_REQUEST_ID_MAX];
        request_make_id(evhttp_find_header(evhttp_request_get_input_headers(req),
                                           "X-Request-Id"), id);
        evhttp_add_header(out, "X-Request-Id", id);
    }

    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        evhttp_add_header(out, "Retry-After", v);
    }
    reply_json(req, code, body ? body : "{\"error\":{\"message\":\"out of memory\"}}");
    free(body);
}

static void reply_buffer(struct evhttp_request *req, const char *type,
                         struct evbuffer *b)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, 200, NULL, b);
}

static void serve_models(struct worker *w, struct evhttp_request *req)
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

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

/* The router's own refusal of a request before any routing (bad framing,
 * no key, a limit, a wrong method or path): answered, and logged as an
 * access line like every proxied request, with the reason. */
static void refuse(struct evhttp_request *req, int code, const char *msg, int retry_after)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    char id[SY_REQUEST_ID_MAX];

    request_make_id(evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id"), id);
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Request-Id", id);
    struct access_entry e = {
        .id = id, .method = method_name(evhttp_request_get_command(req)),
        .path = path && *path ? path : "-", .status = code, .ttfb = -1, .error = msg,
    };
    log_access(&e);
    reply_error(req, code, msg, retry_after);
}

static void serve_get(struct worker *w, struct evhttp_request *req, const char *path)
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
            reply_error(req, 500, "out of memory", 0);
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
        refuse(req, 404, "no such endpoint", 0);
    }
}

static int is_get_path(const char *path)
{
    return strcmp(path, "/health") == 0 || strcmp(path, "/version") == 0 ||
           strcmp(path, "/v1/models") == 0 || strcmp(path, "/metrics") == 0 ||
           strcmp(path, "/engines") == 0;
}

/* With api_keys set, everything but /health and /version wants a key; with
 * an admin listener, /metrics and /engines live only there.  Answers and
 * returns 0 when the request may not go on. */
static int authorized(const struct sy_cfg *cfg, struct evhttp_request *req, const char *path)
{
    int admin = strcmp(path, "/metrics") == 0 || strcmp(path, "/engines") == 0;

    if (admin && cfg->admin_listen != NULL) {
        refuse(req, 404, "no such endpoint", 0);
        return 0;
    }
    if (cfg->napi_keys == 0 || strcmp(path, "/health") == 0 || strcmp(path, "/version") == 0)
        return 1;
    if (http_bearer_matches(evhttp_find_header(evhttp_request_get_input_headers(req),
                                               "Authorization"),
                            cfg->api_keys, cfg->napi_keys))
        return 1;
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    refuse(req, 401, "Incorrect or missing API key: send Authorization: Bearer <key>", 0);
    return 0;
}

static void handle_request(struct evhttp_request *req, void *arg)
{
    struct worker *w = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    atomic_fetch_add_explicit(&w->setup->worker_requests[w->id], 1, memory_order_relaxed);
    if (atomic_load_explicit(&w->draining, memory_order_relaxed))
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");

    const char *target = evhttp_request_get_uri(req);
    struct http_framing framing;
    struct evkeyval *h;
    const char *bad;

    /* only origin-form targets: an absolute URI is a proxy request, which
     * this is not; and a body whose length is told two ways is refused (no
     * request smuggling).  Either way the connection is closed after. */
    int nheaders = 0;
    memset(&framing, 0, sizeof framing);
    TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next) {
        http_framing_add(&framing, h->key, h->value);
        nheaders++;
    }
    /* many tiny headers cost more to check and forward than their bytes
     * say (max_header_size): a count of its own */
    if (nheaders > w->setup->cfg->max_headers) {
        char msg[96];
        snprintf(msg, sizeof msg, "too many header lines: %d (at most %d)", nheaders,
                 w->setup->cfg->max_headers);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        refuse(req, 431, msg, 0);
        return;
    }
    bad = http_framing_error(&framing);
    if (bad == NULL && (target == NULL || target[0] != '/' || path == NULL || path[0] != '/'))
        bad = "malformed request target: expected a path such as /v1/chat/completions";
    if (bad != NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        refuse(req, 400, bad, 0);
        return;
    }
    if (!authorized(w->setup->cfg, req, path))
        return;
    if (dispatch_is_proxied_path(path)) {
        if (cmd == EVHTTP_REQ_POST) {
            int limit = w->setup->cfg->max_inflight;
            if (limit > 0 && server_active(w->srv) >= limit) {
                refuse(req, 503, "the router is at its limit of requests in flight; retry later", 1);
                return;
            }
            dispatch_request(w, req, path);
            return;
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        refuse(req, 405, "method not allowed; use POST", 0);
        return;
    }
    if (is_get_path(path)) {
        if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) {
            serve_get(w, req, path);
            return;
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        refuse(req, 405, "method not allowed; use GET", 0);
        return;
    }
    refuse(req, 404, "no such endpoint", 0);
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
    event_base_dispatch(w->base);
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

static int worker_init(struct worker *w, struct setup *s, int id, int fd,
                       char *err, size_t errlen)
{
    w->id = id;
    w->setup = s;
    w->listen_fd = fd;
    w->base = worker_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    w->upstream = w->base ? upstream_pool_new(w->base, s->cfg->upstream_max_connections) : NULL;
    w->chunk = evbuffer_new();
    if (w->http == NULL || w->upstream == NULL || w->chunk == NULL) {
        snprintf(err, errlen, "worker %d: out of memory", id);
        return -1;
    }
    evhttp_set_max_body_size(w->http, (ev_ssize_t)s->cfg->max_body);
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)s->cfg->max_header_size);
    evhttp_set_timeout(w->http, (int)(s->cfg->client_timeout + 0.5));
    evhttp_set_default_content_type(w->http, NULL);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    /* evhttp reads 4 KiB a turn of the loop (libevent 2.1's evbuffer_read
     * caps every read there, whatever bufferevent_set_max_single_read
     * says): a 1 MiB body takes 256 turns.  See docs/performance.md. */
    evhttp_set_gencb(w->http, handle_request, w);
    w->listener = evhttp_accept_socket_with_handle(w->http, fd);
    if (w->listener == NULL) {
        snprintf(err, errlen, "worker %d: cannot accept on the listening socket", id);
        return -1;
    }
    w->listen_fd = -1; /* evhttp owns it now */
    return 0;
}

static void worker_free(struct worker *w)
{
    /* evhttp first: closing its connections cancels their transfers. */
    if (w->http != NULL)
        evhttp_free(w->http);
    if (w->upstream != NULL)
        upstream_pool_free(w->upstream);
    if (w->chunk != NULL)
        evbuffer_free(w->chunk);
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

struct adoption {
    struct worker *w;
    struct handover *h;
};

/* On the worker's thread: serve new requests from the new setup.  The
 * worker's reference on the old one goes; requests keep theirs. */
static void adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    struct adoption *a = arg;
    struct handover *h = a->h;
    struct setup *old = a->w->setup;

    a->w->setup = h->s;
    atomic_fetch_sub(&old->refs, 1);
    free(a);
    pthread_mutex_lock(&h->lock);
    if (--h->left == 0)
        pthread_cond_signal(&h->done);
    pthread_mutex_unlock(&h->lock);
}

void server_adopt(struct server *srv, struct setup *s)
{
    struct timeval now = { 0, 0 };
    struct handover h = { .s = s, .left = srv->nworkers };

    pthread_mutex_init(&h.lock, NULL);
    pthread_cond_init(&h.done, NULL);
    /* the workers' references, taken before any worker can see s */
    atomic_fetch_add(&s->refs, srv->nworkers);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        struct adoption *a = malloc(sizeof *a);
        if (a != NULL) {
            a->w = w;
            a->h = &h;
        }
        /* the allocation failing leaves nothing sane to do: the worker
         * would serve a setup that is about to be freed */
        if (a == NULL || event_base_once(w->base, -1, EV_TIMEOUT, adopt_cb, a, &now) != 0) {
            LOG_ERROR("worker %d cannot take the new configuration; exiting", i);
            abort();
        }
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

    if (w->listener != NULL) {
        evhttp_del_accept_socket(w->http, w->listener);
        w->listener = NULL;
    }
}

void server_drain(struct server *srv)
{
    struct timeval now = { 0, 0 };

    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        atomic_store(&w->draining, 1);
        event_base_once(w->base, -1, EV_TIMEOUT, drain_cb, w, &now);
    }
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
