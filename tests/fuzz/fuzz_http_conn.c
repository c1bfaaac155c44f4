/*
 * Fuzz core/http/http_conn.c, the router's HTTP/1.1 server for its clients, end
 * to end over a real socket: reading heads and bodies (Content-Length,
 * chunked, Expect: 100-continue), pipelining, keep-alive, its own refusals,
 * the answer writer (Content-Length, chunked and close-delimited answers,
 * the streamed "SSE relay" path: start, body pieces, finish or abort),
 * answers given later from another callback, high-water pauses, graceful
 * drain, half-closes, and closing.
 *
 * Per input: a fresh event_base, a socketpair (both ends non-blocking), a
 * server with small limits serving one end (http_server_add_connection);
 * the harness is the client on the other end.  A second client connects
 * and sends nothing: it must be left alone (closed by a drain only).
 * FUZZ_HTTP_CONN_SHOW=1 prints what the handler got and the client read.
 * Input:
 *
 *   byte 0: bits 0-1 how the handler answers: 0 http_resp_send (JSON), 1 a
 *           streamed answer from the handler, 2 a streamed answer later
 *           (from event_base_once callbacks, as proxied answers come),
 *           3 a mix per request; bits 2-3 the relay's piece size (1, 7, 64,
 *           4096); bit 4 abort request SEL halfway (http_resp_abort);
 *           bit 5 http_resp_close_after on request SEL; bit 6 the client
 *           half-closes (SHUT_WR) after its bytes; bit 7 a slow client
 *           (small reads, a small socket buffer on the server's end)
 *   byte 1: bits 0-1 the client's bytes go in 1, 2 or 3 pieces, bits 2-4
 *           where they are cut; bit 5 a 64-byte high-water mark (pause a
 *           later answer until `drained`); bit 6 a later answer goes one
 *           step (head, a piece, the end) per turn of the loop; bit 7 the
 *           streamed answer's length is told (Content-Length) rather than
 *           chunked (or close-delimited for HTTP/1.0)
 *   byte 2: bits 0-2 SEL, a request number; bit 3 http_server_drain after
 *           the first piece; bit 4 request SEL is never finished (a hung
 *           backend: http_server_free must tell its owner); bit 5 `drained`
 *           runs the next step at once; bits 6-7 the status of SEL's answer
 *           (200, 201, 204, 304)
 *   byte 3: bits 0-3 the answer is the payload repeated 1-16 times (an
 *           answer larger than its request); bits 4-5 a later answer waits
 *           0-3 turns of the loop; bit 6 the handler sets its own Date;
 *           bit 7 the status applies to every request, not just SEL
 *   then:   what the client sends.
 *
 * A streamed answer relays the request's body (or, without one, an SSE-like
 * "data: TARGET" line) in pieces, as a relay copies a backend's events.
 *
 * Invariants (a small response parser of its own reads what the client
 * got; the requests are checked against a model that reads the client's
 * bytes at once with http_parse_head / http_chunked_decode):
 *   - the bytes are a sequence of well-formed HTTP/1.1 answers: status line,
 *     header lines, a blank line, a body framed as its headers say, with
 *     exactly the headers the server and the handler put there (an unsafe
 *     header value or a header after the start is refused: no injection);
 *   - at most one 100 Continue before an answer, only for a request that
 *     asked for it and has a body;
 *   - the handler's answers come in request order (X-Seq), each with the
 *     status, Connection, Content-Length / Transfer-Encoding the request and
 *     the handler call for; the decoded body is exactly what the handler
 *     passed to http_resp_body (nothing for HEAD, 204, 304); every answer
 *     the handler finished is complete on the wire; an aborted one is cut
 *     at a chunk boundary (or short of its Content-Length) and closes the
 *     connection; one whose client left may be cut anywhere, but last;
 *   - an answer with Connection: close (or cut, or close-delimited) is the
 *     last, and the connection is then closed by the server; it is closed
 *     for no other reason than those, a half-close, or a drain;
 *   - the server's own refusals have Connection: close, an X-Request-Id,
 *     a JSON body {"error":{..,"code":STATUS}} (none for HEAD), are last,
 *     and have the status the model gives for that request;
 *   - the handler gets exactly the requests the model reads (method,
 *     target, version, body), in order; all of them, up to the first that
 *     closes the connection, unless the client half-closed, the server was
 *     drained, or a request hung;
 *   - one request at a time; `gone` only for a request not finished, and
 *     http_server_free calls it for every request in flight; no later
 *     answer is left waiting (stalled) once the loop is quiet; the count of
 *     open connections is back to 0.
 */
#define _GNU_SOURCE /* memmem, strndup */
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <linux/sockios.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "http_answers.h"
#include "http_conn.h"
#include "http_headers.h"
#include "http_parse.h"
#include "log.h"

#define MAX_HEAD 2048
#define MAX_FIELDS 16
#define MAX_BODY 4096
#define NPARAM 4
#define OUT_MAX (64u << 20) /* what the client may receive */
#define SLOW_READ 1024      /* a slow client's read per turn */
#define SLOW_SNDBUF 4096
#define IDLE_TURNS 4        /* turns without progress: quiet */
#define MAX_TURNS 200000
#define MAX_PIECES 256      /* per answer, in one go */
#define MAX_SPREAD 32       /* per answer, one per turn */
#define OWN_DATE "Thu, 01 Jan 1970 00:00:00 GMT"

enum { ANS_JSON, ANS_STREAM, ANS_LATER };

struct params {
    int mode;
    size_t piece;
    int abort, close_sel, shut, slow;
    int npieces, split;
    int small_hw, spread, known;
    size_t sel;
    int drain, hang, sync_drain, status;
    int amp, delay, own_date, status_all;
};

