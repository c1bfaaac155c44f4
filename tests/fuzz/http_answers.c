/* The reader of the router's answers shared by fuzz_http_conn and
 * fuzz_upstream (see http_answers.h). */
#define _GNU_SOURCE /* memmem */
#include "http_answers.h"

#include <json-c/json.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"

int same(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

void bytes_add(struct bytes *b, const void *d, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        FUZZ_CHECK(b->p != NULL, "out of memory");
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static int is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* 1: a whole head; 0: cut short; -1: malformed (*err says why). */
int parse_resp_head(const char *p, size_t n, struct resp *rp, const char **err)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    size_t i, hl;

    memset(rp, 0, sizeof *rp);
    if (end == NULL) {
        *err = "cut";
        return 0;
    }
    hl = (size_t)(end - p) + 4;
    rp->head_len = hl;
    if (hl < 17 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[9] < '1' || p[9] > '5' ||
        p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' || p[12] != ' ') {
        *err = "malformed status line";
        return -1;
    }
    rp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    for (i = 13; p[i] != '\r'; i++)
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e) {
            *err = "a control byte in the reason phrase";
            return -1;
        }
    if (i == 13 || p[i + 1] != '\n') {
        *err = "no reason phrase, or a bare CR";
        return -1;
    }
    for (i += 2; i < hl - 2;) {
        size_t name = i, value;
        while (is_tchar((unsigned char)p[i]))
            i++;
        if (i == name || p[i] != ':' || p[i + 1] != ' ') {
            *err = "malformed header line";
            return -1;
        }
        value = i + 2;
        for (i = value; p[i] != '\r' && p[i] != '\n' && p[i] != '\0'; i++)
            ;
        if (p[i] != '\r' || p[i + 1] != '\n') {
            *err = "a bare LF or a NUL in a header value";
            return -1;
        }
        FUZZ_CHECK(rp->nh < MAX_RESP_HEADERS, "more than %d answer headers", MAX_RESP_HEADERS);
        rp->h[rp->nh++] = (struct hdr){ p + name, p + value, value - 2 - name, i - value };
        i += 2;
    }
    return 1;
}

/* How many headers named `name`; *value the first one's. */
size_t resp_header(const struct resp *rp, const char *name, const char **value,
                   size_t *vlen)
{
    size_t count = 0, nl = strlen(name);

    for (size_t k = 0; k < rp->nh; k++)
        if (rp->h[k].nlen == nl && strncasecmp(rp->h[k].name, name, nl) == 0) {
            if (count++ == 0 && value != NULL) {
                *value = rp->h[k].value;
                *vlen = rp->h[k].vlen;
            }
        }
    return count;
}

int value_is(const struct resp *rp, const char *name, const char *want)
{
    const char *v = NULL;
    size_t vl = 0;

    return resp_header(rp, name, &v, &vl) == 1 && vl == strlen(want) && memcmp(v, want, vl) == 0;
}

/* A chunked body as the server writes it: "%zx\r\n" data "\r\n" ... "0\r\n\r\n".
 * 1: complete; 0: cut at a chunk boundary; -1: cut inside a chunk;
 * -2: malformed. */
int read_chunked(const char *p, size_t n, size_t *used, struct bytes *dec)
{
    size_t i = 0;

    for (;;) {
        size_t size = 0, digits = 0;
        if (i == n) {
            *used = i;
            return 0;
        }
        while (i < n && ((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            if (digits == 0 && p[i] == '0' && i + 1 < n && p[i + 1] != '\r')
                return -2; /* %zx: no leading zeros */
            if (++digits > 15)
                return -2;
            size = size * 16 + (size_t)(p[i] <= '9' ? p[i] - '0' : p[i] - 'a' + 10);
            i++;
        }
        if (i == n || (p[i] == '\r' && i + 1 == n))
            return -1;
        if (digits == 0 || p[i] != '\r' || p[i + 1] != '\n')
            return -2;
        i += 2;
        if (size == 0) {
            if (n - i < 2)
                return -1;
            if (p[i] != '\r' || p[i + 1] != '\n')
                return -2;
            *used = i + 2;
            return 1;
        }
        if (n - i < size + 2) {
            bytes_add(dec, p + i, n - i < size ? n - i : size);
            return -1;
        }
        bytes_add(dec, p + i, size);
        if (p[i + size] != '\r' || p[i + size + 1] != '\n')
            return -2;
        i += size + 2;
    }
}

void check_json_error(const char *body, size_t len, int status)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root, *err, *code, *msg;

    FUZZ_CHECK(tok != NULL, "out of memory");
    root = json_tokener_parse_ex(tok, body, (int)len);
    FUZZ_CHECK(root != NULL && json_tokener_get_parse_end(tok) == len,
               "refusal body is not JSON: %.*s", (int)len, body);
    FUZZ_CHECK(json_object_is_type(root, json_type_object) &&
                   json_object_object_get_ex(root, "error", &err) &&
                   json_object_is_type(err, json_type_object),
               "refusal body without an error object: %.*s", (int)len, body);
    FUZZ_CHECK(json_object_object_get_ex(err, "code", &code) &&
                   json_object_get_int(code) == status,
               "refusal's error.code is not %d: %.*s", status, (int)len, body);
    FUZZ_CHECK(json_object_object_get_ex(err, "message", &msg) &&
                   json_object_is_type(msg, json_type_string),
               "refusal without a message: %.*s", (int)len, body);
    json_object_put(root);
    json_tokener_free(tok);
}
