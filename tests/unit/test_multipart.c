/* The multipart/form-data reader (core/proxy/multipart.c) of the audio and
 * image endpoints: the bodies curl and OpenAI's Python client send, and
 * every framing it refuses, since a client writes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "unit.h"

/* ---- bodies as clients send them ---- */

/* curl -F file=@audio.wav -F model=whisper-1 -F response_format=json */
#define CURL_B "------------------------d74496d66958873e"
#define CURL_CT "multipart/form-data; boundary=" CURL_B
/* the file's bytes: binary, NULs, and "--B" that is no delimiter (not
 * after CRLF: after LF, after CR, after a byte) */
#define WAV                                                                    \
    "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"             \
    "\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00" "data\x00\x00\x00\x00"     \
    "--\r\n-\r--\n--" CURL_B "\n--" CURL_B "\r--" CURL_B "x--" CURL_B "--\xff\xfe\r\n\r\n"
#define CURL_PART1                                                             \
    "--" CURL_B "\r\n"                                                         \
    "Content-Disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\n" \
    "Content-Type: audio/x-wav\r\n"                                            \
    "\r\n" WAV "\r\n"
#define CURL_MODEL_HEAD                                                        \
    "--" CURL_B "\r\n"                                                         \
    "Content-Disposition: form-data; name=\"model\"\r\n"                       \
    "\r\n"
#define CURL_TAIL                                                              \
    "\r\n--" CURL_B "\r\n"                                                     \
    "Content-Disposition: form-data; name=\"response_format\"\r\n"             \
    "\r\n"                                                                     \
    "json\r\n"                                                                 \
    "--" CURL_B "--\r\n"

static const char curl_body[] = CURL_PART1 CURL_MODEL_HEAD "whisper-1" CURL_TAIL;
#define CURL_LEN (sizeof curl_body - 1)
#define CURL_MODEL_OFF (sizeof(CURL_PART1 CURL_MODEL_HEAD) - 1)

/* OpenAI's Python client (httpx): the fields first, then the file, a hex
 * boundary */
#define HX_B "0a6f5e0a4d7d2d83d1b3e4c1c1f00b5e"
static const char httpx_body[] =
    "--" HX_B "\r\n"
    "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
    "gpt-4o-transcribe\r\n"
    "--" HX_B "\r\n"
    "Content-Disposition: form-data; name=\"language\"\r\n\r\n"
    "en\r\n"
    "--" HX_B "\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"speech.mp3\"\r\n"
    "Content-Type: audio/mpeg\r\n\r\n"
    "ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00--\r\n"
    "--" HX_B "--\r\n";

/* A body built with boundary "B", for the malformed cases. */
static int find(const char *body, size_t len, const char *name, struct multipart_field *f,
                char *err)
{
    return multipart_find_field(body, len, "B", 1, name, f, err, 160);
}

#define FIND(lit, name, f, err) find(lit, sizeof lit - 1, name, f, err)

#define MODEL_PART "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm1\r\n"

/* ---- Content-Type ---- */

static int bnd(const char *ct, char *got)
{
    const char *b;
    size_t n;

    if (multipart_boundary(ct, &b, &n) != 0)
        return -1;
    memcpy(got, b, n);
    got[n] = '\0';
    return 0;
}

