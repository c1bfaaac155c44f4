/*
 * upstream: HTTP requests to backends through the libcurl multi interface,
 * driven by a worker's libevent loop (curl's hiperfifo pattern): no blocking
 * call, no thread per request, connections reused from the multi's cache.
 *
 * One pool per worker thread; a transfer lives on the pool's thread.
 * Callbacks run on that thread.  on_head and on_body run inside libcurl and
 * must not cancel their own transfer (return ABORT / don't consume instead);
 * on_done runs outside libcurl and may start new transfers.
 */
#ifndef SY_UPSTREAM_H
#define SY_UPSTREAM_H

#include <stddef.h>

struct event_base;
struct upstream_pool;
struct upstream_xfer;
struct upstream_headers;

struct upstream_header {
    const char *name;
    const char *value;
};

/* A final response head, checked (see upstream_start): its framing is
 * sound, so the body the relay gets is exactly the body the backend sent. */
struct upstream_response {
    int status;
    const struct upstream_header *headers;
    size_t nheaders;
    long long content_length; /* the body's declared length; -1: chunked or
                                 up to the close */
};

enum upstream_body_mode {
    UP_BODY_DELIVER, /* pass body bytes to on_body */
    UP_BODY_DISCARD, /* read and drop the body (keeps the connection) */
    UP_BODY_ABORT    /* stop the transfer now */
};

enum upstream_result {
    UP_OK = 0,  /* the whole response arrived */
    UP_CONNECT, /* refused, unreachable, DNS failure, TLS handshake */
    UP_TIMEOUT, /* connect, first-byte or idle timeout */
    UP_CLOSED,  /* the backend closed or reset the connection early */
    UP_ABORTED, /* on_head asked to abort, or a discarded body was too big */
    UP_MALFORMED, /* the answer broke HTTP's grammar or framing (see detail) */
    UP_ERROR    /* anything else (see detail) */
};

struct upstream_ops {
    /* The response head arrived (a final status, headers complete). */
    enum upstream_body_mode (*on_head)(void *arg,
                                       const struct upstream_response *r);
    /* Body bytes: return 0 when consumed, 1 to pause the transfer without
     * consuming them (they come again after upstream_resume()), -1 to
     * stop the transfer (on_done follows with UP_ABORTED). */
    int (*on_body)(void *arg, const char *data, size_t len);
    /* The transfer ended; called once, unless cancelled.  The transfer is
     * freed right after. */
    void (*on_done)(void *arg, enum upstream_result res, const char *detail);
};

/* TLS settings besides ca_file, for servers that are not backends (the
 * Kubernetes API with a kubeconfig's credentials).  PEM text or files. */
struct upstream_tls {
    const char *ca_pem;
    const char *cert_file, *key_file;
    const char *cert_pem, *key_pem;
    int insecure;               /* do not verify the server */
};

struct upstream_request {
    const char *url;
    const char *body;       /* borrowed until on_done/cancel; NULL: a GET */
    size_t body_len;
    struct upstream_headers *headers; /* ownership passes to the transfer */
    double connect_timeout;     /* seconds */
    double first_byte_timeout;  /* seconds from start to the response head */
    double idle_timeout;        /* seconds between body bytes */
    const char *ca_file;        /* CA bundle for https, NULL: the system's */
    const struct upstream_tls *tls; /* TLS settings of its own, or NULL */
    long recv_buffer;           /* bytes read from the backend at a time; 0: 16 KiB */
    int get;                    /* a GET even with a body (vllm_router's GET
                                   /v1/audio/voices may carry one) */
};

struct upstream_pool *upstream_pool_new(struct event_base *base,
                                        long max_connections);
void upstream_pool_free(struct upstream_pool *p);

/*
 * A request's header lines and the list curl reads them from, in one
 * allocation: a request costs one malloc for its headers, not two per line.
 * Count first (lines, and bytes as upstream_header_size() says), then add
 * exactly that much.  NULL on OOM.
 */
struct upstream_headers *upstream_headers_new(size_t lines, size_t bytes);
/* Room one header takes: "name: value" and its NUL. */
size_t upstream_header_size(const char *name, const char *value);
/* "name: value"; an empty value is sent as such (curl's "name;" form).
 * A NULL value: `name` is a whole line, e.g. "Expect:" (drop a header curl
 * would add).  Beyond the counted room: ignored, and -1. */
int upstream_headers_add(struct upstream_headers *h, const char *name, const char *value);
void upstream_headers_free(struct upstream_headers *h);

/* Start a POST (a GET without body, or when req->get).  NULL on failure (req->headers is
 * freed then too).
 *
 * The backend's answer is untrusted input, held to the rules a client's
 * request is (http_parse.h): a status line, header line or framing that
 * could be read two ways ends the transfer with UP_MALFORMED before
 * on_head, so nothing of it reaches a client.  That is: a status line or
 * header line outside the grammar, more than 128 header lines or a head
 * over 64 KiB, Content-Length and Transfer-Encoding together, a
 * Content-Length that is not plain digits below 2^63 (or several that
 * differ), a Transfer-Encoding other than "chunked" (or on HTTP/1.0), and
 * a 101 or any 1xx other than 100, 102 and 103 (interim heads, skipped:
 * the router never asks for an upgrade).  Trailer fields after a chunked
 * body are dropped.  A body shorter than its Content-Length ends with
 * UP_CLOSED after on_body saw what came. */
struct upstream_xfer *upstream_start(struct upstream_pool *p,
                                     const struct upstream_request *req,
                                     const struct upstream_ops *ops,
                                     void *arg);
/*
 * For tests and fuzzing: each connection the pool would open to a backend
 * is instead the socket connect(arg) returns, connected already (e.g. one
 * end of a socketpair; the pool owns and closes it), or -1 for a refused
 * connection.  connect NULL: real connections.
 */
void upstream_pool_set_connector(struct upstream_pool *p, int (*connect)(void *arg),
                                 void *arg);

/* Stop a transfer; no callback follows.  Not from inside on_head/on_body. */
void upstream_cancel(struct upstream_xfer *x);
/* Resume a transfer paused by on_body; may call on_body at once. */
void upstream_resume(struct upstream_xfer *x);
/* Text for logs. */
const char *upstream_result_name(enum upstream_result r);

#endif
