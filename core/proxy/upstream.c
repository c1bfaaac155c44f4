#include "upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "http_headers.h"
#include "http_parse.h"
#include "log.h"

#define MAX_RESPONSE_HEADERS 128
#define MAX_RESPONSE_HEAD_BYTES (64 * 1024)
#define MAX_DISCARD_BYTES (256 * 1024)
#define EASY_CACHE 64

/* A backend connection libcurl opened, known by its local port: before a
 * request goes out on it (reused from the pool), the router looks whether
 * the backend sent anything unasked meanwhile. */
struct conn_fd {
    int fd;
    int retired;              /* not to carry another request */
    int known;                /* the addresses below were looked up */
    unsigned short port;      /* local port */
    unsigned short peer_port;
    unsigned char peer[16];   /* the backend's address (4 or 16 bytes) */
};

struct upstream_pool {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    CURL *easy_cache[EASY_CACHE]; /* reset handles, reused to save setup */
    size_t neasy;
    int reuse_easy;               /* libcurl >= 8.1.0 (see upstream_pool_new) */
    int (*connect)(void *arg);    /* tests: connections come from here */
    void *connect_arg;
    struct conn_fd *conns;        /* every open backend socket */
    size_t nconns, conns_cap;
};

struct upstream_headers {
    size_t n, cap;
    char *text, *end;          /* free room for lines, after nodes[cap] */
    struct curl_slist nodes[];
};

struct upstream_xfer {
    struct upstream_pool *pool;
    CURL *easy;
    struct upstream_headers *req_headers;
    const struct upstream_ops *ops;
    void *arg;
    struct event timer;       /* first-byte, then idle timeout */
    struct timeval idle_tv;
    int status;
    int minor;                /* HTTP/1.<minor> of the head being read */
    int in_head;              /* a status line came; its blank line not yet */
    int head_done;
    const char *malformed;    /* why the answer was refused, or NULL */
    struct http_framing framing;
    int timed_out;
    int sent;                 /* the request went out once */
    int resend;               /* curl wanted to send it again: stopped */
    int stale;                /* the pooled connection had unasked bytes:
                                 the request did not go out on it */
    int restarted;            /* ... and went again on a new connection */
    int own_tls;              /* TLS options of its own: the handle is not
                                 kept for another transfer */
    int https;                /* TLS: the socket carries records (session
                                 tickets after the handshake), not HTTP
                                 bytes, so a peek at it tells nothing */
    enum upstream_body_mode mode;
    size_t discarded;
    /* the response head being read: name, NUL, value, NUL, for each of
     * nheaders fields, back to back; freed once on_head has seen it */
    char *head;
    size_t head_len, head_cap;
    size_t nheaders;
};

/* One event per socket curl watches, changed in place when curl changes
 * its interest (no malloc, and no epoll change when it stays the same). */
struct sock_watch {
    struct event ev;
    short kind;
};

static void check_multi_info(struct upstream_pool *p);

static struct timeval seconds_tv(double s)
{
    struct timeval tv;
    if (s < 0)
        s = 0;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

const char *upstream_result_name(enum upstream_result r)
{
    switch (r) {
    case UP_OK: return "ok";
    case UP_CONNECT: return "connect-error";
    case UP_TIMEOUT: return "timeout";
    case UP_CLOSED: return "closed";
    case UP_ABORTED: return "aborted";
    case UP_MALFORMED: return "malformed";
    case UP_ERROR: return "error";
    }
    return "?";
}

/* --- libevent <-> libcurl glue --- */

static void socket_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_pool *p = arg;
    int running = 0;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                 ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    curl_multi_socket_action(p->multi, fd, action, &running);
    check_multi_info(p);
}

static void multi_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_pool *p = arg;
    int running = 0;

    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(p);
}

