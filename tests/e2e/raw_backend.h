/*
 * A raw-socket backend for the e2e tests, in-process: a thread listening on
 * 127.0.0.1 (a free port) that reads requests (the head up to its blank
 * line, then a Content-Length body) and answers each with bytes the test
 * scripted, well-formed or not.  Answer i goes to the i-th request read
 * overall (on any connection); the last one repeats.  Every wait is
 * bounded (poll timeouts, SO_SNDTIMEO), and stop joins the thread and
 * closes every socket.
 */
#ifndef SY_E2E_RAW_BACKEND_H
#define SY_E2E_RAW_BACKEND_H

#include <stddef.h>

#define RAW_MAX_ANSWERS 16

struct raw_answer {
    const char *data;  /* the bytes written, as they are */
    size_t len;        /* 0: strlen(data) */
    size_t split;      /* > 0: write data[0, split), pause, then the rest */
    int pause_ms;      /* the pause after the first piece (0: 100 ms) */
    int close_after;   /* close the connection once the answer is written */
};

struct raw_state;

struct raw_backend {
    int port;
    char url[64];      /* http://127.0.0.1:PORT */
    struct raw_state *st;
};

/* Listen and serve `answers` (n of them, 1 to RAW_MAX_ANSWERS; copied).
 * 0 on success. */
int raw_backend_start(struct raw_backend *b, const struct raw_answer *answers, size_t n);
/* Replace the script (copied) and set the request count back to 0; open
 * connections stay open. 0 on success. */
int raw_backend_script(struct raw_backend *b, const struct raw_answer *answers, size_t n);
/* Requests read so far (since the start or the last raw_backend_script). */
int raw_backend_requests(const struct raw_backend *b);
/* Stop the thread, close every socket, free everything. */
void raw_backend_stop(struct raw_backend *b);

#endif