/* A request the handler got, and what it answered. */
struct rec {
    char *method, *target, *echo;
    struct bytes body;
    int minor, is_head, keep_alive;
    int mode, status, close_after, own_date;
    long long length;    /* passed to http_resp_start */
    struct bytes passed; /* passed to http_resp_body */
    int started, hdr_close, finished, aborted, gone, gone_in_free, closes_after;
    int seen_complete;   /* complete on the wire */
};

/* The answer being built for a request (every request has one). */
struct ctx {
    struct ctx *next;
    struct state *st;
    size_t rec;
    struct http_req *r;
    int later, dead, done, hung, scheduled, paused, delay;
    int started;
    char *payload;
    size_t payload_len, pos, piece, pieces_sent, cut_at;
    int abort, hang;
};

struct state {
    struct event_base *base;
    struct http_server *srv;
    int client;
    struct params P;
    struct rec *recs;
    size_t nrecs, reccap;
    struct ctx *ctxs;
    int draining, in_free;
    size_t scheduled;     /* event_base_once callbacks not run yet */
    unsigned long events; /* callbacks into the harness: progress */
    struct bytes out;     /* what the client received */
    int eof, eof_in_loop;
    size_t wrote;
    int write_closed, write_stalled;
};

/* --- the model: the requests in the client's bytes, read at once --- */

struct mreq {
    char *method, *target, *reqid;
    int minor, is_head, expect100, head_done, incomplete;
    struct bytes body;
    int refusal; /* the server's status for it, 0 when dispatched */
};

struct model {
    struct mreq *q;
    size_t n, cap;
    size_t ndispatch; /* requests the handler should get */
};

static struct mreq *model_add(struct model *m)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        m->q = realloc(m->q, m->cap * sizeof *m->q);
        FUZZ_CHECK(m->q != NULL, "out of memory");
    }
    memset(&m->q[m->n], 0, sizeof m->q[m->n]);
    return &m->q[m->n++];
}

static int ref_length(const char *v, size_t *out)
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

static void model_run(struct model *m, const uint8_t *in, size_t len)
{
    char *buf = malloc(len + 1);
    size_t pos = 0;

    FUZZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, in, len);
    while (pos < len) {
        char *b = buf + pos;
        size_t bl = len - pos, scanned = 0, consumed, need = 0;
        struct http_head h;
        struct http_field f[MAX_FIELDS];
        struct http_framing fr;
        const char *why = NULL, *te, *cl, *expect, *id;
        enum http_parse_result pr =
            http_parse_head(b, bl, MAX_HEAD, &h, f, MAX_FIELDS, &scanned, &why);
        struct mreq *q;

        if (pr == HTTP_PARSE_MORE)
            break;
        q = model_add(m);
        if (pr == HTTP_PARSE_TOO_LARGE) {
            q->refusal = 431;
            break;
        }
        if (pr == HTTP_PARSE_VERSION) {
            q->refusal = 505;
            break;
        }
        if (pr != HTTP_PARSE_DONE) {
            q->refusal = 400;
            break;
        }
        q->head_done = 1;
        q->method = strdup(b + h.method_off);
        q->target = strdup(b + h.target);
        q->minor = h.minor;
        q->is_head = h.method == HTTP_METHOD_HEAD;
        id = http_head_field(b, f, h.nfields, "X-Request-Id");
        q->reqid = id ? strdup(id) : NULL;
        memset(&fr, 0, sizeof fr);
        for (size_t i = 0; i < h.nfields; i++)
            http_framing_add(&fr, b + f[i].name, b + f[i].value);
        if (http_framing_error(&fr) != NULL) {
            q->refusal = 400;
            break;
        }
        /* RFC 9112 3.2: Host once in HTTP/1.1, at most once in 1.0 */
        size_t hosts = 0;
        for (size_t i = 0; i < h.nfields; i++)
            hosts += strcasecmp(b + f[i].name, "Host") == 0;
        if (hosts > 1 || (hosts == 0 && h.minor >= 1)) {
            q->refusal = 400;
            break;
        }
        te = http_head_field(b, f, h.nfields, "Transfer-Encoding");
        cl = http_head_field(b, f, h.nfields, "Content-Length");
        expect = http_head_field(b, f, h.nfields, "Expect");
        if (te != NULL) {
            struct http_chunked c;
            size_t cin = h.head_len, cout = h.head_len;
            if (h.minor == 0) {
                q->refusal = 400;
                break;
            }
            q->expect100 = expect != NULL && strcasecmp(expect, "100-continue") == 0;
            memset(&c, 0, sizeof c);
            pr = http_chunked_decode(&c, b, &cin, bl, &cout, MAX_BODY, &why);
            if (pr == HTTP_PARSE_MORE) {
                q->incomplete = 1;
                break;
            }
            if (pr != HTTP_PARSE_DONE) {
                q->refusal = pr == HTTP_PARSE_TOO_LARGE ? 413 : 400;
                break;
            }
            bytes_add(&q->body, b + h.head_len, cout - h.head_len);
            consumed = cin;
        } else {
            if (cl != NULL) {
                if (ref_length(cl, &need) != 0) {
                    q->refusal = 400;
                    break;
                }
                if (need > MAX_BODY) {
                    q->refusal = 413;
                    break;
                }
            }
            q->expect100 = expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
                           h.minor >= 1 && need > 0;
            if (bl - h.head_len < need) {
                q->incomplete = 1;
                break;
            }
            bytes_add(&q->body, b + h.head_len, need);
            consumed = h.head_len + need;
        }
        m->ndispatch++;
        pos += consumed;
    }
    free(buf);
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->q[i].method);
        free(m->q[i].target);
        free(m->q[i].reqid);
        free(m->q[i].body.p);
    }
    free(m->q);
}