static void test_boundary(void)
{
    char got[128], ct[200];
    const char *b;
    size_t n;

    CU_ASSERT_EQUAL(multipart_boundary(CURL_CT, &b, &n), 0);
    CU_ASSERT_EQUAL(n, strlen(CURL_B));
    CU_ASSERT_EQUAL(memcmp(b, CURL_B, n), 0);
    /* quoted: inside the quotes, pointing into the value */
    CU_ASSERT_EQUAL(multipart_boundary("multipart/form-data; boundary=\"a b:c?\"", &b, &n), 0);
    CU_ASSERT_EQUAL(n, 6);
    CU_ASSERT_EQUAL(strncmp(b, "a b:c?\"", 7), 0);
    CU_ASSERT_EQUAL(bnd("Multipart/Form-Data;boundary=xyz", got), 0);
    CU_ASSERT_STRING_EQUAL(got, "xyz");
    CU_ASSERT_EQUAL(bnd("  MULTIPART/FORM-DATA \t;\t BOUNDARY=x.y ", got), 0);
    CU_ASSERT_STRING_EQUAL(got, "x.y");
    /* other parameters, before and after, quoted or not; empty ones */
    CU_ASSERT_EQUAL(bnd("multipart/form-data; charset=utf-8; boundary=\"q(1)\"; x=\"a;b=c\";",
                        got), 0);
    CU_ASSERT_STRING_EQUAL(got, "q(1)");
    CU_ASSERT_EQUAL(bnd("multipart/form-data;; x=\"boundary=no\" ;boundary=yes", got), 0);
    CU_ASSERT_STRING_EQUAL(got, "yes");

    /* 70 bytes is the most */
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%070d", 7);
    CU_ASSERT_EQUAL(bnd(ct, got), 0);
    CU_ASSERT_EQUAL(strlen(got), 70);
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 7);
    CU_ASSERT_EQUAL(bnd(ct, got), -1);
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=\"%071d\"", 7);
    CU_ASSERT_EQUAL(bnd(ct, got), -1);

    CU_ASSERT_EQUAL(bnd(NULL, got), -1);
    CU_ASSERT_EQUAL(bnd("", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data", got), -1);               /* none */
    CU_ASSERT_EQUAL(bnd("multipart/form-data; charset=utf-8", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=", got), -1);    /* empty */
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=\"\"", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/mixed; boundary=x", got), -1);       /* not a form */
    CU_ASSERT_EQUAL(bnd("application/json", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-datax; boundary=x", got), -1);
    CU_ASSERT_EQUAL(bnd("text/plain; x=\"multipart/form-data; boundary=x\"", got), -1);
    /* bytes that are no bchars, quoted or not */
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=a*b", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=\"a@b\"", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=\"a\tb\"", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=\"ab \"", got), -1); /* space last */
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=a b", got), -1);
    /* no quoted-pair: the boundary's or another parameter's */
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=\"a\\b\"", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; x=\"\\\"; boundary=y\"; boundary=z", got), -1);
    /* ambiguous or malformed */
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=a; boundary=a", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary = a", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=\"a", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data boundary=a", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; boundary=a x", got), -1);
    CU_ASSERT_EQUAL(bnd("multipart/form-data; =a; boundary=b", got), -1);
}

/* ---- finding a field ---- */

