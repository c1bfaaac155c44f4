/*
 * request: what the core knows of a client request, and the body work done
 * on it: one strict pass over the bytes (json_scan) to validate them and
 * find `model` and `stream`, no tree built; json-c parses the body only when
 * a plugin asks for more of it.  `model` (every top-level one, should the
 * name repeat) is rewritten in the original bytes (every other byte kept)
 * when a fallback changes it.
 */
#ifndef SY_REQUEST_H
#define SY_REQUEST_H

#include <stddef.h>

struct json_object;
struct http_req;

#define SY_REQUEST_ID_MAX 128

/* The handle plugins see as `sy_request`. */
struct sy_request {
    char id[SY_REQUEST_ID_MAX];
    const char *model;               /* the model being served now */
    const char *path;                /* e.g. "/v1/chat/completions" */
    const char *body;                /* the client's body: a valid JSON object */
    size_t body_len;
    const struct http_req *http;     /* the client's request: its headers */
    struct json_object *json;        /* request_json()'s cache */
    int json_state;                  /* 0: not parsed, 1: parsed, -1: failed */
    char *prompt;                    /* request_prompt_text()'s cache */
    size_t prompt_len;
    int prompt_state;                /* 0: not computed, 1: cached, -1: none */
    void **slots;                    /* plugins' request_slot()s, by source;
                                        allocated when one is asked for */
};

/* A plugin's slot (by its health source index, unique per plugin name) for
 * this request: its address, allocated on first use (NULL on OOM); or the
 * value, NULL when never set. */
void **request_slot(struct sy_request *v, unsigned source);
void *request_slot_value(const struct sy_request *v, unsigned source);

enum body_error {
    BODY_OK = 0,
    BODY_NOT_JSON,
    BODY_NOT_OBJECT,
    BODY_NO_MODEL
};

/* What the router needs of a body. */
struct body_info {
    char *model; /* the top-level "model", decoded; malloc'd, caller frees */
    int stream;  /* the top-level "stream" is true */
    int models;  /* top-level "model" members: more than 1, and the body is
                    forwarded with all of them set to the one routed on */
};

/* Validate `len` bytes as a JSON object with a non-empty string "model"
 * (the last one, if the name repeats, as Python's json and json-c read it)
 * free of NUL characters, read as Python's json.loads reads a body: all of
 * it UTF-8 (err says "not valid UTF-8" and where, before any JSON error),
 * no integer of more than JSON_SCAN_MAX_INT_DIGITS digits, and json_scan's
 * strict JSON.  On BODY_OK, *info is filled; otherwise info->model is NULL
 * and err says why, for a 400. */
enum body_error request_parse_body(const char *buf, size_t len, struct body_info *info,
                                   char *err, size_t errlen);

/* The same of a multipart/form-data body (boundary from its Content-Type,
 * multipart.h): its "model" field (UTF-8 text, no control characters, at
 * most 1 KiB) and "stream"; the framing of the whole body is checked.
 * BODY_NO_MODEL without one, BODY_NOT_JSON for a malformed form. */
enum body_error request_parse_form(const char *buf, size_t len, const char *boundary,
                                   size_t blen, struct body_info *info, char *err,
                                   size_t errlen);
/* The form with its "model" field set to `model`, every other byte as it
 * was.  Caller frees *out; -1 when it cannot be (no field). */
int request_rewrite_model_form(const char *buf, size_t len, const char *boundary, size_t blen,
                               const char *model, char **out, size_t *outlen);

/* The body as a json-c tree, parsed on first use and kept with the view;
 * NULL if json-c cannot read it (e.g. nested deeper than its limit). */
struct json_object *request_json(struct sy_request *v);

/* New body bytes: `buf` with the value of every top-level "model" member
 * (all of a repeated name, whatever their type, so that a backend that
 * keeps the first of duplicates reads the new name too) replaced by the
 * JSON string `model`; nested "model" keys are left alone.  Every other
 * byte stays as it was (numbers, key order, spacing).  Caller frees *out.
 * -1 when buf's last top-level "model" is not a string or there is none
 * (callers parse first, so: never) or on OOM. */
int request_rewrite_model(const char *buf, size_t len, const char *model,
                          char **out, size_t *outlen);

/* The value at an RFC 6901 JSON pointer in the body's tree (request_json):
 * 1 and *out (NULL for a JSON null) when there is one, 0 when not. */
int request_field(struct sy_request *v, const char *pointer, struct json_object **out);

/* The prompt text of a request (see request_prompt in plugin.h), computed
 * once and cached in v.  0 and *text, or -1 when the body has none. */
int request_prompt_text(struct sy_request *v, const char **text, size_t *len);
/* A top-level string member of the body, decoded; NULL when there is none
 * or it is not a string.  Lives as long as the view's caches. */
const char *request_body_string(struct sy_request *v, const char *field);
/* Free what the view caches (not the body or headers it points to). */
void request_view_release(struct sy_request *v);

/* The query parameter `name` of a request target ("/sleep?id=E&level=1"):
 * 1 with its value %-decoded into value (vlen bytes) and the target
 * without it in rest ("/sleep?level=1"), 0 when absent (rest: the target
 * as it is), -1 when a buffer is too small or the value holds a NUL.  The
 * first of a repeated name is taken; the others stay in rest. */
int request_query_take(const char *target, const char *name, char *value, size_t vlen,
                       char *rest, size_t rlen);

/* A request id from the client's X-Request-Id if it is safe to echo
 * (printable ASCII, no spaces, < SY_REQUEST_ID_MAX), else a new random one. */
void request_make_id(const char *client_value, char *out);

#endif
