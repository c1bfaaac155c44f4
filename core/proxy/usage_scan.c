#include "usage_scan.h"

#include <stddef.h>
#include <string.h>

static const struct {
    const char *text;
    size_t len;
    size_t field; /* offset in struct usage_scan */
} keys[] = {
    {"\"prompt_tokens\"", 15, offsetof(struct usage_scan, prompt)},
    {"\"completion_tokens\"", 19, offsetof(struct usage_scan, completion)},
};

enum { NO_MATCH = 0, MATCHED = 1, UNDECIDED = -1 };

static const char *skip_space(const char *q, const char *end)
{
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
        q++;
    return q;
}

/* p is at a '"': one of our keys with its number?  UNDECIDED when the
 * bytes run out before it is known.  A key and its number take at most
 * USAGE_SCAN_CARRY bytes (a longer run is no count of ours), so that an
 * answer reads the same however it is cut into reads. */
static int match_at(struct usage_scan *u, const char *p, const char *end)
{
    int capped = end - p > USAGE_SCAN_CARRY;
    const char *lim = capped ? p + USAGE_SCAN_CARRY : end;
    size_t avail = (size_t)(lim - p);
    int out = capped ? NO_MATCH : UNDECIDED; /* what running out means */

    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *q;
        long long v = 0;
        int digits = 0;

        if (avail < keys[k].len) {
            if (memcmp(p, keys[k].text, avail) == 0)
                return out;
            continue;
        }
        if (memcmp(p, keys[k].text, keys[k].len) != 0)
            continue;
        q = skip_space(p + keys[k].len, lim);
        if (q == lim)
            return out;
        if (*q != ':')
            return NO_MATCH;
        q = skip_space(q + 1, lim);
        for (; q < lim && *q >= '0' && *q <= '9' && digits < 18; q++, digits++)
            v = v * 10 + (*q - '0');
        if (q == lim)
            return out; /* more digits may follow */
        if (digits == 0 || (*q >= '0' && *q <= '9'))
            return NO_MATCH; /* not a count, or an absurd one */
        *(long long *)((char *)u + keys[k].field) = v;
        return MATCHED;
    }
    return NO_MATCH;
}

void usage_scan_init(struct usage_scan *u)
{
    u->prompt = -1;
    u->completion = -1;
    u->ncarry = 0;
}

/* Keep [p, end) for the next read (match_at says it fits). */
static void keep(struct usage_scan *u, const char *p, const char *end)
{
    memmove(u->carry, p, (size_t)(end - p));
    u->ncarry = (size_t)(end - p);
}

void usage_scan_feed(struct usage_scan *u, const char *data, size_t len)
{
    const char *end = data + len, *p;

    if (u->ncarry > 0) {
        /* a key cut by the previous read: its quote is in the carry */
        char tmp[2 * USAGE_SCAN_CARRY];
        size_t had = u->ncarry, n = len < USAGE_SCAN_CARRY ? len : USAGE_SCAN_CARRY;
        memcpy(tmp, u->carry, had);
        memcpy(tmp + had, data, n);
        u->ncarry = 0;
        for (size_t i = 0; i < had; i++) {
            if (tmp[i] != '"')
                continue;
            int r = match_at(u, tmp + i, tmp + had + n);
            if (r == UNDECIDED && n == len) {
                keep(u, tmp + i, tmp + had + n); /* this read was all of it */
                return;
            }
        }
    }
    for (p = data; p < end && (p = memchr(p, '"', (size_t)(end - p))) != NULL; p++) {
        if (match_at(u, p, end) == UNDECIDED) {
            keep(u, p, end);
            return;
        }
    }
}
