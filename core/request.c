#include "request.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* json-c's strict mode still takes 'single-quoted' object names, which the
 * byte-level rewrite below does not know.  In JSON a ' is only ever inside
 * a string: is there one outside? */
static int has_single_quote_outside_strings(const char *b, size_t n)
{
    int in_string = 0;

    if (memchr(b, '\'', n) == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (in_string) {
            if (b[i] == '\\')
                i++;
            else if (b[i] == '"')
                in_string = 0;
        } else if (b[i] == '"') {
            in_string = 1;
        } else if (b[i] == '\'') {
            return 1;
        }
    }
    return 0;
}

enum body_error request_parse_body(const char *buf, size_t len,
                                   struct json_object **out,
                                   const char **model, char *err,
                                   size_t errlen)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj = NULL, *m = NULL;
    enum body_error rc = BODY_NOT_JSON;

    *out = NULL;
    *model = NULL;
    if (tok == NULL) {
        snprintf(err, errlen, "out of memory");
        return BODY_NOT_JSON;
    }
    /* Strict: the byte-level rewrite below relies on standard JSON. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    if (len == 0) {
        snprintf(err, errlen, "request body is empty; expected a JSON object");
        goto done;
    }
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        enum json_tokener_error e = json_tokener_get_error(tok);
        snprintf(err, errlen, "request body is not valid JSON: %s",
                 e == json_tokener_continue ? "unexpected end of input"
                                            : json_tokener_error_desc(e));
        goto done;
    }
    for (size_t i = tok->char_offset; i < len; i++) {
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') {
            snprintf(err, errlen, "request body is not valid JSON: trailing data after the value");
            goto done;
        }
    }
    if (has_single_quote_outside_strings(buf, len)) {
        snprintf(err, errlen, "request body is not valid JSON: a name in single quotes");
        goto done;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "request body must be a JSON object");
        rc = BODY_NOT_OBJECT;
        goto done;
    }
    if (!json_object_object_get_ex(obj, "model", &m) ||
        !json_object_is_type(m, json_type_string) ||
        json_object_get_string_len(m) == 0) {
        snprintf(err, errlen, "request body must have a non-empty string field 'model'");
        rc = BODY_NO_MODEL;
        goto done;
    }
    /* "\u0000" in it: the router would route on the text before the NUL,
     * the backend read the whole */
    if (strlen(json_object_get_string(m)) != (size_t)json_object_get_string_len(m)) {
        snprintf(err, errlen, "request body's 'model' must not contain a NUL character (\\u0000)");
        rc = BODY_NO_MODEL;
        goto done;
    }
    *model = json_object_get_string(m);
    *out = obj;
    obj = NULL;
    rc = BODY_OK;
done:
    json_object_put(obj);
    json_tokener_free(tok);
    return rc;
}

/* --- a scanner over the top level of a JSON object already validated --- */

static size_t skip_ws(const char *b, size_t n, size_t i)
{
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    return i;
}

/* b[i] == '"': index just past the closing quote. */
static size_t skip_string(const char *b, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (b[i] == '\\')
            i++;
        else if (b[i] == '"')
            return i + 1;
    }
    return n;
}

static size_t skip_value(const char *b, size_t n, size_t i)
{
    int depth = 0;

    if (i < n && b[i] == '"')
        return skip_string(b, n, i);
    for (; i < n; i++) {
        char c = b[i];
        if (c == '"') {
            i = skip_string(b, n, i) - 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
            return i;
        }
    }
    return n;
}

/* Does the JSON string at b[start..end) (quotes included) say "model"? */
static int key_is_model(const char *b, size_t start, size_t end)
{
    int yes = 0;

    if (end - start == 7)
        return memcmp(b + start, "\"model\"", 7) == 0;
    if (memchr(b + start, '\\', end - start) != NULL) {
        /* escaped key, e.g. "mod\u0065l": let json-c decode it */
        char *copy = strndup(b + start, end - start);
        if (copy != NULL) {
            struct json_object *s = json_tokener_parse(copy);
            yes = s != NULL && json_object_is_type(s, json_type_string) &&
                  strcmp(json_object_get_string(s), "model") == 0;
            json_object_put(s);
            free(copy);
        }
    }
    return yes;
}

int request_rewrite_model(const char *buf, size_t len, const char *model,
                          char **out, size_t *outlen)
{
    size_t i = skip_ws(buf, len, 0), vstart = 0, vend = 0;
    int found = 0;
    struct json_object *js = NULL;
    const char *enc;
    size_t enclen;
    char *res;

    if (i >= len || buf[i] != '{')
        return -1;
    i++;
    for (;;) {
        size_t kstart, kend, v;
        i = skip_ws(buf, len, i);
        if (i >= len || buf[i] != '"')
            break;
        kstart = i;
        kend = skip_string(buf, len, i);
        i = skip_ws(buf, len, kend);
        if (i >= len || buf[i] != ':')
            return -1;
        v = skip_ws(buf, len, i + 1);
        i = skip_value(buf, len, v);
        /* json-c keeps the last of duplicate keys: so do we */
        if (key_is_model(buf, kstart, kend)) {
            vstart = v;
            vend = i;
            found = 1;
        }
        i = skip_ws(buf, len, i);
        if (i < len && buf[i] == ',') {
            i++;
            continue;
        }
        break;
    }
    if (!found || vstart >= len || buf[vstart] != '"')
        return -1;
    js = json_object_new_string(model);
    if (js == NULL)
        return -1;
    enc = json_object_to_json_string_length(js, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &enclen);
    res = malloc(len - (vend - vstart) + enclen + 1);
    if (res == NULL) {
        json_object_put(js);
        return -1;
    }
    memcpy(res, buf, vstart);
    memcpy(res + vstart, enc, enclen);
    memcpy(res + vstart + enclen, buf + vend, len - vend);
    *outlen = len - (vend - vstart) + enclen;
    res[*outlen] = '\0';
    *out = res;
    json_object_put(js);
    return 0;
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
        v->prompt_state = -1;
        if (v->body != NULL && json_object_object_get_ex(v->body, "prompt", &p)) {
            if (json_object_is_type(p, json_type_array) && json_object_array_length(p) > 0)
                p = json_object_array_get_idx(p, 0);
            if (json_object_is_type(p, json_type_string) &&
                append_text(&buf, &n, &cap, json_object_get_string(p),
                            (size_t)json_object_get_string_len(p), 0) == 0)
                v->prompt_state = 1;
        } else if (v->body != NULL && json_object_object_get_ex(v->body, "messages", &msgs) &&
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

void request_view_release(struct sy_request *v)
{
    free(v->prompt);
    v->prompt = NULL;
    v->prompt_state = 0;
}

int request_wants_stream(struct json_object *body)
{
    struct json_object *s;
    return json_object_object_get_ex(body, "stream", &s) &&
           json_object_is_type(s, json_type_boolean) && json_object_get_boolean(s);
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