/* --- the handler and its later answers --- */

static void gone_cb(void *arg)
{
    struct ctx *c = arg;
    struct rec *rc = &c->st->recs[c->rec];

    FUZZ_CHECK(!c->dead && !c->done, "gone for request %zu: dead %d, finished %d", c->rec,
               c->dead, c->done);
    c->dead = 1;
    c->r = NULL; /* dead: not to be touched */
    rc->gone = 1;
    rc->gone_in_free = c->st->in_free;
    c->st->events++;
}

static void ctx_step(struct ctx *c, int all);

static void drained_cb(void *arg)
{
    struct ctx *c = arg;

    FUZZ_CHECK(!c->dead && !c->done, "drained for request %zu, dead %d, finished %d", c->rec,
               c->dead, c->done);
    c->st->events++;
    if (c->paused) {
        c->paused = 0;
        if (c->st->P.sync_drain && !c->hung)
            ctx_step(c, 0); /* from inside the server's flush */
    }
}

static int no_framing(int status)
{
    return status == 204 || status == 304;
}

/* Start the answer: headers, some that must be refused, the status line. */
static void ctx_start(struct ctx *c)
{
    struct state *st = c->st;
    struct rec *rc = &st->recs[c->rec];
    struct http_req *r = c->r;
    char seq[32];

    snprintf(seq, sizeof seq, "%zu", c->rec);
    FUZZ_CHECK(http_resp_header(r, "X-Seq", seq) == 0, "X-Seq refused");
    FUZZ_CHECK(http_resp_header(r, "X-Target", rc->target) == 0, "X-Target refused");
    if (rc->echo != NULL)
        FUZZ_CHECK(http_resp_header(r, "X-Echo", rc->echo) == 0, "X-Echo '%s' refused", rc->echo);
    FUZZ_CHECK(http_resp_header(r, "X-Bad", "a\r\nInjected: 1") == -1, "CR LF in a value taken");
    FUZZ_CHECK(http_resp_header(r, "X-Bad", "a\nb") == -1, "LF in a value taken");
    FUZZ_CHECK(http_resp_header(r, "Bad Name", "1") == -1, "a name with a space taken");
    FUZZ_CHECK(http_resp_header(r, "", "1") == -1, "an empty name taken");
    if (rc->own_date)
        FUZZ_CHECK(http_resp_header(r, "Date", OWN_DATE) == 0, "Date refused");
    if (rc->close_after)
        http_resp_close_after(r);
    rc->hdr_close = rc->close_after || !rc->keep_alive || st->draining ||
                    (!no_framing(rc->status) && rc->length < 0 && rc->minor == 0);
    rc->started = 1;
    c->started = 1;
    if (rc->mode == ANS_JSON) {
        http_resp_send(r, rc->status, "application/json", c->payload, c->payload_len);
        bytes_add(&rc->passed, c->payload, c->payload_len);
        rc->closes_after = rc->hdr_close || st->draining;
        rc->finished = 1;
        c->done = 1;
        return;
    }
    http_resp_start(r, rc->status, rc->length);
    FUZZ_CHECK(http_resp_header(r, "X-Late", "1") == -1, "a header after the start taken");
}

/* One step of the answer (all of it when `all`): the start, one piece of
 * the body, or the end. */
static void ctx_step(struct ctx *c, int all)
{
    struct state *st = c->st;
    struct rec *rc = &st->recs[c->rec];
    struct http_req *r = c->r;

    FUZZ_CHECK(!c->dead && !c->done && !c->hung, "a step of a dead answer");
    st->events++;
    if (!c->started) {
        if (c->hang && rc->mode == ANS_JSON) {
            c->hung = 1; /* the backend never answers */
            return;
        }
        ctx_start(c);
        if (c->done || !all)
            return;
    }
    while (c->pos < c->payload_len) {
        size_t n = c->payload_len - c->pos;
        if (c->pieces_sent == c->cut_at && c->hang) {
            c->hung = 1; /* the backend stops sending mid-answer */
            return;
        }
        if (c->pieces_sent == c->cut_at && c->abort) {
            rc->aborted = 1;
            rc->closes_after = 1;
            c->done = 1;
            http_resp_abort(r); /* the backend died mid-answer */
            return;
        }
        if (n > c->piece)
            n = c->piece;
        http_resp_body(r, c->payload + c->pos, n);
        bytes_add(&rc->passed, c->payload + c->pos, n);
        c->pos += n;
        c->pieces_sent++;
        if (!all) {
            if (http_resp_over_high_water(r))
                c->paused = 1; /* until drained */
            return;
        }
    }
    rc->closes_after = rc->hdr_close || st->draining;
    rc->finished = 1;
    c->done = 1;
    http_resp_finish(r);
}

static void once_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ctx *c = arg;

    (void)fd;
    (void)what;
    c->scheduled = 0;
    c->st->scheduled--;
    c->st->events++;
    if (c->dead || c->done || c->hung)
        return; /* the client left meanwhile */
    ctx_step(c, !c->st->P.spread);
}

static void ctx_schedule(struct ctx *c)
{
    static const struct timeval zero = { 0, 0 };

    FUZZ_CHECK(event_base_once(c->st->base, -1, EV_TIMEOUT, once_cb, c, &zero) == 0,
               "event_base_once failed");
    c->scheduled = 1;
    c->st->scheduled++;
}

