/* The retry / fallback decisions of SPEC.md "Retries and fallback". */
#include <math.h>

#include "retry.h"
#include "unit.h"

static const struct retry_limits lim = {
    .attempts_per_model = 3, .max_attempts = 5, .max_fallback_depth = 2,
    .deadline = 60, .retry_after_cap = 5,
};

static void test_status_classification(void)
{
    int fails[] = { 500, 502, 503, 504, 599, 429 };
    int answers[] = { 200, 201, 204, 301, 400, 401, 403, 404, 408, 413, 422, 499 };
    for (size_t i = 0; i < sizeof fails / sizeof *fails; i++)
        CU_ASSERT_TRUE(retry_status_fails(fails[i]));
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++)
        CU_ASSERT_FALSE(retry_status_fails(answers[i]));
}

static void test_attempt_budget_per_model(void)
{
    struct retry_state st = { .attempts_total = 0, .attempts_model = 0, .usable = 2, .elapsed = 0 };
    CU_ASSERT_EQUAL(retry_next_step(&lim, &st), STEP_ATTEMPT);
    st.attempts_total = st.attempts_model = 2;
    CU_ASSERT_EQUAL(retry_next_step(&lim, &st), STEP_ATTEMPT);
    st.attempts_total = st.attempts_model = 3;
    CU_ASSERT_EQUAL(retry_next_step(&lim, &st), STEP_FALLBACK);
}

static void test_no_usable_backend_falls_back_at_once(void)
{
    struct retry_state st = { .usable = 0 };
    CU_ASSERT_EQUAL(retry_next_step(&lim, &st), STEP_FALLBACK);
}

static void test_total_budget_and_deadline(void)
{
    struct retry_state st = { .attempts_total = 5, .attempts_model = 1, .usable = 3 };
    CU_ASSERT_EQUAL(retry_next_step(&lim, &st), STEP_GIVE_UP);
    CU_ASSERT_FALSE(retry_may_fall_back(&lim, 0, &st));
    st.attempts_total = 1;
    st.elapsed = 60;
    CU_ASSERT_EQUAL(retry_next_step(&lim, &st), STEP_GIVE_UP);
    CU_ASSERT_FALSE(retry_may_fall_back(&lim, 0, &st));
}

static void test_fallback_depth(void)
{
    struct retry_state st = { .attempts_total = 1, .usable = 1 };
    CU_ASSERT_TRUE(retry_may_fall_back(&lim, 0, &st));
    CU_ASSERT_TRUE(retry_may_fall_back(&lim, 1, &st));
    CU_ASSERT_FALSE(retry_may_fall_back(&lim, 2, &st));
}

static void test_retry_after(void)
{
    time_t now = 1764032400; /* Tue, 25 Nov 2025 01:00:00 GMT */
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("2", now, 5, 100), 2, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("120", now, 5, 100), 5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("3", now, 5, 1.5), 1.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("Tue, 25 Nov 2025 01:00:03 GMT", now, 5, 100), 3, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("Tue, 25 Nov 2025 00:59:00 GMT", now, 5, 100), 0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("soon", now, 5, 100), 0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay(NULL, now, 5, 100), 0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("-4", now, 5, 100), 0, 1e-9);
}

/* Found by tests/fuzz/fuzz_http: strtod takes "nan", and NaN passed the
 * "d < 0" check, so a backend's "Retry-After: nan" came back as NaN. */
static void test_retry_after_not_a_number(void)
{
    time_t now = 1764032400;
    const char *nans[] = { "nan", "NaN", "-nan", "nan(0x1)" };
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        double d = retry_after_delay(nans[i], now, 5, 100);
        CU_ASSERT_FALSE(isnan(d));
        CU_ASSERT_DOUBLE_EQUAL(d, 0, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(retry_after_delay(nans[i], now, 1e9, 1e9), 0, 1e-9);
    }
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("inf", now, 5, 100), 5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(retry_after_delay("1e999", now, 5, 100), 5, 1e-9);
}

static void test_give_up_status(void)
{
    CU_ASSERT_EQUAL(retry_give_up_status(RETRY_LAST_TIMEOUT), 504);
    CU_ASSERT_EQUAL(retry_give_up_status(RETRY_LAST_MALFORMED), 502);
    CU_ASSERT_EQUAL(retry_give_up_status(RETRY_LAST_OTHER), 503);
}

/* The two rules that moved into retry_next_step: a refused connection
 * with no other backend left moves on; a Retry-After is waited only when no
 * other backend of the model is left. */
static void test_refused_and_retry_after_rules(void)
{
    struct retry_limits rl = { .attempts_per_model = 3, .max_attempts = 10,
                                .max_fallback_depth = 2, .deadline = 60, .retry_after_cap = 5 };
    struct retry_state st = { .attempts_total = 1, .attempts_model = 1, .usable = 1,
                              .untried_usable = 0, .last_refused = 1 };

    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_FALLBACK);
    st.untried_usable = 1; /* another backend to try: try it */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_ATTEMPT);
    st.untried_usable = 0;
    st.last_refused = 0;
    st.retry_after = 1.5; /* the only backend asked to wait */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_WAIT);
    st.untried_usable = 1; /* another backend: no wait */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_ATTEMPT);
    st.untried_usable = 0;
    st.retry_after = 0; /* a dropped connection: again at once */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_ATTEMPT);
    st.last_answered = 1; /* a 5xx or 429 without Retry-After: not at once */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_FALLBACK);
    st.untried_usable = 1; /* another backend: that one */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_ATTEMPT);
    st.untried_usable = 0;
    st.retry_after = 1; /* with Retry-After: after the wait */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_WAIT);
    st.retry_after = 0;
    st.last_answered = 0;
    st.attempts_model = 0; /* the first attempt of a model never waits */
    st.retry_after = 2;
    st.last_refused = 1;
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_ATTEMPT);
    st.attempts_model = 3; /* the budget comes first */
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_FALLBACK);
    st.elapsed = 61;
    CU_ASSERT_EQUAL(retry_next_step(&rl, &st), STEP_GIVE_UP);
}

void register_retry_tests(void)
{
    UNIT_SUITE("retry", UNIT_TEST(test_refused_and_retry_after_rules),
               UNIT_TEST(test_status_classification), UNIT_TEST(test_attempt_budget_per_model),
               UNIT_TEST(test_no_usable_backend_falls_back_at_once),
               UNIT_TEST(test_total_budget_and_deadline), UNIT_TEST(test_fallback_depth),
               UNIT_TEST(test_retry_after), UNIT_TEST(test_retry_after_not_a_number),
               UNIT_TEST(test_give_up_status));
}