static void test_curl_body(void)
{
    struct multipart_field f;
    char err[160];
    const char *b;
    size_t n;

    CU_ASSERT_FATAL(multipart_boundary(CURL_CT, &b, &n) == 0);
    CU_ASSERT_EQUAL_FATAL(multipart_find_field(curl_body, CURL_LEN, b, n, "model", &f, err,
                                               sizeof err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_off, CURL_MODEL_OFF);
    CU_ASSERT_EQUAL(f.value_len, 9);
    CU_ASSERT_EQUAL(memcmp(curl_body + f.value_off, "whisper-1", 9), 0);
    CU_ASSERT_EQUAL(multipart_find_field(curl_body, CURL_LEN, b, n, "response_format", &f,
                                         err, sizeof err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_len, 4);
    CU_ASSERT_EQUAL(memcmp(curl_body + f.value_off, "json", 4), 0);
    CU_ASSERT_EQUAL(multipart_find_field(curl_body, CURL_LEN, b, n, "language", &f, err,
                                         sizeof err), MULTIPART_ABSENT);
    /* names are case-sensitive, and whole */
    CU_ASSERT_EQUAL(multipart_find_field(curl_body, CURL_LEN, b, n, "Model", &f, err,
                                         sizeof err), MULTIPART_ABSENT);
    CU_ASSERT_EQUAL(multipart_find_field(curl_body, CURL_LEN, b, n, "mode", &f, err,
                                         sizeof err), MULTIPART_ABSENT);
    /* the file is a file, not a field */
    CU_ASSERT_EQUAL(multipart_find_field(curl_body, CURL_LEN, b, n, "file", &f, err,
                                         sizeof err), MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 1: \"file\" is a file, not a field");
    /* another boundary finds no delimiter at all */
    CU_ASSERT_EQUAL(multipart_find_field(curl_body, CURL_LEN, "xyz", 3, "model", &f, err,
                                         sizeof err), MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "no boundary delimiter");
}

static void test_httpx_body(void)
{
    struct multipart_field f;
    char err[160];

    CU_ASSERT_EQUAL_FATAL(multipart_find_field(httpx_body, sizeof httpx_body - 1, HX_B,
                                               strlen(HX_B), "model", &f, err, sizeof err),
                          MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_len, strlen("gpt-4o-transcribe"));
    CU_ASSERT_EQUAL(memcmp(httpx_body + f.value_off, "gpt-4o-transcribe", f.value_len), 0);
    CU_ASSERT_EQUAL(multipart_find_field(httpx_body, sizeof httpx_body - 1, HX_B,
                                         strlen(HX_B), "language", &f, err, sizeof err),
                    MULTIPART_FOUND);
    CU_ASSERT_EQUAL(memcmp(httpx_body + f.value_off, "en", 2), 0);
}

static void test_framing_accepted(void)
{
    struct multipart_field f;
    char err[160];
    static const char pre_epi[] =
        "a preamble\r\nof lines --B\r\n"
        "--B \t\r\n"
        "content-disposition:form-data;name=model  \r\n"
        "X-Other: --B\r\n"
        "\r\n"
        "m1\r\n"
        "--B--\t\r\n"
        "an epilogue, -- B\r\n";
    static const char crlf_first[] = "\r\n" MODEL_PART "--B--";
    static const char empty_value[] =
        "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\r\n--B--\r\n";
    static const char crlf_value[] =
        "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\r\n\r\n--B--\r\n";
    static const char params[] =
        "--B\r\nCONTENT-DISPOSITION: Form-Data ; x=\"y\";NAME=\"model\" ;\r\n\r\nm2\r\n--B--";

    CU_ASSERT_EQUAL_FATAL(FIND(pre_epi, "model", &f, err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_len, 2);
    CU_ASSERT_EQUAL(memcmp(pre_epi + f.value_off, "m1", 2), 0);
    CU_ASSERT_EQUAL_FATAL(FIND(crlf_first, "model", &f, err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(memcmp(crlf_first + f.value_off, "m1\r\n--B--", 9), 0);
    CU_ASSERT_EQUAL(f.value_len, 2);
    CU_ASSERT_EQUAL_FATAL(FIND(empty_value, "model", &f, err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_len, 0);
    CU_ASSERT_EQUAL_FATAL(FIND(crlf_value, "model", &f, err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_len, 2);
    CU_ASSERT_EQUAL_FATAL(FIND(params, "model", &f, err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(memcmp(params + f.value_off, "m2", 2), 0);
    /* a field of another name beside it, quoted names with spaces and UTF-8 */
    CU_ASSERT_EQUAL(FIND("--B\r\nContent-Disposition: form-data; name=\"a b\xc3\xa9\"\r\n\r\n"
                         "x\r\n" MODEL_PART "--B--",
                         "a b\xc3\xa9", &f, err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_len, 1);
    /* a binary Content-Transfer-Encoding is no encoding */
    CU_ASSERT_EQUAL(FIND("--B\r\nContent-Transfer-Encoding: binary\r\n"
                         "Content-Disposition: form-data; name=model\r\n\r\nm\r\n--B--",
                         "model", &f, err), MULTIPART_FOUND);
}

static void test_twice(void)
{
    struct multipart_field f;
    char err[160];

    CU_ASSERT_EQUAL(FIND(MODEL_PART MODEL_PART "--B--\r\n", "model", &f, err), MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 2: a second \"model\" field");
    /* the second quoted, the first a token: the same name */
    CU_ASSERT_EQUAL(FIND("--B\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n"
                         MODEL_PART "--B--", "model", &f, err), MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 2: a second \"model\" field");
    /* a file of that name beside the field */
    CU_ASSERT_EQUAL(FIND(MODEL_PART "--B\r\nContent-Disposition: form-data; name=\"model\"; "
                         "filename=\"m.txt\"\r\n\r\nx\r\n--B--", "model", &f, err),
                    MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 2: \"model\" is a file, not a field");
    CU_ASSERT_EQUAL(FIND("--B\r\nContent-Disposition: form-data; filename*=UTF-8''m; "
                         "name=model\r\n\r\nx\r\n--B--", "model", &f, err), MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 1: \"model\" is a file, not a field");
    /* the same name twice in one part */
    CU_ASSERT_EQUAL(FIND("--B\r\nContent-Disposition: form-data; name=model; name=other\r\n"
                         "\r\nx\r\n--B--", "model", &f, err), MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 1: name given twice");
}

/* A copy of exactly len bytes, so that ASan sees a read past the end. */
static char *exact(const char *body, size_t len)
{
    char *c = malloc(len > 0 ? len : 1);

    CU_ASSERT_FATAL(c != NULL);
    memcpy(c, body, len);
    return c;
}

/* One malformed body: BAD with exactly this reason. */
static void bad_is(const char *body, size_t len, const char *want)
{
    struct multipart_field f;
    char err[160] = "unset", *copy = exact(body, len);
    int rc = find(copy, len, "model", &f, err);

    free(copy);

    CU_ASSERT_EQUAL(rc, MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, want);
    if (rc != MULTIPART_BAD || strcmp(err, want) != 0)
        fprintf(stderr, "\n  got %d \"%s\", want \"%s\"\n", rc, err, want);
}

#define BAD_IS(lit, want) bad_is(lit, sizeof lit - 1, want)
#define CD_PART(cd) "--B\r\nContent-Disposition: " cd "\r\n\r\nx\r\n"

static void test_malformed(void)
{
    BAD_IS("", "no boundary delimiter");
    BAD_IS("hello\r\n-B\r\n", "no boundary delimiter");
    BAD_IS(MODEL_PART, "no closing boundary");
    BAD_IS(MODEL_PART "--B\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue",
           "no closing boundary");
    /* a close delimiter must come after CRLF */
    BAD_IS(MODEL_PART "x--B--", "no closing boundary");
    BAD_IS("--Bx\r\n", "part 1: no CRLF after the delimiter");
    BAD_IS("--B \tx\r\n", "part 1: no CRLF after the delimiter");
    BAD_IS("--B\n", "part 1: no CRLF after the delimiter");
    BAD_IS("--B-x\r\n", "part 1: no CRLF after the delimiter");
    /* in a part, "\r\n--B" is a delimiter, followed as one or refused */
    BAD_IS(MODEL_PART "--Bx\r\n--B--", "part 2: no CRLF after the delimiter");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=file; filename=a\r\n\r\n"
           "ab\r\n--BB\r\n--B--", "part 2: no CRLF after the delimiter");
    BAD_IS(MODEL_PART "--B--x", "no CRLF after the closing delimiter");
    BAD_IS(MODEL_PART "--B-- \r", "no CRLF after the closing delimiter");
    BAD_IS("--B--\r\n", "no part before the closing delimiter");
    BAD_IS(MODEL_PART "--B--\r\n--B\r\n", "a delimiter after the closing one");
    BAD_IS(MODEL_PART "--B--\r\nepilogue\r\n--B--\r\n", "a delimiter after the closing one");
    BAD_IS("--B\r\n\r\nx\r\n--B--", "part 1: no Content-Disposition");
    BAD_IS(MODEL_PART "--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--",
           "part 2: no Content-Disposition");
    BAD_IS(MODEL_PART CD_PART("form-data; name=a") "--B\r\nContent-Dispositio: form-data; name=x\r\n\r\nx\r\n"
           "--B--", "part 3: no Content-Disposition");
    BAD_IS(CD_PART("attachment; name=model") "--B--",
           "part 1: Content-Disposition is not form-data");
    BAD_IS(CD_PART("form-data") "--B--", "part 1: Content-Disposition without a name");
    BAD_IS(CD_PART("form-data; filename=a") "--B--",
           "part 1: Content-Disposition without a name");
    BAD_IS(CD_PART("form-data; name=\"mo\\\"del\"") "--B--",
           "part 1: a malformed Content-Disposition parameter");
    BAD_IS(CD_PART("form-data; name=\"model") "--B--",
           "part 1: a malformed Content-Disposition parameter");
    BAD_IS(CD_PART("form-data; name=a b") "--B--", "part 1: a malformed Content-Disposition");
    BAD_IS(CD_PART("form-data; name =a") "--B--",
           "part 1: a malformed Content-Disposition parameter");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; "
           "name=model\r\n\r\nx\r\n--B--", "part 1: Content-Disposition given twice");
    BAD_IS("--B\r\nContent-Disposition: form-data;\r\n name=model\r\n\r\nx\r\n--B--",
           "part 1: a folded header line");
    BAD_IS("--B\r\nContent-Disposition : form-data; name=model\r\n\r\nx\r\n--B--",
           "part 1: a malformed header line");
    BAD_IS("--B\r\nno colon\r\n\r\nx\r\n--B--", "part 1: a malformed header line");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\rX: y\r\n\r\nx\r\n--B--",
           "part 1: a CR without LF in its headers");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\nX: y\r\n\r\nx\r\n--B--",
           "part 1: a control byte in its headers");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=\"mo\0del\"\r\n\r\nx\r\n--B--",
           "part 1: a control byte in its headers");
    BAD_IS("--B\r\n--B: x\r\nContent-Disposition: form-data; name=model\r\n\r\nx\r\n--B--",
           "part 1: a delimiter in its headers");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\r\n\r\n--B\r\n" MODEL_PART "--B--",
           "part 1: a delimiter right after its headers");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\nbTE=\r\n--B--",
           "part 1: \"model\" has Content-Transfer-Encoding base64");
    BAD_IS("--B\r\nContent-Transfer-Encoding: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n"
           "Content-Disposition: form-data; name=model\r\n\r\nm\r\n--B--",
           "part 1: Content-Transfer-Encoding given twice");
}

/* A body cut anywhere before its close delimiter is refused, with a reason
 * that says where. */
static void test_truncated(void)
{
    struct multipart_field f;
    char err[160];
    size_t close_end = CURL_LEN - 2; /* "--B--" with no CRLF is whole */

    for (size_t n = 0; n < CURL_LEN; n++) {
        char *cut = exact(curl_body, n);
        int rc = multipart_find_field(cut, n, CURL_B, strlen(CURL_B), "model", &f, err,
                                      sizeof err);

        free(cut);
        if (n == close_end) {
            CU_ASSERT_EQUAL(rc, MULTIPART_FOUND);
            continue;
        }
        CU_ASSERT_EQUAL(rc, MULTIPART_BAD);
        CU_ASSERT(err[0] != '\0');
        if (rc != MULTIPART_BAD) {
            fprintf(stderr, "\n  cut at %zu: %d\n", n, rc);
            break;
        }
    }
    BAD_IS("--B\r\nContent-Disposition: form-data; name=mo", "part 1: truncated body in its headers");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\r", "part 1: truncated body in its headers");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\r\n", "part 1: truncated body in its headers");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\r\n\r", "part 1: truncated body in its headers");
    BAD_IS(MODEL_PART "--B", "part 2: truncated body in its delimiter line");
    BAD_IS(MODEL_PART "--B  ", "part 2: truncated body in its delimiter line");
    BAD_IS(MODEL_PART "--B\r", "part 2: truncated body in its delimiter line");
    BAD_IS(MODEL_PART "--B-", "truncated body in a delimiter");
    BAD_IS("--B\r\nContent-Disposition: form-data; name=model\r\n\r\nm1",
           "no closing boundary");
}

static void test_limits(void)
{
    size_t hdr = MULTIPART_HEADERS_MAX, cap = 64 + hdr + 64 * (MULTIPART_PARTS_MAX + 2);
    char *body = malloc(cap), err[160];
    struct multipart_field f;
    size_t n;
    static const char cd[] = "Content-Disposition: form-data; name=model\r\n";

    CU_ASSERT_FATAL(body != NULL);
    /* a header block of exactly MULTIPART_HEADERS_MAX bytes, its empty
     * line included: "X: " padding, CRLF, the Content-Disposition, CRLF */
    n = (size_t)sprintf(body, "--B\r\n%s", cd);
    memcpy(body + n, "X: ", 3);
    memset(body + n + 3, 'a', hdr - (sizeof cd - 1) - 3 - 4);
    n += hdr - (sizeof cd - 1) - 4;
    n += (size_t)sprintf(body + n, "\r\n\r\nm\r\n--B--");
    CU_ASSERT_EQUAL(multipart_find_field(body, n, "B", 1, "model", &f, err, sizeof err),
                    MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_off, 5 + hdr);
    /* one byte more */
    n = (size_t)sprintf(body, "--B\r\n%s", cd);
    memcpy(body + n, "X: ", 3);
    memset(body + n + 3, 'a', hdr - (sizeof cd - 1) - 3 - 3);
    n += hdr - (sizeof cd - 1) - 3;
    n += (size_t)sprintf(body + n, "\r\n\r\nm\r\n--B--");
    CU_ASSERT_EQUAL(multipart_find_field(body, n, "B", 1, "model", &f, err, sizeof err),
                    MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 1: header block over 8192 bytes");
    /* a header block with no end, longer than the limit */
    memset(body, 'a', hdr + 10);
    memcpy(body, "--B\r\nX: ", 8);
    CU_ASSERT_EQUAL(multipart_find_field(body, hdr + 10, "B", 1, "model", &f, err, sizeof err),
                    MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "part 1: header block over 8192 bytes");

    /* MULTIPART_PARTS_MAX parts, then one more */
    n = 0;
    for (int i = 0; i < MULTIPART_PARTS_MAX; i++)
        n += (size_t)sprintf(body + n, "--B\r\nContent-Disposition: form-data; name=f%d\r\n\r\n"
                                       "v\r\n", i);
    memcpy(body + n, "--B--", 5);
    CU_ASSERT_EQUAL(multipart_find_field(body, n + 5, "B", 1, "f999", &f, err, sizeof err),
                    MULTIPART_FOUND);
    n += (size_t)sprintf(body + n, "--B\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n");
    memcpy(body + n, "--B--", 5);
    CU_ASSERT_EQUAL(multipart_find_field(body, n + 5, "B", 1, "f0", &f, err, sizeof err),
                    MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "more than 1000 parts");
    free(body);

    /* the arguments */
    CU_ASSERT_EQUAL(multipart_find_field("--B--", 5, "B", 0, "model", &f, err, sizeof err),
                    MULTIPART_BAD);
    CU_ASSERT_STRING_EQUAL(err, "no valid boundary");
    CU_ASSERT_EQUAL(multipart_find_field("--B--", 5, "B", 1, "", &f, err, sizeof err),
                    MULTIPART_BAD);
    CU_ASSERT_EQUAL(multipart_find_field(NULL, 0, "B", 1, "model", &f, err, sizeof err),
                    MULTIPART_BAD);
    /* err may be left out */
    CU_ASSERT_EQUAL(multipart_find_field("x", 1, "B", 1, "model", &f, NULL, 0), MULTIPART_BAD);
}

/* Near misses of the delimiter everywhere, in a few MB: the search is linear
 * (a quadratic one would take minutes here). */
static void test_linear(void)
{
    char b[71], *body;
    size_t unit = 2 + 2 + 69, parts = 4, per = 20000, n = 0;
    struct multipart_field f;
    char err[160];

    memset(b, 'q', 70);
    b[70] = '\0';
    body = malloc(parts * (per * unit + 200) + 100);
    CU_ASSERT_FATAL(body != NULL);
    for (size_t p = 0; p < parts; p++) {
        n += (size_t)sprintf(body + n, "--%s\r\nContent-Disposition: form-data; name=f%zu\r\n\r\n",
                             b, p);
        for (size_t i = 0; i < per; i++) { /* "\r\n--" and 69 of the 70 bytes */
            memcpy(body + n, "\r\n--", 4);
            memset(body + n + 4, 'q', 69);
            n += unit;
        }
        n += (size_t)sprintf(body + n, "\r\n");
    }
    n += (size_t)sprintf(body + n, "--%s--\r\n", b);
    CU_ASSERT_EQUAL(multipart_find_field(body, n, b, 70, "f3", &f, err, sizeof err),
                    MULTIPART_FOUND);
    CU_ASSERT_EQUAL(f.value_len, per * unit);
    free(body);
}

/* ---- rewriting a field ---- */

static void replaced_is(const char *value, const char *want, size_t want_len)
{
    struct multipart_field f, g;
    char *out = NULL, err[160];
    size_t outlen = 0, blen = strlen(CURL_B);

    CU_ASSERT_FATAL(multipart_find_field(curl_body, CURL_LEN, CURL_B, blen, "model", &f, err,
                                         sizeof err) == MULTIPART_FOUND);
    CU_ASSERT_EQUAL_FATAL(multipart_replace_field(curl_body, CURL_LEN, &f, CURL_B, blen, value,
                                                  strlen(value), &out, &outlen), 0);
    CU_ASSERT_EQUAL(outlen, want_len);
    CU_ASSERT(outlen == want_len && memcmp(out, want, want_len) == 0);
    CU_ASSERT_EQUAL(multipart_find_field(out, outlen, CURL_B, blen, "model", &g, err,
                                         sizeof err), MULTIPART_FOUND);
    CU_ASSERT_EQUAL(g.value_off, f.value_off);
    CU_ASSERT_EQUAL(g.value_len, strlen(value));
    CU_ASSERT_EQUAL(memcmp(out + g.value_off, value, g.value_len), 0);
    free(out);
}

static void test_replace(void)
{
    static const char longer[] =
        CURL_PART1 CURL_MODEL_HEAD "whisper-large-v3-turbo" CURL_TAIL;
    static const char shorter[] = CURL_PART1 CURL_MODEL_HEAD "w" CURL_TAIL;
    static const char same[] = CURL_PART1 CURL_MODEL_HEAD "whisper-1" CURL_TAIL;
    static const char empty[] = CURL_PART1 CURL_MODEL_HEAD "" CURL_TAIL;

    replaced_is("whisper-large-v3-turbo", longer, sizeof longer - 1);
    replaced_is("w", shorter, sizeof shorter - 1);
    replaced_is("whisper-1", same, sizeof same - 1);
    replaced_is("", empty, sizeof empty - 1);
}

static void test_replace_refused(void)
{
    struct multipart_field f, outside;
    char *out = NULL, err[160];
    size_t outlen = 0, blen = strlen(CURL_B);
    static const char *const refused[] = {
        "a\r\n--" CURL_B "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nb",
        "\r\n--" CURL_B,
        "--" CURL_B "\r\n",  /* after the header block's CRLF: a delimiter */
        "x\r\n--" CURL_B "--",
        "\r\n--" CURL_B "x", /* a near miss to the reader, but no value holds one */
    };
    static const char *const fine[] = {
        "x--" CURL_B,
        "\n--" CURL_B,
        "\r\n--",
        "\r",
        "-",
    };

    CU_ASSERT_FATAL(multipart_find_field(curl_body, CURL_LEN, CURL_B, blen, "model", &f, err,
                                         sizeof err) == MULTIPART_FOUND);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        CU_ASSERT_EQUAL(multipart_replace_field(curl_body, CURL_LEN, &f, CURL_B, blen,
                                                refused[i], strlen(refused[i]), &out, &outlen),
                        -1);
        CU_ASSERT_PTR_NULL(out);
    }
    /* values that make no delimiter */
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        out = NULL;
        CU_ASSERT_EQUAL(multipart_replace_field(curl_body, CURL_LEN, &f, CURL_B, blen, fine[i],
                                                strlen(fine[i]), &out, &outlen), 0);
        free(out);
    }
    /* a field that does not lie in the body */
    outside.value_off = CURL_LEN;
    outside.value_len = 1;
    out = NULL;
    CU_ASSERT_EQUAL(multipart_replace_field(curl_body, CURL_LEN, &outside, CURL_B, blen, "m", 1,
                                            &out, &outlen), -1);
    outside.value_off = 1;
    outside.value_len = (size_t)-1;
    CU_ASSERT_EQUAL(multipart_replace_field(curl_body, CURL_LEN, &outside, CURL_B, blen, "m", 1,
                                            &out, &outlen), -1);
    CU_ASSERT_PTR_NULL(out);
}

void register_multipart_tests(void)
{
    UNIT_SUITE("multipart", UNIT_TEST(test_boundary), UNIT_TEST(test_curl_body),
               UNIT_TEST(test_httpx_body), UNIT_TEST(test_framing_accepted),
               UNIT_TEST(test_twice), UNIT_TEST(test_malformed), UNIT_TEST(test_truncated),
               UNIT_TEST(test_limits), UNIT_TEST(test_linear), UNIT_TEST(test_replace),
               UNIT_TEST(test_replace_refused));
}
