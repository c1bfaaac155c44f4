#define _GNU_SOURCE /* accept4, strndup */
#include "http_conn.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_headers.h"
#include "log.h"
#include "request.h"

#define IN_INITIAL 4096          /* a chat request and its head fit */
#define IN_KEEP (64 * 1024)      /* more than this is given back between requests */
#define OUT_KEEP (16 * 1024)
#define CHUNKED_SLACK (16 * 1024) /* raw chunk framing held beyond the body */
#define LINGER_SECONDS 2
#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100
/* A pipelining client that does not read its answers is not served more
 * requests while this much is unsent. */
#define PIPELINE_OUT_LIMIT (64 * 1024)

enum conn_state {
    ST_IDLE,     /* between requests, nothing of the next one read */
    ST_HEAD,     /* reading a head */
    ST_BODY,     /* reading a body of known length */
    ST_CHUNKED,  /* reading a chunked body */
    ST_HANDLING, /* the handler has the request; its answer is not finished */
    ST_CLOSING,  /* the last answer is queued: shut down once it is sent */
    ST_LINGER,   /* shut down for writing; reading to EOF so the client gets
                    the answer, not a reset, then closing */
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next;
    int fd;
    enum conn_state state;
    struct event rd, wr, timer;
    int rd_on, wr_on;
    int eof;                 /* the client shut its side: nothing more comes */
    /* input: the head, parsed in place, then the body right after it */
    char *in;
    size_t in_len, in_cap;
    size_t scanned;          /* http_parse_head's resume point */
    size_t head_len;
    size_t body_need;        /* Content-Length */
    size_t consumed;         /* raw bytes of the request being served */
    struct timeval req_start; /* when its head began to arrive */
    struct http_chunked chunked;
    size_t chunk_in, chunk_out;
    struct http_field *fields;
    size_t fields_cap;
    char *path_copy;         /* the path, when the target has a query */
    int keep_alive;
    struct http_head head;   /* offsets of the request's parts in `in` */
    struct http_req req;
    /* output: bytes for the socket, from out_off to out_len */
    char *out;
    size_t out_off, out_len, out_cap;
    char *hdr;               /* the answer's headers until it starts */
    size_t hdr_len, hdr_cap;
    int has_date;
    int resp_started, resp_chunked, resp_no_body, resp_close;
    long long resp_left;     /* body bytes the Content-Length sent still
                                promises; -1: not framed by a length */
    int above_high;
    void (*gone)(void *);
    void (*drained)(void *);
    void *owner;
};

struct http_server {
    struct event_base *base;
    int listen_fd;
    struct event accept_ev, accept_pause;
    int accepting;
    struct http_limits lim;
    const struct timeval *client_tv; /* common timeouts: O(1) per add */
    const struct timeval *idle_tv;
    atomic_int *nconns;
    http_handler handler;
    void *arg;
    struct http_conn *conns;
    struct http_field *scratch;      /* max_fields, for parsing */
    size_t scratch_cap;
    int draining;
    int closing;                     /* http_server_free is cutting connections */
    time_t date_at;
    char date[40];
    time_t refusal_logged;
};

/* For /metrics: over every server of the process. */
static atomic_int open_connections;
static atomic_uint_fast64_t refused_connections;

void http_conn_counts(int *open, unsigned long long *refused)
{
    *open = atomic_load_explicit(&open_connections, memory_order_relaxed);
    *refused = atomic_load_explicit(&refused_connections, memory_order_relaxed);
}

static void conn_process(struct http_conn *c);
static void conn_refuse(struct http_conn *c, int status, const char *why);

/* --- timers --- */

/* A common timeout of t seconds; `plain` is used when libevent has none
 * left. */
static const struct timeval *common_tv(struct http_server *s, double t, struct timeval *plain)
{
    const struct timeval *tv;

    if (t <= 0)
        t = 120;
    plain->tv_sec = (time_t)t;
    plain->tv_usec = (suseconds_t)((t - (double)plain->tv_sec) * 1e6);
    tv = event_base_init_common_timeout(s->base, plain);
    return tv ? tv : plain;
}

static void conn_arm(struct http_conn *c)
{
    event_add(&c->timer, c->srv->client_tv);
}

/* Keep-alive idleness between requests. */
static void conn_arm_idle(struct http_conn *c)
{
    event_add(&c->timer, c->srv->idle_tv);
}

/* Seconds left of request_timeout for the request being read (<= 0: none
 * left), or -1 when there is no such limit. */