static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                          void *socketp)
{
    struct upstream_pool *p = userp;
    struct sock_watch *w = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            event_del(&w->ev);
            free(w);
            curl_multi_assign(p->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (w == NULL) {
        w = calloc(1, sizeof *w);
        if (w == NULL)
            return -1;
        curl_multi_assign(p->multi, s, w);
    } else if (w->kind == kind) {
        return 0;
    } else {
        event_del(&w->ev);
    }
    w->kind = kind;
    if (event_assign(&w->ev, p->base, s, kind, socket_event_cb, p) != 0 ||
        event_add(&w->ev, NULL) != 0)
        return -1;
    return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct upstream_pool *p = userp;

    if (timeout_ms < 0) {
        evtimer_del(p->timer);
    } else if (timeout_ms == 0) {
        /* "now" (a transfer was just added): run in this turn of the loop,
         * not the next, which would cost an epoll_wait per request */
        evtimer_del(p->timer);
        event_active(p->timer, EV_TIMEOUT, 0);
    } else {
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        evtimer_add(p->timer, &tv);
    }
    return 0;
}

struct upstream_pool *upstream_pool_new(struct event_base *base,
                                        long max_connections)
{
    struct upstream_pool *p = calloc(1, sizeof *p);

    if (p == NULL)
        return NULL;
    p->base = base;
    /* libcurl before 8.1.0 reads a freed header buffer when a reused easy
     * handle meets a folded header line (curl #11101): new handles then */
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    p->reuse_easy = v != NULL && v->version_num >= 0x080100;
    p->multi = curl_multi_init();
    p->timer = evtimer_new(base, multi_timer_cb, p);
    if (p->multi == NULL || p->timer == NULL) {
        upstream_pool_free(p);
        return NULL;
    }
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, max_connections);
    return p;
}

void upstream_pool_free(struct upstream_pool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->neasy; i++)
        curl_easy_cleanup(p->easy_cache[i]);
    if (p->multi != NULL)
        curl_multi_cleanup(p->multi);
    if (p->timer != NULL)
        event_free(p->timer);
    free(p->conns);
    free(p);
}

/* --- one transfer --- */

