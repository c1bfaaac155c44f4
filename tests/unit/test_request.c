/* Body parsing and the model rewrite: only the model's value may change. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "unit.h"

/* Parses s; the model stays in last_model (freed by the next call). */
static char *last_model;
static int last_stream;

static enum body_error parse(const char *s, const char **model)
{
    struct body_info info;
    char err[256];
    enum body_error rc = request_parse_body(s, strlen(s), &info, err, sizeof err);

    free(last_model);
    last_model = info.model;
    last_stream = info.stream;
    *model = info.model;
    if (rc == BODY_OK) {
        CU_ASSERT_PTR_NOT_NULL(info.model);
    } else {
        CU_ASSERT_TRUE(info.model == NULL && err[0] != '\0');
    }
    return rc;
}

static void test_parse_ok(void)
{
    const char *m = NULL;
    CU_ASSERT_EQUAL(parse("{\"model\":\"llama\",\"stream\":true}", &m), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "llama");
    CU_ASSERT_TRUE(last_stream);
    CU_ASSERT_EQUAL(parse(" {\"stream\":\"yes\", \"model\" : \"a\"}\n", &m), BODY_OK);
    CU_ASSERT_FALSE(last_stream);
    /* escapes are decoded; the last of a repeated name wins */
    CU_ASSERT_EQUAL(parse("{\"mod\\u0065l\":\"caf\\u00e9/\\\"x\\\"\"}", &m), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "caf\xc3\xa9/\"x\"");
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\",\"stream\":true,\"model\":\"b\",\"stream\":false}", &m),
                    BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "b");
    CU_ASSERT_FALSE(last_stream);
    /* deeper than json-c's default limit of 32: still a request */
    char deep[400] = "{\"model\":\"d\",\"x\":";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    for (int i = 0; i < 100; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    CU_ASSERT_EQUAL(parse(deep, &m), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "d");
}

static void test_parse_errors(void)
{
    const char *m = NULL;
    CU_ASSERT_EQUAL(parse("", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\"} trailing", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{'model':'a'}", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\",}", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\",\"n\":NaN}", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\"/* c */}", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("[1,2]", &m), BODY_NOT_OBJECT);
    CU_ASSERT_EQUAL(parse("\"model\"", &m), BODY_NOT_OBJECT);
    CU_ASSERT_EQUAL(parse("{\"prompt\":\"x\"}", &m), BODY_NO_MODEL);
    CU_ASSERT_EQUAL(parse("{\"model\":7}", &m), BODY_NO_MODEL);
    CU_ASSERT_EQUAL(parse("{\"model\":\"\"}", &m), BODY_NO_MODEL);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\",\"model\":null}", &m), BODY_NO_MODEL);
    CU_ASSERT_PTR_NULL(m);
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
    struct json_object *a, *b;
    CU_ASSERT_EQUAL_FATAL(request_rewrite_model(in, strlen(in), "zz", &out, &len), 0);
    CU_ASSERT_EQUAL(parse(out, &m), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "zz");
    a = json_tokener_parse(in);
    b = json_tokener_parse(out);
    CU_ASSERT_FATAL(a != NULL && b != NULL);
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
/* Found by tests/fuzz/fuzz_request: "\u0000" in the model gave a model that
 * is "" as a C string (what the router routes on) but not to json-c, nor to
 * the backend, which reads the whole. */
static void test_parse_model_with_nul(void)
{
    const char *m = NULL;
    struct body_info info;
    char err[256];
    const char *fuzzed = "{\"model\":\"\\u0000a\", \"\"\r:\"\", \"\"\r:\"v\"}";
    CU_ASSERT_EQUAL(request_parse_body(fuzzed, strlen(fuzzed), &info, err, sizeof err),
                    BODY_NO_MODEL);
    CU_ASSERT_PTR_NULL(info.model);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "NUL"));
    CU_ASSERT_EQUAL(parse("{\"model\":\"llama\\u0000evil\"}", &m), BODY_NO_MODEL);
    CU_ASSERT_PTR_NULL(m);
    /* other strings may hold it */
    CU_ASSERT_EQUAL(parse("{\"model\":\"llama\",\"prompt\":\"a\\u0000b\"}", &m), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "llama");
}

/* Found by tests/fuzz/fuzz_request: json-c's strict mode takes 'single-quoted'
 * names, which the rewrite's scanner does not: the rewrite failed, or
 * changed a "model" json-c did not read. */
static void test_parse_single_quoted_names(void)
{
    const char *m = NULL;
    CU_ASSERT_EQUAL(parse("{'':\"\",\"model\":\"o\"}", &m), BODY_NOT_JSON); /* as fuzzed */
    CU_ASSERT_EQUAL(parse("{'model':\"o\"}", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\",'model':\"b\"}", &m), BODY_NOT_JSON);
    CU_ASSERT_EQUAL(parse("{\"x\":{'\"':1},\"model\":\"o\"}", &m), BODY_NOT_JSON);
    /* quotes inside strings are text */
    CU_ASSERT_EQUAL(parse("{\"model\":\"it's\",\"prompt\":\"don't \\\"quote\\\" 'me'\",\"'\":1}", &m),
                    BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "it's");
    free(last_model);
    last_model = NULL;
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
    struct sy_request v;
    const char *m, *text = NULL;
    size_t len = 0;

    memset(&v, 0, sizeof v);
    CU_ASSERT_EQUAL_FATAL(parse(body, &m), BODY_OK);
    v.body = body;
    v.body_len = strlen(body);
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
    free(last_model);
    last_model = NULL;
}

static void test_body_string(void)
{
    struct sy_request v;
    const char *body = "{\"model\":\"m\",\"user\":\"u\\u00e9\",\"n\":2,\"meta\":{\"user\":\"inner\"}}";

    memset(&v, 0, sizeof v);
    v.body = body;
    v.body_len = strlen(body);
    CU_ASSERT_STRING_EQUAL(request_body_string(&v, "user"), "u\xc3\xa9");
    CU_ASSERT_PTR_NULL(request_body_string(&v, "n"));
    CU_ASSERT_PTR_NULL(request_body_string(&v, "absent"));
    request_view_release(&v);
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
    UNIT_SUITE("request prompt", UNIT_TEST(test_prompt_text), UNIT_TEST(test_body_string));
}
