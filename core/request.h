/*
 * request: what the core knows of a client request, and the body work done
 * on it: parse once with json-c, find `model`, and rewrite `model` in the
 * original bytes (every other byte kept) when a fallback changes it.
 */
#ifndef SY_REQUEST_H
#define SY_REQUEST_H

#include <stddef.h>

struct json_object;
struct evkeyvalq;

#define SY_REQUEST_ID_MAX 128

/* The handle plugins see as `sy_request`. */
struct sy_request {
    char id[SY_REQUEST_ID_MAX];
    const char *model;               /* the model being served now */
    const char *path;                /* e.g. "/v1/chat/completions" */
    struct json_object *body;        /* the parsed body (an object) */
    const struct evkeyvalq *headers; /* the client's headers */
    char *prompt;                    /* request_prompt_text()'s cache */
    size_t prompt_len;
    int prompt_state;                /* 0: not computed, 1: cached, -1: none */
};

enum body_error {
    BODY_OK = 0,
    BODY_NOT_JSON,
    BODY_NOT_OBJECT,
    BODY_NO_MODEL
};

/* Parse `len` bytes.  On BODY_OK, *out is the object (caller puts it) and
 * *model points into it.  Otherwise err says why, for a 400. */
enum body_error request_parse_body(const char *buf, size_t len,
                                   struct json_object **out,
                                   const char **model, char *err,
                                   size_t errlen);

/* New body bytes: `buf` with the value of its top-level "model" member
 * replaced by the JSON string `model`.  Every other byte stays as it was
 * (numbers, key order, spacing).  Caller frees *out.  -1 when buf has no
 * top-level string "model" (callers parse first, so: never) or on OOM. */
int request_rewrite_model(const char *buf, size_t len, const char *model,
                          char **out, size_t *outlen);

/* The prompt text of a request (see request_prompt in plugin.h), computed
 * once and cached in v.  0 and *text, or -1 when the body has none. */
int request_prompt_text(struct sy_request *v, const char **text, size_t *len);
/* Free what the view caches (not the body or headers it points to). */
void request_view_release(struct sy_request *v);

/* True when the body asks for a streamed answer ("stream": true). */
int request_wants_stream(struct json_object *body);

/* A request id from the client's X-Request-Id if it is safe to echo
 * (printable ASCII, no spaces, < SY_REQUEST_ID_MAX), else a new random one. */
void request_make_id(const char *client_value, char *out);

#endif
