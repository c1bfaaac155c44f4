/*
 * Fuzz the router's request path from the backend's side: what a backend
 * answers, and how, against core/proxy/dispatch.c (attempts, retries on the other
 * backend, the router's own errors, the SSE relay), core/proxy/upstream.c (the
 * checks on a backend's answer; libcurl's multi interface on libevent, for
 * now) and core/http/http_conn.c (the answer written to the client), end to end
 * over real sockets, with the real event loop and timers.
 *
 * Per input: a fresh event_base and setup (config from a YAML string: one
 * model "m" on two backends, roundrobin, timeouts of 20 ms, retries on the
 * other backend), a worker built by hand: an http_server serving one end of
 * a socketpair, the harness being the client on the other; an upstream pool
 * whose connector hook (upstream_pool_set_connector) gets, for each backend
 * connection the router opens, the router's end of a TCP connection over
 * loopback, the harness being the backend on the other end.  So backends
 * are reached only through sockets: this holds for any HTTP client in
 * upstream.c, libcurl's or a native one.  (TCP rather than a socketpair:
 * libcurl 7.88 reuses no connection whose peer has no IP address, and
 * connection reuse is what the router does all day.  connect() is wrapped
 * below for libcurl 7.88's sake.)  The handler is server.c's handle_request
 * for proxied POSTs (static there): dispatch_request.  The loop turns one
 * non-blocking step at a time, the harness reading and writing between two
 * steps; with nothing to do it blocks until the next event (the router's
 * timers).  A run ends when the client's connection is closed, or both
 * answers are in (then a few more turns); 5 s is a hang.
 * FUZZ_UPSTREAM_SHOW=1 prints what each side got.  The run ends, too,
 * once a client that left has nothing left in flight.
 *
 * The client sends two POST /v1/chat/completions requests, pipelined:
 * X-Request-Id: fz-1, then fz-2, a body {"model":"m",...}.
 *
 * Input:
 *
 *   byte 0: bit 0 fz-1's body says "stream": true, bit 1 fz-2's does;
 *           bit 2 fz-2 says Connection: close; bits 3-4 reroute_attempts
 *           (0-3; max_attempts is 4); bit 5 fz-2 is sent only once the
 *           answer to fz-1 is in (not pipelined); bits 6-7 unused
 *   byte 1: bits 0-2 the client leaves (closes its connection): 0 never,
 *           1 at once, 2-7 0, 1, 2, 4, 8 or 16 turns after the first byte
 *           of an answer; bit 3 a slow client (128 bytes a turn, a 4 KiB
 *           socket buffer on the router's side, a 1 KiB high-water mark:
 *           the relay pauses and resumes); bits 4-7 unused ("@" is 0)
 *   then:   backend scripts, separated by "~~~": the first connection the
 *           router opens gets the first script, and so on; with none left
 *           a connection is refused.  A script is a control byte, then the
 *           bytes the backend writes once it has read a request head, in
 *           pieces: "~|" is a pause (turns of the loop without writing; at
 *           most 64 pieces, later markers are bytes).  Control: bits 0-1
 *           the end: 0 close, 1 keep the connection open (the next request
 *           on it gets the next script, its bytes following), 2 keep it
 *           open and say nothing more, 3 refuse the connection (the
 *           connector returns -1; the bytes are unused); bits 2-3 turns per
 *           pause (1, 2, 4, 16); bit 4 write at once on connecting, before
 *           any request; bit 5 close with an RST (a crash: what was sent
 *           may be lost) rather than a FIN.  "@", "A", "B", "C" are close,
 *           keep, hang and refuse.
 *
 * A model of the backends' answers: each connection's bytes, as the backend
 * wrote them, read as HTTP/1.1 answers in order, the n-th answering the
 * n-th request the router sent on it, by the rules upstream_start states
 * (status and header lines by http_parse's grammar, sound framing, no 101
 * or unknown 1xx; interim 100/102/103 heads skipped), bodies by their
 * framing (chunked as libcurl decodes it; close-delimited up to the
 * backend's FIN).  Such an answer, if its head is sound, is "legit" for the
 * X-Request-Id of its request, and so is the first answer of each script (a
 * client may drop bytes left after an answer: what follows is then the next
 * script's); but not an answer the backend began before the request it
 * would answer came, on a connection already used: bytes no request asked
 * for, which a client must not take for the next request's answer.  The
 * model stops at the first answer that is not sound.
 *
 * Invariants:
 *   - the client's bytes are well-formed HTTP/1.1 answers (http_answers.c:
 *     status line, header lines, a blank line, a body framed by its
 *     Content-Length or chunked; none for 204 and 304), at most one per
 *     request, in order, X-Request-Id fz-1 then fz-2, each with one
 *     X-Switchyard-Attempts (1 to 1 + reroute_attempts) and one
 *     X-Switchyard-Model: m, no hop-by-hop header but the router's own
 *     Connection: close and Transfer-Encoding: chunked;
 *   - an answer with status 429 or 500 or more is a backend's failed answer
 *     to that request passed on when nothing served it (its status, its
 *     whole body of at most 16 KiB, its Content-Type and Retry-After, no
 *     other header of its head), or else the router's own: 502, 503 or
 *     504, JSON {"error":{..,"code":STATUS}}, whole, with only the router's
 *     headers;
 *   - any other answer is a legit answer of a backend to a request with
 *     the same X-Request-Id: the same status, exactly its header lines
 *     minus the hop-by-hop ones, those its Connection lists, X-Request-Id,
 *     X-Switchyard-* and Content-Length, in order (so no header of an
 *     interim head, of a forged answer in a body or after a 101, such as
 *     X-Injected or Set-Cookie: from-backend, ever reaches the client); its
 *     Content-Length when it had one and is not text/event-stream, else
 *     chunked; a whole answer's body is exactly the backend's whole body, a
 *     cut one a prefix of it; an event stream's is the backend's whole body,
 *     or a prefix of it and the router's error event;
 *   - after an answer cut short (of its Content-Length, or chunked without
 *     the last chunk) or with Connection: close, nothing, and the router
 *     closes the connection; it closes it for no other reason; with no
 *     close, both requests are answered (never close-delimited: the client
 *     speaks HTTP/1.1); for a client that left, what it got is a prefix of
 *     all that, and the router lets go of its requests;
 *   - the request heads the backends read for fz-N are at most fz-N's
 *     X-Switchyard-Attempts (none for a request never answered), each a
 *     POST /v1/chat/completions (HTTP/1.0 after a backend answered in 1.0)
 *     with that X-Request-Id, no Expect and no Transfer-Encoding, and the
 *     client's body, byte for byte;
 *   - at the end no request is in flight; once the HTTP server and the
 *     pool are freed, no event is left in the loop, the setup's references
 *     are back; ASan, LeakSanitizer and UBSan find nothing.
 *
 * Findings, fixed (docs/fuzzing.md), each kept as a seed; FUZZ_UPSTREAM_KNOWN,
 * a list of their names, sets one aside to fuzz a build that lacks its fix:
 * "reuse", a reused backend connection carrying bytes no request asked for
 * (after an answer, or left over after a chunked body) read as the next
 * request's answer (set aside: any sound head after a connection's first
 * answer is legit for a later request on it); "pause", the relay paused for
 * good when the head alone was over the high-water mark (set aside: an
 * 80 KiB mark for the slow client); "fold", libcurl < 8.1.0 using freed
 * memory on a folded first header line on a reused handle (set aside: no
 * line of a script starts with a blank).
 *
 * Open finding, set aside by `make fuzz` (FUZZ_UPSTREAM_KNOWN=junk1xx):
 * "junk1xx", bytes between an interim head (100 Continue) and the final
 * status line (0xff, NUL, whole lines) that libcurl drops without a word,
 * so the router relays an answer that follows (the one behind the junk, or
 * one later on the connection: libcurl's choice) instead of refusing it as
 * malformed.  Set aside, such an input's answers are not matched to the
 * backend's; every other invariant still holds.  The native HTTP/1.1
 * client (issue 18) reads interim heads itself and will refuse this.
 */
