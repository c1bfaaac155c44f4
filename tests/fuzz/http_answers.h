/*
 * Shared by the harnesses that read what the router writes to a client
 * (fuzz_http_conn, fuzz_upstream): a growing byte buffer, and a strict
 * reader of HTTP/1.1 answers as core/http/http_conn.c writes them: the status
 * line "HTTP/1.1 DDD reason", "Name: value" header lines, each ending in
 * CRLF, a blank line; chunked bodies as "%zx\r\n" data "\r\n" ... "0\r\n\r\n".
 * Anything else is malformed.
 */
#ifndef SY_FUZZ_HTTP_ANSWERS_H
#define SY_FUZZ_HTTP_ANSWERS_H

#include <stddef.h>

#define MAX_RESP_HEADERS 160 /* a backend's 128 forwarded, and the router's */

struct bytes {
    char *p;
    size_t len, cap;
};

/* Equal bytes (either pointer may be NULL when its length is 0). */
int same(const void *a, size_t alen, const void *b, size_t blen);
/* Append (aborts on OOM). */
void bytes_add(struct bytes *b, const void *d, size_t n);

struct hdr {
    const char *name, *value;
    size_t nlen, vlen;
};

/* An answer head; names and values point into the bytes it was read from. */
struct resp {
    int status;
    size_t head_len;
    struct hdr h[MAX_RESP_HEADERS];
    size_t nh;
};

/* 1: a whole head at p (rp filled); 0: cut short; -1: malformed (*err
 * says why). */
int parse_resp_head(const char *p, size_t n, struct resp *rp, const char **err);
/* How many headers named `name` (case-insensitive); *value the first one's. */
size_t resp_header(const struct resp *rp, const char *name, const char **value,
                   size_t *vlen);
/* Exactly one header `name`, and its value is `want`. */
int value_is(const struct resp *rp, const char *name, const char *want);
/* A chunked body as the router writes it, decoded into dec.  1: complete
 * (*used: its bytes); 0: cut at a chunk boundary; -1: cut inside a chunk;
 * -2: malformed. */
int read_chunked(const char *p, size_t n, size_t *used, struct bytes *dec);
/* The router's own error body: JSON {"error":{"message":"..","code":status}}
 * and nothing after it (aborts otherwise). */
void check_json_error(const char *body, size_t len, int status);

#endif
