/*
 * json_scan: strict RFC 8259 validation in one pass, without allocation or
 * recursion, reporting the members of the top-level object on the way.
 *
 * Where json-c 0.16 in strict mode (json_tokener_new(), JSON_TOKENER_STRICT,
 * the whole input one value with only whitespace after) decides otherwise;
 * each is a row of the differential test in tests/unit/test_json_scan.c and
 * filtered one by one in tests/fuzz/fuzz_json_scan.c:
 *   - json-c takes object names in single quotes, {'a':1} (not values);
 *   - NaN, Infinity and -Infinity as numbers;
 *   - raw control characters U+0001..U+001F in strings (a raw NUL it
 *     refuses, as we do);
 *   - numbers with leading zeros other than a positive integer's ("00",
 *     "-01", "01.5", "00e5"), with an empty fraction ("1.", "1.e5") or no
 *     integer part ("-.5");
 *   - nesting: json_tokener_new() allows 32 levels and counts a scalar as
 *     one ([[1]] is 3 levels), where we allow 512 open arrays and objects;
 *   - a top-level number, true, false or null that ends at the very end of
 *     the input is json_tokener_continue to json-c ("unexpected end of
 *     input"), valid to us; with whitespace after it, json-c takes it too.
 * Meaning rather than validity: json-c cuts an object name at "\u0000"
 * (json_string_decode does not: to json-c, "model\u0000x" is a "model"
 * member, to json_string_equals it is not), and keeps the last of duplicate
 * names (the member callback sees them all).  json-c 0.16 also decodes some
 * valid surrogate pairs as U+FFFD ("\ud837\ude00" for U+1DE00, where
 * "\ud83d\ude00" comes out right); json_string_decode gives the character.
 *
 * Where we are stricter than json-c, to read a body as Python's json.loads
 * does (vllm_router and most backends are Python):
 *   - invalid UTF-8 in a string (json-c passes any byte >= 0x80 through):
 *     overlong forms, UTF-16 surrogates encoded in UTF-8 (ED A0..ED BF),
 *     code points past U+10FFFF, cut-short sequences and stray continuation
 *     bytes are "invalid UTF-8" at the sequence's first byte.  Outside
 *     strings a byte >= 0x80 is no JSON anyway, so an input json_scan
 *     accepts is valid UTF-8 from end to end.  (Python's json.loads(bytes)
 *     lets the encoded surrogates through, 'surrogatepass'; we do not, so
 *     that every byte passed on or echoed is UTF-8.)  A lone surrogate
 *     *escape*, "\ud800", is valid JSON to Python and to us (decoded as
 *     U+FFFD, see json_string_decode);
 *   - an integer (a number with neither fraction nor exponent) of more than
 *     JSON_SCAN_MAX_INT_DIGITS digits, the sign not counted: Python 3.11+
 *     refuses to convert it (sys.int_info.default_max_str_digits), where
 *     json-c clamps it.  Floats of any length are fine, as to Python.
 */
#include "json_scan.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define EOI "unexpected end of input"

