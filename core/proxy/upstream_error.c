#include "upstream_error.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/* A JSON value as a string: strings as they are, numbers as text. */
static char *text_of(struct json_object *o)
{
    if (o == NULL)
        return NULL;
    switch (json_object_get_type(o)) {
    case json_type_string:
    case json_type_int:
    case json_type_double:
        return strdup(json_object_get_string(o));
    default:
        return NULL;
    }
}

static struct json_object *member(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The first bytes as one line of text: control bytes become spaces,
 * bytes that are not UTF-8 '?', cut at a character's end. */
static char *excerpt_of(const char *body, size_t len)
{
    size_t n = len < UPSTREAM_ERROR_EXCERPT ? len : UPSTREAM_ERROR_EXCERPT, o = 0;
    char *out = malloc(n + 1);

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)body[i];
        size_t seq = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        int ok = seq > 0 && i + seq <= n && !(seq == 2 && c < 0xC2) && !(c > 0xF4);
        for (size_t k = 1; ok && k < seq; k++)
            ok = ((unsigned char)body[i + k] & 0xC0) == 0x80;
        if (!ok) {
            if (i + (seq ? seq : 1) > n && seq > 1)
                break; /* a character cut by the excerpt's end */
            out[o++] = '?';
            i++;
            continue;
        }
        if (seq == 1) {
            out[o++] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
        } else {
            memcpy(out + o, body + i, seq);
            o += seq;
        }
        i += seq;
    }
    /* trailing blanks say nothing */
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    if (o == 0) {
        free(out);
        return NULL;
    }
    return out;
}

void upstream_error_parse(const char *body, size_t len, struct upstream_error *out)
{
    struct json_tokener *tok;
    struct json_object *root = NULL, *err, *src = NULL;

    memset(out, 0, sizeof *out);
    if (body == NULL || len == 0)
        return;
    if ((tok = json_tokener_new()) != NULL) {
        root = json_tokener_parse_ex(tok, body, (int)(len > 1 << 30 ? 1 << 30 : len));
        if (json_tokener_get_error(tok) != json_tokener_success) {
            json_object_put(root);
            root = NULL;
        }
        json_tokener_free(tok);
    }
    if (root != NULL && json_object_is_type(root, json_type_object)) {
        err = member(root, "error");
        if (err != NULL && json_object_is_type(err, json_type_object)) {
            src = err; /* OpenAI, llama.cpp, SGLang */
        } else if (err != NULL && json_object_is_type(err, json_type_string)) {
            out->message = text_of(err); /* TGI */
            out->type = text_of(member(root, "error_type"));
        } else {
            struct json_object *obj = member(root, "object");
            if (obj != NULL && json_object_is_type(obj, json_type_string) &&
                strcmp(json_object_get_string(obj), "error") == 0)
                src = root; /* vLLM */
        }
        if (src != NULL) {
            out->type = text_of(member(src, "type"));
            out->code = text_of(member(src, "code"));
            out->message = text_of(member(src, "message"));
        }
    }
    if (out->type == NULL && out->code == NULL && out->message == NULL)
        out->excerpt = excerpt_of(body, len);
    json_object_put(root);
}

void upstream_error_free(struct upstream_error *e)
{
    free(e->type);
    free(e->code);
    free(e->message);
    free(e->excerpt);
    memset(e, 0, sizeof *e);
}
