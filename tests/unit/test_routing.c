/* The routing plugins (session, least_loaded, weighted, prefixaware), loaded
 * by the real loader against the real host API of a setup built from a
 * config string, and called the way the dispatcher calls them. */

#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "http_conn.h"
#include "request.h"
#include "setup.h"
#include "unit.h"

#define NKEYS 10000

static struct setup *must_setup(const char *yaml)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(yaml, err, sizeof err);
    if (s == NULL)
        fprintf(stderr, "\nsetup failed: %s\n", err);
    return s;
}

static const struct plugin_slot *slot_named(const struct setup *s, const char *name)
{
    for (size_t i = 0; i < s->routing.n; i++)
        if (strcmp(s->routing.slots[i].plugin->name, name) == 0)
            return &s->routing.slots[i];
    return NULL;
}

/* The backend of a setup by URL, as the handle plugins get. */
static const sy_backend *be(const struct setup *s, const char *url)
{
    for (size_t i = 0; i < s->nbackends; i++)
        if (strcmp(s->backends[i].url, url) == 0)
            return (const sy_backend *)&s->backends[i];
    return NULL;
}

static void set_inflight(const struct setup *s, const char *url, unsigned n)
{
    atomic_store(&((struct backend *)be(s, url))->inflight, n);
}

/* The request of req_init and the json-c object the test edits: the view
 * reads body text, so the text is made from the object before each route. */
static struct sy_request *bound_req;
static struct json_object *bound_body;

static void req_sync(struct sy_request *r)
{
    size_t len = 0;
    if (r != bound_req || bound_body == NULL)
        return;
    r->body = json_object_to_json_string_length(bound_body, JSON_C_TO_STRING_PLAIN, &len);
    r->body_len = len;
}

static void req_done(struct json_object *body)
{
    if (body == bound_body) {
        bound_body = NULL;
        bound_req = NULL;
    }
    json_object_put(body);
}

/* Route on worker w; the URL picked, or NULL when the plugin declined. */
static const char *route(const struct plugin_slot *slot, int w, struct sy_request *req,
                         const sy_backend *const *c, size_t n)
{
    size_t pick = 999;
    if (req != NULL)
        req_sync(req);
    int rc = slot->plugin->desc->route(plugin_slot_instance(slot, w), req, c, n, &pick);
    if (req != NULL)
        request_view_release(req); /* the prompt cache, as the core drops it */
    if (rc == SY_DECLINED)
        return NULL;
    CU_ASSERT_EQUAL_FATAL(rc, SY_OK);
    CU_ASSERT_TRUE_FATAL(pick < n);
    return ((const struct backend *)c[pick])->url;
}

/* A request whose body is {"<field>": "<value>"} (no field when NULL). */
static void req_init(struct sy_request *r, struct json_object **body)
{
    memset(r, 0, sizeof *r);
    *body = json_object_new_object();
    bound_req = r;
    bound_body = *body;
    r->model = "m";
    r->path = "/v1/chat/completions";
}

static void req_set(struct json_object *body, const char *field, const char *value)
{
    json_object_object_add(body, field, json_object_new_string(value));
}

/* ---- session ---- */

#define B1 "http://10.0.0.1:8000"
#define B2 "http://10.0.0.2:8000"
#define B3 "http://10.0.0.3:8000"
#define B4 "http://10.0.0.4:8000"
#define B5 "http://10.0.0.5:8000"

static const char *session_yaml =
    "routing: [session, least_loaded]\n"
    "plugin_config:\n"
    "  session: {key: user}\n"
    "models:\n"
    "  m: {backends: [" B1 ", " B2 ", " B3 ", " B4 ", " B5 "]}\n";

/* Picks for keys "user-0".."user-9999" among the candidates `urls`. */
static void session_picks(const struct setup *s, const char *const *urls, size_t n,
                          const char **out)
{
    const struct plugin_slot *slot = slot_named(s, "session");
    const sy_backend *c[8];
    struct sy_request r;
    struct json_object *body;
    char key[32];

    CU_ASSERT_PTR_NOT_NULL_FATAL(slot);
    for (size_t i = 0; i < n; i++)
        c[i] = be(s, urls[i]);
    req_init(&r, &body);
    for (int k = 0; k < NKEYS; k++) {
        snprintf(key, sizeof key, "user-%d", k);
        req_set(body, "user", key);
        out[k] = route(slot, k % 2, &r, c, n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out[k]);
    }
    req_done(body);
}

