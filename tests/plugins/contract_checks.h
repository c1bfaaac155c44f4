/*
 * The contract plugins' checks (contract.c, contract_health.c): each check
 * counts, and one that fails logs
 *     contract: FAIL <what>: got ..., want ...
 * through the host's log; summary() ends a hook's run with
 *     contract: N checks, M failed in <hook>
 * Static inline functions, so each plugin stays one file to build.
 */
#ifndef CONTRACT_CHECKS_H
#define CONTRACT_CHECKS_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <switchyard/plugin.h>

#define ABS(x) ((x) < 0 ? -(x) : (x))

struct tally {
    const struct sy_host_api *h;
    int n, failed;
};

static inline void failf(struct tally *t, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void failf(struct tally *t, const char *what, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    t->failed++;
    t->h->log(t->h, SY_LOG_ERROR, "contract: FAIL %s: %s", what, detail);
}

static inline void check_int(struct tally *t, const char *what, long long got, long long want)
{
    t->n++;
    if (got != want)
        failf(t, what, "got %lld, want %lld", got, want);
}

static inline void check_dbl(struct tally *t, const char *what, double got, double want)
{
    t->n++;
    if (!(ABS(got - want) <= 1e-9 * (ABS(want) > 1 ? ABS(want) : 1)))
        failf(t, what, "got %.17g, want %.17g", got, want);
}

static inline void check_str(struct tally *t, const char *what, const char *got, const char *want)
{
    t->n++;
    if (got == NULL || want == NULL ? got != want : strcmp(got, want) != 0)
        failf(t, what, "got %s%s%s, want %s%s%s", got ? "\"" : "", got ? got : "NULL",
              got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
}

/* Bytes that may hold NULs. */
static inline void check_mem(struct tally *t, const char *what, const char *got, size_t gotlen,
                      const char *want, size_t wantlen)
{
    t->n++;
    if (got == NULL || gotlen != wantlen || memcmp(got, want, wantlen) != 0)
        failf(t, what, "got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"", got ? gotlen : 0,
              got ? (int)(gotlen > 200 ? 200 : gotlen) : 0, got ? got : "", wantlen,
              (int)(wantlen > 200 ? 200 : wantlen), want);
}

static inline void check_true(struct tally *t, const char *what, int cond, const char *got)
{
    t->n++;
    if (!cond)
        failf(t, what, "got %s, want true", got);
}

static inline void summary(struct tally *t, const char *hook)
{
    t->h->log(t->h, SY_LOG_INFO, "contract: %d checks, %d failed in %s", t->n, t->failed, hook);
}

#endif