static double request_time_left(struct http_conn *c)
{
    struct timeval now;
    double t = c->srv->lim.request_timeout;

    if (t <= 0)
        return -1;
    event_base_gettimeofday_cached(c->srv->base, &now);
    t -= (double)(now.tv_sec - c->req_start.tv_sec) +
         (double)(now.tv_usec - c->req_start.tv_usec) / 1e6;
    return t > 0 ? t : 0;
}

/* While a request arrives: client_timeout of silence, and never past the
 * whole request's deadline (a body trickling in a byte at a time). */
static void conn_arm_request(struct http_conn *c)
{
    double left = request_time_left(c);

    if (left < 0 || left >= c->srv->lim.client_timeout) {
        conn_arm(c);
    } else {
        struct timeval tv = { (time_t)left, (suseconds_t)((left - (double)(time_t)left) * 1e6) };
        event_add(&c->timer, &tv);
    }
}

static void conn_disarm(struct http_conn *c)
{
    event_del(&c->timer);
}

/* --- closing --- */

static void conn_free(struct http_conn *c)
{
    struct http_server *s = c->srv;

    event_del(&c->rd);
    event_del(&c->wr);
    event_del(&c->timer);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    close(c->fd);
    atomic_fetch_sub(s->nconns, 1);
    atomic_fetch_sub_explicit(&open_connections, 1, memory_order_relaxed);
    free(c->in);
    free(c->out);
    free(c->hdr);
    free(c->fields);
    free(c->path_copy);
    free(c);
}

/* The connection ends now; the owner of a request in flight is told. */
static void conn_close(struct http_conn *c)
{
    void (*gone)(void *) = c->gone;
    void *owner = c->owner;

    c->gone = NULL;
    c->drained = NULL;
    c->owner = NULL;
    if (gone != NULL)
        gone(owner);
    conn_free(c);
}

/* The answer is sent: stop writing, and read what the client still sends
 * until it closes (a close with unread bytes would reset the connection
 * and could destroy the answer in flight). */
static void conn_linger(struct http_conn *c)
{
    struct timeval tv = { LINGER_SECONDS, 0 };

    shutdown(c->fd, SHUT_WR);
    c->state = ST_LINGER;
    if (!c->rd_on) {
        event_add(&c->rd, NULL);
        c->rd_on = 1;
    }
    event_add(&c->timer, &tv);
}

/* --- output --- */

static int out_reserve(struct http_conn *c, size_t more)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + more <= c->out_cap)
        return 0;
    if (c->out_off > 0 && c->out_len - c->out_off + more <= c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        return 0;
    }
    size_t cap = c->out_cap ? c->out_cap : 1024;
    while (cap < c->out_len + more)
        cap *= 2;
    char *n = realloc(c->out, cap);
    if (n == NULL)
        return -1;
    c->out = n;
    c->out_cap = cap;
    return 0;
}

static void out_add(struct http_conn *c, const void *data, size_t len)
{
    if (len == 0 || out_reserve(c, len) != 0)
        return;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

/* Send at the end of this turn of the loop: a head, its body and the end
 * of a chunked answer made in one turn leave in one write. */
static void conn_schedule_flush(struct http_conn *c)
{
    event_active(&c->wr, EV_WRITE, 1);
}

static void conn_flush(struct http_conn *c)
{
    int progress = 0;

    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            progress = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->wr_on) {
                event_add(&c->wr, NULL);
                c->wr_on = 1;
            }
            /* a client that stops reading its answer is let go */
            if (progress || !evtimer_pending(&c->timer, NULL))
                conn_arm(c);
            return;
        }
        conn_close(c); /* reset or gone: nobody to answer */
        return;
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > OUT_KEEP && c->state != ST_HANDLING) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (c->wr_on) {
        event_del(&c->wr);
        c->wr_on = 0;
    }
    if (c->above_high) {
        c->above_high = 0;
        if (c->drained != NULL)
            c->drained(c->owner); /* may add more and flush again */
        return;
    }
    switch (c->state) {
    case ST_HANDLING:
        conn_disarm(c); /* waiting on the backend is not the client's fault */
        break;
    case ST_CLOSING:
        conn_linger(c);
        break;
    case ST_IDLE:
        conn_process(c); /* a pipelined request, or the idle timer */
        break;
    default:
        break;
    }
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_flush(arg);
}

