/* The access log's text format: one record per line, whatever a client
 * put in the values (core/runtime/log.c). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

static const char *quoted(const char *s)
{
    static char buf[256];
    size_t n = log_quote_value(buf, 0, sizeof buf - 1, s);
    buf[n] = '\0';
    return buf;
}

static void test_quote_value(void)
{
    CU_ASSERT_STRING_EQUAL(quoted(NULL), "-");
    CU_ASSERT_STRING_EQUAL(quoted("llama-3.1-8b"), "llama-3.1-8b");
    CU_ASSERT_STRING_EQUAL(quoted("/v1/chat/completions?x=1"), "\"/v1/chat/completions?x\\u003d1\"");
    CU_ASSERT_STRING_EQUAL(quoted(""), "\"\"");
    CU_ASSERT_STRING_EQUAL(quoted("a b"), "\"a b\"");
    CU_ASSERT_STRING_EQUAL(quoted("q\"b\\"), "\"q\\\"b\\\\\"");
    CU_ASSERT_STRING_EQUAL(quoted("l1\nl2\r\t\x01\x7f"), "\"l1\\nl2\\r\\t\\u0001\\u007f\"");
    CU_ASSERT_STRING_EQUAL(quoted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    /* the forgery of the security report */
    CU_ASSERT_STRING_EQUAL(quoted("nope served=a status=200\n ACCESS id=FORGED"),
                           "\"nope served\\u003da status\\u003d200\\n ACCESS id\\u003dFORGED\"");
}

static void test_quote_value_cut(void)
{
    char buf[16];
    size_t n;

    /* a value longer than the room is cut, its quotes kept */
    n = log_quote_value(buf, 0, sizeof buf - 1, "a long value with spaces");
    buf[n] = '\0';
    CU_ASSERT_TRUE(n <= sizeof buf - 1);
    CU_ASSERT_EQUAL(buf[0], '"');
    CU_ASSERT_EQUAL(buf[n - 1], '"');
    n = log_quote_value(buf, 0, sizeof buf - 1, "abcdefghijklmnopqrstuvwxyz");
    CU_ASSERT_TRUE(n <= sizeof buf - 1);
    /* no room at all: nothing written */
    CU_ASSERT_EQUAL(log_quote_value(buf, 14, 15, "x"), 14);
}

/* log_access into a file: one line, the real fields first found. */
static void test_access_line(void)
{
    char path[] = "/tmp/sy-log-XXXXXX";
    int fd = mkstemp(path);
    char line[8192];
    struct access_entry e = {
        .id = "r1", .method = "POST", .path = "/v1/chat/completions",
        .model = "nope served=a backend=http://127.0.0.1:1 status=200\n"
                 "2026-01-01T00:00:00.000Z ACCESS id=FORGED status=200",
        .status = 404, .attempts = 0, .duration = 0.001, .ttfb = -1,
        .error = "The model 'x' does not exist",
    };

    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(log_open(path), 0);
    log_access(&e);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    unlink(path);
    line[n] = '\0';
    /* exactly one line */
    CU_ASSERT_PTR_NOT_NULL(strchr(line, '\n'));
    CU_ASSERT_EQUAL(strchr(line, '\n'), line + n - 1);
    /* the first status= outside any value is the real one */
    const char *st = strstr(line, " status=");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(strncmp(st, " status=404 ", 12), 0);
    CU_ASSERT_PTR_NULL(strstr(line, "id=FORGED"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, " ACCESS id=r1 method=POST path=/v1/chat/completions model=\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, " error=\"The model 'x' does not exist\""));
    /* back to stderr for the other suites: reopen on /dev/stderr */
    log_open("/dev/stderr");
}

void register_log_tests(void)
{
    UNIT_SUITE("log", UNIT_TEST(test_quote_value), UNIT_TEST(test_quote_value_cut),
               UNIT_TEST(test_access_line));
}
