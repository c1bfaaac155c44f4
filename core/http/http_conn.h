/*
 * http_conn: the router's HTTP/1.1 server for its clients, one per worker,
 * on the worker's event_base.  It replaces evhttp on the proxy listener
 * because the router needs what evhttp 2.1 cannot give: a cap on client
 * connections, its own (JSON) answer to every refusal, 413 included, reads
 * as large as the body, the body in one contiguous buffer that libcurl
 * sends from without a copy, and notice of a client leaving while its
 * request waits on a backend.  (The admin listener stays on evhttp.)
 *
 * A connection reads one request at a time into its own buffer (the head
 * parsed in place by http_parse), hands it to the handler, and writes the
 * answer the handler builds.  Pipelined requests wait in the buffer until
 * the answer before them is complete.  The request (struct http_req) lives
 * from the handler call until its answer is finished, or until the client
 * leaves: then the owner's `gone` callback runs and the request must not be
 * touched again.
 */
#ifndef SY_HTTP_CONN_H
#define SY_HTTP_CONN_H

#include <stdatomic.h>
#include <stddef.h>

#include "http_parse.h"

struct event_base;
struct http_server;
struct http_conn;

/* Limits; a reload may change them (http_server_set_limits). */
struct http_limits {
    size_t max_head;        /* bytes of a request head: 431 past it */
    size_t max_fields;      /* header lines of a request: 431 past it */
    size_t max_body;        /* bytes of a body: 413 past it */
    double client_timeout;  /* seconds for a head, between body reads, and
                               between answer writes */
    double idle_timeout;    /* seconds of keep-alive idleness */
    double request_timeout; /* seconds for a whole request, head and body,
                               however it trickles in; 0: none */
    size_t high_water;      /* unsent answer bytes past which a relay pauses
                               (http_resp_over_high_water); 0: the default */
    int max_connections;    /* open client connections, all workers: 0 no cap */
};

/* The request being served on a connection. */
struct http_req {
    struct http_conn *conn;
    enum http_method method;
    const char *method_name; /* as sent, e.g. "POST" */
    const char *target;      /* as sent, e.g. "/v1/chat/completions?x=1" */
    const char *path;        /* the target without its query */
    int minor;               /* HTTP/1.<minor> */
    const char *buf;         /* the head's bytes: fields point into them */
    const struct http_field *fields;
    size_t nfields;
    const char *body;        /* contiguous (a chunked body decoded), NULL if none */
    size_t body_len;
};

typedef void (*http_handler)(struct http_req *r, void *arg);

/* A server on an already listening, non-blocking socket, which it owns
 * (-1: none; connections come from http_server_add_connection).
 * `nconns` counts open connections across the workers that share the cap. */
struct http_server *http_server_new(struct event_base *base, int listen_fd,
                                    const struct http_limits *lim, atomic_int *nconns,
                                    http_handler handler, void *arg);
/* Serve a connected, non-blocking socket (which it owns) as if accepted;
 * the cap is not applied.  For tests and fuzzing. */
void http_server_add_connection(struct http_server *s, int fd);
/* Close every connection (owners of requests in flight are told: `gone`)
 * and the listening socket. */
void http_server_free(struct http_server *s);
void http_server_set_limits(struct http_server *s, const struct http_limits *lim);
/* Graceful shutdown: accept no more, close idle connections now, and every
 * connection after the answer in progress. */
void http_server_drain(struct http_server *s);

/* Client connections open now, and refused at the cap so far, over the
 * whole process (for /metrics). */
void http_conn_counts(int *open, unsigned long long *refused);

/* The first header named `name` (case-insensitive), NULL when none. */
const char *http_req_header(const struct http_req *r, const char *name);

/* The request's owner, for a request answered later than its handler call:
 * `gone` runs when the client leaves before the answer is finished (the
 * request is dead after it); `drained` when the answer's unsent bytes, after
 * passing the high-water mark (limits), are all sent. */
void http_req_set_owner(struct http_req *r, void (*gone)(void *arg),
                        void (*drained)(void *arg), void *arg);
/* During `gone`: 1 when the router itself is cutting the connection (its
 * shutdown ran out of drain time), 0 when the client left. */
int http_req_cut_by_server(const struct http_req *r);

/* --- the answer, in this order: headers, start, body, finish --- */

/* A header of the answer, before http_resp_start.  A value with CR, LF or
 * NUL is dropped (-1): nothing can be injected into the answer's head. */
int http_resp_header(struct http_req *r, const char *name, const char *value);
/* Close the connection after this answer (the request was malformed, or
 * the client's framing cannot be trusted any more). */
void http_resp_close_after(struct http_req *r);
/* Status line and head.  length: of the body to come, or -1 for unknown
 * (chunked for HTTP/1.1, close-delimited for 1.0).  The head leaves at
 * the end of this turn of the loop, with any body added by then. */
void http_resp_start(struct http_req *r, int status, long long length);
/* Body bytes (dropped for HEAD). */
void http_resp_body(struct http_req *r, const void *data, size_t len);
/* Bytes of the answer not yet taken by the client's socket. */
size_t http_resp_pending(const struct http_req *r);
/* More than the high-water mark is unsent: a relay should pause its
 * source until `drained`. */
int http_resp_over_high_water(const struct http_req *r);
/* The answer is complete; the request is dead after this. */
void http_resp_finish(struct http_req *r);
/* The answer cannot be completed (a backend died mid-body): send what is
 * there and close, so the client sees a truncated answer, not a whole one.
 * The request is dead after this. */
void http_resp_abort(struct http_req *r);
/* A whole answer at once: start, body, finish. */
void http_resp_send(struct http_req *r, int status, const char *content_type,
                    const char *body, size_t len);
/* The router's own error as a whole answer: OpenAI-shaped JSON, and
 * Retry-After when retry_after > 0. */
void http_resp_error(struct http_req *r, int status, const char *message, int retry_after);
/* A request the router refuses before any routing: an access-log line with
 * the reason, X-Request-Id (the client's if safe, else a new one), and
 * http_resp_error. */
void http_refuse(struct http_req *r, int status, const char *message, int retry_after);

/* The default high-water mark of unsent answer bytes; once they passed
 * it, `drained` runs when all are sent. */
#define HTTP_RESP_HIGH_WATER (256 * 1024)

#endif
