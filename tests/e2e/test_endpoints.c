/* vllm_router's endpoints beyond chat (issue: the vllm_router drop-in):
 *
 *   multipart forms    /v1/audio/transcriptions routed by the form's model
 *                      field, the body forwarded byte for byte, the field
 *                      rewritten on fallback; a malformed form is a 400
 *   audio, images      /v1/audio/speech and /v1/images/generations by the
 *                      JSON body's model; GET /v1/audio/voices?model=
 *   sleep mode         /sleep, /wake_up, /is_sleeping with ?id=ENGINE go to
 *                      that engine; an asleep engine takes no request
 *   ?id=               a request pinned to one engine
 *   --root-path        routes served under the prefix and without it
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CHAT "/v1/chat/completions"
#define B "sy-test-boundary-7d3f"

/* A transcription as curl -F sends it: a file with binary bytes (and
 * delimiter look-alikes), the model, a format. */
static char *transcription_form(const char *model, size_t *len)
{
    static const char file[] = "RIFF\x01\x02\xff\xfe WAVEfmt --" B " \r\n-" B "\r\n\x7f data";
    char *body = NULL;
    size_t cap = 0;
    FILE *f = open_memstream(&body, &cap);

    fprintf(f, "--" B "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
               "Content-Type: audio/wav\r\n\r\n");
    fwrite(file, 1, sizeof file - 1, f);
    fprintf(f, "\r\n--" B "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n%s\r\n"
               "--" B "\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\n"
               "json\r\n--" B "--\r\n", model);
    fclose(f);
    *len = cap;
    return body;
}

/* The body the mock got last (new string), or NULL. */
static char *last_body(const struct mock *m, char *uri, size_t urilen)
{
    struct resp r;
    json_object *o = NULL, *v;
    char *body = NULL;

    if (mock_last(m, &r) == 0 && r.status == 200)
        o = json_tokener_parse(r.body);
    resp_free(&r);
    if (o != NULL && json_object_object_get_ex(o, "body", &v))
        body = strdup(json_object_get_string(v));
    if (o != NULL && uri != NULL && json_object_object_get_ex(o, "uri", &v))
        snprintf(uri, urilen, "%s", json_object_get_string(v));
    json_object_put(o);
    return body;
}

