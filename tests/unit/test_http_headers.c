/* Which headers cross the proxy, and the router's error bodies. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "http_headers.h"
#include "unit.h"

static void test_hop_by_hop(void)
{
    CU_ASSERT_TRUE(http_is_hop_by_hop("connection"));
    CU_ASSERT_TRUE(http_is_hop_by_hop("Transfer-Encoding"));
    CU_ASSERT_TRUE(http_is_hop_by_hop("keep-alive"));
    CU_ASSERT_FALSE(http_is_hop_by_hop("Authorization"));
    CU_ASSERT_FALSE(http_is_hop_by_hop("Content-Type"));
}

static void test_connection_list(void)
{
    CU_ASSERT_TRUE(http_connection_lists("keep-alive, X-Secret", "x-secret"));
    CU_ASSERT_TRUE(http_connection_lists("X-A,X-B", "X-B"));
    CU_ASSERT_FALSE(http_connection_lists("X-AB", "X-A"));
    CU_ASSERT_FALSE(http_connection_lists("", "X-A"));
}

static void test_request_headers(void)
{
    CU_ASSERT_TRUE(http_skip_request_header("Host", NULL));
    CU_ASSERT_TRUE(http_skip_request_header("content-length", NULL));
    CU_ASSERT_TRUE(http_skip_request_header("Expect", NULL));
    CU_ASSERT_TRUE(http_skip_request_header("X-Drop", "close, X-Drop"));
    CU_ASSERT_FALSE(http_skip_request_header("Authorization", NULL));
    CU_ASSERT_FALSE(http_skip_request_header("X-Custom", "close"));
    CU_ASSERT_FALSE(http_skip_request_header("Content-Type", NULL));
}

static void test_response_headers(void)
{
    CU_ASSERT_TRUE(http_skip_response_header("Transfer-Encoding", NULL));
    CU_ASSERT_TRUE(http_skip_response_header("X-Switchyard-Model", NULL));
    CU_ASSERT_FALSE(http_skip_response_header("Content-Length", NULL));
    CU_ASSERT_FALSE(http_skip_response_header("Content-Type", NULL));
}

static void test_error_json(void)
{
    char *s = http_error_json(404, NULL, "The model 'x\"y' does not exist");
    struct json_object *o = json_tokener_parse(s), *e, *v;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(o, "error", &e));
    CU_ASSERT_TRUE(json_object_object_get_ex(e, "message", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "The model 'x\"y' does not exist");
    CU_ASSERT_TRUE(json_object_object_get_ex(e, "code", &v));
    CU_ASSERT_EQUAL(json_object_get_int(v), 404);
    CU_ASSERT_TRUE(json_object_object_get_ex(e, "type", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "not_found_error");
    json_object_put(o);
    free(s);
}

static void test_value_safety(void)
{
    CU_ASSERT_TRUE(http_value_is_safe("abc", 3));
    CU_ASSERT_FALSE(http_value_is_safe("a\r\nb", 4));
}

static void test_join_url(void)
{
    char out[128];
    CU_ASSERT_EQUAL(http_join_url("http://a:8000", "/v1/chat/completions?x=1", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "http://a:8000/v1/chat/completions?x=1");
    CU_ASSERT_EQUAL(http_join_url("https://gw.example.com/v1", "/v1/chat/completions", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "https://gw.example.com/v1/chat/completions");
    CU_ASSERT_EQUAL(http_join_url("https://gw.example.com/openai", "/v1/embeddings", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "https://gw.example.com/openai/v1/embeddings");
    CU_ASSERT_EQUAL(http_join_url("https://gw.example.com/v1", "/tokenize", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "https://gw.example.com/v1/tokenize");
    CU_ASSERT_EQUAL(http_join_url("http://a", "/v1/x", out, 8), -1);
}

static const char *framing(const char *const *hdrs)
{
    static struct http_framing f;
    memset(&f, 0, sizeof f);
    for (size_t i = 0; hdrs[i] != NULL; i += 2)
        http_framing_add(&f, hdrs[i], hdrs[i + 1]);
    return http_framing_error(&f);
}

static void test_framing(void)
{
    const char *ok1[] = { "Content-Length", "12", "Host", "x", NULL };
    const char *ok2[] = { "Transfer-Encoding", "chunked", NULL };
    const char *ok3[] = { "content-length", "5", "Content-Length", "5", NULL };
    const char *both[] = { "Content-Length", "12", "Transfer-Encoding", "chunked", NULL };
    const char *differ[] = { "Content-Length", "12", "Content-Length", "13", NULL };
    const char *two_te[] = { "Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", NULL };
    const char *gzip[] = { "Transfer-Encoding", "gzip, chunked", NULL };
    const char *obfuscated[] = { "Transfer-Encoding", "xchunked", NULL };
    const char *huge[] = { "Content-Length", "99999999999999999999", NULL };
    const char *max[] = { "Content-Length", "9223372036854775807", NULL };
    const char *past_max[] = { "Content-Length", "9223372036854775808", NULL };
    const char *negative[] = { "Content-Length", "-1", NULL };
    const char *list[] = { "Content-Length", "1, 1", NULL };
    const char *empty[] = { "Content-Length", "", NULL };
    const char *plus[] = { "Content-Length", "+5", NULL };
    CU_ASSERT_PTR_NULL(framing(ok1));
    CU_ASSERT_PTR_NULL(framing(ok2));
    CU_ASSERT_PTR_NULL(framing(ok3));
    CU_ASSERT_PTR_NOT_NULL(framing(both));
    CU_ASSERT_PTR_NOT_NULL(framing(differ));
    CU_ASSERT_PTR_NOT_NULL(framing(two_te));
    CU_ASSERT_PTR_NOT_NULL(framing(gzip));
    CU_ASSERT_PTR_NOT_NULL(framing(obfuscated));
    CU_ASSERT_PTR_NOT_NULL(framing(huge));
    CU_ASSERT_PTR_NULL(framing(max));
    CU_ASSERT_PTR_NOT_NULL(framing(past_max));
    CU_ASSERT_PTR_NOT_NULL(framing(negative));
    CU_ASSERT_PTR_NOT_NULL(framing(list));
    CU_ASSERT_PTR_NOT_NULL(framing(empty));
    CU_ASSERT_PTR_NOT_NULL(framing(plus));
}

static void test_content_length(void)
{
    long long n = -1;
    CU_ASSERT_EQUAL(http_parse_content_length("0", &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(http_parse_content_length("00012", &n), 0);
    CU_ASSERT_EQUAL(n, 12);
    CU_ASSERT_EQUAL(http_parse_content_length("9223372036854775807", &n), 0);
    CU_ASSERT_EQUAL(n, 9223372036854775807LL);
    CU_ASSERT_EQUAL(http_parse_content_length("9223372036854775808", &n), -1);
    CU_ASSERT_EQUAL(http_parse_content_length("", &n), -1);
    CU_ASSERT_EQUAL(http_parse_content_length(" 1", &n), -1);
    CU_ASSERT_EQUAL(http_parse_content_length("1 ", &n), -1);
    CU_ASSERT_EQUAL(http_parse_content_length("0x10", &n), -1);
}

/* Found by tests/fuzz/fuzz_http: first_length keeps 23 characters, so a
 * longer first Content-Length agreed with a second one equal to its first
 * 23 characters (1 and 0 here). */
