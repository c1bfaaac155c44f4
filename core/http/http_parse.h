/*
 * http_parse: HTTP/1.x request heads and chunked request bodies (RFC 9112),
 * read in the connection's own buffer, strictly: anything a proxy or
 * backend could read two ways (obs-fold, a space before the colon, a bare
 * CR, a malformed chunk size) is refused, so no request can be smuggled
 * past the router.  Pure functions over bytes, no I/O: unit-tested and
 * fuzzed (tests/fuzz/fuzz_http_parse.c).
 *
 * The parser works in place: on HTTP_PARSE_DONE it has written a NUL at the
 * end of the method, the target, every header name and every header value,
 * so each is a C string at buf + its offset.  Offsets (not pointers) are
 * kept so the caller may move the buffer (realloc) after parsing.
 */
#ifndef SY_HTTP_PARSE_H
#define SY_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum http_parse_result {
    HTTP_PARSE_DONE = 0,   /* a whole head (or chunked body) was read */
    HTTP_PARSE_MORE,       /* incomplete so far: read more and call again */
    HTTP_PARSE_BAD,        /* malformed: 400 */
    HTTP_PARSE_VERSION,    /* well-formed, but not HTTP/1.0 or HTTP/1.1: 505 */
    HTTP_PARSE_TOO_LARGE,  /* past a size limit: 431 for a head, 413 for a body */
};

enum http_method {
    HTTP_METHOD_GET, HTTP_METHOD_HEAD, HTTP_METHOD_POST, HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE, HTTP_METHOD_OPTIONS, HTTP_METHOD_PATCH,
    HTTP_METHOD_OTHER /* any other token: well-formed, answered 405/404 */
};

/* One header line: offsets into the buffer given to http_parse_head.
 * The value has its leading and trailing spaces and tabs removed. */
struct http_field {
    uint32_t name;
    uint32_t name_len;
    uint32_t value;
    uint32_t value_len;
};

struct http_head {
    enum http_method method;
    uint32_t method_off;   /* the method token as sent, e.g. "POST" */
    uint32_t target;       /* the request target as sent, e.g. "/v1/x?a=1" */
    uint32_t target_len;
    int minor;             /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    size_t nfields;        /* header lines read (all of them stored) */
    size_t head_len;       /* bytes from buf[0] to just past the blank line */
};

/*
 * Parse a request head from buf[0, len).  One empty line before the request
 * line is skipped (RFC 9112 2.2: a client's leftover after a body); two or
 * more are HTTP_PARSE_BAD.  Lines end in CRLF or a bare LF.
 *
 * Returns HTTP_PARSE_MORE while the blank line ending the head has not come
 * and len <= max_head; HTTP_PARSE_TOO_LARGE when the head is longer than
 * max_head bytes (or, complete, has more than max_fields header lines; then
 * *why says which).  *scanned is where the search for the end of the head
 * resumes: set it to 0 for a new head, and pass it back unchanged on every
 * call for the same head (it lets a head that arrives a byte at a time be
 * read in linear time).
 *
 * Rules (each violation is HTTP_PARSE_BAD with *why, a static message
 * for the client):
 * - request line: method SP target SP "HTTP/" DIGIT "." DIGIT, single
 *   spaces; method is a token (RFC 9110 tchar); target is one or more bytes
 *   0x21-0x7E; a well-formed version other than 1.0 and 1.1 is
 *   HTTP_PARSE_VERSION.
 * - header line: name is one or more tchar, then ':' at once (no space
 *   before the colon), then the value; a line starting with SP or HTAB
 *   (obs-fold) is refused; the value may hold HTAB, SP, 0x21-0x7E and
 *   0x80-0xFF, nothing else (no NUL, no CR but in a CRLF, no other
 *   control).
 * Nothing is written to buf unless the result is HTTP_PARSE_DONE.
 */
enum http_parse_result http_parse_head(char *buf, size_t len, size_t max_head,
                                       struct http_head *h, struct http_field *fields,
                                       size_t max_fields, size_t *scanned,
                                       const char **why);

/* The value of the first header named `name` (ASCII case-insensitive), as a
 * C string in buf; NULL when there is none. */
const char *http_head_field(const char *buf, const struct http_field *fields,
                            size_t nfields, const char *name);

/* Does the connection stay open after this request's answer?  HTTP/1.1:
 * yes unless the Connection header lists "close"; HTTP/1.0: only if it
 * lists "keep-alive".  `connection` may be NULL (no such header). */
int http_keep_alive(int minor, const char *connection);

/*
 * Response heads from backends, one line at a time, as an HTTP client
 * library hands them over (the line without its CRLF or LF).  A backend's
 * answer is untrusted input: it is held to the same grammar as a client's
 * request, so nothing it sends can be read two ways on the client's side.
 *
 * http_parse_status_line: "HTTP/" DIGIT "." DIGIT SP 3DIGIT [SP reason],
 * the major version 1 (libcurl reports "HTTP/2" and "HTTP/3" for https
 * backends: accepted too, as minor 1), the status 100-599, the reason
 * HTAB, SP, VCHAR or obs-text.  Returns the status, with *minor (0 for
 * HTTP/1.0), or -1 with *why.
 *
 * http_parse_field_line: a header line, by the request rules above (a
 * token name, ':' at once, a value of HTAB, SP, VCHAR and obs-text; a line
 * starting with SP or HTAB is obs-fold and refused).  0 with the name's
 * length and the value's offset and length (blanks around it trimmed), or
 * -1 with *why.
 */
int http_parse_status_line(const char *line, size_t len, int *minor, const char **why);
int http_parse_field_line(const char *line, size_t len, size_t *name_len,
                          size_t *value_off, size_t *value_len, const char **why);

/*
 * A chunked request body, decoded in place as it arrives.  The raw bytes
 * are buf[*in, len); the decoded body is written from buf[*out] on, and
 * *out <= *in always holds, so decoding never overwrites what is still to
 * be read.  Start with a zeroed struct and *in = *out = the offset where
 * the body starts (the end of the head).
 *
 * Returns HTTP_PARSE_MORE when every byte given was consumed and the body
 * goes on; HTTP_PARSE_DONE once the last chunk (size 0) and its trailer
 * section are read: *in is then just past them (where a pipelined next
 * request starts) and the body is buf[start, *out).  Trailer fields are
 * read and dropped.  HTTP_PARSE_TOO_LARGE when the decoded body would
 * pass max_body bytes, or the trailer section passes 8 KiB;
 * HTTP_PARSE_BAD with *why for a malformed size line (no hex digit, a size
 * that does not fit in 63 bits, a chunk-size line with its extension over
 * 8 KiB), data not followed by CRLF, a bare CR, or a malformed trailer
 * line.  Chunk extensions (";name=val")
 * are allowed and ignored.  Lines end in CRLF or a bare LF.
 */
struct http_chunked {
    int state;           /* where in the chunk grammar the decoder is */
    uint64_t left;       /* data bytes of the current chunk still to come */
    size_t line_bytes;   /* bytes of the current size/trailer line so far */
    size_t trailer_bytes;
    size_t decoded;      /* body bytes so far */
};

enum http_parse_result http_chunked_decode(struct http_chunked *c, char *buf,
                                           size_t *in, size_t len, size_t *out,
                                           size_t max_body, const char **why);

#endif
