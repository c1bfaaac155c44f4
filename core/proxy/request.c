#define _GNU_SOURCE /* strndup */
#include "request.h"

#include <json-c/json.h>
#include <json-c/json_pointer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "json_scan.h"
#include "multipart.h"

/* The members the router reads, as json_scan reports them: the last of a
 * repeated name wins, as in json-c. */
struct wanted {
    struct json_span model, stream;
    int has_model, has_stream;
    int models;          /* top-level "model" members seen */
};

static int note_member(void *ctx, const char *buf, const struct json_span *key,
                       const struct json_span *value)
{
    struct wanted *w = ctx;
    const char *k = buf + key->start;
    size_t klen = key->end - key->start;

    if (json_string_equals(k, klen, "model")) {
        w->model = *value;
        w->has_model = 1;
        w->models++;
    } else if (json_string_equals(k, klen, "stream")) {
        w->stream = *value;
        w->has_stream = 1;
    }
    return 0;
}

enum body_error request_parse_body(const char *buf, size_t len, struct body_info *info,
                                   char *err, size_t errlen)
{
    struct wanted w;
    struct json_scan_error e;
    enum json_scan_type top;
    size_t mlen;

    memset(&w, 0, sizeof w);
    info->model = NULL;
    info->stream = 0;
    info->models = 0;
    if (len == 0) {
        snprintf(err, errlen, "request body is empty; expected a JSON object");
        return BODY_NOT_JSON;
    }
    if (json_scan(buf, len, note_member, &w, &top, &e) != 0) {
        /* Python decodes the whole body before it reads any JSON: a body
         * that is not UTF-8 is that first, wherever the JSON went wrong.
         * (Accepted, the body is UTF-8 throughout: json_scan checks the
         * strings, and outside them only ASCII is JSON.) */
        size_t bad = json_utf8_check(buf, len);
        if (bad < len)
            snprintf(err, errlen, "request body is not valid UTF-8 (at byte %zu)", bad);
        else
            snprintf(err, errlen, "request body is not valid JSON: %s (at byte %zu)", e.what,
                     e.offset);
        return BODY_NOT_JSON;
    }
    if (top != JSON_T_OBJECT) {
        snprintf(err, errlen, "request body must be a JSON object");
        return BODY_NOT_OBJECT;
    }
    if (!w.has_model || w.model.type != JSON_T_STRING || w.model.end - w.model.start == 2) {
        snprintf(err, errlen, "request body must have a non-empty string field 'model'");
        return BODY_NO_MODEL;
    }
    /* decoding never makes a string longer than its token */
    mlen = w.model.end - w.model.start;
    info->model = malloc(mlen);
    if (info->model == NULL) {
        snprintf(err, errlen, "out of memory");
        return BODY_NOT_JSON;
    }
    mlen = json_string_decode(buf + w.model.start, mlen, info->model, mlen);
    /* "\u0000" in it: the router would route on the text before the NUL,
     * the backend read the whole */
    if (strlen(info->model) != mlen) {
        free(info->model);
        info->model = NULL;
        snprintf(err, errlen, "request body's 'model' must not contain a NUL character (\\u0000)");
        return BODY_NO_MODEL;
    }
    info->stream = w.has_stream && w.stream.type == JSON_T_TRUE;
    info->models = w.models;
    return BODY_OK;
}

struct json_object *request_json(struct sy_request *v)
{
    if (v->json_state == 0) {
        struct json_tokener *tok = json_tokener_new_ex(JSON_SCAN_MAX_DEPTH);
        v->json_state = -1;
        if (tok != NULL && v->body != NULL) {
            v->json = json_tokener_parse_ex(tok, v->body, (int)v->body_len);
            if (v->json != NULL && json_object_is_type(v->json, json_type_object))
                v->json_state = 1;
            else {
                json_object_put(v->json);
                v->json = NULL;
            }
        }
        json_tokener_free(tok);
    }
    return v->json;
}