static void test_session_spread(void)
{
    static const char *picks[NKEYS];
    static const char *const four[] = { B1, B2, B3, B4 };
    struct setup *s = must_setup(session_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(slot_named(s, "session")->ninst, 1); /* stateless: shared */
    session_picks(s, four, 4, picks);
    for (int b = 0; b < 4; b++) {
        int count = 0;
        for (int k = 0; k < NKEYS; k++)
            count += strcmp(picks[k], four[b]) == 0;
        /* 25% +- 2.5 points (the binomial sd is 0.43 points) */
        CU_ASSERT_TRUE(count >= 2250 && count <= 2750);
    }
    setup_destroy(s);
}

static void test_session_join_and_leave_move_little(void)
{
    static const char *before[NKEYS], *after[NKEYS];
    static const char *const four[] = { B1, B2, B3, B4 }, *const five[] = { B1, B2, B3, B4, B5 },
                             *const three[] = { B1, B2, B4 };
    struct setup *s = must_setup(session_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    session_picks(s, four, 4, before);

    /* B5 joins: only keys that now go to B5 move, about 1/5 of them */
    session_picks(s, five, 5, after);
    int moved = 0, wrong = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (before[k] != after[k] && strcmp(before[k], after[k]) != 0) {
            moved++;
            wrong += strcmp(after[k], B5) != 0;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_TRUE(moved >= 1750 && moved <= 2250);

    /* B3 leaves: only B3's keys move, and they spread over the others */
    session_picks(s, three, 3, after);
    int kept = 1, was_b3 = 0, to[3] = { 0, 0, 0 };
    for (int k = 0; k < NKEYS; k++) {
        if (strcmp(before[k], B3) != 0) {
            kept &= strcmp(before[k], after[k]) == 0;
            continue;
        }
        was_b3++;
        for (int b = 0; b < 3; b++)
            to[b] += strcmp(after[k], three[b]) == 0;
    }
    CU_ASSERT_TRUE(kept);
    CU_ASSERT_TRUE(was_b3 > 2000);
    for (int b = 0; b < 3; b++)
        CU_ASSERT_TRUE(to[b] > was_b3 / 3 - was_b3 / 10 && to[b] < was_b3 / 3 + was_b3 / 10);
    setup_destroy(s);
}

static void test_session_replicas_agree(void)
{
    static const char *one[NKEYS], *two[NKEYS];
    static const char *const order1[] = { B1, B2, B3, B4 }, *const order2[] = { B4, B2, B1, B3 };
    /* the second replica lists the backends in another order: their
     * indexes and candidate positions differ, their URLs do not */
    struct setup *s1 = must_setup(session_yaml);
    struct setup *s2 = must_setup("routing: session\n"
                                  "plugin_config: {session: {key: user}}\n"
                                  "models:\n"
                                  "  m: {backends: [" B5 ", " B4 ", " B3 ", " B2 ", " B1 "]}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT_NOT_EQUAL(((const struct backend *)be(s1, B1))->index,
                        ((const struct backend *)be(s2, B1))->index);
    session_picks(s1, order1, 4, one);
    session_picks(s2, order2, 4, two);
    int same = 0;
    for (int k = 0; k < NKEYS; k++)
        same += strcmp(one[k], two[k]) == 0;
    CU_ASSERT_EQUAL(same, NKEYS);
    setup_destroy(s1);
    setup_destroy(s2);
}

/* A client request with one header line (none when name is NULL), read
 * by the router's own parser as the server reads it. */
struct header_req {
    char buf[512];
    struct http_field fields[4];
    struct http_req req;
};

static void set_header(struct header_req *h, const char *name, const char *value)
{
    struct http_head head;
    size_t scanned = 0;
    const char *why = NULL;

    memset(h, 0, sizeof *h);
    if (name != NULL)
        snprintf(h->buf, sizeof h->buf, "POST / HTTP/1.1\r\n%s: %s\r\n\r\n", name, value);
    else
        snprintf(h->buf, sizeof h->buf, "POST / HTTP/1.1\r\n\r\n");
    CU_ASSERT_EQUAL_FATAL(http_parse_head(h->buf, strlen(h->buf), sizeof h->buf, &head,
                                          h->fields, 4, &scanned, &why), HTTP_PARSE_DONE);
    h->req.buf = h->buf;
    h->req.fields = h->fields;
    h->req.nfields = head.nfields;
}

static void test_session_header_body_and_decline(void)
{
    struct setup *s = must_setup("routing: [session, least_loaded]\n"
                                 "plugin_config: {session: {key: X-Session-Id}}\n"
                                 "models:\n"
                                 "  m: {backends: [" B1 ", " B2 ", " B3 "]}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const struct plugin_slot *slot = slot_named(s, "session");
    const sy_backend *c[3] = { be(s, B1), be(s, B2), be(s, B3) };
    struct header_req headers;
    struct sy_request r;
    struct json_object *body;
    const char *first = NULL;
    int differ = 0;

    set_header(&headers, NULL, NULL);
    req_init(&r, &body);
    CU_ASSERT_PTR_NULL(route(slot, 0, &r, c, 3)); /* no key: declined */
    r.http = &headers.req;
    CU_ASSERT_PTR_NULL(route(slot, 0, &r, c, 3));
    set_header(&headers, "X-Session-Id", "");
    CU_ASSERT_PTR_NULL(route(slot, 0, &r, c, 3)); /* empty: declined */
    set_header(&headers, NULL, NULL);

    /* the header, any case, on any worker, every time */
    set_header(&headers, "x-session-id", "conversation-17");
    first = route(slot, 0, &r, c, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    for (int i = 0; i < 20; i++)
        CU_ASSERT_PTR_EQUAL(route(slot, i % 2, &r, c, 3), first);
    /* the same value as a body field picks the same backend */
    set_header(&headers, NULL, NULL);
    req_set(body, "X-Session-Id", "conversation-17");
    CU_ASSERT_PTR_EQUAL(route(slot, 1, &r, c, 3), first);
    /* the header wins over the body */
    for (int i = 0; i < 50; i++) {
        char v[32];
        snprintf(v, sizeof v, "other-%d", i);
        set_header(&headers, "X-Session-Id", v);
        differ += route(slot, 0, &r, c, 3) != first;
    }
    CU_ASSERT_TRUE(differ > 10);
    /* a non-string body field is no key */
    set_header(&headers, NULL, NULL);
    json_object_object_add(body, "X-Session-Id", json_object_new_int(5));
    CU_ASSERT_PTR_NULL(route(slot, 0, &r, c, 3));
    /* a candidate set without the session's backend: another one */
    req_set(body, "X-Session-Id", "conversation-17");
    const sy_backend *rest[2];
    size_t nrest = 0;
    for (int i = 0; i < 3; i++)
        if (((const struct backend *)c[i])->url != first)
            rest[nrest++] = c[i];
    const char *second = route(slot, 0, &r, rest, 2);
    CU_ASSERT_TRUE(second != NULL && second != first);
    req_done(body);
    setup_destroy(s);
}

static void test_session_config_errors(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup("routing: session\n"
                                 "plugin_config:\n"
                                 "  session: {ttl: 60}\n"
                                 "models:\n"
                                 "  m: {backends: [" B1 "]}\n", err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.yaml:3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "session.ttl: unknown key"));

    s = unit_make_setup("routing: session\n"
                   "plugin_config:\n"
                   "  session:\n"
                   "    other: {}\n"
                   "models:\n"
                   "  m: {backends: [" B1 "]}\n", err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.yaml:4"));

    s = unit_make_setup("routing: [session, least_loaded]\n"
                   "plugin_config:\n"
                   "  session:\n"
                   "    key: \"\"\n"
                   "models:\n"
                   "  m: {backends: [" B1 "]}\n", err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.yaml:4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "session.key: expected the name"));

    /* no section at all: still a clear error */
    s = unit_make_setup("routing: session\nmodels:\n  m: {backends: [" B1 "]}\n", err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "session.key: expected the name"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--session-key"));
}

/* ---- least_loaded ---- */

static void test_least_loaded_picks_the_min(void)
{
    struct setup *s = must_setup("routing: least_loaded\n"
                                 "models:\n"
                                 "  m: {backends: [" B1 ", " B2 ", " B3 ", " B4 "]}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const struct plugin_slot *slot = slot_named(s, "least_loaded");
    const sy_backend *c[4] = { be(s, B1), be(s, B2), be(s, B3), be(s, B4) };
    CU_ASSERT_EQUAL(slot->ninst, 2);

    set_inflight(s, B1, 5);
    set_inflight(s, B2, 3);
    set_inflight(s, B3, 7);
    set_inflight(s, B4, 1);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_STRING_EQUAL(route(slot, i % 2, NULL, c, 4), B4);
    set_inflight(s, B4, 9);
    CU_ASSERT_STRING_EQUAL(route(slot, 0, NULL, c, 4), B2);
    /* only candidates count */
    CU_ASSERT_STRING_EQUAL(route(slot, 0, NULL, c, 1), B1);
    CU_ASSERT_STRING_EQUAL(route(slot, 0, NULL, c + 2, 2), B3);

    /* ties: taken in turn, not always the first */
    set_inflight(s, B1, 2);
    set_inflight(s, B2, 2);
    set_inflight(s, B3, 4);
    set_inflight(s, B4, 2);
    int n1 = 0, n2 = 0, n4 = 0;
    for (int i = 0; i < 300; i++) {
        const char *u = route(slot, 0, NULL, c, 4);
        n1 += strcmp(u, B1) == 0;
        n2 += strcmp(u, B2) == 0;
        n4 += strcmp(u, B4) == 0;
    }
    CU_ASSERT_EQUAL(n1, 100);
    CU_ASSERT_EQUAL(n2, 100);
    CU_ASSERT_EQUAL(n4, 100);
    for (size_t i = 0; i < s->nbackends; i++)
        atomic_store(&s->backends[i].inflight, 0);
    setup_destroy(s);
}

static void test_least_loaded_has_no_settings(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup("routing: least_loaded\n"
                                 "plugin_config:\n"
                                 "  least_loaded:\n"
                                 "    min_gap: 2\n"
                                 "models:\n  m: {backends: [" B1 "]}\n", err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.yaml:4"));
}

/* ---- weighted ---- */

static void test_weighted_smooth_proportions(void)
{
    struct setup *s = must_setup("routing: weighted\n"
                                 "models:\n"
                                 "  m:\n"
                                 "    backends:\n"
                                 "      - {url: " B1 ", weight: 5}\n"
                                 "      - " B2 "\n"
                                 "      - {url: " B3 ", weight: 3}\n"
                                 "      - {url: " B4 ", weight: 1}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const struct plugin_slot *slot = slot_named(s, "weighted");
    const sy_backend *c[4] = { be(s, B1), be(s, B2), be(s, B3), be(s, B4) };
    static const char *const urls[4] = { B1, B2, B3, B4 };
    static const int weight[4] = { 5, 1, 3, 1 };
    int total[4] = { 0 }, window[4] = { 0 }, run = 0, longest = 0;
    const char *prev = NULL;
    CU_ASSERT_EQUAL(slot->ninst, 2);

    for (int i = 0; i < 6000; i++) {
        const char *u = route(slot, 0, NULL, c, 4);
        for (int b = 0; b < 4; b++) {
            if (strcmp(u, urls[b]) == 0) {
                total[b]++;
                window[b]++;
            }
        }
        run = u == prev ? run + 1 : 1;
        longest = run > longest ? run : longest;
        prev = u;
        if ((i + 1) % 10 == 0) { /* every period of 10 picks is exact */
            for (int b = 0; b < 4; b++) {
                CU_ASSERT_EQUAL(window[b], weight[b]);
                window[b] = 0;
            }
        }
    }
    for (int b = 0; b < 4; b++)
        CU_ASSERT_EQUAL(total[b], 600 * weight[b]);
    /* smooth: weight 5 of 10 never comes five in a row */
    CU_ASSERT_TRUE(longest <= 2);

    /* the candidate set varies (say B3 and B4 were tried): B1:B2 stays 5:1,
     * and the other worker's instance keeps its own state */
    int n1 = 0, n2 = 0;
    for (int i = 0; i < 600; i++) {
        const char *u = route(slot, 1, NULL, c, 2);
        n1 += strcmp(u, B1) == 0;
        n2 += strcmp(u, B2) == 0;
    }
    CU_ASSERT_EQUAL(n1, 500);
    CU_ASSERT_EQUAL(n2, 100);
    /* mixing sets keeps the proportions over the whole run */
    const sy_backend *odd[3] = { c[3], c[0], c[2] }; /* another order, too */
    memset(total, 0, sizeof total);
    for (int i = 0; i < 900; i++) {
        const char *u = i % 3 == 2 ? route(slot, 0, NULL, odd, 3) : route(slot, 0, NULL, c, 4);
        for (int b = 0; b < 4; b++)
            total[b] += strcmp(u, urls[b]) == 0;
    }
    CU_ASSERT_TRUE(total[0] > total[2] && total[2] > total[1] && total[2] > total[3]);
    CU_ASSERT_EQUAL(total[0] + total[1] + total[2] + total[3], 900);
    setup_destroy(s);
}

/* ---- prefixaware ---- */

static const char *prefix_yaml =
    "routing: prefixaware\n"
    "plugin_config:\n"
    "  prefixaware: {chunk_size: 16, max_entries: 1000}\n"
    "models:\n"
    "  m: {backends: [" B1 ", " B2 ", " B3 "]}\n";

/* Route a prompt (the body's "prompt"). */
static const char *route_prompt(const struct plugin_slot *slot, struct sy_request *r,
                                struct json_object *body, const char *prompt,
                                const sy_backend *const *c, size_t n)
{
    req_set(body, "prompt", prompt);
    return route(slot, 0, r, c, n);
}

static void test_prefixaware_same_prefix_same_backend(void)
{
    struct setup *s = must_setup(prefix_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const struct plugin_slot *slot = slot_named(s, "prefixaware");
    const sy_backend *c[3] = { be(s, B1), be(s, B2), be(s, B3) };
    struct sy_request r;
    struct json_object *body;
    const char *sys = "You are a helpful assistant. Answer briefly.\n"; /* 45 bytes */
    char turn[512];
    CU_ASSERT_EQUAL(slot->ninst, 1); /* one table for all workers */

    req_init(&r, &body);
    const char *first = route_prompt(slot, &r, body, sys, c, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    /* the backend that has the prefix gets the longer prompts even when it
     * is the busiest */
    set_inflight(s, first, 9);
    snprintf(turn, sizeof turn, "%sWhat is the capital of France?\n", sys);
    CU_ASSERT_PTR_EQUAL(route_prompt(slot, &r, body, turn, c, 3), first);
    snprintf(turn, sizeof turn, "%sWhat is the capital of France?\nParis.\nAnd of Spain?", sys);
    CU_ASSERT_PTR_EQUAL(route_prompt(slot, &r, body, turn, c, 3), first);
    /* chat messages share the prefix too (their text is joined by "\n") */
    json_object_object_del(body, "prompt");
    struct json_object *msgs = json_object_new_array(), *m1 = json_object_new_object();
    json_object_object_add(m1, "role", json_object_new_string("system"));
    json_object_object_add(m1, "content", json_object_new_string(sys));
    json_object_array_add(msgs, m1);
    json_object_object_add(body, "messages", msgs);
    CU_ASSERT_PTR_EQUAL(route(slot, 1, &r, c, 3), first);
    json_object_object_del(body, "messages");

    /* another prompt: the least loaded, not the busy one */
    const char *other = route_prompt(slot, &r, body, "Translate into German the following text", c, 3);
    CU_ASSERT_TRUE(other != NULL && other != first);
    /* shorter than a chunk, or no prompt at all: the least loaded */
    CU_ASSERT_PTR_NOT_EQUAL(route_prompt(slot, &r, body, "You are a", c, 3), first);
    json_object_object_del(body, "prompt");
    CU_ASSERT_PTR_NOT_EQUAL(route(slot, 0, &r, c, 3), first);
    CU_ASSERT_PTR_NOT_EQUAL(route(slot, 0, NULL, c, 3), first);

    /* the remembered backend is not a candidate (tried, or down): the next
     * shorter prefix whose backend is one, else the least loaded */
    const char *a = "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB";                                 /* 2 chunks */
    const char *ab = "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"; /* 4 */
    set_inflight(s, first, 0);
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, ab, c + 1, 1), B2);
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, a, c, 1), B1);
    /* now chunks 1-2 are B1's, chunks 3-4 B2's; B3 is the least loaded */
    set_inflight(s, B1, 5);
    set_inflight(s, B2, 5);
    const sy_backend *no_b2[2] = { c[0], c[2] };
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, ab, no_b2, 2), B1);
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, ab, c, 3), B1); /* learnt again */
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, ab, c + 2, 1), B3);
    for (size_t i = 0; i < s->nbackends; i++)
        atomic_store(&s->backends[i].inflight, 0);
    req_done(body);
    setup_destroy(s);
}