static void xfer_free(struct upstream_xfer *x)
{
    struct upstream_pool *p = x->pool;

    curl_multi_remove_handle(p->multi, x->easy);
    /* kept as configured: the next transfer sets what is its own */
    if (p->reuse_easy && p->neasy < EASY_CACHE && !x->own_tls) {
        p->easy_cache[p->neasy++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    free(x->req_headers);
    event_del(&x->timer);
    free(x->head);
    free(x);
}

/* --- request headers --- */

size_t upstream_header_size(const char *name, const char *value)
{
    return strlen(name) + (value != NULL ? strlen(value) + 2 : 0) + 1;
}

struct upstream_headers *upstream_headers_new(size_t lines, size_t bytes)
{
    struct upstream_headers *h = malloc(sizeof *h + lines * sizeof h->nodes[0] + bytes);

    if (h == NULL)
        return NULL;
    h->n = 0;
    h->cap = lines;
    h->text = (char *)&h->nodes[lines];
    h->end = h->text + bytes;
    return h;
}

int upstream_headers_add(struct upstream_headers *h, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = value != NULL ? strlen(value) : 0;
    size_t need = nl + (value != NULL ? vl + 2 : 0) + 1;
    char *line = h->text;

    if (h->n == h->cap || need > (size_t)(h->end - h->text))
        return -1;
    memcpy(line, name, nl);
    if (value != NULL && vl == 0) {
        line[nl++] = ';'; /* curl's way to send an empty value */
    } else if (value != NULL) {
        line[nl++] = ':';
        line[nl++] = ' ';
        memcpy(line + nl, value, vl);
        nl += vl;
    }
    line[nl] = '\0';
    h->text += need;
    h->nodes[h->n].data = line;
    h->nodes[h->n].next = NULL;
    if (h->n > 0)
        h->nodes[h->n - 1].next = &h->nodes[h->n];
    h->n++;
    return 0;
}

void upstream_headers_free(struct upstream_headers *h)
{
    free(h);
}

/* --- response heads --- */

static void clear_headers(struct upstream_xfer *x)
{
    x->head_len = 0;
    x->nheaders = 0;
}

/* Keep `s[0..n)` NUL-terminated in the head buffer; -1 when it is full. */
static int head_keep(struct upstream_xfer *x, const char *s, size_t n)
{
    size_t at = x->head_len;

    if (at + n + 1 > x->head_cap) {
        size_t cap = x->head_cap ? x->head_cap : 512;
        while (cap < at + n + 1)
            cap *= 2;
        if (cap > MAX_RESPONSE_HEAD_BYTES)
            return -1;
        char *nb = realloc(x->head, cap);
        if (nb == NULL)
            return -1;
        x->head = nb;
        x->head_cap = cap;
    }
    memcpy(x->head + at, s, n);
    x->head[at + n] = '\0';
    x->head_len = at + n + 1;
    return 0;
}

static void xfer_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_xfer *x = arg;
    const struct upstream_ops *ops = x->ops;
    void *cb_arg = x->arg;
    const char *what_timed = x->head_done ? "idle timeout (no body bytes)"
                                          : "no response headers in time";

    xfer_free(x);
    ops->on_done(cb_arg, UP_TIMEOUT, what_timed);
}

/* The answer is refused: the transfer ends with UP_MALFORMED. */
static size_t refuse(struct upstream_xfer *x, const char *why)
{
    x->malformed = why;
    return 0;
}

/* The blank line ended a final head: check its framing, hand it over. */
static size_t head_complete(struct upstream_xfer *x, size_t len)
{
    struct upstream_header h[MAX_RESPONSE_HEADERS];
    const char *f = x->head, *bad;
    long long length = -1;

    if ((bad = http_framing_error(&x->framing)) != NULL)
        return refuse(x, bad);
    if (x->framing.transfer_encodings > 0 && x->minor == 0)
        return refuse(x, "Transfer-Encoding in an HTTP/1.0 answer");
    if (x->framing.content_lengths > 0)
        length = x->framing.length;
    for (size_t i = 0; i < x->nheaders; i++) {
        h[i].name = f;
        f += strlen(f) + 1;
        h[i].value = f;
        f += strlen(f) + 1;
    }
    x->head_done = 1;
    struct upstream_response r = { x->status, h, x->nheaders, length };
    x->mode = x->ops->on_head(x->arg, &r);
    /* a held stream keeps no copy of its head */
    free(x->head);
    x->head = NULL;
    x->head_len = x->head_cap = 0;
    if (x->mode == UP_BODY_ABORT)
        return 0;
    evtimer_add(&x->timer, &x->idle_tv);
    return len;
}

/*
 * Header lines arrive one by one, each checked as http_parse checks a
 * client's (see upstream_start); the blank line ends a head.  Lines after
 * the final head are a chunked body's trailer fields: dropped.
 */
static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
    struct upstream_xfer *x = arg;
    size_t len = size * n, l = len, nl, voff, vl;
    const char *why;

    if (x->head_done)
        return len;
    /* one line ending: LF or CRLF; any other CR is refused below */
    if (l > 0 && data[l - 1] == '\n')
        l--;
    if (l > 0 && data[l - 1] == '\r')
        l--;
    if (!x->in_head) {
        int status = http_parse_status_line(data, l, &x->minor, &why);
        if (status < 0)
            return refuse(x, why);
        if (status == 101)
            return refuse(x, "101 Switching Protocols to a request that asked for no upgrade");
        if (status < 200 && status != 100 && status != 102 && status != 103)
            return refuse(x, "an unknown 1xx interim answer");
        clear_headers(x);
        memset(&x->framing, 0, sizeof x->framing);
        x->status = status;
        x->in_head = 1;
        return len;
    }
    if (l == 0) {
        x->in_head = 0;
        if (x->status < 200)
            return len; /* interim answer: the real head follows */
        return head_complete(x, len);
    }
    if (http_parse_field_line(data, l, &nl, &voff, &vl, &why) != 0)
        return refuse(x, why);
    if (x->nheaders == MAX_RESPONSE_HEADERS)
        return refuse(x, "more than 128 header lines");
    if (head_keep(x, data, nl) != 0 || head_keep(x, data + voff, vl) != 0)
        return refuse(x, "response head over 64 KiB");
    const char *value = x->head + x->head_len - vl - 1;
    http_framing_add(&x->framing, value - nl - 1, value);
    x->nheaders++;
    return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
    struct upstream_xfer *x = arg;
    size_t len = size * n;

    if (!x->head_done) /* bytes that no checked head announced */
        return refuse(x, "body bytes before a response head");
    if (x->mode == UP_BODY_DISCARD) {
        x->discarded += len;
        return x->discarded > MAX_DISCARD_BYTES ? 0 : len;
    }
    int rc = x->ops->on_body(x->arg, data, len);
    if (rc < 0)
        return 0; /* curl ends the transfer: a write error */
    if (rc > 0) {
        evtimer_del(&x->timer); /* a paused stream is not idle */
        return CURL_WRITEFUNC_PAUSE;
    }
    evtimer_add(&x->timer, &x->idle_tv);
    return len;
}

