#include "proxy_headers.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cfg_tree.h"
#include "config.h"
#include "http_conn.h"
#include "http_headers.h"
#include "setup.h"
#include "upstream.h"

/* Does the model's config set this header itself? */
static int model_header(const struct model *m, const char *name)
{
    const struct cfg_node *extra = m->cfg->headers;
    for (size_t i = 0; extra != NULL && i < extra->n; i++)
        if (strcasecmp(extra->keys[i], name) == 0)
            return 1;
    return 0;
}

/* Counts a header line (h NULL) or adds it. */
struct header_sink {
    struct upstream_headers *h;
    size_t lines, bytes;
};

static void emit(struct header_sink *k, const char *name, const char *value)
{
    if (k->h != NULL) {
        upstream_headers_add(k->h, name, value);
    } else {
        k->lines++;
        k->bytes += upstream_header_size(name, value);
    }
}

/* The client's headers, minus hop-by-hop ones, plus ours.  Run twice:
 * to count, then to fill one block of the counted size. */
static void collect(const struct http_req *r, const struct model *m, const struct backend *b,
                    int router_keys, const char *request_id, const char *traceparent,
                    struct header_sink *k)
{
    const char *conn = http_req_header(r, "Connection");
    int has_ct = 0, has_accept = 0;

    for (size_t i = 0; i < r->nfields; i++) {
        const char *name = r->buf + r->fields[i].name;
        const char *value = r->buf + r->fields[i].value;
        if (http_skip_request_header(name, conn))
            continue;
        /* the backend's own key replaces the client's; and a key for the
         * router itself (api_keys) is never passed on to a backend */
        if ((b->auth_header != NULL || router_keys) && strcasecmp(name, "Authorization") == 0)
            continue;
        if (model_header(m, name))
            continue; /* the model's configured value wins */
        if (traceparent != NULL && strcasecmp(name, "traceparent") == 0)
            continue; /* the attempt's span is the backend's parent */
        has_ct |= strcasecmp(name, "Content-Type") == 0;
        has_accept |= strcasecmp(name, "Accept") == 0;
        emit(k, name, value);
    }
    emit(k, "X-Request-Id", request_id);
    if (traceparent != NULL)
        emit(k, "traceparent", traceparent);
    /* Stop curl from adding headers the client did not send. */
    emit(k, "Expect:", NULL);
    if (!has_ct)
        emit(k, "Content-Type:", NULL);
    if (!has_accept)
        emit(k, "Accept:", NULL);
    if (b->auth_header != NULL)
        emit(k, b->auth_header, NULL);
    /* the model's extra headers (config: models.M.headers) */
    const struct cfg_node *extra = m->cfg->headers;
    for (size_t i = 0; extra != NULL && i < extra->n; i++)
        emit(k, extra->keys[i], extra->vals[i]->scalar);
}

struct upstream_headers *proxy_request_headers(const struct http_req *r, const struct model *m,
                                               const struct backend *b, int router_keys,
                                               const char *request_id, const char *traceparent)
{
    struct header_sink k = { NULL, 0, 0 };

    collect(r, m, b, router_keys, request_id, traceparent, &k);
    if ((k.h = upstream_headers_new(k.lines, k.bytes)) != NULL)
        collect(r, m, b, router_keys, request_id, traceparent, &k);
    return k.h;
}

int proxy_response_headers(struct http_req *req, const struct upstream_response *r)
{
    const char *conn = NULL;
    int sse = 0;

    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, "Connection") == 0)
            conn = r->headers[i].value;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct upstream_header *h = &r->headers[i];
        if (http_skip_response_header(h->name, conn))
            continue;
        if (strcasecmp(h->name, "Content-Type") == 0 &&
            strncasecmp(h->value, "text/event-stream", 17) == 0)
            sse = 1;
        if (strcasecmp(h->name, "Content-Length") == 0)
            continue; /* the answer's framing is the router's */
        http_resp_header(req, h->name, h->value);
    }
    return sse;
}

void proxy_router_headers(struct http_req *req, const char *request_id, const char *model,
                          int attempts, const char *fallback)
{
    char n[16];

    http_resp_header(req, "X-Request-Id", request_id);
    if (model != NULL)
        http_resp_header(req, "X-Switchyard-Model", model);
    snprintf(n, sizeof n, "%d", attempts);
    http_resp_header(req, "X-Switchyard-Attempts", n);
    if (fallback != NULL)
        http_resp_header(req, "X-Switchyard-Fallback", fallback);
}