/* --- the answer --- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

static int token_is_safe(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s == ':' || *s == 0x7f)
            return 0;
    return 1;
}

int http_resp_header(struct http_req *r, const char *name, const char *value)
{
    struct http_conn *c = r->conn;
    size_t nl = strlen(name), vl = strlen(value);

    if (c->resp_started || !token_is_safe(name) || !http_value_is_safe(value, vl))
        return -1;
    if (c->hdr_len + nl + vl + 4 > c->hdr_cap) {
        size_t cap = c->hdr_cap ? c->hdr_cap : 512;
        while (cap < c->hdr_len + nl + vl + 4)
            cap *= 2;
        char *n = realloc(c->hdr, cap);
        if (n == NULL)
            return -1;
        c->hdr = n;
        c->hdr_cap = cap;
    }
    memcpy(c->hdr + c->hdr_len, name, nl);
    c->hdr[c->hdr_len + nl] = ':';
    c->hdr[c->hdr_len + nl + 1] = ' ';
    memcpy(c->hdr + c->hdr_len + nl + 2, value, vl);
    c->hdr[c->hdr_len + nl + 2 + vl] = '\r';
    c->hdr[c->hdr_len + nl + 3 + vl] = '\n';
    c->hdr_len += nl + vl + 4;
    if (nl == 4 && strcasecmp(name, "Date") == 0)
        c->has_date = 1;
    return 0;
}

void http_resp_close_after(struct http_req *r)
{
    r->conn->resp_close = 1;
}

static const char *http_date(struct http_server *s)
{
    time_t now = time(NULL);

    if (now != s->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_at = now;
    }
    return s->date;
}

void http_resp_start(struct http_req *r, int status, long long length)
{
    struct http_conn *c = r->conn;
    char line[160];
    int n;

    if (c->resp_started)
        return;
    c->resp_started = 1;
    /* these carry no body, whatever the length says (RFC 9110 6.4.1) */
    c->resp_no_body = r->method == HTTP_METHOD_HEAD || status == 204 || status == 304 ||
                      (status >= 100 && status < 200);
    n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
    out_add(c, line, (size_t)n);
    out_add(c, c->hdr, c->hdr_len);
    c->hdr_len = 0;
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
        /* no framing header at all */
    } else if (length >= 0) {
        n = snprintf(line, sizeof line, "Content-Length: %lld\r\n", length);
        out_add(c, line, (size_t)n);
        if (!c->resp_no_body)
            c->resp_left = length;
    } else if (r->minor >= 1) {
        if (r->method != HTTP_METHOD_HEAD) {
            out_add(c, "Transfer-Encoding: chunked\r\n", 28);
            c->resp_chunked = 1;
        }
    } else {
        c->resp_close = 1; /* HTTP/1.0: the end of the body is the close */
    }
    if (c->srv->draining || !c->keep_alive)
        c->resp_close = 1;
    if (c->resp_close)
        out_add(c, "Connection: close\r\n", 19);
    else if (r->minor == 0)
        out_add(c, "Connection: keep-alive\r\n", 24);
    if (!c->has_date) {
        n = snprintf(line, sizeof line, "Date: %s\r\n\r\n", http_date(c->srv));
        out_add(c, line, (size_t)n);
    } else {
        out_add(c, "\r\n", 2);
    }
    conn_schedule_flush(c);
}

void http_resp_body(struct http_req *r, const void *data, size_t len)
{
    struct http_conn *c = r->conn;

    if (c->resp_no_body || len == 0)
        return;
    if (c->resp_left >= 0 && (unsigned long long)len > (unsigned long long)c->resp_left) {
        /* never past the length the head told: the rest would be read as
         * the next answer on this connection */
        LOG_WARN("answer body longer than its Content-Length: %zu bytes cut, closing",
                 len - (size_t)c->resp_left);
        len = (size_t)c->resp_left;
        c->resp_close = 1;
    }
    if (c->resp_left >= 0)
        c->resp_left -= (long long)len;
    if (c->resp_chunked) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        if (out_reserve(c, (size_t)n + len + 2) != 0)
            return;
        out_add(c, size, (size_t)n);
        out_add(c, data, len);
        out_add(c, "\r\n", 2);
    } else {
        out_add(c, data, len);
    }
    if (c->out_len - c->out_off > c->srv->lim.high_water)
        c->above_high = 1;
    conn_schedule_flush(c);
}

size_t http_resp_pending(const struct http_req *r)
{
    return r->conn->out_len - r->conn->out_off;
}

