/* A scripted raw-socket backend (see raw_backend.h). */
#define _GNU_SOURCE
#include "raw_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RAW_MAX_CONNS 32
#define RAW_MAX_REQUEST (4 * 1024 * 1024) /* a connection sending more is dropped */
#define RAW_POLL_MS 100
#define RAW_SEND_TIMEOUT_S 2

struct raw_conn {
    int fd;
    char *buf;
    size_t len, cap;
};

struct raw_state {
    pthread_t thread;
    int started;
    int listen_fd;
    int wake[2];                 /* stop: a byte on wake[1] */
    atomic_int stop;
    atomic_int requests;
    pthread_mutex_t lock;        /* the script, while it is replaced or written */
    struct raw_answer answers[RAW_MAX_ANSWERS];
    char *data[RAW_MAX_ANSWERS]; /* owned copies of the answers' bytes */
    size_t nanswers;
    struct raw_conn conns[RAW_MAX_CONNS];
};

static void raw_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void conn_close(struct raw_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* Write all of data, or fail (the peer left, or 2 s without progress). */
static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Free the script's copies; the lock is held (or the thread is gone). */
static void script_clear(struct raw_state *s)
{
    for (size_t i = 0; i < s->nanswers; i++)
        free(s->data[i]);
    memset(s->data, 0, sizeof s->data);
    s->nanswers = 0;
}

static int script_set(struct raw_state *s, const struct raw_answer *answers, size_t n)
{
    if (n == 0 || n > RAW_MAX_ANSWERS)
        return -1;
    script_clear(s);
    for (size_t i = 0; i < n; i++) {
        size_t len = answers[i].len ? answers[i].len : strlen(answers[i].data);
        s->data[i] = malloc(len + 1);
        if (s->data[i] == NULL) {
            s->nanswers = i;
            script_clear(s);
            return -1;
        }
        memcpy(s->data[i], answers[i].data, len);
        s->data[i][len] = '\0';
        s->answers[i] = answers[i];
        s->answers[i].data = s->data[i];
        s->answers[i].len = len;
        if (s->answers[i].split >= len)
            s->answers[i].split = 0;
    }
    s->nanswers = n;
    return 0;
}

/* The Content-Length of a request head (0 when absent or unreadable). */
static size_t request_body_length(const char *head, size_t head_len)
{
    const char *p = head, *end = head + head_len;

    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (l > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
            char num[32];
            size_t nl = l - 15 < sizeof num - 1 ? l - 15 : sizeof num - 1;
            memcpy(num, p + 15, nl);
            num[nl] = '\0';
            long long v = strtoll(num, NULL, 10);
            return v > 0 && v < RAW_MAX_REQUEST ? (size_t)v : 0;
        }
        if (eol == NULL)
            break;
        p = eol + 2;
    }
    return 0;
}

/* Answer every whole request in the connection's buffer; -1 when the
 * connection is to be closed. */
static int serve_buffered(struct raw_state *s, struct raw_conn *c)
{
    for (;;) {
        char *blank = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (blank == NULL)
            return 0;
        size_t head_len = (size_t)(blank - c->buf) + 4;
        size_t total = head_len + request_body_length(c->buf, head_len);
        if (c->len < total)
            return 0;
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;

        int nth = atomic_fetch_add(&s->requests, 1);
        int keep = 0;
        pthread_mutex_lock(&s->lock);
        if (s->nanswers > 0) {
            size_t i = (size_t)nth < s->nanswers ? (size_t)nth : s->nanswers - 1;
            const struct raw_answer *a = &s->answers[i];
            int ok;
            if (a->split > 0) {
                ok = write_all(c->fd, a->data, a->split) == 0;
                if (ok) {
                    raw_sleep_ms(a->pause_ms > 0 ? a->pause_ms : 100);
                    ok = write_all(c->fd, a->data + a->split, a->len - a->split) == 0;
                }
            } else {
                ok = write_all(c->fd, a->data, a->len) == 0;
            }
            keep = ok && !a->close_after;
        }
        pthread_mutex_unlock(&s->lock);
        if (!keep)
            return -1;
    }
}

