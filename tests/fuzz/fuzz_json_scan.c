/*
 * Fuzz json_scan against json-c's strict mode.
 *
 * Input: the JSON text.
 *
 * Invariants:
 *   - json_scan accepts exactly when json-c does (JSON_TOKENER_STRICT, the
 *     whole input one value, only whitespace after it), but for the
 *     divergences listed in core/proxy/json_scan.c.  Each is recognized at the
 *     byte json_scan stops at, checked to be that divergence and nothing
 *     else, and patched out of the input in a way json-c accepts just the
 *     same, until json_scan accepts; then json-c must still accept:
 *       . a raw control character in a string: that string's become spaces;
 *       . a name in single quotes: the quotes become double quotes (a '"'
 *         inside, '_');
 *       . NaN, Infinity, -Infinity: 0 (or -0), padded with spaces;
 *       . a number json-c reads and the RFC grammar (a regex here) refuses:
 *         0, padded with spaces;
 *       . nesting: json-c gets a depth limit it cannot reach; "nesting too
 *         deep" must be at a '[' or '{' with 512 levels open, and ends the
 *         comparison;
 *       . a top-level number, true, false or null at the very end (json-c:
 *         json_tokener_continue): json-c is asked again with a space after;
 *       . invalid UTF-8 in a string (json-c passes the bytes through): the
 *         input up to there must be UTF-8 and the sequence there not, by a
 *         decoder of this file; its first byte becomes a space;
 *       . an integer of more than JSON_SCAN_MAX_INT_DIGITS digits (json-c
 *         clamps it): a plain integer that long must start there; 0,
 *         padded with spaces.
 *   - an input json_scan accepts is UTF-8 throughout (the same decoder);
 *   - an error has a message and an offset within the input;
 *   - member spans are in order within the buffer, each one a whole value of
 *     its type (json_scan of the span alone says so);
 *   - a top-level string decodes to json-c's;
 *   - the top-level type and each member's type are json-c's; when json-c
 *     sees no duplicate names, each decoded name (cut at a NUL, as json-c
 *     cuts names) and each decoded string value is json-c's, and
 *     json_string_equals and a cut-short json_string_decode agree with it;
 *   - a callback that stops at member k makes json_scan return its value
 *     after exactly k calls.
 */
#include <json-c/json.h>
#include <regex.h>
#include <string.h>

#include "fuzz.h"
#include "json_scan.h"

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* json-c's verdict; *obj gets its value when it accepts (NULL for null). */
static int jsonc_accepts(const char *s, size_t len, struct json_object **obj,
                         enum json_tokener_error *e)
{
    /* deeper than any input can nest: depth is a divergence of its own */
    struct json_tokener *tok = json_tokener_new_ex((int)len + 2);
    int ok;

    FUZZ_CHECK(tok != NULL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    *obj = json_tokener_parse_ex(tok, s, (int)len);
    *e = json_tokener_get_error(tok);
    ok = *e == json_tokener_success;
    for (size_t i = json_tokener_get_parse_end(tok); ok && i < len; i++)
        ok = is_ws(s[i]);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(*obj);
        *obj = NULL;
    }
    return ok;
}

/* The length of the UTF-8 character at b[0..n), or 0 when there is none:
 * decoded, then refused if overlong, a surrogate or past U+10FFFF. */