int http_resp_over_high_water(const struct http_req *r)
{
    if (http_resp_pending(r) <= r->conn->srv->lim.high_water)
        return 0;
    /* the caller pauses now: `drained` must come when all is sent, even
     * when the head alone (not a body write) passed the mark */
    r->conn->above_high = 1;
    return 1;
}

/* The request is over: forget it, keep what the client sent after it. */
static void conn_next_request(struct http_conn *c)
{
    size_t rest = c->in_len > c->consumed ? c->in_len - c->consumed : 0;

    if (rest > 0)
        memmove(c->in, c->in + c->consumed, rest);
    c->in_len = rest;
    if (c->in_cap > IN_KEEP) {
        size_t cap = rest > IN_INITIAL ? rest : IN_INITIAL;
        char *n = realloc(c->in, cap);
        if (n != NULL) {
            c->in = n;
            c->in_cap = cap;
        }
    }
    free(c->path_copy);
    c->path_copy = NULL;
    c->consumed = 0;
    c->scanned = 0;
    memset(&c->req, 0, sizeof c->req);
    c->req.conn = c;
    c->resp_started = c->resp_chunked = c->resp_no_body = c->resp_close = 0;
    c->resp_left = -1;
    c->has_date = 0;
    c->hdr_len = 0;
    c->above_high = 0;
    c->state = ST_IDLE;
    if (!c->rd_on && !c->eof) {
        event_add(&c->rd, NULL);
        c->rd_on = 1;
    }
}

void http_resp_finish(struct http_req *r)
{
    struct http_conn *c = r->conn;

    if (c->resp_chunked)
        out_add(c, "0\r\n\r\n", 5);
    if (c->resp_left > 0) /* short of its Content-Length: only a close says so */
        c->resp_close = 1;
    c->above_high = 0;
    c->gone = NULL;
    c->drained = NULL;
    c->owner = NULL;
    if (c->resp_close || c->srv->draining) {
        c->state = ST_CLOSING;
        if (c->rd_on) { /* nothing more is read before the linger */
            event_del(&c->rd);
            c->rd_on = 0;
        }
    } else {
        conn_next_request(c);
    }
    conn_schedule_flush(c);
}

void http_resp_abort(struct http_req *r)
{
    struct http_conn *c = r->conn;

    c->resp_chunked = 0; /* no terminating chunk: the answer is cut */
    c->resp_close = 1;
    http_resp_finish(r);
}

void http_resp_send(struct http_req *r, int status, const char *content_type,
                    const char *body, size_t len)
{
    if (content_type != NULL)
        http_resp_header(r, "Content-Type", content_type);
    http_resp_start(r, status, (long long)len);
    http_resp_body(r, body, len);
    http_resp_finish(r);
}

void http_resp_error(struct http_req *r, int status, const char *message, int retry_after)
{
    char *body = http_error_json(status, NULL, message);
    const char *b = body ? body : "{\"error\":{\"message\":\"out of memory\"}}";

    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        http_resp_header(r, "Retry-After", v);
    }
    http_resp_send(r, status, "application/json", b, strlen(b));
    free(body);
}

void http_refuse(struct http_req *r, int status, const char *message, int retry_after)
{
    char id[SY_REQUEST_ID_MAX];

    request_make_id(http_req_header(r, "X-Request-Id"), id);
    struct access_entry e = {
        .id = id, .method = r->method_name ? r->method_name : "-",
        .path = r->path && *r->path ? r->path : "-", .status = status, .ttfb = -1,
        .error = message,
    };
    log_access(&e);
    http_resp_header(r, "X-Request-Id", id);
    http_resp_error(r, status, message, retry_after);
}

void http_req_set_owner(struct http_req *r, void (*gone)(void *arg),
                        void (*drained)(void *arg), void *arg)
{
    r->conn->gone = gone;
    r->conn->drained = drained;
    r->conn->owner = arg;
}

int http_req_cut_by_server(const struct http_req *r)
{
    return r->conn->srv->closing;
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    return r->buf ? http_head_field(r->buf, r->fields, r->nfields, name) : NULL;
}

/* --- input --- */

/* The connection's own refusal of a request it could not read: JSON like
 * every answer of the router, an access-log line, and the connection
 * closed after it (what follows the bad bytes cannot be trusted). */
static void conn_refuse(struct http_conn *c, int status, const char *why)
{
    c->req.conn = c;
    c->state = ST_HANDLING;
    conn_disarm(c);
    http_resp_close_after(&c->req);
    http_refuse(&c->req, status, why, 0);
}