static void test_prefixaware_min_match(void)
{
    /* three chunks of 8 bytes; vllm_router's --prefix-min-match-length says
     * it in bytes, rounded up to whole chunks */
    static const char *const thresholds[] = { "min_match_chunks: 3", "min_match_length: 17" };
    for (int t = 0; t < 2; t++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "routing: prefixaware\n"
                                    "plugin_config:\n"
                                    "  prefixaware: {chunk_size: 8, %s}\n"
                                    "models:\n"
                                    "  m: {backends: [" B1 ", " B2 "]}\n", thresholds[t]);
        struct setup *s = must_setup(yaml);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        const struct plugin_slot *slot = slot_named(s, "prefixaware");
        const sy_backend *c[2] = { be(s, B1), be(s, B2) };
        struct sy_request r;
        struct json_object *body;

        req_init(&r, &body);
        CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, "11111111222222223333333344444444", c, 1), B1);
        set_inflight(s, B1, 3);
        /* two chunks in common: too few, the least loaded */
        CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, "1111111122222222xxxxxxxx", c, 2), B2);
        /* three: enough */
        CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, "111111112222222233333333yyyyyyyy", c, 2), B1);
        set_inflight(s, B1, 0);
        req_done(body);
        setup_destroy(s);
    }
}

/* Resident set size in bytes. */
static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* A prompt of `chunks` 16-byte chunks, all unique to `id`. */
static void unique_prompt(char *buf, int id, int chunks)
{
    for (int i = 0; i < chunks; i++)
        snprintf(buf + 16 * i, 17, "%09d:%05d\n", id, i);
}