static size_t skip_ws(const unsigned char *b, size_t len, size_t p)
{
    while (p < len && (b[p] == ' ' || b[p] == '\n' || b[p] == '\r' || b[p] == '\t'))
        p++;
    return p;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* What ends a run of ordinary string bytes: ASCII only is ordinary, a
 * byte >= 0x80 starts a UTF-8 sequence to check. */
static int is_special(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

/* The length (2 to 4) of the UTF-8 sequence that starts at b[p], a byte
 * >= 0x80, or 0 when there is none (RFC 3629, Unicode table 3-7): no
 * continuation byte as a start, no overlong form (C0, C1, E0 80..9F,
 * F0 80..8F), no surrogate (ED A0..BF), nothing past U+10FFFF (F4 90..,
 * F5..FF), and all of it before len. */
static size_t utf8_seq(const unsigned char *b, size_t len, size_t p)
{
    unsigned char c = b[p], lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (len - p < n || b[p + 1] < lo || b[p + 1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((b[p + i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* The index of the first special byte in b[p..len), or len.  Prompts are
 * long strings: this loop is most of the time a large body takes. */
#if defined(__SSE2__)
/* 16 bytes a step (SSE2 is in every x86-64), the match found by its bit. */
static size_t skip_ordinary(const unsigned char *b, size_t len, size_t p)
{
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(' ');

    while (len - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + p));
        /* v < 0x20 as signed bytes: the control characters and, negative,
         * the bytes >= 0x80, in one compare */
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask != 0)
            return p + (size_t)__builtin_ctz(mask);
        p += 16;
    }
    while (p < len && !is_special(b[p]))
        p++;
    return p;
}
#else
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Is any of the 8 bytes of w special?  The has-a-zero-byte and
 * has-a-byte-below-n tricks, and w's own top bits for the bytes >= 0x80:
 * exact about whether, not about which. */
static int has_special(uint64_t w)
{
    uint64_t quote = w ^ (ONES * '"'), bslash = w ^ (ONES * '\\');

    return (w | ((w - ONES * 0x20) & ~w) | ((quote - ONES) & ~quote) |
            ((bslash - ONES) & ~bslash)) & HIGHS ? 1 : 0;
}

/* 8 ordinary bytes at a time, then up to the byte that ends the run. */
static size_t skip_ordinary(const unsigned char *b, size_t len, size_t p)
{
    while (len - p >= 8) {
        uint64_t w;
        memcpy(&w, b + p, sizeof w);
        if (has_special(w))
            break;
        p += 8;
    }
    while (p < len && !is_special(b[p]))
        p++;
    return p;
}
#endif

/* Each scan_* starts at the token's first byte and returns the index just
 * past it; on an error it sets *what and returns the error's offset. */
static size_t error_at(size_t offset, const char *msg, const char **what)
{
    *what = msg;
    return offset;
}

static size_t scan_string(const unsigned char *b, size_t len, size_t p, const char **what)
{
    for (p++;;) {
        p = skip_ordinary(b, len, p);
        if (p == len)
            return error_at(len, EOI, what);
        if (b[p] == '"')
            return p + 1;
        if (b[p] >= 0x80) {
            /* text that is not ASCII comes in runs: all of one here */
            do {
                size_t n = utf8_seq(b, len, p);
                if (n == 0)
                    return error_at(p, JSON_SCAN_ERR_UTF8, what);
                p += n;
            } while (p < len && b[p] >= 0x80);
            continue;
        }
        if (b[p] != '\\')
            return error_at(p, "control character in string", what);
        if (p + 1 == len)
            return error_at(len, EOI, what);
        if (b[p + 1] == 'u') {
            for (size_t i = p + 2; i < p + 6; i++) {
                if (i == len)
                    return error_at(len, EOI, what);
                if (!is_hex(b[i]))
                    return error_at(p, "invalid escape", what);
            }
            p += 6;
        } else if (memchr("\"\\/bfnrt", b[p + 1], 8) != NULL) {
            p += 2;
        } else {
            return error_at(p, "invalid escape", what);
        }
    }
}

static size_t scan_digits(const unsigned char *b, size_t len, size_t p)
{
    while (p < len && is_digit(b[p]))
        p++;
    return p;
}

static size_t scan_number(const unsigned char *b, size_t len, size_t p, const char **what)
{
    size_t start = p, digits;
    int is_float = 0;

    if (b[p] == '-')
        p++;
    if (p == len || !is_digit(b[p]))
        goto bad;
    digits = p;
    p = b[p] == '0' ? p + 1 : scan_digits(b, len, p);
    digits = p - digits;
    if (p < len && b[p] == '.') {
        is_float = 1;
        if (++p == len || !is_digit(b[p]))
            goto bad;
        p = scan_digits(b, len, p);
    }
    if (p < len && (b[p] == 'e' || b[p] == 'E')) {
        is_float = 1;
        p++;
        if (p < len && (b[p] == '+' || b[p] == '-'))
            p++;
        if (p == len || !is_digit(b[p]))
            goto bad;
        p = scan_digits(b, len, p);
    }
    /* a digit here follows a leading 0 */
    if (p < len && is_digit(b[p]))
        goto bad;
    /* Python's int() would refuse it; its float() takes any length */
    if (!is_float && digits > JSON_SCAN_MAX_INT_DIGITS)
        return error_at(start, JSON_SCAN_ERR_INT_DIGITS, what);
    return p;
bad:
    *what = "invalid number";
    return p;
}

static size_t scan_literal(const unsigned char *b, size_t len, size_t p, const char *lit,
                           size_t n, const char **what)
{
    size_t have = len - p < n ? len - p : n;

    if (memcmp(b + p, lit, have) != 0)
        return error_at(p, "invalid literal", what);
    if (have < n)
        return error_at(len, EOI, what);
    return p + n;
}

#define FAIL(msg)                                                              \
    do {                                                                       \
        what = (msg);                                                          \
        goto fail;                                                             \
    } while (0)

int json_scan(const char *buf, size_t len, json_member_fn fn, void *ctx,
              enum json_scan_type *top_type, struct json_scan_error *err)
{
    const unsigned char *b = (const unsigned char *)buf;
    /* one bit per open level, 1 for an object, 0 for an array */
    uint64_t is_object[JSON_SCAN_MAX_DEPTH / 64] = {0};
    size_t depth = 0, p = skip_ws(b, len, 0), mark;
    struct json_span key = {0, 0, JSON_T_STRING}, value = {0, 0, JSON_T_NULL};
    const char *what = NULL;
    int in_object = 0, rc;

    if (p == len)
        FAIL("empty");
value: /* a value must start at b[p] */
    if (p == len)
        FAIL(EOI);
    if (depth == 1)
        value.start = p;
    switch (b[p]) {
    case '{':
    case '[':
        if (depth == JSON_SCAN_MAX_DEPTH)
            FAIL("nesting too deep");
        in_object = b[p] == '{';
        if (in_object)
            is_object[depth / 64] |= UINT64_C(1) << depth % 64;
        else
            is_object[depth / 64] &= ~(UINT64_C(1) << depth % 64);
        depth++;
        p = skip_ws(b, len, p + 1);
        if (p < len && b[p] == (in_object ? '}' : ']'))
            goto close;
        if (in_object)
            goto key;
        goto value;
    case '"':
        value.type = JSON_T_STRING;
        p = scan_string(b, len, p, &what);
        break;
    case 't':
        value.type = JSON_T_TRUE;
        p = scan_literal(b, len, p, "true", 4, &what);
        break;
    case 'f':
        value.type = JSON_T_FALSE;
        p = scan_literal(b, len, p, "false", 5, &what);
        break;
    case 'n':
        value.type = JSON_T_NULL;
        p = scan_literal(b, len, p, "null", 4, &what);
        break;
    default:
        if (b[p] != '-' && !is_digit(b[p]))
            FAIL("expected a value");
        value.type = JSON_T_NUMBER;
        p = scan_number(b, len, p, &what);
    }
    if (what != NULL)
        goto fail;
done: /* a value of value.type ended just before b[p] */
    if (depth == 0)
        goto end;
    if (depth == 1 && in_object && fn != NULL) {
        value.end = p;
        rc = fn(ctx, buf, &key, &value);
        if (rc != 0) {
            if (top_type != NULL)
                *top_type = JSON_T_OBJECT;
            return rc;
        }
    }
    p = skip_ws(b, len, p);
    if (p == len)
        FAIL(EOI);
    if (b[p] == ',') {
        mark = p;
        p = skip_ws(b, len, p + 1);
        if (p < len && b[p] == (in_object ? '}' : ']')) {
            p = mark;
            what = "trailing comma";
            goto fail;
        }
        if (in_object)
            goto key;
        goto value;
    }
    if (b[p] != (in_object ? '}' : ']'))
        FAIL(in_object ? "expected ',' or '}'" : "expected ',' or ']'");
close: /* b[p] closes the innermost open level */
    p++;
    value.type = in_object ? JSON_T_OBJECT : JSON_T_ARRAY;
    depth--;
    in_object = depth > 0 && ((is_object[(depth - 1) / 64] >> (depth - 1) % 64) & 1);
    goto done;
key: /* a member's name must start at b[p] */
    if (p == len)
        FAIL(EOI);
    if (b[p] != '"')
        FAIL("expected a string key");
    mark = p;
    p = scan_string(b, len, p, &what);
    if (what != NULL)
        goto fail;
    if (depth == 1) {
        key.start = mark;
        key.end = p;
    }
    p = skip_ws(b, len, p);
    if (p == len)
        FAIL(EOI);
    if (b[p] != ':')
        FAIL("expected ':'");
    p = skip_ws(b, len, p + 1);
    goto value;
end:
    p = skip_ws(b, len, p);
    if (p != len)
        FAIL("trailing data after the value");
    if (top_type != NULL)
        *top_type = value.type;
    return 0;
fail:
    if (err != NULL) {
        err->offset = p;
        err->what = what;
    }
    return -1;
}

size_t json_utf8_check(const char *buf, size_t len)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t p = 0, n;

    while (p < len) {
        /* ASCII, 8 bytes at a time */
        while (len - p >= 8) {
            uint64_t w;
            memcpy(&w, b + p, sizeof w);
            if (w & UINT64_C(0x8080808080808080))
                break;
            p += 8;
        }
        while (p < len && b[p] < 0x80)
            p++;
        if (p == len)
            break;
        n = utf8_seq(b, len, p);
        if (n == 0)
            return p;
        p += n;
    }
    return len;
}

/* --- string tokens --- */

/* 4 hex digits (validated by the scan; anything else gives some value) */
static unsigned hex4(const char *s)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)s[i];
        v = v << 4 | ((is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10) & 15);
    }
    return v;
}

/* The escape at s[0] == '\\', inside s[0..n): its UTF-8 in u, the byte count
 * returned, its length in the token in *used (never 0). */
static size_t unescape(const char *s, size_t n, unsigned char u[4], size_t *used)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    unsigned cp;

    if (n < 2 || (s[1] == 'u' && n < 6)) { /* cut short: not from json_scan */
        *used = n;
        return 0;
    }
    *used = 2;
    if (s[1] != 'u') {
        const char *e = memchr(from, s[1], 8);
        u[0] = (unsigned char)(e != NULL ? to[e - from] : s[1]);
        return 1;
    }
    cp = hex4(s + 2);
    *used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF && n >= 12 && s[6] == '\\' && s[7] == 'u') {
        unsigned lo = hex4(s + 8);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            *used = 12;
        }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD; /* a lone surrogate, as json-c does */
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | cp >> 18);
    u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends src[0..k) at out[n], as much as fits before the NUL's place. */
