/* Health: the shipped health plugins loaded by the real loader against the
 * real host API of a setup (as test_plugins.c does), with passive's
 * attempt_done() hook driven directly by hand-made attempt reports, and the
 * core's backend states (backend_usable / backend_claim / backend_set_state)
 * that both plugins write and the workers read. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "setup.h"
#include "unit.h"

/* A setup with passive as its only health plugin, `settings` its section,
 * and one model on two backends. */
static struct setup *passive_setup(const char *settings)
{
    char yaml[1024], err[512] = "";
    struct setup *s;

    snprintf(yaml, sizeof yaml,
             "health: [passive]\n"
             "plugin_config:\n"
             "  passive: %s\n"
             "models:\n"
             "  a: {backends: [http://127.0.0.1:1, http://127.0.0.1:2]}\n",
             settings);
    s = unit_make_setup(yaml, err, sizeof err);
    if (s == NULL)
        fprintf(stderr, "\n    setup: %s\n", err);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* One finished attempt on backend i, told to every health plugin the way
 * dispatch.c's report_attempt() does. */
static void report(struct setup *s, size_t i, int error, int status, double retry_after,
                   int trial)
{
    struct sy_attempt_report r = {
        .size = sizeof r, .backend = (const sy_backend *)&s->backends[i], .model = "a",
        .error = error, .status = status, .retry_after = retry_after, .latency = 0.01,
        .trial = trial,
    };
    for (size_t k = 0; k < s->health.n; k++) {
        const struct plugin_slot *slot = &s->health.slots[k];
        if (slot->plugin->desc->attempt_done != NULL)
            slot->plugin->desc->attempt_done(slot->inst[0], &r);
    }
}

static void ok(struct setup *s, size_t i) { report(s, i, SY_ATTEMPT_NONE, 200, 0, 0); }
static void fail(struct setup *s, size_t i) { report(s, i, SY_ATTEMPT_STATUS, 503, 0, 0); }

static int state_of(struct setup *s, size_t i)
{
    return backend_state(&s->backends[i]);
}

/* The states these tests set come from one source, as an active check's
 * would (the operator's bit stands in for it). */
#define backend_set_state(b, st, sec, why) \
    backend_set_state_by((b), HEALTH_SOURCE_OPERATOR, (st), (sec), (why))

/* Milliseconds left of backend i's cooldown. */
static long long cooldown_left(struct setup *s, size_t i)
{
    return atomic_load(&s->backends[i].cooldown_until_ms) - setup_now_ms();
}

#define NEAR(v, want, slack) CU_ASSERT_TRUE((v) >= (want) - (slack) && (v) <= (want) + (slack))

/* End backend i's cooldown now and take its trial, as the next request
 * would. */
static int take_trial(struct setup *s, size_t i)
{
    int trial = 0;
    atomic_store(&s->backends[i].cooldown_until_ms, setup_now_ms() - 1);
    CU_ASSERT_TRUE(backend_usable(&s->backends[i], setup_now_ms()));
    CU_ASSERT_TRUE(backend_claim(&s->backends[i], setup_now_ms(), &trial));
    CU_ASSERT_EQUAL(trial, 1);
    CU_ASSERT_FALSE(backend_usable(&s->backends[i], setup_now_ms()));
    return trial;
}

/* --- passive --- */

static void test_passive_consecutive_failures(void)
{
    struct setup *s = passive_setup("{consecutive: 3, cooldown: 1s, max_cooldown: 8s, "
                                    "min_requests: 1000}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->health.n, 1);
    CU_ASSERT_EQUAL(s->health.slots[0].ninst, 1); /* health plugins: one instance */
    fail(s, 0);
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    CU_ASSERT_TRUE(backend_usable(&s->backends[0], setup_now_ms()));
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    CU_ASSERT_FALSE(backend_usable(&s->backends[0], setup_now_ms()));
    NEAR(cooldown_left(s, 0), 1000, 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(s->backends[0].reason, "3 failed attempts in a row"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s->backends[0].reason, "status 503"));
    CU_ASSERT_EQUAL(atomic_load(&s->backends[0].state_changes), 1);
    /* the other backend's count is its own */
    CU_ASSERT_EQUAL(state_of(s, 1), SY_BACKEND_HEALTHY);
    fail(s, 1);
    fail(s, 1);
    CU_ASSERT_EQUAL(state_of(s, 1), SY_BACKEND_HEALTHY);
    /* every kind of failed attempt counts, not only statuses */
    report(s, 1, SY_ATTEMPT_TIMEOUT, 0, 0, 0);
    CU_ASSERT_EQUAL(state_of(s, 1), SY_BACKEND_COOLDOWN);
    CU_ASSERT_PTR_NULL(strstr(s->backends[1].reason, "status"));
    setup_destroy(s);
}

static void test_passive_success_resets_the_streak(void)
{
    struct setup *s = passive_setup("{consecutive: 3, min_requests: 1000}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (int round = 0; round < 5; round++) {
        fail(s, 0);
        fail(s, 0);
        ok(s, 0);
    }
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    /* a 4xx answer is an answer: it resets the streak too */
    fail(s, 0);
    fail(s, 0);
    report(s, 0, SY_ATTEMPT_NONE, 404, 0, 0);
    fail(s, 0);
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    setup_destroy(s);
}

static void test_passive_failure_ratio(void)
{
    struct setup *s = passive_setup("{consecutive: 100, failure_ratio: 0.5, min_requests: 4, "
                                    "window: 10s}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* below min_requests nothing happens, whatever the ratio */
    fail(s, 0);
    ok(s, 0);
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    /* the 4th attempt: 3 of 4 failed */
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    CU_ASSERT_PTR_NOT_NULL(strstr(s->backends[0].reason, "3 of 4 attempts failed"));
    /* under the ratio: 2 of 8 */
    for (int i = 0; i < 3; i++)
        ok(s, 1);
    fail(s, 1);
    for (int i = 0; i < 3; i++)
        ok(s, 1);
    fail(s, 1);
    CU_ASSERT_EQUAL(state_of(s, 1), SY_BACKEND_HEALTHY);
    setup_destroy(s);
}

static void test_passive_ratio_window_expires(void)
{
    struct setup *s = passive_setup("{consecutive: 100, failure_ratio: 0.5, min_requests: 4, "
                                    "window: 200ms}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    fail(s, 0);
    fail(s, 0);
    ok(s, 0);
    sleep_ms(300); /* the window is over: its counts are gone */
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    ok(s, 0);
    ok(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    fail(s, 0); /* 2 of 4 within the new window */
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    setup_destroy(s);
}

static void test_passive_exponential_cooldown_capped(void)
{
    struct setup *s = passive_setup("{consecutive: 1, cooldown: 1s, max_cooldown: 4s}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    NEAR(cooldown_left(s, 0), 1000, 100);
    /* each failed trial: twice as long, up to max_cooldown */
    const long long want[] = { 2000, 4000, 4000, 4000 };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        take_trial(s, 0);
        report(s, 0, SY_ATTEMPT_CONNECT, 0, 0, 1);
        CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
        NEAR(cooldown_left(s, 0), want[k], 100);
        CU_ASSERT_PTR_NOT_NULL(strstr(s->backends[0].reason, "trial request failed"));
        CU_ASSERT_FALSE(backend_usable(&s->backends[0], setup_now_ms()));
    }
    /* a renewed cooldown is not a change of state */
    CU_ASSERT_EQUAL(atomic_load(&s->backends[0].state_changes), 1);
    /* a successful trial heals; /engines keeps the last error */
    take_trial(s, 0);
    report(s, 0, SY_ATTEMPT_NONE, 200, 0, 1);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    CU_ASSERT_TRUE(backend_usable(&s->backends[0], setup_now_ms()));
    CU_ASSERT_PTR_NOT_NULL(strstr(s->backends[0].reason, "trial request failed"));
    CU_ASSERT_EQUAL(atomic_load(&s->backends[0].state_changes), 2);
    setup_destroy(s);
}

static void test_passive_retry_after_sets_cooldown(void)
{
    struct setup *s = passive_setup("{consecutive: 1, cooldown: 10s, max_cooldown: 60s}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    report(s, 0, SY_ATTEMPT_STATUS, 429, 2, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    NEAR(cooldown_left(s, 0), 2000, 100); /* not the 10 s of the config */
    CU_ASSERT_PTR_NOT_NULL(strstr(s->backends[0].reason, "status 429"));
    /* capped at max_cooldown */
    report(s, 1, SY_ATTEMPT_STATUS, 503, 600, 0);
    NEAR(cooldown_left(s, 1), 60000, 100);
    /* on a failed trial too */
    take_trial(s, 0);
    report(s, 0, SY_ATTEMPT_STATUS, 429, 3, 1);
    NEAR(cooldown_left(s, 0), 3000, 100);
    setup_destroy(s);
}

static void test_passive_success_alone_changes_nothing(void)
{
    struct setup *s = passive_setup("{consecutive: 1}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (int i = 0; i < 50; i++)
        ok(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_HEALTHY);
    CU_ASSERT_EQUAL(atomic_load(&s->backends[0].state_changes), 0);
    /* a success that is not a trial does not end a cooldown early */
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    ok(s, 0); /* e.g. an attempt that started before the cooldown */
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_COOLDOWN);
    setup_destroy(s);
}

/* A backend an active check took out stays out: a late failure of a request
 * still in flight must not turn UNHEALTHY into a cooldown (whose trial would
 * bring the backend back while its probes still fail), and a trial that
 * succeeds after the probe took the backend out does not heal it either. */
static void test_passive_leaves_unhealthy_alone(void)
{
    struct setup *s = passive_setup("{consecutive: 1, cooldown: 1s}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    backend_set_state(&s->backends[0], SY_BACKEND_UNHEALTHY, 0, "probe failed");
    fail(s, 0);
    CU_ASSERT_EQUAL(state_of(s, 0), SY_BACKEND_UNHEALTHY);
    CU_ASSERT_STRING_EQUAL(s->backends[0].reason, "operator: probe failed");

    fail(s, 1);
    take_trial(s, 1);
    backend_set_state(&s->backends[1], SY_BACKEND_UNHEALTHY, 0, "probe failed");
    report(s, 1, SY_ATTEMPT_NONE, 200, 0, 1);
    CU_ASSERT_EQUAL(state_of(s, 1), SY_BACKEND_UNHEALTHY);
    setup_destroy(s);
}

/* --- config errors name file:line --- */

static void expect_error(const char *plugin, const char *settings, const char *where,
                         const char *what)
{
    char yaml[1024], err[512] = "";
    struct setup *s;

    snprintf(yaml, sizeof yaml,
             "health: [%s]\n"
             "plugin_config:\n"
             "  %s:\n"
             "%s"
             "models:\n"
             "  a: {backends: [http://127.0.0.1:1]}\n",
             plugin, plugin, settings);
    s = unit_make_setup(yaml, err, sizeof err);
    CU_ASSERT_PTR_NULL(s);
    if (s != NULL) {
        setup_destroy(s);
        return;
    }
    if (strstr(err, where) == NULL || strstr(err, what) == NULL)
        fprintf(stderr, "\n    got '%s', want '%s' and '%s'\n", err, where, what);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, where));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, what));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, plugin));
}

static void test_config_errors_name_the_line(void)
{
    /* the bad key is on line 5 */
    expect_error("http_probe", "    interval: 1s\n    fall: 0\n", "test.yaml:5",
                 "plugin_config.http_probe.fall");
    expect_error("http_probe", "    interval: 1s\n    rise: -1\n", "test.yaml:5", ".rise");
    expect_error("http_probe", "    rise: 1\n    probe: bogus\n", "test.yaml:5",
                 "health or inference");
    expect_error("http_probe", "    timeout: 1s\n    interval: 0\n", "test.yaml:5", ".interval");
    expect_error("http_probe", "    timeout: 1s\n    interval: soon\n", "test.yaml:5",
                 ".interval");
    expect_error("http_probe", "    rise: 1\n    timeout: 0s\n", "test.yaml:5", ".timeout");
    expect_error("http_probe", "    rise: 1\n    path: health\n", "test.yaml:5", ".path");
    expect_error("http_probe", "    rise: 1\n    jitter: 0.9\n", "test.yaml:5", ".jitter");
    expect_error("passive", "    cooldown: 1s\n    failure_ratio: 2\n", "test.yaml:5",
                 "plugin_config.passive.failure_ratio");
    expect_error("passive", "    cooldown: 1s\n    failure_ratio: 0\n", "test.yaml:5",
                 ".failure_ratio");
    expect_error("passive", "    cooldown: 1s\n    consecutive: 0\n", "test.yaml:5",
                 ".consecutive");
    expect_error("passive", "    cooldown: 1s\n    min_requests: 0\n", "test.yaml:5",
                 ".min_requests");
    expect_error("passive", "    cooldown: 1s\n    window: -1s\n", "test.yaml:5", ".window");
    expect_error("passive", "    cooldown: 10s\n    max_cooldown: 5s\n", "test.yaml:5",
                 ".max_cooldown");
    expect_error("passive", "    window: 1s\n    cooldown: 0\n", "test.yaml:5", ".cooldown");
}

static void test_probe_settings_accepted(void)
{
    char err[512] = "";
    struct setup *s = unit_make_setup(
        "health: [http_probe, passive]\n"
        "plugin_config:\n"
        "  http_probe: {interval: 250ms, timeout: 100ms, rise: 1, fall: 3, path: /ready,\n"
        "               probe: inference, jitter: 0}\n"
        "  passive: {consecutive: 2, failure_ratio: 1, min_requests: 1, window: 1m,\n"
        "            cooldown: 500ms, max_cooldown: 500ms}\n"
        "models:\n"
        "  a: {backends: [http://127.0.0.1:1/v1], type: embeddings}\n"
        "  b: {backends: [http://127.0.0.1:2], type: rerank}\n",
        err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->health.n, 2);
    CU_ASSERT_STRING_EQUAL(s->health.slots[0].plugin->name, "http_probe");
    CU_ASSERT_STRING_EQUAL(s->health.slots[1].plugin->name, "passive");
    setup_destroy(s);
    /* defaults: an empty section */
    s = unit_make_setup("health: [http_probe, passive]\nmodels:\n  a: {backends: [http://127.0.0.1:1]}\n",
                   err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    setup_destroy(s);
}

/* --- the core's states: usable, claim, set_state --- */

struct claimer {
    struct backend *b;
    int won, trials;
};

static void *claim_many(void *arg)
{
    struct claimer *c = arg;
    for (int i = 0; i < 2000; i++) {
        int trial = 0;
        if (backend_claim(c->b, setup_now_ms(), &trial))
            c->won++;
        c->trials += trial;
    }
    return NULL;
}

/* Claims from 8 threads at once; returns how many succeeded. */
static int claim_from_threads(struct backend *b, int *trials)
{
    pthread_t t[8];
    struct claimer c[8];
    int won = 0;

    *trials = 0;
    for (int i = 0; i < 8; i++) {
        c[i] = (struct claimer){ b, 0, 0 };
        pthread_create(&t[i], NULL, claim_many, &c[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        won += c[i].won;
        *trials += c[i].trials;
    }
    return won;
}

static void test_claim_one_trial_after_cooldown(void)
{
    struct setup *s = passive_setup("{}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct backend *b = &s->backends[0];
    int trials;

    /* healthy: always, never a trial */
    CU_ASSERT_EQUAL(claim_from_threads(b, &trials), 8 * 2000);
    CU_ASSERT_EQUAL(trials, 0);
    /* cooling down: never */
    backend_set_state(b, SY_BACKEND_COOLDOWN, 30, "test");
    CU_ASSERT_FALSE(backend_usable(b, setup_now_ms()));
    CU_ASSERT_EQUAL(claim_from_threads(b, &trials), 0);
    /* cooldown over: exactly one trial, then nothing until it is judged */
    atomic_store(&b->cooldown_until_ms, setup_now_ms() - 1);
    CU_ASSERT_TRUE(backend_usable(b, setup_now_ms()));
    CU_ASSERT_EQUAL(claim_from_threads(b, &trials), 1);
    CU_ASSERT_EQUAL(trials, 1);
    CU_ASSERT_FALSE(backend_usable(b, setup_now_ms()));
    CU_ASSERT_EQUAL(backend_state(b), SY_BACKEND_COOLDOWN);
    /* a new cooldown (the trial failed) gives a new trial after it */
    backend_set_state(b, SY_BACKEND_COOLDOWN, 0, "trial failed");
    CU_ASSERT_EQUAL(claim_from_threads(b, &trials), 1);
    CU_ASSERT_EQUAL(trials, 1);
    /* unhealthy: never, whatever the cooldown clock says */
    backend_set_state(b, SY_BACKEND_UNHEALTHY, 0, "probe");
    atomic_store(&b->cooldown_until_ms, 0);
    atomic_store(&b->trial_taken, 0);
    CU_ASSERT_FALSE(backend_usable(b, setup_now_ms()));
    CU_ASSERT_EQUAL(claim_from_threads(b, &trials), 0);
    /* healthy again: always */
    backend_set_state(b, SY_BACKEND_HEALTHY, 0, "probe ok");
    CU_ASSERT_EQUAL(claim_from_threads(b, &trials), 8 * 2000);
    CU_ASSERT_EQUAL(trials, 0);
    setup_destroy(s);
}

static void test_set_state_counts_changes_once(void)
{
    struct setup *s = passive_setup("{}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct backend *b = &s->backends[1];

    CU_ASSERT_STRING_EQUAL(backend_state_name(SY_BACKEND_HEALTHY), "healthy");
    CU_ASSERT_STRING_EQUAL(backend_state_name(SY_BACKEND_UNHEALTHY), "unhealthy");
    CU_ASSERT_STRING_EQUAL(backend_state_name(SY_BACKEND_COOLDOWN), "cooldown");
    backend_set_state(b, SY_BACKEND_HEALTHY, 0, "nothing new");
    CU_ASSERT_EQUAL(atomic_load(&b->state_changes), 0);
    CU_ASSERT_STRING_EQUAL(b->reason, "");
    for (int i = 0; i < 5; i++)
        backend_set_state(b, SY_BACKEND_UNHEALTHY, 0, "probe answered 500");
    CU_ASSERT_EQUAL(atomic_load(&b->state_changes), 1);
    CU_ASSERT_STRING_EQUAL(b->reason, "operator: probe answered 500");
    backend_set_state(b, SY_BACKEND_HEALTHY, 0, "probe answered 200");
    CU_ASSERT_EQUAL(atomic_load(&b->state_changes), 2);
    CU_ASSERT_STRING_EQUAL(b->reason, "operator: probe answered 500"); /* the last error stays */
    backend_set_state(b, SY_BACKEND_COOLDOWN, 5, "x");
    backend_set_state(b, SY_BACKEND_COOLDOWN, 5, "y");
    CU_ASSERT_EQUAL(atomic_load(&b->state_changes), 3);
    CU_ASSERT_STRING_EQUAL(b->reason, "operator: y");
    setup_destroy(s);
}

void register_health_tests(void)
{
    UNIT_SUITE("health",
               UNIT_TEST(test_passive_consecutive_failures),
               UNIT_TEST(test_passive_success_resets_the_streak),
               UNIT_TEST(test_passive_failure_ratio),
               UNIT_TEST(test_passive_ratio_window_expires),
               UNIT_TEST(test_passive_exponential_cooldown_capped),
               UNIT_TEST(test_passive_retry_after_sets_cooldown),
               UNIT_TEST(test_passive_success_alone_changes_nothing),
               UNIT_TEST(test_passive_leaves_unhealthy_alone),
               UNIT_TEST(test_config_errors_name_the_line),
               UNIT_TEST(test_probe_settings_accepted),
               UNIT_TEST(test_claim_one_trial_after_cooldown),
               UNIT_TEST(test_set_state_counts_changes_once));
}