/* Content-Length as the framing check left it: digits only. */
static int parse_length(const char *v, size_t *out)
{
    size_t n = 0;

    if (*v == '\0')
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (SIZE_MAX - 9) / 10)
            return -1;
        n = n * 10 + (size_t)(*v - '0');
    }
    *out = n;
    return 0;
}

/* Point the request at its parts in the input buffer: again after the
 * buffer moved (it grows to hold a body). */
static void conn_bind_req(struct http_conn *c)
{
    struct http_req *r = &c->req;

    r->method_name = c->in + c->head.method_off;
    r->target = c->in + c->head.target;
    r->path = c->path_copy ? c->path_copy : r->target;
    r->buf = c->in;
}

/* The head is read: check its framing, then read the body its way. */
static void conn_head_done(struct http_conn *c, const struct http_head *h)
{
    struct http_server *s = c->srv;
    struct http_req *r = &c->req;
    struct http_framing framing;
    const char *bad, *te, *cl, *expect;

    if (c->fields_cap < h->nfields) {
        struct http_field *f = realloc(c->fields, h->nfields * sizeof *f);
        if (f == NULL) {
            conn_refuse(c, 500, "out of memory");
            return;
        }
        c->fields = f;
        c->fields_cap = h->nfields;
    }
    if (h->nfields > 0)
        memcpy(c->fields, s->scratch, h->nfields * sizeof *c->fields);
    c->head_len = h->head_len;
    c->head = *h;
    r->conn = c;
    r->method = h->method;
    r->minor = h->minor;
    r->fields = c->fields;
    r->nfields = h->nfields;
    const char *q = memchr(c->in + h->target, '?', h->target_len);
    if (q != NULL &&
        (c->path_copy = strndup(c->in + h->target, (size_t)(q - (c->in + h->target)))) == NULL) {
        conn_refuse(c, 500, "out of memory");
        return;
    }
    conn_bind_req(c);

    memset(&framing, 0, sizeof framing);
    for (size_t i = 0; i < h->nfields; i++)
        http_framing_add(&framing, c->in + c->fields[i].name, c->in + c->fields[i].value);
    if ((bad = http_framing_error(&framing)) != NULL) {
        conn_refuse(c, 400, bad);
        return;
    }
    /* RFC 9112 3.2: an HTTP/1.1 request without Host, or any request with
     * two, is a 400 (which one would a backend or a front proxy read?) */
    size_t hosts = 0;
    for (size_t i = 0; i < h->nfields; i++)
        hosts += c->fields[i].name_len == 4 &&
                 strcasecmp(c->in + c->fields[i].name, "Host") == 0;
    if (hosts > 1 || (hosts == 0 && h->minor >= 1)) {
        conn_refuse(c, 400, hosts ? "more than one Host header" : "no Host header");
        return;
    }
    c->keep_alive = http_keep_alive(h->minor, http_req_header(r, "Connection"));
    te = http_req_header(r, "Transfer-Encoding");
    cl = http_req_header(r, "Content-Length");
    c->body_need = 0;
    if (te != NULL) {
        if (h->minor == 0) { /* HTTP/1.0 has no chunked framing */
            conn_refuse(c, 400, "Transfer-Encoding in an HTTP/1.0 request");
            return;
        }
        memset(&c->chunked, 0, sizeof c->chunked);
        c->chunk_in = c->chunk_out = c->head_len;
        c->state = ST_CHUNKED;
    } else if (cl != NULL) {
        if (parse_length(cl, &c->body_need) != 0) {
            conn_refuse(c, 400, "malformed Content-Length");
            return;
        }
        if (c->body_need > s->lim.max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body too large: %zu bytes (at most %zu)",
                     c->body_need, s->lim.max_body);
            conn_refuse(c, 413, msg);
            return;
        }
        c->state = ST_BODY;
    } else {
        c->state = ST_BODY; /* no body: done at once */
    }
    /* a client that waits for leave to send its body gets it now */
    expect = http_req_header(r, "Expect");
    if (expect != NULL && h->minor >= 1 && strcasecmp(expect, "100-continue") == 0 &&
        c->in_len == c->head_len && (c->state == ST_CHUNKED || c->body_need > 0)) {
        out_add(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        conn_schedule_flush(c);
    }
    /* the head's timer, armed when it began, runs on over the body */
}