static void test_prefixaware_lru_bound(void)
{
    struct setup *s = must_setup(prefix_yaml); /* 1000 entries, 16-byte chunks */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const struct plugin_slot *slot = slot_named(s, "prefixaware");
    const sy_backend *c[2] = { be(s, B1), be(s, B2) };
    const sy_backend *b2 = c[1];
    struct sy_request r;
    struct json_object *body;
    char x[17], p[100 * 16 + 1];
    int id = 0;

    req_init(&r, &body);
    unique_prompt(x, -1, 1);
    set_inflight(s, B2, 5); /* so a forgotten prompt goes to B1 */
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, x, &b2, 1), B2);
    for (int i = 0; i < 999; i++) { /* the table is full, x still in it */
        unique_prompt(p, id++, 1);
        route_prompt(slot, &r, body, p, &b2, 1);
    }
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, x, c, 2), B2); /* and fresh again */
    for (int i = 0; i < 999; i++) { /* pushes out the 999 older ones, not x */
        unique_prompt(p, id++, 1);
        route_prompt(slot, &r, body, p, &b2, 1);
    }
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, x, c, 2), B2);
    unique_prompt(p, 0, 1); /* the first of the 999: forgotten */
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, p, c, 2), B1);
    for (int i = 0; i < 1000; i++) {
        unique_prompt(p, id++, 1);
        route_prompt(slot, &r, body, p, &b2, 1);
    }
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, x, c, 2), B1); /* x too now */

    /* a million more prefixes (100 per prompt): the table stays at its size
     * and so does the process; the first rounds warm up the allocator */
    long before = 0;
    for (int round = 0; round < 15000; round++) {
        if (round == 5000)
            before = rss_bytes();
        unique_prompt(p, id++, 100);
        CU_ASSERT_PTR_NOT_NULL_FATAL(route_prompt(slot, &r, body, p, &b2, 1));
    }
    long after = rss_bytes();
    /* the newest prompt's prefixes are known, the older ones' are gone */
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, p, c, 2), B2);
    unique_prompt(p, id - 20, 100);
    CU_ASSERT_STRING_EQUAL(route_prompt(slot, &r, body, p, c, 2), B1);