static struct rec *rec_new(struct state *st)
{
    if (st->nrecs == st->reccap) {
        st->reccap = st->reccap ? 2 * st->reccap : 16;
        st->recs = realloc(st->recs, st->reccap * sizeof *st->recs);
        FUZZ_CHECK(st->recs != NULL, "out of memory");
    }
    memset(&st->recs[st->nrecs], 0, sizeof st->recs[st->nrecs]);
    return &st->recs[st->nrecs++];
}

static void handler(struct http_req *r, void *arg)
{
    struct state *st = arg;
    const struct params *P = &st->P;
    struct ctx *c;
    struct rec *rc;
    size_t seq = st->nrecs;
    const char *q;

    st->events++;
    FUZZ_CHECK(!st->in_free, "the handler called from http_server_free");
    for (c = st->ctxs; c != NULL; c = c->next)
        FUZZ_CHECK(c->done || c->dead, "request %zu while request %zu is in flight", seq, c->rec);
    FUZZ_CHECK(r->method_name != NULL && r->target != NULL && r->path != NULL, "request parts");
    FUZZ_CHECK(r->body_len == 0 || r->body != NULL, "a NULL body of %zu bytes", r->body_len);
    q = strchr(r->target, '?');
    if (q != NULL)
        FUZZ_CHECK(strlen(r->path) == (size_t)(q - r->target) &&
                   strncmp(r->path, r->target, strlen(r->path)) == 0,
                   "path '%s' of target '%s'", r->path, r->target);
    else
        FUZZ_CHECK(strcmp(r->path, r->target) == 0, "path '%s' of target '%s'", r->path,
                   r->target);

    rc = rec_new(st);
    rc->method = strdup(r->method_name);
    rc->target = strdup(r->target);
    q = http_req_header(r, "X-Echo");
    rc->echo = q ? strdup(q) : NULL;
    bytes_add(&rc->body, r->body, r->body_len);
    rc->minor = r->minor;
    rc->is_head = r->method == HTTP_METHOD_HEAD;
    rc->keep_alive = http_keep_alive(r->minor, http_req_header(r, "Connection"));
    rc->mode = P->mode == 3 ? (int)((seq + strlen(r->target)) % 3) : P->mode;
    rc->status = P->status_all || seq == P->sel ? P->status : 200;
    rc->close_after = P->close_sel && seq == P->sel;
    rc->own_date = P->own_date;

    c = calloc(1, sizeof *c);
    FUZZ_CHECK(c != NULL, "out of memory");
    c->st = st;
    c->rec = seq;
    c->r = r;
    c->next = st->ctxs;
    st->ctxs = c;
    c->later = rc->mode == ANS_LATER;
    c->hang = P->hang && seq == P->sel;
    c->abort = P->abort && seq == P->sel && rc->mode != ANS_JSON;
    if (rc->mode == ANS_JSON) {
        char json[96];
        int n = snprintf(json, sizeof json, "{\"seq\":%zu,\"bytes\":%zu}", seq, r->body_len);
        c->payload = strdup(json);
        c->payload_len = (size_t)n;
        rc->length = n;
    } else {
        struct bytes one = { 0 }, all = { 0 };
        if (r->body_len > 0) {
            bytes_add(&one, r->body, r->body_len);
        } else {
            bytes_add(&one, "data: ", 6);
            bytes_add(&one, r->target, strlen(r->target));
            bytes_add(&one, "\n\n", 2);
        }
        for (int i = 0; i < P->amp; i++)
            bytes_add(&all, one.p, one.len);
        free(one.p);
        c->payload = all.p;
        c->payload_len = all.len;
        rc->length = P->known ? (long long)all.len : -1;
        c->piece = P->piece;
        size_t most = c->later && P->spread ? MAX_SPREAD : MAX_PIECES;
        if (c->payload_len / c->piece >= most)
            c->piece = c->payload_len / most + 1;
        c->cut_at = (c->payload_len + c->piece - 1) / c->piece / 2;
    }
    http_req_set_owner(r, gone_cb, drained_cb, c);
    if (!c->later) {
        ctx_step(c, 1);
        return;
    }
    c->delay = P->delay;
    if (c->delay == 0)
        ctx_schedule(c); /* at once, but after the handler returned */
}

/* --- the client --- */

static int client_read(struct state *st)
{
    size_t got = 0, limit = st->P.slow ? SLOW_READ : SIZE_MAX;
    char buf[16384];

    while (!st->eof && got < limit) {
        size_t want = limit - got < sizeof buf ? limit - got : sizeof buf;
        ssize_t n = recv(st->client, buf, want, 0);
        if (n > 0) {
            bytes_add(&st->out, buf, (size_t)n);
            FUZZ_CHECK(st->out.len <= OUT_MAX, "more than %u bytes of answers", OUT_MAX);
            got += (size_t)n;
        } else if (n == 0) {
            st->eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            /* ECONNRESET: closed with bytes of ours unread (an AF_UNIX
             * socket keeps what was sent before: nothing is lost) */
            FUZZ_CHECK(errno == ECONNRESET, "recv: %s", strerror(errno));
            st->eof = 1;
        }
    }
    return got > 0 || st->eof;
}

/* Later answers whose turn has come. */
static int tick(struct state *st)
{
    int progress = 0;

    for (struct ctx *c = st->ctxs; c != NULL; c = c->next) {
        if (!c->later || c->dead || c->done || c->hung || c->scheduled || c->paused)
            continue;
        if (c->delay > 0)
            c->delay--;
        else
            ctx_schedule(c);
        progress = 1;
    }
    return progress;
}

