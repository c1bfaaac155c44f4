/*
 * Fuzz the request body: request_parse_body, then, when it parses,
 * request_rewrite_model, request_prompt_text and request_body_string.
 *
 * Input: the body, optionally followed by a NUL and the model name to write
 * (split at the last NUL; without one, or with an empty name, "fallback-m").
 *
 * Invariants: a body that is not UTF-8 (by a plain decoder of this file) is
 * refused as "not valid UTF-8" at the byte where the decoder stops, whatever
 * else is wrong with it, and no other body is; a failed parse leaves
 * nothing and says why; a parse gives a
 * non-empty model, the one json-c reads too (when json-c reads the body:
 * json_scan is stricter, see core/proxy/json_scan.c; and unless the body has a
 * "\u0000" escape: json-c cuts names there, so "model\u0000x" is "model" to
 * it and another name to us and to the backends' JSON parsers, Python's
 * among them).  When the body parses:
 *   - the rewrite succeeds, and its result parses too;
 *   - the result has as many top-level "model" members as the body, each of
 *     them a string that is exactly the new name (a UTF-8 one: a name that
 *     is not, from the input, becomes "fallback-m");
 *   - every other top-level member is equal to the original's (same keys,
 *     json_object_equal values, or the same text where json-c cannot compare);
 *   - prompt extraction and body fields work on both bodies.
 */
#define _GNU_SOURCE /* memrchr */
#include <json-c/json.h>
#include <string.h>

#include "fuzz.h"
#include "json_scan.h"
#include "request.h"

/* Where s[0..n) stops being UTF-8 (overlong forms, surrogates, past
 * U+10FFFF, cut short, stray continuation bytes), or n: decoded plainly. */
