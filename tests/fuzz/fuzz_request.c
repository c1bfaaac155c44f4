/*
 * Fuzz the request body: request_parse_body, then, when it parses,
 * request_rewrite_model, request_prompt_text and request_body_string.
 *
 * Input: the body, optionally followed by a NUL and the model name to write
 * (split at the last NUL; without one, or with an empty name, "fallback-m").
 *
 * Invariants: a failed parse leaves nothing and says why; a parse gives a
 * non-empty model, the one json-c reads too (when json-c reads the body:
 * json_scan is stricter, see core/json_scan.c; and unless the body has a
 * "\u0000" escape: json-c cuts names there, so "model\u0000x" is "model" to
 * it and another name to us and to the backends' JSON parsers, Python's
 * among them).  When the body parses:
 *   - the rewrite succeeds, and its result parses too;
 *   - the result's top-level "model" is exactly the new name;
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
    }

    /* an exact-size copy, so reading past the body is caught */
    char *body = malloc(blen ? blen : 1);
    if (body == NULL)
        return 0;
    memcpy(body, buf, blen);

    enum body_error rc = request_parse_body(body, blen, &info, err, sizeof err);
    if (rc != BODY_OK) {
        FUZZ_CHECK(info.model == NULL && err[0] != '\0',
                   "failed parse must leave nothing and say why");
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