static void test_transcription_fallback(void)
{
    struct mock big, small;
    struct router rt;
    struct resp r;
    char yaml[512];
    size_t len, want_len;
    static const char *const hdr[] = { "Content-Type: multipart/form-data; boundary=" B, NULL };

    CU_ASSERT_EQUAL_FATAL(mock_start(&big, "mp-big", "whisper-large", NULL), 0);
    if (mock_start(&small, "mp-small", "whisper-small", NULL) != 0) {
        mock_stop(&big);
        CU_FAIL_FATAL("mock did not start");
    }
    CU_ASSERT_EQUAL(mock_set_mode(&big, "{\"status\":503}"), 0);
    snprintf(yaml, sizeof yaml,
             "models:\n  whisper-large: {backends: [%s], fallback_model: whisper-small}\n"
             "  whisper-small: {backends: [%s]}\n", big.url, small.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);

    char *form = transcription_form("whisper-large", &len);
    char *want = transcription_form("whisper-small", &want_len);
    CU_ASSERT_EQUAL(http_raw(rt.port, "POST", "/v1/audio/transcriptions", form, hdr, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Switchyard-Fallback") ?
                               resp_header(&r, "X-Switchyard-Fallback") : "",
                           "whisper-large>whisper-small");
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "mp-small") : NULL);
    resp_free(&r);
    /* the first backend had the form as sent; the second with the model
     * field rewritten and every other byte as it was */
    char *got = last_body(&small, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(strlen(got), want_len);
    CU_ASSERT(strcmp(got, want) == 0);
    free(got);
    got = last_body(&big, NULL, 0);
    CU_ASSERT(got != NULL && strcmp(got, form) == 0);
    free(got);

    /* a form without the model, or broken */
    CU_ASSERT_EQUAL(http_raw(rt.port, "POST", "/v1/audio/transcriptions",
                             "--" B "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n"
                             "--" B "--\r\n", hdr, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "no \\\"model\\\" field") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_raw(rt.port, "POST", "/v1/audio/translations",
                             "--" B "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                             "whisper-small\r\n", hdr, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "no closing boundary") : NULL);
    resp_free(&r);
    free(form);
    free(want);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&big);
    mock_stop(&small);
}

static void test_audio_image_json(void)
{
    struct mock a;
    struct router rt;
    struct resp r;
    char yaml[256], uri[256];

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "ai-a", "tts,sd", NULL), 0);
    snprintf(yaml, sizeof yaml, "models:\n  tts: {backends: [%s]}\n  sd: {backends: [%s]}\n",
             a.url, a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    static const char *const paths[] = { "/v1/audio/speech", "/v1/images/generations" };
    static const char *const bodies[] = { "{\"model\":\"tts\",\"input\":\"hi\",\"voice\":\"alloy\"}",
                                          "{\"model\":\"sd\",\"prompt\":\"a cat\"}" };
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(http_post(rt.port, paths[i], bodies[i], NULL, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
        char *got = last_body(&a, uri, sizeof uri);
        CU_ASSERT(got != NULL && strcmp(got, bodies[i]) == 0);
        CU_ASSERT_STRING_EQUAL(uri, paths[i]);
        free(got);
    }
    /* GET /v1/audio/voices: the model in the query */
    CU_ASSERT_EQUAL(http_get(rt.port, "/v1/audio/voices?model=tts", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "ai-a") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rt.port, "/v1/audio/voices", &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_post(rt.port, "/v1/audio/voices", "{\"model\":\"tts\"}", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
}

/* The engine_id /engines gives the backend at url ("" when none). */
static void engine_id(int port, const char *url, char *id, size_t len)
{
    struct resp r;
    json_object *list = NULL;

    id[0] = '\0';
    if (http_get(port, "/engines", &r) == 0 && r.status == 200)
        list = json_tokener_parse(r.body);
    resp_free(&r);
    for (size_t i = 0; list != NULL && i < json_object_array_length(list); i++) {
        json_object *e = json_object_array_get_idx(list, i), *u, *v;
        if (json_object_object_get_ex(e, "url", &u) && strcmp(json_object_get_string(u), url) == 0 &&
            json_object_object_get_ex(e, "engine_id", &v))
            snprintf(id, len, "%s", json_object_get_string(v));
    }
    json_object_put(list);
}

/* Which mock served one chat request for m ("" when none). */
static void served_by(int port, const char *path, char *name, size_t len)
{
    struct resp r;
    name[0] = '\0';
    if (http_post(port, path, "{\"model\":\"m\"}", NULL, &r) == 0 && r.status == 200 &&
        resp_header(&r, "X-Mock-Backend") != NULL)
        snprintf(name, len, "%s", resp_header(&r, "X-Mock-Backend"));
    resp_free(&r);
}

static void test_sleep_mode(void)
{
    struct mock a, b;
    struct router rt;
    struct resp r;
    char yaml[256], id[64], path[160], uri[256], name[64];

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "sl-a", "m", NULL), 0);
    if (mock_start(&b, "sl-b", "m", NULL) != 0) {
        mock_stop(&a);
        CU_FAIL_FATAL("mock did not start");
    }
    snprintf(yaml, sizeof yaml, "models:\n  m: {backends: [%s, %s]}\n", a.url, b.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, NULL), 0);
    engine_id(rt.port, a.url, id, sizeof id);
    CU_ASSERT_EQUAL_FATAL(strlen(id), 36);

    /* vllm_router's answers without a usable id */
    CU_ASSERT_EQUAL(http_post(rt.port, "/sleep", "", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "missing target Engine Id") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_post(rt.port, "/sleep?id=nope", "", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "Engine with Id nope not found.") : NULL);
    resp_free(&r);

    /* asleep: the engine got /sleep with the other parameters; no request
     * goes to it */
    snprintf(path, sizeof path, "/sleep?level=1&id=%s", id);
    CU_ASSERT_EQUAL(http_post(rt.port, path, "", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    free(last_body(&a, uri, sizeof uri));
    CU_ASSERT_STRING_EQUAL(uri, "/sleep?level=1");
    for (int i = 0; i < 6; i++) {
        served_by(rt.port, CHAT, name, sizeof name);
        CU_ASSERT_STRING_EQUAL(name, "sl-b");
    }
    snprintf(path, sizeof path, "/is_sleeping?id=%s", id);
    CU_ASSERT_EQUAL(http_get(rt.port, path, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "\"is_sleeping\":true") : NULL);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rt.port, "/engines", &r), 0);
    CU_ASSERT_PTR_NOT_NULL(r.body ? strstr(r.body, "asleep (POST /sleep)") : NULL);
    resp_free(&r);
    /* awake again: both serve */
    snprintf(path, sizeof path, "/wake_up?id=%s", id);
    CU_ASSERT_EQUAL(http_post(rt.port, path, "", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    int from_a = 0;
    for (int i = 0; i < 6; i++) {
        served_by(rt.port, CHAT, name, sizeof name);
        from_a += strcmp(name, "sl-a") == 0;
    }
    CU_ASSERT(from_a > 0);

    /* ?id= pins a request to one engine */
    snprintf(path, sizeof path, CHAT "?id=%s", id);
    for (int i = 0; i < 4; i++) {
        served_by(rt.port, path, name, sizeof name);
        CU_ASSERT_STRING_EQUAL(name, "sl-a");
    }
    free(last_body(&a, uri, sizeof uri));
    CU_ASSERT_STRING_EQUAL(uri, CHAT); /* the id is the router's, not forwarded */
    CU_ASSERT_EQUAL(router_stop(&rt), 0);
    mock_stop(&a);
    mock_stop(&b);
}

static void test_root_path(void)
{
    struct mock a;
    struct router rt;
    struct resp r;
    char yaml[256], name[64];
    static const char *const args[] = { "--root-path", "/llm/", NULL };

    CU_ASSERT_EQUAL_FATAL(mock_start(&a, "rp-a", "m", NULL), 0);
    snprintf(yaml, sizeof yaml, "models:\n  m: {backends: [%s]}\n", a.url);
    CU_ASSERT_EQUAL_FATAL(router_start(&rt, yaml, args), 0);
    served_by(rt.port, "/llm" CHAT, name, sizeof name);
    CU_ASSERT_STRING_EQUAL(name, "rp-a");
    served_by(rt.port, CHAT, name, sizeof name);
    CU_ASSERT_STRING_EQUAL(name, "rp-a");
    CU_ASSERT_EQUAL(http_get(rt.port, "/llm/v1/models", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(http_get(rt.port, "/llmx/v1/models", &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    CU_ASSERT_EQUAL(router_stop(&rt), 0);

    const char *bad[] = { "--check-config", "--static-backends", "http://127.0.0.1:9",
                          "--static-models", "m", "--root-path", "llm", NULL };
    char *out = NULL;
    CU_ASSERT_EQUAL(router_run(bad, &out), 2);
    CU_ASSERT_PTR_NOT_NULL(out ? strstr(out, "--root-path: expected a path such as /llm") : NULL);
    free(out);
    mock_stop(&a);
}

void register_endpoints_e2e_tests(void)
{
    CU_pSuite s = CU_add_suite("e2e vllm_router endpoints", NULL, NULL);
    CU_add_test(s, "a transcription form, rewritten on fallback", test_transcription_fallback);
    CU_add_test(s, "audio and image JSON routes, GET voices", test_audio_image_json);
    CU_add_test(s, "sleep mode and ?id=", test_sleep_mode);
    CU_add_test(s, "--root-path", test_root_path);
}