/* --- the backend sockets libcurl opens --- */

static void conn_track(struct upstream_pool *p, int fd)
{
    if (p->nconns == p->conns_cap) {
        size_t cap = p->conns_cap ? p->conns_cap * 2 : 16;
        struct conn_fd *n = realloc(p->conns, cap * sizeof *n);
        if (n == NULL)
            return; /* untracked: only the unasked-bytes check is missed */
        p->conns = n;
        p->conns_cap = cap;
    }
    memset(&p->conns[p->nconns], 0, sizeof p->conns[0]);
    p->conns[p->nconns++].fd = fd;
}

static void conn_untrack(struct upstream_pool *p, int fd)
{
    for (size_t i = 0; i < p->nconns; i++)
        if (p->conns[i].fd == fd) {
            p->conns[i] = p->conns[--p->nconns];
            return;
        }
}

/* A socket address's port and address bytes. */
static unsigned short addr_parts(const struct sockaddr_storage *ss, unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        memcpy(addr, &a->sin6_addr, 16);
        return ntohs(a->sin6_port);
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    memcpy(addr, &a->sin_addr, 4);
    return ntohs(a->sin_port);
}

/* The tracked socket of the connection (local port, backend address and
 * port) libcurl is about to send on, or -1.  A socket's addresses are
 * looked up once (its first request), then kept: the same local port may
 * serve connections to several backends. */
static struct conn_fd *conn_of(struct upstream_pool *p, const char *peer_ip, int peer_port,
                               int local_port)
{
    unsigned char want[16] = { 0 };

    if (inet_pton(strchr(peer_ip, ':') ? AF_INET6 : AF_INET, peer_ip, want) != 1)
        return NULL;
    for (size_t i = 0; i < p->nconns; i++) {
        struct conn_fd *c = &p->conns[i];
        if (!c->known) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            unsigned char mine[16];
            if (getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0)
                continue;
            c->port = addr_parts(&ss, mine);
            len = sizeof ss;
            if (getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0)
                continue; /* not connected yet */
            c->peer_port = addr_parts(&ss, c->peer);
            c->known = 1;
        }
        /* a test's connector hands out sockets to anywhere: their local
         * port says which they are */
        if (c->port == (unsigned short)local_port &&
            (p->connect != NULL ||
             (c->peer_port == (unsigned short)peer_port && memcmp(c->peer, want, 16) == 0)))
            return c;
    }
    return NULL;
}

/* Nothing waits to be read on an idle connection: no bytes, no end, no
 * error (what a connection fit to carry a request looks like). */
