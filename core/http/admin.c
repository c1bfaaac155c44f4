#define _GNU_SOURCE /* strndup */
#include "admin.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_health.h"
#include "config.h"
#include "http_headers.h"
#include "metrics.h"
#include "request.h"
#include "setup.h"

struct admin {
    struct evhttp *http;
    struct admin_ops ops;
};

static void reply_json(struct evhttp_request *req, int code, const char *json)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    if (b != NULL)
        evbuffer_add(b, json, strlen(json));
    evhttp_send_reply(req, code, NULL, b);
    if (b != NULL)
        evbuffer_free(b);
}

/* OpenAI-shaped, with a request id as every answer of the router. */
static void reply_error(struct evhttp_request *req, int code, const char *message)
{
    char *body = http_error_json(code, NULL, message);
    char id[SY_REQUEST_ID_MAX];

    request_make_id(evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id"), id);
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Request-Id", id);
    reply_json(req, code, body ? body : "{\"error\":{\"message\":\"out of memory\"}}");
    free(body);
}

static void serve_text(struct evhttp_request *req, const char *type, struct evbuffer *b)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, 200, NULL, b);
}

/* POST /admin/drain?backend=URL and /admin/undrain?backend=URL: the
 * operator's own health flag on a backend of the running setup (kept over
 * reloads like every source's). */
static void drain(struct admin *a, struct evhttp_request *req, const struct evhttp_uri *u,
                  int on)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(u), *url;
    struct setup *s = a->ops.current(a->ops.arg);
    struct backend *b;

    TAILQ_INIT(&q);
    if (query == NULL || evhttp_parse_query_str(query, &q) != 0 ||
        (url = evhttp_find_header(&q, "backend")) == NULL || url[0] == '\0') {
        evhttp_clear_headers(&q);
        reply_error(req, 400, "expected ?backend=URL (the backend's URL as configured)");
        return;
    }
    /* as configured: the core keeps base URLs without a trailing slash */
    size_t n = strlen(url);
    char *want = strndup(url, n > 1 && url[n - 1] == '/' ? n - 1 : n);
    b = want != NULL ? setup_find_backend(s, want) : NULL;
    free(want);
    if (b == NULL) {
        evhttp_clear_headers(&q);
        reply_error(req, 404, "no backend with that URL in the running configuration");
        return;
    }
    backend_flag_set(b, HEALTH_SOURCE_OPERATOR, on, on ? "drained by the operator"
                                                       : "undrained by the operator");
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "backend", json_object_new_string(b->url));
    json_object_object_add(o, "drained", json_object_new_boolean(on));
    reply_json(req, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    evhttp_clear_headers(&q);
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evbuffer *b;
    char err[1024] = "";

    if (path == NULL) {
        reply_error(req, 400, "malformed request target");
        return;
    }
    if (strcmp(path, "/admin/drain") == 0 || strcmp(path, "/admin/undrain") == 0) {
        if (cmd != EVHTTP_REQ_POST) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
            reply_error(req, 405, "method not allowed; use POST");
        } else {
            drain(a, req, u, path[7] == 'd');
        }
        return;
    }
    if (strcmp(path, "/admin/reload") == 0) {
        if (cmd != EVHTTP_REQ_POST) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
            reply_error(req, 405, "method not allowed; use POST");
        } else if (a->ops.reload(a->ops.arg, err, sizeof err) == 0) {
            reply_json(req, 200, "{\"status\":\"reloaded\"}");
        } else {
            reply_error(req, 409, err[0] ? err : "reload failed");
        }
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        reply_error(req, 405, "method not allowed; use GET");
        return;
    }
    if (strcmp(path, "/health") == 0) {
        reply_json(req, 200, "{\"status\":\"healthy\"}");
    } else if (strcmp(path, "/version") == 0) {
        reply_json(req, 200, "{\"version\":\"" PACKAGE_VERSION "\"}");
    } else if (strcmp(path, "/metrics") == 0 || strcmp(path, "/engines") == 0) {
        if ((b = evbuffer_new()) == NULL) {
            reply_error(req, 500, "out of memory");
            return;
        }
        if (path[1] == 'm') {
            metrics_render(a->ops.current(a->ops.arg), b);
            serve_text(req, "text/plain; version=0.0.4; charset=utf-8", b);
        } else {
            metrics_render_engines(a->ops.current(a->ops.arg), b);
            serve_text(req, "application/json", b);
        }
        evbuffer_free(b);
    } else {
        reply_error(req, 404, "no such endpoint");
    }
}

void admin_set_timeout(struct admin *a, double timeout)
{
    struct timeval tv;

    if (a == NULL || timeout <= 0)
        return;
    tv.tv_sec = (time_t)timeout;
    tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
    evhttp_set_timeout_tv(a->http, &tv);
}

int admin_start(struct event_base *base, const char *listen, double timeout,
                const struct admin_ops *ops, struct admin **out, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof *a);
    char host[256];
    int port;

    *out = NULL;
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (config_host_port(listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "admin_listen: expected host:port, got '%s'", listen);
        free(a);
        return -1;
    }
    a->ops = *ops;
    a->http = evhttp_new(base);
    if (a->http == NULL || evhttp_bind_socket(a->http, host, (unsigned short)port) != 0) {
        snprintf(err, errlen, "admin_listen: cannot listen on %s:%d", host, port);
        admin_stop(a);
        return -1;
    }
    evhttp_set_default_content_type(a->http, NULL);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(a->http, handle, a);
    admin_set_timeout(a, timeout);
    *out = a;
    return 0;
}

void admin_stop(struct admin *a)
{
    if (a == NULL)
        return;
    if (a->http != NULL)
        evhttp_free(a->http);
    free(a);
}