static void conn_dispatch(struct http_conn *c, const char *body, size_t len)
{
    c->req.body = body;
    c->req.body_len = len;
    c->state = ST_HANDLING;
    conn_disarm(c);
    c->srv->handler(&c->req, c->srv->arg);
}

/* Make room to read into; -1 when the buffer may not grow now. */
static int in_reserve(struct http_conn *c)
{
    struct http_server *s = c->srv;
    size_t limit;

    if (c->in_len < c->in_cap)
        return 0;
    switch (c->state) {
    case ST_IDLE:
    case ST_HEAD:
        limit = s->lim.max_head + 1; /* one past, to tell "too large" */
        break;
    case ST_BODY:
        limit = c->head_len + c->body_need;
        break;
    case ST_CHUNKED:
        limit = c->head_len + s->lim.max_body + CHUNKED_SLACK;
        break;
    default:
        return -1; /* the request in the buffer is in use: it may not move */
    }
    if (c->in_cap >= limit)
        return -1;
    /* a body of known length gets its room at once, not by doubling */
    size_t cap = c->state == ST_BODY ? limit : c->in_cap ? c->in_cap * 2 : IN_INITIAL;
    if (cap > limit)
        cap = limit;
    if (cap < IN_INITIAL)
        cap = IN_INITIAL;
    char *n = realloc(c->in, cap);
    if (n == NULL)
        return -1;
    c->in = n;
    c->in_cap = cap;
    if (c->state == ST_BODY || c->state == ST_CHUNKED)
        conn_bind_req(c); /* the head moved with the buffer */
    return 0;
}

/* conn_process needs more of a request.  Read on; but when the client has
 * shut its side nothing more comes: close once what was answered has left
 * (the flush lingers and closes).  Returns 1 when the connection is done
 * with (it may be freed). */
static int conn_need_input(struct http_conn *c)
{
    if (!c->eof) {
        if (!c->rd_on) {
            event_add(&c->rd, NULL);
            c->rd_on = 1;
        }
        return 0;
    }
    if (c->out_len > c->out_off) {
        c->state = ST_CLOSING;
        return 1;
    }
    conn_free(c);
    return 1;
}

/* Read what the buffer holds as far as it goes.  The connection may be
 * freed when this returns. */
