/*
 * Fuzz the token-count scanner (core/proxy/usage_scan.c) that reads every
 * relayed answer: the input is an answer body (JSON or an event stream).
 *
 * Invariants: the counts are -1 or whole numbers below 10^18; the body
 * read whole, cut in two at a point the first byte picks, cut in three,
 * and fed one byte at a time gives the same counts (a key split across
 * reads is found as in one piece); a count found is written in the input
 * as "prompt_tokens" or "completion_tokens", a colon and its digits.
 */
#include <stdio.h>
#include <string.h>

#include "../../core/proxy/usage_scan.h"
#include "fuzz.h"

static void scan(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts,
                 struct usage_scan *u)
{
    size_t at = 0;
    usage_scan_init(u);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : size;
        usage_scan_feed(u, (const char *)data + at, to - at);
        at = to;
    }
}

static int written(const uint8_t *data, size_t size, const char *key, long long v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", v);
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen < size; i++)
        if (memcmp(data + i, key, klen) == 0) {
            size_t j = i + klen;
            while (j < size && data[j] != ':')
                j++;
            for (j++; j < size && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' ||
                                   data[j] == '\r');
                 j++)
                ;
            /* leading zeros read as the same number */
            while (j + 1 < size && data[j] == '0' && data[j + 1] >= '0' && data[j + 1] <= '9')
                j++;
            if (j + (size_t)n <= size && memcmp(data + j, digits, (size_t)n) == 0)
                return 1;
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct usage_scan whole, two, three, bytes;
    size_t cut2[1], cut3[2];

    scan(data, size, NULL, 0, &whole);
    FUZZ_CHECK(whole.prompt >= -1 && whole.prompt < 1000000000000000000LL, "%lld", whole.prompt);
    FUZZ_CHECK(whole.completion >= -1 && whole.completion < 1000000000000000000LL, "%lld",
               whole.completion);
    FUZZ_CHECK(whole.prompt < 0 || written(data, size, "\"prompt_tokens\"", whole.prompt),
               "prompt %lld not in the input", whole.prompt);
    FUZZ_CHECK(whole.completion < 0 ||
                   written(data, size, "\"completion_tokens\"", whole.completion),
               "completion %lld not in the input", whole.completion);
    cut2[0] = size ? data[0] % (size + 1) : 0;
    scan(data, size, cut2, 1, &two);
    cut3[0] = size / 3;
    cut3[1] = size - size / 3;
    scan(data, size, cut3, 2, &three);
    usage_scan_init(&bytes);
    for (size_t i = 0; i < size; i++)
        usage_scan_feed(&bytes, (const char *)data + i, 1);
    FUZZ_CHECK(two.prompt == whole.prompt && two.completion == whole.completion,
               "cut at %zu: %lld %lld, whole %lld %lld", cut2[0], two.prompt, two.completion,
               whole.prompt, whole.completion);
    FUZZ_CHECK(three.prompt == whole.prompt && three.completion == whole.completion,
               "cut in three: %lld %lld, whole %lld %lld", three.prompt, three.completion,
               whole.prompt, whole.completion);
    FUZZ_CHECK(bytes.prompt == whole.prompt && bytes.completion == whole.completion,
               "byte by byte: %lld %lld, whole %lld %lld", bytes.prompt, bytes.completion,
               whole.prompt, whole.completion);
    return 0;
}
