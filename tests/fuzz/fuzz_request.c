/*
 * Fuzz the request body: request_parse_body, then, when it parses,
 * request_rewrite_model and request_prompt_text.
 *
 * Input: the body, optionally followed by a NUL and the model name to write
 * (split at the last NUL; without one, or with an empty name, "fallback-m").
 *
 * Invariants: a failed parse leaves nothing and says why; a parse gives a
 * non-empty model.  When the body parses:
 *   - the rewrite succeeds, and its result parses too;
 *   - the result's top-level "model" is exactly the new name;
 *   - every other top-level member is equal to the original's (same keys,
 *     json_object_equal values, or the same text where json-c cannot compare,
 *     as for NaN);
 *   - prompt extraction and the stream flag work on both bodies.
 */
#define _GNU_SOURCE /* memrchr */
#include <json-c/json.h>
#include <string.h>

#include "fuzz.h"
#include "request.h"

static int same_value(struct json_object *a, struct json_object *b)
{
    if (json_object_equal(a, b))
        return 1;
    /* NaN (json-c takes it even in strict mode) is not equal to itself */
    const char *sa = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
    const char *sb = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
    return sa != NULL && sb != NULL && strcmp(sa, sb) == 0;
}

static void use_prompt(struct json_object *body)
{
    struct sy_request v;
    const char *text = NULL;
    size_t len = 0;

    memset(&v, 0, sizeof v);
    v.body = body;
    if (request_prompt_text(&v, &text, &len) == 0) {
        FUZZ_CHECK(text != NULL && text[len] == '\0', "prompt text not terminated");
        /* cached: a second call gives the same */
        const char *again = NULL;
        size_t alen = 0;
        FUZZ_CHECK(request_prompt_text(&v, &again, &alen) == 0 && again == text &&
                   alen == len, "prompt cache");
    }
    request_view_release(&v);
    (void)request_wants_stream(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const uint8_t *nul = size ? memrchr(data, '\0', size) : NULL;
    size_t blen = nul ? (size_t)(nul - data) : size;
    char name[256] = "fallback-m";
    struct json_object *orig = NULL, *res = NULL;
    const char *model = NULL, *newmodel = NULL;
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

    enum body_error rc = request_parse_body(body, blen, &orig, &model, err, sizeof err);
    if (rc != BODY_OK) {
        FUZZ_CHECK(orig == NULL && model == NULL && err[0] != '\0',
                   "failed parse must leave nothing and say why");
        free(body);
        return 0;
    }
    FUZZ_CHECK(model != NULL && *model != '\0', "parsed body without a model");
    use_prompt(orig);

    FUZZ_CHECK(request_rewrite_model(body, blen, name, &out, &outlen) == 0,
               "rewrite failed on a body that parses (model '%s')", model);
    FUZZ_CHECK(out[outlen] == '\0', "rewrite result not terminated");

    rc = request_parse_body(out, outlen, &res, &newmodel, err, sizeof err);
    FUZZ_CHECK(rc == BODY_OK, "rewritten body does not parse: %s\n%.*s", err,
               (int)outlen, out);
    FUZZ_CHECK(strlen(newmodel) == strlen(name) && strcmp(newmodel, name) == 0,
               "model is '%s', want '%s'", newmodel, name);
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
    use_prompt(res);

    json_object_put(res);
    json_object_put(orig);
    free(out);
    free(body);
    return 0;
}
