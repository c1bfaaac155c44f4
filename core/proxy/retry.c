#define _GNU_SOURCE /* timegm, strptime */
#include "retry.h"

#include <stdlib.h>
#include <string.h>

int retry_status_fails(int status)
{
    return status == 429 || (status >= 500 && status <= 599);
}

enum retry_step retry_next_step(const struct retry_limits *lim,
                                const struct retry_state *st)
{
    if (st->elapsed >= lim->deadline || st->attempts_total >= lim->max_attempts)
        return STEP_GIVE_UP;
    if (st->usable == 0 || st->attempts_model >= lim->attempts_per_model)
        return STEP_FALLBACK;
    if (st->attempts_model > 0 && !st->untried_usable) {
        if (st->last_refused)
            return STEP_FALLBACK;
        if (st->retry_after > 0)
            return STEP_WAIT;
        /* a backend that just answered 5xx or 429 is not asked again at
         * once: without a Retry-After there is no reason it would do better */
        if (st->last_answered)
            return STEP_FALLBACK;
    }
    return STEP_ATTEMPT;
}

int retry_may_fall_back(const struct retry_limits *lim, int depth,
                        const struct retry_state *st)
{
    return depth < lim->max_fallback_depth && st->elapsed < lim->deadline &&
           st->attempts_total < lim->max_attempts;
}

double retry_after_delay(const char *value, time_t now, double cap,
                         double time_left)
{
    double d = 0;
    char *end;

    if (value == NULL || *value == '\0')
        return 0;
    d = strtod(value, &end);
    if (end != value && *end == '\0') {
        if (!(d >= 0)) /* negative, or "nan" */
            d = 0;
    } else {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (end == NULL || *end != '\0')
            return 0;
        d = difftime(timegm(&tm), now);
        if (d < 0)
            d = 0;
    }
    if (d > cap)
        d = cap;
    if (d > time_left)
        d = time_left > 0 ? time_left : 0;
    return d;
}

int retry_give_up_status(enum retry_last last)
{
    switch (last) {
    case RETRY_LAST_TIMEOUT: return 504;
    case RETRY_LAST_MALFORMED: return 502;
    default: return 503;
    }
}