static int client_outq(struct state *st)
{
    int n = 0;

    if (ioctl(st->client, SIOCOUTQ, &n) != 0)
        n = -1;
    return n;
}

/* One turn of the loop: the server, the client's reads, the backends. */
static int turn(struct state *st)
{
    unsigned long ev = st->events;
    int q = client_outq(st), progress, was_eof = st->eof;

    event_base_loop(st->base, EVLOOP_NONBLOCK);
    progress = client_read(st);
    if (st->eof && !was_eof && !st->in_free && st->srv != NULL)
        st->eof_in_loop = 1;
    progress |= tick(st);
    progress |= st->events != ev || client_outq(st) != q || st->scheduled > 0;
    return progress;
}

static void run_until_quiet(struct state *st)
{
    int idle = 0;

    for (long turns = 0; !st->eof && idle < IDLE_TURNS; turns++) {
        FUZZ_CHECK(turns < MAX_TURNS, "no end after %d turns of the loop", MAX_TURNS);
        idle = turn(st) ? 0 : idle + 1;
    }
}

static void client_write(struct state *st, const uint8_t *p, size_t n)
{
    int stuck = 0;

    while (n > 0 && !st->write_closed) {
        ssize_t w = send(st->client, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            st->wrote += (size_t)w;
            stuck = 0;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (turn(st))
                stuck = 0;
            else if (++stuck > IDLE_TURNS)
                st->write_closed = st->write_stalled = 1; /* the server reads no more */
        } else {
            st->write_closed = 1; /* EPIPE, ECONNRESET: the server closed */
        }
    }
}

/* --- reading the answers --- */

static int is_hex32(const char *v, size_t vl)
{
    if (vl != 32)
        return 0;
    for (size_t i = 0; i < vl; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            return 0;
    return 1;
}

static int id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] <= 0x20 || id[i] >= 0x7f)
            return 0;
    return 1;
}

/* One of the handler's answers at o[*pos]; *ended when it is the last. */
static void check_answer(struct state *st, const struct resp *rp, size_t k, size_t *pos,
                         int *ended)
{
    const char *o = st->out.p, *want;
    size_t n = st->out.len, want_nh, want_len, used;
    struct rec *rc = &st->recs[k];
    int nobody, has_cl, has_te, complete, rcut, closedelim = 0;
    struct bytes dec = { 0 };

    FUZZ_CHECK(rc->started, "an answer to request %zu, which the handler did not start", k);
    FUZZ_CHECK(rp->status == rc->status, "answer %zu: status %d, the handler's %d", k,
               rp->status, rc->status);
    FUZZ_CHECK(value_is(rp, "X-Target", rc->target), "answer %zu: X-Target", k);
    FUZZ_CHECK(rc->echo ? value_is(rp, "X-Echo", rc->echo) : !resp_header(rp, "X-Echo", 0, 0),
               "answer %zu: X-Echo", k);
    FUZZ_CHECK(rc->own_date ? value_is(rp, "Date", OWN_DATE) : resp_header(rp, "Date", 0, 0) == 1,
               "answer %zu: Date", k);
    want_nh = 3 + (rc->echo != NULL);
    if (rc->hdr_close) {
        FUZZ_CHECK(value_is(rp, "Connection", "close"), "answer %zu: no Connection: close", k);
        want_nh++;
    } else if (rc->minor == 0) {
        FUZZ_CHECK(value_is(rp, "Connection", "keep-alive"),
                   "answer %zu (HTTP/1.0): no Connection: keep-alive", k);
        want_nh++;
    } else {
        FUZZ_CHECK(!resp_header(rp, "Connection", 0, 0), "answer %zu: a Connection header", k);
    }
    if (rc->mode == ANS_JSON) {
        FUZZ_CHECK(value_is(rp, "Content-Type", "application/json"), "answer %zu: type", k);
        want_nh++;
    }
    has_cl = rc->length >= 0 && !no_framing(rc->status);
    has_te = rc->length < 0 && rc->minor >= 1 && !rc->is_head && !no_framing(rc->status);
    if (has_cl) {
        char len[32];
        snprintf(len, sizeof len, "%lld", rc->length);
        FUZZ_CHECK(value_is(rp, "Content-Length", len), "answer %zu: Content-Length not %s", k,
                   len);
        want_nh++;
    } else {
        FUZZ_CHECK(!resp_header(rp, "Content-Length", 0, 0), "answer %zu: Content-Length", k);
    }
    if (has_te) {
        FUZZ_CHECK(value_is(rp, "Transfer-Encoding", "chunked"), "answer %zu: not chunked", k);
        want_nh++;
    } else {
        FUZZ_CHECK(!resp_header(rp, "Transfer-Encoding", 0, 0),
                   "answer %zu: Transfer-Encoding", k);
    }
    FUZZ_CHECK(rp->nh == want_nh, "answer %zu: %zu headers, not %zu", k, rp->nh, want_nh);

    nobody = rc->is_head || no_framing(rc->status);
    want = nobody ? "" : rc->passed.p;
    want_len = nobody ? 0 : rc->passed.len;
    *pos += rp->head_len;
    if (nobody) {
        complete = rc->finished; /* a head alone: whole or cut look the same */
    } else if (has_cl) {
        size_t len = (size_t)rc->length, avail = n - *pos;
        complete = avail >= len;
        bytes_add(&dec, o + *pos, complete ? len : avail);
        *pos += complete ? len : avail;
    } else if (has_te) {
        rcut = read_chunked(o + *pos, n - *pos, &used, &dec);
        FUZZ_CHECK(rcut != -2, "answer %zu: malformed chunked body at %zu", k, *pos);
        complete = rcut == 1;
        FUZZ_CHECK(complete || rc->gone || rcut == 0,
                   "answer %zu: cut inside a chunk (aborted %d)", k, rc->aborted);
        *pos = complete ? *pos + used : n;
    } else {
        /* close-delimited: HTTP/1.0 and no length; the end is the close */
        closedelim = 1;
        FUZZ_CHECK(rc->hdr_close, "answer %zu: no framing and no Connection: close", k);
        bytes_add(&dec, o + *pos, n - *pos);
        *pos = n;
        complete = !rc->gone;
        FUZZ_CHECK(st->eof_in_loop || rc->gone,
                   "answer %zu: close-delimited, the connection not closed", k);
    }
    if (complete) {
        /* all of a Content-Length may have gone before the client left */
        FUZZ_CHECK(rc->finished || (rc->gone && has_cl) || (rc->aborted && closedelim),
                   "answer %zu complete, yet not finished (aborted %d, gone %d)", k,
                   rc->aborted, rc->gone);
        FUZZ_CHECK(same(dec.p, dec.len, want, want_len),
                   "answer %zu: the body (%zu bytes) is not what the handler passed "
                   "(%zu bytes)",
                   k, dec.len, want_len);
        rc->seen_complete = rc->finished;
    } else {
        FUZZ_CHECK(rc->aborted || rc->gone, "answer %zu cut short, yet finished", k);
        FUZZ_CHECK(dec.len <= want_len && same(dec.p, dec.len, want, dec.len),
                   "answer %zu: the cut body is not a prefix of what was passed", k);
        if (rc->aborted)
            FUZZ_CHECK(dec.len == want_len, "answer %zu aborted: %zu of %zu bytes sent", k,
                       dec.len, want_len);
        FUZZ_CHECK(*pos == n, "bytes after the cut answer %zu", k);
        *ended = 1;
    }
    if (rc->closes_after || rc->aborted || rc->gone) {
        *ended = 1;
        if (!rc->gone)
            FUZZ_CHECK(st->eof_in_loop, "answer %zu closes the connection, but it stays open", k);
    }
    free(dec.p);
}

