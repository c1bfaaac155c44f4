/* Body parsing and the model rewrite: only the model's value may change. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "unit.h"

static enum body_error parse(const char *s, const char **model, struct json_object **obj)
{
    char err[256];
    return request_parse_body(s, strlen(s), obj, model, err, sizeof err);
}

static void test_parse_ok(void)
{
    const char *m = NULL;
    struct json_object *o = NULL;
    CU_ASSERT_EQUAL(parse("{\"model\":\"llama\",\"stream\":true}", &m, &o), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "llama");
    CU_ASSERT_TRUE(request_wants_stream(o));
    json_object_put(o);
    CU_ASSERT_EQUAL(parse(" {\"stream\":\"yes\", \"model\" : \"a\"}\n", &m, &o), BODY_OK);
    CU_ASSERT_FALSE(request_wants_stream(o));
    json_object_put(o);
}

static void test_parse_errors(void)
{
    const char *m = NULL;
    struct json_object *o = NULL;
    CU_ASSERT_EQUAL(parse("", &m, &o), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":", &m, &o), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\"} trailing", &m, &o), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{'model':'a'}", &m, &o), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("[1,2]", &m, &o), BODY_NOT_OBJECT);
    CU_ASSERT_EQUAL(parse("\"model\"", &m, &o), BODY_NOT_OBJECT);
    CU_ASSERT_EQUAL(parse("{\"prompt\":\"x\"}", &m, &o), BODY_NO_MODEL);
    CU_ASSERT_EQUAL(parse("{\"model\":7}", &m, &o), BODY_NO_MODEL);
    CU_ASSERT_EQUAL(parse("{\"model\":\"\"}", &m, &o), BODY_NO_MODEL);
    CU_ASSERT_PTR_NULL(o);
}

static void check_rewrite(const char *in, const char *model, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(request_rewrite_model(in, strlen(in), model, &out, &len), 0);
    CU_ASSERT_EQUAL(len, strlen(want));
    CU_ASSERT_STRING_EQUAL(out, want);
    free(out);
}

static void test_rewrite_keeps_every_other_byte(void)
{
    check_rewrite("{\"model\":\"a\",\"n\":1.0e0,\"seed\":123456789012345678901234567890}",
                  "b", "{\"model\":\"b\",\"n\":1.0e0,\"seed\":123456789012345678901234567890}");
    check_rewrite("{ \"messages\": [{\"role\":\"user\",\"content\":\"model: \\\"x\\\"\"}],\n  \"model\" : \"llama-70b\" , \"stream\": true }",
                  "llama-8b",
                  "{ \"messages\": [{\"role\":\"user\",\"content\":\"model: \\\"x\\\"\"}],\n  \"model\" : \"llama-8b\" , \"stream\": true }");
    /* nested "model" keys are not the top-level one */
    check_rewrite("{\"meta\":{\"model\":\"inner\"},\"model\":\"outer\"}", "new",
                  "{\"meta\":{\"model\":\"inner\"},\"model\":\"new\"}");
    /* names that need escaping */
    check_rewrite("{\"model\":\"a\"}", "org/m:v1 \"q\"", "{\"model\":\"org/m:v1 \\\"q\\\"\"}");
    /* an escaped key is still the model key; duplicates: the last wins, as in json-c */
    check_rewrite("{\"mod\\u0065l\":\"a\"}", "b", "{\"mod\\u0065l\":\"b\"}");
    check_rewrite("{\"model\":\"a\",\"model\":\"c\"}", "b", "{\"model\":\"a\",\"model\":\"b\"}");
}

static void test_rewrite_result_parses_to_same_fields(void)
{
    const char *in = "{\"model\":\"a\",\"temperature\":0.7,\"max_tokens\":16,\"stop\":[\"\\n\"],\"logit_bias\":{\"50256\":-100}}";
    char *out = NULL;
    size_t len = 0;
    const char *m = NULL;
    struct json_object *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL_FATAL(request_rewrite_model(in, strlen(in), "zz", &out, &len), 0);
    CU_ASSERT_EQUAL(parse(in, &m, &a), BODY_OK);
    CU_ASSERT_EQUAL(parse(out, &m, &b), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "zz");
    json_object_object_del(a, "model");
    json_object_object_del(b, "model");
    CU_ASSERT_TRUE(json_object_equal(a, b));
    json_object_put(a);
    json_object_put(b);
    free(out);
}