static void conn_process(struct http_conn *c)
{
    struct http_server *s = c->srv;
    const char *why = NULL;

    for (;;) {
        switch (c->state) {
        case ST_IDLE:
            if (c->out_len - c->out_off > PIPELINE_OUT_LIMIT)
                return; /* the flush comes back here */
            if (c->in_len == 0) {
                if (c->out_len == c->out_off)
                    conn_arm_idle(c);
                conn_need_input(c);
                return;
            }
            if (s->draining) {
                /* let the connection go, the next request unanswered, once
                 * the answers before it have left */
                c->state = ST_CLOSING;
                if (c->out_len == c->out_off)
                    conn_linger(c);
                return;
            }
            c->state = ST_HEAD;
            c->scanned = 0;
            event_base_gettimeofday_cached(s->base, &c->req_start);
            conn_arm_request(c); /* the whole head within client_timeout */
            /* fall through */
        case ST_HEAD: {
            struct http_head h;
            enum http_parse_result pr;
            if (s->scratch_cap < s->lim.max_fields) {
                struct http_field *f = realloc(s->scratch, s->lim.max_fields * sizeof *f);
                if (f == NULL) {
                    conn_refuse(c, 500, "out of memory");
                    return;
                }
                s->scratch = f;
                s->scratch_cap = s->lim.max_fields;
            }
            pr = http_parse_head(c->in, c->in_len, s->lim.max_head, &h, s->scratch,
                                 s->lim.max_fields, &c->scanned, &why);
            switch (pr) {
            case HTTP_PARSE_MORE:
                conn_need_input(c);
                return;
            case HTTP_PARSE_DONE:
                conn_head_done(c, &h);
                if (c->state != ST_BODY && c->state != ST_CHUNKED)
                    return; /* refused */
                continue;
            case HTTP_PARSE_TOO_LARGE: {
                char msg[96];
                if (why != NULL && strstr(why, "header lines") != NULL)
                    snprintf(msg, sizeof msg, "too many header lines (at most %zu)",
                             s->lim.max_fields);
                else
                    snprintf(msg, sizeof msg, "request head too large (at most %zu bytes)",
                             s->lim.max_head);
                conn_refuse(c, 431, msg);
                return;
            }
            case HTTP_PARSE_VERSION:
                conn_refuse(c, 505, why ? why : "unsupported HTTP version");
                return;
            default:
                conn_refuse(c, 400, why ? why : "malformed request");
                return;
            }
        }
        case ST_BODY:
            if (c->in_len - c->head_len < c->body_need) {
                conn_need_input(c);
                return;
            }
            c->consumed = c->head_len + c->body_need;
            conn_dispatch(c, c->body_need ? c->in + c->head_len : NULL, c->body_need);
            return;
        case ST_CHUNKED: {
            enum http_parse_result pr = http_chunked_decode(&c->chunked, c->in, &c->chunk_in,
                                                            c->in_len, &c->chunk_out,
                                                            s->lim.max_body, &why);
            if (pr == HTTP_PARSE_MORE) {
                /* the framing read is of no more use: the next read lands
                 * just past the decoded body, so the buffer holds the body,
                 * not its (unbounded) chunk framing */
                size_t tail = c->in_len - c->chunk_in;
                memmove(c->in + c->chunk_out, c->in + c->chunk_in, tail);
                c->in_len = c->chunk_out + tail;
                c->chunk_in = c->chunk_out;
                conn_need_input(c);
                return;
            }
            if (pr == HTTP_PARSE_TOO_LARGE) {
                char msg[128];
                snprintf(msg, sizeof msg, "request body too large (at most %zu bytes)",
                         s->lim.max_body);
                conn_refuse(c, 413, msg);
                return;
            }
            if (pr != HTTP_PARSE_DONE) {
                conn_refuse(c, 400, why ? why : "malformed chunked body");
                return;
            }
            c->consumed = c->chunk_in;
            conn_dispatch(c, c->in + c->head_len, c->chunk_out - c->head_len);
            return;
        }
        default:
            return;
        }
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    ssize_t n;

    if (c->state == ST_LINGER) {
        char sink[4096];
        n = recv(fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_free(c);
        return;
    }
    if (in_reserve(c) != 0) {
        if (c->state == ST_HANDLING || c->state == ST_CLOSING || c->state == ST_IDLE) {
            /* pipelined bytes fill the buffer (while a request is served,
             * or its answers wait for a slow reader): the rest waits in the
             * socket, read again when more is needed */
            event_del(&c->rd);
            c->rd_on = 0;
            return;
        }
        if (c->state == ST_CHUNKED)
            conn_refuse(c, 413, "request body too large");
        else
            conn_refuse(c, 431, "request head too large");
        return;
    }
    n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n == 0 && c->state != ST_HANDLING) {
        /* the client shut its side: what it sent is still answered */
        c->eof = 1;
        event_del(&c->rd);
        c->rd_on = 0;
        if (c->state != ST_CLOSING)
            conn_process(c);
        return;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        /* gone while its request is served (a half-close cannot be told
         * from a close here), or an error: nobody to answer */
        conn_close(c);
        return;
    }
    if (n < 0)
        return;
    c->in_len += (size_t)n;
    switch (c->state) {
    case ST_BODY:
    case ST_CHUNKED:
        conn_arm_request(c); /* a body may take long; silence may not */
        /* fall through */
    case ST_IDLE:
    case ST_HEAD:
        conn_process(c);
        break;
    default:
        break; /* a pipelined request: read after the answer */
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    switch (c->state) {
    case ST_HEAD:
    case ST_BODY:
    case ST_CHUNKED:
        conn_refuse(c, 408, request_time_left(c) == 0
                                ? "the request was not received in time (client_request_timeout)"
                                : "the request was not received in time (client_timeout)");
        return;
    case ST_IDLE:
        if (c->out_len == c->out_off) {
            conn_free(c);
            return;
        }
        /* fall through - an answer the client does not take */
    default:
        LOG_DEBUG("client connection %d: timed out", c->fd);
        conn_close(c);
        return;
    }
}

/* --- accepting --- */

static void refuse_connection(struct http_server *s, int fd)
{
    char head[256];
    char *body = http_error_json(503, NULL, "the router is at its limit of client connections; retry later");
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n", blen);
    time_t now = time(NULL);

    /* best effort, never blocking: the connection is closed right after */
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n && body != NULL)
        send(fd, body, blen, MSG_NOSIGNAL | MSG_DONTWAIT);
    free(body);
    shutdown(fd, SHUT_WR);
    close(fd);
    if (now != s->refusal_logged) {
        s->refusal_logged = now;
        LOG_WARN("client connection refused: max_client_connections (%d) reached",
                 s->lim.max_connections);
    }
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg);

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;

    if (s->accepting)
        event_add(&s->accept_ev, NULL);
}