static void check_refusal(struct state *st, const struct model *m, const struct resp *rp,
                          size_t k, size_t *pos)
{
    const char *o = st->out.p, *v = NULL;
    size_t n = st->out.len, vl = 0, len = 0;
    const struct mreq *q;

    FUZZ_CHECK(rp->status >= 400, "an answer without X-Seq: %d", rp->status);
    FUZZ_CHECK(k == st->nrecs, "refusal %d of request %zu, but the handler got %zu",
               rp->status, k, st->nrecs);
    FUZZ_CHECK(k < m->n && m->q[k].refusal == rp->status,
               "refusal %d of request %zu; the model says %d", rp->status, k,
               k < m->n ? m->q[k].refusal : -1);
    q = &m->q[k];
    FUZZ_CHECK(value_is(rp, "Connection", "close"), "refusal %d without Connection: close",
               rp->status);
    FUZZ_CHECK(value_is(rp, "Content-Type", "application/json"), "refusal: Content-Type");
    FUZZ_CHECK(resp_header(rp, "Date", 0, 0) == 1, "refusal: Date");
    FUZZ_CHECK(resp_header(rp, "X-Request-Id", &v, &vl) == 1, "refusal without X-Request-Id");
    if (q->reqid != NULL && id_ok(q->reqid))
        FUZZ_CHECK(vl == strlen(q->reqid) && memcmp(v, q->reqid, vl) == 0,
                   "refusal: X-Request-Id not the client's");
    else
        FUZZ_CHECK(is_hex32(v, vl), "refusal: X-Request-Id '%.*s'", (int)vl, v);
    FUZZ_CHECK(resp_header(rp, "Content-Length", &v, &vl) == 1, "refusal: no Content-Length");
    for (size_t i = 0; i < vl; i++) {
        FUZZ_CHECK(v[i] >= '0' && v[i] <= '9' && len < 100000, "refusal: Content-Length");
        len = len * 10 + (size_t)(v[i] - '0');
    }
    FUZZ_CHECK(rp->nh == 5, "refusal: %zu headers", rp->nh);
    *pos += rp->head_len;
    if (q->is_head) {
        FUZZ_CHECK(*pos == n, "refusal of a HEAD request with a body");
    } else {
        FUZZ_CHECK(n - *pos == len, "refusal: %zu bytes of body, Content-Length %zu, then "
                   "the connection closes", n - *pos, len);
        check_json_error(o + *pos, len, rp->status);
        *pos += len;
    }
    FUZZ_CHECK(st->eof_in_loop, "refusal %d, but the connection stays open", rp->status);
}