static size_t ref_utf8_valid_to(const char *s, size_t n)
{
    const unsigned char *b = (const unsigned char *)s;
    size_t p = 0;

    while (p < n) {
        unsigned cp;
        size_t len;
        if (b[p] < 0x80) {
            p++;
            continue;
        }
        if ((b[p] & 0xE0) == 0xC0)
            len = 2, cp = b[p] & 0x1Fu;
        else if ((b[p] & 0xF0) == 0xE0)
            len = 3, cp = b[p] & 0x0Fu;
        else if ((b[p] & 0xF8) == 0xF0)
            len = 4, cp = b[p] & 0x07u;
        else
            return p;
        if (len > n - p)
            return p;
        for (size_t i = 1; i < len; i++) {
            if ((b[p + i] & 0xC0) != 0x80)
                return p;
            cp = cp << 6 | (b[p + i] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return p;
        p += len;
    }
    return n;
}

/* The top-level "model" members of a body json_scan accepts. */
struct models {
    const char *want; /* each value must be this string; NULL: just count */
    size_t n;
};

static int check_model(void *ctx, const char *buf, const struct json_span *key,
                       const struct json_span *value)
{
    struct models *m = ctx;

    if (!json_string_equals(buf + key->start, key->end - key->start, "model"))
        return 0;
    m->n++;
    if (m->want != NULL) {
        size_t n = value->end - value->start;
        char *got = malloc(n);
        FUZZ_CHECK(got != NULL, "out of memory");
        FUZZ_CHECK(value->type == JSON_T_STRING &&
                       json_string_decode(buf + value->start, n, got, n) == strlen(m->want) &&
                       strcmp(got, m->want) == 0,
                   "top-level model member %zu is not the new name '%s': %.*s", m->n, m->want,
                   (int)n, buf + value->start);
        free(got);
    }
    return 0;
}

static size_t count_models(const char *buf, size_t len, const char *want)
{
    struct models m = {want, 0};
    FUZZ_CHECK(json_scan(buf, len, check_model, &m, NULL, NULL) == 0, "scan of a parsed body");
    return m.n;
}

static int same_value(struct json_object *a, struct json_object *b)
{
    if (json_object_equal(a, b))
        return 1;
    const char *sa = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
    const char *sb = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
    return sa != NULL && sb != NULL && strcmp(sa, sb) == 0;
}

/* The body through a view, as plugins see it; its json-c tree (caller puts
 * it), NULL when json-c does not read it. */
static struct json_object *use_view(const char *body, size_t len)
{
    struct sy_request v;
    const char *text = NULL;
    size_t tlen = 0;
    struct json_object *tree;

    memset(&v, 0, sizeof v);
    v.body = body;
    v.body_len = len;
    if (request_prompt_text(&v, &text, &tlen) == 0) {
        FUZZ_CHECK(text != NULL && text[tlen] == '\0', "prompt text not terminated");
        const char *again = NULL;
        size_t alen = 0;
        FUZZ_CHECK(request_prompt_text(&v, &again, &alen) == 0 && again == text &&
                   alen == tlen, "prompt cache");
    }
    (void)request_body_string(&v, "user");
    tree = request_json(&v);
    if (tree != NULL)
        json_object_get(tree);
    request_view_release(&v);
    return tree;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const uint8_t *nul = size ? memrchr(data, '\0', size) : NULL;
    size_t blen = nul ? (size_t)(nul - data) : size;
    char name[256] = "fallback-m";
    struct json_object *orig, *res, *m;
    struct body_info info, again;
    char err[256];
    char *out = NULL;
    size_t outlen = 0;

    if (nul != NULL && size - blen - 1 > 0) {
        size_t n = size - blen - 1;
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, nul + 1, n);
        name[n] = '\0';
        /* names come from the config, which is UTF-8 */
        if (ref_utf8_valid_to(name, n) != n)
            strcpy(name, "fallback-m");
    }

    /* an exact-size copy, so reading past the body is caught */
    char *body = malloc(blen ? blen : 1);
    if (body == NULL)
        return 0;
    memcpy(body, buf, blen);

    enum body_error rc = request_parse_body(body, blen, &info, err, sizeof err);
    size_t utf8_to = ref_utf8_valid_to(body, blen);
    if (utf8_to < blen) {
        char want[64];
        snprintf(want, sizeof want, "not valid UTF-8 (at byte %zu)", utf8_to);
        FUZZ_CHECK(rc == BODY_NOT_JSON && strstr(err, want) != NULL,
                   "a body not UTF-8 from byte %zu: %d, '%s'", utf8_to, (int)rc,
                   rc == BODY_OK ? "parsed" : err);
    } else if (rc != BODY_OK) {
        FUZZ_CHECK(strstr(err, "UTF-8") == NULL, "a UTF-8 body refused as not UTF-8: %s", err);
    }
    if (rc != BODY_OK) {
        FUZZ_CHECK(info.model == NULL && err[0] != '\0',
                   "failed parse must leave nothing and say why");
        FUZZ_CHECK(ref_utf8_valid_to(err, strlen(err)) == strlen(err), "message not UTF-8");
        free(body);
        return 0;
    }
    FUZZ_CHECK(info.model != NULL && *info.model != '\0', "parsed body without a model");
    /* json-c's view of names is not ours past a "\u0000": compare no names */
    int nul_escape = memmem(body, blen, "\\u0000", 6) != NULL;
    orig = use_view(body, blen);
    if (orig != NULL && !nul_escape) {
        FUZZ_CHECK(json_object_object_get_ex(orig, "model", &m) &&
                   json_object_is_type(m, json_type_string) &&
                   strcmp(json_object_get_string(m), info.model) == 0,
                   "json-c reads another model than '%s'", info.model);
    }

    FUZZ_CHECK(request_rewrite_model(body, blen, name, &out, &outlen) == 0,
               "rewrite failed on a body that parses (model '%s')", info.model);
    FUZZ_CHECK(out[outlen] == '\0', "rewrite result not terminated");

    rc = request_parse_body(out, outlen, &again, err, sizeof err);
    FUZZ_CHECK(rc == BODY_OK, "rewritten body does not parse: %s\n%.*s", err,
               (int)outlen, out);
    FUZZ_CHECK(strlen(again.model) == strlen(name) && strcmp(again.model, name) == 0,
               "model is '%s', want '%s'", again.model, name);
    {
        size_t before = count_models(body, blen, NULL), after = count_models(out, outlen, name);
        FUZZ_CHECK(before == after, "%zu top-level model members, %zu after the rewrite", before,
                   after);
    }
    FUZZ_CHECK(again.stream == info.stream, "stream flag changed in the rewrite");
    res = use_view(out, outlen);
    FUZZ_CHECK((orig == NULL) == (res == NULL), "json-c reads one body and not the other");
    if (orig != NULL && !nul_escape) {
        FUZZ_CHECK(json_object_object_length(res) == json_object_object_length(orig),
                   "member count changed: %d -> %d", json_object_object_length(orig),
                   json_object_object_length(res));
        json_object_object_foreach(orig, key, val) {
            struct json_object *other = NULL;
            if (strcmp(key, "model") == 0)
                continue;
            FUZZ_CHECK(json_object_object_get_ex(res, key, &other),
                       "member '%s' lost in the rewrite", key);
            FUZZ_CHECK(same_value(val, other), "member '%s' changed in the rewrite", key);
        }
    }

    json_object_put(res);
    json_object_put(orig);
    free(info.model);
    free(again.model);
    free(out);
    free(body);
    return 0;
}
