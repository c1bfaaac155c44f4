/* Body parsing and the model rewrite: only the model's value may change. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
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

/* Error text of a body that does not parse. */
static enum body_error parse_err(const char *s, size_t len, char *err, size_t errlen)
{
    struct body_info info;
    enum body_error rc = request_parse_body(s, len ? len : strlen(s), &info, err, errlen);
    CU_ASSERT_PTR_NULL(info.model);
    free(info.model);
    return rc;
}

/* Is s[0..strlen) UTF-8?  (The router's messages go to clients.) */
static int is_utf8(const char *s)
{
    return json_utf8_check(s, strlen(s)) == strlen(s);
}

/* The body is read as Python reads it: decoded as UTF-8 first, the whole of
 * it, so a body that is not UTF-8 says so, wherever its JSON went wrong. */
static void test_parse_invalid_utf8(void)
{
    static const struct {
        const char *body;
        size_t at;
    } cases[] = {
        {"{\"model\":\"llama-\xff\"}", 16},
        {"{\"model\":\"\xc0\xae\"}", 10},                       /* overlong '.' */
        {"{\"model\":\"a\xed\xa0\x80\"}", 11},                  /* encoded surrogate */
        {"{\"model\":\"a\",\"prompt\":\"\xf4\x90\x80\x80\"}", 23}, /* past U+10FFFF */
        {"{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\xc3\"}]}", 54},
        {"{\"model\":\"a\",\"\x80\":1}", 14},                    /* a name */
        {"{\"model\":\"a\",\"p\":\"\xe2\x82", 18},              /* cut short at the end */
        {"{\"model\":\"a\"}\xff", 13},                             /* outside the JSON */
        {"\x80{\"model\":\"a\"}", 0},
        {"{\"model\":\"a\",\"n\":01,\"p\":\"\xff\"}", 25},   /* bad JSON before it */
        {"[1,2,\"\xc3\xa9\xc3\"]", 8},
    };
    char err[256];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "not valid UTF-8 (at byte %zu)", cases[i].at);
        CU_ASSERT_EQUAL(parse_err(cases[i].body, 0, err, sizeof err), BODY_NOT_JSON);
        if (strstr(err, want) == NULL)
            fprintf(stderr, "\nutf-8 case %zu: '%s', want '%s'\n", i, err, want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
        CU_ASSERT_TRUE(is_utf8(err));
    }
    /* a plain JSON error in a body that is UTF-8 says that */
    CU_ASSERT_EQUAL(parse_err("{\"model\":\"caf\xc3\xa9\",}", 0, err, sizeof err), BODY_NOT_JSON);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not valid JSON: trailing comma"));
    CU_ASSERT_EQUAL(parse_err("{\"model\":\"a\",\"x\":\xc3\xa9}", 0, err, sizeof err), BODY_NOT_JSON);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not valid JSON: expected a value (at byte 17)"));
    /* UTF-8 is fine anywhere in strings, the model included */
    const char *m = NULL;
    CU_ASSERT_EQUAL(parse("{\"model\":\"mod\xc3\xa8le-\xe6\xa8\xa1\xe5\x9e\x8b-\xf0\x9f\xa6\x99\","
                          "\"messages\":[{\"content\":\"\xf4\x8f\xbf\xbf\xed\x9f\xbf\"}]}", &m),
                    BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "mod\xc3\xa8le-\xe6\xa8\xa1\xe5\x9e\x8b-\xf0\x9f\xa6\x99");
    /* lone surrogate escapes are JSON (Python takes them): U+FFFD, as json-c */
    CU_ASSERT_EQUAL(parse("{\"model\":\"a\\ud800b\",\"prompt\":\"\\udc00\"}", &m), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "a\xef\xbf\xbd" "b");
    CU_ASSERT_TRUE(is_utf8(m));
}

/* {"model":"a","seed":<sign><digits x 9><tail>} into body */
static void long_number(char *body, const char *sign, size_t digits, const char *tail)
{
    size_t n = (size_t)sprintf(body, "{\"model\":\"a\",\"seed\":%s", sign);
    memset(body + n, '9', digits);
    sprintf(body + n + digits, "%s}", tail);
}

/* Python 3.11+ refuses integers of more than 4300 digits (ValueError). */
static void test_parse_long_integer(void)
{
    char *body = malloc(6000), err[256];
    const char *m = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    long_number(body, "", 5000, "");
    CU_ASSERT_EQUAL(parse_err(body, 0, err, sizeof err), BODY_NOT_JSON);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not valid JSON: integer with more than 4300 digits (at byte 20)"));
    long_number(body, "-", 4301, "");
    CU_ASSERT_EQUAL(parse_err(body, 0, err, sizeof err), BODY_NOT_JSON);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "integer with more than 4300 digits"));
    /* 4300 digits, the sign not counted, are fine; floats of any length too */
    long_number(body, "", 4300, "");
    CU_ASSERT_EQUAL(parse(body, &m), BODY_OK);
    long_number(body, "-", 4300, "");
    CU_ASSERT_EQUAL(parse(body, &m), BODY_OK);
    long_number(body, "", 5000, ".0");
    CU_ASSERT_EQUAL(parse(body, &m), BODY_OK);
    long_number(body, "-", 5000, "e-3");
    CU_ASSERT_EQUAL(parse(body, &m), BODY_OK);
    CU_ASSERT_STRING_EQUAL(m, "a");
    free(body);
    free(last_model);
    last_model = NULL;
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
    /* an escaped key is still the model key */
    check_rewrite("{\"mod\\u0065l\":\"a\"}", "b", "{\"mod\\u0065l\":\"b\"}");
}

