/* What a backend's error answer says (core/proxy/upstream_error.c), for the
 * attempts fallback plugins see. */
#include <string.h>

#include "unit.h"
#include "upstream_error.h"

static struct upstream_error parsed(const char *body)
{
    struct upstream_error e;
    upstream_error_parse(body, body ? strlen(body) : 0, &e);
    return e;
}

#define STR_IS(v, want) CU_ASSERT_TRUE((v) != NULL && strcmp((v), (want)) == 0)

static void test_openai_shape(void)
{
    struct upstream_error e = parsed(
        "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
        "\"param\":null,\"code\":\"insufficient_quota\"}}");
    STR_IS(e.type, "insufficient_quota");
    STR_IS(e.code, "insufficient_quota");
    STR_IS(e.message, "You exceeded your current quota");
    CU_ASSERT_PTR_NULL(e.excerpt);
    upstream_error_free(&e);
    /* llama.cpp and SGLang: a numeric code */
    e = parsed("{\"error\":{\"code\":400,\"message\":\"the request exceeds the available context size\","
               "\"type\":\"exceed_context_size_error\"}}");
    STR_IS(e.code, "400");
    STR_IS(e.type, "exceed_context_size_error");
    upstream_error_free(&e);
}

static void test_vllm_and_tgi_shapes(void)
{
    struct upstream_error e = parsed(
        "{\"object\":\"error\",\"message\":\"This model's maximum context length is 4096 tokens.\","
        "\"type\":\"BadRequestError\",\"param\":null,\"code\":400}");
    STR_IS(e.type, "BadRequestError");
    STR_IS(e.code, "400");
    STR_IS(e.message, "This model's maximum context length is 4096 tokens.");
    upstream_error_free(&e);
    e = parsed("{\"error\":\"Input validation error: inputs too long\",\"error_type\":\"validation\"}");
    STR_IS(e.message, "Input validation error: inputs too long");
    STR_IS(e.type, "validation");
    CU_ASSERT_PTR_NULL(e.code);
    upstream_error_free(&e);
}

static void test_other_bodies_excerpt(void)
{
    struct upstream_error e = parsed("<html><body>502 Bad Gateway</body></html>\r\n");
    CU_ASSERT_PTR_NULL(e.type);
    CU_ASSERT_PTR_NULL(e.message);
    STR_IS(e.excerpt, "<html><body>502 Bad Gateway</body></html>");
    upstream_error_free(&e);
    /* JSON of another shape: an excerpt too */
    e = parsed("{\"detail\":\"Not Found\"}");
    STR_IS(e.excerpt, "{\"detail\":\"Not Found\"}");
    upstream_error_free(&e);
    /* control bytes become spaces, bytes that are not UTF-8 '?' */
    e = parsed("a\nb\tc\x01\xff caf\xc3\xa9");
    STR_IS(e.excerpt, "a b c ? caf\xc3\xa9");
    upstream_error_free(&e);
    e = parsed("");
    CU_ASSERT_PTR_NULL(e.excerpt);
    upstream_error_free(&e);
    e = parsed(NULL);
    CU_ASSERT_PTR_NULL(e.excerpt);
}

static void test_excerpt_is_bounded(void)
{
    char body[2000];
    struct upstream_error e;

    memset(body, 'x', sizeof body);
    /* a two-byte character across the cut: never half of it */
    body[UPSTREAM_ERROR_EXCERPT - 1] = (char)0xc3;
    body[UPSTREAM_ERROR_EXCERPT] = (char)0xa9;
    upstream_error_parse(body, sizeof body, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e.excerpt);
    CU_ASSERT_EQUAL(strlen(e.excerpt), UPSTREAM_ERROR_EXCERPT - 1);
    upstream_error_free(&e);
    /* a cut JSON error body (the first bytes kept): an excerpt */
    e = parsed("{\"error\":{\"message\":\"cut her");
    STR_IS(e.excerpt, "{\"error\":{\"message\":\"cut her");
    upstream_error_free(&e);
}

void register_upstream_error_tests(void)
{
    UNIT_SUITE("upstream_error", UNIT_TEST(test_openai_shape), UNIT_TEST(test_vllm_and_tgi_shapes),
               UNIT_TEST(test_other_bodies_excerpt), UNIT_TEST(test_excerpt_is_bounded));
}
