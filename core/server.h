/*
 * server: the HTTP side.  N worker threads, each with its own event_base,
 * evhttp on its own SO_REUSEPORT listening socket, and upstream pool; a
 * request lives and dies on one worker, so its path takes no locks.
 */
#ifndef SY_SERVER_H
#define SY_SERVER_H

#include <pthread.h>
#include <stddef.h>

struct evhttp_request;
struct setup;

struct worker {
    int id;
    struct event_base *base;
    struct evhttp *http;
    struct upstream_pool *upstream;
    struct setup *setup;
    int listen_fd;
    pthread_t thread;
    int running;             /* thread started */
};

struct server;

/* Bind host:port once per worker and start the workers.  -1 with the reason
 * in err. */
int server_start(struct setup *s, const char *host, int port, int nworkers,
                 struct server **out, char *err, size_t errlen);
/* Stop accepting, stop every worker, free everything. */
void server_stop(struct server *srv);

/* Answers made by the router itself. */
void reply_json(struct evhttp_request *req, int code, const char *json);
/* OpenAI-shaped error; adds Retry-After when retry_after > 0. */
void reply_error(struct evhttp_request *req, int code, const char *message,
                 int retry_after);

#endif