/* Bytes arrived on a connection: -1 when it is to be closed. */
static int conn_read(struct raw_state *s, struct raw_conn *c)
{
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 16384;
        if (cap > RAW_MAX_REQUEST)
            return -1;
        char *nb = realloc(c->buf, cap);
        if (nb == NULL)
            return -1;
        c->buf = nb;
        c->cap = cap;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return serve_buffered(s, c);
}

static void accept_one(struct raw_state *s)
{
    int fd = accept(s->listen_fd, NULL, NULL);
    struct timeval tv = { RAW_SEND_TIMEOUT_S, 0 };

    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (int i = 0; i < RAW_MAX_CONNS; i++) {
        if (s->conns[i].fd < 0) {
            s->conns[i].fd = fd;
            return;
        }
    }
    close(fd); /* full: refused by a close */
}

static void *raw_thread(void *arg)
{
    struct raw_state *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd p[RAW_MAX_CONNS + 2];
        int idx[RAW_MAX_CONNS + 2];
        nfds_t n = 0;

        p[n].fd = s->wake[0];
        p[n].events = POLLIN;
        idx[n++] = -2;
        p[n].fd = s->listen_fd;
        p[n].events = POLLIN;
        idx[n++] = -1;
        for (int i = 0; i < RAW_MAX_CONNS; i++) {
            if (s->conns[i].fd >= 0) {
                p[n].fd = s->conns[i].fd;
                p[n].events = POLLIN;
                idx[n++] = i;
            }
        }
        int ready = poll(p, n, RAW_POLL_MS);
        if (ready <= 0)
            continue;
        for (nfds_t k = 0; k < n && !atomic_load(&s->stop); k++) {
            if (p[k].revents == 0)
                continue;
            if (idx[k] == -2)
                break; /* woken to stop */
            if (idx[k] == -1) {
                accept_one(s);
                continue;
            }
            struct raw_conn *c = &s->conns[idx[k]];
            if (conn_read(s, c) < 0)
                conn_close(c);
        }
    }
    return NULL;
}

static void state_free(struct raw_state *s)
{
    for (int i = 0; i < RAW_MAX_CONNS; i++)
        conn_close(&s->conns[i]);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    script_clear(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int raw_backend_start(struct raw_backend *b, const struct raw_answer *answers, size_t n)
{
    struct raw_state *s = calloc(1, sizeof *s);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int one = 1;

    memset(b, 0, sizeof *b);
    if (s == NULL)
        return -1;
    s->listen_fd = s->wake[0] = s->wake[1] = -1;
    for (int i = 0; i < RAW_MAX_CONNS; i++)
        s->conns[i].fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    if (script_set(s, answers, n) != 0 || pipe(s->wake) != 0) {
        state_free(s);
        return -1;
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->listen_fd < 0 ||
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->listen_fd, 64) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) != 0 ||
        pthread_create(&s->thread, NULL, raw_thread, s) != 0) {
        state_free(s);
        return -1;
    }
    s->started = 1;
    b->st = s;
    b->port = ntohs(a.sin_port);
    snprintf(b->url, sizeof b->url, "http://127.0.0.1:%d", b->port);
    return 0;
}

int raw_backend_script(struct raw_backend *b, const struct raw_answer *answers, size_t n)
{
    int rc;

    if (b->st == NULL)
        return -1;
    pthread_mutex_lock(&b->st->lock);
    rc = script_set(b->st, answers, n);
    atomic_store(&b->st->requests, 0);
    pthread_mutex_unlock(&b->st->lock);
    return rc;
}

int raw_backend_requests(const struct raw_backend *b)
{
    return b->st != NULL ? atomic_load(&b->st->requests) : -1;
}

void raw_backend_stop(struct raw_backend *b)
{
    struct raw_state *s = b->st;

    if (s == NULL)
        return;
    atomic_store(&s->stop, 1);
    if (write(s->wake[1], "x", 1) < 0) {
        /* the poll timeout wakes it anyway */
    }
    if (s->started)
        pthread_join(s->thread, NULL);
    state_free(s);
    b->st = NULL;
    b->port = 0;
}