#define _GNU_SOURCE /* memmem */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "fuzz.h"
#include "http_answers.h"
#include "http_conn.h"
#include "http_headers.h"
#include "http_parse.h"
#include "log.h"
#include "server.h"
#include "setup.h"
#include "upstream.h"

#define MAX_SCRIPTS 64
#define MAX_PIECES 64
#define MAX_CONNS 64
#define MAX_REQS 16         /* request heads on one backend connection */
#define MAX_ATTEMPTS 4
#define OUT_MAX (4u << 20)  /* what the client may receive */
#define RUN_LIMIT 5.0       /* seconds: a run longer than this is a hang */
#define GUARD_US 5000       /* a blocking turn lasts at most this */
#define SETTLE_TURNS 4      /* turns after both answers, for stray bytes */
#define NPARAM 2            /* bytes of parameters before the scripts */
#define SLOW_READ 128       /* a slow client's read per turn */
#define SLOW_SNDBUF 4096    /* ... and the router's socket buffer for it */
#define SLOW_HIGH_WATER 1024 /* ... and the relay's high-water mark (known
                              finding "pause": 80 KiB, over any head) */
#define REF_MAX_HEADERS 128 /* upstream.c's MAX_RESPONSE_HEADERS */
#define REF_MAX_HEAD (64 * 1024)

enum { END_CLOSE, END_KEEP, END_HANG, END_REFUSE };

static const int pause_turns[4] = { 1, 2, 4, 16 };

static const char *const bodies[2] = {
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
};

struct script {
    int end, pause, early, reset;
    const char *seg[MAX_PIECES]; /* the pieces, in the input */
    size_t seglen[MAX_PIECES];
    int nseg;
};

struct breq {
    int id;           /* 1, 2 */
    size_t wrote_at;  /* what the backend had written when its head came */
    int done;         /* its body read */
    struct bytes body;
};

/* One connection the router opened, seen from the backend. */
struct bconn {
    int fd;                    /* ours; -1 once closed */
    int router_fd;             /* the router's end (the pool owns it) */
    int wr_shut;               /* our writing side is closed */
    int we_closed;             /* ... because the backend ended there */
    int peer_eof;              /* the router closed its end */
    const struct script *own;  /* the script it got on connecting */
    struct bytes in;           /* what the router wrote */
    size_t in_used;
    size_t body_left;          /* of the request being read */
    struct breq reqs[MAX_REQS];
    int nreq;
    int answered;              /* requests that got a script */
    struct bytes wrote;        /* what we wrote, all of it */
    size_t start_at[MAX_SCRIPTS]; /* where each script's bytes begin */
    int start_req[MAX_SCRIPTS];   /* ... and the request it answers */
    int nstarts;
    const struct script *sc;   /* the script being written, or NULL */
    int seg;
    size_t seg_off;
    int wait;                  /* turns before the next piece */
    int silent;                /* hung: writes nothing more */
};

struct params {
    int stream[2], close2, reroute, later;
    int leave;  /* 0 never; 1 at once; k: (k - 2) turns after an answer byte */
    int slow;   /* the client reads little at a time; a small high water */
};

struct state {
    struct params P;
    struct event_base *base;
    struct setup *setup;
    struct worker w;
    struct script scripts[MAX_SCRIPTS];
    int nscripts, next_script;
    struct bconn conns[MAX_CONNS];
    int nconns, refused;
    int client;
    char *input;               /* the input (scripts point into it) */
    struct bytes out;          /* what the client received */
    int eof;
    int left;                  /* the client closed its connection */
    int leave_in;              /* turns before it does, once counting */
    int sent2;
    char *req[2];
    size_t reqlen[2];
};

static char *sse_error_event; /* what the relay appends when a stream fails */
static size_t sse_error_len;
static struct state *running; /* the input being run */
static int known_reuse;       /* FUZZ_UPSTREAM_KNOWN has "reuse" */
static int known_pause;       /* ... "pause" */
static int known_fold;        /* ... "fold" */
static int known_junk1xx;     /* ... "junk1xx" */
static int junk_after_1xx;    /* this input: an interim head was followed by
                                 bytes that are no status line */
static int listener = -1;     /* where backend connections are made */
static struct sockaddr_in listener_addr;
static int (*real_connect)(int, const struct sockaddr *, socklen_t);

/*
 * libcurl 7.88.0 and 7.88.1 (Debian 12's) call connect() on a socket their
 * CURLOPT_SOCKOPTFUNCTION said is connected already (curl/curl#10626, fixed
 * in 8.0.0 by curl/curl#10648), and upstream_pool_set_connector relies on
 * that option: connecting the connected socket again fails (EISCONN; with
 * a socketpair, EINVAL), and every attempt with "Couldn't connect".
 * So connect() on a socket the connector handed out does nothing; any
 * other connect() is libc's.  With a fixed libcurl, or a native client,
 * this is never called for them.
 */
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    for (int i = 0; running != NULL && i < running->nconns; i++)
        if (running->conns[i].router_fd == fd)
            return 0;
    if (real_connect == NULL)
        real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT,
                                                                              "connect");
    return real_connect(fd, addr, len);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the input --- */

static void parse_input(struct state *st, const uint8_t *data, size_t size)
{
    static const int leave_turns[6] = { 0, 1, 2, 4, 8, 16 };
    char *in = malloc(size);
    const char *p = in + NPARAM, *end = in + size;

    FUZZ_CHECK(in != NULL, "out of memory");
    memcpy(in, data, size);
    st->input = in;
    /* known finding "fold": no line starts with a blank */
    for (size_t i = NPARAM; known_fold && i + 1 < size; i++)
        if (in[i] == '\n' && (in[i + 1] == ' ' || in[i + 1] == '\t'))
            in[i + 1] = '_';

    st->P.stream[0] = data[0] & 1;
    st->P.stream[1] = data[0] >> 1 & 1;
    st->P.close2 = data[0] >> 2 & 1;
    st->P.reroute = data[0] >> 3 & 3;
    st->P.later = data[0] >> 5 & 1;
    st->P.leave = data[1] & 7;
    st->P.slow = data[1] >> 3 & 1;
    st->leave_in = st->P.leave >= 2 ? leave_turns[st->P.leave - 2] : -1;
    while (p < end && st->nscripts < MAX_SCRIPTS) {
        const char *next = memmem(p, (size_t)(end - p), "~~~", 3);
        const char *stop = next ? next : end;
        struct script *sc = &st->scripts[st->nscripts++];
        unsigned char ctl = p < stop ? (unsigned char)*p++ : 0;

        sc->end = ctl & 3;
        sc->pause = pause_turns[ctl >> 2 & 3];
        sc->early = ctl >> 4 & 1;
        sc->reset = ctl >> 5 & 1;
        while (sc->nseg < MAX_PIECES - 1) {
            const char *m = memmem(p, (size_t)(stop - p), "~|", 2);
            if (m == NULL)
                break;
            sc->seg[sc->nseg] = p;
            sc->seglen[sc->nseg++] = (size_t)(m - p);
            p = m + 2;
        }
        sc->seg[sc->nseg] = p;
        sc->seglen[sc->nseg++] = (size_t)(stop - p);
        p = next ? next + 3 : end;
    }
}

/* --- the backends --- */

/* The backend ends its side: a FIN (it reads on until the router closes),
 * or an RST (a crash: what was sent may be lost). */
