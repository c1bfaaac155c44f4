#include "http_headers.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME(s) { s, sizeof s - 1 }
static const struct { const char *name; size_t len; } hop_by_hop[] = {
    NAME("Connection"), NAME("Keep-Alive"), NAME("Proxy-Connection"),
    NAME("Proxy-Authenticate"), NAME("Proxy-Authorization"), NAME("TE"),
    NAME("Trailer"), NAME("Trailers"), NAME("Transfer-Encoding"), NAME("Upgrade"),
};

int http_is_hop_by_hop(const char *name)
{
    /* called for every header of every request: compare only names of the
     * same length (most headers meet none: no strcasecmp at all) */
    size_t n = strlen(name);

    for (size_t i = 0; i < sizeof hop_by_hop / sizeof hop_by_hop[0]; i++)
        if (hop_by_hop[i].len == n && strcasecmp(name, hop_by_hop[i].name) == 0)
            return 1;
    return 0;
}

int http_connection_lists(const char *connection, const char *name)
{
    size_t n = strlen(name);
    const char *p = connection;

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) == n && strncasecmp(p, name, n) == 0)
            return 1;
        p = end;
    }
    return 0;
}

int http_skip_request_header(const char *name, const char *connection)
{
    return http_is_hop_by_hop(name) || strcasecmp(name, "Host") == 0 ||
           strcasecmp(name, "Content-Length") == 0 ||
           strcasecmp(name, "Expect") == 0 ||
           strcasecmp(name, "X-Request-Id") == 0 ||
           (connection != NULL && http_connection_lists(connection, name));
}

int http_skip_response_header(const char *name, const char *connection)
{
    return http_is_hop_by_hop(name) || strcasecmp(name, "X-Request-Id") == 0 ||
           strncasecmp(name, "X-Switchyard-", 13) == 0 ||
           (connection != NULL && http_connection_lists(connection, name));
}

int http_value_is_safe(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return 0;
    return 1;
}

const char *http_error_type(int code)
{
    switch (code) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 413: return "invalid_request_error";
    case 503: return "service_unavailable";
    case 504: return "timeout";
    default: return code >= 500 ? "server_error" : "invalid_request_error";
    }
}

char *http_error_json(int code, const char *type, const char *message)
{
    struct json_object *root = json_object_new_object();
    struct json_object *err = json_object_new_object();
    char *out = NULL;

    if (root == NULL || err == NULL) {
        json_object_put(root);
        json_object_put(err);
        return NULL;
    }
    json_object_object_add(err, "message", json_object_new_string(message));
    json_object_object_add(err, "type", json_object_new_string(type ? type : http_error_type(code)));
    json_object_object_add(err, "code", json_object_new_int(code));
    json_object_object_add(root, "error", err);
    out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return out;
}

int http_join_url(const char *base, const char *uri, char *out, size_t len)
{
    size_t bl = strlen(base);
    int n;

    if (bl >= 3 && strcmp(base + bl - 3, "/v1") == 0 && strncmp(uri, "/v1/", 4) == 0)
        uri += 3;
    n = snprintf(out, len, "%s%s", base, uri);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* value without surrounding blanks equals word (case-insensitive)? */
static int trimmed_equals(const char *value, const char *word)
{
    size_t n = strlen(word);
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, word, n) != 0)
        return 0;
    for (value += n; *value; value++)
        if (*value != ' ' && *value != '\t')
            return 0;
    return 1;
}

int http_parse_content_length(const char *value, long long *out)
{
    long long n = 0;

    if (*value == '\0')
        return -1;
    for (; *value; value++) {
        if (*value < '0' || *value > '9' || n > (LLONG_MAX - (*value - '0')) / 10)
            return -1;
        n = n * 10 + (*value - '0');
    }
    *out = n;
    return 0;
}

void http_framing_add(struct http_framing *f, const char *name, const char *value)
{
    if (strcasecmp(name, "Content-Length") == 0) {
        long long n = -1;
        if (http_parse_content_length(value, &n) != 0)
            f->length_invalid = 1;
        if (f->content_lengths++ == 0) {
            snprintf(f->first_length, sizeof f->first_length, "%s", value);
            f->length = n;
        }
        /* first_length keeps 23 characters: a value that long cannot be
         * shown to agree (the first may have been cut to match it) */
        else if (strlen(value) >= sizeof f->first_length - 1 ||
                 strcmp(f->first_length, value) != 0)
            f->lengths_differ = 1;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        f->transfer_encodings++;
        if (!trimmed_equals(value, "chunked"))
            f->encoding_not_chunked = 1;
    }
}

const char *http_framing_error(const struct http_framing *f)
{
    if (f->transfer_encodings > 0 && f->content_lengths > 0)
        return "both Content-Length and Transfer-Encoding: the body's length is ambiguous";
    if (f->length_invalid)
        return "malformed Content-Length";
    if (f->lengths_differ)
        return "Content-Length headers that disagree";
    if (f->transfer_encodings > 1)
        return "more than one Transfer-Encoding header";
    if (f->encoding_not_chunked)
        return "unsupported Transfer-Encoding (only chunked is accepted)";
    return NULL;
}

/* 0 when equal; the loop runs over the whole longer string either way. */
static unsigned char ct_differ(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen > blen ? alen : blen;
    unsigned char d = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        d |= (unsigned char)(x ^ y);
    }
    return d;
}

int http_bearer_matches(const char *authorization, char *const *keys, size_t n)
{
    const char *token;
    size_t tlen;
    int ok = 0;

    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    token = authorization + 7;
    while (*token == ' ')
        token++;
    tlen = strlen(token);
    while (tlen > 0 && (token[tlen - 1] == ' ' || token[tlen - 1] == '\t'))
        tlen--;
    if (tlen == 0)
        return 0;
    for (size_t i = 0; i < n; i++) /* no early exit: every key is compared */
        ok |= ct_differ(token, tlen, keys[i], strlen(keys[i])) == 0;
    return ok;
}
