/*
 * Fuzz the multipart/form-data reader (core/proxy/multipart.c) of the audio
 * and image endpoints: the input's first line is a Content-Type, the rest
 * the body a client sends.  When the Content-Type gives no boundary, the
 * body is read with the boundary "B" all the same, so that the fuzzer
 * reaches the body's framing either way.
 *
 * Invariants: a boundary lies in the Content-Type, 1 to 70 bytes; the
 * result is FOUND, ABSENT or BAD, BAD with a reason; a FOUND "model" lies
 * in the body, after a CRLFCRLF and before "\r\n--B"; replaced by "m", the
 * body keeps every other byte, and reads back with "m" at the same offset;
 * replaced by itself, the body is unchanged; a value holding the delimiter
 * is refused.  ASan and LeakSanitizer check every path frees what it took.
 */
#include <string.h>

#include "../../core/proxy/multipart.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *nl = memchr(in, '\n', size), *b;
    char ct[512], err[256] = "", *out = NULL, *refused;
    size_t ctlen = nl != NULL ? (size_t)(nl - in) : size, blen, len, outlen;
    const char *body;
    struct multipart_field f, g;
    int rc;

    if (ctlen >= sizeof ct)
        return 0;
    memcpy(ct, in, ctlen);
    ct[ctlen] = '\0';
    if (ctlen > 0 && ct[ctlen - 1] == '\r')
        ct[ctlen - 1] = '\0';
    body = nl != NULL ? nl + 1 : in + size;
    len = size - (size_t)(body - in);

    if (multipart_boundary(ct, &b, &blen) == 0) {
        FUZZ_CHECK(b >= ct && b + blen <= ct + strlen(ct), "boundary outside the value");
        FUZZ_CHECK(blen >= 1 && blen <= MULTIPART_BOUNDARY_MAX, "boundary of %zu bytes", blen);
    } else {
        b = "B";
        blen = 1;
    }

    rc = multipart_find_field(body, len, b, blen, "model", &f, err, sizeof err);
    FUZZ_CHECK(rc == MULTIPART_FOUND || rc == MULTIPART_ABSENT || rc == MULTIPART_BAD,
               "result %d", rc);
    FUZZ_CHECK(rc != MULTIPART_BAD || err[0] != '\0', "BAD without a reason");
    FUZZ_CHECK(memchr(err, '\n', sizeof err) == NULL, "a reason of more than one line");
    if (rc != MULTIPART_FOUND)
        return 0;

    FUZZ_CHECK(f.value_off >= 4 && f.value_off <= len && f.value_len <= len - f.value_off,
               "value [%zu, +%zu) outside %zu bytes", f.value_off, f.value_len, len);
    FUZZ_CHECK(memcmp(body + f.value_off - 4, "\r\n\r\n", 4) == 0, "no CRLFCRLF before");
    FUZZ_CHECK(len - f.value_off - f.value_len >= blen + 4 &&
                   memcmp(body + f.value_off + f.value_len, "\r\n--", 4) == 0 &&
                   memcmp(body + f.value_off + f.value_len + 4, b, blen) == 0,
               "no delimiter after the value");

    /* "m" in its place: the rest byte for byte, and read back */
    FUZZ_CHECK(multipart_replace_field(body, len, &f, b, blen, "m", 1, &out, &outlen) == 0,
               "replacing with \"m\" refused");
    FUZZ_CHECK(outlen == len - f.value_len + 1, "%zu bytes after replacing", outlen);
    FUZZ_CHECK(memcmp(out, body, f.value_off) == 0 && out[f.value_off] == 'm' &&
                   memcmp(out + f.value_off + 1, body + f.value_off + f.value_len,
                          len - f.value_off - f.value_len) == 0,
               "the rest of the body changed");
    rc = multipart_find_field(out, outlen, b, blen, "model", &g, err, sizeof err);
    FUZZ_CHECK(rc == MULTIPART_FOUND && g.value_off == f.value_off && g.value_len == 1,
               "replaced body reads %d (%s)", rc, err);
    free(out);

    /* itself: the same body */
    FUZZ_CHECK(multipart_replace_field(body, len, &f, b, blen, body + f.value_off, f.value_len,
                                       &out, &outlen) == 0 &&
                   outlen == len && memcmp(out, body, len) == 0,
               "replacing with itself changed the body");
    free(out);

    /* the delimiter, inside a value or opening it, is refused */
    refused = malloc(blen + 6);
    FUZZ_CHECK(refused != NULL, "malloc");
    memcpy(refused, "x\r\n--", 5);
    memcpy(refused + 5, b, blen);
    refused[5 + blen] = 'y';
    out = NULL;
    FUZZ_CHECK(multipart_replace_field(body, len, &f, b, blen, refused, blen + 6, &out,
                                       &outlen) == -1 && out == NULL,
               "a value holding the delimiter taken");
    FUZZ_CHECK(multipart_replace_field(body, len, &f, b, blen, refused + 3, blen + 3, &out,
                                       &outlen) == -1 && out == NULL,
               "a value opening with \"--B\" taken");
    free(refused);
    return 0;
}