static void test_request_id(void)
{
    char id[SY_REQUEST_ID_MAX], id2[SY_REQUEST_ID_MAX];
    request_make_id("abc-123", id);
    CU_ASSERT_STRING_EQUAL(id, "abc-123");
    request_make_id("bad value with spaces", id);
    CU_ASSERT_EQUAL(strlen(id), 32);
    request_make_id(NULL, id2);
    CU_ASSERT_EQUAL(strlen(id2), 32);
    CU_ASSERT_STRING_NOT_EQUAL(id, id2);
}

/* Found by tests/fuzz/fuzz_request: "\u0000" in the model gave a model that
 * is "" as a C string (what the router routes on) but not to json-c, nor to
 * the backend, which reads the whole. */
static void test_parse_model_with_nul(void)
{
    const char *m = NULL;
    struct json_object *o = NULL;
    char err[256];
    const char *fuzzed = "{\"model\":\"\\u0000a\", \"\"\r:\"\", \"\"\r:\"v\"}";
    CU_ASSERT_EQUAL(request_parse_body(fuzzed, strlen(fuzzed), &o, &m, err, sizeof err),
                    BODY_NO_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "NUL"));
    CU_ASSERT_EQUAL(parse("{\"model\":\"llama\\u0000evil\"}", &m, &o), BODY_NO_MODEL);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_PTR_NULL(m);
    /* other strings may hold it */
    CU_ASSERT_EQUAL(parse("{\"model\":\"llama\",\"prompt\":\"a\\u0000b\"}", &m, &o), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "llama");
    json_object_put(o);
}

/* Found by tests/fuzz/fuzz_request: json-c's strict mode takes 'single-quoted'
 * names, which the rewrite's scanner does not: the rewrite failed, or
 * changed a "model" json-c did not read. */
static void test_parse_single_quoted_names(void)
{
    const char *m = NULL;
    struct json_object *o = NULL;
    CU_ASSERT_EQUAL(parse("{'':\"\",\"model\":\"o\"}", &m, &o), BODY_NOT_JSON); /* as fuzzed */
    CU_ASSERT_EQUAL(parse("{'model':\"o\"}", &m, &o), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\",'model':\"b\"}", &m, &o), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"x\":{'\"':1},\"model\":\"o\"}", &m, &o), BODY_NOT_JSON);
    CU_ASSERT_PTR_NULL(o);
    /* quotes inside strings are text */
    CU_ASSERT_EQUAL(parse("{\"model\":\"it's\",\"prompt\":\"don't \\\"quote\\\" 'me'\",\"'\":1}",
                          &m, &o), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "it's");
    json_object_put(o);
}

void register_request_tests(void)
{
    UNIT_SUITE("request",
               UNIT_TEST(test_parse_ok), UNIT_TEST(test_parse_errors),
               UNIT_TEST(test_rewrite_keeps_every_other_byte),
               UNIT_TEST(test_rewrite_result_parses_to_same_fields),
               UNIT_TEST(test_request_id), UNIT_TEST(test_parse_model_with_nul),
               UNIT_TEST(test_parse_single_quoted_names));
}

static void check_prompt(const char *body, const char *want)
{
    struct sy_request v = { .body = NULL };
    const char *m, *text = NULL;
    size_t len = 0;
    struct json_object *o = NULL;
    CU_ASSERT_EQUAL_FATAL(parse(body, &m, &o), BODY_OK);
    v.body = o;
    if (want == NULL) {
        CU_ASSERT_EQUAL(request_prompt_text(&v, &text, &len), -1);
    } else {
        CU_ASSERT_EQUAL_FATAL(request_prompt_text(&v, &text, &len), 0);
        CU_ASSERT_STRING_EQUAL(text, want);
        CU_ASSERT_EQUAL(len, strlen(want));
        /* cached: the same pointer the second time */
        const char *again = NULL;
        CU_ASSERT_EQUAL(request_prompt_text(&v, &again, &len), 0);
        CU_ASSERT_PTR_EQUAL(again, text);
    }
    request_view_release(&v);
    json_object_put(o);
}

static void test_prompt_text(void)
{
    check_prompt("{\"model\":\"m\",\"prompt\":\"Once upon\"}", "Once upon");
    check_prompt("{\"model\":\"m\",\"prompt\":[\"first\",\"second\"]}", "first");
    check_prompt("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                 "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},"
                 "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"there\"}]}]}",
                 "Be brief.\nHi\nthere");
    check_prompt("{\"model\":\"m\",\"input\":\"embed me\"}", NULL);
    check_prompt("{\"model\":\"m\",\"messages\":[]}", NULL);
}

void register_request_prompt_tests(void)
{
    UNIT_SUITE("request prompt", UNIT_TEST(test_prompt_text));
}
