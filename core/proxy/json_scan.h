/* A one-pass, allocation-free strict JSON (RFC 8259) validator that also
 * reports the members of the top-level object, for the request hot path. */
#ifndef SY_JSON_SCAN_H
#define SY_JSON_SCAN_H

#include <stddef.h>

/* Open arrays and objects at once; one more is "nesting too deep". */
#define JSON_SCAN_MAX_DEPTH 512

/* Digits an integer (a number with neither fraction nor exponent) may have,
 * its sign not counted: Python's int() refuses more since 3.11
 * (sys.int_info.default_max_str_digits).  Floats may be of any length. */
#define JSON_SCAN_MAX_INT_DIGITS 4300

#define JSON_SCAN_STR_(x) #x
#define JSON_SCAN_STR(x) JSON_SCAN_STR_(x)
/* json_scan_error.what for those two refusals (all others are plain JSON
 * syntax): invalid UTF-8 in a string, and an integer too long. */
#define JSON_SCAN_ERR_UTF8 "invalid UTF-8"
#define JSON_SCAN_ERR_INT_DIGITS \
    "integer with more than " JSON_SCAN_STR(JSON_SCAN_MAX_INT_DIGITS) " digits"

/* Not "enum json_type": json-c's <json-c/json_types.h> has that tag, and
 * files that use both must compile. */
enum json_scan_type {
    JSON_T_STRING,
    JSON_T_NUMBER,
    JSON_T_OBJECT,
    JSON_T_ARRAY,
    JSON_T_TRUE,
    JSON_T_FALSE,
    JSON_T_NULL
};

/* buf[start..end): the whole token, quotes or brackets included. */
struct json_span {
    size_t start, end;
    enum json_scan_type type;
};

/* Called once per member of the top-level object, in order, duplicates
 * included; key->type is JSON_T_STRING.  Return 0 to go on; anything else
 * stops the scan (the rest of buf is not validated) and json_scan returns
 * it.  Return a positive value: -1 would read as invalid JSON. */
typedef int (*json_member_fn)(void *ctx, const char *buf, const struct json_span *key,
                              const struct json_span *value);

/* offset: the byte the error was found at (len for "unexpected end of
 * input"); what: static English text, e.g. "trailing comma". */
struct json_scan_error {
    size_t offset;
    const char *what;
};

/* Validates all of buf[0..len) as exactly one JSON value, with only
 * whitespace (space, tab, CR, LF) around it, strictly: strings must be valid
 * UTF-8 (RFC 3629: no overlong forms, no encoded surrogates, nothing past
 * U+10FFFF), so an accepted input is UTF-8 throughout; an integer has at
 * most JSON_SCAN_MAX_INT_DIGITS digits.  Lone surrogate escapes ("\ud800")
 * are valid, as in Python's json.  If the value is an object and
 * fn != NULL, calls fn for each top-level member as soon as its value ends.
 * Returns 0 when valid, -1 when not (*err filled if err != NULL), or fn's
 * nonzero value.  *top_type (if top_type != NULL) gets the type of the
 * top-level value on 0 or fn's value, and is not written on -1. */
int json_scan(const char *buf, size_t len, json_member_fn fn, void *ctx,
              enum json_scan_type *top_type, struct json_scan_error *err);

/* The offset of the first byte of buf[0..len) that does not start a valid
 * UTF-8 sequence (by the rules json_scan applies to strings; a sequence cut
 * short by len counts as invalid), or len when all of it is valid UTF-8.
 * ASCII goes 8 bytes a step; nothing is allocated. */
size_t json_utf8_check(const char *buf, size_t len);

/* Decodes a string token (quotes included, as a span from json_scan, so
 * already valid) into UTF-8 in out[0..cap).  Returns the decoded length;
 * when that is >= cap, out holds a prefix cut to cap-1 bytes (maybe inside a
 * UTF-8 sequence), like snprintf.  NUL-terminates whenever cap > 0.  \uXXXX
 * escapes, surrogate pairs included, become UTF-8; a lone surrogate becomes
 * U+FFFD, as json-c has it (Python's json keeps it as a lone code point of
 * its str, which no UTF-8 can hold); "\u0000" becomes a NUL byte inside the
 * result. */
size_t json_string_decode(const char *tok, size_t toklen, char *out, size_t cap);

/* True if the string token decodes to exactly the NUL-terminated lit. */
int json_string_equals(const char *tok, size_t toklen, const char *lit);

#endif