#if !defined(__SANITIZE_ADDRESS__)
    /* ASan keeps freed memory in quarantine, so RSS says nothing there */
    CU_ASSERT_TRUE(before > 0 && after > 0);
    CU_ASSERT_TRUE(after - before < 2 * 1024 * 1024);
    if (after - before >= 2 * 1024 * 1024)
        fprintf(stderr, "\nRSS grew by %ld bytes\n", after - before);
#else
    (void)before;
    (void)after;
#endif
    set_inflight(s, B2, 0);
    req_done(body);
    setup_destroy(s);
}

struct hammer {
    const struct plugin_slot *slot;
    const sy_backend *const *c;
    int seed;
    int bad;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    struct sy_request r;
    struct json_object *body;
    char p[8 * 16 + 1];

    memset(&r, 0, sizeof r);
    body = json_object_new_object();
    for (int i = 0; i < 20000; i++) {
        size_t pick = 99;
        /* conversations shared between threads, of varying length */
        unique_prompt(p, (i * 7 + h->seed) % 300, 1 + (i + h->seed) % 8);
        json_object_object_add(body, "prompt", json_object_new_string(p));
        r.body = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &r.body_len);
        if (h->slot->plugin->desc->route(plugin_slot_instance(h->slot, h->seed % 2), &r, h->c,
                                         3, &pick) != SY_OK || pick >= 3)
            h->bad++;
        request_view_release(&r);
    }
    req_done(body);
    return NULL;
}