int request_field(struct sy_request *v, const char *pointer, struct json_object **out)
{
    struct json_object *body = request_json(v);

    *out = NULL;
    if (body == NULL || pointer == NULL)
        return 0;
    return json_pointer_get(body, pointer, out) == 0;
}

const char *request_body_string(struct sy_request *v, const char *field)
{
    struct json_object *body = request_json(v), *s;

    if (body == NULL || !json_object_object_get_ex(body, field, &s) ||
        !json_object_is_type(s, json_type_string))
        return NULL;
    return json_object_get_string(s);
}

/* The values of every top-level "model" member, in order: a few inline,
 * more (a body that repeats the name that often) on the heap. */
struct model_values {
    struct json_span inl[4], *v;
    size_t n, cap, bytes; /* bytes: the values' lengths, summed */
};

static int note_model_value(void *ctx, const char *buf, const struct json_span *key,
                            const struct json_span *value)
{
    struct model_values *mv = ctx;

    if (!json_string_equals(buf + key->start, key->end - key->start, "model"))
        return 0;
    if (mv->n == mv->cap) {
        struct json_span *nv = mv->v == mv->inl ? malloc(2 * mv->cap * sizeof *nv)
                                                : realloc(mv->v, 2 * mv->cap * sizeof *nv);
        if (nv == NULL)
            return 1; /* stops the scan: out of memory */
        if (mv->v == mv->inl)
            memcpy(nv, mv->inl, sizeof mv->inl);
        mv->v = nv;
        mv->cap *= 2;
    }
    mv->v[mv->n++] = *value;
    mv->bytes += value->end - value->start;
    return 0;
}

/* Every top-level "model" gets the new name, not only the last one (the one
 * Python and json-c read, and request_parse_body): a backend whose parser
 * keeps the first of a repeated name must not see the client's model. */
int request_rewrite_model(const char *buf, size_t len, const char *model,
                          char **out, size_t *outlen)
{
    struct model_values mv;
    enum json_scan_type top;
    struct json_object *js = NULL;
    const char *enc;
    size_t enclen, from = 0, n = 0;
    char *res = NULL;
    int rc = -1;

    memset(&mv, 0, sizeof mv);
    mv.v = mv.inl;
    mv.cap = sizeof mv.inl / sizeof mv.inl[0];
    if (json_scan(buf, len, note_model_value, &mv, &top, NULL) != 0 || top != JSON_T_OBJECT ||
        mv.n == 0 || mv.v[mv.n - 1].type != JSON_T_STRING)
        goto out;
    js = json_object_new_string(model);
    if (js == NULL)
        goto out;
    enc = json_object_to_json_string_length(js, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &enclen);
    res = malloc(len - mv.bytes + mv.n * enclen + 1);
    if (res == NULL)
        goto out;
    for (size_t i = 0; i < mv.n; i++) {
        memcpy(res + n, buf + from, mv.v[i].start - from);
        n += mv.v[i].start - from;
        memcpy(res + n, enc, enclen);
        n += enclen;
        from = mv.v[i].end;
    }
    memcpy(res + n, buf + from, len - from);
    n += len - from;
    res[n] = '\0';
    *outlen = n;
    *out = res;
    rc = 0;
out:
    json_object_put(js);
    if (mv.v != mv.inl)
        free(mv.v);
    return rc;
}

