/* W3C trace context: what a client's traceparent may be, and ours. */
#include <string.h>

#include "trace.h"
#include "unit.h"

static void test_traceparent(void)
{
    struct trace_ctx c;
    char out[56];
    static const char *const bad[] = {
        NULL, "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",        /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",               /* v00 with more */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",                /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",                /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",                /* zero span */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",                /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",                /* not hex */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",               /* v01, junk */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(trace_parse_traceparent(bad[i], &c), -1);

    CU_ASSERT_EQUAL_FATAL(
        trace_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
    CU_ASSERT_EQUAL(c.trace_id[0], 0x4b);
    CU_ASSERT_EQUAL(c.trace_id[15], 0x36);
    CU_ASSERT_EQUAL(c.span_id[7], 0xb7);
    CU_ASSERT_EQUAL(c.flags, 1);
    trace_format_traceparent(c.trace_id, c.span_id, c.flags, out);
    CU_ASSERT_STRING_EQUAL(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /* a later version: the fields it knows are read, what follows ignored */
    CU_ASSERT_EQUAL(
        trace_parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what", &c), 0);
    CU_ASSERT_EQUAL(c.flags, 0);
}

static void test_new_ids(void)
{
    uint8_t a[16], b[16], zero[16] = { 0 };
    trace_new_id(a, sizeof a);
    trace_new_id(b, sizeof b);
    CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    CU_ASSERT(memcmp(a, zero, sizeof a) != 0);
    CU_ASSERT(trace_now_ns() > 1700000000LL * 1000000000LL);
}

void register_trace_tests(void)
{
    UNIT_SUITE("trace", UNIT_TEST(test_traceparent), UNIT_TEST(test_new_ids));
}