static void test_prefixaware_threads(void)
{
    struct setup *s = must_setup(prefix_yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const sy_backend *c[3] = { be(s, B1), be(s, B2), be(s, B3) };
    struct hammer h[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){ slot_named(s, "prefixaware"), c, i, 0 };
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(h[i].bad, 0);
    }
    setup_destroy(s);
}

static void test_prefixaware_config_errors(void)
{
    static const char *const bad[][2] = {
        { "{chunk_size: 0}", "prefixaware.chunk_size: expected a whole number from 1" },
        { "{chunk_size: big}", "prefixaware.chunk_size: expected a whole number" },
        { "{max_entries: -5}", "prefixaware.max_entries: expected a whole number from 1" },
        { "{min_match_chunks: 0}", "prefixaware.min_match_chunks: expected" },
        { "{chunksize: 64}", "prefixaware.chunksize: unknown key" },
    };
    char yaml[512], err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(yaml, sizeof yaml,
                 "routing: prefixaware\n"
                 "plugin_config:\n"
                 "  prefixaware: %s\n"
                 "models:\n  m: {backends: [" B1 "]}\n", bad[i][0]);
        err[0] = '\0';
        struct setup *s = unit_make_setup(yaml, err, sizeof err);
        CU_ASSERT_PTR_NULL(s);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.yaml:3"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i][1]));
        if (s != NULL)
            setup_destroy(s);
    }
}

void register_routing_tests(void)
{
    UNIT_SUITE("routing plugins",
               UNIT_TEST(test_session_spread), UNIT_TEST(test_session_join_and_leave_move_little),
               UNIT_TEST(test_session_replicas_agree),
               UNIT_TEST(test_session_header_body_and_decline),
               UNIT_TEST(test_session_config_errors), UNIT_TEST(test_least_loaded_picks_the_min),
               UNIT_TEST(test_least_loaded_has_no_settings),
               UNIT_TEST(test_weighted_smooth_proportions),
               UNIT_TEST(test_prefixaware_same_prefix_same_backend),
               UNIT_TEST(test_prefixaware_min_match), UNIT_TEST(test_prefixaware_lru_bound),
               UNIT_TEST(test_prefixaware_threads), UNIT_TEST(test_prefixaware_config_errors));
}