static void bconn_end(struct bconn *c, int reset)
{
    if (c->fd >= 0 && !c->wr_shut) {
        if (reset) {
            struct linger lg = { 1, 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(c->fd);
            c->fd = -1;
        } else {
            shutdown(c->fd, SHUT_WR);
            c->we_closed = 1;
        }
    }
    c->wr_shut = 1;
    c->sc = NULL;
}

/* The router closed its end (or reset it): so does the backend. */
static void bconn_close(struct bconn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->wr_shut = 1;
    c->sc = NULL;
}

static void script_start(struct bconn *c, const struct script *sc, int req)
{
    FUZZ_CHECK(c->nstarts < MAX_SCRIPTS, "too many scripts on a connection");
    c->start_at[c->nstarts] = c->wrote.len;
    c->start_req[c->nstarts++] = req;
    c->sc = sc;
    c->seg = 0;
    c->seg_off = 0;
    c->wait = 0;
}

static int connector(void *arg)
{
    struct state *st = arg;
    struct bconn *c;
    const struct script *sc;
    int fd, b, one = 1;

    if (st->next_script >= st->nscripts) {
        st->refused++;
        return -1;
    }
    sc = &st->scripts[st->next_script++];
    if (sc->end == END_REFUSE) {
        st->refused++;
        return -1;
    }
    FUZZ_CHECK(st->nconns < MAX_CONNS, "more than %d backend connections", MAX_CONNS);
    /* a TCP pair over loopback, not a socketpair: libcurl 7.88 reuses no
     * connection whose peer has no IP address ("still name resolving") */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    FUZZ_CHECK(real_connect(fd, (struct sockaddr *)&listener_addr, sizeof listener_addr) == 0,
               "connect to the backends' listener: %s", strerror(errno));
    b = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    FUZZ_CHECK(b >= 0, "accept: %s", strerror(errno));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* pieces as written */
    c = &st->conns[st->nconns++];
    memset(c, 0, sizeof *c);
    c->fd = b;
    c->router_fd = fd;
    c->own = sc;
    if (sc->early) {
        script_start(c, sc, 0);
        c->answered = 1;
    }
    return fd;
}

/* The next script for a request on a connection kept open. */
static const struct script *next_script(struct state *st)
{
    if (st->next_script >= st->nscripts)
        return NULL;
    return &st->scripts[st->next_script++];
}

static const char *head_field(const char *head, size_t len, const char *name, int *count)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + len, *found = NULL;

    *count = 0;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            if ((*count)++ == 0)
                found = p + nl + 1;
        }
        p = eol + 2;
    }
    return found;
}

/* Request heads and bodies the router wrote on c. */
static void read_requests(struct state *st, struct bconn *c)
{
    while (c->in.len > c->in_used) {
        char *b = c->in.p + c->in_used;
        size_t avail = c->in.len - c->in_used;

        if (c->body_left > 0) {
            struct breq *q = &c->reqs[c->nreq - 1];
            size_t n = avail < c->body_left ? avail : c->body_left;
            if (n == 0)
                return;
            bytes_add(&q->body, b, n);
            c->in_used += n;
            c->body_left -= n;
            if (c->body_left == 0)
                q->done = 1;
            continue;
        }
        if (avail == 0)
            return;
        char *end = memmem(b, avail, "\r\n\r\n", 4);
        if (end == NULL)
            return;
        size_t hl = (size_t)(end - b) + 4;
        /* HTTP/1.0 after a backend answered so (libcurl follows it) */
        static const char line[] = "POST /v1/chat/completions HTTP/1.1\r\n";
        FUZZ_CHECK(hl > sizeof line - 1 && memcmp(b, line, sizeof line - 4) == 0 &&
                       (b[sizeof line - 4] == '1' || b[sizeof line - 4] == '0') &&
                       memcmp(b + sizeof line - 3, "\r\n", 2) == 0,
                   "a request to a backend that is not POST /v1/chat/completions: %.*s",
                   (int)(hl > 200 ? 200 : hl), b);
        const char *h = b + sizeof line - 1;
        size_t hlen = hl - (sizeof line - 1);
        int n, id = 0;
        const char *v = head_field(h, hlen, "X-Request-Id", &n);
        FUZZ_CHECK(n == 1, "%d X-Request-Id headers in a request to a backend", n);
        while (*v == ' ')
            v++;
        if (strncmp(v, "fz-1\r\n", 6) == 0)
            id = 1;
        else if (strncmp(v, "fz-2\r\n", 6) == 0)
            id = 2;
        FUZZ_CHECK(id != 0, "X-Request-Id %.10s sent to a backend", v);
        head_field(h, hlen, "Expect", &n);
        FUZZ_CHECK(n == 0, "Expect sent to a backend");
        head_field(h, hlen, "Transfer-Encoding", &n);
        FUZZ_CHECK(n == 0, "Transfer-Encoding sent to a backend");
        v = head_field(h, hlen, "Content-Length", &n);
        FUZZ_CHECK(n == 1, "%d Content-Length headers sent to a backend", n);
        size_t want = strlen(bodies[st->P.stream[id - 1]]);
        FUZZ_CHECK((size_t)strtoul(v, NULL, 10) == want,
                   "Content-Length %.8s to a backend for a body of %zu bytes", v, want);
        FUZZ_CHECK(c->nreq < MAX_REQS, "more than %d requests on one backend connection",
                   MAX_REQS);
        struct breq *q = &c->reqs[c->nreq++];
        memset(q, 0, sizeof *q);
        q->id = id;
        q->wrote_at = c->wrote.len;
        c->in_used += hl;
        c->body_left = want;
    }
}

/* One turn of one backend: read, then write the next piece. */
static int backend_turn(struct state *st, struct bconn *c)
{
    int progress = 0;
    char buf[16384];

    while (c->fd >= 0 && !c->peer_eof) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            bytes_add(&c->in, buf, (size_t)n);
            progress = 1;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->peer_eof = 1; /* the router closed the connection */
            progress = 1;
        } else if (errno == EAGAIN) {
            break;
        }
    }
    read_requests(st, c);
    if (c->fd >= 0 && c->peer_eof) {
        bconn_close(c);
        return 1;
    }
    if (c->fd < 0 || c->wr_shut)
        return progress;
    /* a request without a script: the next one */
    while (c->sc == NULL && !c->silent && !c->wr_shut && c->answered < c->nreq) {
        const struct script *sc = c->answered == 0 ? c->own : next_script(st);
        if (sc == NULL || sc->end == END_REFUSE) {
            bconn_end(c, 0);
            return 1;
        }
        script_start(c, sc, c->answered++);
        progress = 1;
    }
    if (c->sc == NULL)
        return progress;
    if (c->wait > 0) {
        c->wait--;
        return 1;
    }
    const struct script *sc = c->sc;
    while (c->seg < sc->nseg) {
        size_t left = sc->seglen[c->seg] - c->seg_off;
        if (left > 0) {
            ssize_t n = send(c->fd, sc->seg[c->seg] + c->seg_off, left,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return progress;
            if (n < 0) { /* EPIPE, ECONNRESET: the router closed */
                c->peer_eof = 1;
                bconn_close(c);
                return 1;
            }
            bytes_add(&c->wrote, sc->seg[c->seg] + c->seg_off, (size_t)n);
            c->seg_off += (size_t)n;
            progress = 1;
            if ((size_t)n < left)
                return progress;
        }
        c->seg++;
        c->seg_off = 0;
        if (c->seg < sc->nseg) {
            c->wait = sc->pause - 1;
            return 1;
        }
    }
    /* the script is written: its end */
    c->sc = NULL;
    switch (sc->end) {
    case END_CLOSE:
        bconn_end(c, sc->reset);
        break;
    case END_HANG:
        c->silent = 1;
        break;
    default: /* keep: the next request gets the next script */
        break;
    }
    return 1;
}

/* --- the client --- */

static int client_read(struct state *st)
{
    char buf[16384];
    size_t want = st->P.slow ? SLOW_READ : sizeof buf;
    int got = 0;

    while (!st->eof && !st->left) {
        ssize_t n = recv(st->client, buf, want, 0);
        if (n > 0) {
            bytes_add(&st->out, buf, (size_t)n);
            FUZZ_CHECK(st->out.len <= OUT_MAX, "more than %u bytes of answers", OUT_MAX);
            got = 1;
        } else if (n == 0) {
            st->eof = got = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            break;
        } else {
            FUZZ_CHECK(errno == ECONNRESET, "recv: %s", strerror(errno));
            st->eof = got = 1;
        }
        if (st->P.slow)
            break; /* one read a turn */
    }
    return got;
}

