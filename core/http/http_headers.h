/*
 * http_headers: which headers cross the proxy, and the router's own
 * OpenAI-shaped error bodies.  Pure functions, unit-tested.
 */
#ifndef SY_HTTP_HEADERS_H
#define SY_HTTP_HEADERS_H

#include <stddef.h>

/* Hop-by-hop headers (RFC 9110 7.6.1 and the classic list). */
int http_is_hop_by_hop(const char *name);
/* Does the Connection header value (a comma list) name `name`? */
int http_connection_lists(const char *connection, const char *name);
/* A client header that is not forwarded upstream: hop-by-hop, those the
 * Connection header names, and those the proxy sets itself (Host,
 * Content-Length, Expect, X-Request-Id). */
int http_skip_request_header(const char *name, const char *connection);
/* An upstream header that is not returned: hop-by-hop, those Connection
 * names, and those the router sets itself (X-Request-Id, X-Switchyard-*). */
int http_skip_response_header(const char *name, const char *connection);
/* A value safe to put on the wire: no CR, LF or NUL. */
int http_value_is_safe(const char *value, size_t len);

/* A backend's base URL joined with the client's path and query.  A base
 * ending in "/v1" (an OpenAI-style base URL such as a hosted gateway's)
 * takes "/v1/chat/completions" as "/chat/completions", so the prefix is
 * not doubled.  -1 when it does not fit in len. */
int http_join_url(const char *base, const char *uri, char *out, size_t len);

/* Request framing checks against smuggling: the body's length must be told
 * one way only.  Feed every request header to http_framing_add(), then ask
 * http_framing_error(): NULL when sound, else why not (for a 400). */
struct http_framing {
    int content_lengths;      /* Content-Length headers seen */
    int lengths_differ;
    int length_invalid;       /* one is not plain digits below 2^63 */
    long long length;         /* the (first) Content-Length's value */
    char first_length[24];
    int transfer_encodings;   /* Transfer-Encoding headers seen */
    int encoding_not_chunked; /* anything but exactly "chunked" */
};
void http_framing_add(struct http_framing *f, const char *name, const char *value);
/* A Content-Length value: one or more digits, nothing else, below 2^63.
 * 0 with *out, or -1. */
int http_parse_content_length(const char *value, long long *out);
const char *http_framing_error(const struct http_framing *f);

/* Does an Authorization header carry "Bearer K" for one of the n keys?
 * Compared in time that does not depend on where a key differs, nor on
 * which key matched. */
int http_bearer_matches(const char *authorization, char *const *keys, size_t n);

/* {"error":{"message":..,"type":..,"code":..}} into a new string (free()). */
char *http_error_json(int code, const char *type, const char *message);
/* The OpenAI error type for one of the router's statuses. */
const char *http_error_type(int code);

#endif