/* The last of a repeated "model" is the one read (Python, json-c, and
 * request_parse_body); the rewrite gives every one of them the new name, so
 * that a backend that keeps the first reads it too. */
static void test_rewrite_every_top_level_model(void)
{
    const char *m = NULL;

    check_rewrite("{\"model\":\"a\",\"model\":\"c\"}", "b", "{\"model\":\"b\",\"model\":\"b\"}");
    /* whatever the earlier ones hold; escaped names; spacing kept */
    check_rewrite("{\"model\" : 42 ,\"x\":1, \"mod\\u0065l\":{\"model\":\"in\"},\"model\":[\"q\"],\n"
                  " \"model\":null,\"model\":\"last\"}",
                  "new",
                  "{\"model\" : \"new\" ,\"x\":1, \"mod\\u0065l\":\"new\",\"model\":\"new\",\n"
                  " \"model\":\"new\",\"model\":\"new\"}");
    /* nested ones stay, at any depth, before and after */
    check_rewrite("{\"messages\":[{\"model\":\"n1\",\"content\":\"x\"}],\"model\":\"a\","
                  "\"meta\":{\"model\":\"n2\",\"deep\":{\"model\":\"n3\"}},\"model\":\"b\"}",
                  "fb",
                  "{\"messages\":[{\"model\":\"n1\",\"content\":\"x\"}],\"model\":\"fb\","
                  "\"meta\":{\"model\":\"n2\",\"deep\":{\"model\":\"n3\"}},\"model\":\"fb\"}");
    /* names that are not "model" exactly */
    check_rewrite("{\"Model\":\"a\",\"models\":\"a\",\"model\\u0000\":\"a\",\"model\":\"a\"}", "b",
                  "{\"Model\":\"a\",\"models\":\"a\",\"model\\u0000\":\"a\",\"model\":\"b\"}");
    /* more of them than fit inline, with a name that grows and one that shrinks */
    {
        char in[1024] = "{", longer[2048] = "{", shorter[1024] = "{";
        for (int i = 0; i < 40; i++) {
            char part[64];
            snprintf(part, sizeof part, "%s\"model\":\"m%d\",\"k%d\":%d", i ? "," : "", i, i, i);
            strcat(in, part);
            snprintf(part, sizeof part, "%s\"model\":\"a-longer-name\",\"k%d\":%d", i ? "," : "", i, i);
            strcat(longer, part);
            snprintf(part, sizeof part, "%s\"model\":\"\",\"k%d\":%d", i ? "," : "", i, i);
            strcat(shorter, part);
        }
        strcat(in, "}");
        strcat(longer, "}");
        strcat(shorter, "}");
        check_rewrite(in, "a-longer-name", longer);
        check_rewrite(longer, "", shorter);
    }
    /* the result reads as the new name, first or last wins */
    {
        char *out = NULL;
        size_t len = 0;
        const char *in = "{\"model\":\"client\",\"n\":1,\"model\":\"dead\"}";
        struct json_object *o;
        CU_ASSERT_EQUAL_FATAL(request_rewrite_model(in, strlen(in), "fallback", &out, &len), 0);
        CU_ASSERT_EQUAL(parse(out, &m), BODY_OK);
        CU_ASSERT_STRING_EQUAL(m, "fallback");
        CU_ASSERT_PTR_NULL(strstr(out, "client"));
        CU_ASSERT_PTR_NULL(strstr(out, "dead"));
        o = json_tokener_parse(out);
        CU_ASSERT_PTR_NOT_NULL(o);
        json_object_put(o);
        free(out);
    }
    /* the last one must be a string (callers parse first) */
    {
        char *out = NULL;
        size_t len = 0;
        const char *in = "{\"model\":\"a\",\"model\":7}";
        CU_ASSERT_EQUAL(request_rewrite_model(in, strlen(in), "b", &out, &len), -1);
        in = "{\"x\":{\"model\":\"a\"}}";
        CU_ASSERT_EQUAL(request_rewrite_model(in, strlen(in), "b", &out, &len), -1);
        CU_ASSERT_PTR_NULL(out);
    }
    free(last_model);
    last_model = NULL;
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
               UNIT_TEST(test_parse_invalid_utf8), UNIT_TEST(test_parse_long_integer),
               UNIT_TEST(test_rewrite_keeps_every_other_byte),
               UNIT_TEST(test_rewrite_every_top_level_model),
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