static size_t ref_utf8_len(const unsigned char *b, size_t n)
{
    unsigned cp;
    size_t len;

    if (b[0] < 0x80)
        return 1;
    if ((b[0] & 0xE0) == 0xC0)
        len = 2, cp = b[0] & 0x1Fu;
    else if ((b[0] & 0xF0) == 0xE0)
        len = 3, cp = b[0] & 0x0Fu;
    else if ((b[0] & 0xF8) == 0xF0)
        len = 4, cp = b[0] & 0x07u;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((b[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (b[i] & 0x3Fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

/* Where s[0..n) stops being UTF-8, or n. */
static size_t ref_utf8_valid_to(const char *s, size_t n)
{
    const unsigned char *b = (const unsigned char *)s;
    size_t p = 0, k;

    while (p < n && (k = ref_utf8_len(b + p, n - p)) != 0)
        p += k;
    return p;
}

static int rfc_integer(const char *s, size_t n)
{
    size_t i = s[0] == '-';

    if (i == n || (s[i] == '0' && n - i > 1))
        return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int rfc_number(const char *s, size_t n)
{
    static regex_t re;
    static int compiled;
    char *tok = malloc(n + 1);
    int match;

    if (!compiled) {
        FUZZ_CHECK(regcomp(&re, "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?$",
                           REG_EXTENDED | REG_NOSUB) == 0,
                   "regcomp");
        compiled = 1;
    }
    FUZZ_CHECK(tok != NULL, "out of memory");
    memcpy(tok, s, n);
    tok[n] = '\0';
    match = regexec(&re, tok, 0, NULL, 0) == 0;
    free(tok);
    return match;
}

/* The end of the number json-c reads from s[i] (its json_tokener loop). */
static size_t jsonc_number_end(const char *s, size_t len, size_t i)
{
    int is_double = 0, is_exponent = 0, neg_ok = 1, pos_ok = 0;

    for (; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (!is_exponent && (c == 'e' || c == 'E')) ||
              (neg_ok && c == '-') || (pos_ok && c == '+') || (!is_double && c == '.')))
            break;
        neg_ok = pos_ok = 0;
        if (c == '.')
            is_double = neg_ok = pos_ok = 1;
        if (c == 'e' || c == 'E')
            is_exponent = is_double = neg_ok = pos_ok = 1;
    }
    return i;
}

static void pad_zero(char *s, size_t start, size_t end)
{
    memset(s + start, ' ', end - start);
    s[start] = '0';
}

enum patch { PATCHED, STOP };

/* json_scan refused s[0..len) at err and json-c accepted it: it must be one
 * of the divergences.  Patch it out, or say to stop comparing. */
static enum patch patch_divergence(char *s, size_t len, const struct json_scan_error *err)
{
    size_t k = err->offset;
    const char *what = err->what;

    FUZZ_CHECK(k < len, "json-c accepts, json_scan refuses at the end: %s", what);
    if (strcmp(what, "control character in string") == 0) {
        FUZZ_CHECK(s[k] > 0 && s[k] < 0x20, "control character 0x%02x", (unsigned char)s[k]);
        for (size_t i = k; i < len && s[i] != '"'; i++) {
            if (s[i] == '\\')
                i++;
            else if (s[i] > 0 && s[i] < 0x20)
                s[i] = ' ';
        }
        return PATCHED;
    }
    if (strcmp(what, "expected a string key") == 0 && s[k] == '\'') {
        size_t i = k + 1;
        for (; i < len && s[i] != '\''; i++) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                s[i] = '_';
        }
        FUZZ_CHECK(i < len, "json-c took an unterminated 'name'");
        s[k] = s[i] = '"';
        return PATCHED;
    }
    if (strcmp(what, "expected a value") == 0 && len - k >= 3 && memcmp(s + k, "NaN", 3) == 0) {
        pad_zero(s, k, k + 3);
        return PATCHED;
    }
    if (strcmp(what, "expected a value") == 0 && len - k >= 8 &&
        memcmp(s + k, "Infinity", 8) == 0) {
        pad_zero(s, k, k + 8);
        return PATCHED;
    }
    if (strcmp(what, "invalid number") == 0) {
        size_t start = k, end;
        if (k > 0 && s[k - 1] == '-' && len - k >= 8 && memcmp(s + k, "Infinity", 8) == 0) {
            pad_zero(s, k, k + 8);
            return PATCHED;
        }
        while (start > 0 && s[start - 1] != '\0' && strchr("0123456789.eE+-", s[start - 1]))
            start--;
        FUZZ_CHECK(s[start] == '-' || (s[start] >= '0' && s[start] <= '9'),
                   "invalid number at %zu, not in a number", k);
        end = jsonc_number_end(s, len, start);
        FUZZ_CHECK(k <= end, "invalid number at %zu, after json-c's number %zu..%zu", k, start,
                   end);
        FUZZ_CHECK(!rfc_number(s + start, end - start), "json_scan refuses the number '%.*s'",
                   (int)(end - start), s + start);
        pad_zero(s, start, end);
        return PATCHED;
    }
    if (strcmp(what, JSON_SCAN_ERR_UTF8) == 0) {
        FUZZ_CHECK((unsigned char)s[k] >= 0x80, "invalid UTF-8 at ASCII 0x%02x", (unsigned char)s[k]);
        FUZZ_CHECK(ref_utf8_valid_to(s, len) == k, "invalid UTF-8 at %zu, the decoder says %zu", k,
                   ref_utf8_valid_to(s, len));
        s[k] = ' ';
        return PATCHED;
    }
    if (strcmp(what, JSON_SCAN_ERR_INT_DIGITS) == 0) {
        size_t end = jsonc_number_end(s, len, k);
        FUZZ_CHECK(rfc_integer(s + k, end - k) &&
                       end - k - (s[k] == '-') > JSON_SCAN_MAX_INT_DIGITS,
                   "integer too long at %zu, json-c reads %zu bytes there", k, end - k);
        pad_zero(s, k, end);
        return PATCHED;
    }
    if (strcmp(what, "nesting too deep") == 0) {
        size_t depth = 0;
        int in_string = 0;
        for (size_t i = 0; i < k; i++) {
            if (in_string && s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_string = !in_string;
            else if (!in_string && (s[i] == '[' || s[i] == '{'))
                depth++;
            else if (!in_string && (s[i] == ']' || s[i] == '}'))
                depth--;
        }
        FUZZ_CHECK((s[k] == '[' || s[k] == '{') && depth == JSON_SCAN_MAX_DEPTH,
                   "too deep at %zu with %zu levels open", k, depth);
        return STOP;
    }
    FUZZ_CHECK(0, "json-c accepts, json_scan refuses: %s at %zu", what, k);
    return STOP;
}

struct members {
    const char *buf;
    size_t len, n, cap, stop_at, calls;
    struct json_span *key, *value;
};

static int collect(void *ctx, const char *buf, const struct json_span *key,
                   const struct json_span *value)
{
    struct members *m = ctx;
    size_t prev_end = m->n ? m->value[m->n - 1].end : 1;
    enum json_scan_type type;

    FUZZ_CHECK(buf == m->buf, "callback got another buffer");
    FUZZ_CHECK(prev_end <= key->start && key->start < key->end && key->end <= value->start &&
                   value->start < value->end && value->end < m->len,
               "spans out of order: key %zu..%zu value %zu..%zu after %zu, len %zu",
               key->start, key->end, value->start, value->end, prev_end, m->len);
    FUZZ_CHECK(key->type == JSON_T_STRING && buf[key->start] == '"' && buf[key->end - 1] == '"',
               "key span %zu..%zu", key->start, key->end);
    FUZZ_CHECK(json_scan(buf + value->start, value->end - value->start, NULL, NULL, &type,
                         NULL) == 0 && type == value->type,
               "value span %zu..%zu is not a whole value of type %d", value->start, value->end,
               (int)value->type);
    FUZZ_CHECK(m->n < m->cap, "more members than bytes allow");
    m->key[m->n] = *key;
    m->value[m->n] = *value;
    m->n++;
    m->calls++;
    return m->calls == m->stop_at ? 42 : 0;
}

static enum json_scan_type type_of(struct json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null: return JSON_T_NULL;
    case json_type_boolean: return json_object_get_boolean(o) ? JSON_T_TRUE : JSON_T_FALSE;
    case json_type_double:
    case json_type_int: return JSON_T_NUMBER;
    case json_type_object: return JSON_T_OBJECT;
    case json_type_array: return JSON_T_ARRAY;
    case json_type_string: return JSON_T_STRING;
    }
    return JSON_T_NULL;
}

/* Decodes the token at span into a fresh buffer; checks a cut-short decode
 * and json_string_equals on the way. */
static char *decode(const char *buf, const struct json_span *sp, size_t *n)
{
    const char *tok = buf + sp->start;
    size_t toklen = sp->end - sp->start, cut;
    char *out = malloc(toklen), *part;

    FUZZ_CHECK(out != NULL, "out of memory");
    *n = json_string_decode(tok, toklen, out, toklen);
    FUZZ_CHECK(*n <= toklen - 2 && out[*n] == '\0', "decoded %zu bytes from a %zu-byte token",
               *n, toklen);
    cut = *n / 2 + 1;
    part = malloc(cut);
    FUZZ_CHECK(part != NULL, "out of memory");
    FUZZ_CHECK(json_string_decode(tok, toklen, part, cut) == *n && part[cut - 1] == '\0' &&
                   memcmp(part, out, cut - 1) == 0,
               "decode cut to %zu", cut);
    free(part);
    if (memchr(out, '\0', *n) == NULL) {
        FUZZ_CHECK(json_string_equals(tok, toklen, out), "not equal to its decoding");
        if (*n > 0) {
            char last = out[*n - 1];
            out[*n - 1] = '\0';
            FUZZ_CHECK(!json_string_equals(tok, toklen, out), "equal to a shorter text");
            out[*n - 1] = last;
        }
    }
    return out;
}

/* A second decoder, written plainly, for where json-c is wrong: json-c 0.16
 * turns some valid surrogate pairs into U+FFFD ("\ud837\ude00", U+1DE00,
 * found by this harness; "\ud83d\ude00" it gets right). */
static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (unsigned)(p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    return v;
}

static size_t put_utf8(char *o, unsigned c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xc0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | c >> 12);
        o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | c >> 18);
    o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* tok: a valid string token.  *pairs: how many surrogate pairs it has. */
static size_t ref_decode(const char *tok, size_t toklen, char *out, int *pairs)
{
    size_t n = 0;
    *pairs = 0;
    for (size_t i = 1; i + 1 < toklen; i++) {
        if (tok[i] != '\\') {
            out[n++] = tok[i];
            continue;
        }
        char e = tok[++i];
        if (e != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            out[n++] = to[strchr(from, e) - from];
            continue;
        }
        unsigned c = hex4(tok + i + 1);
        i += 4;
        if (c >= 0xd800 && c <= 0xdbff && i + 6 < toklen && tok[i + 1] == '\\' &&
            tok[i + 2] == 'u') {
            unsigned lo = hex4(tok + i + 3);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
                (*pairs)++;
            }
        }
        if (c >= 0xd800 && c <= 0xdfff)
            c = 0xfffd;
        n += put_utf8(out + n, c);
    }
    return n;
}

/* Our decoding of the string token at sp (s, n) is json-c's (jc, jn), or,
 * where the token has surrogate pairs that json-c may get wrong, the
 * plain decoder's.  prefix: s was cut at a NUL, as json-c cuts names. */
static int decodes_right(const char *buf, const struct json_span *sp, const char *s, size_t n,
                         const char *jc, size_t jn, int prefix)
{
    int pairs;
    char *ref;
    size_t rn;
    int ok;

    if (n == jn && memcmp(s, jc, n) == 0)
        return 1;
    ref = malloc(sp->end - sp->start);
    FUZZ_CHECK(ref != NULL, "out of memory");
    rn = ref_decode(buf + sp->start, sp->end - sp->start, ref, &pairs);
    ok = pairs > 0 && (prefix ? rn >= n : rn == n) && memcmp(ref, s, n) == 0;
    free(ref);
    return ok;
}

static void compare_members(const struct members *m, struct json_object *obj)
{
    size_t i = 0;

    if ((size_t)json_object_object_length(obj) != m->n) {
        /* duplicate names (json-c's, cut at NUL): each still is in json-c */
        for (i = 0; i < m->n; i++) {
            size_t n;
            char *key = decode(m->buf, &m->key[i], &n);
            /* json-c holds it under its own (wrong) decoding of a pair */
            FUZZ_CHECK(json_object_object_get_ex(obj, key, NULL) ||
                           decodes_right(m->buf, &m->key[i], key, strlen(key), "", 0, 1),
                       "name '%s' not in json-c", key);
            free(key);
        }
        return;
    }
    json_object_object_foreach(obj, name, val) {
        size_t n;
        char *key = decode(m->buf, &m->key[i], &n);
        FUZZ_CHECK(decodes_right(m->buf, &m->key[i], key, strlen(key), name, strlen(name), 1),
                   "member %zu: name '%s', json-c '%s'", i, key, name);
        FUZZ_CHECK(m->value[i].type == type_of(val), "member '%s': type %d, json-c %d", name,
                   (int)m->value[i].type, (int)type_of(val));
        free(key);
        if (m->value[i].type == JSON_T_STRING) {
            char *s = decode(m->buf, &m->value[i], &n);
            FUZZ_CHECK(decodes_right(m->buf, &m->value[i], s, n, json_object_get_string(val),
                                     (size_t)json_object_get_string_len(val), 0),
                       "member '%s': value differs from json-c's", name);
            free(s);
        }
        i++;
    }
}

static int scan(const char *buf, size_t size, enum json_scan_type *type,
                struct json_scan_error *err)
{
    int rc;

    err->what = NULL;
    err->offset = size + 1;
    rc = json_scan(buf, size, NULL, NULL, type, err);
    FUZZ_CHECK(rc == 0 || rc == -1, "json_scan returned %d with no callback", rc);
    FUZZ_CHECK(rc == 0 || (err->what != NULL && err->offset <= size), "error %s at %zu of %zu",
               err->what ? err->what : "(none)", err->offset, size);
    return rc;
}

/* json-c's verdict, taking out the one divergence that is about the end of
 * the input: a top-level scalar json_scan accepted, there, is asked again
 * with a space after it. */
static int jsonc_verdict(const char *buf, size_t size, int rc, enum json_scan_type type,
                         struct json_object **obj, enum json_tokener_error *e)
{
    char *spaced;
    int ok = jsonc_accepts(buf, size, obj, e);

    if (rc == 0 && !ok && *e == json_tokener_continue && type != JSON_T_STRING &&
        type != JSON_T_OBJECT && type != JSON_T_ARRAY) {
        FUZZ_CHECK(!is_ws(buf[size - 1]), "json-c continues after whitespace");
        spaced = malloc(size + 1);
        FUZZ_CHECK(spaced != NULL, "out of memory");
        memcpy(spaced, buf, size);
        spaced[size] = ' ';
        ok = jsonc_accepts(spaced, size + 1, obj, e);
        free(spaced);
    }
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so reading past the end is caught */
    char *buf = malloc(size ? size : 1);
    struct json_object *obj = NULL;
    struct json_scan_error err;
    enum json_tokener_error e;
    enum json_scan_type type = JSON_T_NULL;
    int rc, ok, patched = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    rc = scan(buf, size, &type, &err);
    ok = jsonc_verdict(buf, size, rc, type, &obj, &e);
    if ((rc == 0) != ok) {
        FUZZ_CHECK(rc != 0, "json_scan accepts what json-c refuses (%s)",
                   json_tokener_error_desc(e));
        /* json-c accepts: patch divergences out until json_scan accepts too,
         * then json-c must still accept */
        json_object_put(obj);
        obj = NULL;
        do {
            if (patch_divergence(buf, size, &err) == STOP)
                goto out;
            patched++;
            rc = scan(buf, size, &type, &err);
        } while (rc != 0);
        ok = jsonc_verdict(buf, size, rc, type, &obj, &e);
        FUZZ_CHECK(ok, "json-c refuses the input after %d patches (%s): %.*s", patched,
                   json_tokener_error_desc(e), (int)size, buf);
    }
    if (rc != 0)
        goto out;
    FUZZ_CHECK(ref_utf8_valid_to(buf, size) == size, "accepted, not UTF-8 from %zu",
               ref_utf8_valid_to(buf, size));

    FUZZ_CHECK(type == type_of(obj), "top-level type %d, json-c %d", (int)type,
               (int)type_of(obj));
    if (type == JSON_T_STRING) {
        struct json_span sp = {0, size, JSON_T_STRING};
        size_t n;
        char *str;
        while (is_ws(buf[sp.start]))
            sp.start++;
        while (is_ws(buf[sp.end - 1]))
            sp.end--;
        str = decode(buf, &sp, &n);
        FUZZ_CHECK(decodes_right(buf, &sp, str, n, json_object_get_string(obj),
                                 (size_t)json_object_get_string_len(obj), 0),
                   "top-level string differs from json-c's");
        free(str);
    }
    if (type == JSON_T_OBJECT) {
        struct members m = {buf, size, 0, size / 5 + 1, 0, 0, NULL, NULL};
        m.key = malloc(m.cap * sizeof *m.key);
        m.value = malloc(m.cap * sizeof *m.value);
        FUZZ_CHECK(m.key != NULL && m.value != NULL, "out of memory");
        FUZZ_CHECK(json_scan(buf, size, collect, &m, NULL, NULL) == 0, "scan with callback");
        compare_members(&m, obj);
        if (m.n > 0) {
            size_t all = m.n;
            m.n = m.calls = 0;
            m.stop_at = 1 + (unsigned char)buf[size / 2] % all;
            type = JSON_T_NULL;
            FUZZ_CHECK(json_scan(buf, size, collect, &m, &type, NULL) == 42 &&
                           m.calls == m.stop_at && type == JSON_T_OBJECT,
                       "stop at member %zu: %zu calls", m.stop_at, m.calls);
        }
        free(m.key);
        free(m.value);
    }
out:
    json_object_put(obj);
    free(buf);
    return 0;
}