static void test_framing_long_lengths(void)
{
    const char *cut[] = { "Content-Length", "000000000000000000000001",
                          "Content-Length", "00000000000000000000000", NULL };
    const char *fuzzed[] = { "Content-Length", "1AA\262Ang: ci\376ng: chunKedo",
                             "Content-Length", "1AA\262Ang: ci\376ng: chunKed", NULL };
    const char *one_long[] = { "Content-Length", "000000000000000000000001", NULL };
    const char *same_short[] = { "Content-Length", "0000000000000000000001",
                                 "Content-Length", "0000000000000000000001", NULL };
    CU_ASSERT_PTR_NOT_NULL(framing(cut));
    CU_ASSERT_PTR_NOT_NULL(framing(fuzzed));
    CU_ASSERT_PTR_NULL(framing(one_long));
    CU_ASSERT_PTR_NULL(framing(same_short));
}

void register_http_headers_tests(void)
{
    UNIT_SUITE("http_headers",
               UNIT_TEST(test_hop_by_hop), UNIT_TEST(test_connection_list),
               UNIT_TEST(test_request_headers), UNIT_TEST(test_response_headers),
               UNIT_TEST(test_error_json), UNIT_TEST(test_value_safety),
               UNIT_TEST(test_join_url), UNIT_TEST(test_framing),
               UNIT_TEST(test_framing_long_lengths), UNIT_TEST(test_content_length));
}