/* Append a string to a growing buffer; -1 on OOM. */
static int append_text(char **buf, size_t *len, size_t *cap, const char *s,
                       size_t n, int separate)
{
    size_t need = *len + n + (separate && *len ? 1 : 0) + 1;
    if (need > *cap) {
        size_t ncap = need * 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    if (separate && *len)
        (*buf)[(*len)++] = '\n';
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* The text of one message's content: a string, or the "text" of its parts. */
static int append_content(char **buf, size_t *len, size_t *cap, struct json_object *content)
{
    if (json_object_is_type(content, json_type_string))
        return append_text(buf, len, cap, json_object_get_string(content),
                           (size_t)json_object_get_string_len(content), 1);
    if (!json_object_is_type(content, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        struct json_object *part = json_object_array_get_idx(content, i), *t;
        if (json_object_is_type(part, json_type_object) &&
            json_object_object_get_ex(part, "text", &t) && json_object_is_type(t, json_type_string) &&
            append_text(buf, len, cap, json_object_get_string(t),
                        (size_t)json_object_get_string_len(t), 1) != 0)
            return -1;
    }
    return 0;
}

int request_prompt_text(struct sy_request *v, const char **text, size_t *len)
{
    struct json_object *p, *msgs;
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (v->prompt_state == 0) {
        struct json_object *body = request_json(v);
        v->prompt_state = -1;
        if (body != NULL && json_object_object_get_ex(body, "prompt", &p)) {
            if (json_object_is_type(p, json_type_array) && json_object_array_length(p) > 0)
                p = json_object_array_get_idx(p, 0);
            if (json_object_is_type(p, json_type_string) &&
                append_text(&buf, &n, &cap, json_object_get_string(p),
                            (size_t)json_object_get_string_len(p), 0) == 0)
                v->prompt_state = 1;
        } else if (body != NULL && json_object_object_get_ex(body, "messages", &msgs) &&
                   json_object_is_type(msgs, json_type_array)) {
            int ok = 0;
            for (size_t i = 0; i < json_object_array_length(msgs); i++) {
                struct json_object *m = json_object_array_get_idx(msgs, i), *c;
                if (json_object_is_type(m, json_type_object) &&
                    json_object_object_get_ex(m, "content", &c) &&
                    (ok = append_content(&buf, &n, &cap, c)) != 0)
                    break;
            }
            if (ok == 0 && buf != NULL)
                v->prompt_state = 1;
        }
        if (v->prompt_state == 1) {
            v->prompt = buf;
            v->prompt_len = n;
        } else {
            free(buf);
        }
    }
    if (v->prompt_state != 1)
        return -1;
    *text = v->prompt;
    *len = v->prompt_len;
    return 0;
}

#define REQUEST_SLOTS 64 /* HEALTH_MAX_SOURCES */

void **request_slot(struct sy_request *v, unsigned source)
{
    if (source >= REQUEST_SLOTS)
        return NULL;
    if (v->slots == NULL && (v->slots = calloc(REQUEST_SLOTS, sizeof *v->slots)) == NULL)
        return NULL;
    return &v->slots[source];
}

void *request_slot_value(const struct sy_request *v, unsigned source)
{
    return v->slots != NULL && source < REQUEST_SLOTS ? v->slots[source] : NULL;
}

void request_view_release(struct sy_request *v)
{
    free(v->slots);
    v->slots = NULL;
    free(v->prompt);
    v->prompt = NULL;
    v->prompt_state = 0;
    json_object_put(v->json);
    v->json = NULL;
    v->json_state = 0;
}

/* xorshift64*, seeded once per thread: ids need to be unique, not secret,
 * and must not cost a syscall per request. */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        if (getrandom(&state, sizeof state, 0) != sizeof state || state == 0)
            state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state ^ 0x9E3779B97F4A7C15ull;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
}

void request_make_id(const char *client_value, char *out)
{
    if (client_value != NULL) {
        size_t n = strlen(client_value);
        int ok = n > 0 && n < SY_REQUEST_ID_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = client_value[i] > 0x20 && client_value[i] < 0x7f;
        if (ok) {
            memcpy(out, client_value, n + 1);
            return;
        }
    }
    snprintf(out, SY_REQUEST_ID_MAX, "%016llx%016llx",
             (unsigned long long)next_random(), (unsigned long long)next_random());
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int request_query_take(const char *target, const char *name, char *value, size_t vlen,
                       char *rest, size_t rlen)
{
    const char *q = strchr(target, '?'), *p;
    size_t nlen = strlen(name), used;
    int found = 0;

    if (vlen > 0)
        value[0] = '\0';
    if (q == NULL) {
        if (strlen(target) >= rlen)
            return -1;
        memcpy(rest, target, strlen(target) + 1);
        return 0;
    }
    used = (size_t)(q - target);
    if (strlen(target) >= rlen)
        return -1;
    memcpy(rest, target, used);
    for (p = q + 1; *p != '\0';) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if (!found && (size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            /* the value, %-decoded ('+' is a space in a form's query) */
            size_t o = 0;
            for (const char *c = p + nlen + 1; c < end; c++) {
                int ch = *c == '+' ? ' ' : (unsigned char)*c;
                if (*c == '%' && c + 2 < end && hex_value(c[1]) >= 0 && hex_value(c[2]) >= 0) {
                    ch = hex_value(c[1]) * 16 + hex_value(c[2]);
                    c += 2;
                }
                if (ch == 0 || o + 1 >= vlen)
                    return -1;
                value[o++] = (char)ch;
            }
            value[o] = '\0';
            found = 1;
        } else if (end > p) {
            /* kept as it came, '?' before the first kept, '&' between */
            size_t n = (size_t)(end - p);
            char sep = used == (size_t)(q - target) ? '?' : '&';
            if (used + n + 1 >= rlen)
                return -1;
            rest[used++] = sep;
            memcpy(rest + used, p, n);
            used += n;
        }
        p = amp ? amp + 1 : end;
    }
    rest[used] = '\0';
    if (!found) /* nothing taken: the target exactly as it came */
        memcpy(rest, target, strlen(target) + 1);
    return found;
}

/* A form field's value as a model name or a flag: UTF-8 text without
 * control characters, at most 1 KiB. */
static int form_text_ok(const char *v, size_t len)
{
    if (len == 0 || len > 1024 || json_utf8_check(v, len) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return 0;
    return 1;
}

enum body_error request_parse_form(const char *buf, size_t len, const char *boundary,
                                   size_t blen, struct body_info *info, char *err,
                                   size_t errlen)
{
    struct multipart_field f;
    char why[200] = "";
    int rc;

    memset(info, 0, sizeof *info);
    rc = multipart_find_field(buf, len, boundary, blen, "model", &f, why, sizeof why);
    if (rc == MULTIPART_BAD) {
        snprintf(err, errlen, "malformed multipart/form-data body: %s", why);
        return BODY_NOT_JSON;
    }
    if (rc == MULTIPART_ABSENT || !form_text_ok(buf + f.value_off, f.value_len)) {
        snprintf(err, errlen, rc == MULTIPART_ABSENT
                                  ? "the form has no \"model\" field"
                                  : "the form's \"model\" field is not a model name");
        return BODY_NO_MODEL;
    }
    if ((info->model = strndup(buf + f.value_off, f.value_len)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return BODY_NOT_JSON;
    }
    info->models = 1;
    /* a transcription may stream (stream=true), as the JSON ones do */
    if (multipart_find_field(buf, len, boundary, blen, "stream", &f, why, sizeof why) ==
            MULTIPART_FOUND &&
        f.value_len == 4 && strncasecmp(buf + f.value_off, "true", 4) == 0)
        info->stream = 1;
    return BODY_OK;
}

int request_rewrite_model_form(const char *buf, size_t len, const char *boundary, size_t blen,
                               const char *model, char **out, size_t *outlen)
{
    struct multipart_field f;
    char why[200];

    if (multipart_find_field(buf, len, boundary, blen, "model", &f, why, sizeof why) !=
        MULTIPART_FOUND)
        return -1;
    return multipart_replace_field(buf, len, &f, boundary, blen, model, strlen(model), out,
                                   outlen);
}