/* The client goes away when its time has come. */
static int client_leave(struct state *st)
{
    if (st->left || st->P.leave == 0)
        return 0;
    if (st->P.leave >= 2 && st->out.len == 0)
        return 0; /* counting starts at the first byte of an answer */
    if (st->leave_in > 0) {
        st->leave_in--;
        return 1;
    }
    close(st->client);
    st->client = -1;
    st->left = 1;
    return 1;
}

static void client_send(struct state *st, int k)
{
    const char *p = st->req[k];
    size_t n = st->reqlen[k];

    while (n > 0) {
        ssize_t w = send(st->client, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            event_base_loop(st->base, EVLOOP_NONBLOCK);
            continue;
        }
        if (w < 0)
            return; /* the router closed: its answers say why */
        p += w;
        n -= (size_t)w;
    }
}

static char *make_request(int id, int stream, int close, size_t *len)
{
    const char *body = bodies[stream];
    char *r = NULL;
    int n = asprintf(&r,
                     "POST /v1/chat/completions HTTP/1.1\r\n"
                     "Host: router\r\n"
                     "Content-Type: application/json\r\n"
                     "X-Request-Id: fz-%d\r\n"
                     "%s"
                     "Content-Length: %zu\r\n"
                     "\r\n%s",
                     id, close ? "Connection: close\r\n" : "", strlen(body), body);
    FUZZ_CHECK(n > 0, "out of memory");
    *len = (size_t)n;
    return r;
}

/* --- the client's answers --- */

struct answer {
    struct resp rp;
    int framing;       /* 0 none (204, 304), 1 Content-Length, 2 chunked */
    long long cl;
    struct bytes body; /* decoded */
    int complete;
    int closes;        /* Connection: close */
};