static int conn_quiet(const struct conn_fd *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static curl_socket_t open_socket_cb(void *arg, curlsocktype purpose,
                                    struct curl_sockaddr *address)
{
    struct upstream_pool *p = arg;
    int fd = p->connect != NULL ? p->connect(p->connect_arg)
                                : socket(address->family, address->socktype | SOCK_CLOEXEC,
                                         address->protocol);

    if (fd < 0)
        return CURL_SOCKET_BAD;
    conn_track(p, fd);
    return fd;
}

static int close_socket_cb(void *arg, curl_socket_t fd)
{
    conn_untrack(arg, fd);
    return close(fd);
}

/*
 * libcurl sends a request again, on a fresh connection, when a reused one
 * closed before any answer.  The backend may well have got it (an inference
 * is not idempotent) and just failed; whether and where to retry is the
 * dispatcher's call, counted as an attempt.  So the request goes out once.
 */
static int prereq_cb(void *arg, char *primary_ip, char *local_ip,
                     int primary_port, int local_port)
{
    struct upstream_xfer *x = arg;

    if (x->sent) {
        x->resend = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    /* Bytes (or the end) waiting on a connection before its request went
     * out are an answer nobody asked for: on a reused connection they would
     * be read as this request's answer.  The request does not go out on
     * it; libcurl closes it, and the request goes again on a new one. */
    struct conn_fd *conn = conn_of(x->pool, primary_ip, primary_port, local_port);
    if (conn != NULL && (conn->retired || (!x->https && !conn_quiet(conn)))) {
        x->stale = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    x->sent = 1;
    return CURL_PREREQFUNC_OK;
}

static enum upstream_result classify(CURLcode rc, const struct upstream_xfer *x)
{
    if (x->resend || x->stale)
        return UP_CLOSED;
    if (x->malformed != NULL)
        return UP_MALFORMED;
    switch (rc) {
    case CURLE_OK:
        return UP_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return UP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return UP_TIMEOUT;
    case CURLE_WRITE_ERROR:
        return UP_ABORTED;
    case CURLE_WEIRD_SERVER_REPLY:   /* e.g. no status line (HTTP/0.9) */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING: /* e.g. a malformed chunk */
        return UP_MALFORMED;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return UP_CLOSED;
    default:
        return UP_ERROR;
    }
}

/* A connection left in libcurl's pool after a whole answer must carry
 * nothing more.  After a chunked body libcurl drops bytes that followed the
 * last chunk in the same read ("Leftovers after chunking") and keeps the
 * connection, so what the backend sends next would be read as the next
 * request's answer: such a connection is retired (never sent on again).
 * So is one on which bytes already wait. */
static void retire_if_unsound(struct upstream_xfer *x)
{
    long local_port = 0, peer_port = 0;
    char *peer_ip = NULL;
    struct conn_fd *conn;

    if (curl_easy_getinfo(x->easy, CURLINFO_LOCAL_PORT, &local_port) != CURLE_OK ||
        curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_IP, &peer_ip) != CURLE_OK ||
        curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_PORT, &peer_port) != CURLE_OK ||
        peer_ip == NULL ||
        (conn = conn_of(x->pool, peer_ip, (int)peer_port, (int)local_port)) == NULL)
        return;
    if (x->framing.transfer_encodings == 0 && (x->https || conn_quiet(conn)))
        return; /* nothing waits (libcurl checks a TLS one itself): fit for reuse */
    /* it stays in libcurl's cache (bounded) until picked: then the request
     * does not go out on it (prereq_cb), libcurl closes it, and the request
     * goes on a new connection */
    conn->retired = 1;
}

static void check_multi_info(struct upstream_pool *p)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct upstream_xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = msg->data.result;
        if (x->stale && !x->restarted) {
            /* nothing went out: once more, on a new connection, not an
             * attempt of its own */
            CURL *e = x->easy;
            x->stale = 0;
            x->restarted = 1;
            curl_multi_remove_handle(p->multi, e);
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
            if (curl_multi_add_handle(p->multi, e) == CURLM_OK)
                continue;
            x->stale = 1; /* could not: the attempt fails, unsent */
        }
        enum upstream_result res = classify(rc, x);
        if (res == UP_OK)
            retire_if_unsound(x);
        const struct upstream_ops *ops = x->ops;
        void *arg = x->arg;
        const char *detail = res == UP_OK ? ""
            : x->resend ? "the connection closed before an answer"
            : x->stale ? "the backend sent bytes nobody asked for"
            : x->malformed ? x->malformed : curl_easy_strerror(rc);
        xfer_free(x); /* msg is invalid from here on */
        ops->on_done(arg, res, detail);
    }
}

