/*
 * server: the HTTP side.  N worker threads, each with its own event_base,
 * HTTP server (http_conn) on its own SO_REUSEPORT listening socket, and
 * upstream pool; a request lives and dies on one worker, so its path takes
 * no locks.
 */
#ifndef SY_SERVER_H
#define SY_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct event;
struct handover;
struct http_req;
struct setup;

struct worker {
    int id;
    struct event_base *base;
    struct http_server *http;
    struct upstream_pool *upstream;
    struct setup *setup;     /* the one this worker serves from (see adopt) */
    int listen_fd;
    pthread_t thread;
    int running;             /* thread started */
    atomic_int active;       /* proxied requests in flight on this worker */
    struct server *srv;
    struct event *adopt_ev;  /* a reload's hand-over, made at start: a
                                reload allocates nothing, so cannot fail */
    struct handover *handover; /* the reload in progress, for adopt_ev */
};

struct server;

/* Bind host:port once per worker and start the workers.  -1 with the reason
 * in err. */
int server_start(struct setup *s, const char *host, int port, int nworkers,
                 struct server **out, char *err, size_t errlen);
/* Stop every worker and free everything (requests still running are cut). */
void server_stop(struct server *srv);
/* Hot reload: every worker moves to `s` for new requests; requests in flight
 * finish on the setup they started with.  Returns once every worker has
 * switched.  Main thread. */
void server_adopt(struct server *srv, struct setup *s);
/* Graceful shutdown, first step: stop accepting connections and close
 * keep-alive connections after their current answer.  Main thread. */
void server_drain(struct server *srv);
/* Proxied requests in flight over all workers. */
int server_active(struct server *srv);

/* Answers made by the router itself. */
void reply_json(struct http_req *req, int code, const char *json);
/* max_client_connections as configured, or when 0 (the default) half the
 * open-files limit: each client connection may hold a backend one too. */
int server_connection_cap(int configured);

#endif
