/*
 * Fuzz the HTTP-facing pure logic the relay runs on every request and every
 * upstream answer (core/http/http_headers.c, core/proxy/retry.c): request framing
 * (Content-Length / Transfer-Encoding), Connection lists and the header
 * filters, URL joining, Retry-After, bearer keys and error bodies.
 *
 * Input, one item per line:
 *   line 0: "NOW CAP LEFT" for Retry-After (numbers; defaults when missing)
 *   line 1: a backend base URL
 *   line 2: a request target (path and query); also an error message
 *   line 3: a Retry-After value
 *   line 4: an Authorization value; the keys are the X-Key header values
 *   line 5 on: request headers, "Name: value"
 *
 * Each result is checked against a small reference of what it should be.
 * (The upstream response-header parser, header_cb, is static in
 * core/proxy/upstream.c and needs libcurl: not fuzzed here.)
 */
#define _GNU_SOURCE /* strndup */
#include <json-c/json.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "http_headers.h"
#include "retry.h"

#define MAX_LINES 40
#define MAX_KEYS 8

struct header {
    char *name;
    char *value;
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* value, less blanks around it, equals word (any case)? */
static int ref_trimmed_equals(const char *value, const char *word)
{
    size_t n = strlen(value);
    while (n && is_blank(*value))
        value++, n--;
    while (n && is_blank(value[n - 1]))
        n--;
    return n == strlen(word) && strncasecmp(value, word, n) == 0;
}

/* Does the comma list name `name` (an item less its blanks, any case)? */
static int ref_lists(const char *list, const char *name)
{
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        const char *b = p, *e = p + len;
        while (b < e && is_blank(*b))
            b++;
        while (e > b && is_blank(e[-1]))
            e--;
        if ((size_t)(e - b) == strlen(name) && strncasecmp(b, name, e - b) == 0)
            return 1;
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

static void check_framing(const struct header *h, size_t n)
{
    struct http_framing f;
    size_t ncl = 0, nte = 0, long_cl = 0;
    const char *first_cl = NULL;
    int differ = 0, te_bad = 0, cl_bad = 0;

    memset(&f, 0, sizeof f);
    for (size_t i = 0; i < n; i++) {
        http_framing_add(&f, h[i].name, h[i].value);
        if (strcasecmp(h[i].name, "Content-Length") == 0) {
            if (ncl++ == 0)
                first_cl = h[i].value;
            else if (strcmp(first_cl, h[i].value) != 0)
                differ = 1;
            if (strlen(h[i].value) >= sizeof f.first_length - 1)
                long_cl = 1;
            /* plain digits, below 2^63 (at most 19 digits past leading 0s) */
            const char *v = h[i].value, *d = v;
            while (*d == '0')
                d++;
            if (*v == '\0' || strspn(v, "0123456789") != strlen(v) || strlen(d) > 19 ||
                (strlen(d) == 19 && strcmp(d, "9223372036854775807") > 0))
                cl_bad = 1;
        } else if (strcasecmp(h[i].name, "Transfer-Encoding") == 0) {
            nte++;
            if (!ref_trimmed_equals(h[i].value, "chunked"))
                te_bad = 1;
        }
    }
    const char *err = http_framing_error(&f);
    int want = (ncl && nte) || differ || nte > 1 || te_bad || cl_bad;
    /* sound: every ambiguous framing is refused */
    FUZZ_CHECK(!want || err != NULL,
               "ambiguous framing accepted (%zu Content-Length, %zu "
               "Transfer-Encoding, lengths differ %d, not chunked %d, bad length %d)",
               ncl, nte, differ, te_bad, cl_bad);
    /* and nothing sound is refused, save repeated lengths too long to keep */
    FUZZ_CHECK(want || err == NULL || (ncl > 1 && long_cl),
               "sound framing refused: %s", err);
}

static void check_connection(const struct header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "Connection") != 0)
            continue;
        for (size_t j = 0; j < n; j++) {
            const char *name = h[j].name;
            if (!*name)
                continue;
            int got = http_connection_lists(h[i].value, name);
            FUZZ_CHECK(got == ref_lists(h[i].value, name),
                       "Connection '%s' lists '%s': got %d", h[i].value, name, got);
            if (got) {
                FUZZ_CHECK(http_skip_request_header(name, h[i].value),
                           "request header '%s' named by Connection is forwarded", name);
                FUZZ_CHECK(http_skip_response_header(name, h[i].value),
                           "response header '%s' named by Connection is returned", name);
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        const char *name = h[j].name;
        if (http_is_hop_by_hop(name)) {
            FUZZ_CHECK(http_skip_request_header(name, NULL), "hop-by-hop '%s' forwarded", name);
            FUZZ_CHECK(http_skip_response_header(name, NULL), "hop-by-hop '%s' returned", name);
        }
        size_t vlen = strlen(h[j].value);
        FUZZ_CHECK(http_value_is_safe(h[j].value, vlen) ==
                   (strpbrk(h[j].value, "\r\n") == NULL), "value safety");
    }
}

static void check_join(const char *base, const char *uri)
{
    size_t bl = strlen(base);
    const char *u = uri;
    if (bl >= 3 && strcmp(base + bl - 3, "/v1") == 0 && strncmp(uri, "/v1/", 4) == 0)
        u = uri + 3;
    size_t want = bl + strlen(u);
    char *expect = malloc(want + 1);
    if (expect == NULL)
        return;
    memcpy(expect, base, bl);
    memcpy(expect + bl, u, strlen(u) + 1);
    /* exact-size buffers: one byte short, just enough, and none */
    for (size_t len = want; len <= want + 1; len++) {
        char *out = malloc(len ? len : 1);
        if (out == NULL)
            break;
        int rc = http_join_url(base, uri, out, len);
        if (len > want) {
            FUZZ_CHECK(rc == 0 && strcmp(out, expect) == 0,
                       "join '%s' + '%s' = '%s', want '%s'", base, uri,
                       rc == 0 ? out : "(failed)", expect);
        } else {
            FUZZ_CHECK(rc == -1, "join did not report a short buffer");
        }
        free(out);
    }
    char small[1];
    FUZZ_CHECK(http_join_url(base, uri, small, 0) == -1, "join into no buffer");
    free(expect);
}

static void check_retry_after(const char *params, const char *value)
{
    long long now = 1764032400; /* Tue, 25 Nov 2025 01:00:00 GMT */
    double cap = 5, left = 100;
    char *end;

    long long t = strtoll(params, &end, 10);
    if (end != params) {
        now = t < 0 ? 0 : t > (1LL << 40) ? (1LL << 40) : t;
        double c = strtod(end, &end);
        if (isfinite(c))
            cap = c < 0 ? 0 : c > 1e9 ? 1e9 : c;
        double l = strtod(end, &end);
        if (isfinite(l))
            left = l < -1e9 ? -1e9 : l > 1e9 ? 1e9 : l;
    }
    double d = retry_after_delay(value, (time_t)now, cap, left);
    FUZZ_CHECK(d >= 0 && d <= cap && d <= (left > 0 ? left : 0),
               "Retry-After '%s' (cap %g, left %g) -> %g", value, cap, left, d);
    /* as dispatch.c asks for the backend's own value */
    d = retry_after_delay(value, (time_t)now, 1e9, 1e9);
    FUZZ_CHECK(d >= 0 && d <= 1e9, "Retry-After '%s' (uncapped) -> %g", value, d);
}

static void check_bearer(const char *auth, const struct header *h, size_t n)
{
    char *keys[MAX_KEYS];
    size_t nkeys = 0;
    for (size_t i = 0; i < n && nkeys < MAX_KEYS; i++)
        if (strcasecmp(h[i].name, "X-Key") == 0)
            keys[nkeys++] = h[i].value;

    int want = 0;
    if (strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *tok = auth + 7;
        while (*tok == ' ')
            tok++;
        size_t tl = strlen(tok);
        while (tl && is_blank(tok[tl - 1]))
            tl--;
        for (size_t i = 0; tl && i < nkeys; i++)
            if (strlen(keys[i]) == tl && memcmp(keys[i], tok, tl) == 0)
                want = 1;
    }
    FUZZ_CHECK(http_bearer_matches(auth, keys, nkeys) == want,
               "bearer '%s' against %zu keys: want %d", auth, nkeys, want);
}

static void check_error_json(const char *message, size_t code_seed)
{
    int code = 400 + (int)(code_seed % 200);
    char *body = http_error_json(code, NULL, message);
    if (body == NULL)
        return;
    struct json_object *o = json_tokener_parse(body), *e, *m, *c;
    FUZZ_CHECK(o != NULL, "error body does not parse: %s", body);
    FUZZ_CHECK(json_object_object_get_ex(o, "error", &e) &&
               json_object_object_get_ex(e, "message", &m) &&
               json_object_object_get_ex(e, "code", &c), "error body shape: %s", body);
    FUZZ_CHECK(strcmp(json_object_get_string(m), message) == 0,
               "message '%s' came back as '%s'", message, json_object_get_string(m));
    FUZZ_CHECK(json_object_get_int(c) == code, "code");
    FUZZ_CHECK(http_error_type(code) != NULL, "error type");
    json_object_put(o);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *lines[MAX_LINES];
    size_t nlines = 0;
    struct header h[MAX_LINES];
    size_t nh = 0;

    /* lines, each its own allocation; a NUL ends a line's text early */
    for (size_t i = 0; i <= size && nlines < MAX_LINES;) {
        size_t j = i;
        while (j < size && data[j] != '\n')
            j++;
        char *l = strndup((const char *)data + i, j - i);
        if (l == NULL)
            break;
        lines[nlines++] = l;
        i = j + 1;
    }
    while (nlines < 5) {
        lines[nlines] = strdup("");
        if (lines[nlines] == NULL)
            goto out;
        nlines++;
    }
    for (size_t i = 5; i < nlines; i++) {
        char *colon = strchr(lines[i], ':');
        if (colon == NULL)
            continue;
        const char *v = colon + 1;
        while (is_blank(*v))
            v++;
        h[nh].name = strndup(lines[i], (size_t)(colon - lines[i]));
        h[nh].value = strdup(v);
        if (h[nh].name == NULL || h[nh].value == NULL) {
            free(h[nh].name);
            free(h[nh].value);
            break;
        }
        nh++;
    }

    check_framing(h, nh);
    check_connection(h, nh);
    check_join(lines[1], lines[2]);
    check_retry_after(lines[0], lines[3]);
    check_bearer(lines[4], h, nh);
    check_error_json(lines[2], size);

    for (size_t i = 0; i < nh; i++) {
        free(h[i].name);
        free(h[i].value);
    }
out:
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    return 0;
}