/* --- connections from a test's connector --- */

static int sockopt_cb(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

void upstream_pool_set_connector(struct upstream_pool *p, int (*connect)(void *arg),
                                 void *arg)
{
    p->connect = connect;
    p->connect_arg = arg;
}

/* libcurl's built-in CA bundle (the system's), for transfers without a
 * ca_file of their own. */
static const char *default_ca_file(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v != NULL ? v->cainfo : NULL;
}

/* A handle with the options every transfer shares, set once. */
static CURL *easy_new(void)
{
    CURL *e = curl_easy_init();

    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* backends are addressed directly: no *_proxy environment lookup on
     * every transfer, and no surprise proxy in front of a GPU node */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    return e;
}

static void set_blob(CURL *e, CURLoption opt, const char *pem)
{
    struct curl_blob blob = { (void *)pem, strlen(pem), CURL_BLOB_COPY };
    curl_easy_setopt(e, opt, &blob);
}

/* A transfer's own TLS settings; its handle is then not reused, so no
 * other transfer inherits them. */
static void set_tls(struct upstream_xfer *x, const struct upstream_tls *t)
{
    CURL *e = x->easy;

    x->own_tls = 1;
    if (t->ca_pem != NULL)
        set_blob(e, CURLOPT_CAINFO_BLOB, t->ca_pem);
    if (t->cert_file != NULL)
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    if (t->key_file != NULL)
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    if (t->cert_pem != NULL)
        set_blob(e, CURLOPT_SSLCERT_BLOB, t->cert_pem);
    if (t->key_pem != NULL)
        set_blob(e, CURLOPT_SSLKEY_BLOB, t->key_pem);
    if (t->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

struct upstream_xfer *upstream_start(struct upstream_pool *p,
                                     const struct upstream_request *req,
                                     const struct upstream_ops *ops, void *arg)
{
    struct upstream_xfer *x = calloc(1, sizeof *x);
    CURL *e;

    if (x == NULL) {
        free(req->headers);
        return NULL;
    }
    x->pool = p;
    x->ops = ops;
    x->arg = arg;
    x->req_headers = req->headers;
    x->idle_tv = seconds_tv(req->idle_timeout);
    e = p->neasy > 0 ? p->easy_cache[--p->neasy] : easy_new();
    x->easy = e;
    evtimer_assign(&x->timer, p->base, xfer_timeout_cb, x);
    if (e == NULL) {
        free(x->req_headers);
        free(x);
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    x->https = strncasecmp(req->url, "https:", 6) == 0;
    if (req->body != NULL && (!req->get || req->body_len > 0)) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (req->get)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers && req->headers->n ? req->headers->nodes : NULL);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    /* always set: handles are reused, and curl keeps one buffer per handle */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, req->recv_buffer > 0 ? req->recv_buffer
                                                                : (long)CURL_MAX_WRITE_SIZE);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(req->connect_timeout * 1000));
    /* handles are reused: always say which CA bundle, the default included */
    curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file ? req->ca_file : default_ca_file());
    if (req->tls != NULL)
        set_tls(x, req->tls);
    /* every backend socket is the pool's to know (see prereq_cb) */
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, p);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, p);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 0L);
    if (p->connect != NULL)
        curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
    struct timeval first = seconds_tv(req->first_byte_timeout);
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK ||
        evtimer_add(&x->timer, &first) != 0) {
        xfer_free(x);
        return NULL;
    }
    return x;
}

void upstream_cancel(struct upstream_xfer *x)
{
    if (x != NULL)
        xfer_free(x);
}

void upstream_resume(struct upstream_xfer *x)
{
    evtimer_add(&x->timer, &x->idle_tv);
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
}