static void conn_new(struct http_server *s, int fd)
{
    struct http_conn *c = calloc(1, sizeof *c);

    if (c == NULL) {
        close(fd);
        atomic_fetch_sub(s->nconns, 1);
        return;
    }
    atomic_fetch_add_explicit(&open_connections, 1, memory_order_relaxed);
    c->srv = s;
    c->fd = fd;
    c->state = ST_IDLE;
    c->req.conn = c;
    c->resp_left = -1;
    event_assign(&c->rd, s->base, fd, EV_READ | EV_PERSIST, read_cb, c);
    event_assign(&c->wr, s->base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
    evtimer_assign(&c->timer, s->base, timer_cb, c);
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    event_add(&c->rd, NULL);
    c->rd_on = 1;
    conn_arm_idle(c);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct http_server *s = arg;

    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* out of descriptors or memory: back off instead of spinning
             * on a listener that stays readable */
            time_t now = time(NULL);
            if (now != s->refusal_logged) {
                s->refusal_logged = now;
                LOG_ERROR("cannot accept client connections: %s", strerror(errno));
            }
            struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
            event_del(&s->accept_ev);
            evtimer_add(&s->accept_pause, &tv);
            return;
        }
        int open = atomic_fetch_add(s->nconns, 1) + 1;
        if (s->lim.max_connections > 0 && open > s->lim.max_connections) {
            atomic_fetch_sub(s->nconns, 1);
            atomic_fetch_add_explicit(&refused_connections, 1, memory_order_relaxed);
            refuse_connection(s, fd);
            continue;
        }
        conn_new(s, fd);
    }
}

/* --- the server --- */

struct http_server *http_server_new(struct event_base *base, int listen_fd,
                                    const struct http_limits *lim, atomic_int *nconns,
                                    http_handler handler, void *arg)
{
    struct http_server *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->base = base;
    s->listen_fd = listen_fd;
    s->nconns = nconns;
    s->handler = handler;
    s->arg = arg;
    http_server_set_limits(s, lim);
    evtimer_assign(&s->accept_pause, base, accept_resume_cb, s);
    if (listen_fd < 0)
        return s; /* connections come through http_server_add_connection */
    event_assign(&s->accept_ev, base, listen_fd, EV_READ | EV_PERSIST, accept_cb, s);
    if (event_add(&s->accept_ev, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->accepting = 1;
    return s;
}

void http_server_add_connection(struct http_server *s, int fd)
{
    atomic_fetch_add(s->nconns, 1);
    conn_new(s, fd);
}

void http_server_set_limits(struct http_server *s, const struct http_limits *lim)
{
    static _Thread_local struct timeval plain_client, plain_idle;
    int new_client = s->client_tv == NULL || lim->client_timeout != s->lim.client_timeout;
    int new_idle = s->idle_tv == NULL || lim->idle_timeout != s->lim.idle_timeout;

    s->lim = *lim;
    if (s->lim.max_fields == 0)
        s->lim.max_fields = 1;
    if (s->lim.max_head > UINT32_MAX - 1)
        s->lim.max_head = UINT32_MAX - 1;
    if (s->lim.high_water == 0)
        s->lim.high_water = HTTP_RESP_HIGH_WATER;
    if (new_client)
        s->client_tv = common_tv(s, s->lim.client_timeout, &plain_client);
    if (new_idle)
        s->idle_tv = common_tv(s, s->lim.idle_timeout, &plain_idle);
}

void http_server_drain(struct http_server *s)
{
    struct http_conn *c, *next;

    if (s->accepting) {
        event_del(&s->accept_ev);
        event_del(&s->accept_pause);
        close(s->listen_fd);
        s->listen_fd = -1;
        s->accepting = 0;
    }
    s->draining = 1;
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == ST_IDLE && c->in_len == 0 && c->out_len == c->out_off)
            conn_free(c);
    }
}

void http_server_free(struct http_server *s)
{
    if (s == NULL)
        return;
    s->closing = 1;
    while (s->conns != NULL)
        conn_close(s->conns);
    if (s->accepting)
        event_del(&s->accept_ev);
    event_del(&s->accept_pause);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->scratch);
    free(s);
}
