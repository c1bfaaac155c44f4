/*
 * Fuzz what the router reads of a request's target and head besides the
 * body: request_query_take (vllm_router's ?id=ENGINE and ?model=, taken out
 * of the target forwarded) and trace_parse_traceparent (a client's W3C
 * trace context).
 *
 * Invariants: ?id= taken gives 1, 0 or -1; with 1 the value holds no NUL
 * and the rest is the target's path followed by its other parameters, in
 * order, none of them the one taken; with 0 the rest is the target as it
 * is.  A traceparent that parses has non-zero ids, and written back (as
 * version 00) is the input's first 55 bytes when the input says 00.
 */
#include <string.h>

#include "../../core/proxy/request.h"
#include "../../core/runtime/trace.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target = malloc(size + 2), value[64], *rest = malloc(size + 2);
    struct trace_ctx c;
    char tp[56];

    if (target == NULL || rest == NULL)
        goto out;
    memcpy(target, data, size);
    target[size] = '\0';
    size_t tlen = strlen(target); /* up to an inner NUL: C strings */
    int rc = request_query_take(target, "id", value, sizeof value, rest, tlen + 1);
    FUZZ_CHECK(rc >= -1 && rc <= 1, "%d", rc);
    if (rc == 0)
        FUZZ_CHECK(strcmp(rest, target) == 0, "rest '%s' of '%s'", rest, target);
    if (rc == 1) {
        const char *q = strchr(target, '?');
        size_t path = (size_t)(q - target);
        FUZZ_CHECK(strlen(value) < sizeof value, "value");
        FUZZ_CHECK(strncmp(rest, target, path) == 0, "path kept");
        FUZZ_CHECK(strlen(rest) < tlen, "rest not shorter: '%s' of '%s'", rest, target);
        /* every parameter left was in the target, in the same order */
        const char *from = q + 1;
        for (char *p = rest[path] ? rest + path + 1 : rest + path; *p;) {
            char *amp = strchr(p, '&');
            size_t n = amp ? (size_t)(amp - p) : strlen(p);
            const char *found = NULL;
            for (const char *s = from; *s; s++)
                if (strncmp(s, p, n) == 0 && (s[n] == '&' || s[n] == '\0') &&
                    (s == q + 1 || s[-1] == '&')) {
                    found = s;
                    break;
                }
            FUZZ_CHECK(found != NULL, "parameter '%.*s' not in '%s'", (int)n, p, target);
            from = found + n;
            p += n + (amp ? 1 : 0);
        }
    }
    if (trace_parse_traceparent(target, &c) == 0) {
        static const uint8_t zero[16] = { 0 };
        FUZZ_CHECK(memcmp(c.trace_id, zero, 16) != 0 && memcmp(c.span_id, zero, 8) != 0, "ids");
        trace_format_traceparent(c.trace_id, c.span_id, c.flags, tp);
        if (target[0] == '0' && target[1] == '0')
            FUZZ_CHECK(strncmp(tp, target, 55) == 0, "'%s' written back as '%s'", target, tp);
    }
out:
    free(target);
    free(rest);
    return 0;
}