static void put(char *out, size_t cap, size_t n, const void *src, size_t k)
{
    if (n + 1 < cap)
        memcpy(out + n, src, k < cap - 1 - n ? k : cap - 1 - n);
}

size_t json_string_decode(const char *tok, size_t toklen, char *out, size_t cap)
{
    const char *s = tok + 1, *end = s + (toklen >= 2 ? toklen - 2 : 0);
    size_t n = 0;

    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        size_t run = (size_t)((bs != NULL ? bs : end) - s), used;
        unsigned char u[4];

        put(out, cap, n, s, run);
        n += run;
        s += run;
        if (bs != NULL) {
            size_t k = unescape(s, (size_t)(end - s), u, &used);
            put(out, cap, n, u, k);
            n += k;
            s += used;
        }
    }
    if (cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

int json_string_equals(const char *tok, size_t toklen, const char *lit)
{
    size_t litlen = strlen(lit), n = 0;
    const char *s = tok + 1, *end = s + (toklen >= 2 ? toklen - 2 : 0);

    /* escapes only shorten: a token too short cannot be lit */
    if (toklen < 2 || toklen - 2 < litlen)
        return 0;
    while (s < end) {
        const char *bs = memchr(s, '\\', (size_t)(end - s));
        size_t run = (size_t)((bs != NULL ? bs : end) - s), used, k;
        unsigned char u[4];

        if (run > litlen - n || memcmp(s, lit + n, run) != 0)
            return 0;
        n += run;
        s += run;
        if (bs != NULL) {
            k = unescape(s, (size_t)(end - s), u, &used);
            if (k > litlen - n || memcmp(u, lit + n, k) != 0)
                return 0;
            n += k;
            s += used;
        }
    }
    return n == litlen;
}
