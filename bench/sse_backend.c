/*
 * sse_backend.c - a tiny single-threaded HTTP/1.1 server for switchyard's
 * streaming benchmark.  Every request (whatever its path or body) is
 * answered 200 text/event-stream, chunked: CHUNKS chat.completion.chunk
 * events, the first at once and then one every CHUNK_DELAY_MS, then
 * "data: [DONE]".  Each event carries "t_us": the CLOCK_MONOTONIC time, in
 * microseconds, at which it was written, so a client on the same machine
 * can tell how long each chunk took to reach it.  Keep-alive, TCP_NODELAY.
 *
 * Why not tests/mock_backend: it has no send timestamps, and its timers
 * follow the kernel's tick (5 ms asked gives 7-8 ms on some VMs), so chunk
 * arrival times against its schedule drift by milliseconds - far more than
 * the microseconds a router adds.
 *
 * usage: sse_backend --port P [--host 127.0.0.1] [--chunks M] [--chunk-delay-ms D]
 *
 * Build: cc -O2 -o sse_backend sse_backend.c
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	char *in;		/* request bytes not yet consumed */
	size_t inlen, incap;
	char *out;		/* bytes not yet written */
	size_t outlen, outcap;
	int streaming;
	int sent;		/* chunks sent */
	long long due;		/* next chunk, us */
	struct conn *next;
};

static int chunks = 100, delay_ms = 10;
static struct conn *conns;
static int ep;
static volatile sig_atomic_t stopping;

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *grow(void *p, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 4096;

	while (c < need)
		c *= 2;
	if (c == *cap)
		return p;
	p = realloc(p, c);
	if (p == NULL) {
		fprintf(stderr, "sse_backend: out of memory\n");
		exit(1);
	}
	*cap = c;
	return p;
}

static void conn_close(struct conn *c)
{
	struct conn **pp;

	for (pp = &conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Write what is buffered; 0 ok, -1 the connection is gone. */
static int flush(struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	size_t off = 0;
	ssize_t n;

	while (off < c->outlen) {
		n = write(c->fd, c->out + off, c->outlen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->outlen - off);
	c->outlen -= off;
	ev.events = EPOLLIN | (c->outlen ? EPOLLOUT : 0);
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

static void out_add(struct conn *c, const char *s, size_t len)
{
	c->out = grow(c->out, &c->outcap, c->outlen + len);
	memcpy(c->out + c->outlen, s, len);
	c->outlen += len;
}

/* One HTTP chunk holding one SSE event. */
static void send_event(struct conn *c)
{
	char ev[512], fr[600];
	int n, m;

	if (c->sent < chunks)
		n = snprintf(ev, sizeof(ev),
			     "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
			     "\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,"
			     "\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}],\"t_us\":%lld}\n\n",
			     c->sent, now_us());
	else
		n = snprintf(ev, sizeof(ev), "data: [DONE]\n\n");
	m = snprintf(fr, sizeof(fr), "%x\r\n%s\r\n%s", n, ev, c->sent < chunks ? "" : "0\r\n\r\n");
	out_add(c, fr, (size_t)m);
	if (c->sent++ >= chunks) {
		c->streaming = 0;
	} else {
		c->due += (long long)delay_ms * 1000;
	}
}

/* A whole request in c->in?  Starts the answer and consumes it. */
static void maybe_start(struct conn *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
	char *end, *p;
	size_t hlen, blen = 0;

	if (c->streaming || c->inlen == 0)
		return;
	c->in = grow(c->in, &c->incap, c->inlen + 1);
	c->in[c->inlen] = '\0';
	if ((end = strstr(c->in, "\r\n\r\n")) == NULL)
		return;
	hlen = (size_t)(end - c->in) + 4;
	for (p = c->in; p < end && (p = strstr(p, "\r\n")) != NULL && p < end; p += 2)
		if (!strncasecmp(p + 2, "Content-Length:", 15))
			blen = strtoul(p + 17, NULL, 10);
	if (c->inlen < hlen + blen)
		return;
	memmove(c->in, c->in + hlen + blen, c->inlen - hlen - blen);
	c->inlen -= hlen + blen;
	out_add(c, head, sizeof(head) - 1);
	c->streaming = 1;
	c->sent = 0;
	c->due = now_us();
	send_event(c);
}

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event ev, evs[256];
	const char *host = "127.0.0.1";
	int port = -1, lfd, one = 1, i, n;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--chunks"))
			chunks = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--chunk-delay-ms"))
			delay_ms = atoi(argv[i + 1]);
		else
			break;
	}
	if (i != argc || port < 0 || port > 65535 || chunks < 0 || delay_ms < 0 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: sse_backend --port P [--host 127.0.0.1] [--chunks M] "
			"[--chunk-delay-ms D]\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)port);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0) {
		perror("sse_backend: listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

	while (!stopping) {
		long long t = now_us(), next = -1;
		struct conn *c, *cn;
		int timeout;

		for (c = conns; c != NULL; c = c->next)
			if (c->streaming && (next < 0 || c->due < next))
				next = c->due;
		timeout = next < 0 ? 1000 : next <= t ? 0 : (int)((next - t + 999) / 1000);
		n = epoll_wait(ep, evs, 256, timeout);
		for (i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			if (c == NULL) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof(*c));
					if (c == NULL)
						exit(1);
					c->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c->next = conns;
					conns = c;
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				ssize_t r;

				c->in = grow(c->in, &c->incap, c->inlen + 65536);
				r = read(c->fd, c->in + c->inlen, c->incap - c->inlen - 1);
				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					conn_close(c);
					continue;
				}
				if (r > 0)
					c->inlen += (size_t)r;
				maybe_start(c);
			}
			if (flush(c) != 0)
				conn_close(c);
		}
		t = now_us();
		for (c = conns; c != NULL; c = cn) {
			cn = c->next;
			if (!c->streaming || c->due > t)
				continue;
			send_event(c);
			maybe_start(c);	/* a request that came while streaming */
			if (flush(c) != 0)
				conn_close(c);
		}
	}
	return 0;
}