static void validate(struct state *st, const struct model *m)
{
    const char *o = st->out.p;
    size_t n = st->out.len, pos = 0, k = 0;
    int interim = 0, ended = 0, refused = 0, stop_reason;
    struct resp rp;

    while (pos < n) {
        const char *err = NULL;
        int r;

        FUZZ_CHECK(!ended, "%zu bytes after the last answer of the connection: %.*s", n - pos,
                   (int)(n - pos > 80 ? 80 : n - pos), o + pos);
        r = parse_resp_head(o + pos, n - pos, &rp, &err);
        if (r == 0) {
            size_t left = n - pos < 9 ? n - pos : 9;
            FUZZ_CHECK(k < st->nrecs && st->recs[k].gone,
                       "an answer head cut short (request %zu): %.*s", k,
                       (int)(n - pos > 80 ? 80 : n - pos), o + pos);
            FUZZ_CHECK(memcmp(o + pos, "HTTP/1.1 ", left) == 0, "a cut head");
            break;
        }
        FUZZ_CHECK(r > 0, "a malformed answer head at byte %zu: %s: %.*s", pos, err,
                   (int)(n - pos > 120 ? 120 : n - pos), o + pos);
        if (rp.status == 100) {
            FUZZ_CHECK(rp.nh == 0 && rp.head_len == 25, "100 Continue with headers");
            FUZZ_CHECK(!interim, "two 100 Continue for request %zu", k);
            FUZZ_CHECK(k < m->n && m->q[k].expect100,
                       "100 Continue for request %zu, which did not ask for it", k);
            interim = 1;
            pos += rp.head_len;
            continue;
        }
        FUZZ_CHECK(rp.status >= 200, "an interim answer %d", rp.status);
        interim = 0;
        if (resp_header(&rp, "X-Seq", NULL, NULL) > 0) {
            const char *v = NULL;
            size_t vl = 0;
            char seq[32];
            snprintf(seq, sizeof seq, "%zu", k);
            resp_header(&rp, "X-Seq", &v, &vl);
            FUZZ_CHECK(k < st->nrecs, "answer %.*s to a request the handler did not get",
                       (int)vl, v);
            FUZZ_CHECK(value_is(&rp, "X-Seq", seq), "answer %.*s where %zu was due", (int)vl,
                       v, k);
            check_answer(st, &rp, k, &pos, &ended);
        } else {
            check_refusal(st, m, &rp, k, &pos);
            ended = refused = 1;
        }
        k++;
    }
    if (interim)
        FUZZ_CHECK(k >= st->nrecs || st->recs[k].gone,
                   "100 Continue, then nothing for request %zu", k);

    /* every finished answer came whole; the handler got the model's requests */
    stop_reason = st->P.shut || st->draining || st->write_stalled;
    for (size_t i = 0; i < st->nrecs; i++) {
        struct rec *rc = &st->recs[i];
        FUZZ_CHECK(!rc->finished || rc->seen_complete,
                   "request %zu was answered, the client did not get it all", i);
        FUZZ_CHECK(i < m->ndispatch, "the handler got request %zu; the model reads %zu", i,
                   m->ndispatch);
        FUZZ_CHECK(strcmp(rc->method, m->q[i].method) == 0 &&
                       strcmp(rc->target, m->q[i].target) == 0 && rc->minor == m->q[i].minor,
                   "request %zu: %s %s HTTP/1.%d, the model reads %s %s HTTP/1.%d", i,
                   rc->method, rc->target, rc->minor, m->q[i].method, m->q[i].target,
                   m->q[i].minor);
        FUZZ_CHECK(same(rc->body.p, rc->body.len, m->q[i].body.p, m->q[i].body.len),
                   "request %zu: a body of %zu bytes, the model reads %zu", i, rc->body.len,
                   m->q[i].body.len);
        if (rc->gone)
            stop_reason = 1;
    }
    if (!stop_reason) {
        size_t want = m->ndispatch;
        int want_refusal = m->n > m->ndispatch && m->q[m->ndispatch].refusal != 0;
        for (size_t i = 0; i < st->nrecs; i++)
            if (st->recs[i].closes_after) {
                want = i + 1;
                want_refusal = 0;
                break;
            }
        FUZZ_CHECK(st->nrecs == want, "the handler got %zu requests, the model reads %zu",
                   st->nrecs, want);
        FUZZ_CHECK(refused == want_refusal, "refused %d, the model says %d (status %d)", refused,
                   want_refusal, want_refusal ? m->q[m->ndispatch].refusal : 0);
    }
    /* the server closes the connection for a reason */
    if (st->eof_in_loop && !st->P.shut && !st->draining) {
        int why = refused;
        for (size_t i = 0; i < st->nrecs; i++)
            why |= st->recs[i].closes_after || st->recs[i].aborted;
        FUZZ_CHECK(why, "the server closed the connection for no reason");
    }
}

/* --- the run --- */

