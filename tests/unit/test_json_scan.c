/* json_scan: strict JSON validation, top-level members, string decoding,
 * and where it and json-c's strict mode part ways. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "unit.h"

/* Scans an exact-size copy of s[0..n) (n 0: strlen), so reading past the
 * end is caught under ASan. */
static int scan_n(const char *s, size_t n, json_member_fn fn, void *ctx,
                  enum json_scan_type *type, struct json_scan_error *err)
{
    char *copy = malloc(n ? n : 1);
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, s, n);
    rc = json_scan(copy, n, fn, ctx, type, err);
    free(copy);
    return rc;
}

static int scan(const char *s, enum json_scan_type *type, struct json_scan_error *err)
{
    return scan_n(s, strlen(s), NULL, NULL, type, err);
}

static void test_valid(void)
{
    static const struct {
        const char *in;
        enum json_scan_type type;
    } cases[] = {
        {"0", JSON_T_NUMBER},
        {"-0", JSON_T_NUMBER},
        {"7", JSON_T_NUMBER},
        {"-1.5e-3", JSON_T_NUMBER},
        {"1E+2", JSON_T_NUMBER},
        {"0.0e-0", JSON_T_NUMBER},
        {"10e05", JSON_T_NUMBER},
        {"123456789012345678901234567890", JSON_T_NUMBER},
        {"1e99999", JSON_T_NUMBER},
        {"true", JSON_T_TRUE},
        {"false", JSON_T_FALSE},
        {"null", JSON_T_NULL},
        {"\"\"", JSON_T_STRING},
        {"\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\ude00z\"", JSON_T_STRING},
        {"\"\\ud800\"", JSON_T_STRING}, /* a lone surrogate is still JSON, as to Python */
        {"\"\\udc00\\ud800x\\udbff\"", JSON_T_STRING},
        /* UTF-8, at the edges of each length and around the surrogates */
        {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", JSON_T_STRING},
        {"\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\"", JSON_T_STRING},
        {"\"\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"", JSON_T_STRING},
        {"{\"\xe6\xa8\xa1\xe5\x9e\x8b\":\"\xd0\xbc\"}", JSON_T_OBJECT},
        {"\"\x7f\"", JSON_T_STRING},
        {"{}", JSON_T_OBJECT},
        {"[]", JSON_T_ARRAY},
        {" \t\r\n[ 1 , { \"a\" : [ ] } ]\n ", JSON_T_ARRAY},
        {"{\"a\":1,\"a\":2}", JSON_T_OBJECT},
        {"[[],[[]],{},{\"\":\"\"},[null,true,false]]", JSON_T_ARRAY},
        {"{\"a\":{\"b\":{\"c\":[1,{\"d\":-2.5E-7}]}}}", JSON_T_OBJECT},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum json_scan_type type = JSON_T_NULL;
        struct json_scan_error err = {0, NULL};
        int rc = scan(cases[i].in, &type, &err);
        if (rc != 0 || type != cases[i].type)
            fprintf(stderr, "\nvalid case %zu '%s': rc %d type %d, %s at %zu\n", i,
                    cases[i].in, rc, (int)type, err.what ? err.what : "-", err.offset);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(type, cases[i].type);
    }
    /* err and top_type may be NULL */
    CU_ASSERT_EQUAL(json_scan("[1]", 3, NULL, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL(json_scan("[1", 2, NULL, NULL, NULL, NULL), -1);
}

#define EOI "unexpected end of input"

static void test_invalid(void)
{
    static const struct {
        const char *in;
        size_t len; /* 0: strlen */
        const char *what;
        size_t offset;
    } cases[] = {
        /* empty and cut short */
        {"", 0, "empty", 0},
        {"  \n\t\r", 0, "empty", 5},
        {"{", 0, EOI, 1},
        {"[1,", 0, EOI, 3},
        {"[1", 0, EOI, 2},
        {"{\"a\"", 0, EOI, 4},
        {"{\"a\":", 0, EOI, 5},
        {"{\"a\":1", 0, EOI, 6},
        {"\"abc", 0, EOI, 4},
        {"\"a\\", 0, EOI, 3},
        {"\"\\u12", 0, EOI, 5},
        {"tru", 0, EOI, 3},
        {"[fals", 0, EOI, 5},
        /* trailing commas */
        {"[1,]", 0, "trailing comma", 2},
        {"{\"a\":1,}", 0, "trailing comma", 6},
        {"[1 , ]", 0, "trailing comma", 3},
        {"{\"a\":1 , \n}", 0, "trailing comma", 7},
        /* comments, single quotes, NaN, Infinity */
        {"/*c*/[]", 0, "expected a value", 0},
        {"[]//c", 0, "trailing data after the value", 2},
        {"{'a':1}", 0, "expected a string key", 1},
        {"['a']", 0, "expected a value", 1},
        {"[NaN]", 0, "expected a value", 1},
        {"[Infinity]", 0, "expected a value", 1},
        {"[-Infinity]", 0, "invalid number", 2},
        /* numbers */
        {"[01]", 0, "invalid number", 2},
        {"[-01]", 0, "invalid number", 3},
        {"[00]", 0, "invalid number", 2},
        {"00.5", 0, "invalid number", 1},
        {"[1.]", 0, "invalid number", 3},
        {"1.", 0, "invalid number", 2},
        {"[1.e5]", 0, "invalid number", 3},
        {"[-]", 0, "invalid number", 2},
        {"-", 0, "invalid number", 1},
        {"[-.5]", 0, "invalid number", 2},
        {"[1e]", 0, "invalid number", 3},
        {"[1e+]", 0, "invalid number", 4},
        {"[1E-x]", 0, "invalid number", 4},
        {"[.5]", 0, "expected a value", 1},
        {"[+1]", 0, "expected a value", 1},
        {"[0x1]", 0, "expected ',' or ']'", 2},
        {"[1.5.2]", 0, "expected ',' or ']'", 4},
        /* strings */
        {"[\"a\x01\"]", 0, "control character in string", 3},
        {"[\"\x1f\"]", 0, "control character in string", 2},
        {"[\"a\tb\"]", 0, "control character in string", 3},
        {"{\"a\nb\":1}", 0, "control character in string", 3},
        {"[\"a\0\"]", 6, "control character in string", 3},
        {"\"\\x\"", 0, "invalid escape", 1},
        {"\"ab\\'\"", 0, "invalid escape", 3},
        {"\"\\u12g4\"", 0, "invalid escape", 1},
        {"\"\\U0041\"", 0, "invalid escape", 1},
        {"\"\\u004\"", 0, "invalid escape", 1},
        {"\"\\\0\"", 4, "invalid escape", 1},
        /* not UTF-8, at the first byte of the bad sequence: stray
         * continuation bytes, overlong forms, encoded surrogates, past
         * U+10FFFF, bytes that never start one, sequences cut short */
        {"\"\x80\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"a\xbf\"", 0, JSON_SCAN_ERR_UTF8, 2},
        {"\"\xc3\xa9\x80\"", 0, JSON_SCAN_ERR_UTF8, 3},
        {"\"\xc0\xaf\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xc1\xbf\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xe0\x80\xaf\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xe0\x9f\xbf\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xf0\x80\x80\xaf\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xf0\x8f\xbf\xbf\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xed\xa0\x80\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"x\xed\xb2\x80\"", 0, JSON_SCAN_ERR_UTF8, 2},
        {"\"\xed\xbf\xbf\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xed\xa0\xbd\xed\xb8\x80\"", 0, JSON_SCAN_ERR_UTF8, 1}, /* CESU-8 U+1F600 */
        {"\"\xf4\x90\x80\x80\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xf5\x80\x80\x80\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xf8\x88\x80\x80\x80\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xfe\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xff\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xc3\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xc3z\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xe2\x82\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xe2\x28\xa1\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xf0\x9f\x98\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"\xf0\x9f\x98\xc3\xa9\"", 0, JSON_SCAN_ERR_UTF8, 1},
        {"\"ab\xe2\x82", 0, JSON_SCAN_ERR_UTF8, 3}, /* cut by the end: UTF-8 first */
        {"\"\xf0\x9f", 0, JSON_SCAN_ERR_UTF8, 1},
        {"{\"\xff\":1}", 0, JSON_SCAN_ERR_UTF8, 2}, /* names too */
        {"{\"a\":\"\xc3\xa9\",\"b\":\"\\u00e9\xe9\"}", 0, JSON_SCAN_ERR_UTF8, 21},
        /* outside strings, no byte >= 0x80 is JSON, valid UTF-8 or not */
        {"[\xc3\xa9]", 0, "expected a value", 1},
        {"[1]\xe2\x80\x8b", 0, "trailing data after the value", 3},
        /* literals */
        {"[True]", 0, "expected a value", 1},
        {"[nul]", 0, "invalid literal", 1},
        {"[nulL]", 0, "invalid literal", 1},
        {"[truex]", 0, "expected ',' or ']'", 5},
        /* whitespace is space, tab, CR and LF only */
        {"\v[]", 0, "expected a value", 0},
        {"[]\f", 0, "trailing data after the value", 2},
        {"[\xa0]", 0, "expected a value", 1},
        {"\xef\xbb\xbf{}", 0, "expected a value", 0},
        /* structure */
        {"{\"a\" 1}", 0, "expected ':'", 5},
        {"{\"a\":1 \"b\":2}", 0, "expected ',' or '}'", 7},
        {"[1 2]", 0, "expected ',' or ']'", 3},
        {"{1:2}", 0, "expected a string key", 1},
        {"{,}", 0, "expected a string key", 1},
        {"[,1]", 0, "expected a value", 1},
        {"[}", 0, "expected a value", 1},
        {"{]", 0, "expected a string key", 1},
        {"[1}", 0, "expected ',' or ']'", 2},
        {"{\"a\":1]", 0, "expected ',' or '}'", 6},
        {"[1]]", 0, "trailing data after the value", 3},
        {"1 2", 0, "trailing data after the value", 2},
        {"{\"a\":1}}", 0, "trailing data after the value", 7},
        /* a NUL outside strings is just another wrong byte */
        {"\0", 1, "expected a value", 0},
        {"[\0]", 3, "expected a value", 1},
        {"[1]\0", 4, "trailing data after the value", 3},
        {"{\"a\"\0:1}", 7, "expected ':'", 4},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = cases[i].in;
        size_t len = cases[i].len ? cases[i].len : strlen(in);
        struct json_scan_error err = {99999, NULL};
        enum json_scan_type type = JSON_T_STRING;
        int rc = scan_n(in, len, NULL, NULL, &type, &err);
        int ok = rc == -1 && err.what != NULL && strcmp(err.what, cases[i].what) == 0 &&
                 err.offset == cases[i].offset;
        if (!ok)
            fprintf(stderr, "\ninvalid case %zu '%s': rc %d, '%s' at %zu; want '%s' at %zu\n",
                    i, in, rc, err.what ? err.what : "-", err.offset, cases[i].what,
                    cases[i].offset);
        CU_ASSERT_TRUE(ok);
        CU_ASSERT_EQUAL(type, JSON_T_STRING); /* not written on -1 */
    }
}

/* --- top-level members --- */

struct member {
    char key[32];
    char value[128];
    enum json_scan_type type;
};

struct members {
    struct member m[16];
    int n;
    int stop_at; /* return 7 at this member (1-based); 0: never */
};

static int collect(void *ctx, const char *buf, const struct json_span *key,
                   const struct json_span *value)
{
    struct members *ms = ctx;
    struct member *m = &ms->m[ms->n];

    CU_ASSERT_FATAL(ms->n < 16);
    CU_ASSERT_EQUAL(key->type, JSON_T_STRING);
    CU_ASSERT(key->start < key->end && key->end <= value->start && value->start < value->end);
    json_string_decode(buf + key->start, key->end - key->start, m->key, sizeof m->key);
    snprintf(m->value, sizeof m->value, "%.*s", (int)(value->end - value->start),
             buf + value->start);
    m->type = value->type;
    return ++ms->n == ms->stop_at ? 7 : 0;
}

static void test_members_of_chat_body(void)
{
    const char *body =
        "{\"model\": \"llama-3-70b\",\n"
        " \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},\n"
        "              {\"role\": \"user\", \"content\": \"Say \\\"hi\\\" \\u263a\"}],\n"
        " \"stream\" : true, \"temperature\":0.7,\"max_tokens\": 128,\n"
        " \"stop\": null, \"echo\": false, \"response_format\": {\"type\": \"json_object\"},\n"
        " \"logit_bias\": {}, \"tools\": [] }";
    static const struct member want[] = {
        {"model", "\"llama-3-70b\"", JSON_T_STRING},
        {"messages",
         "[{\"role\": \"system\", \"content\": \"Be brief.\"},\n"
         "              {\"role\": \"user\", \"content\": \"Say \\\"hi\\\" \\u263a\"}]",
         JSON_T_ARRAY},
        {"stream", "true", JSON_T_TRUE},
        {"temperature", "0.7", JSON_T_NUMBER},
        {"max_tokens", "128", JSON_T_NUMBER},
        {"stop", "null", JSON_T_NULL},
        {"echo", "false", JSON_T_FALSE},
        {"response_format", "{\"type\": \"json_object\"}", JSON_T_OBJECT},
        {"logit_bias", "{}", JSON_T_OBJECT},
        {"tools", "[]", JSON_T_ARRAY},
    };
    struct members ms = {.n = 0, .stop_at = 0};
    enum json_scan_type type = JSON_T_NULL;

    CU_ASSERT_EQUAL_FATAL(scan_n(body, strlen(body), collect, &ms, &type, NULL), 0);
    CU_ASSERT_EQUAL(type, JSON_T_OBJECT);
    CU_ASSERT_EQUAL_FATAL(ms.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < ms.n; i++) {
        CU_ASSERT_STRING_EQUAL(ms.m[i].key, want[i].key);
        CU_ASSERT_STRING_EQUAL(ms.m[i].value, want[i].value);
        CU_ASSERT_EQUAL(ms.m[i].type, want[i].type);
    }
}

static void test_members_duplicates_and_nesting(void)
{
    struct members ms = {.n = 0, .stop_at = 0};

    /* every duplicate, in order; nothing from nested objects */
    const char *body = "{\"a\":{\"a\":1,\"b\":[{\"c\":2}]},\"a\":\"x\",\"\":-0}";
    CU_ASSERT_EQUAL(scan_n(body, strlen(body), collect, &ms, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ms.n, 3);
    CU_ASSERT_STRING_EQUAL(ms.m[0].key, "a");
    CU_ASSERT_STRING_EQUAL(ms.m[0].value, "{\"a\":1,\"b\":[{\"c\":2}]}");
    CU_ASSERT_STRING_EQUAL(ms.m[1].key, "a");
    CU_ASSERT_STRING_EQUAL(ms.m[1].value, "\"x\"");
    CU_ASSERT_STRING_EQUAL(ms.m[2].key, "");
    CU_ASSERT_STRING_EQUAL(ms.m[2].value, "-0");
    /* not an object at the top: no members */
    ms.n = 0;
    CU_ASSERT_EQUAL(scan_n("[{\"a\":1}]", 9, collect, &ms, NULL, NULL), 0);
    CU_ASSERT_EQUAL(scan_n("\"a\"", 3, collect, &ms, NULL, NULL), 0);
    CU_ASSERT_EQUAL(ms.n, 0);
    /* members seen before an error are reported; the error still wins */
    body = "{\"a\":1,\"b\":tru}";
    CU_ASSERT_EQUAL(scan_n(body, strlen(body), collect, &ms, NULL, NULL), -1);
    CU_ASSERT_EQUAL(ms.n, 1);
}

static void test_member_callback_stops(void)
{
    struct members ms = {.n = 0, .stop_at = 2};
    struct json_scan_error err = {0, NULL};
    enum json_scan_type type = JSON_T_NULL;
    /* what follows the member that stops is not looked at */
    const char *body = "{\"a\":1,\"model\":\"m\", garbage";

    CU_ASSERT_EQUAL(scan_n(body, strlen(body), collect, &ms, &type, &err), 7);
    CU_ASSERT_EQUAL(type, JSON_T_OBJECT);
    CU_ASSERT_EQUAL(ms.n, 2);
    CU_ASSERT_STRING_EQUAL(ms.m[1].key, "model");
    /* without a callback the same body is invalid */
    CU_ASSERT_EQUAL(scan(body, NULL, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.what, "expected a string key");
}

/* --- string tokens --- */

static void check_decode(const char *tok, const char *want, size_t wantlen)
{
    char out[64];
    size_t n = json_string_decode(tok, strlen(tok), out, sizeof out);

    CU_ASSERT_EQUAL(json_scan(tok, strlen(tok), NULL, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL(n, wantlen);
    CU_ASSERT(n < sizeof out && memcmp(out, want, wantlen) == 0 && out[n] == '\0');
    if (n != wantlen || memcmp(out, want, wantlen) != 0)
        fprintf(stderr, "\ndecode %s: got %zu bytes\n", tok, n);
}

static void test_decode_escapes(void)
{
    check_decode("\"\"", "", 0);
    check_decode("\"plain text\"", "plain text", 10);
    check_decode("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    check_decode("\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"", "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                 10);
    check_decode("\"\\uD83D\\uDE00!\"", "\xf0\x9f\x98\x80!", 5);
    check_decode("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4); /* U+10FFFF */
    check_decode("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
                 "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 11);
    /* lone surrogates: U+FFFD, as json-c */
    check_decode("\"\\ud800x\"", "\xef\xbf\xbdx", 4);
    check_decode("\"\\udc00\"", "\xef\xbf\xbd", 3);
    check_decode("\"\\udbff\"", "\xef\xbf\xbd", 3);
    check_decode("\"\\ud800\\u0041\"", "\xef\xbf\xbd" "A", 4);
    check_decode("\"\\ud800\\n\"", "\xef\xbf\xbd\n", 4);
    check_decode("\"\\ud800\\ud83d\\ude00\"", "\xef\xbf\xbd\xf0\x9f\x98\x80", 7);
    check_decode("\"\\ude00\\ud83d\"", "\xef\xbf\xbd\xef\xbf\xbd", 6);
    /* NUL inside; UTF-8 as it is */
    check_decode("\"a\\u0000b\"", "a\0b", 3);
    check_decode("\"\xc3\xa9\xf0\x9f\x98\x80\"", "\xc3\xa9\xf0\x9f\x98\x80", 6);
}

/* json-c decodes the same token to the same bytes */
static void test_decode_like_jsonc(void)
{
    static const char *toks[] = {
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"",
        "\"\\ud800x\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800\\n\"",
        "\"\\ud800\\ud83d\\ude00\"", "\"\\ude00\\ud83d\"", "\"a\\u0000b\"",
        "\"\xc3\xa9\xe2\x82\xac\"", "\"x\\ud800\"", "\"\\udbff\\udfff\\u0000\"",
    };

    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        struct json_object *o = json_tokener_parse(toks[i]);
        char out[64];
        size_t n = json_string_decode(toks[i], strlen(toks[i]), out, sizeof out);
        CU_ASSERT_FATAL(o != NULL && json_object_is_type(o, json_type_string));
        CU_ASSERT_EQUAL(n, (size_t)json_object_get_string_len(o));
        CU_ASSERT(memcmp(out, json_object_get_string(o), n) == 0);
        json_object_put(o);
    }
}

static void test_decode_truncates_like_snprintf(void)
{
    const char *tok = "\"hello\\u00e9\""; /* "hello" + 2 bytes */
    size_t len = strlen(tok);
    char out[16];

    memset(out, '#', sizeof out);
    CU_ASSERT_EQUAL(json_string_decode(tok, len, out, 0), 7);
    CU_ASSERT_EQUAL(out[0], '#'); /* cap 0: nothing written */
    CU_ASSERT_EQUAL(json_string_decode(tok, len, out, 1), 7);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(json_string_decode(tok, len, out, 6), 7);
    CU_ASSERT_STRING_EQUAL(out, "hello");
    CU_ASSERT_EQUAL(json_string_decode(tok, len, out, 7), 7);
    CU_ASSERT_STRING_EQUAL(out, "hello\xc3"); /* cut inside the character */
    memset(out, '#', sizeof out);
    CU_ASSERT_EQUAL(json_string_decode(tok, len, out, 8), 7);
    CU_ASSERT_STRING_EQUAL(out, "hello\xc3\xa9");
    CU_ASSERT_EQUAL(out[8], '#');
    /* a 4-byte character cut at every place */
    for (size_t cap = 1; cap <= 6; cap++) {
        memset(out, '#', sizeof out);
        CU_ASSERT_EQUAL(json_string_decode("\"\\ud83d\\ude00\"", 14, out, cap), 4);
        CU_ASSERT(memcmp(out, "\xf0\x9f\x98\x80", cap - 1 < 4 ? cap - 1 : 4) == 0);
        CU_ASSERT_EQUAL(out[cap - 1 < 4 ? cap - 1 : 4], '\0');
        CU_ASSERT_EQUAL(out[cap], '#');
    }
}

static void test_string_equals(void)
{
#define EQ(tok, lit) json_string_equals(tok, strlen(tok), lit)
    CU_ASSERT_TRUE(EQ("\"model\"", "model"));
    CU_ASSERT_FALSE(EQ("\"model\"", "models"));
    CU_ASSERT_FALSE(EQ("\"model\"", "mode"));
    CU_ASSERT_FALSE(EQ("\"model\"", "Model"));
    CU_ASSERT_TRUE(EQ("\"\"", ""));
    CU_ASSERT_FALSE(EQ("\"\"", "a"));
    CU_ASSERT_FALSE(EQ("\"a\"", ""));
    CU_ASSERT_TRUE(EQ("\"mod\\u0065l\"", "model"));
    CU_ASSERT_TRUE(EQ("\"\\u006D\\u006f\\u0064\\u0065\\u006c\"", "model"));
    CU_ASSERT_FALSE(EQ("\"mod\\u0065l\"", "modex"));
    CU_ASSERT_FALSE(EQ("\"mod\\u0065l\"", "mode"));
    CU_ASSERT_FALSE(EQ("\"mod\\u0065l\"", "modell"));
    CU_ASSERT_FALSE(EQ("\"model\\u0000\"", "model"));
    CU_ASSERT_FALSE(EQ("\"a\\u0000b\"", "a"));
    CU_ASSERT_TRUE(EQ("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"));
    CU_ASSERT_TRUE(EQ("\"\\ud800\"", "\xef\xbf\xbd"));
    CU_ASSERT_TRUE(EQ("\"a\\/b\\n\"", "a/b\n"));
    CU_ASSERT_TRUE(EQ("\"\\\\\"", "\\"));
    CU_ASSERT_FALSE(EQ("\"\\\\\"", "\\\\"));
#undef EQ
    /* a key found by the member scan, escaped */
    const char *body = "{\"mod\\u0065l\":\"x\"}";
    struct members ms = {.n = 0, .stop_at = 0};
    CU_ASSERT_EQUAL(scan_n(body, strlen(body), collect, &ms, NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(ms.m[0].key, "model");
    CU_ASSERT_TRUE(json_string_equals(body + 1, 12, "model"));
    CU_ASSERT_FALSE(json_string_equals(body + 1, 12, "mod\\u0065l"));
}

/* --- limits --- */

/* n levels of "[" (or {"a":[ ... alternating with objects), closed again */
static char *nest(size_t n, int mixed, size_t *len)
{
    char *s = malloc(n * 6 + 3), *p = s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (size_t i = 0; i < n; i++) {
        if (mixed && i % 3 == 1) {
            memcpy(p, "{\"a\":", 5);
            p += 5;
        } else {
            *p++ = '[';
        }
    }
    *p++ = '0';
    for (size_t i = n; i-- > 0;)
        *p++ = mixed && i % 3 == 1 ? '}' : ']';
    *len = (size_t)(p - s);
    *p = '\0';
    return s;
}

static void test_depth_limit(void)
{
    struct json_scan_error err = {0, NULL};
    size_t len;
    char *s;

    for (int mixed = 0; mixed <= 1; mixed++) {
        s = nest(JSON_SCAN_MAX_DEPTH, mixed, &len);
        CU_ASSERT_EQUAL(json_scan(s, len, NULL, NULL, NULL, &err), 0);
        /* the closers are checked against the bit stack, all 512 levels */
        for (size_t i = len - JSON_SCAN_MAX_DEPTH; i < len; i += 37) {
            char was = s[i];
            s[i] = was == ']' ? '}' : ']';
            CU_ASSERT_EQUAL(json_scan(s, len, NULL, NULL, NULL, &err), -1);
            s[i] = was;
        }
        free(s);
        s = nest(JSON_SCAN_MAX_DEPTH + 1, mixed, &len);
        CU_ASSERT_EQUAL(json_scan(s, len, NULL, NULL, NULL, &err), -1);
        CU_ASSERT_STRING_EQUAL(err.what, "nesting too deep");
        CU_ASSERT(s[err.offset] == '[' || s[err.offset] == '{');
        free(s);
    }
    s = nest(JSON_SCAN_MAX_DEPTH + 1, 0, &len);
    CU_ASSERT_EQUAL(json_scan(s, len, NULL, NULL, NULL, &err), -1);
    CU_ASSERT_EQUAL(err.offset, JSON_SCAN_MAX_DEPTH);
    free(s);
    /* levels reused with the other kind: arrays, then objects, then arrays */
    char *a = nest(JSON_SCAN_MAX_DEPTH - 1, 0, &len), *o = nest(JSON_SCAN_MAX_DEPTH - 1, 1, &len);
    size_t alen = strlen(a), olen = strlen(o);
    s = malloc(2 * alen + olen + 5); /* [a,o,a] and the NUL */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    sprintf(s, "[%s,%s,%s]", a, o, a);
    CU_ASSERT_EQUAL(json_scan(s, strlen(s), NULL, NULL, NULL, &err), 0);
    CU_ASSERT_EQUAL(s[alen + olen], '}'); /* the objects' chain's outermost '}' */
    s[alen + olen] = ']';
    CU_ASSERT_EQUAL(json_scan(s, strlen(s), NULL, NULL, NULL, &err), -1);
    free(s);
    free(a);
    free(o);
}

static void test_huge_input(void)
{
    const size_t big = 1 << 20;
    size_t len = big + 64;
    char *s = malloc(len);
    struct members ms = {.n = 0, .stop_at = 0};
    struct json_scan_error err = {0, NULL};
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    n = (size_t)sprintf(s, "{\"model\":\"m\",\"prompt\":\"");
    for (size_t start = n, i = 0; i < big; i = n - start) {
        if (i % 1001 == 0) {
            memcpy(s + n, "\\n", 2);
            n += 2;
        } else if (i % 97 == 0) {
            memcpy(s + n, "\xc3\xa9", 2); /* U+00E9 */
            n += 2;
        } else {
            s[n++] = "abcdefg"[i % 7];
        }
    }
    n += (size_t)sprintf(s + n, "\"}");
    CU_ASSERT_EQUAL(json_scan(s, n, collect, &ms, NULL, &err), 0);
    CU_ASSERT_EQUAL(ms.n, 2);
    /* a control character at the very end of it */
    s[n - 3] = '\x1f';
    CU_ASSERT_EQUAL(json_scan(s, n, NULL, NULL, NULL, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.what, "control character in string");
    CU_ASSERT_EQUAL(err.offset, n - 3);
    /* a stray continuation byte there: the fast loop stops at it too */
    s[n - 3] = '\x80';
    CU_ASSERT_EQUAL(json_scan(s, n, NULL, NULL, NULL, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.what, JSON_SCAN_ERR_UTF8);
    CU_ASSERT_EQUAL(err.offset, n - 3);
    CU_ASSERT_EQUAL(json_utf8_check(s, n), n - 3);
    free(s);
    /* text that is not ASCII at all: 3-byte characters, then a 4-byte one
     * cut short at the very end */
    s = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    n = (size_t)sprintf(s, "{\"model\":\"m\",\"prompt\":\"");
    while (n < big) {
        memcpy(s + n, "\xe6\xa8\xa1\xe5\x9e\x8b", 6);
        n += 6;
    }
    n += (size_t)sprintf(s + n, "\"}");
    CU_ASSERT_EQUAL(json_scan(s, n, NULL, NULL, NULL, &err), 0);
    CU_ASSERT_EQUAL(json_utf8_check(s, n), n);
    memcpy(s + n - 5, "\xf0\x9f\x98\"}", 5);
    CU_ASSERT_EQUAL(json_scan(s, n, NULL, NULL, NULL, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.what, JSON_SCAN_ERR_UTF8);
    CU_ASSERT_EQUAL(err.offset, n - 5);
    CU_ASSERT_EQUAL(json_utf8_check(s, n), n - 5);
    free(s);
    /* and a long array of numbers */
    s = malloc(len);
    n = 0;
    s[n++] = '[';
    while (n < big)
        n += (size_t)sprintf(s + n, "%zu.5e-3,", n);
    s[n - 1] = ']';
    CU_ASSERT_EQUAL(json_scan(s, n, NULL, NULL, NULL, &err), 0);
    free(s);
}

/* Every byte value at every place of a run longer than two 16-byte steps
 * of the scanner's fast loop: it stops at exactly '"', '\\', the control
 * characters and the bytes >= 0x80 (alone, none of them is UTF-8). */
static void test_string_runs_at_every_alignment(void)
{
    enum { RUN = 40 };
    char s[RUN + 2];
    struct json_scan_error err = {0, NULL};

    for (int c = 0; c < 256; c++) {
        for (size_t pos = 0; pos < RUN; pos++) {
            memset(s + 1, 'x', RUN);
            s[0] = s[RUN + 1] = '"';
            s[1 + pos] = (char)c;
            int rc = json_scan(s, RUN + 2, NULL, NULL, NULL, &err);
            if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                CU_ASSERT_EQUAL(rc, 0);
            } else if (c >= 0x80) {
                CU_ASSERT(rc == -1 && err.offset == 1 + pos &&
                          strcmp(err.what, JSON_SCAN_ERR_UTF8) == 0);
            } else if (c < 0x20) {
                CU_ASSERT(rc == -1 && err.offset == 1 + pos &&
                          strcmp(err.what, "control character in string") == 0);
            } else if (c == '"') {
                CU_ASSERT(rc == -1 && err.offset == 2 + pos);
            } else {
                CU_ASSERT(rc == -1 && err.offset == (pos < RUN - 1 ? 1 + pos : RUN + 2));
            }
        }
    }
}

/* Valid and broken UTF-8 sequences at every place of a run longer than two
 * of the fast loop's steps, and runs of them back to back. */
static int jsonc_accepts(const char *s, size_t len);

static void test_utf8_at_every_alignment(void)
{
    static const struct {
        const char *seq;
        int ok;
    } seqs[] = {
        {"\xc2\x80", 1}, {"\xdf\xbf", 1}, {"\xe0\xa0\x80", 1}, {"\xed\x9f\xbf", 1},
        {"\xef\xbf\xbf", 1}, {"\xf0\x90\x80\x80", 1}, {"\xf4\x8f\xbf\xbf", 1},
        {"\xc0\x80", 0}, {"\xe0\x9f\xbf", 0}, {"\xed\xa0\x80", 0}, {"\xf0\x8f\xbf\xbf", 0},
        {"\xf4\x90\x80\x80", 0}, {"\xe2\x82", 0}, {"\xf0\x9f\x98", 0}, {"\xc3", 0},
    };
    enum { RUN = 40 };
    char s[RUN + 8];
    struct json_scan_error err = {0, NULL};

    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        size_t sl = strlen(seqs[k].seq);
        for (size_t pos = 0; pos + sl <= RUN; pos++) {
            memset(s + 1, 'x', RUN);
            s[0] = s[RUN + 1] = '"';
            memcpy(s + 1 + pos, seqs[k].seq, sl);
            int rc = json_scan(s, RUN + 2, NULL, NULL, NULL, &err);
            if (seqs[k].ok) {
                CU_ASSERT_EQUAL(rc, 0);
                CU_ASSERT_EQUAL(json_utf8_check(s, RUN + 2), RUN + 2);
            } else {
                CU_ASSERT(rc == -1 && err.offset == 1 + pos &&
                          strcmp(err.what, JSON_SCAN_ERR_UTF8) == 0);
                CU_ASSERT_EQUAL(json_utf8_check(s, RUN + 2), 1 + pos);
            }
        }
    }
    /* all valid ones back to back, then one broken at the end of the run */
    {
        char run[128] = "\"";
        struct json_scan_error e2 = {0, NULL};
        for (size_t k = 0; seqs[k].ok; k++)
            strcat(run, seqs[k].seq);
        size_t at = strlen(run);
        strcat(run, "\xed\xa0\x80\"");
        CU_ASSERT_EQUAL(json_scan(run, strlen(run), NULL, NULL, NULL, &e2), -1);
        CU_ASSERT_EQUAL(e2.offset, at);
        run[at] = '"';
        CU_ASSERT_EQUAL(json_scan(run, at + 1, NULL, NULL, NULL, NULL), 0);
    }
}

/* A decoder written plainly, for json_utf8_check to be compared with: the
 * code point and its shortest form. */
static int ref_utf8_len(const unsigned char *b, size_t n)
{
    unsigned cp;
    int len;

    if (b[0] < 0x80)
        return 1;
    if ((b[0] & 0xE0) == 0xC0)
        len = 2, cp = b[0] & 0x1Fu;
    else if ((b[0] & 0xF0) == 0xE0)
        len = 3, cp = b[0] & 0x0Fu;
    else if ((b[0] & 0xF8) == 0xF0)
        len = 4, cp = b[0] & 0x07u;
    else
        return 0;
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((b[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (b[i] & 0x3Fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
        return 0; /* overlong */
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

static size_t ref_utf8_check(const unsigned char *b, size_t n)
{
    size_t p = 0;
    while (p < n) {
        int k = ref_utf8_len(b + p, n - p);
        if (k == 0)
            return p;
        p += (size_t)k;
    }
    return n;
}

/* json_utf8_check against the plain decoder on every sequence of up to 3
 * bytes and every 4-byte one that starts F0..F7 and goes on with bytes of
 * the interesting kinds; json_scan agrees on each as a string's content. */
static void test_utf8_check_exhaustive(void)
{
    static const unsigned char tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                          0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
    unsigned char b[8];
    size_t bad = 0;

    for (unsigned x = 0; x < 1u << 24; x++) {
        size_t n = x < 256 ? 1 : x < 65536 ? 2 : 3;
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)(x >> (8 * (n - 1 - i)));
        if (n > 1 && b[0] == 0) /* short ones are counted once */
            continue;
        if (json_utf8_check((const char *)b, n) != ref_utf8_check(b, n))
            bad++;
    }
    for (unsigned lead = 0xF0; lead <= 0xF7; lead++)
        for (unsigned second = 0; second < 256; second++)
            for (size_t i = 0; i < sizeof tails; i++)
                for (size_t j = 0; j < sizeof tails; j++) {
                    b[0] = (unsigned char)lead;
                    b[1] = (unsigned char)second;
                    b[2] = tails[i];
                    b[3] = tails[j];
                    if (json_utf8_check((const char *)b, 4) != ref_utf8_check(b, 4))
                        bad++;
                }
    CU_ASSERT_EQUAL(bad, 0);
    /* as a string's content (bytes that are text, not JSON's specials) */
    bad = 0;
    for (unsigned x = 0; x < 1u << 16; x++) {
        unsigned char t[5] = {'"', (unsigned char)(x >> 8), (unsigned char)x, 'z', '"'};
        struct json_scan_error err = {0, NULL};
        size_t want = ref_utf8_check(t + 1, 3);
        if (t[1] < 0x20 || t[1] == '"' || t[1] == '\\' || t[2] < 0x20 || t[2] == '"' ||
            t[2] == '\\')
            continue;
        int rc = json_scan((const char *)t, 5, NULL, NULL, NULL, &err);
        if (want == 3 ? rc != 0 : rc != -1 || err.offset != 1 + want)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* empty and ASCII only */
    CU_ASSERT_EQUAL(json_utf8_check("", 0), 0);
    CU_ASSERT_EQUAL(json_utf8_check("plain ascii text, longer than 8", 31), 31);
    CU_ASSERT_EQUAL(json_utf8_check("plain ascii text\xff", 17), 16);
}

/* Python 3.11+ refuses to turn an integer of more than 4300 digits into an
 * int (json.loads raises ValueError); a float of any length it takes. */
static void test_integer_digit_limit(void)
{
    const size_t max = JSON_SCAN_MAX_INT_DIGITS;
    char *s = malloc(max + 64);
    struct json_scan_error err = {0, NULL};
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(JSON_SCAN_MAX_INT_DIGITS, 4300);
    CU_ASSERT_STRING_EQUAL(JSON_SCAN_ERR_INT_DIGITS, "integer with more than 4300 digits");
    for (int neg = 0; neg <= 1; neg++) {
        /* {"n":[-]111...1} with max digits: fine; one more: refused at the
         * number's first byte, the sign not counted */
        for (size_t digits = max - 1; digits <= max + 1; digits++) {
            n = (size_t)sprintf(s, "{\"n\":%s", neg ? "-" : "");
            memset(s + n, '7', digits);
            n += digits;
            s[n++] = '}';
            int rc = scan_n(s, n, NULL, NULL, NULL, &err);
            if (digits <= max) {
                CU_ASSERT_EQUAL(rc, 0);
            } else {
                CU_ASSERT_EQUAL(rc, -1);
                CU_ASSERT_STRING_EQUAL(err.what, JSON_SCAN_ERR_INT_DIGITS);
                CU_ASSERT_EQUAL(err.offset, 5);
            }
            /* with a fraction or an exponent it is a float: any length */
            memcpy(s + n - 1, ".5}", 3);
            CU_ASSERT_EQUAL(scan_n(s, n + 2, NULL, NULL, NULL, NULL), 0);
            memcpy(s + n - 1, "e5}", 3);
            CU_ASSERT_EQUAL(scan_n(s, n + 2, NULL, NULL, NULL, NULL), 0);
            memcpy(s + n - 1, "E-9}", 4);
            CU_ASSERT_EQUAL(scan_n(s, n + 3, NULL, NULL, NULL, NULL), 0);
        }
    }
    /* a top-level integer, and one in an array after a short one */
    memset(s, '1', max + 1);
    CU_ASSERT_EQUAL(scan_n(s, max, NULL, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL(scan_n(s, max + 1, NULL, NULL, NULL, &err), -1);
    CU_ASSERT_EQUAL(err.offset, 0);
    memcpy(s, "[12,", 4);
    memset(s + 4, '9', max + 1);
    s[max + 5] = ']';
    CU_ASSERT_EQUAL(scan_n(s, max + 6, NULL, NULL, NULL, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.what, JSON_SCAN_ERR_INT_DIGITS);
    CU_ASSERT_EQUAL(err.offset, 4);
    /* the limit is found where the number is: before what follows it */
    s[max + 5] = 'x';
    CU_ASSERT_EQUAL(scan_n(s, max + 6, NULL, NULL, NULL, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.what, JSON_SCAN_ERR_INT_DIGITS);
    /* digits in a string are text */
    s[0] = '"';
    memset(s + 1, '9', max + 10);
    s[max + 11] = '"';
    CU_ASSERT_EQUAL(scan_n(s, max + 12, NULL, NULL, NULL, NULL), 0);
    /* json-c takes the long one (and clamps it) */
    n = (size_t)sprintf(s, "[");
    memset(s + n, '3', max + 1);
    n += max + 1;
    n += (size_t)sprintf(s + n, "]");
    CU_ASSERT_TRUE(jsonc_accepts(s, n));
    free(s);
}

/* --- against json-c --- */

/* json-c's verdict as request.c asks it: strict, the whole input a value and
 * only whitespace after it. */
static int jsonc_accepts(const char *s, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;
    int ok;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, s, (int)len);
    ok = json_tokener_get_error(tok) == json_tokener_success;
    for (size_t i = json_tokener_get_parse_end(tok); ok && i < len; i++)
        ok = s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n';
    json_object_put(obj);
    json_tokener_free(tok);
    return ok;
}

static void test_differential_jsonc(void)
{
    static const struct {
        const char *in;
        size_t len; /* 0: strlen */
        int ours, jsonc;
    } cases[] = {
        /* the same verdict */
        {"{\"model\":\"a\",\"n\":[1,2.5e3,-0,true,false,null,{}]}", 0, 1, 1},
        {" [ 1 , 2 ] \n", 0, 1, 1},
        {"123 ", 0, 1, 1},
        {"\"\\ud800\"", 0, 1, 1},
        {"[123456789012345678901234567890,-123456789012345678901234567890]", 0, 1, 1},
        {"[1e99999,1e-99999,-0.0,0e0,10e05]", 0, 1, 1},
        {"{\"a\xc3\xa9\":\"\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}", 0, 1, 1},
        {"[\xc3\xa9]", 0, 0, 0},
        {"", 0, 0, 0},
        {"[01]", 0, 0, 0},
        {"[1e]", 0, 0, 0},
        {"[1e+]", 0, 0, 0},
        {"[.5]", 0, 0, 0},
        {"[+1]", 0, 0, 0},
        {"[-]", 0, 0, 0},
        {"[0x1]", 0, 0, 0},
        {"[1.5.2]", 0, 0, 0},
        {"[-NaN]", 0, 0, 0},
        {"[nan]", 0, 0, 0},
        {"[infinity]", 0, 0, 0},
        {"[-Infinityx]", 0, 0, 0},
        {"[1,]", 0, 0, 0},
        {"{\"a\":1,}", 0, 0, 0},
        {"['a']", 0, 0, 0},
        {"{\"a\":'b'}", 0, 0, 0},
        {"{'a\\'':1}", 0, 0, 0},
        {"[\"\\x\"]", 0, 0, 0},
        {"[\"\\'\"]", 0, 0, 0},
        {"[\"\\u12g4\"]", 0, 0, 0},
        {"[\"a\0b\"]", 7, 0, 0},
        {"[1]\0", 4, 0, 0},
        {"[1,\0 2]", 7, 0, 0},
        {"[True]", 0, 0, 0},
        {"[tru]", 0, 0, 0},
        {"[nul]", 0, 0, 0},
        {"/*c*/[]", 0, 0, 0},
        {"[]//c", 0, 0, 0},
        {"\v[]", 0, 0, 0},
        {"[]\f", 0, 0, 0},
        {"\xef\xbb\xbf[]", 0, 0, 0},
        {"[1 2]", 0, 0, 0},
        {"{\"a\" 1}", 0, 0, 0},
        {"{\"a\":1\"b\":2}", 0, 0, 0},
        {"{,}", 0, 0, 0},
        {"[,]", 0, 0, 0},
        {"{1:2}", 0, 0, 0},
        {"[1]x", 0, 0, 0},
        /* json-c laxer: names in single quotes */
        {"{'a':1}", 0, 0, 1},
        {"{'a\"b':1}", 0, 0, 1},
        /* json-c laxer: NaN and Infinity */
        {"[NaN]", 0, 0, 1},
        {"NaN ", 0, 0, 1},
        {"[Infinity,-Infinity]", 0, 0, 1},
        /* json-c laxer: raw control characters in strings */
        {"[\"a\x01b\"]", 0, 0, 1},
        {"[\"a\tb\"]", 0, 0, 1},
        {"{\"\x1f\":1}", 0, 0, 1},
        /* json-c laxer: numbers */
        {"[00]", 0, 0, 1},
        {"[-00]", 0, 0, 1},
        {"[-01]", 0, 0, 1},
        {"[01.5]", 0, 0, 1},
        {"[00e5]", 0, 0, 1},
        {"[1.]", 0, 0, 1},
        {"[1.e5]", 0, 0, 1},
        {"[-.5]", 0, 0, 1},
        /* json-c laxer: bytes >= 0x80 in strings that are not UTF-8 */
        {"{\"a\":\"\xff\xfe\"}", 0, 0, 1},
        {"[\"\xc0\xaf\"]", 0, 0, 1},
        {"[\"\xed\xa0\x80\"]", 0, 0, 1},
        {"[\"\xf4\x90\x80\x80\"]", 0, 0, 1},
        {"[\"\xe2\x82\"]", 0, 0, 1},
        {"{\"\x80\":1}", 0, 0, 1},
        /* json-c stricter: a top-level scalar that ends the input */
        {"123", 0, 1, 0},
        {"-0.5e3", 0, 1, 0},
        {"true", 0, 1, 0},
        {"false", 0, 1, 0},
        {"null", 0, 1, 0},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = cases[i].in;
        size_t len = cases[i].len ? cases[i].len : strlen(in);
        int ours = scan_n(in, len, NULL, NULL, NULL, NULL) == 0;
        int jsonc = jsonc_accepts(in, len);
        if (ours != cases[i].ours || jsonc != cases[i].jsonc)
            fprintf(stderr, "\ndifferential case %zu '%s': ours %d json-c %d, want %d %d\n", i,
                    in, ours, jsonc, cases[i].ours, cases[i].jsonc);
        CU_ASSERT_EQUAL(ours, cases[i].ours);
        CU_ASSERT_EQUAL(jsonc, cases[i].jsonc);
    }
}

/* json-c stricter: 32 levels by default, a scalar counting as one */
static void test_differential_jsonc_depth(void)
{
    size_t len;
    char *s;

    s = nest(31, 0, &len); /* 31 arrays and a 0 in the innermost: 32 levels */
    CU_ASSERT_TRUE(jsonc_accepts(s, len));
    CU_ASSERT_EQUAL(json_scan(s, len, NULL, NULL, NULL, NULL), 0);
    free(s);
    s = nest(32, 0, &len);
    CU_ASSERT_FALSE(jsonc_accepts(s, len));
    CU_ASSERT_EQUAL(json_scan(s, len, NULL, NULL, NULL, NULL), 0);
    free(s);
    s = nest(JSON_SCAN_MAX_DEPTH, 0, &len);
    CU_ASSERT_FALSE(jsonc_accepts(s, len));
    CU_ASSERT_EQUAL(json_scan(s, len, NULL, NULL, NULL, NULL), 0);
    free(s);
}

void register_json_scan_tests(void)
{
    UNIT_SUITE("json_scan", UNIT_TEST(test_valid), UNIT_TEST(test_invalid),
               UNIT_TEST(test_members_of_chat_body),
               UNIT_TEST(test_members_duplicates_and_nesting),
               UNIT_TEST(test_member_callback_stops), UNIT_TEST(test_decode_escapes),
               UNIT_TEST(test_decode_like_jsonc), UNIT_TEST(test_decode_truncates_like_snprintf),
               UNIT_TEST(test_string_equals), UNIT_TEST(test_depth_limit),
               UNIT_TEST(test_huge_input), UNIT_TEST(test_string_runs_at_every_alignment),
               UNIT_TEST(test_utf8_at_every_alignment), UNIT_TEST(test_utf8_check_exhaustive),
               UNIT_TEST(test_integer_digit_limit),
               UNIT_TEST(test_differential_jsonc), UNIT_TEST(test_differential_jsonc_depth));
}
