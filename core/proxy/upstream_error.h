/*
 * upstream_error: what a backend's error answer says, for fallback plugins
 * (struct sy_attempt): the type, code and message of an OpenAI-shaped body
 * ({"error":{...}}, vLLM's {"object":"error",...}, TGI's {"error":"...",
 * "error_type":...}), or an excerpt of any other body.  Pure, unit-tested.
 */
#ifndef SY_UPSTREAM_ERROR_H
#define SY_UPSTREAM_ERROR_H

#include <stddef.h>

#define UPSTREAM_ERROR_EXCERPT 512

/* Each field malloc'd or NULL. */
struct upstream_error {
    char *type;
    char *code;     /* a number given as text */
    char *message;
    char *excerpt;  /* only when the body is not an OpenAI-shaped error */
};

/* Read body[0, len) (the first bytes of an error answer: it may be cut).
 * Fields it cannot find stay NULL; nothing at all for an empty body. */
void upstream_error_parse(const char *body, size_t len, struct upstream_error *out);
void upstream_error_free(struct upstream_error *e);

#endif