static int is_digits(const char *v, size_t n)
{
    if (n == 0 || n > 19) /* up to 2^63 - 1 */
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

/* Read one answer at out[*pos] (the head checked for its framing).
 * 1: read (maybe cut); 0: the head is cut short. */
static int read_answer(const struct state *st, size_t *pos, struct answer *a)
{
    const char *o = st->out.p + *pos, *err = NULL, *v = NULL;
    size_t n = st->out.len - *pos, vl = 0, ncl, nte;
    int r = parse_resp_head(o, n, &a->rp, &err);

    if (r == 0)
        return 0;
    FUZZ_CHECK(r > 0, "a malformed answer head: %s: %.*s", err,
               (int)(n > 300 ? 300 : n), o);
    FUZZ_CHECK(a->rp.status >= 200, "an interim answer %d to the client", a->rp.status);
    ncl = resp_header(&a->rp, "Content-Length", &v, &vl);
    nte = resp_header(&a->rp, "Transfer-Encoding", NULL, NULL);
    if (a->rp.status == 204 || a->rp.status == 304) {
        FUZZ_CHECK(ncl == 0 && nte == 0, "a %d answer with framing headers", a->rp.status);
        a->framing = 0;
    } else if (ncl > 0) {
        FUZZ_CHECK(ncl == 1 && nte == 0 && is_digits(v, vl),
                   "an answer with %zu Content-Length (%.*s), %zu Transfer-Encoding", ncl,
                   (int)vl, v, nte);
        a->framing = 1;
        errno = 0;
        a->cl = strtoll(v, NULL, 10);
        FUZZ_CHECK(errno == 0, "Content-Length %.*s out of range", (int)vl, v);
    } else {
        FUZZ_CHECK(value_is(&a->rp, "Transfer-Encoding", "chunked"),
                   "an answer with neither Content-Length nor Transfer-Encoding: chunked "
                   "(status %d)", a->rp.status);
        a->framing = 2;
    }
    if (resp_header(&a->rp, "Connection", NULL, NULL) > 0) {
        FUZZ_CHECK(value_is(&a->rp, "Connection", "close"), "a Connection header not 'close'");
        a->closes = 1;
    }
    *pos += a->rp.head_len;
    o = st->out.p + *pos;
    n = st->out.len - *pos;
    if (a->framing == 0) {
        a->complete = 1;
    } else if (a->framing == 1) {
        size_t want = (size_t)a->cl, take = n < want ? n : want;
        bytes_add(&a->body, o, take);
        *pos += take;
        a->complete = take == want;
    } else {
        size_t used = 0;
        int rc = read_chunked(o, n, &used, &a->body);
        FUZZ_CHECK(rc != -2, "a malformed chunked answer body at byte %zu: %.*s", *pos,
                   (int)(n > 100 ? 100 : n), o);
        a->complete = rc == 1;
        *pos += rc == 1 ? used : n;
    }
    return 1;
}

/* Whole answers the client has read so far. */
static int answers_in(const struct state *st, int *last_closes)
{
    size_t pos = 0;
    int k = 0;

    *last_closes = 0;
    while (pos < st->out.len && k < 2) {
        struct answer a;
        memset(&a, 0, sizeof a);
        if (!read_answer(st, &pos, &a)) {
            free(a.body.p);
            break;
        }
        free(a.body.p);
        if (!a.complete)
            break;
        *last_closes = a.closes;
        k++;
    }
    return k;
}

/* --- the model of the backends' answers --- */

struct ref_ans {
    int legit;            /* its head is sound */
    int status;
    struct bytes store;   /* name NUL value NUL, for each header */
    size_t nh;
    const char *name[REF_MAX_HEADERS], *value[REF_MAX_HEADERS];
    int nobody, chunked;
    long long cl;         /* -1: none */
    struct bytes body;    /* as far as the stream has it */
    int body_complete;
    size_t end;           /* its end in the stream, when complete */
};

enum { REF_DONE, REF_PART, REF_BAD };

/*
 * A chunked body as libcurl 7/8's lib/http_chunks.c reads it: hex digits,
 * then anything up to an LF (extensions, a CR); the data; CRs, then an LF;
 * after the last chunk, trailer lines up to an empty one.  Lenient where
 * libcurl is strict (no limit on hex digits or trailer lines): the model
 * may take more as legit, never less.
 */
static int ref_chunked(const char *p, size_t n, size_t *used, struct bytes *body)
{
    enum { HEX, LF, DATA, POSTLF, TRAILER, TRAILER_CR, TRAILER_POSTCR, STOP } s = HEX;
    unsigned long long size = 0;
    size_t i = 0, digits = 0, trailer = 0;

    while (i < n) {
        unsigned char ch = (unsigned char)p[i];
        switch (s) {
        case HEX: {
            int d = ch >= '0' && ch <= '9' ? ch - '0'
                  : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f' ? (ch | 0x20) - 'a' + 10 : -1;
            if (d >= 0) {
                if (size > (0x7fffffffffffffffULL >> 4))
                    return REF_BAD; /* libcurl: too long a hex number */
                size = size * 16 + (unsigned)d;
                digits++;
                i++;
            } else {
                if (digits == 0)
                    return REF_BAD;
                s = LF; /* this byte is looked at again */
            }
            break;
        }
        case LF:
            if (ch == '\n')
                s = size == 0 ? TRAILER : DATA;
            i++;
            break;
        case DATA: {
            size_t take = n - i < size ? n - i : (size_t)size;
            bytes_add(body, p + i, take);
            i += take;
            size -= take;
            if (size == 0)
                s = POSTLF;
            break;
        }
        case POSTLF:
            if (ch == '\n') {
                s = HEX;
                digits = 0;
            } else if (ch != '\r') {
                return REF_BAD;
            }
            i++;
            break;
        case TRAILER:
            if (ch == '\r' || ch == '\n') {
                if (trailer > 0) {
                    trailer = 0;
                    s = TRAILER_CR;
                    if (ch == '\n')
                        break; /* the LF is read by TRAILER_CR */
                } else {
                    s = TRAILER_POSTCR;
                    break;
                }
            } else {
                trailer++;
            }
            i++;
            break;
        case TRAILER_CR:
            if (ch != '\n')
                return REF_BAD;
            s = TRAILER_POSTCR;
            i++;
            break;
        case TRAILER_POSTCR:
            if (ch != '\r' && ch != '\n') {
                s = TRAILER;
                break;
            }
            if (ch == '\r')
                i++;
            s = STOP;
            break;
        case STOP:
            if (ch != '\n')
                return REF_BAD;
            *used = i + 1;
            return REF_DONE;
        }
    }
    return REF_PART;
}

static void ref_free(struct ref_ans *a)
{
    free(a->store.p);
    free(a->body.p);
    memset(a, 0, sizeof *a);
}

/* One answer at p[0..n) of a connection's stream (`closed`: the backend
 * closed after it).  REF_DONE: whole (a->end); REF_PART: the stream ends
 * inside it; REF_BAD: not sound (a->legit says whether its head was). */
static int ref_answer(const char *p, size_t n, int closed, struct ref_ans *a)
{
    size_t pos = 0, kept = 0;
    size_t offs[REF_MAX_HEADERS][2];
    struct http_framing fr;
    int in_head = 0, minor = 0;
    const char *why;

    memset(a, 0, sizeof *a);
    a->cl = -1;
    memset(&fr, 0, sizeof fr);
    for (;;) {
        const char *lf = memchr(p + pos, '\n', n - pos);
        size_t l, nl, voff, vl;
        const char *line = p + pos;

        if (lf == NULL)
            return REF_PART;
        l = (size_t)(lf - line);
        pos += l + 1;
        if (l > 0 && line[l - 1] == '\r')
            l--;
        if (!in_head) {
            /* libcurl skips NUL bytes before a status line (seen after an
             * interim head): the answer that follows is still this one */
            while (l > 0 && *line == '\0') {
                line++;
                l--;
            }
            /* known finding "junk1xx" (open): after an interim head libcurl
             * drops whatever comes before the next status line, lines of it
             * too, which the router cannot see; set aside, skipped here */
            if (a->status != 0 && a->status < 200 &&
                (l < 5 || memcmp(line, "HTTP/", 5) != 0 ||
                 http_parse_status_line(line, l, &minor, &why) < 0))
                junk_after_1xx = 1; /* a line that is no status line is junk too */
            if (known_junk1xx && a->status != 0 && a->status < 200) {
                const char *at = memmem(line, l, "HTTP/", 5);
                if (at == NULL)
                    continue;
                l -= (size_t)(at - line);
                line = at;
            }
            int status = http_parse_status_line(line, l, &minor, &why);
            if (status < 0 || status == 101 ||
                (status < 200 && status != 100 && status != 102 && status != 103))
                return REF_BAD;
            a->status = status;
            a->nh = 0;
            a->store.len = 0;
            kept = 0;
            memset(&fr, 0, sizeof fr);
            in_head = 1;
            continue;
        }
        if (l == 0) {
            in_head = 0;
            if (a->status < 200)
                continue; /* interim */
            break;
        }
        if (http_parse_field_line(line, l, &nl, &voff, &vl, &why) != 0 ||
            a->nh == REF_MAX_HEADERS)
            return REF_BAD;
        /* upstream.c keeps name NUL value NUL in at most 64 KiB */
        if (kept + nl + 1 > REF_MAX_HEAD || kept + nl + 1 + vl + 1 > REF_MAX_HEAD)
            return REF_BAD;
        kept += nl + 1 + vl + 1;
        offs[a->nh][0] = a->store.len;
        bytes_add(&a->store, line, nl);
        bytes_add(&a->store, "", 1);
        offs[a->nh][1] = a->store.len;
        bytes_add(&a->store, line + voff, vl);
        bytes_add(&a->store, "", 1);
        a->nh++;
    }
    for (size_t i = 0; i < a->nh; i++) {
        a->name[i] = a->store.p + offs[i][0];
        a->value[i] = a->store.p + offs[i][1];
        http_framing_add(&fr, a->name[i], a->value[i]);
    }
    if (http_framing_error(&fr) != NULL || (fr.transfer_encodings > 0 && minor == 0))
        return REF_BAD;
    a->legit = 1;
    a->nobody = a->status == 204 || a->status == 304;
    a->chunked = fr.transfer_encodings > 0;
    if (fr.content_lengths > 0)
        a->cl = fr.length;
    if (a->nobody) {
        a->body_complete = 1;
        a->end = pos;
        return REF_DONE;
    }
    if (a->chunked) {
        size_t used = 0;
        int r = ref_chunked(p + pos, n - pos, &used, &a->body);
        if (r == REF_DONE) {
            a->body_complete = 1;
            a->end = pos + used;
        }
        return r;
    }
    if (a->cl >= 0) {
        size_t have = n - pos;
        if ((unsigned long long)have >= (unsigned long long)a->cl) {
            bytes_add(&a->body, p + pos, (size_t)a->cl);
            a->body_complete = 1;
            a->end = pos + (size_t)a->cl;
            return REF_DONE;
        }
        bytes_add(&a->body, p + pos, have);
        return REF_PART;
    }
    /* up to the close */
    bytes_add(&a->body, p + pos, n - pos);
    a->body_complete = closed;
    a->end = n;
    return closed ? REF_DONE : REF_PART;
}

/* --- checking an answer against the model --- */

static int ci_prefix(const char *v, size_t vl, const char *pre)
{
    size_t n = strlen(pre);
    return vl >= n && strncasecmp(v, pre, n) == 0;
}

static int named(const struct hdr *h, const char *name)
{
    return h->nlen == strlen(name) && strncasecmp(h->name, name, h->nlen) == 0;
}

static int router_header(const struct hdr *h)
{
    return named(h, "X-Request-Id") || ci_prefix(h->name, h->nlen, "X-Switchyard-") ||
           named(h, "Content-Length") || named(h, "Transfer-Encoding") ||
           named(h, "Connection");
}

static int is_prefix(const struct bytes *a, const struct bytes *of)
{
    return a->len <= of->len && (a->len == 0 || memcmp(a->p, of->p, a->len) == 0);
}

/* Does answer a come from the backend's answer e? NULL, or why not. */
static const char *matches(const struct answer *a, const struct ref_ans *e)
{
    const char *conn = NULL;
    int has_date = 0, sse = 0;
    size_t k = 0;

    if (!e->legit)
        return "not a sound answer";
    if (a->rp.status != e->status)
        return "another status";
    for (size_t i = 0; i < e->nh; i++)
        if (strcasecmp(e->name[i], "Connection") == 0)
            conn = e->value[i];
    for (size_t i = 0; i < e->nh; i++) {
        if (http_skip_response_header(e->name[i], conn) ||
            strcasecmp(e->name[i], "Content-Length") == 0)
            continue;
        if (strcasecmp(e->name[i], "Date") == 0)
            has_date = 1; /* then the router adds none */
        if (strcasecmp(e->name[i], "Content-Type") == 0 &&
            strncasecmp(e->value[i], "text/event-stream", 17) == 0)
            sse = 1;
    }
    /* the headers forwarded, in order */
    for (size_t i = 0; i < e->nh; i++) {
        if (http_skip_response_header(e->name[i], conn) ||
            strcasecmp(e->name[i], "Content-Length") == 0)
            continue;
        while (k < a->rp.nh && (router_header(&a->rp.h[k]) ||
                                (named(&a->rp.h[k], "Date") && !has_date)))
            k++;
        if (k == a->rp.nh)
            return "a header missing";
        const struct hdr *h = &a->rp.h[k++];
        if (h->nlen != strlen(e->name[i]) || memcmp(h->name, e->name[i], h->nlen) != 0 ||
            h->vlen != strlen(e->value[i]) || memcmp(h->value, e->value[i], h->vlen) != 0)
            return "another header";
    }
    for (; k < a->rp.nh; k++)
        if (!router_header(&a->rp.h[k]) && !(named(&a->rp.h[k], "Date") && !has_date))
            return "a header more";
    /* framing */
    if (e->nobody)
        return a->framing == 0 ? NULL : "framing of a body-less answer";
    if (sse || e->cl < 0) {
        if (a->framing != 2)
            return "not chunked";
    } else if (a->framing != 1 || a->cl != e->cl) {
        return "not the backend's Content-Length";
    }
    /* the body */
    if (sse) {
        if (a->complete && e->body_complete && same(a->body.p, a->body.len, e->body.p, e->body.len))
            return NULL;
        /* a prefix of the backend's body, then the error event (or, for a
         * client that left, a prefix of it) */
        for (size_t cut = a->body.len + 1; cut-- > 0;) {
            struct bytes pre = { a->body.p, cut, 0 };
            size_t rest = a->body.len - cut;
            if (!is_prefix(&pre, &e->body))
                continue;
            if (a->complete ? rest == sse_error_len : rest <= sse_error_len)
                if (rest == 0 || memcmp(a->body.p + cut, sse_error_event, rest) == 0)
                    if (a->complete || running->left)
                        return NULL;
        }
        return a->complete ? "an event stream not the backend's, nor cut with an error event"
                           : "an event stream cut";
    }
    if (a->complete)
        return e->body_complete && same(a->body.p, a->body.len, e->body.p, e->body.len)
                   ? NULL : "a whole body not the backend's whole body";
    return is_prefix(&a->body, &e->body) ? NULL : "a cut body not a prefix of the backend's";
}

static int has_forged_marker(const struct answer *a)
{
    for (size_t i = 0; i < a->rp.nh; i++) {
        const struct hdr *h = &a->rp.h[i];
        if (memmem(h->name, h->nlen, "njected", 7) != NULL ||
            (named(h, "Set-Cookie") && memmem(h->value, h->vlen, "from-backend", 12) != NULL))
            return 1;
    }
    return 0;
}

/* c's stream from byte `at` (its buffer is NULL before any byte) */
static const char *wrote_at(const struct bconn *c, size_t at)
{
    return c->wrote.p != NULL ? c->wrote.p + at : "";
}

static void show_ref(const char *what, const struct ref_ans *e)
{
    fprintf(stderr, "  %s: legit %d status %d, %zu headers, cl %lld chunked %d, body %zu "
            "bytes (complete %d)\n", what, e->legit, e->status, e->nh, e->cl, e->chunked,
            e->body.len, e->body_complete);
    for (size_t i = 0; i < e->nh; i++)
        fprintf(stderr, "    %s: %s\n", e->name[i], e->value[i]);
}

/* The backend answer that answer a (to request id) is, or abort. */
/* A backend's failed answer (5xx or 429) the router passed on when
 * nothing served the request: its status and whole body (the router keeps
 * 16 KiB), its Content-Type and Retry-After, nothing else of its head but
 * the router's own headers. */
static const char *matches_passed(const struct answer *a, const struct ref_ans *e)
{
    const char *type = "application/json", *retry_after = NULL;

    if (!e->legit)
        return "not a sound answer";
    if (a->rp.status != e->status || !(e->status == 429 || (e->status >= 500 && e->status <= 599)))
        return "another status, or no failure";
    if (!e->body_complete || !a->complete || e->body.len > 16 * 1024)
        return "not whole";
    if (!same(a->body.p, a->body.len, e->body.p, e->body.len))
        return "another body";
    for (size_t i = 0; i < e->nh; i++) {
        if (strcasecmp(e->name[i], "Content-Type") == 0)
            type = e->value[i];
        else if (strcasecmp(e->name[i], "Retry-After") == 0 && retry_after == NULL)
            retry_after = e->value[i];
    }
    for (size_t k = 0; k < a->rp.nh; k++) {
        const struct hdr *h = &a->rp.h[k];
        if (router_header(h) || named(h, "Date"))
            continue;
        if (named(h, "Content-Type") && h->vlen == strlen(type) &&
            memcmp(h->value, type, h->vlen) == 0)
            continue;
        if (named(h, "Retry-After") && retry_after != NULL && h->vlen == strlen(retry_after) &&
            memcmp(h->value, retry_after, h->vlen) == 0)
            continue;
        return "a header not passed on";
    }
    return NULL;
}

/* What try_entry holds an answer to: matches, or matches_passed. */
static const char *(*matcher)(const struct answer *, const struct ref_ans *) = matches;

/* Try e as the source of a; *found when it is. */
static void try_entry(const struct answer *a, struct ref_ans *e, int *found, const char **why)
{
    if (e->legit) {
        const char *w = matcher(a, e);
        if (w == NULL)
            *found = 1;
        else
            *why = w;
    }
    ref_free(e);
}

/* Is answer a (to request id) a legit answer of a backend?  `lenient`
 * takes in what a reused connection may carry when bytes come that no
 * request asked for: answers sent before their request, and any sound
 * head after a connection's first answer (the known finding "reuse"). */
static int legit_source(struct state *st, const struct answer *a, int id, int lenient,
                        const char **why)
{
    int found = 0;

    for (int ci = 0; ci < st->nconns && !found; ci++) {
        struct bconn *c = &st->conns[ci];
        struct ref_ans e;
        size_t pos = 0, first_end = 0;
        /* the answers in order, the n-th to the n-th request; on a reused
         * connection, one the backend began before that request came is
         * unsolicited: a client must not take it for the answer */
        for (int j = 0; j < c->nreq && !found; j++) {
            int r = ref_answer(wrote_at(c, pos), c->wrote.len - pos, c->we_closed, &e);
            size_t end = e.end;
            if (c->reqs[j].id == id && (j == 0 || pos >= c->reqs[j].wrote_at || lenient))
                try_entry(a, &e, &found, why);
            else
                ref_free(&e);
            if (j == 0)
                first_end = end;
            pos += end;
            if (r != REF_DONE)
                break;
        }
        /* the first answer of each script */
        for (int s = 0; s < c->nstarts && !found; s++) {
            int rq = c->start_req[s];
            if (rq >= c->nreq || c->reqs[rq].id != id)
                continue;
            ref_answer(wrote_at(c, c->start_at[s]), c->wrote.len - c->start_at[s], c->we_closed,
                       &e);
            try_entry(a, &e, &found, why);
        }
        if (!lenient || first_end == 0)
            continue;
        /* any sound head after the first answer, for a later request */
        int later = 0;
        for (int j = 1; j < c->nreq; j++)
            later |= c->reqs[j].id == id;
        for (size_t o = first_end; later && !found && o + 5 <= c->wrote.len; o++) {
            if (memcmp(c->wrote.p + o, "HTTP/", 5) != 0)
                continue;
            ref_answer(c->wrote.p + o, c->wrote.len - o, c->we_closed, &e);
            try_entry(a, &e, &found, why);
        }
    }
    return found;
}

static void check_backend_answer(struct state *st, const struct answer *a, int id)
{
    const char *why = "no legit answer to that request at all";

    if (legit_source(st, a, id, known_reuse, &why))
        return;
    /* junk1xx set aside: which answer libcurl takes after the junk (the
     * one behind it, or one later on the connection) is libcurl's; the
     * client side is still held to every other invariant */
    if (known_junk1xx && junk_after_1xx)
        return;
    fprintf(stderr, "answer to fz-%d, status %d, %zu headers, body %zu bytes, complete %d:\n",
            id, a->rp.status, a->rp.nh, a->body.len, a->complete);
    for (size_t i = 0; i < a->rp.nh; i++)
        fprintf(stderr, "  %.*s: %.*s\n", (int)a->rp.h[i].nlen, a->rp.h[i].name,
                (int)a->rp.h[i].vlen, a->rp.h[i].value);
    for (int ci = 0; ci < st->nconns; ci++) {
        struct bconn *c = &st->conns[ci];
        struct ref_ans e;
        ref_answer(wrote_at(c, 0), c->wrote.len, c->we_closed, &e);
        fprintf(stderr, " connection %d (%d requests):\n", ci, c->nreq);
        show_ref("first answer", &e);
        ref_free(&e);
    }
    FUZZ_CHECK(!legit_source(st, a, id, 1, &why),
               "a reused backend connection desynchronised: the answer to fz-%d is bytes no "
               "request of it asked for (known finding \"reuse\"; FUZZ_UPSTREAM_KNOWN=reuse "
               "sets it aside)", id);
    FUZZ_CHECK(!has_forged_marker(a), "a forged answer reached the client (fz-%d): %s", id,
               why);
    FUZZ_CHECK(0, "the answer to fz-%d is no legit answer of a backend to it: %s", id, why);
}

static void check_router_answer(const struct answer *a, int left)
{
    static const char *const own[] = { "X-Request-Id", "X-Switchyard-Model",
                                       "X-Switchyard-Attempts", "Retry-After", "Content-Type",
                                       "Content-Length", "Date", "Connection" };

    FUZZ_CHECK(a->rp.status == 502 || a->rp.status == 503 || a->rp.status == 504,
               "status %d to the client, not the router's, nor a backend's answer passed on",
               a->rp.status);
    FUZZ_CHECK(a->framing == 1 && (a->complete || left), "the router's %d not whole",
               a->rp.status);
    FUZZ_CHECK(value_is(&a->rp, "Content-Type", "application/json"),
               "the router's %d is not JSON", a->rp.status);
    for (size_t i = 0; i < a->rp.nh; i++) {
        int ok = 0;
        for (size_t j = 0; j < sizeof own / sizeof own[0]; j++)
            ok |= named(&a->rp.h[i], own[j]);
        FUZZ_CHECK(ok, "the router's %d carries a header %.*s", a->rp.status,
                   (int)a->rp.h[i].nlen, a->rp.h[i].name);
    }
    if (a->complete)
        check_json_error(a->body.p, a->body.len, a->rp.status);
}

static void validate(struct state *st)
{
    size_t pos = 0;
    int k = 0, ended = 0, attempts[2] = { 0, 0 }, heads[2] = { 0, 0 };
    int most = 1 + st->P.reroute < MAX_ATTEMPTS ? 1 + st->P.reroute : MAX_ATTEMPTS;

    while (pos < st->out.len) {
        struct answer a;
        const char *v = NULL;
        size_t vl = 0;
        char want[8];

        FUZZ_CHECK(!ended, "%zu bytes after the last answer of the connection: %.*s",
                   st->out.len - pos, (int)(st->out.len - pos > 80 ? 80 : st->out.len - pos),
                   st->out.p + pos);
        FUZZ_CHECK(k < 1 + st->sent2, "an answer more than the %d requests sent", 1 + st->sent2);
        memset(&a, 0, sizeof a);
        if (!read_answer(st, &pos, &a)) {
            FUZZ_CHECK(st->left, "an answer head cut short: %.*s",
                       (int)(st->out.len - pos > 200 ? 200 : st->out.len - pos),
                       st->out.p + pos);
            break; /* the client left while it came */
        }
        snprintf(want, sizeof want, "fz-%d", k + 1);
        FUZZ_CHECK(value_is(&a.rp, "X-Request-Id", want), "answer %d: X-Request-Id not %s",
                   k + 1, want);
        FUZZ_CHECK(value_is(&a.rp, "X-Switchyard-Model", "m"), "answer %d: X-Switchyard-Model",
                   k + 1);
        FUZZ_CHECK(resp_header(&a.rp, "X-Switchyard-Attempts", &v, &vl) == 1 &&
                       is_digits(v, vl),
                   "answer %d: X-Switchyard-Attempts", k + 1);
        attempts[k] = atoi(v);
        FUZZ_CHECK(attempts[k] >= 1 && attempts[k] <= most,
                   "answer %d: %d attempts, with at most %d", k + 1, attempts[k], most);
        static const char *const hop[] = { "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
                                           "Proxy-Authorization", "TE", "Trailer", "Upgrade",
                                           "X-Switchyard-Fallback" };
        for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
            FUZZ_CHECK(resp_header(&a.rp, hop[i], NULL, NULL) == 0, "answer %d has %s", k + 1,
                       hop[i]);
        if (a.rp.status == 429 || a.rp.status >= 500) {
            /* a backend's last failed answer passed on, or the router's own
             * (a 429 can only be the former) */
            const char *why = NULL;
            matcher = matches_passed;
            int passed = legit_source(st, &a, k + 1, known_reuse, &why);
            matcher = matches;
            if (!passed && !(known_junk1xx && junk_after_1xx))
                check_router_answer(&a, st->left);
        } else {
            check_backend_answer(st, &a, k + 1);
        }
        if (!a.complete) {
            FUZZ_CHECK(pos == st->out.len, "bytes after the cut answer %d", k + 1);
            FUZZ_CHECK(st->eof || st->left, "answer %d cut, and the connection stays open",
                       k + 1);
            ended = 1;
        }
        if (a.closes) {
            FUZZ_CHECK(st->eof || st->left,
                       "answer %d says Connection: close, the connection stays open", k + 1);
            ended = 1;
        }
        free(a.body.p);
        k++;
    }
    if (st->eof)
        FUZZ_CHECK(ended, "the router closed the connection after %d answers, for no reason", k);
    else if (!st->left)
        FUZZ_CHECK(k == 1 + st->sent2 && k == 2, "%d answers to %d requests, and no close", k,
                   1 + st->sent2);
    /* an answer the client left before seeing tells no attempts: the most */
    for (int i = k; i < 2 && st->left; i++)
        attempts[i] = most;
    if (st->P.close2 && k == 2)
        FUZZ_CHECK(ended, "fz-2 asked for Connection: close");

    /* no more request heads to backends than attempts declared */
    for (int ci = 0; ci < st->nconns; ci++) {
        struct bconn *c = &st->conns[ci];
        for (int j = 0; j < c->nreq; j++) {
            const char *want = bodies[st->P.stream[c->reqs[j].id - 1]];
            heads[c->reqs[j].id - 1]++;
            if (c->reqs[j].done)
                FUZZ_CHECK(same(c->reqs[j].body.p, c->reqs[j].body.len, want, strlen(want)),
                           "a backend got another body than the client's for fz-%d",
                           c->reqs[j].id);
        }
    }
    for (int i = 0; i < 2; i++)
        FUZZ_CHECK(heads[i] <= attempts[i],
                   "the backends read %d requests for fz-%d, which says %d attempts", heads[i],
                   i + 1, attempts[i]);
}

/* --- the run --- */

/* server.c's handle_request for what the client sends (it is static). */
static void handler(struct http_req *req, void *arg)
{
    struct worker *w = arg;

    atomic_fetch_add(&w->setup->worker_requests[w->id], 1);
    if (req->method == HTTP_METHOD_POST && dispatch_proxied_path(req->path) == 1) {
        dispatch_request(w, req);
        return;
    }
    http_refuse(req, 404, "no such endpoint", 0);
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static struct setup *make_setup(int reroute)
{
    char yaml[1024], err[512];
    struct sy_cfg *cfg = NULL;
    struct setup *s = NULL;

    snprintf(yaml, sizeof yaml,
             "workers: 1\n"
             "upstream_timeout: 20ms\n"
             "connect_timeout: 20ms\n"
             "idle_timeout: 20ms\n"
             "request_deadline: 1s\n"
             "retry_after_cap: 10ms\n"
             "reroute_attempts: %d\n"
             "max_attempts: %d\n"
             "routing: roundrobin\n"
             "fallback: []\n"
             "models:\n"
             "  m:\n"
             /* IP literals: nothing to resolve (the connector ignores them) */
             "    backends: [http://127.0.0.1:1, http://127.0.0.1:2]\n",
             reroute, MAX_ATTEMPTS);
    FUZZ_CHECK(config_load_string(yaml, "fuzz.yaml", &cfg, err, sizeof err) == 0, "config: %s",
               err);
    FUZZ_CHECK(config_finish(cfg, err, sizeof err) == 0, "config: %s", err);
    FUZZ_CHECK(setup_create(cfg, BUILT_PLUGIN_DIR, 1, &s, err, sizeof err) == 0, "setup: %s",
               err);
    return s;
}

static void show(const struct state *st)
{
    fprintf(stderr, "--- %d connections (%d refused), eof %d\n", st->nconns, st->refused,
            st->eof);
    for (int i = 0; i < st->nconns; i++) {
        const struct bconn *c = &st->conns[i];
        fprintf(stderr, "connection %d: %d requests (", i, c->nreq);
        for (int j = 0; j < c->nreq; j++)
            fprintf(stderr, "%sfz-%d", j ? ", " : "", c->reqs[j].id);
        fprintf(stderr, "), %d scripts, wrote %zu bytes, closed %d, router closed %d:\n%.*s\n",
                c->nstarts, c->wrote.len, c->we_closed, c->peer_eof, (int)c->wrote.len,
                c->wrote.p ? c->wrote.p : "");
    }
    fprintf(stderr, "--- %zu bytes to the client:\n%.*s\n---\n", st->out.len, (int)st->out.len,
            st->out.p ? st->out.p : "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    struct state *st;
    atomic_int nconns = 0;
    int sv[2], settle = 0;
    double t0;
    struct event *guard;
    struct timeval gtv = { 0, GUARD_US };

    if (size < NPARAM)
        return 0;
    junk_after_1xx = 0;
    if (!init) {
        log_access_on = 0;
        log_level = SY_LOG_ERROR + 1;
        signal(SIGPIPE, SIG_IGN);
        const char *known = getenv("FUZZ_UPSTREAM_KNOWN");
        known_reuse = known != NULL && strstr(known, "reuse") != NULL;
        known_pause = known != NULL && strstr(known, "pause") != NULL;
        known_fold = known != NULL && strstr(known, "fold") != NULL;
        known_junk1xx = known != NULL && strstr(known, "junk1xx") != NULL;
        real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT,
                                                                              "connect");
        socklen_t alen = sizeof listener_addr;
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        listener_addr.sin_family = AF_INET;
        listener_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        FUZZ_CHECK(listener >= 0 &&
                       bind(listener, (struct sockaddr *)&listener_addr, sizeof listener_addr) == 0 &&
                       listen(listener, 64) == 0 &&
                       getsockname(listener, (struct sockaddr *)&listener_addr, &alen) == 0,
                   "the backends' listener: %s", strerror(errno));
        /* loaded for good: the setups come and go, and a plugin unloaded
         * would take its coverage counters with it, under libFuzzer's feet */
        FUZZ_CHECK(dlopen(BUILT_PLUGIN_DIR "/roundrobin.so", RTLD_NOW | RTLD_NODELETE) != NULL,
                   "roundrobin.so: %s", dlerror());
        FUZZ_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == 0, "curl_global_init");
        char *e = http_error_json(502, "upstream_error",
                                  "the backend failed while streaming the answer");
        FUZZ_CHECK(e != NULL, "out of memory");
        sse_error_len = (size_t)asprintf(&sse_error_event, "data: %s\n\n", e);
        free(e);
        init = 1;
    }
    st = calloc(1, sizeof *st);
    FUZZ_CHECK(st != NULL, "out of memory");
    parse_input(st, data, size);
    running = st;

    st->base = event_base_new();
    FUZZ_CHECK(st->base != NULL, "event_base_new");
    st->setup = make_setup(st->P.reroute);
    atomic_fetch_add(&st->setup->refs, 1); /* the worker's */
    st->w.id = 0;
    st->w.base = st->base;
    st->w.setup = st->setup;
    st->w.listen_fd = -1;
    st->w.upstream = upstream_pool_new(st->base, st->setup->cfg->upstream_max_connections);
    FUZZ_CHECK(st->w.upstream != NULL, "upstream_pool_new");
    upstream_pool_set_connector(st->w.upstream, connector, st);
    const struct sy_cfg *cfg = st->setup->cfg;
    struct http_limits lim = {
        .max_head = cfg->max_header_size, .max_fields = (size_t)cfg->max_headers,
        .max_body = cfg->max_body, .client_timeout = cfg->client_timeout,
        .idle_timeout = cfg->client_idle_timeout > 0 ? cfg->client_idle_timeout
                                                     : cfg->client_timeout,
        .high_water = !st->P.slow ? cfg->stream_buffer
                      : known_pause ? 80 * 1024 : SLOW_HIGH_WATER,
        .max_connections = 0,
    };
    st->w.http = http_server_new(st->base, -1, &lim, &nconns, handler, &st->w);
    FUZZ_CHECK(st->w.http != NULL, "http_server_new");
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
               "socketpair: %s", strerror(errno));
    st->client = sv[0];
    if (st->P.slow) { /* answers back up: the relay pauses, then resumes */
        int sndbuf = SLOW_SNDBUF;
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    http_server_add_connection(st->w.http, sv[1]);
    guard = event_new(st->base, -1, EV_PERSIST, guard_cb, NULL);
    FUZZ_CHECK(guard != NULL && event_add(guard, &gtv) == 0, "the guard timer");

    for (int k = 0; k < 2; k++)
        st->req[k] = make_request(k + 1, st->P.stream[k], k == 1 && st->P.close2, &st->reqlen[k]);
    client_send(st, 0);
    if (!st->P.later) {
        client_send(st, 1);
        st->sent2 = 1;
    }
    t0 = now_s();
    for (;;) {
        int progress = 0, closes = 0, n;

        event_base_loop(st->base, EVLOOP_NONBLOCK);
        progress |= client_read(st);
        progress |= client_leave(st);
        for (int i = 0; i < st->nconns; i++)
            progress |= backend_turn(st, &st->conns[i]);
        n = answers_in(st, &closes);
        if (!st->sent2 && n == 1 && !closes && !st->eof && !st->left) {
            client_send(st, 1);
            st->sent2 = 1;
            progress = 1;
        }
        if (st->left) {
            /* the router notices, and lets go of everything */
            if (atomic_load(&st->w.active) == 0 && ++settle > SETTLE_TURNS)
                break;
        } else {
            if (st->eof)
                break;
            if (n == 2 && ++settle > SETTLE_TURNS)
                break;
        }
        if (now_s() - t0 >= RUN_LIMIT && getenv("FUZZ_UPSTREAM_SHOW") != NULL)
            show(st);
        FUZZ_CHECK(now_s() - t0 < RUN_LIMIT,
                   "no end after %.0f s: %d whole answers, %d backend connections, "
                   "%d requests in flight, client left %d", RUN_LIMIT, n, st->nconns,
                   atomic_load(&st->w.active), st->left);
        if (!progress && (st->left || n < 2))
            event_base_loop(st->base, EVLOOP_ONCE);
    }

    if (getenv("FUZZ_UPSTREAM_SHOW") != NULL)
        show(st);
    FUZZ_CHECK(atomic_load(&st->w.active) == 0, "%d requests in flight at the end",
               atomic_load(&st->w.active));
    validate(st);

    /* the worker goes as worker_free does it: connections, then the pool */
    http_server_free(st->w.http);
    FUZZ_CHECK(atomic_load(&nconns) == 0, "client connections left: %d", atomic_load(&nconns));
    upstream_pool_free(st->w.upstream);
    event_free(guard);
    FUZZ_CHECK(event_base_get_num_events(st->base, EVENT_BASE_COUNT_ADDED |
                                                       EVENT_BASE_COUNT_ACTIVE) == 0,
               "%d events left in the loop",
               event_base_get_num_events(st->base, EVENT_BASE_COUNT_ADDED |
                                                       EVENT_BASE_COUNT_ACTIVE));
    FUZZ_CHECK(atomic_load(&st->setup->refs) == 1, "setup references: %d",
               atomic_load(&st->setup->refs));
    atomic_fetch_sub(&st->setup->refs, 1);
    setup_destroy(st->setup);
    event_base_free(st->base);
    if (st->client >= 0)
        close(st->client);
    for (int i = 0; i < st->nconns; i++) {
        struct bconn *c = &st->conns[i];
        if (c->fd >= 0) { /* an RST: no TIME_WAIT left behind */
            struct linger lg = { 1, 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(c->fd);
        }
        free(c->in.p);
        free(c->wrote.p);
        for (int j = 0; j < c->nreq; j++)
            free(c->reqs[j].body.p);
    }
    free(st->req[0]);
    free(st->req[1]);
    free(st->out.p);
    free(st->input);
    free(st);
    running = NULL;
    return 0;
}