static void params_read(struct params *P, const uint8_t *d)
{
    static const size_t pieces[4] = { 1, 7, 64, 4096 };
    static const int statuses[4] = { 200, 201, 204, 304 };

    P->mode = d[0] & 3;
    P->piece = pieces[d[0] >> 2 & 3];
    P->abort = d[0] >> 4 & 1;
    P->close_sel = d[0] >> 5 & 1;
    P->shut = d[0] >> 6 & 1;
    P->slow = d[0] >> 7 & 1;
    P->npieces = (d[1] & 3) % 3 + 1;
    P->split = d[1] >> 2 & 7;
    P->small_hw = d[1] >> 5 & 1;
    P->spread = d[1] >> 6 & 1;
    P->known = d[1] >> 7 & 1;
    P->sel = d[2] & 7;
    P->drain = d[2] >> 3 & 1;
    P->hang = d[2] >> 4 & 1;
    P->sync_drain = d[2] >> 5 & 1;
    P->status = statuses[d[2] >> 6 & 3];
    P->amp = (d[3] & 15) + 1;
    P->delay = d[3] >> 4 & 3;
    P->own_date = d[3] >> 6 & 1;
    P->status_all = d[3] >> 7 & 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    struct state st;
    struct model m;
    atomic_int nconns = 0;
    int sv[2], idle[2];
    char ib[64];
    ssize_t in_idle;
    const uint8_t *in;
    size_t len, cut[4];

    if (size < NPARAM)
        return 0;
    if (!quiet) {
        log_access_on = 0; /* a line per refusal */
        log_level = SY_LOG_ERROR + 1;
        quiet = 1;
    }
    memset(&st, 0, sizeof st);
    memset(&m, 0, sizeof m);
    params_read(&st.P, data);
    in = data + NPARAM;
    len = size - NPARAM;

    st.base = event_base_new();
    FUZZ_CHECK(st.base != NULL, "event_base_new");
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
               "socketpair: %s", strerror(errno));
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, idle) == 0,
               "socketpair: %s", strerror(errno));
    st.client = sv[0];
    if (st.P.slow) {
        int sndbuf = SLOW_SNDBUF;
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    struct http_limits lim = {
        .max_head = MAX_HEAD, .max_fields = MAX_FIELDS, .max_body = MAX_BODY,
        .client_timeout = 5, .idle_timeout = 0 /* the default */,
        .high_water = st.P.small_hw ? 64 : 0, .max_connections = 0,
    };
    st.srv = http_server_new(st.base, -1, &lim, &nconns, handler, &st);
    FUZZ_CHECK(st.srv != NULL, "http_server_new");
    /* a second client that sends nothing: kept open, but by a drain */
    http_server_add_connection(st.srv, idle[1]);
    http_server_add_connection(st.srv, sv[1]);
    FUZZ_CHECK(atomic_load(&nconns) == 2, "nconns %d after adding two", atomic_load(&nconns));

    /* the client's bytes in 1-3 pieces, a turn of the loop after each */
    cut[0] = 0;
    cut[1] = st.P.npieces == 1 ? len : len * (size_t)(st.P.split + 1) / 9;
    cut[2] = st.P.npieces <= 2 ? len : cut[1] + (len - cut[1]) / 2;
    cut[3] = len;
    for (int i = 0; i < 3; i++) {
        if (cut[i + 1] > cut[i])
            client_write(&st, in + cut[i], cut[i + 1] - cut[i]);
        if (i + 1 < st.P.npieces || i == 0)
            turn(&st);
        if (i == 0 && st.P.drain) {
            http_server_drain(st.srv);
            st.draining = 1;
        }
    }
    if (st.P.shut)
        shutdown(st.client, SHUT_WR);
    run_until_quiet(&st);

    /* quiet: no answer waits on the harness, none is left stalled */
    for (struct ctx *c = st.ctxs; c != NULL; c = c->next) {
        FUZZ_CHECK(c->done || c->dead || c->hung,
                   "request %zu stalled: not finished, not gone (paused %d, started %d)",
                   c->rec, c->paused, c->started);
        if (st.eof)
            FUZZ_CHECK(c->done || c->dead, "the connection closed, request %zu not told", c->rec);
    }
    in_idle = recv(idle[0], ib, sizeof ib, 0);
    if (st.draining)
        FUZZ_CHECK(in_idle == 0, "an idle connection left open by the drain (%zd)", in_idle);
    else
        FUZZ_CHECK(in_idle < 0 && errno == EAGAIN, "an idle connection closed or answered (%zd)",
                   in_idle);
    st.in_free = 1;
    http_server_free(st.srv);
    st.in_free = 0;
    st.srv = NULL;
    FUZZ_CHECK(atomic_load(&nconns) == 0, "nconns %d after http_server_free",
               atomic_load(&nconns));
    for (struct ctx *c = st.ctxs; c != NULL; c = c->next)
        FUZZ_CHECK(c->done || c->dead, "request %zu in flight, not told by http_server_free",
                   c->rec);
    for (int i = 0; st.scheduled > 0; i++) {
        FUZZ_CHECK(i < 100, "callbacks left");
        event_base_loop(st.base, EVLOOP_NONBLOCK);
    }
    /* what was sent before the close, then the end */
    for (int i = 0; !st.eof; i++) {
        FUZZ_CHECK(i < 1000000, "no end of the connection after http_server_free");
        client_read(&st);
    }
    FUZZ_CHECK(recv(idle[0], ib, sizeof ib, 0) == 0, "the idle connection open after free");
    close(idle[0]);

    model_run(&m, in, st.wrote);
    if (getenv("FUZZ_HTTP_CONN_SHOW") != NULL) { /* to see what a seed does */
        fprintf(stderr, "--- %zu requests to the handler, the model reads %zu (%zu in all), "
                "eof %d in the loop %d, drain %d\n", st.nrecs, m.ndispatch, m.n, st.eof,
                st.eof_in_loop, st.draining);
        for (size_t i = 0; i < st.nrecs; i++)
            fprintf(stderr, "  %zu: %s %s mode %d status %d finished %d aborted %d gone %d "
                    "(in free %d) closes %d\n", i, st.recs[i].method, st.recs[i].target,
                    st.recs[i].mode, st.recs[i].status, st.recs[i].finished,
                    st.recs[i].aborted, st.recs[i].gone, st.recs[i].gone_in_free,
                    st.recs[i].closes_after);
        fprintf(stderr, "--- %zu bytes to the client:\n%.*s\n---\n", st.out.len,
                (int)st.out.len, st.out.p ? st.out.p : "");
    }
    validate(&st, &m);

    model_free(&m);
    while (st.ctxs != NULL) {
        struct ctx *c = st.ctxs;
        st.ctxs = c->next;
        free(c->payload);
        free(c);
    }
    for (size_t i = 0; i < st.nrecs; i++) {
        free(st.recs[i].method);
        free(st.recs[i].target);
        free(st.recs[i].echo);
        free(st.recs[i].body.p);
        free(st.recs[i].passed.p);
    }
    free(st.recs);
    free(st.out.p);
    close(st.client);
    event_base_free(st.base);
    return 0;
}
