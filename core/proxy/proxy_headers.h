/*
 * proxy_headers: the header policy of a proxied request.  Which of the
 * client's headers go to the backend (hop-by-hop ones and the router's own
 * dropped, the backend's key and the model's configured headers added), and
 * which of the backend's come back (hop-by-hop ones, its framing and the
 * router's own names dropped; X-Request-Id and X-Switchyard-* added).
 */
#ifndef SY_PROXY_HEADERS_H
#define SY_PROXY_HEADERS_H

struct backend;
struct http_req;
struct model;
struct upstream_headers;
struct upstream_response;

/* The header lines of an attempt to backend b for model m, in one block
 * (upstream_headers_new); NULL on OOM.  router_keys: the router checks
 * client keys (api_keys), so the client's Authorization is its own and
 * never passed on.  traceparent: the attempt's W3C trace context, sent in
 * place of the client's (NULL: the client's goes as it came). */
struct upstream_headers *proxy_request_headers(const struct http_req *r, const struct model *m,
                                               const struct backend *b, int router_keys,
                                               const char *request_id, const char *traceparent);

/* The backend's headers onto the client's answer, before it starts.
 * Returns 1 when the answer is an event stream (text/event-stream). */
int proxy_response_headers(struct http_req *req, const struct upstream_response *r);

/* The router's own headers on an answer: X-Request-Id, X-Switchyard-Model
 * (when model is not NULL), -Attempts, and -Fallback (when not NULL). */
void proxy_router_headers(struct http_req *req, const char *request_id, const char *model,
                          int attempts, const char *fallback);

#endif
